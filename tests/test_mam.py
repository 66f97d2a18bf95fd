"""
Tests for XEP-0313 message archives of accounts (L{xmppws.c2s.mam}),
their preferences (XEP-0441) and the query format
(L{xmppws.c2s.mamquery}), over in-memory WebSockets.
"""

from twisted.trial import unittest

from tests.personalhelpers import NS_DATA, PersonalTestCase, child, condition, form
from xmppws.c2s import mamquery
from xmppws.c2s.archive import ArchiveIds, rowOf
from xmppws.c2s.mam import ArchiveSettings, shouldStore
from xmppws.c2s.mamquery import NS_MAM, NS_RSM, NS_SID, QueryError, parseStamp
from xmppws.c2s.namespaces import NS_CARBONS, NS_DISCO_INFO, NS_FORWARD
from xmppws.c2s.quotas import Quotas
from xmppws.flow import Backlog
from tests.c2shelpers import parseElement

NS_DELAY = "urn:xmpp:delay"


def stanzaIds(message):
    return {s["by"]: s["id"] for s in message.elements(NS_SID, "stanza-id")}


def send(client, to, body, extra=b"", kind="chat", id="m1"):
    client.send(
        b"<message xmlns='jabber:client' to='%s' type='%s' id='%s'><body>%s</body>%s</message>"
        % (to.encode(), kind.encode(), id.encode(), body.encode(), extra)
    )


class ArchiveTestCase(PersonalTestCase):
    """
    Helpers to query archives.
    """

    def query(self, client, fields=None, rsm=b"", extra=b"", queryid="qid", to=None):
        """
        Query an archive; return C{(results, fin, reply)}: the archived
        stanzas (forwarded messages) with their ids and times, the
        C{<fin/>} and the iq reply.
        """
        body = b"<query xmlns='urn:xmpp:mam:2' queryid='%s'>" % (queryid.encode(),)
        if fields is not None:
            body += form(NS_MAM, fields)
        body += rsm + extra + b"</query>"
        others, reply = self.iq(client, body, type="set", to=to)
        results = []
        for message in others:
            result = child(message, NS_MAM, "result")
            if result is None:
                continue
            self.assertEqual(result.getAttribute("queryid"), queryid)
            forwarded = child(result, NS_FORWARD, "forwarded")
            stamp = child(forwarded, NS_DELAY, "delay")["stamp"]
            stanza = child(forwarded, "jabber:client", "message")
            results.append((result["id"], stamp, stanza, message))
        fin = child(reply, NS_MAM, "fin") if reply is not None else None
        return results, fin, reply

    def bodies(self, results):
        return [str(child(stanza, "jabber:client", "body")) for _, _, stanza, _ in results]

    def rsmSummary(self, fin):
        summary = child(fin, NS_RSM, "set")
        values = {}
        for name in ("first", "last", "count"):
            element = child(summary, NS_RSM, name)
            values[name] = None if element is None else str(element)
        return values

    def exchange(self, alice, bob, count, start=0, spacing=1):
        """
        Alice sends bob C{count} numbered messages, C{spacing} seconds
        apart.
        """
        for n in range(start, start + count):
            send(alice, "bob@localhost", "message %d" % (n,), id="m%d" % (n,))
            self.clock.advance(spacing)
        alice.receive()
        bob.receive()


class ArchivingTests(ArchiveTestCase):
    """
    What goes into whose archive, and the ids live copies carry.
    """

    def test_discoFeatures(self):
        """
        The account's bare JID announces urn:xmpp:mam:2, its extended
        features and XEP-0359 stanza ids.
        """
        alice = self.connect("alice")
        _, reply = self.iq(alice, b"<query xmlns='%s'/>" % (NS_DISCO_INFO.encode(),),
                           to="alice@localhost")
        features = {f["var"] for f in reply.query.elements(NS_DISCO_INFO, "feature")}
        self.assertTrue({NS_MAM, mamquery.NS_MAM_EXTENDED, NS_SID} <= features)

    def test_bothArchives(self):
        """
        A chat message is archived once in the sender's archive and once
        in the recipient's; the copy the recipient gets carries the
        recipient's archive id and nothing in the sender's name.
        """
        alice = self.connect("alice")
        bob = self.connect("bob")
        send(alice, "bob@localhost", "hello")
        [received] = self.messages(bob)
        ids = stanzaIds(received)
        self.assertEqual(list(ids), ["bob@localhost"])
        results, fin, _ = self.query(bob)
        self.assertEqual([r[0] for r in results], [ids["bob@localhost"]])
        self.assertEqual(self.bodies(results), ["hello"])
        self.assertEqual(fin["complete"], "true")
        results, _, _ = self.query(alice)
        self.assertEqual(self.bodies(results), ["hello"])
        self.assertNotEqual(results[0][0], ids["bob@localhost"])
        self.assertEqual(results[0][2]["to"], "bob@localhost")

    def test_resultsFromTheBareJID(self):
        """
        Results come from the account's bare JID to the requesting
        resource, with the archived stanza forwarded with its time.
        """
        alice = self.connect("alice")
        bob = self.connect("bob")
        send(alice, "bob@localhost", "hello")
        self.messages(bob)
        results, _, reply = self.query(bob)
        [(_, stamp, stanza, message)] = results
        self.assertEqual(message["from"], "bob@localhost")
        self.assertEqual(message["to"], bob.jid)
        self.assertEqual(reply["type"], "result")
        self.assertEqual(stanza["from"], alice.jid)
        parseStamp(stamp)

    def test_sentCarbonCarriesSenderId(self):
        """
        The carbon copy of a sent message that the sender's other
        resource receives carries the sender's archive id, the one its
        archive returns.
        """
        alice = self.connect("alice")
        other = self.connect("alice", "other")
        other.iq(b"<enable xmlns='urn:xmpp:carbons:2'/>", type="set")
        other.receive()
        bob = self.connect("bob")
        send(alice, "bob@localhost", "copied")
        [carbon] = self.messages(other)
        sent = child(carbon, NS_CARBONS, "sent")
        forwarded = child(child(sent, NS_FORWARD, "forwarded"), "jabber:client", "message")
        ids = stanzaIds(forwarded)
        self.assertEqual(list(ids), ["alice@localhost"])
        [received] = self.messages(bob)
        self.assertNotIn("alice@localhost", stanzaIds(received))
        results, _, _ = self.query(alice)
        self.assertEqual([r[0] for r in results], [ids["alice@localhost"]])

    def test_forgedIdRemoved(self):
        """
        A stanza id a sender wrote in the recipient's name is removed
        before the recipient's own is added.
        """
        alice = self.connect("alice")
        bob = self.connect("bob")
        send(alice, "bob@localhost", "forged",
             extra=b"<stanza-id xmlns='urn:xmpp:sid:0' by='bob@localhost' id='fake'/>"
             b"<stanza-id xmlns='urn:xmpp:sid:0' by='example.net' id='kept'/>")
        [received] = self.messages(bob)
        ids = stanzaIds(received)
        self.assertNotEqual(ids["bob@localhost"], "fake")
        self.assertEqual(ids["example.net"], "kept")
        self.assertEqual(len(list(received.elements(NS_SID, "stanza-id"))), 2)

    def test_offlineMessageArchivedWithId(self):
        """
        A message for an account with no available resource is archived,
        and the offline copy delivered later carries the same id.
        """
        alice = self.connect("alice")
        send(alice, "bob@localhost", "while away")
        self.clock.advance(0)
        bob = self.connect("bob", available=False)
        bob.presence()
        self.clock.advance(0)
        [message] = [m for m in bob.receive() if m.name == "message"]
        [sid] = stanzaIds(message).values()
        results, _, _ = self.query(bob)
        self.assertEqual([r[0] for r in results], [sid])

    def test_toOneself(self):
        """
        A message to one's own other resource is archived once.
        """
        alice = self.connect("alice")
        other = self.connect("alice", "other")
        send(alice, other.jid, "note to self")
        [received] = self.messages(other)
        results, _, _ = self.query(alice)
        self.assertEqual(self.bodies(results), ["note to self"])
        self.assertEqual(stanzaIds(received), {"alice@localhost": results[0][0]})

    def test_notArchived(self):
        """
        Headlines, hinted no-store messages, bodiless chat states and
        groupchat messages are not archived; chat states are left out of
        what is.
        """
        alice = self.connect("alice")
        bob = self.connect("bob")
        send(alice, "bob@localhost", "headline", kind="headline")
        send(alice, "bob@localhost", "private", extra=b"<no-store xmlns='urn:xmpp:hints'/>")
        alice.send(b"<message xmlns='jabber:client' to='bob@localhost' type='chat'>"
                   b"<composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
        send(alice, "bob@localhost", "kept",
             extra=b"<active xmlns='http://jabber.org/protocol/chatstates'/>")
        received = self.messages(bob)
        self.assertEqual(len(received), 4)
        self.assertEqual(stanzaIds(received[0]), {})
        results, _, _ = self.query(bob)
        self.assertEqual(self.bodies(results), ["kept"])
        self.assertIsNone(child(results[0][2], "http://jabber.org/protocol/chatstates", "active"))
        self.assertIsNotNone(child(received[3], "http://jabber.org/protocol/chatstates", "active"))

    def test_receiptArchived(self):
        """
        A delivery receipt without a body is archived (Prosody's rule).
        """
        alice = self.connect("alice")
        self.connect("bob")
        alice.send(b"<message xmlns='jabber:client' to='bob@localhost' id='r1'>"
                   b"<received xmlns='urn:xmpp:receipts' id='m1'/></message>")
        self.clock.advance(0)
        results, _, _ = self.query(alice)
        self.assertEqual(len(results), 1)

    def test_shouldStore(self):
        """
        shouldStore keeps errors returned to a resource only.
        """
        error = parseElement(b"<message xmlns='jabber:client' type='error'><body>x</body>"
                             b"</message>")
        self.assertTrue(shouldStore(error, True))
        self.assertFalse(shouldStore(error, False))

    def test_anonymousHasNoArchive(self):
        """
        Anonymous accounts have no archive: a query gets
        service-unavailable.
        """
        self.server.config.anonymous = True
        from tests.c2shelpers import C2SClient

        client = C2SClient(self, self.server)
        client.open()
        client.send(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>")
        client.receive()
        client.ws.send(client.header)
        client.receive()
        client.send(b"<iq xmlns='jabber:client' type='set' id='b'><bind "
                    b"xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
        client.receive()
        _, _, reply = self.query(client)
        self.assertEqual(condition(reply)[:2], ("service-unavailable", "cancel"))

    def test_ids(self):
        """
        Archive ids differ each time, name row numbers that grow even
        within one millisecond, and end in six random characters.
        """
        source = ArchiveIds(self.clock)
        ids = [source() for _ in range(2000)]
        self.assertEqual(len(set(ids)), 2000)
        rows = [rowOf(i) for i in ids]
        self.assertEqual(rows, sorted(rows))
        self.assertEqual(len(set(rows)), 2000)
        self.assertEqual(rows[0] >> 10, int(self.clock.seconds() * 1000))
        self.assertEqual(len({i[-6:] for i in ids}), 2000)

    def test_idsAfterRestartFollow(self):
        """
        After follow(), ids name rows above the one given, even if the
        clock went back.
        """
        source = ArchiveIds(self.clock)
        source.follow(10 ** 18)
        self.assertGreater(rowOf(source()), 10 ** 18)

    def test_foreignIds(self):
        """
        rowOf reads no row number from ids it did not make.
        """
        self.assertIsNone(rowOf("12345678-1234-1234-1234-123456789abc"))
        self.assertIsNone(rowOf("abc"))


class QueryTests(ArchiveTestCase):
    """
    Filters and pages.
    """

    def setUp(self):
        ArchiveTestCase.setUp(self)
        self.alice = self.connect("alice")
        self.bob = self.connect("bob")
        self.carol = self.connect("carol")
        self.started = self.clock.seconds()
        self.exchange(self.alice, self.bob, 5)
        send(self.carol, "bob@localhost", "from carol")
        self.clock.advance(1)
        self.bob.receive()

    def test_all(self):
        """
        Without filters, the whole archive comes back in order with its
        count and first and last ids.
        """
        results, fin, _ = self.query(self.bob)
        self.assertEqual(self.bodies(results),
                         ["message %d" % n for n in range(5)] + ["from carol"])
        summary = self.rsmSummary(fin)
        self.assertEqual(summary, {"first": results[0][0], "last": results[-1][0], "count": "6"})
        self.assertEqual(fin["complete"], "true")

    def test_with(self):
        """
        'with' a bare JID returns the messages with that contact only.
        """
        results, fin, _ = self.query(self.bob, {"with": "carol@localhost"})
        self.assertEqual(self.bodies(results), ["from carol"])
        self.assertEqual(self.rsmSummary(fin)["count"], "1")

    def test_withFullJID(self):
        """
        'with' a full JID returns the messages with that resource only.
        """
        results, _, _ = self.query(self.bob, {"with": "carol@localhost/test"})
        self.assertEqual(self.bodies(results), ["from carol"])
        results, _, _ = self.query(self.bob, {"with": "carol@localhost/elsewhere"})
        self.assertEqual(results, [])

    def test_time(self):
        """
        'start' and 'end' bound the time received, both included.
        """
        start = mamquery.formatStamp(self.started + 1)
        end = mamquery.formatStamp(self.started + 3)
        results, _, _ = self.query(self.bob, {"start": start, "end": end})
        self.assertEqual(self.bodies(results), ["message 1", "message 2", "message 3"])

    def test_pageForwards(self):
        """
        RSM max and after page forwards; the last page is complete.
        """
        results, fin, _ = self.query(self.bob, rsm=b"<set xmlns='%s'><max>4</max></set>" % (
            NS_RSM.encode(),))
        self.assertEqual(len(results), 4)
        self.assertNotEqual(fin.getAttribute("complete"), "true")
        last = self.rsmSummary(fin)["last"]
        results, fin, _ = self.query(
            self.bob, rsm=b"<set xmlns='%s'><max>4</max><after>%s</after></set>" % (
                NS_RSM.encode(), last.encode()))
        self.assertEqual(self.bodies(results), ["message 4", "from carol"])
        self.assertEqual(fin["complete"], "true")

    def test_pageBackwards(self):
        """
        An empty RSM before asks for the last page, before an id for the
        page before it; results are oldest first within a page.
        """
        results, fin, _ = self.query(self.bob, rsm=b"<set xmlns='%s'><max>2</max><before/></set>"
                                     % (NS_RSM.encode(),))
        self.assertEqual(self.bodies(results), ["message 4", "from carol"])
        self.assertNotEqual(fin.getAttribute("complete"), "true")
        first = self.rsmSummary(fin)["first"]
        results, fin, _ = self.query(
            self.bob, rsm=b"<set xmlns='%s'><max>10</max><before>%s</before></set>" % (
                NS_RSM.encode(), first.encode()))
        self.assertEqual(self.bodies(results), ["message %d" % n for n in range(4)])
        self.assertEqual(fin["complete"], "true")

    def test_flipPage(self):
        """
        flip-page sends the same page newest first.
        """
        results, _, _ = self.query(self.bob, rsm=b"<set xmlns='%s'><max>3</max></set>" % (
            NS_RSM.encode(),), extra=b"<flip-page/>")
        self.assertEqual(self.bodies(results), ["message 2", "message 1", "message 0"])

    def test_idsAndRange(self):
        """
        'ids' fetches given messages; 'after-id' and 'before-id' bound a
        range.
        """
        everything, _, _ = self.query(self.bob)
        ids = [r[0] for r in everything]
        results, _, _ = self.query(self.bob, {"ids": [ids[4], ids[1]]})
        self.assertEqual(self.bodies(results), ["message 1", "message 4"])
        results, _, _ = self.query(self.bob, {"after-id": ids[1], "before-id": ids[4]})
        self.assertEqual(self.bodies(results), ["message 2", "message 3"])

    def test_maxZero(self):
        """
        RSM max 0 returns the count alone.
        """
        results, fin, _ = self.query(self.bob, rsm=b"<set xmlns='%s'><max>0</max></set>" % (
            NS_RSM.encode(),))
        self.assertEqual(results, [])
        self.assertEqual(self.rsmSummary(fin)["count"], "6")

    def test_pageSizeCapped(self):
        """
        A page holds at most 50 messages whatever max asks.
        """
        self.exchange(self.alice, self.bob, 60, start=5, spacing=0)
        results, fin, reply = self.query(self.bob, rsm=b"<set xmlns='%s'><max>1000</max></set>" % (
            NS_RSM.encode(),))
        self.assertEqual(len(results), mamquery.MAX_PAGE)
        self.assertNotEqual(fin.getAttribute("complete"), "true")

    def test_form(self):
        """
        A get of the query returns the form of the supported fields, ids
        open to any value.
        """
        _, reply = self.iq(self.bob, b"<query xmlns='urn:xmpp:mam:2'/>")
        fields = {f["var"]: f for f in reply.query.x.elements(NS_DATA, "field")}
        self.assertEqual(set(fields), {"FORM_TYPE", "with", "start", "end", "before-id",
                                       "after-id", "ids"})
        self.assertIsNotNone(child(fields["ids"], "http://jabber.org/protocol/xdata-validate",
                                   "validate"))

    def test_metadata(self):
        """
        The metadata names the first and last messages.
        """
        everything, _, _ = self.query(self.bob)
        _, reply = self.iq(self.bob, b"<metadata xmlns='urn:xmpp:mam:2'/>")
        metadata = reply.metadata
        self.assertEqual(metadata.start["id"], everything[0][0])
        self.assertEqual(metadata.end["id"], everything[-1][0])


class QueryErrorTests(ArchiveTestCase):
    """
    Queries XEP-0313 refuses, and the conditions it gives.
    """

    def setUp(self):
        ArchiveTestCase.setUp(self)
        self.alice = self.connect("alice")

    def assertRefused(self, expected, **kwargs):
        results, _, reply = self.query(self.alice, **kwargs)
        self.assertEqual(results, [])
        self.assertEqual(reply["type"], "error")
        self.assertEqual(condition(reply)[:2], expected)

    def test_unknownField(self):
        """
        A field the server does not know gets feature-not-implemented.
        """
        self.assertRefused(("feature-not-implemented", "cancel"),
                           fields={"{urn:example}search": "x"})

    def test_wrongFormType(self):
        """
        A form of another FORM_TYPE gets bad-request.
        """
        body = (b"<query xmlns='urn:xmpp:mam:2'>" + form("urn:xmpp:mam:1", {}) + b"</query>")
        _, reply = self.iq(self.alice, body, type="set")
        self.assertEqual(condition(reply)[:2], ("bad-request", "modify"))

    def test_badTime(self):
        """
        A start that is no XEP-0082 time gets bad-request.
        """
        self.assertRefused(("bad-request", "modify"), fields={"start": "yesterday"})

    def test_badWith(self):
        """
        A malformed 'with' gets bad-request.
        """
        self.assertRefused(("bad-request", "modify"), fields={"with": "a@b@c"})

    def test_badMax(self):
        """
        An RSM max that is not a number gets bad-request.
        """
        self.assertRefused(("bad-request", "modify"),
                           rsm=b"<set xmlns='%s'><max>lots</max></set>" % (NS_RSM.encode(),))

    def test_unknownAfter(self):
        """
        An RSM after naming no archived message gets item-not-found.
        """
        self.assertRefused(("item-not-found", "cancel"),
                           rsm=b"<set xmlns='%s'><after>nope</after></set>" % (NS_RSM.encode(),))

    def test_unknownIds(self):
        """
        An 'ids' value naming no archived message gets item-not-found.
        """
        self.assertRefused(("item-not-found", "cancel"), fields={"ids": ["nope"]})

    def test_otherArchive(self):
        """
        Another account's archive is forbidden.
        """
        self.assertRefused(("forbidden", "auth"), to="bob@localhost")

    def test_otherIdsNotVisible(self):
        """
        An id from another account's archive is not found in one's own.
        """
        bob = self.connect("bob")
        send(self.alice, "bob@localhost", "hi")
        [received] = self.messages(bob)
        [sid] = stanzaIds(received).values()
        self.assertRefused(("item-not-found", "cancel"), fields={"ids": [sid]})


class PrefsTests(ArchiveTestCase):
    """
    XEP-0441 preferences.
    """

    def prefs(self, client, body=None):
        if body is None:
            _, reply = self.iq(client, b"<prefs xmlns='urn:xmpp:mam:2'/>")
        else:
            _, reply = self.iq(client, body, type="set")
        return reply

    def test_defaults(self):
        """
        Without preferences, the default is 'always' and both lists are
        there, empty.
        """
        reply = self.prefs(self.connect("alice"))
        self.assertEqual(reply.prefs["default"], "always")
        self.assertEqual([c.name for c in reply.prefs.elements()], ["always", "never"])

    def test_never(self):
        """
        A contact in 'never' is not archived; others still are; the
        applied preferences come back.
        """
        alice = self.connect("alice")
        bob = self.connect("bob")
        carol = self.connect("carol")
        reply = self.prefs(bob, b"<prefs xmlns='urn:xmpp:mam:2' default='always'><always/>"
                                b"<never><jid>alice@localhost</jid></never></prefs>")
        self.assertEqual(str(reply.prefs.never.jid), "alice@localhost")
        send(alice, "bob@localhost", "not kept")
        send(carol, "bob@localhost", "kept")
        received = self.messages(bob)
        self.assertEqual([bool(stanzaIds(m)) for m in received], [False, True])
        results, _, _ = self.query(bob)
        self.assertEqual(self.bodies(results), ["kept"])

    def test_defaultNeverWithAlways(self):
        """
        default='never' archives only the JIDs listed in 'always'.
        """
        alice = self.connect("alice")
        carol = self.connect("carol")
        bob = self.connect("bob")
        self.prefs(bob, b"<prefs xmlns='urn:xmpp:mam:2' default='never'>"
                        b"<always><jid>carol@localhost</jid></always></prefs>")
        send(alice, "bob@localhost", "not kept")
        send(carol, "bob@localhost", "kept")
        self.messages(bob)
        results, _, _ = self.query(bob)
        self.assertEqual(self.bodies(results), ["kept"])

    def test_roster(self):
        """
        default='roster' archives messages with contacts in the roster
        only.
        """
        from xmppws.c2s.storage import RosterRow

        self.server.storage.removeRosterItem("bob", "localhost", "carol@localhost")
        alice = self.connect("alice")
        carol = self.connect("carol")
        bob = self.connect("bob")
        self.prefs(bob, b"<prefs xmlns='urn:xmpp:mam:2' default='roster'/>")
        send(alice, "bob@localhost", "kept")
        send(carol, "bob@localhost", "not kept")
        self.messages(bob)
        results, _, _ = self.query(bob)
        self.assertEqual(self.bodies(results), ["kept"])
        del RosterRow

    def test_survivesRestart(self):
        """
        Preferences are kept across a restart.
        """
        self.prefs(self.connect("bob"), b"<prefs xmlns='urn:xmpp:mam:2' default='never'/>")
        self.restart()
        reply = self.prefs(self.connect("bob"))
        self.assertEqual(reply.prefs["default"], "never")

    def test_badDefault(self):
        """
        An unknown default gets bad-request and changes nothing.
        """
        bob = self.connect("bob")
        reply = self.prefs(bob, b"<prefs xmlns='urn:xmpp:mam:2' default='sometimes'/>")
        self.assertEqual(condition(reply)[:2], ("bad-request", "modify"))
        self.assertEqual(self.prefs(bob).prefs["default"], "always")

    def test_malformedJID(self):
        """
        A malformed listed JID gets jid-malformed.
        """
        reply = self.prefs(self.connect("bob"), b"<prefs xmlns='urn:xmpp:mam:2' "
                           b"default='always'><never><jid>@@</jid></never></prefs>")
        self.assertEqual(condition(reply)[:2], ("jid-malformed", "modify"))

    def test_tooMany(self):
        """
        More JIDs than the maxArchivePrefs quota get not-acceptable and are
        counted.
        """
        self.server.config.quotas.maxArchivePrefs = 2
        jids = b"".join(b"<jid>u%d@localhost</jid>" % (n,) for n in range(3))
        reply = self.prefs(self.connect("bob"), b"<prefs xmlns='urn:xmpp:mam:2' "
                           b"default='always'><never>" + jids + b"</never></prefs>")
        self.assertEqual(condition(reply)[:2], ("not-acceptable", "modify"))
        self.assertEqual(self.server.stats["quota_maxArchivePrefs"], 1)


class BacklogTests(ArchiveTestCase):
    """
    When the database falls behind, the archive's backlog holds up the
    senders whose messages fill it, and loses nothing.
    """

    def test_senderHeldUntilWritten(self):
        """
        The message that brings the rows waiting for the database to the
        high mark stops reading from its sender; once they are written,
        the sender reads on, and every message is delivered and archived.
        """
        store = self.server.modules["mam"].store
        store.backlog = Backlog(4)
        alice = self.connect("alice")
        bob = self.connect("bob")
        send(alice, "bob@localhost", "one", id="m1")
        self.assertEqual(alice.ws.transport.producerState, "producing")
        send(alice, "bob@localhost", "two", id="m2")
        self.assertEqual(store.backlog.size, 4)
        self.assertEqual(alice.ws.transport.producerState, "paused")
        self.assertEqual(bob.ws.transport.producerState, "producing")
        self.clock.advance(store.flushDelay)
        self.assertEqual(alice.ws.transport.producerState, "producing")
        self.assertEqual(store.backlog.holds, 1)
        send(alice, "bob@localhost", "three", id="m3")
        self.assertEqual(
            [str(child(m, "jabber:client", "body")) for m in self.messages(bob)],
            ["one", "two", "three"],
        )
        results, _, _ = self.query(bob)
        self.assertEqual(self.bodies(results), ["one", "two", "three"])

    def test_metrics(self):
        """
        The backlog and the holds are in the metrics.
        """
        from prometheus_client import generate_latest

        from xmppws.metrics import Metrics

        store = self.server.modules["mam"].store
        store.backlog = Backlog(2)
        alice = self.connect("alice")
        self.connect("bob")
        send(alice, "bob@localhost", "one")
        text = generate_latest(Metrics(server=self.server).registry).decode("utf-8")
        self.assertIn("xmppws_archive_backlog 2.0", text)
        self.assertIn("xmppws_archive_holds_total 1.0", text)


class RetentionTests(ArchiveTestCase):
    """
    The archive's quota, its retention, and what survives a restart.
    """

    def test_quotaDropsOldest(self):
        """
        Beyond maxArchiveMessages the oldest messages make room; the
        messages themselves are still delivered.
        """
        self.server.modules["mam"].store.maxMessages = 3
        alice = self.connect("alice")
        bob = self.connect("bob")
        for n in range(5):
            send(alice, "bob@localhost", "message %d" % (n,))
            self.clock.advance(0)
        self.assertEqual(len(self.messages(bob)), 5)
        results, fin, _ = self.query(bob)
        self.assertEqual(self.bodies(results), ["message 2", "message 3", "message 4"])
        self.assertEqual(self.rsmSummary(fin)["count"], "3")

    def test_expiry(self):
        """
        Messages older than the retention are deleted by the hourly
        expiry.
        """
        send(self.connect("alice"), "bob@localhost", "old")
        self.clock.advance(6 * 86400)
        send(self.connect("alice"), "bob@localhost", "new")
        self.clock.advance(86400 + 3600)
        results, _, _ = self.query(self.connect("bob"))
        self.assertEqual(self.bodies(results), ["new"])

    def test_survivesRestart(self):
        """
        Archived messages and their ids are there after a restart.
        """
        alice = self.connect("alice")
        bob = self.connect("bob")
        send(alice, "bob@localhost", "remember me")
        [received] = self.messages(bob)
        self.restart()
        bob = self.connect("bob")
        results, _, _ = self.query(bob)
        self.assertEqual(self.bodies(results), ["remember me"])
        self.assertEqual(results[0][0], stanzaIds(received)["bob@localhost"])

    def test_accountRemoval(self):
        """
        Removing an account removes its archive.
        """
        alice = self.connect("alice")
        bob = self.connect("bob")
        send(alice, "bob@localhost", "gone soon")
        self.messages(bob)
        archive = self.server.modules["mam"]
        from xmppws.c2s import jid as jids

        self.server.fire("account/remove", jids.parse("bob@localhost"))
        page = self.successResultOf(
            archive.store.query("bob@localhost", mamquery.ArchiveQuery()))
        self.assertEqual(page.messages, [])

    def test_disabled(self):
        """
        With the archive off, nothing is archived, no ids are added and
        queries get service-unavailable.
        """
        self.config = {"archive": ArchiveSettings(enabled=False)}
        self.server = self.makeServer()
        alice = self.connect("alice")
        bob = self.connect("bob")
        send(alice, "bob@localhost", "hello")
        [received] = self.messages(bob)
        self.assertEqual(stanzaIds(received), {})
        _, _, reply = self.query(bob)
        self.assertEqual(condition(reply)[:2], ("service-unavailable", "cancel"))


class StampTests(unittest.TestCase):
    """
    XEP-0082 times.
    """

    def test_parse(self):
        """
        parseStamp reads UTC times, fractions and offsets.
        """
        self.assertEqual(parseStamp("1970-01-01T00:00:10Z"), 10)
        self.assertEqual(parseStamp("1970-01-01T01:00:10+01:00"), 10)
        self.assertAlmostEqual(parseStamp("1970-01-01T00:00:10.250Z"), 10.25)

    def test_refuse(self):
        """
        parseStamp refuses what is not a XEP-0082 time.
        """
        for text in ("1970-01-01", "1970-13-01T00:00:00Z", "1970-01-01T00:00:00+25:00", "x"):
            self.assertRaises(ValueError, parseStamp, text)

    def test_roundTrip(self):
        """
        formatStamp writes milliseconds parseStamp reads back.
        """
        self.assertAlmostEqual(parseStamp(mamquery.formatStamp(1234.5678)), 1234.568)

    def test_queryErrorCarriesCondition(self):
        """
        QueryError keeps its condition, type and text.
        """
        e = QueryError("bad-request", "modify", "why")
        self.assertEqual((e.condition, e.errorType, e.text), ("bad-request", "modify", "why"))


del Quotas


class SerializeTests(unittest.TestCase):
    """
    The fast serializer of archived stanzas.
    """

    def test_sameAsDomish(self):
        """
        serialize writes what domish writes for what clients send: nested
        namespaces, xml:lang, text and attributes needing escapes.
        """
        from xmppws.c2s._serialize import serialize

        for data in (
            b"<message xmlns='jabber:client' to='b@x' xml:lang='en' id='a&amp;b&apos;c'>"
            b"<body>1 &lt; 2 &amp;&gt; 3 \"q\"</body><x xmlns='urn:a'><y/><z xmlns='urn:b'>t"
            b"</z></x><thread>th</thread></message>",
            b"<message xmlns='jabber:client'/>",
        ):
            element = parseElement(data)
            self.assertEqual(serialize(element), element.toXml())
            self.assertEqual(parseElement(serialize(element).encode()).toXml(), element.toXml())

    def test_inStream(self):
        """
        Given a stream's content namespace and prefixes, serialize writes
        what the stream's own send would: the content namespace not
        declared again, prefixed namespaces with their prefix.
        """
        from xmppws.c2s._serialize import serialize

        prefixes = {"http://etherx.jabber.org/streams": "stream"}
        for data in (
            b"<message xmlns='jabber:client' to='b@x' id='a&amp;b&apos;c'><body>1 &lt; 2"
            b"</body><x xmlns='urn:a'><y xmlns='jabber:client'/></x></message>",
            b"<iq xmlns='jabber:client' type='error'><error xmlns='http://etherx.jabber.org/"
            b"streams'/></iq>",
            b"<presence xmlns='urn:other'/>",
            b"<message xmlns='jabber:client' xmlns:e='urn:e'><e:x e:a='1'/></message>",
        ):
            element = parseElement(data)
            self.assertEqual(
                serialize(element, "jabber:client", prefixes),
                element.toXml(prefixes=prefixes, defaultUri="jabber:client",
                              prefixesInScope=list(prefixes.values())),
            )

    def test_unusualLeftToDomish(self):
        """
        Prefixed namespaces are written by domish.
        """
        from xmppws.c2s._serialize import serialize

        element = parseElement(b"<message xmlns='jabber:client' xmlns:e='urn:e'><e:x e:a='1'/>"
                               b"</message>")
        self.assertEqual(serialize(element), element.toXml())
