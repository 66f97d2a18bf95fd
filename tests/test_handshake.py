"""
Tests for the WebSocket opening handshake: subprotocol, diagnostics,
origin policy and trusted proxies.
"""

from twisted.internet.address import IPv4Address
from twisted.logger import globalLogPublisher
from twisted.internet.testing import EventLoggingObserver
from twisted.trial import unittest
from twisted.web.resource import Resource
from treq.testing import StubTreq

from tests.helpers import OPEN, WebSocketTestClient, echoStreamFactory, upgradeRequest
from xmppws import _handshake
from xmppws.websocket import XMPPWebSocketResource, XMPPWebSocketServerFactory


def splitResponse(data):
    """
    Split a raw HTTP response into status line, headers and body.
    """
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, body


class HandshakeTests(unittest.TestCase):
    """
    The server's answers to upgrade requests.
    """

    def request(self, data, **options):
        options.setdefault("path", "/xmpp-websocket")
        client = WebSocketTestClient(self, **options)
        client.protocol.dataReceived(data)
        return splitResponse(client.transport.value()) + (client,)

    def test_subprotocolEchoed(self):
        """
        The server selects exactly C{xmpp} from the client's offer.
        """
        status, headers, body, client = self.request(
            upgradeRequest(protocols=b"chat, xmpp")
        )
        self.assertEqual(status, b"HTTP/1.1 101 Switching Protocols")
        self.assertEqual(headers[b"sec-websocket-protocol"], b"xmpp")

    def test_noSubprotocol(self):
        """
        A client that offers no C{xmpp} subprotocol gets 400 and a body
        saying so.
        """
        status, headers, body, client = self.request(upgradeRequest(protocols=None))
        self.assertEqual(status, b"HTTP/1.1 400 Bad Request")
        self.assertIn(b"'xmpp' WebSocket subprotocol", body)
        self.assertEqual(int(headers[b"content-length"]), len(body))
        self.assertTrue(client.transport.disconnecting)

    def test_otherSubprotocol(self):
        """
        Offering only other subprotocols is refused the same way, without
        echoing them.
        """
        status, headers, body, client = self.request(
            upgradeRequest(protocols=b"evil\x7fproto")
        )
        self.assertEqual(status, b"HTTP/1.1 400 Bad Request")
        self.assertNotIn(b"evil", status + body)

    def test_plainGet(self):
        """
        A plain GET on the WebSocket path gets 200 and a page saying what
        is served.
        """
        status, headers, body, client = self.request(
            b"GET /xmpp-websocket HTTP/1.1\r\nHost: example.com\r\n\r\n"
        )
        self.assertEqual(status, b"HTTP/1.1 200 OK")
        self.assertIn(b"XMPP over WebSocket endpoint", body)
        self.assertIn(b"/xmpp-websocket", body)

    def test_head(self):
        """
        A HEAD request gets the headers of the page without its body.
        """
        status, headers, body, client = self.request(
            b"HEAD /xmpp-websocket HTTP/1.1\r\nHost: example.com\r\n\r\n"
        )
        self.assertEqual(status, b"HTTP/1.1 200 OK")
        self.assertEqual(body, b"")
        self.assertGreater(int(headers[b"content-length"]), 0)

    def test_upgradeStripped(self):
        """
        A WebSocket request whose C{Upgrade} header a proxy stripped gets
        426 naming the header and the proxy fix.
        """
        request = upgradeRequest().replace(b"Upgrade: websocket\r\n", b"")
        status, headers, body, client = self.request(request)
        self.assertEqual(status, b"HTTP/1.1 426 Upgrade Required")
        self.assertIn(b"'Upgrade: websocket'", body)
        self.assertIn(b"proxy_set_header Upgrade", body)
        self.assertEqual(headers[b"upgrade"], b"websocket")

    def test_connectionStripped(self):
        """
        A C{Connection} header without C{Upgrade} gets 400 naming it.
        """
        request = upgradeRequest().replace(
            b"Connection: Upgrade", b"Connection: keep-alive"
        )
        status, headers, body, client = self.request(request)
        self.assertEqual(status, b"HTTP/1.1 400 Bad Request")
        self.assertIn(b"Connection header does not include 'Upgrade'", body)

    def test_upgradeNotWebSocket(self):
        """
        An C{Upgrade} to something else gets 400, with a status line that
        does not repeat the request.
        """
        request = upgradeRequest().replace(
            b"Upgrade: websocket", b"Upgrade: h2c\r\nX: \xff"
        )
        status, headers, body, client = self.request(request)
        self.assertEqual(status, b"HTTP/1.1 400 Bad Request")
        self.assertIn(b"does not name 'websocket'", body)

    def test_wrongVersion(self):
        """
        Another WebSocket version gets 426 with C{Sec-WebSocket-Version: 13}.
        """
        request = upgradeRequest().replace(
            b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8"
        )
        status, headers, body, client = self.request(request)
        self.assertEqual(status, b"HTTP/1.1 426 Upgrade Required")
        self.assertEqual(headers[b"sec-websocket-version"], b"13")

    def test_wrongPath(self):
        """
        Another path gets 404 naming the right one.
        """
        status, headers, body, client = self.request(upgradeRequest(path=b"/ws"))
        self.assertEqual(status, b"HTTP/1.1 404 Not Found")
        self.assertIn(b"/xmpp-websocket", body)

    def test_anyPath(self):
        """
        Without a configured path, any path is served.
        """
        status, headers, body, client = self.request(
            upgradeRequest(path=b"/ws"), path=None
        )
        self.assertEqual(status, b"HTTP/1.1 101 Switching Protocols")

    def test_post(self):
        """
        A POST gets 405 with C{Allow: GET}.
        """
        status, headers, body, client = self.request(
            b"POST /xmpp-websocket HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        )
        self.assertEqual(status, b"HTTP/1.1 405 Method Not Allowed")
        self.assertEqual(headers[b"allow"], b"GET")

    def test_autobahnRefusal(self):
        """
        What Autobahn itself refuses (here a missing key) also gets a body
        explaining it and a standard status line.
        """
        request = b"\r\n".join(
            line
            for line in upgradeRequest().split(b"\r\n")
            if not line.startswith(b"Sec-WebSocket-Key")
        )
        status, headers, body, client = self.request(request)
        self.assertEqual(status, b"HTTP/1.1 400 Bad Request")
        self.assertIn(b"Sec-WebSocket-Key", body)

    def test_oversizedHeaders(self):
        """
        Endless request headers get 431 instead of unbounded buffering.
        """
        client = WebSocketTestClient(self)
        client.protocol.dataReceived(b"GET / HTTP/1.1\r\nX: " + b"a" * 20000)
        status, headers, body = splitResponse(client.transport.value())
        self.assertEqual(status, b"HTTP/1.1 431 Request Header Fields Too Large")

    def test_originRefused(self):
        """
        An Origin outside the allow-list gets 403 before any XMPP happens.
        """
        status, headers, body, client = self.request(
            upgradeRequest(extra=[b"Origin: https://evil.example"]),
            allowedOrigins=["https://chat.example"],
        )
        self.assertEqual(status, b"HTTP/1.1 403 Forbidden")
        self.assertIn(b"origin", body)
        self.assertEqual(client.streamFactory.streams, [])

    def test_originAllowed(self):
        """
        An Origin on the allow-list is accepted, compared without case or a
        trailing slash.
        """
        status, headers, body, client = self.request(
            upgradeRequest(extra=[b"Origin: HTTPS://Chat.example"]),
            allowedOrigins=["https://chat.example/"],
        )
        self.assertEqual(status, b"HTTP/1.1 101 Switching Protocols")
        self.assertEqual(client.connection.origin, "HTTPS://Chat.example")

    def test_refusalLogged(self):
        """
        A refused handshake is logged with its reason.
        """
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.request(upgradeRequest(protocols=None))
        reasons = [e["reason"] for e in events if e.get("code") == 400]
        self.assertEqual(reasons, ["no-xmpp-subprotocol"])


class TrustedProxyTests(unittest.TestCase):
    """
    C{X-Forwarded-For} and C{X-Forwarded-Proto} count only from trusted
    proxies.
    """

    def open(self, peer, trusted, headers):
        client = WebSocketTestClient(self, peer=peer, trustedProxies=trusted)
        client.handshake(upgradeRequest(extra=headers))
        client.send(OPEN)
        return client.xmlStream.transport

    def test_trustedProxy(self):
        """
        Behind a trusted proxy, C{getPeer()} is the client the proxy names
        and C{X-Forwarded-Proto: https} makes the stream secure.
        """
        transport = self.open(
            "127.0.0.1",
            ["127.0.0.0/8"],
            [b"X-Forwarded-For: 198.51.100.4, 127.0.0.2", b"X-Forwarded-Proto: https"],
        )
        self.assertEqual(transport.getPeer(), IPv4Address("TCP", "198.51.100.4", 0))
        self.assertTrue(transport.secure)

    def test_untrustedPeer(self):
        """
        The same headers from an untrusted peer are ignored.
        """
        transport = self.open(
            "203.0.113.9",
            ["127.0.0.0/8"],
            [b"X-Forwarded-For: 198.51.100.4", b"X-Forwarded-Proto: https"],
        )
        self.assertEqual(transport.getPeer().host, "203.0.113.9")
        self.assertFalse(transport.secure)

    def test_plainWebSocketNotSecure(self):
        """
        A stream over plain C{ws:} is not secure.
        """
        transport = self.open("127.0.0.1", [], [])
        self.assertFalse(transport.secure)

    def test_badNetwork(self):
        """
        A trusted proxy that is no address or network is refused at once.
        """
        self.assertRaises(
            ValueError, XMPPWebSocketServerFactory, echoStreamFactory(),
            trustedProxies=["nonsense"],
        )

    def test_spoofedChain(self):
        """
        The client is the rightmost untrusted address, so a spoofed leftmost
        entry is not believed.
        """
        peer, secure = _handshake.resolvePeer(
            IPv4Address("TCP", "10.0.0.1", 1),
            {"x-forwarded-for": "1.2.3.4, 198.51.100.4, 10.0.0.2"},
            _handshake.parseNetworks(["10.0.0.0/8"]),
        )
        self.assertEqual(peer.host, "198.51.100.4")
        self.assertFalse(secure)


class ResourceTests(unittest.TestCase):
    """
    L{XMPPWebSocketResource} in a L{Site}.
    """

    def setUp(self):
        root = Resource()
        self.factory = XMPPWebSocketServerFactory(echoStreamFactory(), path="/x")
        root.putChild(b"xmpp-websocket", XMPPWebSocketResource(self.factory))
        self.treq = StubTreq(root)

    def test_pathFromTree(self):
        """
        The resource tree decides the path, not the factory.
        """
        self.assertIsNone(self.factory.path)

    def test_plainGet(self):
        """
        A plain GET renders the information page as HTML.
        """
        response = self.successResultOf(
            self.treq.get("http://example.com/xmpp-websocket")
        )
        self.assertEqual(response.code, 200)
        body = self.successResultOf(response.content())
        self.assertIn(b"XMPP over WebSocket endpoint", body)
        self.assertIn(
            b"text/html", response.headers.getRawHeaders(b"content-type")[0]
        )

    def test_post(self):
        """
        A POST gets 405.
        """
        response = self.successResultOf(
            self.treq.post("http://example.com/xmpp-websocket", data=b"x")
        )
        self.assertEqual(response.code, 405)
