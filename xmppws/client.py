# -*- test-case-name: tests.test_client -*-
"""
XMPP over WebSocket, client side: an Autobahn WebSocket client protocol
that carries the stream of an unmodified Twisted Words client
C{XmlStream}, such as tx-xmpp's C{XMPPClient} streams or Twisted's
C{XMPPClientFactory}, through the same connection as the server side
(L{xmppws.connection.XmlStreamConnection}, initiating).
"""

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionLost

from xmppws._carrier import CarrierCallbacks, ReactorTimer, WebSocketCarrier
from xmppws.connection import ConnectionFactory
from xmppws.framing import LegacyFraming, RFC7395Framing

__all__ = ["FRAMINGS", "XMPPWebSocketClientFactory", "XMPPWebSocketClientProtocol"]

FRAMINGS = {"rfc7395": RFC7395Framing, "legacy": LegacyFraming}


class XMPPWebSocketClientProtocol(CarrierCallbacks, WebSocketClientProtocol):
    """
    A WebSocket client connection carrying one XMPP stream.

    @ivar connection: the L{xmppws.connection.XmlStreamConnection}, once
        open.
    @ivar failure: why the WebSocket did not open, if it did not.
    """

    connection = None
    failure = None

    def onConnect(self, response):
        if response.protocol != "xmpp":
            self.failure = "the server did not select the xmpp subprotocol"
            self.dropConnection(abort=True)

    def onOpen(self):
        factory = self.factory
        self.carrier = WebSocketCarrier(
            self,
            self.transport.getPeer(),
            factory.isSecure,
            factory.origin,
            factory.resource,
            factory.maxMessageSize,
        )
        connection = self.connection = factory.connectionFactory.buildProtocol(
            self.transport.getPeer()
        )
        self.carrier.attach(connection)
        factory._opened(connection.xmlStream)

    def onClose(self, wasClean, code, reason):
        if self.carrier is None:
            self.factory._failed(
                ConnectionLost(
                    "WebSocket handshake failed: %s"
                    % (self.failure or self.wasNotCleanReason or reason,)
                )
            )
            return
        CarrierCallbacks.onClose(self, wasClean, code, reason)


class XMPPWebSocketClientFactory(WebSocketClientFactory):
    """
    Connect one C{XmlStream} to an XMPP WebSocket server.

    @ivar connectionFactory: the L{xmppws.connection.ConnectionFactory},
        initiating, around the C{XmlStream} factory.
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
        contentNamespace=None,
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
        self._batched_timer = ReactorTimer(self.reactor)
        self.framingName = framing
        self.maxMessageSize = maxMessageSize
        self.connectionFactory = ConnectionFactory(
            xmlStreamFactory,
            self.reactor,
            contentNamespace=contentNamespace,
            lang=lang,
            initiating=True,
            framing=FRAMINGS[framing],
            openTimeout=0,
            pingInterval=pingInterval,
            pingTimeout=pingTimeout,
            maxElementSize=maxMessageSize,
        )
        self.deferred = Deferred()
        self.setProtocolOptions(
            maxFramePayloadSize=maxMessageSize,
            autoPingInterval=0,
            failByDrop=False,
        )

    @property
    def xmlStreamFactory(self):
        return self.connectionFactory.xmlStreamFactory

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
        self.connectionFactory.doStart()

    def stopFactory(self):
        self.connectionFactory.doStop()
