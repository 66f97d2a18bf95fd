# -*- test-case-name: tests.test_e2e_hardening -*-
"""
End-to-end tests of the server's defences: real loopback sockets on the
real reactor, clients from the C{websockets} package and raw TCP.

  - bounded JIDs: malformed addresses get C{jid-malformed} (or
    C{bad-request} for bind), and distinct addresses in headers and
    stanzas leave Twisted's intern cache as it was;
  - login throttling: once an account is throttled, the right password
    waits as long as a wrong one, before it is checked; parallel
    attempts and addresses over the limit are refused unchecked;
  - budgets: a resource too many, a full roster and a full block list.

The login throttle runs on a L{Clock} the test advances, so that nothing
here depends on how long anything takes; "nothing was answered yet" is
shown with a WebSocket ping, whose pong comes after anything the server
sent before it.
"""

import base64
import socket

from scramp import ScramClient
from twisted.internet import reactor, threads
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import Clock
from twisted.python.filepath import FilePath
from twisted.trial import unittest
from twisted.words.protocols.jabber import jid as twistedjid

from tests.c2shelpers import parseElement
from tests.e2ehelpers import (
    DOMAIN,
    PASSWORD,
    TIMEOUT,
    ConnectionTracker,
    E2EServer,
    WebSocketsClient,
    waitFor,
)
from xmppws.c2s.quotas import Quotas
from xmppws.c2s.throttle import LoginThrottle, ThrottlePolicy

INTERNED = vars(twistedjid)["__internJIDs"]

NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
LONG = "r" * 2000


def inThread(function, *args):
    return threads.deferToThreadPool(reactor, reactor.getThreadPool(), function, *args)


def errorOf(element):
    """
    C{(type, condition)} of an error stanza.
    """
    for child in element.elements():
        if child.name == "error":
            conditions = [c.name for c in child.elements(NS_STANZAS) if c.name != "text"]
            return child.getAttribute("type"), conditions[0]
    return None


class RawStream:
    """
    One RFC 7395 stream on the C{websockets} package's synchronous
    client, driven step by step from pool threads.
    """

    def __init__(self, url, headers=None):
        self.url = url
        self.headers = headers or {}
        self.ws = None

    def open(self):
        """
        Connect and open the stream.

        @return: the stream features.
        """
        from websockets.sync.client import connect

        self.ws = connect(
            self.url,
            subprotocols=["xmpp"],
            open_timeout=TIMEOUT,
            close_timeout=2,
            additional_headers=self.headers,
        )
        return self.restart()

    def restart(self):
        """
        Open the stream (again, after SASL).

        @return: the stream features.
        """
        self.send("<open xmlns='%s' to='%s' version='1.0'/>" % (NS_FRAMING, DOMAIN))
        self.recv()
        return self.recv()

    def send(self, text):
        self.ws.send(text)

    def recv(self, timeout=TIMEOUT):
        return parseElement(self.ws.recv(timeout=timeout).encode("utf-8"))

    def plain(self, user, password):
        payload = base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()
        self.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, payload))

    def nothingYet(self):
        """
        Whether the server has sent nothing: a ping's pong arrives after
        whatever the server sent before it.
        """
        if not self.ws.ping().wait(TIMEOUT):
            raise AssertionError("no pong")
        try:
            self.ws.recv(timeout=0)
        except TimeoutError:
            return True
        return False

    def close(self):
        if self.ws is not None:
            self.ws.close()
            self.ws = None


class HardeningTestCase(unittest.TestCase):
    """
    A server on loopback for each test.
    """

    timeout = 60

    def setUp(self):
        self.tracker = ConnectionTracker(reactor)

    @inlineCallbacks
    def startServer(self, **options):
        server = E2EServer(reactor, FilePath(self.mktemp()), self.tracker, **options)
        yield server.start()

        @inlineCallbacks
        def stop():
            yield server.stop()
            self.assertEqual(server.aborted, 0, "connections were left open")

        self.addCleanup(stop)
        return server

    def stream(self, server, headers=None):
        stream = RawStream(server.wsURL, headers)
        self.addCleanup(inThread, stream.close)
        return stream


class BoundedJIDTests(HardeningTestCase):
    """
    Addresses over real sockets.
    """

    @inlineCallbacks
    def test_malformedAddresses(self):
        """
        A message to a 2,000-character resource and an iq to a
        2,000-character localpart get C{jid-malformed}; neither is
        delivered.
        """
        server = yield self.startServer()
        alice = WebSocketsClient(reactor, server.wsURL, "alice", "web")
        bob = WebSocketsClient(reactor, server.wsURL, "bob", "web")
        self.addCleanup(alice.close)
        self.addCleanup(bob.close)
        yield alice.login()
        yield bob.login()
        yield alice.send(
            "<message xmlns='jabber:client' id='m1' to='bob@%s/%s' type='chat'>"
            "<body>x</body></message>" % (DOMAIN, LONG)
        )
        yield alice.send(
            "<iq xmlns='jabber:client' id='q1' type='get' to='%s@%s'>"
            "<ping xmlns='urn:xmpp:ping'/></iq>" % ("u" * 2000, DOMAIN)
        )
        message = yield alice.inbox.expect(lambda e: e.getAttribute("id") == "m1")
        iq = yield alice.inbox.expect(lambda e: e.getAttribute("id") == "q1")
        self.assertEqual(errorOf(message), ("modify", "jid-malformed"))
        self.assertEqual(errorOf(iq), ("modify", "jid-malformed"))
        self.assertEqual(bob.inbox.taken(lambda e: e.name == "message"), [])

    @inlineCallbacks
    def test_bindLongResource(self):
        """
        Binding a 2,000-character resource gets C{bad-request}, and a
        valid one still binds afterwards.
        """
        server = yield self.startServer()
        stream = self.stream(server)

        def bind():
            stream.open()
            client = ScramClient(["SCRAM-SHA-256"], "alice", PASSWORD)
            stream.send(
                "<auth xmlns='%s' mechanism='SCRAM-SHA-256'>%s</auth>"
                % (NS_SASL, base64.b64encode(client.get_client_first().encode()).decode())
            )
            client.set_server_first(base64.b64decode(str(stream.recv())).decode())
            stream.send(
                "<response xmlns='%s'>%s</response>"
                % (NS_SASL, base64.b64encode(client.get_client_final().encode()).decode())
            )
            stream.recv()
            stream.restart()
            replies = []
            for resource in (LONG, "fine"):
                stream.send(
                    "<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='%s'>"
                    "<resource>%s</resource></bind></iq>" % (NS_BIND, resource)
                )
                replies.append(stream.recv())
            return replies

        bad, good = yield inThread(bind)
        self.assertEqual(errorOf(bad), ("modify", "bad-request"))
        self.assertEqual(good["type"], "result")
        self.assertIsNotNone(server.session("alice@%s/fine" % (DOMAIN,)))

    @inlineCallbacks
    def test_distinctAddressesNotInterned(self):
        """
        Stream headers with distinct C{to}s over TCP, and stanzas to
        distinct addresses over WebSocket, leave Twisted's intern cache as
        it was.
        """
        server = yield self.startServer()
        alice = WebSocketsClient(reactor, server.wsURL, "alice", "web")
        self.addCleanup(alice.close)
        yield alice.login()
        before = len(INTERNED)

        def headers():
            answers = []
            for n in range(100):
                with socket.create_connection(("127.0.0.1", server.c2sPort), TIMEOUT) as s:
                    s.sendall(
                        b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                        b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0' "
                        b"to='u%d@h%d.example/r%d'>" % (n, n, n)
                    )
                    data = b""
                    while b"</stream:stream>" not in data:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    answers.append(b"host-unknown" in data)
            return answers

        self.assertEqual((yield inThread(headers)), [True] * 100)
        for n in range(300):
            yield alice.send(
                "<iq xmlns='jabber:client' type='get' id='d%d' to='u%d@%s/r%d'>"
                "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>" % (n, n, DOMAIN, n)
            )
        yield alice.inbox.expect(lambda e: e.getAttribute("id") == "d299")
        self.assertEqual(len(INTERNED), before)


class ThrottleTests(HardeningTestCase):
    """
    Login throttling over real sockets, on a clock the test advances.
    """

    @inlineCallbacks
    def startThrottled(self, **policy):
        server = yield self.startServer(
            plain="always", wsOptions={"trustedProxies": ["127.0.0.1"]}
        )
        self.clock = Clock()
        server.server.throttle = LoginThrottle(self.clock, ThrottlePolicy(**policy))
        self.checks = []
        storage = server.server.storage
        check = storage.checkPassword

        def counting(username, domain, password):
            self.checks.append(username)
            return check(username, domain, password)

        storage.checkPassword = counting
        return server

    def attempt(self, server, password, address, user="alice"):
        """
        Open a stream from C{address} (through the trusted proxy header)
        and send a PLAIN attempt.

        @return: a L{Deferred} firing with the stream.
        """
        stream = self.stream(server, {"X-Forwarded-For": address})

        def go():
            stream.open()
            stream.plain(user, password)
            return stream

        return inThread(go)

    @inlineCallbacks
    def failFromAddresses(self, server, count):
        for n in range(count):
            stream = yield self.attempt(server, "wrong", "198.51.100.%d" % (n,))
            failure = yield inThread(stream.recv)
            self.assertEqual(failure.firstChildElement().name, "not-authorized")

    @inlineCallbacks
    def test_rightPasswordWaitsBeforeCheck(self):
        """
        Once an account is throttled, the right password gets no answer
        and is not even checked until the delay is over; then it succeeds.
        """
        server = yield self.startThrottled()
        yield self.failFromAddresses(server, 5)
        checks = len(self.checks)
        stream = yield self.attempt(server, PASSWORD, "203.0.113.1")
        yield waitFor(reactor, lambda: self.clock.getDelayedCalls(), what="the throttle's wait")
        self.assertTrue((yield inThread(stream.nothingYet)))
        self.assertEqual(len(self.checks), checks)
        self.clock.advance(1)
        success = yield inThread(stream.recv)
        self.assertEqual(success.name, "success")
        self.assertEqual(len(self.checks), checks + 1)

    @inlineCallbacks
    def test_wrongPasswordWaitsAlike(self):
        """
        A wrong password on the throttled account waits the same way
        before its failure.
        """
        server = yield self.startThrottled()
        yield self.failFromAddresses(server, 5)
        stream = yield self.attempt(server, "wrong", "203.0.113.2")
        yield waitFor(reactor, lambda: self.clock.getDelayedCalls(), what="the throttle's wait")
        self.assertTrue((yield inThread(stream.nothingYet)))
        self.clock.advance(1)
        failure = yield inThread(stream.recv)
        self.assertEqual(failure.firstChildElement().name, "not-authorized")

    @inlineCallbacks
    def test_parallelRefused(self):
        """
        While one attempt waits, a second for the same account is refused
        at once with C{temporary-auth-failure}, unchecked.
        """
        server = yield self.startThrottled()
        yield self.failFromAddresses(server, 5)
        first = yield self.attempt(server, "guess", "203.0.113.3")
        yield waitFor(reactor, lambda: self.clock.getDelayedCalls(), what="the throttle's wait")
        checks = len(self.checks)
        second = yield self.attempt(server, PASSWORD, "203.0.113.4")
        refused = yield inThread(second.recv)
        self.assertEqual(refused.firstChildElement().name, "temporary-auth-failure")
        self.assertEqual(len(self.checks), checks)
        self.clock.advance(1)
        failure = yield inThread(first.recv)
        self.assertEqual(failure.firstChildElement().name, "not-authorized")

    @inlineCallbacks
    def test_addressPer64Refused(self):
        """
        Failures from addresses in one IPv6 /64 add up; past the refusal
        limit, the right password from that /64 is refused unchecked,
        while another /64 logs in.
        """
        server = yield self.startThrottled(addressFailures=50, addressRefuse=3)
        for n in range(3):
            stream = yield self.attempt(server, "wrong", "2001:db8::%x" % (n + 1,), "user%d" % (n,))
            failure = yield inThread(stream.recv)
            self.assertEqual(failure.firstChildElement().name, "not-authorized")
        checks = len(self.checks)
        stream = yield self.attempt(server, PASSWORD, "2001:db8::ffff")
        refused = yield inThread(stream.recv)
        self.assertEqual(refused.firstChildElement().name, "temporary-auth-failure")
        self.assertEqual(len(self.checks), checks)
        stream = yield self.attempt(server, PASSWORD, "2001:db8:0:1::1")
        success = yield inThread(stream.recv)
        self.assertEqual(success.name, "success")


class QuotaTests(HardeningTestCase):
    """
    Budgets over real sockets.
    """

    @inlineCallbacks
    def test_budgets(self):
        """
        A third resource gets C{resource-constraint}; a second roster item
        and a second block list entry get C{policy-violation}.
        """
        server = yield self.startServer(
            quotas=Quotas(maxResources=2, maxRosterItems=1, maxBlocked=1)
        )
        clients = []
        for resource in ("one", "two", "three"):
            client = WebSocketsClient(reactor, server.wsURL, "alice", resource)
            self.addCleanup(client.close)
            clients.append(client)
        yield clients[0].login()
        yield clients[1].login()
        error = yield self.assertFailure(clients[2].login(), AssertionError)
        self.assertIn("resource-constraint", str(error))
        self.assertIn("resource-limit-exceeded", str(error))
        alice = clients[0]
        for n, contact in enumerate(("bob", "carol")):
            yield alice.send(
                "<iq xmlns='jabber:client' type='set' id='r%d'><query xmlns='jabber:iq:roster'>"
                "<item jid='%s@%s'/></query></iq>" % (n, contact, DOMAIN)
            )
        yield alice.send(
            "<iq xmlns='jabber:client' type='set' id='b0'><block xmlns='urn:xmpp:blocking'>"
            "<item jid='a@example.org'/><item jid='b@example.org'/></block></iq>"
        )
        first = yield alice.inbox.expect(lambda e: e.getAttribute("id") == "r0")
        second = yield alice.inbox.expect(lambda e: e.getAttribute("id") == "r1")
        block = yield alice.inbox.expect(lambda e: e.getAttribute("id") == "b0")
        self.assertEqual(first["type"], "result")
        self.assertEqual(errorOf(second), ("modify", "policy-violation"))
        self.assertEqual(errorOf(block), ("modify", "policy-violation"))
