# -*- test-case-name: tests.test_jid -*-
"""
The one JID parser for everything a client or a peer sends: RFC 7622
addresses, prepared with the PRECIS profiles of RFC 8265 (via
C{precis-i18n}) and bounded, never interned.

    from xmppws.c2s import jid
    to = jid.parse(stanza["to"])          # raises jid.JIDMalformed
    nick = jid.prepResourcepart(nick)     # a MUC nickname, a bound resource

What this module returns are Twisted Words L{JID
<twisted.words.protocols.jabber.jid.JID>} instances, so they compare,
hash and print like the JIDs the rest of Twisted and tx-xmpp use.  Unlike
C{twisted.words.protocols.jabber.jid.internJID}, nothing here keeps a
reference to what it parsed: a JID a client made up lives as long as the
stanza that carried it (Twisted's intern cache keeps every distinct JID
for the life of the process, and C{JID.userhostJID()} feeds it).

Beware of what else interns: C{internJID} itself, C{JID.userhostJID()} on
a JID Twisted made (use L{bare}), Twisted's C{ListenAuthenticator} and
tx-xmpp's component authenticator with the stream header's C{to}, and
tx-xmpp's C{generic.Stanza.fromElement}, C{Router.route}, C{pubsub} and
C{muc} modules with the addresses of the stanzas they read.  Parse what a
client sent with this module before handing it to them.

Preparation follows RFC 7622 section 3:

  - localpart: the C{UsernameCaseMapped} profile, without the characters
    C{" & ' / : < > @};
  - domainpart: an IDNA-aware domain name (RFC 5890: LDH labels that
    are not reserved, lower-cased; A-labels and non-ASCII labels checked
    with IDNA2008 after the UTS 46 mapping and kept as U-labels), an
    IPv4 address, or an IPv6 literal in brackets (RFC 5952 text form, no
    zone); a trailing dot is dropped and the ideographic full stops are
    label separators;
  - resourcepart: the C{OpaqueString} profile;

and each part is at most L{MAX_PART_BYTES} bytes of UTF-8 once prepared.
Plain ASCII parts, by far the most common, take a fast path that gives
the same result as the profiles without running them.
"""

import ipaddress
import re

import idna
from precis_i18n import get_profile
from twisted.words.protocols.jabber.jid import JID, InvalidFormat

__all__ = [
    "MAX_PART_BYTES",
    "JIDMalformed",
    "bare",
    "fromParts",
    "fromPrepared",
    "parse",
    "prepDomainpart",
    "prepLocalpart",
    "prepResourcepart",
    "prepared",
    "ofStanza",
    "split",
    "stamp",
]

MAX_PART_BYTES = 1023

# Input longer than this is refused before any preparation, which bounds
# the work spent on hostile input.  No valid localpart or resourcepart is
# refused by it: PRECIS preparation never shrinks text to less than a
# quarter of its characters in UTF-8 bytes (the most NFC composes is four
# characters into one of three bytes).  A domainpart padded with
# characters the UTS 46 mapping drops (soft hyphens) may be, on purpose.
_MAX_INPUT_CHARS = 4 * MAX_PART_BYTES

_LOCAL_FORBIDDEN = frozenset("\"&'/:<>@")
_ASCII_LOCAL = re.compile(r"[!#-%(-.0-9;=?A-Z\[-~]+")
_ASCII_RESOURCE = re.compile(r"[ -~]+")
_ASCII_DOMAIN = re.compile(
    r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)
# U+3002, U+FF0E and U+FF61 separate labels too (RFC 7622 section 3.2).
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})

_username = get_profile("UsernameCaseMapped")
_opaque = get_profile("OpaqueString")


class JIDMalformed(InvalidFormat, ValueError):
    """
    Text that is not an RFC 7622 address: the C{jid-malformed} stanza
    error.  A subclass of Twisted's C{InvalidFormat}, so code that catches
    that catches this too.

    @ivar part: C{'localpart'}, C{'domainpart'}, C{'resourcepart'} or
        C{'jid'}: what was wrong.
    @ivar reason: why, in a few words that never repeat the refused text
        (fit for a stanza error's C{<text/>}).
    """

    def __init__(self, part, reason):
        InvalidFormat.__init__(self, "%s: %s" % (part, reason))
        self.part = part
        self.reason = reason


class _PreparedJID(JID):
    """
    A JID whose parts are already prepared; its bare JID is made without
    Twisted's intern cache, once, and kept by the JID itself.
    """

    _bare = None

    def __init__(self, user, host, resource):
        # JID.__init__ would prepare the parts again with RFC 6122
        # stringprep; they are prepared already.
        self.user = user
        self.host = host
        self.resource = resource

    def userhostJID(self):
        if not self.resource:
            return self
        address = self._bare
        if address is None:
            address = self._bare = _PreparedJID(self.user, self.host, None)
        return address

    def __reduce__(self):
        return (_PreparedJID, (self.user, self.host, self.resource))


def _checkLength(part, prepared):
    if not prepared:
        raise JIDMalformed(part, "empty")
    if len(prepared) > MAX_PART_BYTES // 4 and len(prepared.encode("utf-8")) > MAX_PART_BYTES:
        raise JIDMalformed(part, "longer than %d bytes" % (MAX_PART_BYTES,))
    return prepared


def _checkInput(part, text):
    if not isinstance(text, str):
        raise JIDMalformed(part, "not text")
    if len(text) > _MAX_INPUT_CHARS:
        raise JIDMalformed(part, "longer than %d bytes" % (MAX_PART_BYTES,))


def prepLocalpart(text):
    """
    Prepare a localpart (RFC 7622 section 3.3).

    @type text: L{str}
    @rtype: L{str}
    @raise JIDMalformed: if it is empty, too long or has a character a
        localpart may not have.
    """
    _checkInput("localpart", text)
    if text.isascii() and _ASCII_LOCAL.fullmatch(text):
        return _checkLength("localpart", text.lower())
    try:
        prepared = _username.enforce(text)
    except UnicodeError as e:
        raise JIDMalformed("localpart", _reason(e)) from None
    if _LOCAL_FORBIDDEN.intersection(prepared):
        raise JIDMalformed("localpart", "has a character a localpart may not have")
    return _checkLength("localpart", prepared)


def prepResourcepart(text):
    """
    Prepare a resourcepart (RFC 7622 section 3.4); also what a MUC
    nickname is.

    @type text: L{str}
    @rtype: L{str}
    @raise JIDMalformed: if it is empty, too long or has a character the
        C{OpaqueString} profile does not allow.
    """
    _checkInput("resourcepart", text)
    if text.isascii() and _ASCII_RESOURCE.fullmatch(text):
        return _checkLength("resourcepart", text)
    try:
        prepared = _opaque.enforce(text)
    except UnicodeError as e:
        raise JIDMalformed("resourcepart", _reason(e)) from None
    return _checkLength("resourcepart", prepared)


def prepDomainpart(text):
    """
    Prepare a domainpart (RFC 7622 section 3.2).

    @type text: L{str}
    @rtype: L{str}
    @raise JIDMalformed: if it is no domain name or IP literal, or too
        long.
    """
    _checkInput("domainpart", text)
    if text.isascii():
        if text.endswith("."):
            text = text[:-1]
        lowered = text.lower()
        if _ASCII_DOMAIN.fullmatch(lowered):
            if "--" in lowered:
                # A-labels are checked as IDNA2008; other labels with
                # "--" in the third and fourth positions are reserved.
                for label in lowered.split("."):
                    if label[2:4] == "--" and not label.startswith("xn--"):
                        raise JIDMalformed("domainpart", "has a reserved label")
                if "xn--" in lowered:
                    return _idnaDomain(lowered)
            return _checkLength("domainpart", lowered)
        if lowered.startswith("["):
            return _ipLiteral(lowered)
        raise JIDMalformed("domainpart", "empty" if not text else "not a domain name")
    text = text.translate(_DOTS)
    if text.endswith("."):
        text = text[:-1]
    return _idnaDomain(text)


def _ipLiteral(text):
    """
    An IPv6 literal in its RFC 5952 form, brackets included.
    """
    if not text.endswith("]") or "%" in text:
        raise JIDMalformed("domainpart", "not an IPv6 literal")
    try:
        address = ipaddress.IPv6Address(text[1:-1])
    except ValueError:
        raise JIDMalformed("domainpart", "not an IPv6 literal") from None
    mapped = address.ipv4_mapped
    if mapped is not None:
        return "[::ffff:%s]" % (mapped,)
    return "[%s]" % (address.compressed,)


def _idnaDomain(text):
    if not text:
        raise JIDMalformed("domainpart", "empty")
    try:
        alabels = idna.encode(text, uts46=True, transitional=False)
        prepared = idna.decode(alabels)
    except (idna.IDNAError, UnicodeError, ValueError):
        raise JIDMalformed("domainpart", "not an internationalised domain name") from None
    return _checkLength("domainpart", prepared)


def _reason(error):
    """
    A short reason for a PRECIS refusal, such as C{'has a disallowed
    character (spaces)'}, without the text refused.
    """
    detail = getattr(error, "reason", "") or ""
    if detail.startswith("DISALLOWED/"):
        return "has a disallowed character (%s)" % (detail.split("/", 1)[1],)
    return detail or "not allowed"


def split(text):
    """
    Split an address into its raw parts (RFC 7622 section 3.1): the
    resourcepart starts at the first C{/}, the localpart ends at the
    first C{@} before it.

    @type text: L{str}
    @return: C{(localpart or None, domainpart, resourcepart or None)},
        not prepared.
    @raise JIDMalformed: if a separator is present but the part it
        introduces is empty.
    """
    if not isinstance(text, str):
        raise JIDMalformed("jid", "not text")
    if len(text) > 3 * _MAX_INPUT_CHARS:
        raise JIDMalformed("jid", "too long")
    local = resource = None
    slash = text.find("/")
    if slash >= 0:
        text, resource = text[:slash], text[slash + 1 :]
        if not resource:
            raise JIDMalformed("resourcepart", "empty")
    at = text.find("@")
    if at >= 0:
        local, text = text[:at], text[at + 1 :]
        if not local:
            raise JIDMalformed("localpart", "empty")
    return local, text, resource


def fromParts(localpart, domainpart, resourcepart=None):
    """
    Build a JID from raw parts, preparing each.

    @param localpart: the localpart, or L{None}.
    @param domainpart: the domainpart.
    @param resourcepart: the resourcepart, or L{None}.
    @rtype: L{JID}
    @raise JIDMalformed: if a part is not valid.
    """
    return _PreparedJID(
        None if localpart is None else prepLocalpart(localpart),
        prepDomainpart(domainpart),
        None if resourcepart is None else prepResourcepart(resourcepart),
    )


def parse(text):
    """
    Parse and prepare an address a client or peer sent.

    @param text: the address, e.g. a stanza's C{to} attribute.
    @type text: L{str}
    @return: a JID that is equal to (and hashes like) Twisted's JID for
        the same address, and is not interned.
    @rtype: L{JID}
    @raise JIDMalformed: if C{text} is not an RFC 7622 address.
    """
    return fromParts(*split(text))


_MEMO = "_xmppwsAddresses"


def ofStanza(stanza, attribute):
    """
    The address in one of a stanza's attributes, parsed once per stanza:
    the result is kept on the stanza itself (keyed by the attribute's
    text), so it lives exactly as long as the stanza does, and the
    modules a stanza goes through share one parse.

    @param stanza: the stanza.
    @type stanza: L{twisted.words.xish.domish.Element}
    @param attribute: C{'to'} or C{'from'}.
    @return: the address, or L{None} if the attribute is absent.
    @rtype: L{JID} or L{None}
    @raise JIDMalformed: if the attribute is no address.
    """
    text = stanza.attributes.get(attribute)
    if text is None:
        return None
    memo = stanza.__dict__.get(_MEMO)
    if memo is None:
        memo = {}
        setattr(stanza, _MEMO, memo)
    address = memo.get(text)
    if address is None:
        address = memo[text] = parse(text)
    return address


def stamp(stanza, attribute, address):
    """
    Set a stanza's attribute to an address already prepared, remembering
    it for L{ofStanza}.

    @type address: L{JID}
    """
    text = address.full()
    stanza.attributes[attribute] = text
    memo = stanza.__dict__.get(_MEMO)
    if memo is None:
        memo = {}
        setattr(stanza, _MEMO, memo)
    memo[text] = address


def bare(address):
    """
    The bare JID of C{address}, without interning it.

    @type address: L{JID}
    @rtype: L{JID}
    """
    if address.resource is None:
        return address
    if isinstance(address, _PreparedJID):
        return address.userhostJID()
    return _PreparedJID(address.user, address.host, None)


def fromPrepared(text):
    """
    Make a JID from an address this server prepared itself (one stored
    in its database, a served domain), splitting it without preparing
    it again.  Never for what a client or peer sent: use L{parse}.

    @type text: L{str}
    @rtype: L{JID}
    @raise JIDMalformed: if a separator introduces an empty part.
    """
    return _PreparedJID(*split(text))


def prepared(user, host, resource=None):
    """
    Make a JID from parts that are already prepared (such as parts of a
    JID this module returned), without preparing them again.

    @rtype: L{JID}
    """
    return _PreparedJID(user, host, resource)
