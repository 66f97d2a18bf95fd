"""
The C{twistd xmppws} plugin.

Kept thin: C{twistd --help} imports every plugin, so the service's code
(L{xmppws.tap}) is imported only when C{xmppws} is run.
"""

from twisted.application.service import ServiceMaker

xmppws = ServiceMaker(
    "xmppws",
    "xmppws.tap",
    "XMPP over WebSocket (RFC 7395) and TCP: an embedded XMPP server",
    "xmppws",
)
