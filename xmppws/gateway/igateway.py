# -*- test-case-name: tests.test_gateway_relay -*-
"""
Interfaces of the gateway's two sides: what the client's WebSocket
messages hold, and what the upstream's stream holds, each told to the
relay (L{xmppws.gateway.relay.RelayConnection}) as bytes, never trees.
"""

from twisted.internet.interfaces import IConsumer, IPushProducer
from zope.interface import Attribute, Interface

__all__ = ["IClientFraming", "IClientReceiver", "IUpstream", "IUpstreamReceiver"]


class IClientReceiver(Interface):
    """
    Told by a client-side translator (L{xmppws.gateway.translate}) what
    the client's stream holds, in order, each message checked once.
    """

    def clientOpened(attributes):
        """
        The client opened (or restarted) its stream.

        @param attributes: the header's C{to}, C{from}, C{version} and
            C{lang} (C{xml:lang}) that it carried.
        @type attributes: L{dict}
        """

    def clientElement(data, element):
        """
        A top-level element arrived whole.

        @param data: its bytes, to be written upstream as they are.
        @type data: L{bytes}
        @param element: its root's name and attributes.
        @type element: L{xmppws._scanner.Scanned}
        """

    def clientClosed():
        """
        The client closed its stream.
        """


class IClientFraming(Interface):
    """
    One client's framing, as the relay translates it: inbound, each
    message checked once and told to an L{IClientReceiver}; outbound, the
    server's stream as the client's messages; and the stream header and
    footer that stand for the client's upstream.
    """

    name = Attribute("C{'rfc7395'} or C{'legacy'}.")

    def dataReceived(data):
        """
        Check one message from the client and tell the receiver what it
        holds.

        @type data: L{bytes}
        @raise xmppws.framing.FramingError: for what breaks the framing or
            RFC 6120.
        """

    def restart():
        """
        The stream restarts (after SASL): the client's next message must
        be its stream header.
        """

    def upstreamHeader(attributes):
        """
        The stream header to send upstream for the client's.

        @param attributes: C{to}, C{from}, C{version}, C{lang}.
        @rtype: L{bytes}
        """

    def upstreamFooter():
        """
        The footer to send upstream.

        @rtype: L{bytes}
        """

    def headerMessage(attributes):
        """
        The message opening a stream the gateway answers itself.

        @param attributes: C{from}, C{id}, C{version}, C{lang}.
        @rtype: L{bytes}
        """

    def upstreamHeaderMessage(header):
        """
        The message for the server's stream header.

        @type header: L{xmppws._scanner.StreamHeader}
        @rtype: L{bytes}
        """

    def elementMessage(element, header):
        """
        The message for an element the server sent, from its bytes.

        @type element: L{xmppws._scanner.Scanned}
        @param header: the server's stream header, whose declarations the
            element may rely on.
        @rtype: L{bytes}
        """

    def treeMessage(element):
        """
        The message for an element the gateway made or rewrote.

        @type element: L{twisted.words.xish.domish.Element}
        @rtype: L{bytes}
        """

    def closeMessage(seeOtherURI=None):
        """
        The message closing the client's stream.

        @param seeOtherURI: where to reconnect (RFC 7395 only), or L{None}.
        @rtype: L{bytes}
        """


class IUpstreamReceiver(Interface):
    """
    Told by an upstream stream (L{xmppws.gateway.upstream.UpstreamProtocol})
    what the server sends once the stream is negotiated.
    """

    def upstreamHeader(header):
        """
        The server opened a new stream (after SASL).

        @type header: L{xmppws._scanner.StreamHeader}
        """

    def upstreamElement(element):
        """
        A top-level element arrived whole.

        @param element: its bytes (C{element.raw}) and root.
        @type element: L{xmppws._scanner.Scanned}
        """

    def upstreamFooter():
        """
        The server closed its stream.
        """

    def upstreamBroken(condition, text):
        """
        The server sent what cannot be read (bad XML, an element over the
        size limit); the upstream stream is being closed.
        """

    def upstreamLost(reason):
        """
        The connection to the server ended.

        @type reason: L{twisted.python.failure.Failure}
        """


class IUpstream(IPushProducer, IConsumer):
    """
    A negotiated stream to the upstream server, as the relay uses it.

    Pausing it stops reading from the server; the producer registered
    with it is paused while the server does not read what is written to
    it (as an L{xmppws.iwebsocket.ICarrier}, so that one
    L{xmppws.flow.FlowControl} serves either side).
    """

    description = Attribute("Where it goes, for logs (the endpoint).")
    header = Attribute("The server's stream header, a L{xmppws._scanner.StreamHeader}.")
    features = Attribute("The server's features after TLS, a L{xmppws._scanner.Scanned}.")
    secure = Attribute("C{True} when the stream is encrypted.")

    def attach(receiver):
        """
        From now on, tell C{receiver} (an L{IUpstreamReceiver}) what the
        server sends.
        """

    def write(data):
        """
        Write bytes to the server.
        """

    def restartAfter():
        """
        The server's stream restarts after the element being reported
        (SASL success).
        """

    def loseConnection():
        """
        Close the connection once what was written is sent.
        """

    def abortConnection():
        """
        Drop the connection at once.
        """
