# -*- test-case-name: tests.test_c2s_ext -*-
"""
XEP-0030 service discovery for the embedded server: C{disco#info} and
C{disco#items} of the server's domains, and of an account's bare JID
answered by the server on the account's behalf.

Features come from every installed module: a module's state object may
list its namespaces in a C{discoFeatures} attribute (read at each query,
so it may be a property), and anything may call L{Disco.addFeature}.
The elements are built with tx-xmpp's L{tx_xmpp.disco} classes.
"""

from tx_xmpp.disco import DiscoFeature, DiscoIdentity, DiscoInfo, DiscoItem, DiscoItems

from xmppws.c2s import jid as jids
from xmppws.c2s.namespaces import NS_DISCO_INFO, NS_DISCO_ITEMS

__all__ = ["Disco", "install"]

SERVER_NAME = "xmppws"


class Disco:
    """
    The disco module's state.

    @ivar server: the L{xmppws.c2s.server.XMPPServer}.
    @ivar features: namespaces added with L{addFeature} for the server.
    @ivar accountFeatures: namespaces added for accounts' bare JIDs.
    @ivar accountIdentities: C{(category, type)} of the identities of
        accounts' bare JIDs.
    """

    def __init__(self, server):
        self.server = server
        self.features = {NS_DISCO_INFO, NS_DISCO_ITEMS}
        self.accountFeatures = {NS_DISCO_INFO, NS_DISCO_ITEMS}
        self.accountIdentities = [("account", "registered")]

    def addFeature(self, namespace, account=False):
        """
        Announce a feature in the server's C{disco#info}, or in that of
        every account's bare JID.

        @type namespace: L{str}
        @param account: C{True} to announce it for accounts instead.
        """
        (self.accountFeatures if account else self.features).add(namespace)

    def addAccountIdentity(self, category, kind):
        """
        Announce one more identity of every account's bare JID (such as
        C{pubsub}/C{pep}, XEP-0163).
        """
        if (category, kind) not in self.accountIdentities:
            self.accountIdentities.append((category, kind))

    def serverFeatures(self):
        """
        The server's features: those added, and the C{discoFeatures} of
        every installed module.

        @rtype: L{set} of L{str}
        """
        features = set(self.features)
        for state in list(self.server.modules.values()):
            features.update(getattr(state, "discoFeatures", ()))
        return features

    # Hooks

    def onServerIQ(self, iq, to):
        query = _query(iq)
        if query is None:
            return None
        if query.getAttribute("node"):
            self.server.bounce(iq, "item-not-found", "cancel")
            return True
        reply = self.server.reply(iq)
        if query.uri == NS_DISCO_INFO:
            info = DiscoInfo()
            info.append(DiscoIdentity("server", "im", SERVER_NAME))
            for feature in sorted(self.serverFeatures()):
                info.append(DiscoFeature(feature))
            reply.addChild(info.toElement())
        else:
            items = DiscoItems()
            for domain in sorted(self.server.components):
                items.append(DiscoItem(jids.fromPrepared(domain)))
            reply.addChild(items.toElement())
        self.server.route(reply)
        return True

    def onAccountIQ(self, session, iq):
        query = _query(iq)
        if query is None:
            return None
        self._answerForAccount(iq, query, jids.bare(session.jid))
        return True

    def onBareIQ(self, iq, to):
        query = _query(iq)
        if query is None or not self.server.accountExists(to):
            return None
        if not self._mayDiscover(iq, to):
            self.server.bounce(iq, "service-unavailable", "cancel")
            return True
        self._answerForAccount(iq, query, to)
        return True

    # Helpers

    def _answerForAccount(self, iq, query, account):
        if query.getAttribute("node"):
            self.server.bounce(iq, "item-not-found", "cancel")
            return
        reply = self.server.reply(iq)
        reply["from"] = account.full()
        if query.uri == NS_DISCO_INFO:
            info = DiscoInfo()
            for category, kind in self.accountIdentities:
                info.append(DiscoIdentity(category, kind))
            for feature in sorted(self.accountFeatures):
                info.append(DiscoFeature(feature))
            reply.addChild(info.toElement())
        else:
            reply.addChild(DiscoItems().toElement())
        self.server.route(reply)

    def _mayDiscover(self, iq, account):
        """
        Whether the sender of C{iq} may see the account's information: it
        is one of the account's own resources, or subscribed to its
        presence (RFC 6121 section 8.5.1: otherwise the account must look
        as if it did not exist).
        """
        try:
            requester = jids.bare(jids.parse(iq["from"]))
        except (KeyError, jids.JIDMalformed):
            return False
        if requester == account:
            return True
        item = self.server.storage.rosterItem(account.user, account.host, requester.full())
        return item is not None and item.subscription in ("from", "both")


def _query(iq):
    """
    The disco query of a C{get} iq, or L{None}.
    """
    if iq.getAttribute("type") != "get":
        return None
    query = iq.firstChildElement()
    if query is None or query.name != "query":
        return None
    if query.uri not in (NS_DISCO_INFO, NS_DISCO_ITEMS):
        return None
    return query


def install(server):
    """
    Answer disco queries to the server and to accounts' bare JIDs.

    @return: the L{Disco} state.
    """
    disco = Disco(server)
    server.on("iq/server", disco.onServerIQ)
    server.on("iq/account", disco.onAccountIQ)
    server.on("iq/bare", disco.onBareIQ)
    return disco
