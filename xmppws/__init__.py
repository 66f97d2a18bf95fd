"""
xmppws: XMPP over WebSocket (RFC 7395 and draft-ietf-xmpp-websocket-00)
for Twisted.

The adapter in L{xmppws.websocket} runs unmodified Twisted Words
C{XmlStream} code over WebSocket; L{xmppws.endpoints} offers it as
C{xmppws:} endpoint strings.
"""

__version__ = "0.1.0.dev0"
