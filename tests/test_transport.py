"""
Tests for L{xmppws.connection.XmlStreamConnection} as the transport an
XmlStream sees, and flow control through it.
"""

from twisted.internet.error import ConnectionLost
from twisted.internet.interfaces import IPushProducer
from twisted.python.failure import Failure
from twisted.trial import unittest
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.helpers import OPEN, WebSocketTestClient
from twisted.internet.interfaces import ITLSTransport

from xmppws.iwebsocket import IXMPPTransport

MESSAGE = b"<message xmlns='jabber:client' to='a@example.com'><body>x</body></message>"


@implementer(IPushProducer)
class RecordingProducer:
    """
    A push producer recording the calls it gets.
    """

    def __init__(self):
        self.calls = []

    def pauseProducing(self):
        self.calls.append("pause")

    def resumeProducing(self):
        self.calls.append("resume")

    def stopProducing(self):
        self.calls.append("stop")


class TransportTests(unittest.TestCase):
    """
    The XmlStream's view of the connection.
    """

    def setUp(self):
        self.client = WebSocketTestClient(self)
        self.client.open(OPEN)
        self.transport = self.client.xmlStream.transport

    def test_interface(self):
        """
        The transport provides L{IXMPPTransport}.
        """
        self.assertTrue(verifyObject(IXMPPTransport, self.transport))

    def test_details(self):
        """
        The transport tells the framing, path and peer.
        """
        self.assertEqual(self.transport.framing.name, "rfc7395")
        self.assertEqual(self.transport.path, "/xmpp-websocket")
        self.assertEqual(self.transport.getPeer().host, "192.0.2.7")
        self.assertIsNone(self.transport.origin)

    def test_noStartTLS(self):
        """
        The transport does not provide C{ITLSTransport}: STARTTLS never runs
        inside a WebSocket.
        """
        self.assertFalse(ITLSTransport.providedBy(self.transport))
        self.assertRaises(RuntimeError, self.transport.startTLS, None)

    def test_writeSequence(self):
        """
        Chunks written in sequence make up whole messages, split at element
        boundaries.
        """
        self.transport.writeSequence(
            [b"<message xmlns='jabber:client'><bo", b"dy>x</body></message><iq/>"]
        )
        self.assertEqual(len(self.client.messages()), 2)

    def test_registerTwice(self):
        """
        Only one producer can be registered at a time, as with TCP.
        """
        self.transport.registerProducer(RecordingProducer(), True)
        self.assertRaises(
            RuntimeError, self.transport.registerProducer, RecordingProducer(), True
        )
        self.transport.unregisterProducer()
        self.transport.registerProducer(RecordingProducer(), True)

    def test_pullProducer(self):
        """
        A pull producer is asked for data when registered.
        """
        producer = RecordingProducer()
        self.transport.registerProducer(producer, False)
        self.assertEqual(producer.calls, ["resume"])

    def test_pauseReading(self):
        """
        Pausing the transport as a producer stops reading from the peer.
        """
        self.transport.pauseProducing()
        self.assertEqual(self.client.transport.producerState, "paused")
        self.transport.resumeProducing()
        self.assertEqual(self.client.transport.producerState, "producing")

    def test_outputFullPausesReading(self):
        """
        When the connection's own output is full, the server stops reading
        from that peer (a client flooding requests without reading replies)
        and pauses the registered producer; both resume once it drains.
        """
        producer = RecordingProducer()
        self.transport.registerProducer(producer, True)
        backpressure = self.client.transport.producer
        backpressure.pauseProducing()
        self.assertEqual(self.client.transport.producerState, "paused")
        self.assertEqual(producer.calls, ["pause"])
        backpressure.resumeProducing()
        self.assertEqual(self.client.transport.producerState, "producing")
        self.assertEqual(producer.calls, ["pause", "resume"])

    def test_pauseReasonsCombine(self):
        """
        Reading resumes only when every reason to pause is gone.
        """
        backpressure = self.client.transport.producer
        backpressure.pauseProducing()
        self.transport.pauseProducing()
        backpressure.resumeProducing()
        self.assertEqual(self.client.transport.producerState, "paused")
        self.transport.resumeProducing()
        self.assertEqual(self.client.transport.producerState, "producing")

    def test_registeredWhilePaused(self):
        """
        A producer registered while output is full is paused at once.
        """
        self.client.transport.producer.pauseProducing()
        producer = RecordingProducer()
        self.transport.registerProducer(producer, True)
        self.assertEqual(producer.calls, ["pause"])


class RelayFlowControlTests(unittest.TestCase):
    """
    Stream code relaying from one WebSocket session to another, as a
    router does, gets TCP-like flow control: a slow reader makes the
    server stop reading from whoever floods it.
    """

    def setUp(self):
        self.sender = WebSocketTestClient(self)
        self.sender.open(OPEN)
        senderStream = self.sender.xmlStream
        self.reader = WebSocketTestClient(self, streamFactory=self.sender.streamFactory)
        self.reader.open(OPEN)
        self.readerStream = self.reader.xmlStream
        self.assertIsNot(senderStream, self.readerStream)
        # What a router does: tie the sender's reading to the reader's
        # output, and relay.
        self.readerStream.transport.registerProducer(senderStream.transport, True)
        senderStream.addObserver("/message", self.readerStream.send)

    def test_slowReaderPausesSender(self):
        """
        When the reader's socket buffer fills, the server stops reading from
        the sender; when it drains, reading resumes; nothing is lost.
        """
        for i in range(3):
            self.sender.send(MESSAGE)
        self.assertEqual(len(self.reader.messages()), 3)
        self.reader.transport.producer.pauseProducing()
        self.assertEqual(self.sender.transport.producerState, "paused")
        self.assertEqual(self.reader.transport.producerState, "paused")
        self.reader.transport.producer.resumeProducing()
        self.assertEqual(self.sender.transport.producerState, "producing")
        self.sender.send(MESSAGE)
        self.assertEqual(len(self.reader.messages()), 1)

    def test_readerGoneResumesSender(self):
        """
        When the paused reader's connection is lost, the sender is resumed,
        neither stopped nor left paused.
        """
        self.reader.transport.producer.pauseProducing()
        self.assertEqual(self.sender.transport.producerState, "paused")
        self.reader.protocol.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(self.sender.transport.producerState, "producing")
        self.assertFalse(self.sender.transport.disconnecting)

    def test_unregisterResumes(self):
        """
        Unregistering a producer this transport paused resumes it.
        """
        self.reader.transport.producer.pauseProducing()
        self.readerStream.transport.unregisterProducer()
        self.assertEqual(self.sender.transport.producerState, "producing")
