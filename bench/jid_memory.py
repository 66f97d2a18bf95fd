"""
Measure what addresses a client makes up cost the server in memory: the
resident set size (RSS) of a real C{twistd xmppws} service before and
after a logged-in client sends iqs to thousands of distinct JIDs, and
after it leaves.

The service runs in a child process (this same script with --serve),
built by C{xmppws.tap} as C{twistd xmppws} builds it, with the stanza
rate limit off so that the batches go through at once.  The client, in
this process, is the websockets package's synchronous client; a reader
thread takes the server's answers as they come, at most 100 iqs are
unanswered at a time, and each batch ends when every iq has its answer.

Two workloads, each sent twice (two batches of distinct addresses):

    valid     --count iqs to u<N>@<domain>/<--resource-size characters>,
              addresses every version of the server accepts;
    oversized --big-count iqs to addresses with a --big-size character
              localpart, as in the report that a client could grow the
              server without limit (RFC 7622 allows 1023 bytes a part).

    python bench/jid_memory.py
    python bench/jid_memory.py --source /tmp/main-checkout --label main

--source runs the service from another checkout of xmppws (main, say) in
the same virtual environment, for a side-by-side figure: give --source
twice with two --label's to measure both in one run.
"""

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOMAIN = "localhost"
PASSWORD = "bench-secret"
TIMEOUT = 600
WINDOW = 100


def serve(dataDir):
    """
    The child: a C{twistd xmppws} service on a free loopback port; print
    its port and pid, stop when standard input closes.
    """
    from twisted.internet import reactor, stdio
    from twisted.internet.protocol import Protocol

    from xmppws import tap
    from xmppws.c2s.storage import Storage

    storage = Storage.inDirectory(dataDir)
    storage.addUser("alice", DOMAIN, PASSWORD)
    storage.close()
    from twisted.logger import (
        FilteringLogObserver, LogLevel, LogLevelFilterPredicate, globalLogBeginner,
        textFileLogObserver)

    # The service's warnings and errors (a stream it ended, and why) on
    # standard error.
    globalLogBeginner.beginLoggingTo([FilteringLogObserver(
        textFileLogObserver(sys.stderr), [LogLevelFilterPredicate(LogLevel.warn)])],
        redirectStandardIO=False)
    options = tap.Options()
    options.parseOptions(
        [
            "--data-dir", dataDir,
            "--listen", "tcp:0:interface=127.0.0.1",
            "--c2s", "none",
            "--stanza-rate", "0",
            "--byte-rate", "0",
        ]
    )
    service = tap.makeService(options)
    service.privilegedStartService()
    service.startService()

    def announce():
        port = service.addresses["web"][0].port
        print(json.dumps({"port": port, "pid": os.getpid()}), flush=True)

    class Stop(Protocol):
        def connectionLost(self, reason):
            service.stopService()
            reactor.callLater(1, reactor.stop)

    stdio.StandardIO(Stop())
    reactor.callWhenRunning(lambda: reactor.callLater(0.2, announce))
    reactor.run()


def rss(pid):
    """
    The resident set size of process C{pid}, in MiB.
    """
    with open("/proc/%d/status" % (pid,)) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS for %d" % (pid,))


class Client:
    """
    A logged-in client: PLAIN over RFC 7395, bound, with a reader thread
    counting answers.
    """

    def __init__(self, port):
        import warnings

        from websockets.sync.client import connect

        warnings.simplefilter("ignore", DeprecationWarning)
        self.ws = connect(
            "ws://127.0.0.1:%d/xmpp-websocket" % (port,),
            subprotocols=["xmpp"],
            max_size=2**24,
            compression=None,
            open_timeout=30,
            # A server busy preparing huge addresses may not answer pings
            # in time; the batches wait for every answer instead.
            ping_interval=None,
        )
        self._open()
        auth = base64.b64encode(("\0alice\0" + PASSWORD).encode()).decode()
        self.ws.send(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>" % (auth,)
        )
        answer = self.ws.recv(timeout=30)
        if "<success" not in answer:
            raise RuntimeError("login failed: " + answer)
        self._open()
        self.ws.send(
            "<iq xmlns='jabber:client' type='set' id='bind'><bind "
            "xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>bench</resource></bind></iq>"
        )
        self.ws.recv(timeout=30)
        self.answers = 0
        self.closed = None
        self.conditions = {}
        self._lock = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _open(self):
        self.ws.send(
            "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='%s' version='1.0'/>" % (DOMAIN,)
        )
        self.ws.recv(timeout=30)
        self.ws.recv(timeout=30)

    def _read(self):
        from websockets.exceptions import ConnectionClosed

        while True:
            try:
                message = self.ws.recv()
            except ConnectionClosed as e:
                with self._lock:
                    self.closed = e
                    self._lock.notify_all()
                return
            condition = "result"
            for name in ("jid-malformed", "service-unavailable", "remote-server-not-found"):
                if name in message:
                    condition = name
            with self._lock:
                self.answers += 1
                self.conditions[condition] = self.conditions.get(condition, 0) + 1
                self._lock.notify_all()

    def batch(self, addresses):
        """
        Send one disco#info iq to each address and wait for every answer.
        """
        with self._lock:
            start = self.answers
        deadline = time.monotonic() + TIMEOUT
        for n, address in enumerate(addresses):
            # At most WINDOW iqs unanswered.
            self._waitFor(start + n - WINDOW, deadline)
            self.ws.send(
                "<iq xmlns='jabber:client' type='get' id='q%d' to='%s'>"
                "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>" % (n, address)
            )
        self._waitFor(start + len(addresses), deadline)

    def _waitFor(self, answers, deadline):
        with self._lock:
            while self.answers < answers:
                if self.closed is not None:
                    raise RuntimeError(
                        "the server closed the stream after %d answers: %s"
                        % (self.answers, self.closed)
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("answers missing: %d of %d" % (self.answers, answers))
                self._lock.wait(left)

    def close(self):
        self.ws.send("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>")
        try:
            self.ws.recv(timeout=10)
        except Exception:
            pass
        self.ws.close()
        self._reader.join(10)


def measure(source, args):
    """
    Run the service from C{source} and the workloads against it.

    @return: C{[(step, rss MiB)]} and the answers' conditions.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = source + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.TemporaryDirectory() as dataDir:
        child = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve", dataDir],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=source,
            env=env,
        )
        try:
            info = json.loads(child.stdout.readline())
            pid = info["pid"]
            steps = [("started", rss(pid))]
            client = Client(info["port"])
            steps.append(("logged in", rss(pid)))
            pad = "r" * args.resource_size
            big = "u" * args.big_size
            for batch in (1, 2):
                client.batch(
                    [
                        "u%d-%d@%s/%s" % (batch, n, DOMAIN, pad)
                        for n in range(args.count)
                    ]
                )
                steps.append(("valid, batch %d (%d iqs)" % (batch, args.count), rss(pid)))
            for batch in (1, 2):
                client.batch(
                    ["%s%d-%d@%s" % (big, batch, n, DOMAIN) for n in range(args.big_count)]
                )
                steps.append(
                    ("oversized, batch %d (%d iqs)" % (batch, args.big_count), rss(pid))
                )
            conditions = dict(client.conditions)
            client.close()
            time.sleep(1)
            steps.append(("session closed", rss(pid)))
            return steps, conditions
        finally:
            child.stdin.close()
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", metavar="DATA_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--source", action="append", help="checkout to run the service from")
    parser.add_argument("--label", action="append", help="name of each --source in the table")
    parser.add_argument("--count", type=int, default=10000, help="iqs per valid batch")
    parser.add_argument("--resource-size", type=int, default=1000)
    parser.add_argument("--big-count", type=int, default=400, help="iqs per oversized batch")
    parser.add_argument("--big-size", type=int, default=100000)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve)
    sources = args.source or [ROOT]
    labels = args.label or []
    labels += [os.path.basename(os.path.abspath(s)) for s in sources[len(labels):]]
    results = []
    for source, label in zip(sources, labels):
        print("measuring %s (%s)..." % (label, source), file=sys.stderr, flush=True)
        results.append((label, measure(os.path.abspath(source), args)))
    width = max(len(step) for _, (steps, _) in results for step, _ in steps)
    print("RSS of the service, MiB")
    print("%-*s  %s" % (width, "step", "  ".join("%12s" % (label,) for label, _ in results)))
    for i, (step, _) in enumerate(results[0][1][0]):
        print(
            "%-*s  %s"
            % (width, step, "  ".join("%12.1f" % (steps[i][1],) for _, (steps, _) in results))
        )
    print("growth from 'logged in' to 'session closed':")
    for label, (steps, conditions) in results:
        print(
            "  %s: %+.1f MiB; answers %s"
            % (label, steps[-1][1] - steps[1][1], json.dumps(conditions, sort_keys=True))
        )


if __name__ == "__main__":
    main()
