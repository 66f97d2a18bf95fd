"""
Test helpers: an in-memory WebSocket client, a strict XML oracle and a
small XMPP server stack built from unmodified Twisted Words code.
"""

import base64
import os
import struct
from xml.parsers import expat

import txaio
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.words.protocols.jabber import xmlstream
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish

from xmppws.framing import NS_STREAMS
from xmppws.websocket import XMPPWebSocketServerFactory

NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
AUTH = b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>"
OPEN = b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0'/>"
CLOSE = b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"
LEGACY_HEADER = (
    b"<?xml version='1.0'?><stream:stream to='example.com' xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
)
LEGACY_FOOTER = b"</stream:stream>"

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 1, 2, 8, 9, 10


class ProducerTolerantTransport(StringTransport):
    """
    A L{StringTransport} whose C{unregisterProducer} tolerates having no
    producer, as Autobahn calls it whenever it drops a connection.
    """

    def unregisterProducer(self):
        self.producer = None
        self.streaming = None


def upgradeRequest(protocols=b"xmpp", path=b"/xmpp-websocket", extra=()):
    """
    Build a WebSocket upgrade request.
    """
    lines = [
        b"GET " + path + b" HTTP/1.1",
        b"Host: example.com",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)),
        b"Sec-WebSocket-Version: 13",
    ]
    if protocols is not None:
        lines.append(b"Sec-WebSocket-Protocol: " + protocols)
    lines.extend(extra)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def clientFrame(payload, opcode=OP_TEXT, fin=True):
    """
    Encode one masked client frame.
    """
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    first = (0x80 if fin else 0) | opcode
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", first, 0x80 | length)
    elif length < 65536:
        header = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, length)
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


def parseFrames(data):
    """
    Decode unmasked server frames.

    @return: list of C{(opcode, payload)} and the unparsed rest.
    """
    frames = []
    while len(data) >= 2:
        first, second = data[0], data[1]
        length = second & 0x7F
        offset = 2
        if length == 126:
            if len(data) < 4:
                break
            length = struct.unpack("!H", data[2:4])[0]
            offset = 4
        elif length == 127:
            if len(data) < 10:
                break
            length = struct.unpack("!Q", data[2:10])[0]
            offset = 10
        if len(data) < offset + length:
            break
        frames.append((first & 0x0F, data[offset : offset + length]))
        data = data[offset + length :]
    return frames, data


def strictParse(data):
    """
    Parse one message as a standalone namespace-well-formed document,
    refusing DOCTYPE, entities, comments and processing instructions.

    @return: C{(uri, local)} of the root element.
    @raise expat.ExpatError: or L{ValueError} if the message is not one
        clean element.
    """
    parser = expat.ParserCreate(encoding="UTF-8", namespace_separator=" ")
    root = []

    def refuse(*args):
        raise ValueError("restricted XML in server output")

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.CommentHandler = refuse
    parser.ProcessingInstructionHandler = refuse
    parser.StartElementHandler = lambda name, attrs: root.append((name, attrs))
    parser.Parse(data, True)
    uri, local = root[0][0].split(" ", 1) if " " in root[0][0] else (None, root[0][0])
    return uri, local, root[0][1]


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


class WebSocketTestClient:
    """
    Drive an in-memory server connection as a WebSocket client would.

    @ivar transport: the server's transport.
    @ivar frames: every frame received, C{(opcode, payload)}.
    """

    def __init__(
        self, testCase, streamFactory=None, peer="192.0.2.7", clock=None, **factoryOptions
    ):
        self.clock = clock if clock is not None else MemoryReactorClock()
        testCase.patch(txaio.config, "loop", self.clock)
        self.streamFactory = streamFactory or echoStreamFactory()
        self.factory = XMPPWebSocketServerFactory(
            self.streamFactory, reactor=self.clock, **factoryOptions
        )
        self.protocol = self.factory.buildProtocol(None)
        self.transport = ProducerTolerantTransport(
            peerAddress=IPv4Address("TCP", peer, 54321)
        )
        self.protocol.makeConnection(self.transport)
        self.frames = []
        self._rest = b""
        self.response = None

    def handshake(self, request=None):
        self.protocol.dataReceived(request or upgradeRequest())
        data = self.transport.value()
        head, _, rest = data.partition(b"\r\n\r\n")
        self.response = head
        self.transport.clear()
        self._rest = rest
        return head

    def send(self, payload, opcode=OP_TEXT):
        self.protocol.dataReceived(clientFrame(payload, opcode))

    def received(self):
        """
        Collect the frames the server sent since the last call.
        """
        frames, self._rest = parseFrames(self._rest + self.transport.value())
        self.transport.clear()
        self.frames.extend(frames)
        return frames

    def messages(self):
        """
        The text messages the server sent since the last call.
        """
        return [payload for opcode, payload in self.received() if opcode == OP_TEXT]

    def open(self, header=OPEN):
        """
        Complete the handshake and open the stream.

        @return: the server's messages in reply to the header.
        """
        self.handshake()
        self.send(header)
        return self.messages()

    @property
    def xmlStream(self):
        """
        The XmlStream the server built for this connection.
        """
        return self.streamFactory.streams[-1]
