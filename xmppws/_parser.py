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

import re
from xml.parsers import expat

from twisted.words.xish.domish import Element

__all__ = [
    "ElementParser",
    "FramingError",
    "MessageParser",
    "RENEW_AFTER",
    "SLICE",
    "TAG_END",
    "expatError",
    "newExpatParser",
]

_UNDEFINED_ENTITY = expat.errors.codes[expat.errors.XML_ERROR_UNDEFINED_ENTITY]

# A stream parser is replaced by a fresh one, between two top-level
# elements, once it has read this many bytes: expat keeps every distinct
# element and attribute name it has seen (in its DTD tables) for its whole
# life (some 340 bytes for an element with a new name and a new attribute
# name), so a peer sending ever new names would otherwise grow it for as
# long as the stream lasts.
RENEW_AFTER = 16 * 1024

# expat copies what it is given into its own buffer, which keeps the size
# the largest call made it: a stream is fed in slices no larger than this.
SLICE = 4096

# From the "<" of a tag to the ">" that ends it: a ">" inside a quoted
# attribute value does not.  Written so that it fails in linear time on a
# tag not yet complete.
TAG_END = re.compile(rb"""[^'">]*(?:(?:'[^']*'|"[^"]*")[^'">]*)*>""")


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
    if hasattr(parser, "SetReparseDeferralEnabled"):
        # expat 2.6 may hold back a large token until more bytes come;
        # an XMPP peer waits for the answer to the stanza it just sent.
        parser.SetReparseDeferralEnabled(False)
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

    Reading a stream, the expat parser underneath is replaced by a fresh
    one every L{RENEW_AFTER} bytes or so, between two top-level elements,
    primed with a copy of the stream header (so that the namespaces it
    declares hold): what expat keeps for its life (every name it has seen,
    a buffer as large as the largest token) stays bounded however long
    the stream lasts.  Nobody can tell: the elements are the same.

    @ivar collected: completed top-level elements not yet taken, when
        collecting.
    @ivar depth: elements open now, the stream root or context included.
    @ivar renewals: how many times the expat parser was replaced.
    """

    renewals = 0

    def __init__(
        self,
        receiver=None,
        context=None,
        maxElementSize=0,
        collect=False,
        standalone=False,
        renewAfter=RENEW_AFTER,
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
        @param renewAfter: reading a stream, replace the expat parser after
            this many bytes (at the next element boundary), or 0 never.
        """
        self._receiver = receiver
        self._maxElementSize = maxElementSize
        self.collected = [] if collect else None
        self._emit = self.collected.append if collect else receiver.elementReceived
        self._context = context is not None
        self._standalone = standalone
        self._renewAfter = 0 if self._context else renewAfter
        self.depth = 0
        self._current = None
        self._defaults = [""]
        self._prefixes = {}
        self._fed = 0
        self._boundary = 0
        self._stopped = False
        # Stop at the next token (a restart, or a renewal), raising
        # _Restart with its stream offset.
        self._interrupt = False
        # Stream offset = expat's byte index + self._base: a renewed expat
        # parser counts from the copy of the header it was primed with.
        self._base = 0
        self._piece = b""
        self._chunkStart = 0
        self._parserFed = 0
        self._priming = False
        # The stream header's start tag, as it came.
        self._header = None
        # Reading a stream: the bytes from the last "<" fed on (where the
        # next token starts at the earliest), from stream offset
        # self._tailStart up to the piece being parsed; empty when that
        # token is complete and only whitespace followed.
        self._tail = []
        self._tailStart = 0
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
        start = self._fed
        size = len(data)
        self._fed = start + size
        if self._context:
            return self._parse(data, start)
        if size <= SLICE:
            rest = self._parse(data, start)
        else:
            rest = None
            for offset in range(0, size, SLICE):
                rest = self._parse(data[offset : offset + SLICE], start + offset)
                if rest is not None:
                    return rest + data[offset + SLICE :]
        if rest is not None:
            return rest
        if self.depth <= 1 and self._settled():
            # Between elements, with nothing of the next one fed:
            # whitespace (keepalives) counts towards no element.
            self._boundary = self._fed
        if self._maxElementSize and self._fed - self._boundary > self._maxElementSize:
            raise FramingError(
                "policy-violation",
                "Elements are limited to %d bytes." % (self._maxElementSize,),
            )
        return None

    def _parse(self, piece, start):
        """
        Parse one piece of the input, which begins at stream offset
        C{start}.

        @return: L{None}, or after L{stop} the bytes from the token it
            stopped at to the end of the piece.
        """
        while True:
            self._piece = piece
            self._chunkStart = start
            try:
                self._parser.Parse(piece, False)
            except _Restart as restart:
                rest = self._since(restart.offset, piece, start)
                if self._stopped:
                    return rest
                self._renew(restart.offset)
                piece, start = rest, restart.offset
                continue
            except expat.ExpatError as e:
                if self._stopped:
                    return self._since(self._parser.ErrorByteIndex + self._base, piece, start)
                if self._standalone and self.depth <= 1 and e.code == _UNDEFINED_ENTITY:
                    raise FramingError(
                        "not-well-formed", "A message must hold exactly one XML element."
                    ) from None
                raise expatError(e) from None
            self._parserFed += len(piece)
            if not self._context:
                index = piece.rfind(b"<")
                if index >= 0:
                    self._tail = [piece[index:]]
                    self._tailStart = start + index
                elif self._tail:
                    self._tail.append(piece)
                else:
                    self._tailStart = start + len(piece)
            return None

    def _settled(self):
        """
        Whether the last token fed is complete, with only whitespace after
        it: nothing of the next one has come.
        """
        tail = self._tail
        if not tail:
            return True
        if len(tail) > 1:
            tail[:] = [b"".join(tail)]
        last = tail[0]
        match = TAG_END.match(last)
        if match is None or last[match.end() :].strip():
            return False
        self._tail = []
        self._tailStart = self._fed
        return True

    def _since(self, offset, piece, start):
        """
        The stream's bytes from C{offset} to the end of C{piece}.
        """
        if offset >= start:
            return piece[offset - start :]
        if offset < self._tailStart:
            # The bytes were parsed before the stream was stopped, as part
            # of the stream being stopped.
            raise FramingError(
                "bad-format", "The new stream began before the server restarted it."
            )
        return b"".join(self._tail)[offset - self._tailStart :] + piece

    def _renew(self, offset):
        """
        Go on with a fresh expat parser from stream offset C{offset}, a
        top-level element boundary.
        """
        header = self._header
        self._parser = self._newExpat()
        self._base = offset - len(header)
        self._parserFed = 0
        self.depth = 0
        self._defaults = [""]
        self._prefixes = {}
        self._interrupt = False
        self._priming = True
        try:
            self._parser.Parse(header, False)
        finally:
            self._priming = False
        self.renewals += 1

    def stop(self):
        """
        Stop at the next token: the stream restarts (after STARTTLS or
        SASL), and what follows is for a new parser.
        """
        self._stopped = self._interrupt = True

    # expat handlers

    def _start(self, name, attrs):
        if self._interrupt:
            raise _Restart(self._parser.CurrentByteIndex + self._base)
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
        elif not self._priming:
            self._streamStarted(element)

    def _streamStarted(self, root):
        """
        The stream header: keep its start tag (to prime a renewed expat
        parser with) and report it.
        """
        offset = self._parser.CurrentByteIndex + self._base
        since = self._since(offset, self._piece, self._chunkStart)
        self._header = since[: TAG_END.match(since).end()]
        self._boundary = self._fed
        self._receiver.streamStarted(root)

    def _end(self, name):
        depth = self.depth = self.depth - 1
        if depth >= 2:
            self._current = self._current.parent
        elif depth == 1:
            element, self._current = self._current, None
            self._boundary = self._parser.CurrentByteIndex + self._base
            self._emit(element)
            if (
                self._renewAfter
                and self._parserFed > self._renewAfter
                and not self._interrupt
                and self._header is not None
            ):
                self._interrupt = True
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
        if self._interrupt:
            raise _Restart(self._parser.CurrentByteIndex + self._base)
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
