# -*- test-case-name: tests.test_muc_service -*-
"""
The group chat service (XEP-0045) as a tx-xmpp L{XMPPHandler}: it takes
every stanza addressed to its domain from the component stream it is
attached to, and sends what the rooms say back on it.  The same handler
runs inside C{twistd xmppws} (L{xmppws.muc.component.InProcessComponent})
and as an external component of any server (XEP-0114,
L{xmppws.muc.component.ExternalComponent}).

This module holds the rooms, routes each stanza to what handles it --
L{xmppws.muc.occupants} (presence), L{xmppws.muc.messages},
L{xmppws.muc.admin} (C{muc#admin}, registration), L{xmppws.muc.owner}
(C{muc#owner}) -- and answers for the service itself (discovery, ping).
It also keeps storage in step with the rooms, through
L{xmppws.muc.storage.RoomStore}, and the rooms' message archives
(XEP-0313) through L{xmppws.muc.archive}.

Addresses are parsed with L{xmppws.c2s.jid}: room names are prepared as
localparts, nicknames as resourceparts, and nothing a client sends is
interned.
"""

import uuid

from twisted.internet import defer
from twisted.logger import Logger
from twisted.words.xish import domish
from tx_xmpp.subprotocols import XMPPHandler

from xmppws.c2s import jid as jidlib
from xmppws.c2s.mamquery import NS_MAM
from xmppws.muc import admin, messages, occupants, owner
from xmppws.muc.archive import RoomArchive
from xmppws.muc.config import RoomConfig
from xmppws.muc.namespaces import (
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    NS_MUC,
    NS_MUC_ADMIN,
    NS_MUC_OWNER,
    NS_MUC_SELF_PING,
    NS_MUC_STABLE_ID,
    NS_OCCUPANT_ID,
    NS_PING,
    NS_REGISTER,
    NS_VCARD,
)
from xmppws.muc.room import Affiliation, HistoryEntry, Room
from xmppws.muc.stanzas import errorReply

__all__ = ["MUCService"]

# Stanzas received while the rooms are being loaded wait, up to this many.
MAX_WAITING = 10000


class MUCService(XMPPHandler):
    """
    The rooms of one group chat service and the stanzas for them.

    @ivar settings: the L{xmppws.muc.settings.MUCSettings}.
    @ivar store: the L{xmppws.muc.storage.RoomStore}, or L{None} to keep
        nothing across restarts.
    @ivar clock: an C{IReactorTime} for time stamps and room locks.
    @ivar rooms: room name (a prepared localpart) to L{Room}.
    @ivar loaded: whether the stored rooms are loaded.
    @ivar archive: the rooms' L{RoomArchive}, or L{None} when rooms keep
        no archives (no store, or archives turned off).
    """

    log = Logger()

    def __init__(self, settings, store, clock):
        XMPPHandler.__init__(self)
        self.settings = settings
        self.store = store
        self.clock = clock
        self.rooms = {}
        self.loaded = store is None
        self.broken = False
        self._loading = None
        self._waiting = []
        self._observing = None
        self.archive = None
        db = getattr(store, "db", None)
        if db is not None and settings.archive:
            self.archive = RoomArchive.inDatabase(self, db)

    @property
    def domain(self):
        return self.settings.domain

    # Life cycle

    def load(self):
        """
        Load the stored rooms; stanzas received meanwhile wait.

        @return: a L{Deferred} firing when the rooms are loaded (or
            failed to load, which is logged; the service then answers
            every stanza with C{internal-server-error}).
        """
        if self._loading is not None:
            return self._loading
        if self.store is None:
            self._loading = defer.succeed(None)
            return self._loading

        def loaded(records):
            for record in records:
                try:
                    room = self._restore(record)
                except Exception:
                    self.log.failure("Cannot restore room {room}", room=record.name)
                    continue
                self.rooms[room.name] = room
            self.log.info(
                "Group chat {domain}: {count} stored rooms", domain=self.domain, count=len(records)
            )

        def failed(failure):
            self.broken = True
            self.log.failure("Cannot load the rooms of {domain}", failure, domain=self.domain)

        def done(_):
            self.loaded = True
            if self.archive is not None and not self.broken:
                self.archive.start()
            waiting, self._waiting = self._waiting, []
            for element in waiting:
                self._dispatch(element)

        d = self.store.load(self.domain)
        d.addCallbacks(loaded, failed)
        d.addCallback(done)
        self._loading = d
        return d

    def _restore(self, record):
        roomJID = jidlib.prepared(record.name, self.domain)
        config = RoomConfig.fromDict(record.config, self.settings)
        room = Room(roomJID, config, record.salt)
        room.subject = record.subject or ""
        room.subjectNick = record.subjectNick
        room.subjectStamp = record.subjectStamp
        room.stored = True
        for jid, affiliation, nick, reason in record.affiliations:
            room.affiliations[jid] = Affiliation(affiliation, nick, reason)
        for stanzaId, stamp, nick, sender, xml in record.history:
            room.history.append(HistoryEntry(stanzaId, stamp, nick, sender, xml))
        room.trimHistory()
        return room

    def connectionInitialized(self):
        self._observing = self.xmlstream
        self.xmlstream.addObserver("/message", self.received)
        self.xmlstream.addObserver("/presence", self.received)
        self.xmlstream.addObserver("/iq", self.received)

    def connectionLost(self, reason):
        if self._observing is not None:
            for name in ("/message", "/presence", "/iq"):
                self._observing.removeObserver(name, self.received)
            self._observing = None
        XMPPHandler.connectionLost(self, reason)

    def close(self):
        """
        Write what the archives have queued and close the room store.

        @return: a L{Deferred} firing once closed.
        """
        if self.store is None:
            return defer.succeed(None)
        d = self.archive.close() if self.archive is not None else defer.succeed(None)
        d.addBoth(lambda _: self.store.close())
        return d

    def shutdown(self):
        """
        Tell every occupant the service is going away (status code 332,
        XEP-0045 section 16.2) and empty the rooms.
        """
        for room in list(self.rooms.values()):
            for occupant in list(room.occupants.values()):
                occupants.removeOccupant(self, room, occupant, ("332",))

    # Receiving

    def received(self, element):
        """
        Take one stanza from the stream.
        """
        if not self.loaded:
            if len(self._waiting) < MAX_WAITING:
                self._waiting.append(element)
            else:
                self.error(element, "resource-constraint", "wait", text="Still starting up.")
            return
        self._dispatch(element)

    def _dispatch(self, element):
        try:
            self._route(element)
        except Exception:
            self.log.failure("Group chat failed to process a {kind}", kind=element.name)
            self.error(element, "internal-server-error", "wait")

    def _route(self, element):
        if element.name not in ("message", "presence", "iq"):
            return
        kind = element.getAttribute("type")
        try:
            sender = jidlib.parse(element.getAttribute("from", ""))
        except jidlib.JIDMalformed:
            self.log.info("Dropped a {kind} with a malformed 'from'", kind=element.name)
            return
        try:
            to = jidlib.parse(element.getAttribute("to", ""))
        except jidlib.JIDMalformed:
            if kind != "error" and not (element.name == "iq" and kind == "result"):
                # The reply comes from the service: the address it was sent
                # to is no address.
                reply = errorReply(element, "jid-malformed", "modify")
                reply["from"] = self.domain
                self.send(reply)
            return
        if to.host != self.domain:
            self.error(element, "item-not-found", "cancel")
            return
        if self.broken:
            self.error(element, "internal-server-error", "wait", text="The rooms could not be loaded.")
            return
        if to.user is None:
            if to.resource is None:
                self._toService(element, sender, kind)
            else:
                self.error(element, "item-not-found", "cancel")
            return
        room = self.rooms.get(to.user)
        if room is None:
            self._toMissingRoom(element, sender, to, kind)
            return
        if element.name == "presence":
            occupants.handlePresence(self, room, element, sender, to.resource)
        elif element.name == "message":
            if to.resource is None:
                messages.toRoom(self, room, element, sender)
            else:
                messages.toOccupant(self, room, element, sender, to.resource)
        elif to.resource is None:
            self._iqToRoom(room, element, sender, kind)
        else:
            messages.iqToOccupant(self, room, element, sender, to.resource)

    # Sending

    def send(self, element):
        """
        Send a stanza built by the service.
        """
        XMPPHandler.send(self, element)

    def error(self, stanza, condition, errorType, by=None, text=None):
        """
        Answer C{stanza} with an error, unless it is an error or a result
        itself.
        """
        kind = stanza.getAttribute("type")
        if kind == "error" or (stanza.name == "iq" and kind == "result"):
            return
        if not stanza.getAttribute("from"):
            return
        self.send(errorReply(stanza, condition, errorType, by, text))

    def result(self, iq, child=None):
        """
        Answer an iq with a result.

        @param child: the payload, or L{None}.
        """
        reply = domish.Element((None, "iq"))
        reply["type"] = "result"
        reply["to"] = iq["from"]
        reply["from"] = iq["to"]
        if iq.getAttribute("id") is not None:
            reply["id"] = iq["id"]
        if child is not None:
            reply.addChild(child)
        self.send(reply)

    def now(self):
        return self.clock.seconds()

    def newId(self):
        return str(uuid.uuid4())

    def newStanzaId(self, room):
        """
        The XEP-0359 stanza id of a message the room keeps: its archive id
        when the room archives (so that the live id is the archive's).
        """
        if self.archive is not None and room.config.archiving:
            return self.archive.newId()
        return self.newId()

    # The service itself

    def _toService(self, element, sender, kind):
        if element.name == "iq":
            if kind not in ("get", "set"):
                return
            query = element.firstChildElement()
            if kind == "get" and query is not None and query.name == "query":
                if query.uri == NS_DISCO_INFO:
                    if query.getAttribute("node"):
                        self.error(element, "item-not-found", "cancel")
                        return
                    self.result(element, self._serviceInfo())
                    return
                if query.uri == NS_DISCO_ITEMS:
                    if query.getAttribute("node"):
                        self.error(element, "item-not-found", "cancel")
                        return
                    self.result(element, self._publicRooms())
                    return
            if kind == "get" and query is not None and (query.uri, query.name) == (NS_PING, "ping"):
                self.result(element)
                return
            self.error(element, "service-unavailable", "cancel")
        elif element.name == "message":
            self.error(element, "service-unavailable", "cancel")
        elif kind not in ("unavailable", "error"):
            self.error(element, "service-unavailable", "cancel")

    def _serviceInfo(self):
        query = domish.Element((NS_DISCO_INFO, "query"))
        identity = query.addElement("identity")
        identity["category"] = "conference"
        identity["type"] = "text"
        identity["name"] = self.settings.name
        features = [NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC, NS_MUC_STABLE_ID, NS_PING]
        if self.settings.occupantIds:
            features.append(NS_OCCUPANT_ID)
        for feature in sorted(features):
            query.addElement("feature")["var"] = feature
        return query

    def _publicRooms(self):
        query = domish.Element((NS_DISCO_ITEMS, "query"))
        now = self.now()
        for name in sorted(self.rooms):
            room = self.rooms[name]
            if not room.config.public or room.isLocked(now):
                continue
            item = query.addElement("item")
            item["jid"] = room.jid.full()
            if room.config.name:
                item["name"] = room.config.name
        return query

    def _toMissingRoom(self, element, sender, to, kind):
        if element.name == "presence":
            if kind is None and to.resource is not None:
                x = _child(element, NS_MUC, "x")
                if x is not None:
                    occupants.create(self, element, sender, to)
                    return
            if kind in ("unavailable", "error"):
                return
        elif element.name == "iq" and to.resource is not None:
            # Not an occupant of a room that is not there: a XEP-0410
            # self-ping must not read this as "still joined".
            self.error(element, "not-acceptable", "cancel", by=to.userhost(),
                       text="You are not currently connected to this chat.")
            return
        self.error(element, "item-not-found", "cancel")

    # Rooms

    def newRoom(self, name, creator):
        """
        Make a room (locked until its creator configures it) owned by
        C{creator}.

        @return: the L{Room}.
        """
        room = Room(jidlib.prepared(name, self.domain), RoomConfig.defaults(self.settings))
        room.affiliations[creator.userhost()] = Affiliation("owner")
        if self.settings.lockTimeout > 0:
            room.lockedUntil = self.now() + self.settings.lockTimeout
        self.rooms[name] = room
        self.log.info("Room {room} created", room=room.jid.full())
        return room

    def roomsOwnedBy(self, bare):
        """
        How many rooms C{bare} owns.
        """
        key = bare.userhost()
        return sum(
            1
            for room in self.rooms.values()
            if key in room.affiliations and room.affiliations[key].affiliation == "owner"
        )

    def roomEmptied(self, room):
        """
        The last occupant left: a temporary room goes away.
        """
        if room.isEmpty() and not room.config.persistent and self.rooms.get(room.name) is room:
            del self.rooms[room.name]
            self.log.info("Room {room} destroyed (empty and temporary)", room=room.jid.full())
            if self.archive is not None:
                self.archive.forget(room)
            if room.stored:
                room.stored = False
                return self._write(self.store.deleteRoom, self.domain, room.name)
        return defer.succeed(None)

    def forget(self, room):
        """
        Remove a destroyed room, from storage too, and its archive.
        """
        if self.rooms.get(room.name) is room:
            del self.rooms[room.name]
        if self.archive is not None:
            self.archive.forget(room)
        if room.stored:
            room.stored = False
            return self._write(self.store.deleteRoom, self.domain, room.name)
        return defer.succeed(None)

    # Storage

    def _write(self, method, *args):
        d = method(*args)
        d.addErrback(self._writeFailed, method.__name__)
        return d

    def _writeFailed(self, failure, what):
        self.log.failure("Group chat storage: {what} failed", failure, what=what)
        return failure

    def saveRoom(self, room):
        """
        Bring storage in step with the room's configuration and subject:
        store a persistent room, forget a room made temporary.

        @return: a L{Deferred} firing once written (failing if the write
            failed).
        """
        if self.store is None:
            return defer.succeed(None)
        if room.config.persistent:
            if room.stored:
                return self._write(self.store.saveRoom, self.domain, room)
            room.stored = True
            return self._write(self.store.storeRoom, self.domain, room)
        if room.stored:
            room.stored = False
            return self._write(self.store.deleteRoom, self.domain, room.name)
        return defer.succeed(None)

    def saveAffiliation(self, room, jid):
        """
        Store the affiliation of a bare JID (text) of a stored room.
        """
        if self.store is None or not room.stored:
            return defer.succeed(None)
        return self._write(self.store.saveAffiliation, self.domain, room, jid)

    def keepHistory(self, room, entry):
        """
        Keep a message for newcomers, in storage too for a stored room,
        and in the room's archive.
        """
        if self.archive is not None:
            self.archive.keep(room, entry)
        if room.config.historyLength <= 0:
            return defer.succeed(None)
        room.addHistory(entry)
        if self.store is None or not room.stored:
            return defer.succeed(None)
        return self._write(self.store.addHistory, self.domain, room, entry)

    def trimHistory(self, room):
        room.trimHistory()
        if self.store is None or not room.stored:
            return defer.succeed(None)
        return self._write(self.store.trimHistory, self.domain, room)

    # Iq to a room

    def _iqToRoom(self, room, iq, sender, kind):
        if kind not in ("get", "set"):
            return
        query = iq.firstChildElement()
        if query is None:
            self.error(iq, "bad-request", "modify", by=room.jid.full())
            return
        key = (query.uri, query.name)
        if key == (NS_DISCO_INFO, "query") and kind == "get":
            self._roomInfo(room, iq, sender, query)
        elif key == (NS_DISCO_ITEMS, "query") and kind == "get":
            if query.getAttribute("node"):
                self.error(iq, "item-not-found", "cancel")
            else:
                self.result(iq, domish.Element((NS_DISCO_ITEMS, "query")))
        elif key == (NS_MUC_ADMIN, "query"):
            admin.handleAdmin(self, room, iq, sender, query)
        elif key == (NS_MUC_OWNER, "query"):
            owner.handleOwner(self, room, iq, sender, query)
        elif key == (NS_REGISTER, "query"):
            admin.handleRegister(self, room, iq, sender, query)
        elif key == (NS_PING, "ping") and kind == "get":
            self.result(iq)
        elif query.uri == NS_MAM and self.archive is not None:
            self.archive.handle(room, iq, sender, query, kind)
        elif key == (NS_VCARD, "vCard") and kind == "get":
            # Rooms have no vCard (no avatar); an empty one says so.
            self.result(iq, domish.Element((NS_VCARD, "vCard")))
        else:
            self.error(iq, "service-unavailable", "cancel")

    def _roomInfo(self, room, iq, sender, query):
        node = query.getAttribute("node")
        if node == "x-roomuser-item":
            # XEP-0045 section 7.12: the requester's reserved nickname.
            reply = domish.Element((NS_DISCO_INFO, "query"))
            reply["node"] = node
            nick = room.reservedNick(sender)
            if nick is not None:
                identity = reply.addElement("identity")
                identity["category"] = "conference"
                identity["type"] = "text"
                identity["name"] = nick
            self.result(iq, reply)
            return
        if node:
            self.error(iq, "item-not-found", "cancel")
            return
        config = room.config
        reply = domish.Element((NS_DISCO_INFO, "query"))
        identity = reply.addElement("identity")
        identity["category"] = "conference"
        identity["type"] = "text"
        identity["name"] = config.name or room.name
        features = [
            NS_DISCO_INFO,
            NS_DISCO_ITEMS,
            NS_MUC,
            NS_MUC_STABLE_ID,
            NS_MUC_SELF_PING,
            NS_REGISTER,
            "http://jabber.org/protocol/muc#request",
            "urn:xmpp:sid:0",
            "muc_persistent" if config.persistent else "muc_temporary",
            "muc_public" if config.public else "muc_hidden",
            "muc_membersonly" if config.membersOnly else "muc_open",
            "muc_moderated" if config.moderated else "muc_unmoderated",
            "muc_nonanonymous" if config.whois == "anyone" else "muc_semianonymous",
            "muc_passwordprotected" if config.password else "muc_unsecured",
        ]
        if self.settings.occupantIds:
            features.append(NS_OCCUPANT_ID)
        if self.archive is not None:
            features.extend(self.archive.features(room))
        for feature in features:
            reply.addElement("feature")["var"] = feature
        reply.addChild(config.infoForm(len(room.occupants), room.subject))
        self.result(iq, reply)


def _child(element, uri, name):
    for child in element.elements():
        if child.uri == uri and child.name == name:
            return child
    return None
