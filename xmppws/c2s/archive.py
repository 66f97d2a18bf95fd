# -*- test-case-name: tests.test_archive -*-
"""
Message archives (XEP-0313) in SQLite, written without blocking the
reactor: the one store the server's accounts (L{xmppws.c2s.mam}) and
the group chat rooms (L{xmppws.muc.archive}) keep their archives in.

An archive belongs to an I{owner}, a bare JID as text (an account's, or
a room's).  Each message is kept with its archive id (the XEP-0359
stanza id the owner's live copy carried), the time it was archived, the
other party (a bare JID, and a resource or room nickname) and the
stanza as serialized.

    store = ArchiveStore(db, reactor, maxMessages=10000, retention=7 * 86400)
    store.append(ArchivedMessage("alice@example.org", sid, now, "bob@example.org", "", xml))
    page = yield store.query("alice@example.org", ArchiveQuery(peer="bob@example.org"))

Writes are batched: L{ArchiveStore.append} only queues the row; the rows
queued during L{ArchiveStore.flushDelay} (a tenth of a second), or
L{ArchiveStore.maxBatch} of them, go to the database thread as one job
(one transaction), and while that job runs, later rows wait for the next
one, which takes all of them: under load batches grow, and a row costs
less to write (a transaction rewrites every index page it touches).  A
query first sends what is queued, so it sees every message appended
before it; closing the store sends the rest.

If the database falls behind anyway (a slow disk, a busy processor),
the rows queued or being written are a backlog.  The service gives the
store the connection layer's (L{xmppws.flow.Backlog}, through
L{xmppws.c2s.server.ServerConfig.backlog}): past
L{ArchiveStore.maxBacklog} rows, the connections whose stanzas add rows
stop reading until the database has caught up with half of them.
Senders are slowed to what the archive can keep, nothing is dropped,
and memory stays bounded.

An archive keeps at most C{maxMessages}; beyond that the oldest make
room.  Messages older than the retention are deleted by L{expire}, which
L{start} runs at once and then every hour.

Archive ids (L{ArchiveIds}) are made by the store when a message is
archived, before it is written: a row number that grows with time (the
millisecond, and a counter) followed by random characters.  The row
number orders the archive and finds a message by its id without an
index of the ids; the random part makes the ids unpredictable, as
XEP-0313 asks.  Expiry deletes a range of row numbers.

The schema (L{SCHEMA}) goes into any L{xmppws.c2s.asyncdb.AsyncDatabase}:
the server keeps its archives in C{archive.sqlite}, the group chat
service in its own C{muc.sqlite}, next to its rooms.
"""

import base64
import os

from twisted.internet import defer, task
from twisted.logger import Logger

__all__ = [
    "SCHEMA",
    "parseDuration",
    "ArchiveIds",
    "CountingBacklog",
    "ArchiveQuery",
    "ArchiveStore",
    "ArchivedMessage",
    "ArchivePage",
    "UnknownArchiveId",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS mam_messages (
    id INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    sid TEXT NOT NULL,
    stamp REAL NOT NULL,
    peer TEXT NOT NULL,
    resource TEXT NOT NULL DEFAULT '',
    stanza TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS mam_messages_owner ON mam_messages (owner, id);
CREATE INDEX IF NOT EXISTS mam_messages_peer ON mam_messages (owner, peer, id);
CREATE TABLE IF NOT EXISTS mam_sizes (
    owner TEXT PRIMARY KEY,
    messages INTEGER NOT NULL
);
"""

#: Seconds between two runs of L{ArchiveStore.expire}.
EXPIRY_INTERVAL = 3600

_UNITS = {"s": 1, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def parseDuration(text):
    """
    Read a retention as Prosody's C{archive_expires_after} writes it: a
    whole number of seconds, or of hours, days, weeks or years with a
    unit (C{12h}, C{30d}, C{1w}, C{1y}); C{never} for no expiry.

    @return: seconds, or L{None} for C{never}.
    @raise ValueError: for anything else, or for zero.
    """
    value = text.strip().lower()
    if value == "never":
        return None
    unit = 1
    if value[-1:] in _UNITS:
        unit = _UNITS[value[-1]]
        value = value[:-1].strip()
    if not value.isdigit() or len(value) > 12 or int(value) == 0:
        raise ValueError("not a duration such as 1w, 30d, 12h or never")
    return int(value) * unit


_RANDOM = 6


class ArchiveIds:
    """
    Archive ids: the row number of a message (milliseconds since the
    epoch times 1024, plus a counter; each larger than the one before) in
    hexadecimal, and six random URL-safe characters.

    @ivar last: the last row number given.
    """

    _CHUNK = 4096

    def __init__(self, clock, random=os.urandom):
        self.clock = clock
        self.last = 0
        self._random = random
        self._pool = b""
        self._offset = 0

    def rowFor(self, stamp):
        """
        The row number of a message archived at C{stamp} (seconds).
        """
        return int(stamp * 1000) << 10

    def __call__(self):
        """
        @return: a new id, as text.
        """
        row = max(self.last + 1, self.rowFor(self.clock.seconds()))
        self.last = row
        if self._offset + _RANDOM > len(self._pool):
            self._pool = base64.urlsafe_b64encode(self._random(self._CHUNK * 3 // 4))
            self._offset = 0
        start = self._offset
        self._offset = start + _RANDOM
        return "%x%s" % (row, self._pool[start : start + _RANDOM].decode("ascii"))

    def follow(self, row):
        """
        Give only row numbers above C{row} from now on (the largest in the
        database, at start).
        """
        if row is not None and row > self.last:
            self.last = row


def rowOf(sid):
    """
    The row number an archive id names, or L{None} for an id not made by
    L{ArchiveIds} (such as one a room gave before it had an archive).
    """
    if len(sid) <= _RANDOM or len(sid) > _RANDOM + 16:
        return None
    try:
        return int(sid[:-_RANDOM], 16)
    except ValueError:
        return None


class UnknownArchiveId(Exception):
    """
    A query named an archive id (RSM C{after}/C{before}, or the
    C{after-id}, C{before-id} and C{ids} fields) the archive does not
    hold: XEP-0313 answers C{item-not-found}.
    """


class ArchivedMessage:
    """
    One archived message.

    @ivar owner: the archive's bare JID (text).
    @ivar sid: its archive id.
    @ivar stamp: when it was archived, in seconds since the epoch.
    @ivar peer: the other party's bare JID (text); in a room's archive,
        the room's.
    @ivar resource: the other party's resource, or the sender's room
        nickname; C{''} for none.
    @ivar xml: the stanza, serialized.
    """

    __slots__ = ("owner", "sid", "stamp", "peer", "resource", "xml")

    def __init__(self, owner, sid, stamp, peer, resource, xml):
        self.owner = owner
        self.sid = sid
        self.stamp = stamp
        self.peer = peer
        self.resource = resource or ""
        self.xml = xml

    def __repr__(self):
        return "<ArchivedMessage %s %s with %s>" % (self.owner, self.sid, self.peer)

    def row(self):
        return (self.owner, self.sid, self.stamp, self.peer, self.resource, self.xml)


class ArchiveQuery:
    """
    What a XEP-0313 query asks for: filters, then one page.

    @ivar peer: only messages with this bare JID (text), or L{None}.
    @ivar resource: with C{peer}, only this resource (or nickname).
    @ivar start: only messages archived at or after this time.
    @ivar end: only messages archived at or before this time.
    @ivar afterId: only messages after this archive id (the form's
        C{after-id}).
    @ivar beforeId: only messages before this one (C{before-id}).
    @ivar ids: only these archive ids, or L{None}.
    @ivar pageAfter: RSM C{after}: the page starts after this id.
    @ivar pageBefore: RSM C{before}: the page ends before this id; C{''}
        asks for the last page.
    @ivar limit: the most messages in the page.
    """

    def __init__(
        self,
        peer=None,
        resource=None,
        start=None,
        end=None,
        afterId=None,
        beforeId=None,
        ids=None,
        pageAfter=None,
        pageBefore=None,
        limit=20,
    ):
        self.peer = peer
        self.resource = resource
        self.start = start
        self.end = end
        self.afterId = afterId
        self.beforeId = beforeId
        self.ids = ids
        self.pageAfter = pageAfter
        self.pageBefore = pageBefore
        self.limit = limit

    @property
    def backwards(self):
        """
        Whether the page is taken from the end (RSM C{before}).
        """
        return self.pageBefore is not None


class ArchivePage:
    """
    One page of results, oldest first.

    @ivar messages: the L{ArchivedMessage}s.
    @ivar complete: whether the page reaches the end of the results in
        the direction it was taken (XEP-0313's C{complete}).
    @ivar count: how many messages match the filters, all pages
        together.
    """

    def __init__(self, messages, complete, count):
        self.messages = messages
        self.complete = complete
        self.count = count


class CountingBacklog:
    """
    The size of a store's queue, counted without holding anyone up.

    @ivar high: the high mark (unused here).
    @ivar size: the items queued.
    @ivar holding: connections held up now (none).
    @ivar holds: connections held up so far (none).
    """

    holding = 0
    holds = 0

    def __init__(self, high):
        self.high = high
        self.size = 0

    def grew(self, size):
        self.size = size

    def shrank(self, size):
        self.size = size


class ArchiveStore:
    """
    Archives in one database.

    @ivar db: the L{xmppws.c2s.asyncdb.AsyncDatabase}; its schema holds
        L{SCHEMA}.
    @ivar clock: an C{IReactorTime}: batches are sent on its next turn,
        expiry runs on it.
    @ivar maxMessages: the most messages one archive keeps.
    @ivar retention: seconds a message is kept, or L{None} for ever.
    @ivar trimmed: messages removed to make room so far (quota).
    @ivar expired: messages removed for their age so far.
    @ivar flushDelay: seconds queued messages may wait to be written with
        others.
    @ivar maxBatch: queued messages that are written at once, without
        waiting for L{flushDelay}.
    @ivar backlog: the messages queued or being written, as a backlog
        made by the C{backlog} factory given (with the connection layer,
        an L{xmppws.flow.Backlog}: past its high mark, L{maxBacklog}, the
        connections whose stanzas add to it stop reading until the
        database thread catches up), or a L{CountingBacklog}.
    @ivar maxBacklog: the high mark.
    """

    log = Logger()
    flushDelay = 0.1
    maxBatch = 1000
    maxBacklog = 20000

    def __init__(self, db, clock, maxMessages=10000, retention=7 * 86400, backlog=None):
        """
        @param backlog: a callable taking the high mark and returning an
            object with the methods and attributes of L{CountingBacklog},
            told when rows are queued and written; L{CountingBacklog} if
            L{None}.
        """
        self.db = db
        self.clock = clock
        self.maxMessages = maxMessages
        self.retention = retention
        self.trimmed = 0
        self.expired = 0
        self._pending = []
        self._scheduled = None
        self._writing = 0
        self._inFlight = 0
        self.backlog = (backlog or CountingBacklog)(self.maxBacklog)
        self._expiry = None
        self._closed = False
        self._followed = False
        self.newId = ArchiveIds(clock)

    # Life cycle

    def start(self):
        """
        Delete expired messages every L{EXPIRY_INTERVAL} seconds (queries
        leave them out meanwhile).  Nothing runs before the first
        interval: starting opens no database (and no thread), so that a
        service that cannot listen exits at once.
        """
        if self._expiry is not None or self._closed or self.retention is None:
            return
        self._expiry = task.LoopingCall(self._expireNow)
        self._expiry.clock = self.clock
        self._expiry.start(EXPIRY_INTERVAL, now=False)

    @property
    def closed(self):
        """
        Whether L{close} was called.
        """
        return self._closed

    def close(self):
        """
        Stop expiring, and write what is queued.

        @return: a L{Deferred} firing once written (the database stays
            open: whoever opened it closes it).
        """
        self._closed = True
        if self._expiry is not None:
            if self._expiry.running:
                self._expiry.stop()
            self._expiry = None
        return self.flush()

    # Writing

    def append(self, message):
        """
        Queue one message; it is written with the others queued within
        L{flushDelay}, or with those queued while the write before it
        ran.

        @type message: L{ArchivedMessage}
        """
        self._pending.append(message.row())
        self.backlog.grew(len(self._pending) + self._inFlight)
        if self._writing:
            return
        if len(self._pending) >= self.maxBatch:
            self.flush()
        elif self._scheduled is None:
            self._scheduled = self.clock.callLater(self.flushDelay, self._flushScheduled)

    def _flushScheduled(self):
        self._scheduled = None
        if not self._writing:
            self.flush()

    def _cancelScheduled(self):
        if self._scheduled is not None:
            if self._scheduled.active():
                self._scheduled.cancel()
            self._scheduled = None

    def _followOnce(self):
        if not self._followed:
            # First, the largest row number written before, so that new
            # ids come after it even if the clock went back.
            self._followed = True
            d = self.db.run(_largestRow)
            d.addCallbacks(self.newId.follow,
                           lambda f: self.log.failure("Reading the archive failed", f))

    def flush(self):
        """
        Send everything queued to the database thread now, as one job
        (after the write running, if one is).

        @return: a L{Deferred} firing once it is written.
        """
        self._cancelScheduled()
        self._followOnce()
        if not self._pending:
            return defer.succeed(None)
        rows, self._pending = self._pending, []
        self._writing += 1
        self._inFlight += len(rows)
        d = self.db.run(_write, rows, self.maxMessages)
        d.addCallbacks(self._written, self._writeFailed,
                       callbackArgs=(len(rows),), errbackArgs=(len(rows),))
        return d

    def _written(self, trimmed, count):
        self._done(count)
        self.trimmed += trimmed

    def _writeFailed(self, failure, count):
        self._done(count)
        self.log.failure("Could not archive {count} messages", failure, count=count)

    def _done(self, count):
        self._writing -= 1
        self._inFlight -= count
        self.backlog.shrank(len(self._pending) + self._inFlight)
        if self._writing or not self._pending:
            return
        if len(self._pending) >= self.maxBatch or self.backlog.holding:
            # Rows came in while the database was busy: they go at once,
            # in one batch, so that batches grow with the load.
            self.flush()
        elif self._scheduled is None:
            self._scheduled = self.clock.callLater(self.flushDelay, self._flushScheduled)

    def delete(self, owner):
        """
        Forget an archive (an account removed, a room destroyed).

        @return: a L{Deferred} firing once done.
        """
        self.flush()
        return self.db.run(_delete, owner)

    def expire(self, before):
        """
        Delete the messages archived before C{before}.

        @return: a L{Deferred} firing with how many went.
        """
        self.flush()
        d = self.db.run(_expire, before)

        def done(count):
            self.expired += count
            if count:
                self.log.info("Expired {count} archived messages", count=count)
            return count

        return d.addCallback(done)

    def _expireNow(self):
        d = self.expire(self.clock.seconds() - self.retention)
        d.addErrback(lambda f: self.log.failure("Archive expiry failed", f))

    # Reading

    def query(self, owner, query):
        """
        One page of an archive.

        Messages older than the retention are left out, whether or not
        L{expire} deleted them yet.

        @type query: L{ArchiveQuery}
        @return: a L{Deferred} firing with an L{ArchivePage}, or failing
            with L{UnknownArchiveId}.
        """
        self.flush()
        return self.db.run(_query, owner, query, self._oldest())

    def _oldest(self):
        if self.retention is None:
            return None
        return self.clock.seconds() - self.retention

    def bounds(self, owner):
        """
        The first and last messages of an archive (XEP-0313 metadata).

        @return: a L{Deferred} firing with C{(first, last)}, two
            L{ArchivedMessage}s or two L{None}s.
        """
        self.flush()
        return self.db.run(_bounds, owner, self._oldest())


_COLUMNS = "owner, sid, stamp, peer, resource, stanza"


def _largestRow(connection):
    return connection.execute("SELECT MAX(id) FROM mam_messages").fetchone()[0]


def _write(connection, rows, maxMessages):
    connection.executemany(
        "INSERT OR IGNORE INTO mam_messages (id, %s) VALUES (?, ?, ?, ?, ?, ?, ?)" % (_COLUMNS,),
        [(rowOf(row[1]),) + row for row in rows],
    )
    counts = {}
    for row in rows:
        counts[row[0]] = counts.get(row[0], 0) + 1
    trimmed = 0
    for owner, added in counts.items():
        connection.execute(
            "INSERT INTO mam_sizes (owner, messages) VALUES (?, ?) ON CONFLICT (owner) "
            "DO UPDATE SET messages = messages + excluded.messages",
            (owner, added),
        )
        size = connection.execute(
            "SELECT messages FROM mam_sizes WHERE owner=?", (owner,)
        ).fetchone()[0]
        if size > maxMessages:
            excess = size - maxMessages
            connection.execute(
                "DELETE FROM mam_messages WHERE id IN (SELECT id FROM mam_messages "
                "WHERE owner=? ORDER BY id LIMIT ?)",
                (owner, excess),
            )
            connection.execute(
                "UPDATE mam_sizes SET messages=? WHERE owner=?", (maxMessages, owner)
            )
            trimmed += excess
    return trimmed


def _delete(connection, owner):
    connection.execute("DELETE FROM mam_messages WHERE owner=?", (owner,))
    connection.execute("DELETE FROM mam_sizes WHERE owner=?", (owner,))


def _expire(connection, before):
    # Row numbers grow with time: the expired messages are a range of them.
    row = int(before * 1000) << 10
    gone = connection.execute(
        "SELECT owner, COUNT(*) FROM mam_messages WHERE id < ? GROUP BY owner", (row,)
    ).fetchall()
    if not gone:
        return 0
    connection.execute("DELETE FROM mam_messages WHERE id < ?", (row,))
    connection.executemany(
        "UPDATE mam_sizes SET messages = MAX(0, messages - ?) WHERE owner=?",
        [(count, owner) for owner, count in gone],
    )
    connection.execute("DELETE FROM mam_sizes WHERE messages=0")
    return sum(count for _, count in gone)


def _rowId(connection, owner, sid):
    number = rowOf(sid)
    if number is not None:
        row = connection.execute(
            "SELECT id FROM mam_messages WHERE id=? AND owner=? AND sid=?", (number, owner, sid)
        ).fetchone()
    else:
        # An id from before the archive (a room's stanza id): found by
        # looking through the archive.
        row = connection.execute(
            "SELECT id FROM mam_messages WHERE owner=? AND sid=?", (owner, sid)
        ).fetchone()
    if row is None:
        raise UnknownArchiveId(sid)
    return row[0]


def _message(row):
    return ArchivedMessage(*row)


def _firstRow(seconds):
    return int(seconds * 1000) << 10


def _query(connection, owner, query, oldest=None):
    where = ["owner=?"]
    args = [owner]
    # Times are row numbers (see ArchiveIds), to the millisecond.
    if oldest is not None:
        where.append("id>=?")
        args.append(_firstRow(oldest))
    if query.peer is not None:
        where.append("peer=?")
        args.append(query.peer)
        if query.resource:
            where.append("resource=?")
            args.append(query.resource)
    if query.start is not None:
        where.append("id>=?")
        args.append(_firstRow(query.start))
    if query.end is not None:
        where.append("id<?")
        args.append(_firstRow(query.end + 0.001))
    if query.ids is not None:
        rowIds = [_rowId(connection, owner, sid) for sid in query.ids]
        if not rowIds:
            return ArchivePage([], True, 0)
        where.append("id IN (%s)" % (", ".join("?" * len(rowIds)),))
        args.extend(rowIds)
    after = before = None
    if query.afterId is not None:
        after = _rowId(connection, owner, query.afterId)
    if query.beforeId is not None:
        before = _rowId(connection, owner, query.beforeId)
    count = connection.execute(
        "SELECT COUNT(*) FROM mam_messages WHERE " + " AND ".join(where), args
    ).fetchone()[0]
    if query.pageAfter:
        rowId = _rowId(connection, owner, query.pageAfter)
        after = rowId if after is None else max(after, rowId)
    if query.pageBefore:
        rowId = _rowId(connection, owner, query.pageBefore)
        before = rowId if before is None else min(before, rowId)
    if after is not None:
        where.append("id>?")
        args.append(after)
    if before is not None:
        where.append("id<?")
        args.append(before)
    order = "DESC" if query.backwards else "ASC"
    rows = connection.execute(
        "SELECT %s FROM mam_messages WHERE %s ORDER BY id %s LIMIT ?"
        % (_COLUMNS, " AND ".join(where), order),
        args + [query.limit + 1],
    ).fetchall()
    complete = len(rows) <= query.limit
    rows = rows[: query.limit]
    if query.backwards:
        rows.reverse()
    return ArchivePage([_message(row) for row in rows], complete, count)


def _bounds(connection, owner, oldest=None):
    first = connection.execute(
        "SELECT %s FROM mam_messages WHERE owner=? AND id>=? ORDER BY id ASC LIMIT 1"
        % (_COLUMNS,),
        (owner, _firstRow(oldest) if oldest is not None else 0),
    ).fetchone()
    last = connection.execute(
        "SELECT %s FROM mam_messages WHERE owner=? ORDER BY id DESC LIMIT 1" % (_COLUMNS,),
        (owner,),
    ).fetchone()
    if first is None:
        return None, None
    return _message(first), _message(last)
