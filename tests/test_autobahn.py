"""
What xmppws relies on in Autobahn beyond its documented interface (listed
in C{docs/adapter.rst}), each pinned by a test that fails when Autobahn
changes it.
"""

import inspect

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet.task import Clock
from twisted.trial import unittest

from tests.helpers import CLOSE, OP_CLOSE, OPEN, WebSocketTestClient, clientFrame
from xmppws._carrier import ReactorTimer


class BatchedTimerTests(unittest.TestCase):
    """
    Autobahn's protocols take their handshake timers from the factory's
    C{_batched_timer}; xmppws puts one there that runs on the factory's
    reactor.
    """

    def test_factoryAttribute(self):
        """
        Autobahn's server factory still has a C{_batched_timer} with a
        C{call_later}.
        """
        factory = WebSocketServerFactory(reactor=Clock())
        self.assertTrue(callable(factory._batched_timer.call_later))

    def test_openingHandshakeTimeoutOnFactoryReactor(self):
        """
        The opening handshake timeout runs on the factory's reactor: a
        client that sends nothing is dropped when that clock moves, and
        nothing is left on txaio's global loop.
        """
        clock = Clock()
        client = WebSocketTestClient(self, clock=clock, handshakeTimeout=3)
        self.assertIsInstance(client.factory._batched_timer, ReactorTimer)
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        clock.advance(3.1)
        self.assertTrue(client.transport.disconnecting)

    def test_closingHandshakeTimeoutOnFactoryReactor(self):
        """
        The closing handshake timeout runs there too: a peer that never
        answers the close frame is dropped when that clock moves.
        """
        clock = Clock()
        client = WebSocketTestClient(self, clock=clock)
        client.open()
        client.connection.closeStream()
        self.assertFalse(client.transport.disconnecting)
        clock.advance(5.1)
        self.assertTrue(client.transport.disconnecting)

    def test_closingHandshakeTimerCancelledWithConnection(self):
        """
        Autobahn leaves the closing handshake timer running when the TCP
        connection is lost first; the carrier cancels it, so that nothing
        of a closed connection stays referenced by the reactor.
        """
        clock = Clock()
        client = WebSocketTestClient(self, clock=clock)
        client.open()
        client.connection.closeStream()
        self.assertIsNotNone(client.protocol.closeHandshakeTimeoutCall)
        client.lose()
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertIsNone(client.protocol.closeHandshakeTimeoutCall)


class CloseCodeTests(unittest.TestCase):
    """
    C{sendClose} accepts only 1000 and 3000-4999; the protocol close codes
    (1003, 1009, 1011) go through C{sendCloseFrame}.
    """

    def test_sendCloseRefusesProtocolCodes(self):
        """
        Autobahn's C{sendClose} still refuses 1009, which is why
        C{sendCloseFrame} is used.
        """
        client = WebSocketTestClient(self)
        client.open()
        self.assertRaises(Exception, client.protocol.sendClose, 1009, "too big")

    def test_sendCloseFrameSignature(self):
        """
        C{sendCloseFrame} still takes C{code}, C{reasonUtf8} and C{isReply}.
        """
        parameters = inspect.signature(WebSocketServerProtocol.sendCloseFrame).parameters
        self.assertTrue({"code", "reasonUtf8", "isReply"} <= set(parameters))

    def test_messageTooBigCode(self):
        """
        An oversized message is answered with close code 1009.
        """
        client = WebSocketTestClient(self, maxMessageSize=100)
        client.open()
        client.send(b"<message>" + b"x" * 200 + b"</message>")
        client.received()
        self.assertEqual(client.closeCode(), 1009)


class DropConnectionTests(unittest.TestCase):
    """
    After the closing handshake Autobahn's server calls
    C{dropConnection(abort=True)}, which would discard what is still
    buffered; the carrier turns it into a clean close.
    """

    def test_lastCloseFlushed(self):
        """
        A client's C{<close/>} and close frame in one read get the server's
        C{<close/>} and close frame, not a reset.
        """
        client = WebSocketTestClient(self)
        client.open()
        client.protocol.dataReceived(clientFrame(CLOSE) + clientFrame(b"\x03\xe8", OP_CLOSE))
        self.assertTrue(client.protocol.wasClean)
        self.assertTrue(client.transport.disconnecting)
        self.assertFalse(getattr(client.transport, "aborted", False))
        frames = client.received()
        self.assertIn(b"<close", frames[0][1])
        self.assertEqual(frames[-1][0], OP_CLOSE)

    def test_dropConnectionSignature(self):
        """
        C{dropConnection} still takes C{abort}.
        """
        parameters = inspect.signature(WebSocketServerProtocol.dropConnection).parameters
        self.assertIn("abort", parameters)


class HandshakeTests(unittest.TestCase):
    """
    A refused handshake (C{ConnectionDeny} from C{onConnect}) reaches
    C{failHandshake}, which xmppws overrides to send a body.
    """

    def test_failHandshakeSignature(self):
        """
        C{failHandshake} still takes the reason, the code and the response
        headers.
        """
        parameters = inspect.signature(WebSocketServerProtocol.failHandshake).parameters
        self.assertTrue({"reason", "code", "responseHeaders"} <= set(parameters))

    def test_frameCallbacksPublic(self):
        """
        The frame-level receive callbacks the carrier overrides are still
        those of Autobahn's streaming interface.
        """
        from autobahn.websocket.interfaces import IWebSocketChannelStreamingApi

        names = set(dir(IWebSocketChannelStreamingApi))
        for name in (
            "onMessageBegin",
            "onMessageFrameBegin",
            "onMessageFrameData",
            "onMessageFrameEnd",
            "onMessageEnd",
        ):
            self.assertIn(name, names)

    def test_openMessageStillWorks(self):
        """
        With all of the above, a stream opens.
        """
        client = WebSocketTestClient(self)
        self.assertEqual(len(client.open(OPEN)), 2)


class ReadSliceTests(unittest.TestCase):
    """
    Autobahn copies the rest of its receive buffer for every frame it cuts
    off the front, so the carrier hands it a large read in slices.
    """

    MESSAGE = (b"<message xmlns='jabber:client' to='b@example.com' id='%04d'>"
               b"<body>%s</body></message>")

    def setUp(self):
        from xmppws._carrier import READ_SLICE

        self.slice = READ_SLICE
        self.client = WebSocketTestClient(self)
        self.client.open()
        protocol = self.client.protocol
        real = protocol._dataReceived
        self.sizes = []

        def recording(data):
            self.sizes.append(len(data))
            return real(data)

        protocol._dataReceived = recording

    def test_largeReadSliced(self):
        """
        A read of a thousand messages reaches Autobahn in slices of at most
        READ_SLICE bytes, and every message is handled, in order.
        """
        count = 1000
        read = b"".join(
            clientFrame(self.MESSAGE % (n, b"x" * (n % 300))) for n in range(count)
        )
        self.assertGreater(len(read), 4 * self.slice)
        self.client.protocol.dataReceived(read)
        self.assertEqual(sum(self.sizes), len(read))
        self.assertLessEqual(max(self.sizes), self.slice)
        ids = [m.split(b"id='")[1][:4] for m in self.client.messages()]
        self.assertEqual(ids, [b"%04d" % (n,) for n in range(count)])

    def test_smallReadWhole(self):
        """
        A read no larger than a slice is handed over as it is.
        """
        frame = clientFrame(self.MESSAGE % (1, b"hi"))
        self.client.protocol.dataReceived(frame)
        self.assertEqual(self.sizes, [len(frame)])
        self.assertEqual(len(self.client.messages()), 1)

    def test_closeMidRead(self):
        """
        A C{<close/>} in the middle of a large read ends the stream there:
        the stanzas after it are not handled.
        """
        before = b"".join(clientFrame(self.MESSAGE % (n, b"y" * 200)) for n in range(100))
        after = b"".join(clientFrame(self.MESSAGE % (n, b"z" * 200)) for n in range(100, 200))
        self.client.protocol.dataReceived(before + clientFrame(CLOSE) + after)
        ids = [m.split(b"id='")[1][:4] for m in self.client.messages() if b"id='" in m]
        self.assertEqual(ids, [b"%04d" % (n,) for n in range(100)])
