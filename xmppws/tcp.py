# -*- test-case-name: tests.test_tcp -*-
"""
The TCP carrier: plain XMPP (RFC 6120, with STARTTLS or direct TLS) under
the same connection as WebSocket, so one set of policies serves both.

L{StreamCarrier} is a C{ProtocolWrapper}: the connection it wraps sees it
as its transport (an L{xmppws.iwebsocket.ICarrier}), and it passes bytes
through both ways.  L{StreamCarrierFactory} is the matching
C{WrappingFactory}; with a monitor, it admits each connection against the
connection limits and answers one over them with a stream error.

    factory = StreamCarrierFactory(ConnectionFactory(xmlStreamFactory, reactor))
    endpoint.listen(factory)
"""

from twisted.internet.interfaces import ISSLTransport
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from zope.interface import implementer

from xmppws.iwebsocket import ICarrier

__all__ = ["StreamCarrier", "StreamCarrierFactory"]

_NOT_ADMITTED = object()


@implementer(ICarrier)
class StreamCarrier(ProtocolWrapper):
    """
    A TCP (or TLS) connection carrying one stream handler.

    @ivar admission: the key its monitor admitted it with, if any.
    """

    kind = "tcp"
    messageOriented = False
    origin = None
    path = None
    closeCode = None
    admission = _NOT_ADMITTED

    @property
    def secure(self):
        """
        C{True} once the connection is encrypted (direct TLS or STARTTLS).
        """
        return ISSLTransport.providedBy(self.transport)

    def dataReceived(self, data):
        handler = self.wrappedProtocol
        handler.bytesReceived(len(data))
        handler.dataReceived(data)
        handler.readDone()

    def closeWith(self, code, reason=None):
        """
        Close once what was written is sent; TCP has no close codes.
        """
        self.loseConnection()

    def ping(self):
        """
        TCP has no ping of its own.
        """
        return False

    def pauseProducing(self):
        self.transport.pauseProducing()

    def resumeProducing(self):
        self.transport.resumeProducing()

    def stopProducing(self):
        self.transport.stopProducing()

    def abortConnection(self):
        self.transport.abortConnection()

    def startTLS(self, contextFactory, normal=True):
        self.transport.startTLS(contextFactory, normal)


class StreamCarrierFactory(WrappingFactory):
    """
    Carry the handlers a connection factory builds over TCP, within the
    connection limits of an optional monitor.

    @ivar monitor: the L{xmppws._connections.ConnectionMonitor}, or
        L{None}.
    """

    protocol = StreamCarrier

    def __init__(self, wrappedFactory, monitor=None):
        """
        @param wrappedFactory: an L{xmppws.connection.ConnectionFactory}
            (or any factory of handlers with a C{buildRefusal}).
        """
        WrappingFactory.__init__(self, wrappedFactory)
        self.monitor = monitor

    def buildProtocol(self, addr):
        monitor = self.monitor
        if monitor is None:
            return WrappingFactory.buildProtocol(self, addr)
        refused, key = monitor.admit(addr, addr, StreamCarrier.kind)
        if refused is not None:
            condition, text = monitor.refusal(refused)
            return self.protocol(
                self, self.wrappedFactory.buildRefusal(addr, condition, text)
            )
        carrier = WrappingFactory.buildProtocol(self, addr)
        carrier.admission = key
        return carrier

    def unregisterProtocol(self, p):
        WrappingFactory.unregisterProtocol(self, p)
        if p.admission is not _NOT_ADMITTED:
            key, p.admission = p.admission, _NOT_ADMITTED
            self.monitor.release(key)
