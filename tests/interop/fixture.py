# -*- test-case-name: tests.test_clients -*-
"""
The embedded server as the interoperability suites run it, and the Node.js
scripts they run against it.

L{InteropServer} serves one L{Site} on two loopback ports, plain and TLS
(a certificate made for the test), with the resource tree of the
service's C{--listen} ports (L{xmppws.web.buildRoot}: the WebSocket
endpoint, the XEP-0156 host-meta documents, the chat page at C{/chat}
serving the installed Converse.js) plus the static files of the
Converse.js test page; the group chat service runs in process at
C{conference.<domain>}.  L{runNode} runs one script of C{tests/interop} in a
child process with a bounded time and parses the JSON line it prints;
L{recordResult} keeps the outcome for L{tests.interop.matrix}.
"""

import datetime
import json
import os
import shutil
import time

from tests.certs import writeCertificate
from twisted.internet import tcp
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import deferLater
from twisted.python.filepath import FilePath
from twisted.trial.unittest import SkipTest
from twisted.web.server import Site
from twisted.web.static import File

from xmppws.c2s import component
from xmppws.c2s.modules import closeModules, installModules
from xmppws.c2s.server import ServerConfig, XMPPServer
from xmppws.c2s.storage import RosterRow, Storage
from xmppws.chatpage import ChatPage
from xmppws.muc.component import InProcessComponent
from xmppws.muc.service import MUCService
from xmppws.muc.settings import MUCSettings
from xmppws.muc.storage import RoomStore
from xmppws.web import buildRoot
from xmppws.websocket import XMPPWebSocketResource, XMPPWebSocketServerFactory

__all__ = [
    "ARTIFACTS",
    "INTEROP",
    "InteropServer",
    "NodeRun",
    "PASSWORD",
    "USERS",
    "chromiumExecutable",
    "nodeExecutable",
    "recordResult",
    "runNode",
    "writeCertificate",
]

INTEROP = FilePath(__file__).parent()
ROOT = INTEROP.parent().parent()
NODE_MODULES = INTEROP.child("node_modules")
RESULTS = FilePath(os.environ.get("XMPPWS_INTEROP_RESULTS") or INTEROP.child("results").path)
ARTIFACTS = FilePath(os.environ.get("XMPPWS_ARTIFACTS") or ROOT.child("_artifacts").path)

USERS = ("alice", "bob")
PASSWORD = "interop-secret"
WS_PATH = "/xmpp-websocket"


def _missing(what):
    """
    Skip a test whose tool is missing on a developer's machine; on CI
    (C{CI} set in the environment), which installs every tool, fail it.

    @param what: why the test cannot run, and how to fix it.
    @type what: L{str}
    """
    if os.environ.get("CI"):
        raise AssertionError("%s; CI must provide it (scripts/_venv.sh installs it)" % (what,))
    raise SkipTest(what)


def nodeExecutable():
    """
    Find Node.js and the packages of C{tests/interop/package.json}.

    @return: the path of C{node}.
    @rtype: L{str}
    @raise SkipTest: when either is missing, outside CI.
    """
    local = FilePath(__file__).parent().parent().parent().descendant([".node", "bin", "node"])
    node = local.path if local.exists() else shutil.which("node")
    if node is None:
        _missing("Node.js is not installed (apt-get install nodejs npm)")
    if not NODE_MODULES.child("@xmpp").isdir():
        _missing(
            "the Node.js packages are not installed "
            "(run: npm ci --prefix tests/interop, or bash scripts/test.sh)"
        )
    return node


def chromiumExecutable():
    """
    Find Debian's Chromium (or the browser named by C{XMPPWS_CHROMIUM}).

    @return: the path of the browser.
    @rtype: L{str}
    @raise SkipTest: when it is missing, outside CI.
    """
    path = os.environ.get("XMPPWS_CHROMIUM") or shutil.which("chromium")
    if path is None or not os.access(path, os.X_OK):
        _missing("Chromium is not installed (apt-get install chromium)")
    return path


def _escape(value):
    """
    Escape a value for an endpoint description.
    """
    return value.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


class InteropServer:
    """
    The embedded server on two loopback ports, for clients that are not
    ours: C{ws://127.0.0.1:<port>/xmpp-websocket} and its C{wss://}
    twin, each user subscribed to every other.

    @ivar directory: holds the database and the certificate.
    @type directory: L{FilePath}
    @ivar domain: the XMPP domain served.
    @ivar users: the accounts, all with the password L{PASSWORD}.
    @ivar server: the L{XMPPServer}, once started.
    @ivar mucDomain: the group chat service's domain.
    @ivar muc: the L{InProcessComponent} of the group chat service, once
        started.
    @ivar certPath: the certificate a client must trust for C{wss://}.
    @ivar wsURL: the plain WebSocket URL, once started.
    @ivar wssURL: the TLS WebSocket URL, once started.
    @ivar httpPort: the plain port, once started.
    @ivar httpsPort: the TLS port, once started.
    """

    def __init__(self, directory, domain="localhost", users=USERS):
        self.directory = directory
        self.domain = domain
        self.users = users
        self.server = None
        self.mucDomain = "conference." + domain
        self.muc = None
        self._ports = []
        self._portNumbers = ()

    @inlineCallbacks
    def start(self, reactor):
        """
        Create the accounts and listen.

        @return: a L{Deferred} firing when both ports listen.
        """
        self.directory.makedirs(ignoreExistingDirectory=True)
        storage = Storage(self.directory.child("xmppws.sqlite").path)
        for user in self.users:
            storage.addUser(user, self.domain, PASSWORD)
            for other in self.users:
                if other != user:
                    storage.saveRosterItem(
                        user,
                        self.domain,
                        RosterRow(
                            "%s@%s" % (other, self.domain),
                            name=other.capitalize(),
                            subscription="both",
                            groups=["Interop"],
                        ),
                    )
        self.server = XMPPServer(storage, ServerConfig(domains=[self.domain]), reactor=reactor)
        installModules(self.server)
        self.muc = InProcessComponent(
            component.router(self.server),
            MUCService(
                MUCSettings(self.mucDomain),
                RoomStore.inDirectory(reactor, self.directory.path),
                reactor,
            ),
        )
        self.muc.startService()

        keyPath, self.certPath = writeCertificate(
            self.directory.child("tls"), names=("localhost", self.domain)
        )
        factory = XMPPWebSocketServerFactory(self.server.streamFactory(), reactor=reactor)
        dist = NODE_MODULES.child("converse.js").child("dist")
        page = INTEROP.child("browser").child("converse.html")
        chat = ChatPage(self.domain, WS_PATH, mucDomain=self.mucDomain, converseDir=dist.path)
        root = buildRoot(
            XMPPWebSocketResource(factory),
            WS_PATH,
            [self.domain],
            extra=[("/dist", File(dist.path)), ("/converse.html", File(page.path))],
            chat=("/chat", chat),
            mucDomain=self.mucDomain,
        )
        site = Site(root)
        plain = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(site)
        tls = yield serverFromString(
            reactor,
            "ssl:0:interface=127.0.0.1:privateKey=%s:certKey=%s"
            % (_escape(keyPath.path), _escape(self.certPath.path)),
        ).listen(site)
        self._ports = [plain, tls]
        self.httpPort = plain.getHost().port
        self.httpsPort = tls.getHost().port
        self._portNumbers = (self.httpPort, self.httpsPort)
        self.wsURL = "ws://127.0.0.1:%d%s" % (self.httpPort, WS_PATH)
        self.wssURL = "wss://localhost:%d%s" % (self.httpsPort, WS_PATH)

    def url(self, transport):
        """
        @param transport: C{"ws"} or C{"wss"}.
        @return: the WebSocket URL for it.
        """
        return {"ws": self.wsURL, "wss": self.wssURL}[transport]

    @inlineCallbacks
    def stop(self, reactor, timeout=10.0):
        """
        Stop listening, end what the clients left open and close the
        database.
        """
        for port in self._ports:
            yield port.stopListening()
        self._ports = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            connections = self._connections(reactor)
            if not connections:
                break
            if time.monotonic() > deadline - timeout / 2:
                for connection in connections:
                    connection.abortConnection()
            yield deferLater(reactor, 0.05, lambda: None)
        if self.server is not None:
            for resources in list(self.server.sessions.values()):
                for session in list(resources.values()):
                    self.server.endSession(session)
            # The archive's and personal data's databases, and threads.
            yield closeModules(self.server)
            self.server.storage.close()
        if self.muc is not None and self.muc.running:
            yield self.muc.stopService()

    def _connections(self, reactor):
        """
        The reactor's TCP connections to our ports.
        """
        found = []
        for selectable in set(reactor.getReaders()) | set(reactor.getWriters()):
            if not isinstance(selectable, tcp.Connection):
                continue
            try:
                port = selectable.getHost().port
            except OSError:
                continue
            if port in self._portNumbers:
                found.append(selectable)
        return found


class NodeRun:
    """
    The outcome of one Node.js script.

    @ivar result: the JSON object the script printed last, or L{None}.
    @ivar stdout: everything it printed on standard output.
    @ivar stderr: everything it printed on standard error.
    @ivar exitCode: its exit status, or L{None} if a signal ended it.
    @ivar timedOut: whether it was killed for running too long.
    @ivar seconds: how long it ran.
    """

    def __init__(self, stdout, stderr, exitCode, timedOut, seconds):
        self.stdout = stdout
        self.stderr = stderr
        self.exitCode = exitCode
        self.timedOut = timedOut
        self.seconds = seconds
        self.result = None
        for line in reversed(stdout.decode("utf-8", "replace").splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    self.result = json.loads(line)
                except ValueError:
                    continue
                break

    def describe(self, tail=3000):
        """
        A summary for a failure message: how it ended, and the end of its
        standard error.
        """
        how = (
            "killed after %.0f s" % (self.seconds,)
            if self.timedOut
            else "exit status %r after %.1f s" % (self.exitCode, self.seconds)
        )
        return "%s\n--- stderr (end) ---\n%s" % (
            how,
            self.stderr.decode("utf-8", "replace")[-tail:],
        )


class _NodeProtocol(ProcessProtocol):
    """
    Collect a child's output; stop it with SIGTERM when its time is up and
    with SIGKILL a few seconds later.
    """

    def __init__(self, reactor, timeout, finished):
        self.reactor = reactor
        self.timeout = timeout
        self.finished = finished
        self.out = []
        self.err = []
        self.timedOut = False
        self.started = time.monotonic()
        self._timers = []

    def connectionMade(self):
        self.transport.closeStdin()
        self._timers.append(self.reactor.callLater(self.timeout, self._terminate))

    def _terminate(self):
        self.timedOut = True
        self._signal("TERM")
        self._timers.append(self.reactor.callLater(5, self._signal, "KILL"))

    def _signal(self, name):
        try:
            self.transport.signalProcess(name)
        except Exception:
            pass

    def outReceived(self, data):
        self.out.append(data)

    def errReceived(self, data):
        self.err.append(data)

    def processEnded(self, reason):
        for timer in self._timers:
            if timer.active():
                timer.cancel()
        code = None
        if reason.check(ProcessDone, ProcessTerminated):
            code = reason.value.exitCode
        self.finished.callback(
            NodeRun(
                b"".join(self.out),
                b"".join(self.err),
                code,
                self.timedOut,
                time.monotonic() - self.started,
            )
        )


def runNode(reactor, script, config, timeout=90, env=None, logPath=None):
    """
    Run a script of C{tests/interop} with Node.js.

    @param script: its path under C{tests/interop}, e.g.
        C{"clients/xmppjs.mjs"}.
    @param config: passed as the script's one argument, as JSON.
    @param timeout: seconds before the script is killed.
    @param env: extra environment variables.
    @param logPath: where to keep its standard error, or L{None}.
    @type logPath: L{FilePath}
    @return: a L{Deferred} firing with a L{NodeRun}.
    """
    node = nodeExecutable()
    environment = dict(os.environ)
    environment.update(env or {})
    finished = Deferred()
    protocol = _NodeProtocol(reactor, timeout, finished)
    path = INTEROP.preauthChild(script).path
    reactor.spawnProcess(
        protocol,
        node,
        [node, path, json.dumps(config)],
        env=environment,
        path=INTEROP.path,
    )

    def keepLog(run):
        if logPath is not None:
            logPath.parent().makedirs(ignoreExistingDirectory=True)
            logPath.setContent(run.stderr)
        return run

    return finished.addCallback(keepLog)


def recordResult(client, transport, framing, run, result=None, via=None, part=None):
    """
    Keep the outcome of one client on one transport and framing for the
    generated matrix.

    @param run: the L{NodeRun}; a script that printed no result counts as
        a failure of every step.
    @param result: what to store instead of the result the script printed.
    @type result: L{dict}
    @param via: the route the client took when it was not the embedded
        server (such as C{'gateway to Prosody 0.12.3'}), or L{None}.
    @param part: when several tests fill one row of the matrix, a name
        for this test's part (the matrix merges the parts).
    @return: the stored record.
    @rtype: L{dict}
    """
    if result is None:
        result = run.result
    record = dict(result or {})
    record.setdefault("ok", False)
    if result is None:
        record["error"] = run.describe(tail=500)
    record.update(
        {
            "client": client,
            "transport": transport,
            "framing": framing,
            "seconds": round(run.seconds, 2),
            "recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"
            ),
        }
    )
    if via:
        record["via"] = via
    RESULTS.makedirs(ignoreExistingDirectory=True)
    name = "%s--%s--%s" % (client, transport, framing)
    if via:
        name += "--%s" % (via.split(" ", 1)[0],)
    if part:
        name += "--" + part
    name += ".json"
    RESULTS.child(name).setContent(json.dumps(record, indent=2, sort_keys=True).encode("utf-8"))
    return record
