"""
What the message archive (XEP-0313) costs a routed message, measured
without the noise of sockets and other processes: the embedded server
in memory, two sessions on in-memory WebSockets (the real connection
stack: framing, parsing, serializing), one sending chat messages to the
other, and the process's CPU time per message

  - without the archive (C{--no-archive});
  - with it, its database writes run at once on the same thread
    (L{xmppws.c2s.asyncdb.InlineRunner}), so that they are counted: the
    CPU the service spends per message, its database thread included;
  - with it, the database jobs left out: what runs on the reactor thread
    (deciding, serializing, stamping the stanza ids).

    python bench/archive_cost.py                 # 10 rounds of 3000 messages
    python bench/archive_cost.py --messages 5000 --rounds 3

Each round measures the three modes one after the other; the figures
are the medians over the rounds, and the costs the medians of each
round's differences, so that a machine whose load changes (other
processes) disturbs them less.

The side-by-side benchmark (C{xmpp_bench.py --xmppws-args=--no-archive})
measures the same over loopback sockets against Prosody.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from twisted.internet import defer  # noqa: E402
from twisted.internet.testing import MemoryReactorClock  # noqa: E402

from tests.c2shelpers import C2SClient  # noqa: E402
from xmppws.c2s.asyncdb import InlineRunner  # noqa: E402
from xmppws.c2s.mam import ArchiveSettings  # noqa: E402
from xmppws.c2s.modules import closeModules, installModules  # noqa: E402
from xmppws.c2s.server import ServerConfig, XMPPServer  # noqa: E402
from xmppws.c2s.storage import Storage  # noqa: E402

MESSAGE = (
    b"<message xmlns='jabber:client' to='bob@localhost' type='chat' id='m%d'>"
    b"<body>A message of a conversation, about as long as people write (%d).</body>"
    b"<active xmlns='http://jabber.org/protocol/chatstates'/>"
    b"<origin-id xmlns='urn:xmpp:sid:0' id='origin-%d'/></message>"
)


def measure(messages, mode):
    """
    CPU seconds per message in one mode: C{'off'}, C{'on'} or
    C{'reactor'}.
    """
    directory = tempfile.mkdtemp(prefix="xmppws-archive-cost-")
    clock = MemoryReactorClock()
    storage = Storage(os.path.join(directory, "xmppws.sqlite"))
    for user in ("alice", "bob"):
        storage.addUser(user, "localhost", "secret")
    server = XMPPServer(
        storage,
        ServerConfig(
            domains=("localhost",),
            archive=ArchiveSettings(enabled=mode != "off"),
            databaseRunner=InlineRunner(),
        ),
        reactor=clock,
    )
    installModules(server)
    if mode == "reactor":
        server.modules["mam"].store.db.run = lambda *args, **kwargs: defer.succeed(0)
    try:
        alice = C2SClient(None, server)
        alice.login("alice", "a")
        alice.presence()
        bob = C2SClient(None, server)
        bob.login("bob", "b")
        bob.presence()
        clock.advance(1)
        alice.ws.transport.clear()
        bob.ws.transport.clear()

        def send(first, count):
            for n in range(first, first + count):
                alice.send(MESSAGE % (n, n, n))
                if n % 50 == 49:
                    # A tenth of a second: the archive writes what it queued.
                    clock.advance(0.1)
                    alice.ws.transport.clear()
                    bob.ws.transport.clear()

        send(0, 500)
        started = time.process_time()
        send(500, messages)
        clock.advance(1)
        spent = time.process_time() - started
        if mode == "on":
            page = []
            server.modules["mam"].store.flush()
            from xmppws.c2s.archive import ArchiveQuery

            server.modules["mam"].store.query(
                "bob@localhost", ArchiveQuery(limit=0)).addCallback(page.append)
            if not page or page[0].count < messages:
                raise AssertionError("the archive holds %r messages" % (page and page[0].count,))
        return spent / messages
    finally:
        closeModules(server)
        storage.close()
        shutil.rmtree(directory, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=10)
    options = parser.parse_args(argv)
    results = {"off": [], "on": [], "reactor": []}
    for _ in range(options.rounds):
        for mode in ("off", "on", "reactor"):
            results[mode].append(measure(options.messages, mode) * 1e6)
    median = lambda values: sorted(values)[len(values) // 2]
    base = median(results["off"])
    print("CPU per routed message, in memory, medians of %d rounds of %d messages:"
          % (options.rounds, options.messages))
    print("  without the archive                     %7.1f us" % (base,))
    for mode, label in (("on", "with the archive (writes included)   "),
                        ("reactor", "with the archive, reactor thread only")):
        cost = median([b - a for a, b in zip(results["off"], results[mode])])
        print("  %s   %7.1f us  (+%.1f us, +%.0f%%)"
              % (label, median(results[mode]), cost, 100 * cost / base))
    return 0


if __name__ == "__main__":
    sys.exit(main())
