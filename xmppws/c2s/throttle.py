# -*- test-case-name: tests.test_throttle -*-
"""
Login throttling that tells a password guesser nothing.

Failed logins are counted twice: per account (whether the account
exists or not, so that the counters say nothing about which do) and per
client address (IPv4 addresses as they are, IPv6 addresses per /64, the
block one subscriber usually holds).  Each counter is a leaky bucket: a
failure adds one, and one failure is forgotten every C{accountForget}
(or C{addressForget}) seconds, so counters decay on their own and
nothing resets them, not even a successful login from the same address.

Once a counter reaches its free allowance, every login attempt that
names the account or comes from the address waits before its password
is checked: C{delay} seconds, doubling with each further failure, up to
C{maxDelay}.  Because the wait comes before the check, a correct
password is answered exactly as late as a wrong one, and abandoning an
attempt early saves a guesser nothing.  While one attempt waits on a
throttled account or address, another one for it is refused at once,
so guesses cannot be run in parallel either.  An address with
C{addressRefuse} recent failures is refused outright until its counter
decays.  An account is never locked for good: its delay is bounded, and
an address the account logged in from successfully in the last
C{rememberAddress} seconds skips the account's delay (never the
address's), so its owner gets in while somebody else guesses.

Addresses on this machine (loopback, a UNIX socket) have no counter,
as with the per-address connection limit: behind a local reverse proxy
every client would share one.  Name the proxy with C{--trusted-proxy}
so that the client's own address is counted.

Every table is bounded by C{maxEntries}: counters that decayed to
nothing are dropped as new ones come, and a full table drops the
counter changed least recently.

    throttle = LoginThrottle(reactor, ThrottlePolicy())
    attempt = throttle.begin(account, addressKey(host))
    if attempt.refused: ...           # answer at once, check nothing
    reactor.callLater(attempt.delay, check)   # then attempt.release()
    throttle.failed(attempt)  or  throttle.succeeded(attempt)
"""

import ipaddress
import math
from collections import OrderedDict

__all__ = ["Attempt", "LoginThrottle", "ThrottlePolicy", "addressKey"]


class ThrottlePolicy:
    """
    The settings of L{LoginThrottle}, with their defaults.

    @ivar accountFailures: failures an account may have before its logins
        wait.
    @ivar addressFailures: failures an address may have before its logins
        wait.
    @ivar delay: seconds of the first wait; each further failure doubles
        it.
    @ivar maxDelay: the longest wait, in seconds.
    @ivar accountForget: seconds after which one failure of an account is
        forgotten.
    @ivar addressForget: seconds after which one failure of an address is
        forgotten.
    @ivar addressRefuse: failures after which an address's logins are
        refused without being checked; 0 never refuses.
    @ivar rememberAddress: seconds an address stays known to an account
        after a successful login from it (its logins skip the account's
        delay); 0 remembers nothing.
    @ivar exemptLocal: whether addresses on this machine have no counter.
    @ivar maxEntries: the most keys each table holds.
    """

    accountFailures = 5
    addressFailures = 10
    delay = 1.0
    maxDelay = 60.0
    accountForget = 300.0
    addressForget = 60.0
    addressRefuse = 100
    rememberAddress = 30 * 86400.0
    exemptLocal = True
    maxEntries = 100000

    _positive = ("delay", "maxDelay", "accountForget", "addressForget", "maxEntries")
    _nonNegative = ("accountFailures", "addressFailures", "addressRefuse", "rememberAddress")

    def __init__(self, **values):
        """
        @param values: settings to change from their defaults.
        @raise ValueError: for an unknown name or a value out of range.
        """
        for name, value in values.items():
            if name.startswith("_") or not hasattr(ThrottlePolicy, name):
                raise ValueError("unknown throttle setting %r" % (name,))
            setattr(self, name, value)
        for name in self._positive:
            if not getattr(self, name) > 0:
                raise ValueError("%s must be more than 0" % (name,))
        for name in self._nonNegative:
            if getattr(self, name) < 0:
                raise ValueError("%s must not be negative" % (name,))
        if self.maxDelay < self.delay:
            raise ValueError("maxDelay must not be less than delay")

    def __repr__(self):
        return "ThrottlePolicy(%s)" % (
            ", ".join(
                "%s=%r" % (name, getattr(self, name))
                for name in self._positive + self._nonNegative + ("exemptLocal",)
            ),
        )

    def delayFor(self, level, free):
        """
        The wait before checking a login whose counter is at C{level}.

        @param free: failures allowed before any wait.
        @rtype: L{float}
        """
        if level < free or level < 1:
            return 0.0
        steps = int(level) - max(free, 1)
        if steps >= 64:
            return float(self.maxDelay)
        return float(min(self.delay * 2**steps, self.maxDelay))


def addressKey(host, exemptLocal=True):
    """
    The key that counts failures of a client address: an IPv4 address as
    it is (also when written as an IPv4-mapped IPv6 address), an IPv6
    address's /64 prefix.

    @param host: the client's address, as C{getPeer().host} gives it.
    @param exemptLocal: return L{None} for addresses on this machine.
    @return: the key, or L{None} when the address has no counter (on this
        machine, or no IP address at all).
    @rtype: L{str} or L{None}
    """
    if not host:
        return None
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if exemptLocal and address.is_loopback:
        return None
    if address.version == 4:
        return str(address)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


class _Bucket:
    """
    One counter: whole failures, one of which leaks away every C{forget}
    seconds since C{stamp}.
    """

    __slots__ = ("level", "stamp", "busy")

    def __init__(self, now):
        self.level = 0
        self.stamp = now
        self.busy = False

    def current(self, now, forget):
        if not self.level:
            return 0
        return max(0, self.level - int((now - self.stamp) // forget))

    def add(self, now, forget, cap):
        leaked = int((now - self.stamp) // forget)
        if leaked >= self.level:
            self.level = 0
            self.stamp = now
        elif leaked:
            self.level -= leaked
            self.stamp += leaked * forget
        if not self.level:
            self.stamp = now
        self.level = min(cap, self.level + 1)


class _Table:
    """
    Buckets by key, at most C{maxEntries} of them, least recently
    changed first.
    """

    def __init__(self, forget, cap, maxEntries):
        self.forget = forget
        self.cap = cap
        self.maxEntries = maxEntries
        self.buckets = OrderedDict()

    def __len__(self):
        return len(self.buckets)

    def level(self, key, now):
        bucket = self.buckets.get(key)
        return 0 if bucket is None else bucket.current(now, self.forget)

    def get(self, key, now):
        bucket = self.buckets.get(key)
        if bucket is None:
            self._makeRoom(now)
            bucket = self.buckets[key] = _Bucket(now)
        return bucket

    def add(self, key, now):
        self.get(key, now).add(now, self.forget, self.cap)
        self.buckets.move_to_end(key)

    def forgetIdle(self, key, now):
        """
        Drop C{key}'s bucket if it holds nothing and nobody waits on it.
        """
        bucket = self.buckets.get(key)
        if bucket is not None and not bucket.busy and bucket.current(now, self.forget) == 0:
            del self.buckets[key]

    def _makeRoom(self, now):
        """
        Before a new key: drop the least recently changed bucket if it
        decayed to nothing (so idle tables shrink), and while the table is
        full, drop the least recently changed ones whatever they hold.
        """
        buckets = self.buckets
        if buckets:
            key, bucket = next(iter(buckets.items()))
            if not bucket.busy and bucket.current(now, self.forget) == 0:
                del buckets[key]
        while len(buckets) >= self.maxEntries:
            buckets.popitem(last=False)


class Attempt:
    """
    One login attempt, from L{LoginThrottle.begin} to its verdict.

    @ivar account: the account key, or L{None}.
    @ivar address: the address key, or L{None}.
    @ivar delay: seconds to wait before checking the password; 0 for none.
    @ivar refused: C{True} when the attempt must be refused unchecked.
    @ivar retryAfter: for a refused attempt, whole seconds after which
        trying again may be let through.
    @ivar reason: for a delayed or refused attempt, C{'account'} or
        C{'address'}: whose counter decided.
    """

    def __init__(self, account, address):
        self.account = account
        self.address = address
        self.delay = 0.0
        self.refused = False
        self.retryAfter = 0
        self.reason = None
        self._held = []

    def release(self):
        """
        The wait is over (or abandoned): let the next attempt on the same
        account or address wait in turn.  Calling it again does nothing.
        """
        held, self._held = self._held, []
        for bucket in held:
            bucket.busy = False


class LoginThrottle:
    """
    Counters of failed logins per account and per address.

    @ivar clock: an C{IReactorTime}.
    @ivar policy: the L{ThrottlePolicy}.
    """

    def __init__(self, clock, policy=None):
        self.clock = clock
        self.policy = policy = policy or ThrottlePolicy()
        saturation = int(math.ceil(math.log2(policy.maxDelay / policy.delay))) + 1
        self._accounts = _Table(
            policy.accountForget, policy.accountFailures + saturation, policy.maxEntries
        )
        self._addresses = _Table(
            policy.addressForget,
            max(policy.addressFailures + saturation, policy.addressRefuse + 1),
            policy.maxEntries,
        )
        self._known = OrderedDict()

    def addressKey(self, host):
        """
        The key L{begin} takes for a client at C{host} (see
        L{addressKey}).
        """
        return addressKey(host, self.policy.exemptLocal)

    def begin(self, account, address):
        """
        Decide what happens to a login attempt before anything is checked.

        @param account: the account the attempt names, as C{(username,
            domain)} after preparation, or L{None} if it names none.
        @param address: the client's L{addressKey}, or L{None}.
        @return: the L{Attempt}: refused, to be checked after its
            C{delay} (call L{Attempt.release} once waited), or at once.
        """
        now = self.clock.seconds()
        policy = self.policy
        attempt = Attempt(account, address)
        waits = []
        if address is not None:
            level = self._addresses.level(address, now)
            if policy.addressRefuse and level >= policy.addressRefuse:
                attempt.refused = True
                attempt.reason = "address"
                attempt.retryAfter = _seconds(
                    (level - policy.addressRefuse + 1) * policy.addressForget
                )
                return attempt
            delay = policy.delayFor(level, policy.addressFailures)
            waits.append(("address", self._addresses, address, delay))
        if account is not None and not self._isKnown(account, address, now):
            delay = policy.delayFor(self._accounts.level(account, now), policy.accountFailures)
            waits.append(("account", self._accounts, account, delay))
        waits = [w for w in waits if w[3] > 0]
        if not waits:
            return attempt
        reason, _, _, delay = max(waits, key=lambda w: w[3])
        buckets = [table.get(key, now) for _, table, key, _ in waits]
        if any(bucket.busy for bucket in buckets):
            attempt.refused = True
            attempt.reason = reason
            attempt.retryAfter = _seconds(delay)
            return attempt
        for bucket in buckets:
            bucket.busy = True
        attempt._held = buckets
        attempt.delay = delay
        attempt.reason = reason
        return attempt

    def failed(self, attempt):
        """
        The attempt's credentials were wrong (or named no account): count
        it against its account and address.
        """
        attempt.release()
        now = self.clock.seconds()
        if attempt.account is not None:
            self._accounts.add(attempt.account, now)
        if attempt.address is not None:
            self._addresses.add(attempt.address, now)

    def succeeded(self, attempt):
        """
        The attempt logged in: nothing is reset, but the address becomes
        known to the account.
        """
        attempt.release()
        now = self.clock.seconds()
        for table, key in ((self._accounts, attempt.account), (self._addresses, attempt.address)):
            if key is not None:
                table.forgetIdle(key, now)
        if attempt.account is None or attempt.address is None or not self.policy.rememberAddress:
            return
        pair = (attempt.account, attempt.address)
        self._known[pair] = now + self.policy.rememberAddress
        self._known.move_to_end(pair)
        while len(self._known) > self.policy.maxEntries:
            self._known.popitem(last=False)

    def _isKnown(self, account, address, now):
        if address is None:
            return False
        pair = (account, address)
        until = self._known.get(pair)
        if until is None:
            return False
        if until <= now:
            del self._known[pair]
            return False
        return True

    def sizes(self):
        """
        How many keys each table holds, for tests and monitoring.

        @return: C{{'accounts': n, 'addresses': n, 'known': n}}.
        """
        return {
            "accounts": len(self._accounts),
            "addresses": len(self._addresses),
            "known": len(self._known),
        }


def _seconds(value):
    return max(1, int(math.ceil(value)))
