# -*- test-case-name: tests.test_gateway_servers -*-
"""
The gateway in front of real servers: Debian's Prosody and ejabberd
(L{tests.peers}, on loopback ports with generated configurations, a CA
and users), with clients that are not ours on both sides: a WebSocket
client through the gateway (the C{websockets} package) and slixmpp over
TCP straight to the server.

Each server runs once per test class (ejabberd takes seconds to start);
a test that kills its server starts one of its own.
"""

import os
import signal

from twisted.internet import reactor
from twisted.internet import threads
from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.python.filepath import FilePath
from twisted.trial import unittest

from tests import peers
from tests.certs import writeCertificate
from tests.e2ehelpers import (
    PASSWORD,
    TIMEOUT,
    SlixmppClient,
    WebSocketsClient,
    isMessage,
    isPresence,
    message,
    presence,
    waitFor,
)
from tests.gatewaypeers import (
    ChurnClient,
    LegacyClient,
    RawClient,
    LiveGateway,
    SharedPeers,
    SourceBoundClient,
    startEjabberd,
    startProsody,
)
from twisted.words.xish import domish

NS_STREAMS = "http://etherx.jabber.org/streams"
NS_ERRORS = "urn:ietf:params:xml:ns:xmpp-streams"


def _streamError(element):
    """
    The condition of a stream error element, or L{None}.
    """
    if (element.uri, element.name) != (NS_STREAMS, "error"):
        return None
    for child in element.elements():
        if child.uri == NS_ERRORS and child.name != "text":
            return child.name
    return None


def isStreamError(condition):
    def predicate(element):
        return _streamError(element) == condition

    predicate.description = "stream error %s" % (condition,)
    return predicate


class ServerScenarios:
    """
    What must work through the gateway in front of any server; the
    subclasses say which server.
    """

    peerName = None
    shared = None

    def setUp(self):
        why = peers.available(self.peerName)
        if why:
            raise unittest.SkipTest(why)
        self.server = self.shared.get(self)

    # Helpers

    def route(self, port=None, options=""):
        """
        A route to the server, STARTTLS verified against its CA.
        """
        return "localhost=tcp:host=127.0.0.1:port=%d:ca=%s%s" % (
            port or self.server.c2sPort, self.server.certPath, options)

    @inlineCallbacks
    def gateway(self, *upstreams, **options):
        """
        A gateway in this process, stopped at clean-up.
        """
        gateway = LiveGateway(reactor, upstreams or [self.route()], **options)
        yield gateway.start()
        self.addCleanup(gateway.stop)
        return gateway

    def webSocketClient(self, gateway, username, cls=WebSocketsClient):
        client = cls(reactor, gateway.url, username, "gw-" + username)

        def dispose():
            if client.ws is None:
                return None
            return client.cut().addErrback(lambda failure: failure.trap(OSError))

        self.addCleanup(dispose)
        return client

    def tcpClient(self, username):
        client = SlixmppClient(reactor, username)
        self.addCleanup(client.stop)
        return client

    def relaysGone(self, gateway):
        # A server may leave a TLS close unanswered: the relay's reaper
        # then ends it, within twice the close timeout.
        timeout = 2 * gateway.factory.policies.closeTimeout + TIMEOUT
        return waitFor(reactor, lambda: not gateway.factory.relays, timeout=timeout,
                       what="relays to end")

    # Scenarios

    @inlineCallbacks
    def test_messagesAndPresence(self):
        """
        A WebSocket client through the gateway and a TCP client straight to
        the server see each other's presence and exchange messages; the
        gateway's upstream stream is encrypted with STARTTLS, verified
        against the server's CA.
        """
        gateway = yield self.gateway()
        alice = self.webSocketClient(gateway, "alice")
        bob = self.tcpClient("bob")
        yield alice.login()
        [relay] = gateway.factory.relays
        self.assertTrue(relay.upstream.secure)
        yield bob.login(self.server.c2sPort, tls=True, caFile=self.server.certPath)
        yield alice.send(presence())
        yield bob.inbox.expect(isPresence(sender="alice@localhost"))
        yield alice.inbox.expect(isPresence(sender="bob@localhost"))
        yield alice.send(message("bob@localhost", "through the gateway"))
        yield bob.inbox.expect(isMessage("through the gateway", sender="alice@localhost"))
        yield bob.call(
            lambda: bob.xmpp.send_message(mto=alice.jid, mbody="straight back", mtype="chat")
        )
        received = yield alice.inbox.expect(isMessage("straight back", sender="bob@localhost"))
        self.assertTrue(received.getAttribute("from").startswith("bob@localhost/"))
        yield alice.close()
        yield bob.inbox.expect(isPresence(sender="alice@localhost", type="unavailable"))
        yield self.relaysGone(gateway)

    @inlineCallbacks
    def test_wrongCertificate(self):
        """
        A server whose certificate does not verify against the configured
        CA is not relayed to: the client gets C{remote-connection-failed}.
        """
        other = writeCertificate(FilePath(self.mktemp()))[1].path
        gateway = yield self.gateway(
            "localhost=tcp:host=127.0.0.1:port=%d:ca=%s" % (self.server.c2sPort, other)
        )
        alice = self.webSocketClient(gateway, "alice")
        error = yield self.assertFailure(alice.login(), AssertionError)
        self.assertIn("remote-connection-failed", str(error))
        yield self.relaysGone(gateway)

    @inlineCallbacks
    def test_upstreamDown(self):
        """
        With its only server down, a client gets C{remote-connection-failed};
        with a second route to a server that is up, the gateway fails over
        to it.
        """
        down = "localhost=tcp:host=127.0.0.1:port=%d:ca=%s" % (
            peers.freePort(), self.server.certPath)
        gateway = yield self.gateway(down)
        alice = self.webSocketClient(gateway, "alice")
        error = yield self.assertFailure(alice.login(), AssertionError)
        self.assertIn("remote-connection-failed", str(error))
        failover = yield self.gateway(down, self.route())
        carol = self.webSocketClient(failover, "carol")
        yield carol.login()
        yield carol.close()

    @inlineCallbacks
    def test_clientCut(self):
        """
        A WebSocket client whose connection drops: the gateway closes its
        upstream stream, the server ends the session (the TCP client sees
        it go unavailable), and nothing is left of the pair.
        """
        gateway = yield self.gateway()
        alice = self.webSocketClient(gateway, "alice")
        bob = self.tcpClient("bob")
        yield alice.login()
        yield bob.login(self.server.c2sPort, tls=True, caFile=self.server.certPath)
        yield alice.send(presence())
        yield bob.inbox.expect(isPresence(sender="alice@localhost"))
        yield alice.cut()
        yield bob.inbox.expect(isPresence(sender="alice@localhost", type="unavailable"))
        yield self.relaysGone(gateway)

    @inlineCallbacks
    def test_legacyClient(self):
        """
        A client in the draft-00 framing logs in through the gateway and
        exchanges messages with a TCP client.
        """
        gateway = yield self.gateway()
        legacy = LegacyClient(reactor, gateway.url, "carol")
        self.addCleanup(legacy.abort)
        bob = self.tcpClient("bob")
        jid = yield legacy.login()
        self.assertTrue(jid.startswith("carol@localhost/"))
        yield bob.login(self.server.c2sPort, tls=True, caFile=self.server.certPath)
        yield legacy.send("<message to='bob@localhost' type='chat'><body>old style</body></message>")
        yield bob.inbox.expect(isMessage("old style", sender="carol@localhost"))
        yield bob.call(lambda: bob.xmpp.send_message(mto=jid, mbody="new style", mtype="chat"))
        yield legacy.inbox.expect(isMessage("new style", sender="bob@localhost"))
        yield legacy.close()
        self.assertEqual(legacy.inbox.history[-1], "</stream:stream>")

    @inlineCallbacks
    def test_resumption(self):
        """
        XEP-0198 passes through: a client whose connection drops resumes
        its session through another gateway, and gets what was sent to it
        meanwhile.
        """
        first = yield self.gateway()
        second = yield self.gateway()
        alice = self.webSocketClient(first, "alice")
        bob = self.tcpClient("bob")
        yield alice.login(sm=True)
        self.assertIsNotNone(alice.smId)
        yield bob.login(self.server.c2sPort, tls=True, caFile=self.server.certPath)
        yield alice.cut()
        yield self.relaysGone(first)
        yield bob.call(lambda: bob.xmpp.send_message(mto=alice.jid, mbody="meanwhile", mtype="chat"))
        alice.url = second.url
        resumed = yield alice.resume()
        self.assertEqual(resumed.name, "resumed")
        yield alice.inbox.expect(isMessage("meanwhile", sender="bob@localhost"))
        yield alice.close()

    @inlineCallbacks
    def test_upstreamKilled(self):
        """
        A server killed mid-session: the WebSocket client gets
        C{system-shutdown} and the close, and the pair is gone.
        """
        server = self.freshServer()
        gateway = yield self.gateway(
            "localhost=tcp:host=127.0.0.1:port=%d:ca=%s" % (server.c2sPort, server.certPath)
        )
        alice = self.webSocketClient(gateway, "alice")
        yield alice.login()
        for pid in [server.pid] + peers.descendants(server.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        yield alice.inbox.expect(isStreamError("system-shutdown"))
        yield self.relaysGone(gateway)


class SystemServiceTests(unittest.TestCase):
    """
    The test setup installs Debian's Prosody and ejabberd without leaving
    their system services on the ports C{twistd xmppws} uses by default.
    """

    def test_portsFree(self):
        """
        No Prosody or ejabberd process listens on 5222 or 5280, the ports
        C{twistd xmppws} listens on by default.
        """
        listening = set()
        for path in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(path) as f:
                    lines = f.readlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                port = int(fields[1].rsplit(":", 1)[1], 16)
                if fields[3] == "0A" and port in (5222, 5280):
                    listening.add(fields[9])
        holders = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                fds = os.listdir("/proc/%s/fd" % (pid,))
                with open("/proc/%s/cmdline" % (pid,), "rb") as f:
                    command = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
            if not any(name in command for name in ("prosody", "beam", "ejabberd")):
                continue
            for fd in fds:
                try:
                    target = os.readlink("/proc/%s/fd/%s" % (pid, fd))
                except OSError:
                    continue
                if target.startswith("socket:[") and target[8:-1] in listening:
                    holders.append(command)
        self.assertEqual(holders, [])


class ProsodyTests(ServerScenarios, unittest.TestCase):
    """
    The gateway in front of Prosody.
    """

    peerName = "prosody"
    shared = SharedPeers(lambda directory: startProsody(directory, directTLSPort=True))

    def freshServer(self):
        server = startProsody(os.path.abspath(self.mktemp()))
        self.addCleanup(server.stop)
        return server

    @inlineCallbacks
    def test_directTLS(self):
        """
        A route with C{tls=direct} speaks TLS from the first byte
        (XEP-0368), verified against the CA.
        """
        gateway = yield self.gateway(self.route(self.server.directTLSPort, ":tls=direct"))
        alice = self.webSocketClient(gateway, "alice")
        yield alice.login()
        [relay] = gateway.factory.relays
        self.assertTrue(relay.upstream.secure)
        yield alice.close()


    @inlineCallbacks
    def test_churn(self):
        """
        Clients cut at random points of their lives (by reset or orderly
        close) leave no half-open pair behind: once they are gone, no
        socket is left on the gateway's port nor on the server's, and no
        relay is left in the gateway.
        """
        gateway = yield self.gateway()
        port = gateway.port.getHost().port
        clients = [
            ChurnClient("127.0.0.1", port, "/xmpp-websocket", ["alice", "bob", "carol"],
                        PASSWORD, seed)
            for seed in range(4)
        ]
        pool = reactor.getThreadPool()
        outcomes = yield gatherResults(
            [threads.deferToThreadPool(reactor, pool, client.run, 40) for client in clients]
        )
        stages = {}
        for outcome in outcomes:
            for stage, count in outcome.items():
                stages[stage] = stages.get(stage, 0) + count
        errors = {k: v for k, v in stages.items() if k.startswith("error")}
        self.assertEqual(errors, {}, stages)
        self.assertEqual(set(stages), set(ChurnClient.STAGES), stages)

        def settled():
            return (
                not gateway.factory.relays
                and not gateway.monitor.connections
                and not peers.tcpSockets(port)
                and not peers.tcpSockets(self.server.c2sPort)
            )

        try:
            yield waitFor(reactor, settled, 20, "every pair to end")
        except AssertionError:
            self.fail(
                "left behind: %d relays, gateway port %s, server port %s"
                % (len(gateway.factory.relays), peers.tcpSockets(port),
                   peers.tcpSockets(self.server.c2sPort))
            )


    @inlineCallbacks
    def test_floodSlowClient(self):
        """
        A client that stops reading while another floods it: the gateway
        stops reading its server connection (nothing piles up in the
        gateway), and once the client reads again, every message arrives.
        """
        gateway = yield self.gateway()
        port = gateway.port.getHost().port
        pool = reactor.getThreadPool()
        slow = yield threads.deferToThreadPool(
            reactor, pool, RawClient, "127.0.0.1", port, "/xmpp-websocket")
        self.addCleanup(slow.close)
        fast = yield threads.deferToThreadPool(
            reactor, pool, RawClient, "127.0.0.1", port, "/xmpp-websocket", 65536)
        self.addCleanup(fast.close)
        jid = yield threads.deferToThreadPool(
            reactor, pool, slow.login, "alice", PASSWORD, "slow")
        yield threads.deferToThreadPool(reactor, pool, fast.login, "bob", PASSWORD, "fast")
        [relay] = [r for r in gateway.factory.relays
                   if r.transport.getPeer().port == slow.sock.getsockname()[1]]
        count, body = 3000, "x" * 1000

        def flood():
            for i in range(count):
                fast.send(("<message xmlns='jabber:client' to='%s' type='chat'><body>%d %s"
                           "</body></message>" % (jid, i, body)).encode())

        yield threads.deferToThreadPool(reactor, pool, flood)
        yield waitFor(reactor, lambda: relay.upstreamReadingPaused, 20,
                      "the gateway to stop reading from the server")
        messages = yield threads.deferToThreadPool(reactor, pool, slow.read, count)
        bodies = [m for m in messages if b"<body>" in m]
        self.assertEqual(len(bodies), count)
        self.assertIn(b"<body>%d " % (count - 1,), bodies[-1])


class EjabberdTests(ServerScenarios, unittest.TestCase):
    """
    The gateway in front of ejabberd, including the PROXY protocol.
    """

    peerName = "ejabberd"
    shared = SharedPeers(startEjabberd)

    def freshServer(self):
        server = startEjabberd(os.path.abspath(self.mktemp()), proxyPort=None)
        self.addCleanup(server.stop)
        return server

    @inlineCallbacks
    def assertClientAddress(self, version):
        """
        A client connecting from 127.0.0.2 through a gateway speaking the
        PROXY protocol is seen by ejabberd at 127.0.0.2.
        """
        gateway = yield self.gateway(
            self.route(self.server.proxyPort, ":proxy=v%d" % (version,))
        )
        alice = self.webSocketClient(gateway, "alice", SourceBoundClient)
        jid = yield alice.login()
        info = self.server.ctl("connected_users_info")
        [line] = [line for line in info.splitlines() if line.startswith(jid)]
        self.assertIn("127.0.0.2", line.split())
        yield alice.close()

    def test_proxyV1(self):
        """
        PROXY protocol version 1: ejabberd reports the client's address.
        """
        return self.assertClientAddress(1)

    def test_proxyV2(self):
        """
        PROXY protocol version 2: ejabberd reports the client's address.
        """
        return self.assertClientAddress(2)

    @inlineCallbacks
    def test_withoutProxyProtocol(self):
        """
        Without the PROXY protocol, ejabberd sees the gateway's address.
        """
        gateway = yield self.gateway()
        alice = self.webSocketClient(gateway, "alice", SourceBoundClient)
        jid = yield alice.login()
        info = self.server.ctl("connected_users_info")
        [line] = [line for line in info.splitlines() if line.startswith(jid)]
        self.assertNotIn("127.0.0.2", line.split())
        yield alice.close()
