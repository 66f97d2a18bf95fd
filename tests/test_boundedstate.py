# -*- test-case-name: tests.test_boundedstate -*-
"""
Addresses clients make up leave nothing behind: ten thousand stanzas to
distinct JIDs (and distinct stream header C{to}s, bound resources,
roster and block list items, component headers) leave Twisted's JID
intern cache and every table of the embedded server the size they were.

The memory itself is measured by C{bench/jid_memory.py}; this test
asserts what makes it flat.
"""

from collections import deque

from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial import unittest
from twisted.words.protocols.jabber import jid as twistedjid

from tests.c2shelpers import C2SClient, makeServer
from xmppws.c2s import component
from xmppws.c2s.modules import installModules
from xmppws.c2s.quotas import Quotas

# Twisted's intern cache: a module global (so its name is not mangled),
# fed by internJID() and by JID.userhostJID() on JIDs with a resource.
INTERNED = vars(twistedjid)["__internJIDs"]

CONTAINERS = (dict, set, frozenset, list, deque)

STANZAS = 10000


def tableSizes(server):
    """
    The size of every container the server, its modules, the login
    throttle and its sessions hold, by name.
    """
    owners = {"server": server, "throttle": server.throttle}
    for name, state in server.modules.items():
        owners["module " + name] = state
        store = getattr(state, "store", None)
        if store is not None:
            # The archive's queue of rows to write, and the like.
            owners["store of " + name] = store
    for bare, resources in server.sessions.items():
        for resource, session in resources.items():
            owners["session %s/%s" % (bare, resource)] = session
            if session.sm is not None:
                owners["sm %s/%s" % (bare, resource)] = session.sm
    sizes = {}
    for owner, obj in owners.items():
        for name, value in vars(obj).items():
            if isinstance(value, CONTAINERS):
                sizes["%s.%s" % (owner, name)] = len(value)
    for name, size in server.throttle.sizes().items():
        sizes["throttle table " + name] = size
    return sizes


class DistinctJIDTests(unittest.TestCase):
    """
    Stanzas, headers and binds with addresses nobody used before.
    """

    def setUp(self):
        self.clock = MemoryReactorClock()
        self.server = makeServer(
            self,
            self.clock,
            quotas=Quotas(
                maxRosterItems=40,
                maxPendingSubscriptions=40,
                maxBlocked=40,
                maxDirectedPresences=40,
                maxOfflineMessages=40,
            ),
        )
        installModules(self.server)
        self.components = component.install(self.server, "s3cret")
        self.alice = C2SClient(self, self.server)
        self.alice.login("alice", "desk")
        self.alice.presence()
        self.alice.iq(b"<enable xmlns='urn:xmpp:carbons:2'/>", "set")
        self.phone = C2SClient(self, self.server)
        self.phone.login("alice", "phone")
        self.phone.iq(b"<enable xmlns='urn:xmpp:carbons:2'/>", "set")
        self.phone.iq(b"<query xmlns='jabber:iq:roster'/>")
        self.phone.iq(b"<blocklist xmlns='urn:xmpp:blocking'/>")
        self.bob = C2SClient(self, self.server)
        self.bob.login("bob", "desk")
        self.bob.presence()
        self.drain()

    def drain(self):
        # Queued archive rows are written.
        for state in self.server.modules.values():
            store = getattr(state, "store", None)
            if hasattr(store, "flush"):
                store.flush()
        self.clock.advance(0)
        for client in (self.alice, self.phone, self.bob):
            client.ws.transport.clear()

    def kinds(self, n):
        """
        One stanza of each kind, with addresses made from C{n}.
        """
        long = "r" * 1100
        return [
            # Messages: to made-up local accounts, remote domains,
            # unknown resources of a real account, and malformed.
            _message(b"u%d@localhost" % (n,)),
            _message(b"u%d@h%d.example/r" % (n, n)),
            _message(b"bob@localhost/r%d" % (n,)),
            _message(b"zed@localhost/%d%s" % (n, long.encode())),
            # iqs: to made-up accounts, the server with a resource, remote.
            b"<iq xmlns='jabber:client' type='get' id='q%d' to='u%d@localhost'>"
            b"<query xmlns='http://jabber.org/protocol/disco#info'/></iq>" % (n, n),
            b"<iq xmlns='jabber:client' type='get' id='s%d' to='localhost/r%d'>"
            b"<ping xmlns='urn:xmpp:ping'/></iq>" % (n, n),
            b"<iq xmlns='jabber:client' type='get' id='v%d' to='bob@localhost/v%d'>"
            b"<query xmlns='jabber:iq:version'/></iq>" % (n, n),
            # Presence: directed (local and remote), subscriptions, probes.
            b"<presence xmlns='jabber:client' to='d%d@localhost/r'/>" % (n,),
            b"<presence xmlns='jabber:client' to='d%d@h%d.example'/>" % (n, n),
            b"<presence xmlns='jabber:client' to='s%d@localhost' type='subscribe'/>" % (n,),
            b"<presence xmlns='jabber:client' to='bob@localhost/p%d' type='probe'/>" % (n,),
            # Roster and block list items.
            b"<iq xmlns='jabber:client' type='set' id='r%d'><query xmlns='jabber:iq:roster'>"
            b"<item jid='i%d@h%d.example'/></query></iq>" % (n, n, n),
            b"<iq xmlns='jabber:client' type='set' id='b%d'><block xmlns='urn:xmpp:blocking'>"
            b"<item jid='b%d@h%d.example/r%d'/></block></iq>" % (n, n, n, n),
            # A forged-looking but own 'from', with a distinct resource
            # in 'to' on another account.
            b"<message xmlns='jabber:client' from='alice@localhost/desk' to='carol@localhost/c%d'>"
            b"<body>x</body></message>" % (n,),
            # Archive queries naming made-up JIDs and ids.
            b"<iq xmlns='jabber:client' type='set' id='m%d'><query xmlns='urn:xmpp:mam:2'>"
            b"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>"
            b"urn:xmpp:mam:2</value></field><field var='with'><value>w%d@h%d.example/r</value>"
            b"</field></x><set xmlns='http://jabber.org/protocol/rsm'><max>1</max></set>"
            b"</query></iq>" % (n, n, n),
            b"<iq xmlns='jabber:client' type='set' id='a%d'><query xmlns='urn:xmpp:mam:2'>"
            b"<set xmlns='http://jabber.org/protocol/rsm'><after>id%d</after></set></query>"
            b"</iq>" % (n, n),
            # PEP: items of made-up nodes of made-up and real accounts,
            # node discovery, vCards and private storage.
            b"<iq xmlns='jabber:client' type='get' id='p%d' to='u%d@localhost'><pubsub "
            b"xmlns='http://jabber.org/protocol/pubsub'><items node='n%d'/></pubsub></iq>"
            % (n, n, n),
            b"<iq xmlns='jabber:client' type='get' id='e%d' to='bob@localhost'><pubsub "
            b"xmlns='http://jabber.org/protocol/pubsub'><items node='n%d'/></pubsub></iq>"
            % (n, n),
            b"<iq xmlns='jabber:client' type='get' id='f%d' to='bob@localhost'><query "
            b"xmlns='http://jabber.org/protocol/disco#info' node='n%d'/></iq>" % (n, n),
            b"<iq xmlns='jabber:client' type='get' id='c%d' to='u%d@localhost'><vCard "
            b"xmlns='vcard-temp'/></iq>" % (n, n),
            b"<iq xmlns='jabber:client' type='get' id='g%d'><query xmlns='jabber:iq:private'>"
            b"<x xmlns='urn:example:%d'/></query></iq>" % (n, n),
            # Capabilities nobody has seen (the server asks; nobody answers).
            b"<presence xmlns='jabber:client'><c xmlns='http://jabber.org/protocol/caps' "
            b"hash='sha-1' node='https://example.org/%d' ver='v%d='/></presence>" % (n, n),
        ]

    def send(self, first, last):
        count = 0
        for n in range(first, last):
            for stanza in self.kinds(n):
                self.alice.send(stanza)
                count += 1
            # Strangers ask alice for subscriptions too.
            self.bob.send(
                b"<message xmlns='jabber:client' to='alice@localhost/x%d'><body>y</body></message>"
                % (n,)
            )
            count += 1
            if n % 50 == 0:
                self.drain()
        self.drain()
        return count

    def test_stanzas(self):
        """
        After a warm-up that spends every budget, ten thousand more
        stanzas to distinct addresses leave the intern cache and every
        table as they were.
        """
        self.send(0, 60)
        interned = len(INTERNED)
        before = tableSizes(self.server)
        rounds = STANZAS // (len(self.kinds(0)) + 1) + 1
        sent = self.send(60, 60 + rounds)
        self.assertGreaterEqual(sent, STANZAS)
        self.assertEqual(len(INTERNED), interned)
        self.assertEqual(tableSizes(self.server), before)

    def test_streamHeaders(self):
        """
        Stream headers with distinct C{to}s, served or not, well-formed or
        not, over TCP, leave the intern cache as it was.
        """
        interned = len(INTERNED)
        factory = self.server.streamFactory()
        for n in range(300):
            for to in (b"h%d.example" % (n,), b"u%d@localhost/r%d" % (n, n), b"x" * 1100):
                xs = factory.buildProtocol(None)
                xs.makeConnection(StringTransport())
                xs.dataReceived(
                    b"<stream:stream xmlns='jabber:client' "
                    b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0' to='"
                    + to
                    + b"'>"
                )
                self.assertIn(b"host-unknown", xs.transport.value())
        self.assertEqual(len(INTERNED), interned)

    def test_componentHeaders(self):
        """
        Component stream headers with distinct C{to}s, before the
        handshake, leave the intern cache as it was.
        """
        interned = len(INTERNED)
        for n in range(300):
            xs = self.components.factory.buildProtocol(None)
            xs.makeConnection(StringTransport())
            xs.dataReceived(
                b"<stream:stream xmlns='jabber:component:accept' "
                b"xmlns:stream='http://etherx.jabber.org/streams' to='c%d.example'>" % (n,)
            )
        self.assertEqual(len(INTERNED), interned)

    def test_binds(self):
        """
        Sessions bound with distinct resources, then gone, leave the
        intern cache and the tables as they were (after the account's
        first session, which leaves its last presence, one per account).
        """

        def session(n):
            client = C2SClient(self, self.server)
            client.login("carol", "res-%d" % (n,))
            client.presence()
            client.ws.transport.loseConnection()
            client.ws.protocol.connectionLost(_done())

        session(-1)
        interned = len(INTERNED)
        before = tableSizes(self.server)
        for n in range(200):
            session(n)
        self.assertEqual(len(INTERNED), interned)
        self.assertEqual(tableSizes(self.server), before)


def _message(to):
    return b"<message xmlns='jabber:client' to='%s' type='chat'><body>x</body></message>" % (to,)


def _done():
    from twisted.internet.error import ConnectionDone
    from twisted.python.failure import Failure

    return Failure(ConnectionDone())
