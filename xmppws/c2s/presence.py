# -*- test-case-name: tests.test_c2s_im -*-
"""
Presence and presence subscriptions for the embedded server (RFC 6121
sections 3 and 4), after what Prosody does.

A client's presence (the C{presence/out} event):

  - without C{to}, available: broadcast to the account's available
    resources (the sender included) and to the contacts subscribed to
    it.  The first one of a session is its initial presence: probes go
    to the contacts it is subscribed to, the account's other resources
    send it their presence, pending inbound subscription requests are
    delivered again and pending outbound ones sent again.  The first
    available presence of a session with a non-negative priority fires

        session/available (session)

    once (offline messages hook it);
  - without C{to}, unavailable: the same broadcast, then unavailable to
    every entity the session sent directed presence to;
  - with C{to}: directed presence, remembered in C{session.directed}
    until directed unavailable; or a subscription request, approval,
    cancellation or denial, which updates both rosters and pushes them.

Presence for a local account (the C{presence/in} event) goes to its
available resources, or to the addressed one; probes are answered with
the last presence of each available resource when the prober is
subscribed, with the last unavailable presence when none is, and with
C{unsubscribed} when the prober is not subscribed.

Pre-approval (RFC 6121 section 3.4) is announced with the
C{urn:xmpp:features:pre-approval} stream feature.
"""

import datetime
import re

from twisted.logger import Logger
from twisted.words.xish import domish
from tx_xmpp.delay import Delay

from xmppws.c2s import jid as jids
from xmppws.c2s._stanzas import parseStanza
from xmppws.c2s.modules import installModules
from xmppws.c2s.namespaces import NS_CLIENT
from xmppws.c2s.quotas import refuse
from xmppws.c2s.storage import RosterRow

__all__ = ["NS_PREAPPROVAL", "PresenceBroker", "install", "presencePriority"]

NS_PREAPPROVAL = "urn:xmpp:features:pre-approval"

SUBSCRIPTION_TYPES = ("subscribe", "subscribed", "unsubscribe", "unsubscribed")
TYPES = (None, "unavailable", "error", "probe") + SUBSCRIPTION_TYPES

_INTEGER = re.compile(r"^[+-]?[0-9]+$")


def presencePriority(presence):
    """
    The priority of an available presence (RFC 6121 section 4.7.2.3):
    its C{<priority/>} clamped to -128..127, or 0 when absent or not an
    integer.

    @type presence: L{domish.Element}
    @rtype: L{int}
    """
    for child in presence.elements(NS_CLIENT, "priority"):
        text = str(child).strip()
        if _INTEGER.match(text):
            return max(-128, min(127, int(text)))
        return 0
    return 0


class PresenceBroker:
    """
    The presence module's state.

    @ivar server: the L{xmppws.c2s.server.XMPPServer}.
    @ivar roster: the roster module's L{xmppws.c2s.roster.Roster}.
    """

    log = Logger()

    def __init__(self, server, roster):
        self.server = server
        self.roster = roster
        self._announced = set()
        self._lastUnavailable = {}

    # Hooks

    def onFeatures(self, xs, features):
        """
        Announce subscription pre-approval after authentication.
        """
        features.addElement((NS_PREAPPROVAL, "sub"))

    def onOutbound(self, session, presence):
        """
        Process a presence stanza a client sent (its C{from} is stamped).
        """
        kind = presence.getAttribute("type")
        if kind not in TYPES:
            self.server.bounce(presence, "bad-request", "modify", "Unknown presence type.")
            return True
        to = presence.getAttribute("to")
        if to is None:
            if kind is None:
                self._available(session, presence)
            elif kind == "unavailable":
                self._unavailable(session, presence, reflect=True)
            elif kind != "error":
                self.server.bounce(presence, "bad-request", "modify", "This presence needs a 'to'.")
            return True
        target = jids.parse(to)
        if kind in SUBSCRIPTION_TYPES:
            self._outboundSubscription(session, presence, target)
            return True
        if kind != "probe" and jids.bare(target) != jids.bare(session.jid):
            if kind is None and self._reachable(target):
                if target not in session.directed:
                    limit = self.server.config.quotas.maxDirectedPresences
                    if len(session.directed) >= limit:
                        refuse(
                            self.server,
                            presence,
                            "maxDirectedPresences",
                            "policy-violation",
                            "modify",
                            "A session may send directed presence to at most %d "
                            "entities; send unavailable presence to some first." % (limit,),
                        )
                        return True
                    session.directed.add(target)
            else:
                session.directed.discard(target)
        self.server.route(presence)
        return True

    def onInbound(self, presence, to):
        """
        Process a presence stanza for a local account, from its own
        resources, its contacts or anyone else.
        """
        kind = presence.getAttribute("type")
        try:
            sender = jids.parse(presence["from"])
        except (KeyError, jids.JIDMalformed):
            return True
        account = jids.bare(to)
        if not self.server.accountExists(account):
            # RFC 6121 section 8.5.1.
            if kind == "probe":
                self._send(account, jids.bare(sender), "unsubscribed")
            return True
        if kind in SUBSCRIPTION_TYPES:
            if kind != "subscribe" and to.resource and self.server.session(to) is None:
                # RFC 6121 section 8.5.3.2.2.
                return True
            contact = jids.bare(sender)
            if contact != account:
                getattr(self, "_inbound_" + kind)(presence, account, contact)
            return True
        if kind == "probe":
            self._probe(sender, account)
        elif kind in (None, "unavailable", "error"):
            if to.resource is not None:
                session = self.server.session(to)
                if session is not None:
                    session.send(presence)
            else:
                for session in self.server.sessionsOf(account):
                    if session.available:
                        session.send(presence)
        else:
            self.server.bounce(presence, "bad-request", "modify", "Unknown presence type.")
        return True

    def onSessionEnded(self, session):
        """
        Send unavailable presence for a session that ends while available
        or after directed presence.
        """
        self._announced.discard(session)
        if session.available or session.directed:
            presence = domish.Element((NS_CLIENT, "presence"))
            presence["from"] = session.jid.full()
            presence["type"] = "unavailable"
            self._unavailable(session, presence, reflect=False)

    def onRosterRemoved(self, owner, row):
        """
        Cancel the subscriptions of a removed roster item in both
        directions (RFC 6121 section 2.5.2).
        """
        contact = jids.fromPrepared(row.contact)
        if row.subscription in ("from", "both") or row.pendingIn:
            self._send(owner, contact, "unsubscribed")
            if row.subscription in ("from", "both"):
                self._sendResourcesPresence(owner, contact, unavailable=True)
        if row.subscription in ("to", "both") or row.ask:
            self._send(owner, contact, "unsubscribe")

    # Presence broadcast

    def _available(self, session, presence):
        initial = not session.available
        account = jids.bare(session.jid)
        priority = presencePriority(presence)
        text = presence.toXml()
        stored = parseStanza(text)
        stored.addChild(self._delay())
        session.presence = stored
        session.priority = priority
        self._broadcast(session, text, reflect=True)
        if initial:
            for row in self.roster.items(account):
                if row.subscription in ("to", "both"):
                    probe = _presence(session.jid, jids.fromPrepared(row.contact), "probe")
                    self.server.route(probe)
            for other in self.server.sessionsOf(account):
                if other is not session and other.available:
                    copy = parseStanza(other.presence.toXml())
                    copy["to"] = session.jid.full()
                    self.server.route(copy)
            for row in self.roster.items(account, includeHidden=True):
                if row.pendingIn:
                    session.send(self._pendingRequest(account, row))
            for row in self.roster.items(account):
                if row.ask:
                    self.server.route(
                        _presence(account, jids.fromPrepared(row.contact), "subscribe")
                    )
        if priority >= 0 and session not in self._announced and not session.ended:
            self._announced.add(session)
            self.server.fire("session/available", session)

    def _unavailable(self, session, presence, reflect):
        account = jids.bare(session.jid)
        wasAvailable = session.available
        session.presence = None
        session.priority = 0
        text = presence.toXml()
        reached = set()
        if wasAvailable:
            reached = self._broadcast(session, text, reflect)
            if not session.anonymous and not any(
                s.available for s in self.server.sessionsOf(account)
            ):
                last = parseStanza(text)
                last.addChild(self._delay())
                self._lastUnavailable[account] = last
        for target in sorted(session.directed, key=lambda jid: jid.full()):
            if jids.bare(target) not in reached:
                copy = parseStanza(text)
                copy["to"] = target.full()
                self.server.route(copy)
        session.directed.clear()

    def _broadcast(self, session, text, reflect):
        """
        Send a presence without C{to} to the account's available resources
        and to its subscribers.

        @param text: the serialized presence.
        @param reflect: whether the sending session gets it too.
        @return: the bare JIDs of the subscribers it went to.
        """
        account = jids.bare(session.jid)
        for other in self.server.sessionsOf(account):
            if other.ended or not (other.available or other is session):
                continue
            if other is session and not reflect:
                continue
            copy = parseStanza(text)
            copy["to"] = other.jid.full()
            self.server.route(copy)
        reached = set()
        for row in self.roster.items(account):
            if row.subscription in ("from", "both"):
                contact = jids.fromPrepared(row.contact)
                copy = parseStanza(text)
                copy["to"] = contact.full()
                self.server.route(copy)
                reached.add(contact)
        return reached

    def _sendResourcesPresence(self, account, target, unavailable=False):
        """
        Send the presence of each available resource of C{account} to
        C{target}, or unavailable presence from each.

        @return: how many resources are available.
        """
        count = 0
        for session in self.server.sessionsOf(account):
            if not session.available or session.ended:
                continue
            count += 1
            if unavailable:
                copy = _presence(session.jid, target, "unavailable")
            else:
                copy = parseStanza(session.presence.toXml())
                copy["to"] = target.full()
            self.server.route(copy)
        return count

    def _probe(self, sender, account):
        """
        Answer a presence probe (RFC 6121 section 4.3.2).
        """
        item = self.roster.item(account, sender)
        subscribed = jids.bare(sender) == account or (
            item is not None and item.subscription in ("from", "both")
        )
        if not subscribed:
            self._send(account, jids.bare(sender), "unsubscribed")
        elif not self._sendResourcesPresence(account, sender):
            last = self._lastUnavailable.get(account)
            if last is None:
                reply = _presence(account, sender, "unavailable")
            else:
                reply = parseStanza(last.toXml())
                reply["to"] = sender.full()
            self.server.route(reply)

    # Subscriptions: the user's side

    def _outboundSubscription(self, session, presence, target):
        account = jids.bare(session.jid)
        contact = jids.bare(target)
        if contact == account:
            return
        kind = presence["type"]
        if kind in ("subscribe", "subscribed") and self._reachable(contact):
            row = self.roster.item(account, contact)
            if (row is None or not row.inRoster) and self.roster.isFull(account):
                # Subscribing, approving and pre-approving add the contact.
                self.roster.refuseFull(session, presence)
                return
        presence["from"] = account.full()
        presence["to"] = contact.full()
        if not self._reachable(contact):
            # Bounced by the router; the roster is left as it was.
            self.server.route(presence)
            return
        kind = presence["type"]
        row = self.roster.item(account, contact)
        if kind == "subscribe":
            if row is None:
                row = RosterRow(contact.full())
            if not row.inRoster or (row.subscription in ("none", "from") and not row.ask):
                row.inRoster = True
                if row.subscription in ("none", "from"):
                    row.ask = True
                self._update(account, row)
            self.server.route(presence)
        elif kind == "unsubscribe":
            if row is not None and (row.ask or row.subscription in ("to", "both")):
                row.ask = False
                row.subscription = _without(row.subscription, "to")
                self._update(account, row)
            self.server.route(presence)
        elif kind == "subscribed":
            if row is not None and row.pendingIn:
                row.pendingIn = False
                row.pendingStanza = None
                row.approved = False
                row.inRoster = True
                row.subscription = _with(row.subscription, "from")
                self._update(account, row)
            elif row is None or row.subscription in ("none", "to"):
                # Pre-approval (RFC 6121 section 3.4): noted, not sent.
                if row is None:
                    row = RosterRow(contact.full())
                if not row.approved or not row.inRoster:
                    row.approved = True
                    row.inRoster = True
                    self._update(account, row)
                return
            self.server.route(presence)
            self._sendResourcesPresence(account, contact)
        else:
            if row is None:
                return
            denied = row.pendingIn
            cancelled = row.subscription in ("from", "both")
            if not (denied or cancelled or row.approved):
                return
            row.pendingIn = False
            row.pendingStanza = None
            row.approved = False
            row.subscription = _without(row.subscription, "from")
            self._update(account, row)
            if denied or cancelled:
                self.server.route(presence)
            if cancelled:
                self._sendResourcesPresence(account, contact, unavailable=True)

    # Subscriptions: the contact's side

    def _inbound_subscribe(self, presence, account, contact):
        row = self.roster.item(account, contact)
        if row is not None and row.subscription in ("from", "both"):
            self._send(account, contact, "subscribed")
            self._presenceOrUnavailable(account, contact)
            return
        if row is not None and row.approved:
            row.approved = False
            row.pendingIn = False
            row.pendingStanza = None
            row.subscription = _with(row.subscription, "from")
            self._update(account, row)
            self._send(account, contact, "subscribed")
            self._presenceOrUnavailable(account, contact)
            return
        if row is not None and row.pendingIn:
            return
        if row is None:
            _, pending = self.server.storage.rosterCounts(account.user, account.host)
            limit = self.server.config.quotas.maxPendingSubscriptions
            if pending >= limit:
                # The recipient lacks room to keep the request (RFC 6120
                # section 8.3.3.18), as for a full offline queue.
                refuse(
                    self.server,
                    presence,
                    "maxPendingSubscriptions",
                    "resource-constraint",
                    "wait",
                    "The contact has too many subscription requests waiting.",
                )
                return
            row = RosterRow(contact.full(), inRoster=False)
        presence["from"] = contact.full()
        presence["to"] = account.full()
        row.pendingIn = True
        row.pendingStanza = presence.toXml()
        self.roster.save(account, row)
        for session in self.server.sessionsOf(account):
            if session.available:
                session.send(parseStanza(row.pendingStanza))

    def _inbound_subscribed(self, presence, account, contact):
        row = self.roster.item(account, contact)
        if row is None or not row.ask:
            return
        row.ask = False
        row.subscription = _with(row.subscription, "to")
        self._update(account, row)
        self._toInterested(account, presence)

    def _inbound_unsubscribe(self, presence, account, contact):
        row = self.roster.item(account, contact)
        if row is None or not (row.pendingIn or row.subscription in ("from", "both")):
            return
        cancelled = row.subscription in ("from", "both")
        row.pendingIn = False
        row.pendingStanza = None
        row.subscription = _without(row.subscription, "from")
        self._update(account, row)
        self._toInterested(account, presence)
        if cancelled:
            self._sendResourcesPresence(account, contact, unavailable=True)

    def _inbound_unsubscribed(self, presence, account, contact):
        row = self.roster.item(account, contact)
        if row is None or not (row.ask or row.subscription in ("to", "both")):
            return
        row.ask = False
        row.subscription = _without(row.subscription, "to")
        self._update(account, row)
        self._toInterested(account, presence)

    # Helpers

    def _update(self, account, row):
        self.roster.save(account, row)
        self.roster.push(account, row)

    def _send(self, sender, recipient, kind):
        self.server.route(_presence(sender, recipient, kind))

    def _presenceOrUnavailable(self, account, contact):
        if not self._sendResourcesPresence(account, contact):
            self._send(account, contact, "unavailable")

    def _toInterested(self, account, presence):
        text = presence.toXml()
        for session in self.server.sessionsOf(account):
            if session.interested:
                session.send(parseStanza(text))

    def _pendingRequest(self, account, row):
        """
        The subscription request of a pending inbound subscription, as it
        arrived when it was kept.
        """
        request = None
        if row.pendingStanza:
            try:
                request = parseStanza(row.pendingStanza)
            except domish.ParserError:
                self.log.failure("Unreadable subscription request for {jid}", jid=account)
        if request is None:
            request = domish.Element((NS_CLIENT, "presence"))
        request["type"] = "subscribe"
        request["from"] = row.contact
        request["to"] = account.full()
        return request

    def _reachable(self, jid):
        return self.server.isLocal(jid) or jid.host in self.server.components

    def _delay(self):
        when = datetime.datetime.fromtimestamp(self.server.reactor.seconds(), datetime.timezone.utc)
        return Delay(when, jids.fromPrepared(self.server.defaultDomain)).toElement()


def _presence(sender, recipient, kind=None):
    presence = domish.Element((NS_CLIENT, "presence"))
    presence["from"] = sender.full()
    presence["to"] = recipient.full()
    if kind is not None:
        presence["type"] = kind
    return presence


def _with(subscription, direction):
    """
    C{subscription} with C{direction} (C{'to'} or C{'from'}) added.
    """
    to = subscription in ("to", "both") or direction == "to"
    frm = subscription in ("from", "both") or direction == "from"
    return _STATES[to, frm]


def _without(subscription, direction):
    """
    C{subscription} with C{direction} (C{'to'} or C{'from'}) removed.
    """
    to = subscription in ("to", "both") and direction != "to"
    frm = subscription in ("from", "both") and direction != "from"
    return _STATES[to, frm]


_STATES = {
    (False, False): "none",
    (True, False): "to",
    (False, True): "from",
    (True, True): "both",
}


def install(server):
    """
    Handle presence and subscriptions; installs the roster module too.

    @return: the L{PresenceBroker} state.
    """
    roster = installModules(server, ("roster",))["roster"]
    broker = PresenceBroker(server, roster)
    server.on("features/authenticated", broker.onFeatures)
    server.on("presence/out", broker.onOutbound)
    server.on("presence/in", broker.onInbound)
    server.on("session/ended", broker.onSessionEnded)
    server.on("roster/removed", broker.onRosterRemoved)
    return broker
