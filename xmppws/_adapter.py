# -*- test-case-name: tests.test_websocket -*-
"""
What the server and client WebSocket protocols share: hosting an
C{XmlStream}, turning messages into its input and its output into
messages, and closing both layers in the right order.
"""

import time
import uuid

import txaio
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.xish import domish, xmlstream

from xmppws.framing import (
    NS_STREAMS,
    FramingError,
    RFC7395Framing,
    streamErrorElement,
)
from xmppws.transport import StreamErrorSent, XmlStreamTransport

__all__ = ["XMPPWebSocketMixin"]

CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011


class _OutputBackpressure:
    """
    The producer registered with the transport under the WebSocket: it
    hears when that transport's write buffer is full or drained.
    """

    def __init__(self, xmppTransport):
        self._xmppTransport = xmppTransport

    def pauseProducing(self):
        self._xmppTransport.outputFull()

    def resumeProducing(self):
        self._xmppTransport.outputDrained()

    def stopProducing(self):
        # The transport calls this as its connection is lost; the
        # WebSocket protocol hears of that itself, so nothing is aborted.
        pass


class _ProtocolLogger(Logger):
    """
    The logger of the WebSocket protocols.  Autobahn's protocol code logs
    through the same C{self.log}, at debug level, every chunk of data and
    the raw opening handshake (cookies and authorization headers
    included); as with Autobahn's own logger, those events are emitted
    only when txaio's log level asks for them.
    """

    def debug(self, format=None, **kwargs):
        if txaio.get_global_log_level() in ("debug", "trace"):
            Logger.debug(self, format, **kwargs)


class XMPPWebSocketMixin:
    """
    Run an C{XmlStream} over an Autobahn WebSocket protocol.

    Mixed into the server and client protocols, which set C{framing}
    (or detect it), C{initiating}, and call L{_startXmlStream} when the
    WebSocket opens.

    @ivar xmlStream: the hosted C{XmlStream}, or L{None} before the
        WebSocket opened.
    @ivar xmppTransport: the L{XmlStreamTransport} it writes to.
    @ivar framing: the connection's L{IFraming}, or L{None} until chosen.
    @ivar initiating: C{True} on the client side.
    @ivar bytesIn: payload bytes received in WebSocket messages.
    @ivar bytesOut: payload bytes sent in WebSocket messages.
    @ivar closeReason: why the connection ended, for the log.
    @ivar jid: the peer's address as the stream knew it when it ended
        (L{_streamJID}), or L{None}.
    """

    log = _ProtocolLogger()

    xmlStream = None
    xmppTransport = None
    framing = None
    initiating = False
    origin = None
    secure = False
    closeReason = None

    _outOpen = False
    _outClosed = False
    _inClosed = False
    _streamError = None
    _fedParser = None
    _openTimer = None
    _startedAt = None
    _requestedDomain = None
    _rawNamespace = None
    jid = None

    bytesIn = 0
    bytesOut = 0

    # Subclass hooks

    def _xmlStreamAddress(self):
        """
        @return: the address passed to the XmlStream factory's
            C{buildProtocol}.
        """
        return self.xmppTransport.getPeer()

    def _contentNamespace(self):
        namespace = getattr(self.xmlStream, "namespace", None)
        if namespace and namespace != "invalid":
            return namespace
        return self.factory.contentNamespace

    # Starting

    def _startXmlStream(self, peer, host):
        """
        Build the C{XmlStream} from the configured factory and connect it
        to an L{XmlStreamTransport}.
        """
        self._startedAt = time.monotonic()
        transport = XmlStreamTransport(self, self.transport, peer, host)
        transport.secure = self.secure
        transport.origin = self.origin
        transport.path = getattr(self, "http_request_path", None)
        transport.framing = self.framing
        self.xmppTransport = transport
        self._registerBackpressure(transport)
        try:
            xs = self.factory.xmlStreamFactory.buildProtocol(self._xmlStreamAddress())
        except Exception:
            self.log.failure("XmlStream factory failed for {peer}", peer=peer)
            xs = None
        if xs is None:
            self.closeReason = "no XmlStream"
            self._closeWebSocket(CLOSE_INTERNAL_ERROR, "no stream handler")
            return
        self.xmlStream = xs
        if hasattr(xs, "addObserver"):
            xs.addObserver(xmlstream.STREAM_ERROR_EVENT, self._onXmlStreamError)
        try:
            xs.makeConnection(transport)
        except Exception:
            self.log.failure("XmlStream failed to start for {peer}", peer=peer)
            self._sendStreamError("internal-server-error")

    def _registerBackpressure(self, transport):
        producer = _OutputBackpressure(transport)
        try:
            self.transport.registerProducer(producer, True)
        except RuntimeError:
            # The HTTP channel that handed the connection over to the
            # WebSocket resource is still registered.
            self.transport.unregisterProducer()
            self.transport.registerProducer(producer, True)

    def _startOpenTimer(self, timeout):
        if timeout:
            self._openTimer = txaio.call_later(timeout, self._openTimedOut)

    def _cancelOpenTimer(self):
        if self._openTimer is not None:
            self._openTimer.cancel()
            self._openTimer = None

    def _openTimedOut(self):
        self._openTimer = None
        self.log.info(
            "{peer} sent no stream header in time", peer=self.xmppTransport.getPeer()
        )
        self._sendStreamError(
            "connection-timeout", "The stream was not opened in time."
        )

    # Inbound

    def _xmppMessageReceived(self, payload):
        """
        Check one inbound text message and feed the XmlStream.
        """
        if self._inClosed or self._streamError is not None or self.xmlStream is None:
            return
        self.bytesIn += len(payload)
        try:
            if self.framing is None:
                self._chooseFraming(payload)
            message = self.framing.parseMessage(payload)
            if message.kind == "empty":
                return
            self._checkOrder(message.kind)
        except FramingError as e:
            self.log.info(
                "{peer} sent bad input ({condition}): {text}",
                peer=self.xmppTransport.getPeer(),
                condition=e.condition,
                text=e.text,
            )
            self._sendStreamError(e.condition, e.text)
            return
        if message.kind == "open":
            self._cancelOpenTimer()
            self._requestedDomain = message.attributes.get("to")
        elif message.kind == "close":
            self._inClosed = True
        data = self.framing.streamBytes(message, self._contentNamespace())
        try:
            self.xmlStream.dataReceived(data)
        except Exception:
            self.log.failure(
                "Stream handler failed for {peer}", peer=self.xmppTransport.getPeer()
            )
            self._sendStreamError("internal-server-error")
            return
        if message.kind == "open":
            self._fedParser = getattr(self.xmlStream, "stream", None)

    def _chooseFraming(self, payload):
        """
        Choose the framing from the first message (server side).
        """
        raise NotImplementedError()

    def _checkOrder(self, kind):
        """
        Check that a message of C{kind} may come now: a stream header only
        first or after the C{XmlStream} reset its parser (a stream
        restart), anything else only on an open stream.

        @raise FramingError: if it may not.
        """
        parser = getattr(self.xmlStream, "stream", None)
        awaitingHeader = self._fedParser is None or parser is not self._fedParser
        if kind == "open" and not awaitingHeader:
            raise FramingError(
                "bad-format", "The stream may only be restarted after SASL or TLS."
            )
        if kind != "open" and awaitingHeader:
            raise FramingError(
                "bad-format", "A stream header (<open/>) was expected here."
            )

    def _onXmlStreamError(self, reason):
        """
        The XmlStream reported an error; a parse error of its own gets the
        stream error an unmodified XmlStream does not send.
        """
        if isinstance(reason, Failure) and reason.check(domish.ParserError):
            self._sendStreamError("not-well-formed")

    def onMessageFrameBegin(self, length):
        """
        Refuse a message at the header of the frame that takes it over the
        limit, before its payload is buffered.
        """
        super().onMessageFrameBegin(length)
        if (
            self._streamError is None
            and self.message_data_total_length > self.factory.maxMessageSize
        ):
            self._max_message_size_exceeded(
                self.message_data_total_length, self.factory.maxMessageSize, None
            )

    def _max_message_size_exceeded(self, size, limit, reason):
        self._sendStreamError(
            "policy-violation",
            "Messages are limited to %d bytes." % (limit,),
            CLOSE_MESSAGE_TOO_BIG,
        )

    # Outbound, called by XmlStreamTransport

    def _xmppHeader(self, root):
        if self._outClosed:
            return
        framing = self.framing or RFC7395Framing()
        self._outOpen = True
        if not root.defaultUri:
            # Elements are written against the content namespace, so the
            # header must declare it even when the XmlStream named none.
            root.defaultUri = self._contentNamespace()
        prefixes = getattr(root, "localPrefixes", None) or {}
        self._rawNamespace = (
            root.defaultUri if prefixes in ({}, {"stream": NS_STREAMS}) else None
        )
        self._sendXMPP(
            framing.headerMessage(root, self.initiating, self.factory.lang)
        )

    def _xmppElement(self, element):
        if self._outClosed:
            return
        framing = self.framing or RFC7395Framing()
        self._sendXMPP(framing.elementMessage(element, self._contentNamespace()))

    def _xmppRawElement(self, data):
        """
        Send one whole element the XmlStream wrote, without parsing it
        into a tree, when the stream's header allows it.

        @return: C{True} if sent; C{False} to parse it instead.
        """
        if self._outClosed or self._rawNamespace is None or self.framing is None:
            return False
        message = self.framing.rawElementMessage(data, self._rawNamespace)
        if message is None:
            return False
        self._sendXMPP(message)
        return True

    def _xmppFooter(self):
        self._closeXMPP()

    def _xmppOutboundError(self, reason):
        self.log.error(
            "Stream handler wrote bad XML to {peer}: {reason}",
            peer=self.xmppTransport.getPeer(),
            reason=reason,
        )
        self._sendStreamError("internal-server-error")

    def _xmppLoseConnection(self, abort):
        if abort:
            self.closeReason = self.closeReason or "aborted"
            self.dropConnection(abort=True)
            return
        self._closeXMPP()
        self._closeWebSocket(CLOSE_NORMAL)

    def _sendXMPP(self, data):
        self.bytesOut += len(data)
        self.sendMessage(data, isBinary=False)

    def _closeXMPP(self, seeOtherURI=None):
        """
        Send the stream's closing message, once.
        """
        if self._outClosed:
            return
        self._outClosed = True
        if self._outOpen:
            framing = self.framing or RFC7395Framing()
            self._sendXMPP(framing.closeMessage(seeOtherURI))

    def _closeWebSocket(self, code, reason=None):
        if self.state in (self.STATE_CLOSING, self.STATE_CLOSED):
            return
        self._cancelOpenTimer()
        if code == CLOSE_NORMAL:
            self.sendClose(code=code, reason=reason)
        else:
            self._fail_connection(code, reason or "")

    def dropConnection(self, abort=False):
        """
        Drop the TCP connection; once the closing handshake completed,
        flush what is buffered (the last C{<close/>}) instead of resetting.
        """
        if abort and self.wasClean:
            abort = False
        super().dropConnection(abort)

    def closeStream(self, seeOtherURI=None):
        """
        Close the stream from this side, then the WebSocket.

        @param seeOtherURI: in RFC 7395 framing, where the peer should
            reconnect (C{see-other-uri}); it must not be less secure than
            this connection.
        @type seeOtherURI: L{str} or L{None}
        @raise ValueError: if C{seeOtherURI} is not a WebSocket URI or
            would downgrade a secure connection.
        """
        if seeOtherURI is not None:
            if not seeOtherURI.startswith(("ws://", "wss://")):
                raise ValueError("see-other-uri must be a ws: or wss: URI")
            if self.secure and not seeOtherURI.startswith("wss://"):
                raise ValueError("see-other-uri must not downgrade to ws:")
        self.closeReason = "closed by server"
        if self.xmppTransport is not None:
            self.xmppTransport.disconnecting = True
        self._closeXMPP(seeOtherURI)
        self._closeWebSocket(CLOSE_NORMAL)

    def _sendStreamError(self, condition, text=None, code=CLOSE_NORMAL):
        """
        Send a stream error, the closing message and close the WebSocket.

        If no stream header went out yet, one goes first, as RFC 6120
        requires of a receiving entity.
        """
        if self._streamError is not None:
            return
        self._streamError = StreamErrorSent(condition, text)
        self.closeReason = "stream error: " + condition
        monitor = getattr(self.factory, "monitor", None)
        if monitor is not None:
            monitor.streamErrorSent(self, condition)
        if self.xmppTransport is not None:
            self.xmppTransport.disconnecting = True
        framing = self.framing or RFC7395Framing()
        if not self._outClosed:
            if not self._outOpen and not self.initiating:
                root = domish.Element((NS_STREAMS, "stream"), self.factory.contentNamespace)
                if self._requestedDomain:
                    root["from"] = self._requestedDomain
                root["id"] = uuid.uuid4().hex
                root["version"] = "1.0"
                self._outOpen = True
                self._sendXMPP(
                    framing.headerMessage(root, self.initiating, self.factory.lang)
                )
            if self._outOpen:
                self._sendXMPP(
                    framing.elementMessage(
                        streamErrorElement(condition, text), self._contentNamespace()
                    )
                )
        self._closeXMPP()
        self._closeWebSocket(code, condition)

    # Ending

    def _xmlStreamLost(self, wasClean, code):
        """
        Tell the XmlStream the connection is gone, always with a
        L{Failure}.
        """
        self._cancelOpenTimer()
        if self._streamError is not None:
            reason = Failure(self._streamError)
        elif (self._inClosed and self._outClosed) or (
            wasClean and (self._inClosed or self._outClosed)
        ):
            # Both closing messages crossed: the XMPP stream ended cleanly
            # even if the WebSocket close handshake did not complete.
            reason = Failure(ConnectionDone("XMPP stream closed"))
        else:
            reason = Failure(
                ConnectionLost(
                    "WebSocket closed (code %s) before the XMPP stream was closed"
                    % (code,)
                )
            )
        if self.closeReason is None:
            self.closeReason = reason.getErrorMessage()
        xs, self.xmlStream = self.xmlStream, None
        if xs is None:
            return
        self.jid = _streamJID(xs)
        if self.xmppTransport is not None:
            self.xmppTransport.connectionEnded()
        try:
            xs.connectionLost(reason)
        except Exception:
            self.log.failure("Stream handler failed on disconnect")

    def _logEnd(self, code):
        duration = (
            time.monotonic() - self._startedAt if self._startedAt is not None else 0.0
        )
        self.log.info(
            "WebSocket from {peer} closed: {reason} (code {code}, framing "
            "{framing}, {duration:.1f}s, {bytesIn} bytes in, {bytesOut} bytes out)",
            peer=self.xmppTransport.getPeer() if self.xmppTransport else self.peer,
            origin=self.origin,
            jid=self.jid,
            reason=self.closeReason,
            code=code,
            framing=self.framing.name if self.framing else None,
            duration=duration,
            bytesIn=self.bytesIn,
            bytesOut=self.bytesOut,
        )


def _streamJID(xs):
    """
    The peer's JID as a stream knows it: the full JID of the session its
    authenticator bound (the embedded server), else the C{XmlStream}'s
    C{otherEntity}, if any.

    @rtype: L{str} or L{None}
    """
    session = getattr(getattr(xs, "authenticator", None), "session", None)
    jid = getattr(session, "jid", None)
    if jid is None:
        jid = getattr(xs, "otherEntity", None)
    if jid is None:
        return None
    return jid.full() if hasattr(jid, "full") else str(jid)
