# -*- test-case-name: tests.test_endpoints -*-
"""
Endpoints that carry XMPP streams over WebSocket, so an existing Twisted
XMPP deployment moves to WebSocket by changing one endpoint string.

Server side, wrapping any server endpoint::

    serverFromString(reactor,
        "xmppws:tcp\\:5280\\:interface=127.0.0.1:path=/xmpp-websocket")

Client side, from a WebSocket URL::

    clientFromString(reactor,
        "xmppws:url=ws\\://127.0.0.1\\:5280/xmpp-websocket")

The string parsers are registered as Twisted plugins in
C{twisted/plugins/xmppws_endpoints.py}.
"""

from urllib.parse import urlsplit

from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.internet.interfaces import IStreamClientEndpoint, IStreamServerEndpoint
from zope.interface import implementer

from xmppws.client import FRAMINGS, XMPPWebSocketClientFactory
from xmppws.websocket import XMPPWebSocketServerFactory

__all__ = [
    "XMPPWebSocketClientEndpoint",
    "XMPPWebSocketServerEndpoint",
    "parseClient",
    "parseServer",
]

_INTEGER_OPTIONS = ("maxMessageSize", "pingInterval", "pingTimeout", "openTimeout")
# Per-connection policies (xmppws.connection.ConnectionFactory).
_POLICY_OPTIONS = {
    "idleTimeout": float,
    "stanzaRate": float,
    "stanzaBurst": int,
    "byteRate": int,
    "byteBurst": int,
    "stallTimeout": float,
}


@implementer(IStreamServerEndpoint)
class XMPPWebSocketServerEndpoint:
    """
    Listen on an inner endpoint; every connection is a WebSocket carrying
    a stream built by the factory passed to L{listen}.

    @ivar inner: the endpoint the WebSocket server listens on.
    @ivar options: keyword arguments for L{XMPPWebSocketServerFactory}.
    """

    def __init__(self, reactor, inner, **options):
        self._reactor = reactor
        self.inner = inner
        self.options = options

    def listen(self, protocolFactory):
        """
        @param protocolFactory: an C{XmlStream} factory, such as an
            C{XmlStreamServerFactory}.
        @return: a L{Deferred} firing with the listening port.
        """
        factory = XMPPWebSocketServerFactory(
            protocolFactory, reactor=self._reactor, **self.options
        )
        return self.inner.listen(factory)


@implementer(IStreamClientEndpoint)
class XMPPWebSocketClientEndpoint:
    """
    Connect an C{XmlStream} to an XMPP WebSocket server.

    The L{Deferred} from L{connect} fires with the C{XmlStream} once the
    WebSocket is open, as a TCP endpoint fires once connected.
    """

    def __init__(self, reactor, inner, url, **options):
        self._reactor = reactor
        self.inner = inner
        self.url = url
        self.options = options

    def connect(self, protocolFactory):
        factory = XMPPWebSocketClientFactory(
            protocolFactory, self.url, reactor=self._reactor, **self.options
        )
        connecting = self.inner.connect(factory)
        connecting.addErrback(lambda failure: factory._failed(failure) or failure)
        return connecting.addCallback(lambda _: factory.deferred)


def _options(kwargs, allowed):
    options = {}
    for key, value in kwargs.items():
        if key not in allowed:
            raise ValueError("unknown xmppws endpoint option %r" % (key,))
        if key in _INTEGER_OPTIONS:
            value = int(value)
        elif key in _POLICY_OPTIONS:
            value = _POLICY_OPTIONS[key](value)
            if value < 0:
                raise ValueError("%s must not be negative" % (key,))
        elif key in ("origin", "trustedProxy"):
            value = [v for v in value.split(",") if v]
        options[key] = value
    if "origin" in options:
        options["allowedOrigins"] = options.pop("origin")
    if "trustedProxy" in options:
        options["trustedProxies"] = options.pop("trustedProxy")
    if "namespace" in options:
        options["contentNamespace"] = options.pop("namespace")
    return options


def _innerDescription(args, kwargs):
    """
    Recover the inner endpoint description.

    Twisted splits C{xmppws:tcp\\:5280\\:interface=127.0.0.1} at the
    unescaped C{=}, so the inner description arrives either as the only
    positional argument or as a keyword whose name holds a C{:}.
    """
    inner = list(args)
    for key in [key for key in kwargs if ":" in key]:
        inner.append(key + "=" + kwargs.pop(key))
    if len(inner) != 1:
        raise ValueError(
            "an xmppws server endpoint wraps exactly one endpoint, such as "
            "xmppws:tcp\\:5280\\:interface\\=127.0.0.1"
        )
    return inner[0]


def parseServer(reactor, *args, **kwargs):
    """
    Parse C{xmppws:INNER[:path=P][:origin=O1,O2][:trustedProxy=N][:namespace=NS]
    [:maxMessageSize=N][:pingInterval=S][:pingTimeout=S][:openTimeout=S]
    [:idleTimeout=S][:stanzaRate=N][:stanzaBurst=N][:byteRate=N][:byteBurst=N]
    [:stallTimeout=S]}.

    Without C{namespace}, streams take the one their authenticator
    declares (C{jabber:component:accept} for a component server).  The
    rates and the idle timeout are off unless given; C{stallTimeout}
    defaults to 60 seconds.

    C{INNER} is an escaped server endpoint description, such as
    C{tcp\\:5280\\:interface=127.0.0.1} or C{ssl\\:5281\\:privateKey=...}.
    C{path} defaults to C{/xmpp-websocket}; C{path=*} serves any path.

    @rtype: L{XMPPWebSocketServerEndpoint}
    """
    inner = _innerDescription(args, kwargs)
    options = _options(
        kwargs,
        ("path", "origin", "trustedProxy", "namespace")
        + _INTEGER_OPTIONS
        + tuple(_POLICY_OPTIONS),
    )
    options.setdefault("path", "/xmpp-websocket")
    if options["path"] in ("", "*"):
        options["path"] = None
    return XMPPWebSocketServerEndpoint(
        reactor, serverFromString(reactor, inner), **options
    )


def parseClient(reactor, url, endpoint=None, **kwargs):
    """
    Parse C{xmppws:url=URL[:endpoint=INNER][:framing=legacy][:origin=O]
    [:namespace=NS][:trustRoots=CA-DIRECTORY]}.

    Without C{endpoint}, a C{ws:} URL connects over TCP and a C{wss:} URL
    over TLS to the URL's host and port, checking the server's certificate
    for that host name against the system's CAs, or against the C{*.pem}
    certificates in the C{trustRoots} directory.

    @rtype: L{XMPPWebSocketClientEndpoint}
    """
    trustRoots = kwargs.pop("trustRoots", None)
    options = {}
    for key, value in kwargs.items():
        if key == "framing":
            if value not in FRAMINGS:
                raise ValueError("framing must be one of %s" % (", ".join(FRAMINGS),))
            options["framing"] = value
        elif key == "origin":
            options["origin"] = value
        elif key == "namespace":
            options["contentNamespace"] = value
        elif key in ("maxMessageSize", "pingInterval", "pingTimeout"):
            options[key] = int(value)
        else:
            raise ValueError("unknown xmppws endpoint option %r" % (key,))
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError("url must be a ws:// or wss:// URL")
    if endpoint is None:
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        host = _escape(parts.hostname)
        if parts.scheme == "wss":
            endpoint = "tls:%s:%d" % (host, port)
            if trustRoots:
                endpoint += ":trustRoots=" + _escape(trustRoots)
        else:
            endpoint = "tcp:%s:%d" % (host, port)
    return XMPPWebSocketClientEndpoint(
        reactor, clientFromString(reactor, endpoint), url, **options
    )


def _escape(value):
    return value.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")
