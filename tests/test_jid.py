# -*- test-case-name: tests.test_jid -*-
"""
Tests for L{xmppws.c2s.jid}: RFC 7622 addresses prepared with the PRECIS
profiles of RFC 8265, bounded, and never interned.
"""

import pickle

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial import unittest
from twisted.words.protocols.jabber import jid as twistedjid
from twisted.words.protocols.jabber.jid import JID, InvalidFormat

from xmppws.c2s import jid

# Twisted's intern cache: a module global, so its name is not mangled.
INTERNED = vars(twistedjid)["__internJIDs"]


def malformed(testCase, text, part=None):
    """
    Assert that C{jid.parse(text)} raises L{jid.JIDMalformed} (about
    C{part}, when given) and return the exception.
    """
    e = testCase.assertRaises(jid.JIDMalformed, jid.parse, text)
    if part is not None:
        testCase.assertEqual(e.part, part)
    return e


class SplitTests(unittest.TestCase):
    """
    L{jid.split} finds the separators as RFC 7622 section 3.1 says.
    """

    def test_full(self):
        """
        A full JID splits into localpart, domainpart and resourcepart.
        """
        self.assertEqual(jid.split("a@b/c"), ("a", "b", "c"))

    def test_domainOnly(self):
        """
        A domain alone has no localpart and no resourcepart.
        """
        self.assertEqual(jid.split("example.org"), (None, "example.org", None))

    def test_resourceStartsAtFirstSlash(self):
        """
        The resourcepart starts at the first slash, and may hold slashes
        and at signs itself.
        """
        self.assertEqual(jid.split("a@b/c/d@e"), ("a", "b", "c/d@e"))

    def test_atAfterSlashIsResource(self):
        """
        An at sign after the first slash belongs to the resourcepart: the
        address has no localpart.
        """
        self.assertEqual(jid.split("b/c@d"), (None, "b", "c@d"))

    def test_emptyParts(self):
        """
        A separator followed (or preceded) by nothing is an error.
        """
        for text, part in (("@b", "localpart"), ("b/", "resourcepart")):
            e = self.assertRaises(jid.JIDMalformed, jid.split, text)
            self.assertEqual(e.part, part)

    def test_notText(self):
        """
        Bytes or L{None} are not addresses.
        """
        for value in (b"a@b", None, 3):
            self.assertRaises(jid.JIDMalformed, jid.split, value)


class LocalpartTests(unittest.TestCase):
    """
    Localparts are prepared with C{UsernameCaseMapped} (RFC 8265
    section 3.3) and exclude the RFC 7622 section 3.3.1 characters.
    """

    def test_asciiLowerCased(self):
        """
        ASCII letters are lower-cased.
        """
        self.assertEqual(jid.prepLocalpart("Juliet"), "juliet")

    def test_asciiPunctuation(self):
        """
        Printable ASCII other than the forbidden characters is allowed.
        """
        punctuation = "a!#$%()*+,-.;=?[\\]^_`{|}~"
        self.assertEqual(jid.prepLocalpart(punctuation), punctuation)

    def test_forbiddenCharacters(self):
        """
        Each of C{" & ' / : < > @} makes a localpart malformed, on the
        ASCII path and after width mapping (a fullwidth at sign).
        """
        for character in "\"&':<>":
            self.assertRaises(jid.JIDMalformed, jid.prepLocalpart, "a" + character)
        self.assertRaises(jid.JIDMalformed, jid.prepLocalpart, "a\uff20b")

    def test_space(self):
        """
        A localpart has no spaces.
        """
        self.assertRaises(jid.JIDMalformed, jid.prepLocalpart, "a b")

    def test_unicodeLowerCased(self):
        """
        Non-ASCII letters are mapped with Unicode toLowerCase, not case
        folding: C{ß} stays C{ß}.
        """
        self.assertEqual(jid.prepLocalpart("ÉLAN"), "élan")
        self.assertEqual(jid.prepLocalpart("Straße"), "straße")

    def test_normalisedNFC(self):
        """
        A decomposed character is composed (NFC).
        """
        self.assertEqual(jid.prepLocalpart("e\u0301"), "\u00e9")

    def test_widthMapped(self):
        """
        Fullwidth letters are mapped to their ASCII counterparts.
        """
        self.assertEqual(jid.prepLocalpart("\uff41\uff42"), "ab")

    def test_compatibilityCharacters(self):
        """
        Characters with compatibility decompositions (a ligature, a Roman
        numeral) are refused, as C{IdentifierClass} says.
        """
        for text in ("\ufb01", "\u2168"):
            self.assertRaises(jid.JIDMalformed, jid.prepLocalpart, text)

    def test_empty(self):
        """
        An empty localpart is malformed.
        """
        self.assertRaises(jid.JIDMalformed, jid.prepLocalpart, "")

    def test_longestASCII(self):
        """
        1023 bytes is the longest localpart; 1024 is too long.
        """
        self.assertEqual(jid.prepLocalpart("a" * 1023), "a" * 1023)
        self.assertRaises(jid.JIDMalformed, jid.prepLocalpart, "a" * 1024)

    def test_longestMultibyte(self):
        """
        The limit counts UTF-8 bytes after preparation, not characters.
        """
        # U+00E9 is two bytes: 511 of them and one ASCII letter are 1023.
        self.assertEqual(len(jid.prepLocalpart("\u00e9" * 511 + "a").encode("utf-8")), 1023)
        self.assertRaises(jid.JIDMalformed, jid.prepLocalpart, "\u00e9" * 512)

    def test_hugeInputRefusedEarly(self):
        """
        Input far beyond the limit is refused as too long.
        """
        e = self.assertRaises(jid.JIDMalformed, jid.prepLocalpart, "\u00e9" * 100000)
        self.assertIn("longer than 1023 bytes", str(e))


class DomainpartTests(unittest.TestCase):
    """
    Domainparts are IDNA-aware domain names or IP literals (RFC 7622
    section 3.2).
    """

    def test_lowerCased(self):
        """
        ASCII domains are lower-cased.
        """
        self.assertEqual(jid.prepDomainpart("Example.ORG"), "example.org")

    def test_trailingDot(self):
        """
        One trailing dot is dropped; two leave an empty label.
        """
        self.assertEqual(jid.prepDomainpart("example.org."), "example.org")
        self.assertRaises(jid.JIDMalformed, jid.prepDomainpart, "example.org..")

    def test_uLabels(self):
        """
        Internationalised names are mapped (UTS 46, non-transitional) and
        kept as U-labels; an A-label gives the same U-label.
        """
        self.assertEqual(jid.prepDomainpart("Bücher.example"), "bücher.example")
        self.assertEqual(jid.prepDomainpart("xn--bcher-kva.example"), "bücher.example")
        self.assertEqual(jid.prepDomainpart("faß.de"), "faß.de")

    def test_ideographicFullStop(self):
        """
        U+3002 separates labels like a dot.
        """
        self.assertEqual(jid.prepDomainpart("例子\u3002测试"), "例子.测试")

    def test_notLDH(self):
        """
        Labels with characters outside letters, digits and hyphens, with
        a leading or trailing hyphen, empty labels and labels over 63
        characters are refused.
        """
        for text in ("foo_bar.org", "-a.org", "a-.org", "a..org", "a b.org", "a" * 64 + ".org"):
            self.assertRaises(jid.JIDMalformed, jid.prepDomainpart, text)

    def test_reservedLabels(self):
        """
        Hyphens in the third and fourth positions are reserved for
        A-labels; invalid A-labels are refused.
        """
        for text in ("ab--cd.org", "xn--abc.org", "xn--zz.org"):
            self.assertRaises(jid.JIDMalformed, jid.prepDomainpart, text)

    def test_disallowedUnicode(self):
        """
        A fullwidth solidus maps to a slash, which no label may hold.
        """
        self.assertRaises(jid.JIDMalformed, jid.prepDomainpart, "ex\uff0fample.org")

    def test_ipv4(self):
        """
        An IPv4 address is a domainpart as it is.
        """
        self.assertEqual(jid.prepDomainpart("192.0.2.1"), "192.0.2.1")

    def test_ipv6(self):
        """
        IPv6 literals take their RFC 5952 form, with IPv4-mapped
        addresses in mixed notation.
        """
        self.assertEqual(jid.prepDomainpart("[2001:DB8:0::0:1]"), "[2001:db8::1]")
        self.assertEqual(jid.prepDomainpart("[::ffff:192.0.2.1]"), "[::ffff:192.0.2.1]")

    def test_ipv6Malformed(self):
        """
        Unterminated literals, literals with a zone, and IPv4 addresses in
        brackets are refused.
        """
        for text in ("[::1", "[fe80::1%eth0]", "[192.0.2.1]", "[xyz]"):
            self.assertRaises(jid.JIDMalformed, jid.prepDomainpart, text)

    def test_empty(self):
        """
        An empty domainpart, or only a dot, is refused.
        """
        for text in ("", ".", "\u3002"):
            self.assertRaises(jid.JIDMalformed, jid.prepDomainpart, text)


class ResourcepartTests(unittest.TestCase):
    """
    Resourceparts are prepared with C{OpaqueString} (RFC 8265 section 4.2).
    """

    def test_keptAsIs(self):
        """
        Case, spaces, slashes and at signs are kept.
        """
        self.assertEqual(jid.prepResourcepart("My Phone/2@home"), "My Phone/2@home")

    def test_nonASCIISpaceMapped(self):
        """
        A no-break space becomes an ASCII space.
        """
        self.assertEqual(jid.prepResourcepart("a\u00a0b"), "a b")

    def test_disallowed(self):
        """
        Control characters and default ignorable code points are refused.
        """
        for text in ("a\x00", "a\x7f", "a\u200b"):
            self.assertRaises(jid.JIDMalformed, jid.prepResourcepart, text)

    def test_length(self):
        """
        1023 bytes is the longest resourcepart.
        """
        self.assertEqual(len(jid.prepResourcepart("r" * 1023)), 1023)
        self.assertRaises(jid.JIDMalformed, jid.prepResourcepart, "r" * 1024)
        self.assertRaises(jid.JIDMalformed, jid.prepResourcepart, "")


class ParseTests(unittest.TestCase):
    """
    L{jid.parse} prepares each part and returns Twisted JIDs that are not
    interned.
    """

    def test_parts(self):
        """
        Each part is prepared.
        """
        address = jid.parse("Juliet@Example.COM/Balcony")
        self.assertEqual(
            (address.user, address.host, address.resource), ("juliet", "example.com", "Balcony")
        )
        self.assertEqual(address.full(), "juliet@example.com/Balcony")
        self.assertEqual(address.userhost(), "juliet@example.com")

    def test_equalToTwisted(self):
        """
        The JID compares and hashes like Twisted's JID for the same
        address, so it works as a key wherever those are used.
        """
        for text in ("juliet@example.com/balcony", "example.com", "a@b"):
            ours, theirs = jid.parse(text), JID(text)
            self.assertEqual(ours, theirs)
            self.assertEqual(hash(ours), hash(theirs))
            self.assertIsInstance(ours, JID)

    def test_malformedIsInvalidFormat(self):
        """
        L{jid.JIDMalformed} is Twisted's L{InvalidFormat}, and names the
        part that was wrong.
        """
        e = malformed(self, "a@b/" + "r" * 2000, "resourcepart")
        self.assertIsInstance(e, InvalidFormat)
        malformed(self, "x" * 2000 + "@b", "localpart")
        malformed(self, "a@" + "x" * 2000, "domainpart")

    def test_notInterned(self):
        """
        Parsing, taking the bare JID (both ways) and the bare JID of that
        leave Twisted's intern cache as it was.
        """
        before = len(INTERNED)
        for i in range(200):
            address = jid.parse("user%d@host%d.example/r%d" % (i, i, i))
            address.userhostJID().userhostJID()
            jid.bare(address)
        self.assertEqual(len(INTERNED), before)

    def test_bare(self):
        """
        L{jid.bare} drops the resource, and returns a bare JID itself.
        """
        full = jid.parse("a@b/c")
        self.assertEqual(jid.bare(full), JID("a@b"))
        bare = jid.parse("a@b")
        self.assertIs(jid.bare(bare), bare)
        self.assertIs(bare.userhostJID(), bare)

    def test_bareOfTwistedJID(self):
        """
        L{jid.bare} of a JID Twisted made does not intern it either.
        """
        before = len(INTERNED)
        self.assertEqual(jid.bare(JID("a@b/unique-%d" % (id(self),))), JID("a@b"))
        self.assertEqual(len(INTERNED), before)

    def test_fromParts(self):
        """
        L{jid.fromParts} prepares parts given separately.
        """
        self.assertEqual(jid.fromParts("A", "B.example", "R"), JID("a@b.example/R"))
        self.assertEqual(jid.fromParts(None, "b", None), JID("b"))
        self.assertRaises(jid.JIDMalformed, jid.fromParts, "a@", "b")

    def test_prepared(self):
        """
        L{jid.prepared} takes parts as they are.
        """
        address = jid.prepared("a", "b", "R")
        self.assertEqual((address.user, address.host, address.resource), ("a", "b", "R"))

    def test_pickle(self):
        """
        A parsed JID survives pickling.
        """
        address = jid.parse("a@b/c")
        self.assertEqual(pickle.loads(pickle.dumps(address)), address)

    def test_hugeAddress(self):
        """
        A megabyte of address is refused without preparing it.
        """
        malformed(self, "a" * 2**20)


class StanzaMemoTests(unittest.TestCase):
    """
    L{jid.ofStanza} parses a stanza's address once, and keeps it on the
    stanza only.
    """

    def test_parsedOnce(self):
        """
        Asking twice gives the same object; a changed attribute is parsed
        afresh.
        """
        from twisted.words.xish import domish

        stanza = domish.Element(("jabber:client", "message"))
        stanza["to"] = "Juliet@Example.com/balcony"
        first = jid.ofStanza(stanza, "to")
        self.assertIs(jid.ofStanza(stanza, "to"), first)
        self.assertEqual(first.full(), "juliet@example.com/balcony")
        stanza["to"] = "romeo@example.net"
        self.assertEqual(jid.ofStanza(stanza, "to").full(), "romeo@example.net")
        self.assertIsNone(jid.ofStanza(stanza, "from"))

    def test_stamp(self):
        """
        A stamped address is written to the attribute and given back
        without a parse.
        """
        from twisted.words.xish import domish

        stanza = domish.Element(("jabber:client", "message"))
        address = jid.parse("juliet@example.com/balcony")
        jid.stamp(stanza, "from", address)
        self.assertEqual(stanza["from"], "juliet@example.com/balcony")
        self.assertIs(jid.ofStanza(stanza, "from"), address)

    def test_malformed(self):
        """
        A malformed address raises every time, and is not kept.
        """
        from twisted.words.xish import domish

        stanza = domish.Element(("jabber:client", "message"))
        stanza["to"] = "@example.com"
        self.assertRaises(jid.JIDMalformed, jid.ofStanza, stanza, "to")
        self.assertRaises(jid.JIDMalformed, jid.ofStanza, stanza, "to")

    def test_notSerialised(self):
        """
        The memo is not part of the stanza's XML.
        """
        from twisted.words.xish import domish

        stanza = domish.Element(("jabber:client", "message"))
        stanza["to"] = "juliet@example.com"
        jid.ofStanza(stanza, "to")
        self.assertEqual(stanza.toXml(), "<message xmlns='jabber:client' to='juliet@example.com'/>")


class PropertyTests(unittest.TestCase):
    """
    Whatever the input, the parser either refuses it with
    L{jid.JIDMalformed} or returns a stable, bounded address.
    """

    @settings(max_examples=500, deadline=None, derandomize=True, database=None)
    @given(st.text(max_size=40))
    def test_anyText(self, text):
        """
        Any text parses to an address whose parts are within the limit and
        which parses to itself (preparation is idempotent), or is refused
        with L{jid.JIDMalformed}.
        """
        try:
            address = jid.parse(text)
        except jid.JIDMalformed:
            return
        for part in (address.user, address.host, address.resource):
            if part is not None:
                self.assertLessEqual(len(part.encode("utf-8")), jid.MAX_PART_BYTES)
        self.assertEqual(jid.parse(address.full()), address)
