# -*- test-case-name: tests.test_client -*-
"""
XMPP over WebSocket, client side: an Autobahn WebSocket client protocol
that carries the stream of an unmodified Twisted Words client
C{XmlStream}, such as tx-xmpp's C{XMPPClient} streams or Twisted's
C{XMPPClientFactory}.
"""

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionLost

from xmppws._adapter import XMPPWebSocketMixin
from xmppws.framing import LegacyFraming, RFC7395Framing

__all__ = ["XMPPWebSocketClientFactory", "XMPPWebSocketClientProtocol"]

FRAMINGS = {"rfc7395": RFC7395Framing, "legacy": LegacyFraming}


class XMPPWebSocketClientProtocol(XMPPWebSocketMixin, WebSocketClientProtocol):
    """
    A WebSocket client connection carrying one XMPP stream.
    """

    initiating = True

    def onConnect(self, response):
        if response.protocol != "xmpp":
            self.closeReason = "server did not select the xmpp subprotocol"
            self.dropConnection(abort=True)

    def onOpen(self):
        self.framing = FRAMINGS[self.factory.framingName]()
        self.secure = self.factory.isSecure
        self._startXmlStream(self.transport.getPeer(), self.transport.getHost())
        self.factory._opened(self.xmlStream)

    def onMessageBegin(self, isBinary):
        WebSocketClientProtocol.onMessageBegin(self, isBinary)
        if isBinary:
            self._sendStreamError(
                "unsupported-encoding", "XMPP travels in WebSocket text frames only.", 1003
            )

    def onMessage(self, payload, isBinary):
        if not isBinary:
            self._xmppMessageReceived(payload)

    def onClose(self, wasClean, code, reason):
        if self.xmppTransport is None:
            self.factory._failed(
                ConnectionLost(
                    "WebSocket handshake failed: %s"
                    % (self.closeReason or self.wasNotCleanReason or reason,)
                )
            )
            return
        self._xmlStreamLost(wasClean, code)
        self._logEnd(code)


class XMPPWebSocketClientFactory(WebSocketClientFactory):
    """
    Connect one C{XmlStream} to an XMPP WebSocket server.

    @ivar xmlStreamFactory: builds the C{XmlStream} once the WebSocket is
        open.
    @ivar framingName: C{'rfc7395'} (default) or C{'legacy'} (draft-00).
    @ivar deferred: fires with the C{XmlStream} once the WebSocket is
        open, or fails if it never opens.
    """

    protocol = XMPPWebSocketClientProtocol

    def __init__(
        self,
        xmlStreamFactory,
        url,
        *,
        reactor=None,
        framing="rfc7395",
        origin=None,
        contentNamespace="jabber:client",
        lang=None,
        maxMessageSize=256 * 1024,
        pingInterval=0,
        pingTimeout=10,
    ):
        if framing not in FRAMINGS:
            raise ValueError("framing must be one of %s" % (", ".join(FRAMINGS),))
        WebSocketClientFactory.__init__(
            self, url, protocols=["xmpp"], origin=origin, reactor=reactor
        )
        self.xmlStreamFactory = xmlStreamFactory
        self.framingName = framing
        self.maxMessageSize = maxMessageSize
        self.contentNamespace = contentNamespace
        self.lang = lang
        self.deferred = Deferred()
        self.setProtocolOptions(
            maxFramePayloadSize=maxMessageSize,
            autoPingInterval=pingInterval,
            autoPingTimeout=pingTimeout if pingInterval else 0,
            failByDrop=False,
        )

    def _opened(self, xmlStream):
        if not self.deferred.called:
            if xmlStream is None:
                self.deferred.errback(ConnectionLost("no XmlStream was built"))
            else:
                self.deferred.callback(xmlStream)

    def _failed(self, reason):
        if not self.deferred.called:
            self.deferred.errback(reason)

    def clientConnectionFailed(self, connector, reason):
        self._failed(reason)

    def startFactory(self):
        self.xmlStreamFactory.doStart()

    def stopFactory(self):
        self.xmlStreamFactory.doStop()
