# -*- test-case-name: tests.test_muc_messages -*-
"""
Messages in rooms: groupchat messages reflected to every occupant
(XEP-0045 section 7.4) with the room's XEP-0359 stanza id and the
sender's XEP-0421 occupant id, the subject (8.1), private messages
(7.5), mediated invitations and declines (7.8.2), voice requests
(7.13, 8.6), and iqs to an occupant JID: XEP-0410 self-pings answered
by the room, other requests passed to the occupant (7.7 note, 17.4).

A message error from an occupant's session (a delivery failure of
something the room sent it) removes that session, with status code 333,
as XEP-0045 section 16.1 allows; other errors are dropped.
"""

from twisted.words.xish import domish

from xmppws.c2s import jid as jidlib
from xmppws.muc import admin, occupants
from xmppws.muc.config import ConfigError, parseSubmission
from xmppws.muc.namespaces import (
    NS_CONFERENCE,
    NS_DATA,
    NS_HINTS,
    NS_MUC_REQUEST,
    NS_MUC_USER,
    NS_OCCUPANT_ID,
    NS_PING,
    NS_SID,
    NS_STANZAS,
    NS_VCARD,
    STANZA_NAMESPACES,
)
from xmppws.muc.room import HistoryEntry
from xmppws.muc.stanzas import copyElement, firstChild, isServiceOwned

__all__ = ["KICKABLE", "announce", "iqToOccupant", "toOccupant", "toRoom"]

#: Error conditions from an occupant's session that mean it is gone
#: (XEP-0045 section 17.1.3, and Prosody's list).
KICKABLE = frozenset(
    {
        "gone",
        "internal-server-error",
        "item-not-found",
        "jid-malformed",
        "recipient-unavailable",
        "redirect",
        "remote-server-not-found",
        "remote-server-timeout",
        "service-unavailable",
    }
)

# Iq requests passed to occupants and not yet answered, per room.
MAX_PROXIED = 256

_NOT_CONNECTED = "You are not currently connected to this chat."


def _errorCondition(stanza):
    for child in stanza.elements():
        if child.name == "error" and child.uri in STANZA_NAMESPACES + ("",):
            for condition in child.elements():
                if condition.uri == NS_STANZAS and condition.name != "text":
                    return condition.name
    return None


def _kickIfGone(muc, room, stanza, sender):
    """
    An error from an occupant's session: remove the session if it says
    the session is gone.
    """
    occupant = room.occupantOf(sender.full())
    condition = _errorCondition(stanza)
    if occupant is None or (condition is not None and condition not in KICKABLE):
        return
    occupants.removeSession(
        muc, room, occupant, sender.full(), ("333",),
        reason="Kicked: %s" % ((condition or "message error").replace("-", " "),),
    )


def _tooBig(muc, stanza):
    return len(stanza.toXml().encode("utf-8")) > muc.settings.maxMessageSize


def _isHistoric(message):
    """
    Whether a groupchat message is kept for newcomers: it has a body (or
    encrypted content) and no XEP-0334 hint against storing it.
    """
    keep = False
    for child in message.elements():
        if child.uri == NS_HINTS:
            if child.name in ("no-store", "no-permanent-store"):
                return False
            if child.name == "store":
                keep = True
        elif child.name == "body" and child.uri is None:
            keep = True
        elif child.uri == "urn:xmpp:eme:0" and child.name == "encryption":
            keep = True
    return keep


# To the room


def toRoom(muc, room, stanza, sender):
    """
    A message to the room's bare JID.
    """
    kind = stanza.getAttribute("type", "normal")
    if kind == "groupchat":
        _groupchat(muc, room, stanza, sender)
    elif kind == "error":
        _kickIfGone(muc, room, stanza, sender)
    else:
        x = firstChild(stanza, NS_MUC_USER, "x")
        form = firstChild(stanza, NS_DATA, "x")
        if x is not None and any(
            child.name in ("invite", "decline") for child in x.elements(NS_MUC_USER)
        ):
            _invitations(muc, room, stanza, sender, x)
        elif form is not None and _formType(form) == NS_MUC_REQUEST:
            _voiceRequest(muc, room, stanza, sender, form)
        else:
            muc.error(stanza, "bad-request", "modify", by=room.jid.full(),
                      text="Messages to a room must be of type groupchat.")


def _groupchat(muc, room, stanza, sender):
    occupant = room.occupantOf(sender.full())
    roomJID = room.jid.full()
    if occupant is None:
        muc.error(stanza, "not-acceptable", "cancel", by=roomJID, text=_NOT_CONNECTED)
        return
    if occupant.role == "visitor":
        muc.error(stanza, "forbidden", "auth", by=roomJID,
                  text="You do not have permission to speak in this room.")
        return
    if _tooBig(muc, stanza):
        muc.error(stanza, "policy-violation", "modify", by=roomJID,
                  text="The message is larger than %d bytes." % (muc.settings.maxMessageSize,))
        return
    subject = firstChild(stanza, None, "subject")
    if subject is not None and firstChild(stanza, None, "body") is None and (
        firstChild(stanza, None, "thread") is None
    ):
        _changeSubject(muc, room, stanza, occupant, str(subject))
        return
    message = domish.Element((None, "message"))
    message["type"] = "groupchat"
    message["from"] = room.occupantJID(occupant.nick).full()
    message["id"] = stanza.getAttribute("id") or muc.newId()
    lang = stanza.getAttribute(("http://www.w3.org/XML/1998/namespace", "lang"))
    if lang:
        message[("http://www.w3.org/XML/1998/namespace", "lang")] = lang
    for child in stanza.elements():
        if not isServiceOwned(child, roomJID):
            message.addChild(copyElement(child))
    if muc.settings.occupantIds:
        message.addElement((NS_OCCUPANT_ID, "occupant-id"))["id"] = room.occupantId(occupant.bare)
    if _isHistoric(message):
        stanzaId = message.addElement((NS_SID, "stanza-id"))
        stanzaId["id"] = muc.newStanzaId(room)
        stanzaId["by"] = roomJID
        muc.keepHistory(
            room,
            HistoryEntry(stanzaId["id"], muc.now(), occupant.nick, occupant.bare.userhost(),
                         message.toXml()),
        )
    _toEveryone(muc, room, message)


def _toEveryone(muc, room, message):
    """
    Send a copy of C{message} to every session of every occupant.
    """
    for other in list(room.occupants.values()):
        for session in list(other.sessions):
            copy = copyElement(message)
            copy["to"] = session
            muc.send(copy)


def _changeSubject(muc, room, stanza, occupant, text):
    allowed = occupant.role == "moderator" or (
        occupant.role == "participant" and room.config.changeSubject
    )
    if not allowed:
        muc.error(stanza, "forbidden", "auth", by=room.jid.full(),
                  text="You are not allowed to change the subject of this room.")
        return
    room.subject = text
    room.subjectNick = occupant.nick
    room.subjectStamp = muc.now()
    message = domish.Element((None, "message"))
    message["type"] = "groupchat"
    message["from"] = room.occupantJID(occupant.nick).full()
    message["id"] = stanza.getAttribute("id") or muc.newId()
    message.addElement("subject", content=text)
    if muc.settings.occupantIds:
        message.addElement((NS_OCCUPANT_ID, "occupant-id"))["id"] = room.occupantId(occupant.bare)
    _toEveryone(muc, room, message)
    if room.stored:
        muc.saveRoom(room)


def announce(muc, room, codes, toOccupants=None):
    """
    Tell the room something about itself with status codes (XEP-0045
    section 10.2.1: configuration changes).
    """
    message = domish.Element((None, "message"))
    message["type"] = "groupchat"
    message["from"] = room.jid.full()
    message["id"] = muc.newId()
    x = message.addElement((NS_MUC_USER, "x"))
    for code in codes:
        x.addElement("status")["code"] = code
    for other in list(room.occupants.values()) if toOccupants is None else toOccupants:
        for session in list(other.sessions):
            copy = copyElement(message)
            copy["to"] = session
            muc.send(copy)


# Invitations


def _invitations(muc, room, stanza, sender, x):
    roomJID = room.jid.full()
    inviter = room.occupantOf(sender.full())
    affiliation = room.affiliation(sender)
    for child in x.elements(NS_MUC_USER):
        if child.name not in ("invite", "decline"):
            continue
        try:
            target = jidlib.parse(child.getAttribute("to", ""))
        except jidlib.JIDMalformed:
            muc.error(stanza, "jid-malformed", "modify", by=roomJID)
            return
        reason = None
        for part in child.elements(NS_MUC_USER, "reason"):
            reason = str(part)
        if child.name == "decline":
            _decline(muc, room, sender, target, reason)
            continue
        role = inviter.role if inviter is not None else room.defaultRole(affiliation)
        if role in ("none", "visitor"):
            muc.error(stanza, "forbidden", "auth", by=roomJID,
                      text="You may not invite anyone to this room.")
            return
        if room.config.membersOnly:
            needed = ("member", "admin", "owner") if room.config.allowInvites else ("admin", "owner")
            if affiliation not in needed:
                muc.error(stanza, "forbidden", "auth", by=roomJID,
                          text="Only admins may invite to this members-only room.")
                return
        _invite(muc, room, sender, inviter, target, reason)


def _invite(muc, room, sender, inviter, target, reason):
    roomJID = room.jid.full()
    invitee = jidlib.bare(target)
    inviterJID = sender.full()
    if room.config.whois == "moderators" and inviter is not None:
        if room.defaultRole(room.affiliation(invitee)) != "moderator":
            inviterJID = room.occupantJID(inviter.nick).full()
    message = domish.Element((None, "message"))
    message["from"] = roomJID
    message["to"] = target.full()
    message["id"] = muc.newId()
    x = message.addElement((NS_MUC_USER, "x"))
    invite = x.addElement("invite")
    invite["from"] = inviterJID
    if reason:
        invite.addElement("reason", content=reason)
    if room.config.password:
        x.addElement("password", content=room.config.password)
    conference = message.addElement((NS_CONFERENCE, "x"), content=reason or "")
    conference["jid"] = roomJID
    message.addElement(
        "body",
        content="%s invited you to the room %s%s"
        % (inviterJID, roomJID, " (%s)" % (reason,) if reason else ""),
    )
    if room.config.membersOnly and room.affiliation(invitee) == "none":
        admin.setAffiliation(muc, room, invitee.userhost(), "member",
                             reason="Invited by %s" % (sender.userhost(),))
    muc.send(message)


def _decline(muc, room, sender, target, reason):
    roomJID = room.jid.full()
    message = domish.Element((None, "message"))
    message["from"] = roomJID
    message["id"] = muc.newId()
    x = message.addElement((NS_MUC_USER, "x"))
    decline = x.addElement("decline")
    decline["from"] = sender.full()
    if reason:
        decline.addElement("reason", content=reason)
    message.addElement(
        "body",
        content="%s declined your invitation to the room %s%s"
        % (sender.userhost(), roomJID, " (%s)" % (reason,) if reason else ""),
    )
    if target.userhost() == roomJID and target.resource in room.occupants:
        for session in room.occupants[target.resource].sessions:
            copy = copyElement(message)
            copy["to"] = session
            muc.send(copy)
    else:
        message["to"] = target.full()
        muc.send(message)


# Voice requests


def _formType(form):
    for field in form.elements(NS_DATA, "field"):
        if field.getAttribute("var") == "FORM_TYPE":
            for value in field.elements(NS_DATA, "value"):
                return str(value)
    return None


def _voiceRequest(muc, room, stanza, sender, form):
    """
    A visitor asks for voice (XEP-0045 section 7.13): the moderators get
    a form; a moderator's answer (section 8.6) grants it.
    """
    roomJID = room.jid.full()
    occupant = room.occupantOf(sender.full())
    if occupant is None:
        muc.error(stanza, "not-acceptable", "cancel", by=roomJID, text=_NOT_CONNECTED)
        return
    try:
        values = parseSubmission(form, NS_MUC_REQUEST)
    except ConfigError as e:
        muc.error(stanza, e.condition, "modify", by=roomJID, text=e.text)
        return
    if occupant.role == "moderator":
        allow = (values.get("muc#request_allow") or ["false"])[0].strip().lower()
        nick = (values.get("muc#roomnick") or [""])[0]
        if allow in ("1", "true") and nick in room.occupants:
            problem = admin.setRole(muc, room, sender, room.occupants[nick], "participant",
                                    "Voice granted")
            if problem is not None:
                muc.error(stanza, problem[0], problem[1], by=roomJID)
        return
    if occupant.role != "visitor":
        return
    request = domish.Element((None, "message"))
    request["from"] = roomJID
    request["id"] = muc.newId()
    x = request.addElement((NS_DATA, "x"))
    x["type"] = "form"
    x.addElement("title", content="Voice request")
    x.addElement("instructions", content="Grant voice to %s?" % (occupant.nick,))
    fields = (
        ("hidden", "FORM_TYPE", NS_MUC_REQUEST, "Form type"),
        ("list-single", "muc#role", "participant", "Requested role"),
        ("jid-single", "muc#jid", sender.full(), "User ID"),
        ("text-single", "muc#roomnick", occupant.nick, "Room nickname"),
        ("boolean", "muc#request_allow", "false", "Grant voice to this person?"),
    )
    for kind, var, value, label in fields:
        field = x.addElement("field")
        field["type"] = kind
        field["var"] = var
        field["label"] = label
        field.addElement("value", content=value)
    for other in list(room.occupants.values()):
        if other.role != "moderator":
            continue
        for session in list(other.sessions):
            copy = copyElement(request)
            copy["to"] = session
            muc.send(copy)


# To an occupant


def toOccupant(muc, room, stanza, sender, nick):
    """
    A message to an occupant JID: a private message (XEP-0045 section
    7.5), or an error from an occupant's session.
    """
    roomJID = room.jid.full()
    kind = stanza.getAttribute("type", "normal")
    if kind == "error":
        _kickIfGone(muc, room, stanza, sender)
        return
    occupant = room.occupantOf(sender.full())
    if occupant is None:
        muc.error(stanza, "not-acceptable", "cancel", by=roomJID, text=_NOT_CONNECTED)
        return
    if kind == "groupchat":
        muc.error(stanza, "bad-request", "modify", by=roomJID,
                  text="Private messages must not be of type groupchat.")
        return
    target = room.occupants.get(nick)
    if target is None:
        muc.error(stanza, "item-not-found", "cancel", by=roomJID, text="Recipient not in room.")
        return
    policy = room.config.allowPM
    allowed = target.bare == occupant.bare or (
        policy == "anyone"
        or (policy == "participants" and occupant.role in ("participant", "moderator"))
        or (policy == "moderators" and occupant.role == "moderator")
    )
    if not allowed:
        muc.error(stanza, "not-allowed", "cancel", by=roomJID,
                  text="Private messages are restricted in this room.")
        return
    if _tooBig(muc, stanza):
        muc.error(stanza, "policy-violation", "modify", by=roomJID,
                  text="The message is larger than %d bytes." % (muc.settings.maxMessageSize,))
        return
    message = copyElement(stanza, drop=((NS_MUC_USER, None), (NS_OCCUPANT_ID, None)))
    message["from"] = room.occupantJID(occupant.nick).full()
    message.addElement((NS_MUC_USER, "x"))
    if muc.settings.occupantIds:
        message.addElement((NS_OCCUPANT_ID, "occupant-id"))["id"] = room.occupantId(occupant.bare)
    for session in list(target.sessions):
        copy = copyElement(message)
        copy["to"] = session
        muc.send(copy)


def iqToOccupant(muc, room, iq, sender, nick):
    """
    An iq to an occupant JID: a self-ping answered by the room (XEP-0410
    section 3.3), a request passed on to the occupant with a fresh id,
    or the answer to one passed on earlier.
    """
    roomJID = room.jid.full()
    kind = iq.getAttribute("type")
    if kind in ("result", "error"):
        _proxiedAnswer(muc, room, iq, sender, nick)
        return
    if kind not in ("get", "set"):
        muc.error(iq, "bad-request", "modify", by=roomJID)
        return
    occupant = room.occupantOf(sender.full())
    if occupant is None:
        muc.error(iq, "not-acceptable", "cancel", by=roomJID, text=_NOT_CONNECTED)
        return
    target = room.occupants.get(nick)
    if target is None:
        muc.error(iq, "item-not-found", "cancel", by=roomJID, text="Recipient not in room.")
        return
    query = iq.firstChildElement()
    if target is occupant and kind == "get" and query is not None and (
        (query.uri, query.name) == (NS_PING, "ping")
    ):
        muc.result(iq)
        return
    if query is None:
        muc.error(iq, "bad-request", "modify", by=roomJID)
        return
    session = next(iter(target.sessions))
    forwarded = copyElement(iq)
    proxyId = muc.newId()
    forwarded["id"] = proxyId
    forwarded["from"] = room.occupantJID(occupant.nick).full()
    # vCards belong to accounts: ask the account, not one of its clients.
    to = target.bare.userhost() if query.uri == NS_VCARD else session
    forwarded["to"] = to
    room.iqProxy[proxyId] = (sender.full(), iq.getAttribute("id"), to, target.nick)
    while len(room.iqProxy) > MAX_PROXIED:
        room.iqProxy.popitem(last=False)
    muc.send(forwarded)


def _proxiedAnswer(muc, room, iq, sender, nick):
    pending = room.iqProxy.get(iq.getAttribute("id", ""))
    if pending is None:
        return
    requester, originalId, askedJID, targetNick = pending
    if sender.full() != askedJID:
        return
    del room.iqProxy[iq["id"]]
    asker = room.occupantOf(requester)
    if asker is None or asker.nick != nick or targetNick not in room.occupants:
        return
    answer = copyElement(iq)
    answer["from"] = room.occupantJID(targetNick).full()
    answer["to"] = requester
    if originalId is None:
        answer.attributes.pop("id", None)
    else:
        answer["id"] = originalId
    muc.send(answer)
