# -*- test-case-name: tests.test_clients -*-
"""
The client libraries people use, run by Node.js against the embedded
server on loopback: xmpp.js (C{@xmpp/client}), Strophe.js and Stanza over
C{ws://} and C{wss://} in the RFC 7395 framing, and a client speaking the
draft-00 framing the way Strophe.js 1.1 did.

xmpp.js and Stanza also create, use and moderate a group chat room;
Stanza also reads its message archive page by page, publishes and is
notified of avatars (PEP), sets and reads vCards and keeps bookmarks in
private storage.

Each test starts a server, runs one script of C{tests/interop/clients}
(see C{tests/interop/lib/scenario.mjs} for what it does) and asserts on
the JSON the script prints; the outcome is also kept for the generated
matrix in C{docs/matrix.rst}.
"""

import io
import json
import os
import sys

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.python.filepath import FilePath
from twisted.trial import unittest

from tests.interop import matrix
from tests.interop.fixture import (
    PASSWORD,
    USERS,
    InteropServer,
    nodeExecutable,
    recordResult,
    runNode,
)

RFC7395 = "rfc7395"
DRAFT00 = "draft-00"
LEGACY = "Strophe.js 1.1 style"


class ClientLibraryTests(unittest.TestCase):
    """
    Each library logs two users in with SCRAM and with PLAIN, binds, reads
    the roster, exchanges presence and messages, pings the server, resumes
    after a cut socket where it does XEP-0198, and closes cleanly.
    """

    timeout = 150

    def setUp(self):
        nodeExecutable()
        self.server = InteropServer(FilePath(self.mktemp()))
        d = self.server.start(reactor)
        d.addCallback(lambda _: self.addCleanup(self.server.stop, reactor))
        return d

    @inlineCallbacks
    def runClient(self, client, script, transport, framing=RFC7395, resume=True):
        """
        Run one client script on one transport and assert that every step
        of every run passed.
        """
        config = {
            "url": self.server.url(transport),
            "domain": self.server.domain,
            "users": [{"username": user, "password": PASSWORD} for user in USERS],
            "transport": transport,
            "framing": framing,
            "mechanisms": ["SCRAM", "PLAIN"],
            "resume": resume,
            "mucDomain": self.server.mucDomain,
        }
        run = yield runNode(
            reactor,
            script,
            config,
            timeout=90,
            env={"NODE_EXTRA_CA_CERTS": self.server.certPath.path},
            logPath=FilePath(self.mktemp()).child("stderr.log"),
        )
        record = recordResult(client, transport, framing, run)
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
                "%s over %s failed:\n%s\n%s"
                % (client, transport, "\n".join(failed) or record.get("error"), run.describe())
            )
        return record

    def test_xmppjsWebSocket(self):
        """
        xmpp.js does the whole scenario over ws://.
        """
        return self.runClient("xmpp.js", "clients/xmppjs.mjs", "ws")

    def test_xmppjsSecureWebSocket(self):
        """
        xmpp.js does the whole scenario over wss://.
        """
        return self.runClient("xmpp.js", "clients/xmppjs.mjs", "wss")

    def test_stanzaWebSocket(self):
        """
        Stanza does the whole scenario over ws://.
        """
        return self.runClient("Stanza", "clients/stanza.mjs", "ws")

    def test_stanzaSecureWebSocket(self):
        """
        Stanza does the whole scenario over wss://.
        """
        return self.runClient("Stanza", "clients/stanza.mjs", "wss")

    def test_stropheWebSocket(self):
        """
        Strophe.js does the whole scenario over ws://.
        """
        return self.runClient("Strophe.js", "clients/strophe.mjs", "ws")

    def test_stropheSecureWebSocket(self):
        """
        Strophe.js does the whole scenario over wss://.
        """
        return self.runClient("Strophe.js", "clients/strophe.mjs", "wss")

    def test_legacyWebSocket(self):
        """
        A client speaking draft-00 the way Strophe.js 1.1 did (unclosed
        stream header, stanzas without C{xmlns}) logs in with SCRAM-SHA-1
        and PLAIN and does the scenario over ws://.
        """
        return self.runClient(LEGACY, "clients/legacy.mjs", "ws", framing=DRAFT00)

    def test_legacySecureWebSocket(self):
        """
        The draft-00 client does the scenario over wss://.
        """
        return self.runClient(LEGACY, "clients/legacy.mjs", "wss", framing=DRAFT00)


class MatrixTests(unittest.TestCase):
    """
    L{tests.interop.matrix} turns recorded results into the matrix page.
    """

    def record(self, client, transport, framing, steps, ok=True, mechanisms=("SCRAM", "PLAIN")):
        runs = []
        for mechanism in mechanisms:
            runs.append(
                {
                    "mechanism": mechanism,
                    "steps": {
                        name: dict(
                            {"ok": passed, "ms": 5},
                            **({} if passed else {"error": "Error: broke at 127.0.0.1:4242"}),
                        )
                        for name, passed in steps.items()
                    },
                }
            )
        runs[0]["steps"]["login"]["detail"] = {"mechanism": "SCRAM-SHA-1"}
        return {
            "client": client,
            "version": "1.2.3",
            "transport": transport,
            "framing": framing,
            "ok": ok,
            "node": "v20.0.0",
            "runs": runs,
        }

    def test_rowsInOrder(self):
        """
        Rows come client by client, RFC 7395 before draft-00, ws before wss.
        """
        directory = FilePath(self.mktemp())
        directory.makedirs()
        records = [
            self.record(LEGACY, "ws", DRAFT00, {"login": True}),
            self.record("Stanza", "wss", RFC7395, {"login": True}),
            self.record("Stanza", "ws", RFC7395, {"login": True}),
            self.record("xmpp.js", "ws", RFC7395, {"login": True}),
        ]
        for index, record in enumerate(records):
            directory.child("%d.json" % (index,)).setContent(json.dumps(record).encode())
        directory.child("junk.json").setContent(b"{not json")
        loaded = matrix.load(directory)
        self.assertEqual(
            [(r["client"], r["transport"]) for r in loaded],
            [("xmpp.js", "ws"), ("Stanza", "ws"), ("Stanza", "wss"), (LEGACY, "ws")],
        )

    def test_partsMerged(self):
        """
        Records of one client, transport and framing written by several
        tests (parts) make one row holding the runs of all.
        """
        directory = FilePath(self.mktemp())
        directory.makedirs()
        first = self.record("Converse.js chat page", "ws", RFC7395, {"login": True})
        second = self.record("Converse.js chat page", "ws", RFC7395,
                             {"login": True, "archive": False}, ok=False, mechanisms=(None,))
        for name, record in (("a.json", first), ("a--history.json", second)):
            directory.child(name).setContent(json.dumps(record).encode())
        [row] = matrix.load(directory)
        self.assertEqual(len(row["runs"]), 3)
        self.assertFalse(row["ok"])

    def test_routesApart(self):
        """
        The same client, transport and framing through a gateway is a row
        of its own, after the direct one.
        """
        directory = FilePath(self.mktemp())
        directory.makedirs()
        direct = self.record("Stanza", "ws", RFC7395, {"login": True})
        relayed = dict(self.record("Stanza", "ws", RFC7395, {"login": False}, ok=False),
                       via="gateway to Prosody 0.12.3")
        for name, record in (("a--gateway.json", relayed), ("a.json", direct)):
            directory.child(name).setContent(json.dumps(record).encode())
        rows = matrix.load(directory)
        self.assertEqual([(r.get("via"), r["ok"]) for r in rows],
                         [(None, True), ("gateway to Prosody 0.12.3", False)])

    def test_cells(self):
        """
        A step passed in every run is I{pass}, failed in any is B{FAIL} with
        its error listed without the port, and not tried is a dash.
        """
        page = matrix.render(
            [
                self.record(
                    "xmpp.js",
                    "wss",
                    RFC7395,
                    {"login": True, "roster": True, "close": False},
                    ok=False,
                )
            ]
        )
        rows = page.split(".. list-table::")[1]
        cells = []
        for line in rows.splitlines():
            line = line.strip()
            if line.startswith("* - "):
                line = line[2:]
            if line.startswith("- "):
                cells.append(line[2:])
        width = 3 + len(matrix.COLUMNS)
        header, row = cells[:width], cells[width : 2 * width]
        self.assertEqual(header[0], "Client")
        values = dict(zip(header, row))
        self.assertEqual(values["Client"], "xmpp.js")
        self.assertEqual(values["Transport"], "``wss://`` RFC 7395")
        self.assertEqual(values["SASL"], "SCRAM-SHA-1, PLAIN")
        self.assertEqual(values["Login"], "pass")
        self.assertEqual(values["Roster"], "pass")
        self.assertEqual(values["Ping"], "—")
        self.assertEqual(values["Group chat"], "—")
        self.assertEqual(values["Archive"], "—")
        self.assertEqual(values["Close"], "**FAIL**")
        self.assertIn("Versions: xmpp.js 1.2.3, Node.js v20.0.0.", page)
        self.assertIn(
            "xmpp.js over ``wss://`` (RFC 7395), Close with SCRAM: "
            "``Error: broke at 127.0.0.1:PORT``",
            page,
        )
        self.assertNotIn("4242", page)

    def test_writesOnlyWhenChanged(self):
        """
        The command writes the page from the results, and leaves it alone
        when nothing changed or there are no results.
        """
        results = FilePath(self.mktemp())
        results.makedirs()
        output = FilePath(self.mktemp())
        self.patch(sys, "stdout", io.StringIO())
        self.assertEqual(matrix.main(["--results", results.path, "--output", output.path]), 0)
        self.assertFalse(output.exists())
        results.child("a.json").setContent(
            json.dumps(self.record("Stanza", "ws", RFC7395, {"login": True})).encode()
        )
        matrix.main(["--results", results.path, "--output", output.path])
        first = output.getContent()
        self.assertIn(b"Stanza 1.2.3", first)
        output.setContent(first)
        os.utime(output.path, (0, 0))
        matrix.main(["--results", results.path, "--output", output.path])
        self.assertEqual(output.getModificationTime(), 0)
