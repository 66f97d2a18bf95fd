# -*- test-case-name: tests.test_browser -*-
"""
Converse.js in a real browser: Debian's Chromium, driven by
C{playwright-core}, runs two Converse.js sessions against the embedded
server (see C{tests/interop/browser/converse.mjs}).

The server's XMPP domain is C{xmppws.test}; Chromium maps that name to the
server's TLS port, so Converse.js finds the WebSocket URL the way it does
on the web, from C{https://xmppws.test/.well-known/host-meta}, and trusts
the test certificate through C{--ignore-certificate-errors}.  Screenshots
are kept in C{_artifacts/} (or C{$XMPPWS_ARTIFACTS}).
"""

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.python.filepath import FilePath
from twisted.trial import unittest

from tests.interop.fixture import (
    ARTIFACTS,
    PASSWORD,
    USERS,
    InteropServer,
    chromiumExecutable,
    nodeExecutable,
    recordResult,
    runNode,
)

DOMAIN = "xmppws.test"


class ConverseTests(unittest.TestCase):
    """
    Two Converse.js sessions, one over C{wss://} found through XEP-0156 and
    one over C{ws://}, log in, see each other online, exchange a message
    through the chat boxes and log out.
    """

    timeout = 180

    def setUp(self):
        nodeExecutable()
        self.chromium = chromiumExecutable()
        self.server = InteropServer(FilePath(self.mktemp()), domain=DOMAIN)
        d = self.server.start(reactor)
        d.addCallback(lambda _: self.addCleanup(self.server.stop, reactor))
        return d

    @inlineCallbacks
    def test_converse(self):
        """
        Each page logs in (the first through host-meta discovery), shows
        the other user online in its roster, shows the message the other
        typed, and closes its WebSocket cleanly on logout; no page error
        occurs.
        """
        config = {
            "chromium": self.chromium,
            "pageURL": "http://127.0.0.1:%d/converse.html" % (self.server.httpPort,),
            "domain": DOMAIN,
            "httpsPort": self.server.httpsPort,
            "wsURL": self.server.wsURL,
            "discoveredURL": "wss://%s/xmpp-websocket" % (DOMAIN,),
            "users": [{"username": user, "password": PASSWORD} for user in USERS],
            "artifacts": ARTIFACTS.path,
        }
        run = yield runNode(
            reactor,
            "browser/converse.mjs",
            config,
            timeout=150,
            logPath=FilePath(self.mktemp()).child("stderr.log"),
        )
        result = run.result
        if result is None:
            recordResult("Converse.js", "ws", "rfc7395", run)
            recordResult("Converse.js", "wss", "rfc7395", run)
            self.fail("browser/converse.mjs printed no result: %s" % (run.describe(),))

        problems = []
        for session in result.get("sessions", []):
            # One record per transport, shaped like the client libraries'.
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
                result["client"], session["transport"], session["framing"], run, record
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
                "Converse.js failed:\n%s\nscreenshots: %s\n%s"
                % ("\n".join(problems), ARTIFACTS.path, run.describe())
            )
