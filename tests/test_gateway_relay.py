# -*- test-case-name: tests.test_gateway_relay -*-
"""
Tests for L{xmppws.gateway.relay}: a WebSocket client relayed to a
scripted upstream server, all in memory (the WebSocket carrier with
L{xmppws.testing.MemoryWebSocketClient}, the upstream connection with
L{twisted.test.iosim}), on a clock.
"""

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.python.failure import Failure
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from tests.gatewayhelpers import (
    DOMAIN,
    FakeServer,
    Harness,
    LOOPBACK,
    MemoryEndpoint,
    memoryRoute,
)
from xmppws._connections import ConnectionMonitor
from xmppws.gateway.igateway import IClientReceiver, IUpstream, IUpstreamReceiver
from xmppws.gateway.proxyprotocol import parseProxyHeader
from xmppws.gateway.relay import RelayConnection
from xmppws.iwebsocket import IConnection, IMessageHandler
from xmppws.limits import ConnectionLimiter
from xmppws.testing import OP_CLOSE, closeMessage, openMessage

NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
CLOSE = closeMessage()
FOOTER = b"</stream:stream>"
SUCCESS = b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
ENABLED = b"<enabled xmlns='urn:xmpp:sm:3' id='sm1' resume='true'/>"
REMOTE = IPv4Address("TCP", "192.0.2.7", 54321)


def condition(message):
    """
    The stream error condition of a message, or L{None}.
    """
    marker = b"xmlns='urn:ietf:params:xml:ns:xmpp-streams'"
    if b"error" not in message or marker not in message:
        return None
    start = message.index(b"<", message.index(b">") + 1)
    return message[start + 1 : message.index(b" ", start)].decode()


class RelayTestCase(unittest.TestCase):
    """
    A gateway in memory in front of one fake server.
    """

    def setUp(self):
        self.harness = Harness(self)

    def relay(self, client):
        return client.connection

    def openClient(self, **kwargs):
        client = self.harness.client(**kwargs)
        self.openMessages = self.harness.opened(client)
        return client, self.harness.servers[-1]

    def assertClosed(self, client, code=1000):
        self.assertEqual(client.closeCode(), code)


class RelayTests(RelayTestCase):
    """
    Stanzas and stream headers pass both ways.
    """

    def test_interfaces(self):
        """
        The relay is a handler of the carrier, a connection of the
        monitor, and the receiver of both sides; the upstream stream is an
        L{IUpstream}.
        """
        client, server = self.openClient()
        relay = self.relay(client)
        for interface in (IMessageHandler, IConnection, IClientReceiver, IUpstreamReceiver):
            self.assertTrue(verifyObject(interface, relay))
        self.assertTrue(verifyObject(IUpstream, relay.upstream))

    def test_open(self):
        """
        The client's C{<open/>} opens an upstream stream to the domain with
        the client's language; the server's header comes back as an
        C{<open/>} with its id, from and language, then its features, as
        standalone messages.
        """
        client = self.harness.client()
        client.send(openMessage(DOMAIN, lang="fr"))
        self.assertEqual(client.messages(), [])
        self.harness.flush()
        [server] = self.harness.servers
        self.assertEqual(
            server.headers,
            [
                b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                b"xmlns:stream='http://etherx.jabber.org/streams' to='example.com' "
                b"version='1.0' xml:lang='fr'>"
            ],
        )
        opened, features = client.messages()
        self.assertEqual(
            opened,
            b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='example.com' "
            b"id='s1' version='1.0' xml:lang='en'/>",
        )
        self.assertEqual(
            features,
            b"<stream:features xmlns='jabber:client' "
            b"xmlns:stream='http://etherx.jabber.org/streams'><mechanisms "
            b"xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism>"
            b"<mechanism>PLAIN</mechanism></mechanisms></stream:features>",
        )

    def test_stanzasAsTheyCame(self):
        """
        A client's stanza is written upstream as the bytes it came as (ids,
        C{xml:lang}, every attribute); a server's reaches the client as its
        bytes with the namespace declaration a standalone message needs.
        """
        client, server = self.openClient()
        stanza = (
            b"<message xmlns='jabber:client' to='bob@example.com' id='m&amp;1' "
            b"xml:lang='de' type=\"chat\"><body>Hallo &lt;3</body></message>"
        )
        client.send(stanza)
        self.harness.flush()
        self.assertEqual(server.received, stanza)
        server.send(
            b"<message from='bob@example.com/r' to='alice@example.com/r' id='x\"1' "
            b"xml:lang='en'><body>hi</body></message>"
        )
        self.harness.flush()
        self.assertEqual(
            client.messages(),
            [
                b"<message xmlns='jabber:client' from='bob@example.com/r' "
                b"to='alice@example.com/r' id='x\"1' xml:lang='en'><body>hi</body></message>"
            ],
        )

    def test_declarationAndWhitespace(self):
        """
        An XML declaration and whitespace around a client's element do not
        go upstream.
        """
        client, server = self.openClient()
        client.send(b"<?xml version='1.0'?>\n<presence xmlns='jabber:client'/>\n")
        self.harness.flush()
        self.assertEqual(server.received, b"<presence xmlns='jabber:client'/>")

    def test_streamManagementUntouched(self):
        """
        XEP-0198 elements pass untouched both ways.
        """
        client, server = self.openClient()
        client.send(b"<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
        client.send(b"<r xmlns='urn:xmpp:sm:3'/>")
        self.harness.flush()
        self.assertEqual(
            server.received,
            b"<enable xmlns='urn:xmpp:sm:3' resume='true'/><r xmlns='urn:xmpp:sm:3'/>",
        )
        server.send(ENABLED + b"<a xmlns='urn:xmpp:sm:3' h='0'/>")
        self.harness.flush()
        self.assertEqual(
            client.messages(),
            [ENABLED, b"<a xmlns='urn:xmpp:sm:3' h='0'/>"],
        )
        self.assertTrue(self.relay(client).resumable)

    def test_saslRestart(self):
        """
        After the server's SASL success, the client's new C{<open/>} becomes
        a new stream header upstream, and the server's new header a new
        C{<open/>} to the client.
        """
        client, server = self.openClient()
        client.send(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>")
        self.harness.flush()
        server.send(SUCCESS)
        self.harness.flush()
        self.assertEqual(client.messages(), [SUCCESS])
        client.send(openMessage(DOMAIN))
        self.harness.flush()
        self.assertEqual(len(server.headers), 2)
        opened, features = client.messages()
        self.assertIn(b"id='s2'", opened)
        self.assertTrue(features.startswith(b"<stream:features"))

    def test_elementBeforeRestart(self):
        """
        After SASL success, anything but a new C{<open/>} is C{bad-format}.
        """
        client, server = self.openClient()
        server.send(SUCCESS)
        self.harness.flush()
        client.messages()
        client.send(b"<presence xmlns='jabber:client'/>")
        messages = client.messages()
        self.assertEqual(condition(messages[0]), "bad-format")

    def test_pendingUntilReady(self):
        """
        Elements read before the upstream stream is ready (in the same
        network read as the C{<open/>}) are kept and written after it, in
        order; reading from the client pauses meanwhile.
        """
        self.harness = Harness(self, makeServer=lambda: FakeServer(answer=False))
        client = self.harness.client()
        client.send(openMessage(DOMAIN))
        client.send(b"<presence xmlns='jabber:client'/>")
        self.assertEqual(client.transport.producerState, "paused")
        self.harness.flush()
        [server] = self.harness.servers
        self.assertEqual(server.received, b"")
        server.send(
            b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
            b"xmlns:stream='http://etherx.jabber.org/streams' id='late' version='1.0'>"
            + b"<stream:features/>"
        )
        self.harness.flush()
        self.assertEqual(server.received, b"<presence xmlns='jabber:client'/>")
        self.assertEqual(client.transport.producerState, "producing")

    def test_keepalive(self):
        """
        A quiet upstream stream gets a whitespace keepalive.
        """
        client, server = self.openClient()
        self.harness.clock.advance(61)
        self.harness.flush()
        self.assertEqual(server.received, b" ")

    def test_legacyClient(self):
        """
        A draft-00 client's header goes upstream with its declarations, its
        stanzas as written; the server's header and stanzas come back as
        they are, and the footers translate.
        """
        client = self.harness.client()
        header = (
            b"<stream:stream to='example.com' xmlns='jabber:client' "
            b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en'>"
        )
        client.send(header)
        self.harness.flush()
        [server] = self.harness.servers
        self.assertEqual(
            server.headers,
            [
                b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                b"xmlns:stream='http://etherx.jabber.org/streams' to='example.com' "
                b"version='1.0' xml:lang='en'>"
            ],
        )
        opened, features = client.messages()
        self.assertTrue(opened.startswith(b"<stream:stream xmlns='jabber:client'"))
        self.assertNotIn(b"/>", opened[-2:])
        self.assertTrue(features.startswith(b"<stream:features>"))
        client.send(b"<presence/>")
        self.harness.flush()
        self.assertEqual(server.received, b"<presence/>")
        server.send(b"<message from='b@example.com'><body>x</body></message>")
        self.harness.flush()
        self.assertEqual(
            client.messages(), [b"<message from='b@example.com'><body>x</body></message>"]
        )
        client.send(FOOTER)
        self.harness.flush()
        self.assertTrue(server.received.endswith(FOOTER))
        server.send(FOOTER)
        self.harness.flush()
        self.assertEqual(client.messages(), [FOOTER])
        self.assertClosed(client)


class ChecksTests(RelayTestCase):
    """
    What the gateway refuses before relaying anything.
    """

    def test_hostUnknown(self):
        """
        A domain with no route gets C{host-unknown}, and nothing connects
        upstream: the gateway is no open relay.
        """
        client = self.harness.client()
        client.send(openMessage("elsewhere.example"))
        opened, error, close = client.messages()
        self.assertTrue(opened.startswith(b"<open "))
        self.assertEqual(condition(error), "host-unknown")
        self.assertEqual(close, CLOSE)
        self.assertClosed(client)
        self.assertEqual(self.harness.servers, [])

    def test_noDomain(self):
        """
        An C{<open/>} without C{to}, or with a C{to} that is no domain, gets
        C{host-unknown}.
        """
        for header in (
            b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' version='1.0'/>",
            b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='a@@b' version='1.0'/>",
        ):
            client = self.harness.client()
            client.send(header)
            self.assertEqual(condition(client.messages()[1]), "host-unknown")
        self.assertEqual(self.harness.servers, [])

    def test_version(self):
        """
        A stream without version 1.0 gets C{unsupported-version}.
        """
        client = self.harness.client()
        client.send(openMessage(DOMAIN, version=None))
        self.assertEqual(condition(client.messages()[1]), "unsupported-version")

    def test_plainWebSocketRefused(self):
        """
        A client on a plain WebSocket from another machine is refused with
        C{policy-violation} saying to use wss://, before any upstream
        connection.
        """
        client = self.harness.client(peer=REMOTE)
        client.send(openMessage(DOMAIN))
        opened, error, close = client.messages()
        self.assertEqual(condition(error), "policy-violation")
        self.assertIn(b"wss://", error)
        self.assertEqual(self.harness.servers, [])

    def test_secureRemote(self):
        """
        A client from another machine over TLS (or a trusted TLS proxy) is
        relayed.
        """
        client = self.harness.client(peer=REMOTE, secure=True)
        opened, features = self.harness.opened(client)
        self.assertEqual(len(self.harness.servers), 1)
        self.assertIn(b"<mechanism>PLAIN</mechanism>", features)

    def test_stripPlain(self):
        """
        With C{insecureWebSocket='strip-plain'}, such a client is relayed
        without SASL PLAIN in the features, and an C{<auth/>} for PLAIN is
        answered by the gateway, not relayed.
        """
        self.harness = Harness(self, insecureWebSocket="strip-plain")
        client = self.harness.client(peer=REMOTE)
        opened, features = self.harness.opened(client)
        self.assertIn(b"SCRAM-SHA-1", features)
        self.assertNotIn(b"PLAIN", features)
        client.send(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>")
        self.harness.flush()
        [failure] = client.messages()
        self.assertIn(b"invalid-mechanism", failure)
        self.assertEqual(self.harness.servers[0].received, b"")

    def test_startTLSNotShown(self):
        """
        STARTTLS in the server's features never reaches the client.
        """
        self.harness = Harness(
            self,
            routes=None,
            makeServer=lambda: FakeServer(
                features=b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
                b"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                b"<mechanism>PLAIN</mechanism></mechanisms></stream:features>"
            ),
        )
        client = self.harness.client()
        opened, features = self.harness.opened(client)
        self.assertNotIn(b"starttls", features)
        self.assertIn(b"PLAIN", features)

    def test_badInput(self):
        """
        Bad XML from the client gets the stream error the framing names;
        the upstream stream is closed with its footer.
        """
        client, server = self.openClient()
        client.send(b"<message xmlns='jabber:client'><!-- x --></message>")
        self.harness.flush()
        messages = client.messages()
        self.assertEqual(condition(messages[0]), "restricted-xml")
        self.assertEqual(messages[1], CLOSE)
        self.assertEqual(server.received, FOOTER)

    def test_sharedCheckRecovers(self):
        """
        The clients' messages are checked by one parser: a client whose
        message leaves it inside an element, or broken, does not affect
        the next client's message.
        """
        bad, badServer = self.openClient()
        good, goodServer = self.openClient()
        bad.send(b"<message xmlns='jabber:client'><body>")
        self.assertEqual(condition(bad.messages()[0]), "not-well-formed")
        good.send(b"<presence xmlns='jabber:client'/>")
        bad.send(b"<presence xmlns='jabber:client'/>")
        self.harness.flush()
        self.assertEqual(goodServer.received, b"<presence xmlns='jabber:client'/>")
        self.assertEqual(badServer.received, FOOTER)

    def test_messageTooBig(self):
        """
        A message over the size limit gets C{policy-violation} and close
        code 1009.
        """
        client, server = self.openClient()
        self.relay(client).messageRefused(1009, "Messages are limited to 10 bytes.")
        self.assertEqual(condition(client.messages()[0]), "policy-violation")

    def test_openTimeout(self):
        """
        A client that does not open its stream in time gets
        C{connection-timeout}.
        """
        client = self.harness.client()
        self.harness.clock.advance(31)
        self.assertEqual(condition(client.messages()[1]), "connection-timeout")


class UpstreamFailureTests(RelayTestCase):
    """
    A server that refuses, does not answer, fails TLS or goes away.
    """

    def test_refused(self):
        """
        A server that refuses the connection: C{remote-connection-failed}.
        """
        self.harness = Harness(self, endpoints=[MemoryEndpoint(None, mode="refuse")])
        client = self.harness.client()
        client.send(openMessage(DOMAIN))
        opened, error, close = client.messages()
        self.assertIn(b"from='example.com'", opened)
        self.assertEqual(condition(error), "remote-connection-failed")
        self.assertEqual(close, CLOSE)

    def test_failover(self):
        """
        When the first server of a domain refuses, the next is tried.
        """
        refusing = MemoryEndpoint(None, mode="refuse")
        harness = self.harness = Harness(self, endpoints=[refusing, MemoryEndpoint(None)])
        harness.endpoints[1].clock = harness.clock
        client = harness.client()
        opened, features = harness.opened(client)
        self.assertTrue(features.startswith(b"<stream:features"))
        self.assertEqual(len(harness.endpoints[1].servers), 1)

    def test_timeout(self):
        """
        A server that does not answer within the upstream timeout:
        C{connection-timeout}.
        """
        self.harness = Harness(self, endpoints=[MemoryEndpoint(None, mode="hang")])
        client = self.harness.client()
        client.send(openMessage(DOMAIN))
        self.harness.clock.advance(9)
        self.assertEqual(client.messages(), [])
        self.harness.clock.advance(2)
        self.assertEqual(condition(client.messages()[1]), "connection-timeout")
        self.assertTrue(self.harness.endpoints[0].hanging[0].called)

    def test_failoverAfterTimeout(self):
        """
        A server that does not connect in time fails over to the next.
        """
        harness = self.harness = Harness(
            self, endpoints=[MemoryEndpoint(None, mode="hang"), MemoryEndpoint(None)]
        )
        client = harness.client()
        client.send(openMessage(DOMAIN))
        harness.clock.advance(10)
        harness.flush()
        opened, features = client.messages()
        self.assertTrue(features.startswith(b"<stream:features"))

    def test_silentServer(self):
        """
        A server that connects but never sends its header: the connection
        is dropped at the timeout, and the client gets
        C{connection-timeout}.
        """
        self.harness = Harness(self, makeServer=lambda: FakeServer(answer=False))
        client = self.harness.client()
        client.send(openMessage(DOMAIN))
        self.harness.flush()
        self.harness.clock.advance(11)
        self.harness.flush()
        self.assertEqual(condition(client.messages()[1]), "connection-timeout")
        self.assertIsNotNone(self.harness.servers[0].lost)

    def test_startTLS(self):
        """
        The gateway does STARTTLS itself before relaying the server's
        features (after TLS) to the client; the client's header went
        upstream twice.
        """
        endpoint = MemoryEndpoint(None, makeServer=lambda: FakeServer(starttls=True))
        self.harness = Harness(self, routes=[memoryRoute(endpoint, tls="starttls")])
        endpoint.clock = self.harness.clock
        client = self.harness.client()
        opened, features = self.harness.opened(client)
        [server] = self.harness.servers
        self.assertEqual(len(server.headers), 2)
        self.assertNotIn(b"starttls", features)
        self.assertIn(b"id='s2'", opened)
        self.assertTrue(self.relay(client).upstream.secure)

    def test_startTLSMissing(self):
        """
        A server that does not offer STARTTLS when it is required is not
        relayed to: C{remote-connection-failed}.
        """
        endpoint = MemoryEndpoint(None)
        self.harness = Harness(self, routes=[memoryRoute(endpoint, tls="starttls")])
        endpoint.clock = self.harness.clock
        client = self.harness.client()
        client.send(openMessage(DOMAIN))
        self.harness.flush()
        self.assertEqual(condition(client.messages()[1]), "remote-connection-failed")
        self.assertIsNotNone(self.harness.servers[0].lost)

    def test_tlsFails(self):
        """
        A server whose certificate does not verify is not relayed to:
        C{remote-connection-failed}.
        """
        class Unverified(FakeServer):
            tlsVerify = False

        endpoint = MemoryEndpoint(None, makeServer=lambda: Unverified(starttls=True))
        self.harness = Harness(self, routes=[memoryRoute(endpoint, tls="starttls")])
        endpoint.clock = self.harness.clock
        client = self.harness.client()
        client.send(openMessage(DOMAIN))
        self.harness.flush(6)
        messages = client.messages()
        self.assertEqual(condition(messages[1]), "remote-connection-failed")

    def test_streamErrorFromServer(self):
        """
        A stream error from the server reaches the client as a standalone
        message, then the server's footer as C{<close/>}; the gateway
        answers the server's footer with its own and closes both.
        """
        client, server = self.openClient()
        server.send(
            b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
            b"</stream:error>" + FOOTER
        )
        self.harness.flush()
        error, close = client.messages()
        self.assertEqual(
            error,
            b"<stream:error xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
            b"<conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
        )
        self.assertEqual(close, CLOSE)
        self.assertClosed(client)
        self.assertEqual(server.received, FOOTER)
        self.assertIsNotNone(server.lost)

    def test_refusedAtNegotiation(self):
        """
        A stream error the server sends instead of its features (such as
        C{host-unknown}) reaches the client as that condition.
        """
        self.harness = Harness(
            self,
            makeServer=lambda: FakeServer(
                features=b"<stream:error><host-unknown "
                b"xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
            ),
        )
        client = self.harness.client()
        client.send(openMessage(DOMAIN))
        self.harness.flush()
        self.assertEqual(condition(client.messages()[1]), "host-unknown")

    def test_serverLost(self):
        """
        A server lost mid-session: C{system-shutdown} to the client, then
        the close.
        """
        client, server = self.openClient()
        server.transport.loseConnection()
        self.harness.flush()
        error, close = client.messages()
        self.assertEqual(condition(error), "system-shutdown")
        self.assertEqual(close, CLOSE)
        self.assertClosed(client)

    def test_badXMLFromServer(self):
        """
        Bad XML from the server: the gateway tells the server
        (C{not-well-formed}), closes it, and gives the client
        C{internal-server-error}.
        """
        client, server = self.openClient()
        server.send(b"<message><x></message>")
        self.harness.flush()
        self.assertEqual(condition(client.messages()[0]), "internal-server-error")
        self.assertIn(b"not-well-formed", server.received)
        self.assertTrue(server.received.endswith(FOOTER))


class TeardownTests(RelayTestCase):
    """
    Both connections end, whoever ends first.
    """

    def lose(self, client, reason=ConnectionLost):
        client.protocol.connectionLost(Failure(reason()))

    def test_clientCloses(self):
        """
        The client's C{<close/>} becomes the upstream footer; the server's
        footer becomes the client's C{<close/>} and the WebSocket close.
        """
        client, server = self.openClient()
        client.send(CLOSE)
        self.harness.flush()
        self.assertEqual(server.received, FOOTER)
        self.assertEqual(client.messages(), [])
        server.send(FOOTER)
        self.harness.flush()
        self.assertEqual(client.messages(), [CLOSE])
        self.assertClosed(client)
        self.assertIsNotNone(server.lost)

    def test_serverDoesNotAnswerClose(self):
        """
        A server that does not answer the footer within the close timeout:
        both connections are closed anyway.
        """
        client, server = self.openClient()
        client.send(CLOSE)
        self.harness.flush()
        self.harness.clock.advance(5)
        self.harness.flush()
        self.assertEqual(client.messages(), [CLOSE])
        self.assertIsNotNone(server.lost)

    def test_clientVanishes(self):
        """
        A client that disappears closes the upstream stream cleanly (the
        footer, then the connection), and the pair is finished.
        """
        client, server = self.openClient()
        relay = self.relay(client)
        self.lose(client)
        self.harness.flush()
        self.assertEqual(server.received, FOOTER)
        server.send(FOOTER)
        self.harness.flush()
        self.assertIsNotNone(server.lost)
        self.assertNotIn(relay, self.harness.gateway.relays)

    def test_clientVanishesResumable(self):
        """
        A client that disappears after enabling resumption: the upstream
        connection closes without the footer, so that the server keeps the
        session for resumption.
        """
        client, server = self.openClient()
        server.send(ENABLED)
        self.harness.flush()
        self.lose(client)
        self.harness.flush()
        self.assertEqual(server.received, b"")
        self.assertIsNotNone(server.lost)
        self.assertFalse(server.transport.aborted)

    def test_pingTimeoutResumable(self):
        """
        A client that stops answering WebSocket pings gets
        C{connection-timeout}, and a resumable upstream session stays
        resumable.
        """
        self.harness = Harness(self, pingInterval=25, pingTimeout=10)
        client, server = self.openClient()
        server.send(ENABLED)
        self.harness.flush()
        client.messages()
        self.harness.clock.advance(25)
        self.harness.clock.advance(10)
        self.harness.flush()
        self.assertEqual(condition(client.messages()[0]), "connection-timeout")
        self.assertEqual(server.received, b"")
        self.assertIsNotNone(server.lost)

    def test_clientVanishesWhileConnecting(self):
        """
        A client that disappears while the upstream stream is being set up
        cancels it: nothing is left connected.
        """
        self.harness = Harness(self, endpoints=[MemoryEndpoint(None, mode="hang")])
        client = self.harness.client()
        client.send(openMessage(DOMAIN))
        relay = self.relay(client)
        self.lose(client)
        self.assertTrue(self.harness.endpoints[0].hanging[0].called)
        self.assertNotIn(relay, self.harness.gateway.relays)

    def test_reaper(self):
        """
        Whatever the peers do, both connections are gone within twice the
        close timeout of the start of the closing.
        """
        client, server = self.openClient()
        client.send(CLOSE)
        self.harness.flush()
        server.transport.loseConnection = lambda: None  # a server that hangs on
        self.harness.clock.advance(10)
        self.assertTrue(self.relay(client).upstream.transport.aborted)

    def test_monitorCountsPairs(self):
        """
        The connection monitor counts a relayed client until both its
        connections are gone.
        """
        monitor = ConnectionMonitor(ConnectionLimiter(10, 10))
        self.harness = Harness(self, monitor=monitor)
        client, server = self.openClient()
        relay = self.relay(client)
        self.assertEqual(monitor.connections, {relay})
        client.send(CLOSE)
        self.harness.flush()
        self.lose(client, ConnectionDone)
        self.assertEqual(monitor.connections, {relay})
        server.send(FOOTER)
        self.harness.flush()
        self.assertEqual(monitor.connections, set())


class ShutdownTests(RelayTestCase):
    """
    L{RelayConnection.closeForShutdown}, as the service drains.
    """

    def test_seeOtherURI(self):
        """
        An RFC 7395 client is sent elsewhere with C{see-other-uri}; the
        upstream stream is closed with its footer.
        """
        client, server = self.openClient()
        self.relay(client).closeForShutdown("ws://other.example/xmpp")
        self.harness.flush()
        self.assertEqual(
            client.messages(),
            [b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing' "
             b"see-other-uri='ws://other.example/xmpp'/>"],
        )
        self.assertEqual(server.received, FOOTER)

    def test_systemShutdown(self):
        """
        Without a C{see-other-uri}, the client gets C{system-shutdown}.
        """
        client, server = self.openClient()
        self.relay(client).closeForShutdown(None)
        self.harness.flush()
        self.assertEqual(condition(client.messages()[0]), "system-shutdown")
        self.assertEqual(server.received, FOOTER)

    def test_resumableKeptResumable(self):
        """
        At shutdown, an upstream session with resumption on is closed
        without the footer: the client resumes it through another gateway.
        """
        client, server = self.openClient()
        server.send(ENABLED)
        self.harness.flush()
        self.relay(client).closeForShutdown("ws://other.example/xmpp")
        self.harness.flush()
        self.assertEqual(server.received, b"")
        self.assertIsNotNone(server.lost)


class FlowTests(RelayTestCase):
    """
    Backpressure both ways.
    """

    def test_slowClient(self):
        """
        While the client does not read, the gateway stops reading from the
        server, and reads again once it does.
        """
        client, server = self.openClient()
        upstream = self.relay(client).upstream.transport
        watch = client.transport.producer
        watch.pauseProducing()
        self.assertTrue(upstream.paused)
        watch.resumeProducing()
        self.assertFalse(upstream.paused)

    def test_slowServer(self):
        """
        While the server does not read, the gateway stops reading from the
        client, and reads again once it does.
        """
        client, server = self.openClient()
        upstream = self.relay(client).upstream.transport
        upstream.producer.pauseProducing()
        self.assertEqual(client.transport.producerState, "paused")
        upstream.producer.resumeProducing()
        self.assertEqual(client.transport.producerState, "producing")

    def test_clientStalls(self):
        """
        A client that does not read for the stall timeout is given up on:
        C{connection-timeout}, and the upstream stream is closed.
        """
        self.harness = Harness(self, stallTimeout=60)
        client, server = self.openClient()
        client.transport.producer.pauseProducing()
        self.harness.clock.advance(60)
        self.harness.flush()
        self.assertEqual(condition(client.messages()[0]), "connection-timeout")
        self.assertEqual(server.received, FOOTER)

    def test_rateLimitPauses(self):
        """
        Over the stanza rate, reading from the client pauses (nothing is
        dropped) until the rate allows more.
        """
        self.harness = Harness(self, stanzaRate=1, stanzaBurst=2)
        client, server = self.openClient()
        for _ in range(4):
            client.send(b"<presence xmlns='jabber:client'/>")
        self.assertEqual(client.transport.producerState, "paused")
        self.harness.flush()
        self.assertEqual(server.received.count(b"<presence"), 4)
        self.harness.clock.advance(3)
        self.assertEqual(client.transport.producerState, "producing")


class ProxyProtocolTests(RelayTestCase):
    """
    A route with C{proxy=} sends the client's address first.
    """

    def assertProxied(self, version):
        endpoint = MemoryEndpoint(None)
        self.harness = Harness(self, routes=[memoryRoute(endpoint, proxy=version)])
        endpoint.clock = self.harness.clock
        client = self.harness.client(peer=IPv4Address("TCP", "127.0.0.2", 41234))
        self.harness.opened(client)
        [server] = self.harness.servers
        parsed = parseProxyHeader(server.everything)
        self.assertEqual(parsed[0], version)
        self.assertEqual(parsed[1], ("127.0.0.2", 41234))
        self.assertEqual(parsed[2], ("127.0.0.1", 5280))
        self.assertTrue(parsed[3].startswith(b"<?xml"))

    def test_v1(self):
        """
        Version 1: the text line with the client's address and port.
        """
        self.assertProxied(1)

    def test_v2(self):
        """
        Version 2: the binary header with the client's address and port.
        """
        self.assertProxied(2)


class FactoryTests(unittest.TestCase):
    """
    L{xmppws.gateway.relay.GatewayFactory}.
    """

    def test_builds(self):
        """
        It builds relays, and refuses an unknown C{insecureWebSocket}.
        """
        harness = Harness(self)
        self.assertIsInstance(harness.gateway.buildProtocol(LOOPBACK), RelayConnection)
        from xmppws.gateway.relay import GatewayFactory
        from xmppws.gateway.routes import Router

        self.assertRaises(
            ValueError, GatewayFactory, Router([]), harness.clock, insecureWebSocket="yes"
        )

    def test_closeFrame(self):
        """
        The WebSocket closes with code 1000 after a clean close.
        """
        harness = Harness(self)
        client = harness.client()
        harness.opened(client)
        client.send(CLOSE)
        harness.flush()
        harness.servers[0].send(FOOTER)
        harness.flush()
        client.messages()
        self.assertIn(OP_CLOSE, [opcode for opcode, _ in client.frames])
