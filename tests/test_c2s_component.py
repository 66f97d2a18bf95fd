"""
Tests for L{xmppws.c2s.component}: XEP-0114 components attached through
tx-xmpp's router, reached by clients of the embedded server.
"""

from twisted.internet.testing import MemoryReactorClock
from twisted.test import iosim
from twisted.trial import unittest
from twisted.words.protocols.jabber import component, xmlstream
from twisted.words.xish import domish

from tests.c2shelpers import C2SClient, makeServer
from xmppws.c2s import component as xmppcomponent


class ComponentTests(unittest.TestCase):
    """
    A Twisted Words component connects with the shared secret and answers
    a client's iq.
    """

    def setUp(self):
        self.clock = MemoryReactorClock()
        self.server = makeServer(self, self.clock)
        self.service = xmppcomponent.install(self.server, "s3cret")
        self.connected = []
        self.componentFactory = component.componentFactory("echo.localhost", "s3cret")
        self.componentFactory.addBootstrap(
            xmlstream.STREAM_AUTHD_EVENT, self.connected.append
        )
        self.componentFactory.maxRetries = 0

    def connect(self):
        server, client, pump = iosim.connectedServerAndClient(
            lambda: self.service.factory.buildProtocol(None),
            lambda: self.componentFactory.buildProtocol(None),
            clock=self.clock,
        )
        pump.flush()
        return pump

    def test_attached(self):
        """
        After the handshake, the component's domain is routed to it.
        """
        self.connect()
        self.assertEqual(len(self.connected), 1)
        self.assertIn("echo.localhost", self.server.components)
        self.assertEqual(list(self.server.components.keys()), ["echo.localhost"])

    def test_clientReachesComponent(self):
        """
        A client's iq reaches the component and its answer reaches the
        client.
        """
        pump = self.connect()
        xs = self.connected[0]

        def answer(iq):
            reply = xmlstream.toResponse(iq, "result")
            reply.addElement(("urn:example", "pong"))
            xs.send(reply)

        xs.addObserver("/iq", answer)
        alice = C2SClient(self, self.server)
        alice.login("alice")
        alice.send(
            b"<iq xmlns='jabber:client' type='get' id='c1' to='echo.localhost'>"
            b"<ping xmlns='urn:example'/></iq>"
        )
        pump.flush()
        [reply] = alice.receive()
        self.assertEqual(reply["type"], "result")
        self.assertEqual(reply["from"], "echo.localhost")
        self.assertEqual(reply.firstChildElement().name, "pong")

    def test_componentReachesClient(self):
        """
        A message from the component reaches an available client.
        """
        pump = self.connect()
        alice = C2SClient(self, self.server)
        alice.login("alice", "desk")
        message = domish.Element((None, "message"))
        message["to"] = "alice@localhost/desk"
        message["from"] = "bot@echo.localhost"
        message.addElement("body", content="hello")
        self.connected[0].send(message)
        pump.flush()
        [received] = alice.receive()
        self.assertEqual(str(received.body), "hello")
        self.assertEqual(received["from"], "bot@echo.localhost")

    def test_forgedFrom(self):
        """
        A component cannot send as a local user.
        """
        pump = self.connect()
        alice = C2SClient(self, self.server)
        alice.login("alice", "desk")
        message = domish.Element((None, "message"))
        message["to"] = "alice@localhost/desk"
        message["from"] = "bob@localhost/x"
        message.addElement("body", content="forged")
        self.connected[0].send(message)
        pump.flush()
        self.assertEqual(alice.receive(), [])

    def test_wrongSecret(self):
        """
        A component with the wrong secret is refused and not routed.
        """
        self.componentFactory = component.componentFactory("echo.localhost", "wrong")
        self.componentFactory.maxRetries = 0
        self.connect()
        self.assertNotIn("echo.localhost", self.server.components)

    def test_unknownComponentDomain(self):
        """
        A stanza to a domain nobody serves bounces with
        C{remote-server-not-found}.
        """
        alice = C2SClient(self, self.server)
        alice.login("alice")
        [reply] = alice.iq(b"<ping xmlns='urn:xmpp:ping'/>", to="nowhere.localhost")
        self.assertEqual(reply["type"], "error")
        self.assertEqual(reply.error.firstChildElement().name, "remote-server-not-found")

    def test_secretRequired(self):
        """
        A component port without a secret is refused.
        """
        self.assertRaises(ValueError, xmppcomponent.install, self.server, "")

    def test_closeAll(self):
        """
        Stopping the service closes component streams with
        C{system-shutdown}.
        """
        pump = self.connect()
        errors = []
        self.connected[0].addObserver(xmlstream.STREAM_ERROR_EVENT, errors.append)
        self.service.closeAll()
        pump.flush()
        [failure] = errors
        self.assertEqual(failure.value.condition, "system-shutdown")
