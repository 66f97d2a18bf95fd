"""
Tests for stream negotiation in the embedded server: features, SASL,
binding, and errors, over an in-memory WebSocket.
"""

import base64

from twisted.internet.testing import MemoryReactorClock
from twisted.trial import unittest
from twisted.words.protocols.jabber.jid import JID

from tests.c2shelpers import OPEN_LOCALHOST, C2SClient, makeServer
from xmppws.c2s.namespaces import NS_BIND, NS_SASL, NS_SESSION, NS_TLS


def mechanisms(features):
    return [
        str(m)
        for mechs in features.elements(NS_SASL, "mechanisms")
        for m in mechs.elements(NS_SASL, "mechanism")
    ]


class FeaturesTests(unittest.TestCase):
    """
    Stream features before and after authentication.
    """

    def setUp(self):
        self.clock = MemoryReactorClock()
        self.server = makeServer(self, self.clock)

    def test_loopbackOffersPlain(self):
        """
        On plain ws from loopback, SCRAM and PLAIN are offered (the default
        'loopback' policy), and never STARTTLS.
        """
        client = C2SClient(self, self.server, peer="127.0.0.1")
        features = client.open()[-1]
        self.assertEqual(mechanisms(features), ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])
        self.assertEqual(list(features.elements(NS_TLS, "starttls")), [])

    def test_remoteNoPlain(self):
        """
        On plain ws from elsewhere, PLAIN is not offered.
        """
        client = C2SClient(self, self.server, peer="192.0.2.1")
        features = client.open()[-1]
        self.assertEqual(mechanisms(features), ["SCRAM-SHA-256", "SCRAM-SHA-1"])

    def test_securePlain(self):
        """
        A stream through a trusted TLS proxy counts as encrypted: PLAIN is
        offered.
        """
        client = C2SClient(
            self, self.server, peer="127.0.0.1", trustedProxies=["127.0.0.1"]
        )
        client.ws.handshake(
            __import__("tests.helpers", fromlist=["upgradeRequest"]).upgradeRequest(
                extra=[b"X-Forwarded-For: 192.0.2.9", b"X-Forwarded-Proto: https"]
            )
        )
        client.ws.send(OPEN_LOCALHOST)
        features = client.receive()[-1]
        self.assertIn("PLAIN", mechanisms(features))

    def test_encryptedOnlyPolicy(self):
        """
        With the 'encrypted' policy, loopback ws gets no PLAIN, and asking
        for it fails with C{encryption-required}.
        """
        server = makeServer(self, self.clock, plain="encrypted")
        client = C2SClient(self, server)
        self.assertNotIn("PLAIN", mechanisms(client.open()[-1]))
        client.send(
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
            + base64.b64encode(b"\0alice\0secret") + b"</auth>"
        )
        [failure] = client.receive()
        self.assertEqual(failure.firstChildElement().name, "encryption-required")

    def test_anonymousOffered(self):
        """
        ANONYMOUS is offered only when enabled.
        """
        server = makeServer(self, self.clock, anonymous=True)
        self.assertIn("ANONYMOUS", mechanisms(C2SClient(self, server).open()[-1]))

    def test_boundFeatures(self):
        """
        After authentication, bind and an optional legacy session are
        offered.
        """
        client = C2SClient(self, self.server)
        client.authenticate("alice")
        client.ws.send(OPEN_LOCALHOST)
        features = client.receive()[-1]
        self.assertEqual(len(list(features.elements(NS_BIND, "bind"))), 1)
        [session] = features.elements(NS_SESSION, "session")
        self.assertIsNotNone(session.optional)

    def test_unknownHost(self):
        """
        A stream to a domain not served here gets C{host-unknown}.
        """
        client = C2SClient(self, self.server)
        client.ws.handshake()
        client.ws.send(OPEN_LOCALHOST.replace(b"localhost", b"example.org"))
        messages = client.ws.messages()
        self.assertIn(b"host-unknown", messages[1])


class SASLTests(unittest.TestCase):
    """
    SASL exchanges and their failures.
    """

    def setUp(self):
        self.clock = MemoryReactorClock()
        self.server = makeServer(self, self.clock, anonymous=True)

    def test_scramSHA256(self):
        """
        SCRAM-SHA-256 succeeds with the right password, and the server's
        signature verifies.
        """
        result = C2SClient(self, self.server).authenticate("alice")
        self.assertEqual(result.name, "success")

    def test_scramSHA1(self):
        """
        SCRAM-SHA-1 succeeds too.
        """
        result = C2SClient(self, self.server).authenticate("bob", mechanism="SCRAM-SHA-1")
        self.assertEqual(result.name, "success")

    def test_scramWrongPassword(self):
        """
        A wrong password fails with C{not-authorized}.
        """
        result = C2SClient(self, self.server).authenticate("alice", "wrong")
        self.assertEqual((result.name, result.firstChildElement().name), ("failure", "not-authorized"))

    def test_scramUnknownUser(self):
        """
        An unknown user gets a normal-looking challenge and then
        C{not-authorized}: accounts cannot be probed.
        """
        result = C2SClient(self, self.server).authenticate("mallory", "x")
        self.assertEqual(result.firstChildElement().name, "not-authorized")

    def test_plain(self):
        """
        PLAIN succeeds with the right password and fails without.
        """
        self.assertEqual(
            C2SClient(self, self.server).authenticate("alice", mechanism="PLAIN").name,
            "success",
        )
        result = C2SClient(self, self.server, peer="127.0.0.2").authenticate(
            "alice", "nope", mechanism="PLAIN"
        )
        self.assertEqual(result.firstChildElement().name, "not-authorized")

    def test_plainBadAuthzid(self):
        """
        PLAIN with someone else's authzid fails with C{invalid-authzid}.
        """
        client = C2SClient(self, self.server)
        client.open()
        client.send(
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
            + base64.b64encode(b"bob@localhost\0alice\0secret") + b"</auth>"
        )
        self.assertEqual(client.receive()[0].firstChildElement().name, "invalid-authzid")

    def test_badBase64(self):
        """
        Undecodable data fails with C{incorrect-encoding}.
        """
        client = C2SClient(self, self.server)
        client.open()
        client.send(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>!!!</auth>")
        self.assertEqual(client.receive()[0].firstChildElement().name, "incorrect-encoding")

    def test_unknownMechanism(self):
        """
        An unoffered mechanism fails with C{invalid-mechanism}.
        """
        client = C2SClient(self, self.server)
        client.open()
        client.send(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='DIGEST-MD5'/>")
        self.assertEqual(client.receive()[0].firstChildElement().name, "invalid-mechanism")

    def test_abort(self):
        """
        An aborted exchange gets C{aborted}, and a new one may start.
        """
        client = C2SClient(self, self.server)
        client.open()
        client.send(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>"
                    + base64.b64encode(b"n,,n=alice,r=abcdefgh") + b"</auth>")
        self.assertEqual(client.receive()[0].name, "challenge")
        client.send(b"<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
        self.assertEqual(client.receive()[0].firstChildElement().name, "aborted")

    def test_anonymous(self):
        """
        ANONYMOUS binds a random local JID.
        """
        client = C2SClient(self, self.server)
        client.open()
        client.send(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>")
        self.assertEqual(client.receive()[0].name, "success")
        client.ws.send(OPEN_LOCALHOST)
        client.receive()
        client.send(b"<iq xmlns='jabber:client' type='set' id='b'>"
                    b"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
        jid = JID(str(client.receive()[0].bind.jid))
        self.assertEqual(jid.host, "localhost")
        self.assertEqual(len(jid.user), 16)

    def test_tooManyFailuresOnOneStream(self):
        """
        Failures are answered at once (the throttle delays attempts before
        they are checked, never their answers), and the fifth on one
        stream ends it with C{policy-violation}.
        """
        client = C2SClient(self, self.server, peer="198.51.100.1")
        self.assertEqual(client.authenticate("alice", "x").name, "failure")
        for _ in range(3):
            client.send(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='DIGEST-MD5'/>")
            [failure] = client.receive()
            self.assertEqual(failure.firstChildElement().name, "invalid-mechanism")
        client.send(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='DIGEST-MD5'/>")
        self.assertIn(b"policy-violation", b"".join(client.ws.messages()))

    def test_stanzaBeforeAuth(self):
        """
        A stanza before authentication ends the stream with
        C{not-authorized}.
        """
        client = C2SClient(self, self.server)
        client.open()
        client.send(b"<message xmlns='jabber:client' to='bob@localhost'><body>x</body></message>")
        self.assertIn(b"not-authorized", b"".join(client.ws.messages()))


class BindTests(unittest.TestCase):
    """
    Resource binding.
    """

    def setUp(self):
        self.clock = MemoryReactorClock()
        self.server = makeServer(self, self.clock)

    def test_chosenResource(self):
        """
        The client's resource is used.
        """
        self.assertEqual(C2SClient(self, self.server).login("alice", "laptop"), "alice@localhost/laptop")

    def test_generatedResource(self):
        """
        Without a resource, the server generates one.
        """
        jid = C2SClient(self, self.server).login("alice", None)
        self.assertTrue(jid.startswith("alice@localhost/xmppws-"))

    def test_conflict(self):
        """
        Binding a resource in use replaces the old session, which gets a
        C{conflict} stream error.
        """
        first = C2SClient(self, self.server)
        first.login("alice", "phone")
        second = C2SClient(self, self.server)
        second.login("alice", "phone")
        self.assertIn(b"conflict", b"".join(first.ws.messages()))
        [session] = self.server.sessionsOf(JID("alice@localhost"))
        self.assertIs(session.xs.transport, second.ws.protocol.connection)

    def test_legacySession(self):
        """
        The legacy session request is answered with a result.
        """
        client = C2SClient(self, self.server)
        client.login("alice")
        [reply] = client.iq(b"<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>", "set")
        self.assertEqual(reply["type"], "result")

    def test_forgedFrom(self):
        """
        A stanza claiming another sender ends the stream with
        C{invalid-from}.
        """
        client = C2SClient(self, self.server)
        client.login("alice")
        client.send(b"<message xmlns='jabber:client' from='bob@localhost' to='carol@localhost'/>")
        self.assertIn(b"invalid-from", b"".join(client.ws.messages()))
