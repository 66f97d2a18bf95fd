# -*- test-case-name: tests.test_transport -*-
"""
The transport an unmodified C{XmlStream} writes to when it runs over
WebSocket.

L{XmlStreamTransport} parses what the C{XmlStream} writes back into its
stream header, top-level elements and footer, and hands each to its
WebSocket connection as one message in the connection's framing.  It is
also the flow-control link between the C{XmlStream} and the TCP (or TLS)
transport under the WebSocket.
"""

from twisted.internet.error import ConnectionLost
from twisted.logger import Logger
from twisted.words.xish import domish
from zope.interface import implementer

from xmppws.iwebsocket import IXMPPWebSocketTransport

__all__ = ["StreamErrorSent", "XmlStreamTransport"]

_HEADER_STARTS = (b"<?xml", b"<stream:stream")


class StreamErrorSent(ConnectionLost):
    """
    The connection ended because this side sent a stream error.

    @ivar condition: the stream error condition, such as
        C{'not-well-formed'}.
    @type condition: L{str}
    """

    def __init__(self, condition, text=None):
        ConnectionLost.__init__(self, "stream error sent: %s" % (condition,))
        self.condition = condition
        self.text = text


@implementer(IXMPPWebSocketTransport)
class XmlStreamTransport:
    """
    Adapt a WebSocket connection to the C{ITransport} an C{XmlStream}
    expects.

    @ivar connection: the WebSocket protocol this transport writes to; it
        provides C{_xmppHeader(root)}, C{_xmppElement(element)},
        C{_xmppRawElement(data)} (the fast path for a write that is one
        whole element), C{_xmppFooter()}, C{_xmppLoseConnection(abort)}
        and C{_xmppOutboundError(reason)}.
    @ivar producer: the producer registered with this consumer, or L{None}.
    @ivar disconnecting: C{True} once L{loseConnection} was called.
    @ivar _parser: the parser of what the C{XmlStream} writes.
    @ivar _pausedBy: why reading from the peer is paused: C{'app'} when
        stream code paused this producer, C{'backpressure'} when the
        connection's own output is full.
    """

    log = Logger()

    framing = None
    secure = False
    origin = None
    path = None
    producer = None
    streaming = None
    disconnecting = False
    _producerPaused = False

    def __init__(self, connection, tcpTransport, peer, host):
        """
        @param connection: the WebSocket protocol.
        @param tcpTransport: the transport under the WebSocket.
        @type tcpTransport: L{twisted.internet.interfaces.ITransport}
        @param peer: the address L{getPeer} reports (the real client
            behind a trusted proxy).
        @param host: the address L{getHost} reports.
        """
        self.connection = connection
        self._tcp = tcpTransport
        self._peer = peer
        self._host = host
        self._pausedBy = set()
        self._parser = None
        self._pending = []

    # ITransport

    def write(self, data):
        """
        Take bytes the C{XmlStream} wrote and send what they complete.

        A stream header resets the parser (a stream restart); whitespace
        between elements (keepalives) is dropped, as RFC 7395 requires.

        @type data: L{bytes}
        """
        if self.disconnecting:
            self.log.debug(
                "Dropped {count} bytes written after the stream was closed",
                count=len(data),
            )
            return
        if self._parser is None or self._betweenElements():
            if data.lstrip()[:14].startswith(_HEADER_STARTS):
                self._newParser()
            elif self._parser is not None and self.connection._xmppRawElement(data):
                return
        if self._parser is None:
            self._newParser()
        try:
            self._parser.parse(data)
        except domish.ParserError as e:
            self._parser = None
            self.connection._xmppOutboundError(e)

    def writeSequence(self, data):
        """
        Write each chunk in turn.
        """
        for chunk in data:
            self.write(chunk)

    def loseConnection(self):
        """
        Close the stream (sending the footer if the C{XmlStream} did not)
        and then the WebSocket.
        """
        if not self.disconnecting:
            self.disconnecting = True
            self.connection._xmppLoseConnection(abort=False)

    def abortConnection(self):
        """
        Drop the WebSocket at once.
        """
        self.disconnecting = True
        self.connection._xmppLoseConnection(abort=True)

    def getPeer(self):
        """
        @return: the client's address; behind a trusted proxy, the address
            the proxy reported.
        """
        return self._peer

    def getHost(self):
        return self._host

    def getPeerCertificate(self):
        """
        @return: the peer's TLS certificate, or L{None}.
        """
        getter = getattr(self._tcp, "getPeerCertificate", None)
        return getter() if getter is not None else None

    def closeStream(self, seeOtherURI=None):
        self.connection.closeStream(seeOtherURI)

    # IConsumer

    def registerProducer(self, producer, streaming):
        """
        Register a producer to be paused while the WebSocket's output is
        full, as a TCP transport would.

        @raise RuntimeError: if another producer is registered.
        """
        if self.producer is not None:
            raise RuntimeError(
                "Cannot register producer %r, because %r is still registered"
                % (producer, self.producer)
            )
        self.producer = producer
        self.streaming = streaming
        self._producerPaused = False
        if "backpressure" in self._pausedBy:
            self._pauseProducer()
        elif not streaming:
            producer.resumeProducing()

    def unregisterProducer(self):
        """
        Forget the registered producer, resuming it first if this transport
        paused it: a producer is never left paused by a consumer it no
        longer has.
        """
        producer, self.producer = self.producer, None
        self.streaming = None
        if producer is not None and self._producerPaused:
            self._producerPaused = False
            producer.resumeProducing()

    # IPushProducer: pausing this transport stops reading from its peer.

    def pauseProducing(self):
        self._pause("app")

    def resumeProducing(self):
        self._resume("app")

    def stopProducing(self):
        self.abortConnection()

    # Called by the WebSocket connection.

    def outputFull(self):
        """
        The transport under the WebSocket has more buffered than it wants:
        pause whoever writes into this stream, and stop reading from the
        peer until it drains.
        """
        self._pauseProducer()
        self._pause("backpressure")

    def outputDrained(self):
        """
        The transport under the WebSocket has drained its buffer.
        """
        self._resume("backpressure")
        if self.producer is not None and (self._producerPaused or not self.streaming):
            self._producerPaused = False
            self.producer.resumeProducing()

    def connectionEnded(self):
        """
        The WebSocket is gone: release the registered producer.

        Unlike a TCP transport, this does not stop the producer; another
        session relaying into this one goes on, resumed if it was paused.
        """
        self.disconnecting = True
        self.unregisterProducer()

    def _pauseProducer(self):
        if self.producer is not None and self.streaming and not self._producerPaused:
            self._producerPaused = True
            self.producer.pauseProducing()

    @property
    def readingPaused(self):
        """
        C{True} while reading from the peer is paused.
        """
        return bool(self._pausedBy)

    def _pause(self, reason):
        if not self._pausedBy:
            self._tcp.pauseProducing()
        self._pausedBy.add(reason)

    def _resume(self, reason):
        if reason in self._pausedBy:
            self._pausedBy.discard(reason)
            if not self._pausedBy:
                self._tcp.resumeProducing()

    # The outbound parser.

    def _newParser(self):
        parser = domish.elementStream()
        parser.DocumentStartEvent = self.connection._xmppHeader
        parser.ElementEvent = self.connection._xmppElement
        parser.DocumentEndEvent = self._onFooter
        self._parser = parser

    def _betweenElements(self):
        parser = self._parser
        return parser.documentStarted and parser.currElem is None

    def _onFooter(self):
        self._parser = None
        self.connection._xmppFooter()
