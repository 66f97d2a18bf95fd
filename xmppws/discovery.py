# -*- test-case-name: tests.test_discovery -*-
"""
XEP-0156 discovery: C{/.well-known/host-meta} (XRD) and
C{/.well-known/host-meta.json} (JRD) name the WebSocket endpoint with the
link relation C{urn:xmpp:alt-connections:websocket}, so that a browser
client given only a JID finds where to connect.

The URL is the one the operator configured (C{--public-url}, for
deployments behind a proxy), or else built from the request: C{wss} on
a TLS listener or behind a trusted proxy that says the client used
HTTPS, the request's C{Host}, and the WebSocket path.
"""

import ipaddress
import json
import re
from xml.sax.saxutils import quoteattr

from twisted.web.resource import Resource

__all__ = [
    "HostMeta",
    "HostMetaJSON",
    "NS_XRD",
    "REL_WEBSOCKET",
    "webSocketURLs",
]

NS_XRD = "http://docs.oasis-open.org/ns/xri/xrd-1.0"
REL_WEBSOCKET = "urn:xmpp:alt-connections:websocket"

_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$")


def _header(request, name):
    value = request.getHeader(name)
    return value.strip() if value else None


def _fromTrustedProxy(request, trustedProxies):
    if not trustedProxies:
        return False
    host = getattr(request.getClientAddress(), "host", None)
    try:
        address = ipaddress.ip_address(host)
    except (TypeError, ValueError):
        return False
    return any(address in network for network in trustedProxies)


def webSocketURLs(request, publicURLs, path, trustedProxies=()):
    """
    The WebSocket URLs to advertise in answer to C{request}.

    @param publicURLs: the configured URLs; when there are any, they are
        the answer.
    @param path: the WebSocket path on this listener.
    @param trustedProxies: networks from
        L{xmppws._handshake.parseNetworks} whose C{X-Forwarded-Proto} and
        C{X-Forwarded-Host} are believed.
    @rtype: L{list} of L{str}
    """
    if publicURLs:
        return list(publicURLs)
    secure = request.isSecure()
    host = _header(request, "host")
    if _fromTrustedProxy(request, trustedProxies):
        proto = _header(request, "x-forwarded-proto")
        if proto:
            secure = proto.split(",")[0].strip().lower() in ("https", "wss")
        forwardedHost = _header(request, "x-forwarded-host")
        if forwardedHost:
            host = forwardedHost.split(",")[0].strip()
    if not host or not _HOST.match(host):
        address = request.getHost()
        host = getattr(address, "host", "localhost")
        if ":" in host:
            host = "[%s]" % (host,)
        port = getattr(address, "port", None)
        if port and port != (443 if secure else 80):
            host += ":%d" % (port,)
    return ["%s://%s%s" % ("wss" if secure else "ws", host.lower(), path)]


class _DiscoveryResource(Resource):
    """
    Shared by both documents: CORS, caching, the URLs.
    """

    isLeaf = True
    contentType = None

    def __init__(self, path, publicURLs=(), trustedProxies=()):
        """
        @param path: the WebSocket path.
        @param publicURLs: URLs to advertise instead of one built from the
            request.
        @param trustedProxies: see L{webSocketURLs}.
        """
        Resource.__init__(self)
        self.path = path
        self.publicURLs = list(publicURLs)
        self.trustedProxies = tuple(trustedProxies)

    def render_GET(self, request):
        request.setHeader(b"content-type", self.contentType)
        request.setHeader(b"access-control-allow-origin", b"*")
        request.setHeader(b"cache-control", b"max-age=300")
        if not self.publicURLs:
            request.setHeader(b"vary", b"Host, X-Forwarded-Proto, X-Forwarded-Host")
        urls = webSocketURLs(request, self.publicURLs, self.path, self.trustedProxies)
        return self.document(urls)

    def render_OPTIONS(self, request):
        request.setResponseCode(204)
        request.setHeader(b"access-control-allow-origin", b"*")
        request.setHeader(b"access-control-allow-methods", b"GET, HEAD, OPTIONS")
        request.setHeader(b"access-control-max-age", b"86400")
        request.setHeader(b"allow", b"GET, HEAD, OPTIONS")
        return b""

    def document(self, urls):
        raise NotImplementedError()


class HostMeta(_DiscoveryResource):
    """
    C{/.well-known/host-meta}: an XRD document (RFC 6415).
    """

    contentType = b"application/xrd+xml; charset=utf-8"

    def document(self, urls):
        """
        @rtype: L{bytes}
        """
        links = "".join(
            "\n  <Link rel=%s href=%s/>" % (quoteattr(REL_WEBSOCKET), quoteattr(url))
            for url in urls
        )
        return (
            "<?xml version='1.0' encoding='utf-8'?>\n"
            "<XRD xmlns=%s>%s\n</XRD>\n" % (quoteattr(NS_XRD), links)
        ).encode("utf-8")


class HostMetaJSON(_DiscoveryResource):
    """
    C{/.well-known/host-meta.json}: the same as JSON (JRD).
    """

    contentType = b"application/json"

    def document(self, urls):
        """
        @rtype: L{bytes}
        """
        return (
            json.dumps(
                {"links": [{"rel": REL_WEBSOCKET, "href": url} for url in urls]},
                indent=2,
            )
            + "\n"
        ).encode("utf-8")
