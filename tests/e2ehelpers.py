# -*- test-case-name: tests.test_e2e -*-
"""
Helpers for the end-to-end tests: the embedded server on loopback ports
of the real reactor, and three clients written elsewhere that talk to it
over real sockets.

    - L{WebSocketsClient}: the C{websockets} package's synchronous client
      (its own WebSocket implementation, not Autobahn) carrying a small
      RFC 7395 driver that logs in with SCRAM-SHA-256 (C{scramp}) and
      does XEP-0198; it runs in threads.
    - L{TwistedWordsClient}: Twisted Words' C{XMPPClientFactory} over
      L{xmppws.client}.
    - L{SlixmppClient}: slixmpp over TCP, in a thread with its own
      asyncio loop.

Each client hands what it receives to an L{Inbox} on the reactor
thread, as L{domish.Element}s, so that tests wait for stanzas the same
way whatever the client.  Every wait is bounded.
"""

import asyncio
import base64
import datetime
import inspect
import socket
import struct
import threading
import time

from scramp import ScramClient
from tests.certs import writeCertificate
from twisted.internet import defer, ssl, threads
from twisted.internet.endpoints import TCP4ClientEndpoint, serverFromString
from twisted.internet.task import deferLater
from twisted.words.protocols.jabber import client, xmlstream
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish

from tests.c2shelpers import parseElement
from xmppws.c2s import component
from xmppws.c2s.modules import closeModules, installModules
from xmppws.c2s.server import ServerConfig, XMPPServer
from xmppws.c2s.storage import Storage
from xmppws.client import XMPPWebSocketClientFactory
from xmppws.connection import ConnectionFactory
from xmppws.tcp import StreamCarrierFactory
from xmppws.websocket import XMPPWebSocketServerFactory

__all__ = [
    "DOMAIN",
    "NS_ROSTER",
    "PASSWORD",
    "TIMEOUT",
    "ConnectionTracker",
    "E2EServer",
    "Inbox",
    "SlixmppClient",
    "TwistedWordsClient",
    "WebSocketsClient",
    "delayStamp",
    "isMessage",
    "isPresence",
    "isRosterPush",
    "message",
    "presence",
    "tlsOptions",
    "waitFor",
    "withTimeout",
    "writeCertificate",
]

DOMAIN = "localhost"
PASSWORD = "e2e-secret"
USERS = ("alice", "bob", "carol")
WS_PATH = "/xmpp-websocket"
TIMEOUT = 10

NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_SM = "urn:xmpp:sm:3"
NS_ROSTER = "jabber:iq:roster"
NS_DELAY = "urn:xmpp:delay"


def waitFor(reactor, condition, timeout=TIMEOUT, what="a condition", interval=0.02):
    """
    Poll C{condition} on the reactor until it is true.

    @return: a L{defer.Deferred} firing with its true value, or failing
        with L{AssertionError} after C{timeout} seconds.
    """
    deadline = reactor.seconds() + timeout

    @defer.inlineCallbacks
    def poll():
        while True:
            value = condition()
            if value:
                return value
            if reactor.seconds() > deadline:
                raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
            yield deferLater(reactor, interval, lambda: None)

    return poll()


def withTimeout(d, reactor, timeout, what):
    """
    Fail C{d} with an L{AssertionError} naming C{what} if it has not
    fired after C{timeout} seconds.
    """

    def timedOut(result, seconds):
        raise AssertionError("timed out after %ss waiting for %s" % (seconds, what))

    d.addTimeout(timeout, reactor, onTimeoutCancel=timedOut)
    return d


# Stanza predicates, for Inbox.expect


def _child(element, name, uri=None):
    for child in element.elements():
        if child.name == name and (uri is None or child.uri == uri):
            return child
    return None


def _fromMatches(element, sender):
    if sender is None:
        return True
    actual = element.getAttribute("from") or ""
    return actual == sender or ("/" not in sender and actual.split("/")[0] == sender)


def isMessage(body=None, sender=None, type=None):
    """
    A predicate: a message with this body, from this address (a bare
    address matches any of its resources), of this type.
    """

    def predicate(element):
        if element.name != "message" or not _fromMatches(element, sender):
            return False
        if type is not None and element.getAttribute("type", "normal") != type:
            return False
        if body is not None:
            child = _child(element, "body")
            return child is not None and str(child) == body
        return True

    predicate.description = "message body=%r from=%r type=%r" % (body, sender, type)
    return predicate


def isPresence(sender=None, type=None):
    """
    A predicate: a presence from this address (a bare address matches any
    of its resources) of this type (L{None} for available).
    """

    def predicate(element):
        return (
            element.name == "presence"
            and _fromMatches(element, sender)
            and element.getAttribute("type") == type
        )

    predicate.description = "presence from=%r type=%r" % (sender, type)
    return predicate


def isRosterPush(contact, subscription, ask=None):
    """
    A predicate: a roster push about C{contact} with this subscription
    state and C{ask} attribute.
    """

    def predicate(element):
        if element.name != "iq" or element.getAttribute("type") != "set":
            return False
        query = _child(element, "query", NS_ROSTER)
        if query is None:
            return False
        item = _child(query, "item")
        return (
            item is not None
            and item.getAttribute("jid") == contact
            and item.getAttribute("subscription", "none") == subscription
            and item.getAttribute("ask") == ask
        )

    predicate.description = "roster push jid=%r subscription=%r ask=%r" % (
        contact,
        subscription,
        ask,
    )
    return predicate


def delayStamp(element):
    """
    @return: the XEP-0203 C{<delay/>} of a stanza as C{(from, datetime)},
        or L{None}.
    """
    delay = _child(element, "delay", NS_DELAY)
    if delay is None:
        return None
    stamp = datetime.datetime.fromisoformat(delay["stamp"].replace("Z", "+00:00"))
    return delay.getAttribute("from"), stamp


class Inbox:
    """
    What a client received, on the reactor thread.

    @ivar elements: received elements not yet taken by L{expect}.
    @ivar history: every element received, in order.
    """

    def __init__(self, reactor, name):
        self.reactor = reactor
        self.name = name
        self.elements = []
        self.history = []
        self._waiters = []
        self.handlers = []

    def deliver(self, element):
        """
        Take one received element: run the handlers, then wake a waiter
        whose predicate it matches or keep it.
        """
        self.history.append(element)
        for handler in self.handlers:
            handler(element)
        for waiter in self._waiters:
            predicate, d = waiter
            if predicate(element):
                self._waiters.remove(waiter)
                d.callback(element)
                return
        self.elements.append(element)

    def deliverXML(self, data):
        """
        Take one received element serialized as XML.
        """
        self.deliver(parseElement(data.encode("utf-8") if isinstance(data, str) else data))

    def expect(self, predicate, timeout=TIMEOUT):
        """
        Take the first element matching C{predicate}, received already or
        within C{timeout} seconds.

        @return: a L{defer.Deferred} firing with the element.
        """
        for element in self.elements:
            if predicate(element):
                self.elements.remove(element)
                return defer.succeed(element)
        waiter = []

        def cancel(d):
            if waiter and waiter[0] in self._waiters:
                self._waiters.remove(waiter[0])

        d = defer.Deferred(cancel)
        waiter.append((predicate, d))
        self._waiters.append(waiter[0])

        def timedOut(result, seconds):
            raise AssertionError(
                "%s: no %s within %ss; received and not taken: %s"
                % (
                    self.name,
                    getattr(predicate, "description", predicate),
                    seconds,
                    [e.toXml() for e in self.elements],
                )
            )

        d.addTimeout(timeout, self.reactor, onTimeoutCancel=timedOut)
        return d

    @defer.inlineCallbacks
    def expectAll(self, predicates, timeout=TIMEOUT):
        """
        Take one element for each predicate, whatever order they arrive in.

        @return: a L{defer.Deferred} firing with the list of elements.
        """
        taken = []
        for predicate in predicates:
            taken.append((yield self.expect(predicate, timeout)))
        return taken

    def taken(self, predicate):
        """
        @return: the elements received so far, taken or not, that match.
        """
        return [e for e in self.history if predicate(e)]


class ConnectionTracker:
    """
    Keep track of the protocols that factories build, to wait for every
    connection to end (or abort the rest) when a test is done.

    @ivar open: the protocols whose connection has not been lost.
    """

    def __init__(self, reactor):
        self.reactor = reactor
        self.open = set()

    def track(self, factory):
        """
        Track the protocols C{factory} builds from now on.

        @return: C{factory}
        """
        build = factory.buildProtocol

        def buildProtocol(addr):
            protocol = build(addr)
            if protocol is not None:
                self._add(protocol)
            return protocol

        factory.buildProtocol = buildProtocol
        return factory

    def _add(self, protocol):
        self.open.add(protocol)
        lost = protocol.connectionLost

        def connectionLost(reason):
            self.open.discard(protocol)
            return lost(reason)

        protocol.connectionLost = connectionLost

    @defer.inlineCallbacks
    def drain(self, grace=3):
        """
        Wait up to C{grace} seconds for every tracked connection to end,
        then abort the rest and wait for them too.

        @return: a L{defer.Deferred} firing with the number of connections
            that had to be aborted.
        """
        try:
            yield waitFor(self.reactor, lambda: not self.open, grace, "connections to close")
            return 0
        except AssertionError:
            pass
        leftover = list(self.open)
        for protocol in leftover:
            transport = getattr(protocol, "transport", None)
            if transport is not None:
                transport.abortConnection()
        yield waitFor(self.reactor, lambda: not self.open, grace, "aborted connections to end")
        return len(leftover)


class E2EServer:
    """
    The embedded server with a WebSocket port, a TCP client port and,
    optionally, a component port, each on a free loopback port.

    @ivar path: the SQLite database; it survives L{stop}, so L{start}
        after L{stop} is a service restart.
    @ivar server: the L{XMPPServer} while started.
    @ivar wsPort: the WebSocket port number.
    @ivar c2sPort: the TCP client port number.
    @ivar componentPort: the component port number, or L{None}.
    @ivar aborted: how many connections were still open at L{stop} and
        had to be aborted.
    @ivar connections: the L{ConnectionFactory} of both ports, while
        started.
    @ivar wsOptions: more keyword arguments for the WebSocket factory
        (C{trustedProxies}, say).
    """

    def __init__(
        self,
        reactor,
        directory,
        tracker,
        tlsOptions=None,
        componentSecret=None,
        policies=None,
        wsOptions=None,
        **config,
    ):
        self.reactor = reactor
        self.policies = dict(policies or {})
        self.wsOptions = dict(wsOptions or {})
        directory.makedirs(ignoreExistingDirectory=True)
        self.path = directory.child("xmppws.sqlite").path
        self.tracker = tracker
        self.tlsOptions = tlsOptions
        self.componentSecret = componentSecret
        config.setdefault("domains", [DOMAIN])
        config.setdefault("smTimeout", 60)
        self.config = config
        self.server = None
        self._ports = []
        self.wsPort = self.c2sPort = self.componentPort = None
        self.aborted = 0
        storage = Storage(self.path)
        for user in USERS:
            storage.addUser(user, DOMAIN, PASSWORD)
        storage.close()

    @property
    def wsURL(self):
        return "ws://127.0.0.1:%d%s" % (self.wsPort, WS_PATH)

    @defer.inlineCallbacks
    def start(self):
        """
        Build the server on the database and listen.
        """
        self.storage = Storage(self.path)
        self.server = XMPPServer(
            self.storage,
            ServerConfig(**self.config),
            reactor=self.reactor,
            tlsOptions=self.tlsOptions,
        )
        installModules(self.server)
        # The same stack as the service: one connection factory (and so one
        # set of policies) for the WebSocket and the TCP port.
        self.connections = ConnectionFactory(
            self.server.streamFactory(), self.reactor, **self.policies
        )
        ws = XMPPWebSocketServerFactory(
            connectionFactory=self.connections,
            path=WS_PATH,
            reactor=self.reactor,
            **self.wsOptions,
        )
        self.wsPort = yield self._listen(ws)
        self.c2sPort = yield self._listen(StreamCarrierFactory(self.connections))
        if self.componentSecret is not None:
            service = component.install(self.server, self.componentSecret)
            self.componentPort = yield self._listen(service.factory)

    @defer.inlineCallbacks
    def _listen(self, factory):
        endpoint = serverFromString(self.reactor, "tcp:0:interface=127.0.0.1")
        port = yield endpoint.listen(self.tracker.track(factory))
        self._ports.append(port)
        return port.getHost().port

    @defer.inlineCallbacks
    def stop(self):
        """
        Stop listening, wait for the connections to end (aborting what
        is left), end the sessions and close the database.
        """
        ports, self._ports = self._ports, []
        yield defer.gatherResults([defer.maybeDeferred(p.stopListening) for p in ports])
        self.aborted += yield self.tracker.drain()
        if self.server is not None:
            for resources in list(self.server.sessions.values()):
                for session in list(resources.values()):
                    self.server.endSession(session)
            # The archive and personal data: written, closed, threads gone.
            yield closeModules(self.server)
            self.storage.close()
            self.server = None

    def session(self, jid):
        """
        @return: the server's session of a full JID, or L{None}.
        """
        return self.server.session(JID(jid))


class WebSocketsClient:
    """
    An XMPP client on the C{websockets} package's synchronous WebSocket
    client: RFC 7395 framing, SCRAM-SHA-256, resource binding and
    XEP-0198 (with resumption), driven in threads.

    Negotiation runs in a reactor pool thread; once bound, a reader
    thread hands each received element to L{inbox} on the reactor thread
    and answers the server's C{<r/>}.  Sends go through the pool too,
    one at a time, in order.

    @ivar jid: the bound full JID.
    @ivar smId: the resumption id from C{<enabled/>}, or L{None}.
    @ivar handled: stanzas received since C{<enable/>} (XEP-0198 C{h}).
    @ivar outbound: stanzas sent since C{<enable/>}.
    @ivar resumed: the C{<resumed/>} element of the last resumption.
    @ivar autoApprove: answer subscription requests with C{subscribed}.
    """

    def __init__(self, reactor, url, username, resource, autoApprove=False):
        self.reactor = reactor
        self.url = url
        self.username = username
        self.resource = resource
        self.inbox = Inbox(reactor, "%s (websockets)" % (username,))
        self.inbox.handlers.append(self._handle)
        self.autoApprove = autoApprove
        self.jid = None
        self.ws = None
        self.smId = None
        self.handled = None
        self.outbound = 0
        self.resumed = None
        self._reader = None
        self._stopping = threading.Event()
        self._sendLock = defer.DeferredLock()

    # Blocking, in a pool thread

    def _connect(self):
        from websockets.sync.client import connect

        self.ws = connect(
            self.url,
            subprotocols=["xmpp"],
            open_timeout=TIMEOUT,
            close_timeout=2,
            max_size=2**20,
        )
        if self.ws.subprotocol != "xmpp":
            raise AssertionError("server selected %r" % (self.ws.subprotocol,))

    def _send(self, data):
        if self.ws is None:
            raise AssertionError("%s is not connected" % (self.username,))
        if isinstance(data, domish.Element):
            data = data.toXml()
        if self.handled is not None and data.startswith(("<message", "<presence", "<iq")):
            self.outbound += 1
        self.ws.send(data)

    def _recv(self):
        return parseElement(self.ws.recv(timeout=TIMEOUT).encode("utf-8"))

    def _open(self):
        self._send("<open xmlns='%s' to='%s' version='1.0'/>" % (NS_FRAMING, DOMAIN))
        opened = self._recv()
        if (opened.uri, opened.name) != (NS_FRAMING, "open"):
            raise AssertionError("expected <open/>, got " + opened.toXml())
        return self._recv()

    def _authenticate(self):
        features = self._open()
        mechanisms = _child(features, "mechanisms", NS_SASL)
        offered = [str(m) for m in mechanisms.elements()] if mechanisms else []
        if "SCRAM-SHA-256" not in offered:
            raise AssertionError("SCRAM-SHA-256 not offered: %s" % (features.toXml(),))
        scram = ScramClient(["SCRAM-SHA-256"], self.username, PASSWORD)
        self._send(
            "<auth xmlns='%s' mechanism='SCRAM-SHA-256'>%s</auth>"
            % (NS_SASL, _b64(scram.get_client_first()))
        )
        challenge = self._recv()
        if challenge.name != "challenge":
            raise AssertionError("expected a challenge, got " + challenge.toXml())
        scram.set_server_first(base64.b64decode(str(challenge)).decode())
        self._send(
            "<response xmlns='%s'>%s</response>" % (NS_SASL, _b64(scram.get_client_final()))
        )
        success = self._recv()
        if success.name != "success":
            raise AssertionError("expected success, got " + success.toXml())
        scram.set_server_final(base64.b64decode(str(success)).decode())
        return self._open()

    def _login(self, sm):
        self._connect()
        features = self._authenticate()
        if _child(features, "bind", NS_BIND) is None:
            raise AssertionError("no bind feature: " + features.toXml())
        self._send(
            "<iq xmlns='jabber:client' type='set' id='bind'>"
            "<bind xmlns='%s'><resource>%s</resource></bind></iq>" % (NS_BIND, self.resource)
        )
        bound = self._recv()
        if bound.getAttribute("type") != "result":
            raise AssertionError("bind failed: " + bound.toXml())
        self.jid = str(_child(_child(bound, "bind", NS_BIND), "jid"))
        if sm:
            if _child(features, "sm", NS_SM) is None:
                raise AssertionError("no XEP-0198 feature: " + features.toXml())
            self._send("<enable xmlns='%s' resume='true'/>" % (NS_SM,))
            enabled = self._recv()
            if enabled.name != "enabled":
                raise AssertionError("expected <enabled/>, got " + enabled.toXml())
            self.smId = enabled.getAttribute("id")
            self.handled = 0
            self.outbound = 0
        self._startReader()
        return self.jid

    def _resume(self):
        self._connect()
        self._authenticate()
        self._send("<resume xmlns='%s' previd='%s' h='%d'/>" % (NS_SM, self.smId, self.handled))
        resumed = self._recv()
        if resumed.name != "resumed":
            raise AssertionError("expected <resumed/>, got " + resumed.toXml())
        self.resumed = resumed
        self._startReader()
        return resumed

    def _startReader(self):
        self._stopping.clear()
        ws = self.ws
        self._reader = threading.Thread(
            target=self._read, args=(ws,), name="websockets reader " + self.username, daemon=True
        )
        self._reader.start()

    def _read(self, ws):
        from websockets.exceptions import ConnectionClosed

        while not self._stopping.is_set():
            try:
                data = ws.recv(timeout=0.1)
            except TimeoutError:
                continue
            except ConnectionClosed:
                return
            self.reactor.callFromThread(self.inbox.deliverXML, data)

    def _stopReader(self):
        self._stopping.set()
        if self._reader is not None:
            self._reader.join(TIMEOUT)
            if self._reader.is_alive():
                raise AssertionError("the reader thread did not stop")
            self._reader = None

    def _close(self):
        from websockets.exceptions import ConnectionClosed

        self._stopReader()
        if self.ws is None:
            return
        try:
            if self.handled is not None:
                self._send("<a xmlns='%s' h='%d'/>" % (NS_SM, self.handled))
            self._send("<close xmlns='%s'/>" % (NS_FRAMING,))
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                if _isClose(self._recv()):
                    break
        except (ConnectionClosed, TimeoutError):
            pass
        finally:
            self.ws.close()
            self.ws = None

    def _cut(self):
        self._stopReader()
        ws, self.ws = self.ws, None
        # SO_LINGER with a zero timeout: closing sends a TCP reset, as
        # when a network drops; no WebSocket close frame goes out.
        ws.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if hasattr(ws, "close_socket"):
            ws.close_socket()
        else:
            # Older websockets block in recv() on the socket: wake it.
            ws.socket.shutdown(socket.SHUT_RDWR)
        ws.recv_events_thread.join(TIMEOUT)

    # On the reactor thread

    def login(self, sm=False):
        """
        Connect, authenticate with SCRAM-SHA-256, bind and (with C{sm})
        enable XEP-0198 with resumption.

        @return: a L{defer.Deferred} firing with the bound JID.
        """
        return threads.deferToThreadPool(
            self.reactor, self.reactor.getThreadPool(), self._login, sm
        )

    def resume(self):
        """
        Resume the session on a new WebSocket.

        @return: a L{defer.Deferred} firing with the C{<resumed/>}.
        """
        return threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), self._resume)

    def send(self, data):
        """
        Send one element (or its XML), after those sent before.
        """
        return self._sendLock.run(
            threads.deferToThreadPool, self.reactor, self.reactor.getThreadPool(), self._send, data
        )

    def cut(self):
        """
        End the TCP connection under the WebSocket abruptly.
        """
        return self._sendLock.run(
            threads.deferToThreadPool, self.reactor, self.reactor.getThreadPool(), self._cut
        )

    def close(self):
        """
        Close the stream and the WebSocket cleanly (after acknowledging
        what was received, with XEP-0198).
        """
        return self._sendLock.run(
            threads.deferToThreadPool, self.reactor, self.reactor.getThreadPool(), self._close
        )

    def reply(self, data):
        """
        Send an automatic answer, unless the connection is gone by then.
        """
        from websockets.exceptions import ConnectionClosed

        def gone(failure):
            if self.ws is None or failure.check(ConnectionClosed):
                return None
            return failure

        return self.send(data).addErrback(gone)

    def _handle(self, element):
        if self.handled is not None:
            if element.name in ("message", "presence", "iq") and element.uri == "jabber:client":
                self.handled += 1
            elif (element.uri, element.name) == (NS_SM, "r"):
                self.reply("<a xmlns='%s' h='%d'/>" % (NS_SM, self.handled))
        _autoApprove(self, element)


def _isClose(element):
    return (element.uri, element.name) == (NS_FRAMING, "close")


def _b64(text):
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _autoApprove(client, element):
    if (
        client.autoApprove
        and element.name == "presence"
        and element.getAttribute("type") == "subscribe"
    ):
        client.reply(presence(element["from"], "subscribed"))


def presence(to=None, type=None):
    """
    @return: a C{jabber:client} presence element.
    """
    element = domish.Element(("jabber:client", "presence"))
    if to is not None:
        element["to"] = to
    if type is not None:
        element["type"] = type
    return element


def message(to, body, type="chat"):
    """
    @return: a C{jabber:client} message element.
    """
    element = domish.Element(("jabber:client", "message"))
    element["to"] = to
    element["type"] = type
    element["id"] = "e2e-%d" % (id(element),)
    element.addElement("body", content=body)
    return element


class TwistedWordsClient:
    """
    Twisted Words' C{XMPPClientFactory} (SASL PLAIN, which the server
    offers on loopback; binding; the legacy session) over
    L{xmppws.client}'s WebSocket client.

    @ivar xs: the authenticated C{XmlStream}.
    @ivar jid: the bound full JID.
    """

    def __init__(self, reactor, tracker, port, username, resource, autoApprove=False):
        self.reactor = reactor
        self.tracker = tracker
        self.port = port
        self.username = username
        self.resource = resource
        self.autoApprove = autoApprove
        self.inbox = Inbox(reactor, "%s (Twisted Words)" % (username,))
        self.inbox.handlers.append(lambda element: _autoApprove(self, element))
        self.xs = None
        self.jid = None
        self._ended = defer.Deferred()

    @defer.inlineCallbacks
    def login(self):
        """
        Connect and authenticate.

        @return: a L{defer.Deferred} firing with the bound JID.
        """
        authenticated = defer.Deferred()
        streams = client.XMPPClientFactory(
            JID("%s@%s/%s" % (self.username, DOMAIN, self.resource)), PASSWORD
        )

        def connected(xs):
            # TLS is the wss: layer's business; the stream offers none.
            for initializer in xs.initializers:
                if isinstance(initializer, xmlstream.TLSInitiatingInitializer):
                    initializer.required = False

        streams.addBootstrap(xmlstream.STREAM_CONNECTED_EVENT, connected)
        streams.addBootstrap(xmlstream.STREAM_AUTHD_EVENT, authenticated.callback)
        streams.addBootstrap(xmlstream.INIT_FAILED_EVENT, authenticated.errback)
        streams.addBootstrap(
            xmlstream.STREAM_END_EVENT, lambda reason: self._ended.callback(None)
        )
        factory = XMPPWebSocketClientFactory(
            streams, "ws://127.0.0.1:%d%s" % (self.port, WS_PATH), reactor=self.reactor
        )
        endpoint = TCP4ClientEndpoint(self.reactor, "127.0.0.1", self.port, timeout=TIMEOUT)
        self.protocol = yield endpoint.connect(self.tracker.track(factory))
        self.xs = yield withTimeout(authenticated, self.reactor, TIMEOUT, "Twisted Words login")
        self.jid = self.xs.authenticator.jid.full()
        for kind in ("/message", "/presence", "/iq[@type='set']"):
            self.xs.addObserver(kind, self.inbox.deliver)
        return self.jid

    def send(self, element):
        """
        Send one element.
        """
        self.xs.send(element)

    reply = send

    def iq(self, type, payload, to=None):
        """
        Send an iq and wait for its result.

        @return: a L{defer.Deferred} firing with the response.
        """
        iq = xmlstream.IQ(self.xs, type)
        iq.addChild(payload)
        iq.timeout = TIMEOUT
        return iq.send(to)

    @defer.inlineCallbacks
    def close(self):
        """
        Close the stream (the adapter sends C{<close/>}) and wait for the
        connection to end.
        """
        if self.xs is not None and not self._ended.called:
            self.xs.sendFooter()
            try:
                yield withTimeout(self._ended, self.reactor, TIMEOUT, "the stream to end")
            except AssertionError:
                self.protocol.transport.abortConnection()
                raise


class SlixmppClient:
    """
    slixmpp over TCP, in a thread running its own asyncio loop.

    @ivar xmpp: the C{slixmpp.ClientXMPP}, once logged in; use it only
        on the loop, through L{call}.
    @ivar jid: the bound full JID.
    """

    def __init__(self, reactor, username, resource="slixmpp"):
        self.reactor = reactor
        self.username = username
        self.resource = resource
        self.inbox = Inbox(reactor, "%s (slixmpp)" % (username,))
        self.xmpp = None
        self.jid = None
        self.loop = asyncio.new_event_loop()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="slixmpp " + username, daemon=True)
        self._thread.start()

    def _run(self):
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
            tasks = asyncio.all_tasks(self.loop)
            for task in tasks:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()

    def call(self, function, *args, timeout=TIMEOUT):
        """
        Run C{function(*args)} on the loop (awaiting its result if it is
        awaitable).

        @return: a L{defer.Deferred} firing with the result on the
            reactor thread, failing after C{timeout} seconds.
        """

        async def run():
            result = function(*args)
            if inspect.isawaitable(result):
                result = await result
            return result

        future = asyncio.run_coroutine_threadsafe(run(), self.loop)
        d = defer.Deferred(lambda _: future.cancel())

        def fire(f):
            if d.called:
                return
            if f.cancelled():
                d.errback(defer.CancelledError())
            elif f.exception() is not None:
                d.errback(f.exception())
            else:
                d.callback(f.result())

        future.add_done_callback(lambda f: self.reactor.callFromThread(fire, f))
        return withTimeout(d, self.reactor, timeout, "%s on slixmpp" % (function,))

    def login(
        self, port, tls=False, caFile=None, mechanism=None, streamManagement=False, plugins=()
    ):
        """
        Connect to C{127.0.0.1:port}, with STARTTLS trusting C{caFile} if
        C{tls}, authenticate (with C{mechanism} only, if given), fetch the
        roster and send initial presence; with C{streamManagement}, enable
        XEP-0198 with resumption (slixmpp's plugin, asking for an
        acknowledgement after every stanza).

        @param plugins: more slixmpp plugins to register first (such as
            C{xep_0313}).
        @return: a L{defer.Deferred} firing with the bound JID.
        """
        d = self.call(
            self._login, port, tls, caFile, mechanism, streamManagement, plugins,
            timeout=TIMEOUT + 5,
        )

        def loggedIn(jid):
            self.jid = jid
            return jid

        return d.addCallback(loggedIn)

    async def _login(self, port, tls, caFile, mechanism, streamManagement, plugins=()):
        import slixmpp

        config = {"feature_mechanisms": {"unencrypted_scram": not tls}}
        xmpp = slixmpp.ClientXMPP(
            "%s@%s/%s" % (self.username, DOMAIN, self.resource),
            PASSWORD,
            plugin_config=config,
            sasl_mech=mechanism,
        )
        xmpp.register_plugin("xep_0199")
        xmpp.register_plugin("xep_0092")
        if streamManagement:
            xmpp.register_plugin("xep_0198", {"window": 1})
        for plugin in plugins:
            xmpp.register_plugin(plugin)
        xmpp.enable_direct_tls = False
        xmpp.enable_starttls = tls
        xmpp.enable_plaintext = not tls
        if caFile is not None:
            from pathlib import Path

            xmpp.ca_certs = Path(caFile)
        started = self.loop.create_future()

        def settle(error=None):
            if not started.done():
                if error is None:
                    started.set_result(None)
                else:
                    started.set_exception(AssertionError(error))

        xmpp.add_event_handler("session_start", lambda event: settle())
        xmpp.add_event_handler("failed_all_auth", lambda event: settle("authentication failed"))
        xmpp.add_event_handler("connection_failed", lambda e: settle("cannot connect: %s" % (e,)))
        xmpp.add_event_handler("disconnected", lambda e: settle("disconnected: %s" % (e,)))
        for event in ("message", "message_error", "presence", "roster_update"):
            xmpp.add_event_handler(event, self._received)
        self.xmpp = xmpp
        xmpp.connect("127.0.0.1", port)
        await asyncio.wait_for(started, TIMEOUT)
        await xmpp.get_roster(timeout=TIMEOUT)
        xmpp.send_presence()
        return xmpp.boundjid.full

    def _received(self, stanza):
        self.reactor.callFromThread(self.inbox.deliverXML, str(stanza))

    def cut(self, reset):
        """
        End the TCP connection without closing the stream: with a reset,
        as when a network drops, or else with the orderly TCP close the
        kernel makes when a client process dies.
        """

        def cut():
            transport = self.xmpp.transport
            if reset:
                transport.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            transport.abort()

        return self.call(cut)

    def resume(self, port):
        """
        Reconnect and let slixmpp resume its XEP-0198 session.

        @return: a L{defer.Deferred} firing with the C{<resumed/>} as XML,
            failing if the server answers C{<failed/>}.
        """
        return self.call(self._resume, port, timeout=TIMEOUT + 5)

    async def _resume(self, port):
        outcome = self.loop.create_future()

        def settle(stanza, failed):
            if not outcome.done():
                if failed:
                    outcome.set_exception(AssertionError("resumption failed: %s" % (stanza,)))
                else:
                    outcome.set_result(str(stanza))

        self.xmpp.add_event_handler("session_resumed", lambda s: settle(s, False))
        self.xmpp.add_event_handler("sm_failed", lambda s: settle(s, True))
        self.xmpp.connect("127.0.0.1", port)
        return await asyncio.wait_for(outcome, TIMEOUT)

    @defer.inlineCallbacks
    def stop(self):
        """
        Close the stream, wait for the connection to end, stop the loop
        and its thread; again, do nothing.
        """
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.xmpp is not None:
                yield self.call(self._disconnect)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            yield threads.deferToThreadPool(
                self.reactor, self.reactor.getThreadPool(), self._thread.join, TIMEOUT
            )
            if self._thread.is_alive():
                raise AssertionError("the slixmpp thread did not stop")

    async def _disconnect(self):
        if self.xmpp.transport is not None:
            await asyncio.wait_for(self.xmpp.disconnect(wait=2), TIMEOUT - 1)
        if self.xmpp.transport is not None:
            raise AssertionError("slixmpp is still connected")


def tlsOptions(keyPath, certPath):
    """
    @return: server TLS options for a key and certificate file.
    """
    return ssl.PrivateCertificate.loadPEM(
        certPath.getContent() + keyPath.getContent()
    ).options()
