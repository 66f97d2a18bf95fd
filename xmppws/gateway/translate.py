# -*- test-case-name: tests.test_gateway_translate -*-
"""
Translation between a WebSocket client's framing and the RFC 6120 stream
toward the upstream server, on bytes.

One translator per client (L{ClientRFC7395} or L{ClientLegacy}, chosen
by L{translatorFor} from the first message) does both directions:

    client message -> checked once (xmppws._scanner) -> the same bytes
                      upstream, or the stream header / footer they stand for
    upstream element (bytes) -> one WebSocket message: as it came, with
                      the namespace declarations a standalone RFC 7395
                      message needs added to its root

Only stream headers (and features, L{rewriteFeatures}) are rebuilt;
everything else passes as the bytes it came as.
"""

from twisted.words.xish import domish
from zope.interface import implementer

from xmppws._parser import ElementParser, FramingError
from xmppws._scanner import ElementScanner
from xmppws.framing import (
    NS_FRAMING,
    NS_STREAMS,
    NS_XML,
    RFC7395Framing,
    detectFraming,
    messageBody,
)
from xmppws.gateway.igateway import IClientFraming

__all__ = [
    "ClientLegacy",
    "ClientRFC7395",
    "MessageScanner",
    "NS_CLIENT",
    "NS_SASL",
    "NS_SM",
    "NS_TLS",
    "headerAttributes",
    "isStanza",
    "parseTree",
    "rewriteFeatures",
    "translatorFor",
]

NS_CLIENT = "jabber:client"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_SM = "urn:xmpp:sm:3"
LANG = NS_XML + " lang xml"
_HEADER_KEYS = ("to", "from", "id", "version")
_STANZAS = frozenset(("message", "presence", "iq"))
_ONE = "A message must hold exactly one XML element."


def _quote(value):
    """
    An attribute value, quoted, with whitespace kept as character
    references (attribute value normalisation would change it).
    """
    return (
        "'" + value.replace("&", "&amp;").replace("<", "&lt;").replace("'", "&apos;")
        .replace("\t", "&#9;").replace("\n", "&#10;").replace("\r", "&#13;") + "'"
    ).encode("utf-8")


def headerAttributes(attributes):
    """
    The attributes of a stream header that travel between framings.

    @param attributes: the attributes as the scanner reports them.
    @return: C{to}, C{from}, C{id}, C{version} and C{lang} (C{xml:lang})
        where present.
    @rtype: L{dict}
    """
    found = {key: attributes[key] for key in _HEADER_KEYS if key in attributes}
    lang = attributes.get(LANG)
    if lang is not None:
        found["lang"] = lang
    return found


def isStanza(element):
    """
    Whether a scanned element is a stanza of a client stream.
    """
    return element.uri == NS_CLIENT and element.name in _STANZAS


def _attributesXML(attributes, keys=_HEADER_KEYS):
    out = b""
    for key in keys:
        value = attributes.get(key)
        if value is not None:
            out += b" " + key.encode("ascii") + b"=" + _quote(value)
    lang = attributes.get("lang")
    if lang is not None:
        out += b" xml:lang=" + _quote(lang)
    return out


def _context(declarations):
    """
    The opening tag of a context element declaring C{declarations}.
    """
    out = b"<w"
    for prefix, uri in declarations.items():
        name = b"xmlns" if prefix is None else b"xmlns:" + prefix.encode("utf-8")
        out += b" " + name + b"=" + _quote(uri)
    return out + b">"


def parseTree(data, declarations):
    """
    Parse one element (stream features, a stream error: small and rare)
    into a tree, in the context of the stream header that declared
    C{declarations}.

    @rtype: L{domish.Element}
    @raise FramingError: if it is no one well-formed element.
    """
    parser = ElementParser(context=_context(declarations), collect=True)
    parser.feed(data)
    if len(parser.collected) != 1:
        raise FramingError("not-well-formed", _ONE)
    return parser.collected[0]


def rewriteFeatures(features, stripPlain):
    """
    Remove from stream features what a WebSocket client cannot use through
    the gateway: STARTTLS (the gateway did it), SASL mechanisms with
    channel binding (C{-PLUS}: the client's TLS ends at the gateway, so it
    cannot bind to the server's), and SASL PLAIN when it must not travel
    over this client's connection.

    @type features: L{domish.Element}
    @return: whether anything was removed.
    """
    changed = False
    for child in list(features.elements()):
        if (child.uri, child.name) == (NS_TLS, "starttls"):
            features.children.remove(child)
            changed = True
        elif (child.uri, child.name) == (NS_SASL, "mechanisms"):
            for mechanism in list(child.elements()):
                if mechanism.name != "mechanism":
                    continue
                name = str(mechanism).strip()
                if name.endswith("-PLUS") or (stripPlain and name == "PLAIN"):
                    child.children.remove(mechanism)
                    changed = True
    return changed


class MessageScanner:
    """
    Check RFC 7395 messages, one at a time, for any number of clients.

    Each RFC 7395 message is a standalone document, checked whole in one
    call, so the messages of many clients can go through one expat parser
    (inside a context element) without mixing: a gateway keeps one, not
    one per client.  A message that leaves it anywhere but between
    elements (any error) gets a fresh one for the next.
    """

    def __init__(self, namespace=NS_CLIENT):
        self._context = b"<w xmlns=" + _quote(namespace) + b">"
        self._scanner = None

    def scan(self, body):
        """
        Check one message that must hold exactly one element.

        @type body: L{bytes}
        @rtype: L{xmppws._scanner.Scanned}
        @raise FramingError: if it does not.
        """
        scanner = self._scanner
        if scanner is None:
            scanner = self._scanner = ElementScanner(context=self._context, standalone=True)
        try:
            scanner.feed(body)
            collected = scanner.collected
            if scanner.depth != 1 or len(collected) != 1:
                raise FramingError("not-well-formed", _ONE)
            return collected.pop()
        except BaseException:
            self._scanner = None
            raise


def translatorFor(data, receiver, messages=None):
    """
    The translator for a client, chosen from its first message.

    @param messages: the L{MessageScanner} RFC 7395 clients share, or
        L{None} for one of their own.
    @raise FramingError: if the message opens neither framing.
    """
    if detectFraming(data) is RFC7395Framing:
        return ClientRFC7395(receiver, messages=messages)
    return ClientLegacy(receiver)


class _Translator:
    """
    What both translators share: one element per message, the order of
    header and elements, the stanzas' namespace.

    @ivar awaitingHeader: C{True} until the client's stream header, and
        again after a restart.
    @ivar upstreamNamespaces: the namespace declarations of the stream
        header sent upstream for this client (its elements rely on them).
    """

    messageOriented = True
    awaitingHeader = True

    def __init__(self, receiver, namespace=NS_CLIENT):
        self._receiver = receiver
        self._namespace = namespace
        self._scanner = None
        self._cacheHeader = None
        self._cache = {}

    def restart(self):
        """
        The stream restarts (after SASL): the client's next message must
        be its stream header.
        """
        self.awaitingHeader = True

    def _one(self, body):
        scanner = self._scanner
        scanner.feed(body)
        collected = scanner.collected
        if scanner.depth != 1 or len(collected) != 1:
            raise FramingError("not-well-formed", _ONE)
        return collected.pop()

    def _element(self, data, element):
        if self.awaitingHeader:
            raise FramingError("bad-format", "A stream header (<open/>) was expected here.")
        self._receiver.clientElement(data, element)

    # Toward the server

    def upstreamHeader(self, attributes):
        """
        The stream header to send upstream for the client's.

        @param attributes: as L{headerAttributes} gives them; C{to} is the
            domain routed to.
        @rtype: L{bytes}
        """
        return (
            b"<?xml version='1.0'?><" + self._qname
            + self._declarations
            + _attributesXML(attributes, ("to", "from", "version"))
            + b">"
        )

    def upstreamFooter(self):
        """
        @return: the footer to send upstream.
        """
        return b"</" + self._qname + b">"

    # Toward the client

    def elementMessage(self, element, header):
        """
        The message for an element the server sent.

        @param element: its bytes and root.
        @type element: L{xmppws._scanner.Scanned}
        @param header: the header of the server's stream.
        @type header: L{xmppws._scanner.StreamHeader}
        @rtype: L{bytes}
        """
        return element.raw



@implementer(IClientFraming)
class ClientRFC7395(_Translator):
    """
    A client speaking RFC 7395: every message a standalone document.
    """

    name = "rfc7395"
    _qname = b"stream:stream"

    def __init__(self, receiver, namespace=NS_CLIENT, messages=None):
        """
        @param messages: the L{MessageScanner} to check messages with (one
            a gateway's clients share), or L{None} for one of its own.
        """
        _Translator.__init__(self, receiver, namespace)
        self._messages = messages or MessageScanner(namespace)
    _declarations = (
        b" xmlns='" + NS_CLIENT.encode("ascii") + b"' xmlns:stream='"
        + NS_STREAMS.encode("ascii") + b"'"
    )

    def dataReceived(self, data):
        """
        Check one message and tell the receiver what it holds.

        @raise FramingError: for what breaks RFC 7395 or RFC 6120.
        """
        body = messageBody(data)
        stripped = body.strip(b" \t\r\n")
        if not stripped:
            return
        if stripped[:1] != b"<" or stripped[-1:] != b">":
            raise FramingError("not-well-formed", _ONE)
        element = self._messages.scan(stripped)
        if element.uri == NS_FRAMING:
            if element.name == "open":
                if not self.awaitingHeader:
                    raise FramingError(
                        "bad-format", "The stream may only be restarted after SASL or TLS."
                    )
                self.awaitingHeader = False
                self._receiver.clientOpened(headerAttributes(element.attributes))
            elif element.name == "close":
                self._receiver.clientClosed()
            else:
                raise FramingError(
                    "bad-format", "Only <open/> and <close/> belong to the framing namespace."
                )
            return
        if (element.uri, element.name) == (NS_STREAMS, "stream"):
            raise FramingError(
                "bad-format",
                "This stream uses RFC 7395 framing: send <open/>, not a stream header.",
            )
        self._element(stripped, element)

    def headerMessage(self, attributes):
        return (
            b"<open xmlns='" + NS_FRAMING.encode("ascii") + b"'"
            + _attributesXML(attributes) + b"/>"
        )

    def upstreamHeaderMessage(self, header):
        return self.headerMessage(headerAttributes(header.attributes))

    def elementMessage(self, element, header):
        # The declarations to add depend only on the header and on what
        # the element declares and inherits: computed once for each.
        if header is not self._cacheHeader:
            self._cacheHeader = header
            self._cache = {}
        inherited = element.inherited
        key = (element.declaresDefault, frozenset(inherited) if inherited else None)
        insert = self._cache.get(key)
        if insert is None:
            insert = b""
            default = header.declarations.get(None)
            if default and not element.declaresDefault:
                insert += b" xmlns=" + _quote(default)
            for prefix in sorted(key[1] or ()):
                uri = header.declarations.get(prefix)
                if uri is not None:
                    insert += b" xmlns:" + prefix.encode("utf-8") + b"=" + _quote(uri)
            self._cache[key] = insert
        if not insert:
            return element.raw
        cut = 1 + len(element.qname.encode("utf-8"))
        raw = element.raw
        return raw[:cut] + insert + raw[cut:]

    def treeMessage(self, element):
        return element.toXml(prefixes={NS_STREAMS: "stream"}).encode("utf-8")

    def closeMessage(self, seeOtherURI=None):
        element = domish.Element((NS_FRAMING, "close"))
        if seeOtherURI is not None:
            element["see-other-uri"] = seeOtherURI
        return element.toXml().encode("utf-8")


@implementer(IClientFraming)
class ClientLegacy(_Translator):
    """
    A client speaking draft-ietf-xmpp-websocket-00: an unclosed stream
    header as a message of its own, then one element per message, which
    may rely on the header's namespace declarations.  The same header
    (prefix and declarations) goes upstream, so the client's elements
    mean the same there as written.
    """

    name = "legacy"
    _qname = b"stream:stream"
    _declarations = b""
    _outQName = b"stream:stream"

    def _isHeader(self, body):
        body = body.lstrip()
        tag = b"<" + self._qname
        return body.startswith(tag) and body[len(tag) : len(tag) + 1] in (
            b" ", b"\t", b"\r", b"\n", b">", b"/",
        )

    def _isFooter(self, body):
        body = body.strip()
        return body.startswith(b"</") and body.endswith(b">") and (
            body[2:-1].strip() == self._qname
        )

    def dataReceived(self, data):
        """
        Check one message and tell the receiver what it holds.

        @raise FramingError: for what breaks draft-00 or RFC 6120.
        """
        body = messageBody(data, lenient=True)
        if not body.strip():
            return
        if self._scanner is not None and self._isFooter(body):
            self._receiver.clientClosed()
            return
        if self._scanner is None or self._isHeader(body):
            if not self.awaitingHeader:
                raise FramingError(
                    "bad-format", "The stream may only be restarted after SASL or TLS."
                )
            attributes = self._readHeader(body)
            self.awaitingHeader = False
            self._receiver.clientOpened(attributes)
            return
        self._element(body.strip(b" \t\r\n"), self._one(body))

    def _readHeader(self, body):
        """
        Read a stream header message, and prepare the context its
        elements are read in and the header that goes upstream.
        """
        found = []

        class Header:
            def streamStarted(self, header):
                found.append(header)

            def elementScanned(self, element):
                raise FramingError(
                    "bad-format", "The stream header must be a message of its own."
                )

            def streamEnded(self):
                pass

        scanner = ElementScanner(Header())
        scanner.feed(body)
        if not found:
            raise FramingError("not-well-formed", "Incomplete stream header.")
        header = found[0]
        if (header.uri, header.name) != (NS_STREAMS, "stream"):
            raise FramingError("bad-format", "A stream header was expected at this point.")
        qname = header.qname.encode("utf-8")
        if scanner.depth:
            # Nothing may follow the header in its message: closing it
            # must leave a whole document.
            if body.rstrip()[-1:] != b">" or scanner.depth != 1:
                raise FramingError(
                    "bad-format", "The stream header must be a message of its own."
                )
            scanner.feed(b"</" + qname + b">")
        declarations = dict(header.declarations)
        if declarations.get(None, "") not in ("", self._namespace):
            raise FramingError(
                "invalid-namespace", "The gateway relays client streams (jabber:client) only."
            )
        # A header that leaves the default namespace undeclared (or
        # undeclares it) gets the client namespace, upstream too.
        declarations[None] = self._namespace
        self._qname = qname
        self._declarations = _context(declarations)[2:-1]
        self._scanner = ElementScanner(context=_context(declarations))
        return headerAttributes(header.attributes)

    def headerMessage(self, attributes):
        """
        The header for a stream the gateway answers itself (an error
        before the server's header).

        @rtype: L{bytes}
        """
        self._outQName = b"stream:stream"
        return (
            b"<stream:stream xmlns='" + NS_CLIENT.encode("ascii") + b"' xmlns:stream='"
            + NS_STREAMS.encode("ascii") + b"'" + _attributesXML(attributes) + b">"
        )

    def upstreamHeaderMessage(self, header):
        """
        The server's stream header, as it came: the elements that follow
        rely on its declarations.
        """
        self._outQName = header.qname.encode("utf-8")
        raw = header.raw
        if raw.endswith(b"/>"):
            raw = raw[:-2] + b">"
        return raw

    def treeMessage(self, element):
        prefix = self._outQName.partition(b":")[0].decode("utf-8") if b":" in self._outQName \
            else None
        if prefix is None:
            return element.toXml(defaultUri=NS_CLIENT).encode("utf-8")
        return element.toXml(
            prefixes={NS_STREAMS: prefix}, defaultUri=NS_CLIENT, prefixesInScope=[prefix]
        ).encode("utf-8")

    def closeMessage(self, seeOtherURI=None):
        return b"</" + self._outQName + b">"

