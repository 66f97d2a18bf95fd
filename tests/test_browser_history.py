# -*- test-case-name: tests.test_browser_history -*-
"""
History and personal data on the served chat page, in a real browser:
Debian's Chromium, driven by C{playwright-core}, opens C{/chat} twice
(see C{tests/interop/browser/history.mjs}).  Two Converse.js users set
avatars and see each other's, chat, meet in a room opened from a
C{#converse/room?jid=} link; one empties its browser's storage, reloads
and finds the room joined again from its bookmark and both
conversations' history, from the archives.  Screenshots are kept in
C{_artifacts/} (or C{$XMPPWS_ARTIFACTS}).
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
DEVICES = "eu.siacs.conversations.axolotl.devicelist"
BOOKMARKS = "urn:xmpp:bookmarks:1"


class HistoryPageTests(unittest.TestCase):
    """
    Two Converse.js users of the chat page: avatars, archives, bookmarks,
    OMEMO keys.
    """

    timeout = 240

    def setUp(self):
        nodeExecutable()
        self.chromium = chromiumExecutable()
        self.server = InteropServer(FilePath(self.mktemp()))
        d = self.server.start(reactor)
        d.addCallback(lambda _: self.addCleanup(self.server.stop, reactor))
        return d

    @inlineCallbacks
    def test_historyAvatarsAndBookmarks(self):
        """
        Each user sees the other's avatar; after emptying its storage and
        reloading, a user finds the room joined again from its bookmark and
        the one-to-one and room history from the archives; the OMEMO device
        lists and bundles Converse.js published are in PEP; no page error
        and no console error about PEP, OMEMO, bookmarks, vCards or the
        archive occurs, and nothing is fetched from any other host.
        """
        config = {
            "chromium": self.chromium,
            "chatURL": "http://127.0.0.1:%d/chat" % (self.server.httpPort,),
            "domain": self.server.domain,
            "mucDomain": self.server.mucDomain,
            "room": "history",
            "users": [{"username": user, "password": PASSWORD} for user in USERS],
            "artifacts": ARTIFACTS.path,
        }
        run = yield runNode(
            reactor,
            "browser/history.mjs",
            config,
            timeout=200,
            logPath=FilePath(self.mktemp()).child("stderr.log"),
        )
        result = run.result
        if result is None:
            self.fail("browser/history.mjs printed no result: %s" % (run.describe(),))
        self.record(run, result)
        problems = []
        for session in result.get("sessions", []):
            for name, step in session["steps"].items():
                if not step.get("ok"):
                    problems.append("%s/%s: %s" % (session["user"], name, step.get("error")))
        for key in ("pageErrors", "consoleErrors", "blockedRequests"):
            if result.get(key):
                problems.append("%s: %s" % (key, result[key]))
        if result.get("error"):
            problems.append(result["error"])
        if len(result.get("sessions", [])) != 2:
            problems.append("expected two sessions")
        if problems:
            self.fail(
                "History on the chat page failed:\n%s\nscreenshots: %s\n%s"
                % ("\n".join(problems), ARTIFACTS.path, run.describe())
            )
        pep = self.server.server.modules["pep"]
        for user in USERS:
            owner = "%s@%s" % (user, self.server.domain)
            config, items = yield pep.store.items(owner, DEVICES)
            self.assertEqual(config.accessModel, "open")
            self.assertTrue(items, "%s published no OMEMO device list" % (owner,))
            nodes = [node for node, _ in (yield pep.store.nodes(owner))]
            self.assertTrue(
                [n for n in nodes if n.startswith("eu.siacs.conversations.axolotl.bundles:")],
                "%s published no OMEMO bundle: %s" % (owner, nodes),
            )
        owner = "%s@%s" % (USERS[0], self.server.domain)
        config, items = yield pep.store.items(owner, BOOKMARKS)
        self.assertEqual(config.accessModel, "whitelist")
        self.assertIn("history@" + self.server.mucDomain, [item.id for item in items])

    def record(self, run, result):
        """
        Keep the outcome for the matrix: the chat page row's Archive and
        PEP columns.
        """
        runs = []
        for session in result.get("sessions", []):
            steps = session["steps"]
            merged = {}
            for column, names in (
                ("pep", ("set avatar", "see avatars", "avatars again")),
                ("archive", ("chat", "room link", "reload", "room history", "chat history")),
            ):
                group = [steps[name] for name in names if name in steps]
                if group:
                    failed = [s for s in group if not s.get("ok")]
                    merged[column] = failed[0] if failed else {
                        "ok": True, "ms": sum(s["ms"] for s in group)}
            runs.append({"mechanism": None, "user": session["user"], "steps": merged})
        record = dict(result, runs=runs)
        record.pop("sessions", None)
        recordResult(CLIENT, "ws", "rfc7395", run, record, part="history")
