# -*- test-case-name: tests.test_framing -*-
"""
The ways an XMPP stream travels: in WebSocket messages (RFC 7395, and the
older draft-ietf-xmpp-websocket-00) and as RFC 6120 bytes on TCP.

L{RFC7395Framing}: every message is a standalone XML document, the stream
header is C{<open/>} and the footer C{<close/>}.  L{LegacyFraming}: the
classic C{<stream:stream>} header is a message of its own, left unclosed,
and stanzas inherit its namespaces.  L{StreamFraming}: RFC 6120 over TCP.
L{detectFraming} picks a WebSocket framing from a client's first message.

Inbound, a framing checks what the peer sends (one complete element per
message, RFC 6120 restricted XML, namespace well-formedness, the order of
header, elements and footer) and builds the elements the C{XmlStream}
consumes in the same expat pass (L{xmppws._parser}).  Outbound, it turns
what the C{XmlStream} wrote into messages: an element the C{XmlStream}
serialised whole is sent as written, with only the namespace declarations
a standalone document needs added.
"""

import re
from xml.parsers import expat

from twisted.words.xish import domish
from zope.interface import implementer

from xmppws._parser import (
    ElementParser,
    FramingError,
    MessageParser,
    expatError,
    newExpatParser,
)
from xmppws.iwebsocket import IFraming

__all__ = [
    "NS_FRAMING",
    "NS_STREAMS",
    "NS_XML",
    "NS_XMPP_STREAMS",
    "FramingError",
    "LegacyFraming",
    "RFC7395Framing",
    "StreamFraming",
    "detectFraming",
    "messageBody",
    "scanElement",
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
_TAG = re.compile(rb"<(/?)([^\s/>]+)([^>]*?)(/?)>")
_XMLNS = re.compile(rb"""\sxmlns\s*=""")
_DECLARATIONS = {}
_UNKNOWN_REFERENCE = re.compile(rb"&(?!(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);)")
_XMLNS_STREAM = re.compile(rb"""\sxmlns:stream\s*=""")


def _withoutBOM(data):
    """
    Drop a leading UTF-8 byte order mark.
    """
    return data[3:] if data[:3] == _BOM else data


def _stripDeclaration(data, leadingSpace=False):
    """
    Remove a leading XML declaration.

    @param leadingSpace: also after whitespace (draft-00 is lenient).
    @raise FramingError: if the message starts with a malformed one.
    """
    if data[:5] == b"<?xml" or (leadingSpace and data.lstrip()[:5] == b"<?xml"):
        match = _XML_DECLARATION.match(data)
        if match is None:
            raise FramingError("not-well-formed", "Malformed XML declaration.")
        return data[match.end() :]
    return data


def _refuseDoctype(data):
    if data.lstrip()[:9] == b"<!DOCTYPE":
        raise FramingError(
            "restricted-xml", "Document type declarations are not allowed in XMPP."
        )


def messageBody(data, lenient=False):
    """
    The XML of a WebSocket message without what may precede its element
    (a byte order mark, an XML declaration), checked for a document type
    declaration: what a relay writes on as it came.

    @type data: L{bytes}
    @param lenient: also remove a declaration after whitespace (draft-00).
    @rtype: L{bytes}
    @raise FramingError: for a malformed XML declaration, or a document
        type declaration.
    """
    body = _stripDeclaration(_withoutBOM(data), lenient)
    _refuseDoctype(body)
    return body


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


def scanElement(data):
    """
    Check, without parsing, that C{data} is one complete element as an
    C{XmlStream} serialises it: tags that nest and match, no text outside
    the element, no comments, processing instructions or CDATA.

    It reads tags only, so it is no well-formedness check; it tells the
    output of C{Element.toXml()} from partial or several elements written
    as raw strings, and from references to entities XML does not define.

    @type data: L{bytes}
    @return: the root's qualified name and the text of its start tag
        after the name (its attributes), or L{None}.
    @rtype: L{tuple} of (L{bytes}, L{bytes}) or L{None}
    """
    if data[:1] != b"<":
        return None
    if b"&" in data and _UNKNOWN_REFERENCE.search(data):
        return None
    tags = _TAG.findall(data)
    closing, name, attributes, empty = tags[0] if tags else (b"/", b"", b"", b"")
    if closing or name[:1] in (b"!", b"?") or data[-1:] != b">":
        return None
    if empty:
        # An empty root must be the whole of it.
        return (name, attributes) if len(tags) == 1 else None
    if not data.endswith(b"</" + name + b">"):
        return None
    stack = [name]
    for closing, tag, _, empty in tags[1:-1]:
        if tag[:1] in (b"!", b"?"):
            return None
        if closing:
            if stack.pop() != tag or not stack:
                return None
        elif not empty:
            stack.append(tag)
    if len(stack) != 1 or tags[-1][0] != b"/":
        return None
    return name, attributes


def detectFraming(data):
    """
    Choose the framing from a client's first WebSocket message.

    @param data: the first message.
    @type data: L{bytes}
    @return: the framing class, L{RFC7395Framing} or L{LegacyFraming}.
    @raise FramingError: if the message opens neither framing.
    """
    uri, local = _firstElement(_withoutBOM(data))
    if (uri, local) == (NS_FRAMING, "open"):
        return RFC7395Framing
    if (uri, local) == (NS_STREAMS, "stream"):
        return LegacyFraming
    if local in ("open", "stream"):
        raise FramingError(
            "invalid-namespace",
            "The stream must open with an RFC 7395 <open/> or a stream header.",
        )
    raise FramingError(
        "bad-format",
        "The first message must open the stream with an RFC 7395 <open/>.",
    )


def _firstElement(data):
    """
    Find the name of the first element of a message.

    @return: C{(uri, local)} of the first element.
    @raise FramingError: if the message is not XML.
    """
    parser = newExpatParser()
    found = []

    def start(name, attrs):
        found.append(name)
        parser.StartElementHandler = None

    parser.StartElementHandler = start
    try:
        parser.Parse(data, False)
    except expat.ExpatError:
        pass
    if not found:
        raise FramingError(
            "not-well-formed", "The first message does not start with an element."
        )
    uri, _, local = found[0].rpartition(" ")
    return uri or None, local


def streamErrorElement(condition, text=None):
    """
    Build a C{<stream:error/>} element.

    @param condition: an RFC 6120 stream error condition.
    @param text: optional explanation.
    @rtype: L{domish.Element}
    """
    element = domish.Element((NS_STREAMS, "error"))
    element.addElement((NS_XMPP_STREAMS, condition))
    if text:
        element.addElement((NS_XMPP_STREAMS, "text"), content=text)
    return element


def _headerOf(element, namespace):
    """
    The C{stream:stream} element an C{XmlStream} expects for an RFC 7395
    C{<open/>}.
    """
    root = domish.Element(
        (NS_STREAMS, "stream"), namespace, localPrefixes={"stream": NS_STREAMS}
    )
    for key in _HEADER_ATTRIBUTES:
        value = element.attributes.get(key)
        if value is not None:
            root[key] = value
    lang = element.attributes.get((NS_XML, "lang"))
    if lang is not None:
        root[(NS_XML, "lang")] = lang
    return root


class _MessageFraming:
    """
    What both WebSocket framings share: one element per message, read in
    the context of the stream, and the order of header and elements.

    @ivar _parser: the L{ElementParser} of the current stream, or L{None}
        before its header.
    @ivar _awaitingHeader: C{True} until the peer's header arrives, and
        again after a restart.
    """

    messageOriented = True

    def __init__(self, receiver, namespace="jabber:client"):
        """
        @param receiver: told what the peer's stream holds, an
            L{xmppws.iwebsocket.IFramingReceiver}.
        @param namespace: the stream's content namespace, which RFC 7395
            stanzas take when they declare none.
        """
        self._receiver = receiver
        self._namespace = namespace
        self._parser = None
        self._awaitingHeader = True

    def restart(self):
        self._awaitingHeader = True

    def readDone(self):
        if self._parser is not None:
            self._parser.release()

    def _oneElement(self, body):
        """
        Read a message that must hold exactly one element.
        """
        _refuseDoctype(body)
        elements = self._parser.parse(body)
        if len(elements) != 1:
            raise FramingError(
                "not-well-formed", "A message must hold exactly one XML element."
            )
        return elements[0]

    def _element(self, element):
        if self._awaitingHeader:
            raise FramingError(
                "bad-format", "A stream header (<open/>) was expected here."
            )
        self._receiver.elementReceived(element)

    def treeMessage(self, element, namespace):
        return element.toXml(prefixes={NS_STREAMS: "stream"}).encode("utf-8")


@implementer(IFraming)
class RFC7395Framing(_MessageFraming):
    """
    RFC 7395 framing: every message a standalone XML document.
    """

    name = "rfc7395"

    def dataReceived(self, data):
        data = _withoutBOM(data)
        if not data.strip():
            return
        body = _stripDeclaration(data)
        stripped = body.strip(b" \t\r\n")
        if stripped[:1] != b"<" or stripped[-1:] != b">":
            # A standalone document has nothing but whitespace around its
            # element (no text, no references).
            raise FramingError(
                "not-well-formed", "A message must hold exactly one XML element."
            )
        if self._parser is None:
            self._parser = MessageParser(
                b"<w xmlns=%s>" % (_attribute(self._namespace).encode("utf-8"),),
                standalone=True,
            )
        element = self._oneElement(body)
        if element.uri == NS_FRAMING:
            if element.name == "open":
                if not self._awaitingHeader:
                    raise FramingError(
                        "bad-format", "The stream may only be restarted after SASL or TLS."
                    )
                self._awaitingHeader = False
                self._receiver.streamOpened(_headerOf(element, self._namespace))
            elif element.name == "close":
                self._receiver.streamClosed()
            else:
                raise FramingError(
                    "bad-format",
                    "Only <open/> and <close/> belong to the framing namespace.",
                )
            return
        if (element.uri, element.name) == (NS_STREAMS, "stream"):
            raise FramingError(
                "bad-format",
                "This stream uses RFC 7395 framing: send <open/>, not a stream header.",
            )
        self._element(element)

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

    def elementMessage(self, data, namespace):
        found = scanElement(data)
        if found is None:
            return None
        qname, attributes = found
        prefix, colon, _ = qname.partition(b":")
        if colon and prefix != b"stream":
            return None
        declarations = b""
        if not _XMLNS.search(attributes):
            declaration = _DECLARATIONS.get(namespace)
            if declaration is None:
                declaration = _DECLARATIONS[namespace] = (
                    b" xmlns=" + _attribute(namespace).encode("utf-8")
                )
            declarations += declaration
        if (colon or b"stream:" in data) and not _XMLNS_STREAM.search(attributes):
            declarations += b" xmlns:stream='" + NS_STREAMS.encode("ascii") + b"'"
        if not declarations:
            return data
        cut = 1 + len(qname)
        return data[:cut] + declarations + data[cut:]

    def closeMessage(self, seeOtherURI=None):
        element = domish.Element((NS_FRAMING, "close"))
        if seeOtherURI is not None:
            element["see-other-uri"] = seeOtherURI
        return element.toXml().encode("utf-8")


@implementer(IFraming)
class LegacyFraming(_MessageFraming):
    """
    draft-ietf-xmpp-websocket-00 framing: an unclosed stream header as a
    message of its own, then one stanza per message.

    Stanzas may rely on the namespaces the peer's header declared; they
    are read in the context of that header.

    @ivar _qname: the qualified name of the peer's stream header.
    @ivar _outPrefix: the prefix of the streams namespace in this side's
        header, used for the elements and the footer sent after it.
    """

    name = "legacy"

    def __init__(self, receiver, namespace="jabber:client"):
        _MessageFraming.__init__(self, receiver, namespace)
        self._qname = b"stream:stream"
        self._outPrefix = "stream"

    def _isHeader(self, body):
        body = body.lstrip()
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

    def dataReceived(self, data):
        data = _withoutBOM(data)
        if not data.strip():
            return
        if self._parser is not None and self._isFooter(data):
            self._receiver.streamClosed()
            return
        if self._parser is None or self._isHeader(_stripDeclaration(data, True)):
            if not self._awaitingHeader:
                raise FramingError(
                    "bad-format", "The stream may only be restarted after SASL or TLS."
                )
            root = self._parseHeader(data)
            self._awaitingHeader = False
            self._receiver.streamOpened(root)
            return
        self._element(self._oneElement(_stripDeclaration(data, True)))

    def _parseHeader(self, data):
        """
        Read a stream header message, and prepare the context later
        stanzas are read in.

        @return: the header as an element.
        """
        parser = newExpatParser()
        parser.namespace_prefixes = True
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
            raise expatError(e) from None
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
        try:
            parser.Parse(b"" if state["ended"] else b"</" + qname + b">", True)
        except expat.ExpatError as e:
            raise expatError(e) from None
        context = "<w"
        prefixes = {}
        default = ""
        for declPrefix, declURI in declared:
            name = "xmlns" if declPrefix is None else "xmlns:" + declPrefix
            context += " %s=%s" % (name, _attribute(declURI or ""))
            if declPrefix is None:
                default = declURI or ""
            else:
                prefixes[declPrefix] = declURI
        self._parser = MessageParser((context + ">").encode("utf-8"))
        self._qname = qname
        root = domish.Element((NS_STREAMS, "stream"), default, localPrefixes=prefixes)
        for key, value in attrs.items():
            parts = key.split(" ")
            if len(parts) == 1:
                root[key] = value
            else:
                root[(parts[0], parts[1])] = value
        return root

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

    def elementMessage(self, data, namespace):
        return data if scanElement(data) is not None else None

    def treeMessage(self, element, namespace):
        return element.toXml(
            prefixes={NS_STREAMS: self._outPrefix},
            defaultUri=namespace,
            prefixesInScope=[self._outPrefix],
        ).encode("utf-8")

    def closeMessage(self, seeOtherURI=None):
        return ("</%s:stream>" % (self._outPrefix,)).encode("utf-8")


@implementer(IFraming)
class StreamFraming:
    """
    RFC 6120 over TCP: one XML document per stream, read as it arrives;
    what the C{XmlStream} writes goes out unchanged.

    @ivar maxElementSize: bytes one top-level element may take (counted
        from the end of the previous one), or 0 for no limit.
    """

    name = "rfc6120"
    messageOriented = False

    def __init__(self, receiver, namespace="jabber:client", maxElementSize=0):
        self._receiver = receiver
        self.maxElementSize = maxElementSize
        self._parser = None

    def dataReceived(self, data):
        while data:
            if self._parser is None:
                self._parser = ElementParser(self, maxElementSize=self.maxElementSize)
            data = self._parser.feed(data)
            if data is not None:
                self._parser = None

    def restart(self):
        if self._parser is not None:
            self._parser.stop()

    def readDone(self):
        """
        The stream's parser holds the state of the whole document: it
        stays.
        """

    # The parser's receiver: the stream header is checked here.

    def streamStarted(self, root):
        if (root.uri, root.name) != (NS_STREAMS, "stream"):
            raise FramingError(
                "invalid-namespace"
                if root.name == "stream"
                else "bad-format",
                "The stream must open with a stream header "
                "(<stream:stream xmlns:stream='%s'>)." % (NS_STREAMS,),
            )
        self._receiver.streamOpened(root)

    def elementReceived(self, element):
        self._receiver.elementReceived(element)

    def streamEnded(self):
        self._receiver.streamClosed()

    # Outbound: the bytes as written.

    def headerMessage(self, root, initiating, lang):
        if not initiating and lang is not None and (NS_XML, "lang") not in root.attributes:
            root[(NS_XML, "lang")] = lang
        return b"<?xml version='1.0'?>" + root.toXml(
            prefixes={NS_STREAMS: "stream"}, closeElement=0
        ).encode("utf-8")

    def elementMessage(self, data, namespace):
        return data

    def treeMessage(self, element, namespace):
        return element.toXml(
            prefixes={NS_STREAMS: "stream"},
            defaultUri=namespace,
            prefixesInScope=["stream"],
        ).encode("utf-8")

    def closeMessage(self, seeOtherURI=None):
        return b"</stream:stream>"
