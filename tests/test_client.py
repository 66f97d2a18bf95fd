"""
Tests for L{xmppws.client}: an unmodified Twisted Words client XmlStream
over WebSocket against the server side, in memory.
"""

import txaio
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock
from twisted.test import iosim
from twisted.trial import unittest
from twisted.words.protocols.jabber import xmlstream
from twisted.words.xish import domish

from tests.helpers import echoStreamFactory
from xmppws.client import XMPPWebSocketClientFactory
from xmppws.websocket import XMPPWebSocketServerFactory


class ClientStreamTests(unittest.TestCase):
    """
    A client C{XmlStream} built by Twisted's own L{xmlstream.XmlStreamFactory}
    runs over L{XMPPWebSocketClientFactory}.
    """

    framing = "rfc7395"

    def setUp(self):
        self.clock = MemoryReactorClock()
        self.patch(txaio.config, "loop", self.clock)
        self.serverStreams = echoStreamFactory()
        server = XMPPWebSocketServerFactory(
            self.serverStreams, reactor=self.clock, path="/xmpp-websocket"
        )
        authenticator = xmlstream.ConnectAuthenticator("example.com")
        authenticator.namespace = "jabber:client"
        self.clientStreams = xmlstream.XmlStreamFactory(authenticator)
        self.authenticated = []
        self.received = []
        self.lost = []
        self.clientStreams.addBootstrap(
            xmlstream.STREAM_AUTHD_EVENT, self.authenticated.append
        )
        self.clientStreams.addBootstrap(
            xmlstream.xmlstream.STREAM_END_EVENT, self.lost.append
        )
        self.client = XMPPWebSocketClientFactory(
            self.clientStreams,
            "ws://example.com/xmpp-websocket",
            reactor=self.clock,
            framing=self.framing,
        )
        self.serverProtocol, self.clientProtocol, self.pump = (
            iosim.connectedServerAndClient(
                lambda: server.buildProtocol(None),
                lambda: self.client.buildProtocol(None),
                clock=self.clock,
            )
        )
        self.pump.flush()

    def test_streamOpens(self):
        """
        The client's header and the server's features get through, and the
        stream is authenticated (no initializers).
        """
        self.assertEqual(len(self.authenticated), 1)
        xs = self.successResultOf(self.client.deferred)
        self.assertIs(xs, self.authenticated[0])
        self.assertEqual(self.serverProtocol.connection.framing.name, self.framing)

    def test_stanzaEchoed(self):
        """
        A stanza the client sends comes back through the echo server.
        """
        xs = self.authenticated[0]
        xs.addObserver("/message", self.received.append)
        message = domish.Element((None, "message"))
        message["to"] = "juliet@example.com"
        message.addElement("body", content="hi")
        xs.send(message)
        self.pump.flush()
        [echo] = self.received
        self.assertEqual(echo["from"], "juliet@example.com")
        self.assertEqual(str(echo.body), "hi")

    def test_cleanClose(self):
        """
        The client's footer closes both streams and the WebSocket cleanly.
        """
        xs = self.authenticated[0]
        xs.sendFooter()
        self.pump.flush()
        self.clock.advance(10)
        self.pump.flush()
        [reason] = self.lost
        self.assertTrue(reason.check(ConnectionDone), reason)
        [serverReason] = self.serverStreams.lost
        self.assertTrue(serverReason.check(ConnectionDone), serverReason)


class LegacyClientStreamTests(ClientStreamTests):
    """
    The same in draft-00 framing.
    """

    framing = "legacy"


class ClientFactoryTests(unittest.TestCase):
    """
    L{XMPPWebSocketClientFactory} options.
    """

    def test_badFraming(self):
        """
        An unknown framing is refused.
        """
        self.assertRaises(
            ValueError,
            XMPPWebSocketClientFactory,
            echoStreamFactory(),
            "ws://example.com/",
            reactor=MemoryReactorClock(),
            framing="other",
        )

    def test_offersXMPP(self):
        """
        The client offers exactly the C{xmpp} subprotocol.
        """
        factory = XMPPWebSocketClientFactory(
            echoStreamFactory(), "ws://example.com/", reactor=MemoryReactorClock()
        )
        self.assertEqual(factory.protocols, ["xmpp"])
