# -*- test-case-name: tests.test_connection -*-
"""
What an C{XmlStream} writes, sent the way the connection's framing wants
it.

An C{XmlStream} writes its header, each element whole and its footer, one
write each.  On TCP they go out as written.  In WebSocket framings each
becomes one message: an element as written, checked by its tags without
being parsed and given the namespace declarations a standalone message
needs; a header or footer as the framing's own.  What is not one whole
element (raw strings written in pieces, several elements at once) is
parsed into elements, each sent on its own.
"""

import re

from twisted.words.xish import domish

from xmppws.framing import NS_STREAMS

__all__ = ["StreamOutput"]

STANZAS = frozenset(("message", "presence", "iq"))
_STANZA_STARTS = (b"<message", b"<presence", b"<iq")
_HEADER = re.compile(rb"<(?:\?xml|(?:[^\s:/>]+:)?stream[\s>])")


class StreamOutput:
    """
    The outbound side of one stream.

    @ivar framing: the connection's framing, once chosen.
    @ivar opened: C{True} once this side's stream header went out.
    @ivar closed: C{True} once this side's footer went out (nothing more
        is sent).
    """

    framing = None
    opened = False
    closed = False
    _fallback = None

    def __init__(self, send, namespace, initiating, lang, onStanza, onStreamError, onError):
        """
        @param send: called with the bytes of each message (or TCP write).
        @param namespace: called for the stream's content namespace.
        @param initiating: C{True} on the client side.
        @param lang: the default C{xml:lang} of this side's header.
        @param onStanza: called for each stanza sent (for metrics).
        @param onStreamError: called with the condition of a stream error
            the stream sent.
        @param onError: called with an explanation when the stream wrote
            something that is no XML.
        """
        self._send = send
        self._namespace = namespace
        self._initiating = initiating
        self._lang = lang
        self._onStanza = onStanza
        self._onStreamError = onStreamError
        self._onError = onError

    def write(self, data):
        """
        Send what the C{XmlStream} wrote.

        @type data: L{bytes}
        """
        if self.closed:
            return
        if data.startswith(b"<stream:error"):
            self._streamErrorWritten(data)
        if not self.framing.messageOriented:
            if not self.opened:
                self.opened = True
            elif data[:2] == b"</":
                self.closed = True
            elif data.startswith(_STANZA_STARTS):
                self._onStanza()
            self._send(data)
            return
        if self._fallback is not None:
            self._parse(data)
        elif data[:1] != b"<":
            if data.strip():
                self._parse(data)
        elif data[:2] == b"</":
            self.close()
        elif _HEADER.match(data):
            self._headerWritten(data)
        else:
            message = self.framing.elementMessage(data, self._namespace())
            if message is None:
                self._parse(data)
                return
            if data.startswith(_STANZA_STARTS):
                self._onStanza()
            self._send(message)

    def sendHeader(self, root):
        """
        Send this side's stream header.

        @type root: L{domish.Element}
        """
        self.opened = True
        self._fallback = None
        if not root.defaultUri:
            root.defaultUri = self._namespace()
        self._send(self.framing.headerMessage(root, self._initiating, self._lang))

    def sendElement(self, element):
        """
        Send one top-level element given as a tree.

        @type element: L{domish.Element}
        """
        if self.closed:
            return
        if element.name in STANZAS:
            self._onStanza()
        self._send(self.framing.treeMessage(element, self._namespace()))

    def close(self, seeOtherURI=None):
        """
        Send this side's footer, once (if a header went out).

        @param seeOtherURI: where an RFC 7395 peer should go instead, or
            L{None}.
        """
        if self.closed:
            return
        self.closed = True
        self._fallback = None
        if self.opened:
            self._send(self.framing.closeMessage(seeOtherURI))

    def _headerWritten(self, data):
        roots = []
        parser = domish.elementStream()
        parser.DocumentStartEvent = roots.append
        try:
            parser.parse(data)
        except domish.ParserError:
            pass
        if not roots:
            self._onError("an unreadable stream header")
            return
        self.sendHeader(roots[0])

    def _parse(self, data):
        """
        The slow path: parse what is not one whole element into elements.
        """
        parser = self._fallback
        if parser is None:
            parser = self._fallback = domish.elementStream()
            parser.DocumentStartEvent = lambda root: None
            parser.ElementEvent = self.sendElement
            parser.DocumentEndEvent = self.close
            parser.parse(
                b"<stream:stream xmlns='%s' xmlns:stream='%s'>"
                % (self._namespace().encode("utf-8"), NS_STREAMS.encode("ascii"))
            )
        try:
            parser.parse(data)
        except domish.ParserError as e:
            self._fallback = None
            self._onError(str(e))
            return
        if self._fallback is parser and parser.currElem is None:
            self._fallback = None

    def _streamErrorWritten(self, data):
        """
        Tell of a stream error the stream sent (such as C{host-unknown} from
        an authenticator).
        """
        elements = []
        parser = domish.elementStream()
        parser.DocumentStartEvent = lambda root: None
        parser.ElementEvent = elements.append
        try:
            parser.parse(
                b"<stream:stream xmlns:stream='%s'>" % (NS_STREAMS.encode("ascii"),) + data
            )
        except domish.ParserError:
            return
        condition = "undefined-condition"
        for child in elements[0].elements() if elements else ():
            if child.name != "text":
                condition = child.name
                break
        self._onStreamError(condition)
