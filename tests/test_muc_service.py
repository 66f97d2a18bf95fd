"""
Tests for L{xmppws.muc.service}: the service's own discovery and ping,
bad addresses, stanzas received while the rooms load, and failures,
with stanzas given to the handler directly and what it sends collected.
"""

from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock
from twisted.trial import unittest

from tests.c2shelpers import parseElement
from tests.muchelpers import NS_DISCO_INFO, NS_DISCO_ITEMS, child, errorCondition
from xmppws.muc.service import MUCService
from xmppws.muc.settings import MUCSettings


class FakeParent:
    """
    Stands for the component stream: keeps what the service sends.
    """

    def __init__(self):
        self.sent = []

    def send(self, element):
        self.sent.append(element)


class FakeStore:
    """
    A room store whose loading the test finishes.
    """

    def __init__(self):
        self.loading = defer.Deferred()

    def load(self, service):
        return self.loading


class ServiceTests(unittest.TestCase):
    """
    Stanzas to the service's own address and malformed ones.
    """

    def setUp(self):
        self.muc = MUCService(MUCSettings("conference.example.org"), None, MemoryReactorClock())
        self.parent = FakeParent()
        self.muc.parent = self.parent
        self.muc.load()

    def receive(self, xml):
        self.muc.received(parseElement(xml))
        sent, self.parent.sent[:] = list(self.parent.sent), []
        return sent

    def test_info(self):
        """
        The service is a C{conference/text} identity with the MUC feature.
        """
        [result] = self.receive(
            b"<iq type='get' id='1' from='a@example.org/r' to='conference.example.org'>"
            b"<query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        )
        query = child(result, NS_DISCO_INFO, "query")
        self.assertEqual(
            (query.identity["category"], query.identity["type"], query.identity["name"]),
            ("conference", "text", "Chatrooms"),
        )
        features = {f["var"] for f in query.elements(NS_DISCO_INFO, "feature")}
        self.assertIn("http://jabber.org/protocol/muc", features)
        self.assertIn("urn:xmpp:occupant-id:0", features)

    def test_items(self):
        """
        With no public room, the service's items are empty.
        """
        [result] = self.receive(
            b"<iq type='get' id='1' from='a@example.org/r' to='conference.example.org'>"
            b"<query xmlns='http://jabber.org/protocol/disco#items'/></iq>"
        )
        self.assertEqual(list(child(result, NS_DISCO_ITEMS, "query").elements()), [])

    def test_ping(self):
        """
        The service answers a XEP-0199 ping.
        """
        [result] = self.receive(
            b"<iq type='get' id='1' from='a@example.org/r' to='conference.example.org'>"
            b"<ping xmlns='urn:xmpp:ping'/></iq>"
        )
        self.assertEqual(result["type"], "result")

    def test_otherIq(self):
        """
        Other requests to the service get C{service-unavailable}; results
        and errors get nothing.
        """
        [error] = self.receive(
            b"<iq type='set' id='1' from='a@example.org/r' to='conference.example.org'>"
            b"<query xmlns='urn:example'/></iq>"
        )
        self.assertEqual(errorCondition(error), ("cancel", "service-unavailable"))
        self.assertEqual(
            self.receive(
                b"<iq type='result' id='1' from='a@example.org/r' to='conference.example.org'/>"
            ),
            [],
        )

    def test_messageToService(self):
        """
        A message to the service gets C{service-unavailable}.
        """
        [error] = self.receive(
            b"<message from='a@example.org/r' to='conference.example.org'><body>hi</body></message>"
        )
        self.assertEqual(errorCondition(error), ("cancel", "service-unavailable"))

    def test_malformedTo(self):
        """
        A stanza to an address that is no JID gets C{jid-malformed} from the
        service.
        """
        [error] = self.receive(
            b"<message from='a@example.org/r' to='lo&quot;bby@conference.example.org'>"
            b"<body>hi</body></message>"
        )
        self.assertEqual(errorCondition(error), ("modify", "jid-malformed"))
        self.assertEqual(error["from"], "conference.example.org")

    def test_malformedFrom(self):
        """
        A stanza from an address that is no JID is dropped.
        """
        self.assertEqual(
            self.receive(b"<message from='@@' to='conference.example.org'><body>x</body></message>"),
            [],
        )

    def test_otherDomain(self):
        """
        A stanza for another domain gets C{item-not-found}.
        """
        [error] = self.receive(
            b"<iq type='get' id='1' from='a@example.org/r' to='x@elsewhere.example.org'>"
            b"<ping xmlns='urn:xmpp:ping'/></iq>"
        )
        self.assertEqual(errorCondition(error), ("cancel", "item-not-found"))

    def test_noErrorForError(self):
        """
        An error to a room that does not exist is not answered.
        """
        self.assertEqual(
            self.receive(
                b"<message type='error' from='a@example.org/r' to='x@conference.example.org'/>"
            ),
            [],
        )

    def test_failureAnswered(self):
        """
        A stanza whose handling fails gets C{internal-server-error}, and
        the service goes on.
        """

        def broken(*args):
            raise RuntimeError("bug")

        self.patch(self.muc, "_toService", broken)
        [error] = self.receive(
            b"<iq type='get' id='1' from='a@example.org/r' to='conference.example.org'>"
            b"<ping xmlns='urn:xmpp:ping'/></iq>"
        )
        self.assertEqual(errorCondition(error), ("wait", "internal-server-error"))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class LoadingTests(unittest.TestCase):
    """
    Stanzas received while the stored rooms load wait for them.
    """

    def setUp(self):
        self.store = FakeStore()
        self.muc = MUCService(
            MUCSettings("conference.example.org"), self.store, MemoryReactorClock()
        )
        self.parent = FakeParent()
        self.muc.parent = self.parent
        self.muc.load()

    def ping(self):
        self.muc.received(
            parseElement(
                b"<iq type='get' id='1' from='a@example.org/r' to='conference.example.org'>"
                b"<ping xmlns='urn:xmpp:ping'/></iq>"
            )
        )

    def test_waiting(self):
        """
        A stanza received before the rooms are loaded is answered once they
        are.
        """
        self.ping()
        self.assertEqual(self.parent.sent, [])
        self.store.loading.callback([])
        [result] = self.parent.sent
        self.assertEqual(result["type"], "result")

    def test_broken(self):
        """
        If the rooms cannot be loaded, stanzas get
        C{internal-server-error}.
        """
        self.ping()
        self.store.loading.errback(OSError("disk on fire"))
        [error] = self.parent.sent
        self.assertEqual(errorCondition(error), ("wait", "internal-server-error"))
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
