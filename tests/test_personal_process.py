"""
History and personal data across a real restart: C{twistd -n xmppws} in
a process of its own, used by WebSocket clients (an archived chat
message, a room message, a vCard, private XML, a PEP item), stopped with
SIGTERM at once -- what the archive queued must be written as it stops
-- and started again on the same data directory, where everything is
still there.  Every wait is bounded and the processes are killed if a
test fails.
"""

import signal
import subprocess
import sys

from twisted.trial import unittest

from tests.test_muc_process import MUC, Session, _isResult, _join
from tests.test_twistd import ROOT, TIMEOUT, _environment, _Twistd

NS_SID = "{urn:xmpp:sid:0}"
NS_MAM = "{urn:xmpp:mam:2}"
NS_FORWARD = "{urn:xmpp:forward:0}"


def _archived(session, to=None):
    """
    Query an archive; return the (id, body) of every result.
    """
    address = " to='%s'" % (to,) if to else ""
    session.send("<iq xmlns='jabber:client' type='set' id='mam'%s>"
                 "<query xmlns='urn:xmpp:mam:2' queryid='q'/></iq>" % (address,))
    found = []
    while True:
        element = session.until(
            lambda e: e.find(NS_MAM + "result") is not None or _isResult("mam")(e),
            "archive results",
        )
        result = element.find(NS_MAM + "result")
        if result is None:
            return found
        body = result.find(NS_FORWARD + "forwarded/{jabber:client}message/{jabber:client}body")
        found.append((result.get("id"), body.text if body is not None else None))


class PersonalDataProcessTests(unittest.TestCase):
    """
    C{twistd xmppws} stopped and started again.
    """

    timeout = 120

    def start(self, dataDir=None):
        args = ["--listen", "tcp:0:interface=127.0.0.1", "--c2s", "none",
                "--metrics", "tcp:0:interface=127.0.0.1"]
        if dataDir is not None:
            args += ["--data-dir", dataDir]
        server = _Twistd(self, *args)
        return server, server.ports()["web"]

    def test_restart(self):
        """
        A chat message (in both archives, with the id bob saw), a room
        message (in the room's archive), alice's vCard, private XML and a
        PEP item are all there after SIGTERM and a new process on the same
        data directory; each process exits 0.
        """
        server, web = self.start()
        for user in ("alice", "bob"):
            subprocess.run(
                [sys.executable, "-m", "xmppws.admin", "--data-dir", server.dataDir,
                 "adduser", "%s@localhost" % (user,), "secret"],
                env=_environment(), cwd=ROOT, check=True, timeout=TIMEOUT,
                stdout=subprocess.DEVNULL,
            )
        alice = Session(self, web, "alice")
        bob = Session(self, web, "bob")
        alice.send("<message xmlns='jabber:client' to='bob@localhost' type='chat' id='c1'>"
                   "<body>kept across restarts</body></message>")
        received = bob.until(lambda e: e.get("id") == "c1", "alice's message at bob")
        live = received.find(NS_SID + "stanza-id").get("id")
        alice.send("<iq xmlns='jabber:client' type='set' id='v1'><vCard xmlns='vcard-temp'>"
                   "<FN>Alice Restarted</FN></vCard></iq>")
        alice.until(_isResult("v1"), "the vCard result")
        alice.send("<iq xmlns='jabber:client' type='set' id='p1'><query "
                   "xmlns='jabber:iq:private'><notes xmlns='urn:example:notes'>milk</notes>"
                   "</query></iq>")
        alice.until(_isResult("p1"), "the private storage result")
        alice.send("<iq xmlns='jabber:client' type='set' id='e1'><pubsub "
                   "xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:example:status'>"
                   "<item id='current'><status xmlns='urn:example:status'>away</status></item>"
                   "</publish></pubsub></iq>")
        alice.until(_isResult("e1"), "the publish result")
        _join(alice, "Alice")
        alice.send(
            "<iq xmlns='jabber:client' type='set' id='r1' to='lobby@%s'>"
            "<query xmlns='http://jabber.org/protocol/muc#owner'>"
            "<x xmlns='jabber:x:data' type='submit'>"
            "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value>"
            "</field><field var='muc#roomconfig_persistentroom'><value>1</value></field>"
            "</x></query></iq>" % (MUC,))
        alice.until(_isResult("r1"), "the room configuration result")
        alice.send("<message xmlns='jabber:client' type='groupchat' to='lobby@%s' id='g1'>"
                   "<body>said in the room</body></message>" % (MUC,))
        reflected = alice.until(lambda e: e.get("id") == "g1", "the room message")
        roomId = reflected.find(NS_SID + "stanza-id").get("id")

        # At once: what is still queued must be written as the service stops.
        server.signal(signal.SIGTERM)
        self.assertEqual(server.wait(), 0)
        self.assertNotIn("Traceback", server.output)

        server, web = self.start(server.dataDir)
        alice = Session(self, web, "alice")
        bob = Session(self, web, "bob")
        self.assertEqual(_archived(bob), [(live, "kept across restarts")])
        self.assertEqual([body for _, body in _archived(alice)], ["kept across restarts"])
        self.assertEqual(_archived(bob, "lobby@%s" % (MUC,)), [(roomId, "said in the room")])
        bob.send("<iq xmlns='jabber:client' type='get' id='v2' to='alice@localhost'>"
                 "<vCard xmlns='vcard-temp'/></iq>")
        vcard = bob.until(_isResult("v2"), "alice's vCard")
        self.assertEqual(vcard.find("{vcard-temp}vCard/{vcard-temp}FN").text, "Alice Restarted")
        alice.send("<iq xmlns='jabber:client' type='get' id='p2'><query "
                   "xmlns='jabber:iq:private'><notes xmlns='urn:example:notes'/></query></iq>")
        private = alice.until(_isResult("p2"), "alice's private XML")
        self.assertEqual(private.find("{jabber:iq:private}query/{urn:example:notes}notes").text,
                         "milk")
        alice.send("<iq xmlns='jabber:client' type='get' id='e2'><pubsub "
                   "xmlns='http://jabber.org/protocol/pubsub'><items node='urn:example:status'/>"
                   "</pubsub></iq>")
        items = alice.until(_isResult("e2"), "alice's PEP items")
        status = items.find("{http://jabber.org/protocol/pubsub}pubsub/"
                            "{http://jabber.org/protocol/pubsub}items/"
                            "{http://jabber.org/protocol/pubsub}item/{urn:example:status}status")
        self.assertEqual(status.text, "away")
        server.signal(signal.SIGTERM)
        self.assertEqual(server.wait(), 0)
        self.assertNotIn("Traceback", server.output)
