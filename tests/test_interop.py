# -*- test-case-name: tests.test_interop -*-
"""
Interoperability of xmppws with peers it did not write, over real loopback
sockets: the C{websockets} package's client, Autobahn's own WebSocket
client, Twisted's HTTP client, and unmodified Twisted Words, tx-xmpp and
Wokkel XMPP code on both ends of an C{xmppws:} endpoint.

Every server listens on C{127.0.0.1} port 0; every test closes what it
opened and waits, within a bound, for both ends of each connection to go.
"""

import ssl
from xml.etree import ElementTree

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from tests.certs import writeCertificate
from twisted.internet import reactor, tcp
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    clientFromString,
    serverFromString,
    wrapClientTLS,
)
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.python.filepath import FilePath
from twisted.trial import unittest
from twisted.web.client import Agent, HTTPConnectionPool, readBody
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data
from twisted.words.protocols.jabber import component, xmlstream
from twisted.words.xish import domish
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as websocketsConnect

from tests.helpers import (
    CLOSE,
    LEGACY_FOOTER,
    LEGACY_HEADER,
    OPEN,
    echoStreamFactory,
    strictParse,
)
from xmppws.framing import NS_FRAMING, NS_STREAMS, NS_XMPP_STREAMS
from xmppws.connection import StreamErrorSent
from xmppws.websocket import XMPPWebSocketResource, XMPPWebSocketServerFactory

NS_CLIENT = "jabber:client"
NS_COMPONENT = "jabber:component:accept"
NS_XML_LANG = "http://www.w3.org/XML/1998/namespace lang"
PATH = "/xmpp-websocket"
STANZA = (
    b"<message xmlns='jabber:client' to='echo@example.com' "
    b"from='user@example.com/ws' type='chat' id='m1'><body>hello</body></message>"
)
LEGACY_STANZA = (
    b"<message to='echo@example.com' from='user@example.com/ws' type='chat' "
    b"id='m2'><body>legacy</body></message>"
)
TIMEOUT = 5.0


def _escape(value):
    """
    Escape a value for use inside an endpoint description.

    @type value: L{str}
    @rtype: L{str}
    """
    return value.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


def _writeCertificate(directory):
    """
    Create a self-signed certificate for C{127.0.0.1} and C{localhost}.

    @param directory: where to write C{key.pem}, C{cert.pem} and
        C{trust/ca.pem} (the certificate again, as a one-file CA directory).
    @type directory: L{FilePath}
    @return: C{(keyPath, certPath, trustDir)}, each a L{FilePath}.
    """
    keyPath, certPath = writeCertificate(directory)
    trustDir = directory.child("trust")
    trustDir.makedirs()
    certPath.copyTo(trustDir.child("ca.pem"))
    return keyPath, certPath, trustDir


def _openConnections(portNumber):
    """
    Find the reactor's TCP connections to or from a local port.

    @type portNumber: L{int}
    @rtype: L{list} of L{tcp.Connection}
    """
    found = []
    for selectable in set(reactor.getReaders()) | set(reactor.getWriters()):
        if not isinstance(selectable, tcp.Connection):
            continue
        try:
            ports = (selectable.getHost().port, selectable.getPeer().port)
        except OSError:
            continue
        if portNumber in ports:
            found.append(selectable)
    return found


@inlineCallbacks
def _waitUntil(predicate, what, timeout=TIMEOUT, interval=0.01):
    """
    Poll C{predicate} on the reactor until it is true, at most C{timeout}
    seconds.

    @raise AssertionError: if it never became true.
    """
    for _ in range(int(timeout / interval)):
        if predicate():
            return
        yield deferLater(reactor, interval, lambda: None)
    if not predicate():
        raise AssertionError("timed out waiting for " + what)


# The websockets client, run in a thread with its blocking API.


def _websocketsSession(url, sslContext=None):
    """
    Open, echo one stanza and close an RFC 7395 session with the
    C{websockets} client.

    @return: a L{dict} with the negotiated C{subprotocol}, every text
        C{message} the server sent (as L{bytes}), and the server's close
        C{code}.
    """
    messages = []
    with websocketsConnect(
        url,
        subprotocols=["xmpp"],
        ssl=sslContext,
        open_timeout=TIMEOUT,
        close_timeout=TIMEOUT,
    ) as ws:
        subprotocol = ws.subprotocol

        def receive():
            data = ws.recv(timeout=TIMEOUT)
            messages.append(data.encode("utf-8") if isinstance(data, str) else data)
            return messages[-1]

        ws.send(OPEN.decode("utf-8"))
        receive()
        receive()
        ws.send(STANZA.decode("utf-8"))
        receive()
        ws.send(CLOSE.decode("utf-8"))
        receive()
        try:
            receive()
        except ConnectionClosed:
            pass
        code = ws.close_code
    return {"subprotocol": subprotocol, "messages": messages, "code": code}


def _websocketsLegacySession(url):
    """
    Open, echo one stanza and close a draft-00 session with the
    C{websockets} client.

    @return: as L{_websocketsSession}.
    """
    messages = []
    with websocketsConnect(
        url, subprotocols=["xmpp"], open_timeout=TIMEOUT, close_timeout=TIMEOUT
    ) as ws:
        subprotocol = ws.subprotocol

        def receive():
            messages.append(ws.recv(timeout=TIMEOUT).encode("utf-8"))

        ws.send(LEGACY_HEADER.decode("utf-8"))
        receive()
        receive()
        ws.send(LEGACY_STANZA.decode("utf-8"))
        receive()
        ws.send(LEGACY_FOOTER.decode("utf-8"))
        receive()
        try:
            receive()
        except ConnectionClosed:
            pass
        code = ws.close_code
    return {"subprotocol": subprotocol, "messages": messages, "code": code}


def _websocketsWithoutSubprotocol(url):
    """
    Try to open a WebSocket without offering C{xmpp}.

    @return: the L{InvalidStatus} the client raised, or L{None}.
    """
    try:
        with websocketsConnect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT):
            return None
    except InvalidStatus as e:
        return e


def _websocketsBinary(url):
    """
    Open a stream, then send a binary message.

    @return: a L{dict} with the text C{messages} received and the close
        C{code} the server sent.
    """
    messages = []
    with websocketsConnect(
        url, subprotocols=["xmpp"], open_timeout=TIMEOUT, close_timeout=TIMEOUT
    ) as ws:
        ws.send(OPEN.decode("utf-8"))
        messages.append(ws.recv(timeout=TIMEOUT).encode("utf-8"))
        messages.append(ws.recv(timeout=TIMEOUT).encode("utf-8"))
        ws.send(b"\x00\x01binary")
        try:
            for _ in range(10):
                messages.append(ws.recv(timeout=TIMEOUT).encode("utf-8"))
        except ConnectionClosed:
            pass
        code = ws.close_code
    return {"messages": messages, "code": code}


# Autobahn's own client.


class _ScriptedClientProtocol(WebSocketClientProtocol):
    """
    An Autobahn client that opens a stream, sends one stanza, and closes
    the stream once the echo arrives.
    """

    def onConnect(self, response):
        self.factory.subprotocol = response.protocol

    def onOpen(self):
        self.sendMessage(OPEN)

    def onMessage(self, payload, isBinary):
        self.factory.messages.append((isBinary, payload))
        count = len(self.factory.messages)
        if count == 2:
            self.sendMessage(STANZA)
        elif count == 3:
            self.sendMessage(CLOSE)

    def onClose(self, wasClean, code, reason):
        self.factory.closed.callback((wasClean, code))


class _ScriptedClientFactory(WebSocketClientFactory):
    """
    Holds what a L{_ScriptedClientProtocol} saw.

    @ivar subprotocol: the subprotocol the server selected.
    @ivar messages: C{(isBinary, payload)} for every message received.
    @ivar closed: fires with C{(wasClean, code)} when the connection is lost.
    """

    protocol = _ScriptedClientProtocol

    def __init__(self, url):
        WebSocketClientFactory.__init__(self, url, protocols=["xmpp"])
        self.subprotocol = None
        self.messages = []
        self.closed = Deferred()


class _EchoServer:
    """
    An echo server listening through the C{xmppws:} server endpoint.

    @ivar factory: the L{echoStreamFactory} whose C{streams} and C{lost}
        record the server's streams.
    @ivar port: the port number.
    @ivar url: the C{ws://} or C{wss://} URL to connect to.
    @ivar certPath: the server's certificate (PEM) with TLS, else L{None}.
    @ivar trustDir: a directory holding only that certificate as C{ca.pem}
        with TLS, else L{None}.
    """

    factory = port = url = certPath = trustDir = None


class InteropMixin:
    """
    Listening, certificates and clean-up shared by the interop tests.
    """

    timeout = 30

    @inlineCallbacks
    def listen(self, description, factory):
        """
        Listen with a server endpoint description; stop listening and wait
        for every connection to the port to close at clean-up.

        @return: a L{Deferred} firing with the port number.
        """
        port = yield serverFromString(reactor, description).listen(factory)
        number = port.getHost().port
        self.addCleanup(port.stopListening)
        self.addCleanup(self.waitForConnections, number)
        return number

    @inlineCallbacks
    def waitForConnections(self, number):
        """
        Wait until no connection to or from C{number} is left; abort any
        that are and fail.
        """
        try:
            yield _waitUntil(
                lambda: not _openConnections(number),
                "the connections to port %d to close" % (number,),
            )
        except AssertionError:
            for connection in _openConnections(number):
                connection.abortConnection()
            raise

    def certificate(self):
        """
        @return: C{(keyPath, certPath, trustDir)} of a fresh self-signed
            certificate for 127.0.0.1.
        """
        return _writeCertificate(FilePath(self.mktemp()))

    @inlineCallbacks
    def listenEcho(self, secure=False):
        """
        Serve an echo stream factory at C{PATH} through the C{xmppws:}
        server endpoint, over TCP or TLS.

        @return: a L{Deferred} firing with an L{_EchoServer}.
        """
        server = _EchoServer()
        server.factory = echoStreamFactory()
        if secure:
            keyPath, server.certPath, server.trustDir = self.certificate()
            inner = "ssl:0:privateKey=%s:certKey=%s:interface=127.0.0.1" % (
                _escape(keyPath.path),
                _escape(server.certPath.path),
            )
        else:
            inner = "tcp:0:interface=127.0.0.1"
        server.port = yield self.listen(
            "xmppws:%s:path=%s" % (_escape(inner), _escape(PATH)), server.factory
        )
        server.url = "%s://127.0.0.1:%d%s" % (
            "wss" if secure else "ws",
            server.port,
            PATH,
        )
        return server

    def assertOpenedAndEchoed(self, messages, code):
        """
        Check an RFC 7395 transcript: C{<open/>}, features, the echoed
        stanza, C{<close/>}, then a clean close; every message strict XML.
        """
        for message in messages:
            strictParse(message)
        self.assertEqual(len(messages), 4, messages)
        uri, local, attrs = strictParse(messages[0])
        self.assertEqual((uri, local), (NS_FRAMING, "open"))
        self.assertEqual(attrs.get("from"), "example.com")
        self.assertTrue(attrs.get("id"))
        self.assertEqual(attrs.get("version"), "1.0")
        self.assertEqual(attrs.get(NS_XML_LANG), "en")
        self.assertEqual(strictParse(messages[1])[:2], (NS_STREAMS, "features"))
        uri, local, attrs = strictParse(messages[2])
        self.assertEqual((uri, local), (NS_CLIENT, "message"))
        self.assertEqual(attrs["to"], "user@example.com/ws")
        self.assertEqual(attrs["from"], "echo@example.com")
        body = ElementTree.fromstring(messages[2]).find("{%s}body" % (NS_CLIENT,))
        self.assertEqual(body.text, "hello")
        self.assertEqual(strictParse(messages[3])[:2], (NS_FRAMING, "close"))
        self.assertEqual(code, 1000)


class WebsocketsClientTests(InteropMixin, unittest.TestCase):
    """
    The C{websockets} package's client against the C{xmppws:} server
    endpoint.
    """

    @inlineCallbacks
    def test_rfc7395(self):
        """
        A C{websockets} client over C{ws://} negotiates C{xmpp}, opens,
        echoes a stanza and closes with code 1000, and the stream knows it
        is not secure.
        """
        server = yield self.listenEcho()
        result = yield deferToThread(_websocketsSession, server.url)
        self.assertEqual(result["subprotocol"], "xmpp")
        self.assertOpenedAndEchoed(result["messages"], result["code"])
        yield _waitUntil(lambda: server.factory.lost, "the stream to end")
        self.assertIs(server.factory.streams[0].transport.secure, False)

    @inlineCallbacks
    def test_rfc7395Secure(self):
        """
        A C{websockets} client over C{wss://}, verifying a self-signed
        certificate for 127.0.0.1, runs the same session, and the server's
        stream counts as secure.
        """
        server = yield self.listenEcho(secure=True)
        context = ssl.create_default_context(cafile=server.certPath.path)
        result = yield deferToThread(_websocketsSession, server.url, context)
        self.assertEqual(result["subprotocol"], "xmpp")
        self.assertOpenedAndEchoed(result["messages"], result["code"])
        yield _waitUntil(lambda: server.factory.lost, "the stream to end")
        self.assertIs(server.factory.streams[0].transport.secure, True)

    @inlineCallbacks
    def test_legacy(self):
        """
        A C{websockets} client speaking draft-00 gets an unclosed header,
        features, the echo of a stanza without C{xmlns}, and a footer, each
        well-formed in the context of the header.
        """
        server = yield self.listenEcho()
        result = yield deferToThread(_websocketsLegacySession, server.url)
        self.assertEqual(result["subprotocol"], "xmpp")
        messages = result["messages"]
        self.assertEqual(len(messages), 4, messages)
        header = messages[0]
        uri, local, attrs = strictParse(header + LEGACY_FOOTER)
        self.assertEqual((uri, local), (NS_STREAMS, "stream"))
        self.assertEqual(attrs.get("from"), "example.com")
        self.assertTrue(attrs.get("id"))
        self.assertEqual(attrs.get("version"), "1.0")
        children = []
        for message in messages[1:3]:
            document = header + message + LEGACY_FOOTER
            strictParse(document)
            children.append(ElementTree.fromstring(document)[0])
        features, echo = children
        self.assertEqual(features.tag, "{%s}features" % (NS_STREAMS,))
        self.assertEqual(echo.tag, "{%s}message" % (NS_CLIENT,))
        self.assertEqual(echo.get("to"), "user@example.com/ws")
        self.assertEqual(echo.get("from"), "echo@example.com")
        self.assertEqual(echo.find("{%s}body" % (NS_CLIENT,)).text, "legacy")
        self.assertEqual(messages[3], LEGACY_FOOTER)
        self.assertEqual(result["code"], 1000)

    @inlineCallbacks
    def test_noSubprotocol(self):
        """
        A C{websockets} client that does not offer C{xmpp} is refused with
        HTTP 400 and a body that names C{xmpp}.
        """
        server = yield self.listenEcho()
        error = yield deferToThread(_websocketsWithoutSubprotocol, server.url)
        self.assertIsInstance(error, InvalidStatus)
        self.assertEqual(error.response.status_code, 400)
        self.assertIn(b"xmpp", error.response.body)
        self.assertEqual(server.factory.streams, [])

    @inlineCallbacks
    def test_binaryMessage(self):
        """
        A binary message gets a strict C{<stream:error/>}, then
        C{<close/>}, then WebSocket close code 1003, and the server's
        stream ends with the stream error it sent.
        """
        server = yield self.listenEcho()
        result = yield deferToThread(_websocketsBinary, server.url)
        messages = result["messages"]
        for message in messages:
            strictParse(message)
        self.assertEqual(len(messages), 4, messages)
        self.assertEqual(strictParse(messages[2])[:2], (NS_STREAMS, "error"))
        self.assertIn(
            "{%s}unsupported-encoding" % (NS_XMPP_STREAMS,),
            [child.tag for child in ElementTree.fromstring(messages[2])],
        )
        self.assertEqual(strictParse(messages[3])[:2], (NS_FRAMING, "close"))
        self.assertEqual(result["code"], 1003)
        yield _waitUntil(lambda: server.factory.lost, "the stream to end")
        reason = server.factory.lost[0]
        self.assertTrue(reason.check(StreamErrorSent), reason)
        self.assertEqual(reason.value.condition, "unsupported-encoding")


class AutobahnClientTests(InteropMixin, unittest.TestCase):
    """
    Autobahn's plain C{WebSocketClientProtocol} against the C{xmppws:}
    server endpoint.
    """

    @inlineCallbacks
    def runSession(self, secure):
        """
        Run the scripted session and check its transcript.
        """
        server = yield self.listenEcho(secure=secure)
        client = _ScriptedClientFactory(server.url)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", client.port)
        if secure:
            trustRoot = Certificate.loadPEM(server.certPath.getContent())
            endpoint = wrapClientTLS(
                optionsForClientTLS("127.0.0.1", trustRoot=trustRoot), endpoint
            )
        yield endpoint.connect(client)
        wasClean, code = yield client.closed
        self.assertTrue(wasClean)
        self.assertEqual(client.subprotocol, "xmpp")
        self.assertEqual([binary for binary, _ in client.messages], [False] * 4)
        self.assertOpenedAndEchoed([payload for _, payload in client.messages], code)
        yield _waitUntil(lambda: server.factory.lost, "the stream to end")
        self.assertIs(server.factory.streams[0].transport.secure, secure)

    def test_rfc7395(self):
        """
        Autobahn's client over C{ws://} opens, echoes a stanza and closes
        cleanly with code 1000.
        """
        return self.runSession(secure=False)

    def test_rfc7395Secure(self):
        """
        Autobahn's client over C{wss://}, verifying the self-signed
        certificate as its trust root, runs the same session.
        """
        return self.runSession(secure=True)


class WebResourceTests(InteropMixin, unittest.TestCase):
    """
    L{XMPPWebSocketResource} in a twisted.web L{Site} beside another
    resource, reached by Twisted's HTTP client and by C{websockets}.
    """

    @inlineCallbacks
    def test_sharedSite(self):
        """
        A plain GET on the WebSocket path gets a 200 page about XMPP, the
        other resource still answers, and a C{websockets} session on the
        same port works.
        """
        streams = echoStreamFactory()
        root = Resource()
        root.putChild(
            b"xmpp-websocket",
            XMPPWebSocketResource(XMPPWebSocketServerFactory(streams)),
        )
        root.putChild(b"hello", Data(b"hello, world", "text/plain"))
        number = yield self.listen("tcp:0:interface=127.0.0.1", Site(root))
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.addCleanup(pool.closeCachedConnections)
        agent = Agent(reactor, pool=pool)
        base = "http://127.0.0.1:%d" % (number,)

        response = yield agent.request(b"GET", (base + PATH).encode("ascii"))
        body = yield readBody(response)
        self.assertEqual(response.code, 200)
        self.assertEqual(
            response.headers.getRawHeaders(b"content-type"),
            [b"text/html; charset=utf-8"],
        )
        self.assertIn(b"XMPP", body)

        response = yield agent.request(b"GET", (base + "/hello").encode("ascii"))
        body = yield readBody(response)
        self.assertEqual((response.code, body), (200, b"hello, world"))

        url = "ws://127.0.0.1:%d%s" % (number, PATH)
        result = yield deferToThread(_websocketsSession, url)
        self.assertEqual(result["subprotocol"], "xmpp")
        self.assertOpenedAndEchoed(result["messages"], result["code"])
        yield _waitUntil(lambda: streams.lost, "the stream to end")


class _StreamSession:
    """
    A client C{XmlStream} connected through the C{xmppws:} client endpoint.

    @ivar xs: the stream.
    @ivar authenticated: fires with the stream on C{STREAM_AUTHD_EVENT},
        fails on C{INIT_FAILED_EVENT}.
    @ivar errors: the L{Failure}s of every C{STREAM_ERROR_EVENT}.
    @ivar reason: the L{Failure} C{STREAM_END_EVENT} carried, or L{None}.
    """

    def __init__(self):
        self.xs = None
        self.authenticated = Deferred()
        self.errors = []
        self.reason = None
        self._ended = Deferred()

    def _streamEnded(self, reason):
        self.reason = reason
        self._ended.callback(None)

    @inlineCallbacks
    def connect(self, description, streamFactory, authenticate=True):
        """
        Connect, then (if C{authenticate}) wait for the stream to
        authenticate.

        @return: a L{Deferred} firing with this session.
        """
        streamFactory.addBootstrap(xmlstream.STREAM_ERROR_EVENT, self.errors.append)
        streamFactory.addBootstrap(
            xmlstream.STREAM_AUTHD_EVENT, self.authenticated.callback
        )
        streamFactory.addBootstrap(
            xmlstream.INIT_FAILED_EVENT, self.authenticated.errback
        )
        streamFactory.addBootstrap(xmlstream.STREAM_END_EVENT, self._streamEnded)
        self.xs = yield clientFromString(reactor, description).connect(streamFactory)
        if authenticate:
            yield self.authenticated
        return self

    def ended(self):
        """
        @return: a L{Deferred} firing with L{None} once the stream ended
            (L{reason} says why), failing if that takes over C{TIMEOUT}
            seconds.
        """
        result = Deferred()
        self._ended.addCallback(result.callback)
        return result.addTimeout(TIMEOUT, reactor)

    def close(self):
        """
        Send the footer if the stream is up, and wait for it to end.

        @return: L{ended}, or L{None} if the stream never connected.
        """
        if self.xs is None:
            return None
        if not self._ended.called:
            self.xs.sendFooter()
        return self.ended()


class ComponentTests(InteropMixin, unittest.TestCase):
    """
    XEP-0114 components over WebSocket: Twisted Words'
    C{componentFactory} through the C{xmppws:} client endpoint, tx-xmpp's
    or Wokkel's component server behind the C{xmppws:} server endpoint.
    """

    @inlineCallbacks
    def connectComponent(self, number, domain, secret, framing="rfc7395"):
        """
        Connect and authenticate a component over WebSocket, with an
        endpoint string that names no namespace: the connection takes the
        one Twisted's component authenticator declares.

        @return: a L{Deferred} firing with its L{_StreamSession}.
        """
        session = _StreamSession()
        description = "xmppws:url=ws\\://127.0.0.1\\:%d/xmpp-websocket:framing=%s" % (
            number,
            framing,
        )
        self.addCleanup(session.close)
        yield session.connect(description, component.componentFactory(domain, secret))
        return session

    @inlineCallbacks
    def routeBetweenComponents(self, router, serverFactory, framing="rfc7395"):
        """
        Authenticate two components with the shared secret and route a
        stanza from one to the other, through an unmodified component
        server factory behind an C{xmppws:} endpoint string that names no
        namespace.
        """
        number = yield self.listen("xmppws:tcp\\:0\\:interface=127.0.0.1", serverFactory)
        first = yield self.connectComponent(number, "comp.example", "secret", framing)
        self.assertIn("comp.example", router.routes)
        second = yield self.connectComponent(number, "comp2.example", "secret", framing)
        self.assertIn("comp2.example", router.routes)

        arrived = Deferred()
        first.xs.addOnetimeObserver("/message", arrived.callback)
        message = domish.Element((NS_COMPONENT, "message"))
        message["to"] = "user@comp.example"
        message["from"] = "bot@comp2.example"
        message.addElement("body", content="routed")
        second.xs.send(message)
        stanza = yield arrived
        self.assertEqual(stanza.uri, NS_COMPONENT)
        self.assertEqual(stanza["from"], "bot@comp2.example")
        self.assertEqual(str(stanza.body), "routed")

        yield second.close()
        self.assertTrue(second.reason.check(ConnectionDone), second.reason)
        yield _waitUntil(
            lambda: "comp2.example" not in router.routes, "the route to go"
        )

    def test_txXMPPComponentServer(self):
        """
        tx-xmpp's C{XMPPComponentServerFactory} accepts components that
        authenticate over WebSocket and routes stanzas between them.
        """
        from tx_xmpp.component import Router, XMPPComponentServerFactory

        router = Router()
        return self.routeBetweenComponents(
            router, XMPPComponentServerFactory(router, "secret")
        )

    def test_txXMPPComponentServerLegacy(self):
        """
        The same in draft-00 framing.
        """
        from tx_xmpp.component import Router, XMPPComponentServerFactory

        router = Router()
        return self.routeBetweenComponents(
            router, XMPPComponentServerFactory(router, "secret"), "legacy"
        )

    def test_wokkelComponentServer(self):
        """
        Wokkel 18.0.0's C{XMPPComponentServerFactory} accepts components
        that authenticate over WebSocket and routes stanzas between them.
        """
        from wokkel.component import Router, XMPPComponentServerFactory

        router = Router()
        return self.routeBetweenComponents(
            router, XMPPComponentServerFactory(router, "secret")
        )

    def test_wokkelComponentServerLegacy(self):
        """
        The same in draft-00 framing.
        """
        from wokkel.component import Router, XMPPComponentServerFactory

        router = Router()
        return self.routeBetweenComponents(
            router, XMPPComponentServerFactory(router, "secret"), "legacy"
        )

    def test_twistedWordsComponentServer(self):
        """
        Twisted Words' own C{XMPPComponentServerFactory} and C{Router}
        accept components over WebSocket and route between them.
        """
        from twisted.words.protocols.jabber.component import (
            Router,
            XMPPComponentServerFactory,
        )

        router = Router()
        return self.routeBetweenComponents(
            router, XMPPComponentServerFactory(router, "secret")
        )

    def test_twistedWordsComponentServerLegacy(self):
        """
        The same in draft-00 framing.
        """
        from twisted.words.protocols.jabber.component import (
            Router,
            XMPPComponentServerFactory,
        )

        router = Router()
        return self.routeBetweenComponents(
            router, XMPPComponentServerFactory(router, "secret"), "legacy"
        )

    @inlineCallbacks
    def test_wrongSecret(self):
        """
        A component with the wrong secret gets a C{not-authorized} stream
        error, its stream ends cleanly, and it gets no route.
        """
        from tx_xmpp.component import Router, XMPPComponentServerFactory

        router = Router()
        number = yield self.listen(
            "xmppws:tcp\\:0\\:interface=127.0.0.1:namespace=jabber\\:component\\:accept",
            XMPPComponentServerFactory(router, "secret"),
        )
        session = _StreamSession()
        self.addCleanup(session.close)
        description = (
            "xmppws:url=ws\\://127.0.0.1\\:%d/xmpp-websocket"
            ":namespace=jabber\\:component\\:accept" % (number,)
        )
        yield session.connect(
            description,
            component.componentFactory("comp.example", "wrong"),
            authenticate=False,
        )
        yield session.ended()
        self.assertEqual(
            [error.value.condition for error in session.errors], ["not-authorized"]
        )
        self.assertTrue(session.reason.check(ConnectionDone), session.reason)
        self.assertFalse(session.authenticated.called)
        self.assertEqual(router.routes, {})


class ClientStreamTests(InteropMixin, unittest.TestCase):
    """
    A Twisted Words client C{XmlStream} with a C{ConnectAuthenticator}
    (no initializers, so C{STREAM_AUTHD_EVENT} follows the features)
    through the C{xmppws:} client endpoint to the echo server.
    """

    @inlineCallbacks
    def echoAndClose(self, server, description, authenticator=None):
        """
        Wait for authentication, echo a stanza, send the footer and check
        the stream ended with L{ConnectionDone} on both sides.

        @param server: the L{_EchoServer} C{description} leads to.
        @param authenticator: the client's authenticator; a plain
            C{ConnectAuthenticator('example.com')} if L{None}.
        """
        if authenticator is None:
            authenticator = xmlstream.ConnectAuthenticator("example.com")
        session = _StreamSession()
        self.addCleanup(session.close)
        yield session.connect(description, xmlstream.XmlStreamFactory(authenticator))
        received = Deferred()
        session.xs.addOnetimeObserver("/message", received.callback)
        message = domish.Element((NS_CLIENT, "message"))
        message["to"] = "echo@example.com"
        message["from"] = "user@example.com/ws"
        message.addElement("body", content="over websocket")
        session.xs.send(message)
        echo = yield received
        self.assertEqual(echo.uri, NS_CLIENT)
        self.assertEqual(echo["from"], "echo@example.com")
        self.assertEqual(echo["to"], "user@example.com/ws")
        self.assertEqual(str(echo.body), "over websocket")
        yield session.close()
        self.assertTrue(session.reason.check(ConnectionDone), session.reason)
        yield _waitUntil(lambda: server.factory.lost, "the server stream to end")
        self.assertTrue(
            server.factory.lost[0].check(ConnectionDone), server.factory.lost[0]
        )

    @inlineCallbacks
    def test_rfc7395(self):
        """
        In RFC 7395 framing the client stream authenticates, gets its echo
        and ends with L{ConnectionDone} after its footer.
        """
        server = yield self.listenEcho()
        yield self.echoAndClose(server, "xmppws:url=" + _escape(server.url))
        transport = server.factory.streams[0].transport
        self.assertEqual(transport.framing.name, "rfc7395")
        self.assertIs(transport.secure, False)

    @inlineCallbacks
    def test_legacy(self):
        """
        With C{framing=legacy} a client stream whose header declares
        C{jabber:client}, as Twisted's client authenticators do, runs the
        same session in draft-00 framing.
        """
        server = yield self.listenEcho()
        authenticator = xmlstream.ConnectAuthenticator("example.com")
        authenticator.namespace = NS_CLIENT
        yield self.echoAndClose(
            server,
            "xmppws:url=%s:framing=legacy" % (_escape(server.url),),
            authenticator,
        )
        self.assertEqual(server.factory.streams[0].transport.framing.name, "legacy")

    @inlineCallbacks
    def test_secure(self):
        """
        Over C{wss://} with C{trustRoots=} naming a directory of PEM files
        (Twisted's C{tls:} client endpoint takes a directory, not a file),
        the server's certificate for 127.0.0.1 is verified and the session
        runs on a stream the server counts as secure.
        """
        server = yield self.listenEcho(secure=True)
        yield self.echoAndClose(
            server,
            "xmppws:url=%s:trustRoots=%s"
            % (_escape(server.url), _escape(server.trustDir.path)),
        )
        self.assertIs(server.factory.streams[0].transport.secure, True)

    @inlineCallbacks
    def test_secureExplicitEndpoint(self):
        """
        Over C{wss://} with an explicit C{endpoint=} naming Twisted's
        C{tls:} client endpoint (host, port and a C{trustRoots} directory),
        the session runs just as with C{trustRoots=} alone.
        """
        server = yield self.listenEcho(secure=True)
        inner = "tls:127.0.0.1:%d:trustRoots=%s" % (
            server.port,
            _escape(server.trustDir.path),
        )
        yield self.echoAndClose(
            server,
            "xmppws:url=%s:endpoint=%s" % (_escape(server.url), _escape(inner)),
        )
        self.assertIs(server.factory.streams[0].transport.secure, True)

    @inlineCallbacks
    def test_secureUntrusted(self):
        """
        Over C{wss://} with C{trustRoots=} holding another certificate, the
        client refuses the server's certificate: C{connect} fails and the
        server builds no stream.
        """
        server = yield self.listenEcho(secure=True)
        _, _, otherTrustDir = self.certificate()
        streams = xmlstream.XmlStreamFactory(
            xmlstream.ConnectAuthenticator("example.com")
        )
        connecting = clientFromString(
            reactor,
            "xmppws:url=%s:trustRoots=%s"
            % (_escape(server.url), _escape(otherTrustDir.path)),
        ).connect(streams)
        yield self.assertFailure(connecting, ConnectionLost)
        self.assertEqual(server.factory.streams, [])
