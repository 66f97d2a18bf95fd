# -*- test-case-name: tests.test_policies -*-
"""
Per-connection policies, as small objects a connection composes: how fast
a peer may send (L{ReadThrottle}) and how long it may stay silent
(L{Watchdog}).  Each takes the clock it runs on and calls back into its
connection through the callables it was given; none knows what carries
the stream.  L{ClientPolicies} holds the settings of all of them, and of
flow control (L{xmppws.flow.FlowControl}), once for every kind of client
connection: a hosted stream and a relayed one are held to the same.
"""

from xmppws.flow import FlowControl

__all__ = ["ClientPolicies", "ReadThrottle", "TokenBucket", "Watchdog"]


class ClientPolicies:
    """
    The limits and timers a client connection is held to, WebSocket or
    TCP, hosted here (L{xmppws.connection.ConnectionFactory}) or relayed
    (L{xmppws.gateway.relay.GatewayFactory}).

    A timeout, interval or rate of 0 turns that policy off.

    @ivar openTimeout: seconds from connecting to the peer's stream
        header.
    @ivar idleTimeout: seconds without a byte from the peer.
    @ivar pingInterval: seconds of silence before checking the peer.
    @ivar pingTimeout: seconds to wait for the answer.
    @ivar stanzaRate: top-level elements a second a peer may send on
        average; beyond it, reading from it pauses.
    @ivar stanzaBurst: elements that may come at once.
    @ivar byteRate: bytes a second, likewise.
    @ivar byteBurst: bytes that may come at once.
    @ivar maxElementSize: bytes one top-level element may take on TCP (a
        WebSocket carrier limits its messages itself).
    @ivar closeTimeout: seconds a peer gets to close its stream after this
        side closed its own.
    @ivar stallTimeout: seconds a peer may leave what is written to it
        unread (while others wait for it) before it is dropped.
    """

    def __init__(
        self,
        openTimeout=30,
        idleTimeout=0,
        pingInterval=0,
        pingTimeout=10,
        stanzaRate=0,
        stanzaBurst=100,
        byteRate=0,
        byteBurst=512 * 1024,
        maxElementSize=256 * 1024,
        closeTimeout=5,
        stallTimeout=60,
    ):
        self.openTimeout = openTimeout
        self.idleTimeout = idleTimeout
        self.pingInterval = pingInterval
        self.pingTimeout = pingTimeout
        self.stanzaRate = stanzaRate
        self.stanzaBurst = stanzaBurst
        self.byteRate = byteRate
        self.byteBurst = byteBurst
        self.maxElementSize = maxElementSize
        self.closeTimeout = closeTimeout
        self.stallTimeout = stallTimeout

    def attach(self, clock, carrier, timedOut, ping, stalled):
        """
        The policies of one connection.

        @param clock: the C{IReactorTime} their timers run on.
        @param carrier: the connection's transport (its
            L{xmppws.iwebsocket.ICarrier}, or a TCP transport).
        @param timedOut: called with a text when a timeout ran out.
        @param ping: called to check a silent peer.
        @param stalled: called when the peer left what was written to it
            unread for too long.
        @return: C{(throttle, watchdog, flow)}: its L{ReadThrottle},
            L{Watchdog} (not started) and L{FlowControl}; the throttle
            pauses and resumes reading through the flow control.
        """
        flow = None
        throttle = ReadThrottle(
            clock,
            lambda: flow.pause("rate"),
            lambda: flow.resume("rate"),
            stanzaRate=self.stanzaRate,
            stanzaBurst=self.stanzaBurst,
            byteRate=self.byteRate,
            byteBurst=self.byteBurst,
        )
        watchdog = Watchdog(
            clock,
            timedOut,
            ping,
            openTimeout=self.openTimeout,
            idleTimeout=self.idleTimeout,
            pingInterval=self.pingInterval,
            pingTimeout=self.pingTimeout,
        )
        flow = FlowControl(clock, carrier, watchdog, self.stallTimeout, stalled)
        return throttle, watchdog, flow

    def __repr__(self):
        return "ClientPolicies(%s)" % (
            ", ".join("%s=%r" % item for item in sorted(vars(self).items())),
        )


class TokenBucket:
    """
    A token bucket: L{rate} tokens a second, holding at most L{burst}.

    Taking more tokens than there are leaves the bucket in debt (negative
    tokens), to be paid back by the refill.

    @ivar tokens: tokens as of the last L{take}; negative when in debt.
    """

    def __init__(self, rate, burst, clock):
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self._clock = clock
        self._last = clock.seconds()

    def _refill(self):
        now = self._clock.seconds()
        self.tokens = min(self.burst, self.tokens + (now - self._last) * self.rate)
        self._last = now

    def take(self, count=1):
        """
        Take C{count} tokens.

        @return: the tokens left; negative if the bucket is in debt.
        @rtype: L{float}
        """
        self._refill()
        self.tokens -= count
        return self.tokens

    def wait(self):
        """
        @return: seconds until the bucket is out of debt, from now.
        @rtype: L{float}
        """
        self._refill()
        return max(0.0, -self.tokens / self.rate)


class ReadThrottle:
    """
    Keep a peer within a stanza rate and a byte rate by pausing reading
    from it until its buckets refill: never by dropping what it sent or
    disconnecting it.  What arrived in the read that put it in debt is
    still processed; the debt is paid back before reading resumes.

    @ivar paused: C{True} while this throttle holds reading paused.
    """

    paused = False

    def __init__(self, clock, pause, resume, stanzaRate=0, stanzaBurst=1, byteRate=0, byteBurst=1):
        """
        @param clock: an C{IReactorTime}.
        @param pause: called with no arguments to stop reading.
        @param resume: called with no arguments to read again.
        @param stanzaRate: top-level elements a second, or 0 for no limit.
        @param stanzaBurst: elements that may come at once.
        @param byteRate: bytes a second, or 0 for no limit.
        @param byteBurst: bytes that may come at once.
        """
        self._clock = clock
        self._pause = pause
        self._resume = resume
        self._stanzas = TokenBucket(stanzaRate, stanzaBurst, clock) if stanzaRate else None
        self._bytes = TokenBucket(byteRate, byteBurst, clock) if byteRate else None
        self._timer = None

    def stanzaReceived(self):
        """
        Count one inbound top-level element.
        """
        if self._stanzas is not None and self._stanzas.take() < 0:
            self._hold()

    def bytesReceived(self, count):
        """
        Count inbound bytes.
        """
        if self._bytes is not None and self._bytes.take(count) < 0:
            self._hold()

    def _wait(self):
        return max(
            self._stanzas.wait() if self._stanzas is not None else 0.0,
            self._bytes.wait() if self._bytes is not None else 0.0,
        )

    def _hold(self):
        if self._timer is not None:
            return
        self.paused = True
        self._pause()
        self._timer = self._clock.callLater(self._wait(), self._refilled)

    def _refilled(self):
        wait = self._wait()
        if wait > 0:
            self._timer = self._clock.callLater(wait, self._refilled)
            return
        self._timer = None
        self.paused = False
        self._resume()

    def stop(self):
        """
        Forget any pending resume: the connection is gone.
        """
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


class Watchdog:
    """
    The timers of a connection: its stream must open in time, its peer
    must not stay silent too long, and is asked for a sign of life when
    quiet.

    Signs of life (L{activity}) come with every read, so they only note the
    time; the silence timers, when they run out, look at it and wait again
    for what is left (lazy rescheduling).

    While reading from the peer is paused on this side (flow control, rate
    limits), silence is not the peer's doing: L{suspend} stops the silence
    timers and L{resume} starts them afresh.
    """

    def __init__(
        self,
        clock,
        onTimeout,
        ping,
        openTimeout=0,
        idleTimeout=0,
        pingInterval=0,
        pingTimeout=0,
    ):
        """
        @param clock: an C{IReactorTime}.
        @param onTimeout: called with a short explanation when a timer
            runs out.
        @param ping: called when the peer was quiet for C{pingInterval};
            returns C{True} if an answer is to be expected (then it must
            come within C{pingTimeout}).
        @param openTimeout: seconds until the peer's stream header, or 0.
        @param idleTimeout: seconds of silence before giving up, or 0.
        @param pingInterval: seconds of silence before pinging, or 0.
        @param pingTimeout: seconds to wait for the answer to a ping.
        """
        self._clock = clock
        self._onTimeout = onTimeout
        self._ping = ping
        self.openTimeout = openTimeout
        self.idleTimeout = idleTimeout
        self.pingInterval = pingInterval
        self.pingTimeout = pingTimeout
        self._open = None
        self._idle = None
        self._pinger = None
        self._pong = None
        self._last = 0.0
        self._pinged = 0.0
        self._suspended = False
        self._stopped = False

    def start(self):
        """
        The connection is open: start waiting for the stream header, and
        watching for silence.
        """
        if self.openTimeout:
            self._open = self._clock.callLater(
                self.openTimeout, self._fire, "The stream was not opened in time."
            )
        self._watch()

    def streamOpened(self):
        """
        The peer's stream header arrived.
        """
        self._open = _cancel(self._open)

    def activity(self):
        """
        The peer sent something: it is alive.
        """
        self._last = self._clock.seconds()
        if self._pong is not None:
            self._pong = _cancel(self._pong)
            if self.pingInterval and not self._suspended and not self._stopped:
                self._pinger = self._clock.callLater(self.pingInterval, self._pingDue)

    def _watch(self):
        """
        Arm the silence timers from now.
        """
        self._last = self._clock.seconds()
        if self.idleTimeout and self._idle is None:
            self._idle = self._clock.callLater(self.idleTimeout, self._idleDue)
        if self.pingInterval and self._pinger is None and self._pong is None:
            self._pinger = self._clock.callLater(self.pingInterval, self._pingDue)

    def suspend(self):
        """
        Reading is paused on this side: stop the silence timers.
        """
        self._suspended = True
        self._idle = _cancel(self._idle)
        self._pinger = _cancel(self._pinger)
        self._pong = _cancel(self._pong)

    def resume(self):
        """
        Reading resumed: watch for silence again, from now.
        """
        self._suspended = False
        if not self._stopped:
            self._watch()

    def stop(self):
        """
        Cancel every timer: the connection is closing or gone.
        """
        self._stopped = True
        self._open = _cancel(self._open)
        self._idle = _cancel(self._idle)
        self._pinger = _cancel(self._pinger)
        self._pong = _cancel(self._pong)

    def _quiet(self):
        return self._clock.seconds() - self._last

    def _idleDue(self):
        quiet = self._quiet()
        if quiet < self.idleTimeout:
            self._idle = self._clock.callLater(self.idleTimeout - quiet, self._idleDue)
            return
        self._idle = None
        self._fire("The connection was idle for too long.")

    def _pingDue(self):
        quiet = self._clock.seconds() - max(self._last, self._pinged)
        if quiet < self.pingInterval:
            self._pinger = self._clock.callLater(self.pingInterval - quiet, self._pingDue)
            return
        self._pinger = None
        if self._ping() and self.pingTimeout:
            self._pong = self._clock.callLater(
                self.pingTimeout, self._fire, "No answer to a ping."
            )
        elif not (self._suspended or self._stopped):
            self._pinged = self._clock.seconds()
            self._pinger = self._clock.callLater(self.pingInterval, self._pingDue)

    def _fire(self, text):
        if self._stopped:
            return
        self.stop()
        self._onTimeout(text)


def _cancel(timer):
    if timer is not None and timer.active():
        timer.cancel()
    return None
