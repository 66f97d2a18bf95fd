# -*- test-case-name: tests.test_discovery -*-
"""
The HTTP side of a C{--listen} port: the resource tree holding the
WebSocket endpoint, the XEP-0156 documents and a landing page at C{/}
that says what is served here and how to connect.
"""

from html import escape

from twisted.logger import Logger
from twisted.web.resource import NoResource, Resource
from twisted.web.server import Request, Site

from xmppws.discovery import HostMeta, HostMetaJSON, webSocketURLs

__all__ = ["LandingPage", "XMPPSite", "buildRoot"]


class _BoundedRequest(Request):
    """
    A request whose head (request line and headers, the whole WebSocket
    handshake request) must arrive within the site's C{handshakeTimeout}
    of its first line, or the connection is dropped.
    """

    log = Logger()
    _headTimer = None

    def __init__(self, *args, **kwargs):
        Request.__init__(self, *args, **kwargs)
        timeout = getattr(getattr(self.channel, "site", None), "handshakeTimeout", 0)
        callLater = getattr(self.channel, "callLater", None)
        if timeout and callLater is not None:
            self._headTimer = callLater(timeout, self._headTimedOut, timeout)

    def _cancelHeadTimer(self):
        if self._headTimer is not None:
            if self._headTimer.active():
                self._headTimer.cancel()
            self._headTimer = None

    def gotLength(self, length):
        self._cancelHeadTimer()
        Request.gotLength(self, length)

    def connectionLost(self, reason):
        self._cancelHeadTimer()
        Request.connectionLost(self, reason)

    def _headTimedOut(self, timeout):
        self._headTimer = None
        transport = getattr(self.channel, "transport", None)
        if transport is None:
            return
        self.log.info(
            "{peer} did not send its request within {timeout}s; dropping it",
            peer=transport.getPeer(),
            timeout=timeout,
        )
        transport.abortConnection()


class XMPPSite(Site):
    """
    The L{Site} of a C{--listen} port: a client must send its request
    (the WebSocket handshake) within L{handshakeTimeout} seconds of its
    first line, and stay silent no longer than that between requests.

    @ivar handshakeTimeout: seconds, or 0 for Twisted's defaults.
    """

    requestFactory = _BoundedRequest
    displayTracebacks = False

    def __init__(self, resource, handshakeTimeout=10, reactor=None):
        kwargs = {"timeout": handshakeTimeout} if handshakeTimeout else {}
        Site.__init__(self, resource, reactor=reactor, **kwargs)
        self.handshakeTimeout = handshakeTimeout


class LandingPage(Resource):
    """
    The page at C{/}: the served domains, the WebSocket URL, and how other
    clients connect.

    @ivar domains: the served domains.
    @ivar path: the WebSocket path.
    @ivar publicURLs: the configured public WebSocket URLs, if any.
    @ivar trustedProxies: see L{xmppws.discovery.webSocketURLs}.
    @ivar c2sPorts: returns, when called, the port numbers plain XMPP
        clients may connect to.
    @ivar registration: whether clients may register accounts.
    @ivar chatPath: the path of the web chat page, or L{None}.
    @ivar mucDomain: the group chat service, or L{None}.
    """

    isLeaf = True

    def __init__(
        self,
        domains,
        path,
        publicURLs=(),
        trustedProxies=(),
        c2sPorts=None,
        registration=False,
        chatPath=None,
        mucDomain=None,
    ):
        Resource.__init__(self)
        self.chatPath = chatPath
        self.mucDomain = mucDomain
        self.domains = list(domains)
        self.path = path
        self.publicURLs = list(publicURLs)
        self.trustedProxies = tuple(trustedProxies)
        self.c2sPorts = c2sPorts or (lambda: [])
        self.registration = registration

    def render_GET(self, request):
        if request.postpath and request.postpath != [b""]:
            return NoResource().render(request)
        urls = webSocketURLs(request, self.publicURLs, self.path, self.trustedProxies)
        domains = ", ".join("<strong>%s</strong>" % (escape(d),) for d in self.domains)
        items = "".join("<li><code>%s</code></li>" % (escape(url),) for url in urls)
        parts = [
            "<!DOCTYPE html>",
            "<html lang='en'><head><meta charset='utf-8'>",
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            "<title>XMPP service for %s</title>" % (escape(self.domains[0]),),
            "</head><body>",
            "<h1>XMPP service for %s</h1>" % (escape(self.domains[0]),),
            "<p>This server speaks XMPP (Jabber) for %s.</p>" % (domains,),
        ]
        if self.chatPath:
            parts.append("<h2>Chat in your browser</h2>")
            parts.append(
                "<p><a href='%s'>Open the web chat</a> and log in with your address.</p>"
                % (escape(self.chatPath, quote=True),)
            )
        if self.mucDomain:
            parts.append(
                "<p>Group chat rooms are at <strong>%s</strong>.</p>" % (escape(self.mucDomain),)
            )
        parts += [
            "<h2>Web clients</h2>",
            "<p>Browser clients connect over WebSocket (RFC 7395) to:</p>",
            "<ul>%s</ul>" % (items,),
            "<p>Clients that support XEP-0156 find this address by themselves "
            "from <a href='/.well-known/host-meta'>/.well-known/host-meta</a> "
            "(also <a href='/.well-known/host-meta.json'>as JSON</a>): give "
            "them your address, <code>you@%s</code>.</p>" % (escape(self.domains[0]),),
        ]
        ports = sorted(set(self.c2sPorts()))
        if ports:
            parts.append("<h2>Desktop and mobile clients</h2>")
            parts.append(
                "<p>Other XMPP clients connect to port %s of this host.</p>"
                % (" or ".join(str(p) for p in ports),)
            )
        parts.append("<h2>Accounts</h2>")
        if self.registration:
            parts.append("<p>Your client can create an account here.</p>")
        else:
            parts.append("<p>Accounts are created by the operator of this server.</p>")
        parts.append("</body></html>")
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(
            b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"
        )
        return "\n".join(parts).encode("utf-8")


def _segments(path):
    return [segment.encode("utf-8") for segment in path.strip("/").split("/")]


def _put(root, path, resource):
    """
    Put C{resource} at C{path} under C{root}, making the resources in
    between.
    """
    segments = _segments(path)
    parent = root
    for segment in segments[:-1]:
        child = parent.children.get(segment)
        if child is None:
            child = Resource()
            parent.putChild(segment, child)
        parent = child
    parent.putChild(segments[-1], resource)


def buildRoot(
    webSocket,
    path,
    domains,
    publicURLs=(),
    trustedProxies=(),
    c2sPorts=None,
    registration=False,
    extra=(),
    chat=None,
    mucDomain=None,
):
    """
    The resource tree of a C{--listen} port.

    @param webSocket: the L{xmppws.websocket.XMPPWebSocketResource}.
    @param path: where it is served, such as C{/xmpp-websocket}.
    @param domains: the served domains, for the landing page.
    @param publicURLs: the WebSocket URLs to advertise, if configured.
    @param trustedProxies: networks whose forwarding headers are believed.
    @param c2sPorts: returns the TCP client port numbers, for the landing
        page.
    @param registration: whether in-band registration is open.
    @param extra: more C{(path, resource)} pairs, such as the metrics.
    @param chat: C{(path, resource)} of the web chat page
        (L{xmppws.chatpage.ChatPage}), or L{None}.
    @param mucDomain: the group chat service, for the landing page.
    @rtype: L{Resource}
    """
    root = Resource()
    root.putChild(
        b"",
        LandingPage(
            domains,
            path,
            publicURLs,
            trustedProxies,
            c2sPorts,
            registration,
            chatPath=chat[0] if chat else None,
            mucDomain=mucDomain,
        ),
    )
    wellKnown = Resource()
    wellKnown.putChild(b"host-meta", HostMeta(path, publicURLs, trustedProxies))
    wellKnown.putChild(b"host-meta.json", HostMetaJSON(path, publicURLs, trustedProxies))
    root.putChild(b".well-known", wellKnown)
    if chat:
        # First, so that paths under it (such as /chat/xmpp-websocket)
        # become its children.
        _put(root, chat[0], chat[1])
    _put(root, path, webSocket)
    for extraPath, resource in extra:
        _put(root, extraPath, resource)
    return root
