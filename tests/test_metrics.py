"""
Tests for L{xmppws.metrics}: the Prometheus exposition, scraped over HTTP
and parsed, after real traffic through the service.
"""

import base64

from prometheus_client.parser import text_string_to_metric_families
from treq.testing import StubTreq
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.endpoints import serverFromString
from twisted.internet.task import deferLater
from twisted.python.filepath import FilePath
from twisted.trial import unittest
from twisted.web.client import Agent, readBody

from tests.helpers import upgradeRequest
from tests.servicehelpers import (
    OPEN,
    SiteClient,
    TCPClient,
    startService,
    writeCertificate,
)
from xmppws import _tls
from xmppws.metrics import Metrics
from xmppws.service import Settings, XMPPService


def parse(text):
    """
    Parse an exposition into C{{(name, labels): value}}, names as
    exposed (with C{_total} on counters).
    """
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples[name, tuple(sorted(labels.items()))]


class ExpositionTests(unittest.TestCase):
    """
    The metrics of a service, scraped over HTTP from its metrics listener.
    """

    def setUp(self):
        self.service = startService(self, withMetrics=True)
        [self.metricsSite] = self.service.factories("metrics")
        [self.site] = self.service.factories("web")
        [self.c2s] = self.service.factories("c2s")

    def scrape(self, accept=None):
        """
        GET the metrics from the service's metrics listener.

        @return: C{(response, parsed samples)}, or C{(response, text)}
            when asking for another format.
        """
        treq = StubTreq(self.metricsSite.resource)
        headers = {"Accept": accept} if accept else None
        response = self.successResultOf(treq.get("http://127.0.0.1:9280/metrics", headers=headers))
        body = self.successResultOf(response.content()).decode("utf-8")
        if accept is None:
            return response, parse(body)
        return response, body

    def test_idle(self):
        """
        A service without traffic exposes every family at zero.
        """
        response, samples = self.scrape()
        self.assertEqual(response.code, 200)
        self.assertIn(b"text/plain", response.headers.getRawHeaders(b"content-type")[0])
        for transport in ("websocket", "tcp"):
            self.assertEqual(value(samples, "xmppws_connections_total", transport=transport), 0)
            for direction in ("in", "out"):
                self.assertEqual(
                    value(samples, "xmppws_stanzas_total", direction=direction, transport=transport), 0
                )
                self.assertEqual(
                    value(samples, "xmppws_bytes_total", direction=direction, transport=transport), 0
                )
        self.assertEqual(value(samples, "xmppws_sessions", state="attached"), 0)
        self.assertEqual(value(samples, "xmppws_auth_total", result="success"), 0)
        self.assertEqual(value(samples, "xmppws_resumptions_total"), 0)
        self.assertGreater(value(samples, "xmppws_start_time_seconds"), 0)

    def test_traffic(self):
        """
        Connections by transport and framing, sessions, stanzas and bytes
        both ways, and authentications are counted.
        """
        web = SiteClient(self.site, port=1)
        web.login("alice")
        tcp = TCPClient(self.c2s, port=2)
        tcp.login("bob")
        failed = TCPClient(self.c2s, port=3)
        failed.open()
        failed.send(
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
            + base64.b64encode(b"\0bob\0wrong")
            + b"</auth>"
        )
        tcp.send(
            b"<message xmlns='jabber:client' to='alice@localhost/web' type='chat'>"
            b"<body>hi</body></message>"
        )
        self.assertEqual([m.name for m in web.messages()], ["message"])
        _, samples = self.scrape()
        self.assertEqual(value(samples, "xmppws_connections_total", transport="websocket"), 1)
        self.assertEqual(value(samples, "xmppws_connections_total", transport="tcp"), 2)
        self.assertEqual(
            value(samples, "xmppws_connections_open", transport="websocket", framing="rfc7395"), 1
        )
        self.assertEqual(
            value(samples, "xmppws_connections_open", transport="tcp", framing="rfc6120"), 2
        )
        self.assertEqual(value(samples, "xmppws_sessions", state="attached"), 2)
        self.assertEqual(value(samples, "xmppws_sessions_started_total"), 2)
        self.assertEqual(value(samples, "xmppws_auth_total", result="success"), 2)
        self.assertEqual(value(samples, "xmppws_auth_total", result="failure"), 1)
        # Binding is one iq each way; then the message.
        self.assertEqual(
            value(samples, "xmppws_stanzas_total", direction="in", transport="tcp"), 2
        )
        self.assertEqual(
            value(samples, "xmppws_stanzas_total", direction="out", transport="websocket"), 2
        )
        for direction in ("in", "out"):
            for transport in ("websocket", "tcp"):
                self.assertGreater(
                    value(samples, "xmppws_bytes_total", direction=direction, transport=transport), 0
                )

    def test_bytesKeptAfterClose(self):
        """
        The bytes of connections that ended stay counted.
        """
        web = SiteClient(self.site)
        web.open()
        _, before = self.scrape()
        web.lose()
        _, after = self.scrape()
        self.assertEqual(
            value(after, "xmppws_connections_open", transport="websocket", framing="rfc7395"), 0
        )
        for direction in ("in", "out"):
            self.assertEqual(
                value(after, "xmppws_bytes_total", direction=direction, transport="websocket"),
                value(before, "xmppws_bytes_total", direction=direction, transport="websocket"),
            )

    def test_errorsAndRefusals(self):
        """
        Stream errors are counted by condition and refused handshakes by
        reason.
        """
        bad = SiteClient(self.site, port=1)
        bad.open()
        bad.send(b"<message xmlns='jabber:client'><unclosed></message>")
        refused = SiteClient(self.site, port=2)
        refused.handshake(upgradeRequest(protocols=None))
        tcp = TCPClient(self.c2s, port=3)
        tcp.send(b"<?xml version='1.0'?><stream:stream to='nowhere.example' "
                 b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
                 b"version='1.0'>")
        _, samples = self.scrape()
        self.assertEqual(value(samples, "xmppws_stream_errors_total", condition="not-well-formed"), 1)
        self.assertEqual(value(samples, "xmppws_stream_errors_total", condition="host-unknown"), 1)
        self.assertEqual(
            value(samples, "xmppws_handshake_refusals_total", reason="no-xmpp-subprotocol"), 1
        )

    def test_resumption(self):
        """
        A session resumed with stream management is counted.
        """
        first = SiteClient(self.site, port=1)
        first.login("alice")
        first.send(b"<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
        [enabled] = first.messages()
        first.lose()
        second = SiteClient(self.site, port=2)
        second.open()
        second.send(
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
            b"AGFsaWNlAHNlY3JldA==</auth>"
        )
        second.send(OPEN)
        second.messages()
        second.send(
            b"<resume xmlns='urn:xmpp:sm:3' h='0' previd='%s'/>" % (enabled["id"].encode(),)
        )
        self.assertIn("resumed", [m.name for m in second.messages()])
        _, samples = self.scrape()
        self.assertEqual(value(samples, "xmppws_resumptions_total"), 1)
        self.assertEqual(value(samples, "xmppws_sessions", state="attached"), 1)

    def test_openMetrics(self):
        """
        A scraper asking for OpenMetrics gets it.
        """
        response, body = self.scrape("application/openmetrics-text; version=1.0.0")
        self.assertIn(
            b"application/openmetrics-text", response.headers.getRawHeaders(b"content-type")[0]
        )
        self.assertTrue(body.endswith("# EOF\n"))

    def test_offThePublicListener(self):
        """
        By default the public site does not serve the metrics.
        """
        response = self.successResultOf(StubTreq(self.site.resource).get("http://h/metrics"))
        self.assertEqual(response.code, 404)


class CertificateMetricTests(unittest.TestCase):
    """
    The expiry of the certificates in use.
    """

    def test_expiry(self):
        """
        Each certificate's expiry is exposed by file name.
        """
        keyPath, certPath = writeCertificate(FilePath(self.mktemp()))
        certificate = _tls.ReloadableCertificate(keyPath, certPath)
        metrics = Metrics(certificates=lambda: [certificate])
        body, _ = metrics.exposition()
        samples = parse(body.decode("utf-8"))
        expiry = value(samples, "xmppws_tls_certificate_expiry_seconds", file=certPath)
        self.assertGreater(expiry, reactor.seconds())


class LoopbackScrapeTests(unittest.TestCase):
    """
    A real service on loopback, scraped by Twisted's HTTP client.
    """

    timeout = 30

    @inlineCallbacks
    def test_scrape(self):
        """
        The metrics listener answers a scrape over TCP with a parseable
        exposition.
        """
        endpoint = serverFromString(reactor, "tcp:0:interface=127.0.0.1")
        service = XMPPService(
            Settings(dataDir=self.mktemp(), metrics=[("tcp:0", endpoint)]),
            reactor,
            installSignalHandlers=False,
        )
        service.startService()
        self.addCleanup(service.stopService)
        yield deferLater(reactor, 0, lambda: None)
        [address] = service.addresses["metrics"]
        agent = Agent(reactor)
        response = yield agent.request(
            b"GET", b"http://127.0.0.1:%d/metrics" % (address.port,)
        )
        body = yield readBody(response)
        self.assertEqual(response.code, 200)
        samples = parse(body.decode("utf-8"))
        self.assertEqual(value(samples, "xmppws_connections_total", transport="tcp"), 0)
