# -*- test-case-name: tests.test_muc_component -*-
"""
The two ways the group chat service (L{xmppws.muc.service.MUCService})
is attached to a server, both on tx-xmpp's component stack:

  - L{InProcessComponent}: inside C{twistd xmppws}, on tx-xmpp's
    C{InternalComponent}, an in-memory pipe to the embedded server's
    component router (L{xmppws.c2s.component}), as a XEP-0114 component
    would be, without a socket;
  - L{ExternalComponent}: in a process of its own, connected to any
    XMPP server's XEP-0114 port (a C{twistd xmppws --component} port,
    Prosody's, ejabberd's) through an endpoint, reconnecting when the
    connection drops.

Either one loads the stored rooms when it starts and, when it stops,
tells the occupants the service is going away (status code 332),
writes what the rooms' archives queued and closes the room store.
"""

from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import MultiService, Service
from twisted.internet import defer
from twisted.logger import Logger
from twisted.words.protocols.jabber import component, xmlstream
from tx_xmpp.component import InternalComponent
from tx_xmpp.subprotocols import StreamManager

__all__ = ["ExternalComponent", "InProcessComponent"]


class InProcessComponent(Service):
    """
    The service attached to an in-process component router.

    @ivar muc: the L{MUCService}.
    @ivar component: tx-xmpp's C{InternalComponent} carrying it.
    @ivar kind: C{'muc'}, for L{xmppws.service.XMPPService}.
    """

    kind = "muc"

    def __init__(self, router, muc):
        """
        @param router: a tx-xmpp C{Router} (see
            L{xmppws.c2s.component.router}).
        @param muc: the L{MUCService}.
        """
        self.muc = muc
        self.component = InternalComponent(router, muc.domain)
        muc.setHandlerParent(self.component)

    def startService(self):
        Service.startService(self)
        self.component.startService()
        self.muc.load()

    def stopService(self):
        Service.stopService(self)
        self.muc.shutdown()
        self.component.stopService()
        return self.muc.close()


class ExternalComponent(MultiService):
    """
    The service connected to a server's XEP-0114 component port.

    @ivar muc: the L{MUCService}.
    @ivar factory: the component stream factory (Twisted Words'
        C{componentFactory}).
    @ivar manager: the tx-xmpp C{StreamManager} of the component stream.
    @ivar connected: whether the server accepted the component.
    """

    log = Logger()

    def __init__(self, reactor, endpoint, secret, muc, description=None):
        """
        @param endpoint: an C{IStreamClientEndpoint} to the server's
            component port.
        @param secret: the shared secret.
        @param muc: the L{MUCService}; its domain is the component's.
        @param description: how the endpoint was written, for the log.
        """
        MultiService.__init__(self)
        self.muc = muc
        self.connected = False
        self.description = description or repr(endpoint)
        self.factory = factory = component.componentFactory(muc.domain, secret)
        factory.addBootstrap(xmlstream.STREAM_CONNECTED_EVENT, self._connected)
        factory.addBootstrap(xmlstream.STREAM_AUTHD_EVENT, self._authenticated)
        factory.addBootstrap(xmlstream.STREAM_ERROR_EVENT, self._streamError)
        factory.addBootstrap(xmlstream.STREAM_END_EVENT, self._ended)
        self.manager = StreamManager(factory, reactor)
        muc.setHandlerParent(self.manager)
        self.client = ClientService(
            endpoint, factory, retryPolicy=backoffPolicy(maxDelay=60), clock=reactor
        )
        self.client.setServiceParent(self)

    def _connected(self, xs):
        self.log.info("Connected to {server}; authenticating as {domain}",
                      server=self.description, domain=self.muc.domain)

    def _authenticated(self, xs):
        self.connected = True
        self.log.info("Serving group chat at {domain} through {server}",
                      domain=self.muc.domain, server=self.description)

    def _streamError(self, failure):
        condition = getattr(failure.value, "condition", None)
        self.log.error(
            "The server refused the component {domain}: {condition}",
            domain=self.muc.domain,
            condition=condition or failure.getErrorMessage(),
        )

    def _ended(self, reason):
        if self.connected:
            self.log.info("Disconnected from {server}", server=self.description)
        self.connected = False

    def startService(self):
        MultiService.startService(self)
        self.muc.load()

    def stopService(self):
        if self.connected:
            self.muc.shutdown()
        d = defer.maybeDeferred(MultiService.stopService, self)
        d.addBoth(lambda _: self.muc.close())
        return d

