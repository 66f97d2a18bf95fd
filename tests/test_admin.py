"""
Tests for L{xmppws.admin}, the C{xmppws-admin} command.
"""

import io
import os
import subprocess
import sys

from twisted.trial import unittest

from xmppws import admin
from xmppws.c2s.storage import Storage

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class AdminTests(unittest.TestCase):
    """
    Account management from the command line.
    """

    def setUp(self):
        self.dataDir = os.path.abspath(self.mktemp())

    def run_(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        self.patch(sys, "stderr", err)
        status = admin.run(["--data-dir", self.dataDir] + list(argv), out=out)
        return status, out.getvalue(), err.getvalue()

    def test_adduser(self):
        """
        C{adduser} creates a normalised account whose password checks, and
        stores no password.
        """
        status, out, err = self.run_("adduser", "Alice@LocalHost", "s3cret pass")
        self.assertEqual((status, out), (0, "created alice@localhost\n"))
        storage = Storage.inDirectory(self.dataDir)
        self.addCleanup(storage.close)
        self.assertTrue(storage.checkPassword("alice", "localhost", "s3cret pass"))
        with open(os.path.join(self.dataDir, "xmppws.sqlite"), "rb") as f:
            self.assertNotIn(b"s3cret pass", f.read())

    def test_existing(self):
        """
        Adding an existing account fails with status 1 and a message.
        """
        self.run_("adduser", "alice@localhost", "a")
        status, out, err = self.run_("adduser", "alice@localhost", "b")
        self.assertEqual(status, 1)
        self.assertIn("already exists", err)

    def test_passwd(self):
        """
        C{passwd} changes the password; for an unknown account it fails.
        """
        self.run_("adduser", "alice@localhost", "old")
        self.assertEqual(self.run_("passwd", "alice@localhost", "new")[0], 0)
        storage = Storage.inDirectory(self.dataDir)
        self.addCleanup(storage.close)
        self.assertTrue(storage.checkPassword("alice", "localhost", "new"))
        self.assertFalse(storage.checkPassword("alice", "localhost", "old"))
        status, out, err = self.run_("passwd", "bob@localhost", "x")
        self.assertEqual(status, 1)
        self.assertIn("no account bob@localhost", err)

    def test_deluser(self):
        """
        C{deluser} removes the account; an unknown one fails.
        """
        self.run_("adduser", "alice@localhost", "a")
        self.assertEqual(self.run_("deluser", "alice@localhost")[0], 0)
        self.assertEqual(self.run_("list")[1], "")
        self.assertEqual(self.run_("deluser", "alice@localhost")[0], 1)

    def test_deluserForgetsData(self):
        """
        C{deluser} also deletes the account's message archive and personal
        data, and nobody else's.
        """
        import os
        import sqlite3

        from xmppws.c2s.archive import SCHEMA as ARCHIVE_SCHEMA
        from xmppws.c2s.personal import SCHEMA as PERSONAL_SCHEMA

        self.run_("adduser", "alice@localhost", "a")
        for name, schema, table in (
            ("archive.sqlite", ARCHIVE_SCHEMA, "mam_messages"),
            ("personal.sqlite", PERSONAL_SCHEMA, "vcards"),
        ):
            db = sqlite3.connect(os.path.join(self.dataDir, name))
            db.executescript(schema)
            for owner in ("alice@localhost", "bob@localhost"):
                if table == "vcards":
                    db.execute("INSERT INTO vcards VALUES (?, '<vCard/>')", (owner,))
                else:
                    db.execute("INSERT INTO mam_messages (owner, sid, stamp, peer, stanza) "
                               "VALUES (?, 'x', 0, 'p', '<message/>')", (owner,))
            db.commit()
            db.close()
        self.assertEqual(self.run_("deluser", "alice@localhost")[0], 0)
        for name, table in (("archive.sqlite", "mam_messages"), ("personal.sqlite", "vcards")):
            db = sqlite3.connect(os.path.join(self.dataDir, name))
            owners = [row[0] for row in db.execute("SELECT owner FROM %s" % (table,))]
            db.close()
            self.assertEqual(owners, ["bob@localhost"])

    def test_list(self):
        """
        C{list} prints accounts, optionally of one domain.
        """
        self.run_("adduser", "bob@localhost", "a")
        self.run_("adduser", "alice@localhost", "a")
        self.run_("adduser", "carol@example.org", "a")
        self.assertEqual(
            self.run_("list")[1], "carol@example.org\nalice@localhost\nbob@localhost\n"
        )
        self.assertEqual(self.run_("list", "localhost")[1], "alice@localhost\nbob@localhost\n")

    def test_badJID(self):
        """
        Bad addresses fail with status 2 and say why.
        """
        for jid in ("a@@b", "localhost", "a@localhost/res"):
            status, out, err = self.run_("adduser", jid, "x")
            self.assertEqual(status, 2, jid)
            self.assertIn("xmppws-admin:", err)

    def test_emptyPassword(self):
        """
        An empty password is refused.
        """
        self.assertEqual(self.run_("adduser", "a@localhost", "")[0], 2)

    def test_usage(self):
        """
        A missing command or argument fails with status 2 and the synopsis.
        """
        self.assertEqual(self.run_()[0], 2)
        status, out, err = self.run_("adduser", "a@localhost")
        self.assertEqual(status, 2)
        self.assertIn("xmppws-admin", err)

    def test_script(self):
        """
        The module runs as a program, as the console script does.
        """
        result = subprocess.run(
            [sys.executable, "-m", "xmppws.admin", "--data-dir", self.dataDir, "list"],
            cwd=ROOT,
            capture_output=True,
            timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
