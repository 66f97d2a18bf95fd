"""
Where xmppws spends its CPU per routed message: the throughput workload
of C{xmpp_bench.py} at one offered rate, with C{py-spy} sampling the
server, and the samples added up by component.

    python bench/xmppws_profile.py                  # 4000 msg/s, 20 s
    python bench/xmppws_profile.py --rate 6000 --seconds 30 --json out.json

C{py-spy} (in the C{bench} extra) attaches to the running C{twistd}
process, which needs ptrace rights (root, or
C{kernel.yama.ptrace_scope} 0).  It samples at --sample-rate per second
and pauses the server for each sample, so the server runs a little
slower than unprofiled.  The collapsed stacks are kept
(C{--stacks PATH}; C{flamegraph.pl} or speedscope draw them).

Each sample's innermost Python frame is charged to a component, by the
file it is in; the server's CPU time per message (from C{/proc}) is
shared among the components in proportion to their samples.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for path in (ROOT, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

import xmpp_bench  # noqa: E402
from tests import peers  # noqa: E402

# (component, substrings of a frame's file): first match wins.
COMPONENTS = [
    ("inbound parse and checks (xmppws._parser, framing)", ("xmppws/_parser.py",
                                                           "xmppws/framing.py")),
    ("outbound (xmppws.output)", ("xmppws/output.py",)),
    ("connection, carriers (xmppws.connection, _carrier, websocket, tcp)", (
        "xmppws/connection.py", "xmppws/_carrier.py", "xmppws/websocket.py",
        "xmppws/tcp.py", "xmppws/_handshake.py")),
    ("policies, flow control", ("xmppws/policies.py", "xmppws/flow.py")),
    ("limits, monitor, metrics", ("xmppws/limits.py", "xmppws/_connections.py",
                                  "xmppws/metrics.py", "prometheus_client/")),
    ("embedded server (xmppws.c2s: routing, sessions)", ("xmppws/c2s/",)),
    ("other xmppws", ("xmppws/",)),
    ("domish: parsing and serializing", ("twisted/words/xish/domish.py",)),
    ("XmlStream and event dispatch", ("twisted/words/xish/", "twisted/words/protocols/jabber/")),
    ("tx_xmpp", ("tx_xmpp/",)),
    ("Autobahn WebSocket protocol", ("autobahn/", "txaio/")),
    ("logging", ("twisted/logger/", "twisted/python/log.py")),
    ("reactor and TCP (twisted.internet)", ("twisted/internet/", "twisted/python/")),
    ("Python runtime and standard library", ("/lib/python3",)),
]


def component(frame):
    for name, needles in COMPONENTS:
        for needle in needles:
            if needle in frame:
                return name
    return "other"


_LINE = re.compile(r":\d+\)$")

# Innermost frames of a thread waiting for work (an idle database or
# thread-pool thread): py-spy cannot always tell them from running ones,
# and they are no part of the server's CPU time.
IDLE = ("Condition.wait (threading.py)", "Queue.get (queue.py)", "Event.wait (threading.py)")


def aggregate(path):
    """
    Read C{py-spy}'s collapsed stacks ("frame;frame;... count" lines).

    @return: C{(total, byComponent, bySelf, byInclusive, idle)} sample
        counts; the middle two keyed by frame; C{idle} counts the samples
        of waiting threads (L{IDLE}), left out of the others.
    """
    total = idle = 0
    components, selfTime, inclusive = {}, {}, {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            count = int(count)
            frames = [frame for frame in stack.split(";") if frame]
            # py-spy puts the thread name first; skip non-frames, and
            # count a function once whatever line it was on.
            frames = [_LINE.sub(")", frame) for frame in frames if "(" in frame] or frames
            leaf = frames[-1]
            if leaf in IDLE:
                idle += count
                continue
            total += count
            components[component(leaf)] = components.get(component(leaf), 0) + count
            selfTime[leaf] = selfTime.get(leaf, 0) + count
            for frame in set(frames):
                inclusive[frame] = inclusive.get(frame, 0) + count
    return total, components, selfTime, inclusive, idle


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=int, default=4000, help="offered messages/s")
    p.add_argument("--seconds", type=float, default=20.0, help="seconds profiled")
    p.add_argument("--pairs", type=int, default=50)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--sample-rate", type=int, default=250, help="py-spy samples per second")
    p.add_argument("--stacks", default=os.path.join(HERE, "results", "xmppws-profile.txt"),
                   help="where to keep py-spy's collapsed stacks")
    p.add_argument("--json", help="write the figures here too")
    p.add_argument("--no-pin", dest="pin", action="store_false")
    p.add_argument("--xmppws-args", default="",
                   help="more twistd xmppws options, such as --no-archive")
    o = p.parse_args(argv)
    pyspy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    if not os.path.exists(pyspy):
        p.error("py-spy is not installed (pip install -e '.[bench]')")
    xmpp_bench.raiseFileLimit()
    cpus = sorted(os.sched_getaffinity(0))
    serverCPUs = {cpus[-1]} if o.pin and len(cpus) > 1 else None
    generatorCPUs = set(cpus[:-1]) if serverCPUs else None
    directory = tempfile.mkdtemp(prefix="xmppws-profile-")
    os.makedirs(os.path.dirname(os.path.abspath(o.stacks)), exist_ok=True)
    server = peers.Xmppws(os.path.join(directory, "xmppws"), extraArgs=o.xmppws_args.split(),
                          cpus=serverCPUs)
    users = ["u%d" % i for i in range(2 * o.pairs)]
    server.addUsers(users, xmpp_bench.PASSWORD)
    server.start()
    generator = None
    try:
        generator = xmpp_bench.Generator("ws", server.webSocketURL, server.domain, o.workers,
                                         generatorCPUs, 120)
        results = generator.call("connect", [
            dict(users=part, mechanism="SCRAM-SHA-1", concurrency=50, paired=True)
            for part in xmpp_bench.split(users, o.workers)], timeout=120)
        if sum(r["failed"] for r in results):
            raise SystemExit("sessions failed to log in: %s" % results)
        warmup = 3.0
        t0 = time.monotonic() + 0.3
        generator.send("step", [
            dict(rate=o.rate / o.workers, t0=t0, warmup=warmup, duration=o.seconds, drain=5.0,
                 tick=0.002) for _ in range(o.workers)])
        time.sleep(max(0.0, t0 + warmup - time.monotonic()))
        cpu0 = xmpp_bench.processCPU(server.pid)
        spy = subprocess.Popen(
            [pyspy, "record", "--pid", str(server.pid), "--rate", str(o.sample_rate),
             "--duration", str(int(o.seconds)), "--format", "raw", "--output", o.stacks],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, err = spy.communicate(timeout=o.seconds + 60)
        cpu1 = xmpp_bench.processCPU(server.pid)
        results = generator.receive(o.seconds + 120)
        if spy.returncode != 0:
            raise SystemExit("py-spy failed: %s" % err.decode("utf-8", "replace"))
    finally:
        if generator is not None:
            generator.close()
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
    delivered = sum(r["receivedWindow"] for r in results)
    seconds = int(o.seconds)
    perMessage = (cpu1 - cpu0) / (delivered * seconds / o.seconds) * 1e6 if delivered else None
    total, components, selfTime, inclusive, idle = aggregate(o.stacks)
    print("xmppws at %d msg/s offered: %.0f delivered/s, %.1f us of server CPU per message, "
          "%d samples (and %d of idle threads, left out)"
          % (o.rate, delivered / o.seconds, perMessage or 0, total, idle))
    print()
    print("%-52s %7s %9s" % ("component (innermost frame)", "share", "us/msg"))
    rows = sorted(components.items(), key=lambda kv: -kv[1])
    for name, count in rows:
        print("%-52s %6.1f%% %9.1f" % (name, 100.0 * count / total, (perMessage or 0) * count / total))
    print()
    print("top functions by own time:")
    for frame, count in sorted(selfTime.items(), key=lambda kv: -kv[1])[:15]:
        print("  %5.1f%%  %s" % (100.0 * count / total, frame[:110]))
    print()
    print("top functions including callees:")
    for frame, count in sorted(inclusive.items(), key=lambda kv: -kv[1])[:25]:
        print("  %5.1f%%  %s" % (100.0 * count / total, frame[:110]))
    print()
    print("stacks: %s" % o.stacks)
    if o.json:
        with open(o.json, "w") as f:
            json.dump({
                "rate": o.rate, "delivered": delivered / o.seconds, "cpuPerMessage": perMessage,
                "samples": total, "idleSamples": idle,
                "components": {k: v / total for k, v in rows},
                "self": {k: v / total for k, v in sorted(selfTime.items(), key=lambda kv: -kv[1])[:40]},
                "inclusive": {k: v / total for k, v in
                              sorted(inclusive.items(), key=lambda kv: -kv[1])[:60]},
            }, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
