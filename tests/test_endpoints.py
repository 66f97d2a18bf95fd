"""
Tests for L{xmppws.endpoints} and the C{xmppws:} endpoint string plugins.
"""

from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    TCP4ServerEndpoint,
    UNIXServerEndpoint,
    clientFromString,
    serverFromString,
)
from twisted.internet.interfaces import IStreamClientEndpoint, IStreamServerEndpoint
from twisted.internet.testing import MemoryReactorClock
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from tests.helpers import echoStreamFactory
from xmppws.endpoints import XMPPWebSocketClientEndpoint, XMPPWebSocketServerEndpoint
from xmppws.websocket import XMPPWebSocketServerFactory


class ServerStringTests(unittest.TestCase):
    """
    C{xmppws:} server endpoint strings.
    """

    def setUp(self):
        self.reactor = MemoryReactorClock()

    def parse(self, description):
        endpoint = serverFromString(self.reactor, description)
        self.assertIsInstance(endpoint, XMPPWebSocketServerEndpoint)
        self.assertTrue(verifyObject(IStreamServerEndpoint, endpoint))
        return endpoint

    def test_tcpAsDocumented(self):
        """
        The documented form, with the inner C{=} unescaped, wraps a TCP
        endpoint on loopback with the default path.
        """
        endpoint = self.parse(
            "xmppws:tcp\\:5280\\:interface=127.0.0.1:path=/xmpp-websocket"
        )
        self.assertIsInstance(endpoint.inner, TCP4ServerEndpoint)
        self.assertEqual(endpoint.inner._interface, "127.0.0.1")
        self.assertEqual(endpoint.inner._port, 5280)
        self.assertEqual(endpoint.options, {"path": "/xmpp-websocket"})

    def test_fullyEscaped(self):
        """
        The fully escaped form works too, and options are parsed.
        """
        endpoint = self.parse(
            "xmppws:tcp\\:5280\\:interface\\=127.0.0.1:origin=https\\://a.example,"
            "https\\://b.example:maxMessageSize=1024:trustedProxy=10.0.0.0/8:path=*"
        )
        self.assertEqual(
            endpoint.options,
            {
                "allowedOrigins": ["https://a.example", "https://b.example"],
                "maxMessageSize": 1024,
                "trustedProxies": ["10.0.0.0/8"],
                "path": None,
            },
        )

    def test_unix(self):
        """
        A UNIX socket can be wrapped.
        """
        endpoint = self.parse("xmppws:unix\\:/tmp/xmppws.sock")
        self.assertIsInstance(endpoint.inner, UNIXServerEndpoint)

    def test_unknownOption(self):
        """
        An unknown option is refused by name.
        """
        e = self.assertRaises(
            ValueError, serverFromString, self.reactor, "xmppws:tcp\\:5280:colour=red"
        )
        self.assertIn("colour", str(e))

    def test_noInner(self):
        """
        A string without an inner endpoint is refused.
        """
        self.assertRaises(ValueError, serverFromString, self.reactor, "xmppws:path=/x")

    def test_listen(self):
        """
        Listening wraps the given XmlStream factory in an
        L{XMPPWebSocketServerFactory} on the inner endpoint.
        """
        endpoint = self.parse("xmppws:tcp\\:5280\\:interface=127.0.0.1:openTimeout=5")
        streams = echoStreamFactory()
        self.successResultOf(endpoint.listen(streams))
        [(port, factory, backlog, interface)] = self.reactor.tcpServers
        self.assertEqual((port, interface), (5280, "127.0.0.1"))
        self.assertIsInstance(factory, XMPPWebSocketServerFactory)
        self.assertIs(factory.xmlStreamFactory, streams)
        self.assertEqual(factory.connectionFactory.policies.openTimeout, 5)
        self.assertEqual(factory.path, "/xmpp-websocket")

    def test_policies(self):
        """
        The per-connection policies are endpoint options too; the rates
        are off unless given.
        """
        endpoint = self.parse(
            "xmppws:tcp\\:5280:stanzaRate=5:stanzaBurst=7:byteRate=1000:"
            "byteBurst=300000:stallTimeout=9:idleTimeout=30"
        )
        self.successResultOf(endpoint.listen(echoStreamFactory()))
        [(_, factory, _, _)] = self.reactor.tcpServers
        connections = factory.connectionFactory.policies
        self.assertEqual(
            (
                connections.stanzaRate, connections.stanzaBurst, connections.byteRate,
                connections.byteBurst, connections.stallTimeout, connections.idleTimeout,
            ),
            (5, 7, 1000, 300000, 9, 30),
        )
        plain = self.parse("xmppws:tcp\\:5281")
        self.successResultOf(plain.listen(echoStreamFactory()))
        connections = self.reactor.tcpServers[1][1].connectionFactory.policies
        self.assertEqual((connections.stanzaRate, connections.byteRate), (0, 0))
        self.assertRaises(ValueError, self.parse, "xmppws:tcp\\:5280:byteRate=-1")


class ClientStringTests(unittest.TestCase):
    """
    C{xmppws:} client endpoint strings.
    """

    def setUp(self):
        self.reactor = MemoryReactorClock()

    def test_ws(self):
        """
        A C{ws:} URL connects over TCP to its host and port.
        """
        endpoint = clientFromString(
            self.reactor, "xmppws:url=ws\\://127.0.0.1\\:5280/xmpp-websocket"
        )
        self.assertIsInstance(endpoint, XMPPWebSocketClientEndpoint)
        self.assertTrue(verifyObject(IStreamClientEndpoint, endpoint))
        self.assertIsInstance(endpoint.inner, TCP4ClientEndpoint)
        self.assertEqual((endpoint.inner._host, endpoint.inner._port), ("127.0.0.1", 5280))
        self.assertEqual(endpoint.url, "ws://127.0.0.1:5280/xmpp-websocket")

    def test_wss(self):
        """
        A C{wss:} URL connects over TLS, checking the host name.
        """
        endpoint = clientFromString(
            self.reactor, "xmppws:url=wss\\://chat.example/xmpp-websocket:framing=legacy"
        )
        self.assertEqual(endpoint.options, {"framing": "legacy"})
        wrapped = endpoint.inner._wrappedEndpoint
        self.assertEqual((wrapped._hostText, wrapped._port), ("chat.example", 443))
        self.assertIsInstance(endpoint.inner._wrapperFactory(None), TLSMemoryBIOFactory)

    def test_explicitEndpoint(self):
        """
        An explicit inner endpoint overrides the URL's host and port.
        """
        endpoint = clientFromString(
            self.reactor,
            "xmppws:url=ws\\://chat.example/ws:endpoint=tcp\\:127.0.0.1\\:9999",
        )
        self.assertEqual(endpoint.inner._port, 9999)

    def test_badURL(self):
        """
        Only C{ws:} and C{wss:} URLs are accepted.
        """
        self.assertRaises(
            ValueError, clientFromString, self.reactor, "xmppws:url=http\\://x/"
        )

    def test_badFraming(self):
        """
        An unknown framing is refused.
        """
        self.assertRaises(
            ValueError, clientFromString, self.reactor,
            "xmppws:url=ws\\://x/:framing=other",
        )

    def test_connect(self):
        """
        Connecting starts the inner connection with a WebSocket client
        factory around the XmlStream factory.
        """
        endpoint = clientFromString(self.reactor, "xmppws:url=ws\\://127.0.0.1\\:5280/")
        endpoint.connect(echoStreamFactory())
        [(host, port, factory, timeout, bind)] = self.reactor.tcpClients
        self.assertEqual((host, port), ("127.0.0.1", 5280))
        self.assertEqual(factory._wrappedFactory.protocols, ["xmpp"])
