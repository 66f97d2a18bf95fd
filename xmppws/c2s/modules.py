# -*- test-case-name: tests.test_c2s_routing -*-
"""
The modules of the embedded server.  Each is a module of this package
with an C{install(server)} function that registers its hooks on an
L{xmppws.c2s.server.XMPPServer} and returns the module's state object.

A module's state may have a C{close()} method returning a L{Deferred}:
the service calls it when it stops, after the sessions ended (see
L{closeModules}).  Modules that keep data in a database of their own
open it with L{moduleDatabase}.
"""

import importlib
import os

from twisted.internet import defer
from twisted.internet.interfaces import IReactorThreads

from xmppws.c2s.asyncdb import AsyncDatabase, InlineRunner, ThreadRunner

__all__ = ["DEFAULT_MODULES", "closeModules", "installModules", "moduleDatabase"]

DEFAULT_MODULES = (
    "roster",
    "presence",
    "offline",
    "carbons",
    "blocking",
    "disco",
    "ping",
    "version",
    "register",
    "sm",
    "mam",
    "caps",
    "pep",
    "bookmarks",
    "private",
    "vcard",
)


def installModules(server, names=DEFAULT_MODULES):
    """
    Install the named modules on C{server}, in order.

    @return: C{server.modules}, a mapping of name to module state.
    """
    for name in names:
        if name in server.modules:
            continue
        module = importlib.import_module("xmppws.c2s." + name)
        server.modules[name] = module.install(server)
    return server.modules


def moduleDatabase(server, filename, schema):
    """
    An asynchronous database of a module, next to the server's own
    database: on the server's C{databaseRunner} if it has one, else on a
    thread of its own (or run at once, on a reactor without threads,
    such as a test clock).

    @param filename: its file name in the data directory.
    @param schema: its schema (see L{AsyncDatabase}).
    @rtype: L{AsyncDatabase}
    """
    runner = getattr(server.config, "databaseRunner", None)
    if runner is None:
        if IReactorThreads.providedBy(server.reactor):
            runner = ThreadRunner(server.reactor, name="xmppws-" + filename.split(".")[0])
        else:
            runner = InlineRunner()
    directory = os.path.dirname(os.path.abspath(server.storage.path))
    return AsyncDatabase(server.reactor, os.path.join(directory, filename), schema, runner)


def closeModules(server):
    """
    Close the installed modules that have something to close (their
    databases), last installed first.

    @return: a L{Deferred} firing when all are closed.
    """
    closing = []
    for state in reversed(list(server.modules.values())):
        close = getattr(state, "close", None)
        if close is not None:
            closing.append(defer.maybeDeferred(close))
    return defer.DeferredList(closing, consumeErrors=True)
