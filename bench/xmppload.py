"""
The load generator of C{xmpp_bench.py}: XMPP clients over WebSocket (RFC
7395 framing) and over BOSH (XEP-0124/0206), cheap enough that several
processes of them drive a server to its limit without being the limit
themselves, and the worker processes that run them on command.

The clients are hand-rolled on asyncio protocols (on uvloop when it is
installed): stanzas are pre-built byte strings with a slot for a
timestamp, outgoing frames are masked with the C{websockets} package's C
helper when it is there, and incoming messages are not parsed as XML:
a message's send time is read from its C{<body>} by a byte search.  Only
the steps that set a session up (SASL, bind) look at what the server
says, with regular expressions.

A worker (L{worker}) runs in a process of its own and obeys commands
from a pipe, one at a time:

    connect     log in sessions that stay up (pairs for the throughput
                workload, or idle sessions for the memory workload);
    step        send chat messages between the paired sessions at a fixed
                offered rate and time their delivery;
    churn       set sessions up and close them again, at a fixed
                concurrency, for a while;
    close       close (or abort) every session;
    quit.

Every command is bounded in time.  A worker only ever connects to the
URL it is given (the bench gives loopback URLs).
"""

import asyncio
import base64
import hashlib
import hmac
import os
import re
import time
import traceback
from array import array
from urllib.parse import urlsplit

try:
    from websockets.speedups import apply_mask as _applyMask
except ImportError:  # pragma: no cover
    _applyMask = None

__all__ = ["worker", "Unsupported", "SetupError", "TEXT"]

NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BOSH = "http://jabber.org/protocol/httpbind"

# Headers a browser sends with a WebSocket handshake or a BOSH request,
# besides the ones each needs (what Chromium sends from a page on
# https://chat.example.org, give or take a few bytes).
BROWSER_HEADERS = (
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/120.0.0.0 Safari/537.36\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Accept-Language: en-US,en;q=0.9\r\n"
    b"Origin: https://chat.example.org\r\n"
)

# The body of every chat message: a 16-digit send time in nanoseconds,
# then this text (about the size of a chat line).
TEXT = (
    b" Hi! Are we still on for the review at three? I moved the notes to the "
    b"shared folder and added the numbers from last week."
)
STAMP = 16

SETUP_TIMEOUT = 30.0
CLOSE_TIMEOUT = 5.0


class SetupError(Exception):
    """
    A session could not be set up (or closed) as expected.
    """


class Unsupported(SetupError):
    """
    The server does not offer the SASL mechanism asked for.
    """


class Counters:
    """
    Bytes on the wire (above TCP) in both directions, for every
    connection of one worker.
    """

    bytesIn = 0
    bytesOut = 0


COUNTERS = Counters()


# SCRAM (RFC 5802) with the salted password cached, as real clients
# keep it: the bench's accounts share a password and a salt, so the
# generator does not pay PBKDF2 for every login (the servers never do:
# they keep the keys).

_SALTED = {}


def _salted(hashName, password, salt, iterations):
    key = (hashName, password, salt, iterations)
    salted = _SALTED.get(key)
    if salted is None:
        salted = _SALTED[key] = hashlib.pbkdf2_hmac(hashName, password, salt, iterations)
    return salted


class ScramClient:
    """
    The client side of one SCRAM exchange, without channel binding.
    """

    def __init__(self, mechanism, username, password):
        self.hashName = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256"}[mechanism]
        self.password = password.encode("utf-8")
        nonce = base64.b64encode(os.urandom(18)).decode("ascii")
        self.bare = "n=%s,r=%s" % (username, nonce)
        self.nonce = nonce
        self.serverSignature = None

    def first(self):
        return ("n,," + self.bare).encode("ascii")

    def final(self, serverFirst):
        serverFirst = serverFirst.decode("ascii")
        attrs = dict(item.split("=", 1) for item in serverFirst.split(","))
        if not attrs["r"].startswith(self.nonce):
            raise SetupError("SCRAM: the server's nonce does not extend ours")
        salted = _salted(
            self.hashName, self.password, base64.b64decode(attrs["s"]), int(attrs["i"])
        )
        digest = self.hashName
        clientKey = hmac.new(salted, b"Client Key", digest).digest()
        storedKey = hashlib.new(digest, clientKey).digest()
        withoutProof = "c=biws,r=" + attrs["r"]
        message = ",".join((self.bare, serverFirst, withoutProof)).encode("ascii")
        signature = hmac.new(storedKey, message, digest).digest()
        proof = bytes(a ^ b for a, b in zip(clientKey, signature))
        serverKey = hmac.new(salted, b"Server Key", digest).digest()
        self.serverSignature = hmac.new(serverKey, message, digest).digest()
        return (withoutProof + ",p=" + base64.b64encode(proof).decode("ascii")).encode("ascii")

    def check(self, serverFinal):
        attrs = dict(item.split("=", 1) for item in serverFinal.decode("ascii").split(","))
        if base64.b64decode(attrs.get("v", "")) != self.serverSignature:
            raise SetupError("SCRAM: wrong server signature")


# Transports: each delivers "blobs" to its session, a blob being one
# WebSocket message (one stanza) or the content of one BOSH response
# (any number of stanzas).


def _mask(payload):
    key = os.urandom(4)
    if _applyMask is not None:
        return key, _applyMask(payload, key)
    n = len(payload)
    repeated = (key * (n // 4 + 1))[:n]
    return key, (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        n, "big"
    )


def wsFrame(payload, opcode=0x1):
    """
    One masked client frame.
    """
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    key, masked = _mask(payload)
    return header + key + masked


class WebSocketConnection(asyncio.Protocol):
    """
    A WebSocket client connection offering the C{xmpp} subprotocol.

    @ivar sink: called with every complete text message (L{bytes}).
    """

    transport = None

    def __init__(self, host, port, path, sink):
        self.host, self.port, self.path = host, port, path
        self.sink = sink
        self.key = base64.b64encode(os.urandom(16))
        self.opened = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.buffer = bytearray()
        self.handshaking = True
        self.fragments = None

    def connection_made(self, transport):
        self.transport = transport
        request = (
            b"GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Protocol: xmpp\r\n%s\r\n"
            % (self.path.encode(), self.host.encode(), self.port, self.key, BROWSER_HEADERS)
        )
        COUNTERS.bytesOut += len(request)
        transport.write(request)

    def connection_lost(self, exc):
        if not self.opened.done():
            self.opened.set_exception(SetupError("connection lost during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)
        self.sink(None)

    def write(self, data):
        COUNTERS.bytesOut += len(data)
        self.transport.write(data)

    def send(self, payload):
        self.write(wsFrame(payload))

    def data_received(self, data):
        COUNTERS.bytesIn += len(data)
        buf = self.buffer
        buf += data
        if self.handshaking:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            del buf[: end + 4]
            self.handshaking = False
            accept = base64.b64encode(
                hashlib.sha1(self.key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
            ).lower()
            if not head.startswith(b"http/1.1 101") or accept not in head:
                self.opened.set_exception(SetupError("handshake refused: %r" % (head[:200],)))
                self.transport.abort()
                return
            if re.search(rb"(?m)^sec-websocket-protocol:[ \t]*xmpp[ \t]*$", head.replace(b"\r", b"")) is None:
                self.opened.set_exception(SetupError("no xmpp subprotocol"))
                self.transport.abort()
                return
            self.opened.set_result(None)
        sink = self.sink
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            b0 = buf[pos]
            n = buf[pos + 1] & 0x7F
            start = pos + 2
            if n == 126:
                if size - pos < 4:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                start = pos + 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + n
            if end > size:
                break
            payload = bytes(buf[start:end])
            pos = end
            opcode = b0 & 0x0F
            if opcode == 0x1 or opcode == 0x0:
                if not b0 & 0x80:
                    self.fragments = (self.fragments or []) + [payload]
                    continue
                if self.fragments is not None:
                    payload = b"".join(self.fragments + [payload])
                    self.fragments = None
                sink(payload)
            elif opcode == 0x9:
                self.write(wsFrame(payload, 0xA))
            elif opcode == 0x8:
                self.write(wsFrame(payload[:2], 0x8))
                self.transport.close()
        del buf[:pos]


class HTTPConnection(asyncio.Protocol):
    """
    One keep-alive HTTP/1.1 connection for BOSH: one request at a time,
    responses with a C{Content-Length}.
    """

    transport = None

    def __init__(self, session):
        self.session = session
        self.buffer = bytearray()
        self.busy = False
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(None)
        self.session.connectionLost(self)

    def request(self, data):
        self.busy = True
        COUNTERS.bytesOut += len(data)
        self.transport.write(data)

    def data_received(self, data):
        COUNTERS.bytesIn += len(data)
        buf = self.buffer
        buf += data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end])
            match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            if match is None:
                self.session.fail(SetupError("BOSH response without Content-Length: %r" % head))
                self.transport.abort()
                return
            length = int(match.group(1))
            if len(buf) < end + 4 + length:
                return
            body = bytes(buf[end + 4 : end + 4 + length])
            del buf[: end + 4 + length]
            self.busy = False
            status = head[9:12]
            self.session.response(self, status, body)


# Sessions: XMPP on one transport.


_MECHANISM = re.compile(rb"<mechanism>([^<]+)</mechanism>")
_CHALLENGE = re.compile(rb"<challenge[^>]*>([^<]*)</challenge>")
_SUCCESS = re.compile(rb"<success[^>]*?(?:/>|>([^<]*)</success>)")


class Session:
    """
    One XMPP client session; subclasses carry it over WebSocket or BOSH.

    Before L{Session.stream} it queues what the server sends for the
    set-up steps to wait on; after, every blob goes to C{onBlob}.
    """

    def __init__(self, url, domain):
        parts = urlsplit(url)
        self.host = parts.hostname
        self.port = parts.port or 80
        self.path = parts.path or "/"
        self.domain = domain
        self.queue = []
        self.waiter = None
        self.error = None
        self.onBlob = None
        self.jid = None

    def receive(self, blob):
        if blob is None:
            self.fail(SetupError("connection lost"))
            return
        if self.onBlob is not None:
            self.onBlob(blob)
            return
        self.queue.append(blob)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def fail(self, error):
        if self.error is None:
            self.error = error
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def until(self, *needles, timeout=SETUP_TIMEOUT):
        """
        Wait for a blob holding one of C{needles}; skip the others.

        @return: the blob.
        """
        deadline = time.monotonic() + timeout
        while True:
            while self.queue:
                blob = self.queue.pop(0)
                for needle in needles:
                    if needle in blob:
                        return blob
                if b"<failure" in blob or b"stream:error" in blob or b"<stream-error" in blob:
                    raise SetupError("server said: %r" % (blob[:300],))
            if self.error is not None:
                raise self.error
            left = deadline - time.monotonic()
            if left <= 0:
                raise SetupError("timed out waiting for %r" % (needles,))
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self.waiter, left)
            except asyncio.TimeoutError:
                pass
            self.waiter = None

    def stanza(self, data):
        raise NotImplementedError()

    async def login(self, username, password, mechanism, resource):
        """
        Authenticate, bind C{resource}, send initial presence, and wait
        until the server has answered a ping sent after it (so that it
        has handled the presence too).

        @raise Unsupported: if C{mechanism} is not offered.
        """
        features = await self.start()
        offered = _MECHANISM.findall(features)
        if mechanism.encode("ascii") not in offered:
            raise Unsupported("%s not offered (%s)" % (
                mechanism, b" ".join(offered).decode("ascii", "replace")))
        auth = b"<auth xmlns='%s' mechanism='%s'>%%s</auth>" % (
            NS_SASL.encode(), mechanism.encode())
        if mechanism == "PLAIN":
            token = b"\0" + username.encode() + b"\0" + password.encode()
            self.stanza(auth % base64.b64encode(token))
            await self.until(b"<success")
        else:
            scram = ScramClient(mechanism, username, password)
            self.stanza(auth % base64.b64encode(scram.first()))
            challenge = await self.until(b"<challenge")
            serverFirst = base64.b64decode(_CHALLENGE.search(challenge).group(1))
            self.stanza(b"<response xmlns='%s'>%s</response>" % (
                NS_SASL.encode(), base64.b64encode(scram.final(serverFirst))))
            success = await self.until(b"<success", b"<challenge")
            match = _SUCCESS.search(success)
            if match is not None and match.group(1):
                scram.check(base64.b64decode(match.group(1)))
            elif b"<challenge" in success:
                scram.check(base64.b64decode(_CHALLENGE.search(success).group(1)))
                self.stanza(b"<response xmlns='%s'/>" % (NS_SASL.encode(),))
                await self.until(b"<success")
        await self.restart()
        await self.until(b"urn:ietf:params:xml:ns:xmpp-bind")
        self.stanza(
            b"<iq xmlns='jabber:client' type='set' id='bind1'><bind xmlns='urn:ietf:params:"
            b"xml:ns:xmpp-bind'><resource>%s</resource></bind></iq>" % (resource.encode(),))
        await self.until(b"'bind1'", b'"bind1"')
        self.jid = "%s@%s/%s" % (username, self.domain, resource)
        self.stanza(b"<presence xmlns='jabber:client'/>")
        self.stanza(
            b"<iq xmlns='jabber:client' type='get' id='ready1'>"
            b"<ping xmlns='urn:xmpp:ping'/></iq>")
        await self.until(b"'ready1'", b'"ready1"')
        self.queue.clear()


class WebSocketSession(Session):
    """
    An RFC 7395 session.
    """

    connection = None

    async def connect(self):
        loop = asyncio.get_running_loop()
        _, self.connection = await asyncio.wait_for(
            loop.create_connection(
                lambda: WebSocketConnection(self.host, self.port, self.path, self.receive),
                self.host, self.port),
            SETUP_TIMEOUT)
        await asyncio.wait_for(self.connection.opened, SETUP_TIMEOUT)

    def _open(self):
        self.connection.send(
            b"<open xmlns='%s' to='%s' version='1.0'/>" % (NS_FRAMING.encode(), self.domain.encode()))

    async def start(self):
        await self.connect()
        self._open()
        return await self.until(b"<mechanism")

    async def restart(self):
        self._open()

    def stanza(self, data):
        self.connection.send(data)

    def sendFrames(self, data):
        """
        Write frames built by the caller (the fast path).
        """
        self.connection.write(data)

    async def close(self):
        """
        Close the stream and the connection as RFC 7395 says, bounded.
        """
        if self.connection is None or self.connection.transport is None:
            return
        self.onBlob = lambda blob: None
        try:
            if not self.connection.transport.is_closing():
                self.connection.send(b"<close xmlns='%s'/>" % (NS_FRAMING.encode(),))
            await asyncio.wait_for(asyncio.shield(self.connection.closed), CLOSE_TIMEOUT)
        except asyncio.TimeoutError:
            self.connection.transport.abort()
            raise SetupError("the server did not close the connection")

    def abort(self):
        if self.connection is not None and self.connection.transport is not None:
            self.connection.transport.abort()


class BoshSession(Session):
    """
    A XEP-0124/0206 session that behaves as a browser client does: it
    keeps one request waiting at the server (hold=1) and sends what it
    has at once on a second connection (requests=2), which makes the
    server answer the waiting one.
    """

    WAIT = 60

    def __init__(self, url, domain):
        super().__init__(url, domain)
        self.rid = int.from_bytes(os.urandom(4), "big")
        self.sid = None
        self.connections = []
        self.outstanding = 0
        self.pending = []
        self.polling = False
        self.terminated = False
        self.header = (
            b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: */*\r\n"
            b"Content-Type: text/xml; charset=utf-8\r\n%s"
            % (self.path.encode(), self.host.encode(), self.port, BROWSER_HEADERS)
        )

    async def _connection(self):
        loop = asyncio.get_running_loop()
        _, connection = await asyncio.wait_for(
            loop.create_connection(lambda: HTTPConnection(self), self.host, self.port),
            SETUP_TIMEOUT)
        self.connections.append(connection)
        return connection

    def _post(self, attributes, content=b""):
        connection = None
        for c in self.connections:
            if not c.busy and c.transport is not None and not c.transport.is_closing():
                connection = c
                break
        if connection is None:
            raise SetupError("no free BOSH connection")
        self.rid += 1
        body = b"<body rid='%d'%s xmlns='%s'%s>%s</body>" % (
            self.rid,
            b" sid='%s'" % self.sid if self.sid else b"",
            NS_BOSH.encode(),
            attributes,
            content,
        ) if content else b"<body rid='%d'%s xmlns='%s'%s/>" % (
            self.rid,
            b" sid='%s'" % self.sid if self.sid else b"",
            NS_BOSH.encode(),
            attributes,
        )
        self.outstanding += 1
        connection.request(self.header + b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def response(self, connection, status, body):
        self.outstanding -= 1
        if status != b"200":
            self.fail(SetupError("BOSH: HTTP %r: %r" % (status, body[:200])))
            return
        if b"type='terminate'" in body[:400] or b'type="terminate"' in body[:400]:
            self.terminated = True
            if not self.polling:
                self.receive(body)
            self.fail(SetupError("BOSH session terminated: %r" % (body[:300],)))
            return
        if self.sid is None:
            match = re.search(rb"sid=['\"]([^'\"]+)['\"]", body)
            if match:
                self.sid = match.group(1)
        start = body.find(b">")
        inner = body[start + 1 : body.rfind(b"</body>")] if body[start - 1 : start] != b"/" else b""
        if inner:
            self.receive(inner)
        elif not self.polling and self.onBlob is None:
            self.receive(b"")
        if self.polling:
            self.pump()

    def connectionLost(self, connection):
        if connection in self.connections:
            self.connections.remove(connection)
        if not self.terminated and self.polling:
            self.fail(SetupError("BOSH connection lost"))

    async def start(self):
        await self._connection()
        await self._connection()
        self._post(
            b" content='text/xml; charset=utf-8' hold='1' to='%s' ver='1.6' wait='%d'"
            b" xml:lang='en' xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh'"
            % (self.domain.encode(), self.WAIT))
        return await self.until(b"<mechanism")

    async def until(self, *needles, timeout=SETUP_TIMEOUT):
        """
        In set-up mode an empty response means the server has nothing
        yet: ask again.
        """
        deadline = time.monotonic() + timeout
        while True:
            blob = await self._untilOrEmpty(needles, deadline - time.monotonic())
            if blob is not None:
                return blob
            if self.outstanding == 0:
                self._post(b"")

    async def _untilOrEmpty(self, needles, timeout):
        deadline = time.monotonic() + timeout
        while True:
            while self.queue:
                blob = self.queue.pop(0)
                if not blob:
                    return None
                for needle in needles:
                    if needle in blob:
                        return blob
                if b"<failure" in blob or b"stream:error" in blob:
                    raise SetupError("server said: %r" % (blob[:300],))
                if self.outstanding == 0:
                    self._post(b"")
            if self.error is not None:
                raise self.error
            left = deadline - time.monotonic()
            if left <= 0:
                raise SetupError("timed out waiting for %r" % (needles,))
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self.waiter, left)
            except asyncio.TimeoutError:
                pass
            self.waiter = None

    def stanza(self, data):
        if self.polling:
            self.pending.append(data)
            self.pump()
        else:
            self._post(b"", data)

    async def restart(self):
        self._post(
            b" to='%s' xml:lang='en' xmpp:restart='true' xmlns:xmpp='urn:xmpp:xbosh'"
            % (self.domain.encode(),))

    def stream(self):
        """
        Switch to streaming: from now on keep a request waiting at the
        server, and send queued stanzas as soon as a connection is free.
        """
        self.polling = True
        self.pump()

    def pump(self):
        """
        Send what is queued if fewer than two requests are out, or an
        empty request if none is: the server must always hold one.
        """
        if self.terminated or self.error is not None:
            return
        while self.outstanding < 2 and (self.pending or self.outstanding == 0):
            content, self.pending = b"".join(self.pending), []
            self._post(b"", content)

    def sendStanzas(self, data):
        self.pending.append(data)
        self.pump()

    async def close(self):
        self.onBlob = lambda blob: None
        self.polling = False
        try:
            if not self.terminated and self.sid is not None:
                for c in self.connections:
                    if not c.busy:
                        break
                else:
                    # Both busy: a held poll and one more; wait for one.
                    deadline = time.monotonic() + CLOSE_TIMEOUT
                    while all(c.busy for c in self.connections) and time.monotonic() < deadline:
                        await asyncio.sleep(0.01)
                self.terminated = True
                self._post(b" type='terminate'",
                           b"<presence xmlns='jabber:client' type='unavailable'/>")
                deadline = time.monotonic() + CLOSE_TIMEOUT
                while self.outstanding > 0 and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
        except SetupError:
            pass
        finally:
            self.abort()

    def abort(self):
        for c in list(self.connections):
            if c.transport is not None:
                c.transport.abort()


def newSession(kind, url, domain):
    return (WebSocketSession if kind == "ws" else BoshSession)(url, domain)


# The workloads of one worker.


class Recorder:
    """
    Counts and times the chat messages one worker receives.

    A message's latency is taken when it was sent inside the measured
    window; messages received inside the window count towards goodput,
    whenever they were sent.
    """

    def __init__(self):
        self.reset(0, 0)

    def reset(self, start, end):
        self.start = start
        self.end = end
        self.latencies = array("q")
        self.inWindow = 0
        self.total = 0

    def onBlob(self, blob):
        i = blob.find(b"<body>")
        if i < 0:
            return
        now = time.monotonic_ns()
        while i >= 0:
            stamp = int(blob[i + 6 : i + 6 + STAMP])
            self.total += 1
            if self.start <= now < self.end:
                self.inWindow += 1
            if self.start <= stamp < self.end:
                self.latencies.append(now - stamp)
            i = blob.find(b"<body>", i + 6 + STAMP)


class Worker:
    """
    The state of one worker process between commands.
    """

    def __init__(self, kind, url, domain, password):
        self.kind = kind
        self.url = url
        self.domain = domain
        self.password = password
        self.sessions = []
        self.senders = []
        self.recorder = Recorder()

    async def connect(self, users, mechanism, concurrency, paired):
        """
        Log in one session per user, at most C{concurrency} at a time.
        With C{paired}, users go in pairs (0 with 1, 2 with 3, ...) that
        will message each other.

        @return: C{{"ok": n, "failed": n, "errors": [...], "seconds": s}}
        """
        started = time.monotonic()
        slots = asyncio.Semaphore(concurrency)
        errors = []
        sessions = [None] * len(users)

        async def one(i, user):
            async with slots:
                session = newSession(self.kind, self.url, self.domain)
                try:
                    await session.login(user, self.password, mechanism, "r")
                except Exception as e:  # noqa: BLE001 - reported, not raised
                    errors.append("%s: %s: %s" % (user, type(e).__name__, e))
                    session.abort()
                    return
                session.onBlob = self.recorder.onBlob
                if self.kind == "bosh":
                    session.stream()
                sessions[i] = session

        await asyncio.gather(*(one(i, u) for i, u in enumerate(users)))
        ok = [s for s in sessions if s is not None]
        self.sessions.extend(ok)
        if paired:
            for a, b in zip(sessions[0::2], sessions[1::2]):
                if a is None or b is None:
                    continue
                self.senders.append(self._sender(a, b))
                self.senders.append(self._sender(b, a))
        return {
            "ok": len(ok),
            "failed": len(errors),
            "errors": errors[:5],
            "seconds": time.monotonic() - started,
        }

    def _sender(self, session, to):
        prefix = (
            b"<message xmlns='jabber:client' to='%s' type='chat' id='m'><body>"
            % (to.jid.encode(),)
        )
        suffix = TEXT + b"</body></message>"
        return session, prefix, suffix

    async def step(self, rate, t0, warmup, duration, drain, tick):
        """
        Send chat messages at C{rate} per second from the paired sessions
        (round robin) from C{t0} for C{warmup + duration} seconds; measure
        the last C{duration}, then wait up to C{drain} seconds for the
        stragglers.
        """
        senders = self.senders
        if not senders or rate <= 0:
            return {"sent": 0, "sentWindow": 0, "latencies": b"", "received": 0,
                    "receivedWindow": 0, "cpu": 0.0, "bytesIn": 0, "bytesOut": 0,
                    "lagMax": 0.0, "lagP99": 0.0}
        ns = 1_000_000_000
        start = t0 + warmup
        end = start + duration
        self.recorder.reset(int(start * ns), int(end * ns))
        ws = self.kind == "ws"
        await asyncio.sleep(max(0.0, t0 - time.monotonic()))
        sent = sentWindow = 0
        index = 0
        count = len(senders)
        lags = array("d")
        marks = {}
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if "start" not in marks and now >= start:
                marks["start"] = (time.process_time(), COUNTERS.bytesIn, COUNTERS.bytesOut)
            due = int((now - t0) * rate) - sent
            if due > 0:
                lags.append(now - (t0 + (sent + 1) / rate))
                stamp = b"%016d" % time.monotonic_ns()
                batches = {}
                for _ in range(due):
                    session, prefix, suffix = senders[index]
                    index += 1
                    if index == count:
                        index = 0
                    payload = prefix + stamp + suffix
                    batch = batches.get(session)
                    if batch is None:
                        batch = batches[session] = []
                    batch.append(wsFrame(payload) if ws else payload)
                for session, batch in batches.items():
                    if ws:
                        session.sendFrames(b"".join(batch))
                    else:
                        session.sendStanzas(b"".join(batch))
                sent += due
                if now >= start:
                    sentWindow += due
            await asyncio.sleep(tick)
        cpuEnd, bytesIn, bytesOut = time.process_time(), COUNTERS.bytesIn, COUNTERS.bytesOut
        cpuStart, inStart, outStart = marks.get("start", (cpuEnd, bytesIn, bytesOut))
        deadline = time.monotonic() + drain
        while len(self.recorder.latencies) < sentWindow and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        ordered = sorted(lags)
        return {
            "sent": sent,
            "sentWindow": sentWindow,
            "latencies": self.recorder.latencies.tobytes(),
            "received": self.recorder.total,
            "receivedWindow": self.recorder.inWindow,
            "cpu": cpuEnd - cpuStart,
            "bytesIn": bytesIn - inStart,
            "bytesOut": bytesOut - outStart,
            "lagMax": ordered[-1] if ordered else 0.0,
            "lagP99": ordered[int(0.99 * (len(ordered) - 1))] if ordered else 0.0,
            "errors": [str(s.error) for s, _, _ in senders if s.error is not None][:5],
        }

    async def churn(self, users, mechanism, concurrency, duration):
        """
        Set sessions up and close them again, C{concurrency} at a time,
        for C{duration} seconds; users are taken in turn from C{users}.

        @return: the set-up times (connect to ready) and close times of
            the sessions that succeeded, counts and errors.
        """
        setup = array("d")
        closing = array("d")
        errors = []
        unsupported = []
        counter = [0]
        end = time.monotonic() + duration
        cpu0 = time.process_time()
        in0, out0 = COUNTERS.bytesIn, COUNTERS.bytesOut

        async def loop(slot):
            while time.monotonic() < end and not unsupported:
                user = users[counter[0] % len(users)]
                counter[0] += 1
                session = newSession(self.kind, self.url, self.domain)
                t = time.monotonic()
                try:
                    await session.login(user, self.password, mechanism, "s%d" % slot)
                    ready = time.monotonic()
                    await session.close()
                except Unsupported as e:
                    unsupported.append(str(e))
                    session.abort()
                    return
                except Exception as e:  # noqa: BLE001 - reported, not raised
                    errors.append("%s: %s: %s" % (user, type(e).__name__, e))
                    session.abort()
                    await asyncio.sleep(0.05)
                    continue
                setup.append(ready - t)
                closing.append(time.monotonic() - ready)

        await asyncio.gather(*(loop(i) for i in range(concurrency)))
        return {
            "setup": setup.tobytes(),
            "close": closing.tobytes(),
            "failed": len(errors),
            "errors": errors[:5],
            "unsupported": unsupported[0] if unsupported else None,
            "cpu": time.process_time() - cpu0,
            "bytesIn": COUNTERS.bytesIn - in0,
            "bytesOut": COUNTERS.bytesOut - out0,
        }

    async def close(self, gently):
        sessions, self.sessions, self.senders = self.sessions, [], []
        if gently:
            slots = asyncio.Semaphore(100)

            async def one(session):
                async with slots:
                    try:
                        await session.close()
                    except Exception:  # noqa: BLE001
                        session.abort()

            await asyncio.gather(*(one(s) for s in sessions))
        else:
            for session in sessions:
                session.abort()
        await asyncio.sleep(0.1)
        return {"closed": len(sessions)}


def worker(connection, kind, url, domain, password, cpus=None):
    """
    A worker process's main function: obey commands from C{connection}
    (a L{multiprocessing.connection.Connection}) until C{quit} or until
    the pipe closes.  Each command is C{(name, keyword arguments)}; each
    answer is C{("ok", result)} or C{("error", traceback)}.
    """
    if cpus:
        os.sched_setaffinity(0, cpus)
    try:
        import uvloop
    except ImportError:
        loop = asyncio.new_event_loop()
    else:
        loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    state = Worker(kind, url, domain, password)
    try:
        while True:
            try:
                name, arguments = connection.recv()
            except EOFError:
                break
            if name == "quit":
                break
            try:
                result = loop.run_until_complete(getattr(state, name)(**arguments))
            except Exception:  # noqa: BLE001 - sent to the parent
                connection.send(("error", traceback.format_exc()))
            else:
                connection.send(("ok", result))
    finally:
        for session in state.sessions:
            session.abort()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
