"""
History and personal data end to end: slixmpp over TCP, on loopback,
against the embedded server -- a message archive read page by page
(XEP-0313 with XEP-0059), personal eventing published and notified
(XEP-0163, with slixmpp's XEP-0115 capabilities), vCards (XEP-0054) and
private XML storage (XEP-0049) -- and all of it still there after the
server restarts on the same data directory.
"""

import threading

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.python.filepath import FilePath
from twisted.trial import unittest

from tests.e2ehelpers import (
    DOMAIN,
    TIMEOUT,
    ConnectionTracker,
    E2EServer,
    SlixmppClient,
    isMessage,
)
from tests.personalhelpers import befriend

ALICE = "alice@" + DOMAIN
BOB = "bob@" + DOMAIN
NS_SID = "urn:xmpp:sid:0"
NODE = "urn:xmppws:test:status"
PLUGINS = ("xep_0030", "xep_0059", "xep_0060", "xep_0115", "xep_0163", "xep_0313",
           "xep_0054", "xep_0049")


def _element(xml):
    import xml.etree.ElementTree as ET

    return ET.fromstring(xml)


_NOTES = []


def notesStanza():
    """
    A slixmpp stanza class for the private XML the tests keep.
    """
    if not _NOTES:
        from slixmpp.xmlstream import ElementBase

        class Notes(ElementBase):
            name = "notes"
            namespace = "urn:xmppws:test:notes"
            interfaces = {"text"}
            sub_interfaces = interfaces
            plugin_attrib = "notes"

        _NOTES.append(Notes)
    return _NOTES[0]


class PersonalEndToEndTests(unittest.TestCase):
    """
    slixmpp users of the archive, PEP, vCards and private storage.
    """

    timeout = 60

    def setUp(self):
        self.tracker = ConnectionTracker(reactor)
        threads = set(threading.enumerate())

        def noThreadsLeft():
            left = [
                thread.name
                for thread in set(threading.enumerate()) - threads
                if not thread.name.startswith("PoolThread-")
            ]
            self.assertEqual(left, [], "threads still running")

        self.addCleanup(noThreadsLeft)

    @inlineCallbacks
    def startServer(self):
        server = E2EServer(reactor, FilePath(self.mktemp()), self.tracker)
        yield server.start()
        befriend(server.storage, users=("alice", "bob"), domain=DOMAIN)

        @inlineCallbacks
        def stop():
            yield server.stop()
            self.assertEqual(server.aborted, 0, "connections were left open")

        self.addCleanup(stop)
        return server

    @inlineCallbacks
    def client(self, server, username, resource="slixmpp"):
        client = SlixmppClient(reactor, username, resource)
        self.addCleanup(client.stop)
        yield client.login(server.c2sPort, plugins=PLUGINS)
        return client

    def page(self, client, after=None):
        """
        One page of two messages of the client's archive: C{(bodies, ids,
        complete, last)}.
        """
        rsm = {"max": 2}
        if after is not None:
            rsm["after"] = after

        async def query():
            iq = await client.xmpp["xep_0313"].retrieve(rsm=rsm, timeout=TIMEOUT)
            results = iq["mam"]["results"]
            bodies = [r["mam_result"]["forwarded"]["stanza"]["body"] for r in results]
            ids = [r["mam_result"]["id"] for r in results]
            fin = iq["mam_fin"]
            return bodies, ids, fin["complete"], fin["rsm"]["last"]

        return client.call(query)

    @inlineCallbacks
    def allPages(self, client):
        bodies, ids, after = [], [], None
        for _ in range(10):
            found, foundIds, complete, after = yield self.page(client, after)
            bodies += found
            ids += foundIds
            if complete:
                break
        return bodies, ids

    @inlineCallbacks
    def test_archivePaging(self):
        """
        Messages alice sends bob are in bob's archive, in order, read two
        at a time with RSM; the stanza ids bob's client saw live are the
        archive's ids.
        """
        server = yield self.startServer()
        alice = yield self.client(server, "alice")
        bob = yield self.client(server, "bob")
        sent = ["archived %d" % (n,) for n in range(5)]
        for body in sent:
            yield alice.call(lambda b=body: alice.xmpp.send_message(mto=BOB, mbody=b,
                                                                    mtype="chat"))
        live = []
        for body in sent:
            received = yield bob.inbox.expect(isMessage(body, alice.jid, "chat"))
            [stanzaId] = [c for c in received.elements() if c.uri == NS_SID]
            self.assertEqual(stanzaId["by"], BOB)
            live.append(stanzaId["id"])
        bodies, ids = yield self.allPages(bob)
        self.assertEqual(bodies, sent)
        self.assertEqual(ids, live)

    @inlineCallbacks
    def test_pepPublishAndNotify(self):
        """
        bob announces NODE+notify through slixmpp's caps; alice publishes
        to her PEP node; bob is notified and reads the item.
        """
        server = yield self.startServer()
        alice = yield self.client(server, "alice")
        bob = yield self.client(server, "bob")
        notified = []
        caps = server.server.modules["caps"]
        bobSession = server.session(bob.jid)

        async def interested():
            bob.xmpp.add_event_handler("pubsub_publish", lambda msg: notified.append(str(msg)))
            bob.xmpp["xep_0030"].add_feature(NODE + "+notify")
            # New caps, announced in a new presence.
            await bob.xmpp["xep_0115"].update_caps(broadcast=False)
            bob.xmpp.send_presence()

        yield bob.call(interested)
        from tests.e2ehelpers import waitFor

        yield waitFor(reactor, lambda: NODE in caps.interests(bobSession), what="bob's caps")
        # slixmpp's hash is the server's: the verified hash is cached.
        self.assertEqual([NODE in nodes for nodes in caps.cache.values()], [True])

        def publish():
            payload = _element("<status xmlns='%s'>out for lunch</status>" % (NODE,))
            return alice.xmpp["xep_0060"].publish(ALICE, NODE, id="current", payload=payload,
                                                  timeout=TIMEOUT)

        yield alice.call(publish)
        yield waitFor(reactor, lambda: any("out for lunch" in n for n in notified),
                      what="the notification at bob")

        def read():
            return bob.xmpp["xep_0060"].get_items(ALICE, NODE, timeout=TIMEOUT)

        iq = yield bob.call(read)
        self.assertIn("out for lunch", str(iq))

    @inlineCallbacks
    def test_vcardAndPrivateSurviveRestart(self):
        """
        alice sets her vCard and keeps private XML; after a restart bob
        reads her vCard, she reads her private XML, bob's archive and her
        PEP item are still there.
        """
        server = yield self.startServer()
        alice = yield self.client(server, "alice")
        bob = yield self.client(server, "bob")

        def setVCard():
            vcard = alice.xmpp["xep_0054"].make_vcard()
            vcard["FN"] = "Alice Example"
            return alice.xmpp["xep_0054"].publish_vcard(vcard, timeout=TIMEOUT)

        yield alice.call(setVCard)

        def store():
            Notes = notesStanza()
            alice.xmpp["xep_0049"].register(Notes)
            notes = Notes()
            notes["text"] = "remember the milk"
            return alice.xmpp["xep_0049"].store(notes, timeout=TIMEOUT)

        yield alice.call(store)

        def publish():
            payload = _element("<status xmlns='%s'>kept</status>" % (NODE,))
            return alice.xmpp["xep_0060"].publish(ALICE, NODE, id="current", payload=payload,
                                                  timeout=TIMEOUT)

        yield alice.call(publish)
        yield alice.call(lambda: alice.xmpp.send_message(mto=BOB, mbody="before the restart",
                                                         mtype="chat"))
        yield bob.inbox.expect(isMessage("before the restart", alice.jid, "chat"))
        yield alice.stop()
        yield bob.stop()

        yield server.stop()
        yield server.start()

        alice = yield self.client(server, "alice", "again")
        bob = yield self.client(server, "bob", "again")

        def getVCard():
            return bob.xmpp["xep_0054"].get_vcard(ALICE, cached=False, local=False,
                                                  timeout=TIMEOUT)

        iq = yield bob.call(getVCard)
        self.assertEqual(iq["vcard_temp"]["FN"], "Alice Example")

        def retrieve():
            alice.xmpp["xep_0049"].register(notesStanza())
            return alice.xmpp["xep_0049"].retrieve("notes", timeout=TIMEOUT)

        iq = yield alice.call(retrieve)
        self.assertIn("remember the milk", str(iq))

        def read():
            return bob.xmpp["xep_0060"].get_items(ALICE, NODE, timeout=TIMEOUT)

        iq = yield bob.call(read)
        self.assertIn("kept", str(iq))
        bodies, _ = yield self.allPages(bob)
        self.assertEqual(bodies, ["before the restart"])

