# -*- test-case-name: tests.test_service -*-
"""
The C{twistd xmppws} service: the embedded server, its listeners, the
connection monitor behind the limits and metrics, graceful shutdown and
reloading TLS certificates.

    service = XMPPService(Settings(domains=["example.org"]), reactor)
    service.setServiceParent(application)

The tree: one L{Site} per C{--listen} endpoint (WebSocket, XEP-0156
discovery, landing page), one plain XMPP client listener per C{--c2s}
endpoint, one metrics L{Site} per C{--metrics} endpoint.

In gateway mode (L{Settings.upstreams}), the WebSocket clients of the
relayed domains are relayed to their servers (L{xmppws.gateway}); the
embedded server runs only when domains are also served locally
(L{Settings.domains}), and the first message of each WebSocket decides
which of the two carries it.

Stopping (SIGTERM, SIGINT) stops accepting, closes every stream with the
C{system-shutdown} stream error (or, in RFC 7395 framing, a C{<close/>}
naming the C{see-other-uri} if one is configured), waits up to
L{Settings.shutdownTimeout} seconds for the peers to close, drops the
rest, ends the remaining sessions (so that unacknowledged messages are
stored) and closes the database.  SIGHUP reads the TLS certificates
again; connections already open keep theirs.
"""

import signal
import threading
import time

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService, Service
from twisted.internet import defer
from twisted.internet.interfaces import IReactorThreads, IStreamServerEndpoint
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data
from zope.interface import implementer

from xmppws._connections import ConnectionMonitor
from xmppws._tls import CertificateError
from xmppws.c2s.asyncdb import InlineRunner, ThreadRunner
from xmppws.c2s import component as xmppcomponent
from xmppws.c2s.modules import closeModules, installModules
from xmppws.c2s.server import ServerConfig, XMPPServer
from xmppws.c2s.storage import Storage
from xmppws.chatpage import ChatPage
from xmppws.connection import ConnectionFactory
from xmppws.flow import Backlog
from xmppws.gateway.dispatch import DispatchFactory
from xmppws.gateway.relay import GatewayFactory
from xmppws.gateway.routes import Router
from xmppws.limits import ConnectionLimiter, Limits
from xmppws.logs import formatAddress
from xmppws.metrics import Metrics, MetricsResource
from xmppws.muc.component import InProcessComponent
from xmppws.muc.service import MUCService
from xmppws.muc.settings import MUCSettings
from xmppws.muc.storage import RoomStore
from xmppws.tcp import StreamCarrierFactory
from xmppws.web import XMPPSite, buildRoot
from xmppws.websocket import XMPPWebSocketResource, XMPPWebSocketServerFactory

__all__ = ["ListenFailed", "Settings", "XMPPService", "makeService"]

class Settings:
    """
    Everything the service needs, already checked (L{xmppws.tap.Options}
    builds one from the command line and the configuration file).

    @ivar domains: the served domains; the first is the default.
    @ivar dataDir: the directory of the database.
    @ivar path: the WebSocket path.
    @ivar origins: allowed C{Origin}s, or L{None} for any.
    @ivar publicURLs: WebSocket URLs to advertise instead of ones built
        from requests.
    @ivar trustedProxies: addresses or networks (strings) of proxies whose
        C{X-Forwarded-*} headers are believed.
    @ivar listen: C{(description, endpoint)} of each HTTP and WebSocket
        listener.
    @ivar c2s: C{(description, endpoint)} of each plain XMPP client
        listener.
    @ivar metrics: C{(description, endpoint)} of each metrics listener.
    @ivar metricsPath: a path on the C{listen} ports that also serves
        the metrics, or L{None}.
    @ivar certificate: the L{xmppws._tls.ReloadableCertificate} for
        STARTTLS, or L{None}.
    @ivar certificates: every reloadable certificate in use.
    @ivar plain, anonymous, registration, requireEncryption, smTimeout:
        see L{ServerConfig}.
    @ivar throttle: the login throttle's policy, or L{None} for the
        defaults (see L{ServerConfig}).
    @ivar quotas: the budgets of the state clients make the server keep,
        or L{None} for the defaults (see L{ServerConfig}).
    @ivar registrationInterval: see L{ServerConfig}.
    @ivar limits: the L{Limits}.
    @ivar shutdownTimeout: seconds the peers get to close their streams
        when the service stops.
    @ivar seeOtherURI: where RFC 7395 clients are sent when the service
        stops, or L{None}.
    @ivar components: C{(description, endpoint)} of each XEP-0114
        component listener (none by default).
    @ivar componentSecret: the components' shared secret.
    @ivar muc: the L{MUCSettings} of the group chat service run in
        process, L{None} for none; by default C{conference.} and the
        first domain, with the default settings.
    @ivar chatPath: the path of the web chat page on C{listen} ports, or
        L{None} for none.
    @ivar converseDir: the directory of Converse.js's C{dist} files the
        chat page serves, or L{None}.
    @ivar converseURL: where the chat page loads Converse.js from
        instead, or L{None}.
    @ivar databaseRunner: the L{xmppws.c2s.asyncdb.IRunner} of the
        asynchronous databases (the rooms, the message archive, personal
        data); if L{None}, a L{ThreadRunner} each, or an L{InlineRunner}
        on a reactor without threads (a test clock).
    @ivar archive: the L{xmppws.c2s.mam.ArchiveSettings} of accounts'
        message archives, or L{None} for the defaults (on, one week).
    @ivar upstreams: the L{xmppws.gateway.routes.UpstreamRoute}s of the
        relayed domains (gateway mode), in the order given.
    @ivar upstreamTimeout: seconds one upstream server may take from
        connecting to its features after TLS.
    @ivar insecureWebSocket: what the gateway does with a relayed client
        on a plain WebSocket from another machine: C{'refuse'} or
        C{'strip-plain'}.
    """

    domains = ("localhost",)
    dataDir = "xmppws-data"
    path = "/xmpp-websocket"
    origins = None
    publicURLs = ()
    trustedProxies = ()
    listen = ()
    c2s = ()
    metrics = ()
    metricsPath = None
    certificate = None
    certificates = ()
    plain = "loopback"
    anonymous = False
    registration = False
    requireEncryption = False
    smTimeout = 300
    throttle = None
    quotas = None
    registrationInterval = 60
    limits = None
    shutdownTimeout = 10.0
    seeOtherURI = None
    components = ()
    componentSecret = None
    muc = "default"
    chatPath = "/chat"
    converseDir = None
    converseURL = None
    databaseRunner = None
    upstreams = ()
    upstreamTimeout = 10.0
    insecureWebSocket = "refuse"
    archive = None

    def __init__(self, **values):
        for name, value in values.items():
            if name.startswith("_") or not hasattr(Settings, name):
                raise TypeError("unknown setting %r" % (name,))
            setattr(self, name, value)
        if self.limits is None:
            self.limits = Limits()
        if self.muc == "default":
            domains = list(self.domains)
            self.muc = MUCSettings("conference." + domains[0]) if domains else None


@implementer(IStreamServerEndpoint)
class _AnnouncedEndpoint:
    """
    An endpoint that logs where it listens once it does.
    """

    log = Logger()

    def __init__(self, endpoint, what, description, ports):
        self.endpoint = endpoint
        self.what = what
        self.description = description
        self.ports = ports

    def listen(self, factory):
        def listening(port):
            address = port.getHost()
            self.ports.append(address)
            self.log.info(
                "Listening for {what} on {address}",
                what=self.what,
                address=formatAddress(address),
                description=self.description,
            )
            return port

        def failed(reason):
            self.log.error(
                "Cannot listen for {what} on {description}: {error}",
                what=self.what,
                description=self.description,
                error=reason.getErrorMessage(),
            )
            return reason

        return self.endpoint.listen(factory).addCallbacks(listening, failed)


class ListenFailed(Exception):
    """
    A listener could not listen; the message names it and says why.
    """


class _Listener(StreamServerEndpointService):
    """
    A listening service that fails the start of the whole service when it
    cannot listen, as C{twisted.application.strports} services do.
    """

    _raiseSynchronously = True

    def __init__(self, endpoint, factory, kind):
        StreamServerEndpointService.__init__(self, endpoint, factory)
        self.kind = kind

    def privilegedStartService(self):
        try:
            StreamServerEndpointService.privilegedStartService(self)
        except Exception as e:
            raise ListenFailed(
                "cannot listen for %s on %s: %s"
                % (self.endpoint.what, self.endpoint.description, e)
            ) from e


def _metricsRoot(metrics):
    root = Resource()
    root.putChild(b"metrics", MetricsResource(metrics))
    root.putChild(
        b"",
        Data(b"xmppws metrics are at /metrics\n", "text/plain; charset=utf-8"),
    )
    return root


class XMPPService(MultiService):
    """
    The embedded XMPP server and its listeners.

    @ivar settings: the L{Settings}.
    @ivar storage: the L{Storage}, or L{None} when no domain is served
        locally (gateway mode only).
    @ivar server: the L{XMPPServer}, or L{None} likewise.
    @ivar muc: the group chat service (L{xmppws.muc.service.MUCService})
        or L{None}.
    @ivar gateway: the L{GatewayFactory} relaying the C{--upstream}
        domains, or L{None}.
    @ivar monitor: the L{ConnectionMonitor}.
    @ivar metrics: the L{Metrics}.
    @ivar connectionFactory: the L{ConnectionFactory} of every client
        connection, WebSocket and TCP, to the embedded server: one set of
        policies for both (L{None} without it).
    @ivar webSocketFactory: the L{XMPPWebSocketServerFactory} behind every
        C{--listen} port.
    @ivar c2sFactory: the L{StreamCarrierFactory} behind every C{--c2s}
        port.
    @ivar addresses: the addresses listened on, by kind (C{'web'},
        C{'c2s'}, C{'metrics'}), once listening.
    @ivar stoppedIn: seconds the last stop took, or L{None}.
    @ivar exitOnListenFailure: whether a listener that cannot listen ends
        the process with a message (see L{privilegedStartService}).
    """

    log = Logger()
    stoppedIn = None
    exitOnListenFailure = False
    _stopping = False

    def __init__(self, settings, reactor, installSignalHandlers=True):
        """
        @param settings: the L{Settings}.
        @param reactor: the reactor to listen with and time things by.
        @param installSignalHandlers: whether SIGHUP reloads the TLS
            certificates while the service runs.
        """
        MultiService.__init__(self)
        self.settings = settings
        self.reactor = reactor
        self.installSignalHandlers = installSignalHandlers
        self._previousHUP = None
        self.addresses = {"web": [], "c2s": [], "metrics": [], "component": []}
        limits = settings.limits

        self.storage = self.server = self.muc = None
        if settings.domains:
            self._buildServer()
            self.muc = self._groupChat(settings, reactor)

        self.monitor = ConnectionMonitor(
            ConnectionLimiter(limits.maxConnections, limits.maxConnectionsPerIP)
        )
        self.metrics = Metrics(
            self.server,
            self.monitor.describeConnections,
            lambda: list(settings.certificates),
        )
        self.monitor.metrics = self.metrics

        self.connectionFactory = self.gateway = None
        if self.server is not None:
            self.connectionFactory = ConnectionFactory(
                self.server.streamFactory(),
                reactor,
                monitor=self.monitor,
                **limits.connectionPolicies(),
            )
        webSocketHandlers = self.connectionFactory
        if settings.upstreams:
            webSocketHandlers = self._buildGateway()
        self.webSocketFactory = XMPPWebSocketServerFactory(
            connectionFactory=webSocketHandlers,
            reactor=reactor,
            allowedOrigins=settings.origins,
            trustedProxies=settings.trustedProxies,
            maxMessageSize=limits.maxMessageSize,
            handshakeTimeout=limits.handshakeTimeout,
            monitor=self.monitor,
        )
        self.c2sFactory = None
        if self.connectionFactory is not None:
            self.c2sFactory = StreamCarrierFactory(self.connectionFactory, self.monitor)

        extra = []
        if settings.metricsPath:
            extra.append((settings.metricsPath, MetricsResource(self.metrics)))
        chat = self._chatPage(settings)
        for description, endpoint in settings.listen:
            root = buildRoot(
                XMPPWebSocketResource(self.webSocketFactory),
                settings.path,
                self.domains,
                publicURLs=settings.publicURLs,
                trustedProxies=self.webSocketFactory.trustedProxies,
                c2sPorts=self._c2sPorts,
                registration=settings.registration and self.server is not None,
                extra=extra,
                chat=chat,
                mucDomain=self.muc.domain if self.muc is not None else None,
            )
            site = XMPPSite(root, limits.handshakeTimeout, reactor=reactor)
            self._addListener(endpoint, site, "WebSocket and HTTP", description, "web")
        for description, endpoint in settings.c2s:
            self._addListener(endpoint, self.c2sFactory, "XMPP clients", description, "c2s")
        self.components = None
        if settings.components:
            self.components = xmppcomponent.install(self.server, settings.componentSecret)
            for description, endpoint in settings.components:
                self._addListener(
                    endpoint, self.components.factory, "components", description, "component"
                )
        for description, endpoint in settings.metrics:
            site = Site(_metricsRoot(self.metrics), reactor=reactor)
            site.displayTracebacks = False
            self._addListener(endpoint, site, "metrics", description, "metrics")

    def _groupChat(self, settings, reactor):
        """
        The group chat service, attached in process to the server's
        component router, or L{None}.
        """
        if settings.muc is None:
            return None
        runner = settings.databaseRunner
        if runner is None:
            if IReactorThreads.providedBy(reactor):
                runner = ThreadRunner(reactor, name="xmppws-muc-db")
            else:
                # A clock without threads (in tests): write at once.
                runner = InlineRunner()
        store = RoomStore.inDirectory(reactor, settings.dataDir, runner)
        muc = MUCService(settings.muc, store, reactor)
        InProcessComponent(xmppcomponent.router(self.server), muc).setServiceParent(self)
        return muc

    def _chatPage(self, settings):
        """
        C{(path, resource)} of the web chat page, or L{None}.
        """
        if not settings.chatPath:
            return None
        domains = self.domains
        if not domains:
            return None
        page = ChatPage(
            domains[0],
            settings.path,
            mucDomain=self.muc.domain if self.muc is not None else None,
            publicURLs=settings.publicURLs,
            trustedProxies=self.webSocketFactory.trustedProxies,
            converseDir=settings.converseDir,
            converseURL=settings.converseURL,
            registration=settings.registration and self.server is not None,
        )
        return (settings.chatPath, page)

    def _buildServer(self):
        """
        The embedded server, for the domains served locally.
        """
        settings = self.settings
        reactor = self.reactor
        self.storage = Storage.inDirectory(settings.dataDir)
        self.server = XMPPServer(
            self.storage,
            ServerConfig(
                domains=settings.domains,
                plain=settings.plain,
                anonymous=settings.anonymous,
                registration=settings.registration,
                requireEncryption=settings.requireEncryption,
                smTimeout=settings.smTimeout,
                throttle=settings.throttle,
                quotas=settings.quotas,
                registrationInterval=settings.registrationInterval,
                archive=settings.archive,
                databaseRunner=settings.databaseRunner,
                backlog=Backlog,
            ),
            reactor=reactor,
            tlsOptions=settings.certificate,
        )
        installModules(self.server)

    def _buildGateway(self):
        """
        The relay of the C{--upstream} domains.

        @return: the factory of WebSocket handlers: the relay's, or one
            that dispatches between the relay and the embedded server.
        """
        settings = self.settings
        limits = settings.limits
        local = self.server.config.domains if self.server is not None else ()
        self.gateway = GatewayFactory(
            Router(settings.upstreams, local),
            self.reactor,
            monitor=self.monitor,
            upstreamTimeout=settings.upstreamTimeout,
            insecureWebSocket=settings.insecureWebSocket,
            **limits.connectionPolicies(),
        )
        for route in self.gateway.router.insecureRoutes():
            self.log.warn(
                "Relaying {domain} to {upstream} INSECURELY ({insecure}): for tests only",
                domain=route.domain,
                upstream=route.description,
                insecure=route.insecure,
            )
        if self.connectionFactory is None:
            return self.gateway
        return DispatchFactory(
            self.gateway.router,
            self.gateway,
            self.connectionFactory,
            self.reactor,
            openTimeout=limits.openTimeout,
        )

    @property
    def domains(self):
        """
        Every domain this service answers for: served locally first, then
        relayed.
        """
        local = list(self.server.config.domains) if self.server is not None else []
        relayed = [
            d for d in (self.gateway.router.domains if self.gateway is not None else [])
            if d not in local
        ]
        return local + relayed

    def _addListener(self, endpoint, factory, what, description, kind):
        announced = _AnnouncedEndpoint(endpoint, what, description, self.addresses[kind])
        _Listener(announced, factory, kind).setServiceParent(self)

    def factories(self, kind):
        """
        @param kind: C{'web'}, C{'c2s'}, C{'metrics'} or C{'component'}.
        @return: the factory of each listener of that kind (a L{Site} or
            the L{StreamCarrierFactory}), in the order given.
        """
        return [listener.factory for listener in self if listener.kind == kind]

    def _c2sPorts(self):
        return [getattr(a, "port", None) for a in self.addresses["c2s"] if getattr(a, "port", None)]

    # Starting

    def privilegedStartService(self):
        """
        Listen.

        @raise ListenFailed: if a listener cannot listen.
        @raise SystemExit: instead, with the message, if
            L{exitOnListenFailure} is set (under C{twistd}, so that the
            operator reads a line rather than a traceback).
        """
        if self.server is not None:
            self.log.info(
                "xmppws serving {domains} from {dataDir}",
                domains=", ".join(self.server.config.domains),
                dataDir=self.settings.dataDir,
            )
        if self.gateway is not None:
            self.log.info(
                "xmppws relaying {domains} to their servers (gateway mode)",
                domains=", ".join(self.gateway.router.domains),
            )
        try:
            MultiService.privilegedStartService(self)
        except ListenFailed as e:
            if not self.exitOnListenFailure:
                raise
            raise SystemExit("xmppws: %s" % (e,))

    def startService(self):
        MultiService.startService(self)
        if (
            self.installSignalHandlers
            and hasattr(signal, "SIGHUP")
            and threading.current_thread() is threading.main_thread()
        ):
            self._previousHUP = signal.signal(signal.SIGHUP, self._onSIGHUP)
            self.reactor.callWhenRunning(self._takeStopSignals)

    def _onSIGHUP(self, signum, frame):
        self.reactor.callFromThread(self.reloadTLS)

    def _takeStopSignals(self):
        """
        Handle SIGTERM and SIGINT instead of the reactor: stop gracefully,
        and exit with status 0 when done (the reactor's handlers make
        twistd end by the signal); a second signal drops the connections
        still open.
        """
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, self._onStopSignal)

    def _onStopSignal(self, signum, frame):
        self.reactor.callFromThread(self._stopRequested, signal.Signals(signum).name)

    def _stopRequested(self, name):
        if self._stopping:
            self.log.warn(
                "Received {signal} again; dropping the {count} connections left",
                signal=name,
                count=len(self.monitor.connections),
            )
            self.monitor.abortAll()
            return
        self.log.info("Received {signal}; stopping gracefully", signal=name)
        self.reactor.stop()

    def reloadTLS(self):
        """
        Read every TLS certificate again; new connections and STARTTLS get
        the new ones, open connections keep theirs.  A certificate that
        fails to load is kept as it was.

        @return: C{True} if every certificate was reloaded.
        """
        certificates = list(self.settings.certificates)
        if not certificates:
            self.log.info("Reload requested, but no TLS certificate is configured")
            return True
        ok = True
        for certificate in certificates:
            try:
                certificate.reload()
            except CertificateError as e:
                ok = False
                self.log.error(
                    "Cannot reload a TLS certificate, keeping the one in use: {error}",
                    error=str(e),
                )
        return ok

    # Stopping

    def stopService(self):
        """
        Stop gracefully: stop listening, close every stream, wait for
        the peers within the shutdown timeout, end the sessions, close the
        database.

        @return: a L{defer.Deferred} that fires when done.
        """
        Service.stopService(self)
        self._stopping = True
        self.monitor.stopping = True
        started = time.monotonic()
        if self._previousHUP is not None:
            signal.signal(signal.SIGHUP, self._previousHUP)
            self._previousHUP = None
        self.log.info(
            "Stopping: closing {count} connections", count=len(self.monitor.connections)
        )
        public = [s for s in reversed(list(self)) if s.kind != "metrics"]
        private = [s for s in reversed(list(self)) if s.kind == "metrics"]
        d = _stopAll(public)
        d.addCallback(lambda _: self._closeConnections())
        d.addCallback(lambda _: self._endSessions())
        d.addCallback(lambda _: _stopAll(private))

        def stopped(result):
            self.stoppedIn = time.monotonic() - started
            self.log.info("Stopped in {seconds:.2f}s", seconds=self.stoppedIn)
            return result

        return d.addBoth(stopped)

    def _closeConnections(self):
        self.monitor.closeAll(self.settings.seeOtherURI)
        if self.components is not None:
            self.components.closeAll()

        def timedOut(result, timeout):
            self.log.warn(
                "{count} connections did not close within {timeout}s; dropping them",
                count=len(self.monitor.connections),
                timeout=timeout,
            )
            self.monitor.abortAll()
            return self.monitor.drained().addTimeout(
                1, self.reactor, onTimeoutCancel=lambda result, timeout: None
            )

        d = self.monitor.drained()
        d.addTimeout(
            self.settings.shutdownTimeout, self.reactor, onTimeoutCancel=lambda r, t: t
        )
        d.addCallback(lambda timeout: timedOut(None, timeout) if timeout else None)
        return d

    def _endSessions(self):
        if self.server is None:
            return
        for resources in list(self.server.sessions.values()):
            for session in list(resources.values()):
                try:
                    self.server.endSession(session)
                except Exception:
                    self.log.failure("Failed to end {session}", session=session)
        # The modules' own databases (archive, personal data) write what
        # they queued, then close.
        d = closeModules(self.server)
        d.addBoth(lambda _: self.storage.close())
        return d


def _stopAll(services):
    return defer.gatherResults(
        [defer.maybeDeferred(s.stopService) for s in services if s.running],
        consumeErrors=True,
    )


def makeService(settings, reactor):
    """
    The service as C{twistd} runs it: signal handlers installed, and a
    port that cannot be listened on ends the process with a message.

    @param settings: the L{Settings}.
    @param reactor: the reactor.
    @rtype: L{XMPPService}
    """
    service = XMPPService(settings, reactor)
    service.exitOnListenFailure = True
    return service
