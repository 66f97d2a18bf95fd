# -*- test-case-name: tests.test_muc_storage -*-
"""
Persistent rooms in SQLite, through L{xmppws.c2s.asyncdb}: their
configuration, subject and occupant-id secret, their affiliations
(with reserved nicknames) and the history kept for newcomers.

Only persistent rooms are stored; a room's row goes when it is
destroyed or made temporary.  Every method takes what it writes from
the room at once, on the reactor thread, and returns a L{Deferred};
the writes happen in order on the database's own thread.

The history table holds each kept message as the room reflected it,
with its XEP-0359 stanza id, time, sender nickname and real bare JID.
The rooms' message archives (XEP-0313, L{xmppws.muc.archive}) are kept
in the same database, in the tables of L{xmppws.c2s.archive}.
"""

import json
import os

from xmppws.c2s.archive import SCHEMA as ARCHIVE_SCHEMA
from xmppws.c2s.asyncdb import AsyncDatabase

__all__ = ["RoomRecord", "RoomStore", "SCHEMA"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS muc_rooms (
    service TEXT NOT NULL,
    room TEXT NOT NULL,
    config TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    subject_nick TEXT,
    subject_stamp REAL,
    salt BLOB NOT NULL,
    PRIMARY KEY (service, room)
);
CREATE TABLE IF NOT EXISTS muc_affiliations (
    service TEXT NOT NULL,
    room TEXT NOT NULL,
    jid TEXT NOT NULL,
    affiliation TEXT NOT NULL,
    nick TEXT,
    reason TEXT,
    PRIMARY KEY (service, room, jid)
);
CREATE TABLE IF NOT EXISTS muc_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,
    room TEXT NOT NULL,
    stanza_id TEXT NOT NULL,
    stamp REAL NOT NULL,
    nick TEXT NOT NULL,
    sender TEXT NOT NULL,
    stanza TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS muc_history_id ON muc_history (service, room, stanza_id);
CREATE INDEX IF NOT EXISTS muc_history_room ON muc_history (service, room, id);
CREATE TABLE IF NOT EXISTS muc_archived (
    service TEXT NOT NULL,
    room TEXT NOT NULL,
    PRIMARY KEY (service, room)
);
""" + ARCHIVE_SCHEMA


class RoomRecord:
    """
    A stored room, as loaded.

    @ivar name: its localpart.
    @ivar config: its configuration values (a L{dict}).
    @ivar subject, subjectNick, subjectStamp: its subject.
    @ivar salt: its occupant-id secret.
    @ivar affiliations: C{(jid, affiliation, nick, reason)} tuples.
    @ivar history: C{(stanzaId, stamp, nick, sender, xml)} tuples,
        oldest first.
    """

    def __init__(self, name, config, subject, subjectNick, subjectStamp, salt):
        self.name = name
        self.config = config
        self.subject = subject
        self.subjectNick = subjectNick
        self.subjectStamp = subjectStamp
        self.salt = salt
        self.affiliations = []
        self.history = []


class RoomStore:
    """
    The rooms of one or more group chat services.

    @ivar db: the L{AsyncDatabase}.
    """

    def __init__(self, db):
        self.db = db

    @classmethod
    def inDirectory(cls, reactor, dataDir, runner=None):
        """
        The store in C{muc.sqlite} of a data directory, kept apart from
        the server's own database so that the two never wait for each
        other's writes.
        """
        path = os.path.join(dataDir, "muc.sqlite")
        return cls(AsyncDatabase(reactor, path, SCHEMA, runner))

    def close(self):
        return self.db.close()

    # Reading

    def load(self, service):
        """
        Every stored room of C{service}.

        @return: a L{Deferred} firing with a L{list} of L{RoomRecord}.
        """
        return self.db.run(_load, service)

    # Writing

    def saveRoom(self, service, room):
        """
        Store a room's configuration, subject and secret.
        """
        row = (
            service,
            room.name,
            json.dumps(room.config.toDict(), sort_keys=True),
            room.subject,
            room.subjectNick,
            room.subjectStamp,
            room.salt,
        )
        return self.db.run(_saveRoom, row)

    def saveAffiliation(self, service, room, jid):
        """
        Store the affiliation of one bare JID (text), or remove it if it
        has none now.
        """
        entry = room.affiliations.get(jid)
        if entry is None:
            row = (service, room.name, jid, None, None, None)
        else:
            row = (service, room.name, jid, entry.affiliation, entry.nick, entry.reason)
        return self.db.run(_saveAffiliation, row)

    def storeRoom(self, service, room):
        """
        Store everything about a room that just became persistent (or is
        stored again from scratch).
        """
        row = (
            service,
            room.name,
            json.dumps(room.config.toDict(), sort_keys=True),
            room.subject,
            room.subjectNick,
            room.subjectStamp,
            room.salt,
        )
        affiliations = [
            (service, room.name, jid, a.affiliation, a.nick, a.reason)
            for jid, a in room.affiliations.items()
        ]
        history = [
            (service, room.name, e.stanzaId, e.stamp, e.nick, e.sender, e.xml)
            for e in room.history
        ]
        return self.db.run(_storeRoom, row, affiliations, history)

    def addHistory(self, service, room, entry):
        """
        Keep one message, and no more than the room's history length.
        """
        row = (service, room.name, entry.stanzaId, entry.stamp, entry.nick, entry.sender, entry.xml)
        return self.db.run(_addHistory, row, room.config.historyLength)

    def trimHistory(self, service, room):
        """
        Keep no more than the room's history length.
        """
        return self.db.run(_trimHistory, service, room.name, room.config.historyLength)

    def deleteRoom(self, service, name):
        """
        Forget a room entirely.
        """
        return self.db.run(_deleteRoom, service, name)


def _load(connection, service):
    records = {}
    for row in connection.execute(
        "SELECT room, config, subject, subject_nick, subject_stamp, salt "
        "FROM muc_rooms WHERE service=? ORDER BY room",
        (service,),
    ):
        try:
            config = json.loads(row[1])
        except ValueError:
            config = {}
        records[row[0]] = RoomRecord(row[0], config, row[2], row[3], row[4], bytes(row[5]))
    for row in connection.execute(
        "SELECT room, jid, affiliation, nick, reason FROM muc_affiliations "
        "WHERE service=? ORDER BY room, jid",
        (service,),
    ):
        record = records.get(row[0])
        if record is not None:
            record.affiliations.append(tuple(row[1:]))
    for row in connection.execute(
        "SELECT room, stanza_id, stamp, nick, sender, stanza FROM muc_history "
        "WHERE service=? ORDER BY room, id",
        (service,),
    ):
        record = records.get(row[0])
        if record is not None:
            record.history.append(tuple(row[1:]))
    return list(records.values())


def _saveRoom(connection, row):
    connection.execute(
        "INSERT INTO muc_rooms (service, room, config, subject, subject_nick, "
        "subject_stamp, salt) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (service, room) DO UPDATE SET config=excluded.config, "
        "subject=excluded.subject, subject_nick=excluded.subject_nick, "
        "subject_stamp=excluded.subject_stamp, salt=excluded.salt",
        row,
    )


def _saveAffiliation(connection, row):
    if row[3] is None:
        connection.execute(
            "DELETE FROM muc_affiliations WHERE service=? AND room=? AND jid=?", row[:3]
        )
    else:
        connection.execute(
            "INSERT OR REPLACE INTO muc_affiliations "
            "(service, room, jid, affiliation, nick, reason) VALUES (?, ?, ?, ?, ?, ?)",
            row,
        )


def _storeRoom(connection, row, affiliations, history):
    _deleteRoom(connection, row[0], row[1])
    _saveRoom(connection, row)
    connection.executemany(
        "INSERT INTO muc_affiliations (service, room, jid, affiliation, nick, reason) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        affiliations,
    )
    connection.executemany(
        "INSERT OR IGNORE INTO muc_history (service, room, stanza_id, stamp, nick, sender, "
        "stanza) VALUES (?, ?, ?, ?, ?, ?, ?)",
        history,
    )


def _addHistory(connection, row, keep):
    connection.execute(
        "INSERT OR IGNORE INTO muc_history (service, room, stanza_id, stamp, nick, sender, "
        "stanza) VALUES (?, ?, ?, ?, ?, ?, ?)",
        row,
    )
    _trimHistory(connection, row[0], row[1], keep)


def _trimHistory(connection, service, room, keep):
    connection.execute(
        "DELETE FROM muc_history WHERE service=? AND room=? AND id NOT IN "
        "(SELECT id FROM muc_history WHERE service=? AND room=? ORDER BY id DESC LIMIT ?)",
        (service, room, service, room, keep),
    )


def _deleteRoom(connection, service, room):
    for table in ("muc_rooms", "muc_affiliations", "muc_history", "muc_archived"):
        connection.execute("DELETE FROM %s WHERE service=? AND room=?" % (table,), (service, room))
