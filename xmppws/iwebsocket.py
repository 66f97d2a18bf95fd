# -*- test-case-name: tests.test_framing -*-
"""
Interfaces of the WebSocket side of xmppws: the two framings and the
transport an L{XmlStream<twisted.words.protocols.jabber.xmlstream.XmlStream>}
writes to.
"""

from twisted.internet.interfaces import IConsumer, IPushProducer, ITransport
from zope.interface import Attribute, Interface

__all__ = ["IFraming", "IXMPPWebSocketTransport"]


class IFraming(Interface):
    """
    One way of carrying an XMPP stream in WebSocket messages.

    A framing translates in both directions between the messages on the
    WebSocket and the byte stream an unmodified C{XmlStream} reads and
    writes.  RFC 7395 and draft-ietf-xmpp-websocket-00 are the two
    implementations.
    """

    name = Attribute("Short name of the framing, C{'rfc7395'} or C{'legacy'}.")

    def parseMessage(data):
        """
        Check one inbound WebSocket text message and classify it.

        @param data: the message payload, UTF-8.
        @type data: L{bytes}
        @return: the checked message.
        @rtype: L{xmppws.framing.InboundMessage}
        @raise xmppws.framing.FramingError: if the message breaks the
            framing or RFC 6120 restricted XML; its C{condition} is the
            stream error to send.
        """

    def streamBytes(message, namespace):
        """
        Turn a checked inbound message into bytes for the C{XmlStream}.

        @param message: what L{parseMessage} returned.
        @type message: L{xmppws.framing.InboundMessage}
        @param namespace: the stream's content namespace, such as
            C{'jabber:client'}.
        @type namespace: L{str}
        @rtype: L{bytes}
        """

    def headerMessage(root, initiating, lang):
        """
        Build the message that opens the stream.

        @param root: the stream header the C{XmlStream} wrote, parsed.
        @type root: L{twisted.words.xish.domish.Element}
        @param initiating: C{True} on the client side of a connection.
        @type initiating: L{bool}
        @param lang: default C{xml:lang} for a receiving entity's header
            that carries none, or L{None}.
        @type lang: L{str} or L{None}
        @rtype: L{bytes}
        """

    def elementMessage(element, namespace):
        """
        Build the message carrying one top-level element.

        @param element: a direct child of the stream, such as a stanza or
            C{<stream:features/>}.
        @type element: L{twisted.words.xish.domish.Element}
        @param namespace: the stream's content namespace.
        @type namespace: L{str}
        @rtype: L{bytes}
        """

    def rawElementMessage(data, namespace):
        """
        Build the message carrying one top-level element from the bytes
        the C{XmlStream} wrote for it, without parsing it into a tree: the
        fast path for the common case.

        Only used when the stream header declares no prefix but
        C{stream}.

        @param data: what the C{XmlStream} wrote, in the stream's context.
        @type data: L{bytes}
        @param namespace: the header's default namespace.
        @type namespace: L{str}
        @return: the message, or L{None} when C{data} is not exactly one
            plain element (the caller then parses it).
        @rtype: L{bytes} or L{None}
        """

    def closeMessage(seeOtherURI=None):
        """
        Build the message that closes the stream.

        @param seeOtherURI: where the peer should reconnect instead, or
            L{None}.  Only RFC 7395 can carry it.
        @type seeOtherURI: L{str} or L{None}
        @rtype: L{bytes}
        """


class IXMPPWebSocketTransport(ITransport, IConsumer, IPushProducer):
    """
    The transport an C{XmlStream} sees when it runs over WebSocket.

    It behaves as a TCP transport would, and tells what only a WebSocket
    connection knows.
    """

    framing = Attribute(
        "The L{IFraming} chosen by the peer's first message, or L{None} "
        "before that."
    )
    secure = Attribute(
        "C{True} when the WebSocket arrived over TLS, directly or through a "
        "trusted TLS-terminating proxy."
    )
    origin = Attribute("The C{Origin} the browser sent, or L{None}.")
    path = Attribute("The HTTP path of the WebSocket request.")

    def closeStream(seeOtherURI=None):
        """
        Close the XMPP stream and then the WebSocket.

        @param seeOtherURI: a C{ws:} or C{wss:} URI the peer should use
            instead (RFC 7395 C{see-other-uri}), or L{None}.
        @type seeOtherURI: L{str} or L{None}
        """
