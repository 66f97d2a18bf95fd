"""
Tests for L{xmppws.discovery} (XEP-0156 host-meta) and L{xmppws.web}
(the resource tree and landing page), through HTTP with L{StubTreq}.
"""

import json
from xml.etree import ElementTree

from treq.testing import StubTreq
from twisted.trial import unittest

from tests.helpers import echoStreamFactory
from tests.servicehelpers import startService
from xmppws._handshake import parseNetworks
from xmppws.discovery import NS_XRD, REL_WEBSOCKET
from xmppws.web import buildRoot
from xmppws.websocket import XMPPWebSocketResource, XMPPWebSocketServerFactory


def _tree(**kwargs):
    kwargs.setdefault("domains", ["example.org"])
    kwargs.setdefault("path", "/xmpp-websocket")
    factory = XMPPWebSocketServerFactory(echoStreamFactory())
    return buildRoot(XMPPWebSocketResource(factory), **kwargs)


class HostMetaTests(unittest.TestCase):
    """
    C{/.well-known/host-meta} and C{/.well-known/host-meta.json}.
    """

    def get(self, url, root=None, headers=None):
        treq = StubTreq(root or _tree())
        response = self.successResultOf(treq.get(url, headers=headers))
        body = self.successResultOf(response.content())
        return response, body

    def links(self, body):
        """
        Parse an XRD document; return its WebSocket links' C{href}s.
        """
        root = ElementTree.fromstring(body)
        self.assertEqual(root.tag, "{%s}XRD" % (NS_XRD,))
        links = root.findall("{%s}Link" % (NS_XRD,))
        self.assertTrue(links)
        for link in links:
            self.assertEqual(link.get("rel"), REL_WEBSOCKET)
        return [link.get("href") for link in links]

    def jsonLinks(self, body):
        document = json.loads(body)
        for link in document["links"]:
            self.assertEqual(link["rel"], REL_WEBSOCKET)
        return [link["href"] for link in document["links"]]

    def test_xrd(self):
        """
        The XRD names the WebSocket URL built from the request, with CORS
        for browsers and the XRD media type.
        """
        response, body = self.get("http://example.org/.well-known/host-meta")
        self.assertEqual(response.code, 200)
        self.assertEqual(self.links(body), ["ws://example.org/xmpp-websocket"])
        self.assertEqual(response.headers.getRawHeaders("access-control-allow-origin"), ["*"])
        self.assertEqual(
            response.headers.getRawHeaders("content-type"),
            ["application/xrd+xml; charset=utf-8"],
        )

    def test_json(self):
        """
        The JSON document names the same URL, with CORS.
        """
        response, body = self.get("http://example.org:8080/.well-known/host-meta.json")
        self.assertEqual(self.jsonLinks(body), ["ws://example.org:8080/xmpp-websocket"])
        self.assertEqual(response.headers.getRawHeaders("access-control-allow-origin"), ["*"])
        self.assertEqual(response.headers.getRawHeaders("content-type"), ["application/json"])

    def test_secure(self):
        """
        A request over TLS gets a C{wss:} URL.
        """
        _, body = self.get("https://example.org/.well-known/host-meta.json")
        self.assertEqual(self.jsonLinks(body), ["wss://example.org/xmpp-websocket"])

    def test_configuredURLs(self):
        """
        Configured public URLs are advertised as they are, whatever the
        request.
        """
        root = _tree(
            publicURLs=["wss://example.org/ws", "wss://backup.example.org/ws"]
        )
        _, body = self.get("http://127.0.0.1:5280/.well-known/host-meta", root)
        self.assertEqual(
            self.links(body), ["wss://example.org/ws", "wss://backup.example.org/ws"]
        )
        _, body = self.get("http://127.0.0.1:5280/.well-known/host-meta.json", root)
        self.assertEqual(
            self.jsonLinks(body), ["wss://example.org/ws", "wss://backup.example.org/ws"]
        )

    def test_trustedProxy(self):
        """
        Behind a trusted proxy, its C{X-Forwarded-Proto} and
        C{X-Forwarded-Host} decide the URL.
        """
        root = _tree(trustedProxies=parseNetworks(["127.0.0.1"]))
        headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "chat.example.org"}
        _, body = self.get("http://127.0.0.1:5280/.well-known/host-meta", root, headers)
        self.assertEqual(self.links(body), ["wss://chat.example.org/xmpp-websocket"])

    def test_untrustedProxy(self):
        """
        Forwarding headers from a peer that is not a trusted proxy are
        ignored.
        """
        root = _tree(trustedProxies=parseNetworks(["10.0.0.0/8"]))
        headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}
        _, body = self.get("http://example.org/.well-known/host-meta", root, headers)
        self.assertEqual(self.links(body), ["ws://example.org/xmpp-websocket"])

    def test_badHost(self):
        """
        A C{Host} header that is no host name is not echoed; the listening
        address is used instead.
        """
        _, body = self.get(
            "http://example.org/.well-known/host-meta",
            headers={"Host": "a\"><script>b"},
        )
        self.assertEqual(self.links(body), ["ws://127.0.0.1/xmpp-websocket"])

    def test_preflight(self):
        """
        A CORS preflight request is answered.
        """
        treq = StubTreq(_tree())
        response = self.successResultOf(
            treq.request("OPTIONS", "http://example.org/.well-known/host-meta.json")
        )
        self.assertEqual(response.code, 204)
        self.assertEqual(response.headers.getRawHeaders("access-control-allow-origin"), ["*"])
        self.assertIn(b"GET", response.headers.getRawHeaders(b"access-control-allow-methods")[0])


class TreeTests(unittest.TestCase):
    """
    The resource tree of a C{--listen} port.
    """

    def get(self, root, url):
        treq = StubTreq(root)
        response = self.successResultOf(treq.get(url))
        return response, self.successResultOf(response.content())

    def test_landingPage(self):
        """
        C{/} says what is served: the domains, the WebSocket URL, the TCP
        port, and where discovery lives.
        """
        root = _tree(domains=["example.org", "example.net"], c2sPorts=lambda: [5222])
        response, body = self.get(root, "http://example.org/")
        self.assertEqual(response.code, 200)
        self.assertIn(b"text/html", response.headers.getRawHeaders(b"content-type")[0])
        for expected in (
            b"example.org",
            b"example.net",
            b"ws://example.org/xmpp-websocket",
            b"/.well-known/host-meta",
            b"port 5222",
            b"operator",
        ):
            self.assertIn(expected, body)

    def test_landingPageRegistration(self):
        """
        With registration open, the page says accounts can be made from a
        client.
        """
        _, body = self.get(_tree(registration=True), "http://example.org/")
        self.assertIn(b"can create an account", body)

    def test_unknownPath(self):
        """
        Other paths are not found.
        """
        response, _ = self.get(_tree(), "http://example.org/nothing-here")
        self.assertEqual(response.code, 404)

    def test_nestedPath(self):
        """
        The WebSocket endpoint may sit under a nested path; a plain GET
        there gets the endpoint's information page.
        """
        root = _tree(path="/chat/xmpp-websocket")
        response, body = self.get(root, "http://example.org/chat/xmpp-websocket")
        self.assertEqual(response.code, 200)
        self.assertIn(b"XMPP over WebSocket endpoint", body)
        _, body = self.get(root, "http://example.org/.well-known/host-meta.json")
        self.assertIn(b"ws://example.org/chat/xmpp-websocket", body)

    def test_serviceSite(self):
        """
        The service's site serves the same documents, naming its domains.
        """
        service = startService(self, domains=["example.org"])
        [site] = service.factories("web")
        response, body = self.get(site.resource, "http://example.org/.well-known/host-meta.json")
        self.assertEqual(json.loads(body)["links"][0]["href"], "ws://example.org/xmpp-websocket")
        _, body = self.get(site.resource, "http://example.org/")
        self.assertIn(b"XMPP service for example.org", body)
        self.assertIn(b"port 5222", body)
