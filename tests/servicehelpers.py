"""
Helpers for testing the C{twistd xmppws} service in memory: certificates,
a started L{XMPPService} on a L{MemoryReactorClock}, WebSocket clients
that go through its L{Site} and TCP clients that go through its
L{StreamCarrierFactory}.
"""

import base64

from tests.c2shelpers import parseElement
from tests import certs
from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.words.xish import domish

from xmppws.c2s.asyncdb import InlineRunner
from xmppws.testing import MemoryWebSocketClient, ProducerTolerantTransport
from xmppws.limits import Limits
from xmppws.service import Settings, XMPPService

OPEN = b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>"
CLOSE = b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"
LEGACY_HEADER = (
    b"<stream:stream to='localhost' xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
)
TCP_HEADER = b"<?xml version='1.0'?>" + LEGACY_HEADER
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_STREAMS_ERRORS = "urn:ietf:params:xml:ns:xmpp-streams"
BIND = (
    b"<iq xmlns='jabber:client' type='set' id='bind1'><bind "
    b"xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>%s</resource></bind></iq>"
)


def writeCertificate(directory, commonName="localhost"):
    """
    Write a fresh self-signed certificate for C{commonName} and its key.

    @param directory: where to write C{key.pem} and C{cert.pem}; created
        if missing.
    @type directory: L{FilePath}
    @return: C{(keyPath, certPath)} as L{str}.
    """
    keyPath, certPath = certs.writeCertificate(directory, (commonName,), ())
    return keyPath.path, certPath.path


def startService(testCase, limits=None, withMetrics=False, **settings):
    """
    Start an L{XMPPService} on a fresh L{MemoryReactorClock}, with one
    WebSocket listener and one TCP client listener, accounts alice and
    bob (password C{secret}) on C{localhost}, and txaio's timers on the
    same clock.  The service stops at clean-up.

    @param limits: keyword arguments for L{Limits}.
    @param withMetrics: also listen for metrics scrapers on port 9280.
    @param settings: more L{Settings}.
    @return: the started service; its C{reactor} is the clock.
    """
    clock = MemoryReactorClock()
    settings.setdefault("dataDir", testCase.mktemp())
    settings.setdefault("listen", [("tcp:5280", TCP4ServerEndpoint(clock, 5280))])
    settings.setdefault("c2s", [("tcp:5222", TCP4ServerEndpoint(clock, 5222))])
    # The room database is written at once: there are no threads on the clock.
    settings.setdefault("databaseRunner", InlineRunner())
    if withMetrics:
        settings["metrics"] = [("tcp:9280", TCP4ServerEndpoint(clock, 9280))]
    settings["limits"] = Limits(**(limits or {}))
    service = XMPPService(Settings(**settings), clock, installSignalHandlers=False)
    for user in ("alice", "bob"):
        service.storage.addUser(user, "localhost", "secret")
    service.startService()

    def stop():
        if service.running:
            d = service.stopService()
            # Past the shutdown timeout, then past the grace after dropping.
            clock.advance(settings.get("shutdownTimeout", 10) + 0.5)
            clock.advance(2)
            return d

    testCase.addCleanup(stop)
    return service



def plainAuth(user, password):
    """
    The SASL PLAIN C{<auth/>} element for C{user} and C{password}.

    @rtype: L{bytes}
    """
    return (
        b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
        + base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
        + b"</auth>"
    )

class SiteClient(MemoryWebSocketClient):
    """
    A WebSocket client of a service's L{Site}, in memory, whose
    C{messages()} are parsed (and checked) elements.
    """

    def __init__(self, site, peer="127.0.0.1", port=50000):
        MemoryWebSocketClient.__init__(
            self,
            site,
            peer=IPv4Address("TCP", peer, port),
            host=IPv4Address("TCP", "127.0.0.1", 5280),
        )
        self.channel = self._first

    def messages(self):
        """
        The text messages received since the last call, parsed.
        """
        return [parseElement(p) for p in MemoryWebSocketClient.messages(self)]

    def open(self, header=OPEN):
        return MemoryWebSocketClient.open(self, header)

    def login(self, user="alice", password="secret", resource="web"):
        """
        Open the stream, authenticate with PLAIN and bind.

        @return: the bound JID.
        """
        self.open()
        self.send(plainAuth(user, password))
        [success] = self.messages()
        assert success.name == "success", success.toXml()
        self.send(OPEN)
        self.messages()
        self.send(BIND % (resource.encode(),))
        [reply] = self.messages()
        return str(reply.bind.jid)


class TCPClient:
    """
    A plain XMPP client of a service's L{StreamCarrierFactory}, in memory.

    @ivar xs: the server's TCP carrier.
    @ivar transport: its transport.
    @ivar elements: the top-level elements received and not yet taken.
    @ivar header: the server's stream header, once received.
    @ivar ended: C{True} once the server sent its footer.
    """

    def __init__(self, factory, peer="127.0.0.1", port=40000):
        address = IPv4Address("TCP", peer, port)
        self.transport = StringTransport(
            peerAddress=address, hostAddress=IPv4Address("TCP", "127.0.0.1", 5222)
        )
        self.xs = factory.buildProtocol(address)
        self.xs.makeConnection(self.transport)
        self.elements = []
        self.header = None
        self.ended = False
        self._newParser()

    def _newParser(self):
        self._parser = domish.elementStream()
        self._parser.DocumentStartEvent = self._started
        self._parser.ElementEvent = lambda element: self.elements.append(element)
        self._parser.DocumentEndEvent = self._ended

    def _started(self, root):
        self.header = root

    def _ended(self):
        self.ended = True

    def send(self, data):
        self.xs.dataReceived(data)

    def receive(self):
        """
        Take the elements received so far.
        """
        data = self.transport.value()
        self.transport.clear()
        if data:
            self._parser.parse(data)
        taken, self.elements = self.elements, []
        return taken

    def open(self):
        self.send(TCP_HEADER)
        return self.receive()

    def lose(self, reason=ConnectionDone):
        """
        The TCP connection ends: after the server closed it, or abruptly.
        """
        self.xs.connectionLost(Failure(reason()))

    def login(self, user="alice", password="secret", resource="tcp"):
        """
        Open the stream, authenticate with PLAIN, restart and bind.

        @return: the bound JID.
        """
        self.open()
        self.send(plainAuth(user, password))
        [success] = self.receive()
        assert success.name == "success", success.toXml()
        self._newParser()
        self.send(TCP_HEADER)
        self.receive()
        self.send(BIND % (resource.encode(),))
        [reply] = self.receive()
        return str(reply.bind.jid)


def streamErrorCondition(element):
    """
    @return: the condition of a C{<stream:error/>}, or L{None}.
    """
    if element.name != "error":
        return None
    for child in element.elements():
        if child.uri == NS_STREAMS_ERRORS and child.name != "text":
            return child.name
    return None
