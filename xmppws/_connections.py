# -*- test-case-name: tests.test_limits -*-
"""
Every open XMPP connection of the service, WebSocket and TCP: counted
against the connection limits, reported to the metrics, and closed
properly when the service stops.

L{ConnectionMonitor} is the WebSocket factory's C{monitor} (see
L{xmppws.websocket.XMPPWebSocketServerFactory}) and the C{monitor} of
the server's L{xmppws.limits.LimitedStreamMixin} streams; L{C2SFactory}
admits plain TCP clients.
"""

import time
from xml.sax.saxutils import escape, quoteattr

from twisted.internet import defer
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.logger import Logger

from xmppws import _handshake
from xmppws._adapter import _streamJID
from xmppws.limits import ConnectionLimiter, exemptFromPerAddressLimit
from xmppws.logs import formatAddress

__all__ = ["C2SFactory", "ConnectionMonitor", "SHUTDOWN_TEXT"]

SHUTDOWN_TEXT = "The server is shutting down."
_REFUSALS = {
    ConnectionLimiter.TOTAL: (
        "resource-constraint",
        "The server has too many connections; try again later.",
    ),
    ConnectionLimiter.PER_ADDRESS: (
        "policy-violation",
        "Too many connections from your address.",
    ),
}


class ConnectionMonitor:
    """
    Every open XMPP connection, the limits on how many, and the counts
    the metrics report.

    @ivar limiter: the L{ConnectionLimiter}.
    @ivar metrics: the L{xmppws.metrics.Metrics}, or L{None}.
    @ivar connections: each open connection (a WebSocket protocol or a TCP
        C{XmlStream}) to its transport name, C{'websocket'} or C{'tcp'}.
    @ivar stopping: C{True} once the service is stopping: new connections
        are refused and any that opens is closed.
    """

    log = Logger()

    def __init__(self, limiter, metrics=None):
        self.limiter = limiter
        self.metrics = metrics
        self.connections = {}
        self.stopping = False
        self.seeOtherURI = None
        self._admitted = {}
        self._waiting = []

    # The WebSocket factory's monitor

    def admit(self, protocol, request):
        """
        Count a WebSocket handshake against the limits.

        @return: L{None}, or the L{_handshake.Refusal} to answer with.
        """
        if self.stopping:
            return _handshake.Refusal(
                503,
                "The server is shutting down; try again shortly.",
                "shutting-down",
                [("Retry-After", "5")],
            )
        tcpPeer = protocol.transport.getPeer()
        peer, _ = _handshake.resolvePeer(
            tcpPeer, request.headers, protocol.factory.trustedProxies
        )
        tcpHost = getattr(tcpPeer, "host", "") or ""
        host = getattr(peer, "host", tcpHost) or ""
        ok, key = self.limiter.admit(host, exemptFromPerAddressLimit(tcpHost, host))
        if not ok:
            self.log.warn(
                "Refused a WebSocket from {peer}: {reason}", peer=host, reason=key
            )
            return _handshake.Refusal(
                503, _REFUSALS[key][1], key, [("Retry-After", "30")]
            )
        self._admitted[protocol] = key
        return None

    def handshakeRefused(self, protocol, refusal):
        if self.metrics is not None:
            self.metrics.handshakeRefused(refusal.reason)

    def connectionOpened(self, protocol):
        self.connections[protocol] = "websocket"
        if self.metrics is not None:
            self.metrics.connectionOpened("websocket")
        if self.stopping:
            self._close(protocol)

    def connectionClosed(self, protocol):
        if protocol in self._admitted:
            self.limiter.release(self._admitted.pop(protocol))
        if self.connections.pop(protocol, None) is not None and self.metrics is not None:
            self.metrics.connectionClosed("websocket", protocol.bytesIn, protocol.bytesOut)
        self._checkDrained()

    def streamErrorSent(self, source, condition):
        if self.metrics is not None:
            self.metrics.streamError(condition)

    # TCP streams

    def admitStream(self, address):
        """
        Count a TCP client connection against the limits.

        @return: C{(True, key)}, or C{(False, reason)}.
        """
        if self.stopping:
            return False, "shutting-down"
        host = getattr(address, "host", "") or ""
        ok, key = self.limiter.admit(host, exemptFromPerAddressLimit(host, host))
        if not ok:
            self.log.warn(
                "Refused an XMPP connection from {peer}: {reason}", peer=host, reason=key
            )
            if self.metrics is not None:
                self.metrics.c2sRefused(key)
        return ok, key

    def streamStarted(self, xs):
        self.connections[xs] = "tcp"
        if self.metrics is not None:
            self.metrics.connectionOpened("tcp")
        self.log.info(
            "XMPP over TCP from {peer} open",
            peer=formatAddress(xs.transport.getPeer()),
            origin=None,
            framing="rfc6120",
        )
        if self.stopping:
            self._close(xs)

    def streamEnded(self, xs):
        key = getattr(xs, "admissionKey", _NOT_ADMITTED)
        if key is not _NOT_ADMITTED:
            xs.admissionKey = _NOT_ADMITTED
            self.limiter.release(key)
        if self.connections.pop(xs, None) is not None:
            if self.metrics is not None:
                self.metrics.connectionClosed("tcp", xs.bytesIn, xs.bytesOut)
            self.log.info(
                "XMPP over TCP from {peer} closed: {reason} ({duration:.1f}s, "
                "{bytesIn} bytes in, {bytesOut} bytes out)",
                peer=formatAddress(xs.transport.getPeer()) if xs.transport else None,
                origin=None,
                framing="rfc6120",
                jid=_streamJID(xs),
                reason=xs.closeReason,
                code=None,
                duration=time.monotonic() - xs.startedAt if xs.startedAt else 0.0,
                bytesIn=xs.bytesIn,
                bytesOut=xs.bytesOut,
            )
        self._checkDrained()

    def stanzaReceived(self, xs):
        if self.metrics is not None:
            self.metrics.stanza("in", xs.transportName)

    def stanzaSent(self, xs):
        if self.metrics is not None:
            self.metrics.stanza("out", xs.transportName)

    # Reporting

    def describeConnections(self):
        """
        @return: C{(transport, framing, bytesIn, bytesOut)} for each open
            connection.
        """
        for connection, transport in list(self.connections.items()):
            if transport == "websocket":
                framing = connection.framing.name if connection.framing else "none"
            else:
                framing = "rfc6120"
            yield transport, framing, connection.bytesIn, connection.bytesOut

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
            if self.connections.get(connection) == "tcp":
                connection.closeForShutdown(SHUTDOWN_TEXT)
                return
            if connection.state in (connection.STATE_CLOSING, connection.STATE_CLOSED):
                return
            framing = getattr(connection.framing, "name", None)
            if self.seeOtherURI is not None and framing in (None, "rfc7395"):
                try:
                    connection.closeStream(self.seeOtherURI)
                    return
                except ValueError:
                    pass
            connection._sendStreamError("system-shutdown", SHUTDOWN_TEXT)
        except Exception:
            self.log.failure("Failed to close a connection for shutdown")

    def abortAll(self):
        """
        Drop every connection still open.
        """
        for connection, transport in list(self.connections.items()):
            try:
                if transport == "tcp":
                    connection.transport.abortConnection()
                else:
                    connection.dropConnection(abort=True)
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


_NOT_ADMITTED = object()


class _RefusedStream(Protocol):
    """
    Answer a TCP client over the limits with a stream header, a stream
    error and the footer (RFC 6120 section 4.9.1.1), and hang up.
    """

    def __init__(self, condition, text, domain):
        self.condition = condition
        self.text = text
        self.domain = domain

    def connectionMade(self):
        self.transport.write(
            (
                "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                "xmlns:stream='http://etherx.jabber.org/streams' version='1.0' "
                "from=%s><stream:error><%s xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>%s</text>"
                "</stream:error></stream:stream>"
                % (quoteattr(self.domain), self.condition, escape(self.text))
            ).encode("utf-8")
        )
        self.transport.loseConnection()


class C2SFactory(ServerFactory):
    """
    Plain XMPP client connections (RFC 6120 over TCP, with STARTTLS when
    a certificate is configured), within the connection limits.

    @ivar streamFactory: the server's C{XmlStream} factory.
    @ivar monitor: the L{ConnectionMonitor}.
    @ivar domain: the default domain, for refusals.
    """

    def __init__(self, streamFactory, monitor, domain):
        self.streamFactory = streamFactory
        self.monitor = monitor
        self.domain = domain

    def buildProtocol(self, addr):
        ok, key = self.monitor.admitStream(addr)
        if not ok:
            condition, text = _REFUSALS.get(key, ("system-shutdown", SHUTDOWN_TEXT))
            return _RefusedStream(condition, text, self.domain)
        xs = self.streamFactory.buildProtocol(addr)
        xs.admissionKey = key
        return xs

    def startFactory(self):
        self.streamFactory.doStart()

    def stopFactory(self):
        self.streamFactory.doStop()
