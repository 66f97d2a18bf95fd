# -*- test-case-name: tests.test_c2s_ext -*-
"""
XEP-0160 offline messages, stamped with XEP-0203 delayed delivery.

A message of type C{normal} or C{chat} for an account with no available
resource is kept in the server's SQLite database, so it survives a
restart.  When a resource of the account sends initial presence with a
non-negative priority (the C{session/available} event of the presence
module), the stored messages go to it, oldest first, each with
C{<delay xmlns='urn:xmpp:delay' from='DOMAIN' stamp='...'/>}, and are
deleted.  A message that already carries a delay stamp from the domain
(one stored again after a failed delivery) keeps that first stamp.
There is no XEP-0013 flexible retrieval.

Not stored:

  - messages with the XEP-0334 C{<no-store/>} hint: they are returned to
    the sender with C{service-unavailable}, as with no storage at all;
  - XEP-0085 chat state notifications without a body: they are
    dropped silently, since a stale "typing" is worth neither a bounce
    nor a slot in the queue;
  - XEP-0280 carbon copies (stream management hands over those a
    resource never acknowledged): dropped silently, the original went to
    another resource;
  - messages for an account that already has L{OfflineMessages.limit}
    messages waiting: they are returned with C{resource-constraint}
    (type C{wait}), the condition RFC 6120 section 8.3.3.18 gives to a
    recipient lacking the resources to serve a request; unlike
    C{service-unavailable} it tells the sender the account exists and
    that trying again later may work.

The limit is the server configuration's C{offlineLimit} attribute when
it has one, else 1000.
"""

import datetime

from twisted.logger import Logger
from twisted.words.xish import domish
from tx_xmpp.delay import Delay

from xmppws.c2s import jid as jids
from xmppws.c2s._stanzas import parseStanza
from xmppws.c2s.namespaces import NS_CARBONS, NS_DELAY, NS_HINTS

__all__ = ["OfflineMessages", "install"]

NS_MSGOFFLINE = "msgoffline"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"

DEFAULT_LIMIT = 1000


class OfflineMessages:
    """
    The offline module's state.

    @ivar server: the L{xmppws.c2s.server.XMPPServer}.
    @ivar limit: the most messages kept per account.
    @type limit: L{int}
    """

    log = Logger()
    discoFeatures = (NS_MSGOFFLINE,)

    def __init__(self, server, limit=DEFAULT_LIMIT):
        self.server = server
        self.limit = limit

    def store(self, message, bare):
        """
        Keep C{message} for the account C{bare} (the C{message/offline}
        event).

        @return: C{True} when the message was stored or deliberately
            dropped, C{False} to have the server bounce it.
        """
        storage = self.server.storage
        if message.getAttribute("type", "normal") not in ("normal", "chat"):
            return False
        if not storage.userExists(bare.user, bare.host):
            # Anonymous sessions leave no account to deliver to later.
            return False
        if _hasChild(message, NS_HINTS, "no-store"):
            return False
        if _onlyChatState(message) or _isCarbon(message):
            return True
        if storage.countOffline(bare.user, bare.host) >= self.limit:
            self.log.info("Offline queue of {jid} is full", jid=bare.userhost())
            self.server.bounce(
                message,
                "resource-constraint",
                "wait",
                "The recipient's offline message queue is full.",
            )
            return True
        storage.storeOffline(
            bare.user, bare.host, message.toXml(), stamp=self.server.reactor.seconds()
        )
        return True

    def deliver(self, session):
        """
        Send the stored messages of the session's account to it, oldest
        first, then forget them (the C{session/available} event).
        """
        if session.priority < 0:
            return None
        storage = self.server.storage
        user, domain = session.jid.user, session.jid.host
        rows = storage.offlineMessages(user, domain)
        sender = jids.fromPrepared(domain)
        for rowID, text, stamp in rows:
            try:
                message = parseStanza(text)
            except domish.ParserError:
                self.log.failure("Dropped an unreadable offline message {id}", id=rowID)
                continue
            if not _stampedBy(message, domain):
                when = datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc)
                message.addChild(Delay(when, sender).toElement())
            session.send(message)
        storage.deleteOffline([row[0] for row in rows])
        return None


def _hasChild(element, uri, name):
    return any(True for _ in element.elements(uri, name))


def _isCarbon(message):
    """
    Whether C{message} is a XEP-0280 copy (one stream management could
    not deliver, say), whose original went elsewhere.
    """
    return any(child.uri == NS_CARBONS for child in message.elements())


def _stampedBy(message, domain):
    """
    Whether C{message} already has a delay stamp from C{domain} (it came
    back to storage after an earlier delivery): the first stamp is kept.
    """
    return any(
        delay.getAttribute("from") == domain for delay in message.elements(NS_DELAY, "delay")
    )


def _onlyChatState(message):
    """
    Whether C{message} is a chat state notification without a body.
    """
    children = list(message.elements())
    return any(child.uri == NS_CHATSTATES for child in children) and not any(
        child.name == "body" for child in children
    )


def install(server):
    """
    Store messages for unavailable accounts and deliver them later.

    @return: the L{OfflineMessages} state.
    """
    offline = OfflineMessages(server, getattr(server.config, "offlineLimit", DEFAULT_LIMIT))
    server.on("message/offline", offline.store)
    server.on("session/available", offline.deliver)
    return offline
