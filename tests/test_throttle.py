# -*- test-case-name: tests.test_throttle -*-
"""
Tests for L{xmppws.c2s.throttle}: failed-login counters per account and
per address, in memory on a L{Clock}.
"""

from twisted.internet.task import Clock
from twisted.trial import unittest

from xmppws.c2s.throttle import LoginThrottle, ThrottlePolicy, addressKey

ALICE = ("alice", "localhost")
NOBODY = ("nobody", "localhost")


class ThrottleTestCase(unittest.TestCase):
    """
    A throttle on a fresh clock.
    """

    def setUp(self):
        self.clock = Clock()
        self.throttle = LoginThrottle(self.clock, self.policy())

    def policy(self):
        return ThrottlePolicy()

    def fail(self, account=ALICE, address="192.0.2.1", times=1):
        """
        Record C{times} failed attempts, each let through and released.
        """
        for _ in range(times):
            attempt = self.throttle.begin(account, address)
            self.assertFalse(attempt.refused)
            self.throttle.failed(attempt)

    def delay(self, account=ALICE, address="192.0.2.1"):
        """
        The delay of a new attempt, released at once.
        """
        attempt = self.throttle.begin(account, address)
        self.assertFalse(attempt.refused)
        attempt.release()
        return attempt.delay


class AccountTests(ThrottleTestCase):
    """
    Failures of one account, from many addresses.
    """

    def test_freeFailures(self):
        """
        The first failures of an account cost nothing.
        """
        for n in range(5):
            self.assertEqual(self.delay(address="192.0.2.%d" % (n,)), 0)
            self.fail(address="192.0.2.%d" % (n,))

    def test_delayDoublesUpToTheMaximum(self):
        """
        From the fifth failure on, attempts wait 1, 2, 4... seconds, never
        more than the maximum, whichever address they come from.
        """
        seen = []
        for n in range(14):
            address = "198.51.100.%d" % (n,)
            seen.append(self.delay(address=address))
            self.fail(address=address)
        self.assertEqual(seen, [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60])

    def test_unknownAccountsAlike(self):
        """
        An account name that does not exist is counted like one that
        does: the counters cannot tell them apart.
        """
        for account in (ALICE, NOBODY):
            for n in range(7):
                self.fail(account=account, address="203.0.113.%d" % (n,))
        self.assertEqual(self.delay(ALICE, "192.0.2.99"), self.delay(NOBODY, "192.0.2.99"))
        self.assertEqual(self.delay(ALICE, "192.0.2.99"), 4)

    def test_decays(self):
        """
        One failure is forgotten every five minutes: the delay halves,
        and after enough quiet the account costs nothing again.
        """
        for n in range(9):
            self.fail(address="203.0.113.%d" % (n,))
        self.assertEqual(self.delay(address="192.0.2.50"), 16)
        self.clock.advance(300)
        self.assertEqual(self.delay(address="192.0.2.50"), 8)
        self.clock.advance(300 * 4)
        self.assertEqual(self.delay(address="192.0.2.50"), 0)

    def test_neverLockedForGood(self):
        """
        However long the attack went on, the delay stays at the maximum,
        and the account recovers in bounded time once it stops.
        """
        for n in range(500):
            self.fail(address="203.0.113.%d" % (n % 250,))
            self.clock.advance(1)
        self.assertEqual(self.delay(address="192.0.2.50"), 60)
        self.clock.advance(300 * 13)
        self.assertEqual(self.delay(address="192.0.2.50"), 0)

    def test_successResetsNothing(self):
        """
        A successful login does not reset the account's counter.
        """
        for n in range(6):
            self.fail(address="203.0.113.%d" % (n,))
        attempt = self.throttle.begin(ALICE, "192.0.2.7")
        attempt.release()
        self.throttle.succeeded(attempt)
        self.assertEqual(self.delay(address="192.0.2.8"), 2)


class AddressTests(ThrottleTestCase):
    """
    Failures from one address, for many accounts.
    """

    def policy(self):
        return ThrottlePolicy(addressRefuse=20)

    def test_delayFromAddress(self):
        """
        After ten failures from an address, its attempts wait, whatever
        account they name.
        """
        for n in range(10):
            self.fail(account=("user%d" % (n,), "localhost"), address="192.0.2.1")
        attempt = self.throttle.begin(("fresh", "localhost"), "192.0.2.1")
        self.assertEqual((attempt.delay, attempt.reason), (1, "address"))
        attempt.release()
        self.assertEqual(self.delay(("fresh", "localhost"), "192.0.2.2"), 0)

    def test_refusedOutright(self):
        """
        An address with C{addressRefuse} recent failures is refused
        without waiting, until its counter decays.
        """
        for n in range(20):
            attempt = self.throttle.begin(("user%d" % (n,), "localhost"), "192.0.2.1")
            self.assertFalse(attempt.refused)
            attempt.release()
            self.throttle.failed(attempt)
        attempt = self.throttle.begin(("fresh", "localhost"), "192.0.2.1")
        self.assertTrue(attempt.refused)
        self.assertEqual((attempt.reason, attempt.retryAfter), ("address", 60))
        self.clock.advance(60)
        attempt = self.throttle.begin(("fresh", "localhost"), "192.0.2.1")
        self.assertFalse(attempt.refused)
        self.assertEqual(attempt.delay, 60)

    def test_successFromAddressResetsNothing(self):
        """
        Logging in to one's own account from an address does not clear
        the failures the address made guessing other accounts.
        """
        for n in range(11):
            self.fail(account=("user%d" % (n,), "localhost"), address="192.0.2.1")
        mine = self.throttle.begin(("mallory", "localhost"), "192.0.2.1")
        mine.release()
        self.throttle.succeeded(mine)
        self.assertEqual(self.delay(("user0", "localhost"), "192.0.2.1"), 2)

    def test_noAddress(self):
        """
        An attempt with no address key is only counted against its
        account.
        """
        for n in range(30):
            self.fail(account=("user%d" % (n,), "localhost"), address=None)
        self.assertEqual(self.delay(("fresh", "localhost"), None), 0)


class ParallelTests(ThrottleTestCase):
    """
    One attempt at a time waits on a throttled account or address.
    """

    def test_secondRefusedWhileFirstWaits(self):
        """
        While an attempt waits on a throttled account, another one for it
        is refused at once; once the first is released the next waits.
        """
        self.fail(times=6, address=None)
        first = self.throttle.begin(ALICE, "192.0.2.1")
        self.assertEqual(first.delay, 2)
        second = self.throttle.begin(ALICE, "192.0.2.2")
        self.assertTrue(second.refused)
        self.assertEqual((second.reason, second.retryAfter), ("account", 2))
        first.release()
        third = self.throttle.begin(ALICE, "192.0.2.2")
        self.assertFalse(third.refused)
        self.assertEqual(third.delay, 2)
        third.release()
        third.release()

    def test_unthrottledRunInParallel(self):
        """
        Attempts that need not wait are never refused for being parallel.
        """
        attempts = [self.throttle.begin(ALICE, "192.0.2.%d" % (n,)) for n in range(10)]
        self.assertEqual([a.refused for a in attempts], [False] * 10)


class KnownAddressTests(ThrottleTestCase):
    """
    An address an account logged in from skips the account's delay.
    """

    def login(self, address):
        attempt = self.throttle.begin(ALICE, address)
        attempt.release()
        self.throttle.succeeded(attempt)

    def test_ownerGetsIn(self):
        """
        While others guess the account's password, its owner's known
        address logs in without waiting; other addresses wait.
        """
        self.login("192.0.2.1")
        self.fail(times=8, address=None)
        self.assertEqual(self.delay(address="192.0.2.1"), 0)
        self.assertEqual(self.delay(address="192.0.2.2"), 8)

    def test_ownerNotRefusedInParallel(self):
        """
        An attempt waiting from a stranger does not refuse the owner's.
        """
        self.login("192.0.2.1")
        self.fail(times=8, address=None)
        stranger = self.throttle.begin(ALICE, "203.0.113.1")
        self.assertEqual(stranger.delay, 8)
        owner = self.throttle.begin(ALICE, "192.0.2.1")
        self.assertFalse(owner.refused)
        self.assertEqual(owner.delay, 0)

    def test_forgotten(self):
        """
        A known address is forgotten after C{rememberAddress} seconds.
        """
        self.login("192.0.2.1")
        self.clock.advance(30 * 86400)
        self.fail(times=8, address=None)
        self.assertEqual(self.delay(address="192.0.2.1"), 8)

    def test_knownAddressStillCounted(self):
        """
        A known address is still subject to its own counter.
        """
        self.login("192.0.2.1")
        for n in range(12):
            self.fail(account=("user%d" % (n,), "localhost"), address="192.0.2.1")
        self.assertEqual(self.delay(address="192.0.2.1"), 4)


class BoundsTests(unittest.TestCase):
    """
    The tables never hold more than C{maxEntries} keys.
    """

    def test_bounded(self):
        """
        Failures for thousands of accounts from thousands of addresses,
        and as many successes, leave at most C{maxEntries} keys per table.
        """
        clock = Clock()
        throttle = LoginThrottle(clock, ThrottlePolicy(maxEntries=50))
        for n in range(2000):
            host = "%d.%d" % (n // 256, n % 256)
            attempt = throttle.begin(("user%d" % (n,), "localhost"), "10.0." + host)
            throttle.failed(attempt)
            attempt = throttle.begin(("other%d" % (n,), "localhost"), "10.1." + host)
            throttle.succeeded(attempt)
        self.assertEqual(throttle.sizes(), {"accounts": 50, "addresses": 50, "known": 50})

    def test_decayedDropped(self):
        """
        Counters that decayed to nothing are dropped as new ones come.
        """
        clock = Clock()
        throttle = LoginThrottle(clock, ThrottlePolicy())
        for n in range(100):
            throttle.failed(throttle.begin(("user%d" % (n,), "localhost"), None))
        clock.advance(3600)
        for n in range(100):
            throttle.failed(throttle.begin(("later%d" % (n,), "localhost"), None))
        self.assertEqual(throttle.sizes()["accounts"], 100)


class AddressKeyTests(unittest.TestCase):
    """
    L{addressKey} groups addresses as one client holds them.
    """

    def test_ipv4(self):
        """
        An IPv4 address is its own key, also when IPv4-mapped.
        """
        self.assertEqual(addressKey("192.0.2.1"), "192.0.2.1")
        self.assertEqual(addressKey("::ffff:192.0.2.1"), "192.0.2.1")

    def test_ipv6Per64(self):
        """
        IPv6 addresses in one /64 share a key; another /64 has its own.
        """
        self.assertEqual(addressKey("2001:db8:1:2::1"), "2001:db8:1:2::/64")
        self.assertEqual(addressKey("2001:db8:1:2:ffff::9"), "2001:db8:1:2::/64")
        self.assertEqual(addressKey("2001:db8:1:3::1"), "2001:db8:1:3::/64")

    def test_local(self):
        """
        Loopback addresses and non-IP peers have no key, unless local
        addresses are counted too.
        """
        for host in ("127.0.0.1", "::1", "", None, "localhost", "/tmp/sock"):
            self.assertIsNone(addressKey(host))
        self.assertEqual(addressKey("127.0.0.1", exemptLocal=False), "127.0.0.1")

    def test_policyChecked(self):
        """
        Settings out of range are refused.
        """
        for values in ({"delay": 0}, {"maxDelay": 0.5}, {"addressRefuse": -1}, {"nope": 1}):
            self.assertRaises(ValueError, ThrottlePolicy, **values)

    def test_hugeLevel(self):
        """
        A very high counter gives the maximum delay without overflowing.
        """
        self.assertEqual(ThrottlePolicy().delayFor(10**6, 5), 60)
