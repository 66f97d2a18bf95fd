# -*- test-case-name: tests.test_framing -*-
"""
The two ways XMPP travels in WebSocket messages.

L{RFC7395Framing} is RFC 7395: every message is a standalone XML document,
the stream header is C{<open/>} and the footer C{<close/>}.
L{LegacyFraming} is draft-ietf-xmpp-websocket-00: the classic
C{<stream:stream>} header is a message of its own, left unclosed, and
stanzas inherit its namespaces.  L{detectFraming} picks one from a client's
first message.

Inbound messages are checked here with a strict, namespace-aware expat
parser before any of their bytes reach an C{XmlStream}: one complete
element per message, RFC 6120 restricted XML, namespace well-formedness.
"""

import re
from dataclasses import dataclass, field
from xml.parsers import expat

from twisted.words.xish import domish
from zope.interface import implementer

from xmppws.iwebsocket import IFraming

__all__ = [
    "NS_FRAMING",
    "NS_STREAMS",
    "NS_XML",
    "NS_XMPP_STREAMS",
    "FramingError",
    "InboundMessage",
    "RFC7395Framing",
    "LegacyFraming",
    "detectFraming",
    "streamErrorElement",
]

NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
NS_STREAMS = "http://etherx.jabber.org/streams"
NS_XMPP_STREAMS = "urn:ietf:params:xml:ns:xmpp-streams"
NS_XML = "http://www.w3.org/XML/1998/namespace"

_HEADER_ATTRIBUTES = ("to", "from", "id", "version")
_BOM = b"\xef\xbb\xbf"
_XML_DECLARATION = re.compile(
    rb"""\s*<\?xml\s+version\s*=\s*(['"])1\.[0-9]+\1"""
    rb"""(\s+encoding\s*=\s*(['"])[A-Za-z][A-Za-z0-9._-]*\3)?"""
    rb"""(\s+standalone\s*=\s*(['"])(yes|no)\5)?\s*\?>"""
)


class FramingError(Exception):
    """
    An inbound message that must end the stream.

    @ivar condition: the RFC 6120 stream error condition to send, such as
        C{'not-well-formed'} or C{'restricted-xml'}.
    @type condition: L{str}
    @ivar text: a human-readable explanation; never contains peer input.
    @type text: L{str}
    """

    def __init__(self, condition, text):
        Exception.__init__(self, condition, text)
        self.condition = condition
        self.text = text


@dataclass
class InboundMessage:
    """
    One inbound WebSocket message, checked.

    @ivar kind: C{'open'} (stream header), C{'close'} (stream footer),
        C{'element'} (a stanza or other top-level element) or C{'empty'}
        (whitespace only, to be ignored).
    @ivar payload: the message without any XML declaration.
    @ivar attributes: for C{'open'} and C{'close'}, the element's
        attributes, keyed by local name (C{xml:lang} as C{'xml:lang'}).
    """

    kind: str
    payload: bytes = b""
    attributes: dict = field(default_factory=dict)


EMPTY = InboundMessage("empty")


def _refuse(condition, text):
    def handler(*args):
        raise FramingError(condition, text)

    return handler


def _newParser(prefixes=False):
    """
    Create an expat parser that enforces RFC 6120 restricted XML.

    @param prefixes: report the prefix of each element name too.
    @rtype: L{xml.parsers.expat.XMLParserType}
    """
    parser = expat.ParserCreate(encoding="UTF-8", namespace_separator=" ")
    parser.namespace_prefixes = prefixes
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse(
        "restricted-xml", "Document type declarations are not allowed in XMPP."
    )
    parser.EntityDeclHandler = _refuse(
        "restricted-xml", "Entity declarations are not allowed in XMPP."
    )
    parser.ProcessingInstructionHandler = _refuse(
        "restricted-xml", "Processing instructions are not allowed in XMPP."
    )
    parser.CommentHandler = _refuse(
        "restricted-xml", "Comments are not allowed in XMPP."
    )
    return parser


_UNDEFINED_ENTITY = expat.errors.codes[expat.errors.XML_ERROR_UNDEFINED_ENTITY]


def _parse(parser, *chunks):
    """
    Feed chunks to C{parser}, the last one as final, mapping expat errors
    to L{FramingError}.
    """
    try:
        for chunk in chunks[:-1]:
            parser.Parse(chunk, False)
        parser.Parse(chunks[-1], True)
    except expat.ExpatError as e:
        raise _framingError(e)


def _framingError(e):
    """
    Translate an expat error into the stream error it calls for.

    @type e: L{expat.ExpatError}
    @rtype: L{FramingError}
    """
    if e.code == _UNDEFINED_ENTITY:
        return FramingError(
            "restricted-xml", "Only the five predefined XML entities are allowed."
        )
    return FramingError(
        "not-well-formed",
        "The message is not a well-formed XML element: %s."
        % (expat.errors.messages[e.code],),
    )


def _splitName(name):
    """
    Split an expat name C{'uri local [prefix]'} into C{(uri, local)}.
    """
    parts = name.split(" ")
    if len(parts) == 1:
        return None, parts[0]
    return parts[0], parts[1]


def _localAttributes(attrs):
    """
    Key attributes by local name, C{xml:lang} as C{'xml:lang'}.
    """
    result = {}
    for name, value in attrs.items():
        uri, local = _splitName(name)
        if uri == NS_XML:
            result["xml:" + local] = value
        elif uri is None:
            result[local] = value
    return result


def _withoutBOM(data):
    """
    Drop a leading UTF-8 byte order mark.
    """
    return data[3:] if data[:3] == _BOM else data


def _attribute(value):
    """
    Quote an attribute value, keeping whitespace characters as character
    references so attribute normalisation does not change them.
    """
    value = (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace("'", "&apos;")
        .replace("\t", "&#9;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
    )
    return "'%s'" % (value,)


def _stripDeclaration(data):
    """
    Remove a leading XML declaration.

    @raise FramingError: if the message starts with a malformed one.
    """
    if data.lstrip()[:5] == b"<?xml":
        match = _XML_DECLARATION.match(data)
        if match is None:
            raise FramingError("not-well-formed", "Malformed XML declaration.")
        return data[match.end() :]
    return data


def _firstElement(data):
    """
    Find the name of the first element of a message.

    @return: C{(uri, local)} of the first element.
    @raise FramingError: if the message is not XML.
    """
    parser = _newParser()
    found = []

    def start(name, attrs):
        found.append(name)
        parser.StartElementHandler = None

    parser.StartElementHandler = start
    try:
        parser.Parse(data, False)
    except FramingError:
        raise
    except expat.ExpatError:
        pass
    if not found:
        raise FramingError(
            "not-well-formed", "The first message does not start with an element."
        )
    return _splitName(found[0])


def _refuseOutput(*args):
    raise ValueError("not plain element output")


def _oneElement(data):
    """
    Check, without namespace processing, that C{data} is exactly one
    complete element with no comments or processing instructions.

    @return: the root's qualified name and attributes, or L{None}.
    """
    if data[:1] != b"<" or data[1:2] in (b"/", b"?", b"!"):
        return None
    parser = expat.ParserCreate("UTF-8")
    root = []

    def start(name, attrs):
        root.append((name, attrs))
        parser.StartElementHandler = None

    parser.StartElementHandler = start
    parser.CommentHandler = _refuseOutput
    parser.ProcessingInstructionHandler = _refuseOutput
    try:
        parser.Parse(data, True)
    except (expat.ExpatError, ValueError):
        return None
    return root[0] if root else None


def detectFraming(data):
    """
    Choose the framing from a client's first message.

    @param data: the first WebSocket message.
    @type data: L{bytes}
    @return: a new framing for the connection.
    @rtype: L{IFraming} provider
    @raise FramingError: if the message opens neither framing.
    """
    uri, local = _firstElement(_withoutBOM(data))
    if (uri, local) == (NS_FRAMING, "open"):
        return RFC7395Framing()
    if (uri, local) == (NS_STREAMS, "stream"):
        return LegacyFraming()
    if local in ("open", "stream"):
        raise FramingError(
            "invalid-namespace",
            "The stream must open with an RFC 7395 <open/> or a stream header.",
        )
    raise FramingError(
        "bad-format",
        "The first message must open the stream with an RFC 7395 <open/>.",
    )


def streamErrorElement(condition, text=None):
    """
    Build a C{<stream:error/>} element.

    @param condition: an RFC 6120 stream error condition.
    @type condition: L{str}
    @param text: optional explanation.
    @type text: L{str} or L{None}
    @rtype: L{domish.Element}
    """
    element = domish.Element((NS_STREAMS, "error"))
    element.addElement((NS_XMPP_STREAMS, condition))
    if text:
        element.addElement((NS_XMPP_STREAMS, "text"), content=text)
    return element


@implementer(IFraming)
class RFC7395Framing:
    """
    RFC 7395 framing: every message a standalone XML document.
    """

    name = "rfc7395"

    def parseMessage(self, data):
        data = _withoutBOM(data)
        if not data.strip():
            return EMPTY
        parser = _newParser()
        root = []

        def start(name, attrs):
            root.append((name, attrs, parser.CurrentByteIndex))
            parser.StartElementHandler = None

        parser.StartElementHandler = start
        _parse(parser, data)
        name, attrs, offset = root[0]
        uri, local = _splitName(name)
        if uri == NS_FRAMING:
            if local in ("open", "close"):
                return InboundMessage(local, data, _localAttributes(attrs))
            raise FramingError(
                "bad-format", "Only <open/> and <close/> belong to the framing namespace."
            )
        if uri == NS_STREAMS and local == "stream":
            raise FramingError(
                "bad-format",
                "This stream uses RFC 7395 framing: send <open/>, not a stream header.",
            )
        if offset and data.lstrip()[:5] == b"<?xml":
            data = data[offset:]
        return InboundMessage("element", data)

    def streamBytes(self, message, namespace):
        if message.kind == "element":
            return message.payload
        if message.kind == "close":
            return b"</stream:stream>"
        header = domish.Element((NS_STREAMS, "stream"), namespace)
        for key in _HEADER_ATTRIBUTES:
            if key in message.attributes:
                header[key] = message.attributes[key]
        if "xml:lang" in message.attributes:
            header[(NS_XML, "lang")] = message.attributes["xml:lang"]
        return header.toXml(prefixes={NS_STREAMS: "stream"}, closeElement=0).encode(
            "utf-8"
        )

    def headerMessage(self, root, initiating, lang):
        element = domish.Element((NS_FRAMING, "open"))
        for key in _HEADER_ATTRIBUTES:
            if root.hasAttribute(key):
                element[key] = root[key]
        streamLang = root.attributes.get((NS_XML, "lang"))
        if streamLang is None and not initiating:
            streamLang = lang
        if streamLang is not None:
            element[(NS_XML, "lang")] = streamLang
        return element.toXml().encode("utf-8")

    def elementMessage(self, element, namespace):
        return element.toXml(prefixes={NS_STREAMS: "stream"}).encode("utf-8")

    def rawElementMessage(self, data, namespace):
        found = _oneElement(data)
        if found is None:
            return None
        qname, attrs = found
        prefix, colon, _ = qname.partition(":")
        if colon and prefix != "stream":
            return None
        declarations = ""
        if "xmlns" not in attrs:
            declarations += " xmlns=" + _attribute(namespace)
        if "xmlns:stream" not in attrs and (colon or b"stream:" in data):
            declarations += " xmlns:stream='%s'" % (NS_STREAMS,)
        if not declarations:
            return data
        cut = 1 + len(qname.encode("utf-8"))
        return data[:cut] + declarations.encode("utf-8") + data[cut:]

    def closeMessage(self, seeOtherURI=None):
        element = domish.Element((NS_FRAMING, "close"))
        if seeOtherURI is not None:
            element["see-other-uri"] = seeOtherURI
        return element.toXml().encode("utf-8")


@implementer(IFraming)
class LegacyFraming:
    """
    draft-ietf-xmpp-websocket-00 framing: an unclosed stream header as a
    message of its own, then one stanza per message.

    Stanzas may rely on the namespaces the peer's header declared, so the
    framing keeps them; use one instance per connection.

    @ivar _context: the start and end of a wrapper element that declares
        the namespaces of the peer's last header, used to check stanzas.
    @ivar _qname: the qualified name of the peer's stream header.
    @ivar _outPrefix: the prefix of the streams namespace in this side's
        header, used for the elements and the footer sent after it.
    """

    name = "legacy"

    def __init__(self):
        self._context = None
        self._qname = b"stream:stream"
        self._outPrefix = "stream"

    def _isHeader(self, data):
        if self._context is None:
            return True
        body = _stripDeclaration(data).lstrip()
        tag = b"<" + self._qname
        return body.startswith(tag) and body[len(tag) : len(tag) + 1] in (
            b" ",
            b"\t",
            b"\r",
            b"\n",
            b">",
            b"/",
        )

    def _isFooter(self, data):
        body = data.strip()
        if not body.startswith(b"</"):
            return False
        return body.endswith(b">") and body[2:-1].strip() == self._qname

    def parseMessage(self, data):
        data = _withoutBOM(data)
        if not data.strip():
            return EMPTY
        if self._context is not None and self._isFooter(data):
            return InboundMessage("close")
        if self._isHeader(data):
            return self._parseHeader(data)
        return self._parseElement(data)

    def _parseHeader(self, data):
        parser = _newParser(prefixes=True)
        state = {"root": None, "ended": False, "extra": False}
        declared = []

        def start(name, attrs):
            if state["root"] is None:
                state["root"] = (name, attrs)
            else:
                state["extra"] = True

        def end(name):
            state["ended"] = True

        def text(data):
            if data.strip():
                state["extra"] = True

        def namespace(prefix, uri):
            if state["root"] is None:
                declared.append((prefix, uri))

        parser.StartElementHandler = start
        parser.EndElementHandler = end
        parser.CharacterDataHandler = text
        parser.StartNamespaceDeclHandler = namespace
        try:
            parser.Parse(data, False)
        except expat.ExpatError as e:
            raise _framingError(e)
        if state["root"] is None:
            raise FramingError("not-well-formed", "Incomplete stream header.")
        name, attrs = state["root"]
        uri, local, *prefix = name.split(" ") if " " in name else (None, name)
        if (uri, local) != (NS_STREAMS, "stream"):
            raise FramingError(
                "bad-format", "A stream header was expected at this point."
            )
        if state["extra"]:
            raise FramingError(
                "bad-format", "The stream header must be a message of its own."
            )
        prefix = prefix[0].encode("utf-8") if prefix else b""
        qname = (prefix + b":stream") if prefix else b"stream"
        if state["ended"]:
            _parse(parser, b"")
            body = data.rstrip()
            if body.endswith(b"/>"):
                payload = body[:-2] + b">"
            else:
                payload = body[: body.rindex(b"</")]
        else:
            _parse(parser, b"</" + qname + b">")
            payload = data
        wrapper = "<w"
        for declPrefix, declURI in declared:
            name = "xmlns" if declPrefix is None else "xmlns:" + declPrefix
            wrapper += " %s=%s" % (name, _attribute(declURI or ""))
        self._context = ((wrapper + ">").encode("utf-8"), b"</w>")
        self._qname = qname
        return InboundMessage("open", payload, _localAttributes(attrs))

    def _parseElement(self, data):
        body = _stripDeclaration(data)
        if body.lstrip()[:9] == b"<!DOCTYPE":
            raise FramingError(
                "restricted-xml", "Document type declarations are not allowed in XMPP."
            )
        parser = _newParser()
        state = {"depth": 0, "count": 0, "text": False}

        def start(name, attrs):
            state["depth"] += 1
            if state["depth"] == 2:
                state["count"] += 1

        def end(name):
            state["depth"] -= 1

        def text(data):
            if state["depth"] == 1 and data.strip():
                state["text"] = True

        parser.StartElementHandler = start
        parser.EndElementHandler = end
        parser.CharacterDataHandler = text
        opening, closing = self._context
        _parse(parser, opening, body, closing)
        if state["count"] != 1 or state["text"]:
            raise FramingError(
                "not-well-formed", "A message must hold exactly one XML element."
            )
        return InboundMessage("element", body)

    def streamBytes(self, message, namespace):
        if message.kind == "close":
            return b"</" + self._qname + b">"
        return message.payload

    def headerMessage(self, root, initiating, lang):
        if (
            not initiating
            and lang is not None
            and (NS_XML, "lang") not in root.attributes
        ):
            root[(NS_XML, "lang")] = lang
        prefixes = getattr(root, "localPrefixes", None) or {}
        for prefix, uri in prefixes.items():
            if uri == NS_STREAMS:
                break
        else:
            prefix = "stream"
            root.localPrefixes = dict(prefixes, stream=NS_STREAMS)
        self._outPrefix = prefix
        return root.toXml(closeElement=0).encode("utf-8")

    def rawElementMessage(self, data, namespace):
        return data if _oneElement(data) is not None else None

    def elementMessage(self, element, namespace):
        return element.toXml(
            prefixes={NS_STREAMS: self._outPrefix},
            defaultUri=namespace,
            prefixesInScope=[self._outPrefix],
        ).encode("utf-8")

    def closeMessage(self, seeOtherURI=None):
        return ("</%s:stream>" % (self._outPrefix,)).encode("utf-8")
