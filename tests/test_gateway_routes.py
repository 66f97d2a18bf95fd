# -*- test-case-name: tests.test_gateway_routes -*-
"""
Tests for L{xmppws.gateway.routes} (the C{--upstream} routes, SRV
records), L{xmppws.gateway.proxyprotocol} and
L{xmppws.gateway.dispatch}.
"""

import ipaddress
import struct

from twisted.internet import defer
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint
from twisted.internet.testing import MemoryReactorClock
from twisted.names import dns
from twisted.names import error as dnserror
from twisted.python.filepath import FilePath
from twisted.trial import unittest

from tests.certs import writeCertificate
from tests.gatewayhelpers import DOMAIN, FakeServer, Harness, LOOPBACK
from tests.helpers import echoStreamFactory
from xmppws.connection import ConnectionFactory
from xmppws.gateway.dispatch import DispatchFactory, requestedDomain
from xmppws.gateway.proxyprotocol import (
    SIGNATURE,
    ProxyProtocolError,
    parseProxyHeader,
    proxyHeader,
)
from xmppws.gateway.relay import RelayConnection
from xmppws.gateway.routes import Router, parseUpstream, srvTargets
from xmppws.testing import MemoryWebSocketClient, openMessage
from xmppws.websocket import XMPPWebSocketServerFactory


class ParseTests(unittest.TestCase):
    """
    L{parseUpstream} reads C{DOMAIN=ENDPOINT} with the gateway's options.
    """

    def setUp(self):
        self.reactor = MemoryReactorClock()

    def test_plain(self):
        """
        A Twisted endpoint string, STARTTLS required and verified by
        default, no PROXY protocol.
        """
        route = parseUpstream(self.reactor, "Example.COM=tcp:host=10.0.0.5:port=5222")
        self.assertEqual(route.domain, "example.com")
        self.assertIsInstance(route.endpoint, TCP4ClientEndpoint)
        self.assertEqual((route.tls, route.verify, route.proxy, route.srv), ("starttls", True, None, False))
        self.assertIsNone(route.insecure)

    def test_options(self):
        """
        The gateway's options are taken out of the endpoint string, escapes
        and all, and what is left goes to Twisted.
        """
        ca = writeCertificate(FilePath(self.mktemp()))[1].path
        route = parseUpstream(
            self.reactor,
            "example.com=tcp:host=10.0.0.5:port=5223:tls=direct:proxy=v2:ca=%s:timeout=3"
            % (ca.replace(":", "\\:"),),
        )
        self.assertEqual((route.tls, route.proxy, route.caFile), ("direct", 2, ca))
        self.assertEqual(route.endpoint._timeout, 3)
        self.assertIsNotNone(route.tlsOptions())

    def test_insecure(self):
        """
        The insecure options say so, and cannot be mixed with TLS options.
        """
        route = parseUpstream(self.reactor, "example.com=tcp:host=h:port=1:insecure=no-verify")
        self.assertEqual(route.insecure, "no-verify")
        self.assertIsNotNone(route.tlsOptions())
        route = parseUpstream(self.reactor, "example.com=tcp:host=h:port=1:insecure=no-tls")
        self.assertEqual((route.insecure, route.tls), ("no-tls", None))
        self.assertIsNone(route.tlsOptions())
        self.assertRaises(
            ValueError, parseUpstream, self.reactor,
            "example.com=tcp:host=h:port=1:insecure=no-tls:tls=direct",
        )

    def test_srv(self):
        """
        C{srv} routes look up SRV records, with options after a colon.
        """
        route = parseUpstream(self.reactor, "example.com=srv:proxy=v1")
        self.assertTrue(route.srv)
        self.assertEqual(route.proxy, 1)
        self.assertIsNone(route.endpoint)

    def test_refused(self):
        """
        Every malformed route is refused with a message saying what is
        wrong.
        """
        for text, words in [
            ("example.com", "DOMAIN=ENDPOINT"),
            ("=tcp:host=h:port=1", "DOMAIN=ENDPOINT"),
            ("a@b=tcp:host=h:port=1", "not a valid domain"),
            ("example.com=bogus:1", "bogus"),
            ("example.com=tcp:host=h:port=1:tls=maybe", "tls="),
            ("example.com=tcp:host=h:port=1:proxy=v3", "proxy="),
            ("example.com=tcp:host=h:port=1:insecure=yes", "insecure="),
            ("example.com=tcp:host=h:port=1:proxy=v1:proxy=v2", "twice"),
            ("example.com=tcp:host=h:port=1:ca=/nonexistent/ca.pem", "CA file"),
            ("example.com=srv:insecure=no-verify", "srv"),
        ]:
            error = self.assertRaises(ValueError, parseUpstream, self.reactor, text)
            self.assertIn(words, str(error), text)

    def test_router(self):
        """
        Routes for one domain are kept in order; a domain both relayed and
        served locally is refused; unknown domains have no route.
        """
        first = parseUpstream(self.reactor, "example.com=tcp:host=a:port=1")
        second = parseUpstream(self.reactor, "example.com=tcp:host=b:port=1")
        other = parseUpstream(self.reactor, "example.net=srv")
        router = Router([first, other, second], local=["local.example"])
        self.assertEqual(router.routesFor("example.com"), [first, second])
        self.assertIsNone(router.routesFor("elsewhere.example"))
        self.assertEqual(router.domains, ["example.com", "example.net"])
        self.assertRaises(ValueError, Router, [first], local=["example.com"])


class FakeResolver:
    """
    An C{IResolver} answering SRV lookups from a table (or failing).
    """

    def __init__(self, records=None, failure=None):
        self.records = records or {}
        self.failure = failure
        self.asked = []

    def lookupService(self, name, timeout=None):
        self.asked.append(name)
        if self.failure is not None:
            return defer.fail(self.failure)
        answers = [
            dns.RRHeader(name, dns.SRV, payload=dns.Record_SRV(priority, weight, port, target))
            for priority, weight, port, target in self.records.get(name, [])
        ]
        return defer.succeed((answers, [], []))


class SRVTests(unittest.TestCase):
    """
    L{srvTargets} follows RFC 6120 section 3.2 and RFC 2782.
    """

    def targets(self, resolver, domain="example.com"):
        return self.successResultOf(srvTargets(resolver, domain))

    def test_order(self):
        """
        Targets come by priority; within one, every target comes once.
        """
        resolver = FakeResolver({
            "_xmpp-client._tcp.example.com": [
                (20, 0, 5222, "backup.example.com"),
                (10, 60, 5222, "a.example.com"),
                (10, 40, 5223, "b.example.com"),
            ]
        })
        targets = self.targets(resolver)
        self.assertEqual(targets[-1], ("backup.example.com", 5222))
        self.assertEqual(
            sorted(targets[:2]), [("a.example.com", 5222), ("b.example.com", 5223)]
        )

    def test_none(self):
        """
        Without SRV records (or when the lookup fails), the domain itself
        on port 5222.
        """
        self.assertEqual(self.targets(FakeResolver()), [("example.com", 5222)])
        self.assertEqual(
            self.targets(FakeResolver(failure=dnserror.DNSNameError())), [("example.com", 5222)]
        )

    def test_notOffered(self):
        """
        A lone record with the target "." says there is no service.
        """
        resolver = FakeResolver({"_xmpp-client._tcp.example.com": [(0, 0, 0, "")]})
        self.assertEqual(self.targets(resolver), [])

    def test_idna(self):
        """
        An internationalised domain is looked up by its A-label.
        """
        resolver = FakeResolver()
        self.targets(resolver, "b\u00fccher.example")
        self.assertEqual(resolver.asked, ["_xmpp-client._tcp.xn--bcher-kva.example"])

    def test_candidates(self):
        """
        An SRV route's candidates are hostname endpoints to the targets.
        """
        route = parseUpstream(MemoryReactorClock(), "example.com=srv")
        resolver = FakeResolver({"_xmpp-client._tcp.example.com": [(0, 0, 5269, "x.example.com")]})
        [(label, endpoint)] = self.successResultOf(route.candidates(MemoryReactorClock(), resolver))
        self.assertIn("x.example.com:5269", label)
        self.assertIsInstance(endpoint, HostnameEndpoint)


class ProxyHeaderTests(unittest.TestCase):
    """
    L{proxyHeader} writes PROXY protocol headers that L{parseProxyHeader}
    (and so any server that accepts the protocol) reads back.
    """

    source = IPv4Address("TCP", "127.0.0.2", 41234)
    destination = IPv4Address("TCP", "127.0.0.1", 5280)

    def test_v1(self):
        """
        Version 1 is one line naming both addresses and ports.
        """
        header = proxyHeader(1, self.source, self.destination)
        self.assertEqual(header, b"PROXY TCP4 127.0.0.2 127.0.0.1 41234 5280\r\n")
        self.assertEqual(
            parseProxyHeader(header + b"<x/>"),
            (1, ("127.0.0.2", 41234), ("127.0.0.1", 5280), b"<x/>"),
        )

    def test_v2(self):
        """
        Version 2 is the signature, the PROXY command over TCP/IPv4 and
        the packed addresses.
        """
        header = proxyHeader(2, self.source, self.destination)
        self.assertEqual(header[:12], SIGNATURE)
        self.assertEqual(header[12:16], struct.pack("!BBH", 0x21, 0x11, 12))
        self.assertEqual(
            parseProxyHeader(header + b"rest"),
            (2, ("127.0.0.2", 41234), ("127.0.0.1", 5280), b"rest"),
        )

    def test_ipv6(self):
        """
        IPv6 addresses use the TCP6 family; a mix of families maps the IPv4
        one into IPv6.
        """
        source = IPv6Address("TCP", "2001:db8::1", 1)
        for version in (1, 2):
            parsed = parseProxyHeader(proxyHeader(version, source, self.destination))
            self.assertEqual(parsed[1], ("2001:db8::1", 1))
            self.assertEqual(
                (ipaddress.ip_address(parsed[2][0]), parsed[2][1]),
                (ipaddress.ip_address("::ffff:127.0.0.1"), 5280),
            )

    def test_unknown(self):
        """
        Without IP addresses (a UNIX socket), the header says so, and the
        server uses the connection's own addresses.
        """
        unix = UNIXAddress(b"/run/xmppws.sock")
        self.assertEqual(proxyHeader(1, unix, unix), b"PROXY UNKNOWN\r\n")
        self.assertEqual(parseProxyHeader(proxyHeader(2, unix, unix))[:3], (2, None, None))

    def test_incomplete(self):
        """
        Part of a header is not read yet; what is no header is refused.
        """
        header = proxyHeader(2, self.source, self.destination)
        for size in range(len(header)):
            self.assertIsNone(parseProxyHeader(header[:size]))
        self.assertIsNone(parseProxyHeader(b"PROXY TCP4 1.2"))
        for bad in (b"GET / HTTP/1.1\r\n", b"PROXY TCP4 a b c d\r\n", b"PROXY " + b"1" * 200):
            self.assertRaises(ProxyProtocolError, parseProxyHeader, bad)
        self.assertRaises(ValueError, proxyHeader, 3, self.source, self.destination)


class DispatchTests(unittest.TestCase):
    """
    Relayed and local domains on one WebSocket endpoint.
    """

    def setUp(self):
        self.harness = Harness(self)
        self.local = echoStreamFactory()
        self.factory = XMPPWebSocketServerFactory(
            connectionFactory=DispatchFactory(
                self.harness.gateway.router,
                self.harness.gateway,
                ConnectionFactory(self.local, self.harness.clock),
                self.harness.clock,
            ),
            reactor=self.harness.clock,
        )

    def client(self):
        client = MemoryWebSocketClient(self.factory, peer=LOOPBACK)
        client.handshake()
        return client

    def test_relayed(self):
        """
        A relayed domain's client is carried by a relay.
        """
        client = self.client()
        client.send(openMessage(DOMAIN))
        self.harness.flush()
        self.assertIsInstance(client.connection.handler, RelayConnection)
        self.assertEqual(len(client.messages()), 2)

    def test_local(self):
        """
        Any other domain's client is carried by the embedded server's
        connection.
        """
        client = self.client()
        client.send(openMessage("local.example"))
        self.assertEqual(len(self.local.streams), 1)
        self.assertEqual(self.harness.servers, [])

    def test_timeout(self):
        """
        A client that sends nothing gets C{connection-timeout} in RFC 7395.
        """
        client = self.client()
        self.harness.clock.advance(30)
        messages = client.messages()
        self.assertIn(b"connection-timeout", messages[1])
        self.assertEqual(client.closeCode(), 1000)

    def test_requestedDomain(self):
        """
        The domain is the prepared C{to} of the first element; none for
        what is no domain.
        """
        self.assertEqual(requestedDomain(openMessage("Example.COM")), "example.com")
        self.assertIsNone(requestedDomain(b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"))
        self.assertIsNone(requestedDomain(b"not xml"))
        self.assertIsNone(requestedDomain(openMessage("a@b")))
