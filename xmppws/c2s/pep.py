# -*- test-case-name: tests.test_pep -*-
"""
XEP-0163 personal eventing: a XEP-0060 publish-subscribe service at
every account's bare JID, after Prosody 13's C{mod_pep}.  It carries
what clients keep there: bookmarks (XEP-0402), avatars (XEP-0084), OMEMO
device lists and bundles (XEP-0384), and anything else.

The account publishes; a node is created on first publish with the
publish-options as its configuration (L{xmppws.c2s.pepnode}).  Other
accounts read items as the node's access model allows: C{presence}
(those subscribed to the owner's presence), C{open} (anyone) or
C{whitelist} (the owner alone).

Notifications (C{<message type='headline'>} from the owner's bare JID
with a C{pubsub#event}) go to the owner's resources and to the sessions
of its contacts the access model admits, each only if the session
announced C{NODE+notify} in its XEP-0115 capabilities
(L{xmppws.c2s.caps}): there are no explicit subscriptions (as in
Prosody, subscribing is implicit in presence).  When a session's
interests become known, it gets the last item of each node it is
interested in, its account's and its contacts', that sends it on
presence (C{send_last_published_item} C{on_sub_and_presence}).

Supported requests: publish (several items, with publish-options),
retract (with C{notify}), items (all, some ids, or the most recent
C{max_items}), create (with a configuration), and, in
C{pubsub#owner}, configure (get and set), default, delete and purge;
C{disco#info} and C{disco#items} of the account list its nodes.
Subscriptions, affiliations and subscription options are
C{feature-not-implemented}.

Storage is L{xmppws.c2s.personal} (C{personal.sqlite}); budgets are the
server's quotas C{maxPepNodes}, C{maxPepItems} and C{maxPepItemSize}.

Other modules publish through L{PersonalEventing.publish} and friends;
after every change the module fires

    pep/changed (owner, node, kind, items)     kind: 'items', 'retract',
                                               'purge' or 'delete'
"""

import base64
import os

from twisted.logger import Logger
from twisted.words.xish import domish

from xmppws.c2s import jid as jids
from xmppws.c2s.modules import installModules, moduleDatabase
from xmppws.c2s.namespaces import NS_CLIENT, NS_DISCO_INFO, NS_DISCO_ITEMS
from xmppws.c2s.pepnode import (
    NS_NODE_CONFIG,
    NS_PUBLISH_OPTIONS,
    NodeConfig,
    PubSubError,
    parseConfigForm,
)
from xmppws.c2s.personal import SCHEMA, Item, PepLimits, PersonalStore
from xmppws.c2s.quotas import refuse

__all__ = [
    "FEATURES",
    "NS_PUBSUB",
    "NS_PUBSUB_EVENT",
    "NS_PUBSUB_OWNER",
    "PersonalEventing",
    "install",
]

NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_PUBSUB_OWNER = NS_PUBSUB + "#owner"
NS_PUBSUB_EVENT = NS_PUBSUB + "#event"
NS_DATA = "jabber:x:data"

#: The pubsub features announced on accounts (XEP-0060 section 10).
FEATURES = (
    "access-open",
    "access-presence",
    "access-whitelist",
    "auto-create",
    "auto-subscribe",
    "config-node",
    "config-node-max",
    "create-and-configure",
    "create-nodes",
    "delete-items",
    "delete-nodes",
    "filtered-notifications",
    "item-ids",
    "last-published",
    "multi-items",
    "persistent-items",
    "presence-notifications",
    "presence-subscribe",
    "publish",
    "publish-options",
    "purge-nodes",
    "retract-items",
    "retrieve-default",
    "retrieve-items",
)

_VERBS = frozenset(
    ("publish", "retract", "items", "create", "subscribe", "unsubscribe", "options",
     "subscriptions", "affiliations", "default")
)
_OWNER_VERBS = frozenset(("configure", "default", "delete", "purge", "subscriptions",
                          "affiliations"))

_UNSUPPORTED = {
    "subscribe": "subscribe",
    "unsubscribe": "subscribe",
    "options": "subscription-options",
    "subscriptions": "retrieve-subscriptions",
    "affiliations": "retrieve-affiliations",
}

MAX_ID = 1024


def _newId():
    return base64.urlsafe_b64encode(os.urandom(12)).decode("ascii")


def _first(element, uri, names):
    for child in element.elements():
        if child.uri == uri and child.name in names:
            return child
    return None


def _child(element, uri, name):
    for child in element.elements():
        if child.uri == uri and child.name == name:
            return child
    return None


class PersonalEventing:
    """
    The pep module's state.

    @ivar server: the L{xmppws.c2s.server.XMPPServer}.
    @ivar store: the L{PersonalStore}.
    @ivar caps: the L{xmppws.c2s.caps.Capabilities}.
    @ivar roster: the roster module.
    """

    log = Logger()

    def __init__(self, server, store, caps, roster):
        self.server = server
        self.store = store
        self.caps = caps
        self.roster = roster

    def close(self):
        return self.store.close()

    @property
    def limits(self):
        quotas = self.server.config.quotas
        return PepLimits(quotas.maxPepNodes, quotas.maxPepItems)

    # Publishing, for requests and for other modules

    def publish(self, owner, node, items, preconditions=None):
        """
        Publish C{items} (L{Item}s) to a node of C{owner} (a bare JID) and
        notify.

        @return: a L{Deferred} firing with the
            L{xmppws.c2s.personal.PublishOutcome}, or failing with a
            L{PubSubError}.
        """
        d = self.store.publish(owner.full(), node, items, preconditions, self.limits)

        def published(outcome):
            self._broadcast(owner, node, outcome.config, "items", outcome.items)
            self.server.fire("pep/changed", owner, node, "items", outcome.items)
            return outcome

        return d.addCallback(published)

    def retract(self, owner, node, itemIds, notify=True):
        """
        Retract items, notifying if asked and the node says so.

        @return: a L{Deferred} firing with the node's L{NodeConfig}.
        """
        d = self.store.retract(owner.full(), node, itemIds)

        def retracted(config):
            if notify and config.notifyRetract:
                self._broadcast(owner, node, config, "retract", itemIds)
            self.server.fire("pep/changed", owner, node, "retract", itemIds)
            return config

        return d.addCallback(retracted)

    def items(self, owner, node):
        """
        Every item of a node of C{owner}.

        @return: a L{Deferred} firing with C{(config, items)}.
        """
        return self.store.items(owner.full(), node)

    # Notifications

    def _recipients(self, owner, node, config):
        """
        The available sessions interested in C{node} that may see it.
        """
        wanted = []
        for session in self.server.sessionsOf(owner):
            if session.available and node in self.caps.interests(session):
                wanted.append(session)
        if config.accessModel == "whitelist":
            return wanted
        for row in self.roster.items(owner):
            if row.subscription not in ("from", "both"):
                continue
            try:
                contact = jids.parse(row.contact)
            except jids.JIDMalformed:
                continue
            if not self.server.isLocal(contact):
                continue
            for session in self.server.sessionsOf(contact):
                if session.available and node in self.caps.interests(session):
                    wanted.append(session)
        return wanted

    def _event(self, owner, to, node, config, kind, content):
        message = domish.Element((NS_CLIENT, "message"))
        message["from"] = owner.full()
        message["to"] = to
        message["type"] = config.notificationType
        message["id"] = _newId()
        event = message.addElement((NS_PUBSUB_EVENT, "event"))
        if kind in ("items", "retract"):
            holder = event.addElement("items")
            holder["node"] = node
            for entry in content:
                if kind == "items":
                    item = holder.addElement("item")
                    item["id"] = entry.id
                    item["publisher"] = entry.publisher
                    if config.payloads:
                        item.addRawXml(entry.payload)
                else:
                    holder.addElement("retract")["id"] = entry
        else:
            event.addElement(kind)["node"] = node
        return message

    def _broadcast(self, owner, node, config, kind, content, sessions=None):
        if not config.notify:
            return
        if sessions is None:
            sessions = self._recipients(owner, node, config)
        for session in sessions:
            self.server.route(self._event(owner, session.jid.full(), node, config, kind, content))

    def onInterests(self, session, added):
        """
        Send a session the last items of the nodes it became interested
        in (the C{caps/interests} event), its own account's and those of
        the contacts it is subscribed to.
        """
        account = jids.bare(session.jid)
        owners = {account.full(): account}
        for row in self.roster.items(account):
            if row.subscription in ("to", "both"):
                try:
                    contact = jids.parse(row.contact)
                except jids.JIDMalformed:
                    continue
                if self.server.isLocal(contact):
                    owners[contact.full()] = contact
        d = self.store.lastItems(sorted(owners), sorted(added))

        def send(found):
            for ownerText, node, config, item in found:
                owner = owners[ownerText]
                if owner != account and config.accessModel == "whitelist":
                    continue
                self._broadcast(owner, node, config, "items", [item], [session])

        d.addCallbacks(send, lambda f: self.log.failure("Sending last items failed", f))
        return None

    # Requests

    def onAccountIQ(self, session, iq):
        return self._request(iq, jids.bare(session.jid), jids.bare(session.jid))

    def onBareIQ(self, iq, to):
        child = iq.firstChildElement()
        if child is None:
            return None
        if child.uri in (NS_PUBSUB, NS_PUBSUB_OWNER) or (
            child.uri in (NS_DISCO_INFO, NS_DISCO_ITEMS) and child.name == "query"
        ):
            if not self.server.accountExists(to):
                return None
            try:
                requester = jids.bare(jids.parse(iq["from"]))
            except (KeyError, jids.JIDMalformed):
                return True
            return self._request(iq, jids.bare(to), requester)
        return None

    def _request(self, iq, owner, requester):
        child = iq.firstChildElement()
        kind = iq.getAttribute("type")
        if child is None or kind not in ("get", "set"):
            return None
        if child.uri in (NS_DISCO_INFO, NS_DISCO_ITEMS) and child.name == "query":
            return self._disco(iq, child, owner, requester)
        if child.name != "pubsub" or child.uri not in (NS_PUBSUB, NS_PUBSUB_OWNER):
            return None
        try:
            if child.uri == NS_PUBSUB:
                self._pubsub(iq, child, kind, owner, requester)
            else:
                self._owner(iq, child, kind, owner, requester)
        except PubSubError as e:
            self._refuse(iq, e)
        return True

    def _refuse(self, iq, error):
        if error.quota is not None:
            refuse(self.server, iq, error.quota, error.condition, error.errorType, error.text,
                   error.pubsubCondition, "http://jabber.org/protocol/pubsub#errors")
            return
        self.server.bounce(iq, error.condition, error.errorType, error.text, error.appCondition())

    def _failed(self, failure, iq, what):
        if failure.check(PubSubError):
            self._refuse(iq, failure.value)
            return None
        self.log.failure("PEP {what} failed", failure, what=what)
        self.server.bounce(iq, "internal-server-error", "wait")
        return None

    def _reply(self, iq, payload=None):
        reply = self.server.reply(iq)
        if payload is not None:
            reply.addChild(payload)
        self.server.route(reply)

    def _pubsub(self, iq, pubsub, kind, owner, requester):
        verb = _first(pubsub, NS_PUBSUB, _VERBS)
        if verb is None:
            raise PubSubError("bad-request", "modify", text="No pubsub request found.")
        if verb.name in _UNSUPPORTED:
            raise PubSubError("feature-not-implemented", "cancel", "unsupported",
                              feature=_UNSUPPORTED[verb.name])
        expected = "get" if verb.name in ("items", "default") else "set"
        if kind != expected:
            raise PubSubError("bad-request", "modify", text="<%s/> needs an iq of type %s."
                              % (verb.name, expected))
        if verb.name == "items":
            return self._items(iq, verb, owner, requester)
        if verb.name == "default":
            return self._default(iq, NS_PUBSUB)
        if requester != owner:
            raise PubSubError("forbidden", "auth", text="Only the account may change its nodes.")
        if verb.name == "publish":
            return self._publish(iq, pubsub, verb, owner)
        if verb.name == "retract":
            return self._retract(iq, verb, owner)
        return self._create(iq, pubsub, verb, owner)

    def _owner(self, iq, pubsub, kind, owner, requester):
        verb = _first(pubsub, NS_PUBSUB_OWNER, _OWNER_VERBS)
        if verb is None:
            raise PubSubError("bad-request", "modify", text="No pubsub request found.")
        if verb.name in _UNSUPPORTED:
            raise PubSubError("feature-not-implemented", "cancel", "unsupported",
                              feature=_UNSUPPORTED[verb.name])
        if requester != owner:
            raise PubSubError("forbidden", "auth", text="Only the account owns its nodes.")
        if verb.name == "default":
            return self._default(iq, NS_PUBSUB_OWNER)
        node = self._node(verb)
        if verb.name == "configure":
            if kind == "get":
                d = self.store.config(owner.full(), node)

                def answer(config):
                    if config is None:
                        raise PubSubError("item-not-found", "cancel", text="No such node.")
                    reply = domish.Element((NS_PUBSUB_OWNER, "pubsub"))
                    configure = reply.addElement("configure")
                    configure["node"] = node
                    configure.addChild(config.toForm())
                    self._reply(iq, reply)

                d.addCallback(answer).addErrback(self._failed, iq, "configure")
                return
            form = _child(verb, NS_DATA, "x")
            if form is None:
                raise PubSubError("bad-request", "modify", text="A configuration form is needed.")
            if form.getAttribute("type") == "cancel":
                return self._reply(iq)
            values = parseConfigForm(form, NS_NODE_CONFIG)
            d = self.store.configure(owner.full(), node, values)
            d.addCallback(lambda config: self._reply(iq)).addErrback(self._failed, iq, "configure")
            return
        if kind != "set":
            raise PubSubError("bad-request", "modify", text="<%s/> needs an iq of type set."
                              % (verb.name,))
        operation = self.store.deleteNode if verb.name == "delete" else self.store.purge

        def done(config):
            if verb.name == "delete" and config.notifyDelete or verb.name == "purge":
                self._broadcast(owner, node, config, verb.name, None)
            self.server.fire("pep/changed", owner, node, verb.name, [])
            self._reply(iq)

        d = operation(owner.full(), node)
        d.addCallback(done).addErrback(self._failed, iq, verb.name)

    def _node(self, verb):
        node = verb.getAttribute("node")
        if not node:
            raise PubSubError("bad-request", "modify", "nodeid-required")
        if len(node) > MAX_ID:
            raise PubSubError("not-acceptable", "modify", text="The node name is too long.")
        return node

    def _default(self, iq, namespace):
        reply = domish.Element((namespace, "pubsub"))
        reply.addElement("default").addChild(NodeConfig().toForm())
        self._reply(iq, reply)

    def _publish(self, iq, pubsub, verb, owner):
        node = self._node(verb)
        elements = list(verb.elements(NS_PUBSUB, "item"))
        if not elements:
            raise PubSubError("bad-request", "modify", "item-required")
        limit = self.server.config.quotas.maxPepItemSize
        items = []
        for element in elements:
            itemId = element.getAttribute("id") or _newId()
            if len(itemId) > MAX_ID:
                raise PubSubError("bad-request", "modify", text="The item id is too long.")
            payloads = list(element.elements())
            if len(payloads) != 1:
                raise PubSubError("bad-request", "modify", "invalid-payload",
                                  "An item holds exactly one payload.")
            payload = payloads[0].toXml()
            if len(payload.encode("utf-8")) > limit:
                raise PubSubError(
                    "not-acceptable", "modify", "payload-too-big",
                    "An item may hold at most %d bytes." % (limit,), quota="maxPepItemSize",
                )
            items.append(Item(itemId, owner.full(), payload))
        preconditions = None
        options = _child(pubsub, NS_PUBSUB, "publish-options")
        if options is not None:
            form = _child(options, NS_DATA, "x")
            if form is None:
                raise PubSubError("bad-request", "modify", text="publish-options holds no form.")
            preconditions = parseConfigForm(form, NS_PUBLISH_OPTIONS)

        def answer(outcome):
            reply = domish.Element((NS_PUBSUB, "pubsub"))
            published = reply.addElement("publish")
            published["node"] = node
            for item in outcome.items:
                published.addElement("item")["id"] = item.id
            self._reply(iq, reply)

        d = self.publish(owner, node, items, preconditions)
        d.addCallback(answer).addErrback(self._failed, iq, "publish")

    def _retract(self, iq, verb, owner):
        node = self._node(verb)
        itemIds = [item.getAttribute("id") for item in verb.elements(NS_PUBSUB, "item")]
        if not itemIds or not all(itemIds):
            raise PubSubError("bad-request", "modify", "item-required")
        notify = verb.getAttribute("notify", "false") in ("1", "true")
        d = self.retract(owner, node, itemIds, notify)
        d.addCallback(lambda _: self._reply(iq)).addErrback(self._failed, iq, "retract")

    def _create(self, iq, pubsub, verb, owner):
        node = verb.getAttribute("node")
        if not node:
            raise PubSubError("not-acceptable", "modify", "nodeid-required",
                              "Instant nodes are not supported.")
        node = self._node(verb)
        values = {}
        configure = _child(pubsub, NS_PUBSUB, "configure")
        form = _child(configure, NS_DATA, "x") if configure is not None else None
        if form is not None:
            values = parseConfigForm(form, NS_NODE_CONFIG)
        d = self.store.create(owner.full(), node, values, self.limits)
        d.addCallback(lambda _: self._reply(iq)).addErrback(self._failed, iq, "create")

    def _mayRead(self, config, owner, requester):
        """
        Raise the XEP-0060 (section 6.5.9) error if C{requester} may not
        read a node.
        """
        if requester == owner or config.accessModel == "open":
            return
        if config.accessModel == "whitelist":
            raise PubSubError("not-allowed", "cancel", "closed-node")
        item = self.roster.item(owner, requester)
        if item is None or item.subscription not in ("from", "both"):
            raise PubSubError("not-authorized", "auth", "presence-subscription-required")

    def _items(self, iq, verb, owner, requester):
        node = self._node(verb)
        maxItems = verb.getAttribute("max_items")
        if maxItems is not None:
            if not maxItems.isdigit() or not 1 <= int(maxItems) <= 10000:
                raise PubSubError("bad-request", "modify", text="max_items must be a number.")
            maxItems = int(maxItems)
        itemIds = [item.getAttribute("id") for item in verb.elements(NS_PUBSUB, "item")]
        if any(not itemId for itemId in itemIds):
            raise PubSubError("bad-request", "modify", "item-required")
        d = self.store.items(owner.full(), node, itemIds or None, maxItems)

        def answer(found):
            config, items = found
            self._mayRead(config, owner, requester)
            reply = domish.Element((NS_PUBSUB, "pubsub"))
            holder = reply.addElement("items")
            holder["node"] = node
            for entry in items:
                item = holder.addElement("item")
                item["id"] = entry.id
                item["publisher"] = entry.publisher
                item.addRawXml(entry.payload)
            self._reply(iq, reply)

        d.addCallback(answer).addErrback(self._failed, iq, "items")

    # Discovery of nodes

    def _mayDiscover(self, owner, requester):
        if requester == owner:
            return True
        item = self.roster.item(owner, requester)
        return item is not None and item.subscription in ("from", "both")

    def _disco(self, iq, query, owner, requester):
        node = query.getAttribute("node")
        if iq.getAttribute("type") != "get":
            return None
        if query.uri == NS_DISCO_INFO and not node:
            return None
        if not self._mayDiscover(owner, requester):
            return None
        if node:
            d = self.store.config(owner.full(), node)

            def answer(config):
                if config is None or (
                    requester != owner and config.accessModel == "whitelist"
                ):
                    self.server.bounce(iq, "item-not-found", "cancel")
                    return
                reply = domish.Element((query.uri, "query"))
                reply["node"] = node
                if query.uri == NS_DISCO_INFO:
                    identity = reply.addElement("identity")
                    identity["category"] = "pubsub"
                    identity["type"] = "leaf"
                    reply.addElement("feature")["var"] = NS_PUBSUB
                self._replyFrom(iq, owner, reply)

            d.addCallbacks(answer, lambda f: self._failed(f, iq, "disco"))
            return True
        d = self.store.nodes(owner.full())

        def listing(nodes):
            reply = domish.Element((NS_DISCO_ITEMS, "query"))
            for name, config in nodes:
                if requester != owner and config.accessModel == "whitelist":
                    continue
                item = reply.addElement("item")
                item["jid"] = owner.full()
                item["node"] = name
                if config.title:
                    item["name"] = config.title
            self._replyFrom(iq, owner, reply)

        d.addCallbacks(listing, lambda f: self._failed(f, iq, "disco"))
        return True

    def _replyFrom(self, iq, owner, payload):
        reply = self.server.reply(iq)
        reply["from"] = owner.full()
        reply.addChild(payload)
        self.server.route(reply)

    def onAccountRemoved(self, bare):
        d = self.store.deleteAccount(bare.full())
        d.addErrback(lambda f: self.log.failure("Deleting the data of {jid} failed", f,
                                                jid=bare.full()))


def install(server):
    """
    Serve personal eventing at every account's bare JID; installs the
    caps and disco modules too.

    @return: the L{PersonalEventing} state.
    """
    modules = installModules(server, ("roster", "disco", "caps"))
    store = PersonalStore(moduleDatabase(server, "personal.sqlite", SCHEMA))
    pep = PersonalEventing(server, store, modules["caps"], modules["roster"])
    disco = modules["disco"]
    disco.addAccountIdentity("pubsub", "pep")
    disco.addFeature(NS_PUBSUB, account=True)
    for feature in FEATURES:
        disco.addFeature(NS_PUBSUB + "#" + feature, account=True)
    server.on("iq/account", pep.onAccountIQ, priority=10)
    server.on("iq/bare", pep.onBareIQ, priority=10)
    server.on("caps/interests", pep.onInterests)
    server.on("account/remove", pep.onAccountRemoved)
    return pep
