"""
Tests for L{xmppws._parser}: strict, one-pass parsing of a TCP stream and
of WebSocket messages into the elements an C{XmlStream} consumes.
"""

import gc
import tracemalloc

from twisted.trial import unittest
from twisted.words.xish import domish

from xmppws._parser import RENEW_AFTER, ElementParser, FramingError, MessageParser

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


def domishElements(data):
    """
    The top-level elements Twisted's own parser builds from a stream.
    """
    elements = []
    stream = domish.elementStream()
    stream.DocumentStartEvent = lambda root: None
    stream.DocumentEndEvent = lambda: None
    stream.ElementEvent = elements.append
    stream.parse(data)
    return elements


def cuts(data, size):
    """
    C{data} in pieces of C{size} bytes.
    """
    return [data[i : i + size] for i in range(0, len(data), size)]


class StreamCutTests(unittest.TestCase):
    """
    A stream is read the same however its bytes are cut into reads,
    including across a restart, with exact accounting of element sizes.
    """

    def restart(self, pieces):
        """
        Feed C{pieces} to a parser that stops after C{<auth/>}.

        @return: what the stopped parser returned, and every piece after.
        """
        recorder = Recorder()
        recorder.stopOn = "auth"
        parser = recorder.parser = ElementParser(recorder)
        for index, piece in enumerate(pieces):
            rest = parser.feed(piece)
            if rest is not None:
                return rest + b"".join(pieces[index + 1 :])
        self.fail("the parser did not stop")

    def test_restartDribbled(self):
        """
        After a stop, the bytes of the new stream are handed back whole
        even when the new header came one byte per read.
        """
        for header in (HEADER, HEADER[len(b"<?xml version='1.0'?>") :]):
            after = header + b"<c/>"
            data = HEADER + b"<auth/>" + after
            for size in (1, 3, 7, 50):
                self.assertEqual(self.restart(cuts(data, size)), after, (header, size))

    def test_restartAfterOutsideFeed(self):
        """
        A stop between two reads (an answer given later) takes effect at
        the next token, wherever its bytes were cut.
        """
        recorder = Recorder()
        parser = ElementParser(recorder)
        parser.feed(HEADER + b"<auth/>")
        parser.stop()
        self.assertIsNone(parser.feed(b"<str"))
        self.assertEqual(parser.feed(b"eam:stream>"), b"<stream:stream>")

    def test_openTagCounts(self):
        """
        A start tag still open counts towards the element limit even when
        a quoted ">" and then only whitespace came (as keepalives would).
        """
        parser = ElementParser(Recorder(), maxElementSize=500)
        parser.feed(HEADER)
        parser.feed(b"<a b='>")
        for _ in range(100):
            try:
                parser.feed(b" " * 9)
            except FramingError as error:
                self.assertEqual(error.condition, "policy-violation")
                break
        else:
            self.fail("no error")

    def test_keepalivesCountNothing(self):
        """
        Whitespace between elements counts towards no element and is not
        kept.
        """
        parser = ElementParser(Recorder(), maxElementSize=500)
        parser.feed(HEADER + b"<a b='>'/>")
        gc.collect()
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(5000):
            parser.feed(b" ")
        gc.collect()
        self.assertLess(tracemalloc.get_traced_memory()[0] - before, 2000)
        parser.feed(b"<b>" + b"x" * 400 + b"</b>")

    def test_largeTokenAtOnce(self):
        """
        An element is reported as soon as its last byte is fed, however
        large its start tag (expat may otherwise defer a large token).
        """
        recorder = Recorder()
        parser = ElementParser(recorder)
        parser.feed(HEADER)
        tag = b"<a b='" + b"x" * 100000 + b"'/>"
        parser.feed(tag[:-1])
        self.assertEqual(len(recorder.events), 1)
        parser.feed(tag[-1:])
        self.assertEqual(recorder.events[-1][1].name, "a")


class RenewalTests(unittest.TestCase):
    """
    L{ElementParser} replaces its expat parser as a stream goes on, and
    nobody can tell.
    """

    root = (
        b"<?xml version='1.0'?><s:stream xmlns='jabber:client' "
        b"xmlns:s='http://etherx.jabber.org/streams' "
        b"xmlns:db='jabber:server:dialback' to='example.com'>"
    )

    def stream(self, count):
        """
        A stream of C{count} elements with ever new names, nested, some in
        namespaces the header declares, then the footer.
        """
        parts = [self.root]
        for i in range(count):
            parts.append(
                b"<message to='a@b' xml:lang='en' id='m%d'><x%d xmlns='urn:x' a%d='&amp;'>"
                b"<y%d>t &lt; %d</y%d></x%d><body>b</body></message>"
                b"<db:result to='b' from='a'>k%d</db:result>\n" % ((i,) * 8)
            )
        parts.append(b"</s:stream>")
        return b"".join(parts)

    def read(self, pieces, renewAfter):
        recorder = Recorder()
        parser = ElementParser(recorder, maxElementSize=10000, renewAfter=renewAfter)
        for piece in pieces:
            self.assertIsNone(parser.feed(piece))
        return recorder.events, parser

    def test_sameElements(self):
        """
        Renewed many times, and read in pieces of any size, the parser
        reports what C{domish} builds from the same bytes, in the header's
        namespaces, then the end of the stream.
        """
        data = self.stream(200)
        expected = [(e.uri, e.toXml()) for e in domishElements(data)]
        for size in (1, 13, 500, 5000, len(data)):
            events, parser = self.read(cuts(data, size), renewAfter=512)
            self.assertEqual(events[0][0], "start")
            self.assertEqual(events[-1][0], "end")
            got = [(e.uri, e.toXml()) for kind, e in events[1:-1]]
            self.assertEqual(got, expected, size)
            # At most one renewal per slice expat is fed.
            self.assertGreater(parser.renewals, 5, size)

    def test_restartAfterRenewal(self):
        """
        A restart in a renewed parser hands back the right bytes.
        """
        recorder = Recorder()
        recorder.stopOn = "auth"
        parser = recorder.parser = ElementParser(recorder, renewAfter=512)
        after = HEADER + b"<c/>"
        data = self.stream(50)[: -len(b"</s:stream>")] + b"<auth/>" + after
        self.assertEqual(parser.feed(data), after)
        self.assertGreater(parser.renewals, 0)

    def names(self, renewAfter, count):
        """
        The memory a parser keeps after reading C{count} elements with
        distinct names.
        """
        recorder = Recorder()
        recorder.elementReceived = lambda element: None
        parser = ElementParser(recorder, renewAfter=renewAfter)
        parser.feed(HEADER)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for start in range(0, count, 100):
                parser.feed(
                    b"".join(
                        b"<name%d attribute%d='v'/>" % (i, i) for i in range(start, start + 100)
                    )
                )
            gc.collect()
            return tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()

    def test_namesForgotten(self):
        """
        The names a peer sends are forgotten with each renewal: what the
        parser keeps stays bounded however many it sent (without renewal,
        it grows with them).
        """
        renewing = self.names(RENEW_AFTER, 20000)
        forever = self.names(0, 20000)
        self.assertLess(renewing, 400000)
        self.assertGreater(forever, 4 * renewing)

    def test_largeReadSmallBuffer(self):
        """
        A large read does not leave expat with a buffer of its size.
        """
        recorder = Recorder()
        recorder.elementReceived = lambda element: None
        parser = ElementParser(recorder)
        parser.feed(HEADER)
        gc.collect()
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)
        before = tracemalloc.get_traced_memory()[0]
        parser.feed(b"<a>" + b"x" * 30000 + b"</a>" + b"<b/>" * 40000)
        gc.collect()
        self.assertLess(tracemalloc.get_traced_memory()[0] - before, 40000)


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
