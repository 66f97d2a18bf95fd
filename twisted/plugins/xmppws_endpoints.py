"""
Endpoint string parsers for C{xmppws:} server and client endpoints.

Kept thin: the real code is imported only when a string is parsed.
"""

from twisted.internet.interfaces import (
    IStreamClientEndpointStringParserWithReactor,
    IStreamServerEndpointStringParser,
)
from twisted.plugin import IPlugin
from zope.interface import implementer


@implementer(IPlugin, IStreamServerEndpointStringParser)
class _XMPPWebSocketServerParser:
    prefix = "xmppws"

    def parseStreamServer(self, reactor, *args, **kwargs):
        from xmppws.endpoints import parseServer

        return parseServer(reactor, *args, **kwargs)


@implementer(IPlugin, IStreamClientEndpointStringParserWithReactor)
class _XMPPWebSocketClientParser:
    prefix = "xmppws"

    def parseStreamClient(self, reactor, *args, **kwargs):
        from xmppws.endpoints import parseClient

        return parseClient(reactor, *args, **kwargs)


xmppwsServerParser = _XMPPWebSocketServerParser()
xmppwsClientParser = _XMPPWebSocketClientParser()
