# -*- test-case-name: tests.test_c2s_ext -*-
"""
XEP-0077 in-band registration, off unless the server configuration's
C{registration} is true.

When on:

  - before authentication, the stream features include
    C{<register xmlns='http://jabber.org/features/iq-register'/>} and a
    C{jabber:iq:register} iq creates an account.  Registration sends the
    password inside the stream, so it is offered exactly where SASL PLAIN
    is (L{xmppws.c2s.server.XMPPServer.mechanismNames}); elsewhere the
    iq gets C{policy-violation}.  One address (one IPv6 /64) may create
    an account every L{Registration.interval} seconds (the
    configuration's C{registrationInterval}, 60 by default; 0 for no
    limit);
  - a bound session may change its password (a C{set} with
    C{<username/>} and C{<password/>}) or remove its account
    (C{<remove/>}): the account's sessions then end with a
    C{not-authorized} stream error.  Before the account's data is
    deleted the server fires C{account/remove} with the bare JID, so
    that other modules may clean up.

When off, register iqs from a session get C{service-unavailable}, and
before authentication the stream answers them with a C{not-authorized}
stream error.
"""

from scramp import ScramException
from twisted.logger import Logger
from twisted.words.protocols.jabber import error
from twisted.words.xish import domish

from xmppws.c2s import jid as jids
from xmppws.c2s._stanzas import errorReply
from xmppws.c2s.namespaces import NS_CLIENT, NS_REGISTER, NS_REGISTER_FEATURE
from xmppws.c2s.storage import AccountExists, NoSuchAccount
from xmppws.c2s.stream import isLoopback, isSecure
from xmppws.c2s.throttle import addressKey

__all__ = ["Registration", "install"]

INSTRUCTIONS = "Choose a username and password to register with this server."
DEFAULT_INTERVAL = 60


class Registration:
    """
    The register module's state.

    @ivar server: the L{xmppws.c2s.server.XMPPServer}.
    @ivar interval: seconds between two registrations from one address.
    """

    log = Logger()

    def __init__(self, server, interval=DEFAULT_INTERVAL):
        self.server = server
        self.interval = interval
        self._recent = {}

    @property
    def enabled(self):
        """
        Whether in-band registration is on.
        """
        return bool(self.server.config.registration)

    @property
    def discoFeatures(self):
        return (NS_REGISTER,) if self.enabled else ()

    def allowedOn(self, xs):
        """
        Whether the stream C{xs} may carry a registration's password.
        """
        transport = xs.transport
        secure = isSecure(transport)
        if self.server.config.requireEncryption and not secure:
            return False
        return "PLAIN" in self.server.mechanismNames(secure, isLoopback(transport))

    # Before authentication

    def onFeatures(self, xs, features):
        if self.enabled and self.allowedOn(xs):
            features.addElement((NS_REGISTER_FEATURE, "register"))

    def onUnauthenticated(self, xs, element):
        query = _registerQuery(element)
        if query is None or not self.enabled:
            return None
        iqType = element.getAttribute("type")
        if not self.allowedOn(xs):
            self._error(xs, element, "policy-violation", "modify", "Encryption is required.")
        elif iqType == "get":
            reply = _reply(element)
            form = reply.addElement((NS_REGISTER, "query"))
            form.addElement("instructions", content=INSTRUCTIONS)
            form.addElement("username")
            form.addElement("password")
            xs.send(reply)
        elif iqType == "set":
            if any(True for _ in query.elements(NS_REGISTER, "remove")):
                self._error(xs, element, "not-authorized", "auth")
            else:
                self._create(xs, element, query)
        elif iqType != "result" and iqType != "error":
            self._error(xs, element, "bad-request", "modify")
        return True

    def _create(self, xs, iq, query):
        domain = xs.thisEntity.host
        username = _field(query, "username")
        password = _field(query, "password")
        if not username or not password:
            return self._error(
                xs, iq, "not-acceptable", "modify", "A username and a password are required."
            )
        try:
            user = jids.prepLocalpart(username)
        except jids.JIDMalformed as e:
            return self._error(
                xs, iq, "not-acceptable", "modify", "The username is not valid (%s)." % (e.reason,)
            )
        peer = getattr(xs.transport.getPeer(), "host", None)
        host = addressKey(peer, exemptLocal=False) or peer
        now = self.server.reactor.seconds()
        if self.interval:
            self._recent = {h: t for h, t in self._recent.items() if now - t < self.interval}
            if host in self._recent:
                return self._error(
                    xs, iq, "policy-violation", "wait", "Too many registrations; try again later."
                )
        try:
            self.server.storage.addUser(user, domain, password)
        except AccountExists:
            return self._error(xs, iq, "conflict", "cancel")
        except ScramException:
            return self._error(xs, iq, "not-acceptable", "modify", "The password is not valid.")
        self._recent[host] = now
        self.log.info(
            "{peer} registered {jid}", peer=xs.transport.getPeer(), jid=user + "@" + domain
        )
        xs.send(_reply(iq))

    def _error(self, xs, iq, condition, errorType, text=None):
        xs.send(errorReply(iq, condition, errorType, text))

    # Sessions

    def onAccountIQ(self, session, iq):
        query = _registerQuery(iq)
        if query is None or not self.enabled:
            return None
        self._accountRequest(session, iq, query)
        return True

    def onServerIQ(self, iq, to):
        query = _registerQuery(iq)
        if query is None or not self.enabled:
            return None
        try:
            session = self.server.session(jids.parse(iq.getAttribute("from", "")))
        except jids.JIDMalformed:
            session = None
        if session is None or session.jid.host != to.host:
            return None
        self._accountRequest(session, iq, query)
        return True

    def _accountRequest(self, session, iq, query):
        iqType = iq.getAttribute("type")
        jid = session.jid
        if iqType == "get":
            reply = self.server.reply(iq)
            form = reply.addElement((NS_REGISTER, "query"))
            form.addElement("registered")
            form.addElement("username", content=jid.user)
            self.server.route(reply)
        elif iqType != "set":
            self.server.bounce(iq, "bad-request", "modify")
        elif session.anonymous:
            self.server.bounce(iq, "not-allowed", "cancel")
        elif any(True for _ in query.elements(NS_REGISTER, "remove")):
            self._remove(session, iq)
        else:
            self._changePassword(session, iq, query)

    def _changePassword(self, session, iq, query):
        jid = session.jid
        username = _field(query, "username")
        password = _field(query, "password")
        try:
            user = jids.prepLocalpart(username) if username else None
        except jids.JIDMalformed:
            user = None
        if user != jid.user:
            return self.server.bounce(iq, "bad-request", "modify", "The username is not yours.")
        if not password:
            return self.server.bounce(iq, "not-acceptable", "modify", "A password is required.")
        try:
            self.server.storage.setPassword(jid.user, jid.host, password)
        except NoSuchAccount:
            return self.server.bounce(iq, "not-allowed", "cancel")
        except ScramException:
            return self.server.bounce(iq, "not-acceptable", "modify", "The password is not valid.")
        self.log.info("{jid} changed its password", jid=jid.userhost())
        self.server.route(self.server.reply(iq))

    def _remove(self, session, iq):
        bare = jids.bare(session.jid)
        if not self.server.storage.userExists(bare.user, bare.host):
            return self.server.bounce(iq, "not-allowed", "cancel")
        self.server.route(self.server.reply(iq))
        self.server.fire("account/remove", bare)
        for other in self.server.sessionsOf(bare):
            xs = other.xs
            self.server.endSession(other)
            if xs is not None:
                xs.sendStreamError(error.StreamError("not-authorized", "The account was removed."))
        self.server.storage.deleteUser(bare.user, bare.host)
        self.log.info("{jid} removed its account", jid=bare.userhost())


def _registerQuery(element):
    """
    The C{jabber:iq:register} query of an iq, or L{None}.
    """
    if element.uri != NS_CLIENT or element.name != "iq":
        return None
    query = element.firstChildElement()
    if query is None or (query.uri, query.name) != (NS_REGISTER, "query"):
        return None
    return query


def _field(query, name):
    for child in query.elements(NS_REGISTER, name):
        return str(child)
    return None


def _reply(iq):
    reply = domish.Element((NS_CLIENT, "iq"))
    reply["type"] = "result"
    if iq.getAttribute("id") is not None:
        reply["id"] = iq["id"]
    return reply


def install(server):
    """
    Offer in-band registration when the configuration allows it.

    @return: the L{Registration} state.
    """
    registration = Registration(
        server, getattr(server.config, "registrationInterval", DEFAULT_INTERVAL)
    )
    server.on("features/unauthenticated", registration.onFeatures)
    server.on("stream/unauthenticated", registration.onUnauthenticated)
    server.on("iq/account", registration.onAccountIQ)
    server.on("iq/server", registration.onServerIQ)
    return registration
