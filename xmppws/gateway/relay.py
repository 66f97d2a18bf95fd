# -*- test-case-name: tests.test_gateway_relay -*-
"""
The relay: one WebSocket client's stream, carried to the upstream server
over a client-to-server TCP stream of its own, and back, as bytes.

    carrier (WebSocket) -> RelayConnection -> translator -> upstream stream
                        <-                  <- splitter <-

L{RelayConnection} is the L{xmppws.iwebsocket.IMessageHandler} the
WebSocket carrier hosts (L{GatewayFactory} builds one per connection),
and an L{xmppws.iwebsocket.IConnection} for the service's connection
monitor.  It composes the same per-connection policies as the embedded
server's connections: L{xmppws.policies.Watchdog} (open, idle and ping
timers toward the client), L{xmppws.policies.ReadThrottle} (rate limits
that pause reading) and one L{xmppws.flow.FlowControl} per side, so that
a client that does not read pauses reading from the server and a server
that does not read pauses reading from the client; memory stays bounded
by what one read brings.

When the client's stream header arrives, its domain is looked up
(L{xmppws.gateway.routes.Router}; unknown: C{host-unknown}) and the
upstream stream set up (L{xmppws.gateway.upstream.UpstreamConnector}),
while reading from the client waits.  Then the server's header and
features go to the client, and from there on everything passes: SASL
(the restart after it forwarded both ways), resource binding, XEP-0198,
every stanza.

Teardown goes both ways and always ends both connections, within
C{closeTimeout} for each closing handshake:

    - the client's <close/> closes the upstream stream (footer), and the
      server's footer closes the client's;
    - a server that refuses, does not answer, or is lost becomes the
      stream error C{remote-connection-failed}, C{connection-timeout} or
      C{system-shutdown} to the client, then the close;
    - a client that disappears (or stops answering pings) closes the
      upstream stream with its footer, unless stream management
      resumption was enabled on it: then the upstream connection is
      closed without the footer, so that the server keeps the session
      for the client to resume, through this gateway or another.
"""

import ipaddress
import time
import uuid

from twisted.internet import defer
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from zope.interface import implementer

from xmppws._parser import FramingError
from xmppws.c2s import jid as jids
from xmppws.flow import FlowControl
from xmppws.framing import NS_STREAMS, streamErrorElement
from xmppws.gateway.igateway import IClientReceiver, IUpstreamReceiver
from xmppws.gateway.proxyprotocol import proxyHeader
from xmppws.gateway.translate import (
    NS_SASL,
    ClientRFC7395,
    MessageScanner,
    NS_SM,
    isStanza,
    parseTree,
    rewriteFeatures,
    translatorFor,
)
from xmppws.gateway.upstream import UpstreamConnector, UpstreamError
from xmppws.iwebsocket import IConnection, IMessageHandler
from xmppws.logs import formatAddress
from xmppws.policies import ClientPolicies, Watchdog

__all__ = [
    "CLOSE_MESSAGE_TOO_BIG",
    "GatewayFactory",
    "INSECURE_REFUSE",
    "INSECURE_STRIP_PLAIN",
    "RelayConnection",
]

CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_MESSAGE_TOO_BIG = 1009
INSECURE_REFUSE = "refuse"
INSECURE_STRIP_PLAIN = "strip-plain"
SHUTDOWN_TEXT = "The server is shutting down."
PLAIN_REFUSED = (
    "This gateway relays to servers that see your password: connect with "
    "wss:// (TLS) instead of ws://."
)
_SASL_FAILURE = (
    b"<failure xmlns='" + NS_SASL.encode("ascii") + b"'><invalid-mechanism/></failure>"
)


def _isLocal(address):
    """
    Whether an address is on this machine (loopback, or no IP address at
    all: a UNIX socket).
    """
    host = getattr(address, "host", None)
    if not host:
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return host == "localhost"


class GatewayFactory(Factory):
    """
    Build a L{RelayConnection} for each WebSocket connection a carrier
    accepts.

    @ivar router: the L{xmppws.gateway.routes.Router}.
    @ivar connector: the L{UpstreamConnector}.
    @ivar clock: the C{IReactorTime} every timer runs on.
    @ivar monitor: an L{xmppws._connections.ConnectionMonitor}, or
        L{None}.
    @ivar messages: the L{MessageScanner} every RFC 7395 client's
        messages are checked with.
    @ivar relays: the open L{RelayConnection}s.
    @ivar policies: the L{xmppws.policies.ClientPolicies} of the clients'
        side.
    @ivar insecureWebSocket: what to do with a client on a plain
        WebSocket that is neither on this machine nor behind a trusted
        TLS-terminating proxy: C{'refuse'} it (C{policy-violation}), or
        C{'strip-plain'} (SASL PLAIN is not offered to it).
    """

    protocol = None

    def __init__(
        self,
        router,
        clock,
        *,
        connector=None,
        monitor=None,
        lang="en",
        insecureWebSocket=INSECURE_REFUSE,
        upstreamTimeout=10.0,
        keepaliveInterval=60.0,
        maxUpstreamElementSize=1024 * 1024,
        **policies,
    ):
        """
        @param connector: an L{UpstreamConnector}; one on C{clock} (which
            must then be a reactor) if L{None}.
        @param upstreamTimeout: seconds one upstream server may take from
            connecting to its features after TLS.
        @param keepaliveInterval: seconds of silence from the server after
            which a whitespace keepalive is sent to it, or 0.
        @param maxUpstreamElementSize: bytes one element from the server
            may take.
        @param policies: the keyword arguments of
            L{xmppws.policies.ClientPolicies}, the limits and timers of the
            client's side, as the embedded server's connections have them
            (C{maxElementSize} is the WebSocket carrier's business here);
            C{closeTimeout} and C{stallTimeout} hold for the server's side
            too.
        """
        if insecureWebSocket not in (INSECURE_REFUSE, INSECURE_STRIP_PLAIN):
            raise ValueError("insecureWebSocket must be 'refuse' or 'strip-plain'")
        self.router = router
        self.clock = clock
        self.connector = connector or UpstreamConnector(
            clock, timeout=upstreamTimeout, maxElementSize=maxUpstreamElementSize
        )
        self.monitor = monitor
        self.lang = lang
        self.insecureWebSocket = insecureWebSocket
        self.keepaliveInterval = keepaliveInterval
        self.policies = ClientPolicies(**policies)
        self.relays = set()
        # One parser checks the messages of every RFC 7395 client.
        self.messages = MessageScanner()

    def buildProtocol(self, addr):
        """
        @rtype: L{RelayConnection}
        """
        return RelayConnection(self, addr)


class _UpstreamReading:
    """
    The producer registered with the client's flow control: paused while
    the client does not read, it stops reading from the server.
    """

    def __init__(self, relay):
        self._relay = relay

    def pauseProducing(self):
        self._relay._upstreamReading(False)

    def resumeProducing(self):
        self._relay._upstreamReading(True)

    def stopProducing(self):
        pass


class _ClientReading:
    """
    The producer registered with the server's flow control: paused while
    the server does not read, it stops reading from the client.
    """

    def __init__(self, flow):
        self._flow = flow

    def pauseProducing(self):
        self._flow.pause("upstream")

    def resumeProducing(self):
        self._flow.resume("upstream")

    def stopProducing(self):
        pass


@implementer(IMessageHandler, IConnection, IClientReceiver, IUpstreamReceiver)
class RelayConnection(Protocol):
    """
    One WebSocket client relayed to its domain's server.

    @ivar framing: the client-side translator, once the client chose its
        framing.
    @ivar domain: the domain relayed to, once known.
    @ivar upstream: the L{xmppws.gateway.upstream.UpstreamProtocol}, once
        negotiated.
    @ivar resumable: C{True} once stream management resumption is on
        (the server's C{<enabled resume='true'/>} or C{<resumed/>}).
    @ivar closeReason: why the pair ended, for the log.
    @ivar bytesIn: bytes received from the client (message payloads).
    @ivar bytesOut: bytes sent to it.
    @ivar errorSent: the condition of the stream error sent to the
        client, or L{None}.
    """

    log = Logger()

    framing = None
    domain = None
    upstream = None
    resumable = False
    closeReason = None
    bytesIn = 0
    bytesOut = 0
    errorSent = None
    disconnecting = False

    _connecting = None
    _opened = False  # this side's header sent to the client
    _outClosed = False  # this side's close sent to the client
    _clientClosed = False  # the client's close received
    _clientBroken = False
    _clientGone = False
    _upFooterSent = False
    _upFooterReceived = False
    _upGone = False
    _upstreamPaused = False
    _finished = False
    _stripPlain = False
    _flow = None
    _upFlow = None
    _upWatchdog = None
    _closer = None
    _reaper = None

    def __init__(self, factory, address):
        self.factory = factory
        self._address = address
        self._startedAt = None
        self._pending = []
        self._openAttributes = None

    # IConnection

    @property
    def kind(self):
        return self.transport.kind if self.transport is not None else "websocket"

    @property
    def framingName(self):
        return self.framing.name if self.framing is not None else "none"

    @property
    def clientReadingPaused(self):
        """
        C{True} while the gateway does not read from the client (the
        server does not read, a rate limit, the upstream stream being set
        up).
        """
        return bool(self._flow is not None and self._flow.paused)

    @property
    def upstreamReadingPaused(self):
        """
        C{True} while the gateway does not read from the server (the
        client does not read).
        """
        return bool(self._upFlow is not None and self._upFlow.paused)

    # Starting

    def connectionMade(self):
        carrier = self.transport
        factory = self.factory
        self._startedAt = time.monotonic()
        self._throttle, self._watchdog, self._flow = factory.policies.attach(
            factory.clock, carrier, self._timedOut, self._ping, self._clientStalled
        )
        self._flow.registerProducer(_UpstreamReading(self), True)
        self._watchdog.start()
        factory.relays.add(self)
        self.log.info(
            "Gateway client from {peer} open",
            peer=formatAddress(carrier.getPeer()),
            secure=carrier.secure,
            origin=carrier.origin,
        )
        if factory.monitor is not None:
            factory.monitor.connectionOpened(self)

    # From the carrier

    def bytesReceived(self, count):
        if not self._clientGone:
            self._watchdog.activity()
            self._throttle.bytesReceived(count)

    def dataReceived(self, data):
        """
        One WebSocket message from the client.
        """
        self.bytesIn += len(data)
        if self._clientClosed or self._clientBroken or self.errorSent is not None:
            return
        try:
            if self.framing is None:
                self.framing = translatorFor(data, self, self.factory.messages)
            self.framing.dataReceived(data)
        except FramingError as e:
            self._clientBroken = True
            self.log.info(
                "{peer} sent bad input ({condition}): {text}",
                peer=formatAddress(self.transport.getPeer()),
                condition=e.condition,
                text=e.text,
            )
            self._clientError(e.condition, e.text)

    def readDone(self):
        """
        Nothing to release at the end of a read: the message scanners
        renew their own expat parsers.
        """

    def messageRefused(self, code, text):
        self._clientBroken = True
        if code == CLOSE_MESSAGE_TOO_BIG:
            self._clientError("policy-violation", text, code)
        else:
            self._clientError("unsupported-encoding", text, code)

    # From the translator (IClientReceiver)

    def clientOpened(self, attributes):
        self._watchdog.streamOpened()
        if self.upstream is not None:
            # A restart after SASL: the client's new header goes upstream.
            self._writeUpstream(self.framing.upstreamHeader(self._upstreamAttributes(attributes)))
            return
        if self._openAttributes is not None:
            self._clientError("bad-format", "The stream is already being opened.")
            return
        self._openAttributes = attributes
        version = attributes.get("version", "")
        if not version.startswith("1."):
            self._clientError(
                "unsupported-version", "The gateway speaks XMPP version 1.0 only."
            )
            return
        to = attributes.get("to")
        router = self.factory.router
        try:
            domain = jids.prepDomainpart(to) if to else None
        except jids.JIDMalformed:
            domain = None
        routes = router.routesFor(domain) if domain else None
        if routes is None:
            self._clientError("host-unknown", "This gateway does not serve that domain.")
            return
        self.domain = domain
        carrier = self.transport
        if not carrier.secure and not _isLocal(carrier.getPeer()):
            if self.factory.insecureWebSocket == INSECURE_REFUSE:
                self._clientError("policy-violation", PLAIN_REFUSED)
                return
            self._stripPlain = True
        self._flow.pause("connecting")
        header = self.framing.upstreamHeader(self._upstreamAttributes(attributes))
        d = self._connecting = self.factory.connector.connect(
            routes, domain, header, self._proxyHeader
        )
        d.addCallbacks(self._upstreamReady, self._upstreamFailed)

    def _upstreamAttributes(self, attributes):
        out = dict(attributes)
        out["to"] = self.domain
        out["version"] = "1.0"
        return out

    def _proxyHeader(self, version):
        carrier = self.transport
        return proxyHeader(version, carrier.getPeer(), carrier.getHost())

    def clientElement(self, data, element):
        if element.uri == NS_SASL and element.name == "auth" and self._stripPlain:
            if element.get("mechanism") == "PLAIN":
                # PLAIN was not offered on this connection.
                self._send(_SASL_FAILURE)
                return
        if isStanza(element):
            monitor = self.factory.monitor
            if monitor is not None:
                monitor.stanzaReceived(self)
        self._throttle.stanzaReceived()
        self._writeUpstream(data)

    def clientClosed(self):
        self._clientClosed = True
        self.closeReason = self.closeReason or "closed by client"
        if self._connecting is not None:
            self._connecting.cancel()
            self._closeClient()
            return
        if self.upstream is None:
            self._closeClient()
            return
        self._closeUpstream(clean=True)

    # Toward the server

    def _writeUpstream(self, data):
        if self._upGone or self._upFooterSent:
            return
        if self.upstream is None:
            # Read in the same network read as the header, before reading
            # paused: bounded by that read.
            self._pending.append(data)
            return
        self.upstream.write(data)

    def _upstreamReady(self, upstream):
        self._connecting = None
        if self._clientGone or self.disconnecting:
            upstream.abortConnection()
            return
        self.upstream = upstream
        upstream.attach(self)
        factory = self.factory
        self._upWatchdog = Watchdog(
            factory.clock, lambda text: None, self._keepalive,
            pingInterval=factory.keepaliveInterval,
        )
        self._upFlow = FlowControl(
            factory.clock, upstream, self._upWatchdog, factory.policies.stallTimeout,
            self._upstreamStalled,
        )
        self._upFlow.registerProducer(_ClientReading(self._flow), True)
        self._upWatchdog.start()
        if self._upstreamPaused:
            self._upFlow.pause("client")
        self.log.info(
            "Relaying {peer} to {domain} through {upstream}",
            peer=formatAddress(self.transport.getPeer()),
            domain=self.domain,
            upstream=upstream.description,
            secure=upstream.secure,
        )
        self.upstreamHeader(upstream.header)
        self.upstreamElement(upstream.features)
        pending, self._pending = self._pending, []
        for data in pending:
            self._writeUpstream(data)
        self._flow.resume("connecting")

    def _upstreamFailed(self, failure):
        self._connecting = None
        if failure.check(defer.CancelledError):
            return
        if not failure.check(UpstreamError):
            self.log.failure("Relaying to {domain} failed", failure, domain=self.domain)
            error = UpstreamError("internal-server-error", None, failure.getErrorMessage())
        else:
            error = failure.value
        self._upGone = True
        self.closeReason = "upstream: " + error.detail
        self._flow.resume("connecting")
        self._clientError(error.condition, error.text)
        self._checkFinished()

    def _keepalive(self):
        if self.upstream is not None and not (self._upGone or self._upFooterSent):
            self.upstream.write(b" ")
        return False

    def _upstreamReading(self, reading):
        """
        The client stopped (or resumed) reading: so does the gateway from
        the server.
        """
        self._upstreamPaused = not reading
        if self._upFlow is not None:
            if reading:
                self._upFlow.resume("client")
            else:
                self._upFlow.pause("client")

    def _closeUpstream(self, clean):
        """
        Close the upstream stream: with its footer (C{clean}), waiting for
        the server's within the close timeout; or, to keep the session
        resumable, without it.
        """
        if self._connecting is not None:
            self._connecting.cancel()
            return
        upstream = self.upstream
        if upstream is None or self._upGone:
            return
        self._startReaper()
        if not clean:
            self._upFooterSent = True
            upstream.loseConnection()
            return
        if not self._upFooterSent:
            self._upFooterSent = True
            upstream.write(self.framing.upstreamFooter())
        if self._upFooterReceived:
            upstream.loseConnection()
        elif self._closer is None:
            self._closer = self.factory.clock.callLater(
                self.factory.policies.closeTimeout, self._closeTimedOut
            )

    def _closeTimedOut(self):
        self._closer = None
        if self.upstream is not None and not self._upGone:
            self.upstream.loseConnection()
        self._closeClient()

    def _startReaper(self):
        """
        However the closing goes, both connections are gone within twice
        the close timeout.
        """
        if self._reaper is None and self.factory.policies.closeTimeout:
            self._reaper = self.factory.clock.callLater(
                2 * self.factory.policies.closeTimeout, self._reap
            )

    def _reap(self):
        self._reaper = None
        if self.upstream is not None and not self._upGone:
            self.upstream.abortConnection()
        if not self._clientGone:
            self.transport.abortConnection()

    # From the server (IUpstreamReceiver)

    def upstreamHeader(self, header):
        if self._outClosed:
            return
        self._opened = True
        self._send(self.framing.upstreamHeaderMessage(header))

    def upstreamElement(self, element):
        if self._outClosed:
            return
        uri, name = element.uri, element.name
        framing = self.framing
        header = self.upstream.header
        if uri == NS_STREAMS:
            if name == "features":
                self._sendFeatures(element, header)
                return
            if name == "error":
                self.closeReason = "stream error from the server"
        elif uri == NS_SASL and name == "success":
            framing.restart()
        elif uri == NS_SM and (
            name == "resumed" or (name == "enabled" and element.get("resume") in ("true", "1"))
        ):
            self.resumable = True
        elif isStanza(element):
            monitor = self.factory.monitor
            if monitor is not None:
                monitor.stanzaSent(self)
        self._send(framing.elementMessage(element, header))

    def _sendFeatures(self, element, header):
        try:
            tree = parseTree(element.raw, header.declarations)
        except FramingError as e:
            self.upstreamBroken(e.condition, e.text)
            return
        if rewriteFeatures(tree, self._stripPlain):
            self._send(self.framing.treeMessage(tree))
        else:
            self._send(self.framing.elementMessage(element, header))

    def upstreamFooter(self):
        self._upFooterReceived = True
        if self.closeReason is None:
            self.closeReason = "closed by server"
        self._closeClient()
        if not self._upFooterSent:
            self._upFooterSent = True
            self.upstream.write(self.framing.upstreamFooter())
        self._startReaper()
        self.upstream.loseConnection()

    def upstreamBroken(self, condition, text):
        self.log.warn(
            "The server for {domain} ({upstream}) sent bad input ({condition}): {text}",
            domain=self.domain,
            upstream=self.upstream.description,
            condition=condition,
            text=text,
        )
        self.closeReason = "bad input from the server"
        if not self._upFooterSent:
            self._upFooterSent = True
            error = streamErrorElement(condition, text)
            self.upstream.write(
                error.toXml(prefixes={NS_STREAMS: "stream"}).encode("utf-8")
                + self.framing.upstreamFooter()
            )
        self._startReaper()
        self.upstream.loseConnection()
        self._clientError("internal-server-error", "The server sent what cannot be relayed.")

    def upstreamLost(self, reason):
        self._upGone = True
        if not self._clientGone:
            if not (self._upFooterReceived or self._upFooterSent or self._outClosed):
                self.closeReason = "lost the server: " + reason.getErrorMessage()
                self.log.info(
                    "Lost the server for {domain} ({upstream}) under {peer}: {reason}",
                    domain=self.domain,
                    upstream=self.upstream.description,
                    peer=formatAddress(self.transport.getPeer()),
                    reason=reason.getErrorMessage(),
                )
                self._clientError(
                    "system-shutdown", "The connection to the server was lost."
                )
            else:
                self._closeClient()
        self._checkFinished()

    def _upstreamStalled(self):
        self.closeReason = "the server does not read"
        self._clientError("connection-timeout", "The server does not read what is sent to it.")
        if self.upstream is not None and not self._upGone:
            self.upstream.abortConnection()

    # Toward the client

    def _send(self, data):
        if self._clientGone:
            return
        self.bytesOut += len(data)
        self.transport.write(data)

    def _ownHeader(self):
        attributes = {"version": "1.0", "id": _newId()}
        if self.domain:
            attributes["from"] = self.domain
        lang = self.factory.lang
        if lang:
            attributes["lang"] = lang
        return self.framing.headerMessage(attributes)

    def _clientError(self, condition, text=None, code=CLOSE_NORMAL):
        """
        The one way this relay ends the client's stream with an error:
        its header first if none went out, the error, the close; and the
        upstream stream closed too.
        """
        if self.errorSent is None and not self._outClosed and not self._clientGone:
            self.errorSent = condition
            if self.closeReason is None or condition not in self.closeReason:
                self.closeReason = "stream error: " + condition
            monitor = self.factory.monitor
            if monitor is not None:
                monitor.streamErrorSent(self, condition)
            if self.framing is None:
                self.framing = ClientRFC7395(self)
            if not self._opened:
                self._opened = True
                self._send(self._ownHeader())
            self._send(self.framing.treeMessage(streamErrorElement(condition, text)))
        self._closeClient(code)
        self._closeUpstream(clean=True)

    def _closeClient(self, code=CLOSE_NORMAL, seeOtherURI=None):
        if self._outClosed:
            return
        self._outClosed = True
        self.disconnecting = True
        self._watchdog.stop()
        if self._clientGone:
            return
        if self._opened and self.framing is not None:
            self._send(self.framing.closeMessage(seeOtherURI))
        self._startReaper()
        self.transport.closeWith(code, None if code == CLOSE_NORMAL else self.closeReason)

    # Timers

    def _timedOut(self, text):
        self.log.info(
            "{peer}: {text}", peer=formatAddress(self.transport.getPeer()), text=text
        )
        self.closeReason = "timeout: " + text
        self._clientGoneAway()
        self._clientError("connection-timeout", text)

    def _ping(self):
        return not self._clientGone and self.transport.ping()

    def _clientStalled(self):
        self.log.info(
            "{peer} did not read for {timeout} seconds",
            peer=formatAddress(self.transport.getPeer()),
            timeout=self.factory.policies.stallTimeout,
        )
        self.closeReason = "the client does not read"
        self._clientGoneAway()
        self._clientError("connection-timeout", "The peer does not read what is sent to it.")
        self.transport.abortConnection()

    def _clientGoneAway(self):
        """
        The client is not there any more (it stopped answering or
        reading): close the upstream stream the way that keeps a
        resumable session resumable.
        """
        self._closeUpstream(clean=not self.resumable)

    # IConnection

    def closeForShutdown(self, seeOtherURI=None):
        """
        The service stops: tell the client where to go (RFC 7395
        C{see-other-uri}) or C{system-shutdown}; close the upstream stream
        (keeping a resumable session resumable).
        """
        if self._outClosed:
            return
        self.closeReason = "server shutdown"
        self._closeUpstream(clean=not self.resumable)
        if (
            seeOtherURI is not None
            and self._opened
            and self.framingName == "rfc7395"
            and (seeOtherURI.startswith("wss://") or not self.transport.secure)
        ):
            self._closeClient(seeOtherURI=seeOtherURI)
        else:
            self._clientError("system-shutdown", SHUTDOWN_TEXT)

    def abortConnection(self):
        """
        Drop both connections at once.
        """
        self.disconnecting = True
        if self.closeReason is None:
            self.closeReason = "aborted"
        if self._connecting is not None:
            self._connecting.cancel()
        if self.upstream is not None and not self._upGone:
            self.upstream.abortConnection()
        if not self._clientGone:
            self.transport.abortConnection()

    # Ending

    def connectionLost(self, reason=None):
        """
        The client's WebSocket is gone.
        """
        self._clientGone = True
        self.disconnecting = True
        for policy in (self._watchdog, self._throttle, self._flow):
            policy.stop()
        if not (self._clientClosed or self._outClosed):
            self.closeReason = self.closeReason or "client gone: " + (
                reason.getErrorMessage() if reason is not None else "no reason"
            )
            self._clientGoneAway()
        elif not self._upFooterSent:
            self._closeUpstream(clean=True)
        if self._connecting is not None:
            self._connecting.cancel()
        self._checkFinished()

    def _checkFinished(self):
        if self._finished or not self._clientGone:
            return
        if self.upstream is not None and not self._upGone:
            return
        if self._connecting is not None:
            return
        self._finished = True
        for timer in (self._closer, self._reaper):
            if timer is not None and timer.active():
                timer.cancel()
        self._closer = self._reaper = None
        for policy in (self._upWatchdog, self._upFlow):
            if policy is not None:
                policy.stop()
        self._pending = []
        factory = self.factory
        factory.relays.discard(self)
        if factory.monitor is not None:
            factory.monitor.connectionClosed(self)
        upstream = self.upstream
        self.log.info(
            "Gateway client from {peer} closed: {reason} (domain {domain}, upstream "
            "{upstream}, framing {framing}, {duration:.1f}s, {bytesIn} bytes in, "
            "{bytesOut} bytes out)",
            peer=formatAddress(self.transport.getPeer()),
            origin=self.transport.origin,
            reason=self.closeReason,
            domain=self.domain,
            upstream=upstream.description if upstream is not None else None,
            framing=self.framingName,
            duration=time.monotonic() - self._startedAt if self._startedAt else 0.0,
            bytesIn=self.bytesIn,
            bytesOut=self.bytesOut,
            code=getattr(self.transport, "closeCode", None),
        )


def _newId():
    return uuid.uuid4().hex
