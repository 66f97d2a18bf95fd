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
import secrets

from twisted.internet.interfaces import ISSLTransport, ITLSTransport
from twisted.logger import Logger
from twisted.words.protocols.jabber import error, xmlstream
from twisted.words.protocols.jabber.jid import InvalidFormat
from twisted.words.xish import domish
from twisted.words.xish import xmlstream as xishstream

from xmppws.c2s import jid as jids
from xmppws.c2s import sasl
from xmppws.c2s._serialize import serialize
from xmppws.c2s.quotas import NS_ERRORS, ResourceLimitReached
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
NS_XML = "http://www.w3.org/XML/1998/namespace"


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

    def send(self, obj):
        """
        Send an element, serialized by L{serialize} (what the base class
        writes, twice as fast), or text.
        """
        if obj.__class__ is domish.Element:
            obj = serialize(obj, self.namespace, self.prefixes)
        xmlstream.XmlStream.send(self, obj)

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
        self._attempt = None
        self._waiting = None

    def associateWithStream(self, xs):
        xmlstream.ListenAuthenticator.associateWithStream(self, xs)
        xs.addObserver("/*", self._onElement, priority=-1)
        xs.addObserver(xishstream.STREAM_END_EVENT, self._onStreamEnd)

    def connectionMade(self):
        self.server.streamConnected(self.xmlstream)

    # Stream header

    def streamStarted(self, rootElement):
        # What ListenAuthenticator.streamStarted does, except that the
        # header's 'to' (anything a client sends before logging in) is
        # checked below instead of going into Twisted's JID intern cache,
        # which keeps every distinct JID for the life of the process.
        xmlstream.Authenticator.streamStarted(self, rootElement)
        xs = self.xmlstream
        xs.namespace = rootElement.defaultUri
        xs.sid = secrets.token_hex(8)
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
            xs.thisEntity = jids.fromPrepared(self.server.defaultDomain)
            xs.sendStreamError(error.StreamError("host-unknown"))
            return
        self.domain = domain
        xs.thisEntity = jids.fromPrepared(domain)
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
        if self._waiting is not None:
            # The client did not wait for the answer to its last message.
            self._waiting.cancel()
            self._waiting = None
            if name == "abort":
                return self._abort()
            return self._fail("malformed-request")
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
            self._abort()
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
        """
        Feed the client's message to the mechanism.  The first message
        that names the account (PLAIN's only one, SCRAM's client-first) is
        first shown to the login throttle: the attempt is refused at once,
        or waits before anything about it is checked or answered, whatever
        the password.
        """
        if data is _BAD_ENCODING:
            return self._fail("incorrect-encoding")
        if self._attempt is None and data is not None and self._mechanism.name != "ANONYMOUS":
            attempt = self.server.loginAttempt(
                self.xmlstream, self._mechanism.claimedUsername(data), self.domain
            )
            if attempt.refused:
                return self._refuse(attempt)
            self._attempt = attempt
            if attempt.delay:
                # On the throttle's clock, which its delays are measured by.
                clock = self.server.throttle.clock
                self._waiting = clock.callLater(attempt.delay, self._waited, data)
                return
        self._run(data)

    def _waited(self, data):
        self._waiting = None
        self._attempt.release()
        transport = self.xmlstream.transport
        if transport is None or transport.disconnecting:
            return
        self._run(data)

    def _run(self, data):
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
        attempt, self._attempt = self._attempt, None
        self.username = result.username
        self.anonymous = result.anonymous
        self.server.authSucceeded(self.xmlstream, result.username, self.domain, attempt)
        success = domish.Element((NS_SASL, "success"))
        if result.data:
            success.addContent(base64.b64encode(result.data).decode("ascii"))
        self.xmlstream.send(success)
        self.xmlstream.reset()

    def _fail(self, condition):
        self._mechanism = None
        attempt, self._attempt = self._attempt, None
        self._failures += 1
        self.server.authFailed(self.xmlstream, condition, attempt)
        if not self._tooManyFailures():
            self._failure(condition)

    def _refuse(self, attempt):
        """
        Refuse a throttled attempt without checking it (RFC 6120 section
        6.5.12, C{temporary-auth-failure}).
        """
        self._mechanism = None
        self._failures += 1
        if self._tooManyFailures():
            return
        whose = "for this account" if attempt.reason == "account" else "from this address"
        self._failure(
            "temporary-auth-failure",
            "Too many failed logins %s; try again in %d seconds." % (whose, attempt.retryAfter),
        )

    def _abort(self):
        self._mechanism = None
        attempt, self._attempt = self._attempt, None
        if attempt is not None:
            attempt.release()
        self._failure("aborted")

    def _tooManyFailures(self):
        if self._failures < MAX_AUTH_FAILURES:
            return False
        self.xmlstream.sendStreamError(
            error.StreamError("policy-violation", "Too many failed authentication attempts.")
        )
        return True

    def _failure(self, condition, text=None):
        if self.xmlstream.transport is None or self.xmlstream.transport.disconnecting:
            return
        failure = domish.Element((NS_SASL, "failure"))
        failure.addElement(condition)
        if text is not None:
            failure.addElement("text", content=text)[(NS_XML, "lang")] = "en"
        self.xmlstream.send(failure)

    def _onStreamEnd(self, reason):
        if self._waiting is not None and self._waiting.active():
            self._waiting.cancel()
        self._waiting = None
        attempt, self._attempt = self._attempt, None
        if attempt is not None:
            attempt.release()

    # Binding

    def _bind(self, iq, bind):
        """
        Bind the resource the client asks for, or one of the server's
        choosing.  A resource that is not an RFC 7622 resourcepart (too
        long, or with characters the C{OpaqueString} profile refuses) gets
        C{bad-request} (RFC 6120 section 7.7.2.1) rather than a resource
        the client did not ask for; one too many for the account gets
        C{resource-constraint} (section 7.6.2.1) with XEP-0205's
        C{<resource-limit-exceeded/>}.
        """
        requested = None
        for child in bind.elements(NS_BIND, "resource"):
            requested = str(child).strip() or None
        try:
            session = self.server.bind(self.xmlstream, self.username, self.domain, requested, self.anonymous)
        except ResourceLimitReached as e:
            return self._error(
                iq,
                "resource-constraint",
                "wait",
                "This account may bind at most %d resources." % (e.limit,),
                (NS_ERRORS, "resource-limit-exceeded"),
            )
        except InvalidFormat as e:
            return self._error(
                iq, "bad-request", "modify", "The resource is not valid (%s)." % (_reason(e),)
            )
        reply = xmlstream.toResponse(iq, "result")
        reply.addElement((NS_BIND, "bind")).addElement("jid", content=session.jid.full())
        self.session = session
        self.xmlstream.send(reply)

    def _reply(self, iq):
        self.xmlstream.send(xmlstream.toResponse(iq, "result"))

    def _error(self, stanza, condition, errorType, text=None, appCondition=None):
        if stanza.getAttribute("type") in ("error", "result"):
            return
        reply = xmlstream.toResponse(stanza, "error")
        e = reply.addElement("error")
        e["type"] = errorType
        e.addElement((NS_STANZAS, condition))
        if text is not None:
            e.addElement((NS_STANZAS, "text"), content=text)
        if appCondition is not None:
            e.addElement(appCondition)
        self.xmlstream.send(reply)


def _reason(e):
    return getattr(e, "reason", None) or "not a resourcepart"


_BAD_ENCODING = object()
