"""
Helpers for testing the group chat service in memory: the embedded
server with its modules and the service attached in process at
C{conference.localhost}, its rooms kept in a SQLite file written
synchronously (L{xmppws.c2s.asyncdb.InlineRunner}), and clients of the
server (L{tests.c2shelpers.C2SClient}) with the MUC requests as methods.
"""

from twisted.internet.testing import MemoryReactorClock

from tests.c2shelpers import C2SClient, makeServer
from xmppws.c2s.asyncdb import AsyncDatabase, InlineRunner
from xmppws.c2s import component
from xmppws.c2s.modules import installModules
from xmppws.muc.component import InProcessComponent
from xmppws.muc.service import MUCService
from xmppws.muc.settings import MUCSettings
from xmppws.muc.storage import SCHEMA, RoomStore

MUC = "conference.localhost"
NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"
NS_MUC_ADMIN = "http://jabber.org/protocol/muc#admin"
NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_DATA = "jabber:x:data"
NS_SID = "urn:xmpp:sid:0"
NS_OCCUPANT_ID = "urn:xmpp:occupant-id:0"
NS_DELAY = "urn:xmpp:delay"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"


class MUCServer:
    """
    The embedded server with the group chat service in process.

    @ivar clock: the L{MemoryReactorClock}.
    @ivar server: the L{xmppws.c2s.server.XMPPServer}.
    @ivar muc: the L{MUCService}.
    @ivar path: the room database.
    """

    def __init__(self, testCase, path=None, clock=None, **settings):
        self.testCase = testCase
        self.clock = clock or MemoryReactorClock()
        self.path = path or testCase.mktemp() + "/muc.sqlite"
        self.settings = settings
        self.server = makeServer(testCase, self.clock)
        installModules(self.server)
        self.start()

    def start(self):
        """
        Attach a fresh service on the same room database (a restart of
        the group chat service).
        """
        store = RoomStore(AsyncDatabase(self.clock, self.path, SCHEMA, InlineRunner()))
        self.muc = MUCService(MUCSettings(MUC, **self.settings), store, self.clock)
        self.component = InProcessComponent(component.router(self.server), self.muc)
        self.component.startService()
        self.testCase.addCleanup(self.stop)

    def stop(self):
        if self.component.running:
            return self.component.stopService()

    def client(self, user, resource="test"):
        """
        A logged-in client of C{user} with available presence sent.

        @rtype: L{MUCClient}
        """
        client = MUCClient(self.testCase, self.server)
        client.login(user, resource)
        client.presence()
        client.receive()
        return client

    def room(self, name):
        return self.muc.rooms.get(name)


class MUCClient(C2SClient):
    """
    A client of the embedded server that speaks MUC.
    """

    def join(self, room, nick, history=None, password=None, body=b""):
        """
        Send a join request.

        @return: the stanzas received in answer.
        """
        x = b"<x xmlns='http://jabber.org/protocol/muc'>"
        if history is not None:
            x += b"<history " + history + b"/>"
        if password is not None:
            x += b"<password>" + password.encode() + b"</password>"
        x += b"</x>"
        self.send(
            b"<presence xmlns='jabber:client' to='%s@%s/%s'>%s%s</presence>"
            % (room.encode(), MUC.encode(), nick.encode(), x, body)
        )
        return self.receive()

    def create(self, room, nick):
        """
        Create a room and make it an instant room.

        @return: the stanzas received while creating it.
        """
        received = self.join(room, nick)
        received += self.owner(room, b"<x xmlns='jabber:x:data' type='submit'/>", "set")
        return received

    def leave(self, room, nick, status=None):
        body = b"<status>%s</status>" % (status.encode(),) if status else b""
        self.send(
            b"<presence xmlns='jabber:client' type='unavailable' to='%s@%s/%s'>%s</presence>"
            % (room.encode(), MUC.encode(), nick.encode(), body)
        )
        return self.receive()

    def say(self, room, body, id="g1", extra=b""):
        self.send(
            b"<message xmlns='jabber:client' type='groupchat' to='%s@%s' id='%s'>"
            b"<body>%s</body>%s</message>"
            % (room.encode(), MUC.encode(), id.encode(), body.encode(), extra)
        )
        return self.receive()

    def private(self, room, nick, body, type="chat"):
        self.send(
            b"<message xmlns='jabber:client' type='%s' to='%s@%s/%s' id='p1'>"
            b"<body>%s</body></message>"
            % (type.encode(), room.encode(), MUC.encode(), nick.encode(), body.encode())
        )
        return self.receive()

    def admin(self, room, items, type="set", id="a1"):
        return self.iq(
            b"<query xmlns='http://jabber.org/protocol/muc#admin'>" + items + b"</query>",
            type=type,
            to="%s@%s" % (room, MUC),
            id=id,
        )

    def owner(self, room, payload=b"", type="get", id="o1"):
        return self.iq(
            b"<query xmlns='http://jabber.org/protocol/muc#owner'>" + payload + b"</query>",
            type=type,
            to="%s@%s" % (room, MUC),
            id=id,
        )

    def configure(self, room, **fields):
        """
        Submit a configuration form with these fields.
        """
        form = (
            b"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
            b"<value>http://jabber.org/protocol/muc#roomconfig</value></field>"
        )
        for name, value in fields.items():
            form += b"<field var='muc#roomconfig_%s'><value>%s</value></field>" % (
                name.encode(),
                str(value).encode(),
            )
        return self.owner(room, form + b"</x>", "set")


def roomJID(room, nick=None):
    return "%s@%s" % (room, MUC) + ("/" + nick if nick else "")


def userX(stanza):
    for child in stanza.elements():
        if child.uri == NS_MUC_USER and child.name == "x":
            return child
    return None


def statusCodes(stanza):
    """
    The MUC status codes of a presence or message, as a set of text.
    """
    x = userX(stanza)
    if x is None:
        return set()
    return {s["code"] for s in x.elements(NS_MUC_USER, "status")}


def item(stanza):
    """
    The C{muc#user} item of a presence, as a dict of its attributes.
    """
    x = userX(stanza)
    for element in x.elements(NS_MUC_USER, "item"):
        return dict(element.attributes)
    return None


def errorCondition(stanza):
    """
    @return: C{(type, condition)} of an error stanza, or L{None}.
    """
    if stanza.getAttribute("type") != "error":
        return None
    for error in stanza.elements():
        if error.name == "error":
            for child in error.elements():
                if child.uri == NS_STANZAS and child.name != "text":
                    return error.getAttribute("type"), child.name
    return None


def child(stanza, uri, name):
    for element in stanza.elements():
        if element.uri == uri and element.name == name:
            return element
    return None


def ofKind(stanzas, name, sender=None, type=None):
    """
    The stanzas named C{name}, from C{sender} if given, of C{type} if
    given (C{"available"} for presence without a type).
    """
    found = []
    for stanza in stanzas:
        if stanza.name != name:
            continue
        if sender is not None and stanza.getAttribute("from") != sender:
            continue
        if type is not None:
            actual = stanza.getAttribute("type") or ("available" if name == "presence" else "normal")
            if actual != type:
                continue
        found.append(stanza)
    return found


__all__ = [
    "MUC",
    "MUCClient",
    "MUCServer",
    "child",
    "errorCondition",
    "item",
    "ofKind",
    "roomJID",
    "statusCodes",
    "userX",
]
