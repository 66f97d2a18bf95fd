# -*- test-case-name: tests.test_c2s_routing -*-
"""
A bound client session: one resource of one account, on a stream over
TCP or WebSocket.
"""

from twisted.logger import Logger
from twisted.words.protocols.jabber import error
from twisted.words.xish import domish
from twisted.words.xish import xmlstream as xishstream

from xmppws.c2s.namespaces import NS_CLIENT, NS_PING

__all__ = ["PING_EVENT", "Session"]

STANZAS = ("message", "presence", "iq")

PING_EVENT = "//event/xmppws/ping"
"""
What a connection dispatches on its stream when the client was quiet for
the ping interval and the connection has no ping of its own (TCP): a
bound session answers with an XEP-0199 ping, which the client must
answer.  (The connection's contract, C{xmppws.iwebsocket.PING_EVENT}.)
"""


class Session:
    """
    One bound resource.

    @ivar server: the server.
    @ivar xs: the stream, or L{None} while detached (waiting for stream
        management resumption).
    @ivar jid: the full JID.
    @ivar anonymous: C{True} for an ANONYMOUS login.
    @ivar presence: the last available presence broadcast, or L{None}.
    @ivar priority: its priority.
    @ivar interested: C{True} once the client fetched its roster.
    @ivar directed: JIDs this session sent directed presence to.
    @ivar carbons: C{True} when message carbons are enabled.
    @ivar sm: stream management state, or L{None}.
    @ivar ended: C{True} once the session is over.
    """

    log = Logger()
    _pings = 0

    def __init__(self, server, xs, jid, anonymous=False):
        self.server = server
        self.jid = jid
        self.anonymous = anonymous
        self.presence = None
        self.priority = 0
        self.interested = False
        self.directed = set()
        self.carbons = False
        self.sm = None
        self.ended = False
        self.xs = None
        self.attach(xs)

    def __repr__(self):
        return "<Session %s>" % (self.jid.full(),)

    @property
    def available(self):
        """
        Whether the session has sent available presence.
        """
        return self.presence is not None

    def attach(self, xs):
        """
        Use C{xs} for this session (on bind, or on resumption).
        """
        self.xs = xs
        xs.otherEntity = self.jid
        xs.addObserver("/*", self._onElement)
        xs.addObserver(xishstream.STREAM_END_EVENT, self._onStreamEnd)
        xs.addObserver(PING_EVENT, self._ping)

    def detach(self):
        """
        Stop using the current stream.
        """
        xs, self.xs = self.xs, None
        if xs is not None:
            xs.removeObserver("/*", self._onElement)
            xs.removeObserver(xishstream.STREAM_END_EVENT, self._onStreamEnd)
            xs.removeObserver(PING_EVENT, self._ping)
        return xs

    def send(self, stanza):
        """
        Send a stanza to the client, through stream management if enabled.
        """
        if self.ended:
            return
        if self.sm is not None:
            self.sm.send(stanza)
        else:
            self.write(stanza)

    def write(self, element):
        """
        Write an element on the current stream, if any.
        """
        if self.xs is not None and self.xs.transport is not None:
            self.xs.send(element)

    def _onElement(self, element):
        if getattr(element, "handled", False):
            return
        element.handled = True
        if element.uri == NS_CLIENT and element.name in STANZAS:
            if self.sm is not None:
                self.sm.received()
            try:
                self.server.fromClient(self, element)
            except Exception:
                self.log.failure("Failed to process a stanza from {jid}", jid=self.jid.full())
                self.server.bounce(element, "internal-server-error", "cancel")
            return
        if self.server.fire("stream/session", self, element):
            return
        if self.xs is not None:
            self.xs.sendStreamError(error.StreamError("unsupported-stanza-type"))

    def _ping(self, xs):
        """
        Ask the client whether it is still there (XEP-0199), through the
        session so that stream management counts the ping.
        """
        self._pings += 1
        iq = domish.Element((NS_CLIENT, "iq"))
        iq["type"] = "get"
        iq["id"] = "xmppws-ping-%d" % (self._pings,)
        iq["from"] = self.jid.host
        iq["to"] = self.jid.full()
        iq.addElement((NS_PING, "ping"))
        self.send(iq)

    def _onStreamEnd(self, reason):
        xs = self.xs
        self.detach()
        self.server.sessionLost(self, xs, reason)
