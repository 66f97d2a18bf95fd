"""
Tests for L{xmppws.chatpage} (the web chat page) and its place in the
resource tree and on the landing page, through HTTP with L{StubTreq}.
"""

import json
import re

from treq.testing import StubTreq
from twisted.python.filepath import FilePath
from twisted.trial import unittest
from twisted.web.resource import getChildForRequest
from twisted.web.static import File
from twisted.web.test.requesthelper import DummyRequest

from tests.helpers import echoStreamFactory
from tests.servicehelpers import startService
from xmppws._handshake import parseNetworks
from xmppws.chatpage import ChatPage, checkConverseDir
from xmppws.web import buildRoot
from xmppws.websocket import XMPPWebSocketResource, XMPPWebSocketServerFactory


def converseDir(testCase):
    """
    A directory standing for Converse.js's dist files.
    """
    directory = FilePath(testCase.mktemp())
    directory.makedirs()
    directory.child("converse.min.js").setContent(b"export default 1;")
    directory.child("converse.min.css").setContent(b"body {}")
    directory.child("emoji.json").setContent(b"{}")
    return directory


def tree(chat, path="/xmpp-websocket", **kwargs):
    factory = XMPPWebSocketServerFactory(echoStreamFactory())
    return buildRoot(
        XMPPWebSocketResource(factory), path, ["example.org"], chat=chat, **kwargs
    )


class ChatPageTests(unittest.TestCase):
    """
    The page runs Converse.js with this server's settings.
    """

    def get(self, root, url, headers=None):
        treq = StubTreq(root)
        d = treq.get(url, headers=headers)
        treq.flush()
        response = self.successResultOf(d)
        content = response.content()
        treq.flush()
        return response, self.successResultOf(content)

    def settings(self, body):
        found = re.search(rb"converse\.initialize\((.*)\);</script>", body)
        self.assertIsNotNone(found, body)
        return json.loads(found.group(1))

    def page(self, **kwargs):
        kwargs.setdefault("mucDomain", "conference.example.org")
        return ChatPage("example.org", "/xmpp-websocket", **kwargs)

    def test_settings(self):
        """
        Converse.js gets the WebSocket URL built from the request, the
        domain to log in to and the group chat service.
        """
        root = tree(("/chat", self.page(converseDir=converseDir(self).path)))
        response, body = self.get(root, "http://chat.example.org:8080/chat")
        self.assertEqual(response.code, 200)
        settings = self.settings(body)
        self.assertEqual(settings["websocket_url"], "ws://chat.example.org:8080/xmpp-websocket")
        self.assertEqual(settings["default_domain"], "example.org")
        self.assertEqual(settings["muc_domain"], "conference.example.org")
        self.assertEqual(settings["assets_path"], "/chat/dist/")
        self.assertFalse(settings["discover_connection_methods"])
        self.assertIn(b"<script type='module' src='/chat/dist/converse.min.js'>", body)
        self.assertIn(b"href='/chat/dist/converse.min.css'", body)

    def test_trailingSlash(self):
        """
        C{/chat/} is the same page.
        """
        root = tree(("/chat", self.page(converseDir=converseDir(self).path)))
        _, body = self.get(root, "http://example.org/chat/")
        self.assertEqual(self.settings(body)["assets_path"], "/chat/dist/")

    def test_publicURL(self):
        """
        A configured public URL is used instead of one built from the
        request.
        """
        page = self.page(
            converseDir=converseDir(self).path, publicURLs=["wss://example.org/ws"]
        )
        _, body = self.get(tree(("/chat", page)), "http://internal/chat")
        self.assertEqual(self.settings(body)["websocket_url"], "wss://example.org/ws")

    def test_trustedProxy(self):
        """
        Behind a trusted TLS proxy, the URL is C{wss://} at the forwarded
        host.
        """
        page = self.page(
            converseDir=converseDir(self).path, trustedProxies=parseNetworks(["127.0.0.0/8"])
        )
        _, body = self.get(
            tree(("/chat", page)),
            "http://127.0.0.1/chat",
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "chat.example.org"},
        )
        self.assertEqual(
            self.settings(body)["websocket_url"], "wss://chat.example.org/xmpp-websocket"
        )

    def test_distFiles(self):
        """
        The Converse.js files are served from the directory under
        C{dist/}; a missing one and the directory itself are not found.
        """
        dist = converseDir(self)
        root = tree(("/chat", self.page(converseDir=dist.path)))
        # A static file streams through a producer, which StubTreq does
        # not drive: check which resource serves it.
        request = DummyRequest([b"chat", b"dist", b"converse.min.js"])
        found = getChildForRequest(root, request)
        self.assertIsInstance(found, File)
        self.assertEqual(found.path, dist.child("converse.min.js").path)
        response, _ = self.get(root, "http://example.org/chat/dist/missing.js")
        self.assertEqual(response.code, 404)
        response, _ = self.get(root, "http://example.org/chat/dist/")
        self.assertEqual(response.code, 404)
        response, _ = self.get(root, "http://example.org/chat/other")
        self.assertEqual(response.code, 404)

    def test_url(self):
        """
        With a URL, the page loads Converse.js from there.
        """
        page = self.page(converseURL="https://cdn.example.net/converse/14.0.0/dist")
        _, body = self.get(tree(("/chat", page)), "http://example.org/chat")
        self.assertEqual(
            self.settings(body)["assets_path"], "https://cdn.example.net/converse/14.0.0/dist/"
        )
        self.assertIn(b"src='https://cdn.example.net/converse/14.0.0/dist/converse.min.js'", body)

    def test_unconfigured(self):
        """
        Without Converse.js, the page says what to set, with a 503.
        """
        response, body = self.get(tree(("/chat", self.page())), "http://example.org/chat")
        self.assertEqual(response.code, 503)
        self.assertIn(b"--chat-converse-dir", body)
        self.assertIn(b"--chat-converse-url", body)
        self.assertNotIn(b"converse.initialize", body)

    def test_headers(self):
        """
        The page may not be framed, names no referrer, and loads images and
        media from here only (or Converse.js's origin).
        """
        response, body = self.get(
            tree(("/chat", self.page(converseDir=converseDir(self).path))),
            "http://example.org/chat",
        )
        self.assertEqual(
            response.headers.getRawHeaders(b"content-security-policy"),
            [b"frame-ancestors 'none'; img-src 'self' data: blob:; media-src 'self' data: blob:"],
        )
        self.assertEqual(response.headers.getRawHeaders(b"referrer-policy"), [b"no-referrer"])
        self.assertIn(b"customElements.define('converse-footer'", body)
        page = self.page(converseURL="https://cdn.example.net/dist/")
        response, _ = self.get(tree(("/chat", page)), "http://example.org/chat")
        [policy] = response.headers.getRawHeaders(b"content-security-policy")
        self.assertIn(b"img-src 'self' data: blob: https://cdn.example.net;", policy)

    def test_scriptSafe(self):
        """
        Settings are written so that they cannot end the script element.
        """
        page = self.page(converseURL="https://cdn.example.net/</script><b>")
        _, body = self.get(tree(("/chat", page)), "http://example.org/chat")
        script = body.split(b"converse.initialize(")[1]
        self.assertNotIn(b"</script><b>", script.split(b");</script>")[0])

    def test_webSocketUnderChat(self):
        """
        The WebSocket endpoint may lie under the chat page's path.
        """
        root = tree(("/chat", self.page()), path="/chat/xmpp-websocket")
        response, body = self.get(root, "http://example.org/chat/xmpp-websocket")
        self.assertIn(b"XMPP over WebSocket endpoint", body)
        response, _ = self.get(root, "http://example.org/chat")
        self.assertEqual(response.code, 503)

    def test_landingPageLink(self):
        """
        The landing page links to the chat page and names the group chat
        service.
        """
        root = tree(("/chat", self.page()), mucDomain="conference.example.org")
        _, body = self.get(root, "http://example.org/")
        self.assertIn(b"href='/chat'", body)
        self.assertIn(b"conference.example.org", body)

    def test_noChat(self):
        """
        Without a chat page, the landing page does not mention one.
        """
        _, body = self.get(tree(None), "http://example.org/")
        self.assertNotIn(b"web chat", body)

    def test_checkConverseDir(self):
        """
        L{checkConverseDir} accepts a directory with Converse.js's files and
        says what is wrong with others.
        """
        self.assertIsNone(checkConverseDir(converseDir(self).path))
        self.assertIn("not a directory", checkConverseDir(self.mktemp()))
        empty = FilePath(self.mktemp())
        empty.makedirs()
        self.assertIn("converse.min.js", checkConverseDir(empty.path))


class ServiceChatTests(unittest.TestCase):
    """
    The service serves the chat page on its C{--listen} ports.
    """

    def test_served(self):
        """
        C{/chat} on a service listener is the chat page, naming the
        service's group chat domain.
        """
        service = startService(self, converseDir=converseDir(self).path)
        [site] = service.factories("web")
        response = self.successResultOf(StubTreq(site.resource).get("http://localhost/chat"))
        body = self.successResultOf(response.content())
        self.assertIn(b'"muc_domain": "conference.localhost"', body)

    def test_off(self):
        """
        Without a chat path there is no chat page.
        """
        service = startService(self, chatPath=None)
        [site] = service.factories("web")
        response = self.successResultOf(StubTreq(site.resource).get("http://localhost/chat"))
        self.assertEqual(response.code, 404)
