# -*- test-case-name: tests.test_mam -*-
"""
Serializing a stanza, for storage or for a client's stream, twice as
fast as L{domish.Element.toXml} for what clients send: elements each in
one namespace (declared where it changes), attributes without namespaces
but C{xml:lang}, text.  Anything else (prefixed namespaces, other
namespaced attributes) is left to C{toXml}.
"""

from twisted.words.xish import domish

__all__ = ["serialize"]

_XML = "http://www.w3.org/XML/1998/namespace"


class _Unusual(Exception):
    """
    Something only domish's serializer writes right.
    """


def _text(text):
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


def _attribute(text):
    text = _text(text)
    if "'" in text:
        text = text.replace("'", "&apos;")
    if '"' in text:
        text = text.replace('"', "&quot;")
    return text


def _write(element, parentUri, out, prefixed):
    # prefixed: namespaces in scope with a prefix (domish writes those).
    if element.localPrefixes:
        raise _Unusual()
    name = element.name
    uri = element.uri
    out.append("<" + name)
    if uri != parentUri:
        if uri is None or uri in prefixed:
            raise _Unusual()
        out.append(" xmlns='%s'" % (_attribute(uri),))
    for key, value in element.attributes.items():
        if key.__class__ is tuple:
            if key[0] != _XML:
                raise _Unusual()
            key = "xml:" + key[1]
        out.append(" %s='%s'" % (key, _attribute(value)))
    children = element.children
    if not children:
        out.append("/>")
        return
    out.append(">")
    for child in children:
        if isinstance(child, domish.Element):
            _write(child, uri, out, prefixed)
        elif isinstance(child, domish.SerializedXML):
            out.append(child)
        else:
            out.append(_text(child))
    out.append("</" + name + ">")


def serialize(element, defaultUri=None, prefixes=None):
    """
    The element as XML text: what C{element.toXml()} returns, or, given
    the namespaces in scope where it is written, what
    L{twisted.words.protocols.jabber.xmlstream.XmlStream.send} writes.

    @type element: L{domish.Element}
    @param defaultUri: the namespace in scope (an XML stream's content
        namespace), not declared again; L{None} to declare the element's.
    @param prefixes: the namespaces declared with a prefix in scope (an
        XML stream's C{prefixes}, mapping namespace to prefix): elements
        in them are written by domish, with the prefix.
    @rtype: L{str}
    """
    out = []
    try:
        _write(element, defaultUri, out, prefixes or ())
    except _Unusual:
        if defaultUri is None and prefixes is None:
            return element.toXml()
        prefixes = prefixes or {}
        return element.toXml(prefixes=prefixes, defaultUri=defaultUri,
                             prefixesInScope=list(prefixes.values()))
    return "".join(out)
