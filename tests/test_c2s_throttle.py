# -*- test-case-name: tests.test_c2s_throttle -*-
"""
Tests for login throttling in the embedded server's stream negotiation
(L{xmppws.c2s.stream}, L{xmppws.c2s.throttle}): over an in-memory
WebSocket, with the server's clock under the test's control.
"""

import base64

from scramp import ScramClient, ScramMechanism
from twisted.internet.error import ConnectionLost
from twisted.internet.testing import EventLoggingObserver, MemoryReactorClock
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial import unittest

from tests.c2shelpers import C2SClient
from xmppws.c2s import sasl, storage as storagemodule
from xmppws.c2s.server import ServerConfig, XMPPServer
from xmppws.c2s.storage import Storage
from xmppws.c2s.throttle import ThrottlePolicy
from xmppws.metrics import Metrics

NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
PASSWORD = "correct horse"


class CountingStorage(Storage):
    """
    The real database, counting the password checks and SCRAM key
    lookups made.
    """

    checks = 0
    lookups = 0

    def checkPassword(self, username, domain, password):
        self.checks += 1
        return Storage.checkPassword(self, username, domain, password)

    def scramCredentials(self, username, domain, mechanism):
        self.lookups += 1
        return Storage.scramCredentials(self, username, domain, mechanism)


def plainAuth(user, password):
    return (
        b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
        + base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
        + b"</auth>"
    )


def condition(element):
    """
    The SASL condition of a C{<failure/>}, or the element's name.
    """
    if element.name != "failure":
        return element.name
    for child in element.elements():
        if child.name != "text":
            return child.name
    return None


def text(element):
    for child in element.elements(NS_SASL, "text"):
        return str(child)
    return None


class LoginTestCase(unittest.TestCase):
    """
    A server with the account alice, PLAIN offered everywhere, and the
    login throttle's L{policy}.
    """

    policy = {}

    def setUp(self):
        self.clock = MemoryReactorClock()
        self.storage = CountingStorage(self.mktemp() + "/xmppws.sqlite")
        self.addCleanup(self.storage.close)
        self.storage.addUser("alice", "localhost", PASSWORD)
        self.server = XMPPServer(
            self.storage,
            ServerConfig(plain="always", throttle=ThrottlePolicy(**self.policy)),
            reactor=self.clock,
        )
        self.peers = iter("198.51.100.%d" % (n,) for n in range(1, 250))

    def client(self, peer=None):
        client = C2SClient(self, self.server, peer=peer or next(self.peers))
        client.open()
        return client

    def plain(self, password, user="alice", peer=None):
        """
        Send a PLAIN attempt on a new stream; return the client and what
        it received at once.
        """
        client = self.client(peer)
        client.send(plainAuth(user, password))
        return client, client.receive()

    def throttleAccount(self, failures=5, user="alice"):
        """
        Fail C{failures} times from as many addresses, waiting whatever
        the throttle makes them wait.
        """
        for _ in range(failures):
            client, received = self.plain("wrong", user)
            if not received:
                self.clock.advance(60)
                received = client.receive()
            self.assertEqual(condition(received[0]), "not-authorized")


class ThrottledLoginTests(LoginTestCase):
    """
    Once an account is throttled, every attempt waits before its
    password is checked, whatever the password.
    """

    def test_freeFailuresAnsweredAtOnce(self):
        """
        The first failures of an account are answered at once.
        """
        for _ in range(5):
            _, [failure] = self.plain("wrong")
            self.assertEqual(condition(failure), "not-authorized")
        self.assertEqual(self.server.stats["auth_delayed"], 0)

    def test_rightPasswordWaitsToo(self):
        """
        Once the account is throttled, the right password is not checked
        before the delay is over, and is answered no sooner than a wrong
        one.
        """
        self.throttleAccount()
        checks = self.storage.checks
        right, received = self.plain(PASSWORD)
        self.assertEqual(received, [])
        self.assertEqual(self.storage.checks, checks)
        self.clock.advance(0.999)
        self.assertEqual(right.receive(), [])
        self.assertEqual(self.storage.checks, checks)
        self.clock.advance(0.001)
        [success] = right.receive()
        self.assertEqual(success.name, "success")
        self.assertEqual(self.storage.checks, checks + 1)

    def test_wrongPasswordWaitsAlike(self):
        """
        A wrong password on a throttled account waits as long, and the
        next attempt waits twice as long.
        """
        self.throttleAccount()
        wrong, received = self.plain("wrong")
        self.assertEqual(received, [])
        self.clock.advance(0.999)
        self.assertEqual(wrong.receive(), [])
        self.clock.advance(0.001)
        self.assertEqual(condition(wrong.receive()[0]), "not-authorized")
        later, received = self.plain(PASSWORD)
        self.assertEqual(received, [])
        self.clock.advance(1.999)
        self.assertEqual(later.receive(), [])
        self.clock.advance(0.001)
        self.assertEqual(later.receive()[0].name, "success")

    def test_successDoesNotReset(self):
        """
        A successful login leaves the account's counter as it was: the
        next attempt from another address waits as long.
        """
        self.throttleAccount(6)
        client, _ = self.plain(PASSWORD)
        self.clock.advance(2)
        self.assertEqual(client.receive()[0].name, "success")
        again, received = self.plain(PASSWORD)
        self.assertEqual(received, [])
        self.clock.advance(1.999)
        self.assertEqual(again.receive(), [])

    def test_unknownAccountThrottledAlike(self):
        """
        An account that does not exist is throttled exactly like one that
        does, so the delays say nothing about which names exist.
        """
        self.throttleAccount(user="nobody")
        client, received = self.plain("whatever", user="nobody")
        self.assertEqual(received, [])
        self.clock.advance(1)
        self.assertEqual(condition(client.receive()[0]), "not-authorized")

    def test_scramChallengeWaits(self):
        """
        With SCRAM the wait comes before the server's first challenge, the
        first answer that depends on the account; the proof is then
        checked at once, right or wrong.
        """
        self.throttleAccount()
        lookups = self.storage.lookups
        client = self.client()
        scram = ScramClient(["SCRAM-SHA-256"], "alice", PASSWORD)
        client.send(
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>"
            + base64.b64encode(scram.get_client_first().encode())
            + b"</auth>"
        )
        self.assertEqual(client.receive(), [])
        self.assertEqual(self.storage.lookups, lookups)
        self.clock.advance(1)
        [challenge] = client.receive()
        self.assertEqual(challenge.name, "challenge")
        scram.set_server_first(base64.b64decode(str(challenge)).decode())
        client.send(
            b"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
            + base64.b64encode(scram.get_client_final().encode())
            + b"</response>"
        )
        self.assertEqual(client.receive()[0].name, "success")

    def test_parallelAttemptRefused(self):
        """
        While one attempt waits on a throttled account, another is refused
        at once with C{temporary-auth-failure} and a text saying when to
        try again, without its password being checked.
        """
        self.throttleAccount()
        first, _ = self.plain("guess one")
        checks = self.storage.checks
        second, [refused] = self.plain(PASSWORD)
        self.assertEqual(condition(refused), "temporary-auth-failure")
        self.assertEqual(
            text(refused), "Too many failed logins for this account; try again in 1 seconds."
        )
        self.assertEqual(self.storage.checks, checks)
        self.assertEqual(self.server.stats["auth_refused"], 1)
        self.assertEqual(self.server.stats["auth_delayed"], 1)
        self.clock.advance(1)
        self.assertEqual(condition(first.receive()[0]), "not-authorized")

    def test_abandonedAttemptChecksNothing(self):
        """
        A client that drops its connection while its attempt waits gets
        nothing checked, and frees the account for the next attempt.
        """
        self.throttleAccount()
        gone, _ = self.plain(PASSWORD)
        checks = self.storage.checks
        gone.ws.protocol.connectionLost(Failure(ConnectionLost()))
        self.clock.advance(10)
        self.assertEqual(self.storage.checks, checks)
        client, received = self.plain(PASSWORD)
        self.assertEqual(received, [])
        self.clock.advance(1)
        self.assertEqual(client.receive()[0].name, "success")

    def test_abortWhileWaiting(self):
        """
        C{<abort/>} while an attempt waits ends it with C{aborted},
        unchecked.
        """
        self.throttleAccount()
        client, _ = self.plain(PASSWORD)
        checks = self.storage.checks
        client.send(b"<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
        self.assertEqual(condition(client.receive()[0]), "aborted")
        self.clock.advance(10)
        self.assertEqual(client.receive(), [])
        self.assertEqual(self.storage.checks, checks)

    def test_logsWithoutPassword(self):
        """
        Delayed, refused and failed logins are logged with the account
        and never the password.
        """
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.throttleAccount()
        self.plain("hunter2-first")
        self.plain("hunter2-second")
        self.clock.advance(1)
        logged = [repr(event) for event in events]
        self.assertTrue(any("refused unchecked" in line for line in logged))
        self.assertTrue(any("waits" in line for line in logged))
        self.assertTrue(any("alice@localhost" in line for line in logged))
        self.assertFalse(any("hunter2" in line for line in logged))
        self.assertFalse(any(PASSWORD in line for line in logged))

    def test_metrics(self):
        """
        The metrics count delayed and refused logins.
        """
        self.throttleAccount()
        self.plain("one")
        self.plain("two")
        body, _ = Metrics(self.server).exposition()
        self.assertIn(b'xmppws_auth_throttled_total{action="delayed"} 1.0', body)
        self.assertIn(b'xmppws_auth_throttled_total{action="refused"} 1.0', body)
        self.clock.advance(1)


class AddressThrottleTests(LoginTestCase):
    """
    Failures from one address, whatever the accounts.
    """

    policy = {"addressFailures": 3, "addressRefuse": 5, "addressForget": 3600}

    def test_addressDelayed(self):
        """
        After three failures from an address, its attempts wait, also for
        an account nobody guessed.
        """
        for user in ("a", "b", "c"):
            _, [failure] = self.plain("x", user, peer="203.0.113.9")
            self.assertEqual(condition(failure), "not-authorized")
        client, received = self.plain(PASSWORD, peer="203.0.113.9")
        self.assertEqual(received, [])
        self.clock.advance(1)
        self.assertEqual(client.receive()[0].name, "success")

    def test_addressRefused(self):
        """
        After five failures from an IPv6 /64, attempts from anywhere in it
        are refused unchecked.
        """
        for n, user in enumerate("abcde"):
            client, received = self.plain("x", user, peer="2001:db8::%d" % (n,))
            if not received:
                self.clock.advance(2)
                received = client.receive()
            self.assertEqual(condition(received[0]), "not-authorized")
        _, [refused] = self.plain(PASSWORD, peer="2001:db8::ff")
        self.assertEqual(condition(refused), "temporary-auth-failure")
        self.assertIn("from this address", text(refused))
        _, received = self.plain(PASSWORD, peer="2001:db8:0:1::1")
        self.assertEqual(received[0].name, "success")

    def test_loopbackNotCounted(self):
        """
        Connections from this machine have no address counter.
        """
        for user in "abcdefgh":
            _, [failure] = self.plain("x", user, peer="127.0.0.1")
            self.assertEqual(condition(failure), "not-authorized")
        _, [success] = self.plain(PASSWORD, peer="127.0.0.1")
        self.assertEqual(success.name, "success")


class EqualWorkTests(unittest.TestCase):
    """
    Known and unknown accounts cost the server the same work, so the
    time an answer takes does not tell them apart.
    """

    def setUp(self):
        self.storage = Storage(self.mktemp() + "/xmppws.sqlite")
        self.addCleanup(self.storage.close)
        self.storage.addUser("alice", "localhost", PASSWORD)
        self.derivations = []
        original = ScramMechanism.make_auth_info

        def counting(mechanism, password, iteration_count=None, salt=None):
            self.derivations.append(iteration_count)
            return original(mechanism, password, iteration_count=iteration_count, salt=salt)

        self.patch(ScramMechanism, "make_auth_info", counting)

    def test_plainUnknownAccount(self):
        """
        Checking a PLAIN password runs one key derivation with the
        accounts' iteration count, for an unknown account too.
        """
        self.assertFalse(self.storage.checkPassword("alice", "localhost", "wrong"))
        self.assertFalse(self.storage.checkPassword("nobody", "localhost", "wrong"))
        self.assertEqual(self.derivations, [storagemodule.ITERATIONS] * 2)

    def test_scramUnknownAccount(self):
        """
        The SCRAM challenge for an unknown account is made without a key
        derivation, as for a known one, and looks alike.
        """
        challenges = []
        for user in ("alice", "nobody"):
            mechanism = sasl.Scram(self.storage, "localhost", "SCRAM-SHA-256")
            client = ScramClient(["SCRAM-SHA-256"], user, "x")
            challenges.append(mechanism.step(client.get_client_first().encode()).decode())
        self.assertEqual(self.derivations, [])
        for challenge in challenges:
            attributes = dict(part.split("=", 1) for part in challenge.split(","))
            self.assertEqual(sorted(attributes), ["i", "r", "s"])
            self.assertEqual(attributes["i"], str(storagemodule.ITERATIONS))
            self.assertEqual(len(base64.b64decode(attributes["s"])), storagemodule.SALT_BYTES)

    def test_scramUnknownAccountFails(self):
        """
        An unknown account fails at the proof, whatever the password.
        """
        mechanism = sasl.Scram(self.storage, "localhost", "SCRAM-SHA-1")
        client = ScramClient(["SCRAM-SHA-1"], "nobody", "x")
        client.set_server_first(mechanism.step(client.get_client_first().encode()).decode())
        error = self.assertRaises(
            sasl.SASLFailure, mechanism.step, client.get_client_final().encode()
        )
        self.assertEqual(error.condition, "not-authorized")
