"""
Measure what the xmppws adapter costs per stanza, next to a bare Autobahn
echo server measured in the same run.

Two servers run in child processes on 127.0.0.1, on a core of their own
when the machine has two (the client keeps the other):

    xmppws  XMPPWebSocketServerFactory(echoStreamFactory()): the Twisted
            Words echo stream of tests.helpers behind the adapter, which
            checks every message, feeds it to the XmlStream, and turns
            what the XmlStream writes back into a message;
    bare    an Autobahn WebSocketServerProtocol sending every message back
            as it came: the WebSocket layer alone.

The client, in this process, is the websockets package's synchronous
client.  Both phases run on both servers, alternately, --repeat times, and
the median of each figure is reported:

    round trip  --rounds sequential send-then-receive exchanges;
    pipelined   --messages stanzas sent by a writer thread, at most
                --window of them unanswered, while the main thread reads
                the echoes.

Besides wall-clock figures, the server process's CPU time is read from
/proc before and after each phase.  Server CPU per stanza is the figure
least disturbed by the client and by the machine, and the difference
between the two servers' is the adapter's cost.

    python bench/adapter_bench.py
    python bench/adapter_bench.py --json bench/results/run.json
    python bench/adapter_bench.py --repeat 1 --profile bench/results/xmppws.pstats

The same script is the servers' program:

    python bench/adapter_bench.py --serve xmppws --port 0

prints one JSON line with the port it listens on and serves until its
standard input closes.
"""

import argparse
import json
import math
import os
import platform
import selectors
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

INTERFACE = "127.0.0.1"
SERVERS = ("xmppws", "bare")
LABELS = {"xmppws": "xmppws", "bare": "bare autobahn"}
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

STANZA = (
    "<message xmlns='jabber:client' to='b@example.com/r' from='a@example.com/r'"
    " type='chat' id='{id:08d}'><body>{body}</body></message>"
)
TEXT = (
    "Hi! Are we still on for the review at three? I moved the notes to the "
    "shared folder and added the numbers from last week; have a look at the "
    "second table before we start, the totals changed a little. "
)

# (key, label, format): the figures of one repetition, in table order.
ROWS = [
    ("rt_median_us", "round trip: median latency (us)", "%.1f"),
    ("rt_p99_us", "round trip: p99 latency (us)", "%.1f"),
    ("rt_rate", "round trip: stanzas/s", "%.0f"),
    ("rt_cpu_us", "round trip: server CPU per stanza (us)", "%.1f"),
    ("pl_rate", "pipelined: stanzas/s", "%.0f"),
    ("pl_mbps", "pipelined: MB/s each way", "%.2f"),
    ("pl_cpu_us", "pipelined: server CPU per stanza (us)", "%.1f"),
    ("pl_busy_pct", "pipelined: server CPU busy (%)", "%.0f"),
]


class BenchAbort(Exception):
    """
    The run cannot go on: a phase overran its time, or a server failed.
    """


# The servers: each runs in a child process.


def serve(kind, port, cpu=None, profilePath=None):
    """
    Listen on 127.0.0.1, print C{{"port": ..., "pid": ..., "reactor": ...}}
    as one line on standard output and serve until standard input closes.

    @param kind: C{'xmppws'} or C{'bare'}.
    @param port: the TCP port, 0 for any free one.
    @param cpu: the CPU to run on, or L{None} for any.
    @param profilePath: where to write C{cProfile} statistics of the whole
        reactor run, or L{None} not to profile.
    """
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})

    from twisted.internet import reactor, stdio
    from twisted.internet.endpoints import serverFromString
    from twisted.internet.protocol import Protocol
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        textFileLogObserver,
    )

    globalLogBeginner.beginLoggingTo(
        [
            FilteringLogObserver(
                textFileLogObserver(sys.stderr),
                [LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)],
            )
        ],
        redirectStandardIO=False,
    )

    if kind == "xmppws":
        from tests.helpers import echoStreamFactory
        from xmppws.websocket import XMPPWebSocketServerFactory

        factory = XMPPWebSocketServerFactory(echoStreamFactory(), reactor=reactor)
    else:
        factory = bareEchoFactory(reactor)

    class StopOnEOF(Protocol):
        def connectionLost(self, reason):
            if reactor.running:
                reactor.stop()

    def listening(listeningPort):
        info = {
            "port": listeningPort.getHost().port,
            "pid": os.getpid(),
            "reactor": "%s.%s" % (type(reactor).__module__, type(reactor).__name__),
        }
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()
        stdio.StandardIO(StopOnEOF(), reactor=reactor)

    def failed(failure):
        sys.stderr.write("cannot listen: %s\n" % (failure.getErrorMessage(),))
        reactor.stop()

    endpoint = serverFromString(reactor, "tcp:%d:interface=%s" % (port, INTERFACE))
    reactor.callWhenRunning(
        lambda: endpoint.listen(factory).addCallbacks(listening, failed)
    )
    if profilePath is None:
        reactor.run()
    else:
        import cProfile

        profiler = cProfile.Profile()
        profiler.runcall(reactor.run)
        profiler.dump_stats(profilePath)


def bareEchoFactory(reactor):
    """
    An Autobahn server factory whose connections accept the C{xmpp}
    subprotocol and send every message back as it came.
    """
    from autobahn.twisted.websocket import (
        WebSocketServerFactory,
        WebSocketServerProtocol,
    )

    class EchoProtocol(WebSocketServerProtocol):
        def onConnect(self, request):
            if "xmpp" in request.protocols:
                return "xmpp"
            return None

        def onMessage(self, payload, isBinary):
            self.sendMessage(payload, isBinary)

    factory = WebSocketServerFactory(protocols=["xmpp"], reactor=reactor)
    factory.protocol = EchoProtocol
    return factory


# The client: this process.


class ServerProcess:
    """
    One server, running L{serve} in a child process.

    @ivar kind: C{'xmppws'} or C{'bare'}.
    @ivar process: the L{subprocess.Popen}.
    @ivar url: the WebSocket URL it serves.
    @ivar reactor: the name of its reactor class.
    @ivar cpu: its L{CPUClock}.
    """

    def __init__(self, kind, cpu=None, profilePath=None):
        """
        Start the server and wait until it listens.

        @raise BenchAbort: if it does not start.
        """
        command = [sys.executable, os.path.abspath(__file__), "--serve", kind]
        if cpu is not None:
            command += ["--cpu", str(cpu)]
        if profilePath is not None:
            command += ["--profile", profilePath]
        self.kind = kind
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT
        )
        info = json.loads(self._readLine(STARTUP_TIMEOUT))
        self.url = "ws://%s:%d/xmpp-websocket" % (INTERFACE, info["port"])
        self.reactor = info["reactor"]
        self.cpu = CPUClock(self.process.pid)

    def _readLine(self, timeout):
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                self.kill()
                raise BenchAbort(
                    "the %s server did not start within %d s" % (self.kind, timeout)
                )
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            raise BenchAbort(
                "the %s server exited (status %s) before listening"
                % (self.kind, self.process.returncode)
            )
        return line

    def stop(self):
        """
        Close the server's standard input, which stops it, and wait for it
        to exit (and write its profile).
        """
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process.stdout.close()

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class CPUClock:
    """
    The CPU time a process has used, read from /proc.

    The C{schedstat} of each of its threads counts nanoseconds;
    C{/proc/PID/stat} (user plus system time) counts clock ticks, usually
    10 ms, and is used where there is no C{schedstat}.

    @ivar pid: the process.
    @ivar source: C{'schedstat'} or C{'stat'}.
    """

    def __init__(self, pid):
        self.pid = pid
        self._tick = os.sysconf("SC_CLK_TCK")
        try:
            self._schedstat()
            self.source = "schedstat"
        except (OSError, ValueError, IndexError):
            self.source = "stat"

    def _schedstat(self):
        total = 0
        tasks = "/proc/%d/task" % (self.pid,)
        for task in os.listdir(tasks):
            with open(os.path.join(tasks, task, "schedstat")) as f:
                total += int(f.read().split()[0])
        return total / 1e9

    def _stat(self):
        with open("/proc/%d/stat" % (self.pid,)) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
        return (int(fields[11]) + int(fields[12])) / self._tick

    def seconds(self):
        """
        @return: the CPU time used so far, in seconds.
        @raise BenchAbort: if the process is gone.
        """
        try:
            if self.source == "schedstat":
                return self._schedstat()
            return self._stat()
        except (OSError, ValueError, IndexError):
            raise BenchAbort("server process %d is gone" % (self.pid,))


class OtherLoad:
    """
    How much CPU time processes other than the client and the servers used
    while the benchmark ran, from the machine's counters in C{/proc/stat}.
    """

    def __init__(self, servers):
        self._servers = servers
        self._tick = os.sysconf("SC_CLK_TCK")
        self._start = self._snapshot()

    def _snapshot(self):
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:9]]
        # user nice system idle iowait irq softirq steal: not idle, iowait.
        busy = (sum(values) - values[3] - values[4]) / self._tick
        times = os.times()
        ours = times.user + times.system
        ours += sum(server.cpu.seconds() for server in self._servers)
        return time.monotonic(), busy, ours

    def cpus(self):
        """
        @return: the CPUs' worth of time others used on average since this
            was created (0.25 is a quarter of one CPU).
        """
        wall0, busy0, ours0 = self._start
        wall1, busy1, ours1 = self._snapshot()
        others = (busy1 - busy0) - (ours1 - ours0)
        return max(0.0, others / (wall1 - wall0))


class Phase:
    """
    The time limit of one phase.

    @ivar name: what the phase is, for messages.
    @ivar deadline: the L{time.monotonic} time it must end by.
    """

    def __init__(self, name, timeout, runDeadline):
        """
        @param timeout: seconds the phase may take (C{--timeout}).
        @param runDeadline: when the whole run must end (C{--max-time}).
        """
        self.name = name
        self._timeout = timeout
        self._runDeadline = runDeadline
        self.deadline = min(time.monotonic() + timeout, runDeadline)

    def remaining(self):
        """
        @return: the seconds left.
        @raise BenchAbort: if none are.
        """
        left = self.deadline - time.monotonic()
        if left > 0:
            return left
        if self.deadline >= self._runDeadline:
            raise BenchAbort("%s: the run took longer than --max-time" % (self.name,))
        raise BenchAbort(
            "%s: did not finish within %g s (--timeout)" % (self.name, self._timeout)
        )


def stanzas(count, size):
    """
    Build C{count} chat messages of C{size} bytes, with ids 0, 1, ...

    @rtype: L{list} of L{bytes}
    @raise ValueError: if C{size} is too small for a message.
    """
    empty = len(STANZA.format(id=0, body=""))
    if size < empty:
        raise ValueError("--size must be at least %d bytes" % (empty,))
    body = (TEXT * (1 + (size - empty) // len(TEXT)))[: size - empty]
    return [STANZA.format(id=i, body=body).encode("ascii") for i in range(count)]


def idOf(number):
    """
    @return: the C{id} attribute of stanza C{number}, as serialised.
    """
    return b"id='%08d'" % (number,)


def receive(ws, phase, failures=()):
    """
    Receive one message, as bytes, before the phase's deadline.

    @param failures: where a writer thread puts what stopped it.
    """
    while True:
        if failures:
            raise BenchAbort("%s: sending failed: %r" % (phase.name, failures[0]))
        try:
            return ws.recv(timeout=min(phase.remaining(), 1.0), decode=False)
        except TimeoutError:
            continue


def openStream(server, ws, phase):
    """
    Check the subprotocol; on xmppws, also open the XMPP stream.
    """
    from tests.helpers import OPEN

    if ws.subprotocol != "xmpp":
        raise BenchAbort("the %s server did not accept 'xmpp'" % (server.kind,))
    if server.kind == "xmppws":
        ws.send(OPEN, text=True)
        header = receive(ws, phase)
        features = receive(ws, phase)
        if not header.startswith(b"<open") or b"features" not in features:
            raise BenchAbort("unexpected stream opening: %r %r" % (header, features))


def closeStream(server, ws, phase):
    """
    On xmppws, close the XMPP stream; the caller closes the WebSocket.
    """
    from tests.helpers import CLOSE

    if server.kind == "xmppws":
        ws.send(CLOSE, text=True)
        reply = receive(ws, phase)
        if not reply.startswith(b"<close"):
            raise BenchAbort("unexpected stream closing: %r" % (reply,))


def roundTrips(ws, messages, phase):
    """
    Send each message and wait for its echo before sending the next.

    @return: the latency of each exchange, in seconds.
    """
    latencies = []
    clock = time.perf_counter
    for i, data in enumerate(messages):
        start = clock()
        ws.send(data, text=True)
        reply = receive(ws, phase)
        latencies.append(clock() - start)
        if idOf(i) not in reply:
            raise BenchAbort("%s: echo %d is wrong: %r" % (phase.name, i, reply[:200]))
    return latencies


def pipelined(ws, messages, window, phase):
    """
    Send the messages from a writer thread, at most C{window} of them
    unanswered, while this thread reads the echoes.

    The window is there because the websockets client holds its
    connection's lock while a send blocks: a writer far ahead of the
    reader could stop the client reading, then the server (which stops
    reading while its output is full), and so itself.

    @return: the seconds from the first send to the last echo.
    """
    credit = threading.Semaphore(window)
    stop = threading.Event()
    failures = []

    def write():
        try:
            for data in messages:
                while not credit.acquire(timeout=0.5):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                ws.send(data, text=True)
        except Exception as e:
            failures.append(e)

    writer = threading.Thread(target=write, name="bench-writer", daemon=True)
    start = time.perf_counter()
    writer.start()
    try:
        for _ in messages:
            reply = receive(ws, phase, failures)
            credit.release()
        elapsed = time.perf_counter() - start
    finally:
        stop.set()
    writer.join(STOP_TIMEOUT)
    if idOf(len(messages) - 1) not in reply:
        raise BenchAbort("%s: last echo is wrong: %r" % (phase.name, reply[:200]))
    return elapsed


def percentile(values, fraction):
    """
    The nearest-rank percentile of C{values}.
    """
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def runOnce(server, options, runDeadline):
    """
    Connect to C{server}, warm up, run both phases, disconnect.

    @return: the figures of this repetition, keyed as in L{ROWS}.
    """
    from websockets.sync.client import connect

    name = LABELS[server.kind]
    setup = Phase("%s: connecting" % (name,), options.timeout, runDeadline)
    with connect(
        server.url,
        subprotocols=["xmpp"],
        compression=None,
        open_timeout=min(setup.remaining(), 10),
        proxy=None,
    ) as ws:
        try:
            openStream(server, ws, setup)
            result = measure(server, ws, options, runDeadline)
            closing = Phase("%s: closing" % (name,), options.timeout, runDeadline)
            closeStream(server, ws, closing)
        except BenchAbort:
            # A writer blocked in send() holds the lock that closing the
            # WebSocket needs: end the server first.
            server.kill()
            raise
    return result


def measure(server, ws, options, runDeadline):
    """
    Warm up, then run the round-trip and the pipelined phases on C{ws}.

    @return: the figures, keyed as in L{ROWS}.
    """
    name = LABELS[server.kind]
    if options.warmup:
        warm = Phase("%s: warm-up" % (name,), options.timeout, runDeadline)
        roundTrips(ws, stanzas(options.warmup, options.size), warm)

    messages = stanzas(options.rounds, options.size)
    phase = Phase("%s: round trip" % (name,), options.timeout, runDeadline)
    cpu = server.cpu.seconds()
    start = time.perf_counter()
    latencies = roundTrips(ws, messages, phase)
    wall = time.perf_counter() - start
    cpu = server.cpu.seconds() - cpu
    result = {
        "rt_median_us": statistics.median(latencies) * 1e6,
        "rt_p99_us": percentile(latencies, 0.99) * 1e6,
        "rt_rate": options.rounds / wall,
        "rt_cpu_us": cpu / options.rounds * 1e6,
    }

    messages = stanzas(options.messages, options.size)
    phase = Phase("%s: pipelined" % (name,), options.timeout, runDeadline)
    cpu = server.cpu.seconds()
    wall = pipelined(ws, messages, options.window, phase)
    cpu = server.cpu.seconds() - cpu
    result["pl_rate"] = options.messages / wall
    result["pl_mbps"] = options.messages * options.size / wall / 1e6
    result["pl_cpu_us"] = cpu / options.messages * 1e6
    result["pl_busy_pct"] = cpu / wall * 100
    return result


def summarise(runs):
    """
    @return: the median of each figure over the repetitions.
    """
    return {key: statistics.median(run[key] for run in runs) for key, _, _ in ROWS}


def formatTable(summary):
    """
    @return: the plain-text table of L{ROWS}: phase, xmppws, bare
        Autobahn, and their ratio.
    """
    lines = [("phase", LABELS["xmppws"], LABELS["bare"], "ratio")]
    for key, label, fmt in ROWS:
        ours, bare = summary["xmppws"][key], summary["bare"][key]
        ratio = "%.2f" % (ours / bare,) if bare else "-"
        lines.append((label, fmt % (ours,), fmt % (bare,), ratio))
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    out = []
    for line in lines:
        cells = [line[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(line[1:], widths[1:])]
        out.append("  ".join(cells))
    out.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(out)


def environment(servers):
    """
    @return: versions, machine and clock details, for the report.
    """
    import autobahn
    import twisted
    import websockets

    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        revision = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        revision = ""
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "revision": revision or None,
        "python": platform.python_version(),
        "twisted": twisted.__version__,
        "autobahn": autobahn.__version__,
        "websockets": websockets.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "reactor": servers["xmppws"].reactor,
        "cpu_clock": servers["xmppws"].cpu.source,
    }


def plot(summary, path):
    """
    Draw bar charts of the main figures as a PNG, if matplotlib is
    importable.

    @return: L{True} if the file was written.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    phases = ["round trip", "pipelined"]
    panels = [
        ("Server CPU per stanza (us)", ["rt_cpu_us", "pl_cpu_us"], phases),
        ("Round-trip latency (us)", ["rt_median_us", "rt_p99_us"], ["median", "p99"]),
        ("Stanzas per second", ["rt_rate", "pl_rate"], phases),
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(12, 4))
    width = 0.38
    for ax, (title, keys, names) in zip(axes, panels):
        positions = range(len(keys))
        for offset, kind in ((-width / 2, "xmppws"), (width / 2, "bare")):
            ax.bar(
                [p + offset for p in positions],
                [summary[kind][key] for key in keys],
                width,
                label=LABELS[kind],
            )
        ax.set_xticks(list(positions))
        ax.set_xticklabels(names)
        ax.set_title(title)
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def printProfile(path, count=10):
    """
    Print the top functions of a profile: by cumulative time, by internal
    time, and the adapter's own (modules under C{xmppws/}) by cumulative
    time.
    """
    import pstats

    stats = pstats.Stats(path, stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(count)
    stats.sort_stats("tottime").print_stats(count)
    stats.sort_stats("cumulative").print_stats(r"[/\\]xmppws[/\\]", count)


def parseArguments(argv):
    parser = argparse.ArgumentParser(
        description="Measure the xmppws adapter's cost per stanza against a "
        "bare Autobahn echo server, on 127.0.0.1."
    )
    add = parser.add_argument
    add("--rounds", type=int, default=5000,
        help="sequential round trips per repetition (default: 5000)")
    add("--messages", type=int, default=20000,
        help="stanzas per pipelined run (default: 20000)")
    add("--size", type=int, default=200,
        help="stanza size in bytes (default: 200)")
    add("--window", type=int, default=256,
        help="most unanswered stanzas when pipelining (default: 256)")
    add("--warmup", type=int, default=500,
        help="round trips on each connection before measuring (default: 500)")
    add("--repeat", type=int, default=3,
        help="repetitions, alternating the servers; medians are reported "
        "(default: 3)")
    add("--timeout", type=float, default=120.0,
        help="abort if a phase takes longer, in seconds (default: 120)")
    add("--max-time", type=float, default=900.0,
        help="abort if the whole run takes longer, in seconds (default: 900)")
    add("--json", metavar="PATH", help="also write the results here")
    add("--plot", metavar="PATH",
        help="draw a bar chart PNG here (skipped without matplotlib)")
    add("--profile", metavar="PATH",
        help="run the xmppws server under cProfile, write its statistics "
        "here and print its top functions")
    add("--no-pin", action="store_true",
        help="do not pin the client and the servers to separate CPUs")
    add("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    add("--port", type=int, default=0, help=argparse.SUPPRESS)
    add("--cpu", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    for name in ("rounds", "messages", "window", "repeat"):
        if getattr(options, name) < 1:
            parser.error("--%s must be at least 1" % (name,))
    if options.warmup < 0:
        parser.error("--warmup must not be negative")
    try:
        stanzas(1, options.size)
    except ValueError as e:
        parser.error(str(e))
    return options


def run(options):
    """
    Start both servers, run every repetition, stop the servers.

    @return: the environment and, per server, the figures of each
        repetition.
    @raise BenchAbort: if the run cannot finish.
    """
    runDeadline = time.monotonic() + options.max_time
    cpus = sorted(os.sched_getaffinity(0))
    clientCPU = serverCPU = None
    if not options.no_pin and len(cpus) >= 2:
        clientCPU, serverCPU = cpus[0], cpus[1]
        os.sched_setaffinity(0, {clientCPU})
    profilePath = os.path.abspath(options.profile) if options.profile else None

    servers = {}
    try:
        servers["xmppws"] = ServerProcess("xmppws", serverCPU, profilePath)
        servers["bare"] = ServerProcess("bare", serverCPU)
        env = environment(servers)
        env["pinned"] = serverCPU is not None
        print(
            "Python %(python)s, Twisted %(twisted)s, Autobahn %(autobahn)s, "
            "websockets %(websockets)s; %(cpus)s CPUs (%(cpu_model)s); "
            "server CPU time from /proc %(cpu_clock)s" % env
        )
        if serverCPU is None:
            where = "not pinned to CPUs"
        else:
            where = "client on CPU %d, servers on CPU %d" % (clientCPU, serverCPU)
        print(
            "%d round trips, %d pipelined stanzas (window %d), %d-byte stanzas, "
            "%d repetitions; %s"
            % (
                options.rounds,
                options.messages,
                options.window,
                options.size,
                options.repeat,
                where,
            )
        )
        load = OtherLoad(servers.values())
        runs = {kind: [] for kind in SERVERS}
        for n in range(options.repeat):
            for kind in SERVERS:
                runs[kind].append(runOnce(servers[kind], options, runDeadline))
            sys.stderr.write("repetition %d of %d done\n" % (n + 1, options.repeat))
        env["other_load_cpus"] = load.cpus()
    except BaseException:
        for server in servers.values():
            server.kill()
        raise
    for server in servers.values():
        server.stop()
    return env, runs


def report(options, env, runs):
    """
    Print the table, and write the JSON, the chart and the profile
    summary asked for.
    """
    summary = {kind: summarise(runs[kind]) for kind in SERVERS}
    print()
    print(formatTable(summary))
    print()
    for key, name in (("rt_cpu_us", "round trip"), ("pl_cpu_us", "pipelined")):
        print(
            "Adapter cost, %s: %.1f us of server CPU per stanza over bare Autobahn"
            % (name, summary["xmppws"][key] - summary["bare"][key])
        )
    print(
        "Other processes used %.2f CPUs on average during the run%s"
        % (
            env["other_load_cpus"],
            ": the figures may be disturbed" if env["other_load_cpus"] > 0.1 else "",
        )
    )
    if options.profile:
        print("(the xmppws server ran under cProfile: its figures are inflated)")

    if options.json:
        directory = os.path.dirname(options.json)
        if directory:
            os.makedirs(directory, exist_ok=True)
        keys = ("rounds", "messages", "size", "window", "warmup", "repeat")
        with open(options.json, "w") as f:
            json.dump(
                {
                    "environment": env,
                    "options": {key: getattr(options, key) for key in keys},
                    "summary": summary,
                    "runs": runs,
                },
                f,
                indent=2,
            )
            f.write("\n")
        print("Results written to %s" % (options.json,))
    if options.plot:
        if plot(summary, options.plot):
            print("Chart written to %s" % (options.plot,))
        else:
            print("No chart: matplotlib is not importable")
    if options.profile:
        print()
        print("xmppws server profile (%s):" % (options.profile,))
        printProfile(options.profile)


def main(argv=None):
    options = parseArguments(argv)
    if options.serve:
        serve(options.serve, options.port, options.cpu, options.profile)
        return 0
    if options.profile:
        directory = os.path.dirname(os.path.abspath(options.profile))
        os.makedirs(directory, exist_ok=True)
    try:
        env, runs = run(options)
    except BenchAbort as e:
        sys.stderr.write("adapter_bench: aborted: %s\n" % (e,))
        return 1
    report(options, env, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
