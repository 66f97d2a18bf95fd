# -*- test-case-name: tests.test_muc_owner -*-
"""
A room's configuration: its values, the C{muc#roomconfig} form an owner
fills in (XEP-0045 section 10.2), what a submitted form changes, and the
C{muc#roominfo} form of the room's service discovery (XEP-0128).

Forms are built with tx-xmpp's L{tx_xmpp.data_form}; submitted forms are
read field by field from the element, so no value a client sends is
turned into a JID or interned.
"""

from tx_xmpp.data_form import Field, Form

from xmppws.muc.namespaces import NS_DATA, NS_MUC_ROOMCONFIG, NS_MUC_ROOMINFO

__all__ = ["ConfigError", "RoomConfig", "WHOIS", "ALLOW_PM", "parseSubmission"]

WHOIS = ("moderators", "anyone")
ALLOW_PM = ("anyone", "participants", "moderators", "none")

# Values other servers (Prosody) use for muc#roomconfig_allowpm.
_ALLOW_PM_ALIASES = {
    "visitor": "anyone",
    "everyone": "anyone",
    "participant": "participants",
    "moderator": "moderators",
    "affiliated": "participants",
}

_MAXUSERS_CHOICES = (10, 20, 30, 50, 100, 200, 500, 1000, 5000)
_TEXT_LIMIT = 1000


class ConfigError(Exception):
    """
    A submitted configuration cannot be applied: answered with
    C{not-acceptable} (or C{bad-request} for a form that is no
    configuration form).

    @ivar condition: the stanza error condition.
    @ivar text: what was wrong, for the owner.
    """

    def __init__(self, condition, text):
        Exception.__init__(self, text)
        self.condition = condition
        self.text = text


class RoomConfig:
    """
    The configuration of one room.

    @ivar name: its natural-language name, or C{""}.
    @ivar description: a short description, or C{""}.
    @ivar language: the language of its discussions, or C{""}.
    @ivar persistent: whether it lives on when empty (and across
        restarts).
    @ivar public: whether it is listed in the service's C{disco#items}.
    @ivar password: the password needed to enter, or C{""}.
    @ivar membersOnly: whether only members (and admins and owners)
        may enter.
    @ivar allowInvites: in a members-only room, whether members may
        invite (and so make the invitee a member); admins and owners
        always may.
    @ivar moderated: whether occupants without affiliation enter as
        visitors, without voice.
    @ivar whois: who sees occupants' real JIDs: C{'moderators'} (a
        semi-anonymous room) or C{'anyone'} (non-anonymous).
    @ivar changeSubject: whether participants may change the subject
        (moderators always may).
    @ivar allowPM: who may send private messages: C{'anyone'},
        C{'participants'}, C{'moderators'} or C{'none'}.
    @ivar maxUsers: occupants at most.
    @ivar historyLength: messages kept for newcomers.
    @ivar defaultHistory: messages a newcomer gets when it asks for no
        particular history.
    @ivar archiving: whether the room keeps a message archive (XEP-0313,
        C{muc#roomconfig_enablearchiving}, Prosody's field).
    """

    _FIELDS = (
        "name",
        "description",
        "language",
        "persistent",
        "public",
        "password",
        "membersOnly",
        "allowInvites",
        "moderated",
        "whois",
        "changeSubject",
        "allowPM",
        "maxUsers",
        "historyLength",
        "defaultHistory",
        "archiving",
    )

    def __init__(self, **values):
        self.name = ""
        self.description = ""
        self.language = ""
        self.persistent = False
        self.public = False
        self.password = ""
        self.membersOnly = False
        self.allowInvites = False
        self.moderated = False
        self.whois = "moderators"
        self.changeSubject = False
        self.allowPM = "anyone"
        self.maxUsers = 500
        self.historyLength = 20
        self.defaultHistory = 20
        self.archiving = False
        for key, value in values.items():
            if key not in self._FIELDS:
                raise TypeError("unknown room setting %r" % (key,))
            setattr(self, key, value)

    @classmethod
    def defaults(cls, settings):
        """
        The configuration of a new room.

        @type settings: L{xmppws.muc.settings.MUCSettings}
        """
        return cls(
            persistent=settings.defaultPersistent,
            public=settings.defaultPublic,
            membersOnly=settings.defaultMembersOnly,
            moderated=settings.defaultModerated,
            whois=settings.defaultWhois,
            changeSubject=settings.defaultChangeSubject,
            allowPM=settings.defaultAllowPM,
            maxUsers=settings.maxOccupants,
            historyLength=settings.defaultHistory,
            defaultHistory=settings.defaultHistory,
            archiving=settings.archive,
        )

    def copy(self):
        return RoomConfig(**self.toDict())

    def toDict(self):
        """
        The values, for storage.

        @rtype: L{dict}
        """
        return {key: getattr(self, key) for key in self._FIELDS}

    @classmethod
    def fromDict(cls, values, settings):
        """
        A stored configuration, with unknown keys dropped and values kept
        within the service's limits.
        """
        config = cls.defaults(settings)
        for key in cls._FIELDS:
            if key in values:
                setattr(config, key, values[key])
        config.maxUsers = max(1, min(int(config.maxUsers), settings.maxOccupants))
        config.historyLength = max(0, min(int(config.historyLength), settings.maxHistory))
        config.defaultHistory = max(0, min(int(config.defaultHistory), config.historyLength))
        if config.whois not in WHOIS:
            config.whois = "moderators"
        if config.allowPM not in ALLOW_PM:
            config.allowPM = "anyone"
        config.archiving = bool(config.archiving) and settings.archive
        return config

    # Forms

    def form(self, roomJID, settings):
        """
        The configuration form, filled in with the current values.

        @param roomJID: the room's address, for the title.
        @rtype: L{domish.Element}
        """
        maxUsers = sorted(
            {n for n in _MAXUSERS_CHOICES if n <= settings.maxOccupants}
            | {settings.maxOccupants, self.maxUsers}
        )
        fields = [
            Field("hidden", "FORM_TYPE", NS_MUC_ROOMCONFIG),
            Field("fixed", value="Room information"),
            Field("text-single", "muc#roomconfig_roomname", self.name, label="Title"),
            Field(
                "text-single",
                "muc#roomconfig_roomdesc",
                self.description,
                label="Description",
                desc="A brief description of the room",
            ),
            Field("text-single", "muc#roomconfig_lang", self.language, label="Language"),
            Field(
                "boolean",
                "muc#roomconfig_persistentroom",
                self.persistent,
                label="Persistent (room should remain even when it is empty)",
            ),
            Field(
                "boolean",
                "muc#roomconfig_publicroom",
                self.public,
                label="Include room information in public lists",
            ),
            Field("fixed", value="Access to the room"),
            Field("text-private", "muc#roomconfig_roomsecret", self.password, label="Password"),
            Field(
                "boolean",
                "muc#roomconfig_membersonly",
                self.membersOnly,
                label="Only allow members to join",
            ),
            Field(
                "boolean",
                "muc#roomconfig_allowinvites",
                self.allowInvites,
                label="Allow members to invite new members",
            ),
            Field(
                "list-single",
                "muc#roomconfig_maxusers",
                str(self.maxUsers),
                options={str(n): str(n) for n in maxUsers},
                label="Maximum number of occupants",
            ),
            Field("fixed", value="Permissions in the room"),
            Field(
                "list-single",
                "muc#roomconfig_whois",
                self.whois,
                options={"moderators": "Moderators only", "anyone": "Anyone"},
                label="Addresses (JIDs) of room occupants may be viewed by:",
            ),
            Field(
                "boolean",
                "muc#roomconfig_moderatedroom",
                self.moderated,
                label="Moderated (require permission to speak)",
            ),
            Field(
                "boolean",
                "muc#roomconfig_changesubject",
                self.changeSubject,
                label="Allow anyone to set the room's subject",
            ),
            Field(
                "list-single",
                "muc#roomconfig_allowpm",
                self.allowPM,
                options={
                    "anyone": "Everyone",
                    "participants": "Participants",
                    "moderators": "Moderators",
                    "none": "No one",
                },
                label="Allow private messages from",
            ),
            Field("fixed", value="Other options"),
            Field(
                "text-single",
                "muc#roomconfig_historylength",
                str(self.historyLength),
                label="Maximum number of history messages returned by room (at most %d)"
                % (settings.maxHistory,),
            ),
            Field(
                "text-single",
                "muc#roomconfig_defaulthistorymessages",
                str(self.defaultHistory),
                label="Default number of history messages returned by room",
            ),
        ]
        if settings.archive:
            fields.append(
                Field(
                    "boolean",
                    "muc#roomconfig_enablearchiving",
                    self.archiving,
                    label="Archive messages (message archive management)",
                )
            )
        form = Form(
            "form",
            title="Configuration for %s" % (roomJID,),
            instructions=["Complete and submit this form to configure the room."],
            fields=fields,
        )
        return form.toElement()

    def infoForm(self, occupants, subject):
        """
        The C{muc#roominfo} form of the room's C{disco#info}.

        @param occupants: how many occupants it has.
        @param subject: its subject, or C{""}.
        @rtype: L{domish.Element}
        """
        fields = [
            Field("hidden", "FORM_TYPE", NS_MUC_ROOMINFO),
            Field("text-single", "muc#roominfo_description", self.description, label="Description"),
            Field("text-single", "muc#roominfo_occupants", str(occupants), label="Number of occupants"),
            Field("text-single", "muc#roominfo_subject", subject, label="Current discussion topic"),
            Field(
                "boolean",
                "muc#roomconfig_changesubject",
                self.changeSubject,
                label="Subject can be modified",
            ),
            Field("text-single", "muc#roomconfig_roomname", self.name, label="Title"),
        ]
        if self.language:
            fields.append(Field("text-single", "muc#roominfo_lang", self.language, label="Language"))
        return Form("result", fields=fields).toElement()

    # Submission

    def apply(self, values, settings):
        """
        A copy of this configuration with the submitted values applied.

        @param values: field name to its list of values (from
            L{parseSubmission}).
        @return: C{(config, codes)}: the new configuration and the
            status codes announcing the change to occupants (C{104},
            C{170}, C{171}, C{172}, C{173}), empty when nothing changed.
        @raise ConfigError: for a value out of range.
        """
        new = self.copy()
        single = {name: (vals[0] if vals else "") for name, vals in values.items()}

        def text(name, attribute):
            if name in single:
                value = single[name]
                if len(value) > _TEXT_LIMIT:
                    raise ConfigError("not-acceptable", "%s is too long" % (name,))
                setattr(new, attribute, value)

        def boolean(name, attribute):
            if name in single:
                setattr(new, attribute, _boolean(name, single[name]))

        def integer(name, attribute, low, high):
            if name in single and single[name].strip() != "":
                value = single[name].strip()
                if value == "none":
                    setattr(new, attribute, high)
                    return
                try:
                    number = int(value)
                except ValueError:
                    raise ConfigError("not-acceptable", "%s must be a number" % (name,))
                if not low <= number <= high:
                    raise ConfigError(
                        "not-acceptable", "%s must be from %d to %d" % (name, low, high)
                    )
                setattr(new, attribute, number)

        text("muc#roomconfig_roomname", "name")
        text("muc#roomconfig_roomdesc", "description")
        text("muc#roomconfig_lang", "language")
        text("muc#roomconfig_roomsecret", "password")
        boolean("muc#roomconfig_persistentroom", "persistent")
        boolean("muc#roomconfig_publicroom", "public")
        boolean("muc#roomconfig_membersonly", "membersOnly")
        boolean("muc#roomconfig_allowinvites", "allowInvites")
        boolean("muc#roomconfig_moderatedroom", "moderated")
        boolean("muc#roomconfig_changesubject", "changeSubject")
        if "muc#roomconfig_passwordprotectedroom" in single:
            if not _boolean(
                "muc#roomconfig_passwordprotectedroom",
                single["muc#roomconfig_passwordprotectedroom"],
            ):
                new.password = ""
            elif not new.password:
                raise ConfigError("not-acceptable", "a password-protected room needs a password")
        if "muc#roomconfig_whois" in single:
            if single["muc#roomconfig_whois"] not in WHOIS:
                raise ConfigError("not-acceptable", "muc#roomconfig_whois must be moderators or anyone")
            new.whois = single["muc#roomconfig_whois"]
        if "muc#roomconfig_allowpm" in single:
            value = single["muc#roomconfig_allowpm"]
            value = _ALLOW_PM_ALIASES.get(value, value)
            if value not in ALLOW_PM:
                raise ConfigError(
                    "not-acceptable",
                    "muc#roomconfig_allowpm must be anyone, participants, moderators or none",
                )
            new.allowPM = value
        integer("muc#roomconfig_maxusers", "maxUsers", 1, settings.maxOccupants)
        integer("muc#roomconfig_historylength", "historyLength", 0, settings.maxHistory)
        if "muc#roomconfig_defaulthistorymessages" in single:
            integer(
                "muc#roomconfig_defaulthistorymessages",
                "defaultHistory",
                0,
                settings.maxHistory,
            )
        new.defaultHistory = min(new.defaultHistory, new.historyLength)
        if settings.archive:
            boolean("muc#roomconfig_enablearchiving", "archiving")

        codes = []
        if new.whois != self.whois:
            codes.append("172" if new.whois == "anyone" else "173")
        if new.archiving != self.archiving:
            codes.append("170" if new.archiving else "171")
        others = [key for key in self._FIELDS if key not in ("whois", "archiving")]
        if any(getattr(new, key) != getattr(self, key) for key in others):
            codes.append("104")
        return new, sorted(codes)


def _boolean(name, value):
    value = value.strip().lower()
    if value in ("1", "true"):
        return True
    if value in ("0", "false"):
        return False
    raise ConfigError("not-acceptable", "%s must be true or false" % (name,))


def parseSubmission(x, formType=NS_MUC_ROOMCONFIG):
    """
    Read a submitted data form (XEP-0004) without converting its values.

    @param x: the C{<x xmlns='jabber:x:data'/>} element.
    @param formType: the C{FORM_TYPE} it must have if it has fields.
    @return: field name to its list of text values; empty for an empty
        form (an instant room).
    @raise ConfigError: if it is no submitted form of C{formType}.
    """
    if x.getAttribute("type") != "submit":
        raise ConfigError("bad-request", "not a submitted form")
    values = {}
    for field in x.elements(NS_DATA, "field"):
        name = field.getAttribute("var")
        if not name:
            continue
        values[name] = [str(v) for v in field.elements(NS_DATA, "value")]
    if values and values.get("FORM_TYPE", [None])[0] != formType:
        raise ConfigError("bad-request", "the form is not of type %s" % (formType,))
    values.pop("FORM_TYPE", None)
    return values
