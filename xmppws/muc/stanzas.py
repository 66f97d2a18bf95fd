# -*- test-case-name: tests.test_muc_messages -*-
"""
Stanza helpers of the group chat service: copying what a client sent
into what the room sends, error replies, the C{muc#user} extension and
stored stanzas.

A component gets stanzas in C{jabber:client} (in process) or
C{jabber:component:accept} (over XEP-0114).  Whatever the room sends is
built in no namespace, with the payload copied out of either, so that
the stream it goes out on puts it in its own.
"""

import datetime

from twisted.words.xish import domish

from xmppws.c2s import jid as jidlib

from xmppws.muc.namespaces import (
    NS_DELAY,
    NS_MUC_USER,
    NS_OCCUPANT_ID,
    NS_SID,
    NS_STANZAS,
    STANZA_NAMESPACES,
)

__all__ = [
    "copyElement",
    "delayElement",
    "errorReply",
    "firstChild",
    "formatStamp",
    "isServiceOwned",
    "parseStamp",
    "parseStored",
    "userX",
]

_STANZA_URIS = frozenset(STANZA_NAMESPACES) | {""}


def copyElement(element, drop=()):
    """
    A deep copy of C{element}, with the stanza namespaces (client,
    component, none) replaced by no namespace.

    @param drop: C{(namespace, name)} pairs of direct children to leave
        out (C{name} L{None} for any name).
    @rtype: L{domish.Element}
    """
    uri = None if element.uri in _STANZA_URIS else element.uri
    default = None if element.defaultUri in _STANZA_URIS else element.defaultUri
    copy = domish.Element((uri, element.name), default)
    copy.attributes = dict(element.attributes)
    if element.localPrefixes:
        copy.localPrefixes = dict(element.localPrefixes)
    for child in element.children:
        if isinstance(child, domish.Element):
            if any(
                child.uri == ns and (name is None or child.name == name) for ns, name in drop
            ):
                continue
            copy.addChild(copyElement(child))
        else:
            copy.addContent(child)
    return copy


def firstChild(element, namespace, name):
    """
    The first direct child C{name} in C{namespace} (C{None} standing for
    the stanza namespaces), or L{None}.
    """
    for child in element.elements():
        if child.name != name:
            continue
        if namespace is None:
            if child.uri in _STANZA_URIS:
                return child
        elif child.uri == namespace:
            return child
    return None


def errorReply(stanza, condition, errorType, by=None, text=None):
    """
    An error answer to C{stanza}, addressed back to its sender, carrying
    the original payload for messages and presence (RFC 6120 section
    8.3.1).

    @param by: the entity that found the error (XEP-0045 sets the room
        JID), or L{None}.
    @rtype: L{domish.Element}
    """
    reply = domish.Element((None, stanza.name))
    reply["type"] = "error"
    if stanza.getAttribute("from"):
        reply["to"] = stanza["from"]
    if stanza.getAttribute("to"):
        reply["from"] = stanza["to"]
    if stanza.getAttribute("id"):
        reply["id"] = stanza["id"]
    if stanza.name != "iq":
        for child in stanza.elements():
            if child.name == "error" and child.uri in _STANZA_URIS:
                continue
            reply.addChild(copyElement(child))
    error = reply.addElement("error")
    error["type"] = errorType
    if by:
        error["by"] = by
    error.addElement((NS_STANZAS, condition))
    if text:
        error.addElement((NS_STANZAS, "text"), content=text)
    return reply


def userX(*codes):
    """
    An empty C{<x xmlns='http://jabber.org/protocol/muc#user'/>} with
    these status codes.
    """
    x = domish.Element((NS_MUC_USER, "x"))
    for code in codes:
        x.addElement("status")["code"] = code
    return x


def formatStamp(seconds):
    """
    A XEP-0082 DateTime for a time in seconds since the epoch.
    """
    when = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if when.microsecond:
        text += ".%03d" % (when.microsecond // 1000,)
    return text + "Z"


def parseStamp(text):
    """
    A XEP-0082 DateTime as seconds since the epoch.

    @raise ValueError: if it is no such time.
    """
    text = text.strip()
    if len(text) > 40:
        raise ValueError("not a date and time")
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    when = datetime.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()


def delayElement(by, seconds):
    """
    A XEP-0203 C{<delay/>} from C{by} at C{seconds}.
    """
    delay = domish.Element((NS_DELAY, "delay"))
    delay["from"] = by
    delay["stamp"] = formatStamp(seconds)
    return delay


def parseStored(text):
    """
    Parse a stanza the service serialized itself.

    @rtype: L{domish.Element}
    @raise domish.ParserError: if it is not one element.
    """
    result = []
    stream = domish.elementStream()
    stream.DocumentStartEvent = lambda root: None
    stream.ElementEvent = result.append
    stream.DocumentEndEvent = lambda: None
    stream.parse(("<stored>%s</stored>" % (text,)).encode("utf-8"))
    if len(result) != 1:
        raise domish.ParserError("expected one element, got %d" % (len(result),))
    return copyElement(result[0])


def isServiceOwned(child, roomJID):
    """
    Whether C{child} of a stanza a client sent is something only the
    room may write, to be dropped before the room reflects the stanza:
    its own XEP-0359 stanza id or XEP-0203 delay, a XEP-0421 occupant
    id, or C{muc#user} data (XEP-0045 section 17.3).

    @param roomJID: the room's bare JID, as text.
    """
    if child.uri == NS_OCCUPANT_ID or child.uri == NS_MUC_USER:
        return True
    if child.uri == NS_SID and child.name == "stanza-id":
        return _sameJID(child.getAttribute("by"), roomJID)
    if child.uri == NS_DELAY and child.name == "delay":
        return _sameJID(child.getAttribute("from"), roomJID)
    return False


def _sameJID(text, roomJID):
    if text is None:
        return False
    if text == roomJID:
        return True
    try:
        return jidlib.parse(text).full() == roomJID
    except jidlib.JIDMalformed:
        return False
