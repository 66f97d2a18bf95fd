# -*- test-case-name: tests.test_muc_join -*-
"""
Presence in rooms: creating a room, entering it (XEP-0045 sections 7.2
and 10.1), changing nickname (7.6) or availability (7.7), leaving it
(7.14), and the presence the room sends whenever an occupant comes,
changes or goes -- including being removed by a moderator, an admin,
an error or the service going down.

Each occupant's presence is sent to every session of every other
occupant, with the occupant's real JID only to those allowed to see it
(moderators in a semi-anonymous room, everyone in a non-anonymous one),
and a XEP-0421 occupant id; each session of the occupant itself gets its
own presence back with status code 110.
"""

from twisted.logger import Logger
from twisted.words.xish import domish

from xmppws.c2s import jid as jidlib
from xmppws.muc.namespaces import (
    NS_MUC,
    NS_MUC_USER,
    NS_OCCUPANT_ID,
    STANZA_NAMESPACES,
)
from xmppws.muc.room import Occupant
from xmppws.muc.stanzas import copyElement, delayElement, parseStamp, parseStored

__all__ = [
    "broadcast",
    "create",
    "handlePresence",
    "removeOccupant",
    "removeSession",
    "sendOccupantList",
    "storedPresence",
]

log = Logger()

# Children of a client's presence the room does not pass on: the MUC
# extensions (the join request with its password, or forged room data)
# and occupant ids.
_NOT_REFLECTED = (
    (NS_MUC, None),
    (NS_MUC_USER, None),
    (NS_OCCUPANT_ID, None),
)


def storedPresence(stanza):
    """
    What the room keeps of a session's presence and shows to others:
    a copy without addresses and without the MUC extensions.
    """
    presence = copyElement(stanza, drop=_NOT_REFLECTED)
    for attribute in ("from", "to", "type"):
        presence.attributes.pop(attribute, None)
    return presence


def _mucX(stanza):
    for child in stanza.elements():
        if child.uri == NS_MUC and child.name == "x":
            return child
    return None


def _childText(element, uri, name):
    for child in element.elements():
        if child.uri == uri and child.name == name:
            return str(child)
    return None


# Building presence


def _presence(muc, room, occupant, base, to, unavailable, codes, jid, role, nick=None,
              actorNick=None, reason=None, destroy=None):
    presence = copyElement(base)
    presence["from"] = room.occupantJID(occupant.nick).full()
    presence["to"] = to
    if unavailable:
        presence["type"] = "unavailable"
    else:
        presence.attributes.pop("type", None)
    x = presence.addElement((NS_MUC_USER, "x"))
    item = x.addElement("item")
    item["affiliation"] = room.affiliation(occupant.bare)
    item["role"] = role
    if jid is not None:
        item["jid"] = jid
    if nick is not None:
        item["nick"] = nick
    if actorNick is not None:
        item.addElement("actor")["nick"] = actorNick
    if reason:
        item.addElement("reason", content=reason)
    if destroy is not None:
        x.addChild(destroy)
    for code in sorted(set(codes)):
        x.addElement("status")["code"] = code
    if muc.settings.occupantIds:
        presence.addElement((NS_OCCUPANT_ID, "occupant-id"))["id"] = room.occupantId(occupant.bare)
    return presence


def _primaryJID(occupant):
    return next(iter(occupant.sessions))


def broadcast(muc, room, occupant, codes=(), selfCodes=(), unavailable=False, base=None,
              nick=None, actorNick=None, reason=None, destroy=None, toOthers=True, toSelf=True):
    """
    Send an occupant's presence to the room.

    @param codes: status codes for everyone.
    @param selfCodes: more status codes for the occupant's own sessions
        (110 is always added there).
    @param unavailable: send unavailable presence with role C{none}.
    @param base: the presence to show, if not the occupant's current one.
    @param nick: the new nickname, for a nickname change (303).
    @param actorNick, reason: who removed the occupant, and why.
    @param destroy: a C{<destroy/>} element, when the room is destroyed.
    """
    role = "none" if unavailable else occupant.role
    shown = base if base is not None else occupant.presence
    if toOthers:
        primary = _primaryJID(occupant)
        for other in list(room.occupants.values()):
            if other is occupant:
                continue
            seesJID = room.canSeeJIDs(other) or other.bare == occupant.bare
            for session in list(other.sessions):
                muc.send(
                    _presence(
                        muc, room, occupant, shown, session, unavailable, codes,
                        primary if seesJID else None, role, nick, actorNick, reason,
                        _copy(destroy),
                    )
                )
    if toSelf:
        for session, own in list(occupant.sessions.items()):
            muc.send(
                _presence(
                    muc, room, occupant, base if base is not None else own, session,
                    unavailable, tuple(codes) + tuple(selfCodes) + ("110",), session, role,
                    nick, actorNick, reason, _copy(destroy),
                )
            )


def _copy(element):
    return None if element is None else copyElement(element)


def sendOccupantList(muc, room, session, skip=None):
    """
    Send a session the presence of every occupant (but C{skip}).
    """
    viewer = room.occupantOf(session)
    for other in list(room.occupants.values()):
        if other is skip:
            continue
        seesJID = viewer is not None and (room.canSeeJIDs(viewer) or other.bare == viewer.bare)
        muc.send(
            _presence(
                muc, room, other, other.presence, session, False, (),
                _primaryJID(other) if seesJID else None, other.role,
            )
        )


def _sendHistoryAndSubject(muc, room, session, x):
    """
    Send a newcomer the discussion history it asked for, then the subject
    (XEP-0045 sections 7.2.13 to 7.2.16).
    """
    limits = _historyLimits(x)
    for entry in room.historyFor(muc.now(), **limits):
        try:
            message = parseStored(entry.xml)
        except domish.ParserError:
            log.failure("Unreadable history message in {room}", room=room.jid.full())
            continue
        message["to"] = session
        message.addChild(delayElement(room.jid.full(), entry.stamp))
        muc.send(message)
    subject = domish.Element((None, "message"))
    subject["type"] = "groupchat"
    subject["to"] = session
    if room.subjectNick is not None:
        subject["from"] = room.occupantJID(room.subjectNick).full()
    else:
        subject["from"] = room.jid.full()
    subject["id"] = muc.newId()
    subject.addElement("subject", content=room.subject)
    if room.subjectStamp is not None:
        subject.addChild(delayElement(room.jid.full(), room.subjectStamp))
    muc.send(subject)


def _historyLimits(x):
    limits = {}
    if x is None:
        return limits
    history = None
    for child in x.elements():
        if child.uri == NS_MUC and child.name == "history":
            history = child
            break
    if history is None:
        return limits
    for name in ("maxstanzas", "maxchars", "seconds"):
        value = history.getAttribute(name)
        if value is not None:
            try:
                number = int(value.strip())
            except ValueError:
                continue
            if number >= 0:
                limits[name] = number
    since = history.getAttribute("since")
    if since is not None:
        try:
            limits["since"] = parseStamp(since)
        except ValueError:
            pass
    return limits


# Entering


def _joinError(muc, room, stanza, sender, nick, x):
    """
    Why C{sender} may not enter as C{nick}, or L{None}.

    @return: C{(condition, type, text)} or L{None}.
    """
    bare = jidlib.bare(sender)
    affiliation = room.affiliation(bare)
    if room.isLocked(muc.now()) and affiliation != "owner":
        return ("item-not-found", "cancel", "This room is not configured yet.")
    if affiliation == "outcast":
        return ("forbidden", "auth", "You are banned from this room.")
    if room.config.membersOnly and affiliation == "none":
        return ("registration-required", "auth", "This room is for members only.")
    if room.config.password:
        given = _childText(x, NS_MUC, "password") if x is not None else None
        if given != room.config.password:
            return ("not-authorized", "auth", "A password is required to enter this room.")
    holder = room.occupants.get(nick)
    if holder is not None and holder.bare != bare:
        return ("conflict", "cancel", "That nickname is already in use.")
    reserver = room.reservedBy(nick)
    if reserver is not None and reserver != bare.userhost():
        return ("conflict", "cancel", "That nickname is reserved.")
    if holder is None and affiliation not in ("owner", "admin"):
        if len(room.occupants) >= room.config.maxUsers:
            return ("service-unavailable", "wait", "This room is full.")
    return None


def _nickError(nick):
    if not nick.strip():
        return ("not-allowed", "modify", "Invisible nicknames are not allowed.")
    return None


def create(muc, stanza, sender, to):
    """
    Create a room for the sender of a join request (XEP-0045 section
    10.1.1): it owns the room, which stays locked until configured.
    """
    problem = _nickError(to.resource)
    if problem is None:
        limit = muc.settings.maxRoomsPerUser
        if limit and muc.roomsOwnedBy(sender) >= limit:
            problem = (
                "not-allowed",
                "cancel",
                "You already own %d rooms, the most allowed." % (limit,),
            )
    if problem is not None:
        muc.error(stanza, problem[0], problem[1], by=to.userhost(), text=problem[2])
        return
    room = muc.newRoom(to.user, sender)
    x = _mucX(stanza)
    password = _childText(x, NS_MUC, "password")
    if password:
        room.config.password = password
    _enter(muc, room, stanza, sender, to.resource, x, created=True)
    if room.config.persistent:
        muc.saveRoom(room)


def _enter(muc, room, stanza, sender, nick, x, created=False):
    full = sender.full()
    occupant = room.occupants.get(nick)
    newcomer = occupant is None
    if newcomer:
        bare = jidlib.bare(sender)
        occupant = Occupant(nick, bare, room.defaultRole(room.affiliation(bare)))
    room.addSession(occupant, full, storedPresence(stanza))
    sendOccupantList(muc, room, full, skip=occupant)
    codes = []
    if room.config.whois == "anyone":
        codes.append("100")
    if created:
        codes.append("201")
    if newcomer:
        broadcast(muc, room, occupant, toSelf=False)
    _selfPresence(muc, room, occupant, full, codes)
    _sendHistoryAndSubject(muc, room, full, x)
    log.debug("{jid} entered {room} as {nick}", jid=full, room=room.jid.full(), nick=nick)


def _selfPresence(muc, room, occupant, session, codes=()):
    muc.send(
        _presence(
            muc, room, occupant, occupant.sessions[session], session, False,
            tuple(codes) + ("110",), session, occupant.role,
        )
    )


# Presence from a session


def handlePresence(muc, room, stanza, sender, nick):
    """
    Process presence to a room or to an occupant JID.

    @param nick: the nickname addressed (prepared), or L{None} for the
        room's bare JID.
    """
    kind = stanza.getAttribute("type")
    full = sender.full()
    current = room.occupantOf(full)
    if kind == "error":
        if current is not None:
            removeSession(muc, room, current, full, ("333",), reason=_errorText(stanza))
        return
    if nick is None:
        if current is None:
            if kind is None:
                muc.error(stanza, "jid-malformed", "modify", by=room.jid.full(),
                          text="A nickname is needed to enter a room.")
            return
        nick = current.nick
    if kind == "unavailable":
        if current is not None:
            _leave(muc, room, current, full, stanza)
        return
    if kind == "probe":
        if current is None:
            muc.error(stanza, "not-acceptable", "cancel", by=room.jid.full(),
                      text="You are not currently connected to this chat.")
            return
        target = room.occupants.get(nick)
        if target is not None:
            seesJID = room.canSeeJIDs(current) or target.bare == current.bare
            muc.send(
                _presence(muc, room, target, target.presence, full, False, (),
                          _primaryJID(target) if seesJID else None, target.role)
            )
        return
    if kind is not None:
        muc.error(stanza, "bad-request", "modify", by=room.jid.full())
        return
    x = _mucX(stanza)
    if current is None:
        if x is None:
            _refuseDesynchronised(muc, room, sender, nick)
            return
        problem = _nickError(nick) or _joinError(muc, room, stanza, sender, nick, x)
        if problem is not None:
            muc.error(stanza, problem[0], problem[1], by=room.jid.full(), text=problem[2])
            return
        _enter(muc, room, stanza, sender, nick, x)
    elif current.nick == nick:
        _update(muc, room, current, full, stanza, x)
    else:
        _changeNick(muc, room, current, full, stanza, nick)


def _refuseDesynchronised(muc, room, sender, nick):
    """
    Presence without the MUC extension from someone not in the room: a
    client that believes it is in (XEP-0045 section 7.2.17) is told it
    is not, with status codes 110, 307 and 333.
    """
    presence = domish.Element((None, "presence"))
    presence["from"] = room.occupantJID(nick).full()
    presence["to"] = sender.full()
    presence["type"] = "unavailable"
    x = presence.addElement((NS_MUC_USER, "x"))
    item = x.addElement("item")
    item["affiliation"] = room.affiliation(sender)
    item["role"] = "none"
    item.addElement("reason", content="You are not in the room.")
    for code in ("110", "307", "333"):
        x.addElement("status")["code"] = code
    muc.send(presence)


def _update(muc, room, occupant, full, stanza, x):
    primary = _primaryJID(occupant) == full
    occupant.sessions[full] = storedPresence(stanza)
    if x is not None:
        # A join from a session already in: it lost track (XEP-0045
        # section 7.2.1), so it gets everything a newcomer gets.
        sendOccupantList(muc, room, full, skip=occupant)
        codes = ["100"] if room.config.whois == "anyone" else []
        if primary:
            broadcast(muc, room, occupant, toSelf=False)
        _selfPresence(muc, room, occupant, full, codes)
        _sendHistoryAndSubject(muc, room, full, x)
        return
    if primary:
        broadcast(muc, room, occupant)
    else:
        _selfPresence(muc, room, occupant, full)


def _changeNick(muc, room, occupant, full, stanza, nick):
    problem = _nickError(nick)
    if problem is None and len(occupant.sessions) > 1:
        problem = (
            "not-acceptable",
            "cancel",
            "This nickname is used by more than one of your sessions; leave with the "
            "others first.",
        )
    if problem is None:
        holder = room.occupants.get(nick)
        reserver = room.reservedBy(nick)
        if holder is not None or (reserver is not None and reserver != occupant.bare.userhost()):
            problem = ("conflict", "cancel", "That nickname is already in use.")
    if problem is not None:
        muc.error(stanza, problem[0], problem[1], by=room.jid.full(), text=problem[2])
        return
    # Gone under the old nickname (303, naming the new one)...
    broadcast(muc, room, occupant, codes=("303",), unavailable=True, nick=nick,
              base=occupant.presence)
    old = occupant.nick
    del room.occupants[old]
    occupant.nick = nick
    room.occupants[nick] = occupant
    occupant.sessions[full] = storedPresence(stanza)
    # ... and here under the new one.
    broadcast(muc, room, occupant)
    log.debug("{room}: {old} is now {new}", room=room.jid.full(), old=old, new=nick)


def _leave(muc, room, occupant, full, stanza):
    base = storedPresence(stanza)
    if len(occupant.sessions) > 1:
        muc.send(
            _presence(muc, room, occupant, base, full, True, ("110",), full, "none")
        )
        room.removeSession(occupant, full)
        return
    broadcast(muc, room, occupant, unavailable=True, base=base)
    room.removeSession(occupant, full)
    muc.roomEmptied(room)


def _errorText(stanza):
    for child in stanza.elements():
        if child.name == "error" and child.uri in STANZA_NAMESPACES + ("",):
            for condition in child.elements():
                if condition.name != "text":
                    return "Kicked: %s" % (condition.name.replace("-", " "),)
    return "Kicked: presence error"


# Removing


def removeSession(muc, room, occupant, full, codes, reason=None):
    """
    Remove one session that failed (an error came back from it): it is
    the occupant's last, the occupant leaves with C{codes}.
    """
    if len(occupant.sessions) > 1:
        base = domish.Element((None, "presence"))
        muc.send(
            _presence(muc, room, occupant, base, full, True, ("110",) + tuple(codes), full,
                      "none", reason=reason)
        )
        room.removeSession(occupant, full)
        return
    removeOccupant(muc, room, occupant, codes, reason=reason)


def removeOccupant(muc, room, occupant, codes, actorNick=None, reason=None, destroy=None,
                   emptied=True):
    """
    Remove an occupant (kicked, banned, no longer a member, failed, or
    the room or the service going away): every session of it, and
    everyone else, get its unavailable presence with C{codes}.

    @param emptied: whether a temporary room left empty goes away.
    """
    base = domish.Element((None, "presence"))
    broadcast(muc, room, occupant, codes=codes, unavailable=True, base=base,
              actorNick=actorNick, reason=reason, destroy=destroy)
    room.removeOccupant(occupant)
    log.debug("{room}: {nick} removed ({codes})", room=room.jid.full(), nick=occupant.nick,
              codes=",".join(codes))
    if emptied:
        muc.roomEmptied(room)

