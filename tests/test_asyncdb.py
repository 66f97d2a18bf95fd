"""
Tests for L{xmppws.c2s.asyncdb}: jobs run in order in a transaction, on a
thread of their own or inline.
"""

import sqlite3
import threading

from twisted.internet import defer, reactor
from twisted.internet.testing import MemoryReactorClock
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from xmppws.c2s.asyncdb import AsyncDatabase, DatabaseClosed, InlineRunner, IRunner, ThreadRunner

SCHEMA = "CREATE TABLE IF NOT EXISTS t (n INTEGER NOT NULL);"


def insert(connection, n):
    connection.execute("INSERT INTO t (n) VALUES (?)", (n,))


def select(connection):
    return [row[0] for row in connection.execute("SELECT n FROM t ORDER BY rowid")]


class InlineTests(unittest.TestCase):
    """
    With L{InlineRunner}, jobs run at once and their L{Deferred}s have
    fired when C{run} returns.
    """

    def setUp(self):
        self.db = AsyncDatabase(
            MemoryReactorClock(), self.mktemp() + "/db.sqlite", SCHEMA, InlineRunner()
        )
        self.addCleanup(self.db.close)

    def test_runners(self):
        """
        Both runners provide L{IRunner}.
        """
        self.assertTrue(verifyObject(IRunner, InlineRunner()))
        self.assertTrue(verifyObject(IRunner, ThreadRunner(MemoryReactorClock())))

    def test_result(self):
        """
        A job's return value is the result of its L{Deferred}.
        """
        self.db.run(insert, 1)
        self.db.run(insert, 2)
        self.assertEqual(self.successResultOf(self.db.run(select)), [1, 2])

    def test_rollback(self):
        """
        A job that raises leaves nothing written, and its L{Deferred}
        fails with what it raised.
        """

        def half(connection):
            insert(connection, 1)
            raise ValueError("stop")

        self.failureResultOf(self.db.run(half), ValueError)
        self.assertEqual(self.successResultOf(self.db.run(select)), [])

    def test_sqlError(self):
        """
        An SQL error fails the job's L{Deferred} and the next job runs.
        """
        self.failureResultOf(
            self.db.run(lambda c: c.execute("SELECT nothing FROM nowhere")), sqlite3.Error
        )
        self.successResultOf(self.db.run(insert, 3))
        self.assertEqual(self.successResultOf(self.db.run(select)), [3])

    def test_closed(self):
        """
        After L{AsyncDatabase.close}, jobs fail with L{DatabaseClosed};
        closing again does nothing.
        """
        self.successResultOf(self.db.close())
        self.failureResultOf(self.db.run(select), DatabaseClosed)
        self.successResultOf(self.db.close())

    def test_persistent(self):
        """
        What one database object wrote, another one on the same file reads.
        """
        self.db.run(insert, 7)
        self.successResultOf(self.db.close())
        again = AsyncDatabase(MemoryReactorClock(), self.db.path, SCHEMA, InlineRunner())
        self.addCleanup(again.close)
        self.assertEqual(self.successResultOf(again.run(select)), [7])


class ThreadTests(unittest.TestCase):
    """
    With L{ThreadRunner}, jobs run in one thread that is not the
    reactor's, in the order they were asked for.
    """

    def setUp(self):
        self.db = AsyncDatabase(reactor, self.mktemp() + "/db.sqlite", SCHEMA)
        self.addCleanup(self.db.close)

    @defer.inlineCallbacks
    def test_order(self):
        """
        Writes asked for one after another without waiting are done in
        that order, before a read asked for after them.
        """
        writes = [self.db.run(insert, n) for n in range(50)]
        numbers = yield self.db.run(select)
        yield defer.gatherResults(writes)
        self.assertEqual(numbers, list(range(50)))

    @defer.inlineCallbacks
    def test_offTheReactorThread(self):
        """
        Jobs run in one thread other than the reactor's.
        """
        names = yield defer.gatherResults(
            [self.db.run(lambda c: threading.current_thread().ident) for _ in range(3)]
        )
        self.assertEqual(len(set(names)), 1)
        self.assertNotEqual(names[0], threading.current_thread().ident)

    @defer.inlineCallbacks
    def test_closeWaits(self):
        """
        Closing waits for the jobs asked for before it, then stops the
        thread.
        """
        pending = [self.db.run(insert, n) for n in range(5)]
        yield self.db.close()
        self.assertTrue(all(d.called for d in pending))
        self.assertFalse(self.db.runner._started)
