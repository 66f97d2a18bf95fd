"""
The C{twistd xmppws-muc} plugin: the group chat service as an external
component of any XMPP server.

Kept thin, like C{xmppws_plugin}: the service's code (L{xmppws.muc.tap})
is imported only when C{xmppws-muc} is run.
"""

from twisted.application.service import ServiceMaker

xmppwsMUC = ServiceMaker(
    "xmppws-muc",
    "xmppws.muc.tap",
    "Group chat (XEP-0045) as an external component (XEP-0114) of an XMPP server",
    "xmppws-muc",
)
