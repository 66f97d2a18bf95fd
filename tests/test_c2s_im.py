"""
Tests for the roster and presence of the embedded server (RFC 6121
sections 2 to 4): L{xmppws.c2s.roster} and L{xmppws.c2s.presence}.
"""

from twisted.internet.error import ConnectionLost
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial import unittest
from twisted.words.protocols.jabber.jid import JID

from tests.c2shelpers import OPEN_LOCALHOST, C2SClient, makeServer
from xmppws.c2s._stanzas import parseStanza
from xmppws.c2s.modules import installModules
from xmppws.c2s.namespaces import NS_ROSTER
from xmppws.c2s.storage import RosterRow

NS_DELAY = "urn:xmpp:delay"


def errorCondition(stanza):
    return stanza.error.firstChildElement().name


def pushes(stanzas):
    """
    The items of the roster pushes among C{stanzas}, in order.
    """
    items = []
    for stanza in stanzas:
        if stanza.name != "iq" or stanza.getAttribute("type") != "set":
            continue
        query = stanza.firstChildElement()
        if query is not None and (query.uri, query.name) == (NS_ROSTER, "query"):
            items.extend(query.elements(NS_ROSTER, "item"))
    return items


def state(item):
    """
    The C{(jid, subscription, ask)} of a roster item element.
    """
    return (item["jid"], item.getAttribute("subscription"), item.getAttribute("ask"))


def presences(stanzas, type=None):
    """
    The presence stanzas of one type among C{stanzas}, as C{(from, to)}.
    """
    return [
        (p.getAttribute("from"), p.getAttribute("to"))
        for p in stanzas
        if p.name == "presence" and p.getAttribute("type") == type
    ]


class IMTestCase(unittest.TestCase):
    """
    A server with the roster and presence modules, and clients of it.
    """

    def setUp(self):
        self.clock = MemoryReactorClock()
        self.server = makeServer(self, self.clock)
        installModules(self.server, ("roster", "presence"))
        self.available = []
        self.server.on("session/available", self.available.append)

    def connect(self, user, resource="test"):
        """
        A logged-in client.
        """
        client = C2SClient(self, self.server)
        client.login(user, resource)
        return client

    def online(self, user, resource="test", presence=b""):
        """
        A logged-in client that fetched its roster and sent initial
        presence; what it received is discarded.
        """
        client = self.connect(user, resource)
        self.rosterGet(client)
        client.presence(presence)
        client.receive()
        return client

    def rosterGet(self, client, ver=None):
        """
        Fetch the roster; return the reply.
        """
        client.receive()
        query = b"<query xmlns='jabber:iq:roster'"
        if ver is not None:
            query += b" ver='" + ver.encode() + b"'"
        [reply] = client.iq(query + b"/>", id="get")
        return reply

    def rosterSet(self, client, item, id="set"):
        """
        Send a roster set with C{item}; return everything received.
        """
        return client.iq(b"<query xmlns='jabber:iq:roster'>" + item + b"</query>", "set", id=id)

    def items(self, client):
        """
        The roster of C{client}'s account, as C{{jid: (subscription, ask)}}.
        """
        query = self.rosterGet(client).firstChildElement()
        return {
            item["jid"]: (item["subscription"], item.getAttribute("ask"))
            for item in query.elements(NS_ROSTER, "item")
        }

    def befriend(self, user, contact, subscription="both"):
        """
        Store the subscription state of two accounts directly.
        """
        mirror = {"both": "both", "to": "from", "from": "to", "none": "none"}[subscription]
        storage = self.server.storage
        storage.saveRosterItem(
            user, "localhost", RosterRow(contact + "@localhost", None, subscription)
        )
        storage.saveRosterItem(contact, "localhost", RosterRow(user + "@localhost", None, mirror))

    def drop(self, client):
        """
        Lose the client's WebSocket connection.
        """
        client.ws.protocol.connectionLost(Failure(ConnectionLost()))


class RosterTests(IMTestCase):
    """
    Roster get, set and remove (RFC 6121 section 2).
    """

    def test_getEmpty(self):
        """
        A roster get returns an empty roster with its version.
        """
        alice = self.connect("alice")
        reply = self.rosterGet(alice)
        self.assertEqual(reply["type"], "result")
        self.assertEqual(reply["id"], "get")
        query = reply.firstChildElement()
        self.assertEqual((query.uri, query.name), (NS_ROSTER, "query"))
        self.assertEqual(list(query.elements()), [])
        self.assertTrue(query.getAttribute("ver"))

    def test_getMarksInterested(self):
        """
        A roster get makes the session an interested resource.
        """
        alice = self.connect("alice")
        [session] = self.server.sessionsOf(JID("alice@localhost"))
        self.assertFalse(session.interested)
        self.rosterGet(alice)
        self.assertTrue(session.interested)

    def test_add(self):
        """
        A roster set adds an item: the setter gets a result, and every
        interested resource, the setter included, a push.
        """
        desk = self.connect("alice", "desk")
        phone = self.connect("alice", "phone")
        quiet = self.connect("alice", "quiet")
        self.rosterGet(desk)
        self.rosterGet(phone)
        received = self.rosterSet(
            desk, b"<item jid='bob@localhost' name='Bob'><group>Friends</group></item>"
        )
        [result] = [s for s in received if s["type"] == "result"]
        self.assertEqual(result["id"], "set")
        [push] = pushes(received)
        self.assertEqual(state(push), ("bob@localhost", "none", None))
        self.assertEqual(push["name"], "Bob")
        self.assertEqual([str(g) for g in push.elements(NS_ROSTER, "group")], ["Friends"])
        [phonePush] = pushes(phone.receive())
        self.assertEqual(state(phonePush), ("bob@localhost", "none", None))
        self.assertEqual(quiet.receive(), [])
        self.assertEqual(self.items(quiet), {"bob@localhost": ("none", None)})

    def test_pushCarriesVersion(self):
        """
        A roster push carries the new roster version, and the iq of a push
        is addressed to the resource without a C{from}.
        """
        alice = self.connect("alice", "desk")
        before = self.rosterGet(alice).firstChildElement()["ver"]
        received = self.rosterSet(alice, b"<item jid='bob@localhost'/>")
        [iq] = [s for s in received if s["type"] == "set"]
        self.assertEqual(iq["to"], "alice@localhost/desk")
        self.assertIsNone(iq.getAttribute("from"))
        after = iq.firstChildElement()["ver"]
        self.assertNotEqual(before, after)
        self.assertEqual(self.rosterGet(alice).firstChildElement()["ver"], after)

    def test_update(self):
        """
        A roster set on an existing item replaces its name and groups
        exactly as given.
        """
        alice = self.connect("alice")
        self.rosterGet(alice)
        self.rosterSet(
            alice,
            b"<item jid='bob@localhost' name='Bob'><group>A</group><group>B</group></item>",
        )
        received = self.rosterSet(alice, b"<item jid='bob@localhost'><group>C</group></item>")
        [push] = pushes(received)
        self.assertIsNone(push.getAttribute("name"))
        self.assertEqual([str(g) for g in push.elements(NS_ROSTER, "group")], ["C"])

    def test_setKeepsSubscription(self):
        """
        A roster set ignores a C{subscription} other than C{remove} and
        keeps the item's subscription state.
        """
        self.befriend("alice", "bob", "to")
        alice = self.connect("alice")
        self.rosterGet(alice)
        [push] = pushes(
            self.rosterSet(alice, b"<item jid='bob@localhost' subscription='none' name='B'/>")
        )
        self.assertEqual(state(push), ("bob@localhost", "to", None))
        [push] = pushes(self.rosterSet(alice, b"<item jid='carol@localhost' subscription='both'/>"))
        self.assertEqual(state(push), ("carol@localhost", "none", None))

    def test_remove(self):
        """
        A roster set with C{subscription='remove'} deletes the item: a
        result, and a push with C{subscription='remove'}.
        """
        alice = self.connect("alice")
        self.rosterGet(alice)
        self.rosterSet(alice, b"<item jid='bob@localhost'/>")
        received = self.rosterSet(alice, b"<item jid='bob@localhost' subscription='remove'/>")
        self.assertEqual([s["type"] for s in received if s["id"] == "set"], ["result"])
        [push] = pushes(received)
        self.assertEqual(state(push), ("bob@localhost", "remove", None))
        self.assertEqual(self.items(alice), {})

    def test_removeUnknown(self):
        """
        Removing an item that is not in the roster gets C{item-not-found}.
        """
        alice = self.connect("alice")
        [reply] = self.rosterSet(alice, b"<item jid='bob@localhost' subscription='remove'/>")
        self.assertEqual(reply["type"], "error")
        self.assertEqual(errorCondition(reply), "item-not-found")

    def assertSetError(self, item, condition):
        alice = self.connect("alice")
        self.rosterGet(alice)
        [reply] = self.rosterSet(alice, item)
        self.assertEqual(reply["type"], "error")
        self.assertEqual(reply["id"], "set")
        self.assertEqual(errorCondition(reply), condition)
        self.assertEqual(self.items(alice), {})

    def test_twoItems(self):
        """
        A roster set with more than one item gets C{bad-request}.
        """
        self.assertSetError(
            b"<item jid='bob@localhost'/><item jid='carol@localhost'/>", "bad-request"
        )

    def test_noItem(self):
        """
        A roster set with no item gets C{bad-request}.
        """
        self.assertSetError(b"", "bad-request")

    def test_duplicateGroups(self):
        """
        A roster set listing one group twice gets C{bad-request}.
        """
        self.assertSetError(
            b"<item jid='bob@localhost'><group>A</group><group>A</group></item>", "bad-request"
        )

    def test_emptyGroup(self):
        """
        A roster set with an empty group gets C{not-acceptable}.
        """
        self.assertSetError(b"<item jid='bob@localhost'><group/></item>", "not-acceptable")

    def test_longName(self):
        """
        A roster set with an overlong name gets C{not-acceptable}.
        """
        self.assertSetError(
            b"<item jid='bob@localhost' name='" + b"x" * 2000 + b"'/>", "not-acceptable"
        )

    def test_longGroup(self):
        """
        A roster set with an overlong group name gets C{not-acceptable}.
        """
        self.assertSetError(
            b"<item jid='bob@localhost'><group>" + b"x" * 2000 + b"</group></item>",
            "not-acceptable",
        )

    def test_malformedJID(self):
        """
        A roster set with an invalid JID gets C{jid-malformed}.
        """
        self.assertSetError(b"<item jid='a@@b'/>", "jid-malformed")

    def test_missingJID(self):
        """
        A roster set with an item without a JID gets C{bad-request}.
        """
        self.assertSetError(b"<item name='x'/>", "bad-request")

    def test_fullJID(self):
        """
        A roster set with a full JID gets C{bad-request}.
        """
        self.assertSetError(b"<item jid='bob@localhost/phone'/>", "bad-request")

    def test_ownJID(self):
        """
        A roster set with the user's own JID gets C{not-allowed}.
        """
        self.assertSetError(b"<item jid='alice@localhost'/>", "not-allowed")

    def test_toOwnBareJID(self):
        """
        A roster get addressed to the user's own bare JID is answered.
        """
        alice = self.connect("alice")
        [reply] = alice.iq(b"<query xmlns='jabber:iq:roster'/>", to="alice@localhost")
        self.assertEqual(reply["type"], "result")
        self.assertEqual(reply.firstChildElement().name, "query")

    def test_otherAccountSet(self):
        """
        A roster set addressed to another account gets C{forbidden}.
        """
        alice = self.connect("alice")
        [reply] = alice.iq(
            b"<query xmlns='jabber:iq:roster'><item jid='carol@localhost'/></query>",
            "set",
            to="bob@localhost",
        )
        self.assertEqual(errorCondition(reply), "forbidden")
        self.assertEqual(self.server.storage.roster("bob", "localhost"), [])

    def test_otherAccountGet(self):
        """
        A roster get addressed to another account gets
        C{service-unavailable}.
        """
        alice = self.connect("alice")
        [reply] = alice.iq(b"<query xmlns='jabber:iq:roster'/>", to="bob@localhost")
        self.assertEqual(errorCondition(reply), "service-unavailable")

    def test_versionCurrent(self):
        """
        A roster get with the current version gets an empty result.
        """
        alice = self.connect("alice")
        self.rosterSet(alice, b"<item jid='bob@localhost'/>")
        ver = self.rosterGet(alice).firstChildElement()["ver"]
        reply = self.rosterGet(alice, ver)
        self.assertEqual(reply["type"], "result")
        self.assertIsNone(reply.firstChildElement())

    def test_versionStale(self):
        """
        A roster get with an old or empty version gets the whole roster
        with the current version.
        """
        alice = self.connect("alice")
        old = self.rosterGet(alice).firstChildElement()["ver"]
        self.rosterSet(alice, b"<item jid='bob@localhost'/>")
        for ver in (old, ""):
            query = self.rosterGet(alice, ver).firstChildElement()
            self.assertNotEqual(query["ver"], old)
            self.assertEqual(
                [i["jid"] for i in query.elements(NS_ROSTER, "item")], ["bob@localhost"]
            )

    def test_versionNeverReused(self):
        """
        A roster that returns to an earlier content still gets a new
        version.
        """
        alice = self.connect("alice")
        first = self.rosterGet(alice).firstChildElement()["ver"]
        self.rosterSet(alice, b"<item jid='bob@localhost'/>")
        self.rosterSet(alice, b"<item jid='bob@localhost' subscription='remove'/>")
        self.assertNotEqual(self.rosterGet(alice).firstChildElement()["ver"], first)

    def test_streamFeatures(self):
        """
        Roster versioning and subscription pre-approval are announced
        after authentication.
        """
        client = C2SClient(self, self.server)
        self.assertEqual(client.authenticate("alice").name, "success")
        client.ws.send(OPEN_LOCALHOST)
        features = client.receive()[-1]
        names = {(child.uri, child.name) for child in features.elements()}
        self.assertIn(("urn:xmpp:features:rosterver", "ver"), names)
        self.assertIn(("urn:xmpp:features:pre-approval", "sub"), names)


class SubscriptionTests(IMTestCase):
    """
    Presence subscriptions (RFC 6121 section 3), on both accounts' sides.
    """

    def setUp(self):
        IMTestCase.setUp(self)
        self.alice = self.online("alice", "desk")
        self.bob = self.online("bob", "phone")

    def subscribe(self, subscriber, contact, contactUser, subscriberUser):
        """
        Let C{subscriber} subscribe to C{contact}'s presence, approved.
        """
        subscriber.presence(type="subscribe", to=contactUser + "@localhost")
        subscriber.receive()
        contact.receive()
        contact.presence(type="subscribed", to=subscriberUser + "@localhost")
        subscriber.receive()
        contact.receive()

    def test_request(self):
        """
        A subscription request gets the user a push with C{ask='subscribe'}
        and reaches the contact from the user's bare JID, with its status;
        the contact's roster does not list the user.
        """
        self.alice.presence(b"<status>Hi, Bob</status>", type="subscribe", to="bob@localhost/phone")
        [push] = pushes(self.alice.receive())
        self.assertEqual(state(push), ("bob@localhost", "none", "subscribe"))
        [request] = self.bob.receive()
        self.assertEqual(request.name, "presence")
        self.assertEqual(request["type"], "subscribe")
        self.assertEqual(request["from"], "alice@localhost")
        self.assertEqual(request["to"], "bob@localhost")
        self.assertEqual(str(request.status), "Hi, Bob")
        self.assertEqual(self.items(self.bob), {})

    def test_approve(self):
        """
        Approving a request pushes C{from} to the contact and C{to} to the
        user, who gets the approval and the contact's presence.
        """
        self.alice.presence(type="subscribe", to="bob@localhost")
        self.alice.receive()
        self.bob.receive()
        self.bob.presence(type="subscribed", to="alice@localhost")
        [push] = pushes(self.bob.receive())
        self.assertEqual(state(push), ("alice@localhost", "from", None))
        received = self.alice.receive()
        [push] = pushes(received)
        self.assertEqual(state(push), ("bob@localhost", "to", None))
        self.assertEqual(presences(received, "subscribed"), [("bob@localhost", "alice@localhost")])
        self.assertEqual(presences(received), [("bob@localhost/phone", "alice@localhost")])
        self.assertEqual(self.items(self.alice), {"bob@localhost": ("to", None)})
        self.assertEqual(self.items(self.bob), {"alice@localhost": ("from", None)})

    def test_mutual(self):
        """
        Two approved requests make the subscription C{both} on each side.
        """
        self.subscribe(self.alice, self.bob, "bob", "alice")
        self.bob.presence(type="subscribe", to="alice@localhost")
        [push] = pushes(self.bob.receive())
        self.assertEqual(state(push), ("alice@localhost", "from", "subscribe"))
        self.assertEqual(
            presences(self.alice.receive(), "subscribe"), [("bob@localhost", "alice@localhost")]
        )
        self.alice.presence(type="subscribed", to="bob@localhost")
        [push] = pushes(self.alice.receive())
        self.assertEqual(state(push), ("bob@localhost", "both", None))
        received = self.bob.receive()
        [push] = pushes(received)
        self.assertEqual(state(push), ("alice@localhost", "both", None))
        self.assertEqual(presences(received), [("alice@localhost/desk", "bob@localhost")])

    def test_subscribeWhenSubscribed(self):
        """
        A request to a contact the user is already subscribed to changes
        nothing and does not bother the contact.
        """
        self.subscribe(self.alice, self.bob, "bob", "alice")
        self.alice.presence(type="subscribe", to="bob@localhost")
        self.assertEqual(pushes(self.alice.receive()), [])
        self.assertEqual(self.bob.receive(), [])
        self.assertEqual(self.items(self.alice), {"bob@localhost": ("to", None)})

    def test_unsubscribeFromBoth(self):
        """
        Unsubscribing turns C{both} into C{from} for the user and C{to} for
        the contact, who gets the C{unsubscribe}; the user gets unavailable
        presence from the contact.
        """
        self.befriend("alice", "bob")
        self.alice.presence(type="unsubscribe", to="bob@localhost")
        received = self.alice.receive()
        [push] = pushes(received)
        self.assertEqual(state(push), ("bob@localhost", "from", None))
        self.assertEqual(
            presences(received, "unavailable"), [("bob@localhost/phone", "alice@localhost")]
        )
        received = self.bob.receive()
        [push] = pushes(received)
        self.assertEqual(state(push), ("alice@localhost", "to", None))
        self.assertEqual(presences(received, "unsubscribe"), [("alice@localhost", "bob@localhost")])

    def test_cancelFromBoth(self):
        """
        Cancelling the contact's subscription turns C{both} into C{to} for
        the user and C{from} for the contact, who gets the C{unsubscribed}
        and unavailable presence from the user's resources.
        """
        self.befriend("alice", "bob")
        self.alice.presence(type="unsubscribed", to="bob@localhost")
        [push] = pushes(self.alice.receive())
        self.assertEqual(state(push), ("bob@localhost", "to", None))
        received = self.bob.receive()
        [push] = pushes(received)
        self.assertEqual(state(push), ("alice@localhost", "from", None))
        self.assertEqual(
            presences(received, "unsubscribed"), [("alice@localhost", "bob@localhost")]
        )
        self.assertEqual(
            presences(received, "unavailable"), [("alice@localhost/desk", "bob@localhost")]
        )

    def test_unsubscribeFromTo(self):
        """
        Unsubscribing from C{to} leaves C{none} on both sides.
        """
        self.subscribe(self.alice, self.bob, "bob", "alice")
        self.alice.presence(type="unsubscribe", to="bob@localhost")
        self.assertEqual(self.items(self.alice), {"bob@localhost": ("none", None)})
        self.assertEqual(self.items(self.bob), {"alice@localhost": ("none", None)})

    def test_cancelPendingRequest(self):
        """
        Unsubscribing while the request is pending withdraws it: the ask
        is cleared and the contact no longer has it pending.
        """
        self.alice.presence(type="subscribe", to="bob@localhost")
        self.alice.receive()
        self.bob.receive()
        self.alice.presence(type="unsubscribe", to="bob@localhost")
        [push] = pushes(self.alice.receive())
        self.assertEqual(state(push), ("bob@localhost", "none", None))
        self.assertEqual(
            presences(self.bob.receive(), "unsubscribe"), [("alice@localhost", "bob@localhost")]
        )
        self.assertIsNone(self.server.storage.rosterItem("bob", "localhost", "alice@localhost"))

    def test_deny(self):
        """
        Denying a request clears the user's ask and tells the user, and
        leaves nothing pending for the contact.
        """
        self.alice.presence(type="subscribe", to="bob@localhost")
        self.alice.receive()
        self.bob.receive()
        self.bob.presence(type="unsubscribed", to="alice@localhost")
        self.assertEqual(pushes(self.bob.receive()), [])
        received = self.alice.receive()
        [push] = pushes(received)
        self.assertEqual(state(push), ("bob@localhost", "none", None))
        self.assertEqual(
            presences(received, "unsubscribed"), [("bob@localhost", "alice@localhost")]
        )
        self.assertIsNone(self.server.storage.rosterItem("bob", "localhost", "alice@localhost"))

    def test_pendingDeliveredLater(self):
        """
        A request to an offline contact is kept and delivered, with its
        status, when the contact next sends initial presence, and again
        on each initial presence until answered.
        """
        self.alice.presence(b"<status>It's Alice</status>", type="subscribe", to="carol@localhost")
        self.alice.receive()
        carol = self.connect("carol", "laptop")
        self.assertEqual(carol.receive(), [])
        carol.presence()
        [request] = [s for s in carol.receive() if s.getAttribute("type") == "subscribe"]
        self.assertEqual((request["from"], request["to"]), ("alice@localhost", "carol@localhost"))
        self.assertEqual(str(request.status), "It's Alice")
        other = self.connect("carol", "other")
        other.presence()
        self.assertEqual(
            presences(other.receive(), "subscribe"), [("alice@localhost", "carol@localhost")]
        )
        other.presence(type="subscribed", to="alice@localhost")
        third = self.connect("carol", "third")
        third.presence()
        self.assertEqual(presences(third.receive(), "subscribe"), [])

    def test_pendingNotRepeated(self):
        """
        A request already pending is not delivered to the contact again.
        """
        self.alice.presence(type="subscribe", to="bob@localhost")
        self.bob.receive()
        self.alice.presence(type="subscribe", to="bob@localhost")
        self.assertEqual(self.bob.receive(), [])

    def test_preApproval(self):
        """
        Approving before any request is a pre-approval: it is pushed with
        C{approved='true'}, not sent, and the contact's later request is
        approved at once.
        """
        self.bob.presence(type="subscribed", to="alice@localhost")
        [push] = pushes(self.bob.receive())
        self.assertEqual(state(push), ("alice@localhost", "none", None))
        self.assertEqual(push["approved"], "true")
        self.assertEqual(self.alice.receive(), [])
        self.alice.presence(type="subscribe", to="bob@localhost")
        received = self.alice.receive()
        self.assertEqual(
            [state(p) for p in pushes(received)],
            [("bob@localhost", "none", "subscribe"), ("bob@localhost", "to", None)],
        )
        self.assertEqual(presences(received), [("bob@localhost/phone", "alice@localhost")])
        received = self.bob.receive()
        [push] = pushes(received)
        self.assertEqual(state(push), ("alice@localhost", "from", None))
        self.assertIsNone(push.getAttribute("approved"))
        self.assertEqual(presences(received, "subscribe"), [])

    def test_cancelPreApproval(self):
        """
        C{unsubscribed} after a pre-approval cancels it.
        """
        self.bob.presence(type="subscribed", to="alice@localhost")
        self.bob.receive()
        self.bob.presence(type="unsubscribed", to="alice@localhost")
        [push] = pushes(self.bob.receive())
        self.assertIsNone(push.getAttribute("approved"))
        self.assertEqual(self.alice.receive(), [])

    def test_removeCancelsBoth(self):
        """
        Removing a contact with a mutual subscription sends it
        C{unsubscribe} and C{unsubscribed}, and unavailable presence.
        """
        self.befriend("alice", "bob")
        received = self.rosterSet(self.alice, b"<item jid='bob@localhost' subscription='remove'/>")
        self.assertEqual([state(p) for p in pushes(received)], [("bob@localhost", "remove", None)])
        received = self.bob.receive()
        self.assertEqual(
            [state(p) for p in pushes(received)],
            [("alice@localhost", "from", None), ("alice@localhost", "none", None)],
        )
        self.assertEqual(
            presences(received, "unsubscribed"), [("alice@localhost", "bob@localhost")]
        )
        self.assertEqual(presences(received, "unsubscribe"), [("alice@localhost", "bob@localhost")])
        self.assertEqual(
            presences(received, "unavailable"), [("alice@localhost/desk", "bob@localhost")]
        )
        self.assertEqual(self.items(self.bob), {"alice@localhost": ("none", None)})

    def test_removeDeniesPending(self):
        """
        Removing a contact whose request is pending denies it.
        """
        self.alice.presence(type="subscribe", to="bob@localhost")
        self.alice.receive()
        self.bob.receive()
        self.rosterSet(self.bob, b"<item jid='alice@localhost'/>")
        self.rosterSet(self.bob, b"<item jid='alice@localhost' subscription='remove'/>")
        self.assertEqual(self.items(self.alice), {"bob@localhost": ("none", None)})

    def test_subscribeUnknownAccount(self):
        """
        A request to an account that does not exist is kept pending on the
        user's side and silently ignored on the other.
        """
        self.alice.presence(type="subscribe", to="nobody@localhost")
        received = self.alice.receive()
        self.assertEqual(
            [state(p) for p in pushes(received)], [("nobody@localhost", "none", "subscribe")]
        )
        self.assertEqual(presences(received, "unsubscribed"), [])

    def test_subscribeRemoteDomain(self):
        """
        A request to an unreachable domain comes back as
        C{remote-server-not-found} and leaves the roster alone.
        """
        self.alice.presence(type="subscribe", to="someone@example.org")
        [error] = self.alice.receive()
        self.assertEqual(error["type"], "error")
        self.assertEqual(errorCondition(error), "remote-server-not-found")
        self.assertEqual(self.items(self.alice), {})

    def test_subscriptionPersists(self):
        """
        Subscription states are in the database: a new session sees them.
        """
        self.subscribe(self.alice, self.bob, "bob", "alice")
        again = self.connect("alice", "again")
        self.assertEqual(self.items(again), {"bob@localhost": ("to", None)})


class PresenceTests(IMTestCase):
    """
    Presence broadcast, probes and directed presence (RFC 6121 section 4).
    """

    def test_initialPresenceProbes(self):
        """
        A user's initial presence is reflected, goes to subscribed
        contacts, and the user at once receives the presence of the
        contacts it is subscribed to.
        """
        self.befriend("alice", "bob")
        bob = self.online("bob", "phone", b"<show>away</show>")
        alice = self.connect("alice", "desk")
        self.rosterGet(alice)
        alice.presence(b"<status>here</status>")
        received = alice.receive()
        self.assertEqual(
            presences(received),
            [
                ("alice@localhost/desk", "alice@localhost/desk"),
                ("bob@localhost/phone", "alice@localhost/desk"),
            ],
        )
        [bobs] = [p for p in received if p["from"] == "bob@localhost/phone"]
        self.assertEqual(str(bobs.show), "away")
        self.assertEqual(bobs.delay.uri, NS_DELAY)
        [got] = bob.receive()
        self.assertEqual((got["from"], got["to"]), ("alice@localhost/desk", "bob@localhost"))
        self.assertEqual(str(got.status), "here")

    def test_initialPresenceNotToStrangers(self):
        """
        Presence goes to no one who is not subscribed, and probes reveal
        nothing of contacts the user is not subscribed to.
        """
        self.befriend("alice", "bob", "from")
        bob = self.online("bob", "phone")
        carol = self.online("carol")
        alice = self.connect("alice", "desk")
        alice.presence()
        self.assertEqual(
            presences(alice.receive()), [("alice@localhost/desk", "alice@localhost/desk")]
        )
        self.assertEqual(presences(bob.receive()), [("alice@localhost/desk", "bob@localhost")])
        self.assertEqual(carol.receive(), [])

    def test_broadcast(self):
        """
        Each later presence goes to the subscribed contacts and the user's
        own resources.
        """
        self.befriend("alice", "bob")
        bob = self.online("bob", "phone")
        alice = self.online("alice", "desk")
        phone = self.online("alice", "phone")
        alice.receive()
        bob.receive()
        alice.presence(b"<show>dnd</show>")
        self.assertEqual(presences(bob.receive()), [("alice@localhost/desk", "bob@localhost")])
        [own] = phone.receive()
        self.assertEqual((own["from"], str(own.show)), ("alice@localhost/desk", "dnd"))
        self.assertEqual(
            presences(alice.receive()), [("alice@localhost/desk", "alice@localhost/desk")]
        )
        [session] = [
            s for s in self.server.sessionsOf(JID("alice@localhost")) if s.jid.resource == "desk"
        ]
        self.assertEqual(str(session.presence.show), "dnd")

    def test_otherResources(self):
        """
        A new resource gets the presence of the account's other available
        resources, which get its presence.
        """
        desk = self.online("alice", "desk", b"<status>at desk</status>")
        phone = self.connect("alice", "phone")
        phone.presence()
        received = phone.receive()
        self.assertIn(("alice@localhost/desk", "alice@localhost/phone"), presences(received))
        self.assertEqual(
            presences(desk.receive()), [("alice@localhost/phone", "alice@localhost/desk")]
        )

    def test_unavailable(self):
        """
        Unavailable presence goes to the subscribers, clears the session's
        presence, and a later available presence is initial again.
        """
        self.befriend("alice", "bob")
        bob = self.online("bob", "phone")
        alice = self.online("alice", "desk")
        bob.receive()
        alice.presence(b"<status>bye</status>", type="unavailable")
        [gone] = bob.receive()
        self.assertEqual((gone["from"], gone["type"]), ("alice@localhost/desk", "unavailable"))
        self.assertEqual(str(gone.status), "bye")
        [session] = self.server.sessionsOf(JID("alice@localhost"))
        self.assertFalse(session.available)
        alice.receive()
        alice.presence()
        self.assertIn(("bob@localhost/phone", "alice@localhost/desk"), presences(alice.receive()))

    def test_disconnect(self):
        """
        When a user's connection drops, the subscribers and the user's other
        resources get unavailable presence.
        """
        self.befriend("alice", "bob")
        bob = self.online("bob", "phone")
        alice = self.online("alice", "desk")
        phone = self.online("alice", "phone")
        bob.receive()
        alice.receive()
        self.drop(alice)
        self.assertEqual(
            presences(bob.receive(), "unavailable"), [("alice@localhost/desk", "bob@localhost")]
        )
        self.assertEqual(
            presences(phone.receive(), "unavailable"),
            [("alice@localhost/desk", "alice@localhost/phone")],
        )

    def test_disconnectNotAvailable(self):
        """
        A session that never sent presence leaves without a broadcast.
        """
        self.befriend("alice", "bob")
        bob = self.online("bob", "phone")
        alice = self.connect("alice", "desk")
        self.drop(alice)
        self.assertEqual(bob.receive(), [])

    def test_probeAnswersLastUnavailable(self):
        """
        A probe to a contact with no available resource is answered with
        its last unavailable presence, or plain unavailable presence.
        """
        self.befriend("alice", "bob")
        alice = self.online("alice", "desk")
        self.assertEqual(presences(alice.receive(), "unavailable"), [])
        bob = self.connect("bob", "phone")
        bob.presence()
        self.assertEqual(presences(bob.receive(), "unavailable"), [])
        self.drop(alice)
        self.drop(bob)
        bob = self.connect("bob", "phone")
        bob.presence()
        [last] = [p for p in bob.receive() if p.getAttribute("type") == "unavailable"]
        self.assertEqual(
            (last["from"], last["to"]), ("alice@localhost/desk", "bob@localhost/phone")
        )
        self.assertEqual(last.delay.uri, NS_DELAY)

    def test_probeNeverSeen(self):
        """
        A probe to a contact that was never available in this run gets
        unavailable presence from its bare JID.
        """
        self.befriend("alice", "bob")
        bob = self.connect("bob", "phone")
        bob.presence()
        self.assertEqual(
            presences(bob.receive(), "unavailable"), [("alice@localhost", "bob@localhost/phone")]
        )

    def test_probeNotSubscribed(self):
        """
        A probe from an entity the contact does not count as subscribed
        gets C{unsubscribed} instead of presence, which clears the prober's
        stale subscription.
        """
        self.online("alice", "desk")
        self.server.storage.saveRosterItem(
            "carol", "localhost", RosterRow("alice@localhost", None, "to")
        )
        carol = self.connect("carol")
        self.rosterGet(carol)
        carol.presence()
        received = carol.receive()
        self.assertEqual(presences(received), [("carol@localhost/test", "carol@localhost/test")])
        self.assertEqual(
            presences(received, "unsubscribed"), [("alice@localhost", "carol@localhost")]
        )
        self.assertEqual([state(p) for p in pushes(received)], [("alice@localhost", "none", None)])

    def test_probeUnknownAccount(self):
        """
        A probe to an account that does not exist gets C{unsubscribed},
        which clears the prober's subscription.
        """
        self.server.storage.saveRosterItem(
            "carol", "localhost", RosterRow("nobody@localhost", None, "to")
        )
        carol = self.online("carol")
        self.assertEqual(self.items(carol), {"nobody@localhost": ("none", None)})

    def test_presenceToUnknownAccount(self):
        """
        Directed presence to an account that does not exist is silently
        dropped.
        """
        carol = self.online("carol")
        carol.presence(to="nobody@localhost")
        self.assertEqual(carol.receive(), [])

    def test_directed(self):
        """
        Directed presence reaches an entity that is not subscribed, and
        unavailable follows it there when the session ends.
        """
        carol = self.online("carol", "laptop")
        alice = self.online("alice", "desk")
        alice.presence(b"<show>chat</show>", to="carol@localhost")
        [got] = carol.receive()
        self.assertEqual((got["from"], got["to"]), ("alice@localhost/desk", "carol@localhost"))
        self.drop(alice)
        self.assertEqual(
            presences(carol.receive(), "unavailable"), [("alice@localhost/desk", "carol@localhost")]
        )

    def test_directedWhileUnavailable(self):
        """
        Directed presence from a session that never broadcast presence is
        also followed by unavailable when the session ends.
        """
        carol = self.online("carol", "laptop")
        alice = self.connect("alice", "desk")
        alice.presence(to="carol@localhost/laptop")
        self.assertEqual(
            presences(carol.receive()), [("alice@localhost/desk", "carol@localhost/laptop")]
        )
        self.drop(alice)
        self.assertEqual(
            presences(carol.receive(), "unavailable"),
            [("alice@localhost/desk", "carol@localhost/laptop")],
        )

    def test_directedUnavailable(self):
        """
        Directed unavailable presence ends the directed presence: nothing
        more goes there on broadcast unavailable.
        """
        carol = self.online("carol", "laptop")
        alice = self.online("alice", "desk")
        alice.presence(to="carol@localhost")
        alice.presence(type="unavailable", to="carol@localhost")
        self.assertEqual(
            presences(carol.receive(), "unavailable"), [("alice@localhost/desk", "carol@localhost")]
        )
        alice.presence(type="unavailable")
        self.assertEqual(carol.receive(), [])

    def test_broadcastUnavailableToDirected(self):
        """
        Broadcast unavailable presence also goes to the entities that got
        directed presence, once, and clears the list.
        """
        self.befriend("alice", "bob")
        bob = self.online("bob", "phone")
        carol = self.online("carol", "laptop")
        alice = self.online("alice", "desk")
        alice.presence(to="carol@localhost")
        alice.presence(to="bob@localhost")
        bob.receive()
        carol.receive()
        alice.presence(type="unavailable")
        self.assertEqual(
            presences(carol.receive(), "unavailable"), [("alice@localhost/desk", "carol@localhost")]
        )
        self.assertEqual(
            presences(bob.receive(), "unavailable"), [("alice@localhost/desk", "bob@localhost")]
        )
        [session] = self.server.sessionsOf(JID("alice@localhost"))
        self.assertEqual(session.directed, set())

    def test_errorPresenceToFullJID(self):
        """
        Presence of type C{error} goes to the addressed resource only.
        """
        desk = self.online("alice", "desk")
        phone = self.online("alice", "phone")
        desk.receive()
        carol = self.online("carol")
        carol.send(
            b"<presence xmlns='jabber:client' type='error' to='alice@localhost/desk'>"
            b"<error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
            b"</presence>"
        )
        [error] = desk.receive()
        self.assertEqual((error["type"], error["from"]), ("error", "carol@localhost/test"))
        self.assertEqual(phone.receive(), [])

    def test_subscriptionTypeWithoutTo(self):
        """
        A subscription request without C{to} gets C{bad-request}.
        """
        alice = self.online("alice")
        alice.presence(type="subscribe")
        [error] = alice.receive()
        self.assertEqual(errorCondition(error), "bad-request")

    def test_unknownType(self):
        """
        Presence of an unknown type gets C{bad-request}.
        """
        alice = self.online("alice")
        alice.presence(type="bogus", to="bob@localhost")
        [error] = alice.receive()
        self.assertEqual(errorCondition(error), "bad-request")

    def test_priority(self):
        """
        The priority of the last available presence is the session's,
        clamped to -128..127; a resource with a negative one gets no
        messages to the bare JID.
        """
        alice = self.online("alice", "desk", b"<priority>-1</priority>")
        [session] = self.server.sessionsOf(JID("alice@localhost"))
        self.assertEqual(session.priority, -1)
        bob = self.online("bob")
        bob.message("alice@localhost", "hello")
        self.assertEqual(alice.receive(), [])
        alice.presence(b"<priority>500</priority>")
        self.assertEqual(session.priority, 127)
        alice.presence(b"<priority>high</priority>")
        self.assertEqual(session.priority, 0)
        alice.receive()
        bob.message("alice@localhost", "again")
        [message] = alice.receive()
        self.assertEqual(str(message.body), "again")

    def test_highestPriority(self):
        """
        A message to the bare JID goes to the resource with the highest
        priority.
        """
        desk = self.online("alice", "desk", b"<priority>5</priority>")
        phone = self.online("alice", "phone", b"<priority>1</priority>")
        desk.receive()
        bob = self.online("bob")
        bob.message("alice@localhost", "hello")
        self.assertEqual(len(desk.receive()), 1)
        self.assertEqual(phone.receive(), [])

    def test_sessionAvailableOnce(self):
        """
        C{session/available} fires once per session, on its first available
        presence with a non-negative priority.
        """
        alice = self.connect("alice", "desk")
        alice.presence(b"<priority>-5</priority>")
        self.assertEqual(self.available, [])
        alice.presence()
        alice.presence(b"<show>away</show>")
        alice.presence(type="unavailable")
        alice.presence()
        [session] = self.available
        self.assertEqual(session.jid, JID("alice@localhost/desk"))
        other = self.connect("alice", "phone")
        other.presence()
        self.assertEqual(len(self.available), 2)


class AnonymousTests(IMTestCase):
    """
    Rosters of throwaway ANONYMOUS accounts.
    """

    def setUp(self):
        self.clock = MemoryReactorClock()
        self.server = makeServer(self, self.clock, anonymous=True)
        installModules(self.server, ("roster", "presence"))

    def anonymous(self):
        """
        A client logged in with SASL ANONYMOUS.
        """
        client = C2SClient(self, self.server)
        client.open()
        client.send(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>")
        [success] = client.receive()
        self.assertEqual(success.name, "success")
        client.ws.send(OPEN_LOCALHOST)
        client.receive()
        [bound] = client.iq(b"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>", "set")
        client.jid = str(bound.bind.jid)
        return client

    def test_forgottenAtEnd(self):
        """
        When the last session of an anonymous account ends, its roster is
        deleted and its contacts' subscriptions are cancelled.
        """
        guest = self.anonymous()
        bare = JID(guest.jid).userhost()
        bob = self.online("bob", "phone")
        guest.presence(type="subscribe", to="bob@localhost")
        bob.presence(type="subscribed", to=bare)
        bob.receive()
        self.assertEqual(self.items(bob), {bare: ("from", None)})
        guest.ws.protocol.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(self.server.storage.roster(JID(bare).user, "localhost", True), [])
        self.assertEqual(self.items(bob), {bare: ("none", None)})


class ComponentTests(IMTestCase):
    """
    Presence between users and an attached component on another domain.
    """

    def setUp(self):
        IMTestCase.setUp(self)
        self.received = []
        self.server.components["muc.localhost"] = self.received.append

    def test_directedToComponent(self):
        """
        Directed presence reaches a component, and unavailable follows when
        the session ends, as a chat room needs.
        """
        alice = self.online("alice", "desk")
        alice.presence(to="room@muc.localhost/Alice")
        self.drop(alice)
        self.assertEqual(
            [(p["from"], p["to"], p.getAttribute("type")) for p in self.received],
            [
                ("alice@localhost/desk", "room@muc.localhost/Alice", None),
                ("alice@localhost/desk", "room@muc.localhost/Alice", "unavailable"),
            ],
        )

    def test_subscribeToComponent(self):
        """
        A subscription request to a component goes out from the bare JID,
        and the component's approval completes it.
        """
        alice = self.online("alice", "desk")
        alice.presence(type="subscribe", to="muc.localhost")
        [request] = self.received
        self.assertEqual((request["from"], request["to"]), ("alice@localhost", "muc.localhost"))
        self.server.route(
            parseStanza("<presence from='muc.localhost' to='alice@localhost' type='subscribed'/>")
        )
        self.assertEqual(self.items(alice), {"muc.localhost": ("to", None)})

    def test_presenceFromComponent(self):
        """
        Presence from a component to a bare JID reaches the available
        resources only.
        """
        desk = self.online("alice", "desk")
        quiet = self.connect("alice", "quiet")
        self.server.route(
            parseStanza("<presence from='room@muc.localhost/Bob' to='alice@localhost'/>")
        )
        self.assertEqual(presences(desk.receive()), [("room@muc.localhost/Bob", "alice@localhost")])
        self.assertEqual(quiet.receive(), [])
