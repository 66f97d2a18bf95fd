"""
Helpers for testing the embedded server in memory: a logged-in client on
a WebSocket connection, speaking through L{tests.helpers.WebSocketTestClient}.
"""

import base64

from scramp import ScramClient
from twisted.words.xish import domish

from tests.helpers import WebSocketTestClient, strictParse
from xmppws.c2s.server import ServerConfig, XMPPServer
from xmppws.c2s.storage import Storage

OPEN_LOCALHOST = (
    b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>"
)


def parseElement(data):
    """
    Parse one standalone message into a L{domish.Element}.
    """
    strictParse(data)
    stream = domish.elementStream()
    result = []
    stream.DocumentStartEvent = lambda root: None
    stream.ElementEvent = result.append
    stream.DocumentEndEvent = lambda: None
    stream.parse(b"<wrapper>" + data + b"</wrapper>")
    return result[0]


def makeServer(testCase, clock, **config):
    """
    A server on a fresh database with accounts alice, bob and carol
    (password C{secret}) on C{localhost}.
    """
    storage = Storage(testCase.mktemp() + "/xmppws.sqlite")
    for user in ("alice", "bob", "carol"):
        storage.addUser(user, "localhost", "secret")
    config.setdefault("domains", ("localhost",))
    server = XMPPServer(storage, ServerConfig(**config), reactor=clock)
    return server


class C2SClient:
    """
    A client of the embedded server over an in-memory WebSocket.

    @ivar inbox: parsed elements received and not yet taken.
    """

    def __init__(
        self, testCase, server, peer="127.0.0.1", domain="localhost", **factoryOptions
    ):
        self.header = OPEN_LOCALHOST.replace(b"localhost", domain.encode("ascii"))
        self.server = server
        self.ws = WebSocketTestClient(
            testCase,
            streamFactory=server.streamFactory(),
            peer=peer,
            clock=server.reactor,
            **factoryOptions,
        )
        self.clock = self.ws.clock
        self.inbox = []
        self.jid = None

    def send(self, data):
        if not isinstance(data, bytes):
            data = data.toXml().encode("utf-8")
        self.ws.send(data)

    def receive(self):
        """
        Take everything received so far, parsed.
        """
        for message in self.ws.messages():
            self.inbox.append(parseElement(message))
        taken, self.inbox = self.inbox, []
        return taken

    def open(self):
        self.ws.handshake()
        self.ws.send(self.header)
        return self.receive()

    def authenticate(self, user, password="secret", mechanism="SCRAM-SHA-256"):
        """
        Run SASL; return the final SASL element received.
        """
        self.open()
        if mechanism == "PLAIN":
            payload = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
            self.send(
                b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                + payload
                + b"</auth>"
            )
            return self.receive()[-1]
        client = ScramClient([mechanism], user, password)
        first = base64.b64encode(client.get_client_first().encode())
        self.send(
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='"
            + mechanism.encode()
            + b"'>"
            + first
            + b"</auth>"
        )
        challenge = self.receive()[-1]
        if challenge.name != "challenge":
            return challenge
        client.set_server_first(base64.b64decode(str(challenge)).decode())
        final = base64.b64encode(client.get_client_final().encode())
        self.send(b"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + final + b"</response>")
        result = self.receive()[-1]
        if result.name == "success":
            client.set_server_final(base64.b64decode(str(result)).decode())
        return result

    def login(self, user, resource="test", password="secret", mechanism="SCRAM-SHA-256"):
        """
        Authenticate, restart and bind; return the bound JID.
        """
        result = self.authenticate(user, password, mechanism)
        assert result.name == "success", result.toXml()
        self.ws.send(self.header)
        self.receive()
        bind = b"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        if resource:
            bind += b"<resource>" + resource.encode() + b"</resource>"
        bind += b"</bind>"
        self.send(b"<iq xmlns='jabber:client' type='set' id='bind1'>" + bind + b"</iq>")
        [reply] = self.receive()
        self.jid = str(reply.bind.jid)
        return self.jid

    def iq(self, body, type="get", to=None, id="q1"):
        """
        Send an iq and return the replies received.
        """
        data = b"<iq xmlns='jabber:client' type='" + type.encode() + b"' id='" + id.encode() + b"'"
        if to:
            data += b" to='" + to.encode() + b"'"
        self.send(data + b">" + body + b"</iq>")
        return self.receive()

    def presence(self, body=b"", **attrs):
        data = b"<presence xmlns='jabber:client'"
        for k, v in attrs.items():
            data += b" " + k.encode() + b"='" + v.encode() + b"'"
        self.send(data + b">" + body + b"</presence>")

    def message(self, to, body, type="chat", id="m1"):
        self.send(
            b"<message xmlns='jabber:client' to='" + to.encode() + b"' type='"
            + type.encode() + b"' id='" + id.encode() + b"'><body>"
            + body.encode() + b"</body></message>"
        )
