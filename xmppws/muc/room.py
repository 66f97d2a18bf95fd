# -*- test-case-name: tests.test_muc_join -*-
"""
The state of a room and the rules of XEP-0045 sections 5.1 and 5.2
that follow from it: occupants and their sessions, affiliations and
roles, who may do what, the subject and the discussion history.

Nothing here sends stanzas or touches storage; L{xmppws.muc.service}
and the modules it dispatches to do.
"""

import base64
import collections
import hashlib
import hmac
import os

from xmppws.c2s import jid as jidlib
from xmppws.muc.config import RoomConfig

__all__ = [
    "AFFILIATIONS",
    "ROLES",
    "Affiliation",
    "HistoryEntry",
    "Occupant",
    "Room",
    "affiliationRank",
    "roleRank",
]

AFFILIATIONS = {"outcast": -1, "none": 0, "member": 1, "admin": 2, "owner": 3}
ROLES = {"none": 0, "visitor": 1, "participant": 2, "moderator": 3}


def affiliationRank(affiliation):
    return AFFILIATIONS[affiliation]


def roleRank(role):
    return ROLES[role]


class Affiliation:
    """
    A bare JID's lasting relation to a room.

    @ivar affiliation: C{'owner'}, C{'admin'}, C{'member'} or
        C{'outcast'}.
    @ivar nick: the nickname reserved for it (XEP-0045 section 7.10),
        or L{None}.
    @ivar reason: why it was given, or L{None}.
    """

    __slots__ = ("affiliation", "nick", "reason")

    def __init__(self, affiliation, nick=None, reason=None):
        self.affiliation = affiliation
        self.nick = nick
        self.reason = reason

    def __repr__(self):
        return "<Affiliation %s nick=%r>" % (self.affiliation, self.nick)


class HistoryEntry:
    """
    A message kept for newcomers.

    @ivar stanzaId: its XEP-0359 id, stamped by the room.
    @ivar stamp: when the room received it, in seconds since the epoch.
    @ivar nick: the sender's nickname then.
    @ivar sender: the sender's real bare JID, as text.
    @ivar xml: the message as reflected, without C{to} (serialized).
    """

    __slots__ = ("stanzaId", "stamp", "nick", "sender", "xml")

    def __init__(self, stanzaId, stamp, nick, sender, xml):
        self.stanzaId = stanzaId
        self.stamp = stamp
        self.nick = nick
        self.sender = sender
        self.xml = xml


class Occupant:
    """
    One nickname in a room, held by one or more sessions of one bare JID
    (XEP-0045 section 7.2.9).

    @ivar nick: the nickname (a prepared resourcepart).
    @ivar bare: the real bare JID.
    @ivar role: C{'moderator'}, C{'participant'} or C{'visitor'}.
    @ivar sessions: each session's full JID (text) to its last presence,
        in the order they joined; the first one's presence is the one
        the room shows.
    """

    def __init__(self, nick, bare, role):
        self.nick = nick
        self.bare = bare
        self.role = role
        self.sessions = collections.OrderedDict()

    def __repr__(self):
        return "<Occupant %s (%s) %s>" % (self.nick, self.bare.full(), self.role)

    @property
    def presence(self):
        """
        The presence the room shows for this occupant.
        """
        return next(iter(self.sessions.values()))


class Room:
    """
    One room.

    @ivar jid: its bare JID.
    @ivar name: its localpart (prepared).
    @ivar config: its L{RoomConfig}.
    @ivar affiliations: bare JID (text) to L{Affiliation}.
    @ivar occupants: nickname to L{Occupant}.
    @ivar sessions: a session's full JID (text) to its L{Occupant}.
    @ivar history: the last L{HistoryEntry}s, oldest first.
    @ivar subject: the subject, or C{""}.
    @ivar subjectNick: the nickname that set it, or L{None}.
    @ivar subjectStamp: when it was set, or L{None}.
    @ivar salt: the secret behind its occupant ids (XEP-0421).
    @ivar lockedUntil: while the creator has not configured it, when it
        opens anyway (seconds since the epoch); L{None} once open.
    @ivar stored: whether it is in storage.
    """

    def __init__(self, roomJID, config=None, salt=None):
        self.jid = roomJID
        self.name = roomJID.user
        self.config = config if config is not None else RoomConfig()
        self.affiliations = {}
        self.occupants = {}
        self.sessions = {}
        self.history = collections.deque()
        self.subject = ""
        self.subjectNick = None
        self.subjectStamp = None
        self.salt = salt if salt is not None else os.urandom(32)
        self.lockedUntil = None
        self.stored = False
        self.iqProxy = collections.OrderedDict()

    def __repr__(self):
        return "<Room %s>" % (self.jid.full(),)

    def occupantJID(self, nick):
        """
        The occupant JID of a nickname in this room.
        """
        return jidlib.prepared(self.jid.user, self.jid.host, nick)

    # Affiliations and roles

    def affiliation(self, bare):
        """
        @param bare: a bare JID (or any JID: only its bare part counts).
        @return: its affiliation, C{'none'} if it has none; a ban of the
            JID's domain applies to its users too.
        """
        key = bare.userhost()
        entry = self.affiliations.get(key)
        if entry is not None:
            return entry.affiliation
        domain = self.affiliations.get(bare.host)
        if bare.user is not None and domain is not None and domain.affiliation == "outcast":
            return "outcast"
        return "none"

    def defaultRole(self, affiliation):
        """
        The role someone with C{affiliation} enters with (XEP-0045
        section 5.1.2), or C{'none'} if they may not enter.
        """
        if affiliation in ("owner", "admin"):
            return "moderator"
        if affiliation == "outcast":
            return "none"
        if affiliation == "member":
            return "participant"
        if self.config.membersOnly:
            return "none"
        return "visitor" if self.config.moderated else "participant"

    def owners(self):
        return [jid for jid, a in self.affiliations.items() if a.affiliation == "owner"]

    def withAffiliation(self, affiliation):
        """
        @return: C{(bare JID text, L{Affiliation})} pairs, sorted.
        """
        return sorted(
            (jid, a) for jid, a in self.affiliations.items() if a.affiliation == affiliation
        )

    def reservedBy(self, nick):
        """
        @return: the bare JID (text) that reserved C{nick}, or L{None}.
        """
        for jid, entry in self.affiliations.items():
            if entry.nick == nick and entry.affiliation != "outcast":
                return jid
        return None

    def reservedNick(self, bare):
        entry = self.affiliations.get(bare.userhost())
        return entry.nick if entry is not None and entry.affiliation != "outcast" else None

    def canSeeJIDs(self, occupant):
        """
        Whether C{occupant} sees the real JIDs of the others.
        """
        return self.config.whois == "anyone" or occupant.role == "moderator"

    # Occupants

    def occupantOf(self, fullJID):
        """
        @param fullJID: a session's full JID, as text.
        @return: the session's L{Occupant}, or L{None}.
        """
        return self.sessions.get(fullJID)

    def addSession(self, occupant, fullJID, presence):
        if occupant.nick not in self.occupants:
            self.occupants[occupant.nick] = occupant
        occupant.sessions[fullJID] = presence
        self.sessions[fullJID] = occupant

    def removeSession(self, occupant, fullJID):
        """
        Remove one session; the occupant goes when its last one does.

        @return: whether the occupant is gone.
        """
        occupant.sessions.pop(fullJID, None)
        self.sessions.pop(fullJID, None)
        if not occupant.sessions:
            if self.occupants.get(occupant.nick) is occupant:
                del self.occupants[occupant.nick]
            return True
        return False

    def removeOccupant(self, occupant):
        for fullJID in list(occupant.sessions):
            self.sessions.pop(fullJID, None)
        if self.occupants.get(occupant.nick) is occupant:
            del self.occupants[occupant.nick]

    def occupantsOf(self, bare):
        """
        The occupants whose real bare JID is C{bare} (or, for a domain
        JID, whose JID is in that domain).
        """
        if bare.user is None:
            return [o for o in self.occupants.values() if o.bare.host == bare.host]
        key = bare.userhost()
        return [o for o in self.occupants.values() if o.bare.userhost() == key]

    def occupantId(self, bare):
        """
        The XEP-0421 occupant id of a real bare JID: stable for this room,
        unrelated across rooms.
        """
        digest = hmac.new(self.salt, bare.userhost().encode("utf-8"), hashlib.sha256).digest()
        return base64.b64encode(digest).decode("ascii")

    # Lifecycle

    def isLocked(self, now):
        """
        Whether the room still waits for its creator's configuration;
        it opens by itself once the lock expires.
        """
        if self.lockedUntil is None:
            return False
        if now >= self.lockedUntil:
            self.lockedUntil = None
            return False
        return True

    def isEmpty(self):
        return not self.occupants

    # History

    def addHistory(self, entry):
        """
        Keep a message, forgetting the oldest beyond the configured length.
        """
        self.history.append(entry)
        self.trimHistory()

    def trimHistory(self):
        while len(self.history) > self.config.historyLength:
            self.history.popleft()

    def historyFor(self, now, maxstanzas=None, maxchars=None, seconds=None, since=None):
        """
        The messages a newcomer gets (XEP-0045 section 7.2.14): the
        smallest set meeting every limit given, oldest first.

        @param maxstanzas: at most this many messages.
        @param maxchars: at most this many characters of XML.
        @param seconds: only those of the last C{seconds} seconds.
        @param since: only those since this time (seconds since the epoch).
        @rtype: L{list} of L{HistoryEntry}
        """
        if maxstanzas is None and maxchars is None and seconds is None and since is None:
            maxstanzas = self.config.defaultHistory
        maxstanzas = self.config.historyLength if maxstanzas is None else min(
            maxstanzas, self.config.historyLength
        )
        earliest = None
        if seconds is not None:
            earliest = now - seconds
        if since is not None:
            earliest = since if earliest is None else max(earliest, since)
        chosen = []
        chars = 0
        for entry in reversed(self.history):
            if len(chosen) >= maxstanzas:
                break
            if earliest is not None and entry.stamp < earliest:
                break
            if maxchars is not None:
                chars += len(entry.xml)
                if chars > maxchars:
                    break
            chosen.append(entry)
        chosen.reverse()
        return chosen
