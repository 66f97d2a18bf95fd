"""
xmppws side by side with Prosody and ejabberd, in one run on one machine
with one load generator, and the claim of the draft xmppws implements
("a WebSocket binding for XMPP provides higher performance than the
current HTTP binding") measured against Prosody's BOSH.

    python bench/xmpp_bench.py                       # everything, < 30 min
    python bench/xmpp_bench.py --quick               # small counts, ~3 min
    python bench/xmpp_bench.py --servers xmppws,prosody --workloads throughput
    python bench/xmpp_bench.py --publish bench/results/latest.json

Every server is started by the bench (C{tests/peers.py}) on loopback
ports with a generated configuration, accounts created in bulk and no
rate limit or shaper, and stopped at the end.  The workloads, for each
server in turn (Prosody first, so that its saturation rate is known to
the others):

    memory      server RSS with 1k, 5k and 10k idle authenticated
                WebSocket sessions, on the freshly started server;
    throughput  N pairs of WebSocket sessions messaging each other at a
                fixed offered rate, stepped up until p99 latency passes
                the limit (100 ms) or delivery falls behind; the best step
                and an overload step (1.5x the best rate, and 1.5x
                Prosody's) are repeated to show their spread;
    sessions    sessions set up (connect, SASL, bind, presence) and
                closed, at a fixed concurrency, per SASL mechanism;
                (the server "gateway" is C{twistd xmppws --upstream} in
                front of Prosody, both on the server's CPUs, through the
                same workloads; its CPU per message is given for the
                gateway alone and with Prosody behind it);
    bosh        the throughput and session workloads again over Prosody's
                BOSH (XEP-0124/0206), for the comparison with WebSocket.

The load generator (C{bench/xmppload.py}) runs in --workers processes
pinned to other CPUs than the server when the machine has two or more.
Each step records the server's CPU time (C{/proc/PID/stat}, all its
threads), the generator's own, and what the rest of the machine used
(C{/proc/stat}): a step where other processes used more than 0.15 CPU is
flagged C{disturbed} and run again once; one where the generator was
busy more than 85% of its CPUs or fell behind its schedule is flagged
C{generator-limited}.

Results go to --out (C{bench/results/}, ignored by git) as JSON and PNG
plots; C{--publish JSON} renders a results file into the documentation
(C{docs/performance-results.inc} and C{docs/_static/performance/}).
"""

import argparse
import json
import multiprocessing
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from array import array

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for path in (ROOT, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

import xmppload  # noqa: E402
from tests import peers  # noqa: E402

PASSWORD = "bench-password"
SERVERS = ("prosody", "xmppws", "ejabberd", "gateway")
WORKLOADS = ("memory", "throughput", "sessions", "bosh")
MECHANISMS = ("SCRAM-SHA-1", "SCRAM-SHA-256", "PLAIN")
CLOCK = os.sysconf("SC_CLK_TCK")
DISTURBED = 0.15  # CPUs used by other processes during a step
GENERATOR_BUSY = 0.85
GENERATOR_LAG = 0.020  # seconds behind schedule at the 99th percentile


class BenchAbort(Exception):
    """
    The run cannot go on (a server or worker failed, or time ran out).
    """


# Measuring the machine.


def processCPU(pid):
    """
    CPU seconds (user and system, all threads) of a process so far, or
    L{None} if it is gone.
    """
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK


def processRSS(pid):
    """
    Resident memory of a process in bytes.
    """
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise BenchAbort("no VmRSS for %d" % pid)


def machineCPU():
    """
    CPU seconds all processes used so far (not idle, not iowait).
    """
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / CLOCK


class Meter:
    """
    CPU time of the server, of the generator and of everything else,
    between two calls.
    """

    def __init__(self, serverPid, generatorPids, upstreamPids=()):
        """
        @param upstreamPids: servers behind the measured one (a gateway's
            upstream): their CPU counts as the server's, and the measured
            one's own is also given apart (C{frontCPU}).
        """
        self.serverPid = serverPid
        self.upstreamPids = list(upstreamPids)
        self.generatorPids = list(generatorPids) + [os.getpid()]

    def sample(self):
        front = processCPU(self.serverPid) or 0.0
        return (
            time.monotonic(),
            front + sum(processCPU(p) or 0.0 for p in self.upstreamPids),
            sum(processCPU(p) or 0.0 for p in self.generatorPids),
            machineCPU(),
            os.getloadavg()[0],
            front,
        )

    @staticmethod
    def between(a, b):
        wall = b[0] - a[0]
        server = b[1] - a[1]
        generator = b[2] - a[2]
        other = max(0.0, (b[3] - a[3]) - server - generator)
        return {
            "wall": wall,
            "serverCPU": server,
            "frontCPU": b[5] - a[5],
            "generatorCPU": generator,
            "otherCPUs": other / wall if wall > 0 else 0.0,
            "loadavg": b[4],
        }


def percentile(ordered, q):
    if not len(ordered):
        return None
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# The generator: worker processes.


class Generator:
    """
    The worker processes driving one target.
    """

    def __init__(self, kind, url, domain, count, cpus, timeout):
        context = multiprocessing.get_context("fork")
        self.timeout = timeout
        self.workers = []
        for _ in range(count):
            parent, child = context.Pipe()
            process = context.Process(
                target=xmppload.worker,
                args=(child, kind, url, domain, PASSWORD, cpus),
                daemon=True,
            )
            process.start()
            child.close()
            self.workers.append((process, parent))

    @property
    def pids(self):
        return [p.pid for p, _ in self.workers]

    def send(self, name, arguments):
        """
        Send a command to every worker; C{arguments} is one dict per
        worker.
        """
        for (_, pipe), args in zip(self.workers, arguments):
            pipe.send((name, args))

    def receive(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        results = []
        for process, pipe in self.workers:
            left = deadline - time.monotonic()
            if not pipe.poll(max(0.0, left)):
                raise BenchAbort("a generator worker did not answer in time")
            try:
                status, result = pipe.recv()
            except EOFError:
                raise BenchAbort("a generator worker died (exit %s)" % process.exitcode)
            if status != "ok":
                raise BenchAbort("a generator worker failed:\n" + result)
            results.append(result)
        return results

    def call(self, name, arguments, timeout=None):
        self.send(name, arguments)
        return self.receive(timeout)

    def close(self):
        for process, pipe in self.workers:
            try:
                pipe.send(("quit", {}))
            except OSError:
                pass
        for process, pipe in self.workers:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)
            pipe.close()
        self.workers = []


def split(items, parts):
    """
    C{items} in C{parts} nearly equal slices, in order.
    """
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out


# The workloads.


class Run:
    """
    One invocation: options, deadline, and the results so far.
    """

    def __init__(self, options):
        self.options = options
        self.started = time.monotonic()
        self.deadline = self.started + options.max_time
        cpus = sorted(os.sched_getaffinity(0))
        if options.pin and len(cpus) >= 2:
            self.serverCPUs = {cpus[-1]}
            self.generatorCPUs = set(cpus[:-1])
        else:
            self.serverCPUs = None
            self.generatorCPUs = None
        self.results = {
            "environment": environment(self),
            "options": {k: v for k, v in vars(options).items() if k not in ("publish",)},
            "targets": {},
            "notes": [],
        }

    def left(self):
        return self.deadline - time.monotonic()

    def checkTime(self, what):
        if self.left() <= 0:
            raise BenchAbort("out of time (--max-time %d s) before %s" % (self.options.max_time, what))

    def say(self, message):
        print("[%6.1fs] %s" % (time.monotonic() - self.started, message), flush=True)


def settle(pid, seconds=10.0, quiet=0.05):
    """
    Wait until a server has (almost) stopped using CPU, at most C{seconds}.
    """
    deadline = time.monotonic() + seconds
    last = processCPU(pid)
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = processCPU(pid)
        if now is None or last is None or now - last <= quiet * 0.1:
            return
        last = now


def throughputStep(run, generator, meter, rate, label=None):
    """
    One step of the message workload at C{rate} messages per second.
    """
    o = run.options
    t0 = time.monotonic() + 0.3
    start = t0 + o.warmup
    end = start + o.duration
    count = len(generator.workers)
    generator.send("step", [
        dict(rate=rate / count, t0=t0, warmup=o.warmup, duration=o.duration,
             drain=o.drain, tick=0.002)
        for _ in range(count)
    ])
    time.sleep(max(0.0, start - time.monotonic()))
    before = meter.sample()
    time.sleep(max(0.0, end - time.monotonic()))
    after = meter.sample()
    results = generator.receive(o.warmup + o.duration + o.drain + 60)
    latencies = array("q")
    for r in results:
        latencies.frombytes(r["latencies"])
    ordered = sorted(latencies)
    window = Meter.between(before, after)
    receivedWindow = sum(r["receivedWindow"] for r in results)
    sentWindow = sum(r["sentWindow"] for r in results)
    delivered = receivedWindow / o.duration
    ms = lambda ns: None if ns is None else ns / 1e6  # noqa: E731
    generatorCPU = sum(r["cpu"] for r in results)
    generatorCPUs = len(run.generatorCPUs) if run.generatorCPUs else os.cpu_count()
    generatorBusy = window["generatorCPU"] / o.duration / generatorCPUs
    lag = max(r["lagP99"] for r in results)
    step = {
        "offered": rate,
        "delivered": delivered,
        "sent": sentWindow,
        "lost": max(0, sentWindow - len(ordered)),
        "p50": ms(percentile(ordered, 0.50)),
        "p95": ms(percentile(ordered, 0.95)),
        "p99": ms(percentile(ordered, 0.99)),
        "max": ms(ordered[-1] if ordered else None),
        "serverCPUPerMessage": (window["serverCPU"] / receivedWindow * 1e6) if receivedWindow else None,
        "frontCPUPerMessage": (window["frontCPU"] / receivedWindow * 1e6)
        if receivedWindow and meter.upstreamPids else None,
        "serverBusy": window["serverCPU"] / o.duration,
        "bytesPerMessage": (sum(r["bytesIn"] + r["bytesOut"] for r in results) / receivedWindow)
        if receivedWindow else None,
        "generatorCPUPerMessage": (generatorCPU / receivedWindow * 1e6) if receivedWindow else None,
        "generatorBusy": generatorBusy,
        "generatorLagP99": lag,
        "generatorLimited": generatorBusy > GENERATOR_BUSY or lag > GENERATOR_LAG,
        "otherCPUs": window["otherCPUs"],
        "loadavg": window["loadavg"],
        "disturbed": window["otherCPUs"] > DISTURBED,
        "errors": sum((r.get("errors") or [] for r in results), [])[:3],
    }
    if label:
        step["label"] = label
    step["ok"] = (
        step["p99"] is not None
        and step["p99"] < o.p99_limit
        and delivered >= 0.97 * rate
        and step["lost"] <= 0.001 * sentWindow
    )
    flags = [f for f in ("disturbed", "generatorLimited") if step[f]]
    run.say(
        "  %-8s offered %6d/s delivered %8.0f/s p50 %7.1f p99 %7.1f max %7.1f ms  "
        "server %5.1f us/msg%s busy %3.0f%%  gen busy %3.0f%%  other %.2f CPU%s"
        % (
            label or "step", rate, delivered, step["p50"] or 0, step["p99"] or 0, step["max"] or 0,
            step["serverCPUPerMessage"] or 0,
            " (gateway %5.1f)" % step["frontCPUPerMessage"]
            if step["frontCPUPerMessage"] is not None else "",
            100 * step["serverBusy"], 100 * generatorBusy,
            step["otherCPUs"], (" [" + ", ".join(flags) + "]") if flags else "",
        )
    )
    settle(meter.serverPid, o.drain)
    return step


def measuredStep(run, generator, meter, rate, label=None):
    """
    A step, run once more when other processes disturbed it; every try
    is kept, the last one counts.
    """
    step = throughputStep(run, generator, meter, rate, label)
    if step["disturbed"] and run.options.retries and run.left() > 60:
        retry = throughputStep(run, generator, meter, rate, (label or "step") + " again")
        retry["previous"] = step
        step = retry
    return step


def summarise(runs):
    """
    Median and spread of repeated steps.
    """
    def spread(key):
        values = [r[key] for r in runs if r.get(key) is not None]
        if not values:
            return None
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}

    return {
        "offered": runs[0]["offered"],
        "runs": runs,
        "delivered": spread("delivered"),
        "p50": spread("p50"),
        "p99": spread("p99"),
        "serverCPUPerMessage": spread("serverCPUPerMessage"),
        "frontCPUPerMessage": spread("frontCPUPerMessage"),
        "bytesPerMessage": spread("bytesPerMessage"),
        "ok": sum(1 for r in runs if r["ok"]) * 2 > len(runs),
        "disturbed": any(r["disturbed"] for r in runs),
        "generatorLimited": any(r["generatorLimited"] for r in runs),
    }


def throughput(run, target, generator, meter, commonOverload=None):
    """
    The message workload: step up, then repeat the best step and the
    overload steps.
    """
    o = run.options
    users = ["u%d" % i for i in range(2 * o.pairs)]
    run.say("%s: connecting %d pairs" % (target["name"], o.pairs))
    connected = generator.call("connect", [
        dict(users=part, mechanism="SCRAM-SHA-1", concurrency=50, paired=True)
        for part in split(users, len(generator.workers))
    ], timeout=120)
    failed = sum(r["failed"] for r in connected)
    if failed:
        raise BenchAbort("%s: %d sessions failed to log in: %s" % (
            target["name"], failed, sum((r["errors"] for r in connected), [])[:3]))
    result = {"pairs": o.pairs, "steps": [], "best": None, "overload": None}
    try:
        best = failed = None
        for rate in o.rates:
            run.checkTime("the %d/s step" % rate)
            step = measuredStep(run, generator, meter, rate)
            result["steps"].append(step)
            if not step["ok"]:
                failed = step
                break
            best = step
        # Halve the interval between the last good and the first bad
        # step --refine times, so that the rates' spacing does not decide
        # the result.
        low = best["offered"] if best else 0
        for _ in range(o.refine if failed else 0):
            rate = int(round((low + failed["offered"]) / 2.0, -2))
            if rate <= low or rate >= failed["offered"] or run.left() < 60:
                break
            step = measuredStep(run, generator, meter, rate, "refine")
            result["steps"].append(step)
            if step["ok"]:
                best, low = step, rate
            else:
                failed = step
        if best is not None and o.repeats > 1:
            runs = [best] + [
                throughputStep(run, generator, meter, best["offered"], "best again")
                for _ in range(o.repeats - 1)
                if run.left() > 60
            ]
            result["best"] = summarise(runs)
        elif best is not None:
            result["best"] = summarise([best])
        if best is not None:
            result["maxRate"] = _median([r["delivered"] for r in result["best"]["runs"] if r["ok"]])
            overloads = []
            rates = [round(1.5 * result["maxRate"], -2)]
            if commonOverload and abs(commonOverload - rates[0]) > 0.05 * rates[0]:
                rates.append(commonOverload)
            for rate in rates:
                runs = []
                for i in range(max(1, o.repeats)):
                    if run.left() < 60:
                        break
                    runs.append(throughputStep(run, generator, meter, rate, "overload"))
                if runs:
                    entry = summarise(runs)
                    entry["common"] = rate == commonOverload
                    overloads.append(entry)
            result["overload"] = overloads
        else:
            result["maxRate"] = None
    finally:
        # Close the sessions properly: BOSH sessions outlive their TCP
        # connections at the server until they time out.
        generator.call("close", [dict(gently=True)] * len(generator.workers), timeout=120)
        settle(meter.serverPid)
    return result


def sessions(run, target, generator, meter, mechanisms=None):
    """
    The session workload: set up and close sessions at a fixed
    concurrency, per SASL mechanism.
    """
    o = run.options
    users = ["c%d" % i for i in range(o.session_users)]
    out = {"concurrency": o.session_concurrency, "mechanisms": {}}
    for mechanism in mechanisms or o.mechanisms:
        run.checkTime("the %s sessions" % mechanism)
        parts = split(list(range(o.session_concurrency)), len(generator.workers))
        userParts = split(users, len(generator.workers))
        before = meter.sample()
        results = generator.call("churn", [
            dict(users=userParts[i], mechanism=mechanism, concurrency=len(parts[i]),
                 duration=o.session_seconds)
            for i in range(len(generator.workers))
        ], timeout=o.session_seconds + 120)
        after = meter.sample()
        window = Meter.between(before, after)
        setup, closing = array("d"), array("d")
        for r in results:
            setup.frombytes(r["setup"])
            closing.frombytes(r["close"])
        unsupported = next((r["unsupported"] for r in results if r["unsupported"]), None)
        setupSorted = sorted(setup)
        n = len(setup)
        entry = {
            "sessions": n,
            "rate": n / window["wall"] if window["wall"] else None,
            "setupP50": percentile(setupSorted, 0.5) * 1e3 if n else None,
            "setupP99": percentile(setupSorted, 0.99) * 1e3 if n else None,
            "closeP50": percentile(sorted(closing), 0.5) * 1e3 if n else None,
            "serverCPUPerSession": window["serverCPU"] / n * 1e3 if n else None,
            "frontCPUPerSession": window["frontCPU"] / n * 1e3
            if n and meter.upstreamPids else None,
            "bytesPerSession": sum(r["bytesIn"] + r["bytesOut"] for r in results) / n if n else None,
            "failed": sum(r["failed"] for r in results),
            "errors": sum((r["errors"] for r in results), [])[:3],
            "unsupported": unsupported,
            "generatorBusy": window["generatorCPU"] / window["wall"] / (
                len(run.generatorCPUs) if run.generatorCPUs else os.cpu_count()),
            "otherCPUs": window["otherCPUs"],
            "disturbed": window["otherCPUs"] > DISTURBED,
        }
        entry["generatorLimited"] = entry["generatorBusy"] > GENERATOR_BUSY
        out["mechanisms"][mechanism] = entry
        if unsupported and not n:
            run.say("  %-13s not offered" % mechanism)
        else:
            run.say(
                "  %-13s %6.0f sessions/s  set-up p50 %6.1f p99 %6.1f ms  server %5.2f ms/session"
                "  %d failed%s" % (
                    mechanism, entry["rate"] or 0, entry["setupP50"] or 0, entry["setupP99"] or 0,
                    entry["serverCPUPerSession"] or 0, entry["failed"],
                    " [disturbed]" if entry["disturbed"] else ""))
        settle(meter.serverPid)
    return out


def memory(run, target, generator, meter):
    """
    The memory workload: RSS of the server with idle sessions.
    """
    o = run.options
    pid = meter.serverPid
    count = len(generator.workers)
    # Warm up: a few sessions in and out, so that one-off allocations
    # (modules loaded on first use, caches) are in the baseline.
    warm = ["u%d" % i for i in range(min(50, max(o.memory_levels)))]
    generator.call("connect", [dict(users=p, mechanism="SCRAM-SHA-1", concurrency=25, paired=False)
                               for p in split(warm, count)], timeout=120)
    generator.call("close", [dict(gently=True)] * count, timeout=120)
    settle(pid)
    time.sleep(o.settle)
    baseline = processRSS(pid)
    levels = []
    connected = 0
    try:
        for level in o.memory_levels:
            run.checkTime("%d idle sessions" % level)
            users = ["u%d" % i for i in range(connected, level)]
            t = time.monotonic()
            results = generator.call("connect", [
                dict(users=p, mechanism="SCRAM-SHA-1", concurrency=o.connect_concurrency,
                     paired=False)
                for p in split(users, count)
            ], timeout=600)
            failed = sum(r["failed"] for r in results)
            connected += sum(r["ok"] for r in results)
            settle(pid)
            time.sleep(o.settle)
            rss = processRSS(pid)
            entry = {
                "sessions": connected,
                "failed": failed,
                "errors": sum((r["errors"] for r in results), [])[:3],
                "rss": rss,
                "perSession": (rss - baseline) / connected if connected else None,
                "connectSeconds": time.monotonic() - t,
            }
            if levels:
                previous = levels[-1]
                added = connected - previous["sessions"]
                entry["marginalPerSession"] = (rss - previous["rss"]) / added if added else None
            levels.append(entry)
            run.say("  %6d idle sessions: RSS %7.1f MB, %5.1f KB per session%s" % (
                connected, rss / 1e6, (entry["perSession"] or 0) / 1024,
                ", %d failed" % failed if failed else ""))
            if failed:
                break
    finally:
        generator.call("close", [dict(gently=False)] * count, timeout=120)
        settle(pid, 20)
    return {"baseline": baseline, "levels": levels}


# Servers.


class GatewayTarget:
    """
    C{twistd xmppws --upstream} in front of Prosody, started and stopped
    together, both on the server's CPUs; the gateway relays to Prosody
    with STARTTLS verified against Prosody's certificate, as it would in
    production.  Seen by the workloads as one server: the gateway's
    WebSocket URL, the gateway's process (C{pid}) and Prosody's behind it
    (C{upstreamPids}).
    """

    name = "gateway"
    boshURL = None

    def __init__(self, directory, cpus=None, **upstreamOptions):
        self.upstream = peers.Prosody(os.path.join(directory, "upstream"), tls=True, cpus=cpus,
                                      **upstreamOptions)
        self.domain = self.upstream.domain
        self.gateway = peers.Gateway(
            os.path.join(directory, "gateway"),
            ["%s=tcp:host=127.0.0.1:port=%d:ca=%s" % (
                self.domain, self.upstream.c2sPort, self.upstream.certPath)],
            cpus=cpus,
        )

    def addUsers(self, usernames, password):
        self.upstream.addUsers(usernames, password)

    def start(self, timeout=peers.START_TIMEOUT):
        self.upstream.start(timeout)
        try:
            self.gateway.start(timeout)
        except BaseException:
            self.upstream.stop()
            raise
        return self

    def stop(self):
        try:
            self.gateway.stop()
        finally:
            self.upstream.stop()

    @property
    def process(self):
        return self.gateway.process

    @property
    def pid(self):
        return self.gateway.pid

    @property
    def upstreamPids(self):
        return [self.upstream.pid]

    @property
    def webSocketURL(self):
        return self.gateway.webSocketURL

    def version(self):
        return "%s to Prosody %s" % (self.gateway.version(), self.upstream.version())

    def logTail(self, lines=40):
        return self.gateway.logTail(lines) + "\n" + self.upstream.logTail(lines)


def startServer(run, name, directory):
    """
    Start one server with the accounts every workload needs.
    """
    o = run.options
    cls = {"xmppws": peers.Xmppws, "prosody": peers.Prosody, "ejabberd": peers.Ejabberd,
           "gateway": GatewayTarget}[name]
    extra = {}
    if name == "xmppws" and o.xmppws_args:
        extra["extraArgs"] = o.xmppws_args
    if name in ("prosody", "gateway") and o.prosody_modules:
        extra["modules"] = o.prosody_modules
    server = cls(os.path.join(directory, name), cpus=run.serverCPUs, **extra)
    count = max([2 * o.pairs] + ([max(o.memory_levels)] if "memory" in o.workloads else []))
    users = ["u%d" % i for i in range(count)] + ["c%d" % i for i in range(o.session_users)]
    t = time.monotonic()
    server.addUsers(users, PASSWORD)
    server.start(timeout=60)
    files = openFilesLimit(server.pid)
    run.say("%s %s started, %d accounts, in %.1f s (pid %d, %s open files)" % (
        name, server.version() or "", len(users), time.monotonic() - t, server.pid, files))
    if "memory" in o.workloads and files is not None and files < max(o.memory_levels) + 100:
        run.results["notes"].append(
            "%s may open only %d files: too few for %d sessions" % (name, files, max(o.memory_levels)))
    return server


def openFilesLimit(pid):
    """
    The soft limit of open files of a process, or L{None}.
    """
    try:
        with open("/proc/%d/limits" % pid) as f:
            for line in f:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
    except (OSError, ValueError):
        return None


def runServer(run, name, directory):
    """
    Every workload on one server (and on its BOSH endpoint when asked).
    """
    o = run.options
    server = startServer(run, name, directory)
    targets = run.results["targets"]
    try:
        entry = targets[name] = {
            "server": name, "transport": "websocket", "version": server.version(),
            "url": server.webSocketURL,
        }
        for workload in ("memory", "throughput", "sessions"):
            if workload not in o.workloads:
                continue
            run.checkTime("%s on %s" % (workload, name))
            generator = Generator("ws", server.webSocketURL, server.domain, o.workers,
                                  run.generatorCPUs, 120)
            meter = Meter(server.pid, generator.pids, getattr(server, "upstreamPids", ()))
            try:
                run.say("%s: %s" % (name, workload))
                if workload == "memory":
                    entry["memory"] = memory(run, entry, generator, meter)
                elif workload == "throughput":
                    common = None
                    prosody = targets.get("prosody", {}).get("throughput", {})
                    if name != "prosody" and prosody.get("maxRate"):
                        common = round(1.5 * prosody["maxRate"], -2)
                    entry["throughput"] = throughput(
                        run, {"name": name}, generator, meter, common)
                else:
                    entry["sessions"] = sessions(run, entry, generator, meter)
            finally:
                generator.close()
            if workload == "memory" and set(o.workloads) - {"memory"}:
                # The other workloads get a fresh server, not one that
                # has just dropped thousands of connections.
                server.stop()
                server.start(timeout=60)
                run.say("%s restarted (pid %d)" % (name, server.pid))
        if ("sessions" in o.workloads and "SCRAM-SHA-256" in o.mechanisms
                and name in SHA256 and (entry.get("sessions") or {}).get("mechanisms", {}).get(
                    "SCRAM-SHA-256", {}).get("unsupported")):
            sha256Sessions(run, name, directory, entry)
        if "bosh" in o.workloads and name in o.bosh and server.boshURL:
            boshName = name + "-bosh"
            bosh = targets[boshName] = {
                "server": name, "transport": "bosh", "version": server.version(),
                "url": server.boshURL,
            }
            for workload in ("throughput", "sessions"):
                run.checkTime("BOSH %s on %s" % (workload, name))
                generator = Generator("bosh", server.boshURL, server.domain, o.workers,
                                      run.generatorCPUs, 120)
                meter = Meter(server.pid, generator.pids)
                try:
                    run.say("%s: %s over BOSH" % (name, workload))
                    if workload == "throughput":
                        bosh["throughput"] = throughput(run, {"name": boshName}, generator, meter)
                    else:
                        saved = o.mechanisms
                        o.mechanisms = [m for m in saved if m != "SCRAM-SHA-256"] or saved
                        try:
                            bosh["sessions"] = sessions(run, bosh, generator, meter)
                        finally:
                            o.mechanisms = saved
                finally:
                    generator.close()
    finally:
        if server.process is not None and server.process.poll() is not None:
            run.results["notes"].append("%s exited during the run with status %s" % (
                name, server.process.returncode))
        try:
            logTail = server.logTail(20)
        except OSError:
            logTail = ""
        server.stop()
        if logTail.strip():
            targets.setdefault(name, {})["logTail"] = logTail[-4000:]


# Servers that keep keys for one SCRAM hash only, and how to make it
# SHA-256.
SHA256 = {
    "prosody": dict(passwordHash="SHA-256"),
    "ejabberd": dict(scramHash="sha256"),
    "gateway": dict(passwordHash="SHA-256"),
}


def sha256Sessions(run, name, directory, entry):
    """
    The SCRAM-SHA-256 sessions of a server that offers one SCRAM variant
    (SHA-1 by default): on a second instance configured for SHA-256.
    """
    o = run.options
    cls = {"prosody": peers.Prosody, "ejabberd": peers.Ejabberd, "gateway": GatewayTarget}[name]
    server = cls(os.path.join(directory, name + "-sha256"), cpus=run.serverCPUs, **SHA256[name])
    try:
        server.addUsers(["c%d" % i for i in range(o.session_users)], PASSWORD)
        server.start(timeout=60)
        run.say("%s: sessions with SCRAM-SHA-256 (an instance storing SHA-256 keys, pid %d)"
                % (name, server.pid))
        generator = Generator("ws", server.webSocketURL, server.domain, o.workers,
                              run.generatorCPUs, 120)
        try:
            result = sessions(run, entry, generator,
                              Meter(server.pid, generator.pids,
                                    getattr(server, "upstreamPids", ())),
                              ["SCRAM-SHA-256"])
        finally:
            generator.close()
        figures = result["mechanisms"]["SCRAM-SHA-256"]
        figures["instance"] = "storing SHA-256 keys (%s)" % ", ".join(
            "%s=%s" % item for item in SHA256[name].items())
        entry["sessions"]["mechanisms"]["SCRAM-SHA-256"] = figures
    finally:
        server.stop()


def environment(run):
    """
    The machine, the versions and the date, for the report.
    """
    import twisted
    import autobahn

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
        with open("/proc/meminfo") as f:
            memTotal = int(f.readline().split()[1]) * 1024
    except (OSError, ValueError):
        memTotal = None
    try:
        import uvloop
        loop = "uvloop " + uvloop.__version__
    except ImportError:
        loop = "asyncio"
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "revision": peers._gitDescribe(),
        "machine": {
            "cpu": model,
            "cpus": os.cpu_count(),
            "memory": memTotal,
            "kernel": platform.release(),
            "loadavgAtStart": os.getloadavg(),
        },
        "pinning": {
            "server": sorted(run.serverCPUs) if run.serverCPUs else None,
            "generator": sorted(run.generatorCPUs) if run.generatorCPUs else None,
        },
        "versions": {
            "python": platform.python_version(),
            "twisted": twisted.__version__,
            "autobahn": autobahn.__version__,
            "prosody": peers.debianVersion("prosody"),
            "gateway": "twistd xmppws --upstream (this revision) to Prosody",
            "ejabberd": peers.debianVersion("ejabberd"),
            "erlang": peers.debianVersion("erlang-base"),
            "lua": peers.debianVersion("lua5.4"),
        },
        "generator": {"loop": loop, "workers": run.options.workers},
    }


# Command line.


QUICK = dict(
    rates=[1000, 2000, 4000, 6000, 8000, 10000, 12000],
    pairs=20, warmup=1.0, duration=2.0, drain=3.0, repeats=2,
    session_seconds=2.0, session_concurrency=10, memory_levels=[500, 1000],
)
SMOKE = dict(
    rates=[200], pairs=2, warmup=0.2, duration=0.3, drain=1.0, repeats=1, retries=0, refine=0,
    session_seconds=0.3, session_concurrency=2, session_users=10, memory_levels=[10],
    workers=1, connect_concurrency=10, settle=0.2,
)


def options(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    comma = lambda kind: lambda text: [kind(x) for x in text.split(",") if x]  # noqa: E731
    p.add_argument("--servers", type=comma(str), default=list(SERVERS),
                   help="servers to run, in this order (default: %(default)s)")
    p.add_argument("--workloads", type=comma(str), default=list(WORKLOADS),
                   help="workloads to run (default: %(default)s)")
    p.add_argument("--bosh", type=comma(str), default=["prosody"],
                   help="servers whose BOSH endpoint is measured too (default: %(default)s)")
    p.add_argument("--rates", type=comma(int),
                   default=[500, 1000, 2000, 4000, 6000, 8000, 10000, 12000, 14000, 16000, 20000],
                   help="offered message rates to step through, per second")
    p.add_argument("--pairs", type=int, default=50, help="pairs of messaging sessions")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds before each measurement")
    p.add_argument("--duration", type=float, default=5.0, help="seconds measured per step")
    p.add_argument("--drain", type=float, default=5.0,
                   help="seconds allowed for the last messages of a step to arrive")
    p.add_argument("--refine", type=int, default=2,
                   help="steps halving the interval between the best and the first failed rate")
    p.add_argument("--repeats", type=int, default=3,
                   help="runs of the best step and of each overload step")
    p.add_argument("--retries", type=int, default=1,
                   help="runs more of a step that other processes disturbed")
    p.add_argument("--p99-limit", type=float, default=100.0, help="latency limit, ms")
    p.add_argument("--mechanisms", type=comma(str), default=list(MECHANISMS))
    p.add_argument("--session-concurrency", type=int, default=20)
    p.add_argument("--session-seconds", type=float, default=5.0)
    p.add_argument("--session-users", type=int, default=200)
    p.add_argument("--memory-levels", type=comma(int), default=[1000, 5000, 10000])
    p.add_argument("--connect-concurrency", type=int, default=50,
                   help="logins in flight per worker when opening idle sessions")
    p.add_argument("--settle", type=float, default=1.0,
                   help="seconds to wait before reading a server's RSS")
    p.add_argument("--workers", type=int, default=2, help="load generator processes")
    p.add_argument("--no-pin", dest="pin", action="store_false",
                   help="do not pin the server and the generator to separate CPUs")
    p.add_argument("--max-time", type=float, default=1800.0,
                   help="stop (keeping what was measured) after this many seconds")
    p.add_argument("--out", default=os.path.join(HERE, "results"),
                   help="directory for the JSON results and the plots")
    p.add_argument("--no-plots", dest="plots", action="store_false")
    p.add_argument("--keep", action="store_true",
                   help="keep the servers' directories (logs, data) after the run")
    p.add_argument("--xmppws-args", type=lambda text: text.split(), default=[],
                   help="more options for twistd xmppws, as one string (such as "
                        "'--no-archive' to measure the message archive's cost)")
    p.add_argument("--prosody-modules", type=comma(str), default=[],
                   help="more Prosody modules to enable (such as 'mam', to compare with "
                        "xmppws's message archive)")
    p.add_argument("--quick", action="store_true", help="small counts: a few minutes")
    p.add_argument("--smoke", action="store_true", help="tiny counts: seconds (for the tests)")
    p.add_argument("--publish", metavar="JSON",
                   help="render this results file into docs/ and exit")
    parsed = p.parse_args(argv)
    given = {a.dest for a in p._actions if any(s in (argv or sys.argv[1:]) for s in a.option_strings)}
    for preset, flag in ((QUICK, parsed.quick), (SMOKE, parsed.smoke)):
        if flag:
            for key, value in preset.items():
                if key not in given:
                    setattr(parsed, key, value)
    for name in parsed.servers:
        if name not in SERVERS:
            p.error("unknown server %r" % name)
    for name in parsed.workloads:
        if name not in WORKLOADS:
            p.error("unknown workload %r" % name)
    return parsed


def raiseFileLimit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main(argv=None):
    o = options(argv)
    import _report

    if o.publish:
        _report.publish(o.publish, ROOT)
        return 0
    limit = raiseFileLimit()
    needed = 2 * max(o.memory_levels) + 1000 if "memory" in o.workloads else 0
    if limit < needed:
        print("warning: file descriptor limit %d is below the %d the memory workload needs"
              % (limit, needed), file=sys.stderr)
    os.makedirs(o.out, exist_ok=True)
    run = Run(o)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    jsonPath = os.path.join(o.out, "xmpp-bench-%s.json" % stamp)
    directory = tempfile.mkdtemp(prefix="xmpp-bench-")
    previous = signal.signal(signal.SIGTERM, _interrupt)
    status = 0
    try:
        for name in o.servers:
            why = peers.available(name)
            if why:
                run.results["notes"].append("%s skipped: %s" % (name, why))
                run.say("%s skipped: %s" % (name, why))
                continue
            try:
                runServer(run, name, directory)
            except (BenchAbort, peers.PeerError) as e:
                run.results["notes"].append("%s: %s" % (name, e))
                run.say("%s failed: %s" % (name, e))
                status = 1
                if run.left() <= 0:
                    break
    except KeyboardInterrupt:
        run.results["notes"].append("interrupted")
        status = 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        run.results["seconds"] = time.monotonic() - run.started
        _report.derive(run.results)
        with open(jsonPath, "w") as f:
            json.dump(run.results, f, indent=1, default=str)
        shutil.copyfile(jsonPath, os.path.join(o.out, "latest.json"))
        if o.keep or run.results["notes"]:
            run.say("servers' directories (logs, data) kept in %s" % directory)
        else:
            shutil.rmtree(directory, ignore_errors=True)
    print()
    print(_report.text(run.results))
    if o.plots:
        made = _report.plots(run.results, o.out)
        if made:
            print("plots: " + ", ".join(made))
    print("results: %s (%.0f s)" % (jsonPath, run.results["seconds"]))
    return status


def _interrupt(signum, frame):
    raise KeyboardInterrupt()


if __name__ == "__main__":
    sys.exit(main())
