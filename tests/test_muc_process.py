"""
The group chat service as an operator of another server runs it: C{twistd
-n xmppws-muc} in a process of its own, attached over XEP-0114 to the
component port of C{twistd -n xmppws} (itself without group chat), used
by a WebSocket client, and restarted with its rooms kept.  Every wait is
bounded and the processes are killed if a test fails.
"""

import signal
import subprocess
import sys
import time
from xml.etree import ElementTree

from twisted.python.filepath import FilePath
from twisted.trial import unittest
from websockets.sync.client import connect as websocketsConnect

from tests.test_twistd import BIND, ROOT, TIMEOUT, _environment, _Twistd
from tests.servicehelpers import OPEN, plainAuth

SECRET = "component-s3cret"
MUC = "conference.localhost"


def _parse(text):
    """
    Parse one message of the WebSocket into an L{ElementTree.Element}.
    """
    return ElementTree.fromstring(text)


class Session:
    """
    A synchronous RFC 7395 client: logs in with PLAIN and binds.
    """

    def __init__(self, testCase, port, user):
        self.ws = websocketsConnect(
            "ws://127.0.0.1:%d/xmpp-websocket" % (port,),
            subprotocols=["xmpp"],
            open_timeout=TIMEOUT,
            close_timeout=TIMEOUT,
        )
        testCase.addCleanup(self.ws.close)
        self.ws.send(OPEN.decode())
        self.ws.recv(TIMEOUT), self.ws.recv(TIMEOUT)
        self.ws.send(plainAuth(user, "secret").decode())
        assert "success" in self.ws.recv(TIMEOUT)
        self.ws.send(OPEN.decode())
        self.ws.recv(TIMEOUT), self.ws.recv(TIMEOUT)
        self.ws.send(BIND.replace(">web<", ">%s<" % (user,)))
        self.ws.recv(TIMEOUT)
        self.send("<presence xmlns='jabber:client'/>")

    def send(self, xml):
        self.ws.send(xml)

    def until(self, predicate, what):
        """
        Read stanzas until one matches; return it.
        """
        deadline = time.monotonic() + TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s within %ss" % (what, TIMEOUT))
            element = _parse(self.ws.recv(left))
            if predicate(element):
                return element


def _isSubject(element):
    return element.tag.endswith("message") and element.find("{jabber:client}subject") is not None


def _isResult(id):
    return lambda e: e.tag.endswith("iq") and e.get("id") == id


def _join(session, nick):
    session.send(
        "<presence xmlns='jabber:client' to='lobby@%s/%s'>"
        "<x xmlns='http://jabber.org/protocol/muc'/></presence>" % (MUC, nick)
    )
    return session.until(_isSubject, "subject after joining")


class ExternalComponentProcessTests(unittest.TestCase):
    """
    C{twistd xmppws-muc} attached to C{twistd xmppws --component}.
    """

    timeout = 120

    def test_attachAndRestart(self):
        """
        The external component serves rooms to the server's clients, and
        after a restart its persistent room, affiliations and history are
        still there; each process exits 0 on SIGTERM.
        """
        server = _Twistd(
            self,
            "--listen", "tcp:0:interface=127.0.0.1",
            "--c2s", "none",
            "--metrics", "tcp:0:interface=127.0.0.1",
            "--component", "tcp:0:interface=127.0.0.1",
            "--component-secret", SECRET,
            "--muc-domain", "none",
        )
        web = server.ports()["web"]
        [line] = server.waitFor("Listening for components on ")
        componentPort = int(line.rsplit(":", 1)[1])
        for user in ("alice", "bob"):
            subprocess.run(
                [sys.executable, "-m", "xmppws.admin", "--data-dir", server.dataDir,
                 "adduser", "%s@localhost" % (user,), "secret"],
                env=_environment(), cwd=ROOT, check=True, timeout=TIMEOUT,
                stdout=subprocess.DEVNULL,
            )
        secretFile = FilePath(self.mktemp())
        secretFile.setContent(SECRET.encode() + b"\n")
        dataDir = FilePath(self.mktemp()).path

        def startComponent():
            component = _Twistd(
                self,
                "--domain", MUC,
                "--connect", "tcp:host=127.0.0.1:port=%d" % (componentPort,),
                "--secret-file", secretFile.path,
                "--data-dir", dataDir,
                plugin="xmppws-muc",
            )
            component.waitFor("Serving group chat at %s" % (MUC,))
            return component

        component = startComponent()
        alice = Session(self, web, "alice")
        _join(alice, "Alice")
        alice.send(
            "<iq xmlns='jabber:client' type='set' id='c1' to='lobby@%s'>"
            "<query xmlns='http://jabber.org/protocol/muc#owner'>"
            "<x xmlns='jabber:x:data' type='submit'>"
            "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>"
            "<field var='muc#roomconfig_persistentroom'><value>1</value></field>"
            "<field var='muc#roomconfig_roomname'><value>Lobby</value></field>"
            "</x></query></iq>" % (MUC,)
        )
        alice.until(_isResult("c1"), "the configuration result")
        alice.send(
            "<iq xmlns='jabber:client' type='set' id='a1' to='lobby@%s'>"
            "<query xmlns='http://jabber.org/protocol/muc#admin'>"
            "<item affiliation='member' jid='bob@localhost'/></query></iq>" % (MUC,)
        )
        alice.until(_isResult("a1"), "the affiliation result")

        bob = Session(self, web, "bob")
        _join(bob, "Bob")
        alice.send(
            "<message xmlns='jabber:client' type='groupchat' to='lobby@%s' id='m1'>"
            "<body>through the component</body></message>" % (MUC,)
        )
        message = bob.until(lambda e: e.get("id") == "m1", "alice's message at bob")
        self.assertEqual(message.get("from"), "lobby@%s/Alice" % (MUC,))
        self.assertEqual(message.find("{jabber:client}body").text, "through the component")
        stanzaId = message.find("{urn:xmpp:sid:0}stanza-id").get("id")

        component.signal(signal.SIGTERM)
        gone = bob.until(
            lambda e: e.get("type") == "unavailable" and e.get("from") == "lobby@%s/Bob" % (MUC,),
            "bob's unavailable presence as the service stops",
        )
        codes = {s.get("code") for s in gone.iter("{http://jabber.org/protocol/muc#user}status")}
        self.assertEqual(codes, {"110", "332"})
        self.assertEqual(component.wait(), 0)
        self.assertNotIn("Traceback", component.output)

        component = startComponent()
        bob.send(
            "<presence xmlns='jabber:client' to='lobby@%s/Bob'>"
            "<x xmlns='http://jabber.org/protocol/muc'/></presence>" % (MUC,)
        )
        own = bob.until(
            lambda e: e.tag.endswith("presence") and e.get("from") == "lobby@%s/Bob" % (MUC,),
            "bob's own presence after the restart",
        )
        item = own.find("{http://jabber.org/protocol/muc#user}x/"
                        "{http://jabber.org/protocol/muc#user}item")
        self.assertEqual(item.get("affiliation"), "member")
        history = bob.until(lambda e: e.get("id") == "m1", "the message in the history")
        self.assertEqual(history.find("{urn:xmpp:sid:0}stanza-id").get("id"), stanzaId)
        self.assertIsNotNone(history.find("{urn:xmpp:delay}delay"))
        bob.send(
            "<iq xmlns='jabber:client' type='get' id='i1' to='lobby@%s'>"
            "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>" % (MUC,)
        )
        info = bob.until(_isResult("i1"), "the room's information")
        query = info.find("{http://jabber.org/protocol/disco#info}query")
        self.assertEqual(query.find("{http://jabber.org/protocol/disco#info}identity").get("name"), "Lobby")
        features = {f.get("var") for f in query.iter("{http://jabber.org/protocol/disco#info}feature")}
        self.assertIn("muc_persistent", features)

        component.signal(signal.SIGTERM)
        self.assertEqual(component.wait(), 0)
        server.signal(signal.SIGTERM)
        self.assertEqual(server.wait(), 0)
        self.assertNotIn("Traceback", server.output)

    def test_wrongSecret(self):
        """
        With the wrong secret the component says the server refused it,
        and stops on SIGTERM.
        """
        server = _Twistd(
            self,
            "--listen", "tcp:0:interface=127.0.0.1",
            "--c2s", "none",
            "--metrics", "tcp:0:interface=127.0.0.1",
            "--component", "tcp:0:interface=127.0.0.1",
            "--component-secret", SECRET,
        )
        server.ports()
        [line] = server.waitFor("Listening for components on ")
        componentPort = int(line.rsplit(":", 1)[1])
        component = _Twistd(
            self,
            "--domain", "rooms.localhost",
            "--connect", "tcp:host=127.0.0.1:port=%d" % (componentPort,),
            "--secret", "wrong",
            plugin="xmppws-muc",
        )
        component.waitFor("The server refused the component rooms.localhost: not-authorized")
        component.signal(signal.SIGTERM)
        self.assertEqual(component.wait(), 0)
        server.signal(signal.SIGTERM)
        self.assertEqual(server.wait(), 0)
