"""
Why the load generator's WebSocket client is hand-rolled: the client CPU
time per message of C{xmppload}'s client and of the C{websockets}
package's asyncio client, sending the same chat messages to the same
bare Autobahn echo server (C{adapter_bench.py --serve bare}) and reading
the echoes, with at most --window unanswered.

    python bench/client_cost.py
    python bench/client_cost.py --messages 50000 --json out.json

The lower the figure, the higher the rate one generator process can
offer before it, rather than the server, is the limit.
"""

import argparse
import asyncio
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for path in (ROOT, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

import adapter_bench  # noqa: E402
import xmppload  # noqa: E402

PAYLOAD = (
    b"<message xmlns='jabber:client' to='u1@localhost/r' type='chat' id='m'><body>"
    + b"0" * xmppload.STAMP + xmppload.TEXT + b"</body></message>"
)


async def handRolled(url, messages, window):
    session = xmppload.WebSocketSession(url, "localhost")
    received = [0]
    more = asyncio.Event()

    def onMessage(blob):
        if blob is not None:
            received[0] += 1
            more.set()

    await session.connect()
    session.connection.sink = onMessage
    cpu = time.process_time()
    sent = 0
    while received[0] < messages:
        burst = min(window - (sent - received[0]), messages - sent)
        if burst > 0:
            session.sendFrames(b"".join(xmppload.wsFrame(PAYLOAD) for _ in range(burst)))
            sent += burst
        more.clear()
        await more.wait()
    cpu = time.process_time() - cpu
    session.abort()
    return cpu


async def websocketsClient(url, messages, window):
    from websockets.asyncio.client import connect

    async with connect(url, subprotocols=["xmpp"], compression=None) as ws:
        cpu = time.process_time()

        slots = asyncio.Semaphore(window)

        async def reader():
            for _ in range(messages):
                await ws.recv()
                slots.release()

        task = asyncio.ensure_future(reader())
        text = PAYLOAD.decode()
        for _ in range(messages):
            await slots.acquire()
            await ws.send(text)
        await task
        return time.process_time() - cpu


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=30000)
    p.add_argument("--window", type=int, default=64)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json")
    o = p.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))
    server = adapter_bench.ServerProcess("bare", cpu=cpus[-1] if len(cpus) > 1 else None)
    if len(cpus) > 1:
        os.sched_setaffinity(0, set(cpus[:-1]))
    try:
        import uvloop
        loops = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
    except ImportError:
        loops = {"asyncio": asyncio.new_event_loop}
    figures = {}
    try:
        for repeat in range(o.repeat):
            for loopName, newLoop in loops.items():
                for clientName, client in (("xmppload", handRolled),
                                           ("websockets", websocketsClient)):
                    loop = newLoop()
                    try:
                        cpu = loop.run_until_complete(client(server.url, o.messages, o.window))
                    finally:
                        loop.close()
                    figures.setdefault("%s on %s" % (clientName, loopName), []).append(
                        cpu / o.messages * 1e6)
    finally:
        server.stop()
    print("client CPU per message sent and echoed (us), median of %d:" % o.repeat)
    summary = {}
    for name, values in figures.items():
        values.sort()
        summary[name] = values[len(values) // 2]
        print("  %-26s %6.1f  (%s)" % (name, summary[name], ", ".join("%.1f" % v for v in values)))
    if o.json:
        with open(o.json, "w") as f:
            json.dump({"messages": o.messages, "window": o.window, "median": summary,
                       "runs": figures}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
