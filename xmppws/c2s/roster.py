# -*- test-case-name: tests.test_c2s_im -*-
"""
The roster of the embedded server (RFC 6121 section 2): roster get with
versioning, roster set and remove, and roster pushes to the interested
resources of an account.

The items live in the server's database (L{xmppws.c2s.storage}); every
change to a roster there gives it a new version (section 2.6), so a
client that sends the version it cached gets an empty result when it is
still current, else the whole roster.  Items are rendered with tx-xmpp's
L{tx_xmpp.xmppim.RosterItem}.

Subscription states change with presence subscriptions, which the
presence module (L{xmppws.c2s.presence}) handles; it uses L{Roster.item},
L{Roster.save} and L{Roster.push}.  Removing an item fires

    roster/removed (owner, row)               after the push; C{row} is
                                              the item as it was

so that the presence module cancels the subscriptions in both directions
(section 2.5.2).  The roster of an ANONYMOUS account is removed the same
way, item by item, when its last session ends.
"""

import uuid

from twisted.words.xish import domish
from tx_xmpp.xmppim import RosterItem

from xmppws.c2s import jid as jids
from xmppws.c2s._stanzas import errorReply
from xmppws.c2s.namespaces import NS_CLIENT, NS_ROSTER
from xmppws.c2s.storage import RosterRow

__all__ = ["NS_ROSTERVER", "Roster", "install"]

NS_ROSTERVER = "urn:xmpp:features:rosterver"

MAX_NAME_LENGTH = 1024
MAX_GROUP_LENGTH = 1024


class RosterSetError(Exception):
    """
    A roster set that must be refused (RFC 6121 section 2.3.3).

    @ivar condition: the stanza error condition.
    @ivar errorType: the stanza error type.
    @ivar text: a description for the client, or L{None}.
    """

    def __init__(self, condition, errorType="modify", text=None):
        Exception.__init__(self, condition)
        self.condition = condition
        self.errorType = errorType
        self.text = text


class Roster:
    """
    The roster module's state, and access to rosters by bare JID.

    @ivar server: the L{xmppws.c2s.server.XMPPServer}.
    """

    discoFeatures = (NS_ROSTER,)

    def __init__(self, server):
        self.server = server

    # Storage

    def items(self, owner, includeHidden=False):
        """
        The roster of an account.

        @param owner: the account's bare JID.
        @type owner: L{JID}
        @param includeHidden: also return state kept about contacts that
            are not in the roster (pending inbound requests).
        @rtype: L{list} of L{xmppws.c2s.storage.RosterRow}
        """
        return self.server.storage.roster(owner.user, owner.host, includeHidden)

    def item(self, owner, contact):
        """
        The row about C{contact} in the roster of C{owner}, hidden or not.

        @type owner: L{JID}
        @param contact: the contact; only its bare JID counts.
        @type contact: L{JID}
        @rtype: L{xmppws.c2s.storage.RosterRow} or L{None}
        """
        return self.server.storage.rosterItem(owner.user, owner.host, contact.userhost())

    def isFull(self, owner):
        """
        Whether the roster of C{owner} has as many items as it may have
        (C{xmppws.c2s.quotas.Quotas.maxRosterItems}).

        @type owner: L{JID}
        @rtype: L{bool}
        """
        items, _ = self.server.storage.rosterCounts(owner.user, owner.host)
        return items >= self.server.config.quotas.maxRosterItems

    def refuseFull(self, session, stanza):
        """
        Refuse a stanza of C{session} that would add an item to a full
        roster: C{policy-violation} (type C{modify}: removing items first
        makes room).
        """
        self.server.stats["quota_maxRosterItems"] += 1
        limit = self.server.config.quotas.maxRosterItems
        reply = errorReply(
            stanza,
            "policy-violation",
            "modify",
            "A roster holds at most %d items; remove some first." % (limit,),
        )
        reply["to"] = session.jid.full()
        session.send(reply)

    def save(self, owner, row):
        """
        Store a row of the roster of C{owner} (a row left with no state is
        deleted).
        """
        self.server.storage.saveRosterItem(owner.user, owner.host, row)

    def version(self, owner):
        """
        The current version of the roster of C{owner}.

        @rtype: L{str}
        """
        return str(self.server.storage.rosterVersion(owner.user, owner.host))

    # Rendering and pushes

    def itemElement(self, row):
        """
        The C{<item/>} of a roster row, as in a roster result or push.

        @type row: L{xmppws.c2s.storage.RosterRow}
        @rtype: L{domish.Element}
        """
        item = RosterItem(
            jids.fromPrepared(row.contact),
            subscriptionTo=row.subscription in ("to", "both"),
            subscriptionFrom=row.subscription in ("from", "both"),
            name=row.name or "",
            groups=row.groups,
        )
        item.pendingOut = row.ask
        item.approved = row.approved
        element = item.toElement()
        if not element.hasAttribute("subscription"):
            element["subscription"] = "none"
        return element

    def push(self, owner, row=None, removed=None):
        """
        Send a roster push about one item to every interested resource of
        C{owner} (RFC 6121 section 2.1.6), with the roster's version.

        @type owner: L{JID}
        @param row: the item as it now is; a hidden row is not pushed.
        @type row: L{xmppws.c2s.storage.RosterRow} or L{None}
        @param removed: the contact whose item was removed, instead of
            C{row}.
        @type removed: L{JID} or L{None}
        """
        if row is not None and not row.inRoster:
            return
        sessions = [s for s in self.server.sessionsOf(owner) if s.interested]
        if not sessions:
            return
        version = self.version(owner)
        for session in sessions:
            iq = domish.Element((NS_CLIENT, "iq"))
            iq["type"] = "set"
            iq["id"] = "push-" + uuid.uuid4().hex[:12]
            iq["to"] = session.jid.full()
            query = iq.addElement((NS_ROSTER, "query"))
            query["ver"] = version
            if row is not None:
                query.addChild(self.itemElement(row))
            else:
                item = RosterItem(jids.bare(removed))
                item.remove = True
                query.addChild(item.toElement())
            session.send(iq)

    # Hooks

    def onFeatures(self, xs, features):
        """
        Announce roster versioning after authentication.
        """
        features.addElement((NS_ROSTERVER, "ver"))

    def onAccountIQ(self, session, iq):
        """
        Answer a roster get or set a client sends to its own account.
        """
        query = _query(iq)
        if query is None:
            return None
        if iq["type"] == "get":
            self._get(session, iq, query)
        else:
            try:
                self._set(session, iq, query)
            except RosterSetError as e:
                session.send(errorReply(iq, e.condition, e.errorType, e.text))
        return True

    def onBareIQ(self, iq, to):
        """
        Refuse roster requests to another account (RFC 6121 section
        2.1.5 and 2.3.3): C{forbidden} for a set, C{service-unavailable}
        for a get, as for any unsupported request to an account.
        """
        query = _query(iq)
        if query is None or not self.server.accountExists(to):
            return None
        if iq["type"] == "set":
            self.server.bounce(iq, "forbidden", "auth")
        else:
            self.server.bounce(iq, "service-unavailable", "cancel")
        return True

    def onSessionEnded(self, session):
        """
        Forget the roster of an anonymous account when its last session
        ends, cancelling its subscriptions: nobody can log in as it again.
        """
        if not session.anonymous:
            return None
        owner = jids.bare(session.jid)
        if any(other is not session for other in self.server.sessionsOf(owner)):
            return None
        for row in self.items(owner, includeHidden=True):
            self.server.storage.removeRosterItem(owner.user, owner.host, row.contact)
            self.server.fire("roster/removed", owner, row)
        return None

    # Requests

    def _get(self, session, iq, query):
        owner = jids.bare(session.jid)
        session.interested = True
        reply = _result(iq)
        version = self.version(owner)
        if query.getAttribute("ver") != version:
            result = reply.addElement((NS_ROSTER, "query"))
            result["ver"] = version
            for row in self.items(owner):
                result.addChild(self.itemElement(row))
        session.send(reply)

    def _set(self, session, iq, query):
        owner = jids.bare(session.jid)
        items = list(query.elements(NS_ROSTER, "item"))
        if len(items) != 1:
            raise RosterSetError("bad-request", text="A roster set carries exactly one item.")
        element = items[0]
        contact = _contact(element, owner)
        if element.getAttribute("subscription") == "remove":
            return self._remove(session, iq, owner, contact)
        name = element.getAttribute("name") or None
        if name is not None and len(name) > MAX_NAME_LENGTH:
            raise RosterSetError("not-acceptable", text="The name is too long.")
        groups = [str(group) for group in element.elements(NS_ROSTER, "group")]
        maxGroups = self.server.config.quotas.maxRosterGroups
        if len(groups) > maxGroups:
            self.server.stats["quota_maxRosterGroups"] += 1
            raise RosterSetError(
                "not-acceptable", text="An item may be in at most %d groups." % (maxGroups,)
            )
        for group in groups:
            if not group:
                raise RosterSetError("not-acceptable", text="A group name is empty.")
            if len(group) > MAX_GROUP_LENGTH:
                raise RosterSetError("not-acceptable", text="A group name is too long.")
            if "\n" in group or "\r" in group:
                raise RosterSetError("not-acceptable", text="A group name spans lines.")
        if len(set(groups)) != len(groups):
            raise RosterSetError("bad-request", text="A group is listed twice.")
        row = self.item(owner, contact)
        if (row is None or not row.inRoster) and self.isFull(owner):
            self.server.stats["quota_maxRosterItems"] += 1
            raise RosterSetError(
                "policy-violation",
                text="A roster holds at most %d items; remove some first."
                % (self.server.config.quotas.maxRosterItems,),
            )
        if row is None:
            row = RosterRow(contact.userhost())
        row.name = name
        row.groups = groups
        row.inRoster = True
        self.save(owner, row)
        session.send(_result(iq))
        self.push(owner, row)

    def _remove(self, session, iq, owner, contact):
        row = self.item(owner, contact)
        if row is None or not row.inRoster:
            raise RosterSetError("item-not-found", "cancel")
        self.server.storage.removeRosterItem(owner.user, owner.host, row.contact)
        session.send(_result(iq))
        self.push(owner, removed=contact)
        self.server.fire("roster/removed", owner, row)


def _query(iq):
    """
    The roster query of a get or set, or L{None}.
    """
    if iq.getAttribute("type") not in ("get", "set"):
        return None
    query = iq.firstChildElement()
    if query is None or (query.uri, query.name) != (NS_ROSTER, "query"):
        return None
    return query


def _contact(element, owner):
    """
    The bare JID an item of a roster set is about.

    @raise RosterSetError: if it is missing, not a JID, a full JID or the
        owner's own.
    """
    text = element.getAttribute("jid")
    if not text:
        raise RosterSetError("bad-request", text="The item has no JID.")
    try:
        contact = jids.parse(text)
    except jids.JIDMalformed as e:
        raise RosterSetError(
            "jid-malformed", text="The item's %s is not valid (%s)." % (e.part, e.reason)
        )
    if contact.resource is not None:
        raise RosterSetError("bad-request", text="Roster items are bare JIDs.")
    if contact == owner:
        raise RosterSetError("not-allowed", "cancel", "One's own JID is not a contact.")
    return contact


def _result(iq):
    reply = domish.Element((NS_CLIENT, "iq"))
    reply["type"] = "result"
    reply["to"] = iq["from"]
    if iq.getAttribute("to"):
        reply["from"] = iq["to"]
    if iq.getAttribute("id") is not None:
        reply["id"] = iq["id"]
    return reply


def install(server):
    """
    Serve rosters.

    @return: the L{Roster} state.
    """
    roster = Roster(server)
    server.on("features/authenticated", roster.onFeatures)
    server.on("iq/account", roster.onAccountIQ)
    server.on("iq/bare", roster.onBareIQ)
    # After the presence module has said goodbye to the contacts.
    server.on("session/ended", roster.onSessionEnded, priority=-10)
    return roster
