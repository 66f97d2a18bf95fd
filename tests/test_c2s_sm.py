"""
Tests for XEP-0198 stream management in the embedded server
(L{xmppws.c2s.sm}): acknowledgements, resumption on a new WebSocket, and
what becomes of unacknowledged stanzas when a session ends.
"""

from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial import unittest
from twisted.words.protocols.jabber.jid import JID

from tests.c2shelpers import OPEN_LOCALHOST, C2SClient, makeServer
from xmppws.c2s import sm
from xmppws.c2s.modules import installModules

NS_SM = "urn:xmpp:sm:3"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_STREAMS = "http://etherx.jabber.org/streams"
NS_XMPP_STREAMS = "urn:ietf:params:xml:ns:xmpp-streams"
NS_DELAY = "urn:xmpp:delay"
CLOSE = b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"

ALICE = "alice@localhost/phone"


def smElement(name, **attributes):
    data = "<%s xmlns='%s'" % (name, NS_SM)
    for key, value in attributes.items():
        data += " %s='%s'" % (key, value)
    return (data + "/>").encode("ascii")


def condition(element):
    """
    The defined condition in a C{<failed/>}, a stanza error or a stream
    error.
    """
    if element.name in ("message", "iq", "presence"):
        element = element.error
    for child in element.elements():
        if child.uri in (NS_STANZAS, NS_XMPP_STREAMS) and child.name != "text":
            return child.name
    return None


def bodies(elements):
    return [str(e.body) for e in elements if e.name == "message" and e.body is not None]


def cut(client):
    """
    Drop the client's connection without closing the stream.
    """
    client.ws.protocol.connectionLost(Failure(ConnectionLost()))


class OfflineRecorder:
    """
    Stands in for offline storage: records C{message/offline} events and
    keeps the messages in the server's storage, unless the offline module
    is installed, which then stores them itself.
    """

    def __init__(self, server):
        self.server = server
        self.calls = []
        try:
            from xmppws.c2s import offline
        except ImportError:
            offline = None
        server.on("message/offline", self._record, priority=1000)
        if offline is not None:
            offline.install(server)
        else:
            server.on("message/offline", self._store, priority=-1000)

    def _record(self, message, bare):
        self.calls.append((message, bare))

    def _store(self, message, bare):
        self.server.storage.storeOffline(bare.user, bare.host, message.toXml())
        return True

    def stored(self, user):
        """
        The stanzas kept for C{user}, serialized.
        """
        return [row[1] for row in self.server.storage.offlineMessages(user, "localhost")]


class StreamManagementTestsMixin:
    """
    A server with stream management, alice's phone and bob's desk logged
    in.
    """

    def setUp(self):
        self.clock = MemoryReactorClock()
        self.server = makeServer(self, self.clock)
        self.sm = sm.install(self.server)
        self.alice = self.connect("alice", "phone")
        self.bob = self.connect("bob", "desk")

    def connect(self, user=None, resource="test"):
        client = C2SClient(self, self.server)
        if user is not None:
            client.login(user, resource)
        return client

    def enable(self, client, resume=True):
        client.send(smElement("enable", resume="true") if resume else smElement("enable"))
        [enabled] = client.receive()
        self.assertEqual((enabled.uri, enabled.name), (NS_SM, "enabled"))
        return enabled

    def authenticated(self, user):
        """
        A new client authenticated as C{user} and restarted, not bound.
        """
        client = self.connect()
        result = client.authenticate(user)
        self.assertEqual(result.name, "success")
        client.ws.send(OPEN_LOCALHOST)
        client.receive()
        return client

    def resume(self, user, previd, h=0):
        """
        Resume on a new WebSocket authenticated as C{user}.

        @return: the new client and what it received.
        """
        client = self.authenticated(user)
        client.send(smElement("resume", previd=previd, h=h))
        return client, client.receive()

    def bobSays(self, *texts, to=ALICE):
        for i, text in enumerate(texts):
            self.bob.message(to, text, id="b%d" % (i,))


class EnableTests(StreamManagementTestsMixin, unittest.TestCase):
    """
    Advertising and enabling stream management.
    """

    def test_feature(self):
        """
        The features of an authenticated stream offer C{<sm/>}; those
        before authentication do not.
        """
        client = self.connect()
        features = client.open()[-1]
        self.assertEqual(features.name, "features")
        self.assertEqual(list(features.elements(NS_SM, "sm")), [])
        client = self.connect()
        client.authenticate("carol")
        client.ws.send(OPEN_LOCALHOST)
        features = client.receive()[-1]
        self.assertEqual(features.name, "features")
        self.assertEqual(len(list(features.elements(NS_SM, "sm"))), 1)

    def test_enableResumable(self):
        """
        C{<enable resume='true'/>} is answered with C{<enabled/>} carrying
        an id, C{resume='true'} and the timeout as C{max}.
        """
        enabled = self.enable(self.alice)
        self.assertTrue(enabled.getAttribute("id"))
        self.assertEqual(enabled["resume"], "true")
        self.assertEqual(enabled["max"], "300")

    def test_timeoutFromConfig(self):
        """
        C{max} is the server's C{smTimeout}.
        """
        self.server.config.smTimeout = 60
        self.assertEqual(self.enable(self.alice)["max"], "60")

    def test_enableWithoutResume(self):
        """
        A plain C{<enable/>} gets C{<enabled/>} without an id.
        """
        enabled = self.enable(self.alice, resume=False)
        self.assertIsNone(enabled.getAttribute("id"))
        self.assertIsNone(enabled.getAttribute("resume"))

    def test_noResumptionWhenTimeoutZero(self):
        """
        With C{smTimeout} 0, stream management works without resumption.
        """
        self.server.config.smTimeout = 0
        enabled = self.enable(self.alice)
        self.assertIsNone(enabled.getAttribute("id"))

    def test_anonymousNotResumable(self):
        """
        An anonymous session gets no resumption id: no later login could
        be the same account.
        """
        self.server.config.anonymous = True
        client = self.connect()
        client.open()
        client.send(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>")
        self.assertEqual(client.receive()[0].name, "success")
        client.ws.send(OPEN_LOCALHOST)
        client.receive()
        client.send(
            b"<iq xmlns='jabber:client' type='set' id='b'>"
            b"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>"
        )
        client.receive()
        enabled = self.enable(client)
        self.assertIsNone(enabled.getAttribute("id"))

    def test_enableBeforeBind(self):
        """
        C{<enable/>} before binding fails with C{unexpected-request}.
        """
        client = self.authenticated("carol")
        client.send(smElement("enable", resume="true"))
        [failed] = client.receive()
        self.assertEqual((failed.uri, failed.name), (NS_SM, "failed"))
        self.assertEqual(condition(failed), "unexpected-request")

    def test_enableTwice(self):
        """
        A second C{<enable/>} fails with C{unexpected-request}, and the
        first stays in force.
        """
        self.enable(self.alice)
        self.alice.send(smElement("enable"))
        [failed] = self.alice.receive()
        self.assertEqual(failed.name, "failed")
        self.assertEqual(condition(failed), "unexpected-request")
        self.alice.send(smElement("r"))
        [a] = self.alice.receive()
        self.assertEqual((a.name, a["h"]), ("a", "0"))

    def test_requestBeforeEnable(self):
        """
        An C{<r/>} without stream management enabled is a stream error,
        C{unsupported-stanza-type}.
        """
        self.alice.send(smElement("r"))
        [streamError] = [e for e in self.alice.receive() if e.name == "error"]
        self.assertEqual(streamError.uri, NS_STREAMS)
        self.assertEqual(condition(streamError), "unsupported-stanza-type")


class AckTests(StreamManagementTestsMixin, unittest.TestCase):
    """
    Counting stanzas and acknowledging them.
    """

    def test_countsInbound(self):
        """
        C{<r/>} is answered with C{<a/>} counting the stanzas received
        since C{<enable/>}.
        """
        self.alice.message("bob@localhost/desk", "before")
        self.enable(self.alice)
        self.alice.message("bob@localhost/desk", "one")
        self.alice.presence()
        self.alice.send(smElement("r"))
        [a] = self.alice.receive()
        self.assertEqual((a.uri, a.name, a["h"]), (NS_SM, "a", "2"))

    def test_requestsAck(self):
        """
        The server sends C{<r/>} once five stanzas are unacknowledged, and
        not again until the client answered.
        """
        self.enable(self.alice)
        self.bobSays("1", "2", "3", "4")
        self.assertEqual([e.name for e in self.alice.receive()], ["message"] * 4)
        self.bobSays("5")
        received = self.alice.receive()
        self.assertEqual([e.name for e in received], ["message", "r"])
        self.assertEqual(received[1].uri, NS_SM)
        self.bobSays("6")
        self.assertEqual([e.name for e in self.alice.receive()], ["message"])
        self.alice.send(smElement("a", h=6))
        self.assertEqual(self.alice.receive(), [])

    def test_ackDropsQueue(self):
        """
        Acknowledged stanzas leave the queue; the others stay.
        """
        self.enable(self.alice)
        self.bobSays("1", "2", "3")
        self.alice.receive()
        session = self.server.session(JID(ALICE))
        self.assertEqual(len(session.sm.queue), 3)
        self.alice.send(smElement("a", h=2))
        self.assertEqual([str(s.body) for _, s in session.sm.queue], ["3"])
        self.alice.send(smElement("a", h=3))
        self.assertEqual(len(session.sm.queue), 0)
        self.assertEqual(self.alice.receive(), [])

    def test_ackTooHigh(self):
        """
        Acknowledging more than was sent is the C{undefined-condition}
        stream error with C{<handled-count-too-high/>}, and ends the
        session.
        """
        recorder = OfflineRecorder(self.server)
        self.enable(self.alice)
        self.bobSays("1")
        self.alice.receive()
        self.alice.send(smElement("a", h=5))
        received = self.alice.receive()
        streamError = [e for e in received if e.name == "error"][0]
        self.assertEqual(streamError.uri, NS_STREAMS)
        self.assertEqual(condition(streamError), "undefined-condition")
        [tooHigh] = streamError.elements(NS_SM, "handled-count-too-high")
        self.assertEqual((tooHigh["h"], tooHigh["send-count"]), ("5", "1"))
        self.assertIn("5", str(streamError.text))
        self.assertIsNone(self.server.session(JID(ALICE)))
        self.assertEqual(len(recorder.calls), 1)

    def test_invalidH(self):
        """
        An C{<a/>} without a numeric C{h} is the C{invalid-xml} stream
        error.
        """
        self.enable(self.alice)
        self.alice.send(smElement("a", h="many"))
        received = self.alice.receive()
        self.assertEqual(condition([e for e in received if e.name == "error"][0]), "invalid-xml")

    def test_wrapsAround(self):
        """
        Counts wrap around at 2**32, as XEP-0198 requires.
        """
        self.enable(self.alice)
        session = self.server.session(JID(ALICE))
        session.sm.handled = session.sm.sent = session.sm.acked = 2**32 - 1
        self.alice.message("bob@localhost/desk", "x")
        self.bobSays("1")
        self.alice.receive()
        self.alice.send(smElement("r"))
        [a] = self.alice.receive()
        self.assertEqual(a["h"], "0")
        self.alice.send(smElement("a", h=0))
        self.assertEqual(len(session.sm.queue), 0)
        self.assertEqual(self.alice.receive(), [])

    def test_queueLimit(self):
        """
        A session leaving more than C{maxQueue} stanzas unacknowledged gets
        C{policy-violation} and ends; its queue goes to offline storage.
        """
        recorder = OfflineRecorder(self.server)
        self.sm.maxQueue = 3
        self.enable(self.alice)
        self.bobSays("1", "2", "3", "4")
        received = self.alice.receive()
        self.assertEqual(
            condition([e for e in received if e.name == "error"][0]), "policy-violation"
        )
        self.assertIsNone(self.server.session(JID(ALICE)))
        self.assertEqual([str(m.body) for m, _ in recorder.calls], ["1", "2", "3", "4"])


class ResumeTests(StreamManagementTestsMixin, unittest.TestCase):
    """
    Resuming a session on a new WebSocket.
    """

    def test_resume(self):
        """
        After the WebSocket drops, a new one resumes the session: the
        client gets C{<resumed/>} with the server's count, then what it had
        not acknowledged and what arrived meanwhile, with delay stamps.
        """
        previd = self.enable(self.alice)["id"]
        self.alice.message("bob@localhost/desk", "from alice")
        self.bobSays("one", "two")
        self.assertEqual(bodies(self.alice.receive()), ["one", "two"])
        cut(self.alice)
        session = self.server.session(JID(ALICE))
        self.assertIsNotNone(session)
        self.assertIsNone(session.xs)
        self.bob.message(ALICE, "while away", id="b9")
        self.clock.advance(299)
        client, received = self.resume("alice", previd, h=1)
        resumed = received[0]
        self.assertEqual((resumed.uri, resumed.name), (NS_SM, "resumed"))
        self.assertEqual((resumed["previd"], resumed["h"]), (previd, "1"))
        self.assertEqual(bodies(received[1:]), ["two", "while away"])
        for message in received[1:3]:
            self.assertEqual(len(list(message.elements(NS_DELAY, "delay"))), 1)
        self.assertIs(self.server.session(JID(ALICE)), session)
        self.bob.message(ALICE, "now")
        self.assertEqual(bodies(client.receive()), ["now"])
        client.message("bob@localhost/desk", "back")
        self.assertEqual(bodies(self.bob.receive()), ["from alice", "back"])

    def test_resumedSessionStaysAfterTimeout(self):
        """
        The timeout of a resumed session is cancelled.
        """
        previd = self.enable(self.alice)["id"]
        cut(self.alice)
        client, _ = self.resume("alice", previd)
        self.clock.advance(600)
        self.assertIsNotNone(self.server.session(JID(ALICE)))
        self.bob.message(ALICE, "still here")
        self.assertEqual(bodies(client.receive()), ["still here"])

    def test_resumeTwice(self):
        """
        A resumed session that drops again can be resumed again with the
        same id.
        """
        previd = self.enable(self.alice)["id"]
        cut(self.alice)
        client, _ = self.resume("alice", previd)
        self.bobSays("hello")
        client.receive()
        cut(client)
        client, received = self.resume("alice", previd, h=0)
        self.assertEqual(received[0].name, "resumed")
        self.assertEqual(bodies(received), ["hello"])

    def test_wrongID(self):
        """
        An unknown id fails with C{item-not-found}; the stream may then
        bind as usual.
        """
        self.enable(self.alice)
        cut(self.alice)
        client, [failed] = self.resume("alice", "no-such-id")
        self.assertEqual((failed.uri, failed.name), (NS_SM, "failed"))
        self.assertEqual(condition(failed), "item-not-found")
        client.send(
            b"<iq xmlns='jabber:client' type='set' id='bind1'>"
            b"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>tablet</resource>"
            b"</bind></iq>"
        )
        [bound] = client.receive()
        self.assertEqual(str(bound.bind.jid), "alice@localhost/tablet")

    def test_otherAccount(self):
        """
        Another account cannot resume a session, even with its id: it gets
        C{item-not-found} and the session stays resumable for its owner.
        """
        previd = self.enable(self.alice)["id"]
        cut(self.alice)
        self.bobSays("private")
        mallory, [failed] = self.resume("carol", previd)
        self.assertEqual(condition(failed), "item-not-found")
        self.assertEqual(mallory.receive(), [])
        client, received = self.resume("alice", previd)
        self.assertEqual(received[0].name, "resumed")
        self.assertEqual(bodies(received), ["private"])

    def test_resumeWithoutH(self):
        """
        A C{<resume/>} without a valid C{h} fails with C{bad-request}.
        """
        previd = self.enable(self.alice)["id"]
        cut(self.alice)
        client, [failed] = self.resume("alice", previd, h="x")
        self.assertEqual(condition(failed), "bad-request")
        self.assertIsNone(self.server.session(JID(ALICE)).xs)

    def test_resumeAfterBind(self):
        """
        C{<resume/>} on a bound stream fails with C{unexpected-request}.
        """
        previd = self.enable(self.alice)["id"]
        cut(self.alice)
        client = self.connect("alice", "tablet")
        client.send(smElement("resume", previd=previd, h=0))
        [failed] = client.receive()
        self.assertEqual(condition(failed), "unexpected-request")

    def test_resumeTooHigh(self):
        """
        A resumption acknowledging more than was sent fails with
        C{undefined-condition}; the session stays resumable.
        """
        previd = self.enable(self.alice)["id"]
        cut(self.alice)
        client, [failed] = self.resume("alice", previd, h=3)
        self.assertEqual(failed.name, "failed")
        self.assertEqual(condition(failed), "undefined-condition")
        client, received = self.resume("alice", previd, h=0)
        self.assertEqual(received[0].name, "resumed")

    def test_cleanCloseNotResumable(self):
        """
        A session whose stream was closed with C{<close/>} is not kept,
        even if the WebSocket then drops without its closing handshake.
        """
        previd = self.enable(self.alice)["id"]
        self.alice.send(CLOSE)
        cut(self.alice)
        self.assertIsNone(self.server.session(JID(ALICE)))
        client, [failed] = self.resume("alice", previd)
        self.assertEqual(condition(failed), "item-not-found")

    def test_serverStreamErrorNotResumable(self):
        """
        A session whose stream the server closed with a stream error is not
        kept when the WebSocket then drops.
        """
        self.enable(self.alice)
        self.alice.send(
            b"<message xmlns='jabber:client' from='bob@localhost/desk' "
            b"to='carol@localhost'><body>forged</body></message>"
        )
        self.assertEqual(
            condition([e for e in self.alice.receive() if e.name == "error"][0]),
            "invalid-from",
        )
        cut(self.alice)
        self.assertIsNone(self.server.session(JID(ALICE)))

    def test_badInputNotResumable(self):
        """
        A session whose WebSocket failed on bad input (a stream error sent
        by the adapter) is not kept.
        """
        self.enable(self.alice)
        self.alice.send(b"<message xmlns='jabber:client'><body></message>")
        cut(self.alice)
        self.assertIsNone(self.server.session(JID(ALICE)))

    def test_takeover(self):
        """
        A resumption while the old stream still looks connected takes the
        session over; the old stream gets a C{conflict} stream error.
        """
        previd = self.enable(self.alice)["id"]
        self.bobSays("one")
        self.alice.receive()
        client, received = self.resume("alice", previd, h=0)
        self.assertEqual(received[0].name, "resumed")
        self.assertEqual(bodies(received), ["one"])
        old = self.alice.receive()
        self.assertEqual(condition([e for e in old if e.name == "error"][0]), "conflict")
        self.alice.ws.protocol.connectionLost(Failure(ConnectionDone()))
        session = self.server.session(JID(ALICE))
        self.assertIsNotNone(session)
        self.assertIsNotNone(session.xs)
        self.bob.message(ALICE, "new stream")
        self.assertEqual(bodies(client.receive()), ["new stream"])
        self.assertEqual(self.alice.receive(), [])


class EndTests(StreamManagementTestsMixin, unittest.TestCase):
    """
    Where unacknowledged stanzas go when a session ends.
    """

    def test_timeout(self):
        """
        A session not resumed in time ends; its unacknowledged messages,
        including those that arrived while it was detached, go to offline
        storage.
        """
        recorder = OfflineRecorder(self.server)
        ended = []
        self.server.on("session/ended", ended.append)
        previd = self.enable(self.alice)["id"]
        self.bobSays("seen", "unseen")
        self.alice.receive()
        self.alice.send(smElement("a", h=1))
        cut(self.alice)
        self.bob.message(ALICE, "while away", id="b9")
        self.clock.advance(299)
        self.assertEqual(ended, [])
        self.clock.advance(1)
        self.assertEqual(len(ended), 1)
        self.assertIsNone(self.server.session(JID(ALICE)))
        self.assertEqual(
            [(str(m.body), b.full()) for m, b in recorder.calls],
            [("unseen", "alice@localhost"), ("while away", "alice@localhost")],
        )
        stored = recorder.stored("alice")
        self.assertEqual(len(stored), 2)
        self.assertIn("unseen", stored[0])
        self.assertIn("while away", stored[1])
        self.assertEqual(self.bob.receive(), [])
        client, [failed] = self.resume("alice", previd)
        self.assertEqual(condition(failed), "item-not-found")
        self.assertEqual(failed["h"], "0")

    def test_cleanClose(self):
        """
        A clean close ends the session at once, and its unacknowledged
        messages go to offline storage.
        """
        recorder = OfflineRecorder(self.server)
        self.enable(self.alice)
        self.bobSays("unseen")
        self.alice.send(CLOSE)
        self.alice.ws.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertIsNone(self.server.session(JID(ALICE)))
        self.assertEqual([str(m.body) for m, _ in recorder.calls], ["unseen"])
        self.assertEqual(len(recorder.stored("alice")), 1)

    def test_notResumableEndsAtOnce(self):
        """
        Without resumption a dropped session ends at once; unacknowledged
        messages still go to offline storage.
        """
        recorder = OfflineRecorder(self.server)
        self.enable(self.alice, resume=False)
        self.bobSays("unseen")
        cut(self.alice)
        self.assertIsNone(self.server.session(JID(ALICE)))
        self.assertEqual([str(m.body) for m, _ in recorder.calls], ["unseen"])

    def test_bounceWhenNotStored(self):
        """
        Without offline storage, unacknowledged messages go back to their
        sender with C{recipient-unavailable}; errors are never bounced.
        """
        self.enable(self.alice)
        self.bobSays("unseen")
        self.bob.send(
            b"<message xmlns='jabber:client' to='alice@localhost/phone' type='error'>"
            b"<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
            b"</error></message>"
        )
        self.alice.receive()
        self.alice.send(CLOSE)
        self.alice.ws.protocol.connectionLost(Failure(ConnectionDone()))
        [bounce] = self.bob.receive()
        self.assertEqual((bounce.name, bounce["type"]), ("message", "error"))
        self.assertEqual(bounce["id"], "b0")
        self.assertEqual(condition(bounce), "recipient-unavailable")

    def test_iqBounced(self):
        """
        An unacknowledged iq request gets an error reply; presence is
        dropped.
        """
        self.enable(self.alice)
        self.bob.iq(b"<query xmlns='jabber:iq:version'/>", to=ALICE, id="v1")
        self.bob.presence(to=ALICE)
        self.assertEqual([e.name for e in self.alice.receive()], ["iq", "presence"])
        self.alice.send(CLOSE)
        self.alice.ws.protocol.connectionLost(Failure(ConnectionDone()))
        [reply] = self.bob.receive()
        self.assertEqual((reply.name, reply["type"], reply["id"]), ("iq", "error", "v1"))
        self.assertEqual(condition(reply), "recipient-unavailable")

    def test_replacedByBind(self):
        """
        A detached session replaced by a new bind of its resource ends;
        its queue goes to offline storage.
        """
        recorder = OfflineRecorder(self.server)
        self.enable(self.alice)
        self.bobSays("unseen")
        cut(self.alice)
        self.connect("alice", "phone")
        self.assertEqual([str(m.body) for m, _ in recorder.calls], ["unseen"])

    def test_finalAck(self):
        """
        When the server ends a session whose stream is still open, it
        sends a last C{<a/>} before the stream error.
        """
        self.enable(self.alice)
        self.alice.message("bob@localhost/desk", "one")
        self.connect("alice", "phone")
        received = self.alice.receive()
        self.assertEqual([e.name for e in received[:2]], ["a", "error"])
        self.assertEqual(received[0]["h"], "1")
        self.assertEqual(condition(received[1]), "conflict")


class AllModulesTests(StreamManagementTestsMixin, unittest.TestCase):
    """
    Stream management among all the default modules: presence keeps a
    detached session available, offline storage takes its queue.
    """

    def setUp(self):
        self.clock = MemoryReactorClock()
        self.server = makeServer(self, self.clock)
        try:
            installModules(self.server)
        except ImportError as e:
            raise unittest.SkipTest("a default module is missing: %s" % (e,))
        self.sm = self.server.modules["sm"]
        self.alice = self.connect("alice", "phone")
        self.alice.presence()
        self.bob = self.connect("bob", "desk")
        self.bob.presence()
        self.alice.receive()
        self.bob.receive()

    def test_resumeBareJID(self):
        """
        Messages to the account's bare JID reach a detached session, which
        stays available, and arrive on resumption.
        """
        previd = self.enable(self.alice)["id"]
        self.bob.message("alice@localhost", "one")
        self.assertEqual(bodies(self.alice.receive()), ["one"])
        cut(self.alice)
        self.bob.message("alice@localhost", "two")
        self.assertEqual(self.bob.receive(), [])
        client, received = self.resume("alice", previd, h=1)
        self.assertEqual(received[0].name, "resumed")
        self.assertEqual(bodies(received), ["two"])

    def test_timeoutToOfflineStorage(self):
        """
        Messages a session never acknowledged are stored when it times out,
        and delivered at the account's next login.
        """
        self.enable(self.alice)
        self.bob.message("alice@localhost", "one")
        self.alice.receive()
        cut(self.alice)
        self.bob.message("alice@localhost", "two")
        self.clock.advance(300)
        self.assertEqual(self.server.sessionsOf(JID("alice@localhost")), [])
        self.assertEqual(self.server.storage.countOffline("alice", "localhost"), 2)
        self.assertEqual(self.bob.receive(), [])
        later = self.connect("alice", "laptop")
        later.presence()
        delivered = [e for e in later.receive() if e.name == "message"]
        self.assertEqual(bodies(delivered), ["one", "two"])
        for message in delivered:
            self.assertEqual(len(list(message.elements(NS_DELAY, "delay"))), 1)
