# -*- test-case-name: tests.test_gateway_relay -*-
"""
Helpers for the gateway's in-memory tests: a scripted upstream XMPP
server reached through an in-memory endpoint (L{twisted.test.iosim}), and
a WebSocket client of the gateway (L{xmppws.testing.MemoryWebSocketClient})
on a clock.

    harness = Harness(self)
    client = harness.client()
    client.open(OPEN)             # the gateway connects upstream
    harness.flush()               # exchanges with the fake server
"""

import re
from xml.parsers import expat

from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.test import iosim
from zope.interface import implementer

from xmppws.gateway.relay import GatewayFactory
from xmppws.gateway.routes import Router, UpstreamRoute
from xmppws.gateway.upstream import UpstreamConnector
from xmppws.testing import MemoryWebSocketClient, openMessage
from xmppws.websocket import XMPPWebSocketServerFactory

__all__ = [
    "DOMAIN",
    "FEATURES",
    "FakeServer",
    "SERVER_HEADER",
    "Harness",
    "MemoryEndpoint",
    "canonical",
    "LOOPBACK",
]

DOMAIN = "example.com"
NS_STREAMS = "http://etherx.jabber.org/streams"
SERVER_HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' from='example.com' "
    b"id='s%d' version='1.0' xml:lang='en'>"
)
FEATURES = (
    b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
    b"<mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism>"
    b"</mechanisms></stream:features>"
)
STARTTLS_FEATURES = (
    b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>"
    b"</starttls></stream:features>"
)
LOOPBACK = IPv4Address("TCP", "127.0.0.1", 40000)
_HEADER = re.compile(rb"<(?:\?xml[^>]*\?>\s*)?<?[\w:]*stream[\s>][^>]*>")


class FakeTLS:
    """
    Client and server TLS options for L{twisted.test.iosim}'s pretend TLS.
    """

    def __init__(self, verify=True):
        self.verify = verify

    def iosimVerify(self, other):
        return self.verify and other.verify


class FakeServer(Protocol):
    """
    A scripted XMPP server: it answers each stream header with its own
    and its features (STARTTLS first when C{starttls}), and keeps what it
    receives after the last header for the test.

    @ivar received: bytes received since the last stream header.
    @ivar headers: the stream headers received.
    @ivar everything: every byte received.
    @ivar lost: the reason of the connection's end, once lost.
    """

    lost = None

    def __init__(self, starttls=False, features=FEATURES, answer=True, header=SERVER_HEADER):
        self.header = header
        self.starttls = starttls
        self.features = features
        self.answer = answer
        self.received = b""
        self.everything = b""
        self.headers = []
        self._count = 0
        self._tls = False

    def dataReceived(self, data):
        self.everything += data
        self.received += data
        while True:
            match = _HEADER.search(self.received)
            if match is None or b"<stream:stream" not in match.group(0):
                break
            self.headers.append(match.group(0))
            self.received = self.received[match.end() :]
            if self.answer:
                self._count += 1
                self.transport.write(self.header % (self._count,))
                if self.starttls and not self._tls:
                    self.transport.write(STARTTLS_FEATURES)
                else:
                    self.transport.write(self.features)
        if self.starttls and not self._tls and b"<starttls" in self.received:
            self.received = b""
            self._tls = True
            self.transport.write(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            self.transport.startTLS(FakeTLS(self.tlsVerify), False)

    tlsVerify = True

    def send(self, data):
        self.transport.write(data)

    def connectionLost(self, reason):
        self.lost = reason


class RecordingTransport(iosim.FakeTransport):
    """
    An L{iosim.FakeTransport} that remembers whether reading is paused and
    whether the connection was aborted.
    """

    paused = False
    aborted = False

    def pauseProducing(self):
        self.paused = True

    def resumeProducing(self):
        self.paused = False

    def abortConnection(self):
        self.aborted = True
        iosim.FakeTransport.abortConnection(self)


@implementer(IStreamClientEndpoint)
class MemoryEndpoint:
    """
    An endpoint to L{FakeServer}s in memory.

    @ivar servers: the servers connected to, in order.
    @ivar pumps: their L{iosim.IOPump}s.
    @ivar mode: C{'connect'}, C{'refuse'} or C{'hang'} (never connects).
    """

    def __init__(self, clock, makeServer=FakeServer, mode="connect"):
        self.clock = clock
        self.makeServer = makeServer
        self.mode = mode
        self.servers = []
        self.pumps = []
        self.hanging = []
        self.host = IPv4Address("TCP", "127.0.0.1", 50000)
        self.peer = IPv4Address("TCP", "127.0.0.1", 5222)

    def connect(self, factory):
        if self.mode == "refuse":
            return defer.fail(ConnectionRefusedError("refused"))
        if self.mode == "hang":
            d = defer.Deferred()
            self.hanging.append(d)
            return d
        server = self.makeServer()
        protocol = factory.buildProtocol(None)
        serverTransport = RecordingTransport(server, isServer=True)
        clientTransport = RecordingTransport(
            protocol, isServer=False, hostAddress=self.host, peerAddress=self.peer
        )
        pump = iosim.connect(
            server, serverTransport, protocol, clientTransport, greet=False, clock=self.clock
        )
        self.servers.append(server)
        self.pumps.append(pump)
        return defer.succeed(protocol)

    def flush(self):
        for pump in self.pumps:
            pump.flush(advanceClock=False)


class _TestRoute(UpstreamRoute):
    """
    A route whose TLS is iosim's pretend TLS.
    """

    def tlsOptions(self):
        return FakeTLS(self.verify)


def memoryRoute(endpoint, domain=DOMAIN, tls=None, verify=True, proxy=None):
    """
    A route to a L{MemoryEndpoint}.
    """
    return _TestRoute(domain, "memory", endpoint=endpoint, tls=tls, verify=verify, proxy=proxy)


class Harness:
    """
    A gateway in memory: its WebSocket factory, one or more in-memory
    upstream endpoints, a clock.

    @ivar clock: the L{Clock}.
    @ivar endpoints: the L{MemoryEndpoint}s of the routes, in order.
    @ivar gateway: the L{GatewayFactory}.
    @ivar factory: the L{XMPPWebSocketServerFactory}.
    """

    def __init__(self, testCase, routes=None, endpoints=None, makeServer=FakeServer,
                 **options):
        """
        @param routes: the routes (default: one route for L{DOMAIN}
            without TLS to an endpoint of C{endpoints}, or a new one).
        @param makeServer: builds the fake server of the default endpoint.
        @param options: more keyword arguments for L{GatewayFactory}.
        """
        import txaio

        self.clock = Clock()
        testCase.patch(txaio.config, "loop", self.clock)
        if routes is None:
            endpoints = endpoints or [MemoryEndpoint(self.clock, makeServer)]
            routes = [memoryRoute(e) for e in endpoints]
        self.endpoints = endpoints or [r.endpoint for r in routes]
        self.routes = routes
        options.setdefault("openTimeout", 30)
        upstreamTimeout = options.pop("upstreamTimeout", 10)
        self.gateway = GatewayFactory(
            Router(routes, options.pop("local", ())),
            self.clock,
            connector=UpstreamConnector(self.clock, timeout=upstreamTimeout,
                                        maxElementSize=options.pop("maxUpstreamElementSize",
                                                                   1024 * 1024)),
            **options,
        )
        self.factory = XMPPWebSocketServerFactory(
            connectionFactory=self.gateway, reactor=self.clock
        )

    def client(self, peer=LOOPBACK, secure=False):
        """
        A WebSocket client of the gateway, handshaken.
        """
        client = MemoryWebSocketClient(self.factory, peer=peer)
        client.handshake()
        if secure:
            client.connection.transport.secure = True
        return client

    @property
    def servers(self):
        return [server for endpoint in self.endpoints for server in endpoint.servers]

    def flush(self, rounds=3):
        """
        Move every byte between the gateway and the fake servers.
        """
        for _ in range(rounds):
            for endpoint in self.endpoints:
                endpoint.flush()

    def opened(self, client, header=None):
        """
        Open the client's stream through the gateway.

        @return: the messages the client got (its C{<open/>} and the
            features).
        """
        client.send(header or openMessage(DOMAIN))
        self.flush()
        return client.messages()


def canonical(element):
    """
    A comparable form of a L{domish.Element} tree: namespaces, names,
    attributes and content, whatever the prefixes.
    """
    children = []
    for child in element.children:
        if isinstance(child, str):
            if children and isinstance(children[-1], str):
                children[-1] += child
            else:
                children.append(child)
        else:
            children.append(canonical(child))
    attributes = sorted(
        ((k if isinstance(k, tuple) else ("", k)), v) for k, v in element.attributes.items()
    )
    return (element.uri or "", element.name, tuple(attributes), tuple(children))


def parseStandalone(data):
    """
    Parse one standalone message into a comparable tree (see
    L{canonical}), refusing what RFC 7395 forbids in a message.
    """
    parser = expat.ParserCreate("UTF-8", " ")
    stack = [("", "#doc", [], [])]

    def refuse(*args):
        raise ValueError("restricted XML")

    def start(name, attrs):
        uri, _, local = name.rpartition(" ")
        attributes = []
        for key, value in attrs.items():
            kuri, _, klocal = key.rpartition(" ")
            attributes.append(((kuri, klocal), value))
        stack.append((uri, local, sorted(attributes), []))

    def end(name):
        uri, local, attributes, children = stack.pop()
        stack[-1][3].append((uri, local, tuple(attributes), tuple(children)))

    def text(data):
        children = stack[-1][3]
        if children and isinstance(children[-1], str):
            children[-1] += data
        else:
            children.append(data)

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.CommentHandler = refuse
    parser.ProcessingInstructionHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.Parse(data, True)
    [root] = [c for c in stack[0][3] if not isinstance(c, str)]
    return root
