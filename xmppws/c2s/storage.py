# -*- test-case-name: tests.test_storage -*-
"""
Persistent state of the embedded server in one SQLite database: accounts
(SCRAM keys only, never passwords), rosters, offline messages, block
lists and message archiving preferences.  (Message archives and
personal data -- PEP, vCards, private XML -- have databases of their
own, written without blocking: L{xmppws.c2s.archive},
L{xmppws.c2s.personal}.)

SQLite runs in write-ahead-log mode, so C{xmppws-admin} can change
accounts while the service runs.  Calls are synchronous and short; they
run on the reactor thread.
"""

import hmac
import os
import sqlite3
import time

from scramp import ScramMechanism

__all__ = ["AccountExists", "NoSuchAccount", "RosterRow", "Storage", "MECHANISMS"]

MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-1")
ITERATIONS = 4096
SALT_BYTES = 32

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    username TEXT NOT NULL,
    domain TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (username, domain)
);
CREATE TABLE IF NOT EXISTS scram (
    username TEXT NOT NULL,
    domain TEXT NOT NULL,
    mechanism TEXT NOT NULL,
    salt BLOB NOT NULL,
    stored_key BLOB NOT NULL,
    server_key BLOB NOT NULL,
    iterations INTEGER NOT NULL,
    PRIMARY KEY (username, domain, mechanism)
);
CREATE TABLE IF NOT EXISTS roster (
    username TEXT NOT NULL,
    domain TEXT NOT NULL,
    contact TEXT NOT NULL,
    name TEXT,
    subscription TEXT NOT NULL DEFAULT 'none',
    ask INTEGER NOT NULL DEFAULT 0,
    pending_in INTEGER NOT NULL DEFAULT 0,
    approved INTEGER NOT NULL DEFAULT 0,
    groups TEXT NOT NULL DEFAULT '',
    in_roster INTEGER NOT NULL DEFAULT 1,
    pending_stanza TEXT,
    PRIMARY KEY (username, domain, contact)
);
CREATE TABLE IF NOT EXISTS roster_version (
    username TEXT NOT NULL,
    domain TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (username, domain)
);
CREATE TABLE IF NOT EXISTS offline (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL,
    domain TEXT NOT NULL,
    stanza TEXT NOT NULL,
    stamp REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS offline_owner ON offline (username, domain);
CREATE TABLE IF NOT EXISTS blocklist (
    username TEXT NOT NULL,
    domain TEXT NOT NULL,
    jid TEXT NOT NULL,
    PRIMARY KEY (username, domain, jid)
);
CREATE TABLE IF NOT EXISTS archive_prefs (
    username TEXT NOT NULL,
    domain TEXT NOT NULL,
    prefs TEXT NOT NULL,
    PRIMARY KEY (username, domain)
);
CREATE TABLE IF NOT EXISTS secrets (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
"""


class AccountExists(Exception):
    """
    The account already exists.
    """


class NoSuchAccount(Exception):
    """
    The account does not exist.
    """


class RosterRow:
    """
    One roster entry as stored.

    @ivar contact: the contact's bare JID.
    @ivar subscription: C{'none'}, C{'to'}, C{'from'} or C{'both'}.
    @ivar ask: C{True} while our subscription request is pending.
    @ivar pendingIn: C{True} while the contact's request awaits approval.
    @ivar approved: C{True} when a subscription was pre-approved.
    @ivar groups: the group names.
    @ivar inRoster: C{False} for state kept about a contact the user has
        not added (a pending inbound request).
    @ivar pendingStanza: the serialized inbound subscription request
        awaiting approval, to deliver again later, or L{None}.
    """

    __slots__ = (
        "contact",
        "name",
        "subscription",
        "ask",
        "pendingIn",
        "approved",
        "groups",
        "inRoster",
        "pendingStanza",
    )

    def __init__(
        self,
        contact,
        name=None,
        subscription="none",
        ask=False,
        pendingIn=False,
        approved=False,
        groups=(),
        inRoster=True,
        pendingStanza=None,
    ):
        self.contact = contact
        self.name = name
        self.subscription = subscription
        self.ask = ask
        self.pendingIn = pendingIn
        self.approved = approved
        self.groups = list(groups)
        self.inRoster = inRoster
        self.pendingStanza = pendingStanza

    def __repr__(self):
        return "<RosterRow %s %s ask=%s in=%s>" % (
            self.contact,
            self.subscription,
            self.ask,
            self.pendingIn,
        )


class Storage:
    """
    The embedded server's database.

    @ivar path: the SQLite file.
    """

    def __init__(self, path):
        """
        Open (creating if needed) the database at C{path}.

        @type path: L{str}
        """
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, timeout=5.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        columns = [row[1] for row in self._db.execute("PRAGMA table_info(roster)")]
        if "pending_stanza" not in columns:
            self._db.execute("ALTER TABLE roster ADD COLUMN pending_stanza TEXT")
        try:
            os.chmod(path, 0o600)
        except OSError:
            pass

    @classmethod
    def inDirectory(cls, dataDir):
        """
        Open the database of a data directory.
        """
        return cls(os.path.join(dataDir, "xmppws.sqlite"))

    def close(self):
        self._db.close()

    # Accounts

    def userExists(self, username, domain):
        row = self._db.execute(
            "SELECT 1 FROM accounts WHERE username=? AND domain=?", (username, domain)
        ).fetchone()
        return row is not None

    def addUser(self, username, domain, password):
        """
        Create an account, storing only salted SCRAM keys.

        @raise AccountExists: if it exists.
        """
        with self._transaction():
            if self.userExists(username, domain):
                raise AccountExists("%s@%s" % (username, domain))
            self._db.execute(
                "INSERT INTO accounts VALUES (?, ?, ?)", (username, domain, time.time())
            )
            self._storeKeys(username, domain, password)

    def setPassword(self, username, domain, password):
        """
        @raise NoSuchAccount: if the account does not exist.
        """
        with self._transaction():
            if not self.userExists(username, domain):
                raise NoSuchAccount("%s@%s" % (username, domain))
            self._storeKeys(username, domain, password)

    def deleteUser(self, username, domain):
        """
        Delete an account and everything stored for it.

        @raise NoSuchAccount: if the account does not exist.
        """
        with self._transaction():
            if not self.userExists(username, domain):
                raise NoSuchAccount("%s@%s" % (username, domain))
            for table in (
                "accounts",
                "scram",
                "roster",
                "offline",
                "blocklist",
                "archive_prefs",
            ):
                self._db.execute(
                    "DELETE FROM %s WHERE username=? AND domain=?" % (table,),
                    (username, domain),
                )

    def listUsers(self, domain=None):
        """
        @return: C{(username, domain)} pairs, sorted.
        """
        if domain is None:
            rows = self._db.execute(
                "SELECT username, domain FROM accounts ORDER BY domain, username"
            )
        else:
            rows = self._db.execute(
                "SELECT username, domain FROM accounts WHERE domain=? ORDER BY username",
                (domain,),
            )
        return [tuple(row) for row in rows]

    def scramCredentials(self, username, domain, mechanism):
        """
        @return: C{(salt, storedKey, serverKey, iterations)}, or L{None}
            for an unknown account.
        """
        row = self._db.execute(
            "SELECT salt, stored_key, server_key, iterations FROM scram "
            "WHERE username=? AND domain=? AND mechanism=?",
            (username, domain, mechanism),
        ).fetchone()
        return None if row is None else (bytes(row[0]), bytes(row[1]), bytes(row[2]), row[3])

    def checkPassword(self, username, domain, password):
        """
        Check a password against the stored SCRAM-SHA-256 keys.  An unknown
        account takes as long as a known one and fails.

        @rtype: L{bool}
        """
        credentials = self.scramCredentials(username, domain, MECHANISMS[0])
        known = credentials is not None
        if not known:
            # Spend the same work on an unknown account as on a known one,
            # so that the answer's timing does not tell them apart.
            credentials = (b"\0" * SALT_BYTES, b"", b"", ITERATIONS)
        salt, storedKey, _, iterations = credentials
        _, candidate, _, _ = ScramMechanism(MECHANISMS[0]).make_auth_info(
            password, iteration_count=iterations, salt=salt
        )
        return hmac.compare_digest(candidate, storedKey) and known

    def _storeKeys(self, username, domain, password):
        for mechanism in MECHANISMS:
            salt, storedKey, serverKey, iterations = ScramMechanism(
                mechanism
            ).make_auth_info(password, iteration_count=ITERATIONS, salt=os.urandom(SALT_BYTES))
            self._db.execute(
                "INSERT OR REPLACE INTO scram VALUES (?, ?, ?, ?, ?, ?, ?)",
                (username, domain, mechanism, salt, storedKey, serverKey, iterations),
            )

    def secret(self, name, size=32):
        """
        A random secret kept across restarts (for example to derive fake
        SCRAM salts for unknown users).
        """
        row = self._db.execute("SELECT value FROM secrets WHERE name=?", (name,)).fetchone()
        if row is not None:
            return bytes(row[0])
        value = os.urandom(size)
        self._db.execute("INSERT OR IGNORE INTO secrets VALUES (?, ?)", (name, value))
        return self.secret(name, size)

    # Roster

    def roster(self, username, domain, includeHidden=False):
        """
        @return: the user's roster rows.
        @rtype: L{list} of L{RosterRow}
        """
        rows = self._db.execute(
            "SELECT contact, name, subscription, ask, pending_in, approved, groups, "
            "in_roster, pending_stanza FROM roster WHERE username=? AND domain=? ORDER BY contact",
            (username, domain),
        )
        result = [self._row(row) for row in rows]
        if not includeHidden:
            result = [row for row in result if row.inRoster]
        return result

    def rosterItem(self, username, domain, contact):
        """
        @return: the row for C{contact} (hidden or not), or L{None}.
        """
        row = self._db.execute(
            "SELECT contact, name, subscription, ask, pending_in, approved, groups, "
            "in_roster, pending_stanza FROM roster WHERE username=? AND domain=? AND contact=?",
            (username, domain, contact),
        ).fetchone()
        return None if row is None else self._row(row)

    def rosterCounts(self, username, domain):
        """
        How many rows a user's roster has.

        @return: C{(items, hidden)}: rows in the roster, and rows kept
            about contacts outside it (pending inbound requests).
        @rtype: L{tuple} of two L{int}
        """
        counts = dict(
            self._db.execute(
                "SELECT in_roster, COUNT(*) FROM roster WHERE username=? AND domain=? "
                "GROUP BY in_roster",
                (username, domain),
            ).fetchall()
        )
        return counts.get(1, 0), counts.get(0, 0)

    def blockCount(self, username, domain):
        """
        @return: how many entries a user's block list has.
        """
        return self._db.execute(
            "SELECT COUNT(*) FROM blocklist WHERE username=? AND domain=?",
            (username, domain),
        ).fetchone()[0]

    def rosterVersion(self, username, domain):
        """
        The version of a user's roster (RFC 6121 section 2.6): every change
        made with L{saveRosterItem} or L{removeRosterItem} increments it,
        and it is kept when the account is deleted, so a version is never
        used twice for one JID.

        @rtype: L{int}
        """
        row = self._db.execute(
            "SELECT version FROM roster_version WHERE username=? AND domain=?",
            (username, domain),
        ).fetchone()
        return 0 if row is None else row[0]

    def _bumpRosterVersion(self, username, domain):
        self._db.execute(
            "INSERT INTO roster_version VALUES (?, ?, 1) ON CONFLICT (username, domain) "
            "DO UPDATE SET version = version + 1",
            (username, domain),
        )

    def saveRosterItem(self, username, domain, item):
        """
        Store a roster row; a row with no state left is deleted.
        """
        if (
            not item.inRoster
            and item.subscription == "none"
            and not item.ask
            and not item.pendingIn
            and not item.approved
        ):
            self.removeRosterItem(username, domain, item.contact)
            return
        self._db.execute(
            "INSERT OR REPLACE INTO roster (username, domain, contact, name, subscription, "
            "ask, pending_in, approved, groups, in_roster, pending_stanza) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                username,
                domain,
                item.contact,
                item.name,
                item.subscription,
                int(item.ask),
                int(item.pendingIn),
                int(item.approved),
                "\n".join(item.groups),
                int(item.inRoster),
                item.pendingStanza,
            ),
        )
        self._bumpRosterVersion(username, domain)

    def removeRosterItem(self, username, domain, contact):
        self._db.execute(
            "DELETE FROM roster WHERE username=? AND domain=? AND contact=?",
            (username, domain, contact),
        )
        self._bumpRosterVersion(username, domain)

    @staticmethod
    def _row(row):
        contact, name, subscription, ask, pendingIn, approved, groups, inRoster, pending = row
        return RosterRow(
            contact,
            name,
            subscription,
            bool(ask),
            bool(pendingIn),
            bool(approved),
            [g for g in groups.split("\n") if g],
            bool(inRoster),
            pending,
        )

    # Offline messages

    def storeOffline(self, username, domain, stanza, stamp=None):
        """
        Keep a serialized stanza for later delivery.
        """
        self._db.execute(
            "INSERT INTO offline (username, domain, stanza, stamp) VALUES (?, ?, ?, ?)",
            (username, domain, stanza, time.time() if stamp is None else stamp),
        )

    def offlineMessages(self, username, domain):
        """
        @return: C{(id, stanza, stamp)} in arrival order.
        """
        return [
            tuple(row)
            for row in self._db.execute(
                "SELECT id, stanza, stamp FROM offline WHERE username=? AND domain=? "
                "ORDER BY id",
                (username, domain),
            )
        ]

    def deleteOffline(self, ids):
        self._db.executemany("DELETE FROM offline WHERE id=?", [(i,) for i in ids])

    def countOffline(self, username, domain):
        return self._db.execute(
            "SELECT COUNT(*) FROM offline WHERE username=? AND domain=?",
            (username, domain),
        ).fetchone()[0]

    # Block lists

    def blocklist(self, username, domain):
        return [
            row[0]
            for row in self._db.execute(
                "SELECT jid FROM blocklist WHERE username=? AND domain=? ORDER BY jid",
                (username, domain),
            )
        ]

    def block(self, username, domain, jids):
        self._db.executemany(
            "INSERT OR IGNORE INTO blocklist VALUES (?, ?, ?)",
            [(username, domain, j) for j in jids],
        )

    def unblock(self, username, domain, jids=None):
        if jids is None:
            self._db.execute(
                "DELETE FROM blocklist WHERE username=? AND domain=?", (username, domain)
            )
        else:
            self._db.executemany(
                "DELETE FROM blocklist WHERE username=? AND domain=? AND jid=?",
                [(username, domain, j) for j in jids],
            )

    # Message archiving preferences

    def archivePrefs(self, username, domain):
        """
        @return: the account's XEP-0441 preferences as stored (text), or
            L{None} when it set none.
        """
        row = self._db.execute(
            "SELECT prefs FROM archive_prefs WHERE username=? AND domain=?", (username, domain)
        ).fetchone()
        return None if row is None else row[0]

    def setArchivePrefs(self, username, domain, prefs):
        """
        Keep an account's archiving preferences (text).
        """
        self._db.execute(
            "INSERT OR REPLACE INTO archive_prefs VALUES (?, ?, ?)", (username, domain, prefs)
        )

    # Helpers

    def _transaction(self):
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db):
        self._db = db

    def __enter__(self):
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, excType, exc, tb):
        self._db.execute("ROLLBACK" if excType else "COMMIT")
