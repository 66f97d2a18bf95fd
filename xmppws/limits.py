# -*- test-case-name: tests.test_limits -*-
"""
The limits of the C{twistd xmppws} service: how many connections, how
big a message, how long a peer may stay silent, how fast it may send.

This module holds the values (L{Limits}) and the connection counts
(L{ConnectionLimiter}); the connection enforces the per-connection ones
through L{xmppws.policies}, the same way on WebSocket and TCP.
"""

import ipaddress

__all__ = [
    "ConnectionLimiter",
    "exemptFromPerAddressLimit",
    "Limits",
]


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
    @ivar stanzaRate: top-level elements per second one connection may
        send on average; beyond it, reading from it pauses until the rate
        allows more.  Nothing it sent is dropped and it is not
        disconnected.
    @ivar stanzaBurst: how many elements may come at once.
    @ivar byteRate: bytes per second one connection may send on average;
        beyond it, reading pauses likewise.
    @ivar byteBurst: how many bytes may come at once; never less than
        L{maxMessageSize}, so that one message of that size passes.
    @ivar stallTimeout: seconds a peer may leave what the server sends it
        unread while others wait to send to it, before it is dropped.
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
    byteRate = 64 * 1024
    byteBurst = 512 * 1024
    stallTimeout = 60.0

    _positive = ("maxConnections", "maxConnectionsPerIP", "maxMessageSize")
    _nonNegative = (
        "handshakeTimeout",
        "openTimeout",
        "idleTimeout",
        "pingInterval",
        "pingTimeout",
        "stanzaRate",
        "byteRate",
        "stallTimeout",
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
        for name in self._positive + ("stanzaBurst", "byteBurst"):
            if getattr(self, name) < 1:
                raise ValueError("%s must be at least 1" % (name,))
        for name in self._nonNegative:
            if getattr(self, name) < 0:
                raise ValueError("%s must not be negative" % (name,))
        if self.pingInterval and not self.pingTimeout:
            raise ValueError("pingTimeout must be positive when pinging")

    def connectionPolicies(self):
        """
        The per-connection limits, as keyword arguments of
        L{xmppws.connection.ConnectionFactory}.

        @rtype: L{dict}
        """
        return {
            "openTimeout": self.openTimeout,
            "idleTimeout": self.idleTimeout,
            "pingInterval": self.pingInterval,
            "pingTimeout": self.pingTimeout,
            "stanzaRate": self.stanzaRate,
            "stanzaBurst": self.stanzaBurst,
            "byteRate": self.byteRate,
            "byteBurst": max(self.byteBurst, self.maxMessageSize),
            "maxElementSize": self.maxMessageSize,
            "stallTimeout": self.stallTimeout,
        }

    def __repr__(self):
        names = self._positive + self._nonNegative + ("stanzaBurst", "byteBurst")
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
