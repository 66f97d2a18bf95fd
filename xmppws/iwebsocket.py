# -*- test-case-name: tests.test_connection -*-
"""
Interfaces of the layers between the network and an C{XmlStream}.

Data flows one way through them, and back::

    carrier  (ICarrier: a WebSocket, or a TCP connection)
      -> handler  (an IProtocol plugged into the carrier; for XMPP the
                   connection, xmppws.connection.XmlStreamConnection)
        -> framing  (IFraming: RFC 7395, draft-00 or RFC 6120 over TCP)
        -> XmlStream  (unmodified Twisted Words code; its transport is the
                       connection, an IXMPPTransport)

A carrier calls its handler as a transport calls its protocol
(C{makeConnection}, C{dataReceived}, C{connectionLost}); on a WebSocket,
each C{dataReceived} is one whole text message.  The handler writes to the
carrier as to a transport, registers itself as the carrier's producer to
hear when the peer stops reading, and pauses the carrier to stop reading.
"""

from twisted.internet.interfaces import (
    IConsumer,
    IProtocol,
    IPushProducer,
    ITransport,
)
from zope.interface import Attribute, Interface

__all__ = [
    "ICarrier",
    "IConnection",
    "IFraming",
    "IFramingReceiver",
    "IMessageHandler",
    "IXMPPTransport",
    "PING_EVENT",
]

PING_EVENT = "//event/xmppws/ping"
"""
Dispatched on an C{XmlStream} (with the stream as the object) when its
peer has been silent for the ping interval and the carrier has no ping of
its own (TCP).  An observer that sends something the peer must answer
(such as an XEP-0199 ping to a bound client) keeps the connection checked;
when no observer handles it, the connection sends a whitespace keepalive.
"""


class ICarrier(ITransport, IPushProducer, IConsumer):
    """
    A connection that carries one stream: a WebSocket, where every write is
    one text message, or a TCP connection, where writes are bytes.

    Pausing the carrier (C{pauseProducing}) stops reading from the peer.
    The producer registered with it (C{registerProducer}) is paused while
    the peer does not read what is written to it.
    """

    kind = Attribute("C{'websocket'} or C{'tcp'}.")
    messageOriented = Attribute(
        "C{True} when every C{dataReceived} of the handler is one whole "
        "message and every C{write} sends one (WebSocket)."
    )
    secure = Attribute(
        "C{True} when the connection is encrypted: TLS (also after STARTTLS), "
        "or a trusted TLS-terminating proxy in front of a WebSocket."
    )
    origin = Attribute("The WebSocket request's C{Origin}, or L{None}.")
    path = Attribute("The WebSocket request's path, or L{None}.")

    def closeWith(code, reason=None):
        """
        Close the connection with a WebSocket close code (1000 normal, 1003
        unsupported data, 1009 message too big, 1011 internal error); a TCP
        connection just closes once its output is written.

        @type code: L{int}
        @param reason: a short reason, never peer input.
        @type reason: L{str} or L{None}
        """

    def ping():
        """
        Ask the peer for a sign of life at the carrier's own level (a
        WebSocket ping; its pong arrives as received bytes).

        @return: C{False} if the carrier has no such ping (TCP).
        @rtype: L{bool}
        """


class IMessageHandler(IProtocol):
    """
    What a carrier hosts: an C{IProtocol} that is told, in addition, of the
    messages the carrier refused before handing them over.
    """

    def readDone():
        """
        Everything the last network read carried was handed over (one or
        more messages, or TCP bytes).
        """

    def messageRefused(code, text):
        """
        The carrier refused an inbound message: a binary WebSocket message
        (C{code} 1003) or one over the size limit (1009).  The handler
        answers it (a stream error) and closes with that code.

        @type code: L{int}
        @type text: L{str}
        """


class IFramingReceiver(Interface):
    """
    Told by an L{IFraming} what the peer's stream holds, in order.
    """

    def streamOpened(root):
        """
        The peer opened (or restarted) its stream.

        @param root: the stream header as the C{XmlStream} expects it, a
            C{stream:stream} element whose default namespace is the
            stream's content namespace.
        @type root: L{twisted.words.xish.domish.Element}
        """

    def elementReceived(element):
        """
        A top-level element (a stanza, C{<stream:features/>}, a SASL
        element...) arrived whole.

        @type element: L{twisted.words.xish.domish.Element}
        """

    def streamClosed():
        """
        The peer closed its stream (C{<close/>} or the stream footer).
        """


class IFraming(Interface):
    """
    One way of carrying an XMPP stream: RFC 7395 and draft-00 over
    WebSocket messages, RFC 6120 over a TCP byte stream.

    Inbound, it checks what the peer sends and builds the stream's
    elements in one pass, telling its L{IFramingReceiver}.  Outbound, it
    turns what an C{XmlStream} writes into what goes on the wire.
    """

    name = Attribute("C{'rfc7395'}, C{'legacy'} or C{'rfc6120'}.")
    messageOriented = Attribute(
        "C{True} if L{dataReceived} takes whole messages and every outbound "
        "element needs a message of its own."
    )

    def dataReceived(data):
        """
        Read what the peer sent: one WebSocket message, or TCP bytes.

        @type data: L{bytes}
        @raise xmppws.framing.FramingError: if the input breaks the framing
            or RFC 6120's rules; its C{condition} is the stream error.
        """

    def restart():
        """
        The stream restarts (after STARTTLS or SASL): the peer's next
        stream header is expected, and everything it sends after the
        element that caused the restart belongs to the new stream.
        """

    def readDone():
        """
        Everything the last network read carried was handled: drop what
        can be rebuilt for the next message (a message framing's parser),
        so that an idle connection holds as little as possible.
        """

    def headerMessage(root, initiating, lang):
        """
        Build what opens this side's stream.

        @param root: the stream header the C{XmlStream} wrote, parsed.
        @type root: L{twisted.words.xish.domish.Element}
        @param initiating: C{True} on the client side of a connection.
        @param lang: default C{xml:lang} for a receiving entity's header
            that carries none, or L{None}.
        @rtype: L{bytes}
        """

    def elementMessage(data, namespace):
        """
        Build the message for one top-level element from the bytes the
        C{XmlStream} serialised it to, without parsing them into a tree.

        @param data: exactly one complete element, as written in the
            context of this side's stream header.
        @param namespace: the stream's content namespace.
        @rtype: L{bytes}
        """

    def treeMessage(element, namespace):
        """
        Build the message for one top-level element given as a tree (when
        the C{XmlStream} wrote it in pieces).

        @type element: L{twisted.words.xish.domish.Element}
        @param namespace: the stream's content namespace.
        @rtype: L{bytes}
        """

    def closeMessage(seeOtherURI=None):
        """
        Build what closes this side's stream.

        @param seeOtherURI: where the peer should reconnect instead, or
            L{None}.  Only RFC 7395 can carry it.
        @rtype: L{bytes}
        """


class IXMPPTransport(ITransport, IConsumer, IPushProducer):
    """
    The transport an C{XmlStream} writes to: it behaves as a TCP transport
    would, and tells what only the connection knows.
    """

    framing = Attribute(
        "The connection's L{IFraming}, or L{None} before a WebSocket client "
        "chose one with its first message."
    )
    kind = Attribute("C{'websocket'} or C{'tcp'}.")
    secure = Attribute(
        "C{True} when the connection is encrypted (TLS, STARTTLS, C{wss:}, or "
        "a trusted TLS-terminating proxy)."
    )
    origin = Attribute("The C{Origin} a browser sent, or L{None}.")
    path = Attribute("The HTTP path of a WebSocket request, or L{None}.")

    def closeStream(seeOtherURI=None):
        """
        Close the XMPP stream and then the connection.

        @param seeOtherURI: a C{ws:} or C{wss:} URI the peer should use
            instead (RFC 7395 C{see-other-uri}), or L{None}.
        @raise ValueError: if C{seeOtherURI} is no WebSocket URI, or would
            take a secure connection to C{ws:}.
        """


class IConnection(Interface):
    """
    One open XMPP connection as the service sees it: counted, reported and
    closed at shutdown the same way whatever carries it.
    """

    kind = Attribute("C{'websocket'} or C{'tcp'}.")
    framingName = Attribute("The framing's name, or C{'none'} before one is chosen.")
    bytesIn = Attribute("Bytes received from the peer.")
    bytesOut = Attribute("Bytes sent to the peer.")

    def closeForShutdown(seeOtherURI=None):
        """
        Close because the service stops: a C{<close/>} naming
        C{seeOtherURI} where the framing can carry it, else the
        C{system-shutdown} stream error.
        """

    def abortConnection():
        """
        Drop the connection at once.
        """
