# -*- test-case-name: tests.test_c2s_component -*-
"""
XEP-0114 external components for the embedded server, through tx-xmpp's
component C{Router} and C{XMPPComponentServerFactory}: an existing Twisted
component (a tx-xmpp pubsub or MUC service, say) attaches with a shared
secret and is reached by clients at its subdomain.

Addresses are checked as the server checks clients' (L{xmppws.c2s.jid}):

  - the stream header's C{to} (read before the handshake) is prepared,
    never interned; a missing one gets C{improper-addressing}, a
    malformed one or one of the server's own domains C{host-unknown};
  - a second component for a domain already attached gets C{conflict};
  - a stanza whose C{from} is not at the component's domain gets the
    C{invalid-from} stream error (one without C{from} is stamped with
    the domain); one with a malformed C{to} comes back with
    C{jid-malformed}.

Stanzas a component sends reach clients in C{jabber:client}.  In-process
components (the group chat service) attach to the same router
(L{router}).
"""

import secrets

from twisted.logger import Logger
from twisted.words.protocols.jabber import xmlstream
from twisted.words.protocols.jabber.error import StreamError
from tx_xmpp.component import (
    NS_COMPONENT_ACCEPT,
    ListenComponentAuthenticator,
    Router,
    XMPPComponentServerFactory,
)

from xmppws.c2s import jid as jids
from xmppws.c2s._stanzas import errorReply
from xmppws.c2s.namespaces import NS_CLIENT

__all__ = ["ComponentRouter", "ComponentService", "install", "router"]


class ComponentRouter(Router):
    """
    tx-xmpp's router, routing without logging stanza contents (message
    bodies stay out of logs).
    """

    log = Logger()

    def addRoute(self, destination, xs):
        """
        Route C{destination} to C{xs}, unless another stream serves it
        already: then C{xs} is closed with the C{conflict} stream error.
        """
        current = self.routes.get(destination)
        if current is not None and current is not xs:
            self.log.warn("A second component asked for {host}; refused", host=destination)
            if hasattr(xs, "sendStreamError"):
                xs.sendStreamError(StreamError("conflict"))
            return
        Router.addRoute(self, destination, xs)

    def removeRoute(self, destination, xs):
        if self.routes.get(destination) is xs:
            Router.removeRoute(self, destination, xs)

    def route(self, stanza):
        try:
            destination = jids.parse(stanza["to"])
        except (KeyError, jids.JIDMalformed):
            self.log.info("Dropped a component stanza without a valid 'to'")
            return
        route = self.routes.get(destination.host, self.routes.get(None))
        if route is not None:
            route.send(stanza)
        elif stanza.getAttribute("type") not in ("result", "error"):
            self.log.info("No route to {host}", host=destination.host)


class _ServerRoute:
    """
    The router's route to the embedded server's own domains.
    """

    log = Logger()

    def __init__(self, server):
        self._server = server

    def addObserver(self, *args, **kwargs):
        pass

    def removeObserver(self, *args, **kwargs):
        pass

    def send(self, stanza):
        sender = stanza.getAttribute("from")
        try:
            host = jids.parse(sender).host if sender else None
        except jids.JIDMalformed:
            host = None
        if host is None or host in self._server.config.domains:
            self.log.warn("Dropped a component stanza with a forged 'from'")
            return
        _toClientNamespace(stanza)
        self._server.route(stanza)


def _toClientNamespace(element):
    """
    Move a stanza read from a component stream (and its children in the
    same namespace) from C{jabber:component:accept} to C{jabber:client},
    so that clients get it in their own namespace.
    """
    if element.uri == NS_COMPONENT_ACCEPT:
        element.uri = NS_CLIENT
    if element.defaultUri == NS_COMPONENT_ACCEPT:
        element.defaultUri = NS_CLIENT
    for child in element.elements():
        _toClientNamespace(child)


class _ComponentAuthenticator(ListenComponentAuthenticator):
    """
    tx-xmpp's component authenticator, checking the header's C{to} with
    the server's JID parser instead of interning it.
    """

    def __init__(self, secret, server):
        ListenComponentAuthenticator.__init__(self, secret)
        self.server = server

    def streamStarted(self, rootElement):
        xmlstream.Authenticator.streamStarted(self, rootElement)
        xs = self.xmlstream
        xs.namespace = rootElement.defaultUri
        xs.prefixes = {uri: prefix for prefix, uri in rootElement.localPrefixes.items()}
        xs.sid = secrets.token_hex(8)
        if rootElement.defaultUri != self.namespace:
            xs.sendStreamError(StreamError("invalid-namespace"))
            return
        to = rootElement.getAttribute("to")
        if not to:
            xs.sendStreamError(StreamError("improper-addressing"))
            return
        try:
            domain = jids.prepDomainpart(to)
        except jids.JIDMalformed:
            domain = None
        if domain is None or domain in self.server.config.domains:
            xs.sendStreamError(StreamError("host-unknown"))
            return
        xs.thisEntity = jids.fromPrepared(domain)
        xs.sendHeader()
        xs.addOnetimeObserver("/*", self.onElement)


class _ComponentServerFactory(XMPPComponentServerFactory):
    """
    tx-xmpp's component factory with L{_ComponentAuthenticator}, one
    component per domain, and a check of the C{from} of every stanza a
    component sends.
    """

    log = Logger()

    def __init__(self, router, secret, server):
        XMPPComponentServerFactory.__init__(self, router, secret)
        self.authenticatorFactory = lambda: _ComponentAuthenticator(self.secret, server)

    def connectionInitialized(self, xs):
        destination = xs.thisEntity.host
        if destination in self.router.routes:
            self.log.warn("A second component claimed {domain}", domain=destination)
            xs.sendStreamError(StreamError("conflict"))
            return
        self.router.routes[destination] = xs
        xs.addObserver("/*", self._fromComponent, 0, destination, xs)
        xs.addObserver(xmlstream.STREAM_END_EVENT, self.connectionLost, 0, destination, xs)

    def connectionLost(self, destination, xs, reason):
        xs.removeObserver("/*", self._fromComponent)
        if self.router.routes.get(destination) is xs:
            del self.router.routes[destination]

    def _fromComponent(self, destination, xs, stanza):
        sender = stanza.getAttribute("from")
        if sender is None:
            stanza["from"] = destination
        else:
            try:
                host = jids.parse(sender).host
            except jids.JIDMalformed:
                host = None
            if host != destination:
                self.log.warn(
                    "The component for {domain} sent a stanza from another domain",
                    domain=destination,
                )
                xs.sendStreamError(StreamError("invalid-from"))
                return
        try:
            jids.parse(stanza.getAttribute("to") or "")
        except jids.JIDMalformed as e:
            if stanza.getAttribute("type") not in ("error", "result"):
                xs.send(
                    errorReply(
                        stanza,
                        "jid-malformed",
                        "modify",
                        "The %s is not valid (%s)." % (e.part, e.reason),
                    )
                )
            return
        self.router.route(stanza)


class _Components:
    """
    The server's view of attached components: domain to a callable that
    routes a stanza there.
    """

    def __init__(self, router, server):
        self._router = router
        self._server = server

    def _attached(self):
        return [
            host
            for host in self._router.routes
            if host is not None and host not in self._server.config.domains
        ]

    def get(self, host, default=None):
        if host in self._attached():
            return self._router.route
        return default

    def keys(self):
        return self._attached()

    def __iter__(self):
        return iter(self._attached())

    def __contains__(self, host):
        return host in self._attached()


class ComponentService:
    """
    The component port's state.

    @ivar router: the L{ComponentRouter}.
    @ivar factory: the tx-xmpp C{XMPPComponentServerFactory} to listen
        with (TCP, or any other endpoint).
    """

    def __init__(self, server, secret=None):
        self._server = server
        self.router = ComponentRouter()
        self.factory = None
        if secret:
            self.listen(secret)
        for domain in server.config.domains:
            self.router.addRoute(domain, _ServerRoute(server))
        server.components = _Components(self.router, server)

    def listen(self, secret):
        """
        Make the factory external components connect to.
        """
        self.factory = _ComponentServerFactory(self.router, secret, self._server)

    def closeAll(self):
        """
        Close every attached component's stream with C{system-shutdown}.
        """
        for xs in list(self.router.routes.values()):
            # The server's own route and in-process components (pipes)
            # have no stream to close.
            if not isinstance(xs, _ServerRoute) and hasattr(xs, "sendStreamError"):
                xs.sendStreamError(StreamError("system-shutdown"))


def install(server, secret):
    """
    Attach a component router to C{server}, with a factory external
    components connect to.

    @param secret: the shared secret components authenticate with.
    @rtype: L{ComponentService}
    """
    if not secret:
        raise ValueError("a component secret is required")
    service = server.modules.get("component")
    if service is None:
        service = ComponentService(server)
        server.modules["component"] = service
    service.listen(secret)
    return service


def router(server):
    """
    The component router of C{server}, made on first use: in-process
    components (L{xmppws.muc.component.InProcessComponent}) attach to
    it as external ones do through L{install}.

    @rtype: L{ComponentRouter}
    """
    service = server.modules.get("component")
    if service is None:
        service = ComponentService(server)
        server.modules["component"] = service
    return service.router
