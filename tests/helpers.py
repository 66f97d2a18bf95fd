"""
Test helpers: the public in-memory WebSocket client of L{xmppws.testing},
and a small XMPP server stack built from unmodified Twisted Words code.
"""

from twisted.internet.testing import MemoryReactorClock
from twisted.words.protocols.jabber import xmlstream
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish
from zope.interface import implementer

from xmppws.framing import NS_STREAMS
from xmppws.iwebsocket import IFramingReceiver
from xmppws.testing import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    MemoryWebSocketClient,
    ProducerTolerantTransport,
    clientFrame,
    parseFrames,
    strictParse,
    upgradeRequest,
)
from xmppws.websocket import XMPPWebSocketServerFactory

__all__ = [
    "AUTH",
    "CLOSE",
    "EchoAuthenticator",
    "FramingRecorder",
    "LEGACY_FOOTER",
    "LEGACY_HEADER",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "OPEN",
    "ProducerTolerantTransport",
    "WebSocketTestClient",
    "clientFrame",
    "echoStreamFactory",
    "parseFrames",
    "strictParse",
    "upgradeRequest",
]

NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
AUTH = b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>"
OPEN = b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0'/>"
CLOSE = b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"
LEGACY_HEADER = (
    b"<?xml version='1.0'?><stream:stream to='example.com' xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
)
LEGACY_FOOTER = b"</stream:stream>"


class EchoAuthenticator(xmlstream.ListenAuthenticator):
    """
    A receiving authenticator built only from Twisted Words: it answers a
    header with its own header and empty features, and echoes stanzas back
    to the sender with C{to} and C{from} swapped.
    """

    namespace = "jabber:client"
    _observing = False

    def streamStarted(self, rootElement):
        xmlstream.ListenAuthenticator.streamStarted(self, rootElement)
        if rootElement.hasAttribute("to"):
            self.xmlstream.thisEntity = JID(rootElement["to"])
        self.xmlstream.sendHeader()
        features = domish.Element((NS_STREAMS, "features"))
        self.xmlstream.send(features)
        if not self._observing:
            self._observing = True
            self.xmlstream.addObserver("/*", self._echo)

    def _echo(self, element):
        if element.name == "auth":
            # What SASL success does to a stream: reply, then restart.
            self.xmlstream.send(domish.Element((NS_SASL, "success")))
            self.xmlstream.reset()
        elif element.name in ("message", "presence", "iq"):
            to, frm = element.getAttribute("to"), element.getAttribute("from")
            if to:
                element["from"] = to
            if frm:
                element["to"] = frm
            self.xmlstream.send(element)


def echoStreamFactory():
    """
    An L{xmlstream.XmlStreamServerFactory} of echoing streams, recording
    every stream it builds and the reason each one ended.
    """
    factory = xmlstream.XmlStreamServerFactory(EchoAuthenticator)
    factory.streams = []
    factory.lost = []
    original = factory.buildProtocol

    def buildProtocol(addr):
        xs = original(addr)
        factory.streams.append(xs)
        xs.addObserver(xmlstream.xmlstream.STREAM_END_EVENT, factory.lost.append)
        return xs

    factory.buildProtocol = buildProtocol
    return factory


@implementer(IFramingReceiver)
class FramingRecorder:
    """
    Record what a framing reports, as C{(kind, element)}: C{('open',
    root)}, C{('element', element)} or C{('close', None)}.

    @ivar events: everything reported, in order.
    """

    def __init__(self):
        self.events = []

    def streamOpened(self, root):
        self.events.append(("open", root))

    def elementReceived(self, element):
        self.events.append(("element", element))

    def streamClosed(self):
        self.events.append(("close", None))

    def feed(self, framing, data):
        """
        Give C{data} to C{framing}.

        @return: the one event it caused, or C{('empty', None)}.
        @raise AssertionError: if it caused more than one.
        """
        before = len(self.events)
        framing.dataReceived(data)
        caused = self.events[before:]
        assert len(caused) <= 1, caused
        return caused[0] if caused else ("empty", None)


class WebSocketTestClient(MemoryWebSocketClient):
    """
    A L{MemoryWebSocketClient} of an L{XMPPWebSocketServerFactory} around
    an echoing stream factory (or the one given), on a
    L{MemoryReactorClock}.

    @ivar clock: the factory's reactor.
    @ivar factory: the server factory.
    @ivar streamFactory: the C{XmlStream} factory.
    """

    def __init__(
        self, testCase, streamFactory=None, peer="192.0.2.7", clock=None, **factoryOptions
    ):
        from twisted.internet.address import IPv4Address

        self.clock = clock if clock is not None else MemoryReactorClock()
        self.streamFactory = streamFactory or echoStreamFactory()
        self.factory = XMPPWebSocketServerFactory(
            self.streamFactory, reactor=self.clock, **factoryOptions
        )
        MemoryWebSocketClient.__init__(
            self, self.factory, peer=IPv4Address("TCP", peer, 54321)
        )

    def open(self, header=OPEN):
        return MemoryWebSocketClient.open(self, header)

    @property
    def xmlStream(self):
        """
        The XmlStream the server built for this connection.
        """
        return self.streamFactory.streams[-1]
