# -*- test-case-name: tests.test_muc_service -*-
"""
The group chat service's settings: its address, its quotas and the
configuration new rooms start with.
"""

__all__ = ["MUCSettings"]


class MUCSettings:
    """
    Settings of one group chat service, checked.

    @ivar domain: the service's address, such as C{conference.example.org}.
    @ivar name: the service's name in service discovery.
    @ivar maxRoomsPerUser: rooms one bare JID may own at most (creating
        one more is refused with C{not-allowed}); 0 for no limit.
    @ivar maxOccupants: occupants a room holds at most (C{service-unavailable}
        to the next one, except owners and admins); also the highest
        value of a room's C{muc#roomconfig_maxusers}.
    @ivar maxHistory: messages a room keeps for newcomers at most; the
        highest value of C{muc#roomconfig_historylength}.
    @ivar defaultHistory: the history length of a new room.
    @ivar maxMessageSize: bytes a message to a room or an occupant may
        have, serialized; bigger ones get C{policy-violation}.
    @ivar lockTimeout: seconds a new room waits for its creator's
        configuration before it opens with the default one.
    @ivar defaultPublic, defaultPersistent, defaultMembersOnly,
        defaultModerated, defaultWhois, defaultChangeSubject,
        defaultAllowPM: the configuration of new rooms (see
        L{xmppws.muc.config.RoomConfig}).
    @ivar occupantIds: whether to add XEP-0421 occupant ids.
    @ivar archive: whether rooms keep message archives (XEP-0313; each
        room may turn its own off).
    @ivar archiveRetention: seconds a room's archived message is kept,
        or L{None} for ever.
    @ivar maxArchiveMessages: messages one room's archive keeps at most.
    """

    name = "Chatrooms"
    maxRoomsPerUser = 100
    maxOccupants = 500
    maxHistory = 100
    defaultHistory = 20
    maxMessageSize = 20000
    lockTimeout = 300.0
    defaultPublic = False
    defaultPersistent = False
    defaultMembersOnly = False
    defaultModerated = False
    defaultWhois = "moderators"
    defaultChangeSubject = False
    defaultAllowPM = "anyone"
    occupantIds = True
    archive = True
    archiveRetention = 7 * 86400
    maxArchiveMessages = 10000

    def __init__(self, domain, **values):
        """
        @param domain: the service's address (a domain).
        @param values: other settings, by the attribute names above.
        @raise TypeError: for an unknown setting.
        @raise ValueError: for a value out of range.
        """
        self.domain = domain
        for key, value in values.items():
            if key.startswith("_") or key == "domain" or not hasattr(MUCSettings, key):
                raise TypeError("unknown group chat setting %r" % (key,))
            setattr(self, key, value)
        for key in ("maxRoomsPerUser", "maxOccupants", "maxHistory", "defaultHistory"):
            if getattr(self, key) < 0:
                raise ValueError("%s must not be negative" % (key,))
        if self.maxMessageSize < 1:
            raise ValueError("maxMessageSize must be positive")
        if self.maxArchiveMessages < 1:
            raise ValueError("maxArchiveMessages must be positive")
        if self.archiveRetention is not None and self.archiveRetention <= 0:
            raise ValueError("archiveRetention must be positive, or None")
        if self.maxOccupants < 1:
            raise ValueError("maxOccupants must be positive")
        self.defaultHistory = min(self.defaultHistory, self.maxHistory)
        if self.defaultWhois not in ("moderators", "anyone"):
            raise ValueError("defaultWhois must be 'moderators' or 'anyone'")
        if self.defaultAllowPM not in ("anyone", "participants", "moderators", "none"):
            raise ValueError("defaultAllowPM must be anyone, participants, moderators or none")
