"""
Tests for L{xmppws.websocket}: the server protocol in memory, for both
framings, every rule and every error path.
"""

import struct

from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.test.testutils import XMLAssertionMixin
from twisted.trial import unittest
from twisted.words.protocols.jabber import error
from twisted.words.xish import domish

from tests.helpers import (
    AUTH,
    CLOSE,
    LEGACY_FOOTER,
    LEGACY_HEADER,
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    OPEN,
    WebSocketTestClient,
    clientFrame,
    strictParse,
)
from xmppws.framing import NS_FRAMING, NS_STREAMS, NS_XMPP_STREAMS
from xmppws.connection import StreamErrorSent

from twisted.internet.testing import EventLoggingObserver

MESSAGE = (
    b"<message xmlns='jabber:client' to='juliet@example.com' "
    b"from='romeo@example.net/orchard'><body>Art thou not Romeo?</body></message>"
)
LEGACY_MESSAGE = (
    b"<message to='juliet@example.com' from='romeo@example.net/orchard'>"
    b"<body>Art thou not Romeo?</body></message>"
)


def closeCode(payload):
    """
    The status code of a WebSocket close frame payload.
    """
    return struct.unpack("!H", payload[:2])[0]


class FramingTestsMixin:
    """
    Rules that hold in both framings; subclasses say how to open, what a
    stanza looks like and what closes the stream.
    """

    header = None
    stanza = None
    footer = None

    def setUp(self):
        self.client = WebSocketTestClient(self)

    def assertStrict(self, messages):
        """
        In RFC 7395 framing, every message must be a standalone document.
        """

    def assertStreamError(self, condition, code=1000):
        """
        The server sent a stream error with C{condition}, then the closing
        message, then a WebSocket close with C{code}, and nothing after.
        """
        frames = self.client.received()
        texts = [p for op, p in frames if op == OP_TEXT]
        self.assertStrict(texts)
        errors = [t for t in texts if b"error" in t and NS_XMPP_STREAMS.encode() in t]
        self.assertEqual(len(errors), 1, texts)
        self.assertIn(condition.encode("ascii"), errors[0])
        index = [p for op, p in frames].index(errors[0])
        after = frames[index + 1 :]
        self.assertEqual(after[0][0], OP_TEXT)
        self.assertEqual(after[0][1], self.footer)
        self.assertEqual(after[1][0], OP_CLOSE)
        self.assertEqual(closeCode(after[1][1]), code)
        self.assertEqual(len(after), 2)
        return errors[0]

    def test_openAnswered(self):
        """
        The stream header is answered by the server's header and its
        features, as two messages.
        """
        messages = self.client.open(self.header)
        self.assertEqual(len(messages), 2)
        self.assertStrict(messages)
        self.assertIn(b"features", messages[1])

    def test_stanzaRoundTrip(self):
        """
        A stanza reaches the XmlStream and its reply comes back as one
        message.
        """
        self.client.open(self.header)
        self.client.send(self.stanza)
        [reply] = self.client.messages()
        self.assertStrict([reply])
        self.assertIn(b"to='romeo@example.net/orchard'", reply)
        self.assertIn(b"<body>Art thou not Romeo?</body>", reply)

    def test_binaryFrame(self):
        """
        A binary frame gets C{unsupported-encoding} and close code 1003.
        """
        self.client.open(self.header)
        self.client.send(b"\x00\x01", OP_BINARY)
        self.assertStreamError("unsupported-encoding", 1003)

    def test_twoElements(self):
        """
        Two elements in one message are C{not-well-formed}.
        """
        self.client.open(self.header)
        self.client.send(self.stanza + self.stanza)
        self.assertStreamError("not-well-formed")

    def test_partialElement(self):
        """
        Half an element is C{not-well-formed}.
        """
        self.client.open(self.header)
        self.client.send(self.stanza[:40])
        self.assertStreamError("not-well-formed")

    def test_trailingGarbage(self):
        """
        Text after the element is C{not-well-formed}.
        """
        self.client.open(self.header)
        self.client.send(self.stanza + b"garbage")
        self.assertStreamError("not-well-formed")

    def test_comment(self):
        """
        A comment is C{restricted-xml}.
        """
        self.client.open(self.header)
        self.client.send(self.stanza.replace(b"<body>", b"<body><!-- hi -->"))
        self.assertStreamError("restricted-xml")

    def test_processingInstruction(self):
        """
        A processing instruction is C{restricted-xml}.
        """
        self.client.open(self.header)
        self.client.send(self.stanza.replace(b"<body>", b"<body><?php x ?>"))
        self.assertStreamError("restricted-xml")

    def test_doctype(self):
        """
        A document type declaration is C{restricted-xml}.
        """
        self.client.open(self.header)
        self.client.send(b"<!DOCTYPE message [<!ENTITY x 'y'>]>" + self.stanza)
        self.assertStreamError("restricted-xml")

    def test_undefinedEntity(self):
        """
        A reference to an entity other than the predefined five is
        C{restricted-xml}.
        """
        self.client.open(self.header)
        self.client.send(self.stanza.replace(b"Romeo", b"&nbsp;"))
        self.assertStreamError("restricted-xml")

    def test_predefinedEntities(self):
        """
        The predefined entities and character references pass through.
        """
        self.client.open(self.header)
        self.client.send(self.stanza.replace(b"Romeo", b"&lt;&amp;&#x263A;"))
        [reply] = self.client.messages()
        self.assertIn("&lt;&amp;\u263a".encode("utf-8"), reply)

    def test_oversizedMessage(self):
        """
        A message over the limit is a C{policy-violation}, closed with 1009,
        refused at the frame header before its payload is buffered.
        """
        self.client = WebSocketTestClient(self, maxMessageSize=1024)
        self.assertEqual(self.client.factory.maxFramePayloadSize, 1024)
        self.client.open(self.header)
        frame = b"\x81\xfe" + struct.pack("!H", 2000) + b"\x00\x00\x00\x00"
        self.client.protocol.dataReceived(frame + b"<" * 100)
        self.assertStreamError("policy-violation", 1009)

    def test_oversizedFragmentedMessage(self):
        """
        A message over the limit in several frames is refused at the frame
        that crosses it.
        """
        self.client = WebSocketTestClient(self, maxMessageSize=1024)
        self.client.open(self.header)
        self.client.protocol.dataReceived(clientFrame(b"<" * 1000, OP_TEXT, fin=False))
        self.assertEqual(self.client.received(), [])
        self.client.protocol.dataReceived(clientFrame(b"<" * 100, 0, fin=False))
        self.assertStreamError("policy-violation", 1009)

    def test_largeReply(self):
        """
        The inbound limit does not apply to what the server sends.
        """
        self.client = WebSocketTestClient(self, maxMessageSize=len(self.header))
        self.client.open(self.header)
        big = self.stanza.replace(b"Romeo", b"R" * 5000)
        self.client.xmlStream.send(big.decode("ascii"))
        [reply] = self.client.messages()
        self.assertIn(b"R" * 5000, reply)

    def test_messageAtLimit(self):
        """
        A message of exactly the maximum size is accepted.
        """
        limit = len(self.stanza) + len(self.header)
        self.client = WebSocketTestClient(self, maxMessageSize=limit)
        self.client.open(self.header)
        self.client.send(self.stanza.replace(b"Romeo", b"R" * (len(self.header) + 5)))
        self.assertEqual(len(self.client.messages()), 1)

    def test_whitespaceMessageIgnored(self):
        """
        A whitespace-only message (a misplaced keepalive) is ignored.
        """
        self.client.open(self.header)
        self.client.send(b" \n")
        self.client.send(self.stanza)
        self.assertEqual(len(self.client.messages()), 1)
        self.assertFalse(self.client.transport.disconnecting)

    def test_whitespaceKeepaliveNotSent(self):
        """
        Whitespace the XmlStream writes between elements is never sent.
        """
        self.client.open(self.header)
        self.client.xmlStream.send(" ")
        self.client.xmlStream.send("\n")
        self.assertEqual(self.client.received(), [])

    def test_peerClose(self):
        """
        The peer's closing message is answered in kind, then a clean
        WebSocket close (1000); the XmlStream sees L{ConnectionDone}.
        """
        self.client.open(self.header)
        self.client.send(self.footer)
        frames = self.client.received()
        self.assertEqual(frames[0], (OP_TEXT, self.footer))
        self.assertEqual(frames[1][0], OP_CLOSE)
        self.assertEqual(closeCode(frames[1][1]), 1000)
        self.client.send(b"\x03\xe8", OP_CLOSE)
        self.client.protocol.connectionLost(Failure(ConnectionDone()))
        [reason] = self.client.streamFactory.lost
        self.assertIsInstance(reason, Failure)
        self.assertTrue(reason.check(ConnectionDone))

    def test_peerCloseAndCloseFrameTogether(self):
        """
        When the peer's closing message and its close frame arrive
        together, the server's answer is flushed, not reset away.
        """
        self.client.open(self.header)
        self.client.protocol.dataReceived(
            clientFrame(self.footer) + clientFrame(b"\x03\xe8", OP_CLOSE)
        )
        frames = self.client.received()
        self.assertEqual(frames[0], (OP_TEXT, self.footer))
        self.assertEqual(frames[1][0], OP_CLOSE)
        self.assertTrue(self.client.transport.disconnecting)
        self.assertFalse(self.client.transport.disconnected)

    def test_serverStreamError(self):
        """
        A stream error sent by the XmlStream becomes the error message, the
        closing message and a WebSocket close.
        """
        self.client.open(self.header)
        self.client.xmlStream.sendStreamError(error.StreamError("host-unknown"))
        self.assertStreamError("host-unknown")

    def test_xmlStreamFooter(self):
        """
        The XmlStream's footer becomes the closing message.
        """
        self.client.open(self.header)
        self.client.xmlStream.sendFooter()
        self.assertEqual(self.client.messages(), [self.footer])

    def test_loseConnectionSendsFooter(self):
        """
        When the XmlStream drops the connection without a footer, the
        adapter sends the closing message and closes the WebSocket cleanly.
        """
        self.client.open(self.header)
        self.client.xmlStream.transport.loseConnection()
        frames = self.client.received()
        self.assertEqual(frames[0], (OP_TEXT, self.footer))
        self.assertEqual(closeCode(frames[1][1]), 1000)

    def test_peerDisappears(self):
        """
        A TCP connection lost without any close reaches the XmlStream as
        L{ConnectionLost}, a L{Failure}.
        """
        self.client.open(self.header)
        self.client.protocol.connectionLost(Failure(ConnectionLost()))
        [reason] = self.client.streamFactory.lost
        self.assertIsInstance(reason, Failure)
        self.assertTrue(reason.check(ConnectionLost))
        self.assertFalse(reason.check(StreamErrorSent))

    def test_streamErrorReason(self):
        """
        After a stream error, the XmlStream learns the condition from the
        L{StreamErrorSent} failure.
        """
        self.client.open(self.header)
        self.client.send(b"<a><b></a>")
        self.client.protocol.connectionLost(Failure(ConnectionDone()))
        [reason] = self.client.streamFactory.lost
        self.assertTrue(reason.check(StreamErrorSent))
        self.assertEqual(reason.value.condition, "not-well-formed")

    def test_restart(self):
        """
        After SASL success resets the XmlStream, a new header restarts the
        stream on the same WebSocket.
        """
        self.client.open(self.header)
        self.client.send(AUTH)
        [success] = self.client.messages()
        self.assertIn(b"success", success)
        self.client.send(self.header)
        messages = self.client.messages()
        self.assertEqual(len(messages), 2)
        self.assertStrict(messages)
        self.client.send(self.stanza)
        self.assertEqual(len(self.client.messages()), 1)

    def test_restartWithoutReset(self):
        """
        A second header without a reset in between is C{bad-format}.
        """
        self.client.open(self.header)
        self.client.send(self.header)
        self.assertStreamError("bad-format")

    def test_stanzaWhenRestartExpected(self):
        """
        A stanza where a restart header is due is C{bad-format}.
        """
        self.client.open(self.header)
        self.client.send(AUTH)
        self.client.messages()
        self.client.send(self.stanza)
        self.assertStreamError("bad-format")

    def test_handlerException(self):
        """
        An exception in stream code becomes C{internal-server-error} for
        that session only, and is logged.
        """
        self.client.open(self.header)

        def broken(element):
            raise RuntimeError("broken handler")

        self.client.xmlStream.setDispatchFn(broken)
        self.client.send(self.stanza)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertStreamError("internal-server-error")

    def test_badOutboundXML(self):
        """
        Stream code that writes malformed XML gets the session closed with
        C{internal-server-error} rather than a broken message.
        """
        self.client.open(self.header)
        self.client.xmlStream.send("<a><b></a>")
        self.assertStreamError("internal-server-error")

    def test_writeAfterClose(self):
        """
        Writes after the stream was closed are dropped, not sent.
        """
        self.client.open(self.header)
        xs = self.client.xmlStream
        xs.transport.loseConnection()
        self.client.received()
        xs.send(domish.Element(("jabber:client", "message")))
        self.assertEqual(self.client.received(), [])

    def test_openTimeout(self):
        """
        A WebSocket that never opens the stream gets C{connection-timeout}.
        """
        self.client = WebSocketTestClient(self, pingInterval=0)
        self.client.handshake()
        self.client.clock.advance(29)
        self.assertEqual(self.client.received(), [])
        self.client.clock.advance(1)
        frames = self.client.received()
        texts = [p for op, p in frames if op == OP_TEXT]
        self.assertIn(b"connection-timeout", texts[1])

    def test_autoPing(self):
        """
        The server pings after 25 seconds of silence by default, and closes
        the stream of a peer that does not answer within 10 seconds with
        C{connection-timeout}; the connection is dropped when the closing
        handshake times out too.
        """
        self.client.open(self.header)
        self.client.clock.advance(25)
        frames = self.client.received()
        self.assertEqual([op for op, p in frames], [OP_PING])
        self.client.send(frames[0][1], OP_PONG)
        self.client.clock.advance(25)
        self.assertEqual([op for op, p in self.client.received()], [OP_PING])
        self.client.clock.advance(10)
        self.client.received()
        self.assertTrue(any(b"connection-timeout" in p for op, p in self.client.frames))
        self.assertEqual(self.client.frames[-1][0], OP_CLOSE)
        self.client.clock.advance(5)
        self.assertTrue(
            self.client.transport.disconnecting or self.client.transport.disconnected
        )

    def test_connectionEvents(self):
        """
        Opening, framing and closing a connection are logged with peer,
        origin, framing and close reason.
        """
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.client.open(self.header)
        self.client.send(self.footer)
        self.client.protocol.connectionLost(Failure(ConnectionDone()))
        fields = [e for e in events if "framing" in e and "reason" in e]
        self.assertEqual(len(fields), 1)
        end = fields[0]
        self.assertEqual(end["framing"], self.framingName)
        self.assertEqual(end["peer"], "192.0.2.7:54321")
        self.assertIn("closed", end["reason"])
        opened = [e for e in events if "origin" in e and "secure" in e]
        self.assertEqual(len(opened), 1)


class RFC7395Tests(FramingTestsMixin, XMLAssertionMixin, unittest.TestCase):
    """
    The server protocol in RFC 7395 framing.
    """

    header = OPEN
    stanza = MESSAGE
    footer = CLOSE.replace(b"'", b"'")
    framingName = "rfc7395"

    def setUp(self):
        FramingTestsMixin.setUp(self)
        self.footer = b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"

    def assertStrict(self, messages):
        for message in messages:
            strictParse(message)

    def test_openAttributes(self):
        """
        The server's C{<open/>} carries C{from}, C{id}, C{version} and
        C{xml:lang} in the framing namespace.
        """
        [opened, features] = self.client.open(self.header)
        uri, local, attrs = strictParse(opened)
        self.assertEqual((uri, local), (NS_FRAMING, "open"))
        self.assertEqual(attrs["from"], "example.com")
        self.assertEqual(attrs["version"], "1.0")
        self.assertEqual(attrs["http://www.w3.org/XML/1998/namespace lang"], "en")
        self.assertTrue(attrs["id"])
        self.assertEqual(strictParse(features)[:2], (NS_STREAMS, "features"))

    def test_stanzaNamespaceDeclared(self):
        """
        Stanzas the server sends declare C{jabber:client} themselves.
        """
        self.client.open(self.header)
        self.client.send(self.stanza)
        [reply] = self.client.messages()
        self.assertEqual(strictParse(reply)[:2], ("jabber:client", "message"))

    def test_xmlDeclarationStripped(self):
        """
        A message may start with an XML declaration; it does not reach the
        XmlStream.
        """
        self.client.open(self.header)
        self.client.send(b"<?xml version='1.0' encoding='UTF-8'?>" + self.stanza)
        self.assertEqual(len(self.client.messages()), 1)

    def test_unqualifiedStanza(self):
        """
        A stanza without C{xmlns} takes the stream's content namespace, as
        a lenient server would.
        """
        self.client.open(self.header)
        self.client.send(LEGACY_MESSAGE)
        [reply] = self.client.messages()
        self.assertEqual(strictParse(reply)[:2], ("jabber:client", "message"))

    def test_streamHeaderInRFCMode(self):
        """
        An unclosed stream header on an RFC 7395 stream is
        C{not-well-formed}: RFC 7395 messages are complete documents.
        """
        self.client.open(self.header)
        self.client.send(LEGACY_HEADER)
        self.assertStreamError("not-well-formed")

    def test_closedStreamHeaderInRFCMode(self):
        """
        A complete stream header element on an RFC 7395 stream is
        C{bad-format}.
        """
        self.client.open(self.header)
        self.client.send(LEGACY_HEADER.replace(b"'1.0'>", b"'1.0'/>"))
        self.assertStreamError("bad-format")

    def test_garbageFirst(self):
        """
        Garbage as the first message gets an C{<open/>}, then
        C{not-well-formed}.
        """
        self.client.handshake()
        self.client.send(b"hello")
        error = self.assertStreamError("not-well-formed")
        self.assertEqual(strictParse(error)[:2], (NS_STREAMS, "error"))
        self.assertIn(b"<open", self.client.frames[0][1])

    def test_stanzaFirst(self):
        """
        A stanza as the first message is C{bad-format}.
        """
        self.client.handshake()
        self.client.send(MESSAGE)
        self.assertStreamError("bad-format")

    def test_openWrongNamespace(self):
        """
        An C{<open/>} in the wrong namespace is C{invalid-namespace}.
        """
        self.client.handshake()
        self.client.send(b"<open xmlns='urn:example' to='example.com'/>")
        self.assertStreamError("invalid-namespace")

    def test_unboundPrefix(self):
        """
        A message that is not namespace-well-formed is C{not-well-formed}.
        """
        self.client.open(self.header)
        self.client.send(b"<stream:features/>")
        self.assertStreamError("not-well-formed")

    def test_seeOtherURI(self):
        """
        The server can close with C{see-other-uri}.
        """
        self.client.open(self.header)
        self.client.xmlStream.transport.closeStream("wss://other.example/ws")
        frames = self.client.received()
        uri, local, attrs = strictParse(frames[0][1])
        self.assertEqual(local, "close")
        self.assertEqual(attrs["see-other-uri"], "wss://other.example/ws")
        self.assertEqual(closeCode(frames[1][1]), 1000)

    def test_seeOtherURINoDowngrade(self):
        """
        A secure stream cannot be sent to a C{ws:} URI.
        """
        self.client.open(self.header)
        self.client.protocol.carrier.secure = True
        self.assertRaises(
            ValueError, self.client.connection.closeStream, "ws://other.example/ws"
        )
        self.assertRaises(
            ValueError, self.client.connection.closeStream, "http://other.example/"
        )

    def test_streamErrorDeclaresPrefix(self):
        """
        A stream error is a standalone document declaring the C{stream}
        prefix.
        """
        self.client.open(self.header)
        self.client.xmlStream.sendStreamError(error.StreamError("conflict"))
        [err, close] = self.client.messages()
        self.assertIn(b"xmlns:stream='http://etherx.jabber.org/streams'", err)


class LegacyTests(FramingTestsMixin, unittest.TestCase):
    """
    The server protocol in draft-ietf-xmpp-websocket-00 framing.
    """

    header = LEGACY_HEADER
    stanza = LEGACY_MESSAGE
    footer = LEGACY_FOOTER
    framingName = "legacy"

    def test_headerMessage(self):
        """
        The server answers with its own unclosed stream header, then
        C{<stream:features/>} without namespace declarations.
        """
        [header, features] = self.client.open(self.header)
        self.assertTrue(header.startswith(b"<stream:stream "))
        self.assertFalse(header.endswith(b"/>"))
        self.assertIn(b"xmlns:stream='http://etherx.jabber.org/streams'", header)
        self.assertIn(b"xml:lang='en'", header)
        self.assertEqual(features, b"<stream:features/>")

    def test_stanzasInheritNamespace(self):
        """
        Stanzas the server sends carry no C{xmlns}: they inherit it.
        """
        self.client.open(self.header)
        self.client.send(self.stanza)
        [reply] = self.client.messages()
        self.assertTrue(reply.startswith(b"<message to="))

    def test_headerWithoutDeclaration(self):
        """
        The header may come without an XML declaration.
        """
        messages = self.client.open(LEGACY_HEADER.split(b"?>", 1)[1])
        self.assertEqual(len(messages), 2)

    def test_selfClosedHeader(self):
        """
        A self-closed stream header is accepted, leniently.
        """
        messages = self.client.open(LEGACY_HEADER.replace(b"'1.0'>", b"'1.0'/>"))
        self.assertEqual(len(messages), 2)
        self.client.send(self.stanza)
        self.assertEqual(len(self.client.messages()), 1)

    def test_headerWithStanza(self):
        """
        A header and a stanza in one message are C{bad-format}.
        """
        self.client.handshake()
        self.client.send(LEGACY_HEADER + self.stanza)
        self.assertStreamError("bad-format")

    def test_garbageFirst(self):
        """
        Garbage first gets C{not-well-formed} after a header, in RFC 7395
        framing since no framing was chosen.
        """
        self.client.handshake()
        self.client.send(b"<stream:stream")
        texts = self.client.messages()
        self.assertIn(b"not-well-formed", texts[1])

    def test_streamErrorFromClient(self):
        """
        Prefixed elements may use the header's declarations.
        """
        self.client.open(self.header)
        self.client.send(
            b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
            b"</stream:error>"
        )
        frames = self.client.received()
        self.assertIn(OP_CLOSE, [op for op, p in frames])

    def test_footerInsideMessage(self):
        """
        A footer glued to a stanza is C{not-well-formed}.
        """
        self.client.open(self.header)
        self.client.send(self.stanza + LEGACY_FOOTER)
        self.assertStreamError("not-well-formed")
