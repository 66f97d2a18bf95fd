# -*- test-case-name: tests.test_connection -*-
"""
Flow control of a connection: why reading from its peer is paused (one
connection may be paused for several reasons at once), the producer its
stream code registered, and the connections held up by a peer that does
not read.

When the carrier's buffer toward a peer is full, reading stops from that
peer, and from every connection that writes to it while handing its own
stream an element (the usual path of a routed stanza), until the buffer
drains.  No stream code needs to register anything for that: the
connection handing an element over is known while it does
(L{FlowControl.dispatching}).  A peer that leaves its buffer full for the
stall timeout is given up on, which releases the others.

Work queued behind the connections (the archive's rows waiting for the
database thread) holds them up the same way: a L{Backlog} longer than
its high mark pauses reading from the connection that adds to it while
handing over an element, until it is down to its low mark.  A fast
sender is slowed to what the server can keep up with, never thrown out.
"""

__all__ = ["Backlog", "FlowControl"]

# The flow controls of the connections handing a received element to
# their stream now, innermost last.
_dispatching = []


class _OutputWatch:
    """
    The producer registered with a carrier: told when the peer stops
    reading what is written to it, and when it reads again.
    """

    def __init__(self, flow):
        self._flow = flow

    def pauseProducing(self):
        self._flow.outputFull()

    def resumeProducing(self):
        self._flow.outputDrained()

    def stopProducing(self):
        pass


class _Holder:
    """
    Something connections wait for: it keeps the ones it holds up, and
    releases them all at once.
    """

    def __init__(self):
        self._blocked = set()

    def _holdDispatching(self):
        if _dispatching:
            writer = _dispatching[-1]
            if writer is not self:
                writer._blockedBy(self)

    def _releaseWriters(self):
        blocked, self._blocked = self._blocked, set()
        for writer in blocked:
            writer._unblockedBy(self)


class Backlog(_Holder):
    """
    A queue of work behind the connections, measured in items.  While it
    holds C{high} items or more, a connection that adds one while handing
    an element to its stream stops reading from its peer; reading goes on
    once no more than C{low} are left.

    @ivar high: the high mark.
    @ivar low: the low mark.
    @ivar size: the items queued, as last reported.
    @ivar holds: how many times a connection was held up so far.
    """

    def __init__(self, high, low=None):
        """
        @param high: the high mark, at least 1.
        @param low: the low mark; half the high one if L{None}.
        """
        _Holder.__init__(self)
        if high < 1:
            raise ValueError("high mark must be at least 1, not %r" % (high,))
        self.high = high
        self.low = high // 2 if low is None else min(low, high)
        self.size = 0
        self.holds = 0

    @property
    def holding(self):
        """
        How many connections wait for the backlog now.
        """
        return len(self._blocked)

    def grew(self, size):
        """
        Items were added: C{size} are queued now.
        """
        self.size = size
        if size >= self.high and _dispatching:
            before = len(self._blocked)
            self._holdDispatching()
            self.holds += len(self._blocked) - before

    def shrank(self, size):
        """
        Items were done with: C{size} are queued now.
        """
        self.size = size
        if size <= self.low and self._blocked:
            self._releaseWriters()


class FlowControl(_Holder):
    """
    The flow control of one connection.

    @ivar producer: the producer stream code registered, or L{None}.
    @ivar streaming: whether it is a push producer.
    @ivar outputFull: see L{outputFull}.
    """

    producer = None
    streaming = None
    full = False

    def __init__(self, clock, carrier, watchdog, stallTimeout, onStall):
        """
        @param clock: an C{IReactorTime}.
        @param carrier: the connection's L{xmppws.iwebsocket.ICarrier}.
        @param watchdog: the connection's L{xmppws.policies.Watchdog}: its
            silence timers stop while reading is paused here.
        @param stallTimeout: seconds the peer may leave its buffer full, or
            0.
        @param onStall: called when it did.
        """
        _Holder.__init__(self)
        self._clock = clock
        self._carrier = carrier
        self._watchdog = watchdog
        self._stallTimeout = stallTimeout
        self._onStall = onStall
        self._pausedBy = set()
        self._blockers = set()
        self._stall = None
        self._producerPaused = False
        self._stopped = False
        carrier.registerProducer(_OutputWatch(self), True)

    # Reading, paused for several reasons at once

    def pause(self, reason):
        """
        Stop reading from the peer for C{reason} (a short name).
        """
        if not self._pausedBy:
            self._carrier.pauseProducing()
            self._watchdog.suspend()
        self._pausedBy.add(reason)

    def resume(self, reason):
        """
        Read again, once no other reason holds reading paused.
        """
        if reason not in self._pausedBy:
            return
        self._pausedBy.discard(reason)
        if not self._pausedBy and not self._stopped:
            self._carrier.resumeProducing()
            self._watchdog.resume()

    @property
    def paused(self):
        """
        C{True} while reading from the peer is paused, whatever the reason.
        """
        return bool(self._pausedBy)

    # The producer stream code registers with its transport

    def registerProducer(self, producer, streaming):
        """
        @raise RuntimeError: if another producer is registered.
        """
        if self.producer is not None:
            raise RuntimeError(
                "Cannot register producer %r, because %r is still registered"
                % (producer, self.producer)
            )
        self.producer = producer
        self.streaming = streaming
        self._producerPaused = False
        if self.full:
            self._pauseProducer()
        elif not streaming:
            producer.resumeProducing()

    def unregisterProducer(self):
        """
        Forget the registered producer, resuming it first if it was paused
        here: a producer is never left paused by a consumer it no longer
        has.
        """
        producer, self.producer = self.producer, None
        self.streaming = None
        if producer is not None and self._producerPaused:
            self._producerPaused = False
            producer.resumeProducing()

    def _pauseProducer(self):
        if self.producer is not None and self.streaming and not self._producerPaused:
            self._producerPaused = True
            self.producer.pauseProducing()

    # The peer's side of the connection

    def outputFull(self):
        """
        The carrier holds more than it wants for the peer: stop the
        registered producer and reading from the peer (a client flooding
        requests without reading the replies), and start counting.
        """
        self.full = True
        self._pauseProducer()
        self.pause("output")
        if self._stallTimeout and self._stall is None:
            self._stall = self._clock.callLater(self._stallTimeout, self._stalled)

    def outputDrained(self):
        """
        The peer read: everything held up for it goes on.
        """
        self.full = False
        self._cancelStall()
        self.resume("output")
        if self.producer is not None and (self._producerPaused or not self.streaming):
            self._producerPaused = False
            self.producer.resumeProducing()
        self._releaseWriters()

    def _stalled(self):
        self._stall = None
        self._onStall()

    def _cancelStall(self):
        if self._stall is not None:
            if self._stall.active():
                self._stall.cancel()
            self._stall = None

    # Connections held up by this one's peer

    def dispatching(self):
        """
        The connection starts handing a received element to its stream:
        until L{dispatched}, whatever is written to a connection whose peer
        does not read holds this one up.
        """
        _dispatching.append(self)

    def dispatched(self):
        """
        The element was handed over.
        """
        _dispatching.pop()

    def written(self):
        """
        Something was written toward the peer: if its buffer is full, the
        connection handing an element over now waits for it to drain.
        """
        if self.full:
            self._holdDispatching()

    def _blockedBy(self, other):
        if other in self._blockers:
            return
        self._blockers.add(other)
        other._blocked.add(self)
        self.pause("flow")

    def _unblockedBy(self, other):
        self._blockers.discard(other)
        if not self._blockers:
            self.resume("flow")

    def stop(self):
        """
        The connection is gone: release whatever waited for it or for what
        it waited for, and its producer.
        """
        self._stopped = True
        self._cancelStall()
        self.unregisterProducer()
        self._releaseWriters()
        for other in self._blockers:
            other._blocked.discard(self)
        self._blockers.clear()
