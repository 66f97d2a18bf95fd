# -*- test-case-name: tests.test_bench -*-
"""
Real XMPP servers for the benchmarks and the tests that need one: Debian's
Prosody and ejabberd, and C{twistd xmppws} itself, each started on free
loopback ports with a generated configuration in a directory of its own,
with accounts created in bulk, and stopped with everything it started.

    with Prosody(directory) as prosody:
        prosody.addUsers(["alice", "bob"], "secret")
        prosody.start()
        url = prosody.webSocketURL      # ws://127.0.0.1:PORT/xmpp-websocket
        ...

C{start()} returns once the server accepts connections on every port;
C{stop()} asks the server to stop, waits, and kills whatever is left of
its processes.  Each server's log (and its standard output and error) is
kept in its directory for post-mortems: L{Peer.logTail} reads it.

Accounts are created without one C{prosodyctl} or C{ejabberdctl} process
per account:

    - xmppws: rows written into its SQLite database with the SCRAM keys
      computed once (every account gets the same password and salt);
    - Prosody: the C{accounts/NAME.dat} files of its internal storage,
      written directly (C{internal_hashed}: SCRAM keys, never the
      password) before it starts;
    - ejabberd: one C{ejabberdctl import_piefxis} of a XEP-0227 file
      holding precomputed SCRAM keys, once it runs.

There are no rate limits, shapers or traffic limits on any of them, and
every listener has a backlog of L{BACKLOG} connections.
ejabberd runs through C{ejabberdctl}, which switches to the C{ejabberd}
user when started as root: the directory is then handed to that user.
Its Erlang distribution listens on a port of its own
(C{ERL_DIST_PORT}), so no C{epmd} is started or needed; the node name
and cookie are parameters, and nodes that join a cluster use an C{epmd}
of ours on a loopback port instead (L{startEpmd}, C{epmdPort}).
"""

import base64
import hashlib
import hmac
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time

__all__ = [
    "Ejabberd",
    "startEpmd",
    "stopEpmd",
    "PeerError",
    "Prosody",
    "Xmppws",
    "available",
    "freePort",
    "running",
    "scramKeys",
]

INTERFACE = "127.0.0.1"
DOMAIN = "localhost"
ITERATIONS = 4096
SALT = b"xmppws-bench-salt-0123"
START_TIMEOUT = 30.0
# Listen backlog of every server: bursts of connections (a benchmark
# opening thousands of sessions) are queued, not dropped and retried.
BACKLOG = 1024
STOP_TIMEOUT = 15.0
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class PeerError(Exception):
    """
    A server could not be started, configured or stopped; the message
    ends with the tail of its log.
    """


def freePort(interface=INTERFACE):
    """
    A TCP port that nothing listens on right now.

    @rtype: L{int}
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((interface, 0))
        return s.getsockname()[1]


def scramKeys(password, hashName="sha1", salt=SALT, iterations=ITERATIONS):
    """
    The SCRAM keys (RFC 5802) of a password.

    @param hashName: a L{hashlib} name, C{'sha1'} or C{'sha256'}.
    @return: C{(storedKey, serverKey)}, L{bytes}.
    """
    salted = hashlib.pbkdf2_hmac(hashName, password.encode("utf-8"), salt, iterations)
    clientKey = hmac.new(salted, b"Client Key", hashName).digest()
    serverKey = hmac.new(salted, b"Server Key", hashName).digest()
    return hashlib.new(hashName, clientKey).digest(), serverKey


def available(name):
    """
    Whether a server can be started here.

    @param name: C{'xmppws'}, C{'prosody'} or C{'ejabberd'}.
    @return: L{None} if it can, else why not.
    """
    if name == "xmppws":
        return None
    if name == "prosody":
        return None if shutil.which("prosody") else "prosody is not installed"
    if name == "ejabberd":
        if not os.path.exists("/usr/sbin/ejabberdctl"):
            return "ejabberd is not installed"
        if os.getuid() != 0:
            try:
                if pwd.getpwuid(os.getuid()).pw_name != "ejabberd":
                    return "ejabberdctl runs only as root or as the ejabberd user"
            except KeyError:
                return "ejabberdctl runs only as root or as the ejabberd user"
        return None
    raise ValueError(name)


def debianVersion(package):
    """
    The installed version of a Debian package, or L{None}.
    """
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", package],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.decode().strip() or None


def _children():
    """
    @return: a mapping of every process id to the list of its children.
    """
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % (entry,), "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def descendants(pid):
    """
    Every process below C{pid}, children first.

    @rtype: L{list} of L{int}
    """
    tree = _children()
    found, todo = [], [pid]
    while todo:
        for child in tree.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def _startTime(pid):
    """
    When a process started (clock ticks since boot), or L{None} if it
    is gone (or a zombie).
    """
    try:
        with open("/proc/%d/stat" % (pid,), "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    if fields[0] == b"Z":
        return None
    return int(fields[19])


def running(pid):
    """
    Whether a process exists and is not a zombie.
    """
    return _startTime(pid) is not None


def _processName(pid):
    try:
        with open("/proc/%d/comm" % (pid,)) as f:
            return f.read().strip()
    except OSError:
        return None


def _waitForPorts(ports, process, deadline, describe):
    """
    Wait until something accepts connections on every port.

    @raise PeerError: when the process exits or the deadline passes.
    """
    for port in ports:
        while True:
            if process.poll() is not None:
                raise PeerError("%s exited with status %s" % (describe(), process.returncode))
            try:
                socket.create_connection((INTERFACE, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise PeerError("%s: nothing listens on port %d" % (describe(), port))
                time.sleep(0.05)


class Peer:
    """
    One server process in a directory of its own.

    @ivar name: C{'xmppws'}, C{'prosody'} or C{'ejabberd'}.
    @ivar directory: where its configuration, data and logs are.
    @ivar domain: the XMPP domain it serves.
    @ivar c2sPort: its client-to-server TCP port.
    @ivar httpPort: its HTTP port (WebSocket, and BOSH where there is one).
    @ivar process: the L{subprocess.Popen} we started, or L{None}.
    @ivar logPath: its log file.
    @ivar webSocketPath: the HTTP path of its WebSocket endpoint.
    @ivar boshPath: the HTTP path of its BOSH endpoint, or L{None}.
    """

    name = None
    webSocketPath = "/xmpp-websocket"
    boshPath = None
    package = None

    def __init__(self, directory, domain=DOMAIN, c2sPort=None, httpPort=None, tls=False,
                 cpus=None):
        """
        @param directory: a directory of its own (created if missing).
        @param tls: offer STARTTLS on the c2s port (and serve https on
            another port where supported) with a generated self-signed
            certificate, C{directory/tls/cert.pem} (its own CA).
        @param cpus: CPUs to run the server on, or L{None} for any.
        """
        self.directory = os.path.abspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.domain = domain
        self.c2sPort = c2sPort or freePort()
        self.httpPort = httpPort or freePort()
        self.tls = tls
        self.cpus = cpus
        self.process = None
        self.logPath = os.path.join(self.directory, self.name + ".log")
        self.outputPath = os.path.join(self.directory, "output.log")
        self.certPath = self.keyPath = None
        if tls:
            from twisted.python.filepath import FilePath

            from tests.certs import writeCertificate

            key, cert = writeCertificate(FilePath(self.directory).child("tls"), (domain,))
            self.keyPath, self.certPath = key.path, cert.path

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def webSocketURL(self):
        return "ws://%s:%d%s" % (INTERFACE, self.httpPort, self.webSocketPath)

    @property
    def boshURL(self):
        if self.boshPath is None:
            return None
        return "http://%s:%d%s" % (INTERFACE, self.httpPort, self.boshPath)

    @property
    def pid(self):
        """
        The process doing the work (for CPU time and memory): the server
        itself, not a wrapper script.
        """
        return self.process.pid

    def version(self):
        return debianVersion(self.package) if self.package else None

    def logTail(self, lines=40):
        """
        The last lines of the server's log and output, for error messages.
        """
        text = []
        for path in (self.logPath, self.outputPath):
            try:
                with open(path, "rb") as f:
                    f.seek(0, os.SEEK_END)
                    f.seek(max(0, f.tell() - 16384))
                    tail = f.read().decode("utf-8", "replace").splitlines()[-lines:]
            except OSError:
                continue
            text.append("--- %s\n%s" % (path, "\n".join(tail)))
        return "\n".join(text)

    def _error(self, message):
        return PeerError("%s: %s\n%s" % (self.name, message, self.logTail()))

    def _spawn(self, command, env=None, cwd=None):
        output = open(self.outputPath, "ab")
        try:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd or self.directory,
                start_new_session=True,
                preexec_fn=self._preexec,
            )
        finally:
            output.close()

    def _preexec(self):
        """
        Run in the child before the server starts: pin it to its CPUs.
        """
        if self.cpus:
            os.sched_setaffinity(0, self.cpus)

    def _ports(self):
        return [self.c2sPort, self.httpPort]

    def start(self, timeout=START_TIMEOUT):
        """
        Start the server and wait until it accepts connections.

        @return: C{self}
        @raise PeerError: if it does not start in time.
        """
        self._launch()
        try:
            _waitForPorts(self._ports(), self.process, time.monotonic() + timeout,
                          lambda: self._error("not started").args[0])
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout=STOP_TIMEOUT):
        """
        Stop the server, gently first, and kill everything it left.
        Safe to call twice, or when it never started.
        """
        if self.process is None:
            return
        process, self.process = self.process, None
        # Remember what ran below it, with start times, so that only
        # those very processes are killed, never a later one that got a
        # recycled process id.
        below = [(pid, _startTime(pid)) for pid in descendants(process.pid)]
        if process.poll() is None:
            self._terminate(process)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        if process.returncode is None:
            # Still our unreaped child, so its process group is ours too.
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                raise PeerError("%s: process %d does not exit" % (self.name, process.pid))
        deadline = time.monotonic() + timeout
        for pid, started in below:
            if started is not None and _startTime(pid) == started:
                self._kill(pid)
            while started is not None and _startTime(pid) == started \
                    and time.monotonic() < deadline:
                time.sleep(0.02)

    @staticmethod
    def _kill(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass

    def _terminate(self, process):
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except OSError:
            pass


class Xmppws(Peer):
    """
    C{twistd -n xmppws} with its own data directory, every limit that
    could throttle a benchmark off, and warnings only in its log.

    @ivar extraArgs: more C{twistd xmppws} options.
    """

    name = "xmppws"

    def __init__(self, directory, extraArgs=(), profile=None, **kwargs):
        """
        @param extraArgs: more options for C{twistd xmppws}.
        @param profile: a command prefix to run the server under (such as
            C{['py-spy', 'record', '-o', 'out.svg', '--']}), or L{None}.
        """
        super().__init__(directory, **kwargs)
        self.extraArgs = list(extraArgs)
        self.profile = profile
        self.dataDir = os.path.join(self.directory, "data")
        os.makedirs(self.dataDir, exist_ok=True)

    def version(self):
        import xmppws

        return getattr(xmppws, "__version__", None) or _gitDescribe()

    def addUsers(self, usernames, password):
        """
        Create accounts in bulk, in one transaction; all share C{password}
        (and one salt, so the SCRAM keys are computed once).
        """
        import sqlite3

        from xmppws.c2s.storage import MECHANISMS, Storage

        path = os.path.join(self.dataDir, "xmppws.sqlite")
        Storage(path).close()  # creates the schema
        keys = {}
        for mechanism in MECHANISMS:
            hashName = mechanism.split("-", 1)[1].replace("-", "").lower()
            keys[mechanism] = scramKeys(password, hashName)
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.execute("BEGIN")
            now = time.time()
            db.executemany(
                "INSERT OR REPLACE INTO accounts VALUES (?, ?, ?)",
                [(u, self.domain, now) for u in usernames],
            )
            for mechanism, (stored, server) in keys.items():
                db.executemany(
                    "INSERT OR REPLACE INTO scram VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(u, self.domain, mechanism, SALT, stored, server, ITERATIONS)
                     for u in usernames],
                )
            db.execute("COMMIT")
        finally:
            db.close()

    def _launch(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["XMPPWS_PEER_LOG"] = self.logPath
        command = list(self.profile or []) + [
            sys.executable, "-c",
            "import sys; sys.argv[0] = 'twistd'; "
            "from twisted.scripts.twistd import run; run()",
            "-n", "--pidfile", "", "--logger", "tests.peers.warningLogObserver",
            "xmppws",
            "--data-dir", self.dataDir,
            "--domain", self.domain,
            "--listen", "tcp:%d:interface=%s:backlog=%d" % (self.httpPort, INTERFACE, BACKLOG),
            "--c2s", "tcp:%d:interface=%s:backlog=%d" % (self.c2sPort, INTERFACE, BACKLOG),
            "--stanza-rate", "0",
            "--byte-rate", "0",
            "--max-connections", "1000000",
            "--max-connections-per-ip", "1000000",
            "--idle-timeout", "0",
            "--open-timeout", "0",
            "--ping-interval", "0",
            "--plain", "always",
            "--shutdown-timeout", "1",
        ]
        if self.tls:
            command += ["--tls-key", self.keyPath, "--tls-cert", self.certPath]
        self._spawn(command + self.extraArgs, env=env)

    @property
    def pid(self):
        if self.profile:
            for pid in descendants(self.process.pid):
                if _processName(pid) and _processName(pid).startswith("python"):
                    return pid
        return self.process.pid

    def _terminate(self, process):
        try:
            os.kill(process.pid, signal.SIGINT if self.profile else signal.SIGTERM)
        except OSError:
            pass


def warningLogObserver():
    """
    A twistd log observer (C{--logger tests.peers.warningLogObserver})
    writing warnings and worse to the file named by C{XMPPWS_PEER_LOG}.
    """
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        textFileLogObserver,
    )

    output = open(os.environ["XMPPWS_PEER_LOG"], "a", encoding="utf-8")
    return FilteringLogObserver(
        textFileLogObserver(output),
        [LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)],
    )


def _gitDescribe():
    try:
        out = subprocess.run(
            ["git", "-C", ROOT, "describe", "--always", "--dirty"],
            capture_output=True, timeout=10, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.decode().strip() or None


def _lua(value):
    """
    A Lua literal for a string, number or list of them.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "{ " + "; ".join(_lua(v) for v in value) + " }"
    return '"' + "".join(
        c if c.isalnum() or c in " ._-/:@+=,()" else "\\%03d" % (ord(c),) for c in str(value)
    ) + '"'


class Prosody(Peer):
    """
    Prosody 0.12 (Debian), in the foreground, with C{mod_websocket} and
    C{mod_bosh} on one HTTP port, C{internal_hashed} accounts and no
    s2s.  Run as whoever runs this (Prosody itself does not switch users;
    only C{prosodyctl} does).

    @ivar passwordHash: C{'SHA-1'} (Prosody's default) or C{'SHA-256'}:
        the one SCRAM variant it then offers.
    """

    name = "prosody"
    package = "prosody"
    boshPath = "/http-bind"

    def __init__(self, directory, passwordHash="SHA-1", extraConfig="", extraModules=(),
                 **kwargs):
        """
        @param extraModules: more Prosody modules to enable (such as
            C{"mam"}).
        """
        super().__init__(directory, **kwargs)
        self.passwordHash = passwordHash
        self.extraConfig = extraConfig
        self.extraModules = list(extraModules)
        self.dataDir = os.path.join(self.directory, "data")
        os.makedirs(self.dataDir, exist_ok=True)
        self.configPath = os.path.join(self.directory, "prosody.cfg.lua")

    def addUsers(self, usernames, password):
        """
        Write the account files of Prosody's internal storage directly;
        call before L{start}.
        """
        hashName = self.passwordHash.replace("-", "").lower()
        stored, server = scramKeys(password, hashName)
        record = (
            "return {\n\t[\"iteration_count\"] = %d;\n\t[\"salt\"] = %s;\n"
            "\t[\"server_key\"] = \"%s\";\n\t[\"stored_key\"] = \"%s\";\n};\n"
            % (ITERATIONS, _lua(SALT.decode("ascii")), server.hex(), stored.hex())
        ).encode("ascii")
        accounts = os.path.join(self.dataDir, _prosodyEncode(self.domain), "accounts")
        os.makedirs(accounts, exist_ok=True)
        for name in usernames:
            with open(os.path.join(accounts, _prosodyEncode(name) + ".dat"), "wb") as f:
                f.write(record)

    def _config(self):
        lines = [
            "-- generated by tests/peers.py",
            "pidfile = %s" % _lua(os.path.join(self.directory, "prosody.pid")),
            "data_path = %s" % _lua(self.dataDir),
            "log = { { levels = { min = \"warn\" }, to = \"file\", filename = %s } }"
            % _lua(self.logPath),
            "admins = { }",
            "certificates = %s" % _lua(os.path.join(self.directory, "tls")),
            "modules_enabled = { \"roster\"; \"saslauth\"; \"disco\"; \"ping\"; "
            "\"bosh\"; \"websocket\";%s%s }" % (
                " \"tls\";" if self.tls else "",
                "".join(" %s;" % (_lua(name),) for name in self.extraModules)),
            "modules_disabled = { \"s2s\"; \"offline\"; }",
            "authentication = \"internal_hashed\"",
            "password_hash = %s" % _lua(self.passwordHash),
            "default_iteration_count = %d" % ITERATIONS,
            "storage = \"internal\"",
            "c2s_ports = { %d }" % self.c2sPort,
            "c2s_interfaces = { %s }" % _lua(INTERFACE),
            "c2s_direct_tls_ports = { }",
            "s2s_ports = { }",
            "component_ports = { }",
            "http_ports = { %d }" % self.httpPort,
            "http_interfaces = { %s }" % _lua(INTERFACE),
            "https_ports = { }",
            "c2s_require_encryption = false",
            "allow_unencrypted_plain_auth = true",
            "consider_websocket_secure = true",
            "consider_bosh_secure = true",
            "cross_domain_websocket = true",
            "cross_domain_bosh = true",
            "limits = { }",
            "bosh_max_inactivity = 60",
            "use_libevent = false",
            "network_settings = { tcp_backlog = %d }" % BACKLOG,
        ]
        if self.tls:
            lines.append("ssl = { key = %s; certificate = %s; }"
                         % (_lua(self.keyPath), _lua(self.certPath)))
        lines.append(self.extraConfig)
        lines.append("VirtualHost %s" % _lua(self.domain))
        return "\n".join(lines) + "\n"

    def _launch(self):
        with open(self.configPath, "w") as f:
            f.write(self._config())
        os.makedirs(os.path.join(self.directory, "tls"), exist_ok=True)
        self._user = None
        if os.getuid() == 0:
            # Prosody refuses to run as root (mod_posix); run it as its
            # own user, as prosodyctl would.
            self._user = pwd.getpwnam("prosody")
            _handOver(self.directory, self._user)
        self._spawn(["prosody", "-F", "--config", self.configPath])

    def _preexec(self):
        super()._preexec()
        if self._user is not None:
            os.setgroups([])
            os.setgid(self._user.pw_gid)
            os.setuid(self._user.pw_uid)

    def _spawn(self, command, env=None, cwd=None):
        env = dict(os.environ if env is None else env)
        if self._user is not None:
            env["HOME"] = self.dataDir
        super()._spawn(command, env=env, cwd=cwd)


def startEpmd(port=None):
    """
    Start an Erlang port mapper of our own on a loopback port, for
    ejabberd nodes that cluster (L{Ejabberd} with C{epmdPort}).

    @return: its port.
    """
    port = port or freePort()
    subprocess.run(
        ["epmd", "-daemon", "-port", str(port), "-address", INTERFACE],
        check=True, timeout=30, stdin=subprocess.DEVNULL,
        env=dict(os.environ, ERL_EPMD_ADDRESS=INTERFACE),
    )
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            socket.create_connection((INTERFACE, port), timeout=1).close()
            return port
        except OSError:
            if time.monotonic() > deadline:
                raise PeerError("epmd does not listen on port %d" % (port,))
            time.sleep(0.05)


def stopEpmd(port):
    """
    Stop the port mapper of L{startEpmd}, once its nodes have stopped.
    """
    subprocess.run(["epmd", "-port", str(port), "-kill"], timeout=30, check=False,
                   capture_output=True, stdin=subprocess.DEVNULL)


def _handOver(directory, user):
    """
    Give a directory tree to the user a server runs as, and let that user
    reach it through its parents (search permission only).

    @type user: L{pwd.struct_passwd}
    """
    for top, dirs, files in os.walk(directory):
        for name in [top] + [os.path.join(top, n) for n in dirs + files]:
            os.chown(name, user.pw_uid, user.pw_gid)
    path = directory
    while path not in ("/", ""):
        mode = os.stat(path).st_mode
        if not mode & 0o001:
            os.chmod(path, mode | 0o001)
        path = os.path.dirname(path)


def _prosodyEncode(name):
    """
    A name as Prosody's datamanager spells it in a path: every byte that
    is not a letter or digit as C{%xx}.
    """
    return "".join(
        c if c.isascii() and c.isalnum() else "".join("%%%02x" % b for b in c.encode("utf-8"))
        for c in name
    )


class Ejabberd(Peer):
    """
    ejabberd 23.01 (Debian) through C{ejabberdctl foreground}, with
    C{ejabberd_http_ws} and C{mod_bosh} on one HTTP port, Mnesia storage
    with SCRAM keys, and no shapers.

    @ivar nodeName: the Erlang node name.
    @ivar cookie: the Erlang cookie.
    @ivar distPort: the port of its Erlang distribution (and of every
        C{ejabberdctl} talking to it).
    """

    name = "ejabberd"
    package = "ejabberd"
    boshPath = "/bosh"

    def __init__(self, directory, nodeName="ejabberd@localhost", cookie=None,
                 distPort=None, epmdPort=None, scramHash="sha", proxyProtocol=False,
                 extraConfig="", **kwargs):
        """
        @param nodeName: the Erlang node name; nodes of one cluster need
            different ones (C{'a@localhost'}, C{'b@localhost'}).
        @param cookie: the Erlang cookie; nodes of one cluster share it.
        @param distPort: the Erlang distribution port without C{epmd}
            (chosen when L{None}); ignored with C{epmdPort}.
        @param epmdPort: use the C{epmd} on this loopback port (see
            L{startEpmd}) instead of a fixed distribution port, as nodes
            that join one cluster on one machine must.
        @param scramHash: C{'sha'} (SCRAM-SHA-1, the default) or
            C{'sha256'}: the one SCRAM variant it stores and offers.
        @param proxyProtocol: accept the PROXY protocol on the c2s port.
        @param extraConfig: YAML appended to the generated configuration.
        """
        super().__init__(directory, **kwargs)
        self.nodeName = nodeName
        self.cookie = cookie or base64.b32encode(os.urandom(15)).decode("ascii")
        self.epmdPort = epmdPort
        self.distPort = None if epmdPort else (distPort or freePort())
        self.scramHash = scramHash
        self.proxyProtocol = proxyProtocol
        self.extraConfig = extraConfig
        self.configPath = os.path.join(self.directory, "ejabberd.yml")
        self.ctlConfigPath = os.path.join(self.directory, "ejabberdctl.cfg")
        self.spoolDir = os.path.join(self.directory, "spool")
        self.logDir = os.path.join(self.directory, "logs")
        self.logPath = os.path.join(self.logDir, "ejabberd.log")
        self._pendingUsers = []
        self._write()

    def _write(self):
        os.makedirs(self.spoolDir, exist_ok=True)
        os.makedirs(self.logDir, exist_ok=True)
        c2s = [
            "  -",
            "    port: %d" % self.c2sPort,
            "    ip: \"%s\"" % INTERFACE,
            "    module: ejabberd_c2s",
            "    backlog: %d" % BACKLOG,
            "    max_stanza_size: 262144",
            "    shaper: none",
            "    access: all",
            "    starttls: %s" % ("true" if self.tls else "false"),
            "    starttls_required: false",
        ]
        if self.proxyProtocol:
            c2s.append("    use_proxy_protocol: true")
        config = [
            "# generated by tests/peers.py",
            "hosts:",
            "  - \"%s\"" % self.domain,
            "loglevel: warning",
            "log_rotate_count: 0",
        ] + (["certfiles:", "  - \"%s\"" % self.certPath, "  - \"%s\"" % self.keyPath]
             if self.tls else []) + [
            "listen:",
        ] + c2s + [
            "  -",
            "    port: %d" % self.httpPort,
            "    ip: \"%s\"" % INTERFACE,
            "    module: ejabberd_http",
            "    backlog: %d" % BACKLOG,
            "    request_handlers:",
            "      %s: ejabberd_http_ws" % self.webSocketPath,
            "      %s: mod_bosh" % self.boshPath,
            "shaper: {}",
            "shaper_rules: {}",
            "acl:",
            "  local:",
            "    user_regexp: \"\"",
            "access_rules:",
            "  local:",
            "    allow: local",
            "  c2s:",
            "    allow: all",
            "auth_method: internal",
            "auth_password_format: scram",
            "auth_scram_hash: %s" % self.scramHash,
            "auth_cache_size: 100000",
            "s2s_access: none",
            "modules:",
            "  mod_bosh: {}",
            "  mod_disco: {}",
            "  mod_ping: {}",
            "  mod_roster: {}",
            self.extraConfig,
        ]
        with open(self.configPath, "w") as f:
            f.write("\n".join(config) + "\n")
        # su(1) applies the PAM limits (1024 open files); start the
        # Erlang VM through a wrapper that raises them to the hard limit
        # it was given by us.
        wrapper = os.path.join(self.directory, "erl")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\n# generated by tests/peers.py\n"
                    "ulimit -n \"$(ulimit -Hn)\" 2>/dev/null\nexec /usr/bin/erl \"$@\"\n")
        os.chmod(wrapper, 0o755)
        if self.epmdPort:
            distribution = "export ERL_EPMD_PORT=%d\nERL_EPMD_ADDRESS=%s\n" % (
                self.epmdPort, INTERFACE)
        else:
            distribution = "ERL_DIST_PORT=%d\n" % (self.distPort,)
        with open(self.ctlConfigPath, "w") as f:
            f.write(
                "# generated by tests/peers.py\n"
                "ERL=%s\n"
                "ERL_OPTIONS=\"-setcookie %s -env ERL_CRASH_DUMP_BYTES 0\"\n"
                "%s"
                "INET_DIST_INTERFACE=%s\n" % (wrapper, self.cookie, distribution, INTERFACE)
            )
        self._handOver()

    def _handOver(self):
        """
        When we are root, C{ejabberdctl} runs the node as the C{ejabberd}
        user: give it the directory (and let it reach it).
        """
        if os.getuid() == 0:
            _handOver(self.directory, pwd.getpwnam("ejabberd"))

    def _ctl(self, *args, timeout=120):
        command = [
            "ejabberdctl",
            "--config", self.configPath,
            "--ctl-config", self.ctlConfigPath,
            "--logs", self.logDir,
            "--spool", self.spoolDir,
            "--node", self.nodeName,
        ] + list(args)
        return command if timeout is None else subprocess.run(
            command, capture_output=True, timeout=timeout, check=False, cwd=self.directory,
            stdin=subprocess.DEVNULL,
        )

    def _launch(self):
        self._spawn(self._ctl("foreground", timeout=None))

    @property
    def pid(self):
        """
        The C{beam.smp} process (all of ejabberd's threads).
        """
        for pid in descendants(self.process.pid):
            if _processName(pid) == "beam.smp":
                return pid
        raise self._error("no beam.smp process")

    def start(self, timeout=START_TIMEOUT):
        super().start(timeout)
        if self._pendingUsers:
            users, self._pendingUsers = self._pendingUsers, []
            for usernames, password in users:
                self.addUsers(usernames, password)
        return self

    def addUsers(self, usernames, password):
        """
        Create accounts in bulk with one C{ejabberdctl import_piefxis} of
        a XEP-0227 file holding precomputed SCRAM keys; before L{start},
        they are created as it starts.
        """
        usernames = list(usernames)
        if self.process is None:
            self._pendingUsers.append((usernames, password))
            return
        hashName = {"sha": "sha1", "sha256": "sha256", "sha512": "sha512"}[self.scramHash]
        stored, server = scramKeys(password, hashName)
        # ejabberd 23.01 keeps SCRAM keys base64-encoded in Mnesia, but its
        # XEP-0227 import decodes them once before storing them: encode
        # them twice so that they are stored as its SASL code reads them.
        twice = lambda data: base64.b64encode(base64.b64encode(data)).decode()
        secret = "scram:%s%s,%s,%s,%d" % (
            "" if self.scramHash == "sha" else self.scramHash + ",",
            twice(stored),
            twice(server),
            twice(SALT),
            ITERATIONS,
        )
        path = os.path.join(self.directory, "users-%d.xml" % (time.monotonic_ns(),))
        with open(path, "w") as f:
            f.write("<?xml version='1.0' encoding='UTF-8'?>\n"
                    "<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='%s'>\n" % self.domain)
            for name in usernames:
                f.write("<user name='%s' password='%s'/>\n" % (name, secret))
            f.write("</host>\n</server-data>\n")
        self._handOver()
        result = self._ctl("import_piefxis", path, timeout=60 + len(usernames) / 100)
        if result.returncode != 0:
            raise self._error("import_piefxis failed: %s" % (result.stdout + result.stderr).decode(
                "utf-8", "replace"))

    def _terminate(self, process):
        try:
            result = self._ctl("stop", timeout=STOP_TIMEOUT)
            if result.returncode == 0:
                return
        except subprocess.TimeoutExpired:
            pass
        for pid in descendants(process.pid):
            if _processName(pid) == "beam.smp":
                self._kill(pid)
