"""
Tests for L{xmppws.limits} and L{xmppws._connections}: every limit of
the service, on WebSocket and on TCP, driven by a memory clock.
"""

from twisted.internet.task import Clock
from twisted.trial import unittest

from tests.helpers import OP_PING, OP_PONG, clientFrame, upgradeRequest
from tests.servicehelpers import (
    TCP_HEADER,
    SiteClient,
    TCPClient,
    startService,
    streamErrorCondition,
)
from xmppws.policies import TokenBucket
from xmppws.limits import (
    ConnectionLimiter,
    Limits,
    exemptFromPerAddressLimit,
)

PING = (
    b"<iq xmlns='jabber:client' type='get' id='p%d' to='localhost'>"
    b"<ping xmlns='urn:xmpp:ping'/></iq>"
)


class LimitsTests(unittest.TestCase):
    """
    L{Limits} holds every limit with a default, checked.
    """

    def test_defaults(self):
        """
        Every limit has a sane default.
        """
        limits = Limits()
        self.assertEqual(limits.maxConnections, 10000)
        self.assertEqual(limits.maxConnectionsPerIP, 100)
        self.assertEqual(limits.maxMessageSize, 256 * 1024)
        self.assertEqual(
            (limits.handshakeTimeout, limits.openTimeout, limits.idleTimeout),
            (10, 30, 600),
        )
        self.assertEqual((limits.pingInterval, limits.pingTimeout), (25, 10))
        self.assertEqual((limits.stanzaRate, limits.stanzaBurst), (20, 100))

    def test_invalid(self):
        """
        Unknown names and values out of range raise L{ValueError}.
        """
        for values in (
            {"maxConections": 1},
            {"maxConnections": 0},
            {"maxMessageSize": -1},
            {"idleTimeout": -1},
            {"stanzaBurst": 0},
            {"pingInterval": 5, "pingTimeout": 0},
        ):
            self.assertRaises(ValueError, Limits, **values)


class ConnectionLimiterTests(unittest.TestCase):
    """
    L{ConnectionLimiter} counts connections in total and per address.
    """

    def test_total(self):
        """
        No more than C{maxTotal} connections at once.
        """
        limiter = ConnectionLimiter(2, 10)
        first = limiter.admit("192.0.2.1")
        self.assertEqual(first, (True, "192.0.2.1"))
        self.assertTrue(limiter.admit("192.0.2.2")[0])
        self.assertEqual(limiter.admit("192.0.2.3"), (False, ConnectionLimiter.TOTAL))
        limiter.release(first[1])
        self.assertTrue(limiter.admit("192.0.2.3")[0])

    def test_perAddress(self):
        """
        No more than C{maxPerAddress} connections from one address;
        exempt connections do not count towards it.
        """
        limiter = ConnectionLimiter(10, 1)
        ok, key = limiter.admit("192.0.2.1")
        self.assertTrue(ok)
        self.assertEqual(limiter.admit("192.0.2.1"), (False, ConnectionLimiter.PER_ADDRESS))
        self.assertTrue(limiter.admit("127.0.0.1", exempt=True)[0])
        self.assertTrue(limiter.admit("127.0.0.1", exempt=True)[0])
        limiter.release(key)
        self.assertEqual(limiter.perAddress, {})
        self.assertTrue(limiter.admit("192.0.2.1")[0])

    def test_exemption(self):
        """
        Only a local peer (loopback, or a UNIX socket) that no trusted proxy
        header replaced is exempt.
        """
        self.assertTrue(exemptFromPerAddressLimit("127.0.0.1", "127.0.0.1"))
        self.assertTrue(exemptFromPerAddressLimit("::1", "::1"))
        self.assertTrue(exemptFromPerAddressLimit("", ""))
        self.assertFalse(exemptFromPerAddressLimit("127.0.0.1", "198.51.100.7"))
        self.assertFalse(exemptFromPerAddressLimit("192.0.2.1", "192.0.2.1"))


class TokenBucketTests(unittest.TestCase):
    """
    L{TokenBucket}.
    """

    def test_bucket(self):
        """
        A bucket holds C{burst} tokens and refills at C{rate} a second.
        """
        clock = Clock()
        bucket = TokenBucket(2, 3, clock)
        self.assertEqual([bucket.take() for _ in range(4)], [2, 1, 0, -1])
        self.assertEqual(bucket.wait(), 0.5)
        clock.advance(1)
        self.assertEqual(bucket.take(), 0)
        clock.advance(100)
        self.assertEqual(bucket.take(), 2)


class ConnectionLimitTests(unittest.TestCase):
    """
    The connection limits, on both transports together.
    """

    def test_webSocketTotal(self):
        """
        Beyond the total, a WebSocket handshake gets 503 with an
        explanation; a slot frees when a connection ends.
        """
        service = startService(self, limits={"maxConnections": 2})
        [site] = service.factories("web")
        first = SiteClient(site, peer="192.0.2.1")
        self.assertIn(b" 101 ", first.handshake())
        self.assertIn(b" 101 ", SiteClient(site, peer="192.0.2.2").handshake())
        third = SiteClient(site, peer="192.0.2.3")
        response = third.handshake()
        self.assertIn(b" 503 ", response)
        self.assertIn(b"Retry-After: 30", response)
        self.assertIn(b"too many connections", third._rest)
        first.lose()
        self.assertIn(b" 101 ", SiteClient(site, peer="192.0.2.3").handshake())
        self.assertEqual(
            service.metrics._refusals, {ConnectionLimiter.TOTAL: 1}
        )

    def test_sharedBetweenTransports(self):
        """
        WebSocket and TCP connections count towards the same total; a TCP
        client beyond it gets a C{resource-constraint} stream error.
        """
        service = startService(self, limits={"maxConnections": 1})
        [site] = service.factories("web")
        [c2s] = service.factories("c2s")
        self.assertIn(b" 101 ", SiteClient(site, peer="192.0.2.1").handshake())
        refused = TCPClient(c2s, peer="192.0.2.2")
        [error] = refused.receive()
        self.assertEqual(streamErrorCondition(error), "resource-constraint")
        self.assertTrue(refused.ended)
        self.assertTrue(refused.transport.disconnecting)
        self.assertEqual(service.metrics._c2sRefusals, {ConnectionLimiter.TOTAL: 1})

    def test_perAddress(self):
        """
        Beyond the limit per address, connections from that address are
        refused on both transports; other addresses, and local proxies,
        are not.
        """
        service = startService(self, limits={"maxConnectionsPerIP": 1})
        [site] = service.factories("web")
        [c2s] = service.factories("c2s")
        self.assertIn(b" 101 ", SiteClient(site, peer="192.0.2.1").handshake())
        self.assertIn(b" 503 ", SiteClient(site, peer="192.0.2.1").handshake())
        [error] = TCPClient(c2s, peer="192.0.2.1").receive()
        self.assertEqual(streamErrorCondition(error), "policy-violation")
        self.assertIn(b" 101 ", SiteClient(site, peer="192.0.2.2").handshake())
        for port in range(3):
            self.assertIn(b" 101 ", SiteClient(site, peer="127.0.0.1", port=port).handshake())

    def test_perAddressBehindProxy(self):
        """
        Behind a trusted proxy, the address it forwards is the one counted.
        """
        service = startService(
            self, limits={"maxConnectionsPerIP": 1}, trustedProxies=["127.0.0.1"]
        )
        [site] = service.factories("web")
        forwarded = upgradeRequest(extra=[b"X-Forwarded-For: 198.51.100.7"])
        other = upgradeRequest(extra=[b"X-Forwarded-For: 198.51.100.8"])
        self.assertIn(b" 101 ", SiteClient(site, port=1).handshake(forwarded))
        self.assertIn(b" 503 ", SiteClient(site, port=2).handshake(forwarded))
        self.assertIn(b" 101 ", SiteClient(site, port=3).handshake(other))


class MessageSizeTests(unittest.TestCase):
    """
    The maximum message size.
    """

    def test_webSocket(self):
        """
        A WebSocket message over the limit gets C{policy-violation} and
        close code 1009.
        """
        service = startService(self, limits={"maxMessageSize": 300})
        [site] = service.factories("web")
        client = SiteClient(site)
        client.open()
        client.send(b"<message xmlns='jabber:client'><body>" + b"x" * 400 + b"</body></message>")
        messages = client.messages()
        self.assertEqual(streamErrorCondition(messages[0]), "policy-violation")
        self.assertEqual(client.closeCode(), 1009)

    def test_tcp(self):
        """
        A top-level element over the limit on TCP gets C{policy-violation}.
        """
        service = startService(self, limits={"maxMessageSize": 300})
        [c2s] = service.factories("c2s")
        client = TCPClient(c2s)
        client.open()
        client.send(b"<message xmlns='jabber:client'><body>" + b"x" * 200)
        self.assertEqual(client.receive(), [])
        client.send(b"y" * 200)
        [error] = client.receive()
        self.assertEqual(streamErrorCondition(error), "policy-violation")
        self.assertTrue(client.ended)
        client.send(b"</stream:stream>")
        self.assertTrue(client.transport.disconnecting)

    def test_tcpManySmallElements(self):
        """
        The limit is per element: whitespace and small elements in reads
        of their own add up to nothing.
        """
        service = startService(self, limits={"maxMessageSize": 300})
        [c2s] = service.factories("c2s")
        client = TCPClient(c2s)
        client.login("alice")
        client.send(b" " * 250)
        client.send(b" " * 250)
        for n in range(5):
            client.send(PING % (n,))
        self.assertEqual([e["type"] for e in client.receive()], ["result"] * 5)
        self.assertFalse(client.transport.disconnecting)

    def test_tcpHeader(self):
        """
        A stream header that never ends is cut off at the limit.
        """
        service = startService(self, limits={"maxMessageSize": 300})
        [c2s] = service.factories("c2s")
        client = TCPClient(c2s)
        client.send(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='")
        client.send(b"x" * 400)
        [error] = client.receive()
        self.assertEqual(streamErrorCondition(error), "policy-violation")
        self.assertTrue(client.transport.disconnecting)


class TimeoutTests(unittest.TestCase):
    """
    The handshake, stream-open and idle timeouts.
    """

    def test_handshake(self):
        """
        A client that does not finish its HTTP request within the handshake
        timeout is dropped.
        """
        service = startService(self, limits={"handshakeTimeout": 5})
        [site] = service.factories("web")
        client = SiteClient(site)
        client.channel.dataReceived(b"GET /xmpp-websocket HTTP/1.1\r\nHost: x\r\n")
        service.reactor.advance(2)
        client.channel.dataReceived(b"Upgrade: websocket\r\n")
        service.reactor.advance(2.9)
        self.assertFalse(client.transport.disconnecting)
        service.reactor.advance(0.2)
        self.assertTrue(client.transport.disconnecting)

    def test_handshakeSilent(self):
        """
        A client that sends nothing is dropped after the handshake timeout.
        """
        service = startService(self, limits={"handshakeTimeout": 5})
        [site] = service.factories("web")
        client = SiteClient(site)
        service.reactor.advance(5.1)
        self.assertTrue(client.transport.disconnecting)

    def test_handshakeDoneInTime(self):
        """
        A handshake completed in time is not cut off later.
        """
        service = startService(self, limits={"handshakeTimeout": 5, "pingInterval": 0})
        [site] = service.factories("web")
        client = SiteClient(site)
        client.open()
        service.reactor.advance(20)
        self.assertFalse(client.transport.disconnecting)

    def test_webSocketOpen(self):
        """
        A WebSocket that never sends C{<open/>} gets C{connection-timeout}.
        """
        service = startService(self, limits={"openTimeout": 5, "pingInterval": 0})
        [site] = service.factories("web")
        client = SiteClient(site)
        client.handshake()
        service.reactor.advance(4.9)
        self.assertEqual(client.messages(), [])
        service.reactor.advance(0.2)
        messages = client.messages()
        self.assertEqual(streamErrorCondition(messages[1]), "connection-timeout")

    def test_tcpOpen(self):
        """
        A TCP client that never sends its stream header gets
        C{connection-timeout}.
        """
        service = startService(self, limits={"openTimeout": 5})
        [c2s] = service.factories("c2s")
        client = TCPClient(c2s)
        service.reactor.advance(5.1)
        [error] = client.receive()
        self.assertEqual(streamErrorCondition(error), "connection-timeout")
        self.assertTrue(client.ended)
        self.assertTrue(client.transport.disconnecting)

    def test_tcpOpenInTime(self):
        """
        The stream-open timeout stops once the header arrived.
        """
        service = startService(self, limits={"openTimeout": 5, "idleTimeout": 0})
        [c2s] = service.factories("c2s")
        client = TCPClient(c2s)
        client.send(TCP_HEADER)
        service.reactor.advance(60)
        self.assertFalse(client.transport.disconnecting)

    def test_webSocketIdle(self):
        """
        A WebSocket on which nothing arrives for the idle timeout gets
        C{connection-timeout}; anything arriving restarts the count.
        """
        service = startService(self, limits={"idleTimeout": 10, "pingInterval": 0})
        [site] = service.factories("web")
        client = SiteClient(site)
        client.open()
        service.reactor.advance(9)
        client.protocol.dataReceived(clientFrame(b"", OP_PONG))
        service.reactor.advance(9)
        self.assertEqual(client.messages(), [])
        service.reactor.advance(1.1)
        [error, close] = client.messages()
        self.assertEqual(streamErrorCondition(error), "connection-timeout")
        self.assertEqual(close.name, "close")

    def test_tcpIdle(self):
        """
        A TCP stream on which nothing arrives for the idle timeout gets
        C{connection-timeout}.
        """
        service = startService(self, limits={"idleTimeout": 10, "pingInterval": 0})
        [c2s] = service.factories("c2s")
        client = TCPClient(c2s)
        client.open()
        service.reactor.advance(9)
        client.send(b" ")
        service.reactor.advance(9)
        self.assertEqual(client.receive(), [])
        service.reactor.advance(1.1)
        [error] = client.receive()
        self.assertEqual(streamErrorCondition(error), "connection-timeout")


class PingTests(unittest.TestCase):
    """
    Pinging quiet clients.
    """

    def test_webSocketPing(self):
        """
        A quiet WebSocket gets a ping after the interval; a peer that does
        not answer within the ping timeout is dropped.
        """
        service = startService(self, limits={"pingInterval": 5, "pingTimeout": 2})
        [site] = service.factories("web")
        client = SiteClient(site)
        client.open()
        service.reactor.advance(5.1)
        self.assertIn(OP_PING, [opcode for opcode, _ in client.received()])
        self.assertEqual(client.messages(), [])
        service.reactor.advance(2.1)
        [error, close] = client.messages()
        self.assertEqual(streamErrorCondition(error), "connection-timeout")
        self.assertEqual(close.name, "close")
        # The closing handshake times out on a dead peer.
        service.reactor.advance(5.1)
        self.assertTrue(client.transport.disconnecting)

    def test_webSocketPong(self):
        """
        A peer that answers pings stays connected.
        """
        service = startService(self, limits={"pingInterval": 5, "pingTimeout": 2})
        [site] = service.factories("web")
        client = SiteClient(site)
        client.open()
        for _ in range(3):
            service.reactor.advance(5.1)
            for opcode, payload in client.received():
                if opcode == OP_PING:
                    client.protocol.dataReceived(clientFrame(payload, OP_PONG))
        self.assertFalse(client.transport.disconnecting)

    def test_tcpPing(self):
        """
        A quiet TCP session gets an XEP-0199 ping after the interval and
        C{connection-timeout} if it does not answer.
        """
        service = startService(self, limits={"pingInterval": 5, "pingTimeout": 2})
        [c2s] = service.factories("c2s")
        client = TCPClient(c2s)
        jid = client.login("alice")
        service.reactor.advance(5.1)
        [ping] = client.receive()
        self.assertEqual((ping.name, ping["type"], ping["to"]), ("iq", "get", jid))
        self.assertEqual(ping.firstChildElement().uri, "urn:xmpp:ping")
        service.reactor.advance(2.1)
        [error] = client.receive()
        self.assertEqual(streamErrorCondition(error), "connection-timeout")

    def test_tcpPingCountedByStreamManagement(self):
        """
        The ping goes through stream management, so the client's count of
        stanzas received stays right.
        """
        service = startService(self, limits={"pingInterval": 5, "pingTimeout": 2})
        [c2s] = service.factories("c2s")
        client = TCPClient(c2s)
        client.login("alice")
        client.send(b"<enable xmlns='urn:xmpp:sm:3'/>")
        [enabled] = client.receive()
        self.assertEqual(enabled.name, "enabled")
        service.reactor.advance(5.1)
        [ping] = client.receive()
        client.send(b"<a xmlns='urn:xmpp:sm:3' h='1'/>")
        client.send(
            b"<iq xmlns='jabber:client' type='result' id='%s' to='localhost'/>"
            % (ping["id"].encode(),)
        )
        self.assertEqual(client.receive(), [])
        self.assertFalse(client.transport.disconnecting)

    def test_tcpPingAnswered(self):
        """
        A TCP session that answers the ping stays connected.
        """
        service = startService(self, limits={"pingInterval": 5, "pingTimeout": 2})
        [c2s] = service.factories("c2s")
        client = TCPClient(c2s)
        client.login("alice")
        for _ in range(3):
            service.reactor.advance(5.1)
            [ping] = client.receive()
            client.send(
                b"<iq xmlns='jabber:client' type='result' id='%s' to='localhost'/>"
                % (ping["id"].encode(),)
            )
        self.assertFalse(client.transport.disconnecting)


class StanzaRateTests(unittest.TestCase):
    """
    The per-session stanza rate.
    """

    def flood(self, send, count, start=0):
        for n in range(start, start + count):
            send(PING % (n,))

    def test_tcpThrottled(self):
        """
        A session over the rate has its reading paused until it is back
        within it.
        """
        service = startService(self, limits={"stanzaRate": 2, "stanzaBurst": 10})
        [c2s] = service.factories("c2s")
        client = TCPClient(c2s)
        client.login("alice")
        self.flood(client.send, 8)
        self.assertEqual(client.transport.producerState, "producing")
        self.flood(client.send, 2, 8)
        self.assertEqual(client.transport.producerState, "paused")
        self.assertEqual(len(client.receive()), 10)
        service.reactor.advance(1)
        self.assertEqual(client.transport.producerState, "producing")

    def test_tcpFlood(self):
        """
        A session that sends far more than the burst in one read is slowed,
        never disconnected: every stanza of that read is answered, and
        reading stays paused until the rate has paid back the excess.
        """
        service = startService(self, limits={"stanzaRate": 2, "stanzaBurst": 10})
        [c2s] = service.factories("c2s")
        client = TCPClient(c2s)
        client.login("alice")
        client.send(b"".join(PING % (n,) for n in range(30)))
        elements = client.receive()
        self.assertEqual([e["id"] for e in elements], ["p%d" % (n,) for n in range(30)])
        self.assertEqual(client.transport.producerState, "paused")
        # At least 20 stanzas over the burst (more with the login's), at
        # 2 a second.
        service.reactor.advance(9.9)
        self.assertEqual(client.transport.producerState, "paused")
        service.reactor.advance(2)
        self.assertEqual(client.transport.producerState, "producing")
        self.assertFalse(client.transport.disconnecting)

    def test_webSocketThrottled(self):
        """
        The rate applies to WebSocket sessions the same way: a flood is
        slowed, answered in full, and not disconnected.
        """
        service = startService(self, limits={"stanzaRate": 2, "stanzaBurst": 10})
        [site] = service.factories("web")
        client = SiteClient(site)
        client.login("alice")
        self.flood(client.send, 10)
        self.assertEqual(client.transport.producerState, "paused")
        service.reactor.advance(1)
        self.assertEqual(client.transport.producerState, "producing")
        self.flood(client.send, 30, 10)
        replies = client.messages()
        self.assertEqual(
            [m["id"] for m in replies if m.name == "iq"][-30:],
            ["p%d" % (n,) for n in range(10, 40)],
        )
        self.assertNotIn("policy-violation", [streamErrorCondition(m) for m in replies])
        self.assertEqual(client.transport.producerState, "paused")
        service.reactor.advance(20)
        self.assertEqual(client.transport.producerState, "producing")

    def test_off(self):
        """
        A rate of 0 turns the limit off.
        """
        service = startService(self, limits={"stanzaRate": 0})
        [c2s] = service.factories("c2s")
        client = TCPClient(c2s)
        client.login("alice")
        client.send(b"".join(PING % (n,) for n in range(300)))
        self.assertEqual(len(client.receive()), 300)
        self.assertEqual(client.transport.producerState, "producing")


class TCPStreamTests(unittest.TestCase):
    """
    What plain TCP streams get that the WebSocket layer gives WebSocket
    streams.
    """

    def test_notWellFormed(self):
        """
        Malformed XML gets the C{not-well-formed} stream error before the
        connection closes.
        """
        service = startService(self)
        [c2s] = service.factories("c2s")
        client = TCPClient(c2s)
        client.open()
        client.send(b"<message><body></message>")
        [error] = client.receive()
        self.assertEqual(streamErrorCondition(error), "not-well-formed")
        self.assertTrue(client.ended)
        service.reactor.advance(5)
        self.assertTrue(client.transport.disconnecting)


class DefaultLimitsTests(unittest.TestCase):
    """
    The default limits do not get in the way of ordinary use.
    """

    def test_login(self):
        """
        Logging in over both transports works with the default limits.
        """
        service = startService(self)
        [site] = service.factories("web")
        [c2s] = service.factories("c2s")
        self.assertEqual(SiteClient(site).login("alice"), "alice@localhost/web")
        self.assertEqual(TCPClient(c2s).login("bob"), "bob@localhost/tcp")
