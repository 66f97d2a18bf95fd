"""
End-to-end tests of the embedded server: real loopback sockets on the
real reactor, and clients written elsewhere (the C{websockets} package,
Twisted Words over L{xmppws.client}, slixmpp over TCP, a Twisted Words
component) doing what users do: presence, chat, rosters, offline
messages across a restart, XEP-0198 resumption (on a new WebSocket, and
slixmpp's own on TCP), components, STARTTLS.

See L{tests.e2ehelpers} for the server harness and the clients.
"""

import datetime
import threading
import time

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.task import deferLater
from twisted.python.filepath import FilePath
from twisted.trial import unittest
from twisted.words.protocols.jabber import component, xmlstream
from twisted.words.xish import domish

from tests.c2shelpers import parseElement
from tests.e2ehelpers import (
    DOMAIN,
    NS_ROSTER,
    TIMEOUT,
    ConnectionTracker,
    E2EServer,
    SlixmppClient,
    TwistedWordsClient,
    WebSocketsClient,
    delayStamp,
    isMessage,
    isPresence,
    isRosterPush,
    message,
    presence,
    tlsOptions,
    waitFor,
    withTimeout,
    writeCertificate,
)

ALICE = "alice@" + DOMAIN
BOB = "bob@" + DOMAIN
CAROL = "carol@" + DOMAIN
COMPONENT = "echo." + DOMAIN
COMPONENT_SECRET = "component-secret"
NS_VERSION = "jabber:iq:version"


class EndToEndTests(unittest.TestCase):
    """
    The embedded server with clients that are not ours, on loopback.
    """

    timeout = 45

    def setUp(self):
        self.tracker = ConnectionTracker(reactor)
        threads = set(threading.enumerate())

        def noThreadsLeft():
            left = [
                thread.name
                for thread in set(threading.enumerate()) - threads
                if not thread.name.startswith("PoolThread-")
            ]
            self.assertEqual(left, [], "client threads still running")

        self.addCleanup(noThreadsLeft)

    @inlineCallbacks
    def startServer(self, **options):
        """
        Start a server for this test; it stops, after every client, when
        the test ends, and every connection must have ended by then.
        """
        server = E2EServer(reactor, FilePath(self.mktemp()), self.tracker, **options)
        yield server.start()

        @inlineCallbacks
        def stop():
            yield server.stop()
            self.assertEqual(server.aborted, 0, "connections were left open")

        self.addCleanup(stop)
        return server

    def webSocketsClient(self, server, username, resource, autoApprove=False):
        """
        A L{WebSocketsClient} of C{server}, closed when the test ends.
        """
        client = WebSocketsClient(reactor, server.wsURL, username, resource, autoApprove)
        self.addCleanup(client.close)
        return client

    def twistedClient(self, server, username, resource, autoApprove=False):
        """
        A L{TwistedWordsClient} of C{server}, closed when the test ends.
        """
        client = TwistedWordsClient(
            reactor, self.tracker, server.wsPort, username, resource, autoApprove
        )
        self.addCleanup(client.close)
        return client

    def slixmppClient(self, username):
        """
        A L{SlixmppClient}, stopped when the test ends.
        """
        client = SlixmppClient(reactor, username)
        self.addCleanup(client.stop)
        return client

    @inlineCallbacks
    def getRoster(self, client):
        """
        Fetch the roster with a raw iq from a L{WebSocketsClient}.
        """
        yield client.send(
            "<iq xmlns='jabber:client' type='get' id='roster'>"
            "<query xmlns='%s'/></iq>" % (NS_ROSTER,)
        )
        result = yield client.inbox.expect(
            lambda e: e.name == "iq" and e.getAttribute("id") == "roster"
        )
        self.assertEqual(result["type"], "result")
        return result

    def rosterState(self, client, contact):
        """
        The subscription state of C{contact} in a slixmpp client's roster.
        """

        def state():
            item = client.xmpp.client_roster[contact]
            return item["subscription"], bool(item["pending_out"])

        return client.call(state)

    @inlineCallbacks
    def waitForRosterState(self, client, contact, expected):
        """
        Wait until a slixmpp client's roster has C{contact} in state
        C{expected}.
        """
        deadline = time.monotonic() + TIMEOUT
        while True:
            state = yield self.rosterState(client, contact)
            if state == expected or time.monotonic() > deadline:
                break
            yield deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(state, expected)

    @inlineCallbacks
    def test_presenceAndMessagesAcrossTransports(self):
        """
        Two users on WebSocket (websockets with SCRAM-SHA-256, Twisted
        Words with PLAIN) and one on TCP (slixmpp) subscribe to each other
        through their clients, see each other's presence come and go, and
        chat across every pair of transports.
        """
        server = yield self.startServer()
        alice = self.webSocketsClient(server, "alice", "ws", autoApprove=True)
        bob = self.twistedClient(server, "bob", "twisted", autoApprove=True)
        carol = self.slixmppClient("carol")
        aliceJID = yield alice.login()
        yield self.getRoster(alice)
        yield alice.send(presence())
        bobJID = yield bob.login()
        bob.send(presence())
        carolJID = yield carol.login(server.c2sPort)
        self.assertEqual(
            (aliceJID, bobJID, carolJID),
            (ALICE + "/ws", BOB + "/twisted", CAROL + "/slixmpp"),
        )

        # alice and bob ask; their test clients approve requests; slixmpp
        # approves and asks back by itself (auto_authorize, auto_subscribe).
        yield alice.send(presence(BOB, "subscribe"))
        yield alice.send(presence(CAROL, "subscribe"))
        bob.send(presence(ALICE, "subscribe"))
        bob.send(presence(CAROL, "subscribe"))

        yield alice.inbox.expectAll([isPresence(bobJID), isPresence(carolJID)])
        yield bob.inbox.expectAll([isPresence(aliceJID), isPresence(carolJID)])
        yield carol.inbox.expectAll([isPresence(aliceJID), isPresence(bobJID)])
        yield alice.inbox.expectAll(
            [isRosterPush(BOB, "both"), isRosterPush(CAROL, "both")]
        )
        yield self.waitForRosterState(carol, ALICE, ("both", False))
        yield self.waitForRosterState(carol, BOB, ("both", False))

        # WebSocket to TCP
        yield alice.send(message(CAROL, "ws to tcp"))
        yield carol.inbox.expect(isMessage("ws to tcp", aliceJID, "chat"))
        # TCP to WebSocket
        yield carol.call(
            lambda: carol.xmpp.send_message(mto=BOB, mbody="tcp to ws", mtype="chat")
        )
        yield bob.inbox.expect(isMessage("tcp to ws", carolJID, "chat"))
        # WebSocket to WebSocket, both ways, to full and bare addresses
        yield alice.send(message(bobJID, "ws to ws"))
        yield bob.inbox.expect(isMessage("ws to ws", aliceJID, "chat"))
        bob.send(message(ALICE, "ws back to ws"))
        yield alice.inbox.expect(isMessage("ws back to ws", bobJID, "chat"))

        # Leaving: the TCP user's contacts on WebSocket see it go, and the
        # other way round.
        yield carol.stop()
        yield alice.inbox.expect(isPresence(carolJID, "unavailable"))
        yield bob.inbox.expect(isPresence(carolJID, "unavailable"))
        yield bob.close()
        yield alice.inbox.expect(isPresence(bobJID, "unavailable"))

    @inlineCallbacks
    def test_rosterAndSubscriptionStates(self):
        """
        A roster set, a subscription request slixmpp approves and answers,
        the approval of its request and a removal each push the RFC 6121
        subscription state to both users, and slixmpp's roster agrees.
        """
        server = yield self.startServer()
        alice = self.webSocketsClient(server, "alice", "ws")
        carol = self.slixmppClient("carol")
        aliceJID = yield alice.login()
        empty = yield self.getRoster(alice)
        self.assertEqual(list(empty.query.elements()), [])
        yield alice.send(presence())
        carolJID = yield carol.login(server.c2sPort)

        # Roster set: a result and a push, subscription none.
        yield alice.send(
            "<iq xmlns='jabber:client' type='set' id='add'><query xmlns='%s'>"
            "<item jid='%s' name='Carol'><group>Friends</group></item>"
            "</query></iq>" % (NS_ROSTER, CAROL)
        )
        result = yield alice.inbox.expect(lambda e: e.getAttribute("id") == "add")
        self.assertEqual(result["type"], "result")
        push = yield alice.inbox.expect(isRosterPush(CAROL, "none"))
        item = push.query.item
        self.assertEqual((item["name"], str(item.group)), ("Carol", "Friends"))

        # Subscribe: pending out; slixmpp approves and asks back.
        yield alice.send(presence(CAROL, "subscribe"))
        yield alice.inbox.expect(isRosterPush(CAROL, "none", ask="subscribe"))
        request = yield carol.inbox.expect(isPresence(ALICE, "subscribe"))
        self.assertEqual(request["from"], ALICE)
        yield alice.inbox.expect(isPresence(CAROL, "subscribed"))
        yield alice.inbox.expect(isRosterPush(CAROL, "to"))
        yield alice.inbox.expect(isPresence(carolJID))
        yield carol.inbox.expect(isRosterPush(ALICE, "from"))
        yield alice.inbox.expect(isPresence(CAROL, "subscribe"))
        yield carol.inbox.expect(isRosterPush(ALICE, "from", ask="subscribe"))

        # Approve slixmpp's request: both.
        yield alice.send(presence(CAROL, "subscribed"))
        yield alice.inbox.expect(isRosterPush(CAROL, "both"))
        yield carol.inbox.expect(isRosterPush(ALICE, "both"))
        yield carol.inbox.expect(isPresence(aliceJID))
        yield self.waitForRosterState(carol, ALICE, ("both", False))
        pushed = alice.inbox.taken(isRosterPush(CAROL, "both"))
        self.assertEqual((pushed[0].query.item["name"], str(pushed[0].query.item.group)), ("Carol", "Friends"))

        # Remove: the contact is told (unsubscribe, unsubscribed), sees
        # the user go offline, and ends with subscription none.
        yield alice.send(
            "<iq xmlns='jabber:client' type='set' id='remove'><query xmlns='%s'>"
            "<item jid='%s' subscription='remove'/></query></iq>" % (NS_ROSTER, CAROL)
        )
        yield alice.inbox.expect(isRosterPush(CAROL, "remove"))
        yield carol.inbox.expectAll(
            [
                isPresence(ALICE, "unsubscribe"),
                isPresence(ALICE, "unsubscribed"),
                isPresence(aliceJID, "unavailable"),
                isRosterPush(ALICE, "none"),
            ]
        )
        yield self.waitForRosterState(carol, ALICE, ("none", False))
        roster = yield self.getRoster(alice)
        self.assertEqual(list(roster.query.elements()), [])

    @inlineCallbacks
    def test_offlineMessageSurvivesRestart(self):
        """
        A message to a user who is offline is stored; after the service
        stops and a new server is built on the same database, the user
        logs in with slixmpp and gets it with a XEP-0203 delay stamp.
        """
        server = yield self.startServer()
        alice = self.webSocketsClient(server, "alice", "ws")
        aliceJID = yield alice.login()
        yield alice.send(presence())
        before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        yield alice.send(message(BOB, "while you were out"))
        storage = server.storage
        yield waitFor(reactor, lambda: storage.countOffline("bob", DOMAIN) == 1, what="storage")
        self.assertEqual(alice.inbox.taken(lambda e: e.getAttribute("type") == "error"), [])
        yield alice.close()

        old = server.server
        yield server.stop()
        yield server.start()
        self.assertIsNot(server.server, old)

        bob = self.slixmppClient("bob")
        yield bob.login(server.c2sPort)
        received = yield bob.inbox.expect(isMessage("while you were out", aliceJID, "chat"))
        stamp = delayStamp(received)
        self.assertIsNotNone(stamp, received.toXml())
        self.assertEqual(stamp[0], DOMAIN)
        self.assertLessEqual(before, stamp[1])
        self.assertLessEqual(stamp[1], datetime.datetime.now(datetime.timezone.utc))
        yield waitFor(
            reactor, lambda: server.storage.countOffline("bob", DOMAIN) == 0, what="delivery"
        )

    @inlineCallbacks
    def test_resumptionOnNewWebSocket(self):
        """
        A WebSocket whose TCP connection is reset without a close leaves
        its XEP-0198 session detached, still available to contacts; a new
        WebSocket resumes it and gets, delay-stamped, what was sent in
        between, and the session goes on.
        """
        server = yield self.startServer(smTimeout=60)
        alice = self.webSocketsClient(server, "alice", "phone", autoApprove=True)
        bob = self.twistedClient(server, "bob", "desk", autoApprove=True)
        aliceJID = yield alice.login(sm=True)
        yield alice.send(presence())
        bobJID = yield bob.login()
        bob.send(presence())
        bob.send(presence(ALICE, "subscribe"))
        yield bob.inbox.expect(isPresence(aliceJID))
        yield alice.send(message(bobJID, "before the cut"))
        yield bob.inbox.expect(isMessage("before the cut", aliceJID))
        bob.send(message(aliceJID, "seen before the cut"))
        yield alice.inbox.expect(isMessage("seen before the cut", bobJID))
        handledByServer = alice.outbound

        smId = alice.smId
        yield alice.cut()
        session = server.session(aliceJID)
        yield waitFor(
            reactor,
            lambda: session.sm.detachedAt is not None,
            what="the server to notice the cut",
        )

        queued = len(session.sm.queue)
        bob.send(message(aliceJID, "while detached 1"))
        bob.send(message(ALICE, "while detached 2"))
        yield waitFor(
            reactor, lambda: len(session.sm.queue) == queued + 2, what="queueing"
        )

        resumed = yield alice.resume()
        self.assertEqual(resumed["previd"], smId)
        self.assertEqual(int(resumed["h"]), handledByServer)
        first, second = yield alice.inbox.expectAll(
            [isMessage("while detached 1", bobJID), isMessage("while detached 2", bobJID)]
        )
        for received in (first, second):
            self.assertIsNotNone(delayStamp(received), received.toXml())
        self.assertEqual(len(alice.inbox.taken(isMessage("seen before the cut"))), 1)
        self.assertIs(server.session(aliceJID), session)

        yield alice.send(message(bobJID, "after resumption"))
        yield bob.inbox.expect(isMessage("after resumption", aliceJID))
        self.assertEqual(bob.inbox.taken(isPresence(aliceJID, "unavailable")), [])

    @inlineCallbacks
    def resumeSlixmppOnTCP(self, reset):
        """
        Cut slixmpp's TCP connection (with a reset or an orderly close)
        without closing its stream, send it a message, and let slixmpp
        resume with its own XEP-0198 implementation.
        """
        server = yield self.startServer(smTimeout=60)
        alice = self.webSocketsClient(server, "alice", "ws")
        aliceJID = yield alice.login()
        yield alice.send(presence())
        carol = self.slixmppClient("carol")
        carolJID = yield carol.login(server.c2sPort, streamManagement=True)
        smId = yield carol.call(lambda: carol.xmpp["xep_0198"].sm_id)
        self.assertTrue(smId)
        yield alice.send(message(carolJID, "before the cut"))
        yield carol.inbox.expect(isMessage("before the cut", aliceJID))
        yield carol.call(
            lambda: carol.xmpp.send_message(mto=aliceJID, mbody="acknowledged", mtype="chat")
        )
        yield alice.inbox.expect(isMessage("acknowledged", carolJID))

        session = server.session(carolJID)
        yield carol.cut(reset)
        yield waitFor(
            reactor,
            lambda: session.ended or session.sm.detachedAt is not None,
            what="the server to notice the cut",
        )
        self.assertFalse(
            session.ended, "the session ended instead of waiting to be resumed"
        )
        queued = len(session.sm.queue)
        yield alice.send(message(carolJID, "while detached"))
        yield waitFor(reactor, lambda: len(session.sm.queue) == queued + 1, what="queueing")

        resumed = yield carol.resume(server.c2sPort)
        self.assertIn(smId, resumed)
        received = yield carol.inbox.expect(isMessage("while detached", aliceJID))
        self.assertIsNotNone(delayStamp(received), received.toXml())
        self.assertIs(server.session(carolJID), session)
        yield carol.call(
            lambda: carol.xmpp.send_message(mto=aliceJID, mbody="resumed", mtype="chat")
        )
        yield alice.inbox.expect(isMessage("resumed", carolJID))
        self.assertEqual(len(carol.inbox.taken(isMessage("before the cut"))), 1)

    def test_slixmppResumesAfterReset(self):
        """
        slixmpp's XEP-0198 resumes a session on TCP after a connection
        reset and gets what was sent meanwhile, delay-stamped.
        """
        return self.resumeSlixmppOnTCP(reset=True)

    def test_slixmppResumesAfterCloseWithoutFooter(self):
        """
        A TCP connection closed without the stream's closing tag, as when
        a client process dies, leaves a resumable session waiting as a
        reset one does.
        """
        return self.resumeSlixmppOnTCP(reset=False)

    @inlineCallbacks
    def test_componentAnswersClients(self):
        """
        A Twisted Words component attached on the component port with the
        shared secret answers a WebSocket client's iq (sent through
        Twisted Words) and a TCP client's (slixmpp's XEP-0092 plugin),
        seeing each client's full address, and reaches a client itself.
        """
        server = yield self.startServer(componentSecret=COMPONENT_SECRET)
        asked = []
        authenticated = Deferred()
        ended = Deferred()
        streams = component.componentFactory(COMPONENT, COMPONENT_SECRET)
        streams.addBootstrap(xmlstream.STREAM_AUTHD_EVENT, authenticated.callback)
        streams.addBootstrap(xmlstream.INIT_FAILED_EVENT, authenticated.errback)
        streams.addBootstrap(xmlstream.STREAM_END_EVENT, lambda reason: ended.callback(None))
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", server.componentPort, timeout=5)
        yield endpoint.connect(self.tracker.track(streams))
        xs = yield withTimeout(authenticated, reactor, TIMEOUT, "the component handshake")

        @inlineCallbacks
        def detach():
            xs.sendFooter()
            yield withTimeout(ended, reactor, TIMEOUT, "the component stream to end")

        self.addCleanup(detach)

        def answer(iq):
            asked.append(iq["from"])
            reply = xmlstream.toResponse(iq, "result")
            query = reply.addElement((NS_VERSION, "query"))
            query.addElement("name", content="e2e-echo")
            query.addElement("version", content="1.0")
            xs.send(reply)

        xs.addObserver("/iq[@type='get']/query[@xmlns='%s']" % (NS_VERSION,), answer)
        yield waitFor(reactor, lambda: COMPONENT in server.server.components, what="the route")

        bob = self.twistedClient(server, "bob", "twisted")
        bobJID = yield bob.login()
        result = yield bob.iq("get", domish.Element((NS_VERSION, "query")), to=COMPONENT)
        self.assertEqual((result["type"], result["from"]), ("result", COMPONENT))
        [name] = [child for child in result.query.elements() if child.name == "name"]
        self.assertEqual(str(name), "e2e-echo")

        carol = self.slixmppClient("carol")
        carolJID = yield carol.login(server.c2sPort)

        async def version():
            return str(await carol.xmpp["xep_0092"].get_version(COMPONENT))

        result = parseElement((yield carol.call(version)).encode("utf-8"))
        self.assertEqual((result["type"], result["from"]), ("result", COMPONENT))
        [name] = [child for child in result.query.elements() if child.name == "name"]
        self.assertEqual(str(name), "e2e-echo")
        self.assertEqual(asked, [bobJID, carolJID])

        # And the component reaches a client on its own.
        notice = message(bobJID, "from the component", type="normal")
        notice["from"] = COMPONENT
        xs.send(notice)
        yield bob.inbox.expect(isMessage("from the component", COMPONENT, "normal"))

    @inlineCallbacks
    def test_slixmppStartTLSScramAndPing(self):
        """
        With a certificate configured and encryption required, slixmpp
        negotiates STARTTLS on the c2s port (verifying the certificate
        against the test CA), authenticates with SCRAM-SHA-256, chats with
        a WebSocket user and pings the server (XEP-0199).
        """
        keyPath, certPath = writeCertificate(FilePath(self.mktemp()))
        server = yield self.startServer(
            tlsOptions=tlsOptions(keyPath, certPath), requireEncryption=True
        )
        alice = self.webSocketsClient(server, "alice", "ws")
        aliceJID = yield alice.login()
        yield alice.send(presence())
        carol = self.slixmppClient("carol")
        carolJID = yield carol.login(
            server.c2sPort, tls=True, caFile=certPath.path, mechanism="SCRAM-SHA-256"
        )

        def negotiated():
            xmpp = carol.xmpp
            return (
                "starttls" in xmpp.features,
                xmpp["feature_mechanisms"].mech.name,
                xmpp.socket.version(),
            )

        starttls, mechanism, version = yield carol.call(negotiated)
        self.assertEqual((starttls, mechanism), (True, "SCRAM-SHA-256"))
        self.assertIn(version, ("TLSv1.2", "TLSv1.3"))
        self.assertTrue(server.session(carolJID).xs.transport.secure)

        yield carol.call(
            lambda: carol.xmpp.send_message(mto=aliceJID, mbody="over TLS", mtype="chat")
        )
        yield alice.inbox.expect(isMessage("over TLS", carolJID, "chat"))
        rtt = yield carol.call(lambda: carol.xmpp["xep_0199"].ping(DOMAIN, timeout=5))
        self.assertGreaterEqual(rtt, 0)
