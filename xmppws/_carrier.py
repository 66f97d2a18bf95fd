# -*- test-case-name: tests.test_websocket -*-
"""
The WebSocket carrier: what the server and client Autobahn protocols
share to carry one stream handler (an L{xmppws.iwebsocket.IMessageHandler})
over a WebSocket, through Autobahn's public interface.

L{WebSocketCarrier} is the L{xmppws.iwebsocket.ICarrier} the handler
writes to: one write is one text message.  L{CarrierCallbacks} holds the
Autobahn callbacks both protocols override to feed it: every message, the
size of each message as its frames begin (so an oversized one is refused
before its payload is buffered), binary messages, raw bytes (signs of
life), the close.

What this relies on beyond Autobahn's documented interface is listed in
C{docs/adapter.rst} and covered by C{tests.test_autobahn}.
"""

import struct

from twisted.internet import abstract
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.python.failure import Failure
from zope.interface import implementer

from xmppws.iwebsocket import ICarrier

__all__ = ["CarrierCallbacks", "ReactorTimer", "WebSocketCarrier"]

CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_MESSAGE_TOO_BIG = 1009

# Headers of final text frames with payloads under 126 bytes.
_SHORT = [bytes((0x81, length)) for length in range(126)]

#: The most bytes handed to Autobahn at once.  Autobahn cuts every frame
#: off the front of its receive buffer by slicing, which copies the rest
#: of the buffer: a 64 KiB read of a hundred small frames copied megabytes
#: and, thrashing the processor's caches, made everything else about a
#: third dearer per message under load.  A read is handed over in slices
#: of this size; what is left of a slice stays small.
READ_SLICE = 16384


class _Call:
    """
    A timer call Autobahn may cancel whether or not it already ran.
    """

    def __init__(self, call):
        self._call = call

    def cancel(self):
        if self._call.active():
            self._call.cancel()


class ReactorTimer:
    """
    Autobahn's protocol timers (the opening and closing handshake
    timeouts) on a given reactor, in place of the factory's batched timer
    on txaio's global loop.
    """

    def __init__(self, reactor):
        self._reactor = reactor

    def call_later(self, delay, function, *args, **kwargs):
        return _Call(self._reactor.callLater(delay, function, *args, **kwargs))


class _TransportWatch:
    """
    The producer a carrier registers with the TCP (or TLS) transport under
    the WebSocket: it hears when the peer stops reading.
    """

    def __init__(self, carrier):
        self._carrier = carrier

    def pauseProducing(self):
        producer = self._carrier.producer
        if producer is not None:
            producer.pauseProducing()

    def resumeProducing(self):
        producer = self._carrier.producer
        if producer is not None:
            producer.resumeProducing()

    def stopProducing(self):
        pass


@implementer(ICarrier)
class WebSocketCarrier:
    """
    One open WebSocket, as the transport of the stream handler it carries.

    @ivar handler: the L{xmppws.iwebsocket.IMessageHandler}, once attached.
    @ivar producer: the producer the handler registered (paused while the
        peer does not read), or L{None}.
    @ivar maxMessageSize: the largest inbound message, in bytes.
    @ivar closeCode: the WebSocket close code, once closed.
    @ivar refused: C{True} once an inbound message was refused; the rest
        of the connection's messages are dropped.
    """

    kind = "websocket"
    messageOriented = True
    handler = None
    producer = None
    streaming = None
    closeCode = None
    refused = False

    def __init__(self, protocol, peer, secure, origin, path, maxMessageSize, frames=False):
        """
        @param protocol: the Autobahn protocol, open.
        @param peer: the client's address (behind a trusted proxy, the one
            the proxy reported).
        @param secure: whether the WebSocket arrived over TLS, directly or
            through a trusted proxy.
        @param origin: the request's C{Origin}, or L{None}.
        @param path: the request's path.
        @param maxMessageSize: the largest inbound message, in bytes.
        @param frames: encode outbound text frames here (a server, whose
            frames are not masked, without compression) instead of through
            Autobahn's C{sendMessage}.
        """
        self._protocol = protocol
        self._frames = frames
        self._peer = peer
        self.secure = secure
        self.origin = origin
        self.path = path
        self.maxMessageSize = maxMessageSize
        self._open = True
        self._messageSize = 0
        transport = protocol.transport
        watch = _TransportWatch(self)
        try:
            transport.registerProducer(watch, True)
        except RuntimeError:
            # The HTTP channel that handed the connection over to the
            # WebSocket resource is still registered.
            transport.unregisterProducer()
            transport.registerProducer(watch, True)

    def attach(self, handler):
        """
        Start carrying C{handler}.
        """
        self.handler = handler
        handler.makeConnection(self)

    # ITransport

    def write(self, data):
        """
        Send one text message, unless the WebSocket is closing (after a
        close frame, RFC 6455 allows no more data).
        """
        protocol = self._protocol
        if protocol.state != protocol.STATE_OPEN:
            return
        if not self._frames:
            protocol.sendMessage(data, isBinary=False)
            return
        # One unfragmented, unmasked text frame (RFC 6455 section 5.2):
        # what Autobahn's sendMessage writes for a server, without its
        # per-message bookkeeping and debug-log formatting.
        length = len(data)
        if length < 126:
            header = _SHORT[length]
        elif length < 65536:
            header = struct.pack("!BBH", 0x81, 126, length)
        else:
            header = struct.pack("!BBQ", 0x81, 127, length)
        protocol.transport.write(header + data)

    def writeSequence(self, data):
        for chunk in data:
            self.write(chunk)

    def loseConnection(self):
        self.closeWith(CLOSE_NORMAL)

    def closeWith(self, code, reason=None):
        """
        Start the WebSocket closing handshake with C{code}.
        """
        if not self._open:
            return
        self._open = False
        protocol = self._protocol
        if protocol.state != protocol.STATE_OPEN:
            # Closing already (the peer's close frame came first).
            return
        if code == CLOSE_NORMAL:
            self._protocol.sendClose(code=code, reason=reason)
        else:
            # sendClose accepts only 1000 and 3000-4999; the protocol
            # codes (1003, 1009, 1011) go through sendCloseFrame.
            encoded = (reason or "").encode("utf-8")[:123]
            self._protocol.sendCloseFrame(
                code=code,
                reasonUtf8=encoded.decode("utf-8", "ignore").encode("utf-8") or None,
                isReply=False,
            )

    def abortConnection(self):
        self._open = False
        self._protocol.dropConnection(abort=True)

    def getPeer(self):
        return self._peer

    def getHost(self):
        return self._protocol.transport.getHost()

    def getPeerCertificate(self):
        getter = getattr(self._protocol.transport, "getPeerCertificate", None)
        return getter() if getter is not None else None

    def ping(self):
        protocol = self._protocol
        if not self._open or protocol.state != protocol.STATE_OPEN:
            return False
        protocol.sendPing()
        return True

    # IPushProducer: reading from the peer.

    def pauseProducing(self):
        self._protocol.transport.pauseProducing()

    def resumeProducing(self):
        self._protocol.transport.resumeProducing()

    def stopProducing(self):
        self.abortConnection()

    # IConsumer: the handler hears when the peer stops reading.

    def registerProducer(self, producer, streaming):
        self.producer = producer
        self.streaming = streaming

    def unregisterProducer(self):
        self.producer = None
        self.streaming = None

    # From the protocol

    def bytesReceived(self, count):
        if self.handler is not None:
            self.handler.bytesReceived(count)

    def readDone(self):
        handler = self.handler
        if handler is not None:
            handler.readDone()

    def messageBegins(self, isBinary):
        """
        @return: whether the message is accepted.
        """
        self._messageSize = 0
        if self.refused:
            return False
        if isBinary:
            self._refuse(
                CLOSE_UNSUPPORTED_DATA, "XMPP travels in WebSocket text frames only."
            )
            return False
        return True

    def frameBegins(self, length):
        """
        @return: whether the frame is accepted: the message it belongs to
            stays within the size limit.
        """
        if self.refused:
            return False
        self._messageSize += length
        if self._messageSize > self.maxMessageSize:
            self._refuse(
                CLOSE_MESSAGE_TOO_BIG,
                "Messages are limited to %d bytes." % (self.maxMessageSize,),
            )
            return False
        return True

    def _refuse(self, code, text):
        self.refused = True
        if self.handler is not None:
            self.handler.messageRefused(code, text)
        else:
            self.closeWith(code, text)

    def messageReceived(self, payload):
        if self.handler is not None and not self.refused:
            self.handler.dataReceived(payload)

    def closed(self, wasClean, code):
        """
        The WebSocket closed.
        """
        self._open = False
        self.closeCode = code
        if wasClean:
            reason = Failure(ConnectionDone("WebSocket closed cleanly (code %s)" % (code,)))
        else:
            reason = Failure(ConnectionLost("WebSocket closed (code %s)" % (code,)))
        handler, self.handler = self.handler, None
        self.producer = None
        if handler is not None:
            handler.connectionLost(reason)


class CarrierCallbacks:
    """
    The Autobahn callbacks the server and client protocols override to
    feed their L{WebSocketCarrier} (C{self.carrier}): all of them public
    Autobahn interface (C{IWebSocketChannel} and its frame-level
    streaming API).

    Messages are assembled here from their frames, so that a message is
    refused as the frame that takes it over the limit begins, and so that
    a message reaches the carrier without Autobahn's per-message event
    machinery (its C{onMessageEnd} fires an observable event through a
    Deferred for every message).

    @ivar carrier: the L{WebSocketCarrier}, once the WebSocket is open.
    """

    carrier = None
    _dropping = False
    _frames = None

    def connectionMade(self):
        # Reads of at most READ_SLICE from the socket too: under load a
        # 64 KiB read of small frames is handled in one go, and keeps the
        # other connections waiting that long.  The transport's write
        # buffer, past which it tells its producer to pause, is the same
        # size (Twisted's bufferSize serves both).
        transport = self.transport
        if isinstance(transport, abstract.FileDescriptor):
            transport.bufferSize = READ_SLICE
        super().connectionMade()

    def dataReceived(self, data):
        carrier = self.carrier
        if carrier is not None:
            carrier.bytesReceived(len(data))
        # See READ_SLICE; a read no larger than a slice goes as it is
        # (slicing all of a bytes object copies nothing).
        for start in range(0, len(data), READ_SLICE):
            super().dataReceived(data[start : start + READ_SLICE])
        if carrier is not None:
            carrier.readDone()

    def onMessageBegin(self, isBinary):
        super().onMessageBegin(isBinary)
        carrier = self.carrier
        self._frames = []
        self._dropping = carrier is None or not carrier.messageBegins(isBinary)

    def onMessageFrameBegin(self, length):
        if not self._dropping and not self.carrier.frameBegins(length):
            self._dropping = True

    def onMessageFrameData(self, payload):
        if not self._dropping:
            self._frames.append(payload)

    def onMessageFrameEnd(self):
        pass

    def onMessageEnd(self):
        frames, self._frames = self._frames, None
        if self._dropping:
            self._dropping = False
            return
        payload = frames[0] if len(frames) == 1 else b"".join(frames)
        self.carrier.messageReceived(payload)

    def dropConnection(self, abort=False):
        """
        Drop the TCP connection; once the closing handshake completed,
        flush what is buffered (the last C{<close/>}) instead of resetting
        it away, as Autobahn's server would.
        """
        if abort and self.wasClean:
            abort = False
        super().dropConnection(abort)

    def onClose(self, wasClean, code, reason):
        # Autobahn cancels its other timers when the connection is lost,
        # not the closing handshake's: a peer gone before it answered our
        # close frame would keep this protocol referenced for that long.
        call = self.closeHandshakeTimeoutCall
        if call is not None:
            self.closeHandshakeTimeoutCall = None
            call.cancel()
        carrier = self.carrier
        if carrier is not None:
            carrier.closed(wasClean, code)
