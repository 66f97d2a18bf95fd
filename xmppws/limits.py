# -*- test-case-name: tests.test_limits -*-
"""
The limits of the C{twistd xmppws} service: how many connections, how
big a message, how long a peer may stay silent, how fast a session may
send.

The WebSocket layer enforces its own (message size, handshake, stream
open, idle, ping: see L{xmppws.websocket.XMPPWebSocketServerFactory});
this module holds the values, the connection counts, and
L{LimitedStreamMixin}, which gives the server's C{XmlStream}s the
per-stream limits on both transports and the rest on plain TCP.
"""

import ipaddress
import time

from twisted.internet.interfaces import ISSLTransport
from twisted.logger import Logger
from twisted.words.protocols.jabber import error
from twisted.words.xish import domish, xmlstream

__all__ = [
    "ConnectionLimiter",
    "exemptFromPerAddressLimit",
    "LimitedStreamMixin",
    "Limits",
    "TokenBucket",
]

NS_CLIENT = "jabber:client"
NS_PING = "urn:xmpp:ping"
STANZAS = ("message", "presence", "iq")


class Limits:
    """
    Every limit of the service, with its default.

    A timeout or interval of 0 turns that check off; so does a stanza rate
    of 0.

    @ivar maxConnections: open XMPP connections (WebSocket and TCP
        together).
    @ivar maxConnectionsPerIP: open XMPP connections from one address.
        Connections whose peer is local (loopback or a UNIX socket) and
        carry no trusted C{X-Forwarded-For} (a local reverse proxy) do not
        count towards it.
    @ivar maxMessageSize: bytes in one WebSocket message, or in one
        top-level element on TCP (counted from the network read in which
        the element started, so keep it above 64 KiB, Twisted's read
        size).
    @ivar handshakeTimeout: seconds for the WebSocket opening handshake.
    @ivar openTimeout: seconds from connecting to the stream header
        (C{<open/>}).
    @ivar idleTimeout: seconds without a byte from the peer (WebSocket
        pongs count) before the stream is closed with
        C{connection-timeout}.
    @ivar pingInterval: seconds of silence before the server checks the
        peer: a WebSocket ping, or an XEP-0199 ping to a bound TCP session.
    @ivar pingTimeout: seconds to wait for the answer to that ping.
    @ivar stanzaRate: top-level elements per second one stream may send on
        average; beyond it, reading from the stream pauses.
    @ivar stanzaBurst: how many elements beyond the rate may come at once;
        a stream that sends that many more while paused gets the
        C{policy-violation} stream error.
    """

    maxConnections = 10000
    maxConnectionsPerIP = 100
    maxMessageSize = 256 * 1024
    handshakeTimeout = 10.0
    openTimeout = 30.0
    idleTimeout = 600.0
    pingInterval = 25.0
    pingTimeout = 10.0
    stanzaRate = 20.0
    stanzaBurst = 100

    _positive = ("maxConnections", "maxConnectionsPerIP", "maxMessageSize")
    _nonNegative = (
        "handshakeTimeout",
        "openTimeout",
        "idleTimeout",
        "pingInterval",
        "pingTimeout",
        "stanzaRate",
    )

    def __init__(self, **values):
        """
        @param values: limits to change from their defaults, by attribute
            name.
        @raise ValueError: for an unknown name or a value out of range.
        """
        for name, value in values.items():
            if name.startswith("_") or not hasattr(Limits, name):
                raise ValueError("unknown limit %r" % (name,))
            setattr(self, name, value)
        for name in self._positive + ("stanzaBurst",):
            if getattr(self, name) < 1:
                raise ValueError("%s must be at least 1" % (name,))
        for name in self._nonNegative:
            if getattr(self, name) < 0:
                raise ValueError("%s must not be negative" % (name,))
        if self.pingInterval and not self.pingTimeout:
            raise ValueError("pingTimeout must be positive when pinging")

    def __repr__(self):
        names = self._positive + self._nonNegative + ("stanzaBurst",)
        return "Limits(%s)" % (
            ", ".join("%s=%r" % (name, getattr(self, name)) for name in names),
        )


def _isLocal(host):
    """
    Whether a peer is on this machine: a loopback address, or no IP
    address at all (a UNIX socket).
    """
    if not host:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class ConnectionLimiter:
    """
    Count open connections, in total and per address.

    @ivar maxTotal: the most connections at once.
    @ivar maxPerAddress: the most connections from one address at once.
    @ivar total: connections counted now.
    @ivar perAddress: address to its count, for addresses that count.
    """

    TOTAL = "too-many-connections"
    PER_ADDRESS = "too-many-connections-from-address"

    def __init__(self, maxTotal, maxPerAddress):
        self.maxTotal = maxTotal
        self.maxPerAddress = maxPerAddress
        self.total = 0
        self.perAddress = {}

    def release(self, key):
        """
        Forget a connection L{admit} counted.

        @param key: the key L{admit} returned for it.
        """
        self.total -= 1
        if key is not None:
            count = self.perAddress.get(key, 0) - 1
            if count > 0:
                self.perAddress[key] = count
            else:
                self.perAddress.pop(key, None)

    def admit(self, host, exempt=False):
        """
        Count a new connection from C{host}, if the limits allow it.

        @param host: the client's address.
        @type host: L{str}
        @param exempt: C{True} if the connection does not count towards
            the per-address limit (see L{exemptFromPerAddressLimit}).
        @return: C{(True, key)} when counted (pass C{key} to L{release}
            when it ends), C{(False, reason)} when refused, C{reason}
            being L{TOTAL} or L{PER_ADDRESS}.
        """
        if self.total >= self.maxTotal:
            return False, self.TOTAL
        if not exempt and self.perAddress.get(host, 0) >= self.maxPerAddress:
            return False, self.PER_ADDRESS
        key = None if exempt else host
        if key is not None:
            self.perAddress[key] = self.perAddress.get(key, 0) + 1
        self.total += 1
        return True, key


def exemptFromPerAddressLimit(tcpHost, resolvedHost):
    """
    Whether a connection is exempt from the per-address limit: its peer is
    on this machine (loopback, or a UNIX socket) and no trusted proxy named
    another client.

    @param tcpHost: the transport's peer address, or C{''} if it has none.
    @type tcpHost: L{str}
    @param resolvedHost: the client's address after trusted proxy headers.
    @type resolvedHost: L{str}
    """
    return _isLocal(tcpHost) and resolvedHost == tcpHost


class TokenBucket:
    """
    A token bucket: L{rate} tokens a second, holding at most L{burst}.

    @ivar tokens: tokens now; negative when more were taken than there
        were.
    """

    def __init__(self, rate, burst, clock):
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self._clock = clock
        self._last = clock.seconds()

    def take(self):
        """
        Take one token.

        @return: the tokens left; negative if the bucket was empty.
        @rtype: L{float}
        """
        now = self._clock.seconds()
        self.tokens = min(self.burst, self.tokens + (now - self._last) * self.rate)
        self._last = now
        self.tokens -= 1
        return self.tokens

    def wait(self):
        """
        @return: seconds until the bucket is no longer in debt.
        """
        return max(0.0, -self.tokens / self.rate)


class LimitedStreamMixin:
    """
    Mixed into the C{XmlStream} class of the server's stream factories.

    On every stream: the stanza rate, counting stanzas and stream errors
    for metrics.  On plain TCP streams (L{overTCP}), also what the
    WebSocket layer does for WebSocket streams: the stream-open, idle and
    ping timeouts, the element size limit, a stream error on malformed
    XML, byte counts and one log event at the start and end of each
    connection.

    @ivar monitor: told about the stream (an
        L{xmppws._connections.ConnectionMonitor}), or
        L{None}.
    @ivar limits: the L{Limits}.
    @ivar clock: an C{IReactorTime}.
    @ivar overTCP: C{True} when the stream runs on a TCP (or TLS)
        connection of its own.
    @ivar bytesIn: bytes received, on TCP.
    @ivar bytesOut: bytes sent, on TCP.
    @ivar closeReason: why the stream ended, for the log.
    """

    log = Logger()

    monitor = None
    limits = None
    clock = None
    overTCP = False
    transportName = "websocket"
    bytesIn = 0
    bytesOut = 0
    closeReason = None
    startedAt = None

    _bucket = None
    _throttle = None
    _openTimer = None
    _idleTimer = None
    _pingTimer = None
    _pongTimer = None
    _pending = 0
    _pings = 0

    # Starting and ending

    def connectionMade(self):
        self.startedAt = time.monotonic()
        if self.limits is not None and self.limits.stanzaRate:
            self._bucket = TokenBucket(
                self.limits.stanzaRate, self.limits.stanzaBurst, self.clock
            )
        super().connectionMade()
        if not self.overTCP:
            return
        self.transportName = "tcp"
        self.addObserver(xmlstream.STREAM_ERROR_EVENT, self._onParseError)
        if self.rawDataOutFn is None:
            self.rawDataOutFn = self._countOut
        if self.limits is not None and self.limits.openTimeout:
            self._openTimer = self.clock.callLater(
                self.limits.openTimeout, self._timedOut, "The stream was not opened in time."
            )
        self._resetIdle()
        if self.monitor is not None:
            self.monitor.streamStarted(self)

    def connectionLost(self, reason):
        for name in ("_openTimer", "_idleTimer", "_pingTimer", "_pongTimer", "_throttle"):
            timer = getattr(self, name)
            if timer is not None and timer.active():
                timer.cancel()
            setattr(self, name, None)
        if self.closeReason is None:
            self.closeReason = reason.getErrorMessage()
        try:
            super().connectionLost(reason)
        finally:
            if self.overTCP and self.monitor is not None:
                self.monitor.streamEnded(self)

    # Inbound

    def dataReceived(self, data):
        if self.overTCP:
            self.bytesIn += len(data)
            self._pending += len(data)
            self._resetIdle()
            if self._pending > self.limits.maxMessageSize:
                self.log.info(
                    "{peer} sent an element over {limit} bytes",
                    peer=self.transport.getPeer(),
                    limit=self.limits.maxMessageSize,
                )
                self.sendStreamError(
                    error.StreamError(
                        "policy-violation",
                        "Elements are limited to %d bytes." % (self.limits.maxMessageSize,),
                    )
                )
                return
        super().dataReceived(data)
        if self.overTCP and self._betweenElements():
            self._pending = 0

    def _betweenElements(self):
        """
        Whether the parser read the stream header and is between
        top-level elements, so that nothing is in progress.
        """
        stream = self.stream
        return (
            stream is not None
            and getattr(stream, "documentStarted", False)
            and getattr(stream, "currElem", None) is None
        )

    def onDocumentStart(self, rootElement):
        if self._openTimer is not None:
            if self._openTimer.active():
                self._openTimer.cancel()
            self._openTimer = None
        super().onDocumentStart(rootElement)

    def onElement(self, element):
        if self._bucket is not None and not self._rateAllows():
            return
        if element.name in STANZAS and self.monitor is not None:
            self.monitor.stanzaReceived(self)
        super().onElement(element)

    def _rateAllows(self):
        """
        Take a token for an inbound element; pause reading while the
        stream is in debt, and end it if it goes on sending.

        @return: C{False} if the element must be dropped (the stream is
            being closed).
        """
        left = self._bucket.take()
        if left >= 0:
            return True
        if left < -self.limits.stanzaBurst:
            if self.transport is not None and not self.transport.disconnecting:
                self.log.info(
                    "{peer} went on sending over the stanza rate",
                    peer=self.transport.getPeer(),
                )
                self.sendStreamError(
                    error.StreamError(
                        "policy-violation",
                        "Too many stanzas: at most %g a second." % (self.limits.stanzaRate,),
                    )
                )
            return False
        if self._throttle is None and self.transport is not None:
            self.transport.pauseProducing()
            self._throttle = self.clock.callLater(self._bucket.wait(), self._unthrottle)
        return True

    def _unthrottle(self):
        self._throttle = None
        if self.transport is not None and not self.transport.disconnecting:
            self.transport.resumeProducing()

    def _onParseError(self, reason):
        if reason.check(domish.ParserError) and self.transport is not None:
            self.sendStreamError(error.StreamError("not-well-formed"))

    # Timers (TCP)

    def _resetIdle(self):
        limits = self.limits
        if limits is None:
            return
        if limits.idleTimeout:
            if self._idleTimer is not None and self._idleTimer.active():
                self._idleTimer.reset(limits.idleTimeout)
            else:
                self._idleTimer = self.clock.callLater(
                    limits.idleTimeout, self._timedOut, "The connection was idle for too long."
                )
        if self._pongTimer is not None:
            if self._pongTimer.active():
                self._pongTimer.cancel()
            self._pongTimer = None
        if limits.pingInterval:
            if self._pingTimer is not None and self._pingTimer.active():
                self._pingTimer.reset(limits.pingInterval)
            else:
                self._pingTimer = self.clock.callLater(limits.pingInterval, self._ping)

    def _ping(self):
        """
        Ask a bound session whether it is still there (XEP-0199).
        """
        self._pingTimer = None
        session = getattr(self.authenticator, "session", None)
        if session is None or getattr(session, "xs", None) is not self:
            return
        if self.transport is None or self.transport.disconnecting:
            return
        self._pings += 1
        iq = domish.Element((NS_CLIENT, "iq"))
        iq["type"] = "get"
        iq["id"] = "xmppws-ping-%d" % (self._pings,)
        iq["from"] = session.jid.host
        iq["to"] = session.jid.full()
        iq.addElement((NS_PING, "ping"))
        # Through the session, so that stream management counts it.
        session.send(iq)
        self._pongTimer = self.clock.callLater(
            self.limits.pingTimeout, self._timedOut, "No answer to a ping."
        )

    def _timedOut(self, text):
        for name in ("_openTimer", "_idleTimer", "_pingTimer", "_pongTimer"):
            timer = getattr(self, name)
            if timer is not None and timer.active():
                timer.cancel()
            setattr(self, name, None)
        if self.transport is None or self.transport.disconnecting:
            return
        self.log.info(
            "{peer}: {text}", peer=self.transport.getPeer(), text=text
        )
        self.sendStreamError(error.StreamError("connection-timeout", text))

    # Outbound

    def send(self, obj):
        if (
            self.monitor is not None
            and domish.IElement.providedBy(obj)
            and obj.name in STANZAS
        ):
            self.monitor.stanzaSent(self)
        super().send(obj)

    def _countOut(self, data):
        self.bytesOut += len(data)

    def sendStreamError(self, streamError):
        if self.transport is None or getattr(self.transport, "disconnecting", False):
            return
        self.closeReason = "stream error: " + streamError.condition
        if self.monitor is not None:
            self.monitor.streamErrorSent(self, streamError.condition)
        super().sendStreamError(streamError)

    def closeForShutdown(self, text):
        """
        Close the stream because the server is stopping: the
        C{system-shutdown} stream error.
        """
        self.sendStreamError(error.StreamError("system-shutdown", text))
        self.closeReason = "server shutdown"

    @property
    def secure(self):
        """
        Whether the TCP connection is encrypted (direct TLS or STARTTLS).
        """
        return ISSLTransport.providedBy(self.transport)
