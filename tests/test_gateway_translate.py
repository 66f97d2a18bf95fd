# -*- test-case-name: tests.test_gateway_translate -*-
"""
Tests for L{xmppws.gateway.translate}: the client's framing checked once
without trees and turned into the bytes that go upstream, and the
server's stream turned into the client's messages.

The translators must accept exactly what the core framings
(L{xmppws.framing}) accept, refuse the rest with the same stream error
condition, and what they write upstream must mean, in the context of the
upstream stream header, the same element the core framing would have
built.
"""

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial import unittest
from twisted.words.xish import domish
from zope.interface.verify import verifyObject

from tests.gatewayhelpers import canonical, parseStandalone
from tests.helpers import AUTH, CLOSE, LEGACY_HEADER, OPEN, FramingRecorder
from tests.test_properties import (
    _FRAMING_SETTINGS,
    _LEGACY_CORPUS,
    _RFC_CORPUS,
    _anyMessage,
)
from xmppws._parser import ElementParser, FramingError
from xmppws._scanner import ElementScanner
from xmppws.framing import LegacyFraming, RFC7395Framing
from xmppws.gateway.igateway import IClientFraming, IClientReceiver
from xmppws.gateway.translate import (
    ClientLegacy,
    ClientRFC7395,
    headerAttributes,
    parseTree,
    rewriteFeatures,
    translatorFor,
)
from zope.interface import implementer


@implementer(IClientReceiver)
class Recorder:
    """
    Record what a translator reports, as the core framings' recorder
    does: C{('open', attributes)}, C{('element', data)}, C{('close',
    None)}.
    """

    def __init__(self):
        self.events = []

    def clientOpened(self, attributes):
        self.events.append(("open", attributes))

    def clientElement(self, data, element):
        self.events.append(("element", data))

    def clientClosed(self):
        self.events.append(("close", None))

    def feed(self, translator, data):
        before = len(self.events)
        translator.dataReceived(data)
        caused = self.events[before:]
        assert len(caused) <= 1, caused
        return caused[0] if caused else ("empty", None)


def outcome(feed):
    """
    The kind of event, or the condition of the L{FramingError}.
    """
    try:
        return feed()[0]
    except FramingError as e:
        return "error: " + e.condition


class InboundTests(unittest.TestCase):
    """
    Known cases of the client's messages.
    """

    def test_interfaces(self):
        """
        Both translators are client framings.
        """
        self.assertTrue(verifyObject(IClientFraming, ClientRFC7395(Recorder())))
        self.assertTrue(verifyObject(IClientFraming, ClientLegacy(Recorder())))

    def test_choice(self):
        """
        The first message chooses the translator.
        """
        self.assertIsInstance(translatorFor(OPEN, Recorder()), ClientRFC7395)
        self.assertIsInstance(translatorFor(LEGACY_HEADER, Recorder()), ClientLegacy)
        self.assertRaises(FramingError, translatorFor, b"<message/>", Recorder())

    def test_rfc7395(self):
        """
        C{<open/>} reports the header's attributes, an element its bytes,
        C{<close/>} the close.
        """
        recorder = Recorder()
        translator = ClientRFC7395(recorder)
        self.assertEqual(
            recorder.feed(translator, OPEN),
            ("open", {"to": "example.com", "version": "1.0"}),
        )
        self.assertEqual(recorder.feed(translator, AUTH), ("element", AUTH))
        self.assertEqual(recorder.feed(translator, CLOSE), ("close", None))

    def test_upstreamHeader(self):
        """
        The upstream header of an RFC 7395 client declares the client
        namespace and the stream prefix, with C{to}, C{from}, C{version}
        and C{xml:lang}, escaped.
        """
        translator = ClientRFC7395(Recorder())
        self.assertEqual(
            translator.upstreamHeader(
                {"to": "example.com", "from": "a'<b@example.com", "version": "1.0",
                 "lang": "en", "id": "ignored"}
            ),
            b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
            b"xmlns:stream='http://etherx.jabber.org/streams' to='example.com' "
            b"from='a&apos;&lt;b@example.com' version='1.0' xml:lang='en'>",
        )
        self.assertEqual(translator.upstreamFooter(), b"</stream:stream>")

    def test_legacyOtherPrefix(self):
        """
        A draft-00 header with another prefix and an extra declaration goes
        upstream with them, so that its stanzas mean the same there.
        """
        recorder = Recorder()
        translator = ClientLegacy(recorder)
        header = (
            b"<s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams' "
            b"xmlns:x='urn:x' to='example.com' version='1.0'>"
        )
        kind, attributes = recorder.feed(translator, header)
        self.assertEqual(kind, "open")
        upstream = translator.upstreamHeader(dict(attributes))
        self.assertTrue(upstream.startswith(b"<?xml version='1.0'?><s:stream "))
        for declaration in (b"xmlns='jabber:client'", b"xmlns:s='http://etherx.jabber.org/streams'",
                            b"xmlns:x='urn:x'"):
            self.assertIn(declaration, upstream)
        self.assertEqual(translator.upstreamFooter(), b"</s:stream>")
        self.assertEqual(recorder.feed(translator, b"<x:y/>"), ("element", b"<x:y/>"))
        self.assertEqual(recorder.feed(translator, b"</s:stream>"), ("close", None))

    def test_legacyOtherNamespace(self):
        """
        The gateway relays client streams only: another default namespace
        is C{invalid-namespace}.
        """
        translator = ClientLegacy(Recorder())
        error = self.assertRaises(
            FramingError,
            translator.dataReceived,
            b"<stream:stream xmlns='jabber:component:accept' "
            b"xmlns:stream='http://etherx.jabber.org/streams' to='c.example.com'>",
        )
        self.assertEqual(error.condition, "invalid-namespace")

    def test_headerAttributes(self):
        """
        Only the header attributes that travel are kept, C{xml:lang} as
        C{lang}.
        """
        self.assertEqual(
            headerAttributes(
                {"to": "a", "id": "1", "other": "x",
                 "http://www.w3.org/XML/1998/namespace lang xml": "de"}
            ),
            {"to": "a", "id": "1", "lang": "de"},
        )


def _coreOutcome(framing, recorder, data):
    try:
        kind, element = recorder.feed(framing, data)
    except FramingError as e:
        return "error: " + e.condition, None
    return kind, element


class DifferentialTests(unittest.TestCase):
    """
    The translators and the core framings agree on every message.
    """

    def compare(self, core, translator, data, context):
        coreRecorder, recorder = core._receiver, translator._receiver
        expected, element = _coreOutcome(core, coreRecorder, data)
        try:
            kind, relayed = recorder.feed(translator, data)
        except FramingError as e:
            kind, relayed = "error: " + e.condition, None
        self.assertEqual(kind, expected, data)
        if kind == "element":
            # What goes upstream means the same there as what the core
            # framing built.
            parser = ElementParser(context=context, collect=True)
            parser.feed(relayed)
            self.assertEqual(len(parser.collected), 1, relayed)
            self.assertEqual(canonical(parser.collected[0]), canonical(element), relayed)

    @_FRAMING_SETTINGS
    @given(_anyMessage(_RFC_CORPUS))
    def test_rfc7395(self, data):
        """
        After C{<open/>}, any message gets the same outcome from the
        RFC 7395 translator as from L{RFC7395Framing}; an element goes
        upstream as bytes meaning the same element.
        """
        core = RFC7395Framing(FramingRecorder())
        translator = ClientRFC7395(Recorder())
        core._receiver.feed(core, OPEN)
        translator._receiver.feed(translator, OPEN)
        self.compare(
            core, translator, data,
            b"<w xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
        )

    @_FRAMING_SETTINGS
    @given(_anyMessage(_LEGACY_CORPUS))
    def test_legacy(self, data):
        """
        After a stream header, any message gets the same outcome from the
        draft-00 translator as from L{LegacyFraming}.
        """
        core = LegacyFraming(FramingRecorder())
        translator = ClientLegacy(Recorder())
        core._receiver.feed(core, LEGACY_HEADER)
        translator._receiver.feed(translator, LEGACY_HEADER)
        self.compare(
            core, translator, data,
            b"<w xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
        )

    @_FRAMING_SETTINGS
    @given(_anyMessage(_RFC_CORPUS + _LEGACY_CORPUS))
    def test_firstMessage(self, data):
        """
        Any first message is refused, or opens the stream, alike.
        """
        try:
            translator = translatorFor(data, Recorder())
        except FramingError as e:
            self.assertIn(
                e.condition,
                ("not-well-formed", "bad-format", "invalid-namespace", "restricted-xml"),
            )
            return
        core = {ClientRFC7395: RFC7395Framing, ClientLegacy: LegacyFraming}[
            type(translator)](FramingRecorder())
        expected, _ = _coreOutcome(core, core._receiver, data)
        try:
            kind = translator._receiver.feed(translator, data)[0]
        except FramingError as e:
            kind = "error: " + e.condition
        if expected == "open" and kind == "error: invalid-namespace":
            # The gateway relays client streams only.
            return
        self.assertEqual(kind, expected, data)


class OutboundTests(unittest.TestCase):
    """
    The server's stream as the client's messages.
    """

    def scan(self, header, element):
        found = []

        class Keep:
            def streamStarted(self, h):
                found.append(h)

            def elementScanned(self, e):
                found.append(e)

            def streamEnded(self):
                pass

        ElementScanner(Keep(), trackPrefixes=True).feed(header + element)
        return found

    def test_declarationsAdded(self):
        """
        An element relying on the server's header gets the declarations it
        needs as a standalone message, computed once per kind of element.
        """
        header = (
            b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
            b"xmlns:db='jabber:server:dialback' version='1.0'>"
        )
        streamHeader, element = self.scan(header, b"<db:x><message/></db:x>")
        translator = ClientRFC7395(Recorder())
        message = translator.elementMessage(element, streamHeader)
        self.assertEqual(
            message,
            b"<db:x xmlns='jabber:client' xmlns:db='jabber:server:dialback'><message/></db:x>",
        )
        self.assertEqual(parseStandalone(message)[0], "jabber:server:dialback")

    def test_ownDefault(self):
        """
        An element that declares its namespace is sent as it came.
        """
        header = b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
        streamHeader, element = self.scan(header, b"<r xmlns='urn:xmpp:sm:3'/>")
        self.assertEqual(
            ClientRFC7395(Recorder()).elementMessage(element, streamHeader),
            b"<r xmlns='urn:xmpp:sm:3'/>",
        )

    def test_legacyAsItCame(self):
        """
        To a draft-00 client, the server's header goes as it came (open),
        its elements too.
        """
        header = b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='1'>"
        streamHeader, element = self.scan(header, b"<presence/>")
        translator = ClientLegacy(Recorder())
        self.assertEqual(translator.upstreamHeaderMessage(streamHeader), header)
        self.assertEqual(translator.elementMessage(element, streamHeader), b"<presence/>")
        self.assertEqual(translator.closeMessage(), b"</stream:stream>")

    def test_rewriteFeatures(self):
        """
        STARTTLS and channel binding mechanisms are always removed from
        the features; PLAIN only when asked.
        """
        declarations = {None: "jabber:client", "stream": "http://etherx.jabber.org/streams"}
        raw = (
            b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
            b"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>"
            b"<mechanism>SCRAM-SHA-1-PLUS</mechanism>"
            b"<mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>"
        )
        features = parseTree(raw, declarations)
        self.assertTrue(rewriteFeatures(features, stripPlain=False))
        self.assertIn("PLAIN", features.toXml())
        self.assertIn("SCRAM-SHA-1<", features.toXml())
        self.assertNotIn("-PLUS", features.toXml())
        self.assertNotIn("starttls", features.toXml())
        self.assertTrue(rewriteFeatures(features, stripPlain=True))
        self.assertNotIn("PLAIN", features.toXml())
        self.assertFalse(rewriteFeatures(features, stripPlain=True))

    def test_treeMessages(self):
        """
        Elements the gateway makes are standalone in RFC 7395, and use the
        server's stream prefix in draft-00.
        """
        error = domish.Element(("http://etherx.jabber.org/streams", "error"))
        error.addElement(("urn:ietf:params:xml:ns:xmpp-streams", "conflict"))
        message = ClientRFC7395(Recorder()).treeMessage(error)
        self.assertEqual(parseStandalone(message)[1], "error")
        legacy = ClientLegacy(Recorder())
        legacy.headerMessage({"version": "1.0"})
        self.assertTrue(legacy.treeMessage(error).startswith(b"<stream:error>"))

    def test_closeWithSeeOther(self):
        """
        The RFC 7395 close can name where to reconnect.
        """
        self.assertEqual(
            ClientRFC7395(Recorder()).closeMessage("wss://b.example/ws"),
            b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing' see-other-uri='wss://b.example/ws'/>",
        )
