"""
Tests for L{xmppws._parser}: strict, one-pass parsing of a TCP stream and
of WebSocket messages into the elements an C{XmlStream} consumes.
"""

import gc
import tracemalloc

from twisted.trial import unittest
from twisted.words.xish import domish

from xmppws._parser import ElementParser, FramingError, MessageParser

HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' to='example.com'>"
)


class Recorder:
    """
    A receiver recording what the parser reports.
    """

    def __init__(self):
        self.events = []
        self.parser = None
        self.stopOn = None

    def streamStarted(self, root):
        self.events.append(("start", root))

    def elementReceived(self, element):
        self.events.append(("element", element))
        if element.name == self.stopOn:
            self.parser.stop()

    def streamEnded(self):
        self.events.append(("end", None))


class StreamParserTests(unittest.TestCase):
    """
    L{ElementParser} reading a whole stream.
    """

    def setUp(self):
        self.recorder = Recorder()
        self.parser = self.recorder.parser = ElementParser(self.recorder, maxElementSize=500)

    def test_sameAsDomish(self):
        """
        The elements are those C{domish}'s parser builds from the same
        bytes: names, namespaces, prefixes, attributes and text.
        """
        data = (
            b"<message to='a@b' xml:lang='fr'><body>x &amp; y</body>"
            b"<q xmlns='urn:q' xmlns:p='urn:p' p:a='1'><p:c/></q></message>"
        )
        self.parser.feed(HEADER + data)
        ours = self.recorder.events[-1][1]
        theirs = []
        stream = domish.elementStream()
        stream.DocumentStartEvent = lambda root: None
        stream.ElementEvent = theirs.append
        stream.parse(HEADER + data)
        self.assertEqual(ours.toXml(), theirs[0].toXml())
        self.assertEqual(ours.localPrefixes, theirs[0].localPrefixes)
        self.assertEqual(ours.q.localPrefixes, theirs[0].q.localPrefixes)

    def test_eventsInOrder(self):
        """
        The header, each element as it ends, and the footer are reported in
        order, across reads cut anywhere.
        """
        data = HEADER + b"<a/><b>t</b></stream:stream>"
        for index in range(len(data)):
            recorder = Recorder()
            parser = ElementParser(recorder)
            parser.feed(data[:index])
            parser.feed(data[index:])
            self.assertEqual(
                [(kind, getattr(e, "name", None)) for kind, e in recorder.events],
                [("start", "stream"), ("element", "a"), ("element", "b"), ("end", None)],
            )

    def test_restartInSameRead(self):
        """
        After L{ElementParser.stop}, the bytes from the next token on are
        returned, for a new parser.
        """
        self.recorder.stopOn = "auth"
        rest = self.parser.feed(HEADER + b"<auth/>" + HEADER + b"<c/>")
        self.assertEqual(rest, HEADER + b"<c/>")

    def test_elementLimit(self):
        """
        An element over the limit is C{policy-violation}, whether it is
        still open or its start tag is.
        """
        self.parser.feed(HEADER)
        self.assertRaises(FramingError, self.parser.feed, b"<a>" + b"x" * 600)
        parser = ElementParser(Recorder(), maxElementSize=500)
        parser.feed(HEADER)
        error = self.assertRaises(FramingError, parser.feed, b"<a b='" + b"x" * 600)
        self.assertEqual(error.condition, "policy-violation")

    def test_restricted(self):
        """
        Comments, processing instructions, document types and undefined
        entities are C{restricted-xml}.
        """
        for data in (b"<!--c--><a/>", b"<?pi?>", b"<a>&nbsp;</a>"):
            parser = ElementParser(Recorder())
            parser.feed(HEADER)
            error = self.assertRaises(FramingError, parser.feed, data)
            self.assertEqual(error.condition, "restricted-xml", data)
        error = self.assertRaises(
            FramingError, ElementParser(Recorder()).feed, b"<!DOCTYPE x><stream/>"
        )
        self.assertEqual(error.condition, "restricted-xml")


class MessageParserTests(unittest.TestCase):
    """
    L{MessageParser} reading WebSocket messages.
    """

    def setUp(self):
        self.parser = MessageParser(b"<w xmlns='jabber:client'>", standalone=True)

    def test_oneElement(self):
        """
        A message's element takes the context's namespace when it declares
        none.
        """
        [element] = self.parser.parse(b"<message><body>hi</body></message>")
        self.assertEqual((element.uri, element.body.uri), ("jabber:client", "jabber:client"))
        self.assertIsNone(element.parent)

    def test_severalElements(self):
        """
        Every top-level element of the message is returned (the framing
        refuses more than one).
        """
        self.assertEqual(len(self.parser.parse(b"<a/><b/>")), 2)

    def test_nothingCarriedOver(self):
        """
        Half an element is an error of its own message; the next message
        starts afresh.
        """
        self.assertRaises(FramingError, self.parser.parse, b"<message><body>")
        [element] = self.parser.parse(b"<presence/>")
        self.assertEqual(element.name, "presence")

    def test_contextNotClosable(self):
        """
        A message cannot close the context to smuggle elements out of it.
        """
        error = self.assertRaises(FramingError, self.parser.parse, b"<a/></w><w><b/>")
        self.assertEqual(error.condition, "not-well-formed")

    def test_entityOutsideElement(self):
        """
        In standalone mode, an entity reference outside the element is
        C{not-well-formed}, as in a standalone document; inside, an
        undefined one is C{restricted-xml}.
        """
        error = self.assertRaises(FramingError, self.parser.parse, b"<a/>&ent;")
        self.assertEqual(error.condition, "not-well-formed")
        error = self.assertRaises(FramingError, self.parser.parse, b"<a>&ent;</a>")
        self.assertEqual(error.condition, "restricted-xml")

    def test_noMemoryKept(self):
        """
        Once released (at the end of a network read), the parser keeps
        nothing: no expat parser, no buffer grown by a large message.
        """
        self.parser.parse(b"<a/>")
        self.parser.release()
        gc.collect()
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)
        before = tracemalloc.get_traced_memory()[0]
        self.parser.parse(b"<a>" + b"x" * 200000 + b"</a>")
        self.parser.release()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        self.assertLess(after - before, 2000)

    def test_sharedWithinRead(self):
        """
        Until released, messages share one parser, and each is checked on
        its own.
        """
        self.parser.parse(b"<a/>")
        self.assertRaises(FramingError, self.parser.parse, b"<b>")
        [element] = self.parser.parse(b"<c/>")
        self.assertEqual(element.name, "c")
