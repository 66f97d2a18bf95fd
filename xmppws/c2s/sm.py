# -*- test-case-name: tests.test_c2s_sm -*-
"""
XEP-0198 stream management (C{urn:xmpp:sm:3}), modelled on Prosody's
mod_smacks: acknowledgements, and resumption of a session whose
WebSocket dropped, which RFC 7395 recommends because browsers and mobile
networks drop them.

After authentication the stream features carry C{<sm/>}.  After binding,
C{<enable/>} turns counting on: every stanza the client sends counts
towards C{h}, which an C{<r/>} asks for; every stanza sent to the client
waits in a queue until an C{<a h='...'/>} acknowledges it.  The server
asks for an acknowledgement (C{<r/>}) whenever
L{StreamManagement.requestAfter} or more stanzas are unacknowledged.

With C{<enable resume='true'/>}, a stream that ends without being closed
(the connection dropped: no C{<close/>} or footer either way, see
L{xmppws.c2s.stream.C2SXmlStream.closed}, and no stream error) leaves
its session bound but detached for C{smTimeout} seconds (the server
configuration; 300 by default, 0 turns resumption off).  It stays in the
server's session table, available, and keeps receiving stanzas into its
queue.  A new stream authenticated as the same account may then send
C{<resume previd='...' h='...'/>} instead of binding: the session moves
to it, and what the client had not acknowledged is sent again, with a
XEP-0203 delay stamp on messages and presence.  A resumption that
arrives while the old stream still looks connected takes the session
over, and the old stream gets a C{conflict} stream error.  An unknown
id, or one of another account, fails with C{item-not-found}; for a
session of the same account that ended recently, the C{<failed/>}
carries the server's last C{h}.  Anonymous sessions are never
resumable: a new anonymous login is a different account.

When a session ends with stanzas unacknowledged (a clean close, the
resumption timeout, a stream error), none of them is dropped silently:
messages of type C{chat} or C{normal} go to offline storage through the
C{message/offline} event; whatever nothing stored, and unacknowledged
C{groupchat} messages and iq requests, go back to their senders with
C{recipient-unavailable}.  Presence, headlines and errors are dropped,
as for an unavailable resource (RFC 6121 section 8.5.3.2).  Stanzas from
the account itself are never bounced.

The queue is bounded by L{StreamManagement.maxQueue} (the server
configuration's C{xmppws.c2s.quotas.Quotas.smMaxQueue}, 500 by
default).  A session that
goes over it ends as above: while connected it gets a
C{policy-violation} stream error first; while detached it simply
expires early.  Acknowledging more stanzas than were sent gets the
C{undefined-condition} stream error with C{<handled-count-too-high/>},
as XEP-0198 section 4 requires.
"""

import datetime
import secrets
from collections import OrderedDict, deque

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import error
from twisted.words.xish import domish
from tx_xmpp.delay import Delay

from xmppws.c2s import jid as jids
from xmppws.c2s._stanzas import copyStanza
from xmppws.c2s.namespaces import NS_CLIENT, NS_DELAY, NS_SM, NS_STANZAS

__all__ = ["ManagedSession", "StreamManagement", "install"]

STANZAS = ("message", "presence", "iq")

DEFAULT_TIMEOUT = 300
REQUEST_AFTER = 5
MAX_QUEUE = 500
EXPIRED_KEPT = 1000

_MODULUS = 2**32


def _parseCount(value):
    """
    Parse an C{h} attribute: an unsigned 32-bit integer.

    @return: the count, or L{None} if C{value} is not one.
    """
    if not value or not value.isascii() or not value.isdigit():
        return None
    count = int(value)
    return count if count < _MODULUS else None


def _isStanza(element):
    return element.name in STANZAS and element.uri in (None, "", NS_CLIENT)


class ManagedSession:
    """
    The stream management state of one session; it outlives the session's
    streams while the session is resumable.

    @ivar module: the L{StreamManagement} module.
    @ivar session: the L{xmppws.c2s.session.Session}.
    @ivar id: the resumption id, or L{None} if the session is not
        resumable.
    @ivar handled: stanzas received from the client since C{<enable/>}.
    @ivar sent: stanzas sent (or queued) to the client since C{<enable/>}.
    @ivar acked: how many of them the client acknowledged.
    @ivar queue: C{(seconds, stanza)} of every unacknowledged stanza, in
        order, C{seconds} being when it was queued.
    @type queue: L{collections.deque}
    @ivar detachedAt: when the session lost its stream, or L{None} while
        it has one.
    @ivar finished: C{True} once the session ended; stanzas still sent to
        it go where unacknowledged ones go.
    """

    log = Logger()

    def __init__(self, module, session, resumptionId=None):
        self.module = module
        self.session = session
        self.id = resumptionId
        self.handled = 0
        self.sent = 0
        self.acked = 0
        self.queue = deque()
        self.detachedAt = None
        self.finished = False
        self._awaitingAck = False
        self._lastRequested = None
        self._timer = None

    def __repr__(self):
        return "<ManagedSession %s id=%s>" % (self.session.jid.full(), self.id)

    # The Session's side

    def received(self):
        """
        Count one stanza received from the client.
        """
        self.handled += 1

    def send(self, stanza):
        """
        Queue a stanza for the client and write it if the session has a
        stream; other elements are written as they are.
        """
        if not _isStanza(stanza):
            self.session.write(stanza)
            return
        if self.finished:
            self.module.undeliverable(self.session, stanza)
            return
        self.queue.append((self._now(), copyStanza(stanza)))
        self.sent += 1
        if len(self.queue) > self.module.maxQueue:
            self._overflow()
            return
        if self.session.xs is not None:
            self.session.write(stanza)
            self.requestAckIfNeeded()

    # Acknowledgements

    def requestAckIfNeeded(self, force=False):
        """
        Send C{<r/>} when enough stanzas wait for an acknowledgement and
        none was asked for since (or, with C{force}, when any wait).
        """
        if self.session.xs is None or self._awaitingAck or not self.queue:
            return
        if not force and (
            len(self.queue) < self.module.requestAfter or self._lastRequested == self.sent
        ):
            return
        self._awaitingAck = True
        self._lastRequested = self.sent
        self.session.write(domish.Element((NS_SM, "r")))

    def ackElement(self):
        """
        @return: C{<a h='...'/>} for the stanzas handled so far.
        """
        a = domish.Element((NS_SM, "a"))
        a["h"] = str(self.handled % _MODULUS)
        return a

    def unacknowledged(self, h):
        """
        How many queued stanzas an acknowledgement C{h} leaves.

        @return: that number, or L{None} if C{h} acknowledges more than
            was sent.
        """
        newly = (h - self.acked) % _MODULUS
        if newly > len(self.queue):
            return None
        return len(self.queue) - newly

    def acknowledge(self, h):
        """
        Drop what C{h} acknowledges from the queue.

        @return: C{False} if C{h} acknowledges more than was sent (nothing
            changes then), else C{True}.
        """
        left = self.unacknowledged(h)
        if left is None:
            return False
        while len(self.queue) > left:
            self.queue.popleft()
        self.acked = self.sent - left
        self._awaitingAck = False
        return True

    def onAck(self, element):
        """
        Handle the client's C{<a/>}.
        """
        h = _parseCount(element.getAttribute("h"))
        if h is None:
            self.module.closeSession(
                self.session,
                error.StreamError("invalid-xml", "Missing or invalid 'h' attribute."),
            )
            return
        if not self.acknowledge(h):
            sentCount = str(self.sent % _MODULUS)
            self.log.warn(
                "{jid} acknowledged {h} stanzas, but only {sent} were sent",
                jid=self.session.jid.full(),
                h=h,
                sent=sentCount,
            )
            tooHigh = domish.Element((NS_SM, "handled-count-too-high"))
            tooHigh["h"] = str(h)
            tooHigh["send-count"] = sentCount
            self.module.closeSession(
                self.session,
                error.StreamError(
                    "undefined-condition",
                    "You acknowledged %d stanzas, but only %s were sent." % (h, sentCount),
                    appCondition=tooHigh,
                ),
            )
            return
        self.requestAckIfNeeded()

    def onRequest(self):
        """
        Answer the client's C{<r/>}.
        """
        self.session.write(self.ackElement())
        self.requestAckIfNeeded()

    # Detaching and resuming

    def hibernate(self, timeout):
        """
        The stream dropped: keep the session for C{timeout} seconds.
        """
        self.detachedAt = self._now()
        self._awaitingAck = False
        self.cancelTimer()
        self._timer = self.module.server.reactor.callLater(timeout, self._expire)

    def cancelTimer(self):
        """
        Stop waiting for resumption.
        """
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None

    def resumeOn(self, xs):
        """
        Attach the session to C{xs} and send C{<resumed/>} and the
        unacknowledged stanzas; the caller acknowledged the client's C{h}.
        """
        session = self.session
        self.cancelTimer()
        old = session.detach()
        if old is not None and old.transport is not None:
            self.log.info(
                "{jid} resumed while its old stream was still open; closing it",
                jid=session.jid.full(),
            )
            old.sendStreamError(
                error.StreamError("conflict", "Replaced by a resumed stream.")
            )
        self.detachedAt = None
        self._awaitingAck = False
        self._lastRequested = None
        session.attach(xs)
        resumed = domish.Element((NS_SM, "resumed"))
        resumed["previd"] = self.id
        resumed["h"] = str(self.handled % _MODULUS)
        session.write(resumed)
        domain = jids.fromPrepared(session.jid.host)
        for queued, stanza in list(self.queue):
            session.write(_delayed(stanza, queued, domain))
        self.requestAckIfNeeded(force=True)

    def _expire(self):
        self._timer = None
        if self.session.ended or self.session.xs is not None:
            return
        self.log.info(
            "{jid} was not resumed in time; ending the session",
            jid=self.session.jid.full(),
        )
        self.module.server.stats["sm_expired"] += 1
        self.module.server.endSession(self.session)

    def _overflow(self):
        self.log.warn(
            "{jid} left {count} stanzas unacknowledged; ending the session",
            jid=self.session.jid.full(),
            count=len(self.queue),
        )
        self.module.closeSession(
            self.session,
            error.StreamError(
                "policy-violation",
                "Too many unacknowledged stanzas (more than %d)." % (self.module.maxQueue,),
            ),
        )

    # Ending

    def finish(self):
        """
        The session ends: say how far we got if the stream is still there,
        stop being resumable and hand on every unacknowledged stanza.
        """
        if self.finished:
            return
        self.finished = True
        self.cancelTimer()
        if self.session.xs is not None:
            self.session.write(self.ackElement())
        queue, self.queue = self.queue, deque()
        for _, stanza in queue:
            self.module.undeliverable(self.session, stanza)

    def _now(self):
        return self.module.server.reactor.seconds()


class StreamManagement:
    """
    The stream management module's state.

    @ivar server: the L{xmppws.c2s.server.XMPPServer}.
    @ivar resumable: resumption id to L{ManagedSession}, for the sessions
        that may be resumed.
    @ivar requestAfter: the number of unacknowledged stanzas after which
        the server sends C{<r/>}.
    @ivar maxQueue: the most unacknowledged stanzas a session may have.
    """

    log = Logger()
    requestAfter = REQUEST_AFTER
    maxQueue = MAX_QUEUE

    def __init__(self, server):
        self.server = server
        self.resumable = {}
        self._expired = OrderedDict()
        quotas = getattr(server.config, "quotas", None)
        if quotas is not None:
            self.maxQueue = quotas.smMaxQueue

    @property
    def timeout(self):
        """
        How long a dropped session waits for resumption, in seconds; 0
        turns resumption off.
        """
        return getattr(self.server.config, "smTimeout", DEFAULT_TIMEOUT) or 0

    # Hooks

    def addFeature(self, xs, features):
        """
        Offer C{<sm xmlns='urn:xmpp:sm:3'/>} on authenticated streams.
        """
        features.addElement((NS_SM, "sm"))

    def beforeBind(self, xs, element):
        """
        Elements after authentication and before binding: C{<resume/>},
        or a premature C{<enable/>}.
        """
        if element.uri != NS_SM:
            return None
        if element.name == "resume":
            self._resume(xs, element)
            return True
        if element.name == "enable":
            xs.send(_failed("unexpected-request"))
            return True
        return None

    def onSessionElement(self, session, element):
        """
        Stream management elements on a bound stream.
        """
        if element.uri != NS_SM:
            return None
        managed = session.sm
        name = element.name
        if name == "enable":
            self._enable(session, element)
        elif name == "resume":
            session.write(_failed("unexpected-request"))
        elif managed is None:
            # <r/> or <a/> before <enable/>: the session answers
            # unsupported-stanza-type, as Prosody does.
            return None
        elif name == "r":
            managed.onRequest()
        elif name == "a":
            managed.onAck(element)
        else:
            return None
        return True

    def sessionLost(self, session, xs, reason):
        """
        Keep a resumable session whose stream dropped.
        """
        managed = session.sm
        if managed is None or managed.id is None or managed.finished:
            return None
        # A stream closed at the XMPP level, by either side, or ended by a
        # stream error is over for good; one that went silent (the
        # connection-timeout stream error) or whose connection dropped (a
        # TCP connection closed without the footer, a client process that
        # died) may be resumed.
        if getattr(xs, "closed", False) and getattr(xs, "streamError", None) != "connection-timeout":
            return None
        timeout = self.timeout
        if timeout <= 0:
            return None
        managed.hibernate(timeout)
        self.server.stats["sm_detached"] += 1
        self.log.info(
            "{jid} lost its stream; resumable for {timeout}s ({count} unacknowledged)",
            jid=session.jid.full(),
            timeout=timeout,
            count=len(managed.queue),
        )
        return True

    def sessionEnded(self, session):
        """
        A session ends, whatever the reason: it is no longer resumable
        and its unacknowledged stanzas are handed on.
        """
        managed = session.sm
        if managed is None:
            return None
        if managed.id is not None:
            if self.resumable.get(managed.id) is managed:
                del self.resumable[managed.id]
            self._expired[managed.id] = (session.jid.userhost(), managed.handled % _MODULUS)
            while len(self._expired) > EXPIRED_KEPT:
                self._expired.popitem(last=False)
        managed.finish()
        return None

    # Enabling

    def _enable(self, session, element):
        if session.sm is not None:
            session.write(_failed("unexpected-request"))
            return
        resumptionId = None
        if (
            element.getAttribute("resume") in ("true", "1")
            and self.timeout > 0
            and not session.anonymous
        ):
            resumptionId = secrets.token_urlsafe(18)
        enabled = domish.Element((NS_SM, "enabled"))
        if resumptionId is not None:
            enabled["id"] = resumptionId
            enabled["resume"] = "true"
            enabled["max"] = str(int(self.timeout))
        session.write(enabled)
        managed = ManagedSession(self, session, resumptionId)
        session.sm = managed
        if resumptionId is not None:
            self.resumable[resumptionId] = managed
        self.log.debug(
            "{jid} enabled stream management (resumable: {resumable})",
            jid=session.jid.full(),
            resumable=resumptionId is not None,
        )

    # Resuming

    def _resume(self, xs, element):
        authenticator = xs.authenticator
        previd = element.getAttribute("previd")
        h = _parseCount(element.getAttribute("h"))
        if not previd or h is None:
            xs.send(_failed("bad-request"))
            return
        # Both are prepared already, by SASL and the stream header.
        account = "%s@%s" % (authenticator.username, authenticator.domain)
        managed = self.resumable.get(previd)
        if managed is None or managed.session.jid.userhost() != account:
            expired = self._expired.get(previd)
            if expired is not None and expired[0] == account:
                del self._expired[previd]
                xs.send(_failed("item-not-found", expired[1]))
            else:
                xs.send(_failed("item-not-found"))
            self.log.info(
                "{peer} tried to resume an unknown or expired session",
                peer=xs.transport.getPeer(),
            )
            return
        if not managed.acknowledge(h):
            self.log.warn(
                "{jid}: resumption acknowledged {h} stanzas, but only {sent} were sent",
                jid=managed.session.jid.full(),
                h=h,
                sent=managed.sent % _MODULUS,
            )
            xs.send(_failed("undefined-condition", managed.handled % _MODULUS))
            return
        authenticator.session = managed.session
        managed.resumeOn(xs)
        self.server.stats["sm_resumed"] += 1
        self.log.info(
            "{peer} resumed {jid} ({count} stanzas sent again)",
            peer=xs.transport.getPeer(),
            jid=managed.session.jid.full(),
            count=len(managed.queue),
        )

    # Ending sessions

    def closeSession(self, session, streamError):
        """
        End a session on the server's initiative, with a stream error on
        its stream if it has one.
        """
        xs = session.xs
        if session.sm is not None:
            # Whatever happens to the stream now, this is no drop.
            self.resumable.pop(session.sm.id, None)
        self.server.endSession(session)
        if xs is not None and xs.transport is not None:
            xs.sendStreamError(streamError)

    def undeliverable(self, session, stanza):
        """
        Dispose of a stanza sent to a session that ended before the client
        acknowledged it: store it offline, or return it to its sender.
        """
        if stanza.getAttribute("type") == "error":
            return
        if stanza.name == "presence":
            return
        own = jids.bare(session.jid)
        sender = stanza.getAttribute("from")
        try:
            sender = jids.parse(sender) if sender else None
        except jids.JIDMalformed:
            sender = None
        fromSelf = sender is not None and jids.bare(sender) == own
        if stanza.name == "message":
            messageType = stanza.getAttribute("type", "normal")
            if messageType == "headline":
                return
            if messageType in ("normal", "chat"):
                if self.server.fire("message/offline", stanza, own):
                    return
        if fromSelf:
            return
        self.server.bounce(stanza, "recipient-unavailable", "wait")


def _failed(condition, h=None):
    failed = domish.Element((NS_SM, "failed"))
    if h is not None:
        failed["h"] = str(h)
    failed.addElement((NS_STANZAS, condition))
    return failed


def _delayed(stanza, queued, domain):
    """
    C{stanza} as sent again after resumption: a copy with a XEP-0203
    delay stamp for messages and presence that have none.
    """
    if stanza.name == "iq" or any(True for _ in stanza.elements(NS_DELAY, "delay")):
        return stanza
    stamp = datetime.datetime.fromtimestamp(queued, datetime.timezone.utc)
    copy = copyStanza(stanza)
    copy.addChild(Delay(stamp, domain).toElement())
    return copy


def install(server):
    """
    Offer stream management on client streams.

    @return: the L{StreamManagement} state.
    """
    sm = StreamManagement(server)
    server.on("features/authenticated", sm.addFeature)
    server.on("stream/authenticated", sm.beforeBind)
    server.on("stream/session", sm.onSessionElement)
    server.on("session/lost", sm.sessionLost)
    # First, so that no other handler can stop it.
    server.on("session/ended", sm.sessionEnded, priority=100)
    return sm
