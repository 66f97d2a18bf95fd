"""
Tests for routing in the embedded server (RFC 6120 section 10, RFC 6121
section 8), and for the same server stack serving TCP and WebSocket.
"""

from twisted.internet.testing import MemoryReactorClock
from twisted.test import iosim
from twisted.trial import unittest
from twisted.words.protocols.jabber import client, jid, xmlstream
from twisted.words.xish import domish

from tests.c2shelpers import C2SClient, makeServer


def errorCondition(stanza):
    return stanza.error.firstChildElement().name


class RoutingTests(unittest.TestCase):
    """
    Where stanzas go, and the errors that come back.
    """

    def setUp(self):
        self.clock = MemoryReactorClock()
        self.server = makeServer(self, self.clock)
        self.alice = C2SClient(self, self.server)
        self.alice.login("alice", "desk")
        self.bob = C2SClient(self, self.server)
        self.bob.login("bob", "phone")

    def test_fullJID(self):
        """
        A message to a connected full JID is delivered there, stamped with
        the sender's full JID.
        """
        self.alice.message("bob@localhost/phone", "hi")
        [message] = self.bob.receive()
        self.assertEqual(message["from"], "alice@localhost/desk")
        self.assertEqual(str(message.body), "hi")

    def test_iqToFullJID(self):
        """
        An iq to a connected full JID is delivered, and its result goes back.
        """
        self.alice.send(
            b"<iq xmlns='jabber:client' type='get' id='v1' to='bob@localhost/phone'>"
            b"<query xmlns='jabber:iq:version'/></iq>"
        )
        [iq] = self.bob.receive()
        self.assertEqual(iq["from"], "alice@localhost/desk")
        self.bob.send(
            b"<iq xmlns='jabber:client' type='result' id='v1' to='alice@localhost/desk'/>"
        )
        [result] = self.alice.receive()
        self.assertEqual((result["type"], result["from"]), ("result", "bob@localhost/phone"))

    def test_iqToUnavailableResource(self):
        """
        An iq to a resource that is not connected gets
        C{service-unavailable}.
        """
        [reply] = self.alice.iq(b"<query xmlns='jabber:iq:version'/>", to="bob@localhost/gone")
        self.assertEqual(errorCondition(reply), "service-unavailable")

    def test_unknownUser(self):
        """
        A message to an account that does not exist gets
        C{service-unavailable}.
        """
        self.alice.message("nobody@localhost", "hi")
        [reply] = self.alice.receive()
        self.assertEqual(reply["type"], "error")
        self.assertEqual(errorCondition(reply), "service-unavailable")

    def test_remoteDomain(self):
        """
        Without server-to-server, other domains get
        C{remote-server-not-found}.
        """
        self.alice.message("someone@example.org", "hi")
        [reply] = self.alice.receive()
        self.assertEqual(errorCondition(reply), "remote-server-not-found")

    def test_malformedTo(self):
        """
        An invalid C{to} gets C{jid-malformed}.
        """
        self.alice.send(b"<message xmlns='jabber:client' to='a@@b' id='x'><body>x</body></message>")
        [reply] = self.alice.receive()
        self.assertEqual(errorCondition(reply), "jid-malformed")

    def test_noErrorForError(self):
        """
        An undeliverable error is dropped, never answered with an error.
        """
        self.alice.send(
            b"<message xmlns='jabber:client' to='nobody@localhost' type='error'>"
            b"<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
            b"</message>"
        )
        self.assertEqual(self.alice.receive(), [])

    def test_groupchatToBare(self):
        """
        A groupchat message to a bare account JID gets
        C{service-unavailable}.
        """
        self.alice.message("bob@localhost", "hi", type="groupchat")
        [reply] = self.alice.receive()
        self.assertEqual(errorCondition(reply), "service-unavailable")

    def test_unknownIQToServer(self):
        """
        An iq to the server in an unknown namespace gets
        C{service-unavailable}.
        """
        [reply] = self.alice.iq(b"<query xmlns='urn:example:nothing'/>", to="localhost")
        self.assertEqual(errorCondition(reply), "service-unavailable")

    def test_resultNotBounced(self):
        """
        An iq result nobody waits for is dropped silently.
        """
        self.alice.send(b"<iq xmlns='jabber:client' type='result' id='z' to='bob@localhost/gone'/>")
        self.assertEqual(self.alice.receive(), [])

    def test_stanzaHandlerFailure(self):
        """
        A module that fails on a stanza gets the sender an
        C{internal-server-error}, and the session goes on.
        """

        def broken(session, stanza):
            raise RuntimeError("broken module")

        self.server.on("stanza/out", broken)
        self.alice.message("bob@localhost/phone", "hi")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        [reply] = self.alice.receive()
        self.assertEqual(errorCondition(reply), "internal-server-error")

    def test_sessionEndsOnDisconnect(self):
        """
        When the WebSocket goes away, the session is forgotten.
        """
        from twisted.internet.error import ConnectionLost
        from twisted.python.failure import Failure

        self.bob.ws.protocol.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(self.server.sessionsOf(jid.JID("bob@localhost")), [])
        self.alice.message("bob@localhost/phone", "hi", type="headline")
        self.assertEqual(self.alice.receive(), [])


class TCPClientTests(unittest.TestCase):
    """
    The same server stack serves plain TCP: an unmodified Twisted Words
    client (L{client.XMPPClientFactory}) logs in over TCP and talks to a
    WebSocket client.
    """

    def setUp(self):
        self.clock = MemoryReactorClock()
        self.server = makeServer(self, self.clock, plain="always")
        self.authenticated = []
        self.failed = []
        factory = client.XMPPClientFactory(jid.JID("carol@localhost/tcp"), "secret")
        factory.addBootstrap(xmlstream.STREAM_CONNECTED_EVENT, self._noTLS)
        factory.addBootstrap(xmlstream.STREAM_AUTHD_EVENT, self.authenticated.append)
        factory.addBootstrap(xmlstream.INIT_FAILED_EVENT, self.failed.append)
        factory.maxRetries = 0
        self.serverProtocol, self.clientProtocol, self.pump = iosim.connectedServerAndClient(
            lambda: self.server.streamFactory().buildProtocol(None),
            lambda: factory.buildProtocol(None),
            clock=self.clock,
        )
        self.pump.flush()

    def _noTLS(self, xs):
        # No certificate is configured here: no STARTTLS on offer.
        for initializer in xs.initializers:
            if isinstance(initializer, xmlstream.TLSInitiatingInitializer):
                initializer.wanted = initializer.required = False

    def test_login(self):
        """
        The Twisted Words client authenticates and binds its resource over
        TCP.
        """
        self.assertEqual(self.failed, [])
        self.assertEqual(len(self.authenticated), 1)
        self.assertIsNotNone(self.server.session(jid.JID("carol@localhost/tcp")))

    def test_tcpToWebSocket(self):
        """
        Messages cross between a TCP session and a WebSocket session.
        """
        xs = self.authenticated[0]
        received = []
        xs.addObserver("/message", received.append)
        alice = C2SClient(self, self.server)
        alice.login("alice", "web")
        message = domish.Element((None, "message"))
        message["to"] = "alice@localhost/web"
        message.addElement("body", content="from tcp")
        xs.send(message)
        self.pump.flush()
        [got] = alice.receive()
        self.assertEqual((got["from"], str(got.body)), ("carol@localhost/tcp", "from tcp"))
        alice.message("carol@localhost/tcp", "from ws")
        self.pump.flush()
        [back] = received
        self.assertEqual(str(back.body), "from ws")


class VirtualHostTests(unittest.TestCase):
    """
    One process serves several domains.
    """

    def test_twoDomains(self):
        """
        Accounts of two served domains log in and message each other; a
        stream to a third domain gets C{host-unknown}.
        """
        clock = MemoryReactorClock()
        server = makeServer(self, clock, domains=("localhost", "example.net"))
        server.storage.addUser("dave", "example.net", "secret")
        alice = C2SClient(self, server)
        alice.login("alice", "desk")
        dave = C2SClient(self, server, domain="example.net")
        self.assertEqual(dave.login("dave", "home"), "dave@example.net/home")
        alice.message("dave@example.net/home", "hello")
        [message] = dave.receive()
        self.assertEqual((message["from"], str(message.body)), ("alice@localhost/desk", "hello"))
        dave.message("alice@localhost/desk", "hi")
        [reply] = alice.receive()
        self.assertEqual(reply["from"], "dave@example.net/home")
        wrong = C2SClient(self, server, domain="example.net")
        self.assertEqual(wrong.authenticate("alice").name, "failure")
        third = C2SClient(self, server)
        third.ws.handshake()
        third.ws.send(
            b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0'/>"
        )
        self.assertIn(b"host-unknown", b"".join(third.ws.messages()))
