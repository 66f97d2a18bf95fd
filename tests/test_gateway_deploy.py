# -*- test-case-name: tests.test_gateway_deploy -*-
"""
Gateway deployments with real processes: C{twistd xmppws --upstream}
gateways (L{tests.peers.Gateway}) draining on SIGTERM while their clients
move to another gateway, and two gateways in front of a two-node
ejabberd cluster.
"""

import os
import signal
import socket
import time

from twisted.internet import reactor, threads
from twisted.internet.defer import inlineCallbacks
from twisted.trial import unittest

from tests import peers
from tests.e2ehelpers import (
    SlixmppClient,
    WebSocketsClient,
    isMessage,
    isPresence,
    message,
    presence,
    waitFor,
)
from tests.gatewaypeers import LegacyClient, startEjabberd, startProsody

NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"


def _route(server):
    return "localhost=tcp:host=127.0.0.1:port=%d:ca=%s" % (server.c2sPort, server.certPath)


class DeploymentTestCase(unittest.TestCase):
    """
    Helpers: servers and gateways stopped at clean-up, clients
    disposed of.
    """

    def need(self, name):
        why = peers.available(name)
        if why:
            raise unittest.SkipTest(why)

    def gateway(self, upstreams, extraArgs=()):
        gateway = peers.Gateway(os.path.abspath(self.mktemp()), upstreams, extraArgs=extraArgs)
        self.addCleanup(gateway.stop)
        return gateway.start()

    def webSocketClient(self, url, username):
        client = WebSocketsClient(reactor, url, username, "deploy-" + username)

        def dispose():
            if client.ws is None:
                return None
            return client.cut().addErrback(lambda failure: None)

        self.addCleanup(dispose)
        return client

    def tcpClient(self, username):
        client = SlixmppClient(reactor, username)
        self.addCleanup(client.stop)
        return client


class DrainTests(DeploymentTestCase):
    """
    SIGTERM drains a gateway process.
    """

    @inlineCallbacks
    def test_drainAndResumeElsewhere(self):
        """
        On SIGTERM, a gateway sends its RFC 7395 client elsewhere
        (C{see-other-uri}) and gives its draft-00 client C{system-shutdown};
        it closes the upstream stream of the latter with its footer (the
        server ends that session at once) and keeps the former's resumable
        (the client resumes it through the other gateway process and gets
        what was sent meanwhile); it exits with status 0 leaving no socket
        behind.
        """
        self.need("prosody")
        server = startProsody(os.path.abspath(self.mktemp()))
        self.addCleanup(server.stop)
        second = self.gateway([_route(server)])
        first = self.gateway([_route(server)], ["--see-other-uri", second.webSocketURL])
        alice = self.webSocketClient(first.webSocketURL, "alice")
        carol = LegacyClient(reactor, first.webSocketURL, "carol")
        self.addCleanup(carol.abort)
        bob = self.tcpClient("bob")
        yield alice.login(sm=True)
        yield carol.login()
        yield bob.login(server.c2sPort, tls=True, caFile=server.certPath)
        yield alice.send(presence())
        yield carol.send("<presence/>")
        yield bob.inbox.expect(isPresence(sender="alice@localhost"))
        yield bob.inbox.expect(isPresence(sender="carol@localhost"))

        os.kill(first.process.pid, signal.SIGTERM)
        close = yield alice.inbox.expect(
            lambda e: (e.uri, e.name) == (NS_FRAMING, "close"))
        self.assertEqual(close.getAttribute("see-other-uri"), second.webSocketURL)
        yield waitFor(reactor, lambda: carol.inbox.history and carol.inbox.history[-1]
                      == "</stream:stream>", what="carol's stream to close")
        self.assertIn(
            "system-shutdown", "".join(h for h in carol.inbox.history if isinstance(h, str))
        )
        yield bob.inbox.expect(isPresence(sender="carol@localhost", type="unavailable"))

        exited = yield threads.deferToThread(first.process.wait, 20)
        self.assertEqual(exited, 0)
        self.assertEqual(peers.tcpSockets(first.httpPort), {})

        yield bob.call(lambda: bob.xmpp.send_message(mto=alice.jid, mbody="while moving",
                                                     mtype="chat"))
        alice.url = close.getAttribute("see-other-uri")
        resumed = yield alice.resume()
        self.assertEqual(resumed.name, "resumed")
        yield alice.inbox.expect(isMessage("while moving", sender="bob@localhost"))
        self.assertFalse(alice.inbox.taken(isPresence(sender="alice@localhost",
                                                      type="unavailable")))
        yield alice.close()


class ClusterTests(DeploymentTestCase):
    """
    Scaling out: two gateway processes in front of a two-node ejabberd
    cluster (on loopback, with an C{epmd} of the test's own), each gateway
    relaying to a different node.
    """

    @inlineCallbacks
    def test_twoGatewaysTwoNodes(self):
        """
        A client on each gateway reaches a different node of the cluster;
        they see each other's presence and exchange messages.
        """
        self.need("ejabberd")
        epmdPort = peers.startEpmd()
        self.addCleanup(peers.stopEpmd, epmdPort)
        cookie = "XMPPWSCLUSTERTEST"
        common = dict(cookie=cookie, epmdPort=epmdPort, proxyPort=None)
        a = startEjabberd(os.path.abspath(self.mktemp()), nodeName="a@localhost", **common)
        self.addCleanup(a.stop)
        b = peers.Ejabberd(
            os.path.abspath(self.mktemp()), nodeName="b@localhost", tls=True,
            scramHash="sha256", streamManagement=True, extraConfig="  mod_admin_extra: {}",
            **common,
        )
        self.addCleanup(b.stop)
        b.start(timeout=60)
        yield threads.deferToThread(self.join, b, a)

        first = self.gateway([_route(a)])
        second = self.gateway([_route(b)])
        alice = self.webSocketClient(first.webSocketURL, "alice")
        bob = self.webSocketClient(second.webSocketURL, "bob")
        yield alice.login()
        yield bob.login()
        nodes = self.nodes(a)
        self.assertEqual(nodes[alice.jid], "a@localhost")
        self.assertEqual(nodes[bob.jid], "b@localhost")

        yield alice.send(presence())
        yield bob.send(presence())
        yield alice.inbox.expect(isPresence(sender="bob@localhost"))
        yield bob.inbox.expect(isPresence(sender="alice@localhost"))
        yield alice.send(message(bob.jid, "from node a"))
        yield bob.inbox.expect(isMessage("from node a", sender="alice@localhost"))
        yield bob.send(message(alice.jid, "from node b"))
        yield alice.inbox.expect(isMessage("from node b", sender="bob@localhost"))
        yield alice.close()
        yield bob.close()

    def join(self, node, seed):
        """
        Join C{node} to C{seed}'s cluster and wait until it serves clients
        again (joining restarts it).
        """
        node.ctl("join_cluster", seed.nodeName, timeout=120)
        deadline = time.monotonic() + 60
        while True:
            listed = node.ctl("list_cluster")
            if seed.nodeName in listed and node.nodeName in listed:
                try:
                    socket.create_connection(("127.0.0.1", node.c2sPort), timeout=1).close()
                    if "alice" in node.ctl("registered_users", "localhost"):
                        return
                except (OSError, peers.PeerError):
                    pass
            if time.monotonic() > deadline:
                raise AssertionError("%s did not join %s: %s" % (node.nodeName, seed.nodeName,
                                                                 listed))
            time.sleep(0.2)

    def nodes(self, node):
        """
        The node of every session of the cluster, by full JID.
        """
        found = {}
        for line in node.ctl("connected_users_info").splitlines():
            fields = line.split()
            if len(fields) >= 6:
                found[fields[0]] = fields[5]
        return found
