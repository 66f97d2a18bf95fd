"""
Tests for persistent rooms (L{xmppws.muc.storage} and the service's use
of it): what survives a restart of the group chat service and what does
not, and a failing store.
"""

from twisted.internet import defer, reactor
from twisted.trial import unittest

from tests.muchelpers import MUCServer, child, errorCondition, item, ofKind, roomJID
from xmppws.c2s.asyncdb import AsyncDatabase
from xmppws.c2s import jid
from xmppws.muc.config import RoomConfig
from xmppws.muc.room import Affiliation, HistoryEntry, Room
from xmppws.muc.storage import SCHEMA, RoomStore


class RestartTests(unittest.TestCase):
    """
    A persistent room, its configuration, affiliations, subject and
    history survive a restart; temporary rooms and occupants do not.
    """

    def setUp(self):
        self.muc = MUCServer(self)
        self.alice = self.muc.client("alice")
        self.alice.create("lobby", "Alice")
        self.alice.configure(
            "lobby", persistentroom="1", roomname="The Lobby", membersonly="1", publicroom="1"
        )
        self.alice.admin(
            "lobby",
            b"<item affiliation='member' jid='bob@localhost' nick='Bob'/>"
            b"<item affiliation='outcast' jid='carol@localhost'><reason>spam</reason></item>",
        )
        self.alice.send(
            b"<message xmlns='jabber:client' type='groupchat' to='lobby@conference.localhost'>"
            b"<subject>Spells</subject></message>"
        )
        self.alice.say("lobby", "remember me", id="r1")
        self.alice.create("temporary", "Alice")
        self.alice.receive()

    def restart(self):
        self.muc.stop()
        self.muc.start()
        return self.muc.room("lobby")

    def test_room(self):
        """
        The room comes back with its configuration, and no occupants.
        """
        room = self.restart()
        self.assertEqual(room.config.name, "The Lobby")
        self.assertTrue(room.config.persistent and room.config.membersOnly)
        self.assertEqual(room.occupants, {})
        self.assertIsNone(self.muc.room("temporary"))

    def test_affiliations(self):
        """
        Affiliations, reserved nicknames and reasons come back, and apply.
        """
        room = self.restart()
        self.assertEqual(room.affiliations["alice@localhost"].affiliation, "owner")
        self.assertEqual(room.affiliations["bob@localhost"].nick, "Bob")
        self.assertEqual(room.affiliations["carol@localhost"].reason, "spam")
        carol = self.muc.client("carol")
        [error] = carol.join("lobby", "Carol")
        self.assertEqual(errorCondition(error), ("auth", "forbidden"))
        bob = self.muc.client("bob")
        received = bob.join("lobby", "Bob")
        self.assertEqual(item(ofKind(received, "presence")[-1])["affiliation"], "member")

    def test_historyAndSubject(self):
        """
        The history (with its stanza ids) and the subject come back.
        """
        before = self.muc.room("lobby").history[-1].stanzaId
        self.restart()
        bob = self.muc.client("bob")
        received = bob.join("lobby", "Bob")
        messages = ofKind(received, "message")
        self.assertEqual(str(child(messages[0], "jabber:client", "body")), "remember me")
        self.assertEqual(child(messages[0], "urn:xmpp:sid:0", "stanza-id")["id"], before)
        self.assertEqual(str(child(messages[-1], "jabber:client", "subject")), "Spells")

    def test_occupantIdStable(self):
        """
        Occupant ids stay the same across a restart.
        """
        before = self.muc.room("lobby").occupantId(jid.parse("alice@localhost"))
        room = self.restart()
        self.assertEqual(room.occupantId(jid.parse("alice@localhost")), before)

    def test_listed(self):
        """
        The public room is listed again after the restart.
        """
        self.restart()
        self.alice.receive()
        [result] = self.alice.iq(
            b"<query xmlns='http://jabber.org/protocol/disco#items'/>", to="conference.localhost"
        )
        query = child(result, "http://jabber.org/protocol/disco#items", "query")
        self.assertEqual([i["jid"] for i in query.elements()], [roomJID("lobby")])

    def test_madeTemporary(self):
        """
        A room made temporary is forgotten by storage.
        """
        self.alice.configure("lobby", persistentroom="0")
        self.assertIsNone(self.restart())

    def test_historyTrimmed(self):
        """
        Storage keeps no more messages than the history length.
        """
        for n in range(5):
            self.alice.say("lobby", "n%d" % (n,), id="n%d" % (n,))
        self.alice.configure("lobby", historylength="2")
        room = self.restart()
        self.assertEqual([e.nick for e in room.history], ["Alice", "Alice"])
        self.assertEqual(len(room.history), 2)


class FailingStoreTests(unittest.TestCase):
    """
    When storage fails, the owner is told with C{internal-server-error}.
    """

    def test_configure(self):
        """
        A configuration that cannot be stored is answered with
        C{internal-server-error}.
        """
        muc = MUCServer(self)
        alice = muc.client("alice")
        alice.create("lobby", "Alice")

        def fail(*args):
            return defer.fail(OSError("disk full"))

        self.patch(muc.muc.store, "storeRoom", fail)
        [error] = ofKind(alice.configure("lobby", persistentroom="1"), "iq")
        self.assertEqual(errorCondition(error), ("wait", "internal-server-error"))
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)


class ThreadedStoreTests(unittest.TestCase):
    """
    L{RoomStore} on a real database thread.
    """

    @defer.inlineCallbacks
    def test_roundTrip(self):
        """
        A room stored and loaded back has its configuration, affiliations
        and history.
        """
        store = RoomStore(AsyncDatabase(reactor, self.mktemp() + "/muc.sqlite", SCHEMA))
        self.addCleanup(store.close)
        room = Room(jid.parse("lobby@conference.example.org"), RoomConfig(persistent=True))
        room.affiliations["a@example.org"] = Affiliation("owner", "A", None)
        room.history.append(HistoryEntry("id1", 12.5, "A", "a@example.org", "<message/>"))
        yield store.storeRoom("conference.example.org", room)
        yield store.addHistory(
            "conference.example.org", room,
            HistoryEntry("id2", 13.0, "A", "a@example.org", "<message/>"),
        )
        [record] = yield store.load("conference.example.org")
        self.assertEqual(record.name, "lobby")
        self.assertTrue(record.config["persistent"])
        self.assertEqual(record.affiliations, [("a@example.org", "owner", "A", None)])
        self.assertEqual([h[0] for h in record.history], ["id1", "id2"])
        self.assertEqual(record.salt, room.salt)
        self.assertEqual((yield store.load("elsewhere.example.org")), [])
        yield store.deleteRoom("conference.example.org", "lobby")
        self.assertEqual((yield store.load("conference.example.org")), [])
