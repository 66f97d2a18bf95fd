"""
The embedded XMPP server: accounts, SASL, resource binding, roster,
presence, routing and the extensions browser clients rely on, built on
Twisted Words and tx-xmpp.  The same server serves WebSocket and TCP
client connections.
"""
