# -*- test-case-name: tests.test_gateway_servers -*-
"""
Helpers for the gateway's tests against real servers (L{tests.peers}):
a gateway in the test process on a loopback port of the real reactor,
servers shared by the tests of one class, and WebSocket clients that are
not the gateway's own code.
"""

import atexit
import os
import socket
import threading

from twisted.internet import defer
from twisted.internet.endpoints import serverFromString

from tests import peers
from tests.e2ehelpers import (
    PASSWORD,
    TIMEOUT,
    ConnectionTracker,
    Inbox,
    WebSocketsClient,
    waitFor,
)
from xmppws._connections import ConnectionMonitor
from xmppws.gateway.relay import GatewayFactory
from xmppws.gateway.routes import Router, parseUpstream
from xmppws.limits import ConnectionLimiter
from xmppws.websocket import XMPPWebSocketServerFactory

__all__ = [
    "LiveGateway",
    "LegacyClient",
    "SharedPeers",
    "SourceBoundClient",
    "USERS",
]

USERS = ("alice", "bob", "carol")
WS_PATH = "/xmpp-websocket"


class LiveGateway:
    """
    A gateway in this process, on a free loopback port of the real
    reactor, relaying C{localhost} through the given routes.

    @ivar factory: its L{GatewayFactory}.
    @ivar monitor: its L{ConnectionMonitor}.
    @ivar url: its WebSocket URL, once listening.
    """

    def __init__(self, reactor, upstreams, **options):
        """
        @param upstreams: C{--upstream} values.
        @param options: more keyword arguments for L{GatewayFactory}.
        """
        self.reactor = reactor
        self.monitor = ConnectionMonitor(ConnectionLimiter(10000, 10000))
        self.factory = GatewayFactory(
            Router([parseUpstream(reactor, text) for text in upstreams]),
            reactor,
            monitor=self.monitor,
            **options,
        )
        self.tracker = ConnectionTracker(reactor)
        self.port = None
        self.url = None

    @defer.inlineCallbacks
    def start(self):
        ws = self.webSocketFactory = XMPPWebSocketServerFactory(
            connectionFactory=self.factory, path=WS_PATH, reactor=self.reactor
        )
        endpoint = serverFromString(self.reactor, "tcp:0:interface=127.0.0.1")
        self.port = yield endpoint.listen(self.tracker.track(ws))
        self.url = "ws://127.0.0.1:%d%s" % (self.port.getHost().port, WS_PATH)
        return self

    @defer.inlineCallbacks
    def stop(self):
        """
        Stop listening and wait for every relayed pair to end (aborting
        what is left after a grace period).
        """
        if self.port is not None:
            yield self.port.stopListening()
            self.port = None
        yield self.tracker.drain()
        try:
            yield waitFor(self.reactor, lambda: not self.factory.relays, 5,
                          "relays to finish")
        except AssertionError:
            for relay in list(self.factory.relays):
                relay.abortConnection()
            yield waitFor(self.reactor, lambda: not self.factory.relays, 5,
                          "aborted relays to finish")
        # Autobahn leaves its closing handshake timer running when the TCP
        # connection is lost before the peer answered the close (a client
        # that vanished): harmless (it finds the connection closed), but
        # it would outlive the test.
        for call in self.reactor.getDelayedCalls():
            owner = getattr(call.func, "__self__", None)
            if (getattr(call.func, "__name__", None) == "onCloseHandshakeTimeout"
                    and getattr(owner, "factory", None) is self.webSocketFactory):
                call.cancel()


class SharedPeers:
    """
    Servers shared by the tests of one class: started by the first test
    that asks, stopped after the last test of the class has run (or when
    the process exits, if only some of them ran).
    """

    def __init__(self, start):
        """
        @param start: called with a directory; starts and returns the
            servers.
        """
        self._start = start
        self._value = None
        self._remaining = None

    def get(self, testCase):
        """
        The servers, for C{testCase}, whose clean-up stops them if it is
        the last test of its class.
        """
        if self._value is None:
            cls = type(testCase)
            self._remaining = {name for name in dir(cls) if name.startswith("test_")}
            directory = os.path.abspath("shared-%s-%d" % (cls.__name__, os.getpid()))
            self._value = self._start(directory)
            atexit.register(self.stop)
        self._remaining.discard(testCase._testMethodName)
        if not self._remaining:
            testCase.addCleanup(self.stop)
        return self._value

    def stop(self):
        value, self._value = self._value, None
        if value is None:
            return
        for peer in value if isinstance(value, (list, tuple)) else [value]:
            peer.stop()


class SourceBoundClient(WebSocketsClient):
    """
    A L{WebSocketsClient} whose TCP connection comes from a given local
    address (any 127/8 address works on Linux).
    """

    source = "127.0.0.2"

    def _connect(self):
        from urllib.parse import urlsplit

        from websockets.sync.client import connect

        parts = urlsplit(self.url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(TIMEOUT)
        sock.bind((self.source, 0))
        sock.connect((parts.hostname, parts.port))
        self.ws = connect(
            self.url, sock=sock, subprotocols=["xmpp"], open_timeout=TIMEOUT,
            close_timeout=2, max_size=2**20,
        )


class LegacyClient:
    """
    A client in the draft-ietf-xmpp-websocket-00 framing (the C{websockets}
    package, in a thread): an unclosed stream header as a message of its
    own, stanzas relying on its namespaces, SASL PLAIN, binding.

    @ivar inbox: what it received once bound, as elements.
    @ivar jid: the bound JID.
    """

    HEADER = (
        "<stream:stream to='localhost' xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
    )

    def __init__(self, reactor, url, username):
        self.reactor = reactor
        self.url = url
        self.username = username
        self.inbox = Inbox(reactor, "%s (draft-00)" % (username,))
        self.ws = None
        self.jid = None
        self._reader = None
        self._stop = threading.Event()

    def _recv(self):
        return self.ws.recv(timeout=TIMEOUT)

    def _login(self):
        import base64

        from websockets.sync.client import connect

        self.ws = connect(self.url, subprotocols=["xmpp"], open_timeout=TIMEOUT)
        self.ws.send(self.HEADER)
        header = self._recv()
        if not header.startswith("<stream:stream"):
            raise AssertionError("expected a stream header, got %r" % (header,))
        features = self._recv()
        if "PLAIN" not in features:
            raise AssertionError("no PLAIN: %r" % (features,))
        token = base64.b64encode(("\0%s\0%s" % (self.username, PASSWORD)).encode()).decode()
        self.ws.send(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>" % token
        )
        success = self._recv()
        if "<success" not in success:
            raise AssertionError("expected success, got %r" % (success,))
        self.ws.send(self.HEADER)
        self._recv()
        self._recv()
        self.ws.send(
            "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
            "<resource>legacy</resource></bind></iq>"
        )
        bound = self._recv()
        if "type='result'" not in bound and 'type="result"' not in bound:
            raise AssertionError("bind failed: %r" % (bound,))
        self.jid = bound.split("<jid>")[1].split("</jid>")[0]
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self.jid

    def _read(self):
        from websockets.exceptions import ConnectionClosed

        while not self._stop.is_set():
            try:
                data = self.ws.recv(timeout=0.1)
            except TimeoutError:
                continue
            except ConnectionClosed:
                return
            if data.startswith(("</stream:stream", "<stream:")):
                # Not standalone XML: kept as it came.
                self.reactor.callFromThread(self.inbox.history.append, data)
                if data.startswith("</"):
                    return
                continue
            self.reactor.callFromThread(self.inbox.deliverXML, data)

    def login(self):
        from twisted.internet import threads

        return threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), self._login)

    def send(self, text):
        from twisted.internet import threads

        return threads.deferToThreadPool(
            self.reactor, self.reactor.getThreadPool(), self.ws.send, text
        )

    def _close(self):
        self.ws.send("</stream:stream>")
        self._reader.join(TIMEOUT)
        self.ws.close()

    def close(self):
        from twisted.internet import threads

        self._stop.clear()
        return threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), self._close)

    def abort(self):
        self._stop.set()
        if self.ws is not None:
            self.ws.close()


def startProsody(directory, **kwargs):
    """
    Prosody with TLS, stream management, SCRAM-SHA-256 keys and the
    test users subscribed to each other.
    """
    kwargs.setdefault("tls", True)
    kwargs.setdefault("passwordHash", "SHA-256")
    kwargs.setdefault("modules", ["smacks"])
    prosody = peers.Prosody(directory, **kwargs)
    prosody.addUsers(USERS, PASSWORD)
    for user in USERS:
        prosody.addRoster(user, [u for u in USERS if u != user])
    return prosody.start()


def startEjabberd(directory, **kwargs):
    """
    ejabberd with TLS, stream management, SCRAM-SHA-256 keys, a second
    c2s port that requires the PROXY protocol, and the test users
    subscribed to each other.
    """
    kwargs.setdefault("tls", True)
    kwargs.setdefault("scramHash", "sha256")
    kwargs.setdefault("streamManagement", True)
    kwargs.setdefault("proxyPort", True)
    # connected_users_info, which shows each session's address.
    kwargs.setdefault("extraConfig", "  mod_admin_extra: {}")
    ejabberd = peers.Ejabberd(directory, **kwargs)
    ejabberd.addUsers(USERS, PASSWORD, contacts=True)
    return ejabberd.start(timeout=60)


class ChurnClient:
    """
    WebSocket clients of a gateway on plain blocking sockets, each cut at
    a random point of its life (before the handshake, after it, after
    <open/>, during SASL, after binding, in the middle of a frame, after
    <close/>, or never: a clean close), by a reset or an orderly close.

    @ivar outcomes: how many connections ended at each point.
    """

    STAGES = ("connected", "handshaken", "opened", "authenticated", "bound",
              "partial-frame", "close-sent", "clean")

    def __init__(self, host, port, path, users, password, seed):
        import random

        self.host = host
        self.port = port
        self.path = path
        self.users = users
        self.password = password
        self.seed = seed
        self.random = random.Random(seed)
        self.outcomes = {}

    def _read(self, sock, buffered, count):
        """
        Read C{count} text messages (skipping other frames).
        """
        from xmppws.testing import parseFrames

        messages = []
        while len(messages) < count:
            frames, buffered[0] = parseFrames(buffered[0])
            for opcode, payload in frames:
                if opcode == 1:
                    messages.append(payload)
                elif opcode == 8:
                    raise ConnectionError("closed by the gateway: %r" % (payload,))
            if len(messages) >= count:
                break
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed")
            buffered[0] += data
        return messages

    def one(self, index):
        """
        One connection, cut at a random stage.

        @return: the stage it was cut at.
        """
        import base64

        from xmppws.testing import clientFrame, upgradeRequest

        stage = self.random.choice(self.STAGES)
        reset = self.random.random() < 0.5
        user = self.random.choice(self.users)
        sock = socket.create_connection((self.host, self.port), timeout=TIMEOUT)
        buffered = [b""]
        try:
            if stage == "connected":
                return stage
            sock.sendall(upgradeRequest(path=self.path.encode()))
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("no handshake answer")
                head += chunk
            head, _, buffered[0] = head.partition(b"\r\n\r\n")
            if b" 101 " not in head.split(b"\r\n")[0]:
                raise ConnectionError("handshake refused: %r" % (head[:100],))
            if stage == "handshaken":
                return stage
            opening = (b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' "
                       b"version='1.0'/>")
            sock.sendall(clientFrame(opening))
            self._read(sock, buffered, 2)
            if stage == "opened":
                return stage
            token = base64.b64encode(("\0%s\0%s" % (user, self.password)).encode())
            sock.sendall(clientFrame(
                b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                + token + b"</auth>"))
            [success] = self._read(sock, buffered, 1)
            if b"<success" not in success:
                raise ConnectionError("authentication failed: %r" % (success,))
            if stage == "authenticated":
                return stage
            sock.sendall(clientFrame(opening))
            self._read(sock, buffered, 2)
            sock.sendall(clientFrame(
                b"<iq xmlns='jabber:client' type='set' id='b'><bind "
                b"xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>churn-%d-%d</resource>"
                b"</bind></iq>" % (self.seed, index)))
            self._read(sock, buffered, 1)
            sock.sendall(clientFrame(b"<presence xmlns='jabber:client'/>"))
            if stage == "bound":
                return stage
            if stage == "partial-frame":
                frame = clientFrame(b"<message xmlns='jabber:client' to='alice@localhost'>"
                                    b"<body>cut</body></message>")
                sock.sendall(frame[: len(frame) // 2])
                return stage
            sock.sendall(clientFrame(b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"))
            if stage == "close-sent":
                return stage
            # The gateway's <close/>, then its close frame, answered.
            from xmppws.testing import parseFrames

            closed = False
            while not closed:
                frames, buffered[0] = parseFrames(buffered[0])
                for opcode, payload in frames:
                    if opcode == 8:
                        sock.sendall(clientFrame(payload[:2], opcode=8))
                        closed = True
                        break
                if not closed:
                    data = sock.recv(65536)
                    if not data:
                        raise ConnectionError("closed without a close frame")
                    buffered[0] += data
            while sock.recv(65536):
                pass
            return stage
        finally:
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct_linger())
            sock.close()

    def run(self, count):
        """
        Run C{count} connections one after the other.
        """
        for index in range(count):
            try:
                stage = self.one(index)
            except (OSError, ConnectionError) as e:
                stage = "error: %s" % (e,)
            self.outcomes[stage] = self.outcomes.get(stage, 0) + 1
        return self.outcomes


def struct_linger():
    import struct

    return struct.pack("ii", 1, 0)


class RawClient:
    """
    A WebSocket client of a gateway on a blocking socket with a small
    receive buffer, that reads only when told to: for floods.
    """

    def __init__(self, host, port, path, receiveBuffer=4096):
        from xmppws.testing import upgradeRequest

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receiveBuffer)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect((host, port))
        self.buffered = b""
        self.sock.sendall(upgradeRequest(path=path.encode()))
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(65536)
        head, _, self.buffered = head.partition(b"\r\n\r\n")

    def send(self, data):
        from xmppws.testing import clientFrame

        self.sock.sendall(clientFrame(data))

    def read(self, count):
        """
        Read C{count} text messages.
        """
        from xmppws.testing import parseFrames

        messages = []
        while len(messages) < count:
            frames, self.buffered = parseFrames(self.buffered)
            messages += [payload for opcode, payload in frames if opcode == 1]
            if len(messages) >= count:
                break
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed after %d messages" % (len(messages),))
            self.buffered += data
        return messages

    def login(self, username, password, resource):
        """
        Open, authenticate with PLAIN, bind.

        @return: the bound JID.
        """
        import base64

        opening = (b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' "
                   b"version='1.0'/>")
        self.send(opening)
        self.read(2)
        token = base64.b64encode(("\0%s\0%s" % (username, password)).encode())
        self.send(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                  + token + b"</auth>")
        self.read(1)
        self.send(opening)
        self.read(2)
        self.send(b"<iq xmlns='jabber:client' type='set' id='b'><bind "
                  b"xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" + resource.encode()
                  + b"</resource></bind></iq>")
        [bound] = self.read(1)
        return bound.split(b"<jid>")[1].split(b"</jid>")[0].decode()

    def close(self):
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct_linger())
        self.sock.close()
