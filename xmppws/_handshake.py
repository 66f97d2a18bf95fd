# -*- test-case-name: tests.test_handshake -*-
"""
Diagnose WebSocket opening handshakes before Autobahn accepts them, so a
refused request gets a status and a body that say exactly what was wrong
(the usual trouble behind reverse proxies), and never echo client text in
the status line.
"""

import ipaddress
from dataclasses import dataclass, field
from html import escape
from http.client import responses

from autobahn.websocket.protocol import parseHttpHeader
from twisted.internet.address import IPv4Address, IPv6Address

__all__ = [
    "Refusal",
    "diagnose",
    "httpResponse",
    "infoPage",
    "parseNetworks",
    "resolvePeer",
]

PROXY_HINT = (
    "A reverse proxy in front of this server probably dropped it: forward "
    "the Upgrade and Connection headers and speak HTTP/1.1 to the backend "
    "(nginx: proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; "
    'proxy_set_header Connection "upgrade").'
)


@dataclass
class Refusal:
    """
    A handshake answered without opening a WebSocket.

    @ivar code: the HTTP status.
    @ivar body: the explanation sent as the response body.
    @ivar reason: a short name for logs and metrics.
    @ivar headers: extra response headers.
    """

    code: int
    body: str
    reason: str
    headers: list = field(default_factory=list)


def _tokens(value):
    return [token.strip().lower() for token in value.split(",") if token.strip()]


def infoPage(path):
    """
    The page a plain GET on the WebSocket path receives.
    """
    return Refusal(
        200,
        "This is an XMPP over WebSocket endpoint (RFC 7395). Point an XMPP "
        "client at ws://HOST%s (wss:// over TLS); it must offer the 'xmpp' "
        "WebSocket subprotocol." % (path or "/",),
        "info-page",
    )


def diagnose(rawRequest, factory):
    """
    Check the parts of a WebSocket upgrade request that users get wrong.

    @param rawRequest: the request line and headers.
    @type rawRequest: L{bytes}
    @param factory: the server factory; its C{path} and
        C{allowedOrigins} are checked.
    @return: L{None} if Autobahn should go on with the handshake, else the
        L{Refusal} (or info page) to answer with.
    @rtype: L{Refusal} or L{None}
    """
    try:
        requestLine, headers, _ = parseHttpHeader(rawRequest)
    except Exception:
        return Refusal(400, "The HTTP request could not be parsed.", "bad-request")
    parts = requestLine.split()
    if len(parts) != 3:
        return Refusal(400, "The HTTP request line is malformed.", "bad-request")
    method, target = parts[0], parts[1]
    path = target.split("?", 1)[0]
    if factory.path is not None and path != factory.path:
        return Refusal(
            404,
            "No XMPP WebSocket endpoint here; it is at %s." % (factory.path,),
            "wrong-path",
        )
    upgrade = headers.get("upgrade")
    if upgrade is None and "sec-websocket-key" not in headers:
        if method in ("GET", "HEAD"):
            return infoPage(factory.path)
        return Refusal(405, "Only GET opens a WebSocket.", "bad-method",
                       [("Allow", "GET")])
    if method != "GET":
        return Refusal(405, "Only GET opens a WebSocket.", "bad-method",
                       [("Allow", "GET")])
    if upgrade is None:
        return Refusal(
            426,
            "The request has no 'Upgrade: websocket' header. " + PROXY_HINT,
            "no-upgrade-header",
            [("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")],
        )
    if "websocket" not in _tokens(upgrade):
        return Refusal(
            400,
            "The Upgrade header does not name 'websocket'. " + PROXY_HINT,
            "bad-upgrade-header",
        )
    if "upgrade" not in _tokens(headers.get("connection", "")):
        return Refusal(
            400,
            "The Connection header does not include 'Upgrade'. " + PROXY_HINT,
            "no-connection-upgrade",
        )
    if headers.get("sec-websocket-version", "").strip() != "13":
        return Refusal(
            426,
            "Only WebSocket version 13 (RFC 6455) is supported.",
            "bad-websocket-version",
            [("Sec-WebSocket-Version", "13")],
        )
    if "xmpp" not in _tokens(headers.get("sec-websocket-protocol", "")):
        return Refusal(
            400,
            "This endpoint speaks only the 'xmpp' WebSocket subprotocol "
            "(RFC 7395), and the request did not offer it "
            "(Sec-WebSocket-Protocol: xmpp).",
            "no-xmpp-subprotocol",
        )
    if not originAllowed(headers.get("origin"), factory.allowedOrigins):
        return Refusal(
            403,
            "This server does not accept XMPP sessions from the page's "
            "origin. Its operator lists the allowed origins.",
            "origin-refused",
        )
    return None


def originAllowed(origin, allowed):
    """
    @param origin: the request's C{Origin}, or L{None} (not a browser).
    @param allowed: allowed origins (C{scheme://host[:port]}, compared
        case-insensitively), or L{None} for any.
    @rtype: L{bool}
    """
    if allowed is None or origin is None:
        return True
    return origin.strip().lower().rstrip("/") in allowed


def httpResponse(refusal, serverName, head=False):
    """
    Serialize a refusal as a complete HTTP/1.1 response that closes the
    connection.

    @type refusal: L{Refusal}
    @rtype: L{bytes}
    """
    body = (refusal.body + "\n").encode("utf-8")
    lines = [
        "HTTP/1.1 %d %s" % (refusal.code, responses.get(refusal.code, "Error")),
        "Server: %s" % (serverName,),
        "Content-Type: text/plain; charset=utf-8",
        "Content-Length: %d" % (len(body),),
        "Cache-Control: no-store",
        "Connection: close",
    ]
    lines.extend("%s: %s" % header for header in refusal.headers)
    header = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    return header if head else header + body


def htmlPage(refusal):
    """
    The refusal's body as a tiny HTML page, for the twisted.web resource.
    """
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>XMPP over "
        "WebSocket</title></head><body><p>%s</p></body></html>"
        % (escape(refusal.body),)
    ).encode("utf-8")


def parseNetworks(values):
    """
    Parse trusted proxy addresses or networks.

    @param values: strings such as C{'127.0.0.1'} or C{'10.0.0.0/8'}.
    @rtype: L{tuple} of L{ipaddress.IPv4Network} or
        L{ipaddress.IPv6Network}
    @raise ValueError: for anything that is not an address or network.
    """
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values)


def _trusted(host, networks):
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in networks)


def resolvePeer(tcpPeer, headers, networks):
    """
    Find the real client behind trusted proxies.

    C{X-Forwarded-For} and C{X-Forwarded-Proto} count only when the TCP
    peer is a trusted proxy; the client is the rightmost untrusted address
    in C{X-Forwarded-For}.

    @param tcpPeer: the TCP peer's address.
    @param headers: lower-cased request headers.
    @param networks: trusted proxy networks from L{parseNetworks}.
    @return: C{(peer, viaTLSProxy)}.
    """
    host = getattr(tcpPeer, "host", None)
    if not networks or host is None or not _trusted(host, networks):
        return tcpPeer, False
    forwardedProto = _tokens(headers.get("x-forwarded-proto", ""))
    viaTLS = bool(forwardedProto) and forwardedProto[0] in ("https", "wss")
    chain = [a.strip() for a in headers.get("x-forwarded-for", "").split(",") if a.strip()]
    client = None
    for candidate in reversed(chain):
        if not _trusted(candidate, networks):
            client = candidate
            break
    if client is None:
        return tcpPeer, viaTLS
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return tcpPeer, viaTLS
    cls = IPv6Address if address.version == 6 else IPv4Address
    return cls("TCP", str(address), 0), viaTLS
