# -*- test-case-name: tests.test_gateway_interop -*-
"""
The gateway as the interoperability suites run it: Debian's Prosody
(L{tests.peers}) behind a gateway in the test process, served like
L{tests.interop.fixture.InteropServer} (a plain and a TLS port with the
service's resource tree: the WebSocket endpoint, XEP-0156 host-meta, the
Converse.js page), so that the same Node.js scripts run through it.
"""

import time

from twisted.internet import tcp
from twisted.internet.defer import inlineCallbacks
from twisted.internet.endpoints import serverFromString
from twisted.internet.task import deferLater
from twisted.web.server import Site
from twisted.web.static import File

from tests import peers
from tests.interop.fixture import INTEROP, NODE_MODULES, PASSWORD, USERS, WS_PATH
from xmppws.gateway.relay import GatewayFactory
from xmppws.gateway.routes import Router, parseUpstream
from xmppws.web import buildRoot
from xmppws.websocket import XMPPWebSocketResource, XMPPWebSocketServerFactory

__all__ = ["GatewayInteropServer", "VIA"]

VIA = "gateway"


def _escape(value):
    return value.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


class GatewayInteropServer:
    """
    Prosody behind the gateway, for clients that are not ours:
    C{ws://127.0.0.1:<port>/xmpp-websocket} and its C{wss://} twin, each
    user subscribed to every other on Prosody, stream management on.

    @ivar prosody: the L{tests.peers.Prosody}, once started.
    @ivar certPath: the certificate a client must trust for C{wss://}
        (the gateway's, which is Prosody's too).
    @ivar via: how the matrix names the route these clients take.
    """

    def __init__(self, directory, domain="localhost", users=USERS):
        self.directory = directory
        self.domain = domain
        self.users = users
        self.prosody = None
        self._ports = []
        self._portNumbers = ()

    @property
    def via(self):
        version = self.prosody.version() if self.prosody is not None else None
        return "%s to Prosody %s" % (VIA, (version or "").split("-")[0] or "?")

    @inlineCallbacks
    def start(self, reactor):
        """
        Start Prosody, then the gateway on both ports.
        """
        why = peers.available("prosody")
        if why:
            from twisted.trial.unittest import SkipTest

            raise SkipTest(why)
        self.directory.makedirs(ignoreExistingDirectory=True)
        prosody = peers.Prosody(
            self.directory.child("prosody").path, domain=self.domain, tls=True,
            # What the scenario does beyond chat (archive, avatars, vCards,
            # bookmarks) needs these on the server behind the gateway.
            modules=["smacks", "mam", "pep", "vcard", "private"],
        )
        prosody.addUsers(self.users, PASSWORD)
        for user in self.users:
            prosody.addRoster(user, [u for u in self.users if u != user])
        self.prosody = prosody.start()
        self.certPath = prosody.certPath
        route = parseUpstream(
            reactor,
            "%s=tcp:host=127.0.0.1:port=%d:ca=%s"
            % (self.domain, prosody.c2sPort, _escape(prosody.certPath)),
        )
        self.gateway = GatewayFactory(Router([route]), reactor)
        factory = XMPPWebSocketServerFactory(connectionFactory=self.gateway, reactor=reactor)
        dist = NODE_MODULES.child("converse.js").child("dist")
        page = INTEROP.child("browser").child("converse.html")
        root = buildRoot(
            XMPPWebSocketResource(factory),
            WS_PATH,
            [self.domain],
            extra=[("/dist", File(dist.path)), ("/converse.html", File(page.path))],
        )
        site = Site(root)
        plain = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(site)
        tls = yield serverFromString(
            reactor,
            "ssl:0:interface=127.0.0.1:privateKey=%s:certKey=%s"
            % (_escape(prosody.keyPath), _escape(prosody.certPath)),
        ).listen(site)
        self._ports = [plain, tls]
        self.httpPort = plain.getHost().port
        self.httpsPort = tls.getHost().port
        self._portNumbers = (self.httpPort, self.httpsPort)
        self.wsURL = "ws://127.0.0.1:%d%s" % (self.httpPort, WS_PATH)
        self.wssURL = "wss://%s:%d%s" % (self.domain, self.httpsPort, WS_PATH)

    def url(self, transport):
        return {"ws": self.wsURL, "wss": self.wssURL}[transport]

    @inlineCallbacks
    def stop(self, reactor, timeout=10.0):
        """
        Stop listening, end what the clients left open (the relays with
        them), and stop Prosody.
        """
        for port in self._ports:
            yield port.stopListening()
        self._ports = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = self._connections(reactor)
            if not left and not self.gateway.relays:
                break
            if time.monotonic() > deadline - timeout / 2:
                for connection in left:
                    connection.abortConnection()
                for relay in list(self.gateway.relays):
                    relay.abortConnection()
            yield deferLater(reactor, 0.05, lambda: None)
        for call in reactor.getDelayedCalls():
            if getattr(call.func, "__name__", None) == "onCloseHandshakeTimeout":
                call.cancel()
        if self.prosody is not None:
            self.prosody.stop()

    def _connections(self, reactor):
        found = []
        for selectable in set(reactor.getReaders()) | set(reactor.getWriters()):
            if not isinstance(selectable, tcp.Connection):
                continue
            try:
                port = selectable.getHost().port
            except OSError:
                continue
            if port in self._portNumbers:
                found.append(selectable)
        return found

