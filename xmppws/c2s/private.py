# -*- test-case-name: tests.test_personal -*-
"""
XEP-0049 private XML storage: an account keeps elements of its own
namespaces on the server (C{<query xmlns='jabber:iq:private'/>} iqs to
itself), in C{personal.sqlite} (L{xmppws.c2s.personal}).

A get names one element (its name and namespace) and gets it back, or
the empty element when nothing is stored; a set stores each element it
holds, replacing what was stored under the same name and namespace.
Errors (XEP-0049 section 3): a query without an element, a get naming
several, or a reserved namespace (C{jabber:*}, C{http://jabber.org/*},
C{vcard-temp}), C{not-acceptable}; another account's storage,
C{forbidden}; more than the account's C{maxPrivateSize} bytes,
C{not-acceptable}.

XEP-0048 bookmarks (C{storage:bookmarks}) are kept in step with XEP-0402
ones by L{xmppws.c2s.bookmarks}, which answers for that namespace.
"""

from twisted.logger import Logger

from xmppws.c2s.modules import installModules
from xmppws.c2s.personal import TooBig
from xmppws.c2s.quotas import refuse

__all__ = ["NS_PRIVATE", "PrivateStorage", "install", "isReserved"]

NS_PRIVATE = "jabber:iq:private"


def isReserved(namespace):
    """
    Whether private storage refuses a namespace (XEP-0049 section 3).
    """
    namespace = namespace or ""
    return (
        not namespace
        or namespace.startswith("jabber:")
        or namespace.startswith("http://jabber.org/")
        or namespace == "vcard-temp"
    )


def clark(element):
    """
    An element's name in Clark notation, the key it is stored under.
    """
    return "{%s}%s" % (element.uri or "", element.name)


class PrivateStorage:
    """
    The private module's state.

    @ivar server: the L{xmppws.c2s.server.XMPPServer}.
    @ivar store: the L{xmppws.c2s.personal.PersonalStore} (the pep
        module's).
    """

    log = Logger()
    discoFeatures = (NS_PRIVATE,)

    def __init__(self, server, store):
        self.server = server
        self.store = store

    def onAccountIQ(self, session, iq):
        query = iq.firstChildElement()
        if query is None or query.uri != NS_PRIVATE or query.name != "query":
            return None
        kind = iq.getAttribute("type")
        if kind not in ("get", "set"):
            return None
        elements = list(query.elements())
        if not elements:
            self.server.bounce(iq, "not-acceptable", "modify", "Name the element to store.")
            return True
        if any(isReserved(element.uri) for element in elements):
            self.server.bounce(iq, "not-acceptable", "modify", "That namespace is reserved.")
            return True
        owner = session.jid.userhost()
        if kind == "get":
            if len(elements) != 1:
                self.server.bounce(iq, "not-acceptable", "modify", "Ask for one element at once.")
                return True
            self._get(iq, owner, elements[0])
        else:
            self._set(iq, owner, elements)
        return True

    def onBareIQ(self, iq, to):
        query = iq.firstChildElement()
        if query is None or query.uri != NS_PRIVATE or iq.getAttribute("type") not in (
            "get", "set"
        ):
            return None
        if not self.server.accountExists(to):
            return None
        self.server.bounce(iq, "forbidden", "cancel", "Private storage is for its account only.")
        return True

    def _get(self, iq, owner, wanted):
        d = self.store.private(owner, clark(wanted))

        def answer(xml):
            reply = self.server.reply(iq)
            query = reply.addElement((NS_PRIVATE, "query"))
            if xml is None:
                query.addElement((wanted.uri, wanted.name))
            else:
                query.addRawXml(xml)
            self.server.route(reply)

        d.addCallbacks(answer, self._failed, errbackArgs=(iq,))

    def _set(self, iq, owner, elements):
        stored = {clark(element): element.toXml() for element in elements}
        d = self.store.setPrivate(owner, stored, self.server.config.quotas.maxPrivateSize)
        d.addCallbacks(lambda _: self.server.route(self.server.reply(iq)), self._failed,
                       errbackArgs=(iq,))

    def _failed(self, failure, iq):
        if failure.check(TooBig):
            refuse(self.server, iq, "maxPrivateSize", "not-acceptable", "modify",
                   "Private storage may hold at most %d bytes." % (failure.value.limit,))
            return
        self.log.failure("Private storage failed", failure)
        self.server.bounce(iq, "internal-server-error", "wait")


def install(server):
    """
    Keep private XML for accounts, in the pep module's store.

    @return: the L{PrivateStorage} state.
    """
    pep = installModules(server, ("pep",))["pep"]
    private = PrivateStorage(server, pep.store)
    server.on("iq/account", private.onAccountIQ)
    server.on("iq/bare", private.onBareIQ)
    return private

