# -*- test-case-name: tests.test_quotas -*-
"""
Budgets for the state a client can make the embedded server keep.

Every kind of state that grows with what clients send has a limit here;
the modules that keep the state enforce it and answer with the error
the specifications give (see the table in C{docs/security.rst}):

    quota                    per       when reached
    maxResources             account   bind: resource-constraint (wait),
                                       after ending the oldest detached one
    maxRosterItems           account   roster set, subscribe, pre-approval:
                                       policy-violation (modify)
    maxPendingSubscriptions  account   an unknown contact's subscription
                                       request: resource-constraint (wait)
    maxRosterGroups          item      roster set: not-acceptable (modify)
    maxBlocked               account   block: policy-violation (modify)
    maxDirectedPresences     session   directed presence: policy-violation
                                       (modify)
    smMaxQueue               session   policy-violation stream error
    maxOfflineMessages       account   resource-constraint (wait)
    maxArchiveMessages       archive   none: the oldest messages make room
                                       (the message itself is delivered)
    maxArchivePrefs          account   archiving preferences: not-acceptable
                                       (modify)
    maxPepNodes              account   PEP node creation: not-allowed (cancel)
                                       with pubsub#errors max-nodes-exceeded
    maxPepItems              account   PEP publish: not-allowed (cancel) with
                                       pubsub#errors max-items-exceeded
    maxPepItemSize           item      PEP publish: not-acceptable (modify)
                                       with pubsub#errors payload-too-big
    maxVCardSize             account   vCard set: not-acceptable (modify)
    maxPrivateSize           account   private XML set: not-acceptable (modify)

A refusal is counted in the server's statistics as C{quota_NAME} (the
metrics report them) and logged.
"""

from twisted.logger import Logger
from twisted.words.xish import domish

__all__ = ["NS_ERRORS", "Quotas", "ResourceLimitReached", "refuse"]

NS_ERRORS = "urn:xmpp:errors"

log = Logger()


class ResourceLimitReached(Exception):
    """
    An account already has as many resources as it may bind.

    @ivar limit: that number.
    """

    def __init__(self, limit):
        Exception.__init__(self, limit)
        self.limit = limit


class Quotas:
    """
    The budgets, with their defaults.

    @ivar maxResources: resources bound to one account at once (detached
        XEP-0198 sessions included).
    @ivar maxRosterItems: items in one account's roster.
    @ivar maxPendingSubscriptions: subscription requests from contacts
        outside the roster kept for one account until it answers.
    @ivar maxRosterGroups: groups of one roster item.
    @ivar maxBlocked: entries in one account's block list.
    @ivar maxDirectedPresences: entities one session sent directed
        presence to (and did not make unavailable since).
    @ivar smMaxQueue: stanzas a XEP-0198 session may leave
        unacknowledged.
    @ivar maxOfflineMessages: offline messages kept for one account.
    @ivar maxArchiveMessages: messages kept in one message archive
        (XEP-0313): an account's, or a room's.
    @ivar maxArchivePrefs: JIDs in one account's archiving preferences
        (XEP-0441), C{always} and C{never} lists together.
    @ivar maxPepNodes: personal eventing (XEP-0163) nodes of one account.
    @ivar maxPepItems: items kept in one account's PEP nodes together.
    @ivar maxPepItemSize: bytes of one published PEP item, serialized.
    @ivar maxVCardSize: bytes of one account's vCard (XEP-0054),
        serialized.
    @ivar maxPrivateSize: bytes of one account's private XML storage
        (XEP-0049), every namespace together.
    """

    maxResources = 10
    maxRosterItems = 1000
    maxPendingSubscriptions = 100
    maxRosterGroups = 64
    maxBlocked = 1000
    maxDirectedPresences = 1000
    smMaxQueue = 500
    maxOfflineMessages = 1000
    maxArchiveMessages = 10000
    maxArchivePrefs = 1000
    maxPepNodes = 200
    maxPepItems = 1000
    maxPepItemSize = 128 * 1024
    maxVCardSize = 128 * 1024
    maxPrivateSize = 128 * 1024

    _names = (
        "maxResources",
        "maxRosterItems",
        "maxPendingSubscriptions",
        "maxRosterGroups",
        "maxBlocked",
        "maxDirectedPresences",
        "smMaxQueue",
        "maxOfflineMessages",
        "maxArchiveMessages",
        "maxArchivePrefs",
        "maxPepNodes",
        "maxPepItems",
        "maxPepItemSize",
        "maxVCardSize",
        "maxPrivateSize",
    )

    def __init__(self, **values):
        """
        @param values: budgets to change from their defaults, by name.
        @raise ValueError: for an unknown name, or a budget that is not a
            whole number of at least 1.
        """
        for name, value in values.items():
            if name not in self._names:
                raise ValueError("unknown quota %r" % (name,))
            setattr(self, name, value)
        for name in self._names:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError("%s must be a whole number of at least 1" % (name,))

    def __repr__(self):
        return "Quotas(%s)" % (
            ", ".join("%s=%r" % (name, getattr(self, name)) for name in self._names),
        )


def refuse(
    server, stanza, quota, condition, errorType, text, appCondition=None, appNamespace=NS_ERRORS
):
    """
    Refuse a stanza because a budget is spent: count it, log it, and
    return the error to the stanza's sender.

    @param server: the L{xmppws.c2s.server.XMPPServer}.
    @param quota: the L{Quotas} attribute that was reached.
    @param appCondition: the name of an application-specific condition,
        or L{None}.
    @param appNamespace: the namespace of C{appCondition}
        (C{urn:xmpp:errors} unless given, such as the pubsub errors of
        XEP-0060).
    """
    server.stats["quota_" + quota] += 1
    log.info(
        "{jid} reached its {quota} budget",
        jid=stanza.getAttribute("from"),
        quota=quota,
    )
    extra = None
    if appCondition is not None:
        extra = domish.Element((appNamespace, appCondition))
    server.bounce(stanza, condition, errorType, text, extra)
