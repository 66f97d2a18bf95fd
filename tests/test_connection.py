"""
Tests for L{xmppws.connection}: one connection hosting an C{XmlStream} on
either carrier, in memory: the TCP carrier (L{xmppws.tcp}), stream
restarts, keepalive, rate limits, flow control between connections.
"""

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial import unittest
from twisted.words.protocols.jabber import component, xmlstream
from twisted.words.xish import domish
from zope.interface.verify import verifyObject

from tests.helpers import OPEN, WebSocketTestClient, echoStreamFactory
from xmppws.connection import ConnectionFactory, StreamErrorSent
from xmppws.flow import Backlog
from xmppws.iwebsocket import PING_EVENT, ICarrier, IConnection, IXMPPTransport
from xmppws.tcp import StreamCarrierFactory

HEADER = (
    b"<?xml version='1.0'?><stream:stream to='example.com' xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
)
AUTH = b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>"
MESSAGE = b"<message to='a@example.com' from='b@example.com' id='%d'><body>x</body></message>"


class TCPClient:
    """
    A TCP client of a L{StreamCarrierFactory} in memory, reading the
    server's stream as it comes.

    @ivar elements: the top-level elements received and not yet taken.
    @ivar headers: the stream headers received.
    @ivar ended: whether the server's footer arrived.
    """

    def __init__(self, factory, port=40000):
        self.transport = StringTransport(
            peerAddress=IPv4Address("TCP", "127.0.0.1", port),
            hostAddress=IPv4Address("TCP", "127.0.0.1", 5222),
        )
        self.carrier = factory.buildProtocol(self.transport.getPeer())
        self.carrier.makeConnection(self.transport)
        self.elements = []
        self.headers = []
        self.ended = False
        self.raw = b""
        self.restart()

    @property
    def connection(self):
        return self.carrier.wrappedProtocol

    def restart(self):
        self._parser = domish.elementStream()
        self._parser.DocumentStartEvent = self.headers.append
        self._parser.ElementEvent = lambda element: self.elements.append(element)
        self._parser.DocumentEndEvent = lambda: setattr(self, "ended", True)

    def send(self, data):
        self.carrier.dataReceived(data)

    def receive(self):
        data = self.transport.value()
        self.transport.clear()
        self.raw += data
        if data:
            self._parser.parse(data)
        taken, self.elements = self.elements, []
        return taken


def tcpFactory(clock, streamFactory=None, **policies):
    """
    The TCP carrier factory over a connection factory of echoing streams.
    """
    connections = ConnectionFactory(streamFactory or echoStreamFactory(), clock, **policies)
    return StreamCarrierFactory(connections)


class InterfaceTests(unittest.TestCase):
    """
    The objects of the layer provide the interfaces they declare.
    """

    def test_tcp(self):
        """
        The TCP carrier is an L{ICarrier}; the connection on it is an
        L{IXMPPTransport} and an L{IConnection}.
        """
        client = TCPClient(tcpFactory(Clock()))
        self.assertTrue(verifyObject(ICarrier, client.carrier))
        self.assertTrue(verifyObject(IXMPPTransport, client.connection))
        self.assertTrue(verifyObject(IConnection, client.connection))
        self.assertEqual(client.connection.kind, "tcp")
        self.assertEqual(client.connection.framingName, "rfc6120")

    def test_webSocket(self):
        """
        The WebSocket carrier is an L{ICarrier}.
        """
        client = WebSocketTestClient(self)
        client.open()
        self.assertTrue(verifyObject(ICarrier, client.protocol.carrier))
        self.assertTrue(verifyObject(IConnection, client.connection))
        self.assertEqual(client.connection.kind, "websocket")


class TCPStreamTests(unittest.TestCase):
    """
    XMPP over TCP through the same connection as WebSocket.
    """

    def setUp(self):
        self.clock = Clock()
        self.streams = echoStreamFactory()
        self.client = TCPClient(tcpFactory(self.clock, self.streams))

    def test_echo(self):
        """
        A stream header and stanzas reach the XmlStream; its replies come
        back unchanged, as written.
        """
        self.client.send(HEADER)
        [features] = self.client.receive()
        self.assertEqual(self.client.headers[0]["from"], "example.com")
        self.assertEqual(features.name, "features")
        self.client.send(MESSAGE % (1,))
        [echoed] = self.client.receive()
        self.assertEqual((echoed.name, echoed["to"]), ("message", "b@example.com"))

    def test_footerOnClientClose(self):
        """
        When the client closes its stream, the server sends its own footer
        before closing the connection (RFC 6120 section 4.4).
        """
        self.client.send(HEADER)
        self.client.receive()
        self.client.send(b"</stream:stream>")
        self.client.receive()
        self.assertTrue(self.client.ended)
        self.assertTrue(self.client.raw.endswith(b"</stream:stream>"))
        self.assertTrue(self.client.transport.disconnecting)
        self.client.carrier.connectionLost(Failure(ConnectionDone()))
        [reason] = self.streams.lost
        self.assertTrue(reason.check(ConnectionDone))

    def test_serverCloseWaitsForClient(self):
        """
        When the server closes first, it waits up to the close timeout for
        the client's footer before closing the connection.
        """
        self.client.send(HEADER)
        self.client.receive()
        self.streams.streams[-1].transport.loseConnection()
        self.client.receive()
        self.assertTrue(self.client.ended)
        self.assertFalse(self.client.transport.disconnecting)
        self.clock.advance(4.9)
        self.assertFalse(self.client.transport.disconnecting)
        self.clock.advance(0.2)
        self.assertTrue(self.client.transport.disconnecting)

    def test_stanzasAfterServerClose(self):
        """
        Stanzas the client sends while the server waits for its footer
        still reach the stream: nothing read is dropped.
        """
        self.client.send(HEADER)
        self.client.receive()
        seen = []
        self.streams.streams[-1].addObserver("/message", seen.append)
        self.streams.streams[-1].transport.loseConnection()
        self.client.send(MESSAGE % (7,))
        self.assertEqual([m["id"] for m in seen], ["7"])

    def test_malformedClosesAtOnce(self):
        """
        After malformed XML the server cannot read on for the client's
        footer: it sends C{not-well-formed} and its footer and closes.
        """
        self.client.send(HEADER)
        self.client.receive()
        self.client.send(b"<message><body></message>")
        [error] = self.client.receive()
        self.assertEqual(error.firstChildElement().name, "not-well-formed")
        self.assertTrue(self.client.ended)
        self.assertTrue(self.client.transport.disconnecting)

    def test_restrictedXML(self):
        """
        TCP input gets the same strict checks as WebSocket messages: a
        comment is C{restricted-xml}.
        """
        self.client.send(HEADER)
        self.client.receive()
        self.client.send(b"<message><!-- hi --></message>")
        [error] = self.client.receive()
        self.assertEqual(error.firstChildElement().name, "restricted-xml")

    def test_wrongRoot(self):
        """
        A stream whose root is no stream header is C{invalid-namespace}
        when only its namespace is wrong.
        """
        self.client.send(b"<stream:stream xmlns:stream='urn:wrong' xmlns='jabber:client'>")
        [error] = self.client.receive()
        self.assertEqual(error.firstChildElement().name, "invalid-namespace")

    def assertRestarted(self, newHeader):
        self.client.send(HEADER)
        self.client.receive()
        self.client.send(AUTH + newHeader + MESSAGE % (3,))
        data = self.client.transport.value()
        success, header, rest = data.partition(b"<stream:stream ")
        self.assertIn(b"<success", success)
        self.assertTrue(header)
        self.client.restart()
        self.client.transport.clear()
        self.client._parser.parse(header + rest)
        self.assertEqual(len(self.client.headers), 2)
        self.assertEqual([e.name for e in self.client.elements], ["features", "message"])

    def test_restartPipelined(self):
        """
        A client that sends its new stream header right behind the element
        that restarts the stream (SASL success, here), in the same read,
        gets both handled: the header opens the new stream.
        """
        self.assertRestarted(HEADER)

    def test_restartWithoutDeclaration(self):
        """
        The same works when the new header comes without an XML
        declaration.
        """
        self.assertRestarted(HEADER.split(b"?>", 1)[1])

    def test_elementSize(self):
        """
        An element over the size limit is C{policy-violation}; whitespace
        between elements counts towards none.
        """
        client = TCPClient(tcpFactory(self.clock, maxElementSize=300))
        client.send(HEADER)
        client.receive()
        for _ in range(3):
            client.send(b" " * 200)
        client.send(MESSAGE % (1,))
        self.assertEqual([e.name for e in client.receive()], ["message"])
        client.send(b"<message><body>" + b"x" * 400)
        [error] = client.receive()
        self.assertEqual(error.firstChildElement().name, "policy-violation")

    def test_startTLSOffered(self):
        """
        On a TCP carrier whose transport can start TLS, so can the
        connection: the stream code sees an C{ITLSTransport}.
        """
        from twisted.internet.interfaces import ITLSTransport
        from zope.interface import directlyProvides

        transport = StringTransport()
        directlyProvides(transport, ITLSTransport)
        started = []
        transport.startTLS = lambda context, normal=True: started.append(context)
        carrier = tcpFactory(self.clock).buildProtocol(None)
        carrier.makeConnection(transport)
        self.assertTrue(ITLSTransport.providedBy(carrier.wrappedProtocol))
        carrier.wrappedProtocol.startTLS("context")
        self.assertEqual(started, ["context"])


class IdleMemoryTests(unittest.TestCase):
    """
    What an idle connection holds.
    """

    def test_noParserBetweenReads(self):
        """
        After each network read, a WebSocket connection drops its message
        parser: an idle session holds none.
        """
        client = WebSocketTestClient(self)
        client.open()
        client.send(MESSAGE % (1,))
        self.assertIsNone(client.connection.framing._parser._parser)


class KeepaliveTests(unittest.TestCase):
    """
    Checking quiet peers on TCP, where there is no WebSocket ping.
    """

    def test_whitespaceWithoutObserver(self):
        """
        A stream nobody pings at the XMPP level gets a whitespace keepalive,
        with no answer expected.
        """
        clock = Clock()
        client = TCPClient(tcpFactory(clock, pingInterval=5, pingTimeout=2))
        client.send(HEADER)
        client.receive()
        clock.advance(5.1)
        self.assertTrue(client.transport.value().endswith(b" "))
        clock.advance(3)
        self.assertFalse(client.transport.disconnecting)
        clock.advance(2.1)
        self.assertTrue(client.transport.value().endswith(b"  "))

    def test_pingEvent(self):
        """
        An observer of L{PING_EVENT} is asked to ping; without an answer
        within the ping timeout the stream ends with C{connection-timeout}.
        """
        clock = Clock()
        streams = echoStreamFactory()
        client = TCPClient(tcpFactory(clock, streams, pingInterval=5, pingTimeout=2))
        client.send(HEADER)
        client.receive()
        asked = []
        streams.streams[-1].addObserver(PING_EVENT, asked.append)
        clock.advance(5.1)
        self.assertEqual(asked, [streams.streams[-1]])
        clock.advance(2.1)
        [error] = client.receive()
        self.assertEqual(error.firstChildElement().name, "connection-timeout")

    def test_answeredPing(self):
        """
        Anything from the peer after a ping answers it.
        """
        clock = Clock()
        streams = echoStreamFactory()
        client = TCPClient(tcpFactory(clock, streams, pingInterval=5, pingTimeout=2))
        client.send(HEADER)
        client.receive()
        streams.streams[-1].addObserver(PING_EVENT, lambda xs: None)
        for n in range(3):
            clock.advance(5.1)
            client.send(b" ")
        clock.advance(2.1)
        self.assertEqual(client.receive(), [])
        self.assertFalse(client.transport.disconnecting)


class NamespaceTests(unittest.TestCase):
    """
    The content namespace of RFC 7395 streams.
    """

    def test_fromAuthenticator(self):
        """
        Without a configured namespace, an RFC 7395 stream takes the one
        its authenticator declares: a component server's streams are
        C{jabber:component:accept}.
        """
        factory = xmlstream.XmlStreamServerFactory(
            lambda: component.ListenComponentAuthenticator("secret")
        )
        client = WebSocketTestClient(self, streamFactory=factory)
        factory.streams = []
        original = factory.buildProtocol

        def build(addr):
            xs = original(addr)
            factory.streams.append(xs)
            return xs

        factory.buildProtocol = build
        [header] = client.open(
            b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='comp.example'/>"
        )
        self.assertEqual(client.xmlStream.namespace, "jabber:component:accept")
        self.assertIn(b"<open", header)

    def test_configured(self):
        """
        A configured namespace wins over the authenticator's.
        """
        client = WebSocketTestClient(self, contentNamespace="jabber:server")
        client.open()
        self.assertEqual(client.xmlStream.namespace, "jabber:server")


class _OverridingStream(xmlstream.XmlStream):
    """
    A stream that overrides C{dataReceived}, as code predating the
    adapter may.
    """

    def dataReceived(self, data):
        self.seen = getattr(self, "seen", b"") + data
        xmlstream.XmlStream.dataReceived(self, data)


class CompatibilityTests(unittest.TestCase):
    """
    Stream code that hooks into C{XmlStream} the ways Twisted allows.
    """

    def test_overriddenDataReceived(self):
        """
        A stream overriding C{dataReceived} still gets everything through
        it, as bytes of one well-formed stream.
        """
        factory = echoStreamFactory()
        factory.protocol = _OverridingStream
        client = WebSocketTestClient(self, streamFactory=factory)
        messages = client.open()
        self.assertEqual(len(messages), 2)
        client.send(MESSAGE % (5,))
        [echoed] = client.messages()
        self.assertIn(b"id='5'", echoed)
        self.assertIn(b"<message", client.xmlStream.seen)

    def test_rawDataInFn(self):
        """
        C{rawDataInFn} sees what arrived, as with TCP.
        """
        client = WebSocketTestClient(self)
        client.open()
        seen = []
        client.xmlStream.rawDataInFn = seen.append
        client.send(MESSAGE % (6,))
        self.assertEqual(seen, [MESSAGE % (6,)])

    def test_setDispatchFn(self):
        """
        A dispatch function set with C{setDispatchFn} gets the elements.
        """
        client = WebSocketTestClient(self)
        client.open()
        seen = []
        client.xmlStream.setDispatchFn(seen.append)
        client.send(MESSAGE % (8,))
        self.assertEqual([e["id"] for e in seen], ["8"])


class RateTests(unittest.TestCase):
    """
    The byte rate.
    """

    def test_byteRate(self):
        """
        A peer over the byte rate has reading paused until the rate allows
        more; what it sent is all handled, and it is not disconnected.
        """
        clock = Clock()
        client = TCPClient(tcpFactory(clock, byteRate=1000, byteBurst=1000))
        client.send(HEADER)
        client.send(b"".join(MESSAGE % (n,) for n in range(30)))
        self.assertEqual(len(client.receive()), 31)
        self.assertEqual(client.transport.producerState, "paused")
        clock.advance(3)
        self.assertEqual(client.transport.producerState, "producing")
        self.assertFalse(client.transport.disconnecting)


def _relay(source, target):
    """
    What a router does: send every message from one stream to another.
    """
    source.addObserver("/message", lambda message: target.send(message))


class FlowControlTests(unittest.TestCase):
    """
    A connection whose peer does not read stops whoever writes to it: no
    producer registration needed, no stanza lost, memory bounded.
    """

    def setUp(self):
        self.clock = Clock()
        self.streams = echoStreamFactory()
        self.sender = WebSocketTestClient(self, self.streams, clock=self.clock)
        self.sender.open()
        senderStream = self.sender.xmlStream
        self.reader = WebSocketTestClient(self, self.streams, clock=self.clock)
        self.reader.open()
        readerStream = self.reader.xmlStream
        senderStream.removeObserver("/*", senderStream.authenticator._echo)
        _relay(senderStream, readerStream)

    def test_slowReaderPausesSender(self):
        """
        While the reader does not read, a message relayed to it stops
        reading from the sender; once it reads again, the sender resumes;
        every message arrives.
        """
        self.reader.transport.producer.pauseProducing()
        self.sender.send(MESSAGE % (1,))
        self.assertEqual(self.sender.transport.producerState, "paused")
        self.reader.transport.producer.resumeProducing()
        self.assertEqual(self.sender.transport.producerState, "producing")
        self.sender.send(MESSAGE % (2,))
        self.assertEqual(len(self.reader.messages()), 2)

    def test_unrelatedNotPaused(self):
        """
        A connection that writes nothing to the slow reader goes on.
        """
        other = WebSocketTestClient(self, self.streams, clock=self.clock)
        other.open()
        self.reader.transport.producer.pauseProducing()
        other.send(MESSAGE % (1,))
        self.assertEqual(other.transport.producerState, "producing")
        self.assertEqual(len(other.messages()), 1)

    def test_stalledReaderDropped(self):
        """
        A reader that leaves its output unread for the stall timeout is
        dropped, and the sender it held up resumes.
        """
        self.reader.transport.producer.pauseProducing()
        self.sender.send(MESSAGE % (1,))
        self.clock.advance(59)
        self.assertFalse(self.reader.transport.disconnecting)
        self.clock.advance(2)
        self.assertTrue(self.reader.transport.disconnecting)
        self.reader.lose()
        self.assertEqual(self.sender.transport.producerState, "producing")
        self.assertFalse(self.sender.transport.disconnecting)
        [reason] = [r for r in self.streams.lost]
        self.assertTrue(reason.check(StreamErrorSent))

    def test_readerGoneResumesSender(self):
        """
        When a reader that held up a sender goes away, the sender resumes.
        """
        self.reader.transport.producer.pauseProducing()
        self.sender.send(MESSAGE % (1,))
        self.reader.lose()
        self.assertEqual(self.sender.transport.producerState, "producing")


class BacklogTests(unittest.TestCase):
    """
    Work queued behind the connections (a L{Backlog}) holds up the
    connection that adds to it past its high mark, until it is down to
    its low mark.
    """

    def setUp(self):
        self.clock = Clock()
        self.backlog = Backlog(3, 1)
        self.streams = echoStreamFactory()
        self.sender = WebSocketTestClient(self, self.streams, clock=self.clock)
        self.sender.open()
        stream = self.sender.xmlStream
        stream.removeObserver("/*", stream.authenticator._echo)
        self.queued = []

        def queue(message):
            self.queued.append(message)
            self.backlog.grew(len(self.queued))

        stream.addObserver("/message", queue)

    def drain(self, keep):
        del self.queued[keep:]
        self.backlog.shrank(len(self.queued))

    def test_heldAtHighMark(self):
        """
        Below the high mark the sender reads on; the stanza that brings the
        backlog to it stops reading, and none is lost.
        """
        self.sender.send(MESSAGE % (1,))
        self.sender.send(MESSAGE % (2,))
        self.assertEqual(self.sender.transport.producerState, "producing")
        self.sender.send(MESSAGE % (3,))
        self.assertEqual(self.sender.transport.producerState, "paused")
        self.assertEqual((self.backlog.holding, self.backlog.holds), (1, 1))
        self.assertEqual(len(self.queued), 3)

    def test_resumedAtLowMark(self):
        """
        Reading goes on once the backlog is down to its low mark, not
        before.
        """
        for n in range(3):
            self.sender.send(MESSAGE % (n,))
        self.drain(2)
        self.assertEqual(self.sender.transport.producerState, "paused")
        self.drain(1)
        self.assertEqual(self.sender.transport.producerState, "producing")
        self.assertEqual(self.backlog.holding, 0)

    def test_heldNotDropped(self):
        """
        Being held up is no reason to be given up on: the stall timeout
        and the idle timers do not run out on a held sender.
        """
        for n in range(3):
            self.sender.send(MESSAGE % (n,))
        self.clock.advance(3600)
        self.assertFalse(self.sender.transport.disconnecting)
        self.drain(0)
        self.assertEqual(self.sender.transport.producerState, "producing")

    def test_goneWhileHeld(self):
        """
        A held connection that goes away is forgotten by the backlog.
        """
        for n in range(3):
            self.sender.send(MESSAGE % (n,))
        self.sender.lose()
        self.assertEqual(self.backlog.holding, 0)
        self.drain(0)

    def test_notDispatching(self):
        """
        Work added outside the handling of a received element (a timer)
        holds nobody up.
        """
        self.queued.extend([None] * 3)
        self.backlog.grew(3)
        self.assertEqual(self.backlog.holding, 0)
        self.assertEqual(self.sender.transport.producerState, "producing")
        self.sender.send(MESSAGE % (1,))
        self.assertEqual(self.sender.transport.producerState, "paused")

    def test_marks(self):
        """
        The low mark is half the high one unless given, never above it;
        the high mark is at least one.
        """
        self.assertEqual(Backlog(10).low, 5)
        self.assertEqual(Backlog(10, 20).low, 10)
        self.assertRaises(ValueError, Backlog, 0)
