"""
Tests for messages in rooms (L{xmppws.muc.messages}): groupchat with
XEP-0359 stanza ids and XEP-0421 occupant ids, the subject, private
messages, invitations, voice requests, and iqs to occupants including
XEP-0410 self-pings.
"""

from twisted.trial import unittest

from tests.muchelpers import (
    NS_MUC_USER,
    NS_OCCUPANT_ID,
    NS_SID,
    MUCServer,
    child,
    errorCondition,
    item,
    ofKind,
    roomJID,
    statusCodes,
)
from xmppws.c2s import jid


def body(stanza):
    element = child(stanza, "jabber:client", "body")
    return None if element is None else str(element)


class GroupchatTests(unittest.TestCase):
    """
    Messages to all occupants (XEP-0045 section 7.4).
    """

    def setUp(self):
        self.muc = MUCServer(self)
        self.alice = self.muc.client("alice")
        self.alice.create("lobby", "Alice")
        self.bob = self.muc.client("bob")
        self.bob.join("lobby", "Bob")
        self.alice.receive()

    def test_reflected(self):
        """
        A groupchat message goes to every occupant, the sender included,
        from the sender's occupant JID, with the sender's id.
        """
        [own] = self.alice.say("lobby", "hello", id="hello1")
        [seen] = self.bob.receive()
        for message in (own, seen):
            self.assertEqual(message["from"], roomJID("lobby", "Alice"))
            self.assertEqual(message["type"], "groupchat")
            self.assertEqual(message["id"], "hello1")
            self.assertEqual(body(message), "hello")
        self.assertEqual(own["to"], "alice@localhost/test")
        self.assertEqual(seen["to"], "bob@localhost/test")

    def test_stanzaId(self):
        """
        The room stamps a XEP-0359 stanza id by the room, the same in
        every copy and in the history.
        """
        [own] = self.alice.say("lobby", "hello")
        [seen] = self.bob.receive()
        ids = [child(m, NS_SID, "stanza-id") for m in (own, seen)]
        self.assertEqual(ids[0]["by"], roomJID("lobby"))
        self.assertEqual(ids[0]["id"], ids[1]["id"])
        self.assertEqual(self.muc.room("lobby").history[-1].stanzaId, ids[0]["id"])

    def test_forgedIds(self):
        """
        A stanza id claiming to be the room's and an occupant id sent by a
        client are replaced; another entity's stanza id and an origin id
        stay.
        """
        self.alice.say(
            "lobby",
            "hello",
            extra=b"<stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='lobby@conference.localhost'/>"
            b"<stanza-id xmlns='urn:xmpp:sid:0' id='other' by='example.org'/>"
            b"<origin-id xmlns='urn:xmpp:sid:0' id='mine'/>"
            b"<occupant-id xmlns='urn:xmpp:occupant-id:0' id='forged'/>",
        )
        [seen] = self.bob.receive()
        ids = {e["by"]: e["id"] for e in seen.elements(NS_SID, "stanza-id")}
        self.assertEqual(set(ids), {roomJID("lobby"), "example.org"})
        self.assertNotEqual(ids[roomJID("lobby")], "forged")
        self.assertEqual(child(seen, NS_SID, "origin-id")["id"], "mine")
        [occupantId] = list(seen.elements(NS_OCCUPANT_ID, "occupant-id"))
        self.assertEqual(
            occupantId["id"],
            self.muc.room("lobby").occupantId(self.muc.room("lobby").occupants["Alice"].bare),
        )

    def test_noIdGiven(self):
        """
        A message without an id is reflected with one the room makes, the
        same in every copy.
        """
        self.alice.send(
            b"<message xmlns='jabber:client' type='groupchat' "
            b"to='lobby@conference.localhost'><body>x</body></message>"
        )
        [own] = self.alice.receive()
        [seen] = self.bob.receive()
        self.assertTrue(own["id"])
        self.assertEqual(own["id"], seen["id"])

    def test_notOccupant(self):
        """
        A groupchat message from someone not in the room gets
        C{not-acceptable} and goes nowhere.
        """
        carol = self.muc.client("carol")
        [error] = carol.say("lobby", "let me in")
        self.assertEqual(errorCondition(error), ("cancel", "not-acceptable"))
        self.assertEqual(body(error), "let me in")
        self.assertEqual(self.bob.receive(), [])

    def test_visitor(self):
        """
        A visitor in a moderated room gets C{forbidden}.
        """
        self.alice.configure("lobby", moderatedroom="1")
        carol = self.muc.client("carol")
        carol.join("lobby", "Carol")
        [error] = carol.say("lobby", "may I?")
        self.assertEqual(errorCondition(error), ("auth", "forbidden"))

    def test_tooBig(self):
        """
        A message larger than the service's C{maxMessageSize} gets
        C{policy-violation}.
        """
        muc = MUCServer(self, maxMessageSize=500)
        alice = muc.client("alice")
        alice.create("lobby", "Alice")
        [error] = alice.say("lobby", "x" * 600)
        self.assertEqual(errorCondition(error), ("modify", "policy-violation"))
        [own] = alice.say("lobby", "short")
        self.assertEqual(body(own), "short")

    def test_payloadNamespaces(self):
        """
        Extension payloads are passed on in their own namespaces.
        """
        self.alice.say(
            "lobby",
            "hi",
            extra=b"<active xmlns='http://jabber.org/protocol/chatstates'/>",
        )
        [seen] = self.bob.receive()
        self.assertIsNotNone(child(seen, "http://jabber.org/protocol/chatstates", "active"))

    def test_messageErrorKicks(self):
        """
        A delivery error from an occupant's session takes it out of the
        room with 333; other errors do not.
        """
        self.bob.send(
            b"<message xmlns='jabber:client' type='error' to='lobby@conference.localhost/Alice'>"
            b"<error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
            b"</error></message>"
        )
        self.assertIn("Bob", self.muc.room("lobby").occupants)
        self.bob.send(
            b"<message xmlns='jabber:client' type='error' to='lobby@conference.localhost'>"
            b"<error type='cancel'><recipient-unavailable "
            b"xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
        )
        self.assertNotIn("Bob", self.muc.room("lobby").occupants)
        [seen] = self.alice.receive()
        self.assertEqual(statusCodes(seen), {"333"})

    def test_normalMessageToRoom(self):
        """
        A message to the room that is no groupchat, invitation or voice
        request gets C{bad-request}.
        """
        self.alice.send(
            b"<message xmlns='jabber:client' type='chat' to='lobby@conference.localhost'>"
            b"<body>hi</body></message>"
        )
        [error] = self.alice.receive()
        self.assertEqual(errorCondition(error), ("modify", "bad-request"))

    def test_missingRoom(self):
        """
        A message to a room that does not exist gets C{item-not-found}.
        """
        [error] = self.alice.say("nowhere", "anyone?")
        self.assertEqual(errorCondition(error), ("cancel", "item-not-found"))


class SubjectTests(unittest.TestCase):
    """
    The room subject (XEP-0045 sections 7.2.16 and 8.1).
    """

    def setUp(self):
        self.muc = MUCServer(self)
        self.alice = self.muc.client("alice")
        self.alice.create("lobby", "Alice")
        self.bob = self.muc.client("bob")
        self.bob.join("lobby", "Bob")
        self.alice.receive()

    def setSubject(self, client, text):
        client.send(
            b"<message xmlns='jabber:client' type='groupchat' to='lobby@conference.localhost'"
            b" id='s1'><subject>%s</subject></message>" % (text.encode(),)
        )
        return client.receive()

    def test_moderator(self):
        """
        A moderator's subject goes to everyone from its occupant JID and is
        sent to newcomers last, with a delay stamp.
        """
        self.muc.clock.advance(30)
        [own] = self.setSubject(self.alice, "Spells")
        [seen] = self.bob.receive()
        self.assertEqual(str(child(seen, "jabber:client", "subject")), "Spells")
        self.assertEqual(seen["from"], roomJID("lobby", "Alice"))
        carol = self.muc.client("carol")
        last = carol.join("lobby", "Carol")[-1]
        self.assertEqual(str(child(last, "jabber:client", "subject")), "Spells")
        self.assertEqual(last["from"], roomJID("lobby", "Alice"))
        self.assertEqual(child(last, "urn:xmpp:delay", "delay")["stamp"], "1970-01-01T00:00:30Z")

    def test_participant(self):
        """
        A participant may not change the subject unless the room allows it.
        """
        [error] = self.setSubject(self.bob, "Mine")
        self.assertEqual(errorCondition(error), ("auth", "forbidden"))
        self.alice.configure("lobby", changesubject="1")
        self.bob.receive()
        [own] = self.setSubject(self.bob, "Mine")
        self.assertEqual(self.muc.room("lobby").subject, "Mine")

    def test_withBody(self):
        """
        A message with a subject and a body is a message, not a subject
        change.
        """
        self.bob.send(
            b"<message xmlns='jabber:client' type='groupchat' to='lobby@conference.localhost'>"
            b"<subject>s</subject><body>b</body></message>"
        )
        [own] = self.bob.receive()
        self.assertEqual(body(own), "b")
        self.assertEqual(self.muc.room("lobby").subject, "")

    def test_clear(self):
        """
        An empty subject clears it.
        """
        self.setSubject(self.alice, "Spells")
        self.setSubject(self.alice, "")
        self.assertEqual(self.muc.room("lobby").subject, "")


class PrivateMessageTests(unittest.TestCase):
    """
    Private messages (XEP-0045 section 7.5).
    """

    def setUp(self):
        self.muc = MUCServer(self)
        self.alice = self.muc.client("alice")
        self.alice.create("lobby", "Alice")
        self.bob = self.muc.client("bob")
        self.bob.join("lobby", "Bob")
        self.alice.receive()

    def test_delivered(self):
        """
        A private message reaches the recipient from the sender's occupant
        JID, marked with C{muc#user} and an occupant id.
        """
        self.assertEqual(self.bob.private("lobby", "Alice", "psst"), [])
        [message] = self.alice.receive()
        self.assertEqual(message["from"], roomJID("lobby", "Bob"))
        self.assertEqual(message["type"], "chat")
        self.assertEqual(body(message), "psst")
        self.assertIsNotNone(child(message, NS_MUC_USER, "x"))
        self.assertIsNotNone(child(message, NS_OCCUPANT_ID, "occupant-id"))

    def test_noSuchOccupant(self):
        """
        A private message to a nickname not in the room gets
        C{item-not-found}.
        """
        [error] = self.bob.private("lobby", "Nobody", "hello?")
        self.assertEqual(errorCondition(error), ("cancel", "item-not-found"))

    def test_groupchatType(self):
        """
        A private message of type groupchat gets C{bad-request}.
        """
        [error] = self.bob.private("lobby", "Alice", "hi", type="groupchat")
        self.assertEqual(errorCondition(error), ("modify", "bad-request"))

    def test_notOccupant(self):
        """
        A private message from someone not in the room gets
        C{not-acceptable}.
        """
        carol = self.muc.client("carol")
        [error] = carol.private("lobby", "Alice", "hi")
        self.assertEqual(errorCondition(error), ("cancel", "not-acceptable"))

    def test_restricted(self):
        """
        A room allowing private messages from moderators only refuses
        others with C{not-allowed}.
        """
        self.alice.configure("lobby", allowpm="moderators")
        self.bob.receive()
        [error] = self.bob.private("lobby", "Alice", "hi")
        self.assertEqual(errorCondition(error), ("cancel", "not-allowed"))
        self.assertEqual(self.alice.private("lobby", "Bob", "ok"), [])
        self.assertEqual(len(self.bob.receive()), 1)

    def test_carbonsSkipIt(self):
        """
        Private messages from a room are not carbon-copied (they carry
        C{muc#user}).
        """
        other = self.muc.client("alice", "other")
        other.iq(b"<enable xmlns='urn:xmpp:carbons:2'/>", type="set")
        self.bob.private("lobby", "Alice", "just for one")
        self.assertEqual(other.receive(), [])


class InvitationTests(unittest.TestCase):
    """
    Mediated invitations and declines (XEP-0045 section 7.8.2).
    """

    def setUp(self):
        self.muc = MUCServer(self)
        self.alice = self.muc.client("alice")
        self.alice.create("lobby", "Alice")
        self.bob = self.muc.client("bob")

    def invite(self, sender, to, reason=b"come"):
        sender.send(
            b"<message xmlns='jabber:client' to='lobby@conference.localhost'>"
            b"<x xmlns='http://jabber.org/protocol/muc#user'><invite to='%s'>"
            b"<reason>%s</reason></invite></x></message>" % (to.encode(), reason)
        )
        return sender.receive()

    def test_invite(self):
        """
        The invitee gets the invitation from the room, naming the inviter,
        with the reason, the password and the older conference element.
        """
        self.alice.configure("lobby", roomsecret="pw")
        self.invite(self.alice, "bob@localhost")
        [message] = self.bob.receive()
        self.assertEqual(message["from"], roomJID("lobby"))
        invite = child(child(message, NS_MUC_USER, "x"), NS_MUC_USER, "invite")
        # In a semi-anonymous room the inviter is named by its occupant JID.
        self.assertEqual(invite["from"], roomJID("lobby", "Alice"))
        self.assertEqual(str(child(invite, NS_MUC_USER, "reason")), "come")
        self.assertEqual(str(child(child(message, NS_MUC_USER, "x"), NS_MUC_USER, "password")), "pw")
        self.assertEqual(child(message, "jabber:x:conference", "x")["jid"], roomJID("lobby"))
        self.assertIn("invited you", body(message))

    def test_inviteNonAnonymous(self):
        """
        In a non-anonymous room the invitation names the inviter's real JID.
        """
        self.alice.configure("lobby", whois="anyone")
        self.invite(self.alice, "bob@localhost")
        [message] = self.bob.receive()
        invite = child(child(message, NS_MUC_USER, "x"), NS_MUC_USER, "invite")
        self.assertEqual(invite["from"], "alice@localhost/test")

    def test_membersOnly(self):
        """
        Inviting to a members-only room makes the invitee a member; only
        admins may, unless members may invite.
        """
        self.alice.configure("lobby", membersonly="1")
        self.invite(self.alice, "bob@localhost")
        room = self.muc.room("lobby")
        self.assertEqual(room.affiliation(jid.parse("bob@localhost")), "member")
        self.bob.receive()
        self.bob.join("lobby", "Bob")
        [error] = self.invite(self.bob, "carol@localhost")
        self.assertEqual(errorCondition(error), ("auth", "forbidden"))

    def test_badInvitee(self):
        """
        An invitation to a malformed JID gets C{jid-malformed}.
        """
        [error] = self.invite(self.alice, "@@")
        self.assertEqual(errorCondition(error), ("modify", "jid-malformed"))

    def test_decline(self):
        """
        A decline reaches the inviter from the room.
        """
        self.bob.send(
            b"<message xmlns='jabber:client' to='lobby@conference.localhost'>"
            b"<x xmlns='http://jabber.org/protocol/muc#user'><decline to='alice@localhost/test'>"
            b"<reason>busy</reason></decline></x></message>"
        )
        [message] = self.alice.receive()
        decline = child(child(message, NS_MUC_USER, "x"), NS_MUC_USER, "decline")
        self.assertEqual(decline["from"], "bob@localhost/test")
        self.assertEqual(message["from"], roomJID("lobby"))


class VoiceRequestTests(unittest.TestCase):
    """
    Voice requests (XEP-0045 sections 7.13 and 8.6).
    """

    def setUp(self):
        self.muc = MUCServer(self)
        self.alice = self.muc.client("alice")
        self.alice.create("lobby", "Alice")
        self.alice.configure("lobby", moderatedroom="1")
        self.bob = self.muc.client("bob")
        self.bob.join("lobby", "Bob")
        self.alice.receive()

    def test_request(self):
        """
        A visitor's request reaches the moderators as a form; a moderator's
        approval gives the visitor voice.
        """
        self.bob.send(
            b"<message xmlns='jabber:client' to='lobby@conference.localhost'>"
            b"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
            b"<value>http://jabber.org/protocol/muc#request</value></field>"
            b"<field var='muc#role'><value>participant</value></field></x></message>"
        )
        [request] = self.alice.receive()
        form = child(request, "jabber:x:data", "x")
        fields = {f["var"]: str(f.value) for f in form.elements("jabber:x:data", "field")}
        self.assertEqual(fields["muc#roomnick"], "Bob")
        self.alice.send(
            b"<message xmlns='jabber:client' to='lobby@conference.localhost'>"
            b"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
            b"<value>http://jabber.org/protocol/muc#request</value></field>"
            b"<field var='muc#roomnick'><value>Bob</value></field>"
            b"<field var='muc#request_allow'><value>true</value></field></x></message>"
        )
        self.assertEqual(self.muc.room("lobby").occupants["Bob"].role, "participant")
        presences = ofKind(self.bob.receive(), "presence")
        self.assertEqual(item(presences[-1])["role"], "participant")


class OccupantIqTests(unittest.TestCase):
    """
    Iqs to occupant JIDs: XEP-0410 self-pings, and requests passed on.
    """

    def setUp(self):
        self.muc = MUCServer(self)
        self.alice = self.muc.client("alice")
        self.alice.create("lobby", "Alice")
        self.bob = self.muc.client("bob")
        self.bob.join("lobby", "Bob")
        self.alice.receive()

    def ping(self, client, nick):
        return client.iq(
            b"<ping xmlns='urn:xmpp:ping'/>", to=roomJID("lobby", nick), id="ping1"
        )

    def test_selfPing(self):
        """
        A self-ping of a joined occupant is answered by the room.
        """
        [result] = self.ping(self.bob, "Bob")
        self.assertEqual(result["type"], "result")
        self.assertEqual(result["from"], roomJID("lobby", "Bob"))

    def test_selfPingNotJoined(self):
        """
        A self-ping from someone not in the room gets C{not-acceptable},
        also when the room does not exist.
        """
        carol = self.muc.client("carol")
        [error] = self.ping(carol, "Carol")
        self.assertEqual(errorCondition(error), ("cancel", "not-acceptable"))
        [error] = carol.iq(
            b"<ping xmlns='urn:xmpp:ping'/>", to=roomJID("gone", "Carol"), id="ping2"
        )
        self.assertEqual(errorCondition(error), ("cancel", "not-acceptable"))

    def test_proxied(self):
        """
        Another iq to an occupant reaches it from the asker's occupant JID
        with a fresh id, and its answer comes back to the asker with the
        original id.
        """
        self.bob.iq(b"<query xmlns='jabber:iq:version'/>", to=roomJID("lobby", "Alice"), id="v1")
        [request] = self.alice.receive()
        self.assertEqual(request["from"], roomJID("lobby", "Bob"))
        self.assertNotEqual(request["id"], "v1")
        self.alice.send(
            b"<iq xmlns='jabber:client' type='result' to='%s' id='%s'>"
            b"<query xmlns='jabber:iq:version'><name>x</name></query></iq>"
            % (request["from"].encode(), request["id"].encode())
        )
        [answer] = self.bob.receive()
        self.assertEqual(answer["id"], "v1")
        self.assertEqual(answer["type"], "result")
        self.assertEqual(answer["from"], roomJID("lobby", "Alice"))

    def test_forgedAnswer(self):
        """
        An answer from anyone but the occupant asked is dropped.
        """
        self.bob.iq(b"<query xmlns='jabber:iq:version'/>", to=roomJID("lobby", "Alice"), id="v1")
        [request] = self.alice.receive()
        carol = self.muc.client("carol")
        carol.join("lobby", "Carol")
        carol.send(
            b"<iq xmlns='jabber:client' type='result' to='%s' id='%s'/>"
            % (request["from"].encode(), request["id"].encode())
        )
        self.assertEqual(ofKind(self.bob.receive(), "iq"), [])

    def test_noSuchOccupant(self):
        """
        An iq to a nickname not in the room gets C{item-not-found}.
        """
        [error] = self.bob.iq(
            b"<query xmlns='jabber:iq:version'/>", to=roomJID("lobby", "Nobody")
        )
        self.assertEqual(errorCondition(error), ("cancel", "item-not-found"))
