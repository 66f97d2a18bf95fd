# -*- test-case-name: tests.test_pep -*-
"""
XEP-0115 entity capabilities of the server's own sessions, for the
C{+notify} filtering of personal eventing (XEP-0163 section 4).

A session's available presence (without C{to}) may carry
C{<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node=... ver=.../>}.
A C{ver} seen before is looked up in a cache of verified hashes; an
unknown one is asked of the session itself with a XEP-0030
C{disco#info} query to C{node#ver}, from the account's bare JID (as
Prosody's C{mod_pep} does).  The answer's verification string (XEP-0115
section 5) is computed: the answer gives the session its interests
whatever it hashes to, but only a hash that matches is cached, so a
client cannot poison the cache for others.  A presence without caps
keeps what the session had (the caps optimisation); unavailable
presence and the end of the session forget it.

The interests of a session -- the nodes whose C{NODE+notify} feature it
announced -- are L{Capabilities.interests}; when they change the module
fires

    caps/interests (session, added)     added: the nodes new to it

(the PEP module sends the last items of those nodes).

Everything here is bounded: one pending query per session, and at most
L{CACHE_SIZE} hashes cached (the oldest go first).
"""

import base64
import hashlib

from twisted.logger import Logger
from twisted.words.xish import domish

from xmppws.c2s import jid as jids
from xmppws.c2s.namespaces import NS_CLIENT, NS_DISCO_INFO

__all__ = ["CACHE_SIZE", "NS_CAPS", "Capabilities", "install", "verificationString"]

NS_CAPS = "http://jabber.org/protocol/caps"
NS_DATA = "jabber:x:data"
XML_LANG = ("http://www.w3.org/XML/1998/namespace", "lang")

#: Verified hashes kept.
CACHE_SIZE = 1024

_EMPTY = frozenset()


def verificationString(query):
    """
    The XEP-0115 (section 5.1) verification string of a C{disco#info}
    result, or L{None} when the result is one XEP-0115 section 5.4 says
    not to trust (duplicate identities, features or forms, a form
    without a hidden FORM_TYPE).

    @param query: the C{<query xmlns='http://jabber.org/protocol/disco#info'/>}.
    @rtype: L{str}
    """
    identities = []
    features = []
    forms = []
    for child in query.elements():
        if child.uri == NS_DISCO_INFO and child.name == "identity":
            identities.append(
                "%s/%s/%s/%s" % (
                    child.getAttribute("category", ""),
                    child.getAttribute("type", ""),
                    child.getAttribute(XML_LANG, ""),
                    child.getAttribute("name", ""),
                )
            )
        elif child.uri == NS_DISCO_INFO and child.name == "feature":
            features.append(child.getAttribute("var", ""))
        elif child.uri == NS_DATA and child.name == "x":
            form = _formString(child)
            if form is False:
                return None
            if form is not None:
                forms.append(form)
    if len(set(identities)) != len(identities) or len(set(features)) != len(features):
        return None
    types = [form[0] for form in forms]
    if len(set(types)) != len(types):
        return None
    parts = [identity + "<" for identity in sorted(identities)]
    parts.extend(feature + "<" for feature in sorted(features))
    for _, text in sorted(forms):
        parts.append(text)
    return "".join(parts)


def _formString(form):
    """
    C{(FORM_TYPE, text)} of an extended information form, L{None} for a
    form to ignore, C{False} for one that makes the result untrusted.
    """
    formType = None
    fields = []
    for field in form.elements(NS_DATA, "field"):
        name = field.getAttribute("var")
        values = sorted(str(value) for value in field.elements(NS_DATA, "value"))
        if name == "FORM_TYPE":
            if formType is not None or len(values) != 1:
                return False
            if field.getAttribute("type") != "hidden":
                return False
            formType = values[0]
            continue
        if name is None:
            return False
        fields.append((name, values))
    if formType is None:
        return None
    text = formType + "<"
    for name, values in sorted(fields):
        text += name + "<" + "".join(value + "<" for value in values)
    return formType, text


def capsHash(query):
    """
    The base64 SHA-1 of a C{disco#info} result's verification string, or
    L{None} when it is not to be trusted.
    """
    text = verificationString(query)
    if text is None:
        return None
    return base64.b64encode(hashlib.sha1(text.encode("utf-8")).digest()).decode("ascii")


def _interests(query):
    nodes = set()
    for feature in query.elements(NS_DISCO_INFO, "feature"):
        name = feature.getAttribute("var", "")
        if name.endswith("+notify") and len(name) > 7:
            nodes.add(name[:-7])
    return frozenset(nodes)


class Capabilities:
    """
    The caps module's state.

    @ivar server: the L{xmppws.c2s.server.XMPPServer}.
    @ivar cache: verified C{ver} to its interests.
    @ivar queries: disco queries sent so far.
    """

    log = Logger()

    def __init__(self, server):
        self.server = server
        self.cache = {}
        self.queries = 0
        self._interests = {}
        self._pending = {}

    def interests(self, session):
        """
        The nodes C{session} wants notifications of.

        @rtype: L{frozenset} of L{str}
        """
        return self._interests.get(session, _EMPTY)

    def _set(self, session, interests):
        if session.ended:
            return
        old = self._interests.get(session, _EMPTY)
        if interests:
            self._interests[session] = interests
        else:
            self._interests.pop(session, None)
        added = interests - old
        if added:
            self.server.fire("caps/interests", session, added)

    # Hooks

    def onPresence(self, session, presence):
        """
        Note the caps of a session's broadcast presence (the
        C{presence/out} event; the presence goes on).
        """
        if presence.getAttribute("to") is not None:
            return None
        kind = presence.getAttribute("type")
        if kind == "unavailable":
            self._forget(session)
            return None
        if kind is not None:
            return None
        caps = None
        for child in presence.elements(NS_CAPS, "c"):
            caps = child
            break
        if caps is None:
            return None
        ver = caps.getAttribute("ver")
        node = caps.getAttribute("node")
        if not ver or not node or len(ver) > 128 or len(node) > 1024:
            return None
        if caps.getAttribute("hash") == "sha-1":
            known = self.cache.get(ver)
            if known is not None:
                self._pending.pop(session, None)
                self._set(session, known)
                return None
        pending = self._pending.get(session)
        if pending is not None and pending[1] == ver:
            return None
        self._ask(session, node, ver, caps.getAttribute("hash"))
        return None

    def _ask(self, session, node, ver, hashName):
        self.queries += 1
        iq = domish.Element((NS_CLIENT, "iq"))
        iq["type"] = "get"
        iq["id"] = "xmppws-caps-%d" % (self.queries,)
        iq["from"] = jids.bare(session.jid).full()
        iq["to"] = session.jid.full()
        iq.addElement((NS_DISCO_INFO, "query"))["node"] = "%s#%s" % (node, ver)
        self._pending[session] = (iq["id"], ver, hashName)
        session.send(iq)

    def onAccountIQ(self, session, iq):
        """
        Take the answer to a caps query (the C{iq/account} event).
        """
        pending = self._pending.get(session)
        if pending is None or iq.getAttribute("id") != pending[0]:
            return None
        kind = iq.getAttribute("type")
        if kind not in ("result", "error"):
            return None
        del self._pending[session]
        if kind == "error":
            return True
        query = None
        for child in iq.elements(NS_DISCO_INFO, "query"):
            query = child
            break
        if query is None:
            return True
        interests = _interests(query)
        _, ver, hashName = pending
        if hashName == "sha-1" and capsHash(query) == ver:
            if ver not in self.cache and len(self.cache) >= CACHE_SIZE:
                del self.cache[next(iter(self.cache))]
            self.cache[ver] = interests
        self._set(session, interests)
        return True

    def onSessionEnded(self, session):
        self._forget(session)

    def _forget(self, session):
        self._interests.pop(session, None)
        self._pending.pop(session, None)


def install(server):
    """
    Track the capabilities of the server's sessions.

    @return: the L{Capabilities} state.
    """
    caps = Capabilities(server)
    server.on("presence/out", caps.onPresence, priority=50)
    server.on("iq/account", caps.onAccountIQ, priority=50)
    server.on("session/ended", caps.onSessionEnded)
    return caps
