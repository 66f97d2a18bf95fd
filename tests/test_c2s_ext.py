"""
Tests for the extension modules of the embedded server: offline messages,
carbons, blocking, service discovery, ping, software version and in-band
registration, over in-memory WebSockets.
"""

import importlib

from twisted.internet.testing import MemoryReactorClock
from twisted.trial import unittest
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish

from tests.c2shelpers import C2SClient, makeServer, parseElement
from xmppws import __version__
from xmppws.c2s import carbons as carbonsModule
from xmppws.c2s.modules import installModules
from xmppws.c2s.namespaces import (
    NS_BLOCKING,
    NS_BLOCKING_ERRORS,
    NS_CARBONS,
    NS_DELAY,
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    NS_FORWARD,
    NS_PING,
    NS_REGISTER,
    NS_REGISTER_FEATURE,
    NS_STANZAS,
    NS_VERSION,
)
from xmppws.c2s.server import XMPPServer
from xmppws.c2s.storage import RosterRow, Storage

EXTENSIONS = ("offline", "carbons", "blocking", "disco", "ping", "register", "version")


class PresenceStandIn:
    """
    What the presence module does that these tests need, for when it is
    not there: initial presence without C{to} or C{type} makes a session
    available and fires C{session/available} once.
    """

    def __init__(self, server):
        self.server = server
        server.on("presence/out", self.onPresence, priority=-100)

    def onPresence(self, session, presence):
        if presence.getAttribute("to") is not None:
            return None
        presenceType = presence.getAttribute("type")
        if presenceType == "unavailable":
            session.presence = None
            return True
        if presenceType is not None:
            return None
        first = session.presence is None
        session.presence = presence
        priority = presence.priority
        session.priority = int(str(priority)) if priority is not None else 0
        if first:
            self.server.fire("session/available", session)
        return True


def _importable(name):
    try:
        importlib.import_module("xmppws.c2s." + name)
    except ImportError:
        return False
    return True


def installExtensions(server, names=EXTENSIONS):
    """
    Install C{names} on C{server} after the roster and presence modules,
    or after L{PresenceStandIn} while those cannot be imported.
    """
    base = [name for name in ("roster", "presence") if _importable(name)]
    if "presence" not in base:
        PresenceStandIn(server)
        base = []
    return installModules(server, tuple(base) + tuple(names))


def children(element, uri, name):
    return list(element.elements(uri, name))


def only(elements, name):
    """
    The elements called C{name} (presence the presence module reflects,
    say, left out).
    """
    return [e for e in elements if e.name == name]


def condition(stanza):
    """
    The defined condition and type of an error stanza.
    """
    [e] = children(stanza, None, "error") or children(stanza, "jabber:client", "error")
    [cond] = [c for c in e.elements() if c.uri == NS_STANZAS and c.name != "text"]
    return cond.name, e["type"]


class ExtensionTestCase(unittest.TestCase):
    """
    A server with the extension modules and helpers to log clients in.
    """

    config = {}

    def setUp(self):
        self.clock = MemoryReactorClock()
        self.server = makeServer(self, self.clock, **self.config)
        installExtensions(self.server)

    def connect(self, user, resource="test", server=None):
        """
        A client logged in as C{user}/C{resource}, inbox emptied.
        """
        client = C2SClient(self, server or self.server)
        client.login(user, resource)
        client.receive()
        return client

    def online(self, user, resource="test", priority=None, server=None):
        """
        A client logged in and available, inbox emptied.
        """
        client = self.connect(user, resource, server)
        self.available(client, priority)
        return client

    def available(self, client, priority=None):
        body = b"" if priority is None else b"<priority>%d</priority>" % (priority,)
        client.presence(body)
        return client.receive()

    def messages(self, client):
        return only(client.receive(), "message")


class OfflineTests(ExtensionTestCase):
    """
    XEP-0160 offline storage with XEP-0203 delay stamps.
    """

    def count(self, user="bob"):
        return self.server.storage.countOffline(user, "localhost")

    def test_stored(self):
        """
        A chat message to an account with no session is stored, and the
        sender gets no error.
        """
        alice = self.online("alice")
        alice.message("bob@localhost", "hello")
        self.assertEqual(alice.receive(), [])
        self.assertEqual(self.count(), 1)

    def test_deliveredOnInitialPresence(self):
        """
        Stored messages reach a session once it sends initial presence,
        not before, and are then deleted.
        """
        alice = self.online("alice")
        alice.message("bob@localhost", "hello")
        bob = self.connect("bob")
        self.assertEqual(bob.receive(), [])
        [message] = only(self.available(bob), "message")
        self.assertEqual(str(message.body), "hello")
        self.assertEqual(message["from"], "alice@localhost/test")
        self.assertEqual(self.count(), 0)

    def test_boundButUnavailable(self):
        """
        A session that has not sent presence does not get messages to the
        bare JID; they wait for its presence.
        """
        alice = self.online("alice")
        bob = self.connect("bob")
        alice.message("bob@localhost", "hello")
        self.assertEqual(bob.receive(), [])
        self.assertEqual(self.count(), 1)
        self.assertEqual(len(only(self.available(bob), "message")), 1)

    def test_delayStamp(self):
        """
        A delivered message carries a XEP-0203 delay from the domain,
        stamped in UTC with the time it was stored.
        """
        alice = self.online("alice")
        self.server.reactor.advance(1700000000)
        alice.message("bob@localhost", "hello")
        self.server.reactor.advance(3600)
        bob = self.connect("bob")
        [message] = only(self.available(bob), "message")
        [delay] = children(message, NS_DELAY, "delay")
        self.assertEqual(delay["from"], "localhost")
        self.assertEqual(delay["stamp"], "2023-11-14T22:13:20Z")

    def test_oldestFirst(self):
        """
        Stored messages are delivered in the order they arrived.
        """
        alice = self.online("alice")
        for n in range(3):
            alice.message("bob@localhost", "m%d" % (n,), id="m%d" % (n,))
        bob = self.connect("bob")
        bodies = [str(m.body) for m in only(self.available(bob), "message")]
        self.assertEqual(bodies, ["m0", "m1", "m2"])

    def test_negativePriority(self):
        """
        A session whose initial presence has a negative priority gets no
        stored messages; they stay stored.
        """
        alice = self.online("alice")
        alice.message("bob@localhost", "hello")
        bob = self.connect("bob")
        self.assertEqual(only(self.available(bob, -1), "message"), [])
        self.assertEqual(self.count(), 1)

    def test_normalStored(self):
        """
        A message of type normal is stored too.
        """
        alice = self.online("alice")
        alice.message("bob@localhost", "hello", type="normal")
        self.assertEqual(self.count(), 1)

    def test_headlineNotStored(self):
        """
        A headline message for an unavailable account is not stored.
        """
        alice = self.online("alice")
        alice.message("bob@localhost", "news", type="headline")
        self.assertEqual(alice.receive(), [])
        self.assertEqual(self.count(), 0)

    def test_groupchatNotStored(self):
        """
        A groupchat message to an account is not stored; it is returned
        with service-unavailable.
        """
        alice = self.online("alice")
        alice.message("bob@localhost", "room", type="groupchat")
        [error] = self.messages(alice)
        self.assertEqual(condition(error), ("service-unavailable", "cancel"))
        self.assertEqual(self.count(), 0)

    def test_noStoreHint(self):
        """
        A message with the XEP-0334 no-store hint is not stored; the sender
        gets service-unavailable.
        """
        alice = self.online("alice")
        alice.send(
            b"<message xmlns='jabber:client' to='bob@localhost' type='chat' id='n1'>"
            b"<body>secret</body><no-store xmlns='urn:xmpp:hints'/></message>"
        )
        [error] = self.messages(alice)
        self.assertEqual(error["type"], "error")
        self.assertEqual(condition(error), ("service-unavailable", "cancel"))
        self.assertEqual(self.count(), 0)

    def test_chatStateDropped(self):
        """
        A chat state notification without a body is neither stored nor
        bounced.
        """
        alice = self.online("alice")
        alice.send(
            b"<message xmlns='jabber:client' to='bob@localhost' type='chat' id='c1'>"
            b"<composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
        )
        self.assertEqual(alice.receive(), [])
        self.assertEqual(self.count(), 0)

    def test_carbonNotStored(self):
        """
        A carbon copy that could not be delivered is dropped, not stored.
        """
        carbon = parseElement(
            b"<message xmlns='jabber:client' from='bob@localhost' to='bob@localhost/b'"
            b" type='chat'><received xmlns='urn:xmpp:carbons:2'><forwarded"
            b" xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'"
            b" from='alice@localhost/a' to='bob@localhost/a' type='chat'><body>hi</body>"
            b"</message></forwarded></received></message>"
        )
        self.assertTrue(self.server.fire("message/offline", carbon, JID("bob@localhost")))
        self.assertEqual(self.count(), 0)

    def test_limit(self):
        """
        Beyond the per-account limit, messages are returned with
        resource-constraint and not stored.
        """
        self.server.modules["offline"].limit = 2
        alice = self.online("alice")
        for n in range(3):
            alice.message("bob@localhost", "m%d" % (n,), id="m%d" % (n,))
        [error] = self.messages(alice)
        self.assertEqual(error["id"], "m2")
        self.assertEqual(condition(error), ("resource-constraint", "wait"))
        self.assertEqual(self.count(), 2)

    def test_limitFromConfig(self):
        """
        The limit is the configuration's C{offlineLimit} when it has one,
        else 1000.
        """
        self.assertEqual(self.server.modules["offline"].limit, 1000)
        server = makeServer(self, self.clock)
        server.config.offlineLimit = 5
        installExtensions(server)
        self.assertEqual(server.modules["offline"].limit, 5)

    def test_survivesRestart(self):
        """
        Stored messages survive a restart: a new server on the same
        database delivers them, with their delay stamp.
        """
        alice = self.online("alice")
        alice.message("bob@localhost", "before the restart")
        path = self.server.storage.path
        self.server.storage.close()
        storage = Storage(path)
        self.addCleanup(storage.close)
        server = XMPPServer(storage, self.server.config, reactor=MemoryReactorClock())
        installExtensions(server)
        bob = self.connect("bob", server=server)
        [message] = only(self.available(bob), "message")
        self.assertEqual(str(message.body), "before the restart")
        self.assertEqual(len(children(message, NS_DELAY, "delay")), 1)
        self.assertEqual(storage.countOffline("bob", "localhost"), 0)

    def test_firstStampKept(self):
        """
        A message stored again with a delay stamp from the domain keeps
        that stamp rather than getting a second one.
        """
        stored = parseElement(
            b"<message xmlns='jabber:client' from='alice@localhost/a' to='bob@localhost'"
            b" type='chat'><body>hi</body><delay xmlns='urn:xmpp:delay' from='localhost'"
            b" stamp='2020-01-01T00:00:00Z'/></message>"
        )
        self.server.fire("message/offline", stored, JID("bob@localhost"))
        bob = self.connect("bob")
        [message] = only(self.available(bob), "message")
        [delay] = children(message, NS_DELAY, "delay")
        self.assertEqual(delay["stamp"], "2020-01-01T00:00:00Z")

    def test_announced(self):
        """
        The server announces C{msgoffline} in its disco features.
        """
        self.assertIn("msgoffline", self.server.modules["disco"].serverFeatures())


class CarbonsTests(ExtensionTestCase):
    """
    XEP-0280 message carbons.
    """

    def enable(self, client, element=b"enable"):
        [reply] = only(
            client.iq(b"<" + element + b" xmlns='urn:xmpp:carbons:2'/>", type="set"), "iq"
        )
        self.assertEqual(reply["type"], "result")

    def forwarded(self, wrapper, direction):
        """
        The message forwarded in a carbon.
        """
        [carbon] = children(wrapper, NS_CARBONS, direction)
        [forwarded] = children(carbon, NS_FORWARD, "forwarded")
        [message] = children(forwarded, "jabber:client", "message")
        return message

    def test_enable(self):
        """
        Enabling carbons is answered with a result and marks the session.
        """
        alice = self.online("alice", "a")
        self.enable(alice)
        [session] = self.server.sessionsOf(JID("alice@localhost"))
        self.assertTrue(session.carbons)

    def test_disable(self):
        """
        Disabling carbons is answered with a result and clears the mark.
        """
        alice = self.online("alice", "a")
        self.enable(alice)
        self.enable(alice, b"disable")
        [session] = self.server.sessionsOf(JID("alice@localhost"))
        self.assertFalse(session.carbons)

    def test_getIsBadRequest(self):
        """
        An enable request of type get is a bad request.
        """
        alice = self.online("alice", "a")
        [reply] = alice.iq(b"<enable xmlns='urn:xmpp:carbons:2'/>")
        self.assertEqual(condition(reply), ("bad-request", "modify"))

    def test_sentCopy(self):
        """
        A chat message one resource sends is copied, as sent, to the
        account's other resources that enabled carbons, not to the sender.
        """
        a = self.online("alice", "a")
        b = self.online("alice", "b")
        bob = self.online("bob")
        self.enable(b)
        a.receive()
        a.message("bob@localhost/test", "hi")
        self.assertEqual(self.messages(a), [])
        [wrapper] = self.messages(b)
        self.assertEqual(wrapper["from"], "alice@localhost")
        self.assertEqual(wrapper["to"], "alice@localhost/b")
        message = self.forwarded(wrapper, "sent")
        self.assertEqual(message["from"], "alice@localhost/a")
        self.assertEqual(message["to"], "bob@localhost/test")
        self.assertEqual(str(message.body), "hi")
        self.assertEqual(len(self.messages(bob)), 1)

    def test_receivedCopyFullJID(self):
        """
        A chat message delivered to one full JID is copied, as received, to
        the account's other enabled resources.
        """
        a = self.online("alice", "a")
        b = self.online("alice", "b")
        self.enable(a)
        self.enable(b)
        bob = self.online("bob")
        a.receive()
        b.receive()
        bob.message("alice@localhost/a", "hi")
        [original] = self.messages(a)
        self.assertEqual(children(original, NS_CARBONS, "received"), [])
        [wrapper] = self.messages(b)
        self.assertEqual(wrapper["from"], "alice@localhost")
        message = self.forwarded(wrapper, "received")
        self.assertEqual(message["from"], "bob@localhost/test")
        self.assertEqual(message["to"], "alice@localhost/a")

    def test_receivedCopyBareJID(self):
        """
        A chat message to the bare JID goes to the highest priority
        resource, and as a received carbon to the other enabled ones.
        """
        a = self.online("alice", "a", priority=5)
        b = self.online("alice", "b", priority=1)
        self.enable(b)
        bob = self.online("bob")
        a.receive()
        bob.message("alice@localhost", "hi")
        self.assertEqual(len(self.messages(a)), 1)
        [wrapper] = self.messages(b)
        self.assertEqual(str(self.forwarded(wrapper, "received").body), "hi")

    def test_noCopyToRecipients(self):
        """
        Resources that get the original message to the bare JID (equal top
        priority) get no carbon of it.
        """
        a = self.online("alice", "a")
        b = self.online("alice", "b")
        self.enable(a)
        self.enable(b)
        bob = self.online("bob")
        a.receive()
        b.receive()
        bob.message("alice@localhost", "hi")
        for client in (a, b):
            [message] = self.messages(client)
            self.assertEqual(str(message.body), "hi")

    def test_notEnabled(self):
        """
        A resource that did not enable carbons gets no copies.
        """
        a = self.online("alice", "a")
        b = self.online("alice", "b")
        bob = self.online("bob")
        b.receive()
        a.message("bob@localhost", "out")
        bob.message("alice@localhost/a", "in")
        self.assertEqual(self.messages(b), [])

    def test_disabled(self):
        """
        After disabling carbons a resource gets no more copies.
        """
        a = self.online("alice", "a")
        b = self.online("alice", "b")
        self.enable(b)
        self.enable(b, b"disable")
        self.online("bob")
        a.message("bob@localhost", "out")
        self.assertEqual(self.messages(b), [])

    def test_private(self):
        """
        A message with the carbons C{<private/>} element is not copied,
        sent or received.
        """
        a = self.online("alice", "a")
        b = self.online("alice", "b")
        self.enable(b)
        bob = self.online("bob")
        b.receive()
        private = b"<private xmlns='urn:xmpp:carbons:2'/>"
        a.send(
            b"<message xmlns='jabber:client' to='bob@localhost' type='chat'>"
            b"<body>x</body>" + private + b"</message>"
        )
        bob.send(
            b"<message xmlns='jabber:client' to='alice@localhost/a' type='chat'>"
            b"<body>y</body>" + private + b"</message>"
        )
        self.assertEqual(self.messages(b), [])
        self.assertEqual(len(self.messages(a)), 1)

    def test_noCopyHint(self):
        """
        A message with the XEP-0334 C{<no-copy/>} hint is not copied.
        """
        a = self.online("alice", "a")
        b = self.online("alice", "b")
        self.enable(b)
        self.online("bob")
        b.receive()
        a.send(
            b"<message xmlns='jabber:client' to='bob@localhost' type='chat'>"
            b"<body>x</body><no-copy xmlns='urn:xmpp:hints'/></message>"
        )
        self.assertEqual(self.messages(b), [])

    def test_ownResources(self):
        """
        A message between two resources of one account is copied once, as
        sent, to a third enabled resource, and to neither end.
        """
        a = self.online("alice", "a")
        b = self.online("alice", "b")
        c = self.online("alice", "c")
        for client in (a, b, c):
            self.enable(client)
            client.receive()
        a.message("alice@localhost/b", "note")
        self.assertEqual(self.messages(a), [])
        [original] = self.messages(b)
        self.assertEqual(str(original.body), "note")
        [wrapper] = self.messages(c)
        self.assertEqual(str(self.forwarded(wrapper, "sent").body), "note")

    def test_eligible(self):
        """
        Chat messages and normal messages with a body or an IM payload are
        eligible; the others are not.
        """

        def message(body, type=None):
            data = b"<message xmlns='jabber:client'"
            if type:
                data += b" type='" + type.encode() + b"'"
            return parseElement(data + b">" + body + b"</message>")

        eligible = carbonsModule.isEligible
        self.assertTrue(eligible(message(b"", "chat")))
        self.assertTrue(eligible(message(b"<body>x</body>")))
        receipt = b"<received xmlns='urn:xmpp:receipts' id='1'/>"
        self.assertTrue(eligible(message(receipt, "normal")))
        self.assertFalse(eligible(message(b"")))
        self.assertFalse(eligible(message(b"<body>x</body>", "headline")))
        self.assertFalse(eligible(message(b"<body>x</body>", "groupchat")))
        self.assertFalse(eligible(message(b"<body>x</body>", "error")))
        self.assertFalse(
            eligible(message(b"<sent xmlns='urn:xmpp:carbons:2'/>", "chat"))
        )

    def test_announced(self):
        """
        The server announces C{urn:xmpp:carbons:2} in its disco features.
        """
        self.assertIn(NS_CARBONS, self.server.modules["disco"].serverFeatures())


class BlockingTests(ExtensionTestCase):
    """
    XEP-0191 blocking command.
    """

    def setUp(self):
        ExtensionTestCase.setUp(self)
        self.seen = []
        self.server.on("stanza/in", self._observe, priority=50)

    def _observe(self, stanza, to):
        self.seen.append(stanza)

    def seenBy(self, jid, name="presence"):
        return [
            s for s in self.seen if s.getAttribute("to", "").startswith(jid) and s.name == name
        ]

    def blocklist(self, client):
        [reply] = only(client.iq(b"<blocklist xmlns='urn:xmpp:blocking'/>"), "iq")
        [blocklist] = children(reply, NS_BLOCKING, "blocklist")
        return [item["jid"] for item in blocklist.elements(NS_BLOCKING, "item")]

    def block(self, client, *jids, name="block"):
        items = b"".join(b"<item jid='" + j.encode() + b"'/>" for j in jids)
        return client.iq(
            b"<" + name.encode() + b" xmlns='urn:xmpp:blocking'>" + items
            + b"</" + name.encode() + b">",
            type="set",
            id="b1",
        )

    def test_emptyList(self):
        """
        A new account's block list is empty.
        """
        alice = self.online("alice")
        self.assertEqual(self.blocklist(alice), [])

    def test_block(self):
        """
        Blocking is answered with a result and the JIDs show in the list.
        """
        alice = self.online("alice")
        replies = only(self.block(alice, "bob@localhost", "example.org"), "iq")
        self.assertEqual(replies[0]["type"], "result")
        self.assertEqual(self.blocklist(alice), ["bob@localhost", "example.org"])

    def test_pushes(self):
        """
        A block goes as a push to every resource that fetched the list, and
        not to the others.
        """
        a = self.online("alice", "a")
        b = self.online("alice", "b")
        c = self.online("alice", "c")
        self.blocklist(a)
        self.blocklist(b)
        c.receive()
        replies = only(self.block(a, "bob@localhost"), "iq")
        self.assertEqual([r["type"] for r in replies], ["result", "set"])
        [push] = only(b.receive(), "iq")
        self.assertEqual(push["type"], "set")
        self.assertEqual(push["to"], "alice@localhost/b")
        [block] = children(push, NS_BLOCKING, "block")
        self.assertEqual([i["jid"] for i in block.elements()], ["bob@localhost"])
        self.assertEqual(only(c.receive(), "iq"), [])

    def test_emptyBlock(self):
        """
        A block without items is a bad request.
        """
        alice = self.online("alice")
        [reply] = only(self.block(alice), "iq")
        self.assertEqual(condition(reply), ("bad-request", "modify"))

    def test_malformedJID(self):
        """
        A block of an invalid JID is answered with jid-malformed and blocks
        nothing.
        """
        alice = self.online("alice")
        [reply] = only(self.block(alice, "bob@localhost", "a@b@c"), "iq")
        self.assertEqual(condition(reply), ("jid-malformed", "modify"))
        self.assertEqual(self.blocklist(alice), [])

    def test_inboundMessage(self):
        """
        A message from a blocked JID is not delivered; its sender gets
        service-unavailable.
        """
        alice = self.online("alice")
        bob = self.online("bob")
        self.block(alice, "bob@localhost")
        bob.message("alice@localhost/test", "hi")
        self.assertEqual(self.messages(alice), [])
        [error] = self.messages(bob)
        self.assertEqual(condition(error), ("service-unavailable", "cancel"))

    def test_inboundOffline(self):
        """
        A message from a blocked JID to an unavailable account is not
        stored.
        """
        alice = self.online("alice")
        self.block(alice, "bob@localhost")
        alice.ws.protocol.transport.loseConnection()
        bob = self.online("bob")
        bob.message("alice@localhost", "hi")
        self.assertEqual(self.server.storage.countOffline("alice", "localhost"), 0)

    def test_inboundIQ(self):
        """
        An iq get from a blocked JID is answered with service-unavailable
        and not delivered.
        """
        alice = self.online("alice")
        bob = self.online("bob")
        self.block(alice, "bob@localhost")
        alice.receive()
        replies = bob.iq(b"<query xmlns='jabber:iq:version'/>", to="alice@localhost/test")
        [error] = only(replies, "iq")
        self.assertEqual(condition(error), ("service-unavailable", "cancel"))
        self.assertEqual(alice.receive(), [])

    def test_inboundPresence(self):
        """
        Presence from a blocked JID is dropped silently.
        """
        alice = self.online("alice")
        bob = self.online("bob")
        self.block(alice, "bob@localhost")
        alice.receive()
        bob.presence(to="alice@localhost/test")
        self.assertEqual(alice.receive(), [])
        self.assertEqual(bob.receive(), [])

    def test_domainMatches(self):
        """
        A blocked domain blocks every JID at it.
        """
        alice = self.online("alice")
        carol = self.online("carol", "phone")
        self.block(alice, "localhost")
        carol.message("alice@localhost/test", "hi")
        self.assertEqual(self.messages(alice), [])

    def test_ownServerNeverBlocked(self):
        """
        Blocking one's own domain blocks its accounts but not the server
        itself: its answers still arrive.
        """
        alice = self.online("alice")
        self.block(alice, "localhost")
        [reply] = only(alice.iq(b"<ping xmlns='urn:xmpp:ping'/>", to="localhost"), "iq")
        self.assertEqual(reply["type"], "result")

    def test_fullJIDMatchesOnlyItself(self):
        """
        A blocked full JID blocks only that resource.
        """
        alice = self.online("alice")
        phone = self.online("bob", "phone")
        laptop = self.online("bob", "laptop")
        self.block(alice, "bob@localhost/phone")
        phone.message("alice@localhost/test", "from phone")
        laptop.message("alice@localhost/test", "from laptop")
        self.assertEqual([str(m.body) for m in self.messages(alice)], ["from laptop"])

    def test_outbound(self):
        """
        A stanza to a blocked JID is not routed; the sender gets
        not-acceptable with the blocking error condition.
        """
        alice = self.online("alice")
        bob = self.online("bob")
        self.block(alice, "bob@localhost")
        alice.receive()
        alice.message("bob@localhost", "hi")
        [error] = self.messages(alice)
        self.assertEqual(error["from"], "bob@localhost")
        self.assertEqual(condition(error), ("not-acceptable", "cancel"))
        [e] = children(error, "jabber:client", "error")
        self.assertEqual(len(children(e, NS_BLOCKING_ERRORS, "blocked")), 1)
        self.assertEqual(self.messages(bob), [])

    def test_outboundIQ(self):
        """
        An iq to a blocked JID gets not-acceptable too.
        """
        alice = self.online("alice")
        self.online("bob")
        self.block(alice, "bob@localhost")
        alice.receive()
        [error] = only(alice.iq(b"<ping xmlns='urn:xmpp:ping'/>", to="bob@localhost/test"), "iq")
        self.assertEqual(condition(error), ("not-acceptable", "cancel"))

    def test_serverStanzasToBlocked(self):
        """
        Stanzas the server sends on the account's behalf to a blocked JID
        (a presence broadcast, say) are dropped.
        """
        alice = self.online("alice")
        self.block(alice, "bob@localhost")
        presence = domish.Element(("jabber:client", "presence"))
        presence["from"] = "alice@localhost/test"
        presence["to"] = "bob@localhost"
        del self.seen[:]
        self.server.route(presence)
        self.assertEqual(self.seen, [])

    def test_unavailableOnBlock(self):
        """
        Blocking a contact subscribed to the account's presence sends it
        unavailable presence from each available resource.
        """
        self.server.storage.saveRosterItem(
            "alice", "localhost", RosterRow("bob@localhost", subscription="both")
        )
        alice = self.online("alice")
        self.online("bob")
        del self.seen[:]
        self.block(alice, "bob@localhost")
        [presence] = self.seenBy("bob@localhost")
        self.assertEqual(presence["from"], "alice@localhost/test")
        self.assertEqual(presence["type"], "unavailable")

    def test_noPresenceToUnsubscribed(self):
        """
        Blocking a contact that may not see the account's presence sends
        it nothing.
        """
        alice = self.online("alice")
        self.online("bob")
        del self.seen[:]
        self.block(alice, "bob@localhost")
        self.assertEqual(self.seenBy("bob@localhost"), [])

    def test_unblock(self):
        """
        Unblocking some JIDs removes them, pushes the change and lets their
        stanzas through again.
        """
        alice = self.online("alice", "a")
        other = self.online("alice", "b")
        bob = self.online("bob")
        self.block(alice, "bob@localhost", "carol@localhost")
        self.blocklist(other)
        replies = only(self.block(alice, "bob@localhost", name="unblock"), "iq")
        self.assertEqual(replies[0]["type"], "result")
        [push] = only(other.receive(), "iq")
        [unblock] = children(push, NS_BLOCKING, "unblock")
        self.assertEqual([i["jid"] for i in unblock.elements()], ["bob@localhost"])
        self.assertEqual(self.blocklist(alice), ["carol@localhost"])
        bob.message("alice@localhost/a", "hi again")
        self.assertEqual([str(m.body) for m in self.messages(alice)], ["hi again"])

    def test_unblockAll(self):
        """
        An unblock without items empties the list and pushes an empty
        unblock.
        """
        alice = self.online("alice", "a")
        other = self.online("alice", "b")
        self.block(alice, "bob@localhost", "carol@localhost")
        self.blocklist(other)
        self.block(alice, name="unblock")
        [push] = only(other.receive(), "iq")
        [unblock] = children(push, NS_BLOCKING, "unblock")
        self.assertEqual(list(unblock.elements()), [])
        self.assertEqual(self.blocklist(alice), [])
        self.assertEqual(self.server.storage.blocklist("alice", "localhost"), [])

    def test_presenceOnUnblock(self):
        """
        Unblocking a subscribed contact sends it the current presence of
        each available resource.
        """
        self.server.storage.saveRosterItem(
            "alice", "localhost", RosterRow("bob@localhost", subscription="from")
        )
        alice = self.connect("alice")
        alice.presence(b"<show>away</show>")
        self.block(alice, "bob@localhost")
        del self.seen[:]
        self.block(alice, "bob@localhost", name="unblock")
        [presence] = self.seenBy("bob@localhost")
        self.assertEqual(presence["from"], "alice@localhost/test")
        self.assertIsNone(presence.getAttribute("type"))
        self.assertEqual(str(presence.show), "away")

    def test_persistent(self):
        """
        The block list is kept in the database.
        """
        alice = self.online("alice")
        self.block(alice, "bob@localhost")
        self.assertEqual(self.server.storage.blocklist("alice", "localhost"), ["bob@localhost"])

    def test_announced(self):
        """
        The server announces C{urn:xmpp:blocking} in its disco features.
        """
        self.assertIn(NS_BLOCKING, self.server.modules["disco"].serverFeatures())


class BlockingPresenceTests(ExtensionTestCase):
    """
    Blocking with the presence module: what a blocked contact sees.
    """

    def setUp(self):
        ExtensionTestCase.setUp(self)
        if "presence" not in self.server.modules:
            raise unittest.SkipTest("needs xmppws.c2s.presence")
        storage = self.server.storage
        for user, contact in (("alice", "bob"), ("bob", "alice")):
            storage.saveRosterItem(
                user, "localhost", RosterRow(contact + "@localhost", subscription="both")
            )
        self.alice = self.online("alice")
        self.bob = self.online("bob")
        self.alice.receive()

    def blockBob(self, name="block"):
        self.alice.iq(
            b"<" + name.encode() + b" xmlns='urn:xmpp:blocking'><item jid='bob@localhost'/></"
            + name.encode() + b">",
            type="set",
        )

    def test_blockedContactSeesUnavailable(self):
        """
        The blocked contact gets unavailable presence from the account,
        then none of its presence changes.
        """
        self.blockBob()
        [presence] = only(self.bob.receive(), "presence")
        self.assertEqual(presence["from"], "alice@localhost/test")
        self.assertEqual(presence["type"], "unavailable")
        self.alice.presence(b"<show>away</show>")
        self.assertEqual(only(self.bob.receive(), "presence"), [])

    def test_unblockedContactSeesPresence(self):
        """
        After unblocking, the contact gets the account's current presence.
        """
        self.blockBob()
        self.alice.presence(b"<show>dnd</show>")
        self.bob.receive()
        self.blockBob("unblock")
        [presence] = only(self.bob.receive(), "presence")
        self.assertEqual(presence["from"], "alice@localhost/test")
        self.assertEqual(str(presence.show), "dnd")

    def test_blockedContactPresenceDropped(self):
        """
        The blocked contact's presence changes do not reach the account.
        """
        self.blockBob()
        self.alice.receive()
        self.bob.presence(b"<show>chat</show>")
        self.assertEqual(only(self.alice.receive(), "presence"), [])


class DiscoTests(ExtensionTestCase):
    """
    XEP-0030 service discovery of the server and of accounts.
    """

    def info(self, client, to="localhost", node=None):
        attrs = b"" if node is None else b" node='" + node.encode() + b"'"
        return only(
            client.iq(b"<query xmlns='" + NS_DISCO_INFO.encode() + b"'" + attrs + b"/>", to=to),
            "iq",
        )

    def test_serverIdentity(self):
        """
        The server is a C{server/im} named xmppws.
        """
        alice = self.online("alice")
        [reply] = self.info(alice)
        self.assertEqual(reply["type"], "result")
        self.assertEqual(reply["from"], "localhost")
        [identity] = children(reply.query, NS_DISCO_INFO, "identity")
        self.assertEqual(
            (identity["category"], identity["type"], identity["name"]), ("server", "im", "xmppws")
        )

    def test_serverFeatures(self):
        """
        The server's features include those of every installed module.
        """
        alice = self.online("alice")
        [reply] = self.info(alice)
        features = {f["var"] for f in reply.query.elements(NS_DISCO_INFO, "feature")}
        for feature in (
            NS_DISCO_INFO,
            NS_DISCO_ITEMS,
            NS_PING,
            NS_CARBONS,
            NS_BLOCKING,
            "msgoffline",
            NS_VERSION,
        ):
            self.assertIn(feature, features)
        self.assertNotIn(NS_REGISTER, features)

    def test_addFeature(self):
        """
        L{xmppws.c2s.disco.Disco.addFeature} adds a feature to the server's
        list.
        """
        self.server.modules["disco"].addFeature("urn:example:feature")
        alice = self.online("alice")
        [reply] = self.info(alice)
        features = {f["var"] for f in reply.query.elements(NS_DISCO_INFO, "feature")}
        self.assertIn("urn:example:feature", features)

    def test_unknownNode(self):
        """
        Info about an unknown node is item-not-found.
        """
        alice = self.online("alice")
        [reply] = self.info(alice, node="urn:example:node")
        self.assertEqual(condition(reply), ("item-not-found", "cancel"))

    def test_items(self):
        """
        The server's items are its attached components.
        """
        self.server.components["echo.localhost"] = lambda stanza: None
        alice = self.online("alice")
        [reply] = only(
            alice.iq(b"<query xmlns='" + NS_DISCO_ITEMS.encode() + b"'/>", to="localhost"), "iq"
        )
        self.assertEqual(
            [i["jid"] for i in reply.query.elements(NS_DISCO_ITEMS, "item")], ["echo.localhost"]
        )

    def test_ownAccount(self):
        """
        Info about one's own bare JID is answered for the account.
        """
        alice = self.online("alice")
        [reply] = self.info(alice, to="alice@localhost")
        self.assertEqual(reply["type"], "result")
        self.assertEqual(reply["from"], "alice@localhost")
        [identity] = children(reply.query, NS_DISCO_INFO, "identity")
        self.assertEqual((identity["category"], identity["type"]), ("account", "registered"))

    def test_noTo(self):
        """
        Info requested without C{to} is about one's own account.
        """
        alice = self.online("alice")
        [reply] = self.info(alice, to=None)
        [identity] = children(reply.query, NS_DISCO_INFO, "identity")
        self.assertEqual(identity["category"], "account")

    def test_otherAccountSubscribed(self):
        """
        A contact subscribed to an account's presence gets its info.
        """
        self.server.storage.saveRosterItem(
            "bob", "localhost", RosterRow("alice@localhost", subscription="from")
        )
        alice = self.online("alice")
        [reply] = self.info(alice, to="bob@localhost")
        self.assertEqual(reply["type"], "result")
        self.assertEqual(reply["from"], "bob@localhost")

    def test_otherAccountNotSubscribed(self):
        """
        Anyone else gets service-unavailable, as for a missing account.
        """
        alice = self.online("alice")
        [reply] = self.info(alice, to="bob@localhost")
        self.assertEqual(condition(reply), ("service-unavailable", "cancel"))
        [reply] = self.info(alice, to="nobody@localhost")
        self.assertEqual(condition(reply), ("service-unavailable", "cancel"))


class PingVersionTests(ExtensionTestCase):
    """
    XEP-0199 ping and XEP-0092 software version.
    """

    def test_pingServer(self):
        """
        A ping to the server is answered with a result.
        """
        alice = self.online("alice")
        [reply] = alice.iq(b"<ping xmlns='urn:xmpp:ping'/>", to="localhost", id="p1")
        self.assertEqual(
            (reply["type"], reply["id"], reply["from"]), ("result", "p1", "localhost")
        )

    def test_pingOwnAccount(self):
        """
        A ping to one's own bare JID is answered by the server.
        """
        alice = self.online("alice")
        [reply] = alice.iq(b"<ping xmlns='urn:xmpp:ping'/>", to="alice@localhost", id="p2")
        self.assertEqual((reply["type"], reply["id"]), ("result", "p2"))

    def test_version(self):
        """
        The server tells its name and version, and no operating system.
        """
        alice = self.online("alice")
        [reply] = alice.iq(b"<query xmlns='jabber:iq:version'/>", to="localhost")
        self.assertEqual(reply["type"], "result")
        query = reply.query
        self.assertEqual(query.uri, NS_VERSION)
        fields = {child.name: str(child) for child in query.elements(NS_VERSION)}
        self.assertEqual(fields, {"name": "xmppws", "version": __version__})


class RegistrationOffTests(ExtensionTestCase):
    """
    In-band registration is off by default.
    """

    def test_noFeature(self):
        """
        The register stream feature is not offered.
        """
        client = C2SClient(self, self.server)
        features = client.open()[-1]
        self.assertEqual(children(features, NS_REGISTER_FEATURE, "register"), [])

    def test_preAuthRefused(self):
        """
        A register iq before authentication ends the stream with
        not-authorized.
        """
        client = C2SClient(self, self.server)
        client.open()
        replies = client.iq(b"<query xmlns='jabber:iq:register'/>")
        [streamError] = only(replies, "error")
        self.assertEqual(streamError.firstChildElement().name, "not-authorized")

    def test_sessionRefused(self):
        """
        A register iq from a session gets service-unavailable.
        """
        alice = self.online("alice")
        [reply] = alice.iq(b"<query xmlns='jabber:iq:register'/>")
        self.assertEqual(condition(reply), ("service-unavailable", "cancel"))

    def test_notAnnounced(self):
        """
        C{jabber:iq:register} is not among the server's disco features.
        """
        self.assertNotIn(NS_REGISTER, self.server.modules["disco"].serverFeatures())


class RegistrationTests(ExtensionTestCase):
    """
    XEP-0077 in-band registration, switched on.
    """

    config = {"registration": True}

    def register(self, username, password, client=None, peer="127.0.0.1"):
        if client is None:
            client = C2SClient(self, self.server, peer=peer)
            client.open()
        fields = b""
        if username is not None:
            fields += b"<username>" + username.encode() + b"</username>"
        if password is not None:
            fields += b"<password>" + password.encode() + b"</password>"
        query = b"<query xmlns='jabber:iq:register'>" + fields + b"</query>"
        [reply] = client.iq(query, type="set")
        return reply

    def test_feature(self):
        """
        The register stream feature is offered before authentication.
        """
        client = C2SClient(self, self.server, peer="127.0.0.1")
        features = client.open()[-1]
        self.assertEqual(len(children(features, NS_REGISTER_FEATURE, "register")), 1)

    def test_notWherePlainIsNot(self):
        """
        Where PLAIN is not offered (unencrypted, not loopback), neither is
        registration, and a register iq gets policy-violation.
        """
        client = C2SClient(self, self.server, peer="192.0.2.1")
        features = client.open()[-1]
        self.assertEqual(children(features, NS_REGISTER_FEATURE, "register"), [])
        reply = self.register("dave", "pw", client=client)
        self.assertEqual(condition(reply), ("policy-violation", "modify"))
        self.assertFalse(self.server.storage.userExists("dave", "localhost"))

    def test_form(self):
        """
        A get returns instructions and the username and password fields.
        """
        client = C2SClient(self, self.server, peer="127.0.0.1")
        client.open()
        [reply] = client.iq(b"<query xmlns='jabber:iq:register'/>")
        self.assertEqual(reply["type"], "result")
        names = [c.name for c in reply.query.elements()]
        self.assertEqual(names, ["instructions", "username", "password"])

    def test_register(self):
        """
        A set creates the account, and it can then log in.
        """
        reply = self.register("Dave", "pw")
        self.assertEqual(reply["type"], "result")
        self.assertTrue(self.server.storage.userExists("dave", "localhost"))
        client = C2SClient(self, self.server)
        self.assertEqual(client.login("dave", password="pw"), "dave@localhost/test")

    def test_conflict(self):
        """
        Registering an existing account is a conflict.
        """
        reply = self.register("alice", "other")
        self.assertEqual(condition(reply), ("conflict", "cancel"))
        self.assertTrue(self.server.storage.checkPassword("alice", "localhost", "secret"))

    def test_emptyPassword(self):
        """
        An empty or missing password is not acceptable.
        """
        self.assertEqual(condition(self.register("dave", "")), ("not-acceptable", "modify"))
        self.assertEqual(condition(self.register("dave", None)), ("not-acceptable", "modify"))
        self.assertFalse(self.server.storage.userExists("dave", "localhost"))

    def test_badUsername(self):
        """
        A username that is not a valid localpart is not acceptable.
        """
        self.assertEqual(condition(self.register("da@ve", "pw")), ("not-acceptable", "modify"))
        self.assertEqual(condition(self.register("", "pw")), ("not-acceptable", "modify"))

    def test_throttled(self):
        """
        A second registration from one address within the interval gets
        policy-violation; after it, it succeeds.
        """
        self.assertEqual(self.register("dave", "pw")["type"], "result")
        reply = self.register("erin", "pw")
        self.assertEqual(condition(reply), ("policy-violation", "wait"))
        self.server.reactor.advance(61)
        self.assertEqual(self.register("erin", "pw")["type"], "result")

    def test_announced(self):
        """
        C{jabber:iq:register} is among the server's disco features.
        """
        self.assertIn(NS_REGISTER, self.server.modules["disco"].serverFeatures())

    def test_sessionGet(self):
        """
        A session's get says it is registered, with its username.
        """
        alice = self.online("alice")
        [reply] = alice.iq(b"<query xmlns='jabber:iq:register'/>")
        self.assertEqual(len(children(reply.query, NS_REGISTER, "registered")), 1)
        self.assertEqual(str(reply.query.username), "alice")

    def test_changePassword(self):
        """
        A session changes its password with its username and a new one.
        """
        alice = self.online("alice")
        reply = self.register("alice", "new", client=alice)
        self.assertEqual(reply["type"], "result")
        self.assertTrue(self.server.storage.checkPassword("alice", "localhost", "new"))

    def test_changePasswordToServer(self):
        """
        The change may be addressed to the server's domain.
        """
        alice = self.online("alice")
        [reply] = alice.iq(
            b"<query xmlns='jabber:iq:register'><username>alice</username>"
            b"<password>new</password></query>",
            type="set",
            to="localhost",
        )
        self.assertEqual(reply["type"], "result")
        self.assertTrue(self.server.storage.checkPassword("alice", "localhost", "new"))

    def test_changeOtherPassword(self):
        """
        Changing another account's password is a bad request.
        """
        alice = self.online("alice")
        reply = self.register("bob", "new", client=alice)
        self.assertEqual(condition(reply), ("bad-request", "modify"))
        self.assertTrue(self.server.storage.checkPassword("bob", "localhost", "secret"))

    def test_changeEmptyPassword(self):
        """
        An empty new password is not acceptable.
        """
        alice = self.online("alice")
        reply = self.register("alice", "", client=alice)
        self.assertEqual(condition(reply), ("not-acceptable", "modify"))

    def test_remove(self):
        """
        Removing the account answers with a result, ends every session of
        the account with not-authorized, fires C{account/remove} and
        deletes the account.
        """
        removed = []
        self.server.on("account/remove", removed.append)
        a = self.online("alice", "a")
        b = self.online("alice", "b")
        b.receive()
        replies = a.iq(b"<query xmlns='jabber:iq:register'><remove/></query>", type="set")
        [reply] = only(replies, "iq")
        self.assertEqual(reply["type"], "result")
        for client, received in ((a, replies), (b, b.receive())):
            [streamError] = only(received, "error")
            self.assertEqual(streamError.firstChildElement().name, "not-authorized")
        self.assertEqual(removed, [JID("alice@localhost")])
        self.assertEqual(self.server.sessionsOf(JID("alice@localhost")), [])
        self.assertFalse(self.server.storage.userExists("alice", "localhost"))
