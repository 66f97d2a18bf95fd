# -*- test-case-name: tests.test_gateway_relay -*-
"""
Relayed and locally served domains on one WebSocket endpoint: the
client's first message names its domain (C{to}), and decides which
handler carries the connection from there on, the gateway's relay or the
embedded server's connection.

    factory = DispatchFactory(router, relays, local, clock)
    XMPPWebSocketServerFactory(connectionFactory=factory)
"""

import uuid
from xml.parsers import expat

from twisted.internet.protocol import Factory, Protocol
from zope.interface import implementer

from xmppws._parser import newExpatParser
from xmppws.c2s import jid as jids
from xmppws.framing import streamErrorElement
from xmppws.gateway.translate import ClientRFC7395
from xmppws.iwebsocket import IMessageHandler
from xmppws.policies import Watchdog

__all__ = ["DispatchFactory", "DomainDispatch", "requestedDomain"]


def requestedDomain(data):
    """
    The domain a client's first message asks for: the C{to} of its
    C{<open/>} or stream header, prepared.

    @type data: L{bytes}
    @return: the domain, or L{None} if there is none (or it is no domain,
        or the message no stream header).
    """
    parser = newExpatParser()
    found = []

    def start(name, attributes):
        found.append(attributes.get("to"))
        parser.StartElementHandler = None

    parser.StartElementHandler = start
    try:
        parser.Parse(data[:8192], False)
    except (expat.ExpatError, ValueError):
        pass
    to = found[0] if found else None
    if not to:
        return None
    try:
        return jids.prepDomainpart(to)
    except jids.JIDMalformed:
        return None


class DispatchFactory(Factory):
    """
    Build a L{DomainDispatch} for each WebSocket connection.

    @ivar router: the L{xmppws.gateway.routes.Router}.
    @ivar relays: the factory of relays (L{xmppws.gateway.relay.GatewayFactory}).
    @ivar local: the factory of the embedded server's connections
        (L{xmppws.connection.ConnectionFactory}).
    """

    def __init__(self, router, relays, local, clock, openTimeout=30):
        self.router = router
        self.relays = relays
        self.local = local
        self.clock = clock
        self.openTimeout = openTimeout

    def buildProtocol(self, addr):
        return DomainDispatch(self, addr)

    def startFactory(self):
        self.relays.doStart()
        self.local.doStart()

    def stopFactory(self):
        self.relays.doStop()
        self.local.doStop()


@implementer(IMessageHandler)
class DomainDispatch(Protocol):
    """
    Wait for a client's first message, then hand the connection to the
    relay (a relayed domain) or to the embedded server (any other), and
    carry on as a pass-through to it.

    @ivar handler: the chosen handler, once the first message arrived.
    """

    handler = None

    def __init__(self, factory, address):
        self.factory = factory
        self._address = address
        self._watchdog = None

    def connectionMade(self):
        self._watchdog = Watchdog(
            self.factory.clock, self._timedOut, lambda: False,
            openTimeout=self.factory.openTimeout,
        )
        self._watchdog.start()

    def _timedOut(self, text):
        """
        No first message in time: answer as both handlers would, in
        RFC 7395 (the client chose no framing).
        """
        framing = ClientRFC7395(None)
        carrier = self.transport
        carrier.write(framing.headerMessage({"version": "1.0", "id": uuid.uuid4().hex}))
        carrier.write(framing.treeMessage(streamErrorElement("connection-timeout", text)))
        carrier.write(framing.closeMessage())
        carrier.closeWith(1000)

    def _choose(self, domain):
        self._watchdog.stop()
        factory = self.factory
        if domain is not None and factory.router.routesFor(domain) is not None:
            handler = factory.relays.buildProtocol(self._address)
        else:
            handler = factory.local.buildProtocol(self._address)
        self.handler = handler
        handler.makeConnection(self.transport)
        return handler

    def dataReceived(self, data):
        handler = self.handler
        if handler is None:
            handler = self._choose(requestedDomain(data))
        handler.dataReceived(data)

    def bytesReceived(self, count):
        if self.handler is not None:
            self.handler.bytesReceived(count)

    def readDone(self):
        if self.handler is not None:
            self.handler.readDone()

    def messageRefused(self, code, text):
        handler = self.handler
        if handler is None:
            handler = self._choose(None)
        handler.messageRefused(code, text)

    def connectionLost(self, reason=None):
        if self._watchdog is not None:
            self._watchdog.stop()
        if self.handler is not None:
            self.handler.connectionLost(reason)
