# -*- test-case-name: tests.test_mam -*-
"""
Archiving preferences (XEP-0441, in the C{urn:xmpp:mam:2} namespace): a
default (C{always}, C{never} or C{roster}) and two lists of JIDs, and
the rule that decides whether a message with a given JID is archived.

A listed bare JID matches any resource of it; a listed full JID only
itself (XEP-0441 section 4).  A JID in both lists is never archived.
"""

import json

from twisted.words.xish import domish

from xmppws.c2s import jid as jids
from xmppws.c2s.mamquery import NS_MAM, QueryError

__all__ = ["DEFAULTS", "ArchivePrefs", "parsePrefs"]

DEFAULTS = ("always", "never", "roster")


class ArchivePrefs:
    """
    One account's preferences.

    @ivar default: C{'always'}, C{'never'} or C{'roster'}.
    @ivar always: JIDs (prepared, as text) always archived.
    @ivar never: JIDs never archived.
    """

    __slots__ = ("default", "always", "never")

    def __init__(self, default="always", always=(), never=()):
        self.default = default
        self.always = frozenset(always)
        self.never = frozenset(never)

    def __eq__(self, other):
        if not isinstance(other, ArchivePrefs):
            return NotImplemented
        return (self.default, self.always, self.never) == (other.default, other.always, other.never)

    def __repr__(self):
        return "ArchivePrefs(%r, %r, %r)" % (self.default, sorted(self.always), sorted(self.never))

    def rule(self, target):
        """
        What the lists say about a JID.

        @param target: the other party's JID (a Twisted Words C{JID}, as
            L{xmppws.c2s.jid.parse} returns).
        @return: C{True} (always), C{False} (never) or L{None} (the
            default applies).
        """
        full = target.full()
        bareText = jids.bare(target).full()
        if full in self.never or bareText in self.never:
            return False
        if full in self.always or bareText in self.always:
            return True
        return None

    def toElement(self):
        """
        The C{<prefs/>} element (both lists present, even empty).
        """
        prefs = domish.Element((NS_MAM, "prefs"))
        prefs["default"] = self.default
        for name in ("always", "never"):
            holder = prefs.addElement(name)
            for jid in sorted(getattr(self, name)):
                holder.addElement("jid", content=jid)
        return prefs

    def toJSON(self):
        return json.dumps(
            {"default": self.default, "always": sorted(self.always), "never": sorted(self.never)},
            sort_keys=True,
        )

    @classmethod
    def fromJSON(cls, text):
        """
        The preferences stored with L{toJSON}; the defaults for anything
        unreadable.
        """
        try:
            data = json.loads(text)
            default = data["default"]
            if default not in DEFAULTS:
                raise ValueError(default)
            return cls(default, data.get("always", ()), data.get("never", ()))
        except (ValueError, KeyError, TypeError):
            return cls()


def parsePrefs(element, limit):
    """
    Read the C{<prefs/>} of an iq C{set}.

    @param limit: the most JIDs both lists may hold together.
    @rtype: L{ArchivePrefs}
    @raise QueryError: for a missing or unknown default, a malformed JID,
        or too many JIDs.
    """
    default = element.getAttribute("default")
    if default not in DEFAULTS:
        raise QueryError(
            "bad-request", "modify", "'default' must be 'always', 'never' or 'roster'."
        )
    lists = {"always": set(), "never": set()}
    total = 0
    for name in ("always", "never"):
        for holder in element.elements(NS_MAM, name):
            for item in holder.elements(NS_MAM, "jid"):
                total += 1
                if total > limit:
                    raise QueryError(
                        "not-acceptable",
                        "modify",
                        "At most %d JIDs may be listed in the archiving preferences." % (limit,),
                    )
                try:
                    jid = jids.parse(str(item).strip())
                except jids.JIDMalformed as e:
                    raise QueryError(
                        "jid-malformed", "modify", "A listed JID is not valid (%s: %s)." % (
                            e.part, e.reason)
                    )
                lists[name].add(jid.full())
    return ArchivePrefs(default, lists["always"], lists["never"])
