# -*- test-case-name: tests.test_metrics -*-
"""
Metrics of the C{twistd xmppws} service in the Prometheus exposition
format (through C{prometheus_client}), and the twisted.web resource that
serves them.

What happens one at a time (connections, stanzas, stream errors,
refusals) is counted as it happens; what the service already knows (open
connections, bytes, sessions, authentications, resumptions, certificate
expiry) is read when the metrics are scraped.
"""

import calendar
import time

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from twisted.web.resource import Resource

__all__ = ["Metrics", "MetricsResource"]

_KNOWN_CONNECTIONS = (
    ("websocket", "none"),
    ("websocket", "rfc7395"),
    ("websocket", "legacy"),
    ("tcp", "rfc6120"),
)


class _Collector:
    """
    The metrics read at scrape time.
    """

    def __init__(self, metrics):
        self._metrics = metrics

    def describe(self):
        return []

    def collect(self):
        metrics = self._metrics
        yield _counter(
            "xmppws_connections",
            "XMPP connections accepted, by transport.",
            ["transport"],
            {(k,): v for k, v in metrics._accepted.items()},
        )
        yield _counter(
            "xmppws_stanzas",
            "Stanzas (message, presence, iq) on client streams, by direction "
            "and transport.",
            ["direction", "transport"],
            metrics._stanzas,
        )
        yield _counter(
            "xmppws_stream_errors",
            "Stream errors the server sent, by condition.",
            ["condition"],
            {(k,): v for k, v in metrics._streamErrors.items()},
        )
        yield _counter(
            "xmppws_handshake_refusals",
            "WebSocket handshakes refused, by reason.",
            ["reason"],
            {(k,): v for k, v in metrics._refusals.items()},
        )
        yield _counter(
            "xmppws_c2s_refusals",
            "TCP client connections refused, by reason.",
            ["reason"],
            {(k,): v for k, v in metrics._c2sRefusals.items()},
        )
        open_ = GaugeMetricFamily(
            "xmppws_connections_open",
            "Open XMPP connections, by transport and framing.",
            labels=["transport", "framing"],
        )
        counts = {}
        bytesIn = dict(metrics._closedBytesIn)
        bytesOut = dict(metrics._closedBytesOut)
        for transport, framing, received, sent in metrics._connections():
            counts[transport, framing] = counts.get((transport, framing), 0) + 1
            bytesIn[transport] = bytesIn.get(transport, 0) + received
            bytesOut[transport] = bytesOut.get(transport, 0) + sent
        for key in _KNOWN_CONNECTIONS:
            counts.setdefault(key, 0)
        for (transport, framing), count in sorted(counts.items()):
            open_.add_metric([transport, framing], count)
        yield open_

        traffic = CounterMetricFamily(
            "xmppws_bytes",
            "XMPP payload bytes (WebSocket message payloads, or the TCP "
            "stream after TLS), by direction and transport.",
            labels=["direction", "transport"],
        )
        for transport in ("websocket", "tcp"):
            traffic.add_metric(["in", transport], bytesIn.get(transport, 0))
            traffic.add_metric(["out", transport], bytesOut.get(transport, 0))
        yield traffic

        server = metrics.server
        if server is not None:
            sessions = GaugeMetricFamily(
                "xmppws_sessions",
                "Bound sessions: attached to a stream, or detached and "
                "waiting for stream management resumption.",
                labels=["state"],
            )
            attached = detached = 0
            for resources in list(server.sessions.values()):
                for session in list(resources.values()):
                    if getattr(session, "xs", None) is None:
                        detached += 1
                    else:
                        attached += 1
            sessions.add_metric(["attached"], attached)
            sessions.add_metric(["detached"], detached)
            yield sessions
            stats = server.stats
            yield CounterMetricFamily(
                "xmppws_sessions_started",
                "Sessions bound since the service started.",
                value=stats.get("sessions_total", 0),
            )
            auth = CounterMetricFamily(
                "xmppws_auth",
                "SASL authentications, by result.",
                labels=["result"],
            )
            auth.add_metric(["success"], stats.get("auth_success", 0))
            auth.add_metric(["failure"], stats.get("auth_failure", 0))
            yield auth
            throttled = CounterMetricFamily(
                "xmppws_auth_throttled",
                "SASL attempts the login throttle delayed before checking them, or "
                "refused unchecked.",
                labels=["action"],
            )
            throttled.add_metric(["delayed"], stats.get("auth_delayed", 0))
            throttled.add_metric(["refused"], stats.get("auth_refused", 0))
            yield throttled
            quotas = CounterMetricFamily(
                "xmppws_quota_refusals",
                "Requests refused because a client reached a budget of state the "
                "server keeps for it, by budget.",
                labels=["quota"],
            )
            for name, value in sorted(list(stats.items())):
                if name.startswith("quota_"):
                    quotas.add_metric([name[len("quota_"):]], value)
            yield quotas
            yield CounterMetricFamily(
                "xmppws_resumptions",
                "Sessions resumed with XEP-0198 stream management.",
                value=stats.get("sm_resumed", 0),
            )
            archive = getattr(server, "modules", {}).get("mam")
            if archive is not None:
                backlog = archive.store.backlog
                yield GaugeMetricFamily(
                    "xmppws_archive_backlog",
                    "Archived messages queued for the database or being written.",
                    value=backlog.size,
                )
                yield CounterMetricFamily(
                    "xmppws_archive_holds",
                    "Times a connection stopped reading because the archive's "
                    "backlog passed its high mark.",
                    value=backlog.holds,
                )
            started = getattr(server, "startedAt", None)
            if started is not None:
                yield GaugeMetricFamily(
                    "xmppws_start_time_seconds",
                    "When the service started, in seconds since the epoch.",
                    value=started,
                )

        certificates = list(metrics._certificates())
        if certificates:
            expiry = GaugeMetricFamily(
                "xmppws_tls_certificate_expiry_seconds",
                "When each TLS certificate in use expires, in seconds since "
                "the epoch.",
                labels=["file"],
            )
            for certificate in certificates:
                notAfter = _asn1Time(certificate.notAfter)
                if notAfter is not None:
                    expiry.add_metric([certificate.certPath], notAfter)
            yield expiry


def _counter(name, documentation, labels, values):
    family = CounterMetricFamily(name, documentation, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


def _asn1Time(value):
    """
    Convert an ASN.1 GeneralizedTime (C{20300101000000Z}) to seconds since
    the epoch.
    """
    if not value:
        return None
    try:
        return float(calendar.timegm(time.strptime(value, "%Y%m%d%H%M%SZ")))
    except ValueError:
        return None


class Metrics:
    """
    The service's metrics, in a registry of their own.

    @ivar registry: the L{CollectorRegistry}.
    @ivar server: the L{xmppws.c2s.server.XMPPServer} whose sessions and
        counters are reported, or L{None}.
    """

    def __init__(self, server=None, connections=None, certificates=None):
        """
        @param connections: returns, when called, C{(transport, framing,
            bytesIn, bytesOut)} for every open connection.
        @param certificates: returns, when called, the
            L{xmppws._tls.ReloadableCertificate}s in use.
        """
        self.server = server
        self._connections = connections or (lambda: ())
        self._certificates = certificates or (lambda: ())
        self._closedBytesIn = {}
        self._closedBytesOut = {}
        self._accepted = {"websocket": 0, "tcp": 0}
        self._stanzas = {
            (direction, transport): 0
            for direction in ("in", "out")
            for transport in ("websocket", "tcp")
        }
        self._streamErrors = {}
        self._refusals = {}
        self._c2sRefusals = {}
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_Collector(self))

    def connectionOpened(self, transport):
        """
        Count an accepted connection.

        @param transport: C{'websocket'} or C{'tcp'}.
        """
        self._accepted[transport] = self._accepted.get(transport, 0) + 1

    def connectionClosed(self, transport, bytesIn, bytesOut):
        """
        Keep the byte counts of a connection that ended.
        """
        self._closedBytesIn[transport] = self._closedBytesIn.get(transport, 0) + bytesIn
        self._closedBytesOut[transport] = self._closedBytesOut.get(transport, 0) + bytesOut

    def stanza(self, direction, transport):
        """
        Count a stanza.

        @param direction: C{'in'} (from the client) or C{'out'}.
        """
        key = (direction, transport)
        self._stanzas[key] = self._stanzas.get(key, 0) + 1

    def streamError(self, condition):
        """
        Count a stream error sent.
        """
        self._streamErrors[condition] = self._streamErrors.get(condition, 0) + 1

    def handshakeRefused(self, reason):
        """
        Count a refused WebSocket handshake.

        @param reason: the L{xmppws._handshake.Refusal}'s C{reason}.
        """
        self._refusals[reason] = self._refusals.get(reason, 0) + 1

    def c2sRefused(self, reason):
        """
        Count a refused TCP client connection.
        """
        self._c2sRefusals[reason] = self._c2sRefusals.get(reason, 0) + 1

    def exposition(self, accept=None):
        """
        Render the metrics.

        @param accept: the scraper's C{Accept} header, to choose between
            the Prometheus text format and OpenMetrics.
        @return: C{(body, contentType)}.
        """
        encoder, contentType = choose_encoder(accept or "")
        return encoder(self.registry), contentType


class MetricsResource(Resource):
    """
    Serve L{Metrics} to a Prometheus scraper.
    """

    isLeaf = True

    def __init__(self, metrics):
        Resource.__init__(self)
        self.metrics = metrics

    def render_GET(self, request):
        accept = request.getHeader(b"accept")
        body, contentType = self.metrics.exposition(
            accept.decode("latin-1") if accept else None
        )
        request.setHeader(b"content-type", contentType.encode("ascii"))
        request.setHeader(b"cache-control", b"no-store")
        return body
