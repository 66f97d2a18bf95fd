# -*- test-case-name: tests.test_gateway_split -*-
"""
One pass over XMPP XML that checks it as strictly as
L{xmppws._parser.ElementParser} does, without building trees: each
top-level element is reported as the bytes it took on the wire, with the
name and attributes of its root.

This is what a relay needs (the gateway, L{xmppws.gateway}): the bytes
are forwarded as they came, and only the few elements the relay acts on
(stream features, SASL success, stream management) are looked at, by the
name of their root.

L{ElementScanner} reads either a whole stream (the bytes of a TCP
connection: the stream header, top-level elements, the footer), reporting
where each element starts and ends in the byte stream however the bytes
were cut into reads, or a run of WebSocket messages inside a synthetic
context element, as L{xmppws._parser.ElementParser} does.
"""

from xml.parsers import expat

from xmppws._parser import (
    RENEW_AFTER,
    SLICE as _SLICE,
    TAG_END as _TAG_END,
    FramingError,
    expatError,
    newExpatParser,
)

__all__ = ["RENEW_AFTER", "ElementScanner", "Scanned", "StreamHeader"]

_UNDEFINED_ENTITY = expat.errors.codes[expat.errors.XML_ERROR_UNDEFINED_ENTITY]


class StreamHeader:
    """
    The start tag of a stream.

    @ivar uri: its namespace.
    @ivar name: its local name.
    @ivar prefix: its prefix, or L{None}.
    @ivar attributes: its attributes, by name (C{'uri name'} for a
        qualified one, such as C{xml:lang}).
    @ivar declarations: the namespaces it declares, C{{prefix: uri}}, the
        default one under L{None}.
    @ivar raw: the start tag, as it came.
    """

    def __init__(self, uri, name, prefix, attributes, declarations, raw):
        self.uri = uri
        self.name = name
        self.prefix = prefix
        self.attributes = attributes
        self.declarations = declarations
        self.raw = raw

    def get(self, name, default=None):
        """
        @return: the value of an unqualified attribute, or C{default}.
        """
        return self.attributes.get(name, default)

    @property
    def qname(self):
        """
        The qualified name, as in the tag.
        """
        return self.prefix + ":" + self.name if self.prefix else self.name


class Scanned:
    """
    One top-level element, scanned.

    @ivar raw: its bytes (in a stream, from its "<" to the ">" that ends
        it), or L{None} for a scanner reading messages (the caller has the
        message).
    @ivar uri: the namespace of its root.
    @ivar name: the local name of its root.
    @ivar qname: the qualified name of its root, as in the tag.
    @ivar attributes: the attributes of its root, as L{StreamHeader}'s.
    @ivar declaresDefault: whether its root declares the default namespace.
    @ivar inherited: the prefixes it uses that are declared outside of it
        (by the stream header), if prefixes are tracked.
    """

    __slots__ = ("raw", "uri", "name", "qname", "attributes", "declaresDefault", "inherited")

    def __init__(self, raw, uri, name, qname, attributes, declaresDefault, inherited):
        self.raw = raw
        self.uri = uri
        self.name = name
        self.qname = qname
        self.attributes = attributes
        self.declaresDefault = declaresDefault
        self.inherited = inherited

    def get(self, name, default=None):
        """
        @return: the value of an unqualified attribute of the root, or
            C{default}.
        """
        return self.attributes.get(name, default)


class _Restart(Exception):
    """
    Raised inside expat to stop right after the element that restarts
    the stream.

    @ivar offset: the stream offset where the new stream begins.
    """

    def __init__(self, offset):
        Exception.__init__(self, offset)
        self.offset = offset


class _Renew(Exception):
    """
    Raised inside expat to go on with a new parser after the element just
    reported.

    @ivar offset: the stream offset where the new parser begins.
    """

    def __init__(self, offset):
        Exception.__init__(self, offset)
        self.offset = offset


def _split(name):
    """
    Split an expat name with prefixes reported (C{'uri local prefix'}).

    @return: C{(uri, local, prefix)}.
    """
    parts = name.split(" ")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return parts[0], parts[1], None
    return "", name, None


class ElementScanner:
    """
    Check XMPP XML strictly and report its top-level elements as bytes.

    The receiver's C{streamStarted(header)} gets the stream header
    (a L{StreamHeader}), C{elementScanned(element)} each top-level
    element (a L{Scanned}) as soon as it ends, C{streamEnded()} the
    footer.  With a context, elements are collected in L{collected}
    instead and neither header nor footer is reported.

    @ivar collected: scanned elements not yet taken, with a context.
    @ivar depth: elements open now, the stream root or context included.
    @ivar header: the L{StreamHeader}, once read.
    """

    header = None

    def __init__(self, receiver=None, context=None, maxElementSize=0, standalone=False,
                 trackPrefixes=False):
        """
        @param receiver: has C{streamStarted(header)},
            C{elementScanned(element)} and C{streamEnded()}.
        @param context: the opening tag of a context element declaring
            the namespaces messages may use, or L{None} to read a whole
            stream.
        @param maxElementSize: bytes a top-level element may take, counted
            from the end of the previous one, or 0 for no limit.
        @param standalone: read messages as standalone documents
            (RFC 7395): an entity reference outside the element is a
            syntax error, not an undefined entity.
        @param trackPrefixes: find the prefixes each element inherits from
            the stream header (L{Scanned.inherited}).
        """
        self._receiver = receiver
        self._maxElementSize = maxElementSize
        self._context = context is not None
        self._standalone = standalone
        self._track = trackPrefixes
        self.collected = [] if self._context else None
        self.depth = 0
        self._fed = 0
        self._chunkStart = 0
        self._boundary = 0
        self._lastEnd = 0
        # The bytes from self._kept on, for slicing elements out.
        self._buffer = b""
        self._kept = 0
        self._start = 0
        self._root = None
        self._rootDefault = False
        self._inner = {}
        self._inherited = None
        self._headerDeclarations = {}
        self._stopAfter = False
        self._stopped = False
        self._reporting = False
        # Stream offset = expat's byte index + self._shift (a renewed
        # parser starts over from 0, after a copy of the stream header).
        self._shift = 0
        self._parserFed = 0
        self._priming = False
        self._contextTag = context
        self._parser = self._newParser()
        if context is not None:
            self._parser.Parse(context, False)

    def _newParser(self):
        parser = newExpatParser()
        parser.namespace_prefixes = True
        # Text matters only between top-level elements (where only
        # whitespace may be): the text handler is set there only, so text
        # inside elements costs no call, and no text buffer is needed.
        parser.StartElementHandler = self._startElement
        parser.EndElementHandler = self._endElement
        parser.CharacterDataHandler = self._text
        parser.StartNamespaceDeclHandler = self._startNamespace
        if self._track:
            parser.EndNamespaceDeclHandler = self._endNamespace
        return parser

    def _renew(self):
        """
        Go on with a new expat parser, between two top-level elements.

        expat keeps every distinct element and attribute name it has seen
        for the life of a parser (in its DTD tables), so a peer sending
        ever new names would grow it without bound: the parser is
        replaced after L{RENEW_AFTER} bytes, at the next element boundary,
        in the context of the same stream header (or context element).
        """
        self._parser = self._newParser()
        self._parserFed = 0
        self.depth = 0
        if self._context:
            self._parser.Parse(self._contextTag, False)
            return
        header = self.header.raw
        self._shift = self._lastEnd - len(header)
        self._priming = True
        try:
            self._parser.Parse(header, False)
        finally:
            self._priming = False

    def _position(self):
        """
        The stream offset of the token expat is reporting.
        """
        return self._parser.CurrentByteIndex + self._shift

    def feed(self, data):
        """
        Scan more bytes.

        @type data: L{bytes}
        @return: L{None}, or once the stream restarts (L{restartAfter}) the
            bytes that follow (they belong to a new stream).
        @raise FramingError: for input that must end the stream.
        """
        if self._stopped:
            return data
        chunkStart = self._chunkStart = self._fed
        self._fed += len(data)
        if not self._context:
            self._buffer = self._buffer + data if self._buffer else data
        offset, size = 0, len(data)
        try:
            while offset < size:
                # expat keeps the buffer a large read made it grow for the
                # life of the parser: it is fed in slices.
                if offset == 0 and size <= _SLICE:
                    piece = data
                else:
                    piece = data[offset : offset + _SLICE]
                try:
                    self._parser.Parse(piece, False)
                except _Renew as renew:
                    offset = renew.offset - chunkStart
                    self._renew()
                    continue
                offset += len(piece)
                self._parserFed += len(piece)
        except _Restart as restart:
            self._stopped = True
            return data[max(0, restart.offset - chunkStart) :]
        except expat.ExpatError as e:
            if self._standalone and self.depth <= 1 and e.code == _UNDEFINED_ENTITY:
                raise FramingError(
                    "not-well-formed", "A message must hold exactly one XML element."
                ) from None
            raise expatError(e) from None
        if self._context:
            if self._parserFed > RENEW_AFTER and self.depth == 1:
                self._renew()
            return None
        if self.depth <= 1:
            # Between elements: keep only what expat may not have
            # reported yet (the end of the last element on).
            if self._lastEnd > self._kept:
                self._buffer = self._buffer[self._lastEnd - self._kept :]
                self._kept = self._lastEnd
            if not self._buffer[self._buffer.rfind(b">") + 1 :].strip():
                # Whitespace (keepalives) counts towards no element.
                self._boundary = self._fed
        if self._maxElementSize and self._fed - self._boundary > self._maxElementSize:
            raise FramingError(
                "policy-violation",
                "Elements are limited to %d bytes." % (self._maxElementSize,),
            )
        return None

    def restartAfter(self):
        """
        The stream restarts after the element being reported (after
        C{<proceed/>} or SASL C{<success/>}): L{feed} stops there and
        returns what follows.  Outside of a report, the next L{feed}
        returns all its bytes.
        """
        self._stopAfter = True
        if not self._reporting:
            self._stopped = True

    # expat handlers

    def _startNamespace(self, prefix, uri):
        depth = self.depth
        if depth == 0 and not self._context:
            if not self._priming:
                self._headerDeclarations[prefix] = uri or ""
        elif depth >= 1:
            if self._track:
                self._inner[prefix] = self._inner.get(prefix, 0) + 1
            if prefix is None and depth == 1:
                self._rootDefault = True

    def _endNamespace(self, prefix):
        if self.depth >= 1:
            count = self._inner.get(prefix)
            if count:
                self._inner[prefix] = count - 1

    def _startElement(self, name, attrs):
        depth = self.depth
        self.depth = depth + 1
        if depth >= 1:
            if depth == 1:
                self._parser.CharacterDataHandler = None
                self._root = (name, attrs)
                if not self._context:
                    self._start = self._position()
                if self._track:
                    self._inherited = set()
            if self._track:
                self._checkPrefixes(name, attrs)
        elif not self._context and not self._priming:
            index = self._position()
            end = self._tagEnd(index)
            uri, local, prefix = _split(name)
            self.header = StreamHeader(
                uri, local, prefix, attrs, self._headerDeclarations,
                self._buffer[index - self._kept : end - self._kept],
            )
            self._boundary = self._lastEnd = end
            self._receiver.streamStarted(self.header)

    def _checkPrefixes(self, name, attrs):
        """
        Note the prefixes an element and its attributes use that no
        enclosing element of the current top-level one declares.
        """
        inner = self._inner
        if name.count(" ") == 2:
            prefix = name.rsplit(" ", 1)[1]
            if not inner.get(prefix):
                self._inherited.add(prefix)
        for key in attrs:
            if key.count(" ") == 2:
                prefix = key.rsplit(" ", 1)[1]
                if prefix != "xml" and not inner.get(prefix):
                    self._inherited.add(prefix)

    def _tagEnd(self, index):
        """
        The stream offset just after the tag that starts at C{index}.
        """
        match = _TAG_END.match(self._buffer, index - self._kept)
        return self._kept + match.end()

    def _endElement(self, name):
        depth = self.depth = self.depth - 1
        if depth != 1:
            if depth == 0:
                if self._context:
                    raise FramingError(
                        "not-well-formed", "A message must hold exactly one XML element."
                    )
                self._receiver.streamEnded()
            return
        self._parser.CharacterDataHandler = self._text
        rootName, attrs = self._root
        uri, local, prefix = _split(rootName)
        scanned = Scanned(
            None,
            uri,
            local,
            prefix + ":" + local if prefix else local,
            attrs,
            self._rootDefault,
            self._inherited,
        )
        self._root = None
        self._rootDefault = False
        self._inherited = None
        if self._track:
            self._inner = {}
        if self._context:
            self.collected.append(scanned)
            return
        kept = self._kept
        end = self._tagEnd(self._start)
        if self._buffer[end - kept - 2 : end - kept - 1] != b"/":
            # Not an empty-element tag: the element ends with its end tag,
            # which starts where expat reports the end (for an empty one,
            # expat reports the end after the tag).
            end = self._tagEnd(self._position())
        scanned.raw = self._buffer[self._start - kept : end - kept]
        self._boundary = self._lastEnd = end
        self._reporting = True
        try:
            self._receiver.elementScanned(scanned)
        finally:
            self._reporting = False
        if self._stopAfter:
            raise _Restart(end)
        if self._parserFed > RENEW_AFTER:
            raise _Renew(end)

    def _text(self, data):
        if self.depth <= 1 and data.strip():
            if self._context:
                raise FramingError(
                    "not-well-formed", "A message must hold exactly one XML element."
                )
            raise FramingError("bad-format", "Text is not allowed between top-level elements.")
