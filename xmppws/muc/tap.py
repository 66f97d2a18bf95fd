# -*- test-case-name: tests.test_muc_process -*-
"""
C{twistd xmppws-muc}: the group chat service as an external component
(XEP-0114) of any XMPP server.

    twistd -n xmppws-muc --domain conference.example.org \\
        --connect tcp:127.0.0.1:5347 --secret-file /etc/xmppws/muc.secret

The server must accept a component at that domain with that secret:
C{twistd xmppws --component 5347 --component-secret ...} (with
C{--muc-domain none}, so that its own service does not take the same
domain), Prosody's C{Component "conference.example.org"} with
C{component_secret}, ejabberd's C{ejabberd_service} listener.  Rooms are
kept in C{muc.sqlite} in the data directory.
"""

import os
import signal
import threading

from twisted.application.service import MultiService, Service
from twisted.logger import Logger
from twisted.internet.endpoints import clientFromString
from twisted.python import usage

from xmppws.c2s.archive import parseDuration
from xmppws.c2s.asyncdb import ThreadRunner
from xmppws.c2s import jid as jidlib
from xmppws.config import FLAG, VALUE, ConfigError, loadConfig
from xmppws.muc.component import ExternalComponent
from xmppws.muc.service import MUCService
from xmppws.muc.settings import MUCSettings
from xmppws.muc.storage import RoomStore

__all__ = ["Options", "makeService"]

DEFAULT_CONNECT = "tcp:host=127.0.0.1:port=5347"

_VALUES = [
    ("config", None, "Read settings from this TOML file; the command line overrides it."),
    ("domain", "conference.localhost", "The component's domain: the group chat service's address."),
    ("connect", DEFAULT_CONNECT, "The server's component port, as a client endpoint string."),
    ("secret", None, "The component's shared secret (better --secret-file or the --config file)."),
    ("secret-file", None, "Read the shared secret from this file (its first line)."),
    ("data-dir", "xmppws-muc-data", "Directory of the room database."),
    ("name", MUCSettings.name, "The service's name in service discovery."),
    (
        "max-rooms-per-user",
        str(MUCSettings.maxRoomsPerUser),
        "Rooms one user may own; 0 for no limit.",
    ),
    (
        "max-occupants",
        str(MUCSettings.maxOccupants),
        "Occupants a room holds at most (owners and admins may still enter).",
    ),
    ("max-history", str(MUCSettings.maxHistory), "Messages a room keeps for newcomers at most."),
    (
        "max-message-size",
        str(MUCSettings.maxMessageSize),
        "Largest message to a room or an occupant, in bytes.",
    ),
    (
        "archive-expires-after",
        "1w",
        "How long rooms' archived messages (XEP-0313) are kept: 12h, 30d, 1w, "
        "1y, or never.",
    ),
    (
        "max-archive-messages",
        str(MUCSettings.maxArchiveMessages),
        "Messages one room's archive keeps at most (the oldest make room).",
    ),
]

_FLAGS = ("public-rooms", "persistent-rooms", "no-archive")


class Options(usage.Options):
    """
    Options of C{twistd xmppws-muc}; after parsing, C{settings} holds the
    L{MUCSettings} and C{endpoint} the server's endpoint.
    """

    synopsis = "--domain DOMAIN --secret-file FILE [options]"
    longdesc = (
        "Run a group chat service (XEP-0045 multi-user chat) as an external "
        "component (XEP-0114) of an XMPP server, connecting to its component port."
    )
    optParameters = [
        [name, None, None, help + ("" if default is None else " [default: %s]" % (default,))]
        for name, default, help in _VALUES
    ]
    compData = usage.Completions(
        optActions={
            "config": usage.CompleteFiles("*.toml"),
            "secret-file": usage.CompleteFiles(),
            "data-dir": usage.CompleteDirs(),
        }
    )

    reactor = None

    def __init__(self):
        usage.Options.__init__(self)
        for name in _FLAGS:
            self[name] = None

    def opt_public_rooms(self):
        """
        New rooms are listed in the service's room list.
        """
        self["public-rooms"] = True

    def opt_persistent_rooms(self):
        """
        New rooms stay when empty and across restarts.
        """
        self["persistent-rooms"] = True

    def opt_no_archive(self):
        """
        Rooms keep no message archives (XEP-0313).
        """
        self["no-archive"] = True

    def _getReactor(self):
        if self.reactor is None:
            from twisted.internet import reactor

            self.reactor = reactor
        return self.reactor

    def _fail(self, name, message):
        raise usage.UsageError("--%s: %s" % (name, message))

    def postOptions(self):
        fileSettings = {}
        if self["config"] is not None:
            kinds = {name: VALUE for name, _, _ in _VALUES if name != "config"}
            kinds.update((name, FLAG) for name in _FLAGS)
            try:
                fileSettings = loadConfig(self["config"], kinds)
            except ConfigError as e:
                raise usage.UsageError(str(e))
        for name, default, _ in _VALUES:
            if self[name] is None:
                self[name] = fileSettings.get(name, default)
        for name in _FLAGS:
            if self[name] is None:
                self[name] = bool(fileSettings.get(name, False))
        try:
            domain = jidlib.prepDomainpart(self["domain"])
        except jidlib.JIDMalformed as e:
            self._fail("domain", "%r is not a valid domain: %s" % (self["domain"], e.reason))
        self.secret = self._secret()
        try:
            self.endpoint = clientFromString(self._getReactor(), self["connect"])
        except (ValueError, TypeError, KeyError) as e:
            self._fail("connect", "%s: %s" % (self["connect"], e))
        self.settings = MUCSettings(
            domain,
            name=self["name"],
            maxRoomsPerUser=self._number("max-rooms-per-user", 0),
            maxOccupants=self._number("max-occupants", 1),
            maxHistory=self._number("max-history", 0),
            maxMessageSize=self._number("max-message-size", 1),
            defaultPublic=self["public-rooms"],
            defaultPersistent=self["persistent-rooms"],
            archive=not self["no-archive"],
            archiveRetention=self._duration("archive-expires-after"),
            maxArchiveMessages=self._number("max-archive-messages", 1),
        )

    def _duration(self, name):
        try:
            return parseDuration(str(self[name]))
        except ValueError as e:
            self._fail(name, "%r is %s" % (self[name], e))

    def _secret(self):
        if self["secret"] is not None and self["secret-file"] is not None:
            self._fail("secret", "give --secret or --secret-file, not both")
        if self["secret-file"] is not None:
            try:
                with open(self["secret-file"], encoding="utf-8") as f:
                    secret = f.readline().strip()
            except OSError as e:
                self._fail("secret-file", "cannot read %s: %s" % (self["secret-file"], e.strerror))
        else:
            secret = self["secret"]
        if not secret:
            self._fail("secret", "the component needs its shared secret (--secret-file)")
        return secret

    def _number(self, name, minimum):
        try:
            value = int(self[name])
        except (TypeError, ValueError):
            self._fail(name, "must be a whole number, not %r" % (self[name],))
        if value < minimum:
            self._fail(name, "must be at least %d" % (minimum,))
        return value


class _StopOnSignals(Service):
    """
    Take SIGTERM and SIGINT from the reactor: stop gracefully and exit
    with status 0, as C{twistd xmppws} does (the reactor's own handlers
    make twistd end by the signal).
    """

    log = Logger()

    def __init__(self, reactor):
        self.reactor = reactor

    def startService(self):
        Service.startService(self)
        if threading.current_thread() is threading.main_thread():
            self.reactor.callWhenRunning(self._install)

    def _install(self):
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, self._received)

    def _received(self, number, frame):
        self.reactor.callFromThread(self._stop, signal.Signals(number).name)

    def _stop(self, name):
        self.log.info("Received {signal}; stopping", signal=name)
        self.reactor.stop()


def makeService(options):
    """
    The external component, its room store and its connection.

    @rtype: L{MultiService}
    """
    reactor = options._getReactor()
    store = RoomStore.inDirectory(
        reactor, os.path.abspath(options["data-dir"]), ThreadRunner(reactor, "xmppws-muc-db")
    )
    muc = MUCService(options.settings, store, reactor)
    service = MultiService()
    ExternalComponent(
        reactor, options.endpoint, options.secret, muc, description=options["connect"]
    ).setServiceParent(service)
    _StopOnSignals(reactor).setServiceParent(service)
    return service
