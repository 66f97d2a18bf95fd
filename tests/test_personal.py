"""
Tests for vCards (XEP-0054, L{xmppws.c2s.vcard}), private XML storage
(XEP-0049, L{xmppws.c2s.private}) and bookmarks kept in step between
XEP-0048 and XEP-0402 (XEP-0411, L{xmppws.c2s.bookmarks}), over
in-memory WebSockets.
"""

import base64
import hashlib

from tests.personalhelpers import PersonalTestCase, child, condition, form, notify

NS_VCARD = "vcard-temp"
NS_PRIVATE = "jabber:iq:private"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_EVENT = NS_PUBSUB + "#event"
NS_BOOKMARKS = "urn:xmpp:bookmarks:1"
NS_LEGACY = "storage:bookmarks"
NS_OPTIONS = NS_PUBSUB + "#publish-options"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nnot really an image").decode()

BOOKMARK_OPTIONS = {
    "pubsub#persist_items": "true",
    "pubsub#max_items": "max",
    "pubsub#send_last_published_item": "never",
    "pubsub#access_model": "whitelist",
}


def vcard(name, photo=None):
    body = b"<vCard xmlns='vcard-temp'><FN>%s</FN>" % (name.encode(),)
    if photo is not None:
        body += b"<PHOTO><TYPE>image/png</TYPE><BINVAL>%s</BINVAL></PHOTO>" % (photo.encode(),)
    return body + b"</vCard>"


class VCardTests(PersonalTestCase):
    """
    vCard-temp.
    """

    def test_setAndGet(self):
        """
        An account sets its vCard; it and a contact get it back.
        """
        alice = self.connect("alice")
        _, reply = self.iq(alice, vcard("Alice"), type="set")
        self.assertEqual(reply["type"], "result")
        _, reply = self.iq(alice, b"<vCard xmlns='vcard-temp'/>")
        self.assertEqual(str(reply.vCard.FN), "Alice")
        _, reply = self.iq(self.connect("bob"), b"<vCard xmlns='vcard-temp'/>",
                           to="alice@localhost")
        self.assertEqual(str(reply.vCard.FN), "Alice")
        self.assertEqual(reply["from"], "alice@localhost")

    def test_empty(self):
        """
        An account that set no vCard has an empty one.
        """
        _, reply = self.iq(self.connect("bob"), b"<vCard xmlns='vcard-temp'/>",
                           to="alice@localhost")
        self.assertEqual(reply["type"], "result")
        self.assertEqual(list(reply.vCard.elements()), [])

    def test_unknownAccount(self):
        """
        The vCard of an account that does not exist is
        service-unavailable.
        """
        _, reply = self.iq(self.connect("bob"), b"<vCard xmlns='vcard-temp'/>",
                           to="nobody@localhost")
        self.assertEqual(condition(reply)[:2], ("service-unavailable", "cancel"))

    def test_setOthers(self):
        """
        Setting another account's vCard is forbidden.
        """
        _, reply = self.iq(self.connect("bob"), vcard("Not Alice"), type="set",
                           to="alice@localhost")
        self.assertEqual(condition(reply)[:2], ("forbidden", "auth"))

    def test_tooBig(self):
        """
        A vCard larger than maxVCardSize is not-acceptable and not kept.
        """
        self.server.config.quotas.maxVCardSize = 200
        alice = self.connect("alice")
        _, reply = self.iq(alice, vcard("A" * 300), type="set")
        self.assertEqual(condition(reply)[:2], ("not-acceptable", "modify"))
        self.assertEqual(self.server.stats["quota_maxVCardSize"], 1)
        _, reply = self.iq(alice, b"<vCard xmlns='vcard-temp'/>")
        self.assertEqual(list(reply.vCard.elements()), [])

    def test_photoBecomesAvatar(self):
        """
        A vCard photo is published as the XEP-0084 avatar: an interested
        contact is told of the metadata and reads the data.
        """
        alice = self.connect("alice")
        bob = self.connect("bob", features=notify("urn:xmpp:avatar:metadata"))
        self.iq(alice, vcard("Alice", PNG), type="set")
        digest = hashlib.sha1(base64.b64decode(PNG)).hexdigest()
        [message] = self.messages(bob)
        info = message.event.items.item.metadata.info
        self.assertEqual((info["id"], info["type"]), (digest, "image/png"))
        _, reply = self.iq(bob, b"<pubsub xmlns='%s'><items node='urn:xmpp:avatar:data'>"
                           b"<item id='%s'/></items></pubsub>" % (NS_PUBSUB.encode(),
                                                                    digest.encode()),
                           to="alice@localhost")
        self.assertEqual(str(reply.pubsub.items.item.data), PNG)

    def test_survivesRestart(self):
        """
        vCards are kept across a restart.
        """
        self.iq(self.connect("alice"), vcard("Alice"), type="set")
        self.restart()
        _, reply = self.iq(self.connect("bob"), b"<vCard xmlns='vcard-temp'/>",
                           to="alice@localhost")
        self.assertEqual(str(reply.vCard.FN), "Alice")


class PrivateTests(PersonalTestCase):
    """
    Private XML storage.
    """

    def get(self, client, element, to=None):
        return self.iq(client, b"<query xmlns='jabber:iq:private'>%s</query>" % (element,),
                       to=to)[1]

    def set(self, client, elements, to=None):
        return self.iq(client, b"<query xmlns='jabber:iq:private'>%s</query>" % (elements,),
                       type="set", to=to)[1]

    def test_setAndGet(self):
        """
        A stored element comes back; another namespace is kept apart.
        """
        alice = self.connect("alice")
        reply = self.set(alice, b"<prefs xmlns='urn:example:prefs'><color>blue</color></prefs>")
        self.assertEqual(reply["type"], "result")
        reply = self.get(alice, b"<prefs xmlns='urn:example:prefs'/>")
        self.assertEqual(str(reply.query.prefs.color), "blue")
        reply = self.get(alice, b"<prefs xmlns='urn:example:other'/>")
        self.assertEqual(list(reply.query.prefs.elements()), [])

    def test_reserved(self):
        """
        Reserved namespaces are not-acceptable.
        """
        alice = self.connect("alice")
        reply = self.set(alice, b"<query xmlns='jabber:iq:roster'/>")
        self.assertEqual(condition(reply)[:2], ("not-acceptable", "modify"))

    def test_noElement(self):
        """
        A get naming no element is not-acceptable.
        """
        reply = self.get(self.connect("alice"), b"")
        self.assertEqual(condition(reply)[:2], ("not-acceptable", "modify"))

    def test_others(self):
        """
        Another account's private storage is forbidden.
        """
        reply = self.get(self.connect("bob"), b"<prefs xmlns='urn:example:prefs'/>",
                         to="alice@localhost")
        self.assertEqual(condition(reply)[:2], ("forbidden", "cancel"))

    def test_tooBig(self):
        """
        More than maxPrivateSize bytes is not-acceptable, and nothing of
        the request is kept.
        """
        self.server.config.quotas.maxPrivateSize = 100
        alice = self.connect("alice")
        reply = self.set(alice, b"<big xmlns='urn:example:big'>%s</big>" % (b"x" * 200,))
        self.assertEqual(condition(reply)[:2], ("not-acceptable", "modify"))
        reply = self.get(alice, b"<big xmlns='urn:example:big'/>")
        self.assertEqual(str(reply.query.big), "")

    def test_survivesRestart(self):
        """
        Private XML is kept across a restart.
        """
        self.set(self.connect("alice"), b"<prefs xmlns='urn:example:prefs'>kept</prefs>")
        self.restart()
        reply = self.get(self.connect("alice"), b"<prefs xmlns='urn:example:prefs'/>")
        self.assertEqual(str(reply.query.prefs), "kept")


class BookmarksTests(PersonalTestCase):
    """
    Bookmarks in step between XEP-0048 (private and PEP) and XEP-0402.
    """

    def publish(self, client, room, name, autojoin="true"):
        body = (b"<pubsub xmlns='%s'><publish node='%s'><item id='%s'><conference xmlns='%s' "
                b"name='%s' autojoin='%s'><nick>A</nick></conference></item></publish>"
                b"<publish-options>%s</publish-options></pubsub>") % (
            NS_PUBSUB.encode(), NS_BOOKMARKS.encode(), room.encode(), NS_BOOKMARKS.encode(),
            name.encode(), autojoin.encode(), form(NS_OPTIONS, BOOKMARK_OPTIONS))
        return self.iq(client, body, type="set")

    def items(self, client, node=NS_BOOKMARKS):
        return self.iq(client, b"<pubsub xmlns='%s'><items node='%s'/></pubsub>" % (
            NS_PUBSUB.encode(), node.encode()))[1]

    def test_features(self):
        """
        Accounts announce the XEP-0402 compatibility features.
        """
        _, reply = self.iq(self.connect("alice"), b"<query xmlns='%s'/>" % (
            NS_DISCO_INFO.encode(),), to="alice@localhost")
        features = {f["var"] for f in reply.query.elements(NS_DISCO_INFO, "feature")}
        self.assertTrue({NS_BOOKMARKS + "#compat", NS_BOOKMARKS + "#compat-pep",
                         "urn:xmpp:bookmarks-conversion:0"} <= features)

    def test_modernToPrivate(self):
        """
        XEP-0402 bookmarks read as XEP-0048 private storage.
        """
        alice = self.connect("alice")
        _, reply = self.publish(alice, "lobby@conference.localhost", "Lobby")
        self.assertEqual(reply["type"], "result")
        _, reply = self.iq(alice, b"<query xmlns='jabber:iq:private'><storage "
                           b"xmlns='storage:bookmarks'/></query>")
        conference = reply.query.storage.conference
        self.assertEqual((conference["jid"], conference["name"], conference["autojoin"]),
                         ("lobby@conference.localhost", "Lobby", "true"))
        self.assertEqual(str(conference.nick), "A")

    def test_privateToModern(self):
        """
        XEP-0048 bookmarks set in private storage become XEP-0402 items in
        a whitelist node; a room left out is retracted.
        """
        alice = self.connect("alice")
        storage = (b"<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'>"
                   b"<conference jid='a@conference.localhost' name='A' autojoin='true'>"
                   b"<nick>al</nick></conference><conference jid='b@conference.localhost'/>"
                   b"</storage></query>")
        _, reply = self.iq(alice, storage, type="set")
        self.assertEqual(reply["type"], "result")
        ids = [i["id"] for i in self.items(alice).pubsub.items.elements(NS_PUBSUB, "item")]
        self.assertEqual(sorted(ids), ["a@conference.localhost", "b@conference.localhost"])
        config = self.successResultOf(self.server.modules["pep"].store.config(
            "alice@localhost", NS_BOOKMARKS))
        self.assertEqual(config.accessModel, "whitelist")
        self.iq(alice, storage.replace(b"<conference jid='b@conference.localhost'/>", b""),
                type="set")
        ids = [i["id"] for i in self.items(alice).pubsub.items.elements(NS_PUBSUB, "item")]
        self.assertEqual(ids, ["a@conference.localhost"])

    def test_legacyPEP(self):
        """
        The XEP-0048 PEP node reads as the XEP-0402 items, and a publish
        to it is written into them.
        """
        alice = self.connect("alice")
        body = (b"<pubsub xmlns='%s'><publish node='storage:bookmarks'><item id='current'>"
                b"<storage xmlns='storage:bookmarks'><conference jid='c@conference.localhost' "
                b"autojoin='1'/></storage></item></publish></pubsub>") % (NS_PUBSUB.encode(),)
        _, reply = self.iq(alice, body, type="set")
        self.assertEqual(reply["type"], "result")
        legacy = self.items(alice, NS_LEGACY)
        self.assertEqual(legacy.pubsub.items.item.storage.conference["jid"],
                         "c@conference.localhost")
        ids = [i["id"] for i in self.items(alice).pubsub.items.elements(NS_PUBSUB, "item")]
        self.assertEqual(ids, ["c@conference.localhost"])

    def test_legacyNotification(self):
        """
        A session following XEP-0048 bookmarks in PEP is told of XEP-0402
        changes in the XEP-0048 form.
        """
        alice = self.connect("alice")
        legacy = self.connect("alice", "legacy", features=notify(NS_LEGACY))
        self.publish(alice, "lobby@conference.localhost", "Lobby")
        messages = self.messages(legacy)
        [event] = [m for m in messages if child(m, NS_EVENT, "event") is not None]
        self.assertEqual(event.event.items["node"], NS_LEGACY)
        self.assertEqual(event.event.items.item.storage.conference["jid"],
                         "lobby@conference.localhost")

    def test_emptyPrivate(self):
        """
        Without bookmarks, private storage returns an empty storage
        element.
        """
        _, reply = self.iq(self.connect("alice"), b"<query xmlns='jabber:iq:private'><storage "
                           b"xmlns='storage:bookmarks'/></query>")
        self.assertEqual(list(reply.query.storage.elements()), [])

    def test_badLegacyJID(self):
        """
        A XEP-0048 conference without a valid JID is bad-request.
        """
        _, reply = self.iq(self.connect("alice"), b"<query xmlns='jabber:iq:private'><storage "
                           b"xmlns='storage:bookmarks'><conference jid='@@'/></storage></query>",
                           type="set")
        self.assertEqual(condition(reply)[:2], ("bad-request", "modify"))
