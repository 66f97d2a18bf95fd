# -*- test-case-name: tests.test_testing -*-
"""
Test your own XMPP code over WebSocket without sockets, as treq's
C{StubTreq} does for HTTP.

L{MemoryWebSocketClient} drives a server in memory as a browser client
would: it upgrades, sends masked frames and reads the server's frames.
It works with an L{XMPPWebSocketServerFactory
<xmppws.websocket.XMPPWebSocketServerFactory>} around any C{XmlStream}
factory, or with a twisted.web C{Site} serving an
L{XMPPWebSocketResource <xmppws.websocket.XMPPWebSocketResource>}::

    from twisted.internet.task import Clock
    from xmppws.testing import MemoryWebSocketClient, openMessage
    from xmppws.websocket import XMPPWebSocketServerFactory

    clock = Clock()
    factory = XMPPWebSocketServerFactory(myXmlStreamFactory, reactor=clock)
    client = MemoryWebSocketClient(factory)
    client.handshake()
    client.send(openMessage("example.com"))
    [header, features] = client.elements()

Every message the server sends can be checked with L{strictParse}, which
accepts only what RFC 7395 allows in a message: one namespace-well-formed
element, no document type, entity declaration, comment or processing
instruction.
"""

import base64
import os
import struct
from xml.parsers import expat

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.words.xish import domish

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "MemoryWebSocketClient",
    "ProducerTolerantTransport",
    "clientFrame",
    "closeMessage",
    "openMessage",
    "parseFrames",
    "parseMessage",
    "strictParse",
    "upgradeRequest",
]

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 1, 2, 8, 9, 10

NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"


def openMessage(to, version="1.0", lang=None):
    """
    An RFC 7395 C{<open/>} message.

    @param to: the domain the stream is for.
    @rtype: L{bytes}
    """
    element = domish.Element((NS_FRAMING, "open"))
    element["to"] = to
    if version is not None:
        element["version"] = version
    if lang is not None:
        element[("http://www.w3.org/XML/1998/namespace", "lang")] = lang
    return element.toXml().encode("utf-8")


def closeMessage():
    """
    An RFC 7395 C{<close/>} message.

    @rtype: L{bytes}
    """
    return domish.Element((NS_FRAMING, "close")).toXml().encode("utf-8")


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
    A WebSocket upgrade request.

    @param protocols: the C{Sec-WebSocket-Protocol} header, or L{None}.
    @param path: the request path.
    @param extra: more header lines, as L{bytes}.
    @rtype: L{bytes}
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

    @type payload: L{bytes} or L{str}
    @rtype: L{bytes}
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

    @return: a list of C{(opcode, payload)}, and the bytes of an
        incomplete last frame.
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


def _refuse(*args):
    raise ValueError("restricted XML in a message")


def strictParse(data):
    """
    Check one message as RFC 7395 wants it: a standalone
    namespace-well-formed document of one element, without document type,
    entity declarations, comments or processing instructions.

    @return: C{(uri, local, attributes)} of the root element.
    @raise expat.ExpatError: or L{ValueError} if it is not.
    """
    parser = expat.ParserCreate(encoding="UTF-8", namespace_separator=" ")
    root = []
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.CommentHandler = _refuse
    parser.ProcessingInstructionHandler = _refuse
    parser.StartElementHandler = lambda name, attrs: root.append((name, attrs))
    parser.Parse(data, True)
    name, attrs = root[0]
    uri, local = name.split(" ", 1) if " " in name else (None, name)
    return uri, local, attrs


def parseMessage(data):
    """
    Check a message with L{strictParse} and parse it into a tree.

    @rtype: L{domish.Element}
    """
    strictParse(data)
    elements = []
    stream = domish.elementStream()
    stream.DocumentStartEvent = elements.append
    stream.ElementEvent = elements.append
    stream.DocumentEndEvent = lambda: None
    stream.parse(data)
    return elements[0]


class MemoryWebSocketClient:
    """
    A WebSocket client of a server in memory.

    @ivar transport: the server side's transport, a
        L{ProducerTolerantTransport}.
    @ivar response: the head of the HTTP response to the handshake, once
        sent.
    @ivar frames: every frame received so far, C{(opcode, payload)}.
    """

    def __init__(self, server, peer=None, host=None):
        """
        @param server: an L{xmppws.websocket.XMPPWebSocketServerFactory},
            or a twisted.web C{Site} serving an
            L{xmppws.websocket.XMPPWebSocketResource}.
        @param peer: the client's address (default C{192.0.2.7:54321}).
        @param host: the server's address (default C{127.0.0.1:5280}).
        """
        self.transport = ProducerTolerantTransport(
            peerAddress=peer or IPv4Address("TCP", "192.0.2.7", 54321),
            hostAddress=host or IPv4Address("TCP", "127.0.0.1", 5280),
        )
        self._first = server.buildProtocol(self.transport.getPeer())
        self.transport.protocol = self._first
        self._first.makeConnection(self.transport)
        self.frames = []
        self.response = None
        self._rest = b""

    @property
    def protocol(self):
        """
        The server's protocol: the WebSocket protocol, also after a
        twisted.web resource handed the connection over to it.
        """
        return self.transport.protocol

    @property
    def connection(self):
        """
        The connection the WebSocket carries (an
        L{xmppws.connection.XmlStreamConnection}), once open.
        """
        return getattr(self.protocol, "connection", None)

    @property
    def xmlStream(self):
        """
        The C{XmlStream} the connection hosts, or L{None}.
        """
        connection = self.connection
        return getattr(connection, "xmlStream", None)

    def handshake(self, request=None):
        """
        Send an upgrade request.

        @param request: the request; by default L{upgradeRequest}().
        @return: the head of the response.
        """
        self._first.dataReceived(request or upgradeRequest())
        data = self.transport.value()
        self.transport.clear()
        self.response, _, self._rest = data.partition(b"\r\n\r\n")
        return self.response

    def send(self, payload, opcode=OP_TEXT, fin=True):
        """
        Send one masked frame.
        """
        self.protocol.dataReceived(clientFrame(payload, opcode, fin))

    def received(self):
        """
        The frames the server sent since the last call.
        """
        frames, self._rest = parseFrames(self._rest + self.transport.value())
        self.transport.clear()
        self.frames.extend(frames)
        return frames

    def messages(self):
        """
        The text messages the server sent since the last call.

        @rtype: L{list} of L{bytes}
        """
        return [payload for opcode, payload in self.received() if opcode == OP_TEXT]

    def elements(self):
        """
        The text messages the server sent since the last call, each
        checked with L{strictParse} and parsed.

        @rtype: L{list} of L{domish.Element}
        """
        return [parseMessage(message) for message in self.messages()]

    def closeCode(self):
        """
        The status code of the close frame received, if any.
        """
        for opcode, payload in self.frames:
            if opcode == OP_CLOSE and len(payload) >= 2:
                return int.from_bytes(payload[:2], "big")
        return None

    def open(self, header):
        """
        Handshake and open the stream.

        @param header: the first message, such as L{openMessage}().
        @return: the messages in reply.
        """
        self.handshake()
        self.send(header)
        return self.messages()

    def closeWebSocket(self, code=1000):
        """
        Send a close frame, as a client answering the server's.
        """
        self.send(code.to_bytes(2, "big"), OP_CLOSE)

    def lose(self, reason=ConnectionDone):
        """
        The TCP connection ends: after the server closed it, or abruptly.
        """
        self.protocol.connectionLost(Failure(reason()))
