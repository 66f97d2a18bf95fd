# -*- test-case-name: tests.test_gateway_relay -*-
"""
Gateway mode: a WebSocket front door for an existing XMPP server.

Every WebSocket client gets a client-to-server TCP stream of its own to
the server of its domain, and its stream is relayed both ways as bytes:
the client's messages are checked once and written upstream as they
came, the server's stream is split into top-level elements, one WebSocket
message each.  Only stream headers and features are rewritten.

    xmppws.gateway.routes     where each domain goes (--upstream)
    xmppws.gateway.upstream   the TCP stream to the server: PROXY
                              protocol, STARTTLS or direct TLS, failover
    xmppws.gateway.translate  the client's framing to RFC 6120 and back
    xmppws.gateway.relay      one client relayed (RelayConnection), and
                              its factory (GatewayFactory)
    xmppws.gateway.dispatch   relayed and local domains on one endpoint
    xmppws.gateway.proxyprotocol  PROXY protocol headers, v1 and v2

    router = Router([parseUpstream(reactor, "example.org=tcp:host=10.0.0.5:port=5222")])
    factory = XMPPWebSocketServerFactory(
        connectionFactory=GatewayFactory(router, reactor), reactor=reactor)

See C{docs/gateway.rst}.
"""

from xmppws.gateway.relay import GatewayFactory, RelayConnection
from xmppws.gateway.routes import Router, UpstreamRoute, parseUpstream

__all__ = ["GatewayFactory", "RelayConnection", "Router", "UpstreamRoute", "parseUpstream"]
