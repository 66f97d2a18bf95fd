"""
The connection layer over real loopback sockets, with clients written
elsewhere: flow control under a flood (nothing lost, memory bounded, the
sender slowed and never thrown out), and what third-party clients tripped
on (the TCP footer and a pending XEP-0198 request at close, C{Origin:
null}, the sender of errors to stanzas without C{to}).

Clients run in threads with blocking sockets (the C{websockets} package's
synchronous client, or a plain socket); the server runs on the reactor.
Every loop is bounded in count and time.
"""

import base64
import re
import socket
import time

from twisted.internet import reactor, threads
from twisted.internet.defer import inlineCallbacks
from twisted.python.filepath import FilePath
from twisted.trial import unittest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.c2shelpers import parseElement
from tests.e2ehelpers import DOMAIN, PASSWORD, ConnectionTracker, E2EServer, waitFor

NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
TIMEOUT = 20
FLOOD = 1500
BODY = "f" * 1000


def _plain(user):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + PASSWORD.encode()).decode()


class BlockingWebSocketClient:
    """
    A WebSocket XMPP client with blocking calls, for a thread: PLAIN
    login, raw sends, reads only when asked.

    @ivar jid: the bound JID.
    """

    def __init__(self, url, receiveBuffer=None, origin=None):
        sock = None
        if receiveBuffer is not None:
            host, port = re.match(r"ws://([^:]+):(\d+)", url).groups()
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receiveBuffer)
            sock.connect((host, int(port)))
        self.ws = connect(
            url,
            sock=sock,
            subprotocols=["xmpp"],
            origin=origin,
            open_timeout=TIMEOUT,
            close_timeout=2,
            max_queue=2,
            max_size=2**20,
        )
        self.jid = None

    def send(self, data):
        self.ws.send(data)

    def recv(self):
        return self.ws.recv(timeout=TIMEOUT)

    def element(self):
        return parseElement(self.recv().encode("utf-8"))

    def login(self, user, resource):
        self.send("<open xmlns='%s' to='%s' version='1.0'/>" % (NS_FRAMING, DOMAIN))
        self.recv()
        self.recv()
        self.send(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>"
            % (_plain(user),)
        )
        assert self.element().name == "success"
        self.send("<open xmlns='%s' to='%s' version='1.0'/>" % (NS_FRAMING, DOMAIN))
        self.recv()
        self.recv()
        self.send(
            "<iq xmlns='jabber:client' type='set' id='b'><bind "
            "xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>%s</resource></bind></iq>"
            % (resource,)
        )
        self.jid = str(self.element().bind.jid)
        return self.jid

    def close(self):
        try:
            self.ws.send("<close xmlns='%s'/>" % (NS_FRAMING,))
        except Exception:
            pass
        self.ws.close()


class _Test(unittest.TestCase):
    """
    A server per test, stopped (with every connection gone) at the end.
    """

    timeout = 90

    @inlineCallbacks
    def startServer(self, **options):
        self.tracker = ConnectionTracker(reactor)
        server = E2EServer(reactor, FilePath(self.mktemp()), self.tracker, **options)
        yield server.start()

        @inlineCallbacks
        def stop():
            yield server.stop()

        self.addCleanup(stop)
        return server

    def client(self, *args, **kwargs):
        client = BlockingWebSocketClient(*args, **kwargs)
        self.addCleanup(threads.deferToThread, client.close)
        return client


def _buffered(tcpTransport):
    """
    The bytes a Twisted TCP transport holds unsent (its write buffer).
    """
    return (
        len(tcpTransport.dataBuffer) - tcpTransport.offset + tcpTransport._tempDataLen
    )


class FloodTests(_Test):
    """
    A client floods another that does not read.
    """

    @inlineCallbacks
    def test_slowReader(self):
        """
        While the reader does not read, the server stops reading from the
        flooding sender once the reader's buffer is full, so what it holds
        stays bounded; once the reader reads, every message arrives in
        order, and the sender was never disconnected nor sent an error.
        """
        server = yield self.startServer(policies={"stanzaRate": 0, "byteRate": 0})
        reader = yield threads.deferToThread(
            self.client, server.wsURL, receiveBuffer=4096
        )
        readerJID = yield threads.deferToThread(reader.login, "bob", "slow")
        sender = yield threads.deferToThread(self.client, server.wsURL)
        senderJID = yield threads.deferToThread(sender.login, "alice", "fast")

        readerConnection = server.session(readerJID).xs.transport
        senderConnection = server.session(senderJID).xs.transport
        tcp = readerConnection.transport._protocol.transport
        # Loopback send buffers grow to megabytes; a small one makes the
        # server's own buffer fill within a bounded flood.
        tcp.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        flooding = threads.deferToThread(_flood, sender, readerJID, FLOOD, "f")
        most = [0]
        paused = []

        def watched():
            most[0] = max(most[0], _buffered(tcp))
            if senderConnection.readingPaused:
                paused.append(True)
            return len(paused) > 20

        # (The sender's thread may finish sending before this: what the
        # server does not read waits in the kernel's socket buffers, not in
        # the server.)
        yield waitFor(reactor, watched, TIMEOUT, "the sender to be held up", interval=0.01)
        self.assertFalse(senderConnection.disconnecting)
        # Far less than the flood (1.5 MB): about one buffer and one read.
        self.assertLess(most[0], 400 * 1024)

        def drain():
            ids = []
            deadline = time.monotonic() + TIMEOUT * 2
            while len(ids) < FLOOD and time.monotonic() < deadline:
                element = reader.element()
                if element.name == "message":
                    ids.append(element["id"])
            return ids

        ids = yield threads.deferToThread(drain)
        yield flooding
        self.assertEqual(ids, ["f%d" % (n,) for n in range(FLOOD)])
        self.assertFalse(senderConnection.disconnecting)
        nothing = yield threads.deferToThread(_nothingWaiting, sender)
        self.assertTrue(nothing)

    @inlineCallbacks
    def test_stalledReaderNothingLost(self):
        """
        A reader that never reads is dropped after the stall timeout; with
        stream management on, what it did not acknowledge is stored and
        comes back at its next login, with the rest sent to it offline:
        every message the sender sent is delivered exactly once, none is
        bounced, and the sender is never disconnected.
        """
        server = yield self.startServer(
            policies={"stanzaRate": 0, "byteRate": 0, "stallTimeout": 2},
            smTimeout=1,
        )
        reader = yield threads.deferToThread(
            self.client, server.wsURL, receiveBuffer=4096
        )
        readerJID = yield threads.deferToThread(reader.login, "bob", "stalled")
        yield threads.deferToThread(
            reader.send, "<enable xmlns='urn:xmpp:sm:3' resume='true'/>"
        )
        enabled = yield threads.deferToThread(reader.element)
        self.assertEqual(enabled.name, "enabled")
        yield threads.deferToThread(reader.send, "<presence xmlns='jabber:client'/>")
        sender = yield threads.deferToThread(self.client, server.wsURL)
        senderJID = yield threads.deferToThread(sender.login, "alice", "fast")
        readerConnection = server.session(readerJID).xs.transport
        count = 600
        flooding = threads.deferToThread(_flood, sender, "bob@" + DOMAIN, count, "s")
        yield waitFor(
            reactor, lambda: readerConnection.xmlStream is None, TIMEOUT, "the stall to end"
        )
        yield flooding
        yield waitFor(
            reactor, lambda: not server.server.sessionsOf(_bare(readerJID)), TIMEOUT,
            "the detached session to end",
        )

        again = yield threads.deferToThread(self.client, server.wsURL)
        yield threads.deferToThread(again.login, "bob", "again")

        def collect():
            again.send("<presence xmlns='jabber:client'/>")
            ids = set()
            deadline = time.monotonic() + TIMEOUT
            while len(ids) < count and time.monotonic() < deadline:
                element = again.element()
                if element.name == "message" and element.getAttribute("type") != "error":
                    ids.add(element["id"])
            return ids

        ids = yield threads.deferToThread(collect)
        self.assertEqual(ids, {"s%d" % (n,) for n in range(count)})
        nothing = yield threads.deferToThread(_nothingWaiting, sender)
        self.assertTrue(nothing)


def _flood(sender, to, count, prefix):
    """
    Send C{count} chat messages to C{to} as fast as the socket takes them,
    with ids C{prefix0}, C{prefix1}...
    """
    for n in range(count):
        sender.send(
            "<message xmlns='jabber:client' to='%s' id='%s%d' type='chat'>"
            "<body>%s</body></message>" % (to, prefix, n, BODY)
        )


def _bare(jid):
    from twisted.words.protocols.jabber.jid import JID

    return JID(jid.split("/")[0])


def _nothingWaiting(client):
    """
    Whether nothing (no error bounced, nothing at all) waits for C{client}
    within a short while.
    """
    try:
        client.ws.recv(timeout=0.3)
    except TimeoutError:
        return True
    return False


class ClientTrippingTests(_Test):
    """
    What third-party clients tripped on, over real sockets.
    """

    @inlineCallbacks
    def test_tcpFooterAndPendingAck(self):
        """
        On TCP, a client that asks for an acknowledgement and closes its
        stream gets the C{<a/>}, then the server's own footer, then the
        close.
        """
        server = yield self.startServer()

        def session():
            sock = socket.create_connection(("127.0.0.1", server.c2sPort), timeout=TIMEOUT)
            header = (
                "<?xml version='1.0'?><stream:stream to='%s' xmlns='jabber:client' "
                "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>" % (DOMAIN,)
            )
            received = b""

            def until(marker):
                nonlocal received
                deadline = time.monotonic() + TIMEOUT
                while marker not in received and time.monotonic() < deadline:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    received += chunk

            sock.sendall(header.encode())
            until(b"</stream:features>")
            sock.sendall(
                (
                    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                    "%s</auth>" % (_plain("carol"),)
                ).encode()
            )
            until(b"<success")
            received = b""
            sock.sendall(header.encode())
            until(b"</stream:features>")
            sock.sendall(
                b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                b"<resource>tcp</resource></bind></iq><enable xmlns='urn:xmpp:sm:3'/>"
            )
            until(b"<enabled")
            received = b""
            sock.sendall(b"<r xmlns='urn:xmpp:sm:3'/></stream:stream>")
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
            sock.close()
            return received

        received = yield threads.deferToThread(session)
        ack = received.find(b"<a xmlns='urn:xmpp:sm:3'")
        footer = received.find(b"</stream:stream>")
        self.assertNotEqual(ack, -1, received)
        self.assertGreater(footer, ack)
        self.assertTrue(received.endswith(b"</stream:stream>"), received)

    @inlineCallbacks
    def test_nullOrigin(self):
        """
        A handshake with C{Origin: null} (a file: page, a sandboxed frame)
        is accepted when origins are not restricted.
        """
        server = yield self.startServer()
        client = yield threads.deferToThread(self.client, server.wsURL, origin="null")
        jid = yield threads.deferToThread(client.login, "alice", "null-origin")
        self.assertEqual(jid, "alice@%s/null-origin" % (DOMAIN,))

    @inlineCallbacks
    def test_nullOriginRefused(self):
        """
        When an origin allow-list does not admit C{null}, the handshake gets
        403 with an explanation.
        """
        server = yield self.startServer(wsOptions={"allowedOrigins": ["https://chat.example"]})

        def attempt():
            try:
                connect(server.wsURL, subprotocols=["xmpp"], origin="null", open_timeout=TIMEOUT)
            except InvalidStatus as e:
                return e.response
            raise AssertionError("the handshake was accepted")

        response = yield threads.deferToThread(attempt)
        self.assertEqual(response.status_code, 403)
        self.assertIn(b"origin", response.body)

    @inlineCallbacks
    def test_errorToStanzaWithoutTo(self):
        """
        The error the server generates for a stanza sent without C{to}
        (an iq it does not know) comes from the account's bare JID, not
        from the domain, so clients matching replies by sender accept it.
        """
        server = yield self.startServer()
        client = yield threads.deferToThread(self.client, server.wsURL)
        yield threads.deferToThread(client.login, "alice", "web")

        def ask():
            client.send(
                "<iq xmlns='jabber:client' type='get' id='u1'><unknown xmlns='urn:example'/></iq>"
            )
            return client.element()

        reply = yield threads.deferToThread(ask)
        self.assertEqual((reply["type"], reply["id"]), ("error", "u1"))
        self.assertIn(reply.getAttribute("from"), (None, "alice@%s" % (DOMAIN,)))
