# -*- test-case-name: tests.test_parser -*-
"""
One pass over inbound XMPP XML: strict RFC 6120 restricted-XML checks and
building the Twisted Words L{domish} elements the C{XmlStream} consumes,
in the same expat parse.

L{ElementParser} reads either a whole stream (the bytes of a TCP
connection: the stream header, top-level elements, the footer) or, for
WebSocket framings, a run of standalone elements inside a synthetic
context element that declares the namespaces they may rely on.

The elements it builds are those Twisted's C{domish.ExpatElementStream}
would build from the same bytes, so stream code cannot tell the
difference; what it refuses (document type declarations, entity
declarations and undefined entities, comments, processing instructions)
C{domish} would have let through.
"""

from xml.parsers import expat

from twisted.words.xish.domish import Element

__all__ = ["ElementParser", "FramingError", "MessageParser", "expatError", "newExpatParser"]

_UNDEFINED_ENTITY = expat.errors.codes[expat.errors.XML_ERROR_UNDEFINED_ENTITY]


class FramingError(Exception):
    """
    Input that must end the stream.

    @ivar condition: the RFC 6120 stream error condition.
    @ivar text: an explanation that never repeats peer input.
    """

    def __init__(self, condition, text):
        Exception.__init__(self, condition, text)
        self.condition = condition
        self.text = text


class _Restart(Exception):
    """
    Raised inside expat to stop at the first token after a stream restart.

    @ivar offset: the byte index of that token.
    """

    def __init__(self, offset):
        Exception.__init__(self, offset)
        self.offset = offset


def _refuse(text):
    def handler(*args):
        raise FramingError("restricted-xml", text)

    return handler


def expatError(e):
    """
    The stream error an expat error calls for.

    @type e: L{expat.ExpatError}
    @rtype: L{FramingError}
    """
    if e.code == _UNDEFINED_ENTITY:
        return FramingError(
            "restricted-xml", "Only the five predefined XML entities are allowed."
        )
    return FramingError(
        "not-well-formed",
        "The XML is not well-formed: %s." % (expat.errors.messages[e.code],),
    )


_refuseDoctype = _refuse("Document type declarations are not allowed in XMPP.")
_refuseEntity = _refuse("Entity declarations are not allowed in XMPP.")
_refusePI = _refuse("Processing instructions are not allowed in XMPP.")
_refuseComment = _refuse("Comments are not allowed in XMPP.")


def newExpatParser():
    """
    An expat parser with namespace processing (names as C{'uri local'})
    that refuses what RFC 6120 section 11 forbids.
    """
    parser = expat.ParserCreate("UTF-8", " ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuseDoctype
    parser.EntityDeclHandler = _refuseEntity
    parser.ProcessingInstructionHandler = _refusePI
    parser.CommentHandler = _refuseComment
    return parser


class ElementParser:
    """
    Parse XMPP XML into elements, strictly.

    Top-level elements (children of the stream, or of the context element)
    go to the receiver's C{elementReceived} as soon as each ends, or are
    collected in L{collected} when the parser was made to collect them.
    The stream header goes to C{streamStarted(root)}, its end to
    C{streamEnded()}; with a context, neither is reported and closing the
    context is an error.

    @ivar collected: completed top-level elements not yet taken, when
        collecting.
    @ivar depth: elements open now, the stream root or context included.
    """

    def __init__(
        self, receiver=None, context=None, maxElementSize=0, collect=False, standalone=False
    ):
        """
        @param receiver: has C{streamStarted(root)}, C{elementReceived(element)}
            and C{streamEnded()}.
        @param context: the opening tag of a context element (declaring
            the namespaces elements may use without declaring), or L{None}
            to read a whole stream whose root is the stream header.
        @type context: L{bytes} or L{None}
        @param maxElementSize: bytes a top-level element may take, counted
            from the end of the previous one, or 0 for no limit.
        @param collect: collect top-level elements in L{collected} instead
            of handing each to the receiver.
        @param standalone: read each element as a standalone document
            would be (RFC 7395): outside it, an entity reference is a
            syntax error, not an undefined entity.
        """
        self._receiver = receiver
        self._maxElementSize = maxElementSize
        self.collected = [] if collect else None
        self._emit = self.collected.append if collect else receiver.elementReceived
        self._context = context is not None
        self._standalone = standalone
        self.depth = 0
        self._current = None
        self._defaults = [""]
        self._prefixes = {}
        self._fed = 0
        self._boundary = 0
        self._stopped = False
        self._chunkStart = 0
        self._parser = self._newExpat()
        if context is not None:
            self.feed(context)

    def _newExpat(self):
        parser = newExpatParser()
        parser.buffer_text = True
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._text
        parser.StartNamespaceDeclHandler = self._startNamespace
        parser.EndNamespaceDeclHandler = self._endNamespace
        return parser

    def feed(self, data):
        """
        Parse more bytes.

        @type data: L{bytes}
        @return: L{None}, or after L{stop} the bytes that follow the token
            it stopped at (they belong to a new stream).
        @raise FramingError: for input that must end the stream.
        """
        self._chunkStart = self._fed
        self._fed += len(data)
        try:
            self._parser.Parse(data, False)
        except _Restart as restart:
            return data[restart.offset - self._chunkStart :]
        except expat.ExpatError as e:
            if self._stopped:
                return data[self._parser.ErrorByteIndex - self._chunkStart :]
            if self._standalone and self.depth <= 1 and e.code == _UNDEFINED_ENTITY:
                raise FramingError(
                    "not-well-formed", "A message must hold exactly one XML element."
                ) from None
            raise expatError(e) from None
        if self.depth <= 1 and not data[data.rfind(b">") + 1 :].strip():
            # Between elements, with nothing of the next one buffered:
            # whitespace (keepalives) counts towards no element.
            self._boundary = self._fed
        if self._maxElementSize and self._fed - self._boundary > self._maxElementSize:
            raise FramingError(
                "policy-violation",
                "Elements are limited to %d bytes." % (self._maxElementSize,),
            )
        return None

    def stop(self):
        """
        Stop at the next token: the stream restarts (after STARTTLS or
        SASL), and what follows is for a new parser.
        """
        self._stopped = True

    # expat handlers

    def _start(self, name, attrs):
        if self._stopped:
            raise _Restart(self._parser.CurrentByteIndex)
        depth = self.depth
        self.depth = depth + 1
        if depth == 0 and self._context:
            # The context element itself: nothing to build.
            self._prefixes = {}
            return
        uri, _, local = name.rpartition(" ")
        if attrs:
            for key in attrs:
                if " " in key:
                    # Namespaced attributes (xml:lang, say) as domish
                    # keys them: (uri, name).
                    for key in [key for key in attrs if " " in key]:
                        attrUri, _, attrName = key.rpartition(" ")
                        attrs[(attrUri, attrName)] = attrs.pop(key)
                    break
        element = Element((uri, local), self._defaults[-1], attrs, self._prefixes)
        self._prefixes = {}
        if depth >= 2:
            parent = self._current
            parent.children.append(element)
            element.parent = parent
            self._current = element
        elif depth == 1:
            self._current = element
        else:
            self._boundary = self._fed
            self._receiver.streamStarted(element)

    def _end(self, name):
        depth = self.depth = self.depth - 1
        if depth >= 2:
            self._current = self._current.parent
        elif depth == 1:
            element, self._current = self._current, None
            self._boundary = self._parser.CurrentByteIndex
            self._emit(element)
        elif self._context:
            self._contextClosed()
        else:
            self._receiver.streamEnded()

    def _contextClosed(self):
        raise FramingError("not-well-formed", "A message must hold exactly one XML element.")

    def _text(self, data):
        if self.depth >= 2:
            self._current.addContent(data)
        elif data.strip() and not self._stopped:
            if self._context:
                raise FramingError(
                    "not-well-formed", "A message must hold exactly one XML element."
                )
            raise FramingError(
                "bad-format", "Text is not allowed between top-level elements."
            )

    def _startNamespace(self, prefix, uri):
        if self._stopped:
            raise _Restart(self._parser.CurrentByteIndex)
        if prefix is None:
            self._defaults.append(uri or "")
        else:
            self._prefixes[prefix] = uri

    def _endNamespace(self, prefix):
        if prefix is None:
            self._defaults.pop()


class MessageParser:
    """
    Parse WebSocket messages one at a time, each inside the context
    element, with one expat parser for the messages of one network read:
    L{release} (when the read is done) drops it, so that an idle
    connection holds no parser, and one large message leaves no large
    buffer behind.  Under load, when a read carries many messages, they
    share the parser.
    """

    def __init__(self, context, standalone=False):
        """
        @param context: the opening tag of the context element, such as
            C{<w xmlns='jabber:client'>}, declaring the namespaces the
            messages may use without declaring them.
        @type context: L{bytes}
        @param standalone: read each message as RFC 7395 reads it: outside
            the element, an entity reference is a syntax error.
        """
        self._context = context
        self._standalone = standalone
        self._parser = None

    def parse(self, body):
        """
        Parse one message.

        @type body: L{bytes}
        @return: its top-level elements.
        @rtype: L{list} of L{Element}
        @raise FramingError: if it is no well-formed, restricted XML in
            the context, or leaves an element open.
        """
        parser = self._parser
        if parser is None:
            parser = self._parser = ElementParser(
                context=self._context, collect=True, standalone=self._standalone
            )
        try:
            parser.feed(body)
        except FramingError:
            self._parser = None
            raise
        if parser.depth != 1:
            self._parser = None
            raise FramingError(
                "not-well-formed", "A message must hold exactly one XML element."
            )
        collected = parser.collected
        parser.collected = []
        parser._emit = parser.collected.append
        return collected

    def release(self):
        """
        Drop the parser until the next message.
        """
        self._parser = None
