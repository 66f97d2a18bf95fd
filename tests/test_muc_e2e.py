"""
Group chat end to end over TCP: slixmpp's XEP-0045 plugin against the
embedded server with the group chat service attached in process, on
loopback, with the room database on its own thread.
"""

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.python.filepath import FilePath
from twisted.trial import unittest

from tests.e2ehelpers import (
    DOMAIN,
    ConnectionTracker,
    E2EServer,
    SlixmppClient,
    isMessage,
    isPresence,
)
from xmppws.c2s import component
from xmppws.muc.component import InProcessComponent
from xmppws.muc.service import MUCService
from xmppws.muc.settings import MUCSettings
from xmppws.muc.storage import RoomStore

MUC = "conference." + DOMAIN


def _codes(stanza):
    for x in stanza.elements():
        if x.name == "x" and x.uri == "http://jabber.org/protocol/muc#user":
            return {s["code"] for s in x.elements() if s.name == "status"}
    return set()


class SlixmppGroupChatTests(unittest.TestCase):
    """
    slixmpp creates a reserved room, enters it, talks through it and
    kicks.
    """

    timeout = 60

    @inlineCallbacks
    def setUp(self):
        self.tracker = ConnectionTracker(reactor)
        directory = FilePath(self.mktemp())
        self.server = E2EServer(reactor, directory, self.tracker)
        yield self.server.start()
        self.muc = InProcessComponent(
            component.router(self.server.server),
            MUCService(
                MUCSettings(MUC),
                RoomStore.inDirectory(reactor, directory.child("muc").path),
                reactor,
            ),
        )
        self.muc.startService()

        @inlineCallbacks
        def stop():
            yield self.muc.stopService()
            yield self.server.stop()
            self.assertEqual(self.server.aborted, 0, "connections were left open")

        self.addCleanup(stop)

    def client(self, username):
        client = SlixmppClient(reactor, username)
        self.addCleanup(client.stop)
        return client

    @inlineCallbacks
    def test_roomRoundTripAndKick(self):
        """
        Alice creates a room and configures it through the form, Bob
        enters, Alice's message reaches Bob with the room's stanza id, and
        Alice kicks Bob, who gets his unavailable presence with 307.
        """
        alice = self.client("alice")
        bob = self.client("bob")
        yield alice.login(self.server.c2sPort)
        yield bob.login(self.server.c2sPort)
        room = "slixmpp@" + MUC
        for client in (alice, bob):

            def plugin(c=client):
                c.xmpp.register_plugin("xep_0045")
                # The plugin takes room presence; the inbox gets it too.
                c.xmpp.add_event_handler("groupchat_presence", c._received)

            yield client.call(plugin)

        async def create():
            muc = alice.xmpp["xep_0045"]
            own = (await muc.join_muc_wait(room, "Alice", maxstanzas=0, timeout=10))[0]
            return set(own["muc"]["status_codes"])

        codes = yield alice.call(create)
        self.assertEqual(codes, {110, 201})

        async def configure():
            muc = alice.xmpp["xep_0045"]
            form = await muc.get_room_config(room, timeout=10)
            form.set_values({"muc#roomconfig_roomname": "Slixmpp room"})
            await muc.set_room_config(room, form, timeout=10)

        yield alice.call(configure)
        self.assertEqual(self.muc.muc.rooms["slixmpp"].config.name, "Slixmpp room")

        yield bob.call(
            lambda: bob.xmpp["xep_0045"].join_muc_wait(room, "Bob", maxstanzas=0, timeout=10)
        )
        yield alice.call(
            lambda: alice.xmpp.send_message(mto=room, mbody="hello room", mtype="groupchat")
        )
        message = yield bob.inbox.expect(isMessage("hello room", room + "/Alice", "groupchat"))
        [stanzaId] = [e for e in message.elements() if e.name == "stanza-id"]
        self.assertEqual(stanzaId["by"], room)

        yield alice.call(
            lambda: alice.xmpp["xep_0045"].set_role(room, "Bob", "none", reason="out", timeout=10)
        )
        gone = yield bob.inbox.expect(isPresence(room + "/Bob", "unavailable"))
        self.assertEqual(_codes(gone), {"110", "307"})
        self.assertNotIn("Bob", self.muc.muc.rooms["slixmpp"].occupants)
