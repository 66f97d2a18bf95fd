# -*- test-case-name: tests.test_tap -*-
"""
C{twistd xmppws}: the command line (and configuration file) of the
embedded XMPP over WebSocket service, and of its gateway mode
(C{--upstream}).

    twistd -n xmppws
    twistd -n xmppws --domain example.org --listen tcp:5280:interface=127.0.0.1 \\
        --c2s tcp:5222 --tls-key key.pem --tls-cert fullchain.pem

Every setting is checked here, before anything starts: an invalid one
is reported with the option's name and the service does not start.
L{makeService} then builds the L{xmppws.service.XMPPService}.
"""

import os
from urllib.parse import urlsplit

from twisted.internet.endpoints import clientFromString
from twisted.python import usage

from xmppws import _handshake, _tls
from xmppws.c2s import jid as jids
from xmppws.c2s.archive import parseDuration
from xmppws.c2s.mam import ArchiveSettings
from xmppws.c2s.quotas import Quotas
from xmppws.c2s.throttle import ThrottlePolicy
from xmppws.chatpage import checkConverseDir
from xmppws.config import FLAG, LIST, VALUE, ConfigError, loadConfig
from xmppws.gateway.relay import INSECURE_REFUSE, INSECURE_STRIP_PLAIN
from xmppws.gateway.routes import Router, parseUpstream
from xmppws.limits import Limits
from xmppws.muc.settings import MUCSettings

__all__ = ["Options", "makeService"]

DEFAULT_LISTEN = "tcp:5280:interface=127.0.0.1"
DEFAULT_C2S = "tcp:5222:interface=127.0.0.1"

# name, default, help; every one of these takes a value.
_VALUES = [
    ("config", None, "Read settings from this TOML file; the command line overrides it."),
    ("data-dir", "xmppws-data", "Directory of the account database and server state."),
    ("path", "/xmpp-websocket", "HTTP path of the WebSocket endpoint on --listen ports."),
    (
        "metrics-path",
        None,
        "Also serve the metrics at this path of every --listen port (off by "
        "default; --metrics keeps them off the public listeners).",
    ),
    (
        "tls-key",
        None,
        "PEM private key for STARTTLS on --c2s ports, and for ssl: listeners "
        "without privateKey=.",
    ),
    (
        "tls-cert",
        None,
        "PEM certificate for --tls-key, optionally followed by its chain "
        "(such as fullchain.pem). SIGHUP reads both again.",
    ),
    (
        "plain",
        "loopback",
        "Where SASL PLAIN is offered: 'encrypted' (TLS, wss, or a trusted TLS "
        "proxy), 'loopback' (also plain connections from this host) or 'always'.",
    ),
    (
        "sm-timeout",
        "300",
        "Seconds a dropped session waits for stream management resumption "
        "(XEP-0198); 0 turns resumption off.",
    ),
    (
        "max-connections",
        str(Limits.maxConnections),
        "Open XMPP connections at most, WebSocket and TCP together.",
    ),
    (
        "max-connections-per-ip",
        str(Limits.maxConnectionsPerIP),
        "Open XMPP connections from one address at most (connections from a "
        "local proxy count by the address it forwards, or not at all).",
    ),
    (
        "max-message-size",
        str(Limits.maxMessageSize),
        "Largest WebSocket message, or top-level element on TCP, in bytes.",
    ),
    (
        "handshake-timeout",
        "%g" % (Limits.handshakeTimeout,),
        "Seconds the WebSocket opening handshake may take.",
    ),
    (
        "open-timeout",
        "%g" % (Limits.openTimeout,),
        "Seconds from connecting to the stream header (<open/>); 0 for no limit.",
    ),
    (
        "idle-timeout",
        "%g" % (Limits.idleTimeout,),
        "Seconds without any data from a client (pongs count) before its stream "
        "is closed; 0 for no limit.",
    ),
    (
        "ping-interval",
        "%g" % (Limits.pingInterval,),
        "Seconds of silence before pinging a client (WebSocket ping, or "
        "XEP-0199 on TCP); 0 turns pings off.",
    ),
    (
        "ping-timeout",
        "%g" % (Limits.pingTimeout,),
        "Seconds to wait for the answer to a ping.",
    ),
    (
        "stanza-rate",
        "%g" % (Limits.stanzaRate,),
        "Stanzas a second one connection may send on average; above it, "
        "reading from it pauses until the rate allows more (nothing is "
        "dropped, nobody is disconnected). 0 for no limit.",
    ),
    (
        "stanza-burst",
        str(Limits.stanzaBurst),
        "Stanzas a connection may send at once before the rate applies.",
    ),
    (
        "byte-rate",
        "%d" % (Limits.byteRate,),
        "Bytes a second one connection may send on average; above it, "
        "reading pauses likewise. 0 for no limit.",
    ),
    (
        "byte-burst",
        str(Limits.byteBurst),
        "Bytes a connection may send at once before the byte rate applies "
        "(never less than --max-message-size).",
    ),
    (
        "stall-timeout",
        "%g" % (Limits.stallTimeout,),
        "Seconds a client may leave what the server sends it unread while "
        "others wait to send to it, before it is disconnected; 0 for no limit.",
    ),
    (
        "auth-account-failures",
        str(ThrottlePolicy.accountFailures),
        "Failed logins to one account (whether it exists or not, from any "
        "address) before every login to it waits before being checked.",
    ),
    (
        "auth-address-failures",
        str(ThrottlePolicy.addressFailures),
        "Failed logins from one address (IPv6: one /64) before every login "
        "from it waits before being checked.",
    ),
    (
        "auth-delay",
        "%g" % (ThrottlePolicy.delay,),
        "Seconds the first throttled login waits; each further failure "
        "doubles the wait.",
    ),
    (
        "auth-max-delay",
        "%g" % (ThrottlePolicy.maxDelay,),
        "The longest a throttled login waits, in seconds: an account is "
        "never locked.",
    ),
    (
        "auth-account-forget",
        "%g" % (ThrottlePolicy.accountForget,),
        "Seconds after which one failed login to an account is forgotten.",
    ),
    (
        "auth-address-forget",
        "%g" % (ThrottlePolicy.addressForget,),
        "Seconds after which one failed login from an address is forgotten.",
    ),
    (
        "auth-address-refuse",
        str(ThrottlePolicy.addressRefuse),
        "Failed logins from one address after which its logins are refused "
        "unchecked until some are forgotten; 0 never refuses.",
    ),
    (
        "auth-remember-address",
        "%g" % (ThrottlePolicy.rememberAddress,),
        "Seconds an address stays known to an account after a successful "
        "login from it; logins from a known address skip the account's "
        "wait. 0 remembers none.",
    ),
    (
        "max-resources",
        str(Quotas.maxResources),
        "Resources one account may bind at once (sessions waiting for "
        "resumption included; the oldest of those makes room).",
    ),
    (
        "max-roster-items",
        str(Quotas.maxRosterItems),
        "Items in one account's roster.",
    ),
    (
        "max-pending-subscriptions",
        str(Quotas.maxPendingSubscriptions),
        "Subscription requests from contacts outside the roster kept for "
        "one account until it answers.",
    ),
    (
        "max-roster-groups",
        str(Quotas.maxRosterGroups),
        "Groups of one roster item.",
    ),
    (
        "max-blocked",
        str(Quotas.maxBlocked),
        "Entries in one account's block list (XEP-0191).",
    ),
    (
        "max-directed-presences",
        str(Quotas.maxDirectedPresences),
        "Entities one session may have sent directed presence to.",
    ),
    (
        "sm-max-queue",
        str(Quotas.smMaxQueue),
        "Stanzas a session may leave unacknowledged with stream management "
        "(XEP-0198) before it ends.",
    ),
    (
        "max-offline-messages",
        str(Quotas.maxOfflineMessages),
        "Offline messages kept for one account.",
    ),
    (
        "max-archive-messages",
        str(Quotas.maxArchiveMessages),
        "Messages one message archive (an account's, or a group chat room's) "
        "keeps; the oldest make room.",
    ),
    (
        "max-archive-prefs",
        str(Quotas.maxArchivePrefs),
        "JIDs one account may list in its archiving preferences (XEP-0441).",
    ),
    (
        "max-pep-nodes",
        str(Quotas.maxPepNodes),
        "Personal eventing (XEP-0163) nodes of one account.",
    ),
    (
        "max-pep-items",
        str(Quotas.maxPepItems),
        "Items kept in one account's personal eventing nodes together.",
    ),
    (
        "max-pep-item-size",
        str(Quotas.maxPepItemSize),
        "Largest personal eventing item (an avatar, say), in bytes.",
    ),
    (
        "max-vcard-size",
        str(Quotas.maxVCardSize),
        "Largest vCard (XEP-0054), avatar included, in bytes.",
    ),
    (
        "max-private-size",
        str(Quotas.maxPrivateSize),
        "Bytes of private XML (XEP-0049) one account may keep.",
    ),
    (
        "archive-expires-after",
        "1w",
        "How long archived messages (XEP-0313) are kept, accounts' and rooms': "
        "12h, 30d, 1w, 1y, or never.",
    ),
    (
        "archive-default",
        "always",
        "What is archived for accounts that set no archiving preferences: "
        "'always', 'roster' (messages with contacts) or 'never'.",
    ),
    (
        "registration-interval",
        "60",
        "Seconds between two in-band registrations from one address (IPv6: "
        "one /64); 0 for no limit.",
    ),
    (
        "shutdown-timeout",
        "10",
        "Seconds clients get to close their streams when the service stops.",
    ),
    (
        "component-secret",
        None,
        "Shared secret of the XEP-0114 component port (--component); better "
        "kept in the --config file than on the command line.",
    ),
    (
        "see-other-uri",
        None,
        "On shutdown, send RFC 7395 clients here (<close see-other-uri=.../>) "
        "instead of the system-shutdown stream error.",
    ),
    (
        "muc-domain",
        None,
        "Address of the group chat service (XEP-0045); 'none' turns it off "
        "[default: conference. and the first --domain]",
    ),
    (
        "muc-max-rooms-per-user",
        str(MUCSettings.maxRoomsPerUser),
        "Group chat rooms one user may own; 0 for no limit.",
    ),
    (
        "muc-max-occupants",
        str(MUCSettings.maxOccupants),
        "Occupants a group chat room holds at most (owners and admins may still enter).",
    ),
    (
        "muc-max-history",
        str(MUCSettings.maxHistory),
        "Messages a group chat room keeps for newcomers at most.",
    ),
    (
        "muc-max-message-size",
        str(MUCSettings.maxMessageSize),
        "Largest message to a group chat room or occupant, in bytes.",
    ),
    (
        "chat-path",
        "/chat",
        "HTTP path of the web chat page (Converse.js) on --listen ports; 'none' turns it off.",
    ),
    (
        "chat-converse-dir",
        None,
        "Directory of Converse.js's dist files, served with the chat page "
        "(such as node_modules/converse.js/dist).",
    ),
    (
        "chat-converse-url",
        None,
        "URL of Converse.js's dist files for the chat page instead, such as "
        "https://cdn.conversejs.org/14.0.0/dist/",
    ),
    (
        "upstream-timeout",
        "10",
        "Gateway mode: seconds one upstream server may take from connecting to "
        "its stream features after TLS, before the next one is tried.",
    ),
    (
        "insecure-websocket",
        INSECURE_REFUSE,
        "Gateway mode: what to do with a client on a plain ws:// WebSocket that "
        "is neither on this machine nor behind a trusted TLS proxy: 'refuse' it "
        "(policy-violation), or 'strip-plain' (SASL PLAIN is not offered to it).",
    ),
]

# name, default when not given, for the repeatable options.
_LISTS = {
    "listen": [DEFAULT_LISTEN],
    "c2s": [DEFAULT_C2S],
    "metrics": [],
    "domain": ["localhost"],
    "origin": [],
    "public-url": [],
    "trusted-proxy": [],
    "upstream": [],
    "component": [],
}

_FLAGS = (
    "anonymous",
    "registration",
    "require-encryption",
    "muc-public-rooms",
    "muc-persistent-rooms",
    "archive",
)

# Flags that are on unless turned off.
_FLAG_DEFAULTS = {"archive": True}

_LIMITS = {
    "max-connections": ("maxConnections", int),
    "max-connections-per-ip": ("maxConnectionsPerIP", int),
    "max-message-size": ("maxMessageSize", int),
    "handshake-timeout": ("handshakeTimeout", float),
    "open-timeout": ("openTimeout", float),
    "idle-timeout": ("idleTimeout", float),
    "ping-interval": ("pingInterval", float),
    "ping-timeout": ("pingTimeout", float),
    "stanza-rate": ("stanzaRate", float),
    "stanza-burst": ("stanzaBurst", int),
    "byte-rate": ("byteRate", int),
    "byte-burst": ("byteBurst", int),
    "stall-timeout": ("stallTimeout", float),
}

# option: (ThrottlePolicy attribute, type, minimum)
_THROTTLE = {
    "auth-account-failures": ("accountFailures", int, 0),
    "auth-address-failures": ("addressFailures", int, 0),
    "auth-delay": ("delay", float, 0.001),
    "auth-max-delay": ("maxDelay", float, 0.001),
    "auth-account-forget": ("accountForget", float, 0.001),
    "auth-address-forget": ("addressForget", float, 0.001),
    "auth-address-refuse": ("addressRefuse", int, 0),
    "auth-remember-address": ("rememberAddress", float, 0),
}

# option: Quotas attribute; each a whole number of at least 1.
_QUOTAS = {
    "max-resources": "maxResources",
    "max-roster-items": "maxRosterItems",
    "max-pending-subscriptions": "maxPendingSubscriptions",
    "max-roster-groups": "maxRosterGroups",
    "max-blocked": "maxBlocked",
    "max-directed-presences": "maxDirectedPresences",
    "sm-max-queue": "smMaxQueue",
    "max-offline-messages": "maxOfflineMessages",
    "max-archive-messages": "maxArchiveMessages",
    "max-archive-prefs": "maxArchivePrefs",
    "max-pep-nodes": "maxPepNodes",
    "max-pep-items": "maxPepItems",
    "max-pep-item-size": "maxPepItemSize",
    "max-vcard-size": "maxVCardSize",
    "max-private-size": "maxPrivateSize",
}

_RESERVED_PATHS = ("/.well-known/host-meta", "/.well-known/host-meta.json")


def _nested(inner, outer):
    """
    Whether the path C{inner} lies under the path C{outer}.
    """
    return inner.startswith(outer.rstrip("/") + "/")


def _optionKinds():
    kinds = {name: VALUE for name, _, _ in _VALUES if name != "config"}
    kinds.update((name, LIST) for name in _LISTS)
    kinds.update((name, FLAG) for name in _FLAGS)
    return kinds


class Options(usage.Options):
    """
    Options of C{twistd xmppws}.

    After parsing, L{settings} holds the checked L{xmppws.service.Settings}.

    @ivar reactor: the reactor endpoints are made for; the global one if
        L{None}.
    @ivar settings: the L{xmppws.service.Settings}, after parsing.
    """

    synopsis = "[options]"
    longdesc = (
        "Run an XMPP server for browser clients (XMPP over WebSocket, RFC 7395) "
        "and other XMPP clients (RFC 6120 over TCP), or, with --upstream, a "
        "WebSocket gateway to existing XMPP servers. Listening options take "
        "Twisted endpoint strings (tcp:, ssl:, unix:, systemd:) and may be "
        "repeated; 'none' turns a kind of listener off. Defaults listen on "
        "127.0.0.1 only. SIGHUP reloads TLS certificates; SIGTERM stops "
        "gracefully."
    )

    optParameters = [
        [name, None, None, help + ("" if default is None else " [default: %s]" % (default,))]
        for name, default, help in _VALUES
    ]

    compData = usage.Completions(
        optActions={
            "config": usage.CompleteFiles("*.toml"),
            "data-dir": usage.CompleteDirs(),
            "tls-key": usage.CompleteFiles("*.pem"),
            "tls-cert": usage.CompleteFiles("*.pem"),
            "plain": usage.CompleteList(["encrypted", "loopback", "always"]),
            "chat-converse-dir": usage.CompleteDirs(),
            "insecure-websocket": usage.CompleteList([INSECURE_REFUSE, INSECURE_STRIP_PLAIN]),
        }
    )

    reactor = None
    settings = None

    def __init__(self):
        usage.Options.__init__(self)
        for name in _LISTS:
            self[name] = []
        for name in _FLAGS:
            self[name] = None

    # Repeatable options

    def opt_listen(self, description):
        """
        Serve WebSocket, discovery and the landing page on this endpoint
        (repeatable), e.g. tcp:5280:interface=127.0.0.1 or
        ssl:5281:privateKey=key.pem:certKey=cert.pem [default:
        tcp:5280:interface=127.0.0.1]
        """
        self["listen"].append(description)

    def opt_c2s(self, description):
        """
        Serve plain XMPP clients (RFC 6120, STARTTLS with --tls-key) on this
        endpoint (repeatable) [default: tcp:5222:interface=127.0.0.1]
        """
        self["c2s"].append(description)

    def opt_metrics(self, description):
        """
        Serve Prometheus metrics at /metrics on this endpoint (repeatable),
        e.g. tcp:9280:interface=127.0.0.1 [default: none]
        """
        self["metrics"].append(description)

    def opt_domain(self, name):
        """
        Serve this domain (repeatable; the first is the default)
        [default: localhost]
        """
        self["domain"].append(name)

    def opt_origin(self, origin):
        """
        Allow browser pages from this origin, e.g. https://chat.example.org
        (repeatable) [default: any origin]
        """
        self["origin"].append(origin)

    def opt_public_url(self, url):
        """
        Advertise this WebSocket URL in host-meta and on the landing page,
        e.g. wss://example.org/xmpp-websocket behind a proxy (repeatable)
        [default: built from each request]
        """
        self["public-url"].append(url)

    def opt_trusted_proxy(self, network):
        """
        Believe X-Forwarded-For/-Proto/-Host from this address or network,
        e.g. 127.0.0.1 (repeatable) [default: none]
        """
        self["trusted-proxy"].append(network)

    def opt_upstream(self, route):
        """
        Gateway mode: relay the WebSocket clients of DOMAIN to an existing
        XMPP server, DOMAIN=ENDPOINT with a client endpoint string such as
        example.org=tcp:host=10.0.0.5:port=5222 (options: tls=direct,
        ca=FILE, proxy=v1|v2, insecure=no-verify|no-tls), or DOMAIN=srv
        for its _xmpp-client._tcp SRV records (repeatable; several for one
        domain are tried in turn). Without --domain, no domain is served
        locally.
        """
        self["upstream"].append(route)

    def opt_component(self, description):
        """
        Accept XEP-0114 external components on this endpoint (repeatable;
        off by default), e.g. tcp:5347:interface=127.0.0.1, or just a port
        number for that port on 127.0.0.1; needs --component-secret
        """
        if description.strip().isdigit():
            description = "tcp:%s:interface=127.0.0.1" % (description.strip(),)
        self["component"].append(description)

    # Flags

    def opt_anonymous(self):
        """
        Offer SASL ANONYMOUS logins.
        """
        self["anonymous"] = True

    def opt_no_anonymous(self):
        """
        Do not offer SASL ANONYMOUS (the default).
        """
        self["anonymous"] = False

    def opt_registration(self):
        """
        Let clients create accounts in-band (XEP-0077).
        """
        self["registration"] = True

    def opt_no_registration(self):
        """
        Accounts are made with xmppws-admin only (the default).
        """
        self["registration"] = False

    def opt_require_encryption(self):
        """
        On --c2s ports, require STARTTLS before authentication.
        """
        self["require-encryption"] = True

    def opt_no_require_encryption(self):
        """
        Do not require STARTTLS (the default).
        """
        self["require-encryption"] = False

    def opt_muc_public_rooms(self):
        """
        New group chat rooms are listed in the service's room list.
        """
        self["muc-public-rooms"] = True

    def opt_no_muc_public_rooms(self):
        """
        New group chat rooms are hidden until their owner lists them (the
        default, as in Prosody).
        """
        self["muc-public-rooms"] = False

    def opt_muc_persistent_rooms(self):
        """
        New group chat rooms stay when empty and across restarts.
        """
        self["muc-persistent-rooms"] = True

    def opt_no_muc_persistent_rooms(self):
        """
        New group chat rooms go when the last occupant leaves, unless their
        owner makes them persistent (the default).
        """
        self["muc-persistent-rooms"] = False

    def opt_no_archive(self):
        """
        Keep no message archives (XEP-0313), for accounts or group chat
        rooms.
        """
        self["archive"] = False

    def opt_archive(self):
        """
        Keep message archives for accounts and group chat rooms (the
        default).
        """
        self["archive"] = True

    # Checking

    def postOptions(self):
        fileSettings = {}
        configPath = self["config"]
        if configPath is not None:
            try:
                fileSettings = loadConfig(configPath, _optionKinds())
            except ConfigError as e:
                raise usage.UsageError(str(e))
        self._configPath = configPath
        self._fromFile = set()
        merged = {}
        for name, default, _ in _VALUES:
            merged[name] = self._choose(name, self[name], fileSettings, default)
        # In gateway mode, only the domains given are served locally, and
        # plain XMPP clients are served only when some are.
        gateway = bool(self["upstream"] or fileSettings.get("upstream"))
        for name in sorted(_LISTS, key=lambda name: name != "domain"):
            default = _LISTS[name]
            if gateway and name == "domain":
                default = []
            if gateway and name == "c2s" and not merged["domain"]:
                default = []
            merged[name] = self._choose(name, self[name] or None, fileSettings, list(default))
        for name in _FLAGS:
            merged[name] = bool(
                self._choose(name, self[name], fileSettings, _FLAG_DEFAULTS.get(name, False))
            )
        self.update(merged)
        self.settings = self._settings()

    def _choose(self, name, given, fileSettings, default):
        if given is not None:
            return given
        if name in fileSettings:
            self._fromFile.add(name)
            return fileSettings[name]
        return default

    def _fail(self, name, message):
        where = ""
        if name in self._fromFile:
            where = " (in %s)" % (self._configPath,)
        raise usage.UsageError("--%s%s: %s" % (name, where, message))

    def _settings(self):
        from xmppws.service import Settings

        limits = self._limits()
        domains = self._domains()
        upstreams = self._upstreams(domains)
        path = self._path("path", self["path"])
        metricsPath = None
        if self["metrics-path"] is not None:
            metricsPath = self._path("metrics-path", self["metrics-path"])
            if metricsPath == path or _nested(metricsPath, path) or _nested(path, metricsPath):
                self._fail("metrics-path", "must not be --path, or hold it, or lie under it")
        if self["plain"] not in ("encrypted", "loopback", "always"):
            self._fail("plain", "must be 'encrypted', 'loopback' or 'always', not %r" % (self["plain"],))
        smTimeout = self._number("sm-timeout", int, 0)
        throttle = self._throttle()
        quotas = Quotas(
            **{attribute: self._number(name, int, 1) for name, attribute in _QUOTAS.items()}
        )
        registrationInterval = self._number("registration-interval", float, 0)
        shutdownTimeout = self._number("shutdown-timeout", float, 0.001)
        origins = self._origins()
        publicURLs = [self._webSocketURL("public-url", url) for url in self["public-url"]]
        seeOther = self["see-other-uri"]
        if seeOther is not None:
            seeOther = self._webSocketURL("see-other-uri", seeOther)
        try:
            _handshake.parseNetworks(self["trusted-proxy"])
        except ValueError as e:
            self._fail("trusted-proxy", str(e))
        if domains:
            self._checkDataDir()
        upstreamTimeout = self._number("upstream-timeout", float, 0.001)
        if self["insecure-websocket"] not in (INSECURE_REFUSE, INSECURE_STRIP_PLAIN):
            self._fail(
                "insecure-websocket",
                "must be %r or %r, not %r"
                % (INSECURE_REFUSE, INSECURE_STRIP_PLAIN, self["insecure-websocket"]),
            )

        certificates = {}
        certificate = self._certificate()
        listen = self._endpoints("listen", certificates, certificate)
        c2s = self._endpoints("c2s", certificates, certificate)
        metrics = self._endpoints("metrics", certificates, certificate)
        if not domains:
            if c2s:
                self._fail(
                    "c2s",
                    "needs a --domain served locally: gateway mode relays WebSocket "
                    "clients only (TCP clients connect to their server directly)",
                )
            if not listen:
                self._fail("listen", "is 'none': the gateway would relay nothing")
        if not listen and not c2s:
            raise usage.UsageError("--listen and --c2s are both 'none': nothing would be served")
        if metricsPath is not None and not listen:
            self._fail("metrics-path", "needs a --listen port")
        if self["require-encryption"] and c2s and certificate is None:
            self._fail(
                "require-encryption",
                "needs --tls-key and --tls-cert, or no TCP client could log in",
            )
        components = self._endpoints("component", certificates, certificate)
        if components and not domains:
            self._fail("component", "needs a --domain served locally")
        if components and not self["component-secret"]:
            self._fail("component", "needs --component-secret")
        archive = self._archive()
        muc = self._muc(domains, archive, quotas)
        chatPath, converseDir, converseURL = self._chat(path, metricsPath)
        allCertificates = list(certificates.values())
        if certificate is not None:
            allCertificates.insert(0, certificate)
        return Settings(
            domains=domains,
            dataDir=self["data-dir"],
            path=path,
            origins=origins,
            publicURLs=publicURLs,
            trustedProxies=list(self["trusted-proxy"]),
            listen=listen,
            c2s=c2s,
            metrics=metrics,
            metricsPath=metricsPath,
            certificate=certificate,
            certificates=allCertificates,
            plain=self["plain"],
            anonymous=self["anonymous"],
            registration=self["registration"],
            requireEncryption=self["require-encryption"],
            smTimeout=smTimeout,
            throttle=throttle,
            quotas=quotas,
            registrationInterval=registrationInterval,
            limits=limits,
            shutdownTimeout=shutdownTimeout,
            seeOtherURI=seeOther,
            components=components,
            componentSecret=self["component-secret"],
            muc=muc,
            chatPath=chatPath,
            converseDir=converseDir,
            converseURL=converseURL,
            upstreams=upstreams,
            upstreamTimeout=upstreamTimeout,
            insecureWebSocket=self["insecure-websocket"],
            archive=archive,
        )

    def _archive(self):
        """
        The message archive's settings.
        """
        try:
            retention = parseDuration(str(self["archive-expires-after"]))
        except ValueError as e:
            self._fail("archive-expires-after", "%r is %s" % (self["archive-expires-after"], e))
        default = self["archive-default"]
        if default not in ("always", "roster", "never"):
            self._fail("archive-default", "must be 'always', 'roster' or 'never', not %r" % (
                default,))
        return ArchiveSettings(enabled=self["archive"], retention=retention,
                               default=default)

    def _muc(self, domains, archive, quotas):
        """
        The group chat settings, or L{None} when it is off.
        """
        name = self["muc-domain"]
        if name is not None and name.strip().lower() == "none":
            return None
        if not domains:
            # Gateway only: group chat is the upstream server's business.
            if name is not None:
                self._fail("muc-domain", "needs a --domain served locally")
            return None
        if name is None:
            name = "conference." + domains[0]
        try:
            domain = jids.prepDomainpart(name)
        except jids.JIDMalformed as e:
            self._fail("muc-domain", "%r is not a valid domain: %s" % (name, e.reason))
        if domain in domains:
            self._fail("muc-domain", "%s is a --domain; give the group chat service its own" % (domain,))
        return MUCSettings(
            domain,
            maxRoomsPerUser=self._number("muc-max-rooms-per-user", int, 0),
            maxOccupants=self._number("muc-max-occupants", int, 1),
            maxHistory=self._number("muc-max-history", int, 0),
            maxMessageSize=self._number("muc-max-message-size", int, 1),
            defaultPublic=self["muc-public-rooms"],
            defaultPersistent=self["muc-persistent-rooms"],
            archive=archive.enabled,
            archiveRetention=archive.retention,
            maxArchiveMessages=quotas.maxArchiveMessages,
        )

    def _chat(self, path, metricsPath):
        """
        The chat page's path and where Converse.js comes from.
        """
        chatPath = self["chat-path"]
        converseDir, converseURL = self["chat-converse-dir"], self["chat-converse-url"]
        if chatPath.strip().lower() == "none":
            return None, None, None
        chatPath = self._path("chat-path", chatPath)
        for other in (path, metricsPath):
            if other and (chatPath == other or _nested(chatPath, other)):
                self._fail("chat-path", "must not be --path or --metrics-path, or lie under one")
        if converseDir is not None and converseURL is not None:
            self._fail("chat-converse-url", "give --chat-converse-dir or --chat-converse-url, not both")
        if converseDir is not None:
            converseDir = os.path.abspath(converseDir)
            problem = checkConverseDir(converseDir)
            if problem is not None:
                self._fail("chat-converse-dir", problem)
        if converseURL is not None:
            parts = urlsplit(converseURL)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                self._fail("chat-converse-url", "%r is not an http:// or https:// URL" % (converseURL,))
        return chatPath, converseDir, converseURL

    def _number(self, name, kind, minimum):
        text = self[name]
        try:
            value = kind(text)
        except (TypeError, ValueError):
            value = None
        if value is None or value != value or value in (float("inf"),):
            noun = "a whole number" if kind is int else "a number"
            self._fail(name, "must be %s, not %r" % (noun, text))
        if value < minimum:
            if minimum == 0:
                self._fail(name, "must not be negative")
            if kind is int:
                self._fail(name, "must be at least %d" % (minimum,))
            self._fail(name, "must be more than 0")
        return value

    def _limits(self):
        values = {}
        for name, (attribute, kind) in _LIMITS.items():
            minimum = (
                1
                if attribute in Limits._positive or name in ("stanza-burst", "byte-burst")
                else 0
            )
            values[attribute] = self._number(name, kind, minimum)
        if values["pingInterval"] and not values["pingTimeout"]:
            self._fail("ping-timeout", "must be more than 0 while --ping-interval is")
        return Limits(**values)

    def _throttle(self):
        values = {}
        for name, (attribute, kind, minimum) in _THROTTLE.items():
            values[attribute] = self._number(name, kind, minimum)
        if values["maxDelay"] < values["delay"]:
            self._fail("auth-max-delay", "must not be less than --auth-delay")
        return ThrottlePolicy(**values)

    def _domains(self):
        domains = []
        for name in self["domain"]:
            try:
                address = jids.parse(name)
            except jids.JIDMalformed as e:
                self._fail(
                    "domain", "%r is not a valid domain (%s: %s)" % (name, e.part, e.reason)
                )
            if address.user or address.resource:
                self._fail("domain", "%r is an address; give the domain only" % (name,))
            if address.host not in domains:
                domains.append(address.host)
        return domains

    def _path(self, name, path):
        if not path.startswith("/") or path == "/" or any(c in path for c in "?#% "):
            self._fail(name, "must be an absolute path other than /, such as /xmpp-websocket")
        path = "/" + path.strip("/")
        if "//" in path or any(
            path == reserved or _nested(path, reserved) or _nested(reserved, path)
            for reserved in _RESERVED_PATHS
        ):
            self._fail(name, "%r is taken by discovery (XEP-0156)" % (path,))
        return path

    def _origins(self):
        origins = self["origin"]
        if not origins or "*" in origins:
            if len(origins) > 1:
                self._fail("origin", "'*' (any origin) cannot be combined with others")
            return None
        for origin in origins:
            parts = urlsplit(origin)
            if (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or parts.path not in ("", "/")
                or parts.query
                or parts.fragment
            ):
                self._fail(
                    "origin", "%r is not an origin such as https://chat.example.org" % (origin,)
                )
        return origins

    def _webSocketURL(self, name, url):
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            self._fail(name, "%r is not a ws:// or wss:// URL" % (url,))
        return url

    def _checkDataDir(self):
        path = os.path.abspath(self["data-dir"])
        if os.path.exists(path):
            if not os.path.isdir(path):
                self._fail("data-dir", "%s is not a directory" % (path,))
            if not os.access(path, os.W_OK | os.X_OK):
                self._fail("data-dir", "%s is not writable" % (path,))
            return
        parent = os.path.dirname(path)
        while not os.path.exists(parent):
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
            self._fail("data-dir", "cannot create %s: %s is not writable" % (path, parent))

    def _certificate(self):
        key, cert = self["tls-key"], self["tls-cert"]
        if key is None and cert is None:
            return None
        if key is None:
            self._fail("tls-cert", "needs --tls-key")
        if cert is None:
            self._fail("tls-key", "needs --tls-cert")
        try:
            return _tls.ReloadableCertificate(key, cert)
        except _tls.CertificateError as e:
            self._fail("tls-cert", str(e))

    def _getReactor(self):
        if self.reactor is None:
            from twisted.internet import reactor

            self.reactor = reactor
        return self.reactor

    def _endpoints(self, name, certificates, certificate):
        descriptions = self[name]
        if [d for d in descriptions if d.strip().lower() == "none"]:
            if len(descriptions) > 1:
                self._fail(name, "'none' cannot be combined with endpoints")
            return []
        endpoints = []
        for description in descriptions:
            try:
                endpoint = _tls.serverEndpoint(
                    self._getReactor(), description, certificates, certificate
                )
            except _tls.CertificateError as e:
                self._fail(name, "%s: %s" % (description, e))
            except (IndexError, KeyError) as e:
                if description.startswith("systemd:"):
                    self._fail(
                        name,
                        "%s: no such socket was passed by systemd (start the "
                        "service through its .socket unit)" % (description,),
                    )
                self._fail(name, "%s: %s" % (description, e))
            except (ValueError, TypeError, AttributeError, OSError) as e:
                self._fail(name, "%s: %s" % (description, e))
            endpoints.append((description, endpoint))
        return endpoints

    def _upstreams(self, domains):
        """
        The gateway's routes, checked: each a domain and an endpoint, no
        domain both relayed and served locally.
        """
        routes = []
        for text in self["upstream"]:
            try:
                routes.append(parseUpstream(self._getReactor(), text))
            except ValueError as e:
                self._fail("upstream", str(e))
        try:
            Router(routes, domains)
        except ValueError as e:
            self._fail("upstream", "%s (drop it from --domain or --upstream)" % (e,))
        return routes


# usage.Options shows a docstring's line breaks and indentation as they are.
for _name, _method in list(vars(Options).items()):
    if _name.startswith("opt_") and _method.__doc__:
        _method.__doc__ = " ".join(_method.__doc__.split())
del _name, _method


def makeService(options):
    """
    Build the service from parsed L{Options}.

    @rtype: L{xmppws.service.XMPPService}
    """
    from xmppws.service import makeService as make

    return make(options.settings, options._getReactor())
