"""
Tests for L{xmppws.policies.ClientPolicies}: the limits and timers of a
client connection, in one place for hosted and relayed connections.
"""

from twisted.internet.testing import StringTransport
from twisted.internet.task import Clock
from twisted.trial import unittest

from xmppws.connection import ConnectionFactory
from xmppws.gateway.relay import GatewayFactory
from xmppws.gateway.routes import Router
from xmppws.limits import Limits
from xmppws.policies import ClientPolicies


class PoliciesTests(unittest.TestCase):
    """
    L{ClientPolicies.attach} gives a connection its own throttle, watchdog
    and flow control, wired together.
    """

    def attach(self, **settings):
        self.clock = Clock()
        self.carrier = StringTransport()
        self.timeouts, self.pings, self.stalls = [], [], []
        return ClientPolicies(**settings).attach(
            self.clock,
            self.carrier,
            self.timeouts.append,
            lambda: self.pings.append(self.clock.seconds()),
            lambda: self.stalls.append(self.clock.seconds()),
        )

    def test_rateThroughFlow(self):
        """
        Over the stanza rate, the throttle pauses reading from the carrier
        through the flow control, and resumes it once the bucket refilled.
        """
        throttle, watchdog, flow = self.attach(stanzaRate=2, stanzaBurst=2)
        for _ in range(3):
            throttle.stanzaReceived()
        self.assertTrue(flow.paused)
        self.assertEqual(self.carrier.producerState, "paused")
        self.clock.advance(1)
        self.assertFalse(flow.paused)
        self.assertEqual(self.carrier.producerState, "producing")

    def test_timers(self):
        """
        The watchdog runs the open timeout and pings with the settings
        given, once started.
        """
        throttle, watchdog, flow = self.attach(openTimeout=3, pingInterval=5)
        watchdog.start()
        self.clock.advance(3)
        self.assertEqual(len(self.timeouts), 1)

    def test_ownPerConnection(self):
        """
        Each connection gets policies of its own.
        """
        policies = ClientPolicies(stanzaRate=1)
        first = policies.attach(Clock(), StringTransport(), print, print, print)
        second = policies.attach(Clock(), StringTransport(), print, print, print)
        for mine, theirs in zip(first, second):
            self.assertIsNot(mine, theirs)

    def test_sameForHostedAndRelayed(self):
        """
        The embedded server's connections and the gateway's relays take
        the same settings from the same L{Limits}.
        """
        limits = Limits(stanzaRate=7, stallTimeout=12, openTimeout=4)
        clock = Clock()
        hosted = ConnectionFactory(object(), clock, **limits.connectionPolicies())
        relayed = GatewayFactory(Router([], ()), clock, connector=object(),
                                 **limits.connectionPolicies())
        self.assertEqual(vars(hosted.policies), vars(relayed.policies))
        self.assertEqual(
            (hosted.policies.stanzaRate, hosted.policies.stallTimeout,
             hosted.policies.openTimeout),
            (7, 12, 4),
        )
