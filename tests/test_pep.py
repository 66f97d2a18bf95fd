"""
Tests for personal eventing (XEP-0163, L{xmppws.c2s.pep}), node
configuration and publish-options (L{xmppws.c2s.pepnode}) and the
XEP-0115 capabilities that filter notifications (L{xmppws.c2s.caps}),
over in-memory WebSockets.
"""

from twisted.trial import unittest

from tests.c2shelpers import parseElement
from tests.personalhelpers import (
    NS_DATA,
    NS_DISCO_INFO,
    PersonalTestCase,
    capsElement,
    capsVer,
    child,
    condition,
    discoInfo,
    form,
    notify,
)
from xmppws.c2s import caps as capsModule
from xmppws.c2s.pepnode import MAX_ITEMS, NodeConfig, PubSubError, parseConfigForm

NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_OWNER = NS_PUBSUB + "#owner"
NS_EVENT = NS_PUBSUB + "#event"
NS_OPTIONS = NS_PUBSUB + "#publish-options"
NS_CONFIG = NS_PUBSUB + "#node_config"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"

MOOD = "http://jabber.org/protocol/mood"
METADATA = "urn:xmpp:avatar:metadata"
DATA = "urn:xmpp:avatar:data"
DEVICES = "eu.siacs.conversations.axolotl.devicelist"
BUNDLES2 = "urn:xmpp:omemo:2:bundles"


def publishBody(node, payload, itemId=None, options=None):
    item = b"<item id='%s'>" % (itemId.encode(),) if itemId else b"<item>"
    body = b"<pubsub xmlns='%s'><publish node='%s'>%s%s</item></publish>" % (
        NS_PUBSUB.encode(), node.encode(), item, payload)
    if options is not None:
        body += b"<publish-options>" + form(NS_OPTIONS, options) + b"</publish-options>"
    return body + b"</pubsub>"


def mood(text):
    return b"<mood xmlns='%s'><happy/><text>%s</text></mood>" % (MOOD.encode(), text.encode())


def events(messages, node=None):
    """
    The (kind, node, ids) of the pubsub events among C{messages}.
    """
    found = []
    for message in messages:
        event = child(message, NS_EVENT, "event")
        if event is None:
            continue
        for holder in event.elements():
            name = holder.getAttribute("node")
            if node is not None and name != node:
                continue
            if holder.name == "items":
                ids = [c.getAttribute("id") for c in holder.elements()]
                kinds = {c.name for c in holder.elements()}
                found.append(("retract" if kinds == {"retract"} else "items", name, ids))
            else:
                found.append((holder.name, name, []))
    return found


class PepTestCase(PersonalTestCase):
    """
    Helpers to publish and read.
    """

    def publish(self, client, node, payload, itemId=None, options=None):
        return self.iq(client, publishBody(node, payload, itemId, options), type="set")[1]

    def items(self, client, node, owner=None, extra=b"", attributes=b""):
        body = b"<pubsub xmlns='%s'><items node='%s'%s>%s</items></pubsub>" % (
            NS_PUBSUB.encode(), node.encode(), attributes, extra)
        return self.iq(client, body, to=owner)[1]

    def itemIds(self, reply):
        return [i["id"] for i in reply.pubsub.items.elements(NS_PUBSUB, "item")]

    def owner(self, client, body, type="set"):
        return self.iq(client, b"<pubsub xmlns='%s'>%s</pubsub>" % (NS_OWNER.encode(), body),
                       type=type)[1]

    def assertError(self, reply, expected):
        self.assertEqual(reply["type"], "error", reply.toXml())
        self.assertEqual(condition(reply), expected)


class PublishTests(PepTestCase):
    """
    Publishing, reading, retracting and node configuration.
    """

    def test_disco(self):
        """
        The account's bare JID is a PEP service offering publish-options
        and the maximum max_items.
        """
        alice = self.connect("alice")
        _, reply = self.iq(alice, b"<query xmlns='%s'/>" % (NS_DISCO_INFO.encode(),),
                           to="alice@localhost")
        identities = {(i["category"], i["type"]) for i in reply.query.elements(NS_DISCO_INFO,
                                                                               "identity")}
        self.assertIn(("pubsub", "pep"), identities)
        features = {f["var"] for f in reply.query.elements(NS_DISCO_INFO, "feature")}
        for feature in ("publish-options", "config-node-max", "auto-create", "retract-items"):
            self.assertIn(NS_PUBSUB + "#" + feature, features)

    def test_publishAndRead(self):
        """
        A publish creates the node and answers with the item id; the owner
        reads the item back.
        """
        alice = self.connect("alice")
        reply = self.publish(alice, MOOD, mood("fine"), "current")
        self.assertEqual(reply["type"], "result")
        self.assertEqual(reply.pubsub.publish.item["id"], "current")
        reply = self.items(alice, MOOD)
        self.assertEqual(self.itemIds(reply), ["current"])
        self.assertEqual(str(reply.pubsub.items.item.mood.text), "fine")

    def test_itemIdGenerated(self):
        """
        An item without an id gets one, returned in the result.
        """
        reply = self.publish(self.connect("alice"), MOOD, mood("fine"))
        self.assertTrue(reply.pubsub.publish.item["id"])

    def test_maxItemsOne(self):
        """
        By default a node keeps only its last item.
        """
        alice = self.connect("alice")
        self.publish(alice, MOOD, mood("one"), "a")
        self.publish(alice, MOOD, mood("two"), "b")
        self.assertEqual(self.itemIds(self.items(alice, MOOD)), ["b"])

    def test_maxItemsAndRecent(self):
        """
        With max_items 'max' a node keeps many items, oldest first, and
        max_items on a request returns the most recent.
        """
        alice = self.connect("alice")
        for n in range(4):
            self.publish(alice, BUNDLES2, b"<bundle xmlns='urn:xmpp:omemo:2'/>", str(n),
                         {"pubsub#max_items": "max", "pubsub#access_model": "open"})
        self.assertEqual(self.itemIds(self.items(alice, BUNDLES2)), ["0", "1", "2", "3"])
        reply = self.items(alice, BUNDLES2, attributes=b" max_items='2'")
        self.assertEqual(self.itemIds(reply), ["2", "3"])
        reply = self.items(alice, BUNDLES2, extra=b"<item id='1'/>")
        self.assertEqual(self.itemIds(reply), ["1"])

    def test_republishMovesLast(self):
        """
        Publishing an item id again replaces the item and makes it the
        newest.
        """
        alice = self.connect("alice")
        options = {"pubsub#max_items": "10"}
        self.publish(alice, MOOD, mood("a"), "a", options)
        self.publish(alice, MOOD, mood("b"), "b", options)
        self.publish(alice, MOOD, mood("a2"), "a", options)
        reply = self.items(alice, MOOD)
        self.assertEqual(self.itemIds(reply), ["b", "a"])

    def test_retract(self):
        """
        A retracted item is gone; retracting an unknown one is
        item-not-found.
        """
        alice = self.connect("alice")
        self.publish(alice, MOOD, mood("a"), "a")
        _, reply = self.iq(alice, b"<pubsub xmlns='%s'><retract node='%s'><item id='a'/>"
                           b"</retract></pubsub>" % (NS_PUBSUB.encode(), MOOD.encode()),
                           type="set")
        self.assertEqual(reply["type"], "result")
        self.assertEqual(self.itemIds(self.items(alice, MOOD)), [])
        _, reply = self.iq(alice, b"<pubsub xmlns='%s'><retract node='%s'><item id='a'/>"
                           b"</retract></pubsub>" % (NS_PUBSUB.encode(), MOOD.encode()),
                           type="set")
        self.assertError(reply, ("item-not-found", "cancel", None))

    def test_noSuchNode(self):
        """
        Items of a node that does not exist are item-not-found.
        """
        self.assertError(self.items(self.connect("alice"), "nothing"),
                         ("item-not-found", "cancel", None))

    def test_configure(self):
        """
        The owner gets the configuration form and changes it; a smaller
        max_items drops the oldest items.
        """
        alice = self.connect("alice")
        for n in range(3):
            self.publish(alice, MOOD, mood(str(n)), str(n), {"pubsub#max_items": "5"})
        reply = self.owner(alice, b"<configure node='%s'/>" % (MOOD.encode(),), type="get")
        fields = {f["var"]: str(f.value) for f in reply.pubsub.configure.x.elements(NS_DATA,
                                                                                     "field")}
        self.assertEqual(fields["pubsub#max_items"], "5")
        self.assertEqual(fields["FORM_TYPE"], NS_CONFIG)
        reply = self.owner(alice, b"<configure node='%s'>%s</configure>" % (
            MOOD.encode(), form(NS_CONFIG, {"pubsub#max_items": "1"})))
        self.assertEqual(reply["type"], "result")
        self.assertEqual(self.itemIds(self.items(alice, MOOD)), ["2"])

    def test_configureNoSuchNode(self):
        """
        Configuring a node that does not exist is item-not-found.
        """
        reply = self.owner(self.connect("alice"), b"<configure node='x'>%s</configure>" % (
            form(NS_CONFIG, {"pubsub#max_items": "1"}),))
        self.assertError(reply, ("item-not-found", "cancel", None))

    def test_default(self):
        """
        The default configuration is Prosody's: presence access, one
        persistent item.
        """
        reply = self.owner(self.connect("alice"), b"<default/>", type="get")
        fields = {f["var"]: str(f.value) for f in reply.pubsub.default.x.elements(NS_DATA,
                                                                                   "field")}
        self.assertEqual(fields["pubsub#access_model"], "presence")
        self.assertEqual(fields["pubsub#max_items"], "1")
        self.assertEqual(fields["pubsub#persist_items"], "true")

    def test_createAndDelete(self):
        """
        A node created with a configuration has it; creating it again is
        a conflict; deleting it removes it.
        """
        alice = self.connect("alice")
        _, reply = self.iq(alice, b"<pubsub xmlns='%s'><create node='n'/><configure>%s"
                           b"</configure></pubsub>" % (NS_PUBSUB.encode(), form(
                               NS_CONFIG, {"pubsub#access_model": "open"})), type="set")
        self.assertEqual(reply["type"], "result")
        _, reply = self.iq(alice, b"<pubsub xmlns='%s'><create node='n'/></pubsub>" % (
            NS_PUBSUB.encode(),), type="set")
        self.assertError(reply, ("conflict", "cancel", None))
        reply = self.owner(alice, b"<configure node='n'/>", type="get")
        fields = {f["var"]: str(f.value) for f in reply.pubsub.configure.x.elements(NS_DATA,
                                                                                     "field")}
        self.assertEqual(fields["pubsub#access_model"], "open")
        self.assertEqual(self.owner(alice, b"<delete node='n'/>")["type"], "result")
        self.assertError(self.items(alice, "n"), ("item-not-found", "cancel", None))

    def test_purge(self):
        """
        Purging removes every item and keeps the node.
        """
        alice = self.connect("alice")
        self.publish(alice, MOOD, mood("a"), "a")
        self.assertEqual(self.owner(alice, b"<purge node='%s'/>" % (MOOD.encode(),))["type"],
                         "result")
        self.assertEqual(self.itemIds(self.items(alice, MOOD)), [])

    def test_notPersistent(self):
        """
        A node with persist_items false keeps no items.
        """
        alice = self.connect("alice")
        self.publish(alice, MOOD, mood("a"), "a", {"pubsub#persist_items": "false"})
        self.assertEqual(self.itemIds(self.items(alice, MOOD)), [])

    def test_survivesRestart(self):
        """
        Nodes, their configuration and their items are there after a
        restart.
        """
        alice = self.connect("alice")
        self.publish(alice, MOOD, mood("kept"), "k", {"pubsub#access_model": "open"})
        self.restart()
        alice = self.connect("alice")
        reply = self.items(alice, MOOD)
        self.assertEqual(str(reply.pubsub.items.item.mood.text), "kept")
        reply = self.owner(alice, b"<configure node='%s'/>" % (MOOD.encode(),), type="get")
        fields = {f["var"]: str(f.value) for f in reply.pubsub.configure.x.elements(NS_DATA,
                                                                                     "field")}
        self.assertEqual(fields["pubsub#access_model"], "open")

    def test_discoNodes(self):
        """
        disco#items of the account lists its nodes; disco#info of a node
        says it is a leaf.
        """
        alice = self.connect("alice")
        self.publish(alice, MOOD, mood("a"), "a")
        _, reply = self.iq(alice, b"<query xmlns='%s'/>" % (NS_DISCO_ITEMS.encode(),),
                           to="alice@localhost")
        self.assertEqual([i["node"] for i in reply.query.elements(NS_DISCO_ITEMS, "item")],
                         [MOOD])
        _, reply = self.iq(alice, b"<query xmlns='%s' node='%s'/>" % (
            NS_DISCO_INFO.encode(), MOOD.encode()), to="alice@localhost")
        self.assertEqual(reply.query.identity["type"], "leaf")


class PublishOptionsTests(PepTestCase):
    """
    Publish-options are preconditions (XEP-0060 section 7.1.5), and
    precondition-not-met is answered only where the XEP says.
    """

    BOOKMARKS = {
        "pubsub#persist_items": "true",
        "pubsub#max_items": "max",
        "pubsub#send_last_published_item": "never",
        "pubsub#access_model": "whitelist",
    }

    def test_newNodeTakesOptions(self):
        """
        A new node is created with the options, whatever they are: no
        precondition can fail on it.
        """
        alice = self.connect("alice")
        reply = self.publish(alice, "urn:xmpp:bookmarks:1",
                             b"<conference xmlns='urn:xmpp:bookmarks:1'/>",
                             "room@conference.localhost", self.BOOKMARKS)
        self.assertEqual(reply["type"], "result")
        config = self.successResultOf(self.server.modules["pep"].store.config(
            "alice@localhost", "urn:xmpp:bookmarks:1"))
        self.assertEqual((config.maxItems, config.accessModel, config.sendLast),
                         (MAX_ITEMS, "whitelist", "never"))

    def test_sameOptionsAgain(self):
        """
        Publishing again with the same options succeeds; 'max' matches the
        maximum and '1' matches 'true'.
        """
        alice = self.connect("alice")
        self.publish(alice, "n", mood("a"), "a", self.BOOKMARKS)
        options = dict(self.BOOKMARKS, **{"pubsub#persist_items": "1",
                                          "pubsub#max_items": str(MAX_ITEMS)})
        self.assertEqual(self.publish(alice, "n", mood("b"), "b", options)["type"], "result")

    def test_preconditionNotMet(self):
        """
        An existing node whose configuration differs gets conflict with
        precondition-not-met, and keeps its items.
        """
        alice = self.connect("alice")
        self.publish(alice, "n", mood("a"), "a")
        reply = self.publish(alice, "n", mood("b"), "b", {"pubsub#access_model": "open"})
        self.assertError(reply, ("conflict", "cancel", "precondition-not-met"))
        self.assertEqual(self.itemIds(self.items(alice, "n")), ["a"])

    def test_configureThenPublish(self):
        """
        What Converse.js does after precondition-not-met works: it
        configures the node, then publishes again.
        """
        alice = self.connect("alice")
        self.publish(alice, "n", mood("a"), "a")
        reply = self.owner(alice, b"<configure node='n'>%s</configure>" % (
            form(NS_CONFIG, {"pubsub#access_model": "open"}),))
        self.assertEqual(reply["type"], "result")
        reply = self.publish(alice, "n", mood("b"), "b", {"pubsub#access_model": "open"})
        self.assertEqual(reply["type"], "result")

    def test_unknownOption(self):
        """
        An option that is no node configuration field is not-acceptable,
        not precondition-not-met.
        """
        reply = self.publish(self.connect("alice"), "n", mood("a"), "a",
                             {"pubsub#color": "blue"})
        self.assertError(reply, ("not-acceptable", "modify", None))

    def test_unsupportedAccessModel(self):
        """
        The roster access model is not offered: not-acceptable with
        unsupported-access-model.
        """
        reply = self.publish(self.connect("alice"), "n", mood("a"), "a",
                             {"pubsub#access_model": "roster"})
        self.assertError(reply, ("not-acceptable", "modify", "unsupported-access-model"))

    def test_tooManyItems(self):
        """
        A max_items above the service's maximum is not-acceptable.
        """
        reply = self.publish(self.connect("alice"), "n", mood("a"), "a",
                             {"pubsub#max_items": "9999"})
        self.assertError(reply, ("not-acceptable", "modify", None))

    def test_parseConfigForm(self):
        """
        parseConfigForm reads values by meaning and refuses another
        FORM_TYPE.
        """
        values = parseConfigForm(parseElement(form(NS_OPTIONS, {
            "pubsub#persist_items": "1", "pubsub#max_items": "max"})), NS_OPTIONS)
        self.assertEqual(values, {"persistItems": True, "maxItems": MAX_ITEMS})
        self.assertRaises(PubSubError, parseConfigForm, parseElement(form(NS_CONFIG, {})),
                          NS_OPTIONS)

    def test_configJSON(self):
        """
        A configuration survives JSON, and unreadable JSON gives the
        defaults.
        """
        config = NodeConfig(accessModel="open", maxItems=7)
        self.assertEqual(NodeConfig.fromJSON(config.toJSON()), config)
        self.assertEqual(NodeConfig.fromJSON("{nope"), NodeConfig())


class NotificationTests(PepTestCase):
    """
    Who is told of publications: +notify filtering (XEP-0115) and access
    models.
    """

    def test_contactInterested(self):
        """
        A contact that announced NODE+notify gets the publication from the
        owner's bare JID as a headline, payload included.
        """
        alice = self.connect("alice")
        bob = self.connect("bob", features=notify(MOOD))
        self.publish(alice, MOOD, mood("great"), "current")
        [message] = self.messages(bob)
        self.assertEqual((message["from"], message["type"]), ("alice@localhost", "headline"))
        self.assertEqual(events([message]), [("items", MOOD, ["current"])])
        item = message.event.items.item
        self.assertEqual(str(item.mood.text), "great")
        self.assertEqual(item["publisher"], "alice@localhost")

    def test_notInterested(self):
        """
        A contact that did not announce NODE+notify gets nothing.
        """
        alice = self.connect("alice")
        bob = self.connect("bob", features=notify("urn:example:other"))
        self.publish(alice, MOOD, mood("great"))
        self.assertEqual(self.messages(bob), [])

    def test_notSubscribed(self):
        """
        Someone not subscribed to the owner's presence gets nothing from a
        presence node.
        """
        self.server.storage.removeRosterItem("alice", "localhost", "carol@localhost")
        alice = self.connect("alice")
        carol = self.connect("carol", features=notify(MOOD))
        self.publish(alice, MOOD, mood("great"))
        self.assertEqual(self.messages(carol), [])

    def test_ownResources(self):
        """
        The owner's own interested resources are notified, the publishing
        one included.
        """
        alice = self.connect("alice", features=notify(MOOD))
        other = self.connect("alice", "other", features=notify(MOOD))
        self.publish(alice, MOOD, mood("great"), "x")
        self.assertEqual(events(self.messages(other)), [("items", MOOD, ["x"])])

    def test_whitelistOwnerOnly(self):
        """
        A whitelist node notifies the owner's resources only.
        """
        alice = self.connect("alice", features=notify("urn:xmpp:bookmarks:1"))
        bob = self.connect("bob", features=notify("urn:xmpp:bookmarks:1"))
        others, _ = self.iq(alice, publishBody(
            "urn:xmpp:bookmarks:1", b"<conference xmlns='urn:xmpp:bookmarks:1'/>",
            "r@conference.localhost", {"pubsub#access_model": "whitelist"}), type="set")
        self.assertEqual(self.messages(bob), [])
        self.assertEqual(len(events(others)), 1)

    def test_retractNotify(self):
        """
        A retraction with notify tells interested contacts.
        """
        alice = self.connect("alice")
        bob = self.connect("bob", features=notify(MOOD))
        self.publish(alice, MOOD, mood("a"), "a")
        self.messages(bob)
        self.iq(alice, b"<pubsub xmlns='%s'><retract node='%s' notify='true'><item id='a'/>"
                b"</retract></pubsub>" % (NS_PUBSUB.encode(), MOOD.encode()), type="set")
        self.assertEqual(events(self.messages(bob)), [("retract", MOOD, ["a"])])

    def test_deleteNotify(self):
        """
        Deleting a node tells interested contacts.
        """
        alice = self.connect("alice")
        bob = self.connect("bob", features=notify(MOOD))
        self.publish(alice, MOOD, mood("a"), "a")
        self.messages(bob)
        self.owner(alice, b"<delete node='%s'/>" % (MOOD.encode(),))
        self.assertEqual(events(self.messages(bob)), [("delete", MOOD, [])])

    def test_lastItemOnPresence(self):
        """
        A contact coming online interested in a node gets its last item;
        a node that sends no last item is not sent.
        """
        alice = self.connect("alice")
        self.publish(alice, METADATA, b"<metadata xmlns='%s'><info id='abc' bytes='3' "
                     b"type='image/png'/></metadata>" % (METADATA.encode(),), "abc")
        self.publish(alice, MOOD, mood("a"), "a", {"pubsub#send_last_published_item": "never"})
        bob = self.connect("bob", features=notify(METADATA, MOOD))
        self.clock.advance(0)
        self.assertEqual(events(bob.early + bob.receive()), [("items", METADATA, ["abc"])])

    def test_ownLastItems(self):
        """
        A resource coming online gets its own account's last items too.
        """
        self.publish(self.connect("alice"), MOOD, mood("a"), "a")
        other = self.connect("alice", "other", features=notify(MOOD))
        self.assertEqual(events(other.early + other.receive()), [("items", MOOD, ["a"])])

    def test_unavailableForgotten(self):
        """
        After unavailable presence a session is no longer notified.
        """
        alice = self.connect("alice")
        bob = self.connect("bob", features=notify(MOOD))
        bob.presence(type="unavailable")
        self.clock.advance(0)
        bob.receive()
        self.publish(alice, MOOD, mood("a"))
        self.assertEqual(self.messages(bob), [])


class AccessTests(PepTestCase):
    """
    Who may read whose items (XEP-0060 section 6.5.9).
    """

    def test_presenceModel(self):
        """
        A subscribed contact reads a presence node; someone else gets
        not-authorized with presence-subscription-required.
        """
        alice = self.connect("alice")
        self.publish(alice, MOOD, mood("a"), "a")
        bob = self.connect("bob")
        self.assertEqual(self.itemIds(self.items(bob, MOOD, "alice@localhost")), ["a"])
        self.server.storage.removeRosterItem("alice", "localhost", "carol@localhost")
        carol = self.connect("carol")
        self.assertError(self.items(carol, MOOD, "alice@localhost"),
                         ("not-authorized", "auth", "presence-subscription-required"))

    def test_openModel(self):
        """
        Anyone reads an open node (an OMEMO device list, say).
        """
        self.server.storage.removeRosterItem("alice", "localhost", "carol@localhost")
        alice = self.connect("alice")
        self.publish(alice, DEVICES, b"<list xmlns='eu.siacs.conversations.axolotl'>"
                     b"<device id='1'/></list>", "current", {"pubsub#access_model": "open"})
        carol = self.connect("carol")
        self.assertEqual(self.itemIds(self.items(carol, DEVICES, "alice@localhost")),
                         ["current"])

    def test_whitelistModel(self):
        """
        Nobody else reads a whitelist node: not-allowed with closed-node.
        """
        alice = self.connect("alice")
        self.publish(alice, "private-node", mood("a"), "a", {"pubsub#access_model": "whitelist"})
        self.assertError(self.items(self.connect("bob"), "private-node", "alice@localhost"),
                         ("not-allowed", "cancel", "closed-node"))

    def test_publishToOthers(self):
        """
        Publishing to another account's node is forbidden.
        """
        bob = self.connect("bob")
        _, reply = self.iq(bob, publishBody(MOOD, mood("a")), type="set", to="alice@localhost")
        self.assertError(reply, ("forbidden", "auth", None))

    def test_unknownAccount(self):
        """
        A request to an account that does not exist is
        service-unavailable.
        """
        bob = self.connect("bob")
        self.assertError(self.items(bob, MOOD, "nobody@localhost"),
                         ("service-unavailable", "cancel", None))


class RequestErrorTests(PepTestCase):
    """
    Malformed requests and spent budgets.
    """

    def test_noNode(self):
        """
        A publish without a node is bad-request with nodeid-required.
        """
        alice = self.connect("alice")
        _, reply = self.iq(alice, b"<pubsub xmlns='%s'><publish><item>%s</item></publish>"
                           b"</pubsub>" % (NS_PUBSUB.encode(), mood("a")), type="set")
        self.assertError(reply, ("bad-request", "modify", "nodeid-required"))

    def test_noItem(self):
        """
        A publish without an item is bad-request with item-required.
        """
        _, reply = self.iq(self.connect("alice"), b"<pubsub xmlns='%s'><publish node='n'/>"
                           b"</pubsub>" % (NS_PUBSUB.encode(),), type="set")
        self.assertError(reply, ("bad-request", "modify", "item-required"))

    def test_twoPayloads(self):
        """
        An item with two payloads is bad-request with invalid-payload.
        """
        reply = self.publish(self.connect("alice"), "n", mood("a") + mood("b"))
        self.assertError(reply, ("bad-request", "modify", "invalid-payload"))

    def test_subscribeUnsupported(self):
        """
        Explicit subscriptions are feature-not-implemented with the
        unsupported 'subscribe' feature.
        """
        _, reply = self.iq(self.connect("alice"), b"<pubsub xmlns='%s'><subscribe node='n' "
                           b"jid='alice@localhost'/></pubsub>" % (NS_PUBSUB.encode(),),
                           type="set")
        self.assertError(reply, ("feature-not-implemented", "cancel", "unsupported"))

    def test_payloadTooBig(self):
        """
        An item larger than maxPepItemSize is not-acceptable with
        payload-too-big, and counted.
        """
        self.server.config.quotas.maxPepItemSize = 100
        reply = self.publish(self.connect("alice"), "n", mood("x" * 200))
        self.assertError(reply, ("not-acceptable", "modify", "payload-too-big"))
        self.assertEqual(self.server.stats["quota_maxPepItemSize"], 1)

    def test_tooManyNodes(self):
        """
        More nodes than maxPepNodes is not-allowed with max-nodes-exceeded.
        """
        self.server.config.quotas.maxPepNodes = 2
        alice = self.connect("alice")
        self.publish(alice, "a", mood("a"))
        self.publish(alice, "b", mood("b"))
        self.assertError(self.publish(alice, "c", mood("c")),
                         ("not-allowed", "cancel", "max-nodes-exceeded"))
        self.assertError(self.items(alice, "c"), ("item-not-found", "cancel", None))
        self.assertEqual(self.server.stats["quota_maxPepNodes"], 1)

    def test_tooManyItems(self):
        """
        More items than maxPepItems is not-allowed with max-items-exceeded,
        and the item is not kept.
        """
        self.server.config.quotas.maxPepItems = 2
        alice = self.connect("alice")
        options = {"pubsub#max_items": "10"}
        self.publish(alice, "n", mood("a"), "a", options)
        self.publish(alice, "n", mood("b"), "b", options)
        self.assertError(self.publish(alice, "n", mood("c"), "c", options),
                         ("not-allowed", "cancel", "max-items-exceeded"))
        self.assertEqual(self.itemIds(self.items(alice, "n")), ["a", "b"])
        self.assertEqual(self.publish(alice, "n", mood("b2"), "b", options)["type"], "result")


class CapsTests(PepTestCase):
    """
    XEP-0115 capabilities: the server asks once per hash, verifies, and
    caches only what verifies.
    """

    def test_queryOncePerHash(self):
        """
        The first session with a hash is asked; the second is not.
        """
        caps = self.server.modules["caps"]
        self.connect("bob", features=notify(MOOD))
        self.assertEqual(caps.queries, 1)
        second = self.connect("carol", features=notify(MOOD))
        self.assertEqual(caps.queries, 1)
        self.assertEqual(caps.interests(self.server.session(_jid(second.jid))), {MOOD})

    def test_wrongHashNotCached(self):
        """
        An answer that does not hash to the announced ver gives that
        session its interests but is not cached.
        """
        caps = self.server.modules["caps"]
        bob = self.connect("bob", available=False)
        bob.presence(capsElement(notify(MOOD), ver="bogus="))
        self.clock.advance(0)
        [query] = [s for s in bob.receive() if s.name == "iq"]
        bob.send(b"<iq xmlns='jabber:client' type='result' id='%s' to='bob@localhost'>%s</iq>"
                 % (query["id"].encode(), discoInfo(notify(MOOD))))
        self.clock.advance(0)
        self.assertEqual(caps.interests(self.server.session(_jid(bob.jid))), {MOOD})
        self.assertNotIn("bogus=", caps.cache)

    def test_cacheBounded(self):
        """
        The cache of verified hashes keeps at most CACHE_SIZE, the oldest
        going first.
        """
        self.patch(capsModule, "CACHE_SIZE", 3)
        caps = self.server.modules["caps"]
        for n in range(5):
            self.connect("bob", "r%d" % (n,), features=notify("urn:example:%d" % (n,)))
        self.assertEqual(len(caps.cache), 3)
        self.assertIn(capsVer(notify("urn:example:4")), caps.cache)
        self.assertNotIn(capsVer(notify("urn:example:0")), caps.cache)

    def test_verificationString(self):
        """
        The verification string is XEP-0115's, and its hash the example's.
        """
        query = parseElement(
            b"<query xmlns='http://jabber.org/protocol/disco#info'>"
            b"<identity category='client' name='Exodus 0.9.1' type='pc'/>"
            b"<feature var='http://jabber.org/protocol/caps'/>"
            b"<feature var='http://jabber.org/protocol/disco#info'/>"
            b"<feature var='http://jabber.org/protocol/disco#items'/>"
            b"<feature var='http://jabber.org/protocol/muc'/></query>")
        self.assertEqual(capsModule.capsHash(query), "QgayPKawpkPSDYmwT/WM94uAlu0=")

    def test_duplicatesUntrusted(self):
        """
        An answer with a feature twice is not to be trusted.
        """
        query = parseElement(discoInfo(["a", "a"]))
        self.assertIsNone(capsModule.verificationString(query))

    def test_hashHelper(self):
        """
        The test helper's ver is what the module computes.
        """
        self.assertEqual(capsVer(["x"]), capsModule.capsHash(parseElement(discoInfo(["x"]))))


class OmemoAndAvatarTests(PepTestCase):
    """
    What Converse.js and other clients publish: OMEMO device lists and
    bundles (XEP-0384), avatars (XEP-0084).
    """

    def test_omemo(self):
        """
        A device list and a bundle published as Converse.js does are open:
        a contact is notified of the list and fetches the bundle.
        """
        alice = self.connect("alice")
        bob = self.connect("bob", features=notify(DEVICES))
        reply = self.publish(alice, DEVICES, b"<list xmlns='eu.siacs.conversations.axolotl'>"
                             b"<device id='42'/></list>", "current",
                             {"pubsub#access_model": "open"})
        self.assertEqual(reply["type"], "result")
        self.assertEqual(events(self.messages(bob)), [("items", DEVICES, ["current"])])
        bundle = "eu.siacs.conversations.axolotl.bundles:42"
        reply = self.publish(alice, bundle, b"<bundle xmlns='eu.siacs.conversations.axolotl'>"
                             b"<identityKey>AAAA</identityKey></bundle>", None,
                             {"pubsub#access_model": "open"})
        self.assertEqual(reply["type"], "result")
        reply = self.items(bob, bundle, "alice@localhost", attributes=b" max_items='1'")
        self.assertEqual(str(reply.pubsub.items.item.bundle.identityKey), "AAAA")

    def test_avatar(self):
        """
        Avatar data and metadata: a contact is notified of the metadata
        and fetches the data by its id.
        """
        alice = self.connect("alice")
        bob = self.connect("bob", features=notify(METADATA))
        self.publish(alice, DATA, b"<data xmlns='%s'>iVBORw0KGgo=</data>" % (DATA.encode(),),
                     "sha1")
        self.publish(alice, METADATA, b"<metadata xmlns='%s'><info id='sha1' bytes='8' "
                     b"type='image/png'/></metadata>" % (METADATA.encode(),), "sha1")
        self.assertEqual(events(self.messages(bob)), [("items", METADATA, ["sha1"])])
        reply = self.items(bob, DATA, "alice@localhost", extra=b"<item id='sha1'/>")
        self.assertEqual(str(reply.pubsub.items.item.data), "iVBORw0KGgo=")


def _jid(text):
    from xmppws.c2s import jid as jids

    return jids.parse(text)


class NodeConfigTests(unittest.TestCase):
    """
    The configuration model alone.
    """

    def test_unmet(self):
        """
        unmet names the first field that differs, or nothing.
        """
        config = NodeConfig(accessModel="open")
        self.assertIsNone(config.unmet({"accessModel": "open"}))
        self.assertEqual(config.unmet({"maxItems": 5}), "pubsub#max_items")
