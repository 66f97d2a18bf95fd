"""
The side-by-side benchmark keeps working: a seconds-long run of every
workload with tiny counts against every server that can start here, and
the load generator's SCRAM client against a real SCRAM server.  Nothing
here looks at a timing.
"""

import json
import os
import socket
import subprocess
import sys

from scramp import ScramMechanism
from twisted.trial.unittest import TestCase

from tests import peers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import xmppload  # noqa: E402

SERVERS = ("xmppws", "prosody", "ejabberd", "gateway")


class ScramClientTests(TestCase):
    """
    The generator's SCRAM client, which caches the salted password.
    """

    def exchange(self, mechanism):
        server = ScramMechanism(mechanism)
        salt, stored, serverKey, iterations = server.make_auth_info("pw", iteration_count=4096)
        auth = server.make_server(lambda user: (salt, stored, serverKey, iterations))
        client = xmppload.ScramClient(mechanism, "alice", "pw")
        auth.set_client_first(client.first().decode())
        final = client.final(auth.get_server_first().encode())
        auth.set_client_final(final.decode())
        client.check(auth.get_server_final().encode())

    def test_sha1(self):
        """
        A SCRAM-SHA-1 exchange with scramp's server succeeds both ways.
        """
        self.exchange("SCRAM-SHA-1")

    def test_sha256(self):
        """
        A SCRAM-SHA-256 exchange with scramp's server succeeds both ways.
        """
        self.exchange("SCRAM-SHA-256")

    def test_wrongServerSignature(self):
        """
        A server signature that does not match is refused.
        """
        server = ScramMechanism("SCRAM-SHA-1")
        salt, stored, serverKey, iterations = server.make_auth_info("other", iteration_count=4096)
        auth = server.make_server(lambda user: (salt, stored, serverKey, iterations))
        client = xmppload.ScramClient("SCRAM-SHA-1", "alice", "pw")
        auth.set_client_first(client.first().decode())
        client.final(auth.get_server_first().encode())
        self.assertRaises(
            xmppload.SetupError, client.check, b"v=" + b"A" * 28)


class FrameTests(TestCase):
    """
    The generator's WebSocket frames.
    """

    def test_masked(self):
        """
        A client frame is masked, and unmasking gives the payload back.
        """
        payload = b"<message/>" * 20
        frame = xmppload.wsFrame(payload)
        self.assertEqual(frame[0], 0x81)
        self.assertEqual(frame[1], 0x80 | 126)
        self.assertEqual(int.from_bytes(frame[2:4], "big"), len(payload))
        key, masked = frame[4:8], frame[8:]
        self.assertEqual(bytes(b ^ key[i % 4] for i, b in enumerate(masked)), payload)


class SmokeTests(TestCase):
    """
    C{bench/xmpp_bench.py --smoke} against the servers that start here,
    and the gateway in front of Prosody.
    """

    def test_smoke(self):
        """
        A tiny run delivers messages on every server and transport, and
        writes results with every field the report reads.
        """
        servers = [name for name in SERVERS if peers.available(name) is None]
        out = os.path.abspath(self.mktemp())
        process = subprocess.run(
            [sys.executable, os.path.join(ROOT, "bench", "xmpp_bench.py"), "--smoke",
             "--no-plots", "--servers", ",".join(servers), "--out", out],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=300,
        )
        output = process.stdout.decode("utf-8", "replace")
        self.assertEqual(process.returncode, 0, output)
        with open(os.path.join(out, "latest.json")) as f:
            results = json.load(f)
        self.assertEqual(results["notes"], [], output)
        expected = list(servers) + (["prosody-bosh"] if "prosody" in servers else [])
        self.assertEqual(sorted(results["targets"]), sorted(expected))
        for name in expected:
            target = results["targets"][name]
            steps = target["throughput"]["steps"]
            self.assertTrue(steps, name)
            for step in steps:
                self.assertGreater(step["sent"], 0, name)
                self.assertEqual(step["lost"], 0, (name, step))
                for key in ("delivered", "p50", "p99", "max", "serverCPUPerMessage",
                            "bytesPerMessage", "generatorBusy", "otherCPUs"):
                    self.assertIsNotNone(step[key], (name, key))
            mechanisms = target["sessions"]["mechanisms"]
            self.assertGreater(mechanisms["SCRAM-SHA-1"]["sessions"], 0, name)
            self.assertEqual(mechanisms["SCRAM-SHA-1"]["failed"], 0, (name, mechanisms))
            if name.endswith("-bosh"):
                continue
            self.assertGreater(mechanisms["PLAIN"]["sessions"], 0, name)
            levels = target["memory"]["levels"]
            self.assertEqual([level["sessions"] for level in levels], [10], name)
            self.assertGreater(levels[0]["rss"], 0)
        if "gateway" in servers:
            # The gateway's own cost per message, apart from Prosody's.
            for step in results["targets"]["gateway"]["throughput"]["steps"]:
                self.assertIsNotNone(step["frontCPUPerMessage"])
            self.assertIn("Gateway in front of Prosody", output)
        for name in servers:
            # Prosody, ejabberd and the gateway's Prosody get an instance
            # storing SHA-256 keys.
            self.assertGreater(
                results["targets"][name]["sessions"]["mechanisms"]["SCRAM-SHA-256"]["sessions"],
                0, name)
        summary = results["summary"]
        self.assertIn("load", summary)
        if "prosody" in servers:
            self.assertIn("claim", summary["bosh"]["prosody-bosh"]["verdict"])
        self.assertIn("Routed messages", output)


class PeersTests(TestCase):
    """
    L{tests.peers} starts real servers and leaves nothing behind.
    """

    def features(self, server):
        """
        Open a stream on the server's c2s port and return its features.
        """
        sock = socket.create_connection((peers.INTERFACE, server.c2sPort), timeout=10)
        try:
            sock.sendall(
                b"<?xml version='1.0'?><stream:stream to='%s' xmlns='jabber:client' "
                b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
                % server.domain.encode())
            data = b""
            while b"</stream:features>" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data
        finally:
            sock.close()

    def startAndStop(self, cls):
        """
        Start a server with TLS and two accounts, check that it offers
        STARTTLS and serves both ports, stop it and check that none of
        its processes and ports is left.
        """
        why = peers.available(cls.name)
        if why:
            raise self.skipTest(why)
        server = cls(os.path.abspath(self.mktemp()), tls=True)
        self.addCleanup(server.stop)
        server.addUsers(["alice", "bob"], "secret")
        server.start()
        pids = [server.process.pid] + peers.descendants(server.process.pid)
        self.assertIn(server.pid, pids)
        self.assertTrue(os.path.exists(server.certPath))
        self.assertIn(b"urn:ietf:params:xml:ns:xmpp-tls", self.features(server))
        socket.create_connection((peers.INTERFACE, server.httpPort), timeout=5).close()
        server.stop()
        for pid in pids:
            self.assertFalse(peers.running(pid), (cls.name, pid))
        for port in (server.c2sPort, server.httpPort):
            self.assertRaises(
                OSError, socket.create_connection, (peers.INTERFACE, port), timeout=5)

    def test_xmppws(self):
        """
        twistd xmppws starts on its ports with STARTTLS and stops with all
        its processes.
        """
        self.startAndStop(peers.Xmppws)

    def test_prosody(self):
        """
        Prosody starts on its ports with STARTTLS and stops with all its
        processes.
        """
        self.startAndStop(peers.Prosody)

    def test_ejabberd(self):
        """
        ejabberd starts on its ports with STARTTLS and stops with all its
        processes, including the Erlang VM that runs as another user.
        """
        self.startAndStop(peers.Ejabberd)
