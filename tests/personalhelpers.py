"""
Helpers for the tests of history and personal data (message archive,
PEP, vCards, private XML) in memory: a server with every module on a
fake clock, accounts alice, bob and carol whose rosters hold each other
with mutual subscriptions, and clients over in-memory WebSockets.
"""

from twisted.internet.testing import MemoryReactorClock
from twisted.trial import unittest
from twisted.words.xish import domish

from tests.c2shelpers import C2SClient, makeServer
from xmppws.c2s.modules import closeModules, installModules
from xmppws.c2s.namespaces import NS_STANZAS
from xmppws.c2s.storage import RosterRow

NS_DATA = "jabber:x:data"


def befriend(storage, users=("alice", "bob", "carol"), domain="localhost"):
    """
    Give every user of C{users} the others in its roster, subscribed both
    ways.
    """
    for user in users:
        for other in users:
            if other != user:
                row = RosterRow("%s@%s" % (other, domain), subscription="both")
                storage.saveRosterItem(user, domain, row)


def condition(stanza):
    """
    The defined condition, type and application condition (or L{None})
    of an error stanza.
    """
    [error] = [e for e in stanza.elements() if e.name == "error"]
    conditions = [c for c in error.elements() if c.uri == NS_STANZAS and c.name != "text"]
    others = [c.name for c in error.elements() if c.uri != NS_STANZAS]
    return conditions[0].name, error["type"], (others[0] if others else None)


def child(element, uri, name):
    """
    The first child of C{element} called C{name} in C{uri}, or L{None}.
    """
    for c in element.elements():
        if c.uri == uri and c.name == name:
            return c
    return None


def form(formType, fields, kind="submit"):
    """
    A data form (XEP-0004) as bytes: C{fields} maps a name to a value or a
    list of values.
    """
    parts = [
        b"<x xmlns='jabber:x:data' type='%s'>" % (kind.encode(),),
        b"<field var='FORM_TYPE' type='hidden'><value>%s</value></field>" % (formType.encode(),),
    ]
    for name, value in fields.items():
        values = value if isinstance(value, list) else [value]
        parts.append(
            b"<field var='%s'>%s</field>"
            % (name.encode(), b"".join(b"<value>%s</value>" % (v.encode(),) for v in values))
        )
    parts.append(b"</x>")
    return b"".join(parts)


class PersonalTestCase(unittest.TestCase):
    """
    A server with every module on a fake clock; alice, bob and carol are
    each other's contacts.

    @ivar config: keyword arguments for the server's configuration.
    """

    config = {}

    def setUp(self):
        self.clock = MemoryReactorClock()
        self.server = self.makeServer()

    def makeServer(self, directory=None):
        """
        A server on a fresh database (or the one in C{directory}, to
        restart), with every module installed; its modules are closed at
        clean-up.
        """
        if directory is None:
            server = makeServer(self, self.clock, **self.config)
            befriend(server.storage)
        else:
            from xmppws.c2s.server import ServerConfig, XMPPServer
            from xmppws.c2s.storage import Storage

            config = dict(self.config)
            config.setdefault("domains", ("localhost",))
            server = XMPPServer(
                Storage(directory + "/xmppws.sqlite"), ServerConfig(**config), reactor=self.clock
            )
        installModules(server)
        self.addCleanup(self.closeServer, server)
        return server

    def closeServer(self, server):
        """
        Close the server's modules and database (once).
        """
        if getattr(server, "closedForTest", False):
            return None
        server.closedForTest = True
        d = closeModules(server)
        d.addCallback(lambda _: server.storage.close())
        return d

    def restart(self):
        """
        Close the server and start another on the same data directory.
        """
        import os

        directory = os.path.dirname(os.path.abspath(self.server.storage.path))
        self.closeServer(self.server)
        self.server = self.makeServer(directory)
        return self.server

    def connect(self, user, resource="test", available=True, features=None, answer=True):
        """
        A client logged in as C{user}/C{resource}, inbox emptied: available
        unless told otherwise, announcing C{features} in its XEP-0115
        caps if given (and answering the server's disco#info query about
        them unless told otherwise).
        """
        client = C2SClient(self, self.server)
        client.login(user, resource)
        client.receive()
        client.features = features
        if available:
            self.present(client, features, answer)
        return client

    def present(self, client, features=None, answer=True):
        """
        Send available presence (with caps for C{features}); answer the
        server's caps query; return what else was received.
        """
        client.presence(capsElement(features) if features is not None else b"")
        self.clock.advance(0)
        received = client.receive()
        others = []
        for stanza in received:
            query = child(stanza, NS_DISCO_INFO, "query") if stanza.name == "iq" else None
            if query is not None and stanza.getAttribute("type") == "get" and answer:
                client.send(
                    b"<iq xmlns='jabber:client' type='result' id='%s' to='%s'>%s</iq>"
                    % (stanza["id"].encode(), stanza["from"].encode(),
                       discoInfo(features).replace(
                           b"<query ", b"<query node='%s' " % (query["node"].encode(),), 1))
                )
                self.clock.advance(0)
                others.extend(client.receive())
            else:
                others.append(stanza)
        client.early = others
        return others

    def iq(self, client, body, type="get", to=None, id="q1"):
        """
        Send an iq and return the replies received: C{(others, reply)},
        the reply being the iq answering it (or L{None}).
        """
        replies = client.iq(body, type=type, to=to, id=id)
        self.clock.advance(0)
        replies += client.receive()
        answer = [r for r in replies if r.name == "iq" and r.getAttribute("id") == id]
        others = [r for r in replies if not (r.name == "iq" and r.getAttribute("id") == id)]
        return others, (answer[0] if answer else None)

    def messages(self, client):
        """
        The messages received so far (PEP notifications included).
        """
        self.clock.advance(0)
        return [m for m in client.receive() if m.name == "message"]


def elementText(element):
    """
    The serialized element, for assertions on content.
    """
    if isinstance(element, domish.Element):
        return element.toXml()
    return str(element)


NS_CAPS = "http://jabber.org/protocol/caps"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
CAPS_NODE = "https://xmppws.example/test"


def discoInfo(features, identity=(b"client", b"web", b"test")):
    """
    A disco#info query payload (bytes) with one identity and C{features}.
    """
    parts = [b"<query xmlns='%s'>" % (NS_DISCO_INFO.encode(),)]
    parts.append(b"<identity category='%s' type='%s' name='%s'/>" % identity)
    for feature in features:
        parts.append(b"<feature var='%s'/>" % (feature.encode(),))
    parts.append(b"</query>")
    return b"".join(parts)


def capsVer(features):
    """
    The XEP-0115 ver of a client with C{features}.
    """
    from tests.c2shelpers import parseElement
    from xmppws.c2s.caps import capsHash

    return capsHash(parseElement(discoInfo(features)))


def capsElement(features, ver=None):
    """
    The caps element (bytes) of a presence announcing C{features}.
    """
    return b"<c xmlns='%s' hash='sha-1' node='%s' ver='%s'/>" % (
        NS_CAPS.encode(), CAPS_NODE.encode(), (ver or capsVer(features)).encode())


def notify(*nodes):
    """
    Features announcing interest in C{nodes} (C{NODE+notify}).
    """
    return [NS_DISCO_INFO] + [node + "+notify" for node in nodes]
