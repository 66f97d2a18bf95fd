"""
The real C{twistd -n xmppws}, run as a subprocess of this interpreter on
free loopback ports (port 0, read back from its log), driven by real
clients, and stopped with signals.  Every wait is bounded and the
process is killed if a test fails.
"""

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from twisted.python.filepath import FilePath
from twisted.trial import unittest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as websocketsConnect

from tests.servicehelpers import OPEN, TCP_HEADER, writeCertificate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 30.0
TWISTD = "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()"
PLAIN_AUTH = (
    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
    "AGFsaWNlAHNlY3JldA==</auth>"
)
BIND = (
    "<iq xmlns='jabber:client' type='set' id='b'><bind "
    "xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>"
)


def _environment():
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=ROOT + (os.pathsep + path if path else ""))


class _Twistd:
    """
    A C{twistd -n xmppws} process whose output is read by a thread.

    @ivar lines: the output lines so far.
    """

    def __init__(self, testCase, *args, twistdArgs=(), plugin="xmppws"):
        self.directory = FilePath(testCase.mktemp())
        self.directory.makedirs()
        self.dataDir = self.directory.child("data").path
        command = [sys.executable, "-c", TWISTD, "-n", "--pidfile", ""]
        command += list(twistdArgs) + [plugin, "--data-dir", self.dataDir] + list(args)
        self.process = subprocess.Popen(
            command,
            cwd=self.directory.path,
            env=_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        testCase.addCleanup(self.kill)
        self.lines = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.decode("utf-8", "replace"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(TIMEOUT)
        self._reader.join(TIMEOUT)
        self.process.stdout.close()

    @property
    def output(self):
        with self._changed:
            return "".join(self.lines)

    def waitFor(self, text, count=1):
        """
        Wait until C{text} appeared C{count} times in the output.

        @return: the lines holding it.
        """
        deadline = time.monotonic() + TIMEOUT
        with self._changed:
            while True:
                found = [line for line in self.lines if text in line]
                if len(found) >= count:
                    return found
                if self.process.poll() is not None and not self._reader.is_alive():
                    raise AssertionError("twistd exited:\n" + "".join(self.lines))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "no %r in twistd's output:\n%s" % (text, "".join(self.lines))
                    )
                self._changed.wait(left)

    def ports(self):
        """
        @return: the port of each kind of listener, from the log.
        """
        ports = {}
        self.waitFor("Listening for metrics")
        with self._changed:
            lines = list(self.lines)
        for line in lines:
            for what, kind in (
                ("WebSocket and HTTP on ", "web"),
                ("XMPP clients on ", "c2s"),
                ("metrics on ", "metrics"),
            ):
                if "Listening for " + what in line:
                    ports[kind] = int(line.rsplit(":", 1)[1])
        return ports

    def signal(self, number):
        self.process.send_signal(number)

    def wait(self):
        """
        Wait for the process to exit.

        @return: its exit status.
        """
        status = self.process.wait(TIMEOUT)
        self._reader.join(TIMEOUT)
        return status


def _receiveAll(sock):
    sock.settimeout(TIMEOUT)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


class TwistdTests(unittest.TestCase):
    """
    C{twistd -n xmppws} in a process of its own.
    """

    timeout = 120

    def test_serveAndStop(self):
        """
        The service answers discovery, metrics, WebSocket and TCP clients
        and account changes while it runs; SIGTERM closes every stream
        with C{system-shutdown} and twistd exits 0.
        """
        twistd = _Twistd(
            self,
            "--listen", "tcp:0:interface=127.0.0.1",
            "--c2s", "tcp:0:interface=127.0.0.1",
            "--metrics", "tcp:0:interface=127.0.0.1",
        )
        ports = twistd.ports()

        hostMeta = json.loads(
            urllib.request.urlopen(
                "http://127.0.0.1:%d/.well-known/host-meta.json" % (ports["web"],),
                timeout=TIMEOUT,
            ).read()
        )
        url = "ws://127.0.0.1:%d/xmpp-websocket" % (ports["web"],)
        self.assertEqual(hostMeta["links"][0]["href"], url)

        subprocess.run(
            [sys.executable, "-m", "xmppws.admin", "--data-dir", twistd.dataDir,
             "adduser", "alice@localhost", "secret"],
            env=_environment(), cwd=ROOT, check=True, timeout=TIMEOUT,
            stdout=subprocess.DEVNULL,
        )

        with websocketsConnect(
            url, subprotocols=["xmpp"], open_timeout=TIMEOUT, close_timeout=TIMEOUT
        ) as ws:
            ws.send(OPEN.decode())
            ws.recv(TIMEOUT), ws.recv(TIMEOUT)
            ws.send(PLAIN_AUTH)
            self.assertIn("success", ws.recv(TIMEOUT))
            ws.send(OPEN.decode())
            ws.recv(TIMEOUT), ws.recv(TIMEOUT)
            ws.send(BIND)
            self.assertIn("alice@localhost/web", ws.recv(TIMEOUT))

            tcp = socket.create_connection(("127.0.0.1", ports["c2s"]), TIMEOUT)
            self.addCleanup(tcp.close)
            tcp.sendall(TCP_HEADER)
            received = b""
            while b"</stream:features>" not in received:
                received += tcp.recv(65536)

            metrics = urllib.request.urlopen(
                "http://127.0.0.1:%d/metrics" % (ports["metrics"],), timeout=TIMEOUT
            ).read().decode()
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(metrics)
                for s in family.samples
            }
            self.assertEqual(samples["xmppws_sessions", (("state", "attached"),)], 1)
            self.assertEqual(
                samples["xmppws_connections_open", (("framing", "rfc6120"), ("transport", "tcp"))],
                1,
            )

            twistd.signal(signal.SIGTERM)
            closing = []
            try:
                while True:
                    closing.append(ws.recv(TIMEOUT))
            except ConnectionClosed:
                pass
            self.assertIn("system-shutdown", closing[0])
            self.assertIn("<close", closing[1])
            self.assertEqual(ws.close_code, 1000)
        tail = _receiveAll(tcp)
        self.assertIn(b"system-shutdown", tail)
        self.assertTrue(tail.endswith(b"</stream:stream>"))
        self.assertEqual(twistd.wait(), 0)
        output = twistd.output
        self.assertIn("Received SIGTERM; stopping gracefully", output)
        self.assertIn("Stopped in", output)
        self.assertNotIn("Traceback", output)

    def test_reloadOnSIGHUP(self):
        """
        SIGHUP reloads the certificate of an C{ssl:} listener: the open
        session goes on, a new connection gets the new certificate, and
        SIGINT then stops the service with exit status 0.
        """
        directory = FilePath(self.mktemp())
        keyPath, certPath = writeCertificate(directory, "a.example")
        twistd = _Twistd(
            self,
            "--listen", "ssl:0:interface=127.0.0.1",
            "--tls-key", keyPath,
            "--tls-cert", certPath,
            "--c2s", "none",
            "--metrics", "tcp:0:interface=127.0.0.1",
        )
        port = twistd.ports()["web"]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        url = "wss://127.0.0.1:%d/xmpp-websocket" % (port,)
        original = FilePath(certPath).getContent()
        with websocketsConnect(
            url, subprotocols=["xmpp"], ssl=context,
            open_timeout=TIMEOUT, close_timeout=TIMEOUT,
        ) as ws:
            ws.send(OPEN.decode())
            ws.recv(TIMEOUT), ws.recv(TIMEOUT)
            self.assertEqual(
                ssl.DER_cert_to_PEM_cert(ws.socket.getpeercert(True)).encode(), original
            )
            writeCertificate(directory, "b.example")
            twistd.signal(signal.SIGHUP)
            twistd.waitFor("Loaded the TLS certificate")
            ws.send(PLAIN_AUTH)
            self.assertIn("not-authorized", ws.recv(TIMEOUT))
            with websocketsConnect(
                url, subprotocols=["xmpp"], ssl=context,
                open_timeout=TIMEOUT, close_timeout=TIMEOUT,
            ) as fresh:
                renewed = ssl.DER_cert_to_PEM_cert(fresh.socket.getpeercert(True)).encode()
            self.assertEqual(renewed, FilePath(certPath).getContent())
            self.assertNotEqual(renewed, original)
        twistd.signal(signal.SIGINT)
        self.assertEqual(twistd.wait(), 0)

    def test_invalidOption(self):
        """
        An invalid setting stops twistd before anything starts, with a
        message naming the option and no traceback.
        """
        twistd = _Twistd(self, "--max-connections", "0")
        self.assertNotEqual(twistd.wait(), 0)
        output = twistd.output
        self.assertIn("--max-connections: must be at least 1", output)
        self.assertNotIn("Traceback", output)
        self.assertFalse(os.path.exists(twistd.dataDir))

    def test_portInUse(self):
        """
        A port that cannot be listened on stops twistd with a message
        naming the listener, and no traceback.
        """
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        twistd = _Twistd(self, "--listen", "tcp:%d:interface=127.0.0.1" % (port,), "--c2s", "none")
        self.assertNotEqual(twistd.wait(), 0)
        output = twistd.output
        self.assertIn(
            "xmppws: cannot listen for WebSocket and HTTP on tcp:%d:interface=127.0.0.1" % (port,),
            output,
        )
        self.assertIn("Address already in use", output)
        self.assertNotIn("Traceback", output)

    def test_help(self):
        """
        C{twistd xmppws --help} documents the options, and the C{twist}
        runner (C{python -m twisted}) lists the plugin.
        """
        output = subprocess.run(
            [sys.executable, "-c", TWISTD, "xmppws", "--help"],
            env=_environment(), cwd=ROOT,
            capture_output=True, timeout=TIMEOUT,
        ).stdout.decode()
        for option in ("--listen", "--c2s", "--domain", "--data-dir", "--config", "--path",
                       "--origin", "--metrics", "--upstream", "--tls-key", "--tls-cert"):
            self.assertIn(option, output)
        listing = subprocess.run(
            [sys.executable, "-m", "twisted", "--help"],
            env=_environment(), cwd="/", capture_output=True, timeout=TIMEOUT,
        ).stdout.decode()
        self.assertIn("xmppws", listing)
