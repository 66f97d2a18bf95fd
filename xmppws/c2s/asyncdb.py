# -*- test-case-name: tests.test_asyncdb -*-
"""
An SQLite database used without blocking the reactor: every query runs
in one dedicated thread, in the order it was asked for, and its result
comes back as a L{Deferred}.

    db = AsyncDatabase(reactor, "rooms.sqlite", SCHEMA)
    d = db.run(lambda conn: conn.execute("SELECT ...").fetchall())
    ...
    yield db.close()

A job gets the C{sqlite3} connection and runs inside a transaction that
is committed when it returns and rolled back when it raises.  One thread
keeps the jobs in order (a write asked for before a read is done before
it) without locks, and SQLite gets one writer.

The thread is a L{ThreadRunner}.  L{InlineRunner} runs the jobs at once
on the calling thread instead, for command-line tools and for tests on a
fake clock; anything providing L{IRunner} will do.

The group chat service (L{xmppws.muc.storage}) keeps its rooms here;
other stores (such as a message archive) open their own database with
their own schema in the same way.
"""

import os
import sqlite3

from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from zope.interface import Interface, implementer

__all__ = ["AsyncDatabase", "DatabaseClosed", "IRunner", "InlineRunner", "ThreadRunner"]


class DatabaseClosed(Exception):
    """
    A job was asked of a database that is closing or closed.
    """


class IRunner(Interface):
    """
    Runs a database's jobs one after another, away from the caller.
    """

    def run(job):
        """
        Run C{job()}.

        @return: a L{Deferred} firing with its result, in the reactor
            thread, after every job asked for before it.
        """

    def stop():
        """
        Stop once the jobs asked for so far are done.

        @return: a L{Deferred} firing when stopped.
        """


@implementer(IRunner)
class ThreadRunner:
    """
    One thread of its own, started on the first job.  If the reactor
    shuts down before the runner is stopped, the thread finishes the
    jobs asked for and ends with it, so that the process can exit.

    @ivar reactor: the reactor results are delivered on.
    """

    def __init__(self, reactor, name="xmppws-db"):
        self.reactor = reactor
        self._pool = ThreadPool(minthreads=1, maxthreads=1, name=name)
        self._started = False
        self._trigger = None

    def run(self, job):
        if not self._started:
            self._pool.start()
            self._started = True
            self._trigger = self.reactor.addSystemEventTrigger(
                "during", "shutdown", self._shutdown
            )
        return deferToThreadPool(self.reactor, self._pool, job)

    def _shutdown(self):
        self._trigger = None
        if self._started:
            self._started = False
            self._pool.stop()

    def stop(self):
        if not self._started:
            return defer.succeed(None)
        # A last job: when it is done, everything asked before it is.
        d = deferToThreadPool(self.reactor, self._pool, lambda: None)

        def stopPool(result):
            if self._trigger is not None:
                self.reactor.removeSystemEventTrigger(self._trigger)
                self._trigger = None
            if self._started:
                self._started = False
                self._pool.stop()
            return result

        return d.addBoth(stopPool)


@implementer(IRunner)
class InlineRunner:
    """
    Runs each job at once, on the calling thread: for command-line tools
    and for tests on a fake clock.  It blocks whoever calls it.
    """

    def run(self, job):
        return defer.maybeDeferred(job)

    def stop(self):
        return defer.succeed(None)


class AsyncDatabase:
    """
    One SQLite file, its schema, and a runner for its jobs.

    @ivar path: the file.
    @ivar runner: the L{IRunner}.
    """

    log = Logger()

    def __init__(self, reactor, path, schema, runner=None):
        """
        Open (creating) the database when the first job runs.

        @param reactor: the reactor results come back on.
        @param path: the SQLite file; its directory is created.
        @param schema: SQL run once on opening (C{CREATE ... IF NOT
            EXISTS} statements).
        @param runner: an L{IRunner}; a L{ThreadRunner} if L{None}.
        """
        self.path = path
        self.runner = runner if runner is not None else ThreadRunner(reactor)
        self._schema = schema
        self._connection = None
        self._closing = False

    def _open(self):
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        connection = sqlite3.connect(
            self.path, isolation_level=None, timeout=5.0, check_same_thread=False
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.executescript(self._schema)
        try:
            os.chmod(self.path, 0o600)
        except OSError:
            pass
        return connection

    def _transact(self, job, args, kwargs):
        if self._connection is None:
            self._connection = self._open()
        connection = self._connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            result = job(connection, *args, **kwargs)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return result

    def run(self, job, *args, **kwargs):
        """
        Run C{job(connection, *args, **kwargs)} in a transaction.

        @return: a L{Deferred} firing with what C{job} returns, or failing
            with what it raised (L{DatabaseClosed} once L{close} was
            called).
        """
        if self._closing:
            return defer.fail(DatabaseClosed(self.path))
        return self.runner.run(lambda: self._transact(job, args, kwargs))

    def close(self):
        """
        Finish the jobs asked for, close the file and stop the runner.

        @return: a L{Deferred} firing when closed; closing again does
            nothing more.
        """
        if self._closing:
            return defer.succeed(None)
        self._closing = True

        def closeConnection():
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        d = self.runner.run(closeConnection)
        d.addErrback(lambda f: self.log.failure("Closing {path} failed", f, path=self.path))
        d.addCallback(lambda _: self.runner.stop())
        return d
