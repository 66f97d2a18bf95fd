"""
Tests for entering, using and leaving rooms (L{xmppws.muc.occupants},
L{xmppws.muc.room}): XEP-0045 sections 7.1 to 7.7, 7.14 and 10.1, with
clients of the embedded server in memory.
"""

from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.trial import unittest

from tests.muchelpers import (
    NS_DELAY,
    NS_MUC_USER,
    NS_OCCUPANT_ID,
    MUCServer,
    child,
    errorCondition,
    item,
    ofKind,
    roomJID,
    statusCodes,
)


class CreateTests(unittest.TestCase):
    """
    The first to enter a room that does not exist creates it (XEP-0045
    section 10.1).
    """

    def setUp(self):
        self.muc = MUCServer(self)
        self.alice = self.muc.client("alice")

    def test_created(self):
        """
        The creator gets self-presence as owner and moderator with status
        codes 110 and 201, then an empty subject.
        """
        received = self.alice.join("lobby", "Alice")
        presence, subject = received
        self.assertEqual(presence["from"], roomJID("lobby", "Alice"))
        self.assertEqual(statusCodes(presence), {"110", "201"})
        self.assertEqual(
            item(presence),
            {"affiliation": "owner", "role": "moderator", "jid": "alice@localhost/test"},
        )
        self.assertEqual(subject["type"], "groupchat")
        self.assertEqual(subject["from"], roomJID("lobby"))
        self.assertEqual(str(child(subject, "jabber:client", "subject")), "")

    def test_locked(self):
        """
        Until its creator configures it, a new room refuses others with
        C{item-not-found}; an instant room (an empty submitted form)
        opens it.
        """
        self.alice.join("lobby", "Alice")
        bob = self.muc.client("bob")
        [error] = bob.join("lobby", "Bob")
        self.assertEqual(errorCondition(error), ("cancel", "item-not-found"))
        [result] = self.alice.owner("lobby", b"<x xmlns='jabber:x:data' type='submit'/>", "set")
        self.assertEqual(result["type"], "result")
        received = bob.join("lobby", "Bob")
        self.assertEqual(statusCodes(received[-2]), {"110"})

    def test_lockExpires(self):
        """
        A room whose creator never configures it opens by itself after
        the lock timeout.
        """
        self.alice.join("lobby", "Alice")
        self.muc.clock.advance(self.muc.muc.settings.lockTimeout)
        bob = self.muc.client("bob")
        received = bob.join("lobby", "Bob")
        self.assertEqual(statusCodes(received[-2]), {"110"})

    def test_noMUCExtension(self):
        """
        Presence without the MUC extension does not create a room: it gets
        C{item-not-found}.
        """
        self.alice.send(
            b"<presence xmlns='jabber:client' to='lobby@conference.localhost/Alice'/>"
        )
        [error] = self.alice.receive()
        self.assertEqual(errorCondition(error), ("cancel", "item-not-found"))
        self.assertIsNone(self.muc.room("lobby"))

    def test_noNickname(self):
        """
        A join request to the room's bare JID gets C{jid-malformed}.
        """
        self.alice.create("lobby", "Alice")
        bob = self.muc.client("bob")
        bob.send(
            b"<presence xmlns='jabber:client' to='lobby@conference.localhost'>"
            b"<x xmlns='http://jabber.org/protocol/muc'/></presence>"
        )
        [error] = bob.receive()
        self.assertEqual(errorCondition(error), ("modify", "jid-malformed"))

    def test_roomNamePrepared(self):
        """
        Room names are prepared as localparts: C{LOBBY} is C{lobby}.
        """
        self.alice.join("LOBBY", "Alice")
        self.assertIsNotNone(self.muc.room("lobby"))

    def test_invisibleNickname(self):
        """
        A nickname of spaces only is refused with C{not-allowed}.
        """
        [error] = self.alice.join("lobby", "   ")
        self.assertEqual(errorCondition(error), ("modify", "not-allowed"))
        self.assertIsNone(self.muc.room("lobby"))

    def test_roomsPerUser(self):
        """
        Beyond C{maxRoomsPerUser} owned rooms, creating one more gets
        C{not-allowed}.
        """
        muc = MUCServer(self, maxRoomsPerUser=2)
        alice = muc.client("alice")
        alice.create("one", "A")
        alice.create("two", "A")
        [error] = alice.join("three", "A")
        self.assertEqual(errorCondition(error), ("cancel", "not-allowed"))
        self.assertIsNone(muc.room("three"))

    def test_passwordOnCreation(self):
        """
        A password given when creating a room protects it.
        """
        self.alice.join("lobby", "Alice", password="s3cret")
        self.assertEqual(self.muc.room("lobby").config.password, "s3cret")


class EnterTests(unittest.TestCase):
    """
    Entering an existing room (XEP-0045 section 7.2).
    """

    def setUp(self):
        self.muc = MUCServer(self)
        self.alice = self.muc.client("alice")
        self.alice.create("lobby", "Alice")
        self.bob = self.muc.client("bob")

    def test_order(self):
        """
        A newcomer gets the others' presence, then its own (110), then the
        subject; the others get its presence.
        """
        received = self.bob.join("lobby", "Bob")
        self.assertEqual(
            [(e.name, e.getAttribute("from")) for e in received],
            [
                ("presence", roomJID("lobby", "Alice")),
                ("presence", roomJID("lobby", "Bob")),
                ("message", roomJID("lobby")),
            ],
        )
        self.assertEqual(statusCodes(received[1]), {"110"})
        [seen] = self.alice.receive()
        self.assertEqual(seen["from"], roomJID("lobby", "Bob"))
        self.assertEqual(item(seen)["role"], "participant")

    def test_semiAnonymous(self):
        """
        In a semi-anonymous room (the default) moderators see real JIDs,
        participants do not; everyone sees their own.
        """
        received = self.bob.join("lobby", "Bob")
        self.assertNotIn("jid", item(received[0]))
        self.assertEqual(item(received[1])["jid"], "bob@localhost/test")
        [seen] = self.alice.receive()
        self.assertEqual(item(seen)["jid"], "bob@localhost/test")

    def test_nonAnonymous(self):
        """
        In a non-anonymous room everyone sees real JIDs and the newcomer is
        warned with status code 100.
        """
        self.alice.configure("lobby", whois="anyone")
        self.alice.receive()
        received = self.bob.join("lobby", "Bob")
        self.assertEqual(item(received[0])["jid"], "alice@localhost/test")
        self.assertEqual(statusCodes(received[1]), {"100", "110"})

    def test_occupantId(self):
        """
        Presence carries a XEP-0421 occupant id, the same each time a user
        enters, different for different users and rooms.
        """
        alice, first = self.bob.join("lobby", "Bob")[:2]
        self.bob.leave("lobby", "Bob")
        again = self.bob.join("lobby", "Robert")[1]
        ids = [child(p, NS_OCCUPANT_ID, "occupant-id")["id"] for p in (first, again)]
        self.assertEqual(ids[0], ids[1])
        self.assertNotEqual(child(alice, NS_OCCUPANT_ID, "occupant-id")["id"], ids[0])
        self.bob.create("other", "Bob")
        elsewhere = self.muc.room("other").occupantId(self.muc.room("lobby").occupants["Robert"].bare)
        self.assertNotEqual(elsewhere, ids[0])

    def test_forgedOccupantId(self):
        """
        An occupant id or MUC data in a client's presence is replaced, not
        reflected.
        """
        self.bob.join(
            "lobby",
            "Bob",
            body=b"<occupant-id xmlns='urn:xmpp:occupant-id:0' id='forged'/>"
            b"<x xmlns='http://jabber.org/protocol/muc#user'><item role='moderator'/></x>",
        )
        [seen] = self.alice.receive()
        ids = list(seen.elements(NS_OCCUPANT_ID, "occupant-id"))
        self.assertEqual(len(ids), 1)
        self.assertNotEqual(ids[0]["id"], "forged")
        self.assertEqual(len(list(seen.elements(NS_MUC_USER, "x"))), 1)
        self.assertEqual(item(seen)["role"], "participant")

    def test_presencePayload(self):
        """
        The newcomer's show and status reach the others.
        """
        self.bob.join("lobby", "Bob", body=b"<show>away</show><status>lunch</status>")
        [seen] = self.alice.receive()
        self.assertEqual(str(child(seen, "jabber:client", "show")), "away")
        self.assertEqual(str(child(seen, "jabber:client", "status")), "lunch")

    def test_nicknameConflict(self):
        """
        A nickname another user holds gets C{conflict}.
        """
        [error] = self.bob.join("lobby", "Alice")
        self.assertEqual(errorCondition(error), ("cancel", "conflict"))
        self.assertEqual(error["from"], roomJID("lobby", "Alice"))

    def test_nicknameCase(self):
        """
        Nicknames are case-sensitive (resourceparts): C{alice} is not
        C{Alice}.
        """
        received = self.bob.join("lobby", "alice")
        self.assertEqual(statusCodes(received[1]), {"110"})

    def test_multipleSessions(self):
        """
        A second session of the same user may take the same nickname; the
        others see one occupant and both sessions get its messages.
        """
        self.bob.join("lobby", "Bob")
        self.alice.receive()
        phone = self.muc.client("bob", "phone")
        received = phone.join("lobby", "Bob")
        self.assertEqual(statusCodes(received[-2]), {"110"})
        self.assertEqual(self.alice.receive(), [])
        self.alice.say("lobby", "to both")
        self.assertEqual(len(ofKind(self.bob.receive(), "message")), 1)
        self.assertEqual(len(ofKind(phone.receive(), "message")), 1)
        phone.leave("lobby", "Bob")
        self.assertEqual(self.alice.receive(), [])
        self.assertIn("Bob", self.muc.room("lobby").occupants)

    def test_maxUsers(self):
        """
        A full room refuses newcomers with C{service-unavailable}, but lets
        admins and owners in.
        """
        self.alice.configure("lobby", maxusers="2")
        self.bob.join("lobby", "Bob")
        carol = self.muc.client("carol")
        [error] = carol.join("lobby", "Carol")
        self.assertEqual(errorCondition(error), ("wait", "service-unavailable"))
        self.alice.admin(
            "lobby", b"<item affiliation='admin' jid='carol@localhost'/>"
        )
        received = carol.join("lobby", "Carol")
        self.assertEqual(statusCodes(received[-2]), {"110"})

    def test_password(self):
        """
        A password-protected room refuses a missing or wrong password with
        C{not-authorized} and admits the right one.
        """
        self.alice.configure("lobby", roomsecret="s3cret")
        [error] = self.bob.join("lobby", "Bob")
        self.assertEqual(errorCondition(error), ("auth", "not-authorized"))
        [error] = self.bob.join("lobby", "Bob", password="wrong")
        self.assertEqual(errorCondition(error), ("auth", "not-authorized"))
        received = self.bob.join("lobby", "Bob", password="s3cret")
        self.assertEqual(statusCodes(received[-2]), {"110"})

    def test_membersOnly(self):
        """
        A members-only room refuses others with C{registration-required}.
        """
        self.alice.configure("lobby", membersonly="1")
        [error] = self.bob.join("lobby", "Bob")
        self.assertEqual(errorCondition(error), ("auth", "registration-required"))
        self.alice.admin("lobby", b"<item affiliation='member' jid='bob@localhost'/>")
        received = self.bob.join("lobby", "Bob")
        self.assertEqual(item(received[-2])["affiliation"], "member")

    def test_banned(self):
        """
        An outcast is refused with C{forbidden}, as are the users of a
        banned domain.
        """
        self.alice.admin("lobby", b"<item affiliation='outcast' jid='bob@localhost'/>")
        [error] = self.bob.join("lobby", "Bob")
        self.assertEqual(errorCondition(error), ("auth", "forbidden"))
        self.alice.admin("lobby", b"<item affiliation='none' jid='bob@localhost'/>")
        self.alice.admin("lobby", b"<item affiliation='outcast' jid='localhost'/>", id="a2")
        carol = self.muc.client("carol")
        [error] = carol.join("lobby", "Carol")
        self.assertEqual(errorCondition(error), ("auth", "forbidden"))

    def test_reservedNickname(self):
        """
        A nickname reserved by a member gets C{conflict} for others.
        """
        self.alice.admin(
            "lobby", b"<item affiliation='member' jid='carol@localhost' nick='Carol'/>"
        )
        [error] = self.bob.join("lobby", "Carol")
        self.assertEqual(errorCondition(error), ("cancel", "conflict"))

    def test_moderated(self):
        """
        In a moderated room newcomers without affiliation are visitors.
        """
        self.alice.configure("lobby", moderatedroom="true")
        received = self.bob.join("lobby", "Bob")
        self.assertEqual(item(received[-2])["role"], "visitor")


class HistoryTests(unittest.TestCase):
    """
    Discussion history on entering (XEP-0045 sections 7.2.14 and 7.2.15).
    """

    def setUp(self):
        self.muc = MUCServer(self)
        self.alice = self.muc.client("alice")
        self.alice.create("lobby", "Alice")
        for n in range(5):
            self.muc.clock.advance(60)
            self.alice.say("lobby", "message %d" % (n,), id="m%d" % (n,))
        self.muc.clock.advance(60)
        self.bob = self.muc.client("bob")

    def bodies(self, received):
        return [
            str(child(m, "jabber:client", "body"))
            for m in ofKind(received, "message")
            if child(m, "jabber:client", "body") is not None
        ]

    def test_default(self):
        """
        Without a history request, a newcomer gets the room's default
        history, after the presence and before the subject, stamped with
        a delay from the room.
        """
        received = self.bob.join("lobby", "Bob")
        self.assertEqual(self.bodies(received), ["message %d" % (n,) for n in range(5)])
        history = ofKind(received, "message")
        self.assertEqual(received.index(history[0]), 2)
        delay = child(history[0], NS_DELAY, "delay")
        self.assertEqual(delay["from"], roomJID("lobby"))
        self.assertEqual(delay["stamp"], "1970-01-01T00:01:00Z")
        self.assertIsNotNone(child(received[-1], "jabber:client", "subject"))

    def test_maxstanzas(self):
        """
        C{maxstanzas} limits the number of messages.
        """
        received = self.bob.join("lobby", "Bob", history=b"maxstanzas='2'")
        self.assertEqual(self.bodies(received), ["message 3", "message 4"])

    def test_none(self):
        """
        C{maxchars='0'} asks for no history.
        """
        received = self.bob.join("lobby", "Bob", history=b"maxchars='0'")
        self.assertEqual(self.bodies(received), [])

    def test_maxchars(self):
        """
        C{maxchars} sends the most recent complete messages that fit.
        """
        size = len(self.muc.room("lobby").history[-1].xml)
        received = self.bob.join("lobby", "Bob", history=b"maxchars='%d'" % (2 * size + 1,))
        self.assertEqual(self.bodies(received), ["message 3", "message 4"])

    def test_seconds(self):
        """
        C{seconds} sends the messages of the last seconds only.
        """
        received = self.bob.join("lobby", "Bob", history=b"seconds='150'")
        self.assertEqual(self.bodies(received), ["message 3", "message 4"])

    def test_since(self):
        """
        C{since} sends the messages since a time.
        """
        received = self.bob.join(
            "lobby", "Bob", history=b"since='1970-01-01T00:04:00Z'"
        )
        self.assertEqual(self.bodies(received), ["message 3", "message 4"])

    def test_badValues(self):
        """
        Unreadable history limits are ignored.
        """
        received = self.bob.join("lobby", "Bob", history=b"maxstanzas='many' since='soon'")
        self.assertEqual(len(self.bodies(received)), 5)

    def test_length(self):
        """
        A room keeps no more messages than its history length.
        """
        self.alice.configure("lobby", historylength="3")
        received = self.bob.join("lobby", "Bob", history=b"maxstanzas='10'")
        self.assertEqual(self.bodies(received), ["message 2", "message 3", "message 4"])

    def test_quota(self):
        """
        A history length above the service's C{maxHistory} is refused
        with C{not-acceptable}.
        """
        [error] = self.alice.configure("lobby", historylength="100000")
        self.assertEqual(errorCondition(error), ("modify", "not-acceptable"))

    def test_noStore(self):
        """
        Messages with a no-store hint, or without a body, are not kept.
        """
        self.alice.say("lobby", "secret", extra=b"<no-store xmlns='urn:xmpp:hints'/>")
        self.alice.send(
            b"<message xmlns='jabber:client' type='groupchat' to='lobby@conference.localhost'>"
            b"<composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
        )
        self.alice.receive()
        self.assertEqual(len(self.muc.room("lobby").history), 5)


class ChangeTests(unittest.TestCase):
    """
    Nickname changes (XEP-0045 section 7.6), availability changes (7.7),
    leaving (7.14) and stray presence.
    """

    def setUp(self):
        self.muc = MUCServer(self)
        self.alice = self.muc.client("alice")
        self.alice.create("lobby", "Alice")
        self.bob = self.muc.client("bob")
        self.bob.join("lobby", "Bob")
        self.alice.receive()

    def test_nickChange(self):
        """
        A nickname change is announced as unavailable from the old nickname
        with 303 naming the new one, then available from the new one.
        """
        self.bob.send(
            b"<presence xmlns='jabber:client' to='lobby@conference.localhost/Robert'/>"
        )
        gone, back = self.alice.receive()
        self.assertEqual(gone["from"], roomJID("lobby", "Bob"))
        self.assertEqual(gone["type"], "unavailable")
        self.assertEqual(statusCodes(gone), {"303"})
        self.assertEqual(item(gone)["nick"], "Robert")
        self.assertEqual(back["from"], roomJID("lobby", "Robert"))
        own = self.bob.receive()
        self.assertEqual([statusCodes(p) for p in own], [{"303", "110"}, {"110"}])
        self.assertEqual(set(self.muc.room("lobby").occupants), {"Alice", "Robert"})

    def test_nickChangeConflict(self):
        """
        Changing to a nickname in use gets C{conflict} and changes nothing.
        """
        self.bob.send(
            b"<presence xmlns='jabber:client' to='lobby@conference.localhost/Alice'/>"
        )
        [error] = self.bob.receive()
        self.assertEqual(errorCondition(error), ("cancel", "conflict"))
        self.assertEqual(set(self.muc.room("lobby").occupants), {"Alice", "Bob"})

    def test_availability(self):
        """
        Presence to one's occupant JID is reflected to everyone.
        """
        self.bob.send(
            b"<presence xmlns='jabber:client' to='lobby@conference.localhost/Bob'>"
            b"<show>dnd</show></presence>"
        )
        [seen] = self.alice.receive()
        self.assertEqual(str(child(seen, "jabber:client", "show")), "dnd")
        [own] = self.bob.receive()
        self.assertEqual(statusCodes(own), {"110"})

    def test_rejoin(self):
        """
        A join request from a session already in the room gets everything
        a newcomer gets (XEP-0045 section 7.2.1).
        """
        received = self.bob.join("lobby", "Bob")
        self.assertEqual(
            [e.name for e in received], ["presence", "presence", "message"]
        )
        self.assertEqual(statusCodes(received[1]), {"110"})

    def test_leave(self):
        """
        Leaving is announced with role C{none}, the status text passed on,
        and self-presence with 110.
        """
        [own] = self.bob.leave("lobby", "Bob", status="bye")
        self.assertEqual(own["type"], "unavailable")
        self.assertEqual(statusCodes(own), {"110"})
        [seen] = self.alice.receive()
        self.assertEqual(seen["type"], "unavailable")
        self.assertEqual(item(seen)["role"], "none")
        self.assertEqual(str(child(seen, "jabber:client", "status")), "bye")
        self.assertNotIn("Bob", self.muc.room("lobby").occupants)

    def test_unavailableFromStranger(self):
        """
        Unavailable presence from someone not in the room is ignored.
        """
        carol = self.muc.client("carol")
        self.assertEqual(carol.leave("lobby", "Bob"), [])
        self.assertIn("Bob", self.muc.room("lobby").occupants)

    def test_desynchronised(self):
        """
        Presence without the MUC extension from someone not in the room
        gets an unavailable self-presence with 110, 307 and 333.
        """
        carol = self.muc.client("carol")
        carol.send(b"<presence xmlns='jabber:client' to='lobby@conference.localhost/Carol'/>")
        [kick] = carol.receive()
        self.assertEqual(kick["type"], "unavailable")
        self.assertEqual(statusCodes(kick), {"110", "307", "333"})

    def test_sessionEnds(self):
        """
        When a client's session ends, the server's unavailable presence
        takes it out of the room.
        """
        self.bob.ws.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertNotIn("Bob", self.muc.room("lobby").occupants)
        [seen] = self.alice.receive()
        self.assertEqual(seen["type"], "unavailable")

    def test_temporaryRoomGoes(self):
        """
        A temporary room goes away when its last occupant leaves.
        """
        self.bob.leave("lobby", "Bob")
        self.alice.leave("lobby", "Alice")
        self.assertIsNone(self.muc.room("lobby"))

    def test_persistentRoomStays(self):
        """
        A persistent room stays when empty.
        """
        self.alice.configure("lobby", persistentroom="1")
        self.bob.leave("lobby", "Bob")
        self.alice.leave("lobby", "Alice")
        self.assertIsNotNone(self.muc.room("lobby"))

    def test_presenceError(self):
        """
        An error presence from an occupant's session takes it out with 333.
        """
        self.bob.send(
            b"<presence xmlns='jabber:client' type='error' to='lobby@conference.localhost/Bob'>"
            b"<error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
            b"</presence>"
        )
        [seen] = self.alice.receive()
        self.assertEqual(statusCodes(seen), {"333"})
        self.assertNotIn("Bob", self.muc.room("lobby").occupants)

    def test_probe(self):
        """
        An occupant's probe of another occupant gets its presence; a
        stranger's gets C{not-acceptable}.
        """
        self.bob.send(
            b"<presence xmlns='jabber:client' type='probe' "
            b"to='lobby@conference.localhost/Alice'/>"
        )
        [presence] = self.bob.receive()
        self.assertEqual(presence["from"], roomJID("lobby", "Alice"))
        carol = self.muc.client("carol")
        carol.send(
            b"<presence xmlns='jabber:client' type='probe' "
            b"to='lobby@conference.localhost/Alice'/>"
        )
        [error] = carol.receive()
        self.assertEqual(errorCondition(error), ("cancel", "not-acceptable"))

    def test_shutdown(self):
        """
        When the service stops, every occupant gets unavailable presence
        with status code 332.
        """
        self.muc.stop()
        presences = ofKind(self.bob.receive(), "presence", type="unavailable")
        self.assertIn({"110", "332"}, [statusCodes(p) for p in presences])


class MoreChangeTests(unittest.TestCase):
    """
    Less common presence cases.
    """

    def setUp(self):
        self.muc = MUCServer(self)
        self.alice = self.muc.client("alice")
        self.alice.create("lobby", "Alice")

    def test_nickChangeMultipleSessions(self):
        """
        A nickname shared by two sessions cannot be changed from one of
        them: C{not-acceptable}.
        """
        other = self.muc.client("alice", "other")
        other.join("lobby", "Alice")
        self.alice.receive()
        other.send(b"<presence xmlns='jabber:client' to='lobby@conference.localhost/Alicia'/>")
        [error] = other.receive()
        self.assertEqual(errorCondition(error), ("cancel", "not-acceptable"))

    def test_presenceToRoomJID(self):
        """
        Presence an occupant sends to the room's bare JID counts as
        presence to its occupant JID; unavailable there leaves.
        """
        bob = self.muc.client("bob")
        bob.join("lobby", "Bob")
        self.alice.receive()
        bob.send(
            b"<presence xmlns='jabber:client' type='unavailable' "
            b"to='lobby@conference.localhost'/>"
        )
        [seen] = self.alice.receive()
        self.assertEqual((seen["from"], seen["type"]), (roomJID("lobby", "Bob"), "unavailable"))

    def test_secondSessionSeesHistory(self):
        """
        A user's second session entering under the same nickname gets the
        history and the subject like any newcomer.
        """
        self.alice.say("lobby", "before")
        other = self.muc.client("alice", "other")
        received = other.join("lobby", "Alice")
        bodies = [str(child(m, "jabber:client", "body")) for m in ofKind(received, "message")
                  if child(m, "jabber:client", "body") is not None]
        self.assertEqual(bodies, ["before"])
        self.assertIsNotNone(child(received[-1], "jabber:client", "subject"))
