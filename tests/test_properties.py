# -*- test-case-name: tests.test_properties -*-
"""
Property tests: what the framings and the server do with any input.

The framings must answer every message with a checked event (the stream
opened, an element, the stream closed, or nothing) or a L{FramingError}
naming a stream error, and what they accept must be clean XML.  The whole server, driven in
memory, must answer any sequence of frames with clean XML, and end a
stream error with the closing message and the WebSocket close.
"""

import functools
import re
import struct
import sys
import traceback
from xml.parsers import expat

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.trial import unittest
from twisted.words.protocols.jabber import xmlstream
from twisted.words.protocols.jabber.jid import JID

from tests.helpers import (
    AUTH,
    CLOSE,
    EchoAuthenticator,
    FramingRecorder,
    LEGACY_FOOTER,
    LEGACY_HEADER,
    OP_BINARY,
    OP_CLOSE,
    OP_TEXT,
    OPEN,
    WebSocketTestClient,
    strictParse,
)
from xmppws.framing import (
    NS_FRAMING,
    NS_STREAMS,
    NS_XMPP_STREAMS,
    FramingError,
    LegacyFraming,
    RFC7395Framing,
    detectFraming,
)

KINDS = {"open", "close", "element", "empty"}
CONDITIONS = {"not-well-formed", "restricted-xml", "bad-format", "invalid-namespace"}

# Reproducible runs: the same examples every time, no example database.
# No explain phase: it reruns failing examples under a tracer, which costs
# more than the whole server tests themselves.
_FRAMING_SETTINGS = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_SERVER_SETTINGS = settings(_FRAMING_SETTINGS, max_examples=200)

# Valid messages in RFC 7395 framing: each a standalone document.
RFC_STANZAS = [
    "<message xmlns='jabber:client' to='juliet@example.com' type='chat' id='m1'>"
    "<body>Wherefore art thou, Romeo?</body></message>",
    "<message xmlns='jabber:client' xml:lang='fr' to='a@example.com'>"
    "<body>caf\u00e9 \u2603 \U0001d11e</body><thread>t1</thread></message>",
    "<presence xmlns='jabber:client'/>",
    "<presence xmlns='jabber:client'><show>away</show>"
    "<status>&lt;busy&gt; &amp; out &#x263A;</status><priority>5</priority></presence>",
    "<iq xmlns='jabber:client' type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>",
    "<iq xmlns='jabber:client' type='set' id='b1'>"
    "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>balcony</resource></bind></iq>",
    "<iq xmlns='jabber:client' xmlns:d='http://jabber.org/protocol/disco#info' "
    "type='result' id='d1'><d:query><d:feature var='urn:xmpp:ping'/></d:query></iq>",
    "<?xml version='1.0'?><message xmlns='jabber:client' to='romeo@example.net'>"
    "<body>hi</body></message>",
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<iq xmlns="jabber:client" type="get" id="v1"><ping xmlns="urn:xmpp:ping"/></iq>',
    "<message xmlns='jabber:client'><body><![CDATA[a <b> & c]]></body></message>",
    "<r xmlns='urn:xmpp:sm:3'/>",
]
RFC_FRAMING = [
    OPEN.decode("utf-8"),
    CLOSE.decode("utf-8"),
    "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' "
    "version='1.0' xml:lang='en'/>",
]

# Valid stanzas in draft-00 framing: they may rely on the stream header's
# namespaces.
LEGACY_STANZAS = [
    "<message to='juliet@example.com' type='chat'><body>hi &amp; bye</body></message>",
    "<presence/>",
    "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>",
    "<?xml version='1.0'?><presence><show>chat</show></presence>",
    "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
]
# Stream headers in draft-00 framing, among them the forms XML allows and
# clients may send: self-closed, closed by an end tag, another prefix, the
# streams namespace as the default one, the default namespace undeclared.
LEGACY_HEADERS = [
    LEGACY_HEADER,
    b"<stream:stream to='example.com' xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'/>",
    b"<stream:stream to='example.com' xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'></stream:stream>",
    b"<s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams' "
    b"xml:lang='en' to='example.com'>",
    b"<stream xmlns='http://etherx.jabber.org/streams' to='example.com'>",
    b"<stream:stream xmlns='' xmlns:stream='http://etherx.jabber.org/streams' "
    b"to='example.com'>",
]

_RFC_CORPUS = [s.encode("utf-8") for s in RFC_STANZAS + RFC_FRAMING] + [AUTH]
_LEGACY_CORPUS = (
    [s.encode("utf-8") for s in LEGACY_STANZAS + RFC_STANZAS]
    + LEGACY_HEADERS
    + [LEGACY_FOOTER, AUTH]
)
_ALL_CORPUS = _RFC_CORPUS + _LEGACY_CORPUS


def _showFalsifyingExample(test):
    """
    Print the notes Hypothesis attaches to a failure (the falsifying
    example) and each of several failures, which trial's report leaves
    out.
    """

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        try:
            return test(*args, **kwargs)
        except BaseExceptionGroup as e:
            sys.stdout.write("\n")
            traceback.print_exception(e, file=sys.stdout)
            raise
        except Exception as e:
            for note in getattr(e, "__notes__", ()):
                sys.stdout.write("\n%s\n" % (note,))
            raise

    return wrapper


_INSERTIONS = [
    b"<!--x-->",
    b"<?pi?>",
    b"<!DOCTYPE x>",
    b"&ent;",
    b"&#10;",
    b"&#0;",
    b"<",
    b"&",
    b"]]>",
    b"</stream:stream>",
]


_PREFIXES = [b" ", b"\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n", b"\x00"]


@st.composite
def _mutation(draw, data, corpus):
    """
    One mutation of C{data}: a bit flip, a truncation, an insertion, a
    deletion, a duplication, a splice with another corpus message or
    leading bytes.
    """
    kind = draw(
        st.sampled_from(
            ["flip", "truncate", "insert", "delete", "duplicate", "splice", "prefix"]
        )
    )
    size = len(data)
    if kind == "flip" and size:
        i = draw(st.integers(0, size - 1))
        bit = draw(st.integers(0, 7))
        return data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1 :]
    if kind == "truncate":
        return data[: draw(st.integers(0, size))]
    if kind == "insert":
        i = draw(st.integers(0, size))
        return data[:i] + draw(st.sampled_from(_INSERTIONS)) + data[i:]
    if kind == "delete":
        i = draw(st.integers(0, size))
        j = draw(st.integers(i, size))
        return data[:i] + data[j:]
    if kind == "duplicate":
        return data + draw(st.sampled_from([data] + corpus))
    if kind == "prefix":
        return draw(st.sampled_from(_PREFIXES)) + data
    other = draw(st.sampled_from(corpus))
    i = draw(st.integers(0, size))
    j = draw(st.integers(0, len(other)))
    return data[:i] + other[j:]


@st.composite
def _mutated(draw, corpus, most=3):
    """
    A corpus message with one to C{most} mutations.
    """
    data = draw(st.sampled_from(corpus))
    for _ in range(draw(st.integers(1, most))):
        data = draw(_mutation(data, corpus))
    return data


_XMLISH = "<>/='\"&;!?-[]abxmlns: \n\u00e9"


def _anyMessage(corpus):
    """
    Arbitrary bytes, arbitrary text, XML-looking text, valid messages and
    mutated valid messages.
    """
    return st.one_of(
        st.binary(max_size=200),
        st.text(max_size=100).map(lambda s: s.encode("utf-8")),
        st.text(alphabet=_XMLISH, max_size=100).map(lambda s: s.encode("utf-8")),
        st.sampled_from(corpus),
        _mutated(corpus, 1),
        _mutated(corpus, 1),
        _mutated(corpus),
    )


def _strictStream(chunks):
    """
    Parse C{chunks} as one stream with a strict, namespace-aware parser
    refusing DOCTYPE, entity declarations, comments and processing
    instructions.

    @return: the number of children of the root element.
    @raise expat.ExpatError: or L{ValueError} if the stream is not clean.
    """
    parser = expat.ParserCreate(encoding="UTF-8", namespace_separator=" ")
    state = {"depth": 0, "children": 0}

    def refuse(*args):
        raise ValueError("restricted XML in the stream")

    def start(name, attrs):
        state["depth"] += 1
        if state["depth"] == 2:
            state["children"] += 1

    def end(name):
        state["depth"] -= 1

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.CommentHandler = refuse
    parser.ProcessingInstructionHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    for chunk in chunks[:-1]:
        parser.Parse(chunk, False)
    parser.Parse(chunks[-1], True)
    return state["children"]


def _isXMLChar(char):
    """
    Whether C{char} may appear in an XML 1.0 document.
    """
    code = ord(char)
    return (
        code in (0x9, 0xA, 0xD)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or code >= 0x10000
    )


_XML_TEXT = st.text(
    st.sampled_from("\t\n\r &<>'\":/") | st.characters().filter(_isXMLChar), max_size=20
)


def _attributeValue(text):
    """
    Escape C{text} for a single-quoted attribute value, whitespace other
    than the space as character references so that it survives attribute
    value normalization.
    """
    for char, reference in [
        ("&", "&amp;"),
        ("<", "&lt;"),
        (">", "&gt;"),
        ("'", "&apos;"),
        ('"', "&quot;"),
        ("\t", "&#9;"),
        ("\n", "&#10;"),
        ("\r", "&#13;"),
    ]:
        text = text.replace(char, reference)
    return text.encode("utf-8")


def _feed(framing, data):
    """
    Give C{data} to C{framing} (made with a L{FramingRecorder}).

    @return: C{(kind, element)} of the event it caused, C{('empty', None)}
        for none.
    """
    return framing._receiver.feed(framing, data)


def _rfc7395(opened=True):
    """
    An RFC 7395 framing, with its stream opened.
    """
    framing = RFC7395Framing(FramingRecorder())
    if opened:
        _feed(framing, OPEN)
    return framing


def _legacy():
    return LegacyFraming(FramingRecorder())


def _stream(root, element):
    """
    The stream an XmlStream gets from a header and one element: the
    number of children of its root, parsed strictly.
    """
    return _strictStream(
        [
            root.toXml(closeElement=0).encode("utf-8"),
            element.toXml().encode("utf-8"),
            b"</" + root.toXml(closeElement=0).encode("utf-8")[1:].split(b" ", 1)[0] + b">",
        ]
    )

_TOKEN = re.compile(r"<!\[CDATA\[.*?\]\]>|<[^>]*>|&[^;]*;|[^<&]+", re.S)


def _regions(text):
    """
    Find where a construct can go into a valid message between tags or in
    text: before the root element (after any XML declaration), inside the
    root element's content, or after the root element.

    @return: a dict mapping C{'prolog'}, C{'content'} and C{'epilog'} to
        lists of indices into C{text}; never inside a tag, a reference,
        a CDATA section or the XML declaration.
    """
    regions = {"prolog": [], "content": [], "epilog": []}
    depth = 0
    seenRoot = False

    def here():
        if depth:
            return "content"
        return "epilog" if seenRoot else "prolog"

    for match in _TOKEN.finditer(text):
        token = match.group()
        if token.startswith("<?xml"):
            continue
        regions[here()].append(match.start())
        if token.startswith("</"):
            depth -= 1
        elif token.startswith("<") and not token.startswith("<!"):
            seenRoot = True
            if not token.endswith("/>"):
                depth += 1
        elif not token.startswith(("<", "&")):
            regions[here()].extend(range(match.start() + 1, match.end()))
    regions[here()].append(len(text))
    return regions


_CONSTRUCTS = {
    "comment": "<!--x-->",
    "pi": "<?pi?>",
    "doctype": "<!DOCTYPE x>",
    "entity": "&ent;",
}

# What RFC 7395 framing must answer for each construct and place.  A
# comment or processing instruction is grammatical before, inside and
# after the root element, so the restricted-XML check sees it wherever it
# goes.  A DOCTYPE is grammatical only in the prolog; anywhere else the
# message is malformed before any handler sees it.  An entity reference
# is grammatical only inside an element; outside the root it is a syntax
# error, inside it an undefined entity (only the five predefined ones
# exist without a DTD), which is restricted XML.
RFC_EXPECTED = {
    ("comment", "prolog"): "restricted-xml",
    ("comment", "content"): "restricted-xml",
    ("comment", "epilog"): "restricted-xml",
    ("pi", "prolog"): "restricted-xml",
    ("pi", "content"): "restricted-xml",
    ("pi", "epilog"): "restricted-xml",
    ("doctype", "prolog"): "restricted-xml",
    ("doctype", "content"): "not-well-formed",
    ("doctype", "epilog"): "not-well-formed",
    ("entity", "prolog"): "not-well-formed",
    ("entity", "content"): "restricted-xml",
    ("entity", "epilog"): "not-well-formed",
}

# In draft-00 framing a stanza is checked inside the stream header's
# element, so before and after the stanza is element content too: a
# comment, processing instruction or undefined entity is restricted XML
# anywhere.  A DOCTYPE is malformed in element content, except that the
# framing looks for one at the start of the message (after any XML
# declaration), where a standalone document could have had it, and calls
# that restricted XML.
LEGACY_EXPECTED = {
    ("comment", "prolog"): "restricted-xml",
    ("comment", "content"): "restricted-xml",
    ("comment", "epilog"): "restricted-xml",
    ("pi", "prolog"): "restricted-xml",
    ("pi", "content"): "restricted-xml",
    ("pi", "epilog"): "restricted-xml",
    ("doctype", "prolog"): "restricted-xml",
    ("doctype", "content"): "not-well-formed",
    ("doctype", "epilog"): "not-well-formed",
    ("entity", "prolog"): "restricted-xml",
    ("entity", "content"): "restricted-xml",
    ("entity", "epilog"): "restricted-xml",
}


@st.composite
def _insertion(draw, corpus):
    """
    A valid message with one restricted construct inserted between tags
    or in text.

    @return: C{(construct, region, message)}.
    """
    text = draw(st.sampled_from(corpus))
    regions = _regions(text)
    construct = draw(st.sampled_from(sorted(_CONSTRUCTS)))
    region = draw(st.sampled_from([name for name in sorted(regions) if regions[name]]))
    i = draw(st.sampled_from(regions[region]))
    message = text[:i] + _CONSTRUCTS[construct] + text[i:]
    return construct, region, message.encode("utf-8")


# Valid messages twice (two objects: Hypothesis counts one object once).
_SERVER_TEXT = st.one_of(
    st.sampled_from(_ALL_CORPUS),
    _mutated(_ALL_CORPUS, 1),
    _insertion(RFC_STANZAS + LEGACY_STANZAS).map(lambda case: case[2]),
    st.binary(max_size=64),
    st.text(max_size=64).map(lambda s: s.encode("utf-8")),
    st.text(alphabet=_XMLISH, max_size=64).map(lambda s: s.encode("utf-8")),
    st.sampled_from(_ALL_CORPUS),
)
_OVERSIZED = (
    b"<message xmlns='jabber:client'><body>" + b"x" * 2048 + b"</body></message>"
)


@st.composite
def _serverFrame(draw):
    """
    One client frame: valid, mutated or garbage text messages, and now and
    then (each about one frame in twenty, as each ends the stream) a binary
    message, an oversized message or a WebSocket close frame.

    @return: C{(payload, opcode)}.
    """
    kind = draw(
        st.sampled_from(["text"] * 8 + ["binary", "oversized", "close"] + ["text"] * 9)
    )
    if kind == "binary":
        return draw(st.binary(max_size=32) | st.sampled_from(_ALL_CORPUS)), OP_BINARY
    if kind == "oversized":
        return _OVERSIZED, OP_TEXT
    if kind == "close":
        codes = [struct.pack("!H", 1000), struct.pack("!H", 1001), b""]
        return draw(st.sampled_from(codes)), OP_CLOSE
    return draw(_SERVER_TEXT), OP_TEXT


def _streamErrorCondition(message):
    """
    Find the condition of a C{<stream:error/>} message, in either framing.

    @return: the condition's local name, or L{None} if C{message} is not a
        stream error.
    """
    parser = expat.ParserCreate(encoding="UTF-8", namespace_separator=" ")
    found = {"depth": 0, "error": False, "condition": None}

    def start(name, attrs):
        found["depth"] += 1
        if found["depth"] == 2 and name == NS_STREAMS + " error":
            found["error"] = True
        elif found["depth"] == 3 and found["error"] and found["condition"] is None:
            uri, _, local = name.rpartition(" ")
            if uri == NS_XMPP_STREAMS and local != "text":
                found["condition"] = local

    def end(name):
        found["depth"] -= 1

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(
            b"<w xmlns='jabber:client' xmlns:stream='" + NS_STREAMS.encode() + b"'>"
            + message
            + b"</w>",
            True,
        )
    except expat.ExpatError:
        return None
    if not found["error"]:
        return None
    return found["condition"] or ""


_LEGACY_HEADER = re.compile(rb"\s*(?:<\?xml[^>]*>\s*)?<((?:[^\s:>/]+:)?stream)[\s>/]")
_LEGACY_FOOTER = re.compile(rb"\s*</[^>]*>\s*$")

_CLOSE_CODES = {"unsupported-encoding": 1003, "policy-violation": 1009}



def _joined(children):
    shaped = []
    for child in children:
        if isinstance(child, str):
            if shaped and isinstance(shaped[-1], str):
                shaped[-1] += child
            else:
                shaped.append(child)
        else:
            shaped.append(child)
    return shaped


def _shape(element):
    """
    An element as nested tuples: namespace, name, attributes (namespaced
    ones as C{'uri local'}) and children, adjacent text joined.
    """
    attributes = sorted(
        (" ".join(key) if isinstance(key, tuple) else key, value)
        for key, value in element.attributes.items()
    )
    children = _joined(
        [child if isinstance(child, str) else _shape(child) for child in element.children]
    )
    return (element.uri, element.name, attributes, children)


def _strictShape(data, default):
    """
    What a strict, namespace-aware parser sees in a standalone message,
    as L{_shape} writes it; elements without a namespace take
    C{default} unless they undeclare it (C{xmlns=''}).
    """
    parser = expat.ParserCreate(encoding="UTF-8", namespace_separator=" ")
    parser.buffer_text = True
    stack = [("", "", [], [])]
    defaults = [default]

    def namespace(prefix, uri):
        if prefix is None:
            defaults.append(uri or "")

    def endNamespace(prefix):
        if prefix is None:
            defaults.pop()

    def start(name, attrs):
        uri, _, local = name.rpartition(" ")
        stack.append((uri or defaults[-1], local, sorted(attrs.items()), []))

    def end(name):
        uri, local, attrs, children = stack.pop()
        stack[-1][3].append((uri, local, attrs, _joined(children)))

    parser.StartNamespaceDeclHandler = namespace
    parser.EndNamespaceDeclHandler = endNamespace
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = lambda text: stack[-1][3].append(text)
    parser.Parse(data, True)
    return [child for child in stack[0][3] if not isinstance(child, str)][0]


class _AnyDomainAuthenticator(EchoAuthenticator):
    """
    An L{EchoAuthenticator} that ignores a C{to} that is no JID instead of
    raising, as checking addresses is the stream's job, not the adapter's.
    """

    def streamStarted(self, rootElement):
        if rootElement.hasAttribute("to"):
            try:
                JID(rootElement["to"])
            except Exception:
                del rootElement.attributes["to"]
        EchoAuthenticator.streamStarted(self, rootElement)


class FramingPropertyTests(unittest.TestCase):
    """
    Properties of L{RFC7395Framing}, L{LegacyFraming} and L{detectFraming}
    over arbitrary and mutated messages.
    """

    def assertOutcome(self, parse, data):
        """
        Assert that C{parse(data)} returns a checked message of a known
        kind or raises a L{FramingError} with a known condition.

        @return: the message, or L{None} after a L{FramingError}.
        """
        try:
            kind, element = parse(data)
        except FramingError as e:
            self.assertIn(e.condition, CONDITIONS)
            return None
        self.assertIn(kind, KINDS)
        return kind, element

    @_showFalsifyingExample
    @_FRAMING_SETTINGS
    @given(_anyMessage(_RFC_CORPUS))
    def test_rfc7395AnyMessage(self, data):
        """
        RFC 7395 framing answers any message with a known kind or a known
        stream error condition, never another exception.
        """
        framing = _rfc7395(opened=False)
        self.assertOutcome(lambda data: _feed(framing, data), data)

    @_showFalsifyingExample
    @_FRAMING_SETTINGS
    @given(_anyMessage(_LEGACY_CORPUS))
    def test_legacyAnyMessageAfterHeader(self, data):
        """
        Legacy framing, after a stream header, answers any message with a
        known kind or a known stream error condition.
        """
        framing = _legacy()
        self.assertEqual(_feed(framing, LEGACY_HEADER)[0], "open")
        self.assertOutcome(lambda data: _feed(framing, data), data)

    @_showFalsifyingExample
    @_FRAMING_SETTINGS
    @given(_anyMessage(_LEGACY_CORPUS))
    def test_legacyAnyFirstMessage(self, data):
        """
        Legacy framing answers any first message (the stream header's
        place) with a known kind or a known stream error condition.
        """
        framing = _legacy()
        self.assertOutcome(lambda data: _feed(framing, data), data)

    @_showFalsifyingExample
    @_FRAMING_SETTINGS
    @given(_anyMessage(_ALL_CORPUS))
    def test_detectFramingAnyMessage(self, data):
        """
        detectFraming answers any first message with a framing, which then
        takes the same message as an C{'open'} or refuses it with a known
        condition, or with a known stream error.
        """
        try:
            framingClass = detectFraming(data)
        except FramingError as e:
            self.assertIn(e.condition, CONDITIONS)
            return
        self.assertIn(framingClass, (RFC7395Framing, LegacyFraming))
        framing = framingClass(FramingRecorder())
        outcome = self.assertOutcome(lambda data: _feed(framing, data), data)
        if outcome is not None:
            self.assertEqual(outcome[0], "open")

    @_showFalsifyingExample
    @_FRAMING_SETTINGS
    @given(_anyMessage(_RFC_CORPUS))
    @example(b"\xef\xbb\xbf<?xml version='1.0'?><presence xmlns='jabber:client'/>")
    def test_rfc7395AcceptedElementIsClean(self, data):
        """
        Whatever RFC 7395 framing accepts as an element was one standalone
        namespace-well-formed element free of restricted XML, and the tree
        it hands the XmlStream is the same element: exactly one clean child
        of the stream, with the root's name.
        """
        framing = _rfc7395()
        try:
            kind, element = _feed(framing, data)
        except FramingError:
            return
        if kind != "element":
            return
        body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
        strictParse(body)
        self.assertEqual(_shape(element), _strictShape(body, "jabber:client"))

    @_showFalsifyingExample
    @_FRAMING_SETTINGS
    @given(_anyMessage(_LEGACY_CORPUS))
    def test_legacyAcceptedElementIsClean(self, data):
        """
        Whatever legacy framing accepts as an element after a stream
        header is, within that header, exactly one clean child of the
        stream.
        """
        framing = _legacy()
        kind, root = _feed(framing, LEGACY_HEADER)
        try:
            kind, element = _feed(framing, data)
        except FramingError:
            return
        if kind != "element":
            return
        self.assertEqual(_stream(root, element), 1)

    @_showFalsifyingExample
    @_FRAMING_SETTINGS
    @given(st.one_of(st.sampled_from(LEGACY_HEADERS), _mutated(LEGACY_HEADERS)))
    def test_legacyAcceptedHeaderOpensCleanStream(self, data):
        """
        Once legacy framing accepts a stream header, a plain stanza is
        accepted after it, and header, stanza and footer as handed to the
        XmlStream form one clean document.
        """
        framing = _legacy()
        try:
            kind, root = _feed(framing, data)
        except FramingError:
            return
        if kind != "open":
            return
        kind, stanza = _feed(framing, b"<message to='a@example.com'/>")
        self.assertEqual(kind, "element")
        self.assertEqual(_stream(root, stanza), 1)

    @_showFalsifyingExample
    @_FRAMING_SETTINGS
    @given(_XML_TEXT, _XML_TEXT)
    def test_legacyHeaderNamespaces(self, default, prefixed):
        """
        Whatever namespaces a legacy stream header declares, once the header
        is accepted a stanza relying on them is accepted, in exactly those
        namespaces.
        """
        framing = _legacy()
        header = (
            b"<stream:stream xmlns='" + _attributeValue(default) + b"' "
            b"xmlns:p='" + _attributeValue(prefixed) + b"' "
            b"xmlns:stream='http://etherx.jabber.org/streams' to='example.com'>"
        )
        try:
            kind, root = _feed(framing, header)
        except FramingError as e:
            self.assertIn(e.condition, CONDITIONS)
            return
        kind, stanza = _feed(framing, b"<message><p:x/></message>")
        self.assertEqual(kind, "element")
        self.assertEqual(
            (stanza.uri, stanza.firstChildElement().uri), (default, prefixed)
        )

    @_showFalsifyingExample
    @_FRAMING_SETTINGS
    @given(_insertion(RFC_STANZAS + RFC_FRAMING))
    def test_rfc7395RestrictedInsertion(self, case):
        """
        A comment, processing instruction, DOCTYPE or undefined entity put
        into a valid RFC 7395 message gets the condition L{RFC_EXPECTED}
        names for that construct and place.
        """
        construct, region, data = case
        framing = _rfc7395(opened=b"<open " not in data)
        with self.assertRaises(FramingError) as raised:
            _feed(framing, data)
        self.assertEqual(raised.exception.condition, RFC_EXPECTED[construct, region])

    @_showFalsifyingExample
    @_FRAMING_SETTINGS
    @given(_insertion(LEGACY_STANZAS + RFC_STANZAS))
    def test_legacyRestrictedInsertion(self, case):
        """
        A comment, processing instruction, DOCTYPE or undefined entity put
        into a valid legacy stanza gets the condition L{LEGACY_EXPECTED}
        names for that construct and place.
        """
        construct, region, data = case
        framing = _legacy()
        _feed(framing, LEGACY_HEADER)
        with self.assertRaises(FramingError) as raised:
            _feed(framing, data)
        self.assertEqual(raised.exception.condition, LEGACY_EXPECTED[construct, region])


class ServerPropertyTests(unittest.TestCase):
    """
    Properties of the whole server, driven in memory by a WebSocket client
    that sends any sequence of frames.
    """

    def assertCleanRFC7395Output(self, messages):
        """
        Assert that every text message is a standalone clean element.
        """
        for message in messages:
            strictParse(message)

    def assertCleanLegacyOutput(self, messages):
        """
        Assert that the text messages are streams, each an unclosed stream
        header, then one clean element per message; a restart begins the
        next with a new header, and the matching footer may end the last.
        """
        streams = []
        for message in messages:
            header = _LEGACY_HEADER.match(message)
            if header is not None:
                streams.append((b"</" + header.group(1) + b">", message, []))
            else:
                self.assertTrue(streams, "no stream header came first")
                streams[-1][2].append(message)
        for index, (footer, header, rest) in enumerate(streams):
            if rest and _LEGACY_FOOTER.match(rest[-1]):
                self.assertEqual(index, len(streams) - 1)
                self.assertEqual(rest.pop(), footer)
            self.assertEqual(_strictStream([header, footer]), 0)
            for message in rest:
                self.assertEqual(_strictStream([header, message, footer]), 1)

    def assertFramesAnswered(self, opener, frames):
        """
        Open the stream with C{opener}, send C{frames}, and assert that
        nothing escapes or is logged as an error, every text message sent is
        clean XML in the connection's framing, and a stream error is
        followed by the closing message and a WebSocket close with the
        matching code, then nothing.
        """
        client = WebSocketTestClient(
            self,
            xmlstream.XmlStreamServerFactory(_AnyDomainAuthenticator),
            maxMessageSize=1024,
        )
        client.handshake()
        client.send(opener)
        for payload, opcode in frames:
            client.send(payload, opcode)
        client.received()
        sent = list(client.frames)
        client.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual(client.transport.value(), b"")

        legacy = isinstance(client.connection.framing, LegacyFraming)
        texts = [payload for opcode, payload in sent if opcode == OP_TEXT]
        self.assertTrue(texts)
        if legacy:
            self.assertCleanLegacyOutput(texts)
        else:
            self.assertCleanRFC7395Output(texts)

        closes = [i for i, (opcode, _) in enumerate(sent) if opcode == OP_CLOSE]
        self.assertLessEqual(len(closes), 1)
        if closes:
            self.assertEqual(closes[0], len(sent) - 1)

        conditions = [
            (i, _streamErrorCondition(payload) if opcode == OP_TEXT else None)
            for i, (opcode, payload) in enumerate(sent)
        ]
        errors = [(i, cond) for i, cond in conditions if cond is not None]
        if not errors:
            if closes:
                code = struct.unpack("!H", sent[-1][1][:2])[0] if sent[-1][1] else None
                self.assertIn(code, (None, 1000, 1007))
            return
        self.assertEqual(len(errors), 1)
        index, condition = errors[0]
        self.assertEqual(len(sent), index + 3)
        opcode, closing = sent[index + 1]
        self.assertEqual(opcode, OP_TEXT)
        if legacy:
            self.assertTrue(_LEGACY_FOOTER.match(closing), closing)
        else:
            self.assertEqual(strictParse(closing)[:2], (NS_FRAMING, "close"))
        opcode, payload = sent[index + 2]
        self.assertEqual(opcode, OP_CLOSE)
        self.assertEqual(
            struct.unpack("!H", payload[:2])[0], _CLOSE_CODES.get(condition, 1000)
        )

    @_showFalsifyingExample
    @_SERVER_SETTINGS
    @given(st.sampled_from([OPEN, LEGACY_HEADER]), st.lists(_serverFrame(), max_size=8))
    def test_anyFrames(self, opener, frames):
        """
        Whatever frames follow an RFC 7395 C{<open/>} or a legacy stream
        header, the server answers with clean XML and ends a stream error
        properly, with nothing escaping or logged as an error.
        """
        self.assertFramesAnswered(opener, frames)

    @_showFalsifyingExample
    @settings(_SERVER_SETTINGS, max_examples=60)
    @given(
        st.sampled_from(LEGACY_HEADERS) | _mutated(LEGACY_HEADERS, 1),
        st.lists(
            st.tuples(
                st.sampled_from(_LEGACY_CORPUS) | _mutated(_LEGACY_CORPUS, 1),
                st.just(OP_TEXT),
            ),
            max_size=3,
        ),
    )
    def test_anyLegacyHeader(self, opener, frames):
        """
        Whatever form of legacy stream header opens the stream, and
        whatever messages follow, the server answers with clean XML and
        ends a stream error properly, with nothing escaping or logged as
        an error.
        """
        self.assertFramesAnswered(opener, frames)


_NAMES = st.sampled_from(["message", "body", "x", "item", "a-b", "q.z"])
_URIS = st.sampled_from(["jabber:client", "urn:a", "urn:b", "http://etherx.jabber.org/streams"])
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)


@st.composite
def _elements(draw, depth=0):
    """
    A domish tree like the ones clients' stanzas are parsed into:
    namespaced elements, plain and xml:lang attributes, text.
    """
    from twisted.words.xish import domish

    element = domish.Element((draw(_URIS), draw(_NAMES)))
    for name in draw(st.lists(st.sampled_from(["to", "id", "type", "a"]), max_size=3,
                              unique=True)):
        element[name] = draw(_TEXT)
    if draw(st.booleans()):
        element[("http://www.w3.org/XML/1998/namespace", "lang")] = draw(_TEXT)
    if depth < 3:
        for _ in range(draw(st.integers(0, 3))):
            if draw(st.booleans()):
                element.addChild(draw(_elements(depth + 1)))
            else:
                element.addContent(draw(_TEXT))
    return element


class SerializePropertyTests(unittest.TestCase):
    """
    The embedded server's stream serializer writes exactly what domish
    writes.
    """

    @settings(_FRAMING_SETTINGS, max_examples=300)
    @given(_elements())
    def test_sameAsDomish(self, element):
        """
        For any tree, in a client stream's scope and alone, the fast
        serializer's text is domish's.
        """
        from xmppws.c2s._serialize import serialize

        prefixes = {"http://etherx.jabber.org/streams": "stream"}
        self.assertEqual(
            serialize(element, "jabber:client", prefixes),
            element.toXml(prefixes=prefixes, defaultUri="jabber:client",
                          prefixesInScope=list(prefixes.values())),
        )
        self.assertEqual(serialize(element), element.toXml())
