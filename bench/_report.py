"""
Reading the results of C{xmpp_bench.py}: the figures derived from the
raw steps (best rates, ratios to Prosody, the WebSocket/BOSH comparison),
a plain-text summary, PNG plots (when matplotlib is importable), and the
reStructuredText published in C{docs/performance-results.inc}.
"""

import json
import os
import shutil

__all__ = ["derive", "text", "plots", "publish"]

ORDER = ("xmppws", "prosody", "gateway", "ejabberd", "prosody-bosh", "ejabberd-bosh",
         "xmppws-bosh")
COLOURS = {
    "xmppws": "#1f77b4",
    "prosody": "#2ca02c",
    "gateway": "#9467bd",
    "ejabberd": "#d62728",
    "prosody-bosh": "#98df8a",
    "ejabberd-bosh": "#ff9896",
}
LABELS = {
    "xmppws": "xmppws (WebSocket)",
    "prosody": "Prosody (WebSocket)",
    "gateway": "gateway to Prosody",
    "ejabberd": "ejabberd (WebSocket)",
    "prosody-bosh": "Prosody (BOSH)",
    "ejabberd-bosh": "ejabberd (BOSH)",
}
PLOTS = ("throughput.png", "cpu.png", "memory.png", "sessions.png", "bosh.png")


def _targets(results):
    targets = results.get("targets", {})
    return [name for name in ORDER if name in targets] + sorted(
        name for name in targets if name not in ORDER)


def _label(name):
    return LABELS.get(name, name)


def _stepAt(target, rate):
    """
    The (last) plain step of a target at an offered rate, or L{None}.
    """
    steps = target.get("throughput", {}).get("steps", [])
    found = [s for s in steps if s["offered"] == rate]
    return found[-1] if found else None


def _ratio(a, b):
    if a is None or b is None or not b:
        return None
    return a / b


def derive(results):
    """
    Add C{results['summary']}: per target the headline figures, ratios to
    Prosody's, the comparison with BOSH and the run's load flags.
    """
    targets = results.get("targets", {})
    summary = {"targets": {}, "load": {}}
    steps = []
    for name in _targets(results):
        t = targets[name]
        tp = t.get("throughput") or {}
        s = summary["targets"][name] = {}
        s["maxRate"] = tp.get("maxRate")
        best = tp.get("best")
        if best:
            s["bestPassed"] = "%d/%d" % (sum(1 for r in best["runs"] if r["ok"]), len(best["runs"]))
            s["bestP99"] = best["p99"]["median"] if best.get("p99") else None
            s["bestCPUPerMessage"] = (best.get("serverCPUPerMessage") or {}).get("median")
            s["bestFrontCPUPerMessage"] = (best.get("frontCPUPerMessage") or {}).get("median")
            s["bestBytesPerMessage"] = (best.get("bytesPerMessage") or {}).get("median")
        for overload in tp.get("overload") or []:
            key = "overloadCommon" if overload.get("common") else "overload"
            s[key] = {
                "offered": overload["offered"],
                "goodput": overload["delivered"],
                "p99": overload["p99"],
            }
        mem = t.get("memory")
        if mem:
            s["memoryPerSession"] = {
                str(level["sessions"]): level["perSession"] for level in mem["levels"]
            }
        sess = t.get("sessions")
        if sess:
            s["sessionsPerSecond"] = {
                m: e["rate"] for m, e in sess["mechanisms"].items() if e["sessions"]
            }
            s["setupP50"] = {
                m: e["setupP50"] for m, e in sess["mechanisms"].items() if e["sessions"]
            }
        for step in tp.get("steps", []) + sum(
            [o["runs"] for o in tp.get("overload") or []] + ([best["runs"]] if best else []), []
        ):
            steps.append(step)
    # Ratios to Prosody's WebSocket.
    prosody = summary["targets"].get("prosody")
    if prosody:
        for name, s in summary["targets"].items():
            if name == "prosody":
                continue
            s["vsProsody"] = {
                "maxRate": _ratio(s.get("maxRate"), prosody.get("maxRate")),
                "memoryPerSession": {
                    k: _ratio(v, (prosody.get("memoryPerSession") or {}).get(k))
                    for k, v in (s.get("memoryPerSession") or {}).items()
                },
            }
            common = s.get("overloadCommon") or s.get("overload")
            theirs = prosody.get("overload")
            if common and theirs and common["goodput"] and theirs["goodput"]:
                s["vsProsody"]["overloadGoodput"] = _ratio(
                    common["goodput"]["median"], theirs["goodput"]["median"])
    # CPU per message at one rate every WebSocket target handled.
    ws = [n for n in _targets(results) if targets[n].get("transport") == "websocket"]
    rates = sorted({s["offered"] for n in ws for s in targets[n].get("throughput", {}).get("steps", [])})
    common = [r for r in rates if all((_stepAt(targets[n], r) or {}).get("ok") for n in ws)]
    if common:
        rate = common[-1]
        summary["referenceRate"] = rate
        for n in ws:
            step = _stepAt(targets[n], rate)
            summary["targets"][n]["cpuAtReference"] = step["serverCPUPerMessage"]
            if step.get("frontCPUPerMessage") is not None:
                summary["targets"][n]["frontCPUAtReference"] = step["frontCPUPerMessage"]
    summary["gateway"] = _gateway(results, summary)
    summary["bosh"] = _boshClaim(results)
    disturbed = [s for s in steps if s.get("disturbed")]
    limited = [s for s in steps if s.get("generatorLimited")]
    summary["load"] = {
        "steps": len(steps),
        "disturbed": len(disturbed),
        "generatorLimited": len(limited),
        "maxOtherCPUs": max((s.get("otherCPUs") or 0 for s in steps), default=0),
        "quiet": not disturbed,
    }
    results["summary"] = summary
    return summary


def _gateway(results, summary):
    """
    The gateway against Prosody's own WebSocket: the cost the gateway adds
    per message, and the rates each sustains.
    """
    gateway = summary["targets"].get("gateway")
    prosody = summary["targets"].get("prosody")
    if not gateway:
        return None
    out = {
        "maxRate": gateway.get("maxRate"),
        "prosodyMaxRate": (prosody or {}).get("maxRate"),
        "rate": summary.get("referenceRate"),
        "gatewayCPUPerMessage": gateway.get("frontCPUAtReference"),
        "totalCPUPerMessage": gateway.get("cpuAtReference"),
        "prosodyCPUPerMessage": (prosody or {}).get("cpuAtReference"),
    }
    if out["gatewayCPUPerMessage"] is None:
        # No rate every target handled: the gateway's best step, against
        # Prosody's step at the same rate if it ran one.
        best = (results["targets"]["gateway"].get("throughput") or {}).get("best") or {}
        out["rate"] = best.get("offered")
        out["gatewayCPUPerMessage"] = gateway.get("bestFrontCPUPerMessage")
        out["totalCPUPerMessage"] = gateway.get("bestCPUPerMessage")
        theirs = _stepAt(results["targets"].get("prosody") or {}, out["rate"]) if out["rate"] else None
        out["prosodyCPUPerMessage"] = theirs["serverCPUPerMessage"] if theirs else None
    parts = []
    if out["gatewayCPUPerMessage"] is not None:
        parts.append(
            "the gateway costs %s us of CPU per routed message (each crossing it twice, in "
            "and out)%s; with Prosody behind it, %s us against %s us for Prosody's own "
            "WebSocket" % (
                _fmt(out["gatewayCPUPerMessage"]),
                " at %d messages/s" % out["rate"] if out["rate"] else "",
                _fmt(out["totalCPUPerMessage"]), _fmt(out["prosodyCPUPerMessage"])))
    if out["maxRate"] is not None or out["prosodyMaxRate"] is not None:
        parts.append("it sustains %s messages/s at p99 < limit against %s for Prosody alone" % (
            _fmt(out["maxRate"], "%.0f"), _fmt(out["prosodyMaxRate"], "%.0f")))
    out["verdict"] = "Gateway in front of Prosody: %s." % ("; ".join(parts) or "no figures")
    return out


def _boshClaim(results):
    """
    WebSocket against BOSH on the same server, at the highest offered
    rate both handled, and their saturation rates.
    """
    targets = results.get("targets", {})
    out = {}
    for name in _targets(results):
        if not name.endswith("-bosh"):
            continue
        server = targets[name]["server"]
        ws = targets.get(server)
        bosh = targets[name]
        if not ws or "throughput" not in ws or "throughput" not in bosh:
            continue
        compared = [n for n in ("xmppws", server) if n in targets and "throughput" in targets[n]]
        rates = [s["offered"] for s in bosh["throughput"]["steps"] if s["ok"]]
        rates = [r for r in rates if all((_stepAt(targets[n], r) or {}).get("ok") for n in compared)]
        if not rates:
            rates = [s["offered"] for s in bosh["throughput"]["steps"]][:1]
        entry = {"server": server, "rate": rates[-1] if rates else None, "rows": {}}
        for n in compared + [name]:
            step = _stepAt(targets[n], entry["rate"]) if entry["rate"] else None
            sess = ((targets[n].get("sessions") or {}).get("mechanisms") or {}).get("SCRAM-SHA-1") or {}
            entry["rows"][n] = {
                "bytesPerMessage": step and step["bytesPerMessage"],
                "p50": step and step["p50"],
                "p99": step and step["p99"],
                "serverCPUPerMessage": step and step["serverCPUPerMessage"],
                "maxRate": targets[n]["throughput"].get("maxRate"),
                "setupP50": sess.get("setupP50"),
                "sessionsPerSecond": sess.get("rate"),
                "bytesPerSession": sess.get("bytesPerSession"),
            }
        w, b = entry["rows"][server], entry["rows"][name]
        entry["ratios"] = {
            key: _ratio(b[key], w[key])
            for key in ("bytesPerMessage", "p50", "p99", "serverCPUPerMessage", "maxRate",
                        "setupP50", "sessionsPerSecond")
        }
        r = entry["ratios"]
        holds = [
            (r["bytesPerMessage"] or 0) > 1,
            (r["serverCPUPerMessage"] or 0) > 1,
            (r["p99"] or 0) > 1,
            r["maxRate"] is not None and r["maxRate"] < 1,
        ]
        entry["holds"] = all(holds) if None not in (w["maxRate"], b["maxRate"]) else any(holds[:3])
        entry["verdict"] = _verdict(server, entry)
        out[name] = entry
    return out


def _fmt(value, spec="%.1f", none="n/a"):
    return none if value is None else spec % value


def _verdict(server, entry):
    r = entry["ratios"]
    rows = entry["rows"]
    name = _label(server).split(" ")[0]
    parts = []
    if entry["rate"]:
        parts.append(
            "at %d messages/s %s's BOSH puts %s the bytes on the wire per delivered message "
            "of its WebSocket (%s against %s), costs %s the server CPU per message, and its "
            "p99 latency is %s as high (%s against %s ms)" % (
                entry["rate"], name, _fmt(r["bytesPerMessage"], "%.1fx"),
                _fmt(rows[server + "-bosh"]["bytesPerMessage"], "%.0f B"),
                _fmt(rows[server]["bytesPerMessage"], "%.0f B"),
                _fmt(r["serverCPUPerMessage"], "%.1fx"), _fmt(r["p99"], "%.1fx"),
                _fmt(rows[server + "-bosh"]["p99"]), _fmt(rows[server]["p99"])))
    if r["maxRate"] is not None:
        parts.append("BOSH saturates at %s of the rate WebSocket sustains (%s against %s "
                     "messages/s at p99 < limit)" % (
                         _fmt(r["maxRate"] * 100, "%.0f%%"),
                         _fmt(rows[server + "-bosh"]["maxRate"], "%.0f"),
                         _fmt(rows[server]["maxRate"], "%.0f")))
    if r["setupP50"] is not None:
        parts.append("a BOSH session takes %s as long to set up (median %s against %s ms)" % (
            _fmt(r["setupP50"], "%.1fx"), _fmt(rows[server + "-bosh"]["setupP50"]),
            _fmt(rows[server]["setupP50"])))
    claim = "The claim holds" if entry["holds"] else "The claim does not hold in every respect"
    return "%s on %s: %s." % (claim, name, "; ".join(parts))


# Text.


def _table(headers, rows):
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    line = lambda cells: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def text(results):
    """
    A plain-text summary of a run.
    """
    summary = results.get("summary") or derive(results)
    env = results.get("environment", {})
    out = []
    load = summary["load"]
    out.append("%s, %s CPUs (%s), revision %s" % (
        env.get("date"), env.get("machine", {}).get("cpus"), env.get("machine", {}).get("cpu"),
        env.get("revision")))
    out.append("load: %d of %d steps disturbed by other processes (max %.2f CPU), %d "
               "generator-limited%s" % (
                   load["disturbed"], load["steps"], load["maxOtherCPUs"],
                   load["generatorLimited"], "" if load["quiet"] else "  ** NOT A QUIET RUN **"))
    rows = []
    for name in _targets(results):
        s = summary["targets"][name]
        over = s.get("overload")
        common = s.get("overloadCommon")
        rows.append([
            _label(name),
            _fmt(s.get("maxRate"), "%.0f") + (" (%s)" % s["bestPassed"] if s.get("bestPassed") else ""),
            _fmt((s.get("vsProsody") or {}).get("maxRate"), "%.2f", "" if name == "prosody" else "n/a"),
            _fmt(s.get("bestP99")),
            _fmt(s.get("cpuAtReference") if "cpuAtReference" in s else s.get("bestCPUPerMessage")),
            _fmt(s.get("bestBytesPerMessage"), "%.0f"),
            ("%s: %s (%s-%s)" % (
                _fmt(over["offered"], "%.0f"), _fmt(over["goodput"]["median"], "%.0f"),
                _fmt(over["goodput"]["min"], "%.0f"), _fmt(over["goodput"]["max"], "%.0f"))
             if over and over.get("goodput") else "n/a"),
            ("%s: %s" % (_fmt(common["offered"], "%.0f"), _fmt(common["goodput"]["median"], "%.0f"))
             if common and common.get("goodput") else ""),
        ])
    out.append("")
    out.append("Routed messages (reference rate for CPU: %s/s)" % summary.get("referenceRate"))
    out.append(_table(["target", "max msg/s @p99<limit", "x Prosody", "p99 ms", "server us/msg", "bytes/msg",
                       "overload 1.5x: goodput (spread)", "at 1.5x Prosody's"], rows))
    levels = sorted({k for s in summary["targets"].values() for k in (s.get("memoryPerSession") or {})},
                    key=int)
    if levels:
        out.append("")
        out.append("Memory per idle authenticated WebSocket session (KB)")
        out.append(_table(["server"] + levels, [
            [_label(n)] + [_fmt((summary["targets"][n].get("memoryPerSession") or {}).get(l),
                                "%.1f", "") if (summary["targets"][n].get("memoryPerSession") or {}).get(l) is None
                           else "%.1f" % (summary["targets"][n]["memoryPerSession"][l] / 1024)
                           for l in levels]
            for n in _targets(results) if summary["targets"][n].get("memoryPerSession")]))
    mechs = []
    for n in _targets(results):
        for m in (results["targets"][n].get("sessions") or {}).get("mechanisms", {}):
            if m not in mechs:
                mechs.append(m)
    if mechs:
        out.append("")
        out.append("Sessions set up and closed per second (median set-up ms)")
        rows = []
        for n in _targets(results):
            sess = (results["targets"][n].get("sessions") or {}).get("mechanisms")
            if not sess:
                continue
            rows.append([_label(n)] + [
                ("%.0f (%.1f)" % (sess[m]["rate"], sess[m]["setupP50"]) if sess.get(m, {}).get("sessions")
                 else ("not offered" if sess.get(m, {}).get("unsupported") else ""))
                for m in mechs])
        out.append(_table(["target"] + mechs, rows))
    if summary.get("gateway"):
        out.append("")
        out.append(summary["gateway"]["verdict"])
    for name, claim in summary.get("bosh", {}).items():
        out.append("")
        out.append("WebSocket against BOSH at %s msg/s" % claim["rate"])
        rows = [[_label(n), _fmt(r["bytesPerMessage"], "%.0f"), _fmt(r["p50"]), _fmt(r["p99"]),
                 _fmt(r["serverCPUPerMessage"]), _fmt(r["maxRate"], "%.0f"), _fmt(r["setupP50"])]
                for n, r in claim["rows"].items()]
        out.append(_table(["target", "bytes/msg", "p50 ms", "p99 ms", "server us/msg", "max msg/s",
                           "set-up p50 ms"], rows))
        out.append(claim["verdict"])
    for note in results.get("notes", []):
        out.append("note: " + note)
    return "\n".join(out)


# Plots.


def plots(results, directory):
    """
    Draw the PNG plots of a run into C{directory}.

    @return: the files written (none when matplotlib is missing).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots (pip install -e '.[bench]')")
        return []
    summary = results.get("summary") or derive(results)
    targets = results.get("targets", {})
    names = [n for n in _targets(results) if "throughput" in targets[n]]
    made = []
    stamp = "%s, %s" % (results.get("environment", {}).get("date", ""),
                        "quiet machine" if summary["load"]["quiet"] else "LOADED MACHINE")
    limit = results.get("options", {}).get("p99_limit", 100)

    def runsOf(name):
        tp = targets[name]["throughput"]
        runs = []
        for step in tp["steps"]:
            runs.append(step)
            if step.get("previous"):
                runs.append(step["previous"])
        for o in tp.get("overload") or []:
            runs += o["runs"]
        if tp.get("best"):
            runs += tp["best"]["runs"][1:]
        return runs

    def points(name, key):
        """
        Offered rates, the median of C{key} at each, and every run.
        """
        byRate = {}
        for r in runsOf(name):
            if r.get(key) is not None:
                byRate.setdefault(r["offered"], []).append(r[key])
        rates = sorted(byRate)
        medians = [sorted(byRate[x])[len(byRate[x]) // 2] for x in rates]
        every = [(x, y) for x in rates for y in byRate[x]]
        return rates, medians, every

    def draw(axes, name, key, style, label, alpha=1.0):
        x, y, every = points(name, key)
        axes.plot(x, y, style, color=COLOURS.get(name), alpha=alpha, label=label)
        if len(every) > len(x):
            axes.scatter([p[0] for p in every], [p[1] for p in every], s=10,
                         color=COLOURS.get(name), alpha=0.35 * alpha)

    if names:
        fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.8))
        for n in names:
            draw(a, n, "p99", "o-", _label(n) + " p99")
            draw(a, n, "p50", "x--", _label(n) + " p50", 0.6)
            draw(b, n, "delivered", "o-", _label(n))
        a.axhline(limit, color="grey", lw=0.8, ls=":")
        a.set_yscale("log")
        a.set_xlabel("offered messages/s")
        a.set_ylabel("latency, ms (log)")
        a.set_title("Latency against offered rate (median of runs; dots: each run)")
        a.legend(fontsize=7)
        top = max([max(points(n, "offered")[0] or [0]) for n in names] + [1])
        b.plot([0, top], [0, top], color="grey", lw=0.8, ls=":", label="offered")
        b.set_xlabel("offered messages/s")
        b.set_ylabel("delivered messages/s")
        b.set_title("Goodput against offered rate")
        b.legend(fontsize=7)
        fig.suptitle("Routed chat messages, %d WebSocket pairs (%s)" % (
            results.get("options", {}).get("pairs", 0), stamp), fontsize=9)
        fig.tight_layout()
        made.append(_save(fig, directory, "throughput.png"))
        plt.close(fig)

        fig, a = plt.subplots(figsize=(7, 4.5))
        for n in names:
            draw(a, n, "serverCPUPerMessage", "o-", _label(n))
        a.set_xlabel("offered messages/s")
        a.set_ylabel("server CPU per delivered message, us")
        a.set_ylim(bottom=0)
        a.set_title("Server CPU per message (%s)" % stamp, fontsize=9)
        a.legend(fontsize=7)
        fig.tight_layout()
        made.append(_save(fig, directory, "cpu.png"))
        plt.close(fig)

    mem = [n for n in _targets(results) if targets[n].get("memory", {}).get("levels")]
    if mem:
        fig, a = plt.subplots(figsize=(7, 4.5))
        for n in mem:
            m = targets[n]["memory"]
            x = [0] + [l["sessions"] for l in m["levels"]]
            y = [m["baseline"] / 1e6] + [l["rss"] / 1e6 for l in m["levels"]]
            a.plot(x, y, "o-", color=COLOURS.get(n), label="%s: %.1f KB/session at %d" % (
                _label(n), (m["levels"][-1]["perSession"] or 0) / 1024, m["levels"][-1]["sessions"]))
        a.set_xlabel("idle authenticated WebSocket sessions")
        a.set_ylabel("server RSS, MB")
        a.set_title("Memory against sessions (%s)" % stamp, fontsize=9)
        a.legend(fontsize=7)
        fig.tight_layout()
        made.append(_save(fig, directory, "memory.png"))
        plt.close(fig)

    sess = [n for n in _targets(results) if targets[n].get("sessions")]
    if sess:
        mechs = []
        for n in sess:
            for m in targets[n]["sessions"]["mechanisms"]:
                if m not in mechs:
                    mechs.append(m)
        fig, a = plt.subplots(figsize=(8, 4.5))
        width = 0.8 / len(sess)
        for i, n in enumerate(sess):
            values = [(targets[n]["sessions"]["mechanisms"].get(m) or {}).get("rate") or 0 for m in mechs]
            a.bar([j + i * width for j in range(len(mechs))], values, width,
                  color=COLOURS.get(n), label=_label(n))
        a.set_xticks([j + width * (len(sess) - 1) / 2 for j in range(len(mechs))])
        a.set_xticklabels(mechs)
        a.set_ylabel("sessions set up and closed per second")
        a.set_title("Session establishment, concurrency %s (%s)" % (
            results.get("options", {}).get("session_concurrency"), stamp), fontsize=9)
        a.legend(fontsize=7)
        fig.tight_layout()
        made.append(_save(fig, directory, "sessions.png"))
        plt.close(fig)

    for name, claim in summary.get("bosh", {}).items():
        rows = claim["rows"]
        keys = [("bytesPerMessage", "bytes on the wire\nper delivered message"),
                ("serverCPUPerMessage", "server CPU per\nmessage, us"),
                ("p99", "p99 latency, ms"),
                ("maxRate", "max messages/s\nat p99 < %g ms" % limit),
                ("setupP50", "session set-up,\nmedian ms")]
        fig, axes = plt.subplots(1, len(keys), figsize=(14, 4))
        for a, (key, title) in zip(axes, keys):
            labels = list(rows)
            a.bar(range(len(labels)), [rows[l][key] or 0 for l in labels],
                  color=[COLOURS.get(l, "grey") for l in labels])
            a.set_xticks(range(len(labels)))
            a.set_xticklabels([_label(l).replace(" (", "\n(") for l in labels], fontsize=7)
            a.set_title(title, fontsize=9)
        fig.suptitle("WebSocket against BOSH, messages at %s/s (%s)" % (claim["rate"], stamp),
                     fontsize=9)
        fig.tight_layout()
        made.append(_save(fig, directory, "bosh.png"))
        plt.close(fig)
        break
    return made


def _save(fig, directory, name):
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    fig.savefig(path, dpi=100)
    return path


# Publishing.


def _rstTable(headers, rows):
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    rule = "  ".join("=" * w for w in widths)
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([rule, line(headers), rule] + [line(r) for r in rows] + [rule])


def publish(path, root):
    """
    Render a results file into the documentation: the plots into
    C{docs/_static/performance/} and the tables into
    C{docs/performance-results.inc}, included by C{docs/performance.rst}.
    """
    with open(path) as f:
        results = json.load(f)
    summary = derive(results)
    static = os.path.join(root, "docs", "_static", "performance")
    if os.path.isdir(static):
        shutil.rmtree(static)
    made = [os.path.basename(p) for p in plots(results, static)]
    env = results["environment"]
    load = summary["load"]
    lines = [
        ".. Generated by bench/xmpp_bench.py --publish %s; do not edit."
        % os.path.basename(path),
        "",
        "Measured on %s, revision ``%s``: %s CPUs (%s), %.0f GiB, Linux %s; Python %s, "
        "Twisted %s, Autobahn %s; Prosody %s; ejabberd %s (Erlang %s).  Server pinned to "
        "CPU %s, load generator (%s, %s processes) to CPU %s." % (
            env["date"], env.get("revision"), env["machine"]["cpus"], env["machine"]["cpu"],
            (env["machine"]["memory"] or 0) / 2 ** 30, env["machine"]["kernel"],
            env["versions"]["python"], env["versions"]["twisted"], env["versions"]["autobahn"],
            env["versions"]["prosody"], env["versions"]["ejabberd"], env["versions"]["erlang"],
            env["pinning"]["server"], env["generator"]["loop"], env["generator"]["workers"],
            env["pinning"]["generator"]),
        "",
    ]
    if load["quiet"]:
        lines.append("No step was disturbed by other processes (at most %.2f CPU used by "
                     "them during a step); %d of %d steps had the generator as the limit." % (
                         load["maxOtherCPUs"], load["generatorLimited"], load["steps"]))
    elif load["disturbed"] <= 0.05 * load["steps"]:
        lines.append("%d of %d steps were disturbed by other processes (up to %.2f CPU) even "
                     "when run again, and are flagged *d* below; the others ran on a quiet "
                     "machine.  %d had the generator as the limit." % (
                         load["disturbed"], load["steps"], load["maxOtherCPUs"],
                         load["generatorLimited"]))
    else:
        lines.append(".. warning::\n\n   These figures come from a **loaded machine**: %d of %d "
                     "steps were disturbed by other processes (up to %.2f CPU); %d had the "
                     "generator as the limit.  Compare them within this run only." % (
                         load["disturbed"], load["steps"], load["maxOtherCPUs"],
                         load["generatorLimited"]))
    lines.append("")
    names = [n for n in _targets(results) if "throughput" in results["targets"][n]]
    ws = [n for n in names if not n.endswith("-bosh")]
    if ws:
        lines += ["Routed messages", "~~~~~~~~~~~~~~~", ""]
        rows = []
        for n in ws:
            s = summary["targets"][n]
            over, common = s.get("overload"), s.get("overloadCommon")
            rows.append([
                _label(n),
                _fmt(s.get("maxRate"), "%.0f") + (" (%s)" % s["bestPassed"] if s.get("bestPassed") else ""),
                _fmt((s.get("vsProsody") or {}).get("maxRate"), "%.2f×", "—" if n == "prosody" else "n/a"),
                _fmt(s.get("bestP99")),
                _fmt(s.get("cpuAtReference") if summary.get("referenceRate") else s.get("bestCPUPerMessage"),
                     "%.0f"),
                "%s: %s (%s–%s)" % (_fmt(over["offered"], "%.0f"), _fmt(over["goodput"]["median"], "%.0f"),
                                    _fmt(over["goodput"]["min"], "%.0f"), _fmt(over["goodput"]["max"], "%.0f"))
                if over and over.get("goodput") else "n/a",
                "%s: %s" % (_fmt(common["offered"], "%.0f"), _fmt(common["goodput"]["median"], "%.0f"))
                if common and common.get("goodput") else "—",
            ])
        lines.append(_rstTable(
            ["server", "msg/s at p99 < %g ms" % results["options"]["p99_limit"], "× Prosody", "its p99 (ms)",
             ("server µs/msg at %s/s" % summary["referenceRate"]) if summary.get("referenceRate")
             else "server µs/msg, best step",
             "offered 1.5×: delivered (spread)", "offered 1.5× Prosody's"], rows))
        lines.append("")
        lines.append("The rate is the median delivered by the runs of the best step that passed "
                     "(in brackets: how many of its runs passed); the p99 is the median of them all.")
        lines.append("")
        lines.append("Every step, offered → delivered msg/s, p99 ms, server µs per message "
                     "(flags: *d* disturbed, *g* generator-limited):")
        lines.append("")
        rates = sorted({s["offered"] for n in ws for s in results["targets"][n]["throughput"]["steps"]})
        rows = []
        for rate in rates:
            row = [str(rate)]
            for n in ws:
                st = _stepAt(results["targets"][n], rate)
                row.append("—" if st is None else "%s / %s / %s%s" % (
                    _fmt(st["delivered"], "%.0f"), _fmt(st["p99"]), _fmt(st["serverCPUPerMessage"], "%.0f"),
                    (" *d*" if st["disturbed"] else "") + (" *g*" if st["generatorLimited"] else "")))
            rows.append(row)
        lines.append(_rstTable(["offered"] + [_label(n) for n in ws], rows))
        lines.append("")
        if summary.get("gateway"):
            lines.append(summary["gateway"]["verdict"] + "  (The gateway's server CPU above "
                         "is the gateway's and Prosody's together.)")
            lines.append("")
    mem = [n for n in _targets(results) if summary["targets"][n].get("memoryPerSession")]
    if mem:
        levels = sorted({k for n in mem for k in summary["targets"][n]["memoryPerSession"]}, key=int)
        lines += ["Memory per idle session", "~~~~~~~~~~~~~~~~~~~~~~~~", ""]
        rows = []
        for n in mem:
            m = summary["targets"][n]["memoryPerSession"]
            ratio = ((summary["targets"][n].get("vsProsody") or {}).get("memoryPerSession") or {}).get(
                levels[-1])
            rows.append([_label(n)] + [
                "—" if m.get(l) is None else "%.1f KB" % (m[l] / 1024) for l in levels] + [
                _fmt(ratio, "%.2f×", "—")])
        lines.append(_rstTable(["server"] + ["%s sessions" % l for l in levels]
                               + ["× Prosody at %s" % levels[-1]], rows))
        lines.append("")
    sess = [n for n in _targets(results) if results["targets"][n].get("sessions")]
    if sess:
        mechs = []
        for n in sess:
            for m in results["targets"][n]["sessions"]["mechanisms"]:
                if m not in mechs:
                    mechs.append(m)
        lines += ["Session establishment", "~~~~~~~~~~~~~~~~~~~~~", ""]
        lines.append("Sessions set up and closed per second at concurrency %s; median set-up "
                     "time (connect to ready) in brackets." % results["options"]["session_concurrency"])
        lines.append("")
        rows = []
        for n in sess:
            ms = results["targets"][n]["sessions"]["mechanisms"]
            rows.append([_label(n)] + [
                "%.0f/s (%.1f ms)" % (ms[m]["rate"], ms[m]["setupP50"]) if ms.get(m, {}).get("sessions")
                else ("not offered" if ms.get(m, {}).get("unsupported") else "—") for m in mechs])
        lines.append(_rstTable(["target"] + mechs, rows))
        lines.append("")
    for name, claim in summary.get("bosh", {}).items():
        lines += ["WebSocket against BOSH", "~~~~~~~~~~~~~~~~~~~~~~", ""]
        rows = [[_label(n), _fmt(r["bytesPerMessage"], "%.0f"), _fmt(r["p50"]), _fmt(r["p99"]),
                 _fmt(r["serverCPUPerMessage"], "%.0f"), _fmt(r["maxRate"], "%.0f"),
                 _fmt(r["setupP50"]), _fmt(r["bytesPerSession"], "%.0f")]
                for n, r in claim["rows"].items()]
        lines.append(_rstTable(["target", "bytes/msg", "p50 ms", "p99 ms", "server µs/msg",
                                "max msg/s", "set-up p50 ms", "bytes/session"], rows))
        lines.append("")
        lines.append("Messages at %s/s.  %s" % (claim["rate"], claim["verdict"]))
        lines.append("")
    for plot in PLOTS:
        if plot in made:
            lines += [".. image:: _static/performance/%s" % plot, "   :width: 100%", ""]
    for note in results.get("notes", []):
        lines += ["* " + note.replace("\n", " ")[:300], ""]
    with open(os.path.join(root, "docs", "performance-results.inc"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    print("wrote docs/performance-results.inc and %d plots into docs/_static/performance/" % len(made))
