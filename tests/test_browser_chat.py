# -*- test-case-name: tests.test_browser_chat -*-
"""
The served chat page in a real browser: Debian's Chromium, driven by
C{playwright-core}, opens C{/chat} twice (see
C{tests/interop/browser/chatpage.mjs}): two users log in through
Converse.js's login form, meet in a group chat room and talk.
Screenshots are kept in C{_artifacts/} (or C{$XMPPWS_ARTIFACTS}).
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

CLIENT = "Converse.js chat page"


class ChatPageTests(unittest.TestCase):
    """
    Two Converse.js users of the chat page in one room.
    """

    timeout = 180

    def setUp(self):
        nodeExecutable()
        self.chromium = chromiumExecutable()
        self.server = InteropServer(FilePath(self.mktemp()))
        d = self.server.start(reactor)
        d.addCallback(lambda _: self.addCleanup(self.server.stop, reactor))
        return d

    @inlineCallbacks
    def test_groupChat(self):
        """
        Each page logs in with a user name alone, the first creates a room
        through Converse.js's dialog (which configures it), the second
        enters it the same way; each sees the other in the room and the
        message the other typed; both log out; no page error occurs and
        nothing is fetched from any other host.
        """
        config = {
            "chromium": self.chromium,
            "chatURL": "http://127.0.0.1:%d/chat" % (self.server.httpPort,),
            "domain": self.server.domain,
            "mucDomain": self.server.mucDomain,
            "room": "lobby",
            "users": [{"username": user, "password": PASSWORD} for user in USERS],
            "artifacts": ARTIFACTS.path,
        }
        run = yield runNode(
            reactor,
            "browser/chatpage.mjs",
            config,
            timeout=150,
            logPath=FilePath(self.mktemp()).child("stderr.log"),
        )
        result = run.result
        if result is None:
            recordResult(CLIENT, "ws", "rfc7395", run)
            self.fail("browser/chatpage.mjs printed no result: %s" % (run.describe(),))
        self.record(run, result)
        problems = []
        for session in result.get("sessions", []):
            for name, step in session["steps"].items():
                if not step.get("ok"):
                    problems.append("%s/%s: %s" % (session["user"], name, step.get("error")))
        if result.get("pageErrors"):
            problems.append("page errors: %s" % (result["pageErrors"],))
        if result.get("blockedRequests"):
            problems.append("requests to other hosts: %s" % (result["blockedRequests"],))
        if result.get("error"):
            problems.append(result["error"])
        if len(result.get("sessions", [])) != 2:
            problems.append("expected two sessions")
        if problems:
            self.fail(
                "The chat page failed:\n%s\nscreenshots: %s\n%s"
                % ("\n".join(problems), ARTIFACTS.path, run.describe())
            )

    def record(self, run, result):
        """
        Keep the outcome for the matrix: one row, its group chat steps as
        one.
        """
        runs = []
        for session in result.get("sessions", []):
            steps = session["steps"]
            group = [steps[name] for name in ("create room", "join room", "groupchat") if name in steps]
            merged = {name: steps[name] for name in ("login", "close") if name in steps}
            if group:
                failed = [s for s in group if not s.get("ok")]
                merged["muc"] = failed[0] if failed else {"ok": True, "ms": sum(s["ms"] for s in group)}
            mechanism = ((steps.get("login") or {}).get("detail") or {}).get("mechanism") or "?"
            runs.append({"mechanism": mechanism, "user": session["user"], "steps": merged})
        record = dict(result, runs=runs)
        record.pop("sessions", None)
        recordResult(CLIENT, "ws", "rfc7395", run, record)
