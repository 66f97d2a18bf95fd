# -*- test-case-name: tests.test_gateway_split -*-
"""
Tests for the gateway's splitting of the upstream's TCP stream into
top-level elements (L{xmppws.gateway.upstream.StreamSplitter} over
L{xmppws._scanner.ElementScanner}), in memory: known cases, the checks it
shares with the element parser, and the property that any sequence of
well-formed elements, cut into reads at arbitrary points, comes out as
the same elements, one per WebSocket message.
"""

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from tests.gatewayhelpers import FakeServer, Harness, canonical, parseStandalone
from xmppws._parser import ElementParser, FramingError
from xmppws import _scanner
from xmppws._scanner import ElementScanner
from xmppws.gateway.upstream import StreamSplitter

HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' xmlns:h='urn:example:header' "
    b"from='example.com' id='abc' version='1.0' xml:lang='en'>"
)
FOOTER = b"</stream:stream>"

_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Recorder:
    """
    A splitter's receiver that keeps what it is told.
    """

    def __init__(self):
        self.events = []

    def streamStarted(self, header):
        self.events.append(("header", header.raw))

    def elementScanned(self, element):
        self.events.append(("element", element.raw))

    def streamEnded(self):
        self.events.append(("footer", None))


def split(data, cuts=()):
    """
    Feed C{data} to a splitter in pieces cut at C{cuts}.

    @return: the events.
    """
    recorder = Recorder()
    splitter = StreamSplitter(recorder)
    last = 0
    for cut in sorted(set(cuts)) + [len(data)]:
        if cut > last:
            splitter.feed(data[last:cut])
            last = cut
    return recorder.events


# Well-formed elements, serialized by hand so that every form XML allows
# appears: both quote characters, ">" and quotes in attribute values,
# entity and character references, CDATA, empty-element tags, whitespace
# in tags, prefixes declared on the element, inherited from the stream
# header, and the stream prefix.

_NAMES = st.sampled_from(["message", "presence", "iq", "body", "x", "a-b", "q.1", "_u", "caf\u00e9"])
_TEXT = st.text(
    alphabet=st.sampled_from(list("ab <>&'\"\u00e9\u2603\n\t") + ["\U0001d11e"]), max_size=12
)


def _escapeText(text, rnd):
    out = text.replace("&", "&amp;").replace("<", "&lt;")
    if rnd:
        out = out.replace(">", "&gt;")
    return out


def _attrValue(value, quote):
    out = value.replace("&", "&amp;").replace("<", "&lt;").replace(quote, "&#%d;" % ord(quote))
    return quote + out.replace("\n", "&#10;").replace("\t", "&#9;") + quote


@st.composite
def elements(draw, depth=0, top=True):
    name = draw(_NAMES)
    space = draw(st.sampled_from(["default", "declared", "header", "prefix", "stream"]))
    if top and space == "header":
        space = "default"
    declarations = ""
    if space == "declared":
        declarations = " xmlns='urn:example:%s'" % (draw(st.sampled_from(["a", "b"])),)
    elif space == "prefix":
        declarations = " xmlns:p='urn:example:p'"
        name = "p:" + name
    elif space == "header":
        name = "h:" + name
    elif space == "stream":
        name = "stream:" + name
    attributes = ""
    for key in draw(st.lists(st.sampled_from(["to", "id", "type", "x-y", "xml:lang", "h:at"]),
                             unique=True, max_size=3)):
        quote = draw(st.sampled_from(["'", '"']))
        spacing = draw(st.sampled_from([" ", "  ", "\n"]))
        attributes += "%s%s=%s" % (spacing, key, _attrValue(draw(_TEXT), quote))
    closing = draw(st.sampled_from(["", " "]))
    if depth >= 2 or draw(st.booleans()):
        return "<%s%s%s%s/>" % (name, declarations, attributes, closing)
    content = ""
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["text", "element", "cdata", "ref"]))
        if kind == "text":
            content += _escapeText(draw(_TEXT), draw(st.booleans()))
        elif kind == "cdata":
            content += "<![CDATA[%s]]>" % (draw(_TEXT).replace("]]>", ""),)
        elif kind == "ref":
            content += draw(st.sampled_from(["&amp;", "&#x263A;", "&#65;", "&quot;", "&apos;"]))
        else:
            content += draw(elements(depth=depth + 1, top=False))
    return "<%s%s%s%s>%s</%s%s>" % (
        name, declarations, attributes, closing, content, name, draw(st.sampled_from(["", " "]))
    )


@st.composite
def streams(draw):
    """
    A stream: header, elements with whitespace between them, maybe the
    footer; and where to cut it into reads.
    """
    parts = [e.encode("utf-8") for e in draw(st.lists(elements(), min_size=1, max_size=6))]
    separators = [draw(st.sampled_from([b"", b" ", b"\n", b"\r\n\t"])) for _ in parts]
    body = b"".join(sep + part for sep, part in zip(separators, parts))
    footer = draw(st.booleans())
    data = HEADER + body + (FOOTER if footer else b"")
    cuts = draw(st.lists(st.integers(0, len(data)), max_size=12))
    if draw(st.booleans()):
        cuts += list(range(len(HEADER), len(data), draw(st.integers(1, 9))))
    return parts, footer, data, cuts


class SplitterTests(unittest.TestCase):
    """
    L{StreamSplitter} finds the stream header and each top-level element
    as the bytes they took, however the reads cut them.
    """

    def test_elements(self):
        """
        Each element comes out as its bytes; whitespace between elements
        belongs to none; the footer ends the stream.
        """
        elements = [
            b"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
            b"<presence a='>' />",
            b"<message to='a@example.com'><body>hi &amp; &#x263A;</body></message>",
            b"<p></p>",
            b"<a/>",
        ]
        data = HEADER + b" ".join(elements) + b"\n" + FOOTER
        expected = (
            [("header", HEADER.split(b"?>", 1)[1])]
            + [("element", e) for e in elements]
            + [("footer", None)]
        )
        for size in (len(data), 1, 2, 3, 5, 7, 64):
            self.assertEqual(split(data, range(0, len(data), size)), expected, size)

    def test_restart(self):
        """
        After C{restartAfter}, the bytes that follow the element are a new
        stream, even in the same read.
        """
        recorder = Recorder()
        events = recorder.events

        class Restarting(Recorder):
            def elementScanned(self, element):
                events.append(("element", element.raw))
                if b"success" in element.raw:
                    splitter.restartAfter()

            def streamStarted(self, header):
                events.append(("header", header.raw))

        splitter = StreamSplitter(Restarting())
        success = b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
        second = b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='2' version='1.0'>"
        splitter.feed(HEADER + success + b"<?xml version='1.0'?>" + second + b"<x/>")
        self.assertEqual(
            [kind for kind, _ in events], ["header", "element", "header", "element"]
        )
        self.assertEqual(events[2][1], second)

    def test_inherited(self):
        """
        An element's scan names the prefixes it inherits from the stream
        header, and whether its root declares the default namespace.
        """
        found = []

        class Keep(Recorder):
            def elementScanned(self, element):
                found.append((element.qname, element.declaresDefault, element.inherited))

        splitter = StreamSplitter(Keep())
        splitter.feed(
            HEADER
            + b"<stream:features/>"
            + b"<iq xmlns='jabber:client'><q xmlns:h='urn:other'><h:z/></q><h:w/></iq>"
            + b"<message><h:x h:a='1'/></message>"
        )
        self.assertEqual(
            found,
            [
                ("stream:features", False, {"stream"}),
                ("iq", True, {"h"}),
                ("message", False, {"h"}),
            ],
        )

    def test_sameChecksAsParser(self):
        """
        What the element parser refuses in a stream, the scanner refuses
        with the same stream error condition.
        """
        bad = [
            b"<!DOCTYPE x>",
            b"<message><!-- c --></message>",
            b"<message><?pi x?></message>",
            b"<message>&undefined;</message>",
            b"<message></iq>",
            b"text",
            b"<message><x:y/></message>",
            b"<message a='1' a='2'/>",
        ]
        for data in bad:
            conditions = []
            for make in (
                lambda: ElementParser(_Null()),
                lambda: ElementScanner(_Null()),
            ):
                try:
                    make().feed(HEADER + data)
                except FramingError as e:
                    conditions.append(e.condition)
                else:
                    conditions.append(None)
            self.assertEqual(len(set(conditions)), 1, (data, conditions))
            self.assertIsNotNone(conditions[0], data)

    def test_maxElementSize(self):
        """
        An element over the size limit is refused with C{policy-violation}
        before it is complete, while whitespace keepalives count for none.
        """
        splitter = StreamSplitter(Recorder(), maxElementSize=100)
        splitter.feed(HEADER)
        for _ in range(50):
            splitter.feed(b"     ")
        splitter.feed(b"<message>" + b"x" * 50 + b"</message>")
        error = self.assertRaises(
            FramingError, splitter.feed, b"<message>" + b"x" * 200
        )
        self.assertEqual(error.condition, "policy-violation")

    def test_parserRenewed(self):
        """
        The expat parser, which keeps every distinct name it has seen, is
        replaced at an element boundary once it has read
        C{RENEW_AFTER} bytes; in context mode too, between messages.
        """
        splitter = StreamSplitter(Recorder())
        splitter.feed(HEADER)
        first = splitter._scanner._parser
        for i in range(2000):
            splitter.feed(b"<message><x%d a%d='1'/></message>" % (i, i))
        self.assertIsNot(splitter._scanner._parser, first)
        scanner = ElementScanner(context=b"<w xmlns='jabber:client'>", standalone=True)
        first = scanner._parser
        for i in range(3000):
            scanner.feed(b"<message><x%d a%d='1'/></message>" % (i, i))
        self.assertIsNot(scanner._parser, first)
        self.assertEqual(len(scanner.collected), 3000)

    @_SETTINGS
    @given(streams(), st.integers(1, 200))
    def test_anyCutsRenewed(self, stream, renewAfter):
        """
        However often the parser is renewed, the elements come out the
        same, with the namespaces of the stream header.
        """
        self.patch(_scanner, "RENEW_AFTER", renewAfter)
        parts, footer, data, cuts = stream
        events = split(data, cuts)
        self.assertEqual([raw for kind, raw in events if kind == "element"], parts)
        self.assertEqual(events[-1] == ("footer", None), footer)
        self.assertEqual(len([kind for kind, _ in events if kind == "header"]), 1)

    @_SETTINGS
    @given(streams())
    def test_anyCuts(self, stream):
        """
        Any sequence of well-formed elements after a stream header, cut
        into reads at arbitrary points, comes out as the same elements,
        byte for byte, and the footer if there was one.
        """
        parts, footer, data, cuts = stream
        events = split(data, cuts)
        self.assertEqual(events[0], ("header", HEADER.split(b"?>", 1)[1]))
        self.assertEqual([raw for kind, raw in events if kind == "element"], parts)
        self.assertEqual(events[-1] == ("footer", None), footer)


class _Null:
    def streamStarted(self, header):
        pass

    def elementReceived(self, element):
        pass

    elementScanned = elementReceived

    def streamEnded(self):
        pass


class RelayedSplitTests(unittest.TestCase):
    """
    Through the whole gateway: the upstream's stream, cut anywhere, comes
    out at the WebSocket client as the same elements, one per message.
    """

    @settings(_SETTINGS, max_examples=120)
    @given(streams())
    def test_anyCutsOneMessageEach(self, stream):
        """
        Each element the server sends, however its bytes were cut into TCP
        reads, reaches the WebSocket client as one standalone RFC 7395
        message holding the same element (same namespaces, names,
        attributes and content).
        """
        parts, footer, data, cuts = stream
        harness = Harness(
            self, makeServer=lambda: FakeServer(header=HEADER.replace(b"id='abc'", b"id='s%d'"))
        )
        client = harness.client()
        harness.opened(client)
        server = harness.servers[0]
        body = data[len(HEADER) :]
        # The fake server already sent its header: send the body alone,
        # cut where the stream was.
        last = 0
        for cut in sorted(set(c - len(HEADER) for c in cuts if c > len(HEADER))) + [len(body)]:
            if cut > last:
                server.send(body[last:cut])
                harness.flush()
                last = cut
        messages = client.messages()
        if footer:
            self.assertEqual(messages[-1], b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>")
            messages = messages[:-1]
        self.assertEqual(len(messages), len(parts))
        context = (
            b"<w xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
            b"xmlns:h='urn:example:header'>"
        )
        for message, part in zip(messages, parts):
            original = ElementParser(context=context, collect=True)
            original.feed(part)
            self.assertEqual(
                parseStandalone(message), canonical(original.collected[0]), (message, part)
            )
