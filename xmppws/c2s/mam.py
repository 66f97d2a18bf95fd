# -*- test-case-name: tests.test_mam -*-
"""
XEP-0313 message archive management for the server's accounts, after
Prosody 13's C{mod_mam}.

Each account has an archive at its bare JID (kept by
L{xmppws.c2s.archive} in C{archive.sqlite}):

  - a message a client sends is archived in its account's archive (the
    C{stanza/out} event); the copies XEP-0280 carbons send the account's
    other resources carry its XEP-0359 C{<stanza-id by=ACCOUNT/>}, and
    the id is removed before the message goes on;
  - a message for a local account is archived in that account's archive
    (the C{stanza/in} event, after the block list let it through) and
    carries its C{<stanza-id/>} from then on: every resource it reaches,
    the offline store and the carbons get the same id;
  - a C{<stanza-id/>} a sender wrote in the name of either archive is
    removed (XEP-0359 section 7).

Which messages (Prosody's rules): not headlines, groupchat or messages
with the XEP-0334 C{no-store}/C{no-permanent-store} hints; those with
a body, a subject, the C{store} hint, encrypted content (XEP-0380), a
delivery receipt, a chat marker, an invitation or a call (XEP-0353); and
errors returned to a resource.  XEP-0085 chat states are left out of the
archived copy.  Anonymous accounts have no archive.

Queries (an iq C{set} of C{<query xmlns='urn:xmpp:mam:2'/>} to one's own
account) are read by L{xmppws.c2s.mamquery}; the preferences
(C{<prefs/>}, XEP-0441) are kept in the server's own database and
cached for the accounts in use; the archive's C{<metadata/>} is
answered too.  Another account's archive is C{forbidden}.

Writing never blocks the reactor: the rows of one turn go to the
archive's database thread together (see L{xmppws.c2s.archive}).
"""

from twisted.logger import Logger
from twisted.words.xish import domish

from xmppws.c2s import jid as jids
from xmppws.c2s._serialize import serialize
from xmppws.c2s.archive import ArchivedMessage, ArchiveStore, UnknownArchiveId
from xmppws.c2s.archive import SCHEMA as ARCHIVE_SCHEMA
from xmppws.c2s.mamprefs import ArchivePrefs, parsePrefs
from xmppws.c2s.mamquery import (
    NS_MAM,
    NS_MAM_EXTENDED,
    NS_SID,
    QueryError,
    finElement,
    metadataElement,
    parseQuery,
    queryForm,
    resultMessage,
)
from xmppws.c2s.modules import installModules, moduleDatabase
from xmppws.c2s.namespaces import NS_CLIENT, NS_HINTS

__all__ = ["ArchiveSettings", "MessageArchive", "install", "shouldStore"]

NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"

#: Payloads that make a message worth keeping without a body (Prosody's
#: list): encryption (XEP-0380), receipts (XEP-0184), markers
#: (XEP-0333), direct invitations (XEP-0249), call messages (XEP-0353).
KEPT_NAMESPACES = frozenset(
    {
        "urn:xmpp:eme:0",
        "urn:xmpp:receipts",
        "urn:xmpp:chat-markers:0",
        "jabber:x:conference",
        "urn:xmpp:jingle-message:0",
        "urn:xmpp:jingle-message:1",
    }
)

_BODY_NAMESPACES = (NS_CLIENT, None, "")

#: Accounts whose preferences are kept in memory.
PREFS_CACHE = 10000


class ArchiveSettings:
    """
    How the server archives messages.

    @ivar enabled: whether accounts have archives at all.
    @ivar retention: seconds a message is kept (Prosody's
        C{archive_expires_after}, one week), or L{None} for ever.
    @ivar default: the archiving default of accounts that set no
        preferences: C{'always'} (Prosody's C{default_archive_policy}),
        C{'roster'} or C{'never'}.
    """

    def __init__(self, enabled=True, retention=7 * 86400, default="always"):
        if default not in ("always", "roster", "never"):
            raise ValueError("default must be 'always', 'roster' or 'never'")
        if retention is not None and retention <= 0:
            raise ValueError("retention must be positive, or None")
        self.enabled = enabled
        self.retention = retention
        self.default = default

    def __repr__(self):
        return "ArchiveSettings(enabled=%r, retention=%r, default=%r)" % (
            self.enabled,
            self.retention,
            self.default,
        )


# What _scan finds, besides whether to store.
_STANZA_IDS = 1
_CHAT_STATES = 2


def _scan(message, toFullJID):
    """
    Look at a message's children once: whether it belongs in an archive
    (Prosody's rules, see the module's docstring), and whether it has
    stanza ids and chat states.

    @return: C{(store, found)}, C{found} a mask of L{_STANZA_IDS} and
        L{_CHAT_STATES}.
    """
    kind = message.getAttribute("type", "normal")
    if kind == "headline" or kind == "groupchat":
        return False, 0
    if kind == "error":
        return toFullJID, 0
    store = False
    found = 0
    for child in message.children:
        if not isinstance(child, domish.Element):
            continue
        uri = child.uri
        if uri in _BODY_NAMESPACES:
            if child.name in ("body", "subject"):
                store = True
        elif uri == NS_CHATSTATES:
            found |= _CHAT_STATES
        elif uri == NS_SID:
            if child.name == "stanza-id":
                found |= _STANZA_IDS
        elif uri == NS_HINTS:
            if child.name in ("no-store", "no-permanent-store"):
                return False, found
            if child.name == "store":
                store = True
        elif uri in KEPT_NAMESPACES:
            store = True
        elif uri == NS_MUC_USER and child.name == "x":
            if any(True for _ in child.elements(NS_MUC_USER, "invite")):
                store = True
    return store, found


def shouldStore(message, toFullJID):
    """
    Whether a message belongs in an archive (Prosody's rules, see the
    module's docstring).

    @param toFullJID: whether it is addressed to a full JID (an error
        returned to a resource is kept, others are not).
    @rtype: L{bool}
    """
    return _scan(message, toFullJID)[0]


def _serialize(message, found):
    """
    The archived copy of a message: as it is, without chat states.
    """
    if not found & _CHAT_STATES:
        return serialize(message)
    children = message.children
    message.children = [
        child
        for child in children
        if not (isinstance(child, domish.Element) and child.uri == NS_CHATSTATES)
    ]
    try:
        return serialize(message)
    finally:
        message.children = children


def _stripIds(message, owners):
    """
    Remove the C{<stanza-id/>}s that claim to be by one of C{owners}
    (bare JIDs as text): only the archive itself may say so.
    """
    forged = [
        child
        for child in message.elements(NS_SID, "stanza-id")
        if _bareText(child.getAttribute("by")) in owners
    ]
    for child in forged:
        message.children.remove(child)


def _bareText(text):
    if not text:
        return None
    try:
        return jids.bare(jids.parse(text)).full()
    except jids.JIDMalformed:
        return None


class MessageArchive:
    """
    The mam module's state.

    @ivar server: the L{xmppws.c2s.server.XMPPServer}.
    @ivar store: the L{ArchiveStore}.
    @ivar settings: the L{ArchiveSettings}.
    @ivar roster: the roster module (for the C{roster} default).
    """

    log = Logger()

    def __init__(self, server, store, settings, roster):
        self.server = server
        self.store = store
        self.settings = settings
        self.roster = roster
        self.newId = store.newId
        self._prefs = {}
        self._defaults = ArchivePrefs(settings.default)

    def close(self):
        """
        Write what is queued and close the archive's database.
        """
        d = self.store.close()
        d.addBoth(lambda _: self.store.db.close())
        return d

    # Preferences

    def prefs(self, account):
        """
        The archiving preferences of a local account, or L{None} when it
        has no archive (an anonymous or unknown account).

        @param account: the account's bare JID.
        @rtype: L{ArchivePrefs} or L{None}
        """
        key = account.full()
        prefs = self._prefs.get(key)
        if prefs is not None:
            return prefs
        storage = self.server.storage
        if not storage.userExists(account.user, account.host):
            return None
        text = storage.archivePrefs(account.user, account.host)
        prefs = self._defaults if text is None else ArchivePrefs.fromJSON(text)
        if len(self._prefs) >= PREFS_CACHE:
            del self._prefs[next(iter(self._prefs))]
        self._prefs[key] = prefs
        return prefs

    def _wanted(self, account, prefs, other):
        if prefs.always or prefs.never:
            rule = prefs.rule(other)
            if rule is not None:
                return rule
        if prefs.default == "always":
            return True
        if prefs.default == "never":
            return False
        item = self.roster.item(account, jids.bare(other))
        return item is not None and item.inRoster

    # Routing

    def onOutgoing(self, session, stanza):
        """
        Archive a message a client sends in its account's archive (the
        C{stanza/out} event); the id goes on the copy carbons take.
        """
        if stanza.name != "message" or session.anonymous:
            return None
        if stanza.getAttribute("type") == "error":
            return None
        store, found = _scan(stanza, False)
        if not store:
            return None
        owner = jids.bare(session.jid)
        try:
            to = jids.ofStanza(stanza, "to")
        except jids.JIDMalformed:
            return None
        if to is None:
            to = owner
        prefs = self.prefs(owner)
        if prefs is None:
            return None
        peer = jids.bare(to)
        ownerText = owner.full()
        if found & _STANZA_IDS:
            _stripIds(stanza, (ownerText, peer.full()))
        if not self._wanted(owner, prefs, to):
            return None
        xml = _serialize(stanza, found)
        sid = self.newId()
        self.store.append(
            ArchivedMessage(ownerText, sid, self.server.reactor.seconds(), peer.full(),
                            to.resource, xml)
        )
        stanza.xmppwsArchived = (ownerText, sid, xml)
        stanza.xmppwsOwnId = _stanzaId(stanza, ownerText, sid)
        return None

    def removeOwnId(self, session, stanza):
        """
        Take the sender's archive id off a message once the carbons are
        made, before it leaves (XEP-0313 section 4.1.1).
        """
        own = getattr(stanza, "xmppwsOwnId", None)
        if own is not None:
            stanza.xmppwsOwnId = None
            try:
                stanza.children.remove(own)
            except ValueError:
                pass
        return None

    def onIncoming(self, stanza, to):
        """
        Archive a message for a local account in its archive (the
        C{stanza/in} event); it carries the archive id from now on.
        """
        if stanza.name != "message":
            return None
        store, found = _scan(stanza, to.resource is not None)
        if not store:
            return None
        owner = jids.bare(to)
        ownerText = owner.full()
        try:
            sender = jids.ofStanza(stanza, "from")
        except jids.JIDMalformed:
            sender = None
        if sender is None:
            sender = jids.fromPrepared(to.host)
        if found & _STANZA_IDS:
            _stripIds(stanza, (ownerText,))
        prefs = self.prefs(owner)
        if prefs is None:
            return None
        archived = getattr(stanza, "xmppwsArchived", None)
        if archived is not None and archived[0] == ownerText:
            # To oneself: archived once, as sent.
            _stanzaId(stanza, ownerText, archived[1])
            return None
        if not self._wanted(owner, prefs, sender):
            return None
        xml = archived[2] if archived is not None else _serialize(stanza, found)
        sid = self.newId()
        self.store.append(
            ArchivedMessage(ownerText, sid, self.server.reactor.seconds(),
                            jids.bare(sender).full(), sender.resource, xml)
        )
        _stanzaId(stanza, ownerText, sid)
        return None

    def onOffline(self, message, bare):
        """
        Archive results a session did not acknowledge before it ended are
        not kept for later (the C{message/offline} event): they answered
        that session's query.
        """
        if any(True for _ in message.elements(NS_MAM, "result")):
            return True
        return None

    # Requests

    def onAccountIQ(self, session, iq):
        child = iq.firstChildElement()
        if child is None or child.uri != NS_MAM:
            return None
        kind = iq.getAttribute("type")
        if kind not in ("get", "set"):
            return None
        owner = jids.bare(session.jid)
        if not self.settings.enabled or self.prefs(owner) is None:
            self.server.bounce(iq, "service-unavailable", "cancel", "This account has no archive.")
            return True
        if child.name == "query":
            if kind == "get":
                reply = self.server.reply(iq)
                reply.addChild(queryForm())
                session.send(reply)
            else:
                self._query(session, iq, child, owner)
        elif child.name == "prefs":
            self._prefsRequest(session, iq, child, owner, kind)
        elif child.name == "metadata" and kind == "get":
            self._metadata(session, iq, owner)
        else:
            self.server.bounce(iq, "feature-not-implemented", "cancel")
        return True

    def onBareIQ(self, iq, to):
        """
        Another account's archive is not for others to read.
        """
        child = iq.firstChildElement()
        if child is None or child.uri != NS_MAM or iq.getAttribute("type") not in ("get", "set"):
            return None
        if not self.server.accountExists(to):
            return None
        self.server.bounce(iq, "forbidden", "auth", "Only the account's owner may use its archive.")
        return True

    def _query(self, session, iq, query, owner):
        try:
            queryid, archiveQuery, flip = parseQuery(query)
        except QueryError as e:
            self.server.bounce(iq, e.condition, e.errorType, e.text)
            return
        d = self.store.query(owner.full(), archiveQuery)

        def answer(page):
            ownerText = owner.full()
            to = session.jid.full()
            messages = reversed(page.messages) if flip else page.messages
            for message in messages:
                session.send(resultMessage(ownerText, to, queryid, message))
            reply = self.server.reply(iq)
            reply.addChild(finElement(page))
            session.send(reply)

        def failed(failure):
            if failure.check(UnknownArchiveId):
                self.server.bounce(iq, "item-not-found", "cancel",
                                   "No message with that id is in the archive.")
            else:
                self.log.failure("Archive query for {jid} failed", failure, jid=owner.full())
                self.server.bounce(iq, "internal-server-error", "wait")

        d.addCallbacks(answer, failed)

    def _prefsRequest(self, session, iq, element, owner, kind):
        if kind == "set":
            try:
                prefs = parsePrefs(element, self.server.config.quotas.maxArchivePrefs)
            except QueryError as e:
                if e.condition == "not-acceptable":
                    self.server.stats["quota_maxArchivePrefs"] += 1
                self.server.bounce(iq, e.condition, e.errorType, e.text)
                return
            self.server.storage.setArchivePrefs(owner.user, owner.host, prefs.toJSON())
            self._prefs.pop(owner.full(), None)
        prefs = self.prefs(owner)
        reply = self.server.reply(iq)
        reply.addChild(prefs.toElement())
        session.send(reply)

    def _metadata(self, session, iq, owner):
        d = self.store.bounds(owner.full())

        def answer(bounds):
            reply = self.server.reply(iq)
            reply.addChild(metadataElement(*bounds))
            session.send(reply)

        def failed(failure):
            self.log.failure("Archive metadata for {jid} failed", failure, jid=owner.full())
            self.server.bounce(iq, "internal-server-error", "wait")

        d.addCallbacks(answer, failed)

    def onAccountRemoved(self, bare):
        """
        Forget a removed account's archive.
        """
        self._prefs.pop(bare.full(), None)
        d = self.store.delete(bare.full())
        d.addErrback(lambda f: self.log.failure("Deleting the archive of {jid} failed", f,
                                                jid=bare.full()))


def _stanzaId(stanza, by, sid):
    element = stanza.addElement((NS_SID, "stanza-id"))
    element["by"] = by
    element["id"] = sid
    return element


def install(server):
    """
    Archive messages and answer archive queries, unless the server's
    archive settings turn it off.

    @return: the L{MessageArchive} state.
    """
    settings = getattr(server.config, "archive", None) or ArchiveSettings()
    roster = installModules(server, ("roster",))["roster"]
    db = moduleDatabase(server, "archive.sqlite", ARCHIVE_SCHEMA)
    store = ArchiveStore(
        db,
        server.reactor,
        maxMessages=server.config.quotas.maxArchiveMessages,
        retention=settings.retention,
        backlog=getattr(server.config, "backlog", None),
    )
    archive = MessageArchive(server, store, settings, roster)
    disco = installModules(server, ("disco",))["disco"]
    if settings.enabled:
        store.start()
        for feature in (NS_MAM, NS_MAM_EXTENDED, NS_SID):
            disco.addFeature(feature, account=True)
        server.on("stanza/out", archive.onOutgoing)
        server.on("stanza/out", archive.removeOwnId, priority=-200)
        server.on("stanza/in", archive.onIncoming, priority=50)
        server.on("message/offline", archive.onOffline, priority=10)
    server.on("iq/account", archive.onAccountIQ)
    server.on("iq/bare", archive.onBareIQ, priority=10)
    server.on("account/remove", archive.onAccountRemoved)
    return archive
