# -*- test-case-name: tests.test_gateway_upstream -*-
"""
The gateway's stream to the upstream server: one client-to-server TCP
connection per relayed session, negotiated by the gateway up to the
point where the client takes over.

    connector = UpstreamConnector(reactor, resolver, timeout=10)
    upstream = yield connector.connect(routes, domain, header, proxy)
    upstream.attach(relay)

L{UpstreamProtocol} writes the PROXY protocol header if asked, starts TLS
at once (C{tls=direct}) or sends the client's stream header, and with
STARTTLS (required by default) upgrades the stream before anything of
the client's is relayed: only then are the server's header and features
handed over (L{UpstreamProtocol.ready}).  Its bytes are split into
top-level elements by one streaming scan (L{xmppws._scanner}), restarted
after C{<proceed/>} and after SASL C{<success/>}.

L{UpstreamConnector} tries each route of a domain in turn (and each SRV
target of a route), each within the timeout, and fails with an
L{UpstreamError} naming the stream error condition the client gets:
C{remote-connection-failed} when every server refused (or failed TLS),
C{connection-timeout} when the last one did not answer in time.
"""

from twisted.internet import defer
from twisted.internet.error import ConnectionDone, TimeoutError as ConnectTimeoutError
from twisted.internet.interfaces import ISSLTransport, ITLSTransport
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from xmppws._parser import FramingError
from xmppws._scanner import ElementScanner
from xmppws.framing import NS_STREAMS, NS_XMPP_STREAMS
from xmppws.gateway.igateway import IUpstream
from xmppws.gateway.translate import NS_SASL, NS_TLS, parseTree

__all__ = [
    "UpstreamConnector",
    "UpstreamError",
    "UpstreamProtocol",
    "StreamSplitter",
]

STARTTLS = b"<starttls xmlns='" + NS_TLS.encode("ascii") + b"'/>"
_NEGOTIATING, _RELAYING = "negotiating", "relaying"


class UpstreamError(Exception):
    """
    The upstream stream could not be set up.

    @ivar condition: the stream error condition the client gets.
    @ivar text: an explanation for the client (no server addresses).
    @ivar detail: what happened, for the log.
    """

    def __init__(self, condition, text, detail):
        Exception.__init__(self, condition, text, detail)
        self.condition = condition
        self.text = text
        self.detail = detail


class StreamSplitter:
    """
    Split the bytes of an RFC 6120 stream into its header, top-level
    elements and footer, with one streaming scan that starts over where
    the stream restarts.

    @ivar header: the current stream's L{xmppws._scanner.StreamHeader}, or
        L{None} before it.
    """

    def __init__(self, receiver, maxElementSize=0):
        """
        @param receiver: has C{streamStarted(header)},
            C{elementScanned(element)} and C{streamEnded()}.
        @param maxElementSize: bytes one element may take, or 0.
        """
        self._receiver = receiver
        self._maxElementSize = maxElementSize
        self._scanner = None

    @property
    def header(self):
        return self._scanner.header if self._scanner is not None else None

    def feed(self, data):
        """
        Split more bytes.

        @raise FramingError: for input that must end the stream.
        """
        while data:
            scanner = self._scanner
            if scanner is None:
                scanner = self._scanner = ElementScanner(
                    self._receiver, maxElementSize=self._maxElementSize, trackPrefixes=True
                )
            data = scanner.feed(data)
            if data is not None:
                self._scanner = None

    def restartAfter(self):
        """
        The stream restarts after the element being reported (or, between
        reports, at once).
        """
        if self._scanner is not None:
            self._scanner.restartAfter()


def _errorCondition(element, declarations):
    """
    The condition of a stream error element.
    """
    try:
        tree = parseTree(element.raw, declarations)
    except FramingError:
        return "undefined-condition"
    for child in tree.elements():
        if child.uri == NS_XMPP_STREAMS and child.name != "text":
            return child.name
    return "undefined-condition"


@implementer(IUpstream)
class UpstreamProtocol(Protocol):
    """
    One stream to the upstream server.

    @ivar ready: a L{defer.Deferred} firing with this protocol once the
        stream is negotiated (encrypted, unless the route says
        C{insecure=no-tls}, and the server's features received), or
        failing with an L{UpstreamError}.
    @ivar header: the server's stream header, once negotiated.
    @ivar features: the server's features (a L{xmppws._scanner.Scanned}),
        once negotiated.
    @ivar description: the endpoint, for logs.
    @ivar bytesIn: bytes received from the server.
    @ivar bytesOut: bytes written to it.
    """

    log = Logger()
    header = None
    features = None
    bytesIn = 0
    bytesOut = 0
    _receiver = None
    _state = _NEGOTIATING
    _awaitingProceed = False
    _tlsStarted = False
    _lost = False

    def __init__(self, route, description, streamHeader, proxyHeader=None, maxElementSize=0):
        """
        @param route: the L{xmppws.gateway.routes.UpstreamRoute}.
        @param description: the endpoint, for logs.
        @param streamHeader: the stream header to send (and send again
            after STARTTLS).
        @param proxyHeader: a PROXY protocol header to send first, or
            L{None}.
        """
        self.route = route
        self.description = description
        self._streamHeader = streamHeader
        self._proxyHeader = proxyHeader
        self._splitter = StreamSplitter(self, maxElementSize)
        self.ready = defer.Deferred(lambda d: self.abortConnection())

    @property
    def secure(self):
        return ISSLTransport.providedBy(self.transport)

    # Negotiation

    def connectionMade(self):
        if self._proxyHeader:
            self.write(self._proxyHeader)
        if self.route.tls == "direct" and not self.secure:
            if not self._startTLS():
                return
        self.write(self._streamHeader)

    def _startTLS(self):
        if not ITLSTransport.providedBy(self.transport):
            self._fail(
                "remote-connection-failed",
                "cannot start TLS on this kind of connection (%s)" % (self.description,),
            )
            return False
        self._tlsStarted = True
        self.transport.startTLS(self.route.tlsOptions())
        return True

    def _fail(self, condition, detail, text=None):
        if self.ready.called:
            return
        self._state = None
        if text is None:
            text = {
                "connection-timeout": "The server did not answer in time.",
            }.get(condition, "The server cannot be reached.")
        self.ready.errback(UpstreamError(condition, text, detail))
        if self.transport is not None and not self._lost:
            self.transport.abortConnection()

    def dataReceived(self, data):
        self.bytesIn += len(data)
        try:
            self._splitter.feed(data)
        except FramingError as e:
            if self._state == _RELAYING:
                self._receiver.upstreamBroken(e.condition, e.text)
            else:
                self._fail("remote-connection-failed", "bad XML from the server: %s" % (e.text,))

    # The splitter's receiver

    def streamStarted(self, header):
        if self._state == _RELAYING:
            self.header = header
            self._receiver.upstreamHeader(header)
            return
        if self._state != _NEGOTIATING:
            return
        if (header.uri, header.name) != (NS_STREAMS, "stream"):
            self._fail("remote-connection-failed", "the server sent no stream header")
            return
        version = header.get("version", "")
        if not version.startswith("1."):
            self._fail(
                "remote-connection-failed", "the server speaks XMPP version %r" % (version,)
            )
            return
        self.header = header

    def elementScanned(self, element):
        if self._state == _RELAYING:
            if (element.uri, element.name) == (NS_SASL, "success"):
                self._splitter.restartAfter()
            self._receiver.upstreamElement(element)
            return
        if self._state != _NEGOTIATING:
            return
        name = (element.uri, element.name)
        if name == (NS_STREAMS, "error"):
            condition = _errorCondition(element, self.header.declarations)
            text = None
            if condition in ("host-unknown", "host-gone", "system-shutdown",
                             "policy-violation", "resource-constraint"):
                text = "The server refused the stream (%s)." % (condition,)
            if condition in ("see-other-host", "undefined-condition", "not-well-formed",
                             "bad-format", "invalid-namespace", "unsupported-version"):
                condition = "remote-connection-failed"
            self._fail(condition, "the server sent a stream error: %s" % (condition,), text)
        elif self._awaitingProceed:
            self._awaitingProceed = False
            if name == (NS_TLS, "proceed"):
                self._splitter.restartAfter()
                if self._startTLS():
                    self.write(self._streamHeader)
            elif name == (NS_TLS, "failure"):
                self._fail("remote-connection-failed", "the server failed STARTTLS")
            else:
                self._fail(
                    "remote-connection-failed",
                    "<%s/> from the server instead of <proceed/>" % (element.name,),
                )
        elif name == (NS_STREAMS, "features") and self.header is not None:
            self._features(element)
        else:
            self._fail(
                "remote-connection-failed",
                "unexpected <%s/> from the server while negotiating" % (element.name,),
            )

    def _features(self, element):
        if self.route.tls is None or self.secure:
            self._state = _RELAYING
            self.features = element
            self.ready.callback(self)
            return
        tree = parseTree(element.raw, self.header.declarations)
        offered = any((c.uri, c.name) == (NS_TLS, "starttls") for c in tree.elements())
        if not offered:
            self._fail("remote-connection-failed", "the server does not offer STARTTLS")
            return
        self._awaitingProceed = True
        self.write(STARTTLS)

    def streamEnded(self):
        if self._state == _RELAYING:
            self._receiver.upstreamFooter()
        else:
            self._fail("remote-connection-failed", "the server closed the stream")

    # Relaying

    def attach(self, receiver):
        """
        Hand what the server sends to C{receiver} from now on.

        @type receiver: L{xmppws.gateway.igateway.IUpstreamReceiver}
        """
        self._receiver = receiver

    def write(self, data):
        self.bytesOut += len(data)
        self.transport.write(data)

    def restartAfter(self):
        self._splitter.restartAfter()

    def loseConnection(self):
        if self.transport is not None:
            self.transport.loseConnection()

    def abortConnection(self):
        if self.transport is not None and not self._lost:
            self.transport.abortConnection()

    def registerProducer(self, producer, streaming):
        self.transport.registerProducer(producer, streaming)

    def unregisterProducer(self):
        if not self._lost:
            self.transport.unregisterProducer()

    def pauseProducing(self):
        if not self._lost:
            self.transport.pauseProducing()

    def resumeProducing(self):
        if not self._lost:
            self.transport.resumeProducing()

    def stopProducing(self):
        self.abortConnection()

    def connectionLost(self, reason=None):
        self._lost = True
        if reason is None:
            reason = Failure(ConnectionDone())
        if self._state == _RELAYING and self._receiver is not None:
            self._receiver.upstreamLost(reason)
            return
        if self.ready.called:
            return
        if self._tlsStarted:
            detail = "TLS failed: %s" % (_describe(reason),)
        else:
            detail = "the connection closed: %s" % (_describe(reason),)
        self._fail("remote-connection-failed", detail)


def _describe(reason):
    text = reason.getErrorMessage()
    return " ".join(text.split())[:300]


class _UpstreamFactory(Factory):
    noisy = False

    def __init__(self, build):
        self._build = build

    def buildProtocol(self, addr):
        return self._build()


class UpstreamConnector:
    """
    Connect to the server of a domain through its routes, with failover.

    @ivar timeout: seconds one attempt may take, from connecting to the
        server's features after TLS.
    """

    log = Logger()

    def __init__(self, reactor, resolver=None, timeout=10.0, maxElementSize=0):
        """
        @param reactor: connects and times the attempts.
        @param resolver: an C{IResolver} for SRV routes; Twisted's system
            resolver if L{None}.
        """
        self.reactor = reactor
        self._resolver = resolver
        self.timeout = timeout
        self.maxElementSize = maxElementSize

    @property
    def resolver(self):
        if self._resolver is None:
            from twisted.names import client

            self._resolver = client.getResolver()
        return self._resolver

    def connect(self, routes, domain, streamHeader, proxyHeader=None):
        """
        Set up a stream to the server of C{domain}.

        @param routes: its L{xmppws.gateway.routes.UpstreamRoute}s, in
            order.
        @param streamHeader: the stream header to open it with.
        @param proxyHeader: a function of a route's PROXY protocol version
            returning the header to send, or L{None}.
        @return: a cancellable L{defer.Deferred} firing with the
            L{UpstreamProtocol}, or failing with an L{UpstreamError}.
        """
        return self._connect(routes, domain, streamHeader, proxyHeader)

    @defer.inlineCallbacks
    def _connect(self, routes, domain, streamHeader, proxyHeader):
        last = None
        for route in routes:
            try:
                candidates = yield route.candidates(
                    self.reactor, self.resolver if route.srv else None
                )
            except Exception as e:
                last = UpstreamError(
                    "remote-connection-failed", "The server cannot be reached.",
                    "resolving %s: %s" % (route.description, e),
                )
                self._failed(domain, route.description, last)
                continue
            if not candidates:
                last = UpstreamError(
                    "remote-connection-failed", "The server cannot be reached.",
                    "SRV records say %s offers no client service" % (domain,),
                )
                self._failed(domain, route.description, last)
            for description, endpoint in candidates:
                header = proxyHeader(route.proxy) if proxyHeader and route.proxy else None
                try:
                    upstream = yield self._attempt(route, description, endpoint,
                                                   streamHeader, header)
                except UpstreamError as e:
                    last = e
                    self._failed(domain, description, e)
                    continue
                return upstream
        if last is None:
            last = UpstreamError(
                "remote-connection-failed", "The server cannot be reached.",
                "no route for %s" % (domain,),
            )
        raise last

    def _failed(self, domain, description, error):
        self.log.warn(
            "Cannot relay {domain} to {upstream}: {detail}",
            domain=domain, upstream=description, detail=error.detail,
            condition=error.condition,
        )

    def _attempt(self, route, description, endpoint, streamHeader, proxyHeader):
        """
        One endpoint, within the timeout.
        """
        factory = _UpstreamFactory(
            lambda: UpstreamProtocol(route, description, streamHeader, proxyHeader,
                                     self.maxElementSize)
        )
        d = endpoint.connect(factory)
        d.addCallback(lambda protocol: protocol.ready)

        def timedOut(result, timeout):
            raise UpstreamError(
                "connection-timeout", "The server did not answer in time.",
                "no answer within %g seconds" % (timeout,),
            )

        d.addTimeout(self.timeout, self.reactor, onTimeoutCancel=timedOut)

        def failed(failure):
            if failure.check(UpstreamError, defer.CancelledError):
                return failure
            if failure.check(ConnectTimeoutError):
                raise UpstreamError(
                    "connection-timeout", "The server did not answer in time.",
                    failure.getErrorMessage(),
                )
            raise UpstreamError(
                "remote-connection-failed", "The server cannot be reached.",
                _describe(failure),
            )

        return d.addErrback(failed)
