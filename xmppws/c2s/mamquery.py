# -*- test-case-name: tests.test_mam -*-
"""
The wire format of XEP-0313 message archive management (C{urn:xmpp:mam:2},
version 1.1.3) with XEP-0059 result set management, shared by the
server's archives (L{xmppws.c2s.mam}) and the rooms'
(L{xmppws.muc.archive}): reading a query, and writing its results, its
closing C{<fin/>}, the query form and the archive's metadata.

A query is checked entirely before anything is looked up.  What is
wrong gets the condition XEP-0313 gives: a form field the server does
not know, C{feature-not-implemented}; a form of another type, a
malformed time, JID or RSM value, C{bad-request}.  (An id the archive
does not hold is C{item-not-found}, found when the page is looked up:
see L{xmppws.c2s.archive.UnknownArchiveId}.)
"""

import calendar
import datetime
import re
import time

from twisted.words.xish import domish

from xmppws.c2s import jid as jids
from xmppws.c2s.archive import ArchiveQuery

__all__ = [
    "DEFAULT_PAGE",
    "MAX_PAGE",
    "NS_MAM",
    "NS_MAM_EXTENDED",
    "NS_RSM",
    "NS_SID",
    "QueryError",
    "finElement",
    "formatStamp",
    "metadataElement",
    "parseQuery",
    "parseStamp",
    "queryForm",
    "resultMessage",
]

NS_MAM = "urn:xmpp:mam:2"
NS_MAM_EXTENDED = "urn:xmpp:mam:2#extended"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_SID = "urn:xmpp:sid:0"
NS_DATA = "jabber:x:data"
NS_FORWARD = "urn:xmpp:forward:0"
NS_DELAY = "urn:xmpp:delay"
NS_VALIDATE = "http://jabber.org/protocol/xdata-validate"

#: Messages in a page when the query gives no RSM C{max} (Prosody's 20).
DEFAULT_PAGE = 20
#: The most messages in a page, whatever the query asks (Prosody's 50).
MAX_PAGE = 50

_SINGLE = ("with", "start", "end", "before-id", "after-id")
_FIELDS = _SINGLE + ("ids", "FORM_TYPE")

_STAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"
)


class QueryError(Exception):
    """
    A query that cannot be answered with results.

    @ivar condition: the RFC 6120 stanza error condition.
    @ivar errorType: its type.
    @ivar text: what was wrong, for the error's C{<text/>}.
    """

    def __init__(self, condition, errorType, text=None):
        Exception.__init__(self, condition, text)
        self.condition = condition
        self.errorType = errorType
        self.text = text


def _bad(text):
    return QueryError("bad-request", "modify", text)


def parseStamp(text):
    """
    Read a XEP-0082 date and time (C{2010-06-07T00:00:00Z}, fractions and
    offsets allowed).

    @return: seconds since the epoch.
    @rtype: L{float}
    @raise ValueError: for anything else.
    """
    match = _STAMP.match(text.strip())
    if match is None:
        raise ValueError("not a XEP-0082 date and time")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    moment = datetime.datetime(year, month, day, hour, minute, second)
    seconds = calendar.timegm(moment.timetuple())
    if match.group(7):
        seconds += float("0" + match.group(7))
    zone = match.group(8)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            raise ValueError("not a time zone offset")
        seconds -= sign * (hours * 3600 + minutes * 60)
    return seconds


def formatStamp(seconds):
    """
    A XEP-0082 date and time in UTC, to the millisecond.

    @type seconds: L{float}
    @rtype: L{str}
    """
    whole = int(seconds)
    millis = int(round((seconds - whole) * 1000))
    if millis == 1000:
        whole, millis = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + ".%03dZ" % (millis,)


def _text(element):
    return str(element) if element is not None else ""


def _child(element, uri, name):
    for child in element.elements():
        if child.uri == uri and child.name == name:
            return child
    return None


def _formValues(form):
    """
    The fields of a submitted query form.

    @return: a mapping of field name to its list of values.
    @raise QueryError: for an unknown field, a field given twice, or
        several values for a single-valued field.
    """
    if form.getAttribute("type", "submit") != "submit":
        raise _bad("The query form must be of type 'submit'.")
    values = {}
    for field in form.elements(NS_DATA, "field"):
        name = field.getAttribute("var")
        if name is None:
            raise _bad("A form field has no 'var'.")
        if name not in _FIELDS:
            raise QueryError(
                "feature-not-implemented", "cancel", "The query field %r is not supported." % (
                    name[:64],)
            )
        if name in values:
            raise _bad("The field %s is given twice." % (name,))
        found = [_text(value) for value in field.elements(NS_DATA, "value")]
        if name in _SINGLE and len(found) > 1:
            raise _bad("The field %s takes one value." % (name,))
        values[name] = found
    formType = values.pop("FORM_TYPE", None)
    if formType != [NS_MAM]:
        raise _bad("The query form's FORM_TYPE must be %s." % (NS_MAM,))
    return values


def _rsm(query, defaultLimit, maxLimit):
    """
    The RSM page asked for: C{(after, before, limit)}.
    """
    page = _child(query, NS_RSM, "set")
    if page is None:
        return None, None, defaultLimit
    limit = defaultLimit
    after = before = None
    seen = set()
    for child in page.elements():
        if child.uri != NS_RSM:
            continue
        if child.name in seen:
            raise _bad("The RSM element <%s/> is given twice." % (child.name,))
        seen.add(child.name)
        text = _text(child).strip()
        if child.name == "max":
            if not text.isdigit() or len(text) > 9:
                raise _bad("RSM <max/> must be a whole number.")
            limit = min(int(text), maxLimit)
        elif child.name == "after":
            if not text:
                raise _bad("RSM <after/> must not be empty.")
            after = text
        elif child.name == "before":
            before = text
        elif child.name == "index":
            # Pages are found by id, not position (as in Prosody).
            if not text.isdigit():
                raise _bad("RSM <index/> must be a whole number.")
    return after, before, limit


def parseQuery(query, defaultLimit=DEFAULT_PAGE, maxLimit=MAX_PAGE):
    """
    Read a C{<query xmlns='urn:xmpp:mam:2'/>} of an iq C{set}.

    @param query: the C{<query/>} element.
    @return: C{(queryid, archiveQuery, flip)}: the client's query id or
        L{None}, the L{ArchiveQuery}, and whether the page goes out
        newest first (C{<flip-page/>}).
    @raise QueryError: when the query is not one that can be answered.
    """
    queryid = query.getAttribute("queryid")
    if queryid is not None and len(queryid) > 256:
        raise _bad("The queryid is too long.")
    archiveQuery = ArchiveQuery()
    form = _child(query, NS_DATA, "x")
    if form is not None:
        values = _formValues(form)
        withValue = values.get("with", [""])
        if withValue and withValue[0]:
            try:
                peer = jids.parse(withValue[0])
            except jids.JIDMalformed as e:
                raise _bad("The 'with' JID is not valid (%s: %s)." % (e.part, e.reason))
            archiveQuery.peer = jids.bare(peer).full()
            archiveQuery.resource = peer.resource
        for name, attribute in (("start", "start"), ("end", "end")):
            value = values.get(name, [""])
            if value and value[0]:
                try:
                    setattr(archiveQuery, attribute, parseStamp(value[0]))
                except ValueError:
                    raise _bad("'%s' is not a XEP-0082 date and time." % (name,))
        for name, attribute in (("after-id", "afterId"), ("before-id", "beforeId")):
            value = values.get(name, [""])
            if value and value[0].strip():
                setattr(archiveQuery, attribute, value[0].strip())
        if "ids" in values:
            ids = [value.strip() for value in values["ids"] if value.strip()]
            if len(ids) > maxLimit:
                raise _bad("At most %d ids may be asked for at once." % (maxLimit,))
            archiveQuery.ids = ids
    after, before, limit = _rsm(query, defaultLimit, maxLimit)
    archiveQuery.pageAfter = after
    archiveQuery.pageBefore = before
    archiveQuery.limit = limit
    flip = _child(query, NS_MAM, "flip-page") is not None
    return queryid, archiveQuery, flip


def resultMessage(archiveJID, to, queryid, message):
    """
    One result of a query: the archived stanza, forwarded (XEP-0297) with
    its time.

    @param archiveJID: the archive's address (the C{from}), text.
    @param to: the requester's full JID, text.
    @param queryid: the query's id, or L{None}.
    @param message: the L{xmppws.c2s.archive.ArchivedMessage}.
    @rtype: L{domish.Element}
    """
    wrapper = domish.Element((None, "message"))
    wrapper["from"] = archiveJID
    wrapper["to"] = to
    result = wrapper.addElement((NS_MAM, "result"))
    if queryid is not None:
        result["queryid"] = queryid
    result["id"] = message.sid
    forwarded = result.addElement((NS_FORWARD, "forwarded"))
    forwarded.addElement((NS_DELAY, "delay"))["stamp"] = formatStamp(message.stamp)
    # The stanza was serialized by the server itself (with its namespace
    # declared): it goes out as it was stored.
    forwarded.addRawXml(message.xml)
    return wrapper


def finElement(page):
    """
    The C{<fin/>} closing a query, with its RSM summary.

    @param page: the L{xmppws.c2s.archive.ArchivePage} sent.
    @rtype: L{domish.Element}
    """
    fin = domish.Element((NS_MAM, "fin"))
    if page.complete:
        fin["complete"] = "true"
    summary = fin.addElement((NS_RSM, "set"))
    if page.messages:
        summary.addElement("first", content=page.messages[0].sid)
        summary.addElement("last", content=page.messages[-1].sid)
    summary.addElement("count", content=str(page.count))
    return fin


def queryForm():
    """
    The C{<query/>} answering a form request: the fields a query may use.

    @rtype: L{domish.Element}
    """
    query = domish.Element((NS_MAM, "query"))
    form = query.addElement((NS_DATA, "x"))
    form["type"] = "form"
    formType = form.addElement("field")
    formType["type"] = "hidden"
    formType["var"] = "FORM_TYPE"
    formType.addElement("value", content=NS_MAM)
    for name, kind in (
        ("with", "jid-single"),
        ("start", "text-single"),
        ("end", "text-single"),
        ("before-id", "text-single"),
        ("after-id", "text-single"),
        ("ids", "list-multi"),
    ):
        field = form.addElement("field")
        field["type"] = kind
        field["var"] = name
        if name == "ids":
            validate = field.addElement((NS_VALIDATE, "validate"))
            validate["datatype"] = "xs:string"
            validate.addElement("open")
    return query


def metadataElement(first, last):
    """
    The C{<metadata/>} of an archive: its first and last messages.

    @param first: the first L{xmppws.c2s.archive.ArchivedMessage}, or
        L{None} when the archive is empty.
    @param last: the last one.
    @rtype: L{domish.Element}
    """
    metadata = domish.Element((NS_MAM, "metadata"))
    if first is not None:
        for name, message in (("start", first), ("end", last)):
            child = metadata.addElement(name)
            child["id"] = message.sid
            child["timestamp"] = formatStamp(message.stamp)
    return metadata
