# -*- test-case-name: tests.test_c2s_ext -*-
"""
XEP-0092 Software Version of the server: name and version, never the
operating system.
"""

from importlib.metadata import PackageNotFoundError, version as _distributionVersion

from twisted.words.xish import domish

from xmppws.c2s.namespaces import NS_VERSION

__all__ = ["Version", "install"]

NAME = "xmppws"


class Version:
    """
    The version module's state.

    @ivar server: the L{xmppws.c2s.server.XMPPServer}.
    @ivar name: the software name announced.
    @ivar version: the version announced: the installed distribution's.
    """

    discoFeatures = (NS_VERSION,)

    def __init__(self, server):
        self.server = server
        self.name = NAME
        self.version = _installedVersion()

    def onServerIQ(self, iq, to):
        child = iq.firstChildElement()
        if child is None or (child.uri, child.name) != (NS_VERSION, "query"):
            return None
        if iq.getAttribute("type") != "get":
            self.server.bounce(iq, "bad-request", "modify")
            return True
        reply = self.server.reply(iq)
        query = reply.addChild(domish.Element((NS_VERSION, "query")))
        query.addElement("name", content=self.name)
        query.addElement("version", content=self.version)
        self.server.route(reply)
        return True


def _installedVersion():
    try:
        return _distributionVersion(NAME)
    except PackageNotFoundError:
        return "unknown"


def install(server):
    """
    Answer software version queries to the server.

    @return: the L{Version} state.
    """
    version = Version(server)
    server.on("iq/server", version.onServerIQ)
    return version
