"""
Tests for the writing side of L{xmppws.c2s.archive.ArchiveStore}: how
rows are batched for the database thread, and the backlog that holds up
senders when the database falls behind.
"""

import os

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial import unittest
from zope.interface import implementer

from xmppws.c2s.archive import SCHEMA, ArchivedMessage, ArchiveQuery, ArchiveStore
from xmppws.c2s.asyncdb import AsyncDatabase, IRunner


@implementer(IRunner)
class StepRunner:
    """
    Runs each job when the test says so, in order: a database thread that
    is as slow as the test wants.

    @ivar jobs: the jobs asked for and not yet run, with their Deferreds.
    """

    def __init__(self):
        self.jobs = []

    def run(self, job):
        d = defer.Deferred()
        self.jobs.append((job, d))
        return d

    def step(self):
        """
        Run the oldest job.
        """
        job, d = self.jobs.pop(0)
        try:
            result = job()
        except BaseException:
            d.errback()
        else:
            d.callback(result)

    def runAll(self):
        while self.jobs:
            self.step()

    def stop(self):
        return defer.succeed(None)


class WritingTests(unittest.TestCase):
    """
    Rows go to the database in batches that grow with the load, and the
    rows not yet written are a backlog that is bounded.
    """

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1800000000)
        self.runner = StepRunner()
        path = os.path.join(self.mktemp(), "archive.sqlite")
        self.db = AsyncDatabase(self.clock, path, SCHEMA, runner=self.runner)
        self.store = ArchiveStore(self.db, self.clock)
        self.batches = []
        self.addCleanup(self.close)

    def close(self):
        d = self.db.close()
        self.runner.runAll()
        return d

    def append(self, count, owner="alice@example.org"):
        for n in range(count):
            self.store.append(ArchivedMessage(
                owner, self.store.newId(), self.clock.seconds(), "bob@example.org", "",
                "<message xmlns='jabber:client'><body>%d</body></message>" % (n,),
            ))

    def writes(self):
        """
        The sizes of the writes waiting for the database.
        """
        sizes = []
        for job, _ in self.runner.jobs:
            closure = job.__closure__ or ()
            for cell in closure:
                value = cell.cell_contents
                if isinstance(value, tuple) and value and isinstance(value[0], list):
                    sizes.append(len(value[0]))
        return sizes

    def stored(self, owner="alice@example.org"):
        d = self.store.query(owner, ArchiveQuery(limit=10 ** 6))
        self.runner.runAll()
        return len(self.successResultOf(d).messages)

    def test_batchedByDelay(self):
        """
        Rows appended within the flush delay are written as one job.
        """
        self.append(3)
        self.runner.runAll()
        self.assertEqual(self.writes(), [])
        self.clock.advance(self.store.flushDelay)
        self.assertEqual(self.writes(), [3])

    def test_batchedWhileWriting(self):
        """
        Rows appended while a write runs wait for it, however many, and
        then go in one job: batches grow with the load.
        """
        self.append(2)
        self.clock.advance(self.store.flushDelay)
        self.runner.step()  # the largest row, read once
        self.assertEqual(self.writes(), [2])
        self.append(self.store.maxBatch * 3)
        self.clock.advance(self.store.flushDelay)
        self.assertEqual(self.writes(), [2])
        self.runner.step()
        self.assertEqual(self.writes(), [self.store.maxBatch * 3])
        self.runner.runAll()
        self.assertEqual(self.stored(), 2 + self.store.maxBatch * 3)

    def test_fullBatchAtOnce(self):
        """
        With no write running, maxBatch rows are written without waiting
        for the delay.
        """
        self.store.maxBatch = 5
        self.append(5)
        self.assertEqual(self.writes(), [5])

    def test_backlog(self):
        """
        The backlog counts the rows queued and those being written, and
        shrinks as they are written.
        """
        self.append(4)
        self.clock.advance(self.store.flushDelay)
        self.append(3)
        self.assertEqual(self.store.backlog.size, 7)
        self.runner.runAll()
        self.assertEqual(self.store.backlog.size, 3)
        self.clock.advance(self.store.flushDelay)
        self.runner.runAll()
        self.assertEqual(self.store.backlog.size, 0)
        self.assertEqual(self.stored(), 7)

    def test_failedWrite(self):
        """
        A write that fails is logged, leaves the backlog, and the rows
        after it are still written.
        """
        self.append(2)
        self.clock.advance(self.store.flushDelay)
        self.runner.step()  # the largest row
        job, d = self.runner.jobs.pop(0)
        self.append(1)
        d.errback(RuntimeError("disk full"))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(self.store.backlog.size, 1)
        self.clock.advance(self.store.flushDelay)
        self.runner.runAll()
        self.assertEqual(self.store.backlog.size, 0)
        self.assertEqual(self.stored(), 1)

    def test_closeWritesAll(self):
        """
        Closing sends what is queued, even while a write runs.
        """
        self.append(2)
        self.clock.advance(self.store.flushDelay)
        self.append(3)
        d = self.store.close()
        self.runner.runAll()
        self.successResultOf(d)
        self.assertEqual(self.stored(), 5)
