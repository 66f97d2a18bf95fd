"""
Tests for the message archives of group chat rooms (XEP-0313,
L{xmppws.muc.archive}), with the service attached in process to the
embedded server, in memory.
"""

from twisted.trial import unittest

from tests.muchelpers import (
    MUC,
    NS_DISCO_INFO,
    NS_SID,
    MUCServer,
    child,
    errorCondition,
    ofKind,
    roomJID,
    statusCodes,
)
from xmppws.c2s.mamquery import NS_MAM, NS_RSM
from xmppws.muc.archive import qualified

NS_FORWARD = "urn:xmpp:forward:0"


def query(client, room, rsm=b"", fields=b"", queryid="q"):
    """
    Query a room's archive: C{(results, reply)}, each result as C{(id,
    forwarded message, result message)}.
    """
    received = client.iq(
        b"<query xmlns='urn:xmpp:mam:2' queryid='%s'>%s%s</query>" % (
            queryid.encode(), fields, rsm),
        type="set", to=roomJID(room), id="mam1")
    results = []
    reply = None
    for stanza in received:
        if stanza.name == "iq" and stanza.getAttribute("id") == "mam1":
            reply = stanza
            continue
        result = child(stanza, NS_MAM, "result")
        if result is not None:
            forwarded = child(child(result, NS_FORWARD, "forwarded"), "jabber:client", "message")
            results.append((result["id"], forwarded, stanza))
    return results, reply


def bodies(results):
    return [str(child(message, "jabber:client", "body")) for _, message, _ in results]


class RoomArchiveTests(unittest.TestCase):
    """
    What a room archives and who reads it.
    """

    def setUp(self):
        self.muc = MUCServer(self)
        self.alice = self.muc.client("alice")
        self.bob = self.muc.client("bob")
        self.alice.create("lobby", "A")
        self.bob.join("lobby", "B")
        self.alice.receive()

    def test_liveIdIsArchiveId(self):
        """
        A groupchat message's stanza id, stamped by the room, is its id in
        the room's archive; results come from the room's bare JID with the
        occupant JID as sender and no 'to'.
        """
        received = self.alice.say("lobby", "hello room")
        [reflected] = ofKind(received, "message", sender=roomJID("lobby", "A"))
        [stanzaId] = reflected.elements(NS_SID, "stanza-id")
        results, reply = query(self.bob, "lobby")
        self.assertEqual(reply["type"], "result")
        [(sid, message, wrapper)] = results
        self.assertEqual(sid, stanzaId["id"])
        self.assertEqual(wrapper["from"], roomJID("lobby"))
        self.assertEqual(message["from"], roomJID("lobby", "A"))
        self.assertIsNone(message.getAttribute("to"))
        self.assertEqual(bodies(results), ["hello room"])

    def test_paging(self):
        """
        RSM pages a room's archive backwards, as Converse.js asks.
        """
        for n in range(5):
            self.alice.say("lobby", "m%d" % (n,), id="g%d" % (n,))
        results, reply = query(self.bob, "lobby", rsm=b"<set xmlns='%s'><max>2</max><before/>"
                               b"</set>" % (NS_RSM.encode(),))
        self.assertEqual(bodies(results), ["m3", "m4"])
        first = str(child(child(child(reply, NS_MAM, "fin"), NS_RSM, "set"), NS_RSM, "first"))
        results, _ = query(self.bob, "lobby", rsm=b"<set xmlns='%s'><max>10</max><before>%s"
                           b"</before></set>" % (NS_RSM.encode(), first.encode()))
        self.assertEqual(bodies(results), ["m0", "m1", "m2"])

    def test_withNickname(self):
        """
        'with' an occupant JID returns what that nickname said.
        """
        self.alice.say("lobby", "from A")
        self.bob.say("lobby", "from B")
        fields = (b"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
                  b"<value>urn:xmpp:mam:2</value></field><field var='with'><value>%s</value>"
                  b"</field></x>" % (roomJID("lobby", "B").encode(),))
        results, _ = query(self.alice, "lobby", fields=fields)
        self.assertEqual(bodies(results), ["from B"])

    def test_privateMessagesNotArchived(self):
        """
        Private messages between occupants are not in the room's archive.
        """
        self.alice.private("lobby", "B", "just for you")
        results, _ = query(self.bob, "lobby")
        self.assertEqual(results, [])

    def test_disco(self):
        """
        The room announces urn:xmpp:mam:2.
        """
        [reply] = self.bob.iq(b"<query xmlns='%s'/>" % (NS_DISCO_INFO.encode(),), to=roomJID(
            "lobby"))
        features = {f["var"] for f in reply.query.elements(NS_DISCO_INFO, "feature")}
        self.assertIn(NS_MAM, features)

    def test_outcast(self):
        """
        An outcast may not read the archive.
        """
        carol = self.muc.client("carol")
        self.alice.admin("lobby", b"<item affiliation='outcast' jid='carol@localhost'/>")
        _, reply = query(carol, "lobby")
        self.assertEqual(errorCondition(reply), ("auth", "forbidden"))

    def test_membersOnly(self):
        """
        In a members-only room, someone without affiliation may not read
        the archive; a member may.
        """
        self.alice.configure("lobby", membersonly="1")
        carol = self.muc.client("carol")
        _, reply = query(carol, "lobby")
        self.assertEqual(errorCondition(reply), ("auth", "forbidden"))
        self.alice.admin("lobby", b"<item affiliation='member' jid='carol@localhost'/>")
        _, reply = query(carol, "lobby")
        self.assertEqual(reply["type"], "result")

    def test_archivingOff(self):
        """
        A room configured not to archive says so (status 171), keeps
        nothing more and answers queries with service-unavailable.
        """
        received = self.alice.configure("lobby", enablearchiving="0")
        [announcement] = ofKind(received, "message", sender=roomJID("lobby"))
        self.assertIn("171", statusCodes(announcement))
        self.alice.say("lobby", "not kept")
        _, reply = query(self.bob, "lobby")
        self.assertEqual(errorCondition(reply), ("cancel", "service-unavailable"))

    def test_unknownId(self):
        """
        An RSM after naming nothing archived is item-not-found.
        """
        _, reply = query(self.bob, "lobby", rsm=b"<set xmlns='%s'><after>nope</after></set>"
                         % (NS_RSM.encode(),))
        self.assertEqual(errorCondition(reply), ("cancel", "item-not-found"))

    def test_badQuery(self):
        """
        An unknown field is feature-not-implemented.
        """
        fields = (b"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
                  b"<value>urn:xmpp:mam:2</value></field><field var='x'><value>1</value></field>"
                  b"</x>")
        _, reply = query(self.bob, "lobby", fields=fields)
        self.assertEqual(errorCondition(reply), ("cancel", "feature-not-implemented"))

    def test_destroyForgets(self):
        """
        A destroyed room's archive is deleted.
        """
        self.alice.say("lobby", "soon gone")
        self.alice.owner("lobby", b"<destroy/>", "set")
        page = self.successResultOf(self.muc.muc.archive.store.query(
            roomJID("lobby"), __import__("xmppws.c2s.archive", fromlist=["x"]).ArchiveQuery()))
        self.assertEqual(page.messages, [])

    def test_survivesRestart(self):
        """
        A persistent room's archive is there after the service restarts.
        """
        self.alice.configure("lobby", persistentroom="1")
        self.alice.say("lobby", "kept across restarts")
        self.muc.stop()
        self.muc.start()
        results, _ = query(self.bob, "lobby")
        self.assertEqual(bodies(results), ["kept across restarts"])

    def test_qualified(self):
        """
        qualified declares jabber:client on a message serialized without
        a namespace, and leaves others alone.
        """
        self.assertEqual(qualified("<message from='x'/>"),
                         "<message xmlns='jabber:client' from='x'/>")
        self.assertEqual(qualified("<message xmlns='a'/>"), "<message xmlns='a'/>")


class HistoryImportTests(unittest.TestCase):
    """
    History kept before rooms had archives is taken into them.
    """

    def test_import(self):
        """
        A persistent room's stored history, written without an archive,
        is in its archive once the service starts with archives.
        """
        import sqlite3

        first = MUCServer(self)
        alice = first.client("alice")
        alice.create("old", "A")
        alice.configure("old", persistentroom="1")
        alice.say("old", "from before archives")
        first.stop()
        # What a database of the service before it had archives holds:
        # rooms and their history, nothing else.
        db = sqlite3.connect(first.path)
        for table in ("mam_messages", "mam_sizes", "muc_archived"):
            db.execute("DELETE FROM %s" % (table,))
        db.commit()
        db.close()
        first.start()
        bob = first.client("bob")
        results, _ = query(bob, "old")
        self.assertEqual(bodies(results), ["from before archives"])

    def test_importOnce(self):
        """
        The import happens once: a restart brings no duplicates.
        """
        muc = MUCServer(self)
        alice = muc.client("alice")
        alice.create("room", "A")
        alice.configure("room", persistentroom="1")
        alice.say("room", "once")
        muc.stop()
        muc.start()
        muc.stop()
        muc.start()
        results, _ = query(muc.client("bob"), "room")
        self.assertEqual(bodies(results), ["once"])


del MUC
