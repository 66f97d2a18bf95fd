# -*- test-case-name: tests.test_c2s_ext -*-
"""
Stanza helpers shared by the modules of the embedded server: parsing a
stored stanza, copying one, building an error reply.
"""

from twisted.words.protocols.jabber import xmlstream
from twisted.words.xish import domish

from xmppws.c2s.namespaces import NS_CLIENT, NS_STANZAS

__all__ = ["copyStanza", "errorReply", "parseStanza"]


def parseStanza(text):
    """
    Parse one serialized stanza; unqualified elements are in C{jabber:client}.

    @param text: the stanza, as L{domish.Element.toXml} wrote it.
    @type text: L{str}
    @return: the stanza.
    @rtype: L{domish.Element}
    @raise domish.ParserError: if C{text} is not one well-formed element.
    """
    result = []
    stream = domish.elementStream()
    stream.DocumentStartEvent = lambda root: None
    stream.ElementEvent = result.append
    stream.DocumentEndEvent = lambda: None
    stream.parse(("<stored xmlns='%s'>%s</stored>" % (NS_CLIENT, text)).encode("utf-8"))
    if len(result) != 1:
        raise domish.ParserError("expected one element, got %d" % (len(result),))
    return result[0]


def copyStanza(stanza):
    """
    A deep copy of C{stanza}, in C{jabber:client}, that later changes to
    the original cannot reach (for forwarding and queueing).

    @type stanza: L{domish.Element}
    @rtype: L{domish.Element}
    """
    return parseStanza(stanza.toXml())


def errorReply(stanza, condition, errorType, text=None, extra=None):
    """
    An error reply to C{stanza} with addressing swapped, carrying the
    original's payload for messages and presence (RFC 6120 section 8.3.1).

    @param condition: a defined condition of RFC 6120 section 8.3.3.
    @param errorType: C{'cancel'}, C{'modify'}, C{'auth'} or C{'wait'}.
    @param extra: an application-specific condition element, or L{None}.
    @rtype: L{domish.Element}
    """
    reply = xmlstream.toResponse(stanza, "error")
    reply.uri = reply.defaultUri = NS_CLIENT
    if stanza.name != "iq":
        for child in stanza.elements():
            reply.addChild(child)
    e = reply.addElement((NS_CLIENT, "error"))
    e["type"] = errorType
    e.addElement((NS_STANZAS, condition))
    if text:
        e.addElement((NS_STANZAS, "text"), content=text)
    if extra is not None:
        e.addChild(extra)
    return reply
