# -*- test-case-name: tests.test_muc_archive -*-
"""
Message archives of rooms (XEP-0313), after Prosody 13's C{muc_mam}: a
room whose configuration has C{muc#roomconfig_enablearchiving} (on by
default) keeps every message it stamps with its XEP-0359 stanza id, so
that the id occupants see live is the archive id.  The archive is
queried at the room's bare JID with the same query format as an
account's (L{xmppws.c2s.mamquery}).

It lives in the service's own database (C{muc.sqlite}) through the
archive store the server's accounts use (L{xmppws.c2s.archive}), with
the service's retention and size settings.  The messages a room kept
for newcomers before it had an archive are taken into it when the
service starts, so their history is not lost.

Who may read (XEP-0313 section 6): anyone but outcasts, and only
members (admins, owners) of a members-only room.  A message's C{with}
is the sender's occupant JID: a query with C{room@service/nick} returns
what that nickname said.  Results come from the room's bare JID,
without C{to}, the sender's occupant JID as C{from}.
"""

from twisted.logger import Logger

from xmppws.c2s.archive import ArchivedMessage, ArchiveStore, UnknownArchiveId
from xmppws.c2s.mamquery import (
    NS_MAM,
    QueryError,
    finElement,
    metadataElement,
    parseQuery,
    queryForm,
    resultMessage,
)
from xmppws.flow import Backlog

__all__ = ["RoomArchive", "qualified"]


def qualified(xml):
    """
    A message a room serialized without a namespace (it is sent on the
    component stream as it is), with C{jabber:client} declared, to stand
    alone in an archive.
    """
    if xml.startswith("<message") and not xml.startswith("<message xmlns="):
        return "<message xmlns='jabber:client'" + xml[len("<message"):]
    return xml


class RoomArchive:
    """
    The archives of a group chat service's rooms.

    @ivar muc: the L{xmppws.muc.service.MUCService}.
    @ivar store: the L{ArchiveStore}.
    """

    log = Logger()

    def __init__(self, muc, store):
        self.muc = muc
        self.store = store

    @classmethod
    def inDatabase(cls, muc, db):
        """
        Archives in the database of the service's rooms.
        """
        settings = muc.settings
        store = ArchiveStore(db, muc.clock, settings.maxArchiveMessages, settings.archiveRetention,
                             backlog=Backlog)
        return cls(muc, store)

    def start(self):
        """
        Take in the history rooms kept before, and start expiry (unless
        the archive was closed meanwhile).
        """
        if self.store.closed:
            return None
        self.store.start()
        d = self.store.db.run(_importHistory, self.muc.domain)
        d.addErrback(lambda f: self.log.failure("Taking room history into archives failed", f))
        return d

    def close(self):
        return self.store.close()

    def keep(self, room, entry):
        """
        Archive a message the room reflected (a
        L{xmppws.muc.room.HistoryEntry}), if the room archives.
        """
        if not room.config.archiving:
            return
        roomJID = room.jid.full()
        self.store.append(
            ArchivedMessage(roomJID, entry.stanzaId, entry.stamp, roomJID, entry.nick,
                            qualified(entry.xml))
        )

    def forget(self, room):
        """
        Delete a destroyed room's archive.
        """
        d = self.store.delete(room.jid.full())
        d.addErrback(lambda f: self.log.failure("Deleting the archive of {room} failed", f,
                                                room=room.jid.full()))
        return d

    def newId(self):
        """
        A stanza id for a message the room archives: its archive id.
        """
        return self.store.newId()

    def features(self, room):
        """
        The room's XEP-0313 features for its C{disco#info}.
        """
        if room.config.archiving:
            return [NS_MAM, NS_MAM + "#extended"]
        return []

    # Requests

    def handle(self, room, iq, sender, query, kind):
        """
        An iq in the C{urn:xmpp:mam:2} namespace to a room.
        """
        roomJID = room.jid.full()
        if not room.config.archiving:
            self.muc.error(iq, "service-unavailable", "cancel", by=roomJID,
                           text="This room keeps no archive.")
            return
        affiliation = room.affiliation(sender)
        if affiliation == "outcast" or (room.config.membersOnly and affiliation == "none"):
            self.muc.error(iq, "forbidden", "auth", by=roomJID,
                           text="Only those who may enter the room may read its archive.")
            return
        if query.name == "query" and kind == "get":
            self.muc.result(iq, queryForm())
        elif query.name == "query" and kind == "set":
            self._query(room, iq, sender, query)
        elif query.name == "metadata" and kind == "get":
            d = self.store.bounds(roomJID)
            d.addCallback(lambda bounds: self.muc.result(iq, metadataElement(*bounds)))
            d.addErrback(self._failed, iq, room)
        else:
            self.muc.error(iq, "feature-not-implemented", "cancel", by=roomJID)

    def _query(self, room, iq, sender, query):
        try:
            queryid, archiveQuery, flip = parseQuery(query)
        except QueryError as e:
            self.muc.error(iq, e.condition, e.errorType, by=room.jid.full(), text=e.text)
            return
        roomJID = room.jid.full()
        to = iq["from"]

        def answer(page):
            messages = reversed(page.messages) if flip else page.messages
            for message in messages:
                self.muc.send(resultMessage(roomJID, to, queryid, message))
            self.muc.result(iq, finElement(page))

        d = self.store.query(roomJID, archiveQuery)
        d.addCallbacks(answer, self._failed, errbackArgs=(iq, room))

    def _failed(self, failure, iq, room):
        if failure.check(UnknownArchiveId):
            self.muc.error(iq, "item-not-found", "cancel", by=room.jid.full(),
                           text="No message with that id is in the archive.")
            return
        self.log.failure("Archive query of {room} failed", failure, room=room.jid.full())
        self.muc.error(iq, "internal-server-error", "wait", by=room.jid.full())


def _importHistory(connection, service):
    """
    Copy the stored history of the service's rooms into their archives,
    once for each room.
    """
    rows = connection.execute(
        "SELECT room, stanza_id, stamp, nick, stanza FROM muc_history WHERE service=? "
        "AND room NOT IN (SELECT room FROM muc_archived WHERE service=?) ORDER BY id",
        (service, service),
    ).fetchall()
    connection.execute(
        "INSERT OR IGNORE INTO muc_archived (service, room) SELECT service, room FROM muc_rooms "
        "WHERE service=?",
        (service,),
    )
    added = {}
    last = 0
    for room, stanzaId, stamp, nick, stanza in rows:
        roomJID = "%s@%s" % (room, service)
        # The archive's row numbers follow time (see ArchiveIds).
        last = max(last + 1, int(stamp * 1000) << 10)
        cursor = connection.execute(
            "INSERT OR IGNORE INTO mam_messages (id, owner, sid, stamp, peer, resource, stanza) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (last, roomJID, stanzaId, stamp, roomJID, nick, qualified(stanza)),
        )
        if cursor.rowcount:
            added[roomJID] = added.get(roomJID, 0) + 1
    for roomJID, count in added.items():
        connection.execute(
            "INSERT INTO mam_sizes (owner, messages) VALUES (?, ?) ON CONFLICT (owner) "
            "DO UPDATE SET messages = messages + excluded.messages",
            (roomJID, count),
        )
    return sum(added.values())
