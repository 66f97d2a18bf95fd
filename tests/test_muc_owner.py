"""
Tests for room configuration and destruction (L{xmppws.muc.owner},
L{xmppws.muc.config}): XEP-0045 section 10, and the room's service
discovery (section 6.4, XEP-0128).
"""

from twisted.trial import unittest
from twisted.words.xish import domish

from tests.muchelpers import (
    NS_DATA,
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    NS_MUC_OWNER,
    NS_MUC_USER,
    MUCServer,
    child,
    errorCondition,
    ofKind,
    roomJID,
    statusCodes,
)
from xmppws.muc.config import ConfigError, RoomConfig, parseSubmission
from xmppws.muc.settings import MUCSettings


def formFields(x):
    return {f.getAttribute("var"): f for f in x.elements(NS_DATA, "field") if f.getAttribute("var")}


def values(field):
    return [str(v) for v in field.elements(NS_DATA, "value")]


class ConfigFormTests(unittest.TestCase):
    """
    The configuration form and what a submitted form changes.
    """

    def setUp(self):
        self.muc = MUCServer(self)
        self.alice = self.muc.client("alice")
        self.alice.join("lobby", "Alice")

    def test_form(self):
        """
        An owner gets the C{muc#roomconfig} form with the room's values.
        """
        [result] = self.alice.owner("lobby")
        x = child(child(result, NS_MUC_OWNER, "query"), NS_DATA, "x")
        self.assertEqual(x["type"], "form")
        fields = formFields(x)
        self.assertEqual(values(fields["FORM_TYPE"]), ["http://jabber.org/protocol/muc#roomconfig"])
        for name in (
            "roomname", "roomdesc", "persistentroom", "publicroom", "roomsecret",
            "membersonly", "moderatedroom", "whois", "changesubject", "allowpm",
            "maxusers", "historylength", "allowinvites",
        ):
            self.assertIn("muc#roomconfig_" + name, fields)
        self.assertEqual(values(fields["muc#roomconfig_persistentroom"]), ["false"])
        self.assertEqual(values(fields["muc#roomconfig_whois"]), ["moderators"])
        self.assertEqual(values(fields["muc#roomconfig_historylength"]), ["20"])

    def test_reservedRoom(self):
        """
        Submitting the filled-in form configures and opens the room.
        """
        [result] = ofKind(
            self.alice.configure(
                "lobby", roomname="The Lobby", persistentroom="1", publicroom="true",
                roomdesc="Talk", historylength="5",
            ),
            "iq",
        )
        self.assertEqual(result["type"], "result")
        config = self.muc.room("lobby").config
        self.assertEqual(
            (config.name, config.persistent, config.public, config.description,
             config.historyLength),
            ("The Lobby", True, True, "Talk", 5),
        )
        self.assertIsNone(self.muc.room("lobby").lockedUntil)

    def test_whatConverseSends(self):
        """
        The form as Converse.js sends it back -- every field of the form,
        fixed ones without names included -- is accepted.
        """
        [result] = self.alice.owner("lobby")
        x = child(child(result, NS_MUC_OWNER, "query"), NS_DATA, "x")
        x["type"] = "submit"
        for field in list(x.elements(NS_DATA, "field")):
            for option in list(field.elements(NS_DATA, "option")):
                field.children.remove(option)
        payload = x.toXml().encode()
        [answer] = self.alice.owner("lobby", payload, "set")
        self.assertEqual(answer["type"], "result")

    def test_notifications(self):
        """
        A change is announced to the occupants with 104; making the room
        non-anonymous with 172.
        """
        self.alice.create("lobby", "Alice")
        bob = self.muc.client("bob")
        bob.join("lobby", "Bob")
        self.alice.configure("lobby", roomname="New")
        [message] = ofKind(bob.receive(), "message")
        self.assertEqual(message["from"], roomJID("lobby"))
        self.assertEqual(statusCodes(message), {"104"})
        self.alice.configure("lobby", whois="anyone")
        [message] = ofKind(bob.receive(), "message")
        self.assertEqual(statusCodes(message), {"172"})
        self.alice.configure("lobby", whois="anyone")
        self.assertEqual(ofKind(bob.receive(), "message"), [])

    def test_membersOnlyRemoves(self):
        """
        Making a room members-only removes the occupants who are not
        members, with 322.
        """
        self.alice.create("lobby", "Alice")
        bob = self.muc.client("bob")
        bob.join("lobby", "Bob")
        self.alice.configure("lobby", membersonly="1")
        gone = ofKind(bob.receive(), "presence", type="unavailable")
        self.assertEqual([statusCodes(p) for p in gone], [{"110", "322"}])

    def test_badValue(self):
        """
        A value out of range gets C{not-acceptable} and changes nothing.
        """
        [error] = self.alice.configure("lobby", maxusers="0", roomname="Changed")
        self.assertEqual(errorCondition(error), ("modify", "not-acceptable"))
        [error] = self.alice.configure("lobby", persistentroom="maybe")
        self.assertEqual(errorCondition(error), ("modify", "not-acceptable"))
        [error] = self.alice.configure("lobby", whois="everyone")
        self.assertEqual(errorCondition(error), ("modify", "not-acceptable"))
        self.assertEqual(self.muc.room("lobby").config.name, "")

    def test_wrongFormType(self):
        """
        A form of another type gets C{bad-request}.
        """
        [error] = self.alice.owner(
            "lobby",
            b"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
            b"<value>urn:other</value></field><field var='x'><value>1</value></field></x>",
            "set",
        )
        self.assertEqual(errorCondition(error), ("modify", "bad-request"))

    def test_notOwner(self):
        """
        Someone who is not an owner gets C{forbidden} for the form and for
        changes.
        """
        self.alice.create("lobby", "Alice")
        bob = self.muc.client("bob")
        [error] = bob.owner("lobby")
        self.assertEqual(errorCondition(error), ("auth", "forbidden"))
        [error] = bob.configure("lobby", roomname="Mine")
        self.assertEqual(errorCondition(error), ("auth", "forbidden"))

    def test_cancelInitial(self):
        """
        Cancelling the initial configuration destroys the new room.
        """
        [result] = ofKind(
            self.alice.owner("lobby", b"<x xmlns='jabber:x:data' type='cancel'/>", "set"), "iq"
        )
        self.assertEqual(result["type"], "result")
        self.assertIsNone(self.muc.room("lobby"))

    def test_cancelLater(self):
        """
        Cancelling a later configuration changes nothing.
        """
        self.alice.owner("lobby", b"<x xmlns='jabber:x:data' type='submit'/>", "set")
        self.alice.owner("lobby", b"<x xmlns='jabber:x:data' type='cancel'/>", "set")
        self.assertIsNotNone(self.muc.room("lobby"))


class DestroyTests(unittest.TestCase):
    """
    Destroying a room (XEP-0045 section 10.9).
    """

    def setUp(self):
        self.muc = MUCServer(self)
        self.alice = self.muc.client("alice")
        self.alice.create("lobby", "Alice")
        self.alice.configure("lobby", persistentroom="1")
        self.bob = self.muc.client("bob")
        self.bob.join("lobby", "Bob")
        self.alice.receive()

    def test_destroy(self):
        """
        The occupants get unavailable presence with the alternate room and
        the reason; the room is gone, from storage too.
        """
        received = self.alice.owner(
            "lobby",
            b"<destroy jid='other@conference.localhost'><reason>Moved</reason></destroy>",
            "set",
        )
        [result] = ofKind(received, "iq")
        self.assertEqual(result["type"], "result")
        [gone] = ofKind(self.bob.receive(), "presence", roomJID("lobby", "Bob"))
        self.assertEqual(gone["type"], "unavailable")
        destroy = child(child(gone, NS_MUC_USER, "x"), NS_MUC_USER, "destroy")
        self.assertEqual(destroy["jid"], "other@conference.localhost")
        self.assertEqual(str(destroy.reason), "Moved")
        self.assertIsNone(self.muc.room("lobby"))
        self.muc.stop()
        self.muc.start()
        self.assertIsNone(self.muc.room("lobby"))

    def test_notOwner(self):
        """
        Only owners destroy rooms: others get C{forbidden}.
        """
        [error] = self.bob.owner("lobby", b"<destroy/>", "set")
        self.assertEqual(errorCondition(error), ("auth", "forbidden"))

    def test_badAlternate(self):
        """
        A malformed alternate room gets C{jid-malformed}.
        """
        [error] = self.alice.owner("lobby", b"<destroy jid='@@'/>", "set")
        self.assertEqual(errorCondition(error), ("modify", "jid-malformed"))


class DiscoveryTests(unittest.TestCase):
    """
    A room's C{disco#info} and C{disco#items}, and the public room list.
    """

    def setUp(self):
        self.muc = MUCServer(self)
        self.alice = self.muc.client("alice")
        self.alice.create("lobby", "Alice")

    def info(self, client, room="lobby", node=None):
        query = b"<query xmlns='http://jabber.org/protocol/disco#info'"
        if node:
            query += b" node='%s'" % (node.encode(),)
        return client.iq(query + b"/>", to=roomJID(room))

    def test_info(self):
        """
        A room's information names it and lists its features, with the
        C{muc#roominfo} form.
        """
        self.alice.configure("lobby", roomname="The Lobby", roomdesc="Talk", roomsecret="x")
        bob = self.muc.client("bob")
        [result] = self.info(bob)
        query = child(result, NS_DISCO_INFO, "query")
        self.assertEqual(query.identity["category"], "conference")
        self.assertEqual(query.identity["name"], "The Lobby")
        features = {f["var"] for f in query.elements(NS_DISCO_INFO, "feature")}
        for feature in (
            "http://jabber.org/protocol/muc", "urn:xmpp:sid:0", "urn:xmpp:occupant-id:0",
            "http://jabber.org/protocol/muc#stable_id",
            "http://jabber.org/protocol/muc#self-ping-optimization",
            "muc_temporary", "muc_hidden", "muc_open", "muc_unmoderated",
            "muc_semianonymous", "muc_passwordprotected",
        ):
            self.assertIn(feature, features)
        fields = formFields(child(query, NS_DATA, "x"))
        self.assertEqual(values(fields["muc#roominfo_description"]), ["Talk"])
        self.assertEqual(values(fields["muc#roominfo_occupants"]), ["1"])

    def test_missing(self):
        """
        A room that does not exist gets C{item-not-found}.
        """
        [error] = self.info(self.alice, "nowhere")
        self.assertEqual(errorCondition(error), ("cancel", "item-not-found"))

    def test_unknownNode(self):
        """
        An unknown node gets C{item-not-found}.
        """
        [error] = self.info(self.alice, node="whatever")
        self.assertEqual(errorCondition(error), ("cancel", "item-not-found"))

    def test_items(self):
        """
        A room's C{disco#items} is empty (occupants are not listed).
        """
        [result] = self.alice.iq(
            b"<query xmlns='http://jabber.org/protocol/disco#items'/>", to=roomJID("lobby")
        )
        self.assertEqual(list(child(result, NS_DISCO_ITEMS, "query").elements()), [])

    def test_publicList(self):
        """
        The service lists public rooms only, by name.
        """
        self.alice.create("hidden", "Alice")
        self.alice.configure("lobby", publicroom="1", roomname="The Lobby")
        [result] = self.alice.iq(
            b"<query xmlns='http://jabber.org/protocol/disco#items'/>", to="conference.localhost"
        )
        listed = [dict(i.attributes) for i in child(result, NS_DISCO_ITEMS, "query").elements()]
        self.assertEqual(listed, [{"jid": roomJID("lobby"), "name": "The Lobby"}])

    def test_vcard(self):
        """
        A room answers a vCard request with an empty vCard.
        """
        [result] = self.alice.iq(b"<vCard xmlns='vcard-temp'/>", to=roomJID("lobby"))
        self.assertEqual(result["type"], "result")

    def test_unknownIq(self):
        """
        Other iq requests to a room get C{service-unavailable}.
        """
        [error] = self.alice.iq(b"<query xmlns='urn:example'/>", to=roomJID("lobby"))
        self.assertEqual(errorCondition(error), ("cancel", "service-unavailable"))


class ConfigTests(unittest.TestCase):
    """
    L{RoomConfig} and L{parseSubmission} on their own.
    """

    def setUp(self):
        self.settings = MUCSettings("conference.example.org", maxOccupants=50, maxHistory=30)

    def test_defaults(self):
        """
        A new room takes its configuration from the service's defaults.
        """
        settings = MUCSettings(
            "conference.example.org", defaultPersistent=True, defaultPublic=True,
            defaultWhois="anyone",
        )
        config = RoomConfig.defaults(settings)
        self.assertEqual((config.persistent, config.public, config.whois), (True, True, "anyone"))

    def test_fromDictClamps(self):
        """
        A stored configuration is kept within the service's limits.
        """
        config = RoomConfig.fromDict(
            {"maxUsers": 1000, "historyLength": 1000, "whois": "bogus", "unknown": 1},
            self.settings,
        )
        self.assertEqual((config.maxUsers, config.historyLength, config.whois), (50, 30, "moderators"))

    def test_roundTrip(self):
        """
        A configuration survives L{RoomConfig.toDict} and
        L{RoomConfig.fromDict}.
        """
        config = RoomConfig(name="n", persistent=True, allowPM="none", maxUsers=10)
        again = RoomConfig.fromDict(config.toDict(), self.settings)
        self.assertEqual(again.toDict(), config.toDict())

    def test_prosodyAllowPM(self):
        """
        Prosody's values of C{muc#roomconfig_allowpm} are understood.
        """
        config, codes = RoomConfig().apply({"muc#roomconfig_allowpm": ["moderator"]}, self.settings)
        self.assertEqual((config.allowPM, codes), ("moderators", ["104"]))

    def test_passwordProtected(self):
        """
        Turning password protection off clears the password; on without a
        password is refused.
        """
        config = RoomConfig(password="x")
        new, _ = config.apply({"muc#roomconfig_passwordprotectedroom": ["0"]}, self.settings)
        self.assertEqual(new.password, "")
        self.assertRaises(
            ConfigError, RoomConfig().apply,
            {"muc#roomconfig_passwordprotectedroom": ["1"]}, self.settings,
        )

    def test_notSubmitted(self):
        """
        Only a submitted form is read.
        """
        x = domish.Element((NS_DATA, "x"))
        x["type"] = "form"
        self.assertRaises(ConfigError, parseSubmission, x)

    def test_unknownSetting(self):
        """
        An unknown setting is a L{TypeError}; bad values L{ValueError}s.
        """
        self.assertRaises(TypeError, RoomConfig, colour="red")
        self.assertRaises(TypeError, MUCSettings, "c.example", colour="red")
        self.assertRaises(ValueError, MUCSettings, "c.example", maxMessageSize=0)
        self.assertRaises(ValueError, MUCSettings, "c.example", defaultWhois="all")
