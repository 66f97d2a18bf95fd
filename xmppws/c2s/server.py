# -*- test-case-name: tests.test_c2s_routing -*-
"""
The embedded XMPP server: sessions and routing (RFC 6120 section 10,
RFC 6121 section 8), with hooks for the modules that implement the rest.

Hooks (L{XMPPServer.on}, L{XMPPServer.fire}; a handler returning a true
value stops the event):

    features/unauthenticated (xs, features)   add stream features
    features/authenticated (xs, features)
    stream/unauthenticated (xs, element)      non-SASL elements before auth
    stream/authenticated (xs, element)        elements after auth, before bind
    stream/session (session, element)         non-stanza elements after bind
    session/bound (session)
    session/lost (session, xs, reason)        return true to keep it detached
    session/ended (session)
    stanza/out (session, stanza)              a client's stanza, before routing
    presence/out (session, presence)          a client's presence
    presence/in (presence, toJID)             presence for a local account
    stanza/in (stanza, toJID)                 before local delivery; true drops
    message/delivered (message, session)      after delivery to a resource
    message/offline (message, bareJID)        nobody available; true = stored
    iq/account (session, iq)                  iq to one's own account
    iq/bare (iq, toJID)                       iq to another account's bare JID
"""

import time
from collections import defaultdict

from twisted.logger import Logger
from twisted.words.protocols.jabber import error, xmlstream
from xmppws.c2s import jid as jids
from xmppws.c2s import sasl
from xmppws.c2s.namespaces import NS_SESSION
from xmppws.c2s._stanzas import errorReply
from xmppws.c2s.quotas import Quotas, ResourceLimitReached
from xmppws.c2s.session import Session
from xmppws.c2s.stream import C2SAuthenticator, C2SXmlStream
from xmppws.c2s.throttle import LoginThrottle, ThrottlePolicy

__all__ = ["ResourceLimitReached", "ServerConfig", "XMPPServer"]


class ServerConfig:
    """
    Settings of the embedded server.

    @ivar domains: the served domains; the first is the default.
    @ivar plain: where SASL PLAIN is offered: C{'encrypted'} (TLS, wss or
        a trusted TLS proxy), C{'loopback'} (also plain connections from
        this machine; the default) or C{'always'}.
    @ivar anonymous: offer SASL ANONYMOUS.
    @ivar registration: allow XEP-0077 in-band registration.
    @ivar requireEncryption: on TCP, require STARTTLS before SASL.
    @ivar smTimeout: seconds a dropped XEP-0198 session waits for
        resumption; 0 turns resumption off.
    @ivar throttle: the C{ThrottlePolicy} of logins.
    @ivar quotas: the C{Quotas} of the state clients make the server keep.
    @ivar registrationInterval: seconds between two in-band registrations
        from one address (one IPv6 /64); 0 for no limit.
    @ivar archive: the L{xmppws.c2s.mam.ArchiveSettings} of the message
        archive, or L{None} for the defaults.
    @ivar databaseRunner: the L{xmppws.c2s.asyncdb.IRunner} the modules'
        own databases (archive, personal data) run their jobs on, or
        L{None} for a thread each (at once on a reactor without threads).
    @ivar backlog: the factory of the backlogs of work queued behind the
        connections (the archive's rows), given the high mark; the
        connection layer's (L{xmppws.flow.Backlog}) holds up the
        connection whose stanza passes it.  L{None} only counts.
    """

    def __init__(
        self,
        domains=("localhost",),
        plain="loopback",
        anonymous=False,
        registration=False,
        requireEncryption=False,
        authFailureDelay=None,
        authFailureMaxDelay=None,
        smTimeout=300,
        throttle=None,
        quotas=None,
        registrationInterval=60,
        archive=None,
        databaseRunner=None,
        backlog=None,
    ):
        """
        @param authFailureDelay: the first login delay, in seconds, when
            no C{throttle} is given (its C{delay}).
        @param authFailureMaxDelay: the longest login delay, when no
            C{throttle} is given (its C{maxDelay}).
        """
        if plain not in ("encrypted", "loopback", "always"):
            raise ValueError("plain must be 'encrypted', 'loopback' or 'always'")
        if not domains:
            raise ValueError("at least one domain must be served")
        self.domains = []
        for domain in domains:
            prepared = jids.prepDomainpart(domain)
            if prepared not in self.domains:
                self.domains.append(prepared)
        self.plain = plain
        self.anonymous = anonymous
        self.registration = registration
        self.requireEncryption = requireEncryption
        self.smTimeout = smTimeout
        if throttle is None:
            delays = {}
            if authFailureDelay is not None:
                delays["delay"] = authFailureDelay
            if authFailureMaxDelay is not None:
                delays["maxDelay"] = authFailureMaxDelay
            throttle = ThrottlePolicy(**delays)
        self.throttle = throttle
        self.quotas = quotas if quotas is not None else Quotas()
        self.registrationInterval = registrationInterval
        self.archive = archive
        self.databaseRunner = databaseRunner
        self.backlog = backlog

    @property
    def offlineLimit(self):
        """
        The offline message budget (C{Quotas.maxOfflineMessages}).
        """
        return self.quotas.maxOfflineMessages

    @offlineLimit.setter
    def offlineLimit(self, value):
        self.quotas.maxOfflineMessages = value


class XMPPServer:
    """
    Sessions, routing and hooks of the embedded server.

    @ivar storage: the L{xmppws.c2s.storage.Storage}.
    @ivar config: the L{ServerConfig}.
    @ivar sessions: bare JID string to {resource: L{Session}}.
    @ivar components: domain to a callable taking a stanza, for attached
        components.
    @ivar tlsOptions: TLS context factory for STARTTLS on TCP, or L{None}.
    @ivar modules: installed modules by name (L{xmppws.c2s.modules}).
    """

    log = Logger()

    def __init__(self, storage, config, reactor, tlsOptions=None):
        """
        @param storage: the L{xmppws.c2s.storage.Storage}.
        @param config: the L{ServerConfig}.
        @param reactor: the reactor (an C{IReactorTime}) timers and delays
            run on.
        @param tlsOptions: TLS context factory for STARTTLS, or L{None}.
        """
        self.storage = storage
        self.config = config or ServerConfig()
        self.reactor = reactor
        self.tlsOptions = tlsOptions
        self.sessions = {}
        self.components = {}
        self.modules = {}
        self._hooks = defaultdict(list)
        self.throttle = LoginThrottle(reactor, self.config.throttle)
        self.stats = defaultdict(int)
        self.startedAt = time.time()

    # Hooks

    def on(self, event, handler, priority=0):
        """
        Register C{handler} for C{event}; higher priorities run first.
        """
        self._hooks[event].append((-priority, len(self._hooks[event]), handler))
        self._hooks[event].sort(key=lambda entry: entry[:2])

    def fire(self, event, *args):
        """
        Run the handlers of C{event} until one returns a true value.

        @return: that value, or L{None}.
        """
        for _, _, handler in self._hooks.get(event, ()):
            result = handler(*args)
            if result:
                return result
        return None

    # Streams

    @property
    def defaultDomain(self):
        return self.config.domains[0]

    def streamFactory(self):
        """
        A Twisted Words C{XmlStreamServerFactory} of client streams, for TCP
        and WebSocket listeners alike.
        """
        factory = xmlstream.XmlStreamServerFactory(lambda: C2SAuthenticator(self))
        factory.protocol = C2SXmlStream
        return factory

    def streamConnected(self, xs):
        self.stats["streams"] += 1

    def servedDomain(self, name):
        """
        @return: the normalised domain if served here, else L{None}.
        """
        if not name:
            return None
        try:
            domain = jids.prepDomainpart(name)
        except jids.JIDMalformed:
            return None
        return domain if domain in self.config.domains else None

    # Authentication

    def mechanismNames(self, secure, loopback):
        """
        The SASL mechanisms offered on a stream.
        """
        names = ["SCRAM-SHA-256", "SCRAM-SHA-1"]
        plain = self.config.plain
        if secure or plain == "always" or (plain == "loopback" and loopback):
            names.append("PLAIN")
        if self.config.anonymous:
            names.append("ANONYMOUS")
        return names

    def mechanism(self, name, domain):
        if name == "PLAIN":
            return sasl.Plain(self.storage, domain)
        if name == "ANONYMOUS":
            return sasl.Anonymous(self.storage, domain)
        return sasl.Scram(self.storage, domain, name)

    def loginAttempt(self, xs, username, domain):
        """
        Ask the login throttle about an attempt to log in as C{username}
        (as the client sent it) before anything is checked.

        @return: the C{xmppws.c2s.throttle.Attempt}; the caller waits its
            C{delay} (or refuses it), then reports its outcome to
            L{authSucceeded} or L{authFailed}.
        """
        account = None
        if username is not None:
            try:
                account = (jids.prepLocalpart(username), domain)
            except jids.JIDMalformed:
                account = None
        attempt = self.throttle.begin(account, self.throttle.addressKey(_peerHost(xs)))
        if attempt.refused:
            self.stats["auth_refused"] += 1
            self.log.info(
                "{peer}: login to {account} refused unchecked for {seconds}s ({reason} throttled)",
                peer=xs.transport.getPeer(),
                account=_accountName(account),
                seconds=attempt.retryAfter,
                reason=attempt.reason,
            )
        elif attempt.delay:
            self.stats["auth_delayed"] += 1
            self.log.info(
                "{peer}: login to {account} waits {delay}s before it is checked "
                "({reason} throttled)",
                peer=xs.transport.getPeer(),
                account=_accountName(account),
                delay=attempt.delay,
                reason=attempt.reason,
            )
        return attempt

    def authSucceeded(self, xs, username, domain, attempt=None):
        """
        Count a successful login; its address becomes known to the
        account (see C{xmppws.c2s.throttle}).
        """
        self.stats["auth_success"] += 1
        if attempt is not None:
            self.throttle.succeeded(attempt)
        self.log.info(
            "{peer} authenticated as {jid}",
            peer=xs.transport.getPeer(),
            jid="%s@%s" % (username, domain),
        )

    def authFailed(self, xs, condition, attempt=None):
        """
        Count a failed login; wrong credentials count against the
        attempt's account and address in the login throttle.
        """
        self.stats["auth_failure"] += 1
        account = None
        if attempt is not None:
            account = attempt.account
            if condition == "not-authorized":
                self.throttle.failed(attempt)
            else:
                attempt.release()
        self.log.info(
            "{peer} failed to authenticate as {account} ({condition})",
            peer=xs.transport.getPeer(),
            account=_accountName(account),
            condition=condition,
        )

    # Sessions

    def bind(self, xs, username, domain, resource, anonymous=False):
        """
        Bind a resource, replacing an existing session with the same full
        JID (it gets a C{conflict} stream error), as Prosody does.

        An account has at most C{Quotas.maxResources} resources; at the
        limit, the session that has waited longest for XEP-0198
        resumption ends to make room, and with none waiting the bind is
        refused.

        @param username: the prepared localpart.
        @param resource: the resourcepart the client asked for, or
            L{None} for one of the server's choosing.
        @raise InvalidFormat: (a L{jids.JIDMalformed}) for a resource that
            is not an RFC 7622 resourcepart: empty once prepared, with a
            character the C{OpaqueString} profile refuses, or longer than
            1023 bytes.
        @raise ResourceLimitReached: when the account has as many
            resources as it may, all of them connected.
        """
        if resource is None:
            resource = "xmppws-" + _randomResource()
        jid = jids.prepared(username, domain, jids.prepResourcepart(resource))
        resources = self.sessions.get(jid.userhost(), {})
        existing = resources.get(jid.resource)
        if existing is not None:
            self.log.info("{jid} bound again; replacing the old session", jid=jid.full())
            oldXs = existing.xs
            self.endSession(existing)
            if oldXs is not None:
                oldXs.sendStreamError(error.StreamError("conflict", "Replaced by a new connection."))
        elif len(resources) >= self.config.quotas.maxResources:
            detached = [s for s in resources.values() if s.xs is None]
            if not detached:
                self.stats["quota_maxResources"] += 1
                self.log.info(
                    "{jid} has {count} resources already; bind refused",
                    jid=jid.userhost(),
                    count=len(resources),
                )
                raise ResourceLimitReached(self.config.quotas.maxResources)
            oldest = min(detached, key=_detachedSince)
            self.log.info(
                "{jid} is at its resource limit; ending {old}, which waited for resumption",
                jid=jid.userhost(),
                old=oldest.jid.full(),
            )
            self.endSession(oldest)
        session = Session(self, xs, jid, anonymous)
        self.sessions.setdefault(jid.userhost(), {})[jid.resource] = session
        self.stats["sessions_total"] += 1
        self.fire("session/bound", session)
        return session

    def sessionLost(self, session, xs, reason):
        if session.ended:
            return
        if self.fire("session/lost", session, xs, reason):
            return
        self.endSession(session)

    def endSession(self, session):
        """
        End a session: unavailable presence goes out, it is forgotten.
        """
        if session.ended:
            return
        self.fire("session/ended", session)
        session.ended = True
        resources = self.sessions.get(session.jid.userhost(), {})
        if resources.get(session.jid.resource) is session:
            del resources[session.jid.resource]
            if not resources:
                del self.sessions[session.jid.userhost()]

    def sessionsOf(self, bare):
        """
        @return: the sessions of an account.
        @rtype: L{list} of L{Session}
        """
        return list(self.sessions.get(bare.userhost(), {}).values())

    def session(self, jid):
        """
        @return: the session of a full JID, or L{None}.
        """
        return self.sessions.get(jid.userhost(), {}).get(jid.resource)

    def isLocal(self, jid):
        return jid.host in self.config.domains

    def accountExists(self, jid):
        """
        Whether a local bare JID is an account (or has anonymous sessions).
        """
        if not jid.user or not self.isLocal(jid):
            return False
        return bool(self.sessionsOf(jid)) or self.storage.userExists(jid.user, jid.host)

    # Routing

    def fromClient(self, session, stanza):
        """
        Process a stanza a client sent: check and stamp C{from}, then hand
        it to modules or route it.
        """
        self.stats["stanzas_in"] += 1
        sender = stanza.getAttribute("from")
        if sender is not None:
            try:
                claimed = jids.ofStanza(stanza, "from")
            except jids.JIDMalformed:
                claimed = None
            if claimed is None or claimed not in (session.jid, jids.bare(session.jid)):
                session.xs.sendStreamError(error.StreamError("invalid-from"))
                return
        jids.stamp(stanza, "from", session.jid)
        to = stanza.getAttribute("to")
        toJID = None
        if to is not None:
            try:
                toJID = jids.ofStanza(stanza, "to")
            except jids.JIDMalformed as e:
                return self.bounce(stanza, "jid-malformed", "modify", _malformedText(e))
            jids.stamp(stanza, "to", toJID)
        if self.fire("stanza/out", session, stanza):
            return
        if stanza.name == "presence":
            if self.fire("presence/out", session, stanza):
                return
            if to is None:
                return
        elif to is None:
            if stanza.name == "iq":
                return self._accountIQ(session, stanza)
            stanza["to"] = session.jid.userhost()
        elif stanza.name == "iq" and toJID == jids.bare(session.jid):
            return self._accountIQ(session, stanza)
        self.route(stanza)

    def _accountIQ(self, session, iq):
        if self.fire("iq/account", session, iq):
            return
        child = iq.firstChildElement()
        if child is not None and (child.uri, child.name) == (NS_SESSION, "session"):
            # The legacy session establishment is a no-op (RFC 6121 appendix E).
            return session.send(self.reply(iq))
        if iq.getAttribute("type") in ("get", "set"):
            self.bounce(iq, "service-unavailable", "cancel")

    def route(self, stanza):
        """
        Deliver a stanza whose C{from} is already trusted.
        """
        try:
            to = jids.ofStanza(stanza, "to")
        except jids.JIDMalformed as e:
            return self.bounce(stanza, "jid-malformed", "modify", _malformedText(e))
        if to is None:
            return self.bounce(stanza, "jid-malformed", "modify")
        if not self.isLocal(to):
            component = self.components.get(to.host)
            if component is not None:
                return component(stanza)
            return self.bounce(stanza, "remote-server-not-found", "cancel")
        if to.user is None:
            return self._toServer(stanza, to)
        if self.fire("stanza/in", stanza, to):
            return
        if stanza.name == "presence":
            if self.fire("presence/in", stanza, to):
                return
            session = self.session(to) if to.resource else None
            if session is not None:
                session.send(stanza)
            return
        if to.resource is not None:
            session = self.session(to)
            if session is not None:
                return self._deliver(session, stanza)
            if stanza.name == "iq":
                return self.bounce(stanza, "service-unavailable", "cancel")
        if stanza.name == "iq":
            if self.fire("iq/bare", stanza, to):
                return
            if not self.accountExists(to):
                return self.bounce(stanza, "service-unavailable", "cancel")
            return self.bounce(stanza, "service-unavailable", "cancel")
        return self._messageToBare(stanza, to)

    def _messageToBare(self, message, to):
        messageType = message.getAttribute("type", "normal")
        if not self.accountExists(to):
            return self.bounce(message, "service-unavailable", "cancel")
        if messageType == "groupchat":
            return self.bounce(message, "service-unavailable", "cancel")
        available = [s for s in self.sessionsOf(to) if s.available and s.priority >= 0]
        if messageType == "headline":
            for session in available:
                self._deliver(session, message)
            return
        if available:
            top = max(s.priority for s in available)
            for session in available:
                if session.priority == top:
                    self._deliver(session, message)
            return
        if messageType == "error":
            return
        if self.fire("message/offline", message, to):
            return
        self.bounce(message, "service-unavailable", "cancel")

    def _deliver(self, session, stanza):
        self.stats["stanzas_out"] += 1
        session.send(stanza)
        if stanza.name == "message":
            self.fire("message/delivered", stanza, session)

    def _toServer(self, stanza, to):
        if stanza.name == "iq":
            if self.fire("iq/server", stanza, to):
                return
            if stanza.getAttribute("type") in ("get", "set"):
                self.bounce(stanza, "service-unavailable", "cancel")
            return
        if stanza.name == "message" and stanza.getAttribute("type") != "error":
            self.bounce(stanza, "service-unavailable", "cancel")

    def bounce(self, stanza, condition, errorType, text=None, extra=None):
        """
        Return a stanza to its sender with an error, never in reply to an
        error.
        """
        if stanza.getAttribute("type") == "error":
            return
        if stanza.name == "iq" and stanza.getAttribute("type") == "result":
            return
        if stanza.getAttribute("from") is None:
            return
        reply = errorReply(stanza, condition, errorType, text, extra)
        if not reply.getAttribute("from"):
            # A stanza without 'to' went to the sender's own account: the
            # error comes from its bare JID (RFC 6120 section 8.1.2.1).
            to = stanza.getAttribute("to")
            reply["from"] = to if to else stanza["from"].split("/", 1)[0]
        self.route(reply)

    def reply(self, iq):
        """
        A result for C{iq}, from the server's point of view.
        """
        return xmlstream.toResponse(iq, "result")


def _peerHost(xs):
    return getattr(xs.transport.getPeer(), "host", None)


def _detachedSince(session):
    managed = getattr(session, "sm", None)
    since = getattr(managed, "detachedAt", None)
    return float("-inf") if since is None else since


def _accountName(account):
    return "-" if account is None else "%s@%s" % account


def _malformedText(e):
    """
    The text of a C{jid-malformed} error: which part was wrong, without
    echoing what the client sent.
    """
    return "The %s is not valid (%s)." % (e.part, e.reason)


def _randomResource():
    import uuid

    return uuid.uuid4().hex[:12]
