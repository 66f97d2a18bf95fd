# -*- test-case-name: tests.test_muc_owner -*-
"""
The C{muc#owner} iq (XEP-0045 section 10): the configuration form, an
instant room (an empty submitted form), a reserved room or a later
configuration change (a filled-in form), cancelling the initial
configuration, and destroying a room.

A change is announced to the occupants with status codes 104, 172 or
173; making a room members-only removes the occupants who are not
members (322); making it persistent stores it, and making it temporary
forgets it.
"""

from twisted.internet import defer
from twisted.words.xish import domish

from xmppws.c2s import jid as jidlib
from xmppws.muc import messages, occupants
from xmppws.muc.config import ConfigError, parseSubmission
from xmppws.muc.namespaces import NS_DATA, NS_MUC_OWNER, NS_MUC_USER

__all__ = ["destroy", "handleOwner"]


def handleOwner(muc, room, iq, sender, query):
    roomJID = room.jid.full()
    if room.affiliation(sender) != "owner":
        muc.error(iq, "forbidden", "auth", by=roomJID, text="Only owners can configure rooms.")
        return
    if iq.getAttribute("type") == "get":
        reply = domish.Element((NS_MUC_OWNER, "query"))
        reply.addChild(room.config.form(roomJID, muc.settings))
        muc.result(iq, reply)
        return
    child = query.firstChildElement()
    if child is None:
        muc.error(iq, "bad-request", "modify", by=roomJID)
    elif (child.uri, child.name) == (NS_MUC_OWNER, "destroy"):
        _destroyRequest(muc, room, iq, child)
    elif (child.uri, child.name) == (NS_DATA, "x"):
        if child.getAttribute("type") == "cancel":
            _cancel(muc, room, iq)
        else:
            _configure(muc, room, iq, child)
    else:
        muc.error(iq, "bad-request", "modify", by=roomJID)


def _configure(muc, room, iq, form):
    roomJID = room.jid.full()
    try:
        values = parseSubmission(form)
        config, codes = room.config.apply(values, muc.settings)
    except ConfigError as e:
        muc.error(iq, e.condition, "modify", by=roomJID, text=e.text)
        return
    old = room.config
    room.config = config
    room.lockedUntil = None
    writes = [muc.saveRoom(room)]
    if config.historyLength < old.historyLength:
        writes.append(muc.trimHistory(room))
    if codes:
        messages.announce(muc, room, codes)
    if config.membersOnly and not old.membersOnly:
        for occupant in list(room.occupants.values()):
            if room.affiliation(occupant.bare) == "none":
                occupants.removeOccupant(muc, room, occupant, ("322",), emptied=False)
    if room.isEmpty():
        writes.append(muc.roomEmptied(room))

    def failed(failure):
        muc.error(iq, "internal-server-error", "wait", by=roomJID,
                  text="The configuration could not be stored.")

    d = defer.gatherResults(writes, consumeErrors=True)
    d.addCallbacks(lambda _: muc.result(iq), failed)


def _cancel(muc, room, iq):
    """
    Cancelling the initial configuration destroys the new room (XEP-0045
    section 10.1.3); later, it changes nothing.
    """
    if room.isLocked(muc.now()):
        destroy(muc, room, reason="The room's creation was cancelled.")
    muc.result(iq)


def _destroyRequest(muc, room, iq, element):
    alternate = element.getAttribute("jid")
    if alternate is not None:
        try:
            alternate = jidlib.parse(alternate).full()
        except jidlib.JIDMalformed:
            muc.error(iq, "jid-malformed", "modify", by=room.jid.full())
            return
    reason = password = None
    for child in element.elements(NS_MUC_OWNER):
        if child.name == "reason":
            reason = str(child)[:1000]
        elif child.name == "password":
            password = str(child)[:1000]
    d = destroy(muc, room, alternate, reason, password)

    def failed(failure):
        muc.error(iq, "internal-server-error", "wait", by=room.jid.full(),
                  text="The room could not be removed from storage.")

    d.addCallbacks(lambda _: muc.result(iq), failed)


def destroy(muc, room, alternate=None, reason=None, password=None):
    """
    Destroy a room (XEP-0045 section 10.9): every occupant gets
    unavailable presence with a C{<destroy/>} naming the alternate room,
    and the room and its affiliations are forgotten.

    @return: a L{Deferred} firing once storage forgot it.
    """
    element = domish.Element((NS_MUC_USER, "destroy"))
    if alternate:
        element["jid"] = alternate
    if reason:
        element.addElement("reason", content=reason)
    if password:
        element.addElement("password", content=password)
    for occupant in list(room.occupants.values()):
        occupants.removeOccupant(muc, room, occupant, (), destroy=element, emptied=False)
    muc.log.info("Room {room} destroyed", room=room.jid.full())
    return muc.forget(room)
