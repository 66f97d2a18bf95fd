# -*- test-case-name: tests.test_c2s_ext -*-
"""
XEP-0199 XMPP Ping: the server answers pings addressed to its domains,
and to an account's bare JID from the account's own resources.
"""

from xmppws.c2s.namespaces import NS_PING

__all__ = ["Ping", "install"]


class Ping:
    """
    The ping module's state.

    @ivar server: the L{xmppws.c2s.server.XMPPServer}.
    """

    discoFeatures = (NS_PING,)

    def __init__(self, server):
        self.server = server

    def onServerIQ(self, iq, to):
        if not _isPing(iq):
            return None
        self.server.route(self.server.reply(iq))
        return True

    def onAccountIQ(self, session, iq):
        if not _isPing(iq):
            return None
        session.send(self.server.reply(iq))
        return True


def _isPing(iq):
    child = iq.firstChildElement()
    return (
        iq.getAttribute("type") == "get"
        and child is not None
        and (child.uri, child.name) == (NS_PING, "ping")
    )


def install(server):
    """
    Answer pings to the server and to one's own account.

    @return: the L{Ping} state.
    """
    ping = Ping(server)
    server.on("iq/server", ping.onServerIQ)
    server.on("iq/account", ping.onAccountIQ)
    return ping
