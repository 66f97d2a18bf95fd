# -*- test-case-name: tests.test_c2s_auth -*-
"""
Client stream negotiation of the embedded server, up to a bound
resource: stream header checks, features, STARTTLS (TCP only), SASL,
resource binding and the legacy session.

L{C2SAuthenticator} is a Twisted Words C{ListenAuthenticator}; the same
streams run over TCP and WebSocket.
"""

import base64
import binascii

from twisted.internet.interfaces import ISSLTransport, ITLSTransport
from twisted.logger import Logger
from twisted.words.protocols.jabber import error, xmlstream
from twisted.words.protocols.jabber.jid import JID, InvalidFormat
from twisted.words.xish import domish

from xmppws.c2s import sasl
from xmppws.c2s.namespaces import (
    NS_BIND,
    NS_CLIENT,
    NS_SASL,
    NS_SESSION,
    NS_STANZAS,
    NS_STREAMS,
    NS_TLS,
)

__all__ = ["C2SAuthenticator", "C2SXmlStream", "isSecure", "isLoopback"]

MAX_AUTH_FAILURES = 5


def isSecure(transport):
    """
    Whether a client stream is encrypted: TLS on TCP, C{wss:} or a trusted
    TLS-terminating proxy on WebSocket.
    """
    return bool(getattr(transport, "secure", False)) or ISSLTransport.providedBy(
        transport
    )


def isLoopback(transport):
    """
    Whether the client connects from this machine.
    """
    host = getattr(transport.getPeer(), "host", "")
    return host == "::1" or host.startswith("127.") or host == "localhost"


class C2SXmlStream(xmlstream.XmlStream):
    """
    A client stream that remembers whether it was closed at the XMPP
    level, so that a connection lost after a clean close can be told from
    one that dropped (XEP-0198 resumption keeps only the latter).

    @ivar closed: C{True} once the peer's stream footer (C{<close/>})
        arrived or this side sent its own (including after a stream
        error).
    @ivar streamError: the condition of the stream error this side sent,
        or L{None}.
    """

    closed = False
    streamError = None

    def sendStreamError(self, streamError):
        if self.streamError is None:
            self.streamError = streamError.condition
        xmlstream.XmlStream.sendStreamError(self, streamError)

    def onDocumentEnd(self):
        self.closed = True
        xmlstream.XmlStream.onDocumentEnd(self)

    def sendFooter(self):
        self.closed = True
        xmlstream.XmlStream.sendFooter(self)


class C2SAuthenticator(xmlstream.ListenAuthenticator):
    """
    Negotiate a client stream until a resource is bound, then hand it to
    the server as a session.

    @ivar server: the L{xmppws.c2s.server.XMPPServer}.
    @ivar username: the authenticated user name, once SASL succeeded.
    @ivar domain: the served domain the stream is for.
    """

    namespace = NS_CLIENT
    log = Logger()

    username = None
    domain = None
    anonymous = False
    session = None

    def __init__(self, server):
        xmlstream.ListenAuthenticator.__init__(self)
        self.server = server
        self._mechanism = None
        self._failures = 0
        self._tlsStarted = False

    def associateWithStream(self, xs):
        xmlstream.ListenAuthenticator.associateWithStream(self, xs)
        xs.addObserver("/*", self._onElement, priority=-1)

    def connectionMade(self):
        self.server.streamConnected(self.xmlstream)

    # Stream header

    def streamStarted(self, rootElement):
        xmlstream.ListenAuthenticator.streamStarted(self, rootElement)
        xs = self.xmlstream
        xs.prefixes = {NS_STREAMS: "stream"}
        if xs.namespace != NS_CLIENT:
            xs.namespace = NS_CLIENT
            xs.sendStreamError(error.StreamError("invalid-namespace"))
            return
        if xs.version < (1, 0):
            xs.sendStreamError(error.StreamError("unsupported-version"))
            return
        to = rootElement.getAttribute("to")
        domain = self.server.servedDomain(to)
        if domain is None or (self.domain is not None and domain != self.domain):
            xs.thisEntity = JID(self.server.defaultDomain)
            xs.sendStreamError(error.StreamError("host-unknown"))
            return
        self.domain = domain
        xs.thisEntity = JID(domain)
        xs.sendHeader()
        xs.send(self._features())

    def _features(self):
        features = domish.Element((NS_STREAMS, "features"))
        transport = self.xmlstream.transport
        if self.username is None:
            if self._canStartTLS():
                starttls = features.addElement((NS_TLS, "starttls"))
                if self.server.config.requireEncryption:
                    starttls.addElement("required")
            if self._mayAuthenticate():
                mechanisms = features.addElement((NS_SASL, "mechanisms"))
                for name in self.server.mechanismNames(
                    isSecure(transport), isLoopback(transport)
                ):
                    mechanisms.addElement("mechanism", content=name)
            self.server.fire("features/unauthenticated", self.xmlstream, features)
        else:
            features.addElement((NS_BIND, "bind"))
            session = features.addElement((NS_SESSION, "session"))
            session.addElement("optional")
            self.server.fire("features/authenticated", self.xmlstream, features)
        return features

    def _canStartTLS(self):
        transport = self.xmlstream.transport
        return (
            not self._tlsStarted
            and self.server.tlsOptions is not None
            and ITLSTransport.providedBy(transport)
            and not isSecure(transport)
        )

    def _mayAuthenticate(self):
        return not (
            self.server.config.requireEncryption
            and self._canStartTLS()
        )

    # Dispatch

    def _onElement(self, element):
        if self.session is not None or getattr(element, "handled", False):
            return
        element.handled = True
        uri, name = element.uri, element.name
        if self.username is None:
            if uri == NS_TLS and name == "starttls":
                return self._startTLS()
            if uri == NS_SASL:
                return self._onSASL(element)
            if self.server.fire("stream/unauthenticated", self.xmlstream, element):
                return
            self.xmlstream.sendStreamError(error.StreamError("not-authorized"))
            return
        if uri == NS_CLIENT and name == "iq":
            bind = element.firstChildElement()
            if bind is not None and (bind.uri, bind.name) == (NS_BIND, "bind") and element.getAttribute("type") == "set":
                return self._bind(element, bind)
            if bind is not None and (bind.uri, bind.name) == (NS_SESSION, "session"):
                return self._reply(element)
            return self._error(element, "not-authorized", "auth")
        if self.server.fire("stream/authenticated", self.xmlstream, element):
            return
        if uri == NS_CLIENT and name in ("message", "presence"):
            return self._error(element, "not-authorized", "auth")
        self.xmlstream.sendStreamError(error.StreamError("not-authorized"))

    # STARTTLS

    def _startTLS(self):
        xs = self.xmlstream
        if not self._canStartTLS():
            xs.send(domish.Element((NS_TLS, "failure")))
            xs.sendFooter()
            xs.transport.loseConnection()
            return
        self._tlsStarted = True
        xs.send(domish.Element((NS_TLS, "proceed")))
        xs.transport.startTLS(self.server.tlsOptions)
        xs.reset()

    # SASL

    def _onSASL(self, element):
        name = element.name
        if name == "auth":
            if self._mechanism is not None:
                return self._fail("malformed-request")
            mechanism = element.getAttribute("mechanism")
            transport = self.xmlstream.transport
            allowed = self.server.mechanismNames(isSecure(transport), isLoopback(transport))
            if mechanism not in allowed:
                if mechanism == "PLAIN" and "PLAIN" in self.server.mechanismNames(True, True):
                    return self._fail("encryption-required")
                return self._fail("invalid-mechanism")
            self._mechanism = self.server.mechanism(mechanism, self.domain)
            self._step(self._decode(element, initial=True))
        elif name == "response":
            if self._mechanism is None:
                return self._fail("malformed-request")
            self._step(self._decode(element))
        elif name == "abort":
            self._mechanism = None
            self._failure("aborted")
        else:
            self._fail("malformed-request")

    def _decode(self, element, initial=False):
        text = str(element).strip()
        if not text:
            return None if initial else b""
        if text == "=":
            return b""
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return _BAD_ENCODING

    def _step(self, data):
        if data is _BAD_ENCODING:
            return self._fail("incorrect-encoding")
        try:
            result = self._mechanism.step(data)
        except sasl.SASLFailure as e:
            return self._fail(e.condition)
        if isinstance(result, sasl.Success):
            return self._succeed(result)
        challenge = domish.Element((NS_SASL, "challenge"))
        challenge.addContent(base64.b64encode(result or b"").decode("ascii") or "=")
        self.xmlstream.send(challenge)

    def _succeed(self, result):
        self._mechanism = None
        self.username = result.username
        self.anonymous = result.anonymous
        self.server.authSucceeded(self.xmlstream, result.username, self.domain)
        success = domish.Element((NS_SASL, "success"))
        if result.data:
            success.addContent(base64.b64encode(result.data).decode("ascii"))
        self.xmlstream.send(success)
        self.xmlstream.reset()

    def _fail(self, condition):
        self._mechanism = None
        self._failures += 1
        delay = self.server.authFailed(self.xmlstream, condition)
        if self._failures >= MAX_AUTH_FAILURES:
            self.xmlstream.sendStreamError(
                error.StreamError("policy-violation", "Too many failed authentication attempts.")
            )
            return
        if delay:
            self.server.reactor.callLater(delay, self._failure, condition)
        else:
            self._failure(condition)

    def _failure(self, condition):
        if self.xmlstream.transport is None or self.xmlstream.transport.disconnecting:
            return
        failure = domish.Element((NS_SASL, "failure"))
        failure.addElement(condition)
        self.xmlstream.send(failure)

    # Binding

    def _bind(self, iq, bind):
        requested = None
        for child in bind.elements(NS_BIND, "resource"):
            requested = str(child).strip() or None
        try:
            session = self.server.bind(self.xmlstream, self.username, self.domain, requested, self.anonymous)
        except InvalidFormat:
            return self._error(iq, "bad-request", "modify")
        reply = xmlstream.toResponse(iq, "result")
        reply.addElement((NS_BIND, "bind")).addElement("jid", content=session.jid.full())
        self.session = session
        self.xmlstream.send(reply)

    def _reply(self, iq):
        self.xmlstream.send(xmlstream.toResponse(iq, "result"))

    def _error(self, stanza, condition, errorType):
        if stanza.getAttribute("type") in ("error", "result"):
            return
        reply = xmlstream.toResponse(stanza, "error")
        e = reply.addElement("error")
        e["type"] = errorType
        e.addElement((NS_STANZAS, condition))
        self.xmlstream.send(reply)


_BAD_ENCODING = object()
