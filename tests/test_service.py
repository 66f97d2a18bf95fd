"""
Tests for L{xmppws.service}: the service tree C{makeService} builds,
graceful shutdown with live sessions, reloading TLS certificates with a
live session, and the connection log events.
"""

import io
import json
import os
import signal
import socket
import sqlite3
import ssl

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ServerEndpoint, serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.task import deferLater
from twisted.internet.testing import (
    EventLoggingObserver,
    MemoryReactorClock,
    RaisingMemoryReactor,
)
from twisted.internet.threads import deferToThread
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.python.filepath import FilePath
from twisted.trial import unittest
from twisted.web.resource import NoResource
from twisted.web.server import Site
from twisted.web.test.requesthelper import DummyRequest
from websockets.sync.client import connect as websocketsConnect

from tests.helpers import OP_CLOSE, upgradeRequest
from tests.servicehelpers import (
    CLOSE,
    LEGACY_HEADER,
    OPEN,
    TCP_HEADER,
    SiteClient,
    TCPClient,
    parseElement,
    startService,
    streamErrorCondition,
    writeCertificate,
)
from xmppws import _tls, tap
from xmppws.tcp import StreamCarrierFactory
from xmppws.c2s.storage import Storage
from xmppws.discovery import HostMeta, HostMetaJSON
from xmppws.logs import ReadableFields, jsonObserver
from xmppws.metrics import MetricsResource
from xmppws.service import ListenFailed, Settings, XMPPService
from xmppws.web import LandingPage
from xmppws.websocket import XMPPWebSocketResource

NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
TIMEOUT = 10.0


def _child(site, path):
    request = DummyRequest(path.lstrip(b"/").split(b"/"))
    return site.getResourceFor(request)


class ServiceTreeTests(unittest.TestCase):
    """
    The service L{tap.makeService} builds from parsed options.
    """

    def makeService(self, *argv):
        options = tap.Options()
        options.reactor = self.reactor = MemoryReactorClock()
        options.parseOptions(["--data-dir", self.mktemp()] + list(argv))
        service = tap.makeService(options)
        service.installSignalHandlers = False
        return service

    def test_defaults(self):
        """
        Without options the service listens for WebSocket on 127.0.0.1
        port 5280 and for TCP clients on 127.0.0.1 port 5222, nothing
        else.
        """
        service = self.makeService()
        service.startService()
        self.addCleanup(service.stopService)
        listening = [(port, interface) for port, _, _, interface in self.reactor.tcpServers]
        self.assertEqual(listening, [(5280, "127.0.0.1"), (5222, "127.0.0.1")])
        self.assertIsInstance(self.reactor.tcpServers[0][1], Site)
        self.assertIsInstance(self.reactor.tcpServers[1][1], StreamCarrierFactory)
        self.assertEqual(service.server.config.domains, ["localhost"])

    def test_componentPort(self):
        """
        C{--component} opens a component port served by tx-xmpp's component
        server factory, routed through the embedded server.
        """
        from tx_xmpp.component import XMPPComponentServerFactory

        service = self.makeService(
            "--component", "tcp:5347:interface=127.0.0.1", "--component-secret", "x"
        )
        service.startService()
        self.addCleanup(service.stopService)
        [factory] = service.factories("component")
        self.assertIsInstance(factory, XMPPComponentServerFactory)
        listening = [(port, interface) for port, _, _, interface in self.reactor.tcpServers]
        self.assertIn((5347, "127.0.0.1"), listening)
        self.assertIs(service.server.modules["component"], service.components)

    def test_archiveBacklogHoldsConnections(self):
        """
        The service gives the archives of accounts and rooms the
        connection layer's backlog, which holds up the connections that
        fill it.
        """
        from xmppws.flow import Backlog

        service = self.makeService()
        service.startService()
        self.addCleanup(service.stopService)
        self.assertIsInstance(service.server.modules["mam"].store.backlog, Backlog)
        self.assertIsInstance(service.muc.archive.store.backlog, Backlog)

    def test_repeatedListeners(self):
        """
        Every C{--listen}, C{--c2s} and C{--metrics} endpoint gets a
        listener of its own, each C{--listen} one its own L{Site}.
        """
        service = self.makeService(
            "--listen", "tcp:8080:interface=127.0.0.1",
            "--listen", "tcp:8081:interface=\\:\\:1",
            "--c2s", "tcp:5223",
            "--metrics", "tcp:9280:interface=127.0.0.1",
        )
        service.startService()
        self.addCleanup(service.stopService)
        ports = [port for port, _, _, _ in self.reactor.tcpServers]
        self.assertEqual(ports, [8080, 8081, 5223, 9280])
        sites = service.factories("web")
        self.assertEqual(len(sites), 2)
        self.assertIsNot(sites[0], sites[1])
        [metricsSite] = service.factories("metrics")
        self.assertIsInstance(_child(metricsSite, b"/metrics"), MetricsResource)

    def test_resourceTree(self):
        """
        A C{--listen} site serves the WebSocket endpoint at C{--path}, the
        host-meta documents and the landing page, and no metrics unless
        asked.
        """
        service = self.makeService("--path", "/ws/xmpp")
        [site] = service.factories("web")
        self.assertIsInstance(_child(site, b"/ws/xmpp"), XMPPWebSocketResource)
        self.assertIsInstance(_child(site, b"/.well-known/host-meta"), HostMeta)
        self.assertIsInstance(_child(site, b"/.well-known/host-meta.json"), HostMetaJSON)
        self.assertIsInstance(_child(site, b"/"), LandingPage)
        self.assertIsInstance(_child(site, b"/metrics"), NoResource)
        self.assertIsInstance(_child(site, b"/xmpp-websocket"), NoResource)

    def test_metricsPath(self):
        """
        C{--metrics-path} also serves the metrics on the C{--listen} sites.
        """
        service = self.makeService("--metrics-path", "/internal/metrics")
        [site] = service.factories("web")
        self.assertIsInstance(_child(site, b"/internal/metrics"), MetricsResource)

    def test_sslListenerReloadable(self):
        """
        An C{ssl:} listener without C{privateKey} uses the certificate of
        C{--tls-key} and C{--tls-cert}, the same one STARTTLS offers.
        """
        keyPath, certPath = writeCertificate(FilePath(self.mktemp()))
        service = self.makeService(
            "--listen", "ssl:5281:interface=127.0.0.1",
            "--tls-key", keyPath,
            "--tls-cert", certPath,
        )
        service.startService()
        self.addCleanup(service.stopService)
        [(port, factory, contextFactory, _, interface)] = self.reactor.sslServers
        self.assertEqual((port, interface), (5281, "127.0.0.1"))
        self.assertIsInstance(contextFactory, _tls.ReloadableCertificate)
        self.assertIs(service.server.tlsOptions, contextFactory)
        self.assertEqual(service.settings.certificates, [contextFactory])

    def test_listenFailure(self):
        """
        When a port cannot be listened on, starting the service fails and
        the error names the endpoint.
        """
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        failing = RaisingMemoryReactor(listenException=CannotListenError("127.0.0.1", 5280, OSError("in use")))
        service = XMPPService(
            Settings(
                dataDir=self.mktemp(),
                listen=[("tcp:5280", TCP4ServerEndpoint(failing, 5280))],
            ),
            MemoryReactorClock(),
            installSignalHandlers=False,
        )
        error = self.assertRaises(ListenFailed, service.privilegedStartService)
        self.assertIn("cannot listen for WebSocket and HTTP on tcp:5280", str(error))
        self.assertIn("in use", str(error))
        messages = [formatEvent(e) for e in events if e["log_level"] == LogLevel.error]
        self.assertTrue(any("tcp:5280" in m for m in messages), messages)
        service.exitOnListenFailure = True
        error = self.assertRaises(SystemExit, service.privilegedStartService)
        self.assertIn("xmppws: cannot listen for WebSocket and HTTP on tcp:5280", str(error))

    def test_listeningLogged(self):
        """
        Each listener logs the address it listens on.
        """
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        service = self.makeService()
        service.startService()
        self.addCleanup(service.stopService)
        messages = [formatEvent(e) for e in events]
        # The memory reactor's ports report 0.0.0.0 whatever the interface.
        self.assertIn("Listening for WebSocket and HTTP on 0.0.0.0:5280", messages)
        self.assertIn("Listening for XMPP clients on 0.0.0.0:5222", messages)

    def test_dataDirectory(self):
        """
        The database lives in C{--data-dir}.
        """
        dataDir = self.mktemp()
        options = tap.Options()
        options.reactor = MemoryReactorClock()
        options.parseOptions(["--data-dir", dataDir])
        service = tap.makeService(options)
        self.addCleanup(service.storage.close)
        self.assertTrue(os.path.exists(os.path.join(dataDir, "xmppws.sqlite")))


class GracefulShutdownTests(unittest.TestCase):
    """
    Stopping the service closes every stream properly, within a bound.
    """

    def stop(self, service):
        stopped = []
        service.stopService().addBoth(stopped.append)
        return stopped

    def test_everyClientGetsAClose(self):
        """
        Clients in both WebSocket framings and over TCP get the
        C{system-shutdown} stream error and the stream's closing; the stop
        completes once they are gone, after the database was closed.
        """
        service = startService(self)
        [site] = service.factories("web")
        [c2s] = service.factories("c2s")
        framed = SiteClient(site, port=1)
        framed.login("alice")
        legacy = SiteClient(site, port=2)
        legacy.handshake()
        legacy.send(LEGACY_HEADER)
        legacy.received()
        tcp = TCPClient(c2s, port=3)
        tcp.login("bob")
        self.assertEqual(len(service.server.sessions), 2)

        stopped = self.stop(service)

        messages = framed.messages()
        self.assertEqual(
            [streamErrorCondition(messages[0]), (messages[1].uri, messages[1].name)],
            ["system-shutdown", (NS_FRAMING, "close")],
        )
        self.assertEqual(framed.frames[-1][0], OP_CLOSE)
        self.assertEqual(framed.closeCode(), 1000)
        payloads = [p for _, p in legacy.received()]
        self.assertIn(b"system-shutdown", payloads[0])
        self.assertEqual(payloads[1], b"</stream:stream>")
        self.assertEqual(legacy.closeCode(), 1000)
        self.assertEqual([streamErrorCondition(e) for e in tcp.receive()], ["system-shutdown"])
        self.assertTrue(tcp.ended)
        self.assertFalse(tcp.transport.disconnecting)
        # RFC 6120 section 4.4: the server waits for the client's footer.
        tcp.send(b"</stream:stream>")
        self.assertTrue(tcp.transport.disconnecting)
        self.assertEqual(stopped, [])

        for client in (framed, legacy):
            client.closeWebSocket()
            client.lose()
        tcp.lose()
        self.assertEqual(len(stopped), 1)
        self.assertEqual(service.server.sessions, {})
        self.assertRaises(
            sqlite3.ProgrammingError, service.storage.userExists, "alice", "localhost"
        )

    def test_newConnectionsRefused(self):
        """
        While stopping, a WebSocket handshake gets 503 and a TCP client the
        C{system-shutdown} stream error.
        """
        service = startService(self)
        [site] = service.factories("web")
        [c2s] = service.factories("c2s")
        waiting = SiteClient(site, port=1)
        waiting.open()
        self.stop(service)
        late = SiteClient(site, port=2)
        self.assertIn(b" 503 ", late.handshake())
        lateTCP = TCPClient(c2s, port=3)
        self.assertIn(b"system-shutdown", lateTCP.transport.value())

    def test_seeOtherURI(self):
        """
        With a C{see-other-uri}, RFC 7395 clients get C{<close/>} naming it;
        draft-00 clients, which cannot be redirected, get
        C{system-shutdown}.
        """
        uri = "wss://other.example/xmpp-websocket"
        service = startService(self, seeOtherURI=uri)
        [site] = service.factories("web")
        framed = SiteClient(site, port=1)
        framed.login("alice")
        legacy = SiteClient(site, port=2)
        legacy.handshake()
        legacy.send(LEGACY_HEADER)
        legacy.received()
        self.stop(service)
        [close] = framed.messages()
        self.assertEqual((close.uri, close.name), (NS_FRAMING, "close"))
        self.assertEqual(close["see-other-uri"], uri)
        self.assertIn(b"system-shutdown", legacy.received()[0][1])

    def test_bounded(self):
        """
        Peers that never finish closing are dropped after the shutdown
        timeout, and the stop completes.
        """
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        service = startService(self, shutdownTimeout=3)
        [site] = service.factories("web")
        [c2s] = service.factories("c2s")
        silent = SiteClient(site, port=1)
        silent.open()
        tcp = TCPClient(c2s, port=2)
        tcp.open()
        stopped = self.stop(service)
        service.reactor.advance(2.9)
        self.assertEqual(stopped, [])
        service.reactor.advance(0.2)
        self.assertTrue(silent.transport.disconnecting)
        service.reactor.advance(1)
        self.assertEqual(len(stopped), 1)
        warnings = [formatEvent(e) for e in events if e["log_level"] == LogLevel.warn]
        self.assertIn("2 connections did not close within 3s; dropping them", warnings)

    def test_detachedSessionPersisted(self):
        """
        A session waiting for stream management resumption is ended when
        the service stops, and the message it had not acknowledged is kept
        as an offline message.
        """
        service = startService(self)
        [site] = service.factories("web")
        [c2s] = service.factories("c2s")
        alice = SiteClient(site, port=1)
        alice.login("alice")
        alice.send(b"<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
        [enabled] = alice.messages()
        self.assertEqual(enabled.name, "enabled")
        bob = TCPClient(c2s, port=2)
        bob.login("bob")
        bob.send(
            b"<message xmlns='jabber:client' to='alice@localhost/web' type='chat' "
            b"id='m1'><body>are you there?</body></message>"
        )
        self.assertIn("message", [m.name for m in alice.messages()])
        alice.lose()
        self.assertEqual(len(service.server.sessions["alice@localhost"]), 1)
        stopped = self.stop(service)
        bob.receive()
        bob.lose()
        self.assertEqual(len(stopped), 1)
        storage = Storage.inDirectory(service.settings.dataDir)
        self.addCleanup(storage.close)
        self.assertEqual(storage.countOffline("alice", "localhost"), 1)

    def test_stopSignals(self):
        """
        The first SIGTERM or SIGINT stops the reactor (the service then
        stops gracefully); a second one drops the connections still open.
        """
        service = startService(self)
        [site] = service.factories("web")
        client = SiteClient(site)
        client.open()
        service._stopRequested("SIGTERM")
        self.assertTrue(service.reactor.hasStopped)
        self.stop(service)
        self.assertFalse(client.transport.disconnecting)
        service._stopRequested("SIGINT")
        self.assertTrue(client.transport.disconnecting)


class _Session:
    """
    An RFC 7395 session with the C{websockets} client, driven from a
    thread.
    """

    def __init__(self, url):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self.ws = websocketsConnect(
            url, subprotocols=["xmpp"], ssl=context, open_timeout=TIMEOUT, close_timeout=TIMEOUT
        )
        self.certificate = self.ws.socket.getpeercert(binary_form=True)

    def exchange(self, data, replies):
        self.ws.send(data.decode("utf-8"))
        return [parseElement(self.ws.recv(timeout=TIMEOUT).encode("utf-8")) for _ in range(replies)]

    def close(self):
        try:
            self.exchange(CLOSE, 1)
        finally:
            self.ws.close()


class ReloadTests(unittest.TestCase):
    """
    Reloading TLS certificates while the service runs.
    """

    timeout = 60

    def setUp(self):
        self.directory = FilePath(self.mktemp())
        self.keyPath, self.certPath = writeCertificate(self.directory, "a.example")

    def renew(self, commonName="b.example"):
        """
        Replace the certificate files, as a renewal does.
        """
        writeCertificate(self.directory, commonName)

    def test_reload(self):
        """
        L{_tls.ReloadableCertificate.reload} reads the renewed files; new
        contexts carry the new certificate.
        """
        certificate = _tls.ReloadableCertificate(self.keyPath, self.certPath)
        self.assertEqual(certificate.subject, "a.example")
        before = certificate.getContext()
        self.renew()
        certificate.reload()
        self.assertEqual(certificate.subject, "b.example")
        self.assertIsNot(certificate.getContext(), before)

    def test_reloadFailureKeepsCertificate(self):
        """
        When the renewed files cannot be used, the service logs why and
        keeps the certificate in use.
        """
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        certificate = _tls.ReloadableCertificate(self.keyPath, self.certPath)
        service = startService(self, certificate=certificate, certificates=[certificate])
        FilePath(self.keyPath).setContent(b"not a key")
        self.assertFalse(service.reloadTLS())
        self.assertEqual(certificate.subject, "a.example")
        certificate.getContext()
        errors = [formatEvent(e) for e in events if e["log_level"] == LogLevel.error]
        self.assertEqual(len(errors), 1)
        self.assertIn(self.keyPath, errors[0])

    def test_mismatchedKey(self):
        """
        A key that does not belong to the certificate is refused with a
        message naming both files.
        """
        otherKey, _ = writeCertificate(FilePath(self.mktemp()))
        error = self.assertRaises(
            _tls.CertificateError, _tls.ReloadableCertificate, otherKey, self.certPath
        )
        self.assertIn("does not match", str(error))
        self.assertIn(self.certPath, str(error))

    def test_fullChain(self):
        """
        A certificate file may carry the chain after the certificate.
        """
        _, otherCert = writeCertificate(FilePath(self.mktemp()), "ca.example")
        FilePath(self.certPath).setContent(
            FilePath(self.certPath).getContent() + FilePath(otherCert).getContent()
        )
        certificate = _tls.ReloadableCertificate(self.keyPath, self.certPath)
        self.assertEqual(certificate.subject, "a.example")

    def test_sighup(self):
        """
        SIGHUP makes the running service reload its certificates.
        """
        handlers = {n: signal.getsignal(n) for n in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)}
        self.addCleanup(lambda: [signal.signal(n, h) for n, h in handlers.items()])
        service = XMPPService(Settings(dataDir=self.mktemp()), reactor)
        reloaded = Deferred()
        service.reloadTLS = lambda: reloaded.callback(True)
        service.startService()
        self.addCleanup(service.stopService)
        self.assertIsNot(signal.getsignal(signal.SIGHUP), handlers[signal.SIGHUP])
        os.kill(os.getpid(), signal.SIGHUP)
        return reloaded

    @inlineCallbacks
    def test_startTLS(self):
        """
        STARTTLS on a TCP client port uses the configured certificate, and
        the renewed one after a reload.
        """
        certificate = _tls.ReloadableCertificate(self.keyPath, self.certPath)
        service = XMPPService(
            Settings(
                dataDir=self.mktemp(),
                c2s=[("tcp:0", serverFromString(reactor, "tcp:0:interface=127.0.0.1"))],
                certificate=certificate,
                certificates=[certificate],
            ),
            reactor,
            installSignalHandlers=False,
        )
        service.startService()
        self.addCleanup(service.stopService)
        yield deferLater(reactor, 0, lambda: None)
        [address] = service.addresses["c2s"]
        before, features = yield deferToThread(_startTLS, address.port)
        self.assertEqual(before, FilePath(self.certPath).getContent())
        self.assertIn(b"PLAIN", features)
        self.assertNotIn(b"starttls", features)
        self.renew()
        self.assertTrue(service.reloadTLS())
        after, _ = yield deferToThread(_startTLS, address.port)
        self.assertEqual(after, FilePath(self.certPath).getContent())
        self.assertNotEqual(after, before)

    @inlineCallbacks
    def test_liveSessionSurvives(self):
        """
        A WebSocket session over TLS goes on (authenticates, binds, gets
        answers) after the certificate was reloaded, and new connections
        get the new certificate.
        """
        certificates = {}
        endpoint = _tls.serverEndpoint(
            reactor,
            "ssl:0:interface=127.0.0.1:privateKey=%s:certKey=%s"
            % (self.keyPath.replace(":", "\\:"), self.certPath.replace(":", "\\:")),
            certificates,
        )
        service = XMPPService(
            Settings(
                dataDir=self.mktemp(),
                listen=[("ssl:0", endpoint)],
                certificates=list(certificates.values()),
            ),
            reactor,
            installSignalHandlers=False,
        )
        service.storage.addUser("alice", "localhost", "secret")
        service.startService()
        self.addCleanup(service.stopService)
        yield deferLater(reactor, 0, lambda: None)
        [address] = service.addresses["web"]
        url = "wss://127.0.0.1:%d/xmpp-websocket" % (address.port,)
        original = FilePath(self.certPath).getContent()

        session = yield deferToThread(_Session, url)
        self.addCleanup(deferToThread, session.ws.close)
        opened = yield deferToThread(session.exchange, OPEN, 2)
        self.assertEqual(opened[1].name, "features")
        self.assertEqual(_pem(session.certificate), original)

        self.renew()
        self.assertTrue(service.reloadTLS())

        [success] = yield deferToThread(
            session.exchange,
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
            b"AGFsaWNlAHNlY3JldA==</auth>",
            1,
        )
        self.assertEqual(success.name, "success")
        yield deferToThread(session.exchange, OPEN, 2)
        [bound] = yield deferToThread(
            session.exchange,
            b"<iq xmlns='jabber:client' type='set' id='b'><bind "
            b"xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
            1,
        )
        self.assertEqual(bound["type"], "result")
        [pong] = yield deferToThread(
            session.exchange,
            b"<iq xmlns='jabber:client' type='get' id='p' to='localhost'>"
            b"<ping xmlns='urn:xmpp:ping'/></iq>",
            1,
        )
        self.assertEqual((pong["id"], pong["type"]), ("p", "result"))

        fresh = yield deferToThread(_Session, url)
        self.assertEqual(_pem(fresh.certificate), FilePath(self.certPath).getContent())
        self.assertNotEqual(_pem(fresh.certificate), original)
        yield deferToThread(fresh.ws.close)
        yield deferToThread(session.close)


def _startTLS(port):
    """
    Open a stream on a TCP client port, negotiate STARTTLS and open the
    stream again.

    @return: the server's certificate (PEM) and the features after TLS.
    """
    sock = socket.create_connection(("127.0.0.1", port), TIMEOUT)
    try:
        sock.sendall(TCP_HEADER)
        received = b""
        while b"</stream:features>" not in received:
            received += sock.recv(65536)
        if b"urn:ietf:params:xml:ns:xmpp-tls" not in received:
            raise AssertionError("no STARTTLS offered: %r" % (received,))
        sock.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        received = b""
        while b"proceed" not in received:
            received += sock.recv(65536)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        tls = context.wrap_socket(sock)
        certificate = _pem(tls.getpeercert(binary_form=True))
        tls.sendall(TCP_HEADER)
        received = b""
        while b"</stream:features>" not in received:
            received += tls.recv(65536)
        tls.close()
        return certificate, received
    finally:
        sock.close()


def _pem(der):
    return ssl.DER_cert_to_PEM_cert(der).encode("ascii")


class LogTests(unittest.TestCase):
    """
    One event per connection start and end, with what operators need and
    no secrets.
    """

    def endEvents(self, events):
        return [e for e in events if "bytesIn" in e and "reason" in e]

    def test_webSocketEvents(self):
        """
        A WebSocket connection logs its start and one end event with the
        peer, origin, framing, JID, duration, byte counts and close reason.
        """
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        service = startService(self)
        [site] = service.factories("web")
        client = SiteClient(site, peer="127.0.0.1", port=4711)
        client.handshake(upgradeRequest(extra=[b"Origin: https://chat.example"]))
        client.send(OPEN)
        client.received()
        client.send(
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
            b"AGFsaWNlAHNlY3JldA==</auth>"
        )
        client.send(OPEN)
        client.send(
            b"<iq xmlns='jabber:client' type='set' id='b'><bind "
            b"xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>"
        )
        client.send(CLOSE)
        client.closeWebSocket()
        client.lose()
        starts = [formatEvent(e) for e in events if formatEvent(e).endswith(" open")]
        self.assertEqual(starts, ["XMPP over WebSocket from 127.0.0.1:4711 open"])
        [end] = self.endEvents(events)
        self.assertEqual(end["peer"], "127.0.0.1:4711")
        self.assertEqual(end["origin"], "https://chat.example")
        self.assertEqual(end["framing"], "rfc7395")
        self.assertEqual(end["jid"], "alice@localhost/web")
        self.assertEqual(end["code"], 1000)
        self.assertGreater(end["bytesIn"], 0)
        self.assertGreater(end["bytesOut"], 0)
        self.assertGreaterEqual(end["duration"], 0)
        self.assertIn("closed", end["reason"])

    def test_tcpEvents(self):
        """
        A TCP connection logs its start and one end event with the same
        fields, from the same code.
        """
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        service = startService(self)
        [c2s] = service.factories("c2s")
        client = TCPClient(c2s, port=4712)
        client.login("bob")
        client.send(b"</stream:stream>")
        client.lose()
        starts = [formatEvent(e) for e in events if formatEvent(e).endswith(" open")]
        self.assertEqual(starts, ["XMPP over TCP from 127.0.0.1:4712 open"])
        self.assertEqual(
            [e["log_namespace"] for e in events if formatEvent(e).endswith(" open")],
            ["xmppws.connection.XmlStreamConnection"],
        )
        [end] = self.endEvents(events)
        self.assertEqual(end["peer"], "127.0.0.1:4712")
        self.assertEqual(end["framing"], "rfc6120")
        self.assertEqual(end["jid"], "bob@localhost/tcp")
        self.assertGreater(end["bytesIn"], 0)
        self.assertGreater(end["bytesOut"], 0)
        self.assertIsNotNone(end["reason"])

    def test_noSecrets(self):
        """
        Neither passwords, nor message bodies, nor the request's cookies
        appear in any log event.
        """
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        service = startService(self)
        service.storage.setPassword("alice", "localhost", "hunter2-very-secret")
        [site] = service.factories("web")
        [c2s] = service.factories("c2s")
        web = SiteClient(site, port=1)
        web.handshake(upgradeRequest(extra=[b"Cookie: session=cookie-secret-42"]))
        web.send(OPEN)
        web.send(
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
            + __import__("base64").b64encode(b"\0alice\0hunter2-very-secret")
            + b"</auth>"
        )
        tcp = TCPClient(c2s, port=2)
        tcp.login("bob")
        tcp.send(
            b"<message xmlns='jabber:client' to='alice@localhost' type='chat'>"
            b"<body>the body is private</body></message>"
        )
        tcp.send(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>x</auth>")
        web.lose()
        tcp.lose()
        dumped = "\n".join(formatEvent(e) + repr(e) for e in events)
        for secret in ("hunter2-very-secret", "the body is private", "cookie-secret-42"):
            self.assertNotIn(secret, dumped)

    def test_readableFields(self):
        """
        L{ReadableFields} writes address fields as text.
        """
        seen = []
        ReadableFields(seen.append)({"peer": IPv4Address("TCP", "192.0.2.1", 5), "n": 1})
        self.assertEqual(seen, [{"peer": "192.0.2.1:5", "n": 1}])

    def test_jsonObserver(self):
        """
        L{jsonObserver} writes one JSON object per line on standard output.
        """
        out = io.StringIO()
        self.patch(__import__("sys"), "stdout", out)
        observer = jsonObserver()
        observer(
            {
                "log_format": "{peer} open",
                "peer": IPv4Address("TCP", "192.0.2.1", 5),
                "log_level": LogLevel.info,
                "log_namespace": "test",
                "log_time": 0.0,
            }
        )
        [line] = out.getvalue().splitlines()
        event = json.loads(line)
        self.assertEqual(event["peer"], "192.0.2.1:5")
