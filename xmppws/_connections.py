# -*- test-case-name: tests.test_limits -*-
"""
Every open XMPP connection of the service, whatever carries it: admitted
against the connection limits, reported to the metrics, and closed
properly when the service stops.

Carriers ask L{ConnectionMonitor.admit} before they carry anything (the
WebSocket handshake, a TCP accept) and L{ConnectionMonitor.release} when
they close; connections (L{xmppws.iwebsocket.IConnection}) report
themselves open and closed, and are closed through that interface at
shutdown.
"""

from twisted.internet import defer
from twisted.logger import Logger

from xmppws.connection import SHUTDOWN_TEXT
from xmppws.limits import ConnectionLimiter, exemptFromPerAddressLimit

__all__ = ["ConnectionMonitor", "SHUTDOWN_TEXT"]

SHUTTING_DOWN = "shutting-down"

_REFUSALS = {
    ConnectionLimiter.TOTAL: (
        "resource-constraint",
        "The server has too many connections; try again later.",
    ),
    ConnectionLimiter.PER_ADDRESS: (
        "policy-violation",
        "Too many connections from your address.",
    ),
    SHUTTING_DOWN: ("system-shutdown", "The server is shutting down; try again shortly."),
}


class ConnectionMonitor:
    """
    Every open XMPP connection, the limits on how many, and the counts
    the metrics report.

    @ivar limiter: the L{ConnectionLimiter}.
    @ivar metrics: the L{xmppws.metrics.Metrics}, or L{None}.
    @ivar connections: the open L{xmppws.iwebsocket.IConnection}s.
    @ivar stopping: C{True} once the service is stopping: new connections
        are refused and any that opens is closed.
    """

    log = Logger()

    def __init__(self, limiter, metrics=None):
        self.limiter = limiter
        self.metrics = metrics
        self.connections = set()
        self.stopping = False
        self.seeOtherURI = None
        self._waiting = []

    # Admission, for carriers

    def admit(self, tcpPeer, peer, kind):
        """
        Count a new connection against the limits.

        @param tcpPeer: the address of the TCP peer.
        @param peer: the client's address (behind a trusted proxy, the one
            the proxy reported; else C{tcpPeer}).
        @param kind: C{'websocket'} (a refused handshake is counted with
            the other handshake refusals) or C{'tcp'}.
        @return: C{(None, key)} when admitted (pass C{key} to
            L{release}), or C{(reason, None)} when refused.
        """
        if self.stopping:
            if kind == "tcp" and self.metrics is not None:
                self.metrics.c2sRefused(SHUTTING_DOWN)
            return SHUTTING_DOWN, None
        tcpHost = getattr(tcpPeer, "host", "") or ""
        host = getattr(peer, "host", tcpHost) or ""
        ok, key = self.limiter.admit(host, exemptFromPerAddressLimit(tcpHost, host))
        if not ok:
            self.log.warn("Refused a connection from {peer}: {reason}", peer=host, reason=key)
            if kind == "tcp" and self.metrics is not None:
                self.metrics.c2sRefused(key)
            return key, None
        return None, key

    def release(self, key):
        """
        Forget a connection L{admit} counted.
        """
        self.limiter.release(key)

    def refusal(self, reason):
        """
        @return: C{(condition, text)} of the stream error that refuses a
            connection for C{reason}.
        """
        return _REFUSALS[reason]

    def refusalText(self, reason):
        """
        @return: the explanation of a refusal for C{reason}.
        """
        return _REFUSALS[reason][1]

    def handshakeRefused(self, reason):
        if self.metrics is not None:
            self.metrics.handshakeRefused(reason)

    # Connections

    def connectionOpened(self, connection):
        self.connections.add(connection)
        if self.metrics is not None:
            self.metrics.connectionOpened(connection.kind)
        if self.stopping:
            self._close(connection)

    def connectionClosed(self, connection):
        if connection in self.connections:
            self.connections.discard(connection)
            if self.metrics is not None:
                self.metrics.connectionClosed(
                    connection.kind, connection.bytesIn, connection.bytesOut
                )
        self._checkDrained()

    def streamErrorSent(self, connection, condition):
        if self.metrics is not None:
            self.metrics.streamError(condition)

    def stanzaReceived(self, connection):
        if self.metrics is not None:
            self.metrics.stanza("in", connection.kind)

    def stanzaSent(self, connection):
        if self.metrics is not None:
            self.metrics.stanza("out", connection.kind)

    def describeConnections(self):
        """
        @return: C{(kind, framing, bytesIn, bytesOut)} for each open
            connection.
        """
        for connection in list(self.connections):
            yield (
                connection.kind,
                connection.framingName,
                connection.bytesIn,
                connection.bytesOut,
            )

    # Shutdown

    def closeAll(self, seeOtherURI=None):
        """
        Stop admitting connections and close every open one properly.

        @param seeOtherURI: where RFC 7395 clients should reconnect, or
            L{None} for the C{system-shutdown} stream error.
        """
        self.stopping = True
        self.seeOtherURI = seeOtherURI
        for connection in list(self.connections):
            self._close(connection)

    def _close(self, connection):
        try:
            connection.closeForShutdown(self.seeOtherURI)
        except Exception:
            self.log.failure("Failed to close a connection for shutdown")

    def abortAll(self):
        """
        Drop every connection still open.
        """
        for connection in list(self.connections):
            try:
                connection.abortConnection()
            except Exception:
                self.log.failure("Failed to drop a connection")

    def drained(self):
        """
        @return: a L{defer.Deferred} that fires once no connection is open.
        """
        d = defer.Deferred()
        self._waiting.append(d)
        self._checkDrained()
        return d

    def _checkDrained(self):
        if self.connections or not self._waiting:
            return
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            if not d.called:
                d.callback(None)
