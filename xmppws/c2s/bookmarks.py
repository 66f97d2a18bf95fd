# -*- test-case-name: tests.test_personal -*-
"""
Bookmarks of group chat rooms kept in step between the three places
clients look for them, after Prosody 13's C{mod_bookmarks} (XEP-0411
and XEP-0402 section 5):

  - XEP-0402: one item per room in the PEP node C{urn:xmpp:bookmarks:1}
    of the account, the room's JID as item id -- the one copy kept;
  - XEP-0048 in private XML storage (XEP-0049): C{<storage
    xmlns='storage:bookmarks'/>} is made from the XEP-0402 items when
    read, and written into them when set;
  - XEP-0048 in PEP: the node C{storage:bookmarks} (item C{current})
    likewise, on read and on publish.

When the XEP-0402 node changes, sessions that announced
C{storage:bookmarks+notify} are sent the XEP-0048 form of the whole
list too.  Accounts announce C{urn:xmpp:bookmarks:1#compat},
C{#compat-pep} and C{urn:xmpp:bookmarks-conversion:0}.

A XEP-0048 write makes the XEP-0402 node whitelist-only, persistent,
with the most items, and without last items on presence (the
configuration XEP-0402 asks for), creating it if needed; rooms missing
from the written list are retracted.
"""

from twisted.internet import defer
from twisted.logger import Logger
from twisted.words.xish import domish

from xmppws.c2s import jid as jids
from xmppws.c2s._stanzas import parseStanza
from xmppws.c2s.modules import installModules
from xmppws.c2s.pepnode import MAX_ITEMS, PubSubError
from xmppws.c2s.pep import NS_PUBSUB
from xmppws.c2s.personal import Item
from xmppws.c2s.private import NS_PRIVATE

__all__ = ["NS_BOOKMARKS", "NS_LEGACY", "Bookmarks", "install"]

NS_BOOKMARKS = "urn:xmpp:bookmarks:1"
NS_LEGACY = "storage:bookmarks"
NS_CONVERSION = "urn:xmpp:bookmarks-conversion:0"

#: The configuration XEP-0402 asks of its node.
OPTIONS = {
    "persistItems": True,
    "maxItems": MAX_ITEMS,
    "sendLast": "never",
    "accessModel": "whitelist",
}


def _text(element, name):
    for child in element.elements():
        if child.name == name:
            return str(child)
    return None


def legacyStorage(items):
    """
    The XEP-0048 C{<storage/>} of XEP-0402 items.

    @param items: the L{Item}s of the C{urn:xmpp:bookmarks:1} node.
    @rtype: L{domish.Element}
    """
    storage = domish.Element((NS_LEGACY, "storage"))
    for item in items:
        try:
            conference = parseStanza(item.payload)
        except domish.ParserError:
            continue
        if conference.uri != NS_BOOKMARKS or conference.name != "conference":
            continue
        legacy = storage.addElement("conference")
        legacy["jid"] = item.id
        for attribute in ("name", "autojoin"):
            value = conference.getAttribute(attribute)
            if value is not None:
                legacy[attribute] = value
        for name in ("nick", "password"):
            value = _text(conference, name)
            if value is not None:
                legacy.addElement(name, content=value)
    return storage


def modernItems(storage, publisher):
    """
    The XEP-0402 items of a XEP-0048 C{<storage/>}, by room JID.

    @return: an ordered L{dict} of room JID (text) to L{Item}.
    @raise ValueError: for a conference without a valid JID.
    """
    items = {}
    for legacy in storage.elements(NS_LEGACY, "conference"):
        try:
            room = jids.parse(legacy.getAttribute("jid", "")).full()
        except jids.JIDMalformed:
            raise ValueError("A bookmark has no valid room JID.")
        conference = domish.Element((NS_BOOKMARKS, "conference"))
        for attribute in ("name", "autojoin"):
            value = legacy.getAttribute(attribute)
            if value is not None:
                conference[attribute] = value
        for name in ("nick", "password"):
            value = _text(legacy, name)
            if value is not None:
                conference.addElement(name, content=value)
        items[room] = Item(room, publisher, conference.toXml())
    return items


class Bookmarks:
    """
    The bookmarks module's state.

    @ivar server: the L{xmppws.c2s.server.XMPPServer}.
    @ivar pep: the pep module.
    @ivar caps: the caps module.
    """

    log = Logger()

    def __init__(self, server, pep, caps):
        self.server = server
        self.pep = pep
        self.caps = caps

    # Reading

    def current(self, owner):
        """
        The XEP-0402 items of an account (none when it has no node).

        @return: a L{Deferred} firing with a L{list} of L{Item}.
        """
        d = self.pep.items(owner, NS_BOOKMARKS)

        def missing(failure):
            failure.trap(PubSubError)
            if failure.value.condition != "item-not-found":
                return failure
            return (None, [])

        d.addErrback(missing)
        return d.addCallback(lambda found: found[1])

    # Writing

    def store(self, owner, storage):
        """
        Make the XEP-0402 node hold what a XEP-0048 C{<storage/>} lists.

        @return: a L{Deferred} firing when done.
        """
        wanted = modernItems(storage, owner.full())
        d = self.pep.store.config(owner.full(), NS_BOOKMARKS)

        @defer.inlineCallbacks
        def sync(config):
            existing = yield self.current(owner)
            if config is not None and any(
                getattr(config, name) != value for name, value in OPTIONS.items()
            ):
                yield self.pep.store.configure(owner.full(), NS_BOOKMARKS, dict(OPTIONS))
            before = {item.id: item.payload for item in existing}
            changed = [item for room, item in wanted.items() if before.get(room) != item.payload]
            if changed:
                yield self.pep.publish(
                    owner, NS_BOOKMARKS, changed, dict(OPTIONS) if config is None else None
                )
            gone = [room for room in before if room not in wanted]
            if gone:
                yield self.pep.retract(owner, NS_BOOKMARKS, gone)

        return d.addCallback(sync)

    # Requests

    def onAccountIQ(self, session, iq):
        child = iq.firstChildElement()
        kind = iq.getAttribute("type")
        if child is None or kind not in ("get", "set"):
            return None
        owner = jids.bare(session.jid)
        if child.uri == NS_PRIVATE and child.name == "query":
            elements = list(child.elements())
            if len(elements) != 1 or (elements[0].uri, elements[0].name) != (NS_LEGACY, "storage"):
                return None
            if kind == "get":
                self._answer(iq, self.current(owner), self._privateReply)
            else:
                self._write(iq, owner, elements[0])
            return True
        if child.uri == NS_PUBSUB and child.name == "pubsub":
            return self._legacyPEP(iq, kind, child, owner)
        return None

    def _legacyPEP(self, iq, kind, pubsub, owner):
        for verb in pubsub.elements(NS_PUBSUB):
            if verb.getAttribute("node") != NS_LEGACY:
                continue
            if verb.name == "items" and kind == "get":
                self._answer(iq, self.current(owner), self._pepReply)
                return True
            if verb.name == "publish" and kind == "set":
                for item in verb.elements(NS_PUBSUB, "item"):
                    for storage in item.elements(NS_LEGACY, "storage"):
                        self._write(iq, owner, storage)
                        return True
                self.server.bounce(iq, "bad-request", "modify", "No bookmarks storage found.")
                return True
        return None

    def _privateReply(self, iq, items):
        reply = self.server.reply(iq)
        reply.addElement((NS_PRIVATE, "query")).addChild(legacyStorage(items))
        return reply

    def _pepReply(self, iq, items):
        reply = self.server.reply(iq)
        holder = reply.addElement((NS_PUBSUB, "pubsub")).addElement("items")
        holder["node"] = NS_LEGACY
        holder.addElement("item")["id"] = "current"
        holder.item.addChild(legacyStorage(items))
        return reply

    def _answer(self, iq, d, build):
        d.addCallback(lambda items: self.server.route(build(iq, items)))
        d.addErrback(self._failed, iq)

    def _write(self, iq, owner, storage):
        try:
            d = self.store(owner, storage)
        except ValueError as e:
            self.server.bounce(iq, "bad-request", "modify", str(e))
            return
        d.addCallback(lambda _: self.server.route(self.server.reply(iq)))
        d.addErrback(self._failed, iq)

    def _failed(self, failure, iq):
        if failure.check(PubSubError):
            error = failure.value
            self.server.bounce(iq, error.condition, error.errorType, error.text,
                               error.appCondition())
            return
        self.log.failure("Bookmarks request failed", failure)
        self.server.bounce(iq, "internal-server-error", "wait")

    # Legacy notifications

    def onChanged(self, owner, node, kind, items):
        """
        Tell sessions that follow XEP-0048 bookmarks in PEP of a change
        of the XEP-0402 node (the C{pep/changed} event).
        """
        if node != NS_BOOKMARKS:
            return None
        sessions = [
            s for s in self.server.sessionsOf(owner)
            if s.available and NS_LEGACY in self.caps.interests(s)
        ]
        if not sessions:
            return None
        d = self.current(owner)

        def send(current):
            for session in sessions:
                message = domish.Element((None, "message"))
                message["from"] = owner.full()
                message["to"] = session.jid.full()
                message["type"] = "headline"
                holder = message.addElement(("http://jabber.org/protocol/pubsub#event", "event"))
                holder = holder.addElement("items")
                holder["node"] = NS_LEGACY
                item = holder.addElement("item")
                item["id"] = "current"
                item.addChild(legacyStorage(current))
                self.server.route(message)

        d.addCallbacks(send, lambda f: self.log.failure("Legacy bookmarks push failed", f))
        return None


def install(server):
    """
    Keep bookmarks in step between XEP-0048 and XEP-0402.

    @return: the L{Bookmarks} state.
    """
    modules = installModules(server, ("pep", "private", "disco"))
    bookmarks = Bookmarks(server, modules["pep"], modules["caps"])
    for feature in (NS_BOOKMARKS + "#compat", NS_BOOKMARKS + "#compat-pep", NS_CONVERSION):
        modules["disco"].addFeature(feature, account=True)
    server.on("iq/account", bookmarks.onAccountIQ, priority=20)
    server.on("pep/changed", bookmarks.onChanged)
    return bookmarks
