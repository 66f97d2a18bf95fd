"""
Tests for L{xmppws.tap} and L{xmppws.config}: the options of C{twistd
xmppws}, the configuration file, and the plugin.
"""

import os
import subprocess
import sys

from OpenSSL import SSL
from twisted.application.service import IServiceMaker
from twisted.internet.endpoints import (
    AdoptedStreamServerEndpoint,
    SSL4ServerEndpoint,
    TCP4ServerEndpoint,
    UNIXServerEndpoint,
    _SystemdParser,
)
from twisted.internet.testing import MemoryReactorClock
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.python.filepath import FilePath
from twisted.python.systemd import ListenFDs
from twisted.trial import unittest

from tests.servicehelpers import writeCertificate
from xmppws import _tls, tap
from xmppws.c2s.quotas import Quotas
from xmppws.c2s.throttle import ThrottlePolicy
from xmppws.config import FLAG, LIST, VALUE, ConfigError, loadConfig
from xmppws.limits import Limits

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _escape(path):
    return path.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


class OptionsMixin:
    def parse(self, *argv):
        """
        Parse C{argv} with a memory reactor and a fresh data directory.

        @return: the L{xmppws.service.Settings}.
        """
        options = tap.Options()
        options.reactor = MemoryReactorClock()
        argv = list(argv)
        if "--data-dir" not in argv:
            argv = ["--data-dir", self.mktemp()] + argv
        options.parseOptions(argv)
        self.options = options
        return options.settings

    def assertRefused(self, option, *argv):
        """
        Parsing C{argv} fails with a message naming C{option}.

        @return: the message.
        """
        error = self.assertRaises(usage.UsageError, self.parse, *argv)
        self.assertIn(option, str(error))
        return str(error)

    def certificate(self, commonName="localhost"):
        return writeCertificate(FilePath(self.mktemp()), commonName)


class DefaultsTests(OptionsMixin, unittest.TestCase):
    """
    What C{twistd xmppws} does without options.
    """

    def test_listeners(self):
        """
        WebSocket on 127.0.0.1 port 5280 and plain clients on 127.0.0.1 port
        5222; no metrics listener.
        """
        settings = self.parse()
        [(description, endpoint)] = settings.listen
        self.assertEqual(description, "tcp:5280:interface=127.0.0.1")
        self.assertIsInstance(endpoint, TCP4ServerEndpoint)
        self.assertEqual((endpoint._port, endpoint._interface), (5280, "127.0.0.1"))
        [(description, endpoint)] = settings.c2s
        self.assertEqual((endpoint._port, endpoint._interface), (5222, "127.0.0.1"))
        self.assertEqual(settings.metrics, [])
        self.assertIsNone(settings.metricsPath)

    def test_service(self):
        """
        The domain is C{localhost}, the data in C{./xmppws-data}, the
        WebSocket at C{/xmpp-websocket}, any origin allowed, the default
        limits.
        """
        options = tap.Options()
        options.reactor = MemoryReactorClock()
        options.parseOptions([])
        settings = options.settings
        self.assertEqual(settings.domains, ["localhost"])
        self.assertEqual(settings.dataDir, "xmppws-data")
        self.assertEqual(settings.path, "/xmpp-websocket")
        self.assertIsNone(settings.origins)
        self.assertEqual(settings.publicURLs, [])
        self.assertIsNone(settings.certificate)
        self.assertEqual(settings.plain, "loopback")
        self.assertFalse(settings.anonymous or settings.registration)
        self.assertEqual(repr(settings.limits), repr(Limits()))
        self.assertEqual(settings.shutdownTimeout, 10)
        self.assertIsNone(settings.seeOtherURI)


class ListenerOptionTests(OptionsMixin, unittest.TestCase):
    """
    C{--listen}, C{--c2s} and C{--metrics} take endpoint strings and may
    be repeated.
    """

    def test_repeated(self):
        """
        Each C{--listen} adds a listener, replacing the default.
        """
        settings = self.parse(
            "--listen", "tcp:8080:interface=127.0.0.1", "--listen", "tcp:8081"
        )
        self.assertEqual(
            [d for d, _ in settings.listen], ["tcp:8080:interface=127.0.0.1", "tcp:8081"]
        )

    def test_unix(self):
        """
        C{unix:} endpoints work as Twisted provides them.
        """
        settings = self.parse("--listen", "unix:/run/xmppws.sock:mode=660", "--c2s", "none")
        [(_, endpoint)] = settings.listen
        self.assertIsInstance(endpoint, UNIXServerEndpoint)
        self.assertEqual(settings.c2s, [])

    def test_systemd(self):
        """
        C{systemd:} endpoints adopt a socket passed by systemd.
        """
        self.patch(_SystemdParser, "_sddaemon", ListenFDs([3, 4], ("web", "c2s")))
        settings = self.parse(
            "--listen", "systemd:domain=INET:name=web", "--c2s", "systemd:domain=INET:index=1"
        )
        self.assertIsInstance(settings.listen[0][1], AdoptedStreamServerEndpoint)
        self.assertIsInstance(settings.c2s[0][1], AdoptedStreamServerEndpoint)

    def test_systemdWithoutSocket(self):
        """
        A C{systemd:} endpoint naming a socket systemd did not pass is
        refused with a hint.
        """
        self.patch(_SystemdParser, "_sddaemon", ListenFDs([]))
        message = self.assertRefused("--listen", "--listen", "systemd:domain=INET:index=0")
        self.assertIn(".socket unit", message)

    def test_ssl(self):
        """
        C{ssl:} endpoints take C{privateKey} and C{certKey} and get a
        reloadable certificate with TLS 1.2 or later.
        """
        keyPath, certPath = self.certificate()
        settings = self.parse(
            "--listen",
            "ssl:5281:interface=127.0.0.1:privateKey=%s:certKey=%s"
            % (_escape(keyPath), _escape(certPath)),
        )
        [(_, endpoint)] = settings.listen
        self.assertIsInstance(endpoint, SSL4ServerEndpoint)
        [certificate] = settings.certificates
        self.assertIsInstance(certificate, _tls.ReloadableCertificate)
        self.assertEqual((certificate.keyPath, certificate.certPath), (keyPath, certPath))
        options = certificate.getContext().set_options(0)
        for protocol in (SSL.OP_NO_SSLv3, SSL.OP_NO_TLSv1, SSL.OP_NO_TLSv1_1):
            self.assertTrue(options & protocol)
        self.assertFalse(options & SSL.OP_NO_TLSv1_2)

    def test_sslWithServiceCertificate(self):
        """
        An C{ssl:} endpoint without C{privateKey} uses C{--tls-key} and
        C{--tls-cert}.
        """
        keyPath, certPath = self.certificate()
        settings = self.parse(
            "--listen", "ssl:5281", "--tls-key", keyPath, "--tls-cert", certPath
        )
        self.assertEqual(settings.certificates, [settings.certificate])

    def test_sslWithoutCertificate(self):
        """
        An C{ssl:} endpoint with no certificate at all is refused.
        """
        message = self.assertRefused("--listen", "--listen", "ssl:5281")
        self.assertIn("privateKey", message)

    def test_sslMethodRefused(self):
        """
        C{sslmethod} would lower the protocol floor, so it is refused.
        """
        keyPath, _ = self.certificate()
        self.assertRefused(
            "TLS 1.2", "--listen", "ssl:5281:privateKey=%s:sslmethod=SSLv3_METHOD" % (_escape(keyPath),)
        )

    def test_badEndpoint(self):
        """
        An endpoint string Twisted cannot parse is refused, naming the
        option.
        """
        self.assertRefused("--listen", "--listen", "nonsense:1")
        self.assertRefused("--c2s", "--c2s", "tcp:port")
        self.assertRefused("--metrics", "--metrics", "tcp:")

    def test_none(self):
        """
        C{none} turns a kind of listener off, but not both.
        """
        settings = self.parse("--c2s", "none")
        self.assertEqual(settings.c2s, [])
        self.assertRefused("nothing would be served", "--listen", "none", "--c2s", "none")
        self.assertRefused("--listen", "--listen", "none", "--listen", "tcp:1")

    def test_metrics(self):
        """
        C{--metrics} adds a metrics listener; C{--metrics-path} is a path
        other than the WebSocket's.
        """
        settings = self.parse("--metrics", "tcp:9280:interface=127.0.0.1", "--metrics-path", "/m/")
        self.assertEqual(len(settings.metrics), 1)
        self.assertEqual(settings.metricsPath, "/m")
        self.assertRefused("--metrics-path", "--metrics-path", "/xmpp-websocket")
        self.assertRefused("--metrics-path", "--metrics-path", "/xmpp-websocket/metrics")
        self.assertRefused("--metrics-path", "--metrics-path", "/a", "--path", "/a/ws")
        self.assertRefused("--metrics-path", "--metrics-path", "/m", "--listen", "none")


class ServiceOptionTests(OptionsMixin, unittest.TestCase):
    """
    Domains, paths, origins, URLs, proxies and the data directory.
    """

    def test_domains(self):
        """
        C{--domain} may be repeated; names are normalised and kept once.
        """
        settings = self.parse("--domain", "Example.ORG", "--domain", "b.example", "--domain", "example.org")
        self.assertEqual(settings.domains, ["example.org", "b.example"])

    def test_badDomain(self):
        """
        An address or an invalid name is not a domain.
        """
        self.assertRefused("--domain", "--domain", "alice@example.org")
        self.assertRefused("--domain", "--domain", "bad domain")

    def test_path(self):
        """
        C{--path} is an absolute path other than C{/} and the discovery
        documents; a trailing slash is dropped.
        """
        self.assertEqual(self.parse("--path", "/ws/").path, "/ws")
        for bad in ("/", "ws", "/.well-known", "/.well-known/host-meta", "/a?b", "/a//b"):
            self.assertRefused("--path", "--path", bad)

    def test_origins(self):
        """
        C{--origin} takes origins and may be repeated; C{*} is any.
        """
        settings = self.parse("--origin", "https://chat.example", "--origin", "http://localhost:8080")
        self.assertEqual(settings.origins, ["https://chat.example", "http://localhost:8080"])
        self.assertIsNone(self.parse("--origin", "*").origins)
        self.assertRefused("--origin", "--origin", "chat.example")
        self.assertRefused("--origin", "--origin", "https://chat.example/page")
        self.assertRefused("--origin", "--origin", "*", "--origin", "https://a.example")

    def test_urls(self):
        """
        C{--public-url} and C{--see-other-uri} are WebSocket URLs.
        """
        settings = self.parse(
            "--public-url", "wss://example.org/xmpp-websocket",
            "--see-other-uri", "wss://other.example.org/xmpp-websocket",
        )
        self.assertEqual(settings.publicURLs, ["wss://example.org/xmpp-websocket"])
        self.assertEqual(settings.seeOtherURI, "wss://other.example.org/xmpp-websocket")
        self.assertRefused("--public-url", "--public-url", "https://example.org/")
        self.assertRefused("--see-other-uri", "--see-other-uri", "example.org")

    def test_trustedProxy(self):
        """
        C{--trusted-proxy} takes addresses and networks.
        """
        settings = self.parse("--trusted-proxy", "127.0.0.1", "--trusted-proxy", "10.0.0.0/8")
        self.assertEqual(settings.trustedProxies, ["127.0.0.1", "10.0.0.0/8"])
        self.assertRefused("--trusted-proxy", "--trusted-proxy", "proxy.example")

    def test_dataDir(self):
        """
        C{--data-dir} must be a directory that can be written or created.
        """
        path = FilePath(self.mktemp())
        path.setContent(b"")
        self.assertRefused("--data-dir", "--data-dir", path.path)
        self.assertEqual(self.parse("--data-dir", path.path + ".d/new").dataDir, path.path + ".d/new")

    def test_plain(self):
        """
        C{--plain} is one of three words.
        """
        self.assertEqual(self.parse("--plain", "encrypted").plain, "encrypted")
        self.assertRefused("--plain", "--plain", "sometimes")

    def test_flags(self):
        """
        C{--anonymous}, C{--registration} and C{--require-encryption} turn
        their features on.
        """
        keyPath, certPath = self.certificate()
        settings = self.parse(
            "--anonymous", "--registration", "--require-encryption",
            "--tls-key", keyPath, "--tls-cert", certPath,
        )
        self.assertTrue(settings.anonymous and settings.registration and settings.requireEncryption)

    def test_requireEncryptionNeedsCertificate(self):
        """
        Requiring STARTTLS without a certificate would lock TCP clients
        out, unless there are none.
        """
        self.assertRefused("--require-encryption", "--require-encryption")
        self.assertTrue(self.parse("--require-encryption", "--c2s", "none").requireEncryption)

    def test_tlsFiles(self):
        """
        C{--tls-key} and C{--tls-cert} go together and must load.
        """
        keyPath, certPath = self.certificate()
        otherKey, _ = self.certificate()
        self.assertRefused("--tls-cert", "--tls-key", keyPath)
        self.assertRefused("--tls-key", "--tls-cert", certPath)
        self.assertRefused("does not match", "--tls-key", otherKey, "--tls-cert", certPath)
        message = self.assertRefused("--tls-cert", "--tls-key", keyPath + ".missing", "--tls-cert", certPath)
        self.assertIn(keyPath + ".missing", message)

    def test_componentOffByDefault(self):
        """
        No component port is opened unless asked for.
        """
        self.assertEqual(self.parse().components, [])

    def test_component(self):
        """
        C{--component} takes endpoints and needs C{--component-secret}.
        """
        settings = self.parse(
            "--component", "tcp:5347:interface=127.0.0.1", "--component-secret", "s3cret"
        )
        [(description, endpoint)] = settings.components
        self.assertEqual((endpoint._port, endpoint._interface), (5347, "127.0.0.1"))
        self.assertEqual(settings.componentSecret, "s3cret")
        self.assertRefused(
            "--component", "--component", "tcp:5347:interface=127.0.0.1"
        )

    def test_componentPortOnLoopback(self):
        """
        A bare port number for C{--component} listens on loopback only.
        """
        settings = self.parse("--component", "5347", "--component-secret", "s")
        [(description, endpoint)] = settings.components
        self.assertEqual(description, "tcp:5347:interface=127.0.0.1")
        self.assertEqual(endpoint._interface, "127.0.0.1")

    def test_upstream(self):
        """
        C{--upstream} is checked and turns gateway mode on (more in
        L{tests.test_gateway_config}).
        """
        self.assertRefused("DOMAIN=ENDPOINT", "--upstream", "example.org")
        settings = self.parse("--upstream", "example.org=tcp:xmpp.example.org:5222")
        self.assertEqual([route.domain for route in settings.upstreams], ["example.org"])


class LimitOptionTests(OptionsMixin, unittest.TestCase):
    """
    Every limit has an option, checked.
    """

    def test_values(self):
        """
        The limit options set the L{Limits}.
        """
        limits = self.parse(
            "--max-connections", "50", "--max-connections-per-ip", "5",
            "--max-message-size", "1000", "--handshake-timeout", "2.5",
            "--open-timeout", "3", "--idle-timeout", "0", "--ping-interval", "7",
            "--ping-timeout", "4", "--stanza-rate", "1.5", "--stanza-burst", "9",
            "--byte-rate", "2048", "--byte-burst", "4096", "--stall-timeout", "12",
        ).limits
        self.assertEqual(
            (
                limits.maxConnections, limits.maxConnectionsPerIP, limits.maxMessageSize,
                limits.handshakeTimeout, limits.openTimeout, limits.idleTimeout,
                limits.pingInterval, limits.pingTimeout, limits.stanzaRate, limits.stanzaBurst,
                limits.byteRate, limits.byteBurst, limits.stallTimeout,
            ),
            (50, 5, 1000, 2.5, 3, 0, 7, 4, 1.5, 9, 2048, 4096, 12),
        )

    def test_invalid(self):
        """
        Values out of range or not numbers are refused, naming the option.
        """
        for option, value in [
            ("--max-connections", "0"),
            ("--max-connections-per-ip", "-1"),
            ("--max-message-size", "1.5"),
            ("--handshake-timeout", "-2"),
            ("--open-timeout", "soon"),
            ("--idle-timeout", "nan"),
            ("--stanza-rate", "inf"),
            ("--stanza-burst", "0"),
            ("--byte-rate", "-5"),
            ("--byte-rate", "1.5"),
            ("--byte-burst", "0"),
            ("--stall-timeout", "soon"),
            ("--shutdown-timeout", "0"),
            ("--sm-timeout", "-1"),
        ]:
            self.assertRefused(option, option, value)

    def test_pingNeedsTimeout(self):
        """
        Pinging needs a time to wait for the answer.
        """
        self.assertRefused("--ping-timeout", "--ping-timeout", "0")
        self.assertEqual(self.parse("--ping-interval", "0", "--ping-timeout", "0").limits.pingInterval, 0)


class HardeningOptionsTests(OptionsMixin, unittest.TestCase):
    """
    The login throttle and the state budgets have options, checked, and
    reach the embedded server.
    """

    def test_defaults(self):
        """
        Without options, the throttle and the budgets have their
        documented defaults.
        """
        settings = self.parse()
        self.assertEqual(repr(settings.throttle), repr(ThrottlePolicy()))
        self.assertEqual(repr(settings.quotas), repr(Quotas()))
        self.assertEqual(settings.registrationInterval, 60)

    def test_values(self):
        """
        Each option sets its value.
        """
        settings = self.parse(
            "--auth-account-failures", "3", "--auth-address-failures", "4",
            "--auth-delay", "0.5", "--auth-max-delay", "30",
            "--auth-account-forget", "600", "--auth-address-forget", "120",
            "--auth-address-refuse", "0", "--auth-remember-address", "0",
            "--max-resources", "2", "--max-roster-items", "3",
            "--max-pending-subscriptions", "4", "--max-roster-groups", "5",
            "--max-blocked", "6", "--max-directed-presences", "7",
            "--sm-max-queue", "8", "--max-offline-messages", "9",
            "--max-archive-messages", "10", "--max-archive-prefs", "11",
            "--max-pep-nodes", "12", "--max-pep-items", "13", "--max-pep-item-size", "14",
            "--max-vcard-size", "15", "--max-private-size", "16",
            "--registration-interval", "0",
        )
        throttle, quotas = settings.throttle, settings.quotas
        self.assertEqual(
            (
                throttle.accountFailures, throttle.addressFailures, throttle.delay,
                throttle.maxDelay, throttle.accountForget, throttle.addressForget,
                throttle.addressRefuse, throttle.rememberAddress,
            ),
            (3, 4, 0.5, 30, 600, 120, 0, 0),
        )
        self.assertEqual(
            [getattr(quotas, name) for name in Quotas._names], list(range(2, 17))
        )
        self.assertEqual(settings.registrationInterval, 0)

    def test_invalid(self):
        """
        Values out of range are refused, naming the option.
        """
        for option, value in [
            ("--auth-account-failures", "-1"),
            ("--auth-delay", "0"),
            ("--auth-address-forget", "soon"),
            ("--auth-address-refuse", "1.5"),
            ("--max-resources", "0"),
            ("--max-blocked", "-5"),
            ("--sm-max-queue", "many"),
            ("--registration-interval", "-1"),
        ]:
            self.assertRefused(option, option, value)
        self.assertRefused("--auth-max-delay", "--auth-delay", "10", "--auth-max-delay", "5")

    def test_fromFile(self):
        """
        The configuration file sets them too.
        """
        path = FilePath(self.mktemp())
        path.setContent(b"max-roster-items = 50\nauth_max_delay = 120\n")
        settings = self.parse("--config", path.path)
        self.assertEqual(settings.quotas.maxRosterItems, 50)
        self.assertEqual(settings.throttle.maxDelay, 120)

    def test_reachServer(self):
        """
        The service's embedded server uses them.
        """
        from xmppws.service import XMPPService

        settings = self.parse("--max-blocked", "6", "--auth-delay", "3", "--c2s", "none")
        service = XMPPService(settings, MemoryReactorClock(), installSignalHandlers=False)
        self.addCleanup(service.storage.close)
        self.assertEqual(service.server.config.quotas.maxBlocked, 6)
        self.assertEqual(service.server.throttle.policy.delay, 3)


class ConfigFileTests(OptionsMixin, unittest.TestCase):
    """
    C{--config}: a TOML file equivalent to the options, which the command
    line overrides.
    """

    def writeConfig(self, text):
        path = FilePath(self.mktemp())
        path.setContent(text.encode("utf-8"))
        return path.path

    def test_settings(self):
        """
        Every kind of setting can come from the file.
        """
        path = self.writeConfig(
            'domain = ["example.org", "example.net"]\n'
            'listen = "tcp:8080:interface=127.0.0.1"\n'
            'c2s = ["none"]\n'
            'path = "/ws"\n'
            "max-connections = 7\n"
            "stanza_rate = 2.5\n"
            "registration = true\n"
        )
        settings = self.parse("--config", path)
        self.assertEqual(settings.domains, ["example.org", "example.net"])
        self.assertEqual([d for d, _ in settings.listen], ["tcp:8080:interface=127.0.0.1"])
        self.assertEqual(settings.c2s, [])
        self.assertEqual(settings.path, "/ws")
        self.assertEqual(settings.limits.maxConnections, 7)
        self.assertEqual(settings.limits.stanzaRate, 2.5)
        self.assertTrue(settings.registration)

    def test_commandLineOverrides(self):
        """
        Options on the command line override the file; a repeated option
        replaces the file's list; C{--no-...} turns a file's flag off.
        """
        path = self.writeConfig(
            'domain = ["example.org"]\npath = "/ws"\nregistration = true\nanonymous = true\n'
        )
        settings = self.parse(
            "--config", path, "--domain", "example.net", "--path", "/other", "--no-registration"
        )
        self.assertEqual(settings.domains, ["example.net"])
        self.assertEqual(settings.path, "/other")
        self.assertFalse(settings.registration)
        self.assertTrue(settings.anonymous)

    def test_invalidValueInFile(self):
        """
        An invalid value in the file is reported with the option's name
        and the file's.
        """
        path = self.writeConfig("max-connections = -3\n")
        message = self.assertRefused("--max-connections", "--config", path)
        self.assertIn(path, message)

    def test_unknownSetting(self):
        """
        An unknown setting is refused, with a suggestion.
        """
        path = self.writeConfig('listn = ["tcp:1"]\n')
        message = self.assertRefused("listn", "--config", path)
        self.assertIn("did you mean 'listen'", message)

    def test_wrongTypes(self):
        """
        Values of the wrong type are refused, naming the setting.
        """
        for text, name in [
            ("registration = 1\n", "registration"),
            ("path = true\n", "path"),
            ("path = [\"/a\"]\n", "path"),
            ("[limits]\nidle-timeout = 3\n", "limits"),
        ]:
            self.assertRefused(name, "--config", self.writeConfig(text))

    def test_unreadable(self):
        """
        A missing file or invalid TOML is reported clearly.
        """
        self.assertRefused("cannot read the configuration file", "--config", self.mktemp())
        self.assertRefused("is not valid TOML", "--config", self.writeConfig("listen = [\n"))

    def test_loadConfig(self):
        """
        L{loadConfig} returns strings, lists of strings and booleans.
        """
        path = self.writeConfig('a = 1\nb = "x"\nc = ["y", 2]\nd = false\n')
        self.assertEqual(
            loadConfig(path, {"a": VALUE, "b": VALUE, "c": LIST, "d": FLAG}),
            {"a": "1", "b": "x", "c": ["y", "2"], "d": False},
        )
        self.assertRaises(ConfigError, loadConfig, path, {"a": VALUE})


class HelpTests(unittest.TestCase):
    """
    C{twistd xmppws --help} and the plugin.
    """

    def test_everyOptionDocumented(self):
        """
        The help names every option.
        """
        text = str(tap.Options())
        names = [name for name, _, _ in tap._VALUES] + list(tap._LISTS) + list(tap._FLAGS)
        for name in names:
            self.assertIn("--" + name, text)
        for name in tap._FLAGS:
            self.assertIn("--no-" + name, text)

    def test_plugin(self):
        """
        The C{xmppws} service maker is found as a Twisted plugin and uses
        L{xmppws.tap}.
        """
        makers = [p for p in getPlugins(IServiceMaker) if p.tapname == "xmppws"]
        self.assertEqual(len(makers), 1)
        self.assertIs(makers[0].options, tap.Options)
        self.assertIs(makers[0].makeService, tap.makeService)

    def test_pluginIsThin(self):
        """
        Importing the plugin module imports none of xmppws.
        """
        code = (
            "import sys; import twisted.plugins.xmppws_plugin; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('xmppws', 'autobahn', 'prometheus_client')))"
        )
        output = subprocess.check_output(
            [sys.executable, "-c", code],
            env=dict(os.environ, PYTHONPATH=ROOT),
            cwd=ROOT,
            timeout=60,
        )
        self.assertEqual(output.strip(), b"[]")


class ArchiveOptionsTests(unittest.TestCase):
    """
    The message archive's options.
    """

    def parse(self, *argv):
        options = tap.Options()
        options.parseOptions(["--data-dir", self.mktemp()] + list(argv))
        return options.settings

    def test_defaults(self):
        """
        By default archives are on, kept one week, everything archived; the
        rooms follow.
        """
        settings = self.parse()
        self.assertEqual(
            (settings.archive.enabled, settings.archive.retention, settings.archive.default),
            (True, 7 * 86400, "always"),
        )
        self.assertEqual((settings.muc.archive, settings.muc.archiveRetention),
                         (True, 7 * 86400))

    def test_values(self):
        """
        --archive-expires-after takes units or never, --archive-default a
        policy, --no-archive turns archives off for rooms too.
        """
        settings = self.parse("--archive-expires-after", "30d", "--archive-default", "roster",
                              "--max-archive-messages", "50")
        self.assertEqual((settings.archive.retention, settings.archive.default),
                         (30 * 86400, "roster"))
        self.assertEqual(settings.muc.maxArchiveMessages, 50)
        self.assertIsNone(self.parse("--archive-expires-after", "never").archive.retention)
        settings = self.parse("--no-archive")
        self.assertFalse(settings.archive.enabled)
        self.assertFalse(settings.muc.archive)

    def test_invalid(self):
        """
        A retention or default that makes no sense is refused, naming the
        option.
        """
        for option, value in [("--archive-expires-after", "soon"),
                              ("--archive-expires-after", "0d"),
                              ("--archive-default", "sometimes")]:
            error = self.assertRaises(usage.UsageError, self.parse, option, value)
            self.assertIn(option.lstrip("-"), str(error))
