# -*- test-case-name: tests.test_gateway_config -*-
"""
Gateway mode in C{twistd xmppws}: the options (command line and TOML),
and the service tree they build, in memory.
"""

from treq.testing import StubTreq
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.python.filepath import FilePath
from twisted.trial import unittest

from tests.certs import writeCertificate
from xmppws import tap
from xmppws.gateway.dispatch import DispatchFactory
from xmppws.gateway.relay import GatewayFactory
from xmppws.limits import Limits
from xmppws.service import Settings, XMPPService

UPSTREAM = "example.org=tcp:host=127.0.0.1:port=5222"


class OptionTests(unittest.TestCase):
    """
    C{--upstream} and the options that go with it.
    """

    def parse(self, *argv, config=None):
        options = tap.Options()
        options.reactor = MemoryReactorClock()
        argv = list(argv)
        if config is not None:
            path = FilePath(self.mktemp())
            path.setContent(config.encode("utf-8"))
            argv = ["--config", path.path] + argv
        if "--data-dir" not in argv:
            argv = ["--data-dir", self.mktemp()] + argv
        options.parseOptions(argv)
        return options.settings

    def refused(self, option, *argv, config=None):
        error = self.assertRaises(usage.UsageError, self.parse, *argv, config=config)
        self.assertIn(option, str(error))
        return str(error)

    def test_gatewayOnly(self):
        """
        With C{--upstream} and no C{--domain}, no domain is served locally,
        no plain XMPP port is opened and the data directory is not used.
        """
        settings = self.parse("--upstream", UPSTREAM, "--data-dir", "/nonexistent/xmppws")
        self.assertEqual(list(settings.domains), [])
        self.assertEqual(settings.c2s, [])
        [route] = settings.upstreams
        self.assertEqual(route.domain, "example.org")
        self.assertEqual(settings.upstreamTimeout, 10)
        self.assertEqual(settings.insecureWebSocket, "refuse")
        # Group chat is the upstream server's business.
        self.assertIsNone(settings.muc)

    def test_mixed(self):
        """
        With C{--domain} too, those domains are served locally, with the
        plain XMPP port by default.
        """
        settings = self.parse("--upstream", UPSTREAM, "--domain", "local.example")
        self.assertEqual(list(settings.domains), ["local.example"])
        self.assertEqual(len(settings.c2s), 1)
        self.assertEqual(settings.muc.domain, "conference.local.example")

    def test_refusals(self):
        """
        Gateway settings that cannot work are refused, naming the option.
        """
        self.refused("--upstream", "--upstream", "example.org")
        self.refused("--upstream", "--upstream", UPSTREAM, "--domain", "example.org")
        self.refused("--c2s", "--upstream", UPSTREAM, "--c2s", "tcp:5222")
        self.refused("--component", "--upstream", UPSTREAM, "--component", "5347",
                     "--component-secret", "s")
        self.refused("--listen", "--upstream", UPSTREAM, "--listen", "none")
        self.refused("--muc-domain", "--upstream", UPSTREAM, "--muc-domain", "muc.example.org")
        self.refused("--upstream-timeout", "--upstream", UPSTREAM, "--upstream-timeout", "0")
        self.refused("--insecure-websocket", "--upstream", UPSTREAM,
                     "--insecure-websocket", "allow")

    def test_options(self):
        """
        The timeout and what to do with plain WebSockets are settings.
        """
        settings = self.parse(
            "--upstream", UPSTREAM, "--upstream-timeout", "2.5",
            "--insecure-websocket", "strip-plain",
        )
        self.assertEqual((settings.upstreamTimeout, settings.insecureWebSocket), (2.5, "strip-plain"))

    def test_config(self):
        """
        The TOML file takes the same settings; a domain with several
        routes keeps their order.
        """
        ca = writeCertificate(FilePath(self.mktemp()))[1].path
        settings = self.parse(config=(
            "upstream = [\n"
            "  'example.org=tcp:host=10.0.0.1:port=5222:ca=%s',\n"
            "  'example.org=tcp:host=10.0.0.2:port=5222:ca=%s:proxy=v2',\n"
            "  'example.net=srv',\n"
            "]\n"
            "upstream-timeout = 3\n"
            "insecure-websocket = 'strip-plain'\n" % (ca, ca)
        ))
        self.assertEqual([r.domain for r in settings.upstreams],
                         ["example.org", "example.org", "example.net"])
        self.assertEqual([r.proxy for r in settings.upstreams], [None, 2, None])
        self.assertEqual(settings.upstreamTimeout, 3)
        self.assertEqual(list(settings.domains), [])

    def test_configErrorNamesFile(self):
        """
        A bad route in the file is reported with the file's name.
        """
        message = self.refused("--upstream", config="upstream = ['nonsense']\n")
        self.assertIn("(in ", message)

    def test_help(self):
        """
        C{--help} documents the gateway options.
        """
        text = str(tap.Options())
        for option in ("--upstream", "--upstream-timeout", "--insecure-websocket"):
            self.assertIn(option, text)


class ServiceTests(unittest.TestCase):
    """
    The service tree in gateway mode.
    """

    def service(self, **settings):
        import txaio

        clock = MemoryReactorClock()
        self.patch(txaio.config, "loop", clock)
        reactor = MemoryReactorClock()
        options = tap.Options()
        options.reactor = reactor
        routes = [tap.parseUpstream(reactor, UPSTREAM)]
        settings.setdefault("domains", ())
        settings.setdefault("dataDir", self.mktemp())
        settings.setdefault("listen", [("tcp:5280", TCP4ServerEndpoint(clock, 5280))])
        service = XMPPService(
            Settings(upstreams=routes, limits=Limits(), **settings), clock,
            installSignalHandlers=False,
        )
        service.startService()
        self.addCleanup(lambda: service.running and service.stopService() and clock.advance(20))
        return service

    def test_gatewayOnly(self):
        """
        Without local domains there is no embedded server, no database and
        no plain XMPP listener; the WebSocket endpoint relays.
        """
        service = self.service()
        self.assertIsNone(service.server)
        self.assertIsNone(service.storage)
        self.assertIsNone(service.c2sFactory)
        self.assertIsInstance(service.webSocketFactory.connectionFactory, GatewayFactory)
        self.assertIs(service.gateway.monitor, service.monitor)
        self.assertEqual(service.domains, ["example.org"])

    def test_mixed(self):
        """
        With local domains, the WebSocket endpoint dispatches between the
        relay and the embedded server; plain XMPP clients reach the latter.
        """
        service = self.service(
            domains=["local.example"], c2s=[("tcp:5222", TCP4ServerEndpoint(MemoryReactorClock(), 5222))]
        )
        self.assertIsInstance(service.webSocketFactory.connectionFactory, DispatchFactory)
        self.assertEqual(service.domains, ["local.example", "example.org"])
        self.assertIsNotNone(service.c2sFactory)

    def test_landingAndDiscovery(self):
        """
        The landing page and host-meta of a gateway name the relayed
        domains and the WebSocket URL.
        """
        service = self.service()
        [site] = service.factories("web")
        treq = StubTreq(site.resource)
        response = self.successResultOf(treq.get("http://example.org/"))
        body = self.successResultOf(response.text())
        self.assertIn("example.org", body)
        response = self.successResultOf(treq.get("http://example.org/.well-known/host-meta"))
        self.assertIn("/xmpp-websocket", self.successResultOf(response.text()))

    def test_chatPage(self):
        """
        A gateway serves the chat page too, logging in to the first relayed
        domain through the gateway, with neither registration nor group
        chat of its own.
        """
        service = self.service(converseURL="https://cdn.example/dist/")
        self.assertIsNone(service.muc)
        [site] = service.factories("web")
        treq = StubTreq(site.resource)
        response = self.successResultOf(treq.get("http://example.org/chat/"))
        self.assertEqual(response.code, 200)
        body = self.successResultOf(response.text())
        self.assertIn("example.org", body)
        self.assertIn("/xmpp-websocket", body)
        self.assertNotIn("conference.", body)

    def test_metricsWithoutServer(self):
        """
        The metrics are served without an embedded server (no sessions to
        count: they are the upstream server's).
        """
        service = self.service()
        body = service.metrics.exposition()[0].decode()
        self.assertIn("xmppws_connections_open", body)
        self.assertNotIn("xmppws_sessions", body)
