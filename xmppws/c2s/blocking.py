# -*- test-case-name: tests.test_c2s_ext -*-
"""
XEP-0191 blocking command: each account keeps a block list in the
server's database, edited with iqs to the account; resources that
fetched the list get a push of every change.

A blocked item matches JIDs as in XEP-0016 section 2.1: C{user@domain/r}
only itself, C{user@domain} every resource of the account,
C{domain/r} only itself, C{domain} everything at the domain.  An account
is never blocked from itself, nor from its own server's domains (so
blocking one's own domain still lets disco, ping and errors through).

Enforcement (XEP-0191 section 3.3):

  - stanzas from a blocked JID to the account are not delivered: the
    sender gets C{service-unavailable} for a message or an iq C{get} or
    C{set}, nothing for presence or an iq C{result} or error, so the
    account looks offline;
  - stanzas a client sends to a JID it blocked are not routed: it gets
    C{not-acceptable} with C{<blocked xmlns='urn:xmpp:blocking:errors'/>}
    (an unavailable presence, iq result or error is dropped silently);
    stanzas the server sends on the account's behalf to such a JID
    (presence broadcasts, probes) are dropped;
  - blocking a contact that may see the account's presence (a roster
    subscription of C{from} or C{both}, or directed presence) sends it
    unavailable presence from every available resource; unblocking
    sends it the resources' current presence.
"""

import itertools

from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish

from xmppws.c2s import jid as jids
from xmppws.c2s._stanzas import copyStanza, errorReply
from xmppws.c2s.namespaces import NS_BLOCKING, NS_BLOCKING_ERRORS, NS_CLIENT
from xmppws.c2s.quotas import refuse

__all__ = ["Blocking", "install"]


class Blocking:
    """
    The blocking module's state.

    @ivar server: the L{xmppws.c2s.server.XMPPServer}.
    """

    discoFeatures = (NS_BLOCKING,)

    def __init__(self, server):
        self.server = server
        self._lists = {}
        self._interested = set()
        self._pushIDs = itertools.count(1)

    def blocklist(self, bare):
        """
        The block list of an account.  The lists of accounts with a
        session are kept in memory until their last session ends; others
        are read from the database each time, so that stanzas to made-up
        accounts leave nothing behind.

        @type bare: L{JID}
        @return: the blocked JIDs, as normalised strings.
        @rtype: L{frozenset} of L{str}
        """
        key = bare.userhost()
        items = self._lists.get(key)
        if items is None:
            items = frozenset(self.server.storage.blocklist(bare.user, bare.host))
            if self.server.sessionsOf(bare):
                self._lists[key] = items
        return items

    def isBlocked(self, bare, jid):
        """
        Whether the account C{bare} blocked C{jid}.

        @type bare: L{JID}
        @type jid: L{JID}
        @rtype: L{bool}
        """
        items = self.blocklist(bare)
        return bool(items) and not items.isdisjoint(_candidates(jid))

    # Hooks

    def onAccountIQ(self, session, iq):
        child = iq.firstChildElement()
        if child is None or child.uri != NS_BLOCKING:
            return None
        iqType = iq.getAttribute("type")
        if child.name == "blocklist" and iqType == "get":
            self._sendList(session, iq)
        elif child.name in ("block", "unblock") and iqType == "set":
            self._edit(session, iq, child)
        elif iqType in ("get", "set"):
            self.server.bounce(iq, "bad-request", "modify")
        return True

    def onIncoming(self, stanza, to):
        """
        Drop stanzas from a JID the recipient blocked, and stanzas the
        server sends for an account to a JID the account blocked.
        """
        sender = _address(stanza, "from")
        if sender is None:
            return None
        stanzaType = stanza.getAttribute("type")
        if jids.bare(sender) == jids.bare(to):
            return None
        if sender.user is None and self.server.isLocal(sender):
            # The account's own server is never blocked.
            return None
        if self.isBlocked(jids.bare(to), sender):
            if stanzaType != "error" and (
                stanza.name == "message" or (stanza.name == "iq" and stanzaType in ("get", "set"))
            ):
                self.server.bounce(stanza, "service-unavailable", "cancel")
            return True
        if (
            stanzaType != "error"
            and sender.user is not None
            and self.server.isLocal(sender)
            and self.isBlocked(jids.bare(sender), to)
        ):
            return True
        return None

    def onOutgoing(self, session, stanza):
        """
        Refuse a client's stanza to a JID its account blocked.
        """
        to = _address(stanza, "to")
        if to is None:
            return None
        bare = jids.bare(session.jid)
        if jids.bare(to) == bare or (to.user is None and self.server.isLocal(to)):
            return None
        if not self.isBlocked(bare, to):
            return None
        stanzaType = stanza.getAttribute("type")
        if stanzaType in ("error", "result") or (
            stanza.name == "presence" and stanzaType == "unavailable"
        ):
            return True
        session.send(
            errorReply(
                stanza,
                "not-acceptable",
                "cancel",
                extra=domish.Element((NS_BLOCKING_ERRORS, "blocked")),
            )
        )
        return True

    def onSessionEnded(self, session):
        self._interested.discard(session)
        bare = jids.bare(session.jid)
        if not any(other is not session for other in self.server.sessionsOf(bare)):
            self._lists.pop(bare.userhost(), None)

    def onAccountRemoved(self, bare):
        self._lists.pop(bare.userhost(), None)

    # Requests

    def _sendList(self, session, iq):
        reply = self.server.reply(iq)
        blocklist = reply.addElement((NS_BLOCKING, "blocklist"))
        for item in sorted(self.blocklist(jids.bare(session.jid))):
            blocklist.addElement("item")["jid"] = item
        self._interested.add(session)
        session.send(reply)

    def _edit(self, session, iq, command):
        bare = jids.bare(session.jid)
        items = []
        limit = self.server.config.quotas.maxBlocked
        for element in command.elements(NS_BLOCKING, "item"):
            text = element.getAttribute("jid")
            try:
                jid = jids.parse(text or "")
            except jids.JIDMalformed as e:
                self.server.bounce(
                    iq,
                    "jid-malformed",
                    "modify",
                    "An item's %s is not valid (%s)." % (e.part, e.reason),
                )
                return
            items.append(jid.full())
        current = self.blocklist(bare)
        storage = self.server.storage
        if command.name == "block":
            if not items:
                self.server.bounce(iq, "bad-request", "modify")
                return
            added = frozenset(items) - current
            if len(current) + len(added) > limit:
                refuse(
                    self.server,
                    iq,
                    "maxBlocked",
                    "policy-violation",
                    "modify",
                    "A block list holds at most %d entries; unblock some first." % (limit,),
                )
                return
            # Say goodbye while the contacts are still reachable.
            self._sendPresence(bare, added, available=False)
            storage.block(bare.user, bare.host, sorted(added))
            self._lists[bare.userhost()] = current | added
        else:
            removed = current & frozenset(items) if items else current
            storage.unblock(bare.user, bare.host, sorted(removed) if items else None)
            self._lists[bare.userhost()] = current - removed
            self._sendPresence(bare, removed, available=True)
        session.send(self.server.reply(iq))
        self._push(bare, command.name, items)

    def _push(self, bare, name, items):
        for other in self.server.sessionsOf(bare):
            if other not in self._interested:
                continue
            push = domish.Element((NS_CLIENT, "iq"))
            push["type"] = "set"
            push["to"] = other.jid.full()
            push["id"] = "block-push-%d" % (next(self._pushIDs),)
            command = push.addElement((NS_BLOCKING, name))
            for item in items:
                command.addElement("item")["jid"] = item
            other.send(push)

    def _sendPresence(self, bare, items, available):
        """
        Send unavailable (or the current) presence from each available
        resource of C{bare} to the contacts matching C{items} that may see
        it.
        """
        if not items:
            return
        subscribers = [
            jids.fromPrepared(row.contact)
            for row in self.server.storage.roster(bare.user, bare.host)
            if row.subscription in ("from", "both")
        ]
        shared = set()
        for contact in subscribers:
            if not items.isdisjoint(_candidates(contact)):
                shared.add(contact)
        for item in items:
            jid = jids.fromPrepared(item)
            if jid.resource is not None and jids.bare(jid) in subscribers:
                shared.add(jid)
        for session in self.server.sessionsOf(bare):
            if not session.available:
                continue
            targets = set(shared)
            for directed in session.directed:
                jid = directed if isinstance(directed, JID) else _jid(str(directed))
                if jid is not None and not items.isdisjoint(_candidates(jid)):
                    targets.add(jid)
            for target in sorted(targets, key=lambda j: j.full()):
                if available:
                    presence = copyStanza(session.presence)
                    for name in ("type", "id"):
                        if presence.hasAttribute(name):
                            del presence[name]
                else:
                    presence = domish.Element((NS_CLIENT, "presence"))
                    presence["type"] = "unavailable"
                presence["from"] = session.jid.full()
                presence["to"] = target.full()
                self.server.route(presence)


def _jid(text):
    if not text:
        return None
    try:
        return jids.parse(text)
    except jids.JIDMalformed:
        return None


def _address(stanza, attribute):
    """
    A stanza's address (parsed once per stanza), or L{None} if absent or
    malformed.
    """
    try:
        return jids.ofStanza(stanza, attribute)
    except jids.JIDMalformed:
        return None


def _candidates(jid):
    """
    The block list entries that match C{jid} (XEP-0016 section 2.1).
    """
    candidates = {jid.full(), jid.host}
    if jid.user is not None:
        candidates.add(jid.userhost())
    return candidates


def install(server):
    """
    Handle block list iqs and enforce the lists.

    @return: the L{Blocking} state.
    """
    blocking = Blocking(server)
    server.on("iq/account", blocking.onAccountIQ)
    server.on("stanza/in", blocking.onIncoming, priority=100)
    server.on("stanza/out", blocking.onOutgoing, priority=100)
    server.on("session/ended", blocking.onSessionEnded)
    server.on("account/remove", blocking.onAccountRemoved)
    return blocking
