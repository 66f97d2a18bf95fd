# -*- test-case-name: tests.test_websocket -*-
"""
XMPP over WebSocket, server side: an Autobahn WebSocket server protocol
that carries one stream handler, its factory, and a twisted.web resource
form of it.

    factory = XMPPWebSocketServerFactory(XmlStreamServerFactory(...))
    endpoint.listen(factory)

The protocol is a thin carrier: it diagnoses and admits the opening
handshake, then hands every message to the connection it carries (an
L{xmppws.connection.XmlStreamConnection} hosting the C{XmlStream}, or any
other L{xmppws.iwebsocket.IMessageHandler} from the factory's
C{connectionFactory}).  Each connection chooses its framing (RFC 7395 or
draft-00) with its first message; see L{xmppws.framing}.
"""

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny
from twisted.logger import Logger

from xmppws import _handshake
from xmppws._carrier import CarrierCallbacks, ReactorTimer, WebSocketCarrier
from xmppws.connection import CLOSE_INTERNAL_ERROR, ConnectionFactory
from xmppws.logs import formatAddress

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

_NOT_ADMITTED = object()

# Autobahn's protocols log through their own txaio logger (self.log), at
# debug level, every chunk of data and the raw opening handshake, cookies
# included; that logger emits debug events only when txaio's level asks
# for them.  Our own events go through this one.
_log = Logger()


class XMPPWebSocketServerProtocol(CarrierCallbacks, WebSocketServerProtocol):
    """
    A WebSocket server connection carrying one stream.

    @ivar refusal: the L{_handshake.Refusal} the handshake got, if any.
    @ivar connection: the handler it carries once open (an
        L{xmppws.connection.XmlStreamConnection}), kept after the close.
    """

    refusal = None
    connection = None
    _diagnosed = False
    _head = b""
    _admissionRefusal = None
    _admission = _NOT_ADMITTED
    _peer = None
    _viaTLSProxy = False
    _origin = None
    _path = None

    def dataReceived(self, data):
        if self._diagnosed:
            CarrierCallbacks.dataReceived(self, data)
            return
        head = self._head = self._head + data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            if len(head) > MAX_REQUEST_HEADER_SIZE:
                self._diagnosed = True
                self._refuse(
                    _handshake.Refusal(
                        431, "The request headers are too large.", "headers-too-large"
                    )
                )
            return
        self._diagnosed = True
        self._head = b""
        refusal = _handshake.diagnose(head[: end + 4], self.factory)
        if refusal is not None:
            self._refuse(refusal, head=head.startswith(b"HEAD "))
            return
        CarrierCallbacks.dataReceived(self, head)

    def _refuse(self, refusal, head=False):
        """
        Answer the handshake with a status and an explanation, and close.
        """
        self.refusal = refusal
        self._diagnosed = True
        self.wasNotCleanReason = refusal.reason
        if refusal.code != 200:
            monitor = self.factory.monitor
            if monitor is not None:
                monitor.handshakeRefused(refusal.reason)
            _log.info(
                "Refused WebSocket handshake from {peer}: {reason} (HTTP {code})",
                peer=formatAddress(self.transport.getPeer()),
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
        self._origin = request.headers.get("origin")
        self._path = request.path
        self._peer, self._viaTLSProxy = _handshake.resolvePeer(
            self.transport.getPeer(), request.headers, self.factory.trustedProxies
        )
        monitor = self.factory.monitor
        if monitor is not None:
            refused, key = monitor.admit(self.transport.getPeer(), self._peer, "websocket")
            if refused is not None:
                self._admissionRefusal = _handshake.Refusal(
                    503,
                    monitor.refusalText(refused),
                    refused,
                    [("Retry-After", "5" if monitor.stopping else "30")],
                )
                raise ConnectionDeny(503)
            self._admission = key
        return "xmpp"

    def onOpen(self):
        details = self.transport_details
        secure = bool(details is not None and details.is_secure) or self._viaTLSProxy
        carrier = self.carrier = WebSocketCarrier(
            self,
            self._peer,
            secure,
            self._origin,
            self._path,
            self.factory.maxMessageSize,
            frames=True,
        )
        try:
            handler = self.factory.connectionFactory.buildProtocol(self._peer)
        except Exception:
            _log.failure("The connection factory failed for {peer}", peer=self._peer)
            handler = None
        if handler is None:
            carrier.closeWith(CLOSE_INTERNAL_ERROR, "no stream handler")
            return
        self.connection = handler
        carrier.attach(handler)

    def onClose(self, wasClean, code, reason):
        CarrierCallbacks.onClose(self, wasClean, code, reason)
        if self._admission is not _NOT_ADMITTED:
            key, self._admission = self._admission, _NOT_ADMITTED
            self.factory.monitor.release(key)


class XMPPWebSocketServerFactory(WebSocketServerFactory):
    """
    Serve XMPP over WebSocket with the streams an existing C{XmlStream}
    factory builds.

    @ivar connectionFactory: builds the handler of each open WebSocket: an
        L{xmppws.connection.ConnectionFactory} around C{xmlStreamFactory},
        or the one given.
    @ivar path: the only HTTP path served, or L{None} for any.
    @ivar allowedOrigins: lower-cased origins allowed to connect, or
        L{None} for any.
    @ivar trustedProxies: networks whose C{X-Forwarded-For} and
        C{X-Forwarded-Proto} headers are believed.
    @ivar maxMessageSize: the largest inbound message, in bytes.
    @ivar monitor: L{None}, or the L{xmppws._connections.ConnectionMonitor}
        that admits handshakes and counts connections.
    """

    protocol = XMPPWebSocketServerProtocol

    def __init__(
        self,
        xmlStreamFactory=None,
        url=None,
        *,
        reactor=None,
        path=None,
        contentNamespace=None,
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
        connectionFactory=None,
        **policies,
    ):
        """
        @param xmlStreamFactory: builds one C{XmlStream} per connection,
            such as an C{XmlStreamServerFactory} or tx-xmpp's
            C{XMPPComponentServerFactory}; not needed when
            C{connectionFactory} is given.
        @param url: the public WebSocket URL, or L{None}.
        @param reactor: the reactor every timer runs on; the global one if
            L{None}.
        @param contentNamespace: the streams' content namespace, or
            L{None} for the one their authenticator declares.
        @param pingInterval: seconds of silence before a WebSocket ping, or
            0.
        @param pingTimeout: seconds to wait for its pong.
        @param openTimeout: seconds a new WebSocket may take to open the
            stream, or 0.
        @param handshakeTimeout: seconds the WebSocket handshake may take.
        @param lang: the C{xml:lang} of the server's stream headers.
        @param idleTimeout: seconds after which a connection the peer sent
            nothing on (not even a pong) is closed, or 0.
        @param connectionFactory: a factory of
            L{xmppws.iwebsocket.IMessageHandler}s to carry instead of
            C{XmlStream} connections (such as the gateway's relays).
        @param policies: more keyword arguments of
            L{xmppws.policies.ClientPolicies} (rates, stall timeout).
        """
        WebSocketServerFactory.__init__(
            self, url, protocols=["xmpp"], server=serverName, reactor=reactor
        )
        # Autobahn's protocol timers run on txaio's global loop; run them
        # on this factory's reactor instead (see docs/adapter.rst).
        self._batched_timer = ReactorTimer(self.reactor)
        if maxMessageSize <= 0:
            raise ValueError("maxMessageSize must be positive")
        if connectionFactory is None:
            if xmlStreamFactory is None:
                raise TypeError("an XmlStream factory or a connection factory is needed")
            connectionFactory = ConnectionFactory(
                xmlStreamFactory,
                self.reactor,
                contentNamespace=contentNamespace,
                lang=lang,
                monitor=monitor,
                openTimeout=openTimeout,
                idleTimeout=idleTimeout,
                pingInterval=pingInterval,
                pingTimeout=pingTimeout,
                maxElementSize=maxMessageSize,
                **policies,
            )
        self.connectionFactory = connectionFactory
        self.path = path
        self.allowedOrigins = (
            None
            if allowedOrigins is None
            else frozenset(o.strip().lower().rstrip("/") for o in allowedOrigins)
        )
        self.trustedProxies = _handshake.parseNetworks(trustedProxies)
        self.maxMessageSize = maxMessageSize
        self.monitor = monitor
        self.setProtocolOptions(
            # Autobahn's message limit would apply to what we send too, so
            # only its frame limit is set, as a backstop: the carrier
            # refuses a message as the frame that takes it over the limit
            # begins.
            maxFramePayloadSize=maxMessageSize,
            # Keepalive is the connection's (xmppws.policies.Watchdog).
            autoPingInterval=0,
            openHandshakeTimeout=handshakeTimeout,
            closeHandshakeTimeout=5,
            failByDrop=False,
            # Origins are checked in the handshake diagnosis; "null" (file:
            # pages, sandboxed frames) is an origin like another there.
            allowNullOrigin=True,
            # No permessage-deflate: compressing what an attacker partly
            # controls next to secrets is what CRIME exploits, and the
            # carrier writes uncompressed frames itself.
            perMessageCompressionAccept=lambda offers: None,
        )

    @property
    def xmlStreamFactory(self):
        """
        The C{XmlStream} factory of the default connection factory.
        """
        return getattr(self.connectionFactory, "xmlStreamFactory", None)

    def startFactory(self):
        self.connectionFactory.doStart()

    def stopFactory(self):
        self.connectionFactory.doStop()


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
