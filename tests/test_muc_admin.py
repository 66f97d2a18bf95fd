"""
Tests for moderation and affiliations (L{xmppws.muc.admin}): XEP-0045
sections 7.10 (registration), 8 (moderator use cases) and 9 (admin use
cases), and the owner and admin lists of section 10.
"""

from twisted.trial import unittest

from tests.muchelpers import (
    NS_MUC_ADMIN,
    MUCServer,
    child,
    errorCondition,
    item,
    ofKind,
    roomJID,
    statusCodes,
)


def items(result):
    query = child(result, NS_MUC_ADMIN, "query")
    return [dict(i.attributes) for i in query.elements(NS_MUC_ADMIN, "item")]


class RoleTests(unittest.TestCase):
    """
    Kicking, voice and moderator status (XEP-0045 sections 8.2 to 8.5,
    9.6, 9.7).
    """

    def setUp(self):
        self.muc = MUCServer(self)
        self.alice = self.muc.client("alice")
        self.alice.create("lobby", "Alice")
        self.bob = self.muc.client("bob")
        self.bob.join("lobby", "Bob")
        self.carol = self.muc.client("carol")
        self.carol.join("lobby", "Carol")
        self.alice.receive()
        self.bob.receive()

    def test_kick(self):
        """
        A moderator kicks an occupant: it gets unavailable presence with
        110 and 307, the actor and the reason; the others get 307; the
        moderator a result.
        """
        [result] = ofKind(
            self.alice.admin(
                "lobby", b"<item nick='Carol' role='none'><reason>Out!</reason></item>"
            ),
            "iq",
        )
        self.assertEqual(result["type"], "result")
        [gone] = self.carol.receive()
        self.assertEqual(gone["type"], "unavailable")
        self.assertEqual(statusCodes(gone), {"110", "307"})
        x = child(gone, "http://jabber.org/protocol/muc#user", "x")
        self.assertEqual(x.item.actor["nick"], "Alice")
        self.assertEqual(str(x.item.reason), "Out!")
        [seen] = self.bob.receive()
        self.assertEqual(statusCodes(seen), {"307"})
        self.assertNotIn("Carol", self.muc.room("lobby").occupants)

    def test_kickByParticipant(self):
        """
        A participant may not kick: C{forbidden}.
        """
        [error] = self.bob.admin("lobby", b"<item nick='Carol' role='none'/>")
        self.assertEqual(errorCondition(error), ("auth", "forbidden"))

    def test_kickHigherAffiliation(self):
        """
        A moderator may not kick someone of a higher affiliation:
        C{not-allowed}.
        """
        self.alice.admin("lobby", b"<item affiliation='admin' jid='bob@localhost'/>")
        [error] = ofKind(self.bob.admin("lobby", b"<item nick='Alice' role='none'/>"), "iq")
        self.assertEqual(errorCondition(error), ("cancel", "not-allowed"))

    def test_kickMissing(self):
        """
        Kicking a nickname not in the room gets C{item-not-found}.
        """
        [error] = self.alice.admin("lobby", b"<item nick='Nobody' role='none'/>")
        self.assertEqual(errorCondition(error), ("cancel", "item-not-found"))

    def test_voice(self):
        """
        In a moderated room a moderator grants and revokes voice; everyone
        sees the new role.
        """
        self.alice.configure("lobby", moderatedroom="1")
        self.alice.admin("lobby", b"<item nick='Bob' role='visitor'/>")
        self.assertEqual(self.muc.room("lobby").occupants["Bob"].role, "visitor")
        self.bob.receive()
        [error] = self.bob.say("lobby", "hi")
        self.assertEqual(errorCondition(error), ("auth", "forbidden"))
        self.alice.admin("lobby", b"<item nick='Bob' role='participant'/>", id="a2")
        seen = ofKind(self.carol.receive(), "presence", roomJID("lobby", "Bob"))
        self.assertEqual([item(p)["role"] for p in seen], ["visitor", "participant"])

    def test_moderatorNeedsAdmin(self):
        """
        Only admins and owners grant the moderator role; a moderator who is
        only a member gets C{not-allowed}.
        """
        self.alice.admin("lobby", b"<item affiliation='member' jid='bob@localhost'/>")
        self.alice.admin("lobby", b"<item nick='Bob' role='moderator'/>", id="a2")
        self.assertEqual(self.muc.room("lobby").occupants["Bob"].role, "moderator")
        [error] = ofKind(
            self.bob.admin("lobby", b"<item nick='Carol' role='moderator'/>"), "iq"
        )
        self.assertEqual(errorCondition(error), ("cancel", "not-allowed"))

    def test_moderatorSeesJIDs(self):
        """
        In a semi-anonymous room, a new moderator gets everyone's presence
        again, now with real JIDs.
        """
        self.alice.admin("lobby", b"<item nick='Bob' role='moderator'/>")
        again = ofKind(self.bob.receive(), "presence", roomJID("lobby", "Carol"))
        self.assertEqual(item(again[-1])["jid"], "carol@localhost/test")

    def test_bothAttributes(self):
        """
        An item with both a role and an affiliation gets C{bad-request}.
        """
        [error] = self.alice.admin(
            "lobby", b"<item nick='Bob' role='none' affiliation='none'/>"
        )
        self.assertEqual(errorCondition(error), ("modify", "bad-request"))

    def test_unknownRole(self):
        """
        An unknown role gets C{not-acceptable}.
        """
        [error] = self.alice.admin("lobby", b"<item nick='Bob' role='king'/>")
        self.assertEqual(errorCondition(error), ("modify", "not-acceptable"))

    def test_roleList(self):
        """
        A moderator gets the list of participants with their real JIDs; a
        participant gets C{forbidden}.
        """
        [result] = self.alice.admin("lobby", b"<item role='participant'/>", type="get")
        self.assertEqual(
            items(result),
            [
                {"nick": "Bob", "role": "participant", "affiliation": "none",
                 "jid": "bob@localhost/test"},
                {"nick": "Carol", "role": "participant", "affiliation": "none",
                 "jid": "carol@localhost/test"},
            ],
        )
        [error] = self.bob.admin("lobby", b"<item role='participant'/>", type="get")
        self.assertEqual(errorCondition(error), ("auth", "forbidden"))


class AffiliationTests(unittest.TestCase):
    """
    Bans, membership, admins and owners (XEP-0045 sections 9 and 10).
    """

    def setUp(self):
        self.muc = MUCServer(self)
        self.alice = self.muc.client("alice")
        self.alice.create("lobby", "Alice")
        self.bob = self.muc.client("bob")
        self.bob.join("lobby", "Bob")
        self.alice.receive()

    def test_ban(self):
        """
        Banning an occupant removes it with 301 and keeps it out.
        """
        [result] = ofKind(
            self.alice.admin(
                "lobby",
                b"<item affiliation='outcast' jid='bob@localhost'><reason>spam</reason></item>",
            ),
            "iq",
        )
        self.assertEqual(result["type"], "result")
        [gone] = self.bob.receive()
        self.assertEqual(statusCodes(gone), {"110", "301"})
        self.assertEqual(item(gone)["affiliation"], "outcast")
        [error] = self.bob.join("lobby", "Bob")
        self.assertEqual(errorCondition(error), ("auth", "forbidden"))

    def test_banList(self):
        """
        Admins and owners get the ban list with the reasons.
        """
        self.alice.admin(
            "lobby", b"<item affiliation='outcast' jid='carol@localhost'><reason>spam</reason></item>"
        )
        [result] = self.alice.admin("lobby", b"<item affiliation='outcast'/>", type="get")
        self.assertEqual(items(result), [{"affiliation": "outcast", "jid": "carol@localhost"}])
        reason = child(result, NS_MUC_ADMIN, "query").item.reason
        self.assertEqual(str(reason), "spam")

    def test_membership(self):
        """
        Granting membership to an occupant is announced with the new
        affiliation; revoking it in a members-only room removes it with 321.
        """
        self.alice.admin("lobby", b"<item affiliation='member' jid='bob@localhost'/>")
        [own] = self.bob.receive()
        self.assertEqual(item(own)["affiliation"], "member")
        self.alice.configure("lobby", membersonly="1")
        self.bob.receive()
        self.alice.admin("lobby", b"<item affiliation='none' jid='bob@localhost'/>", id="a2")
        [gone] = ofKind(self.bob.receive(), "presence")
        self.assertEqual(statusCodes(gone), {"110", "321"})

    def test_memberList(self):
        """
        The member list names the reserved nicknames.
        """
        self.alice.admin(
            "lobby",
            b"<item affiliation='member' jid='carol@localhost' nick='Carol'/>"
            b"<item affiliation='member' jid='bob@localhost'/>",
        )
        [result] = self.alice.admin("lobby", b"<item affiliation='member'/>", type="get")
        self.assertEqual(
            items(result),
            [
                {"affiliation": "member", "jid": "bob@localhost"},
                {"affiliation": "member", "jid": "carol@localhost", "nick": "Carol"},
            ],
        )

    def test_absentAnnounced(self):
        """
        An affiliation change of someone not in the room is announced to the
        moderators.
        """
        received = self.alice.admin("lobby", b"<item affiliation='member' jid='carol@localhost'/>")
        [announcement] = ofKind(received, "message")
        self.assertEqual(item(announcement), {"affiliation": "member", "jid": "carol@localhost"})
        self.assertEqual(self.bob.receive(), [])

    def test_participantMayNot(self):
        """
        A participant may not change affiliations: C{forbidden}.
        """
        [error] = self.bob.admin("lobby", b"<item affiliation='member' jid='carol@localhost'/>")
        self.assertEqual(errorCondition(error), ("auth", "forbidden"))

    def test_adminLimits(self):
        """
        An admin may not make admins or owners, nor change them:
        C{not-allowed}; it may make members.
        """
        self.alice.admin("lobby", b"<item affiliation='admin' jid='bob@localhost'/>")
        self.bob.receive()
        [error] = self.bob.admin("lobby", b"<item affiliation='admin' jid='carol@localhost'/>")
        self.assertEqual(errorCondition(error), ("cancel", "not-allowed"))
        [error] = self.bob.admin("lobby", b"<item affiliation='none' jid='alice@localhost'/>")
        self.assertEqual(errorCondition(error), ("cancel", "not-allowed"))
        [result] = ofKind(
            self.bob.admin("lobby", b"<item affiliation='member' jid='carol@localhost'/>"), "iq"
        )
        self.assertEqual(result["type"], "result")

    def test_ownerList(self):
        """
        Owners see the owner list; admins get C{forbidden}.
        """
        [result] = self.alice.admin("lobby", b"<item affiliation='owner'/>", type="get")
        self.assertEqual(items(result), [{"affiliation": "owner", "jid": "alice@localhost"}])
        self.alice.admin("lobby", b"<item affiliation='admin' jid='bob@localhost'/>")
        [error] = ofKind(
            self.bob.admin("lobby", b"<item affiliation='owner'/>", type="get"), "iq"
        )
        self.assertEqual(errorCondition(error), ("auth", "forbidden"))

    def test_lastOwner(self):
        """
        The last owner may not stop being one: C{conflict}; with another
        owner it may.
        """
        [error] = self.alice.admin("lobby", b"<item affiliation='admin' jid='alice@localhost'/>")
        self.assertEqual(errorCondition(error), ("cancel", "conflict"))
        self.alice.admin("lobby", b"<item affiliation='owner' jid='bob@localhost'/>")
        [result] = ofKind(
            self.alice.admin("lobby", b"<item affiliation='admin' jid='alice@localhost'/>"), "iq"
        )
        self.assertEqual(result["type"], "result")

    def test_atomic(self):
        """
        If one item of a request is refused, none is applied.
        """
        self.alice.admin("lobby", b"<item affiliation='admin' jid='bob@localhost'/>")
        [error] = ofKind(
            self.bob.admin(
                "lobby",
                b"<item affiliation='member' jid='carol@localhost'/>"
                b"<item affiliation='owner' jid='carol@localhost'/>",
            ),
            "iq",
        )
        self.assertEqual(errorCondition(error), ("cancel", "not-allowed"))
        self.assertNotIn("carol@localhost", self.muc.room("lobby").affiliations)

    def test_malformedJID(self):
        """
        A malformed or full JID in an affiliation item gets
        C{jid-malformed}.
        """
        [error] = self.alice.admin("lobby", b"<item affiliation='member' jid='a@b@c'/>")
        self.assertEqual(errorCondition(error), ("modify", "jid-malformed"))
        [error] = self.alice.admin(
            "lobby", b"<item affiliation='member' jid='carol@localhost/desk'/>"
        )
        self.assertEqual(errorCondition(error), ("modify", "jid-malformed"))

    def test_byNickname(self):
        """
        An affiliation item naming an occupant's nickname instead of a JID
        applies to that occupant.
        """
        self.alice.admin("lobby", b"<item affiliation='member' nick='Bob'/>")
        self.assertEqual(
            self.muc.room("lobby").affiliations["bob@localhost"].affiliation, "member"
        )

    def test_upgradeRole(self):
        """
        Making an occupant an admin makes it a moderator.
        """
        self.alice.admin("lobby", b"<item affiliation='admin' jid='bob@localhost'/>")
        own = ofKind(self.bob.receive(), "presence", roomJID("lobby", "Bob"))[0]
        self.assertEqual(item(own)["role"], "moderator")
        self.assertEqual(item(own)["affiliation"], "admin")


class RegistrationTests(unittest.TestCase):
    """
    Registering a nickname with a room (XEP-0045 section 7.10).
    """

    def setUp(self):
        self.muc = MUCServer(self)
        self.alice = self.muc.client("alice")
        self.alice.create("lobby", "Alice")
        self.bob = self.muc.client("bob")

    def register(self, client, nick):
        return client.iq(
            b"<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>"
            b"<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value>"
            b"</field><field var='muc#register_roomnick'><value>%s</value></field></x></query>"
            % (nick.encode(),),
            type="set",
            to=roomJID("lobby"),
        )

    def test_unaffiliated(self):
        """
        Someone without affiliation gets C{registration-required}.
        """
        [error] = self.register(self.bob, "Bob")
        self.assertEqual(errorCondition(error), ("auth", "registration-required"))

    def test_member(self):
        """
        A member registers a nickname: it is reserved, listed and found
        through the C{x-roomuser-item} node.
        """
        self.alice.admin("lobby", b"<item affiliation='member' jid='bob@localhost'/>")
        [form] = self.bob.iq(b"<query xmlns='jabber:iq:register'/>", to=roomJID("lobby"))
        self.assertEqual(form["type"], "result")
        [result] = self.register(self.bob, "Bobby")
        self.assertEqual(result["type"], "result")
        [registered] = self.bob.iq(b"<query xmlns='jabber:iq:register'/>", to=roomJID("lobby"))
        self.assertEqual(str(child(registered, "jabber:iq:register", "query").username), "Bobby")
        [info] = self.bob.iq(
            b"<query xmlns='http://jabber.org/protocol/disco#info' node='x-roomuser-item'/>",
            to=roomJID("lobby"),
        )
        identity = child(info, "http://jabber.org/protocol/disco#info", "query").identity
        self.assertEqual(identity["name"], "Bobby")

    def test_conflict(self):
        """
        A nickname someone else uses or reserved gets C{conflict}.
        """
        self.alice.admin("lobby", b"<item affiliation='member' jid='bob@localhost'/>")
        [error] = self.register(self.bob, "Alice")
        self.assertEqual(errorCondition(error), ("cancel", "conflict"))

    def test_banned(self):
        """
        An outcast gets C{forbidden}.
        """
        self.alice.admin("lobby", b"<item affiliation='outcast' jid='bob@localhost'/>")
        [error] = self.register(self.bob, "Bob")
        self.assertEqual(errorCondition(error), ("auth", "forbidden"))

    def test_remove(self):
        """
        Cancelling the registration of a member removes its membership.
        """
        self.alice.admin("lobby", b"<item affiliation='member' jid='bob@localhost'/>")
        self.register(self.bob, "Bob")
        [result] = self.bob.iq(
            b"<query xmlns='jabber:iq:register'><remove/></query>", type="set", to=roomJID("lobby")
        )
        self.assertEqual(result["type"], "result")
        self.assertNotIn("bob@localhost", self.muc.room("lobby").affiliations)


class RequestTests(unittest.TestCase):
    """
    Malformed C{muc#admin} requests.
    """

    def setUp(self):
        self.muc = MUCServer(self)
        self.alice = self.muc.client("alice")
        self.alice.create("lobby", "Alice")

    def test_noItem(self):
        """
        A request without an item gets C{bad-request}.
        """
        [error] = self.alice.admin("lobby", b"")
        self.assertEqual(errorCondition(error), ("modify", "bad-request"))

    def test_unknownAffiliationList(self):
        """
        A list of an unknown affiliation gets C{bad-request}.
        """
        [error] = self.alice.admin("lobby", b"<item affiliation='king'/>", type="get")
        self.assertEqual(errorCondition(error), ("modify", "bad-request"))

    def test_kickSelf(self):
        """
        A moderator may kick itself (as in IRC), as Prosody allows.
        """
        received = self.alice.admin("lobby", b"<item nick='Alice' role='none'/>")
        [result] = ofKind(received, "iq")
        self.assertEqual(result["type"], "result")
        self.assertEqual(
            statusCodes(ofKind(received, "presence")[0]), {"110", "307"}
        )
