# -*- test-case-name: tests.test_c2s_ext -*-
"""
XEP-0280 message carbons (C{urn:xmpp:carbons:2}): a resource enables
them with an iq to its own account, then receives a XEP-0297 forwarded
copy of the eligible messages its account's other resources send
(C{<sent/>}) and receive (C{<received/>}).

Eligible messages (XEP-0280 section 6.1) are those of type C{chat}, and
those of type C{normal} that have a body or an IM payload (a XEP-0085
chat state, a XEP-0184 receipt, a XEP-0333 chat marker).  Never copied:
messages with C{<private xmlns='urn:xmpp:carbons:2'/>} or the XEP-0334
C{<no-copy/>} hint, carbons themselves, groupchat, headline and error
messages, and received private messages from a MUC room
(C{<x xmlns='http://jabber.org/protocol/muc#user'/>}).  A message
between two resources of one account gets the C{<sent/>} copy only.
"""

from twisted.words.xish import domish

from xmppws.c2s import jid as jids
from xmppws.c2s._stanzas import copyStanza
from xmppws.c2s.namespaces import NS_CARBONS, NS_CLIENT, NS_FORWARD, NS_HINTS

__all__ = ["Carbons", "install", "isEligible"]

NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
NS_RECEIPTS = "urn:xmpp:receipts"
NS_MARKERS = "urn:xmpp:chat-markers:0"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"

IM_PAYLOADS = (NS_CHATSTATES, NS_RECEIPTS, NS_MARKERS)


def isEligible(message):
    """
    Whether a message may be carbon-copied (XEP-0280 section 6.1).

    @type message: L{domish.Element}
    @rtype: L{bool}
    """
    messageType = message.getAttribute("type", "normal")
    if messageType not in ("chat", "normal"):
        return False
    children = list(message.elements())
    for child in children:
        if (child.uri, child.name) in (
            (NS_CARBONS, "private"),
            (NS_CARBONS, "sent"),
            (NS_CARBONS, "received"),
            (NS_HINTS, "no-copy"),
        ):
            return False
    if messageType == "chat":
        return True
    return any(
        (child.name == "body" and child.uri in (NS_CLIENT, None)) or child.uri in IM_PAYLOADS
        for child in children
    )


class Carbons:
    """
    The carbons module's state; a session's C{carbons} attribute says
    whether it enabled them.

    @ivar server: the L{xmppws.c2s.server.XMPPServer}.
    """

    discoFeatures = (NS_CARBONS,)

    def __init__(self, server):
        self.server = server

    def onAccountIQ(self, session, iq):
        """
        Enable or disable carbons for the session.
        """
        child = iq.firstChildElement()
        if child is None or child.uri != NS_CARBONS or child.name not in ("enable", "disable"):
            return None
        if iq.getAttribute("type") != "set":
            self.server.bounce(iq, "bad-request", "modify")
            return True
        session.carbons = child.name == "enable"
        session.send(self.server.reply(iq))
        return True

    def onOutgoing(self, session, stanza):
        """
        Copy an eligible message a client sends to the account's other
        resources that enabled carbons, as C{<sent/>}.

        @return: L{None}, so that routing goes on.
        """
        if stanza.name != "message" or stanza.getAttribute("to") is None:
            return None
        bare = jids.bare(session.jid)
        if not self._enabled(bare) or not isEligible(stanza):
            return None
        try:
            to = jids.ofStanza(stanza, "to")
        except jids.JIDMalformed:
            return None
        exclude = {session}
        if to == bare:
            exclude.update(_bareRecipients(self.server.sessionsOf(bare)))
        elif jids.bare(to) == bare:
            exclude.add(self.server.session(to))
        self._copy(bare, stanza, "sent", exclude)
        return None

    def onDelivered(self, message, session):
        """
        Copy an eligible message just delivered to C{session} to the
        account's other resources that enabled carbons, as
        C{<received/>}; once per message, however many resources got it.
        """
        if getattr(message, "carbonsCopied", False):
            return None
        bare = jids.bare(session.jid)
        if not self._enabled(bare) or not isEligible(message):
            return None
        message.carbonsCopied = True
        try:
            sender = jids.ofStanza(message, "from")
            to = jids.ofStanza(message, "to")
        except jids.JIDMalformed:
            return None
        if sender is None or to is None:
            return None
        if jids.bare(sender) == bare:
            return None
        if any(True for _ in message.elements(NS_MUC_USER, "x")):
            return None
        if to.resource is not None and self.server.session(to) is session:
            exclude = {session}
        else:
            exclude = set(_bareRecipients(self.server.sessionsOf(bare)))
            exclude.add(session)
        self._copy(bare, message, "received", exclude)
        return None

    def _enabled(self, bare):
        """
        Whether any resource of the account enabled carbons (most messages
        stop here).
        """
        return any(other.carbons for other in self.server.sessionsOf(bare))

    def _copy(self, bare, message, direction, exclude):
        for other in self.server.sessionsOf(bare):
            if not other.carbons or other in exclude:
                continue
            wrapper = domish.Element((NS_CLIENT, "message"))
            wrapper["from"] = bare.full()
            wrapper["to"] = other.jid.full()
            wrapper["type"] = message.getAttribute("type", "normal")
            forwarded = wrapper.addElement((NS_CARBONS, direction)).addElement(
                (NS_FORWARD, "forwarded")
            )
            forwarded.addChild(copyStanza(message))
            other.send(wrapper)


def _bareRecipients(sessions):
    """
    The sessions the server gives a message to a bare JID (RFC 6121
    section 8.5.2.1.1): the available ones of highest non-negative
    priority.
    """
    available = [s for s in sessions if s.available and s.priority >= 0]
    if not available:
        return []
    top = max(s.priority for s in available)
    return [s for s in available if s.priority == top]


def install(server):
    """
    Handle carbons iqs and copy messages to enabled resources.

    @return: the L{Carbons} state.
    """
    carbons = Carbons(server)
    server.on("iq/account", carbons.onAccountIQ)
    server.on("stanza/out", carbons.onOutgoing, priority=-100)
    server.on("message/delivered", carbons.onDelivered)
    return carbons
