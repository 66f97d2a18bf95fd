# -*- test-case-name: tests.test_quotas -*-
"""
Tests for L{xmppws.c2s.quotas}: every kind of state a client can make
the embedded server keep has a budget, and reaching it gets the error
the specifications give; over in-memory WebSockets.
"""

from twisted.internet.error import ConnectionLost
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial import unittest
from twisted.words.protocols.jabber.jid import JID

from tests.c2shelpers import C2SClient, makeServer
from xmppws.c2s.modules import installModules
from xmppws.c2s.namespaces import NS_BLOCKING, NS_ROSTER, NS_STANZAS
from xmppws.c2s.quotas import NS_ERRORS, Quotas
from xmppws.c2s.server import ServerConfig
from xmppws.metrics import Metrics


def stanzaError(element):
    """
    C{(condition, type, text)} of an error stanza.
    """
    [error] = [child for child in element.elements() if child.name == "error"]
    conditions = [c.name for c in error.elements(NS_STANZAS) if c.name != "text"]
    texts = [str(c) for c in error.elements(NS_STANZAS, "text")]
    return conditions[0], error.getAttribute("type"), texts[0] if texts else None


def appConditions(element):
    [error] = [child for child in element.elements() if child.name == "error"]
    return [(c.uri, c.name) for c in error.elements() if c.uri == NS_ERRORS]


class QuotasTests(unittest.TestCase):
    """
    The L{Quotas} object.
    """

    def test_defaults(self):
        """
        Every budget has a positive default.
        """
        quotas = Quotas()
        for name in Quotas._names:
            self.assertGreaterEqual(getattr(quotas, name), 1)

    def test_invalid(self):
        """
        Unknown names, zero, negative, fractional and boolean budgets are
        refused.
        """
        for values in ({"nope": 1}, {"maxBlocked": 0}, {"maxResources": -1},
                       {"maxRosterItems": 1.5}, {"smMaxQueue": True}):
            self.assertRaises(ValueError, Quotas, **values)

    def test_configuration(self):
        """
        The server configuration carries them; C{offlineLimit} is the
        offline budget.
        """
        config = ServerConfig(quotas=Quotas(maxOfflineMessages=7))
        self.assertEqual(config.offlineLimit, 7)
        config.offlineLimit = 9
        self.assertEqual(config.quotas.maxOfflineMessages, 9)


class QuotaTestCase(unittest.TestCase):
    """
    A server with every module and small budgets, accounts alice, bob,
    carol, and dave to zed.
    """

    quotas = {}

    def setUp(self):
        self.clock = MemoryReactorClock()
        self.server = makeServer(self, self.clock, quotas=Quotas(**self.quotas))
        for user in ("dave", "erin", "frank", "zed"):
            self.server.storage.addUser(user, "localhost", "secret")
        installModules(self.server)

    def connect(self, user="alice", resource="test"):
        client = C2SClient(self, self.server)
        client.login(user, resource)
        client.receive()
        return client

    def stat(self, quota):
        return self.server.stats["quota_" + quota]


class ResourceQuotaTests(QuotaTestCase):
    """
    C{maxResources}: resources bound to one account.
    """

    quotas = {"maxResources": 2}

    def bind(self, client, resource):
        client.authenticate("alice")
        client.ws.send(client.header)
        client.receive()
        client.send(
            b"<iq xmlns='jabber:client' type='set' id='b'><bind "
            b"xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>"
            + resource.encode()
            + b"</resource></bind></iq>"
        )
        [reply] = client.receive()
        return reply

    def test_refused(self):
        """
        A third resource gets C{resource-constraint} of type C{wait} with
        XEP-0205's C{<resource-limit-exceeded/>}; the others stay.
        """
        self.connect(resource="one")
        self.connect(resource="two")
        reply = self.bind(C2SClient(self, self.server), "three")
        self.assertEqual(reply["type"], "error")
        condition, errorType, text = stanzaError(reply)
        self.assertEqual((condition, errorType), ("resource-constraint", "wait"))
        self.assertEqual(text, "This account may bind at most 2 resources.")
        self.assertEqual(appConditions(reply), [(NS_ERRORS, "resource-limit-exceeded")])
        self.assertEqual(len(self.server.sessionsOf(JID("alice@localhost"))), 2)
        self.assertEqual(self.stat("maxResources"), 1)

    def test_sameResourceReplaces(self):
        """
        Binding a resource already bound replaces it, also at the limit.
        """
        self.connect(resource="one")
        self.connect(resource="two")
        reply = self.bind(C2SClient(self, self.server), "two")
        self.assertEqual(reply["type"], "result")

    def test_detachedMakesRoom(self):
        """
        At the limit, the session waiting longest for XEP-0198 resumption
        ends to make room for a new one.
        """
        first = self.connect(resource="one")
        first.send(b"<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
        first.receive()
        self.connect(resource="two")
        first.ws.protocol.connectionLost(Failure(ConnectionLost()))
        reply = self.bind(C2SClient(self, self.server), "three")
        self.assertEqual(reply["type"], "result")
        resources = sorted(s.jid.resource for s in self.server.sessionsOf(JID("alice@localhost")))
        self.assertEqual(resources, ["three", "two"])

    def test_otherAccountsUnaffected(self):
        """
        The budget is per account.
        """
        self.connect(resource="one")
        self.connect(resource="two")
        self.assertEqual(self.connect("bob", "one").jid, "bob@localhost/one")


class RosterQuotaTests(QuotaTestCase):
    """
    C{maxRosterItems}, C{maxRosterGroups} and C{maxPendingSubscriptions}.
    """

    quotas = {"maxRosterItems": 2, "maxRosterGroups": 2, "maxPendingSubscriptions": 2}

    def rosterSet(self, client, contact, groups=(), id="r"):
        body = b"<query xmlns='jabber:iq:roster'><item jid='" + contact.encode() + b"'>"
        for group in groups:
            body += b"<group>" + group.encode() + b"</group>"
        body += b"</item></query>"
        return [e for e in client.iq(body, "set", id=id) if e.getAttribute("id") == id]

    def test_rosterFull(self):
        """
        A roster set adding a third item gets C{policy-violation} of type
        C{modify}; changing an item in it still works, and so does adding
        one after a removal.
        """
        alice = self.connect()
        self.assertEqual(self.rosterSet(alice, "bob@localhost")[0]["type"], "result")
        self.assertEqual(self.rosterSet(alice, "carol@localhost")[0]["type"], "result")
        [reply] = self.rosterSet(alice, "dave@localhost")
        condition, errorType, text = stanzaError(reply)
        self.assertEqual((condition, errorType), ("policy-violation", "modify"))
        self.assertEqual(text, "A roster holds at most 2 items; remove some first.")
        self.assertEqual(self.rosterSet(alice, "bob@localhost", ["Friends"])[0]["type"], "result")
        alice.iq(
            b"<query xmlns='jabber:iq:roster'><item jid='carol@localhost' "
            b"subscription='remove'/></query>",
            "set",
            id="rm",
        )
        self.assertEqual(self.rosterSet(alice, "dave@localhost")[0]["type"], "result")
        self.assertEqual(self.stat("maxRosterItems"), 1)

    def test_subscribeToNewContactWhenFull(self):
        """
        A subscription request to a contact not in a full roster comes
        back with C{policy-violation}, and nothing is sent or stored.
        """
        alice = self.connect()
        self.rosterSet(alice, "bob@localhost")
        self.rosterSet(alice, "carol@localhost")
        dave = self.connect("dave")
        dave.presence()
        dave.receive()
        alice.presence(to="dave@localhost", type="subscribe")
        [error] = [e for e in alice.receive() if e.name == "presence"]
        self.assertEqual(error["type"], "error")
        self.assertEqual(stanzaError(error)[:2], ("policy-violation", "modify"))
        self.assertEqual([e for e in dave.receive() if e.name == "presence"], [])
        self.assertIsNone(self.server.storage.rosterItem("alice", "localhost", "dave@localhost"))

    def test_tooManyGroups(self):
        """
        An item in more groups than allowed gets C{not-acceptable}, as
        RFC 6121 section 2.3.3 says for groups over a server limit.
        """
        alice = self.connect()
        [reply] = self.rosterSet(alice, "bob@localhost", ["a", "b", "c"])
        self.assertEqual(stanzaError(reply)[:2], ("not-acceptable", "modify"))

    def test_pendingSubscriptions(self):
        """
        Subscription requests from strangers are kept up to the budget;
        the next one comes back to its sender with C{resource-constraint}
        of type C{wait}, and is not kept.
        """
        senders = [self.connect(user) for user in ("bob", "carol", "dave")]
        for sender in senders:
            sender.presence()
        for sender in senders:
            sender.receive()
            sender.presence(to="alice@localhost", type="subscribe")
        for sender in senders[:2]:
            self.assertEqual([e for e in sender.receive() if e.getAttribute("type") == "error"], [])
        [error] = [e for e in senders[2].receive() if e.getAttribute("type") == "error"]
        self.assertEqual(stanzaError(error)[:2], ("resource-constraint", "wait"))
        self.assertEqual(self.server.storage.rosterCounts("alice", "localhost"), (0, 2))
        self.assertEqual(self.stat("maxPendingSubscriptions"), 1)


class BlockingQuotaTests(QuotaTestCase):
    """
    C{maxBlocked}: entries in a block list.
    """

    quotas = {"maxBlocked": 2}

    def block(self, client, *jids, id="b"):
        body = b"<block xmlns='urn:xmpp:blocking'>"
        for jid in jids:
            body += b"<item jid='" + jid.encode() + b"'/>"
        body += b"</block>"
        return [e for e in client.iq(body, "set", id=id) if e.getAttribute("id") == id]

    def test_full(self):
        """
        Blocking past the budget gets C{policy-violation}, whether in one
        request or over several, and changes nothing; blocking what is
        blocked already costs nothing.
        """
        alice = self.connect()
        [reply] = self.block(alice, "a@example.org", "b@example.org", "c@example.org")
        self.assertEqual(stanzaError(reply)[:2], ("policy-violation", "modify"))
        self.assertEqual(self.server.storage.blocklist("alice", "localhost"), [])
        self.assertEqual(self.block(alice, "a@example.org", "b@example.org")[0]["type"], "result")
        self.assertEqual(self.block(alice, "a@example.org")[0]["type"], "result")
        [reply] = self.block(alice, "c@example.org")
        self.assertEqual(stanzaError(reply)[:2], ("policy-violation", "modify"))
        self.assertEqual(self.stat("maxBlocked"), 2)

    def test_malformedItem(self):
        """
        A malformed item gets C{jid-malformed} naming the wrong part.
        """
        alice = self.connect()
        [reply] = self.block(alice, "a@example.org/" + "r" * 1100)
        self.assertEqual(
            stanzaError(reply),
            (
                "jid-malformed",
                "modify",
                "An item's resourcepart is not valid (longer than 1023 bytes).",
            ),
        )


class DirectedPresenceQuotaTests(QuotaTestCase):
    """
    C{maxDirectedPresences}: entities one session sent directed presence
    to.
    """

    quotas = {"maxDirectedPresences": 2}

    def test_full(self):
        """
        Directed presence to a third entity comes back with
        C{policy-violation}; after directed unavailable presence to one,
        another may be reached.
        """
        alice = self.connect()
        alice.presence()
        for contact in ("bob@localhost", "carol@localhost", "dave@localhost"):
            alice.presence(to=contact)
        [error] = [e for e in alice.receive() if e.getAttribute("type") == "error"]
        self.assertEqual(error["from"], "dave@localhost")
        self.assertEqual(stanzaError(error)[:2], ("policy-violation", "modify"))
        [session] = self.server.sessionsOf(JID("alice@localhost"))
        self.assertEqual(len(session.directed), 2)
        alice.presence(to="bob@localhost", type="unavailable")
        alice.presence(to="dave@localhost")
        self.assertEqual([e for e in alice.receive() if e.getAttribute("type") == "error"], [])
        self.assertEqual(len(session.directed), 2)


class StreamManagementQuotaTests(QuotaTestCase):
    """
    C{smMaxQueue}: unacknowledged stanzas.
    """

    quotas = {"smMaxQueue": 3}

    def test_fromConfiguration(self):
        """
        The stream management module takes its queue limit from the
        quotas.
        """
        self.assertEqual(self.server.modules["sm"].maxQueue, 3)


class MetricsTests(QuotaTestCase):
    """
    Refusals are counted in the metrics by budget.
    """

    quotas = {"maxBlocked": 1}

    def test_counted(self):
        """
        C{xmppws_quota_refusals_total} counts each refusal.
        """
        alice = self.connect()
        alice.iq(
            b"<block xmlns='urn:xmpp:blocking'><item jid='a@x.org'/><item jid='b@x.org'/></block>",
            "set",
        )
        body, _ = Metrics(self.server).exposition()
        self.assertIn(b'xmppws_quota_refusals_total{quota="maxBlocked"} 1.0', body)
