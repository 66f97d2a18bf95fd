"""
Tests for L{xmppws.muc.component}: the group chat service inside the
C{twistd xmppws} service, and as an external component (XEP-0114) of
the embedded server, in memory.
"""

from twisted.internet.testing import MemoryReactorClock
from twisted.test import iosim
from twisted.trial import unittest
from twisted.words.protocols.jabber import xmlstream

from tests.c2shelpers import makeServer
from tests.muchelpers import MUCClient, errorCondition, item, ofKind, statusCodes
from tests.servicehelpers import SiteClient, TCPClient, startService
from xmppws.c2s.asyncdb import InlineRunner
from xmppws.c2s import component
from xmppws.c2s.modules import installModules
from xmppws.muc.component import ExternalComponent
from xmppws.muc.service import MUCService
from xmppws.muc.settings import MUCSettings
from xmppws.service import Settings, XMPPService

JOIN = (
    b"<presence xmlns='jabber:client' to='lobby@conference.localhost/%s'>"
    b"<x xmlns='http://jabber.org/protocol/muc'/></presence>"
)
INSTANT = (
    b"<iq xmlns='jabber:client' type='set' id='i1' to='lobby@conference.localhost'>"
    b"<query xmlns='http://jabber.org/protocol/muc#owner'>"
    b"<x xmlns='jabber:x:data' type='submit'/></query></iq>"
)


class EmbeddedTests(unittest.TestCase):
    """
    C{twistd xmppws} runs the group chat service at C{conference.<domain>}
    by default, for WebSocket and TCP clients alike.
    """

    def test_rooms(self):
        """
        A WebSocket client creates a room, a TCP client enters it, and a
        message reaches both.
        """
        service = startService(self)
        [site] = service.factories("web")
        alice = SiteClient(site)
        alice.login("alice")
        bob = TCPClient(service.c2sFactory)
        bob.login("bob")
        alice.send(JOIN % (b"Alice",))
        self.assertEqual(statusCodes(alice.messages()[0]), {"110", "201"})
        alice.send(INSTANT)
        alice.messages()
        bob.send(JOIN % (b"Bob",))
        self.assertEqual(statusCodes(bob.receive()[1]), {"110"})
        alice.send(
            b"<message xmlns='jabber:client' type='groupchat' "
            b"to='lobby@conference.localhost' id='m1'><body>hi</body></message>"
        )
        self.assertEqual(len(ofKind(alice.messages(), "message")), 1)
        [message] = ofKind(bob.receive(), "message")
        self.assertEqual(message.uri, "jabber:client")
        self.assertEqual(str(message.body), "hi")

    def test_listedByServer(self):
        """
        The server lists the group chat service among its items.
        """
        service = startService(self)
        [site] = service.factories("web")
        alice = SiteClient(site)
        alice.login("alice")
        alice.send(
            b"<iq xmlns='jabber:client' type='get' id='d1' to='localhost'>"
            b"<query xmlns='http://jabber.org/protocol/disco#items'/></iq>"
        )
        [result] = alice.messages()
        self.assertIn("conference.localhost", [i["jid"] for i in result.query.elements()])

    def test_off(self):
        """
        Without group chat settings there is no service.
        """
        service = startService(self, muc=None)
        self.assertIsNone(service.muc)
        self.assertNotIn("conference.localhost", service.server.components)

    def test_stop(self):
        """
        Stopping the service tells occupants with status code 332 before
        their streams close.
        """
        service = startService(self)
        [site] = service.factories("web")
        alice = SiteClient(site)
        alice.login("alice")
        alice.send(JOIN % (b"Alice",))
        alice.messages()
        service.stopService()
        received = alice.messages()
        [gone] = ofKind(received, "presence", type="unavailable")
        self.assertEqual(statusCodes(gone), {"110", "332"})

    def test_persistentAcrossServiceRestart(self):
        """
        A persistent room made in one run of the service is there in the
        next, with its affiliations.
        """
        dataDir = self.mktemp()
        service = startService(self, dataDir=dataDir)
        [site] = service.factories("web")
        alice = SiteClient(site)
        alice.login("alice")
        alice.send(JOIN % (b"Alice",))
        alice.send(
            b"<iq xmlns='jabber:client' type='set' id='c1' to='lobby@conference.localhost'>"
            b"<query xmlns='http://jabber.org/protocol/muc#owner'>"
            b"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
            b"<value>http://jabber.org/protocol/muc#roomconfig</value></field>"
            b"<field var='muc#roomconfig_persistentroom'><value>1</value></field></x>"
            b"</query></iq>"
        )
        alice.messages()
        stopped = service.stopService()
        service.reactor.advance(11)
        service.reactor.advance(2)
        self.successResultOf(stopped)
        again = XMPPService(
            Settings(dataDir=dataDir, databaseRunner=InlineRunner()),
            MemoryReactorClock(),
            installSignalHandlers=False,
        )
        again.startService()
        self.addCleanup(again.storage.close)
        self.addCleanup(again.muc.store.close)
        room = again.muc.rooms["lobby"]
        self.assertTrue(room.config.persistent)
        self.assertEqual(room.affiliations["alice@localhost"].affiliation, "owner")


class ExternalTests(unittest.TestCase):
    """
    The service attached to the embedded server's component port.
    """

    def setUp(self):
        self.clock = MemoryReactorClock()
        self.server = makeServer(self, self.clock)
        installModules(self.server)
        self.port = component.install(self.server, "s3cret")

    def attach(self, secret="s3cret", domain="conference.localhost"):
        muc = MUCService(MUCSettings(domain), None, self.clock)
        external = ExternalComponent(self.clock, None, secret, muc)
        muc.load()
        streams = []
        external.factory.addBootstrap(xmlstream.STREAM_CONNECTED_EVENT, streams.append)
        server, client, pump = iosim.connectedServerAndClient(
            lambda: self.port.factory.buildProtocol(None),
            lambda: external.factory.buildProtocol(None),
            clock=self.clock,
        )
        pump.flush()
        return external, pump

    def test_rooms(self):
        """
        Clients of the server create and use rooms of the external
        service, and get its stanzas in C{jabber:client}.
        """
        external, pump = self.attach()
        self.assertTrue(external.connected)
        alice = MUCClient(self, self.server)
        alice.login("alice")
        alice.send(JOIN % (b"Alice",))
        pump.flush()
        received = alice.receive()
        self.assertEqual(statusCodes(received[0]), {"110", "201"})
        self.assertEqual(received[0].uri, "jabber:client")
        self.assertEqual(item(received[0])["affiliation"], "owner")

    def test_conflict(self):
        """
        A second component for a domain already served is refused with
        C{conflict}; the first keeps the domain.
        """
        first, pump = self.attach()
        second, secondPump = self.attach()
        self.assertTrue(first.connected)
        self.assertFalse(second.connected)
        alice = MUCClient(self, self.server)
        alice.login("alice")
        alice.send(JOIN % (b"Alice",))
        pump.flush()
        secondPump.flush()
        self.assertEqual(statusCodes(alice.receive()[0]), {"110", "201"})
        self.assertIn("lobby", first.muc.rooms)
        self.assertNotIn("lobby", second.muc.rooms)

    def test_wrongSecret(self):
        """
        With the wrong secret the component is not attached.
        """
        external, pump = self.attach(secret="wrong")
        self.assertFalse(external.connected)
        alice = MUCClient(self, self.server)
        alice.login("alice")
        alice.send(JOIN % (b"Alice",))
        [error] = alice.receive()
        self.assertEqual(errorCondition(error), ("cancel", "remote-server-not-found"))
        self.flushLoggedErrors()
