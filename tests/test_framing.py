"""
Tests for L{xmppws.framing}: checking inbound messages while building
their elements, and building outbound ones, without any network.
"""

from twisted.trial import unittest
from twisted.words.xish import domish
from zope.interface.verify import verifyObject

from tests.helpers import CLOSE, LEGACY_HEADER, OPEN, FramingRecorder, strictParse
from xmppws.framing import (
    NS_FRAMING,
    NS_STREAMS,
    NS_XML,
    FramingError,
    LegacyFraming,
    RFC7395Framing,
    detectFraming,
    streamErrorElement,
)
from xmppws.iwebsocket import IFraming


class DetectTests(unittest.TestCase):
    """
    L{detectFraming} chooses the framing from the first message.
    """

    def test_open(self):
        """
        An C{<open/>} chooses RFC 7395.
        """
        self.assertIs(detectFraming(OPEN), RFC7395Framing)

    def test_streamHeader(self):
        """
        A stream header, with or without XML declaration, chooses draft-00.
        """
        self.assertIs(detectFraming(LEGACY_HEADER), LegacyFraming)
        self.assertIs(detectFraming(LEGACY_HEADER.split(b"?>", 1)[1]), LegacyFraming)

    def test_otherPrefix(self):
        """
        The stream header is recognised by namespace, whatever its prefix.
        """
        header = (
            b"<s:stream xmlns:s='http://etherx.jabber.org/streams' "
            b"xmlns='jabber:client' to='example.com'>"
        )
        recorder = FramingRecorder()
        framing = detectFraming(header)(recorder)
        self.assertIsInstance(framing, LegacyFraming)
        self.assertEqual(recorder.feed(framing, header)[0], "open")
        self.assertEqual(recorder.feed(framing, b"</s:stream>")[0], "close")

    def test_refused(self):
        """
        Anything else is a stream error with a precise condition.
        """
        for data, condition in [
            (b"hello", "not-well-formed"),
            (b"", "not-well-formed"),
            (b"<message xmlns='jabber:client'/>", "bad-format"),
            (b"<open xmlns='urn:example'/>", "invalid-namespace"),
            (b"<stream xmlns='jabber:client'>", "invalid-namespace"),
            (b"<!-- x --><open xmlns='%s'/>" % NS_FRAMING.encode(), "restricted-xml"),
        ]:
            e = self.assertRaises(FramingError, detectFraming, data)
            self.assertEqual(e.condition, condition, data)


class RFC7395FramingTests(unittest.TestCase):
    """
    L{RFC7395Framing}.
    """

    def setUp(self):
        self.recorder = FramingRecorder()
        self.framing = RFC7395Framing(self.recorder)

    def feed(self, data):
        return self.recorder.feed(self.framing, data)

    def test_interface(self):
        """
        The framing provides L{IFraming}.
        """
        self.assertTrue(verifyObject(IFraming, self.framing))

    def test_openAttributes(self):
        """
        C{<open/>} becomes a stream header in the content namespace that
        keeps its attributes.
        """
        kind, root = self.feed(
            b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='a&amp;b' "
            b"version='1.0' xml:lang='fr'/>"
        )
        self.assertEqual(kind, "open")
        self.assertEqual((root.uri, root.name, root.defaultUri), (NS_STREAMS, "stream", "jabber:client"))
        self.assertEqual(
            (root["to"], root["version"], root[(NS_XML, "lang")]), ("a&b", "1.0", "fr")
        )

    def test_openToHeader(self):
        """
        The header serialises as a stream header declaring the content
        namespace, attributes escaped.
        """
        kind, root = self.feed(
            b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='a&amp;b' version='1.0'/>"
        )
        header = root.toXml(closeElement=0).encode("utf-8")
        self.assertTrue(header.startswith(b"<stream:stream "))
        self.assertIn(b"xmlns='jabber:client'", header)
        self.assertIn(b"to='a&amp;b'", header)
        strictParse(header + b"</stream:stream>")

    def test_otherNamespace(self):
        """
        The header takes the framing's content namespace, such as a
        component's.
        """
        framing = RFC7395Framing(self.recorder, "jabber:component:accept")
        kind, root = self.recorder.feed(framing, OPEN)
        self.assertEqual(root.defaultUri, "jabber:component:accept")

    def test_close(self):
        """
        C{<close/>} closes the stream.
        """
        self.feed(OPEN)
        self.assertEqual(self.feed(CLOSE), ("close", None))

    def test_unknownFramingElement(self):
        """
        Other elements in the framing namespace are C{bad-format}.
        """
        e = self.assertRaises(
            FramingError,
            self.feed,
            b"<reopen xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
        )
        self.assertEqual(e.condition, "bad-format")

    def test_elementPayload(self):
        """
        A stanza is built as the element sent, its XML declaration
        dropped.
        """
        self.feed(OPEN)
        stanza = b"<iq xmlns='jabber:client' type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>"
        kind, element = self.feed(b"<?xml version='1.0'?>\n" + stanza)
        self.assertEqual(kind, "element")
        self.assertEqual(element.toXml().encode("utf-8"), stanza)

    def test_undeclaredNamespace(self):
        """
        A stanza without C{xmlns} takes the content namespace.
        """
        self.feed(OPEN)
        kind, element = self.feed(b"<message><body>x</body></message>")
        self.assertEqual((element.uri, element.body.uri), ("jabber:client", "jabber:client"))

    def test_elementBeforeHeader(self):
        """
        A stanza before C{<open/>} is C{bad-format}.
        """
        e = self.assertRaises(FramingError, self.feed, b"<message/>")
        self.assertEqual(e.condition, "bad-format")

    def test_restart(self):
        """
        A second C{<open/>} is C{bad-format} unless the stream restarted.
        """
        self.feed(OPEN)
        e = self.assertRaises(FramingError, self.feed, OPEN)
        self.assertEqual(e.condition, "bad-format")
        framing = RFC7395Framing(self.recorder)
        self.recorder.feed(framing, OPEN)
        framing.restart()
        self.assertEqual(self.recorder.feed(framing, OPEN)[0], "open")

    def test_malformedDeclaration(self):
        """
        An XML declaration anywhere but first is C{not-well-formed}.
        """
        self.feed(OPEN)
        e = self.assertRaises(FramingError, self.feed, b"<a/><?xml version='1.0'?>")
        self.assertEqual(e.condition, "not-well-formed")

    def test_headerMessage(self):
        """
        The server's header becomes C{<open/>} with C{from}, C{id},
        C{version} and a default C{xml:lang}.
        """
        root = domish.Element((NS_STREAMS, "stream"), "jabber:client")
        root["from"] = "example.com"
        root["id"] = "abc"
        root["version"] = "1.0"
        data = self.framing.headerMessage(root, False, "en")
        uri, local, attrs = strictParse(data)
        self.assertEqual((uri, local), (NS_FRAMING, "open"))
        self.assertEqual(attrs[NS_XML + " lang"], "en")
        self.assertEqual(attrs["id"], "abc")

    def test_clientHeaderNoLang(self):
        """
        A client's C{<open/>} gets no C{xml:lang} it did not ask for.
        """
        root = domish.Element((NS_STREAMS, "stream"), "jabber:client")
        root["to"] = "example.com"
        data = self.framing.headerMessage(root, True, "en")
        self.assertNotIn(b"lang", data)
        self.assertIn(b"to='example.com'", data)

    def test_elementMessageStandalone(self):
        """
        Elements become standalone documents declaring their namespaces.
        """
        features = domish.Element((NS_STREAMS, "features"))
        features.addElement(("urn:ietf:params:xml:ns:xmpp-bind", "bind"))
        message = domish.Element(("jabber:client", "message"))
        message.addElement("body", content="<hi> & 'bye'")
        for element in (features, message, streamErrorElement("conflict", "x")):
            strictParse(self.framing.treeMessage(element, "jabber:client"))

    def test_closeMessage(self):
        """
        The close message may carry C{see-other-uri}.
        """
        uri, local, attrs = strictParse(self.framing.closeMessage("wss://b.example/ws"))
        self.assertEqual((uri, local), (NS_FRAMING, "close"))
        self.assertEqual(attrs["see-other-uri"], "wss://b.example/ws")
        self.assertNotIn(b"see-other", self.framing.closeMessage())


class LegacyFramingTests(unittest.TestCase):
    """
    L{LegacyFraming}.
    """

    def setUp(self):
        self.recorder = FramingRecorder()
        self.framing = LegacyFraming(self.recorder)
        self.feed(LEGACY_HEADER)

    def feed(self, data, framing=None):
        return self.recorder.feed(framing or self.framing, data)

    def test_interface(self):
        """
        The framing provides L{IFraming}.
        """
        self.assertTrue(verifyObject(IFraming, self.framing))

    def test_headerPassedThrough(self):
        """
        The header reaches the XmlStream as sent: its attributes and
        namespaces.
        """
        kind, root = self.feed(LEGACY_HEADER, LegacyFraming(self.recorder))
        self.assertEqual(kind, "open")
        self.assertEqual((root.uri, root.name, root.defaultUri), (NS_STREAMS, "stream", "jabber:client"))
        self.assertEqual((root["to"], root["version"]), ("example.com", "1.0"))
        self.assertEqual(root.localPrefixes, {"stream": NS_STREAMS})

    def test_selfClosedHeaderOpened(self):
        """
        A self-closed header opens the stream all the same.
        """
        framing = LegacyFraming(self.recorder)
        kind, root = self.feed(LEGACY_HEADER.replace(b"'1.0'>", b"'1.0' />"), framing)
        self.assertEqual(kind, "open")
        self.assertEqual(self.feed(b"<message/>", framing)[0], "element")

    def test_incompleteHeader(self):
        """
        Half a header is C{not-well-formed}.
        """
        e = self.assertRaises(
            FramingError, self.feed, LEGACY_HEADER[:60], LegacyFraming(self.recorder)
        )
        self.assertEqual(e.condition, "not-well-formed")

    def test_headerWithJunk(self):
        """
        A header followed by a partial element is C{not-well-formed}.
        """
        e = self.assertRaises(
            FramingError, self.feed, LEGACY_HEADER + b"<mess", LegacyFraming(self.recorder)
        )
        self.assertEqual(e.condition, "not-well-formed")

    def test_unqualifiedStanza(self):
        """
        Stanzas without C{xmlns} are checked in the header's namespaces.
        """
        kind, element = self.feed(b"<message><body>x</body></message>")
        self.assertEqual((kind, element.uri), ("element", "jabber:client"))

    def test_prefixedStanza(self):
        """
        The header's C{stream} prefix may be used without redeclaring it.
        """
        kind, element = self.feed(b"<stream:features/>")
        self.assertEqual((kind, element.uri), ("element", NS_STREAMS))

    def test_unknownPrefix(self):
        """
        A prefix the header did not declare is C{not-well-formed}.
        """
        e = self.assertRaises(FramingError, self.feed, b"<x:message/>")
        self.assertEqual(e.condition, "not-well-formed")

    def test_textOnly(self):
        """
        Text that is no element is C{not-well-formed}.
        """
        e = self.assertRaises(FramingError, self.feed, b"hello")
        self.assertEqual(e.condition, "not-well-formed")

    def test_footerWithSpace(self):
        """
        The footer may carry whitespace.
        """
        self.assertEqual(self.feed(b" </stream:stream >\n")[0], "close")

    def test_escapeFromWrapper(self):
        """
        A message cannot close the checker's context to smuggle elements.
        """
        e = self.assertRaises(FramingError, self.feed, b"<a/></w><w><b/>")
        self.assertEqual(e.condition, "not-well-formed")

    def test_restartHeader(self):
        """
        A header after the first one is a restart, taken only once the
        stream restarted.
        """
        e = self.assertRaises(FramingError, self.feed, LEGACY_HEADER)
        self.assertEqual(e.condition, "bad-format")
        self.framing.restart()
        self.assertEqual(self.feed(LEGACY_HEADER)[0], "open")

    def test_headerMessage(self):
        """
        The server's header stays an unclosed stream header, with a default
        C{xml:lang}.
        """
        root = domish.Element((NS_STREAMS, "stream"), "jabber:client",
                              localPrefixes={"stream": NS_STREAMS})
        root["from"] = "example.com"
        data = self.framing.headerMessage(root, False, "en")
        self.assertTrue(data.startswith(b"<stream:stream"))
        self.assertTrue(data.endswith(b">") and not data.endswith(b"/>"))
        self.assertIn(b"xml:lang='en'", data)
        strictParse(data + b"</stream:stream>")

    def test_elementInherits(self):
        """
        Elements are written as within the stream: no C{xmlns} on stanzas.
        """
        message = domish.Element(("jabber:client", "message"))
        self.assertEqual(self.framing.treeMessage(message, "jabber:client"), b"<message/>")
        features = domish.Element((NS_STREAMS, "features"))
        self.assertEqual(
            self.framing.treeMessage(features, "jabber:client"), b"<stream:features/>"
        )


class RawElementMessageTests(unittest.TestCase):
    """
    The fast path: messages built from the bytes an C{XmlStream} wrote for
    one element, without parsing them into a tree.
    """

    def test_stanzaGetsNamespace(self):
        """
        A stanza written in the stream's context gets its namespace declared.
        """
        data = RFC7395Framing(FramingRecorder()).elementMessage(
            b"<message to='a@b'><body>x &amp; y</body></message>", "jabber:client"
        )
        self.assertEqual(
            data, b"<message xmlns='jabber:client' to='a@b'><body>x &amp; y</body></message>"
        )
        self.assertEqual(strictParse(data)[:2], ("jabber:client", "message"))

    def test_streamPrefix(self):
        """
        A C{stream:} element gets the prefix and the default namespace
        declared.
        """
        data = RFC7395Framing(FramingRecorder()).elementMessage(
            b"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
            "jabber:client",
        )
        self.assertEqual(strictParse(data)[:2], (NS_STREAMS, "features"))

    def test_ownNamespaceKept(self):
        """
        An element declaring its own namespace is sent as written.
        """
        raw = b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
        self.assertEqual(RFC7395Framing(FramingRecorder()).elementMessage(raw, "jabber:client"), raw)

    def test_notOneElement(self):
        """
        Anything but one plain element is left to the parsing path.
        """
        framing = RFC7395Framing(FramingRecorder())
        for raw in [
            b"<a/><b/>",
            b"<a>",
            b"<a><!-- c --></a>",
            b"<a><?pi x?></a>",
            b"<x:a/>",
            b" ",
            b"</stream:stream>",
            b"<a>&nbsp;</a>",
        ]:
            self.assertIsNone(framing.elementMessage(raw, "jabber:client"), raw)

    def test_legacyAsWritten(self):
        """
        In draft-00 framing, one element is sent exactly as written.
        """
        raw = b"<message to='a@b'/>"
        self.assertEqual(LegacyFraming(FramingRecorder()).elementMessage(raw, "jabber:client"), raw)
        self.assertIsNone(LegacyFraming(FramingRecorder()).elementMessage(raw + raw, "jabber:client"))

    def test_sameAsParsingPath(self):
        """
        The fast path and the parsing path build equivalent documents.
        """
        framing = RFC7395Framing(FramingRecorder())
        message = domish.Element(("jabber:client", "message"))
        message["to"] = "juliet@example.com"
        message.addElement("body", content="<hi> & 'bye' \u263a")
        message.addElement(("urn:xmpp:chat-markers:0", "markable"))
        features = domish.Element((NS_STREAMS, "features"))
        features.addElement(("urn:ietf:params:xml:ns:xmpp-sasl", "mechanisms")).addElement(
            "mechanism", content="PLAIN"
        )
        for element in (message, features, streamErrorElement("conflict", "text")):
            written = element.toXml(
                prefixes={NS_STREAMS: "stream"},
                defaultUri="jabber:client",
                prefixesInScope=["stream"],
            ).encode("utf-8")
            fast = framing.elementMessage(written, "jabber:client")
            slow = framing.treeMessage(element, "jabber:client")
            self.assertEqual(strictParse(fast), strictParse(slow))
            self.assertEqual(_canonical(fast), _canonical(slow))


def _canonical(data):
    """
    A canonical form of a standalone document, for comparing equivalents.
    """
    from xml.etree import ElementTree

    return ElementTree.canonicalize(data.decode("utf-8"))
