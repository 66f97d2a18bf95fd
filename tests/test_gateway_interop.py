# -*- test-case-name: tests.test_gateway_interop -*-
"""
The client libraries of the interoperability suite, and Converse.js in
Chromium, through the gateway to a real Prosody: the same Node.js scripts
as L{tests.test_clients} and L{tests.test_browser}, recorded as rows of
the generated matrix (C{docs/matrix.rst}) that name the gateway.
"""

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.python.filepath import FilePath
from twisted.trial import unittest

from tests.interop.fixture import (
    ARTIFACTS,
    PASSWORD,
    USERS,
    chromiumExecutable,
    nodeExecutable,
    recordResult,
    runNode,
)
from tests.interop.gatewayfixture import GatewayInteropServer

RFC7395 = "rfc7395"
DRAFT00 = "draft-00"
LEGACY = "Strophe.js 1.1 style"


class GatewayClientLibraryTests(unittest.TestCase):
    """
    Each library logs two users in with SCRAM and with PLAIN through the
    gateway, binds, reads the roster, exchanges presence and messages,
    pings the server, resumes after a cut socket where it does XEP-0198
    (Prosody's stream management, through the gateway), and closes
    cleanly.
    """

    timeout = 150

    def setUp(self):
        nodeExecutable()
        self.server = GatewayInteropServer(FilePath(self.mktemp()))
        d = self.server.start(reactor)
        d.addCallback(lambda _: self.addCleanup(self.server.stop, reactor))
        return d

    @inlineCallbacks
    def runClient(self, client, script, transport, framing=RFC7395):
        config = {
            "url": self.server.url(transport),
            "domain": self.server.domain,
            "users": [{"username": user, "password": PASSWORD} for user in USERS],
            "transport": transport,
            "framing": framing,
            "mechanisms": ["SCRAM", "PLAIN"],
            "resume": True,
        }
        run = yield runNode(
            reactor,
            script,
            config,
            timeout=90,
            env={"NODE_EXTRA_CA_CERTS": self.server.certPath},
            logPath=FilePath(self.mktemp()).child("stderr.log"),
        )
        record = recordResult(client, transport, framing, run, via=self.server.via)
        if run.result is None:
            self.fail("%s printed no result: %s" % (script, run.describe()))
        if not record.get("ok"):
            failed = []
            for each in record.get("runs", []):
                for name, step in each.get("steps", {}).items():
                    if not step.get("ok"):
                        failed.append("%s/%s: %s" % (each["mechanism"], name, step.get("error")))
                if each.get("error") and not failed:
                    failed.append("%s: %s" % (each["mechanism"], each["error"]))
            self.fail(
                "%s through the gateway failed:\n%s\n%s"
                % (client, "\n".join(failed) or record.get("error"), run.describe())
            )

    def test_xmppjs(self):
        """
        xmpp.js does the whole scenario through the gateway over ws://.
        """
        return self.runClient("xmpp.js", "clients/xmppjs.mjs", "ws")

    def test_stanza(self):
        """
        Stanza does the whole scenario through the gateway over ws://.
        """
        return self.runClient("Stanza", "clients/stanza.mjs", "ws")

    def test_strophe(self):
        """
        Strophe.js does the whole scenario through the gateway over ws://.
        """
        return self.runClient("Strophe.js", "clients/strophe.mjs", "ws")

    def test_stropheSecure(self):
        """
        Strophe.js does the whole scenario through the gateway over wss://.
        """
        return self.runClient("Strophe.js", "clients/strophe.mjs", "wss")

    def test_legacy(self):
        """
        A draft-00 client (the way Strophe.js 1.1 spoke) does the scenario
        through the gateway.
        """
        return self.runClient(LEGACY, "clients/legacy.mjs", "ws", framing=DRAFT00)


class GatewayConverseTests(unittest.TestCase):
    """
    Two Converse.js sessions in Chromium through the gateway to Prosody,
    one over C{wss://} found through the gateway's XEP-0156 host-meta, one
    over C{ws://}.
    """

    timeout = 180
    domain = "xmppws.test"

    def setUp(self):
        nodeExecutable()
        self.chromium = chromiumExecutable()
        self.server = GatewayInteropServer(FilePath(self.mktemp()), domain=self.domain)
        d = self.server.start(reactor)
        d.addCallback(lambda _: self.addCleanup(self.server.stop, reactor))
        return d

    @inlineCallbacks
    def test_converse(self):
        """
        Each page logs in through the gateway, shows the other user online,
        shows the other's message and closes its WebSocket cleanly; no
        page error occurs.
        """
        config = {
            "chromium": self.chromium,
            "pageURL": "http://127.0.0.1:%d/converse.html" % (self.server.httpPort,),
            "domain": self.domain,
            "httpsPort": self.server.httpsPort,
            "wsURL": self.server.wsURL,
            "discoveredURL": "wss://%s/xmpp-websocket" % (self.domain,),
            "users": [{"username": user, "password": PASSWORD} for user in USERS],
            "artifacts": ARTIFACTS.child("gateway").path,
        }
        run = yield runNode(
            reactor,
            "browser/converse.mjs",
            config,
            timeout=150,
            logPath=FilePath(self.mktemp()).child("stderr.log"),
        )
        result = run.result
        via = self.server.via
        if result is None:
            recordResult("Converse.js", "ws", RFC7395, run, via=via)
            recordResult("Converse.js", "wss", RFC7395, run, via=via)
            self.fail("browser/converse.mjs printed no result: %s" % (run.describe(),))
        problems = []
        for session in result.get("sessions", []):
            login = session["steps"].get("login", {})
            mechanism = (login.get("detail") or {}).get("mechanism") or "?"
            sessionOK = all(step.get("ok") for step in session["steps"].values())
            record = dict(
                result,
                ok=sessionOK and not result.get("pageErrors"),
                runs=[{"mechanism": mechanism, "steps": session["steps"]}],
                user=session["user"],
            )
            del record["sessions"]
            recordResult(
                result["client"], session["transport"], session["framing"], run, record,
                via=via,
            )
            for name, step in session["steps"].items():
                if not step.get("ok"):
                    problems.append("%s/%s: %s" % (session["user"], name, step.get("error")))
        if result.get("pageErrors"):
            problems.append("page errors: %s" % (result["pageErrors"],))
        if result.get("error"):
            problems.append(result["error"])
        if len(result.get("sessions", [])) != 2:
            problems.append("expected two sessions")
        if problems:
            self.fail(
                "Converse.js through the gateway failed:\n%s\n%s"
                % ("\n".join(problems), run.describe())
            )
