# -*- test-case-name: tests.test_websocket -*-
"""
XMPP over WebSocket, server side: an Autobahn WebSocket server protocol
that hosts an unmodified Twisted Words C{XmlStream}, its factory, and a
twisted.web resource form of it.

    factory = XMPPWebSocketServerFactory(XmlStreamServerFactory(...))
    endpoint.listen(factory)

Each connection chooses its framing (RFC 7395 or draft-00) with its first
message; see L{xmppws.framing}.
"""

import txaio
from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny

from xmppws import _handshake
from xmppws._adapter import CLOSE_UNSUPPORTED_DATA, XMPPWebSocketMixin
from xmppws.framing import detectFraming

__all__ = [
    "XMPPWebSocketResource",
    "XMPPWebSocketServerFactory",
    "XMPPWebSocketServerProtocol",
]

DEFAULT_MAX_MESSAGE_SIZE = 256 * 1024
DEFAULT_PING_INTERVAL = 25
DEFAULT_PING_TIMEOUT = 10
DEFAULT_OPEN_TIMEOUT = 30
DEFAULT_HANDSHAKE_TIMEOUT = 10
MAX_REQUEST_HEADER_SIZE = 16 * 1024


class XMPPWebSocketServerProtocol(XMPPWebSocketMixin, WebSocketServerProtocol):
    """
    A WebSocket server connection carrying one XMPP stream.

    @ivar refusal: the L{_handshake.Refusal} the handshake got, if any.
    """

    refusal = None
    _diagnosed = False
    _admissionRefusal = None
    _idleTimer = None

    def processHandshake(self):
        if not self._diagnosed:
            end = self.data.find(b"\r\n\r\n")
            if end < 0:
                if len(self.data) > MAX_REQUEST_HEADER_SIZE:
                    self._refuse(
                        _handshake.Refusal(
                            431, "The request headers are too large.", "headers-too-large"
                        )
                    )
                return
            self._diagnosed = True
            refusal = _handshake.diagnose(self.data[: end + 4], self.factory)
            if refusal is not None:
                self._refuse(refusal, head=self.data.startswith(b"HEAD "))
                return
        return WebSocketServerProtocol.processHandshake(self)

    def _refuse(self, refusal, head=False):
        """
        Answer the handshake with a status and an explanation, and close.
        """
        self.refusal = refusal
        self._diagnosed = True
        self.wasNotCleanReason = refusal.reason
        if refusal.code != 200:
            if self.factory.monitor is not None:
                self.factory.monitor.handshakeRefused(self, refusal)
            self.log.info(
                "Refused WebSocket handshake from {peer}: {reason} (HTTP {code})",
                peer=self.peer,
                reason=refusal.reason,
                code=refusal.code,
            )
        self.sendData(_handshake.httpResponse(refusal, self.factory.server, head))
        self.dropConnection(abort=False)

    def failHandshake(self, reason, code=400, responseHeaders=None):
        """
        Refuse a handshake Autobahn found wrong, with a body that explains
        it and a status line that does not repeat the request.
        """
        if self._admissionRefusal is not None:
            self._refuse(self._admissionRefusal)
            return
        printable = "".join(c if " " <= c < "\x7f" else "?" for c in str(reason))[:300]
        self._refuse(
            _handshake.Refusal(
                code,
                "The WebSocket handshake failed: %s" % (printable,),
                "handshake-failed",
                list(responseHeaders or []),
            )
        )

    def onConnect(self, request):
        self.origin = request.origin if "origin" in request.headers else None
        if self.factory.monitor is not None:
            refusal = self.factory.monitor.admit(self, request)
            if refusal is not None:
                self._admissionRefusal = refusal
                raise ConnectionDeny(refusal.code)
        return "xmpp"

    def onOpen(self):
        peer, viaTLSProxy = _handshake.resolvePeer(
            self.transport.getPeer(), self.http_headers, self.factory.trustedProxies
        )
        details = self.transport_details
        self.secure = bool(details is not None and details.is_secure) or viaTLSProxy
        self.log.info(
            "WebSocket from {peer} open (origin {origin}, {scheme})",
            peer=peer,
            origin=self.origin,
            scheme="wss" if self.secure else "ws",
        )
        self._startXmlStream(peer, self.transport.getHost())
        if self.xmlStream is not None:
            self._startOpenTimer(self.factory.openTimeout)
            self._resetIdleTimer()
        if self.factory.monitor is not None:
            self.factory.monitor.connectionOpened(self)

    def dataReceived(self, data):
        if self._idleTimer is not None:
            self._resetIdleTimer()
        WebSocketServerProtocol.dataReceived(self, data)

    def _resetIdleTimer(self):
        """
        Restart the idle timer: any bytes from the peer (pongs too) count.
        """
        timeout = self.factory.idleTimeout
        if self._idleTimer is not None and self._idleTimer.active():
            self._idleTimer.reset(timeout)
        elif timeout and self.state == self.STATE_OPEN:
            self._idleTimer = txaio.call_later(timeout, self._idleTimedOut)

    def _idleTimedOut(self):
        self._idleTimer = None
        self.log.info(
            "{peer} sent nothing for {timeout} seconds",
            peer=self.xmppTransport.getPeer() if self.xmppTransport else self.peer,
            timeout=self.factory.idleTimeout,
        )
        self._sendStreamError("connection-timeout", "The connection was idle for too long.")

    def _chooseFraming(self, payload):
        self.framing = detectFraming(payload)
        self.xmppTransport.framing = self.framing
        self.log.info(
            "{peer} negotiated {framing} framing",
            peer=self.xmppTransport.getPeer(),
            framing=self.framing.name,
        )

    def onMessageBegin(self, isBinary):
        WebSocketServerProtocol.onMessageBegin(self, isBinary)
        if isBinary:
            self._sendStreamError(
                "unsupported-encoding",
                "XMPP travels in WebSocket text frames only.",
                CLOSE_UNSUPPORTED_DATA,
            )

    def onMessage(self, payload, isBinary):
        if not isBinary:
            self._xmppMessageReceived(payload)

    def onClose(self, wasClean, code, reason):
        if self._idleTimer is not None:
            if self._idleTimer.active():
                self._idleTimer.cancel()
            self._idleTimer = None
        if self.xmppTransport is not None:
            self._xmlStreamLost(wasClean, code)
            self._logEnd(code)
        if self.factory.monitor is not None:
            self.factory.monitor.connectionClosed(self)


class XMPPWebSocketServerFactory(WebSocketServerFactory):
    """
    Serve XMPP over WebSocket with the streams an existing C{XmlStream}
    factory builds.

    @ivar xmlStreamFactory: builds one C{XmlStream} per connection, such
        as an C{XmlStreamServerFactory} or tx-xmpp's
        C{XMPPComponentServerFactory}.
    @ivar contentNamespace: the stream's default namespace when the
        C{XmlStream} does not name one.
    @ivar path: the only HTTP path served, or L{None} for any.
    @ivar allowedOrigins: lower-cased origins allowed to connect, or
        L{None} for any.
    @ivar trustedProxies: networks whose C{X-Forwarded-For} and
        C{X-Forwarded-Proto} headers are believed.
    @ivar maxMessageSize: the largest inbound message, in bytes.
    @ivar openTimeout: seconds a new WebSocket may take to open the
        stream, or 0.
    @ivar idleTimeout: seconds after which a connection the peer sent
        nothing on (not even a pong) is closed with C{connection-timeout},
        or 0.
    @ivar lang: the C{xml:lang} the server's stream header carries.
    @ivar monitor: L{None}, or an object told about connections, for
        limits and metrics: C{admit(protocol, request)} returns L{None} to
        go on with a handshake or a L{_handshake.Refusal} to refuse it;
        C{handshakeRefused(protocol, refusal)},
        C{connectionOpened(protocol)}, C{connectionClosed(protocol)} (for
        every connection, opened or not) and C{streamErrorSent(protocol,
        condition)} return nothing.
    """

    protocol = XMPPWebSocketServerProtocol

    def __init__(
        self,
        xmlStreamFactory,
        url=None,
        *,
        reactor=None,
        path=None,
        contentNamespace="jabber:client",
        allowedOrigins=None,
        trustedProxies=(),
        maxMessageSize=DEFAULT_MAX_MESSAGE_SIZE,
        pingInterval=DEFAULT_PING_INTERVAL,
        pingTimeout=DEFAULT_PING_TIMEOUT,
        openTimeout=DEFAULT_OPEN_TIMEOUT,
        handshakeTimeout=DEFAULT_HANDSHAKE_TIMEOUT,
        lang="en",
        serverName="xmppws",
        idleTimeout=0,
        monitor=None,
    ):
        """
        @param xmlStreamFactory: see L{xmlStreamFactory}.
        @param url: the public WebSocket URL, or L{None}.
        @param reactor: the reactor; the global one if L{None}.
        @param pingInterval: seconds between WebSocket pings, or 0.
        @param pingTimeout: seconds to wait for a pong before dropping a
            dead peer.
        @param handshakeTimeout: seconds the WebSocket handshake may take.
        """
        WebSocketServerFactory.__init__(
            self, url, protocols=["xmpp"], server=serverName, reactor=reactor
        )
        if maxMessageSize <= 0:
            raise ValueError("maxMessageSize must be positive")
        self.xmlStreamFactory = xmlStreamFactory
        self.path = path
        self.contentNamespace = contentNamespace
        self.allowedOrigins = (
            None
            if allowedOrigins is None
            else frozenset(o.strip().lower().rstrip("/") for o in allowedOrigins)
        )
        self.trustedProxies = _handshake.parseNetworks(trustedProxies)
        self.maxMessageSize = maxMessageSize
        self.openTimeout = openTimeout
        self.idleTimeout = idleTimeout
        self.lang = lang
        self.monitor = monitor
        self.setProtocolOptions(
            # Autobahn's message limit would apply to what we send too, so
            # only its frame limit is set; XMPPWebSocketMixin checks the
            # total of a fragmented message at each frame header.
            maxFramePayloadSize=maxMessageSize,
            autoPingInterval=pingInterval,
            autoPingTimeout=pingTimeout if pingInterval else 0,
            openHandshakeTimeout=handshakeTimeout,
            closeHandshakeTimeout=5,
            failByDrop=False,
        )

    def startFactory(self):
        self.xmlStreamFactory.doStart()

    def stopFactory(self):
        self.xmlStreamFactory.doStop()


class XMPPWebSocketResource(WebSocketResource):
    """
    The WebSocket endpoint as a twisted.web resource, to share a port and a
    L{Site<twisted.web.server.Site>} with other resources.

    A request that is not a WebSocket upgrade gets a short page saying what
    is served here (usable as a proxy health check).
    """

    def __init__(self, factory):
        """
        @param factory: the server factory; its C{path} is ignored, the
            resource tree decides where this is served.
        @type factory: L{XMPPWebSocketServerFactory}
        """
        WebSocketResource.__init__(self, factory)
        factory.path = None

    def render(self, request):
        if not (
            request.requestHeaders.hasHeader(b"upgrade")
            or request.requestHeaders.hasHeader(b"sec-websocket-key")
        ):
            if request.method not in (b"GET", b"HEAD"):
                request.setResponseCode(405)
                request.setHeader(b"allow", b"GET")
                request.setHeader(b"content-type", b"text/plain; charset=utf-8")
                return b"Only GET opens a WebSocket.\n"
            page = _handshake.infoPage(request.path.decode("utf-8", "replace"))
            request.setHeader(b"content-type", b"text/html; charset=utf-8")
            return _handshake.htmlPage(page)
        return WebSocketResource.render(self, request)
