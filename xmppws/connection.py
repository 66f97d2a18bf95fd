# -*- test-case-name: tests.test_connection -*-
"""
The connection: one object that hosts an unmodified C{XmlStream} on a
carrier (a WebSocket or a TCP connection) and is its transport, as
Twisted's C{ProtocolWrapper} is the transport of the protocol it wraps.

    carrier -> XmlStreamConnection -> framing -> XmlStream -> server

Everything about the stream that does not depend on what carries it lives
here, once: the framing and the order of header, elements and footer; one
way to send a stream error (through C{XmlStream.sendStreamError}); closing
the stream before the connection; the timers (L{xmppws.policies.Watchdog})
and the rate limits (L{xmppws.policies.ReadThrottle}); flow control; byte
counts and the log line at each end.

Inbound, each element is checked and built in one parse and handed to the
C{XmlStream}'s event handlers as its own parser would have.  Outbound, an
element the C{XmlStream} serialised whole is sent as written.

What the stream writes is sent by a L{xmppws.output.StreamOutput}; flow
control (a peer that does not read holds up those writing to it, until
C{stallTimeout}) is a L{xmppws.flow.FlowControl}.  Nothing is lost on the
way: what was read is written, and memory stays bounded by what one read
can bring.
"""

import time
import uuid

from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import ITLSTransport
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber.error import StreamError
from twisted.words.xish import domish
from twisted.words.xish import xmlstream as xish
from zope.interface import directlyProvides, implementer

from xmppws.framing import (
    NS_STREAMS,
    FramingError,
    RFC7395Framing,
    StreamFraming,
    detectFraming,
    streamErrorElement,
)
from xmppws.iwebsocket import (
    PING_EVENT,
    IConnection,
    IFramingReceiver,
    IMessageHandler,
    IXMPPTransport,
)
from xmppws.logs import formatAddress
from xmppws.output import StreamOutput
from xmppws.policies import ClientPolicies

__all__ = [
    "CLOSE_INTERNAL_ERROR",
    "CLOSE_MESSAGE_TOO_BIG",
    "CLOSE_NORMAL",
    "CLOSE_UNSUPPORTED_DATA",
    "ConnectionFactory",
    "SHUTDOWN_TEXT",
    "StreamErrorSent",
    "XmlStreamConnection",
]

CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011

SHUTDOWN_TEXT = "The server is shutting down."
STANZAS = frozenset(("message", "presence", "iq"))
_KINDS = {"websocket": "WebSocket", "tcp": "TCP"}


class StreamErrorSent(ConnectionLost):
    """
    The connection ended because this side sent a stream error.

    @ivar condition: the stream error condition, such as
        C{'not-well-formed'}.
    @ivar text: its explanation, or L{None}.
    """

    def __init__(self, condition, text=None):
        ConnectionLost.__init__(self, "stream error sent: %s" % (condition,))
        self.condition = condition
        self.text = text


class ConnectionFactory(Factory):
    """
    Build an L{XmlStreamConnection} for each connection a carrier accepts
    (or makes), hosting a stream from C{xmlStreamFactory}, with one set of
    policies for WebSocket and TCP alike.

    @ivar xmlStreamFactory: builds one C{XmlStream} per connection.
    @ivar clock: the C{IReactorTime} every timer runs on.
    @ivar contentNamespace: the stream's content namespace, or L{None} for
        the one the stream's authenticator declares (C{jabber:client} when
        it declares none).
    @ivar lang: the C{xml:lang} of this side's stream header, when the
        C{XmlStream} sets none.
    @ivar initiating: C{True} on the client side.
    @ivar framing: on the client side, the framing class to speak.
    @ivar monitor: an L{xmppws._connections.ConnectionMonitor}, or
        L{None}.
    @ivar policies: the L{xmppws.policies.ClientPolicies} every connection
        is held to.
    """

    protocol = None

    def __init__(
        self,
        xmlStreamFactory,
        clock,
        *,
        contentNamespace=None,
        lang="en",
        initiating=False,
        framing=RFC7395Framing,
        monitor=None,
        **policies,
    ):
        """
        @param policies: the keyword arguments of
            L{xmppws.policies.ClientPolicies}: its limits and timers.
        """
        self.xmlStreamFactory = xmlStreamFactory
        self.clock = clock
        self.contentNamespace = contentNamespace
        self.lang = lang
        self.initiating = initiating
        self.framing = framing
        self.monitor = monitor
        self.policies = ClientPolicies(**policies)

    def buildProtocol(self, addr):
        """
        @param addr: the peer's address (behind a trusted proxy, the
            address the proxy reported); the C{XmlStream} factory gets it.
        @rtype: L{XmlStreamConnection}
        """
        return XmlStreamConnection(self, addr)

    def buildRefusal(self, addr, condition, text):
        """
        A connection that answers with a stream error and closes, for a
        peer over the connection limits.

        @rtype: L{XmlStreamConnection}
        """
        connection = XmlStreamConnection(self, addr)
        connection.refusal = (condition, text)
        return connection

    def startFactory(self):
        self.xmlStreamFactory.doStart()

    def stopFactory(self):
        self.xmlStreamFactory.doStop()


@implementer(IMessageHandler, IFramingReceiver, IXMPPTransport, IConnection)
class XmlStreamConnection(Protocol):
    """
    One connection hosting one C{XmlStream}: the handler of its carrier
    (C{self.transport}), and the transport of its C{XmlStream}.

    @ivar xmlStream: the hosted C{XmlStream}, or L{None} before it is
        built and after the connection ended.
    @ivar framing: the L{xmppws.iwebsocket.IFraming}, or L{None} until a
        WebSocket client chose one.
    @ivar refusal: C{(condition, text)} of the stream error this
        connection answers with instead of hosting a stream, or L{None}.
    @ivar closeReason: why the connection ended, for the log.
    @ivar disconnecting: C{True} once the stream is being closed.
    @ivar bytesIn: bytes received (WebSocket message payloads, or TCP
        bytes).
    @ivar bytesOut: bytes sent, likewise.
    @ivar peerJID: the peer's address as its stream knew it when the
        connection ended (C{otherEntity}), or L{None}.
    """

    log = Logger()

    xmlStream = None
    framing = None
    refusal = None
    closeReason = None
    disconnecting = False
    bytesIn = 0
    bytesOut = 0
    peerJID = None

    _inOpen = False
    _inClosed = False
    _errorSent = None
    _inputBroken = False
    _closeCode = CLOSE_NORMAL
    _seeOther = None
    _xsParser = None
    _direct = True
    _requestedDomain = None
    _closer = None
    _throttle = None
    _watchdog = None
    _flow = None

    def __init__(self, factory, address):
        self.factory = factory
        self._address = address
        self._startedAt = None
        self._output = StreamOutput(
            self._send,
            self._outNamespace,
            factory.initiating,
            factory.lang,
            self._stanzaSent,
            self._streamErrorNoted,
            self._outputError,
        )

    # IConnection

    @property
    def kind(self):
        return self.transport.kind if self.transport is not None else None

    @property
    def framingName(self):
        return self.framing.name if self.framing is not None else "none"

    @property
    def secure(self):
        return bool(self.transport is not None and self.transport.secure)

    @property
    def origin(self):
        return self.transport.origin if self.transport is not None else None

    @property
    def path(self):
        return self.transport.path if self.transport is not None else None

    # Starting

    def connectionMade(self):
        carrier = self.transport
        factory = self.factory
        self._startedAt = time.monotonic()
        if ITLSTransport.providedBy(carrier):
            directlyProvides(self, ITLSTransport)
        self._throttle, self._watchdog, self._flow = factory.policies.attach(
            factory.clock, carrier, self._timedOut, self._ping, self._stalled
        )
        self.log.info(
            "XMPP over {kind} from {peer} open",
            kind=_KINDS.get(carrier.kind, carrier.kind),
            peer=formatAddress(carrier.getPeer()),
            secure=carrier.secure,
            origin=carrier.origin,
        )
        if self.refusal is not None:
            self._newFraming()
            self._streamError(*self.refusal)
            return
        try:
            xs = factory.xmlStreamFactory.buildProtocol(self._address)
        except Exception:
            self.log.failure("The stream factory failed for {peer}", peer=carrier.getPeer())
            xs = None
        if xs is None:
            self.closeReason = "no stream handler"
            self.disconnecting = True
            carrier.closeWith(CLOSE_INTERNAL_ERROR, "no stream handler")
            return
        self.xmlStream = xs
        self._direct = getattr(type(xs), "dataReceived", None) is xish.XmlStream.dataReceived
        if factory.initiating or not carrier.messageOriented:
            self._newFraming()
        self._watchdog.start()
        try:
            xs.makeConnection(self)
        except Exception:
            self.log.failure("The stream failed to start for {peer}", peer=carrier.getPeer())
            self._streamError("internal-server-error")
            return
        if factory.monitor is not None:
            factory.monitor.connectionOpened(self)

    def _newFraming(self, framingClass=None):
        """
        Choose the framing: the configured one on the client side, RFC 6120
        on TCP, or C{framingClass} (what the client's first message chose).
        """
        if framingClass is None:
            if not self.transport.messageOriented:
                self.framing = self._output.framing = StreamFraming(
                    self, self._namespace(), maxElementSize=self.factory.policies.maxElementSize
                )
                return
            framingClass = self.factory.framing if self.factory.initiating else RFC7395Framing
        self.framing = self._output.framing = framingClass(self, self._namespace())

    def _namespace(self):
        """
        The stream's content namespace: configured, else the one the
        stream's authenticator declares, else C{jabber:client}.
        """
        if self.factory.contentNamespace:
            return self.factory.contentNamespace
        authenticator = getattr(self.xmlStream, "authenticator", None)
        return getattr(authenticator, "namespace", None) or "jabber:client"

    def _outNamespace(self):
        namespace = getattr(self.xmlStream, "namespace", None)
        if namespace and namespace != "invalid":
            return namespace
        return self._namespace()

    # Inbound, from the carrier

    def bytesReceived(self, count):
        """
        Raw bytes arrived from the peer: a sign of life, counted against
        the byte rate.
        """
        if self._watchdog is not None:
            self._watchdog.activity()
            self._throttle.bytesReceived(count)

    def dataReceived(self, data):
        """
        One WebSocket message, or bytes from TCP.
        """
        self.bytesIn += len(data)
        xs = self.xmlStream
        # After a stream error, input is still read for the peer's footer,
        # but no element reaches the stream.
        if xs is None or self._inClosed:
            return
        if xs.rawDataInFn is not None:
            xs.rawDataInFn(data)
        self._checkRestart()
        try:
            if self.framing is None:
                self._newFraming(detectFraming(data))
                self.log.info(
                    "{peer} speaks {framing} framing",
                    peer=formatAddress(self.transport.getPeer()),
                    framing=self.framing.name,
                )
            self.framing.dataReceived(data)
        except FramingError as e:
            # The input cannot be read any further, not even for the
            # peer's footer: the connection closes without waiting for it.
            self._inputBroken = True
            if self._closer is not None:
                self._finishClose()
                return
            self.log.info(
                "{peer} sent bad input ({condition}): {text}",
                peer=formatAddress(self.transport.getPeer()),
                condition=e.condition,
                text=e.text,
            )
            self._streamError(e.condition, e.text)

    def readDone(self):
        framing = self.framing
        if framing is not None:
            framing.readDone()

    def messageRefused(self, code, text):
        if code == CLOSE_MESSAGE_TOO_BIG:
            self._streamError("policy-violation", text, code)
        else:
            self._streamError("unsupported-encoding", text, code)

    def _checkRestart(self):
        """
        Tell the framing when the C{XmlStream} restarted its stream (after
        STARTTLS or SASL): it replaces its parser then.
        """
        parser = self._xsParser
        if parser is not None and self.xmlStream.stream is not parser:
            self._xsParser = None
            self._inOpen = False
            self.framing.restart()

    # Inbound, from the framing (IFramingReceiver)

    def streamOpened(self, root):
        xs = self.xmlStream
        if xs is None or self._errorSent is not None or self.disconnecting:
            return
        self._watchdog.streamOpened()
        self._inOpen = True
        self._requestedDomain = root.getAttribute("to")
        if self._direct:
            self._xsParser = xs.stream
            self._deliver(xs.stream.DocumentStartEvent, root)
        else:
            self._deliver(
                xs.dataReceived,
                root.toXml(prefixes={NS_STREAMS: "stream"}, closeElement=0).encode("utf-8"),
            )
            self._xsParser = xs.stream

    def elementReceived(self, element):
        xs = self.xmlStream
        if xs is None or self._errorSent is not None:
            return
        monitor = self.factory.monitor
        if monitor is not None and element.name in STANZAS:
            monitor.stanzaReceived(self)
        self._throttle.stanzaReceived()
        flow = self._flow
        flow.dispatching()
        try:
            if self._direct:
                self._deliver(xs.stream.ElementEvent, element)
            else:
                self._deliver(xs.dataReceived, element.toXml().encode("utf-8"))
        finally:
            flow.dispatched()
        if self.xmlStream is not None:
            self._checkRestart()

    def streamClosed(self):
        xs = self.xmlStream
        if xs is None or self._inClosed:
            return
        self._inClosed = True
        if self._errorSent is None:
            if self._direct:
                self._deliver(xs.stream.DocumentEndEvent)
            else:
                self._deliver(xs.dataReceived, b"</stream:stream>")
        if self._closer is not None:
            self._finishClose()

    def _deliver(self, handler, *args):
        try:
            handler(*args)
        except Exception:
            self.log.failure(
                "The stream handler failed for {peer}",
                peer=formatAddress(self.transport.getPeer()),
            )
            self._streamError("internal-server-error")

    # Outbound (ITransport for the XmlStream)

    def write(self, data):
        """
        Take what the C{XmlStream} wrote and send it in the connection's
        framing.

        @type data: L{bytes}
        """
        if self.framing is None:
            self._newFraming()
        self._output.write(data)

    def writeSequence(self, data):
        for chunk in data:
            self.write(chunk)

    def _send(self, data):
        self.bytesOut += len(data)
        self._flow.written()
        self.transport.write(data)

    def _stanzaSent(self):
        monitor = self.factory.monitor
        if monitor is not None:
            monitor.stanzaSent(self)

    def _streamErrorNoted(self, condition):
        """
        Stream code sent a stream error on its own (an authenticator's
        C{host-unknown}): count it as if sent through L{_streamError}.
        """
        if self._errorSent is not None:
            return
        self._errorSent = condition
        self.closeReason = "stream error: " + condition
        monitor = self.factory.monitor
        if monitor is not None:
            monitor.streamErrorSent(self, condition)

    def _outputError(self, reason):
        self.log.error(
            "The stream handler wrote bad XML to {peer}: {reason}",
            peer=formatAddress(self.transport.getPeer()),
            reason=reason,
        )
        self._streamError("internal-server-error")

    # Closing

    def loseConnection(self):
        """
        Close the stream (with its footer, if the C{XmlStream} did not send
        it) and then the connection.
        """
        if self.disconnecting:
            return
        self.disconnecting = True
        self._closeXMPP()
        self._closeCarrier()

    def abortConnection(self):
        """
        Drop the connection at once.
        """
        self.disconnecting = True
        if self.closeReason is None:
            self.closeReason = "aborted"
        self.transport.abortConnection()

    def closeStream(self, seeOtherURI=None):
        if seeOtherURI is not None:
            if not seeOtherURI.startswith(("ws://", "wss://")):
                raise ValueError("see-other-uri must be a ws: or wss: URI")
            if self.secure and not seeOtherURI.startswith("wss://"):
                raise ValueError("see-other-uri must not downgrade to ws:")
        self.closeReason = "closed by server"
        self._seeOther = seeOtherURI
        self.loseConnection()

    def closeForShutdown(self, seeOtherURI=None):
        if self.disconnecting:
            return
        if (
            seeOtherURI is not None
            and self.transport.messageOriented
            and self.framingName in ("none", "rfc7395")
        ):
            try:
                self.closeStream(seeOtherURI)
            except ValueError:
                pass
            else:
                self.closeReason = "server shutdown"
                return
        self._streamError("system-shutdown", SHUTDOWN_TEXT)
        self.closeReason = "server shutdown"

    def _closeXMPP(self):
        """
        Send this side's footer, once.
        """
        if self.framing is None:
            self._newFraming()
        self._output.close(self._seeOther)

    def _closeCarrier(self):
        self._watchdog.stop()
        if (
            not self.transport.messageOriented
            and self._inOpen
            and not self._inClosed
            and not self._inputBroken
            and self.factory.policies.closeTimeout
        ):
            # RFC 6120 section 4.4: give the peer the time to close its
            # stream too.
            self._closer = self.factory.clock.callLater(
                self.factory.policies.closeTimeout, self._finishClose
            )
            return
        self._finishClose()

    def _finishClose(self):
        if self._closer is not None and self._closer.active():
            self._closer.cancel()
        self._closer = None
        code = self._closeCode
        self.transport.closeWith(code, None if code == CLOSE_NORMAL else self.closeReason)

    def _streamError(self, condition, text=None, code=CLOSE_NORMAL):
        """
        The one way this connection ends a stream with an error: through
        the C{XmlStream}'s own C{sendStreamError} (which sends the header
        first if none went out, the error and the footer), then the close.
        """
        output = self._output
        if self._errorSent is not None or output.closed:
            if not self.disconnecting:
                self.loseConnection()
            return
        self._errorSent = condition
        self.closeReason = "stream error: " + condition
        self._closeCode = code
        monitor = self.factory.monitor
        if monitor is not None:
            monitor.streamErrorSent(self, condition)
        xs = self.xmlStream
        sendStreamError = getattr(xs, "sendStreamError", None)
        if sendStreamError is not None and xs.transport is self:
            if getattr(xs, "namespace", None) in (None, "invalid"):
                xs.namespace = self._namespace()
            try:
                sendStreamError(StreamError(condition, text))
            except Exception:
                self.log.failure("The stream failed to send a stream error")
        if not output.closed:
            if self.framing is None:
                self._newFraming()
            if not output.opened and not self.factory.initiating:
                self._sendOwnHeader()
            if output.opened:
                output.sendElement(streamErrorElement(condition, text))
        self.loseConnection()

    def _sendOwnHeader(self):
        root = domish.Element(
            (NS_STREAMS, "stream"), self._namespace(), localPrefixes={"stream": NS_STREAMS}
        )
        if self._requestedDomain:
            root["from"] = self._requestedDomain
        root["id"] = uuid.uuid4().hex
        root["version"] = "1.0"
        self._output.sendHeader(root)

    # Timers

    def _timedOut(self, text):
        self.log.info(
            "{peer}: {text}", peer=formatAddress(self.transport.getPeer()), text=text
        )
        self._streamError("connection-timeout", text)

    def _ping(self):
        """
        Check a quiet peer: a WebSocket ping, else whoever handles
        L{PING_EVENT} on the stream (an XEP-0199 ping), else a whitespace
        keepalive.

        @return: C{True} if an answer is to be expected.
        """
        if self.disconnecting:
            return False
        if self.transport.ping():
            return True
        xs = self.xmlStream
        if xs is not None and xs.dispatch(xs, PING_EVENT):
            return True
        if self._output.opened and not self._output.closed and not self.transport.messageOriented:
            self._send(b" ")
        return False

    @property
    def readingPaused(self):
        """
        C{True} while reading from the peer is paused, whatever the reason.
        """
        return self._flow is not None and self._flow.paused

    # IPushProducer: stream code pausing this transport stops reading.

    def pauseProducing(self):
        self._flow.pause("stream")

    def resumeProducing(self):
        self._flow.resume("stream")

    def stopProducing(self):
        self.abortConnection()

    # IConsumer: a producer stream code registers is paused while the
    # peer does not read.

    @property
    def producer(self):
        return self._flow.producer if self._flow is not None else None

    @property
    def streaming(self):
        return self._flow.streaming if self._flow is not None else None

    def registerProducer(self, producer, streaming):
        """
        @raise RuntimeError: if another producer is registered.
        """
        self._flow.registerProducer(producer, streaming)

    def unregisterProducer(self):
        if self._flow is not None:
            self._flow.unregisterProducer()

    def _stalled(self):
        self.log.info(
            "{peer} did not read for {timeout} seconds",
            peer=formatAddress(self.transport.getPeer()),
            timeout=self.factory.policies.stallTimeout,
        )
        self._streamError("connection-timeout", "The peer does not read what is sent to it.")
        self.abortConnection()

    # The rest of ITransport

    def getPeer(self):
        """
        @return: the peer's address; behind a trusted proxy, the address
            the proxy reported.
        """
        return self.transport.getPeer()

    def getHost(self):
        return self.transport.getHost()

    def getPeerCertificate(self):
        """
        @return: the peer's TLS certificate, or L{None}.
        """
        getter = getattr(self.transport, "getPeerCertificate", None)
        return getter() if getter is not None else None

    def startTLS(self, contextFactory, normal=True):
        """
        Start TLS on the carrier (STARTTLS, on TCP).

        @raise RuntimeError: on a carrier without TLS (a WebSocket).
        """
        if not ITLSTransport.providedBy(self.transport):
            raise RuntimeError("this connection cannot start TLS")
        self.transport.startTLS(contextFactory, normal)

    # Ending

    def connectionLost(self, reason=None):
        """
        The carrier is gone: tell the C{XmlStream}, always with a
        L{Failure} saying how the stream ended.
        """
        for policy in (self._watchdog, self._throttle, self._flow):
            if policy is not None:
                policy.stop()
        if self._closer is not None and self._closer.active():
            self._closer.cancel()
        self._closer = None
        self.disconnecting = True
        code = getattr(self.transport, "closeCode", None)
        clean = reason is not None and reason.check(ConnectionDone) is not None
        if self._errorSent is not None:
            failure = Failure(StreamErrorSent(self._errorSent))
        elif (self._inClosed and self._output.closed) or (
            clean and (self._inClosed or self._output.closed)
        ):
            failure = Failure(ConnectionDone("XMPP stream closed"))
        else:
            failure = Failure(
                ConnectionLost(
                    "%s closed (%s) before the XMPP stream was closed"
                    % (
                        self.kind or "connection",
                        "code %s" % (code,) if code is not None else
                        (reason.getErrorMessage() if reason is not None else "no reason"),
                    )
                )
            )
        if self.closeReason is None:
            self.closeReason = failure.getErrorMessage()
        self._output.closed = True
        xs, self.xmlStream = self.xmlStream, None
        if xs is not None:
            other = getattr(xs, "otherEntity", None)
            self.peerJID = other.full() if hasattr(other, "full") else other
            try:
                xs.connectionLost(failure)
            except Exception:
                self.log.failure("The stream handler failed on disconnect")
        monitor = self.factory.monitor
        if monitor is not None:
            monitor.connectionClosed(self)
        self.log.info(
            "XMPP over {kind} from {peer} closed: {reason} (code {code}, "
            "framing {framing}, {duration:.1f}s, {bytesIn} bytes in, "
            "{bytesOut} bytes out)",
            kind=_KINDS.get(self.kind, self.kind),
            peer=formatAddress(self.transport.getPeer()),
            origin=self.origin,
            jid=self.peerJID,
            reason=self.closeReason,
            code=code,
            framing=self.framingName,
            duration=time.monotonic() - self._startedAt if self._startedAt else 0.0,
            bytesIn=self.bytesIn,
            bytesOut=self.bytesOut,
        )
