# -*- test-case-name: tests.test_muc_admin -*-
"""
Moderation and affiliations (XEP-0045 sections 8 and 9, and the
affiliation lists of 10.5 to 10.8): the C{muc#admin} iq -- kicking,
voice, moderator status, bans, membership, admins and owners, and the
lists of each -- and registration with a room (7.10), which reserves a
nickname and makes the user a member.

Who may do what follows XEP-0045 section 5 as Prosody applies it: a
moderator changes roles of occupants whose affiliation is not above its
own, and only admins and owners grant or revoke the moderator role;
admins change the affiliations of members, outcasts and the
unaffiliated; owners change anything but leave at least one owner.
Every item of a request is checked before any is applied, and the
result is sent once the change is stored.
"""

from twisted.internet import defer
from twisted.words.xish import domish

from xmppws.c2s import jid as jidlib
from xmppws.muc import occupants
from xmppws.muc.config import ConfigError, parseSubmission
from xmppws.muc.namespaces import NS_DATA, NS_MUC_ADMIN, NS_MUC_REGISTER, NS_MUC_USER, NS_REGISTER
from xmppws.muc.room import AFFILIATIONS, ROLES, Affiliation

__all__ = ["handleAdmin", "handleRegister", "setAffiliation", "setRole"]


class _Refused(Exception):
    def __init__(self, condition, errorType, text=None):
        Exception.__init__(self, condition)
        self.condition = condition
        self.errorType = errorType
        self.text = text


def _reply(muc, iq, room, writes, child=None):
    """
    Answer once every write is done: a result, or C{internal-server-error}.
    """

    def failed(failure):
        muc.error(iq, "internal-server-error", "wait", by=room.jid.full(),
                  text="The change could not be stored.")

    d = defer.gatherResults(writes, consumeErrors=True)
    d.addCallbacks(lambda _: muc.result(iq, child), failed)
    return d


# The muc#admin iq


def handleAdmin(muc, room, iq, sender, query):
    kind = iq.getAttribute("type")
    items = list(query.elements(NS_MUC_ADMIN, "item"))
    try:
        if not items:
            raise _Refused("bad-request", "modify", "No item.")
        if kind == "get":
            muc.result(iq, _list(room, sender, items[0]))
            return
        changes = [_parseItem(room, item) for item in items]
        _check(room, sender, changes)
    except _Refused as e:
        muc.error(iq, e.condition, e.errorType, by=room.jid.full(), text=e.text)
        return
    writes = []
    for change in changes:
        if change["affiliation"] is not None:
            writes.append(
                _applyAffiliation(muc, room, sender, change["jid"], change["affiliation"],
                                  change["reason"], change["reserve"])
            )
        else:
            _applyRole(muc, room, sender, change["occupant"], change["role"], change["reason"])
    _reply(muc, iq, room, writes)


def _parseItem(room, item):
    affiliation = item.getAttribute("affiliation")
    role = item.getAttribute("role")
    if (affiliation is None) == (role is None):
        raise _Refused("bad-request", "modify", "Give either an affiliation or a role.")
    if affiliation is not None and affiliation not in AFFILIATIONS:
        raise _Refused("not-acceptable", "modify", "Unknown affiliation.")
    if role is not None and role not in ROLES:
        raise _Refused("not-acceptable", "modify", "Unknown role.")
    target = None
    if item.getAttribute("jid") is not None:
        try:
            target = jidlib.parse(item["jid"])
        except jidlib.JIDMalformed:
            raise _Refused("jid-malformed", "modify", "Invalid JID.")
    nick = None
    if item.getAttribute("nick") is not None:
        try:
            nick = jidlib.prepResourcepart(item["nick"])
        except jidlib.JIDMalformed:
            raise _Refused("jid-malformed", "modify", "Invalid nickname.")
    reason = None
    for child in item.elements(NS_MUC_ADMIN, "reason"):
        reason = str(child)[:1000]
    change = {"affiliation": affiliation, "role": role, "reason": reason, "reserve": None}
    if affiliation is not None:
        if target is None:
            # Some clients name the occupant instead of the JID.
            if nick is None or nick not in room.occupants:
                raise _Refused("item-not-found", "cancel", "No such occupant.")
            target = room.occupants[nick].bare
        elif target.resource is not None:
            raise _Refused("jid-malformed", "modify", "A bare JID is needed.")
        elif nick is not None and affiliation in ("member", "admin", "owner"):
            change["reserve"] = nick
        change["jid"] = target.userhost()
        return change
    occupant = None
    if nick is not None:
        occupant = room.occupants.get(nick)
    elif target is not None:
        found = room.occupantsOf(jidlib.bare(target))
        occupant = found[0] if found else None
    if occupant is None:
        raise _Refused("item-not-found", "cancel", "No such occupant.")
    change["occupant"] = occupant
    return change


def _check(room, sender, changes):
    actor = room.affiliation(sender)
    owners = {jid for jid, a in room.affiliations.items() if a.affiliation == "owner"}
    for change in changes:
        if change["affiliation"] is not None:
            problem = affiliationProblem(room, actor, change["jid"], change["affiliation"])
            if problem is not None:
                raise _Refused(*problem)
            if change["affiliation"] == "owner":
                owners.add(change["jid"])
            else:
                owners.discard(change["jid"])
        else:
            problem = roleProblem(room, sender, change["occupant"], change["role"])
            if problem is not None:
                raise _Refused(*problem)
    if not owners and any(c["affiliation"] is not None for c in changes):
        raise _Refused("conflict", "cancel", "A room needs an owner.")


def affiliationProblem(room, actor, jid, affiliation):
    """
    Why an entity with affiliation C{actor} may not give C{jid} (a bare
    JID, as text) C{affiliation}, or L{None}.

    @return: C{(condition, type, text)} or L{None}.
    """
    if actor == "owner":
        return None
    if actor != "admin":
        return ("forbidden", "auth", "Only admins and owners may change affiliations.")
    current = room.affiliations.get(jid)
    current = current.affiliation if current is not None else "none"
    if affiliation in ("admin", "owner") or current in ("admin", "owner"):
        return ("not-allowed", "cancel", "Admins may not change admins or owners.")
    return None


def roleProblem(room, sender, occupant, role):
    """
    Why the sender may not give C{occupant} C{role}, or L{None}.
    """
    mine = room.occupantOf(sender.full())
    if mine is None or mine.role != "moderator":
        return ("forbidden", "auth", "Only moderators may change roles.")
    actor = AFFILIATIONS[room.affiliation(sender)]
    if actor < AFFILIATIONS[room.affiliation(occupant.bare)]:
        return ("not-allowed", "cancel", "That occupant's affiliation is higher than yours.")
    if (occupant.role == "moderator" or role == "moderator") and actor < AFFILIATIONS["admin"]:
        return ("not-allowed", "cancel", "Only admins and owners may change moderators.")
    return None


# Applying changes


def setAffiliation(muc, room, jid, affiliation, actor=None, reason=None, nick=None):
    """
    Give C{jid} (a bare JID, as text) C{affiliation}, on behalf of the
    service (no permission check), with its effects on occupants.

    @return: a L{Deferred} firing once stored.
    """
    return _applyAffiliation(muc, room, actor, jid, affiliation, reason, nick)


def _applyAffiliation(muc, room, actor, jid, affiliation, reason, reserve):
    previous = room.affiliations.get(jid)
    if affiliation == "none":
        room.affiliations.pop(jid, None)
    else:
        nick = reserve if reserve is not None else (
            previous.nick if previous is not None and affiliation != "outcast" else None
        )
        room.affiliations[jid] = Affiliation(affiliation, nick, reason)
    write = muc.saveAffiliation(room, jid)
    actorNick = None
    if actor is not None:
        mine = room.occupantOf(actor.full())
        actorNick = mine.nick if mine is not None else None
    target = jidlib.parse(jid)
    affected = room.occupantsOf(target)
    if not affected:
        _announceAffiliation(muc, room, jid, affiliation, reason)
    downgrade = AFFILIATIONS[affiliation] < AFFILIATIONS[
        previous.affiliation if previous is not None else "none"
    ]
    for occupant in affected:
        role = room.defaultRole(room.affiliation(occupant.bare))
        if role == "none":
            code = "301" if affiliation == "outcast" else "321"
            occupants.removeOccupant(muc, room, occupant, (code,), actorNick, reason)
            continue
        before = occupant.role
        if downgrade or ROLES[occupant.role] < ROLES[role]:
            occupant.role = role
        occupants.broadcast(muc, room, occupant, actorNick=actorNick, reason=reason)
        _visibilityChanged(muc, room, occupant, before)
    return write


def _announceAffiliation(muc, room, jid, affiliation, reason):
    """
    Tell the room about an affiliation change of someone not in it
    (XEP-0045 section 9.3 example), the moderators only if JIDs are
    theirs to see.
    """
    for other in list(room.occupants.values()):
        if room.config.whois != "anyone" and other.role != "moderator":
            continue
        for session in list(other.sessions):
            message = domish.Element((None, "message"))
            message["from"] = room.jid.full()
            message["to"] = session
            message["id"] = muc.newId()
            item = message.addElement((NS_MUC_USER, "x")).addElement("item")
            item["affiliation"] = affiliation
            item["jid"] = jid
            if reason:
                item.addElement("reason", content=reason)
            muc.send(message)


def setRole(muc, room, actor, occupant, role, reason=None):
    """
    Give an occupant a role on behalf of C{actor} (a full JID), if it
    may.

    @return: C{(condition, type, text)} if refused, else L{None}.
    """
    problem = roleProblem(room, actor, occupant, role)
    if problem is None:
        _applyRole(muc, room, actor, occupant, role, reason)
    return problem


def _applyRole(muc, room, actor, occupant, role, reason):
    if room.occupants.get(occupant.nick) is not occupant:
        return
    mine = room.occupantOf(actor.full()) if actor is not None else None
    actorNick = mine.nick if mine is not None else None
    if role == "none":
        occupants.removeOccupant(muc, room, occupant, ("307",), actorNick, reason)
        return
    before = occupant.role
    occupant.role = role
    occupants.broadcast(muc, room, occupant, actorNick=actorNick, reason=reason)
    _visibilityChanged(muc, room, occupant, before)


def _visibilityChanged(muc, room, occupant, before):
    """
    In a semi-anonymous room, an occupant that became or stopped being a
    moderator gets everyone's presence again, with or without real JIDs.
    """
    if room.config.whois == "anyone" or (before == "moderator") == (occupant.role == "moderator"):
        return
    if room.occupants.get(occupant.nick) is not occupant:
        return
    for session in list(occupant.sessions):
        occupants.sendOccupantList(muc, room, session, skip=occupant)


# Lists


def _list(room, sender, item):
    affiliation = item.getAttribute("affiliation")
    role = item.getAttribute("role")
    query = domish.Element((NS_MUC_ADMIN, "query"))
    if affiliation is not None and role is None:
        if affiliation not in AFFILIATIONS or affiliation == "none":
            raise _Refused("bad-request", "modify", "Unknown affiliation.")
        actor = AFFILIATIONS[room.affiliation(sender)]
        allowed = (actor >= AFFILIATIONS["admin"] and actor >= AFFILIATIONS[affiliation]) or (
            room.config.membersOnly and room.config.whois == "anyone"
            and actor >= AFFILIATIONS["member"] and affiliation != "outcast"
        )
        if not allowed:
            raise _Refused("forbidden", "auth", "You may not see that list.")
        for jid, entry in room.withAffiliation(affiliation):
            element = query.addElement("item")
            element["affiliation"] = affiliation
            element["jid"] = jid
            if entry.nick and affiliation != "outcast":
                element["nick"] = entry.nick
            if entry.reason:
                element.addElement("reason", content=entry.reason)
        return query
    if role is not None and affiliation is None:
        if role not in ROLES or role == "none":
            raise _Refused("bad-request", "modify", "Unknown role.")
        mine = room.occupantOf(sender.full())
        if mine is None or mine.role != "moderator":
            raise _Refused("forbidden", "auth", "Only moderators may see that list.")
        for nick in sorted(room.occupants):
            occupant = room.occupants[nick]
            if occupant.role != role:
                continue
            element = query.addElement("item")
            element["nick"] = nick
            element["role"] = role
            element["affiliation"] = room.affiliation(occupant.bare)
            element["jid"] = next(iter(occupant.sessions))
        return query
    raise _Refused("bad-request", "modify", "Give either an affiliation or a role.")


# Registration (XEP-0045 section 7.10)


def handleRegister(muc, room, iq, sender, query):
    kind = iq.getAttribute("type")
    roomJID = room.jid.full()
    bare = jidlib.bare(sender)
    affiliation = room.affiliation(bare)
    if affiliation == "outcast":
        muc.error(iq, "forbidden", "auth", by=roomJID)
        return
    if affiliation == "none":
        muc.error(iq, "registration-required", "auth", by=roomJID,
                  text="Only members may register a nickname in this room.")
        return
    registered = room.reservedNick(bare)
    if kind == "get":
        reply = domish.Element((NS_REGISTER, "query"))
        if registered is not None:
            reply.addElement("registered")
            reply.addElement("username", content=registered)
        else:
            reply.addElement("instructions", content="Choose the nickname to reserve in this room.")
            x = reply.addElement((NS_DATA, "x"))
            x["type"] = "form"
            x.addElement("title", content="Nickname registration")
            formType = x.addElement("field")
            formType["type"] = "hidden"
            formType["var"] = "FORM_TYPE"
            formType.addElement("value", content=NS_MUC_REGISTER)
            field = x.addElement("field")
            field["type"] = "text-single"
            field["var"] = "muc#register_roomnick"
            field["label"] = "Nickname"
            field.addElement("required")
        muc.result(iq, reply)
        return
    if any(True for _ in query.elements(NS_REGISTER, "remove")):
        if affiliation == "member":
            write = _applyAffiliation(muc, room, None, bare.userhost(), "none", None, None)
        else:
            room.affiliations[bare.userhost()].nick = None
            write = muc.saveAffiliation(room, bare.userhost())
        _reply(muc, iq, room, [write])
        return
    form = None
    for child in query.elements(NS_DATA, "x"):
        form = child
    if form is None:
        muc.error(iq, "bad-request", "modify", by=roomJID, text="Missing data form.")
        return
    try:
        values = parseSubmission(form, NS_MUC_REGISTER)
        nick = jidlib.prepResourcepart((values.get("muc#register_roomnick") or [""])[0])
    except ConfigError as e:
        muc.error(iq, "bad-request", "modify", by=roomJID, text=e.text)
        return
    except jidlib.JIDMalformed:
        muc.error(iq, "bad-request", "modify", by=roomJID, text="Invalid nickname.")
        return
    if not nick.strip():
        muc.error(iq, "bad-request", "modify", by=roomJID, text="Invalid nickname.")
        return
    holder = room.occupants.get(nick)
    reserver = room.reservedBy(nick)
    if (holder is not None and holder.bare != bare) or (
        reserver is not None and reserver != bare.userhost()
    ):
        muc.error(iq, "conflict", "cancel", by=roomJID)
        return
    entry = room.affiliations[bare.userhost()]
    entry.nick = nick
    _reply(muc, iq, room, [muc.saveAffiliation(room, bare.userhost())])
