# -*- test-case-name: tests.test_pep -*-
"""
Personal data of accounts in SQLite (C{personal.sqlite}), through
L{xmppws.c2s.asyncdb}: personal eventing nodes and items (XEP-0163),
vCards (XEP-0054) and private XML (XEP-0049).

Every operation is one job on the database's own thread, in one
transaction: what it checks (a node's configuration, the account's
budgets) and what it changes cannot be separated by another request.
A refused operation raises L{xmppws.c2s.pepnode.PubSubError} (or
L{TooBig}) and changes nothing.  Payloads are kept as they were
serialized.

    store = PersonalStore(db)
    outcome = yield store.publish("alice@example.org", node, items, options, limits)
"""

from xmppws.c2s.pepnode import NodeConfig, PubSubError

__all__ = ["SCHEMA", "Item", "PepLimits", "PersonalStore", "PublishOutcome", "TooBig"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS pep_nodes (
    owner TEXT NOT NULL,
    node TEXT NOT NULL,
    config TEXT NOT NULL,
    PRIMARY KEY (owner, node)
);
CREATE TABLE IF NOT EXISTS pep_items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,
    node TEXT NOT NULL,
    item TEXT NOT NULL,
    publisher TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS pep_items_id ON pep_items (owner, node, item);
CREATE INDEX IF NOT EXISTS pep_items_node ON pep_items (owner, node, seq);
CREATE TABLE IF NOT EXISTS vcards (
    owner TEXT PRIMARY KEY,
    vcard TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS private_xml (
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    xml TEXT NOT NULL,
    PRIMARY KEY (owner, name)
);
"""


class TooBig(Exception):
    """
    What an account stores would exceed its budget.

    @ivar limit: the budget, in bytes.
    """

    def __init__(self, limit):
        Exception.__init__(self, limit)
        self.limit = limit


class Item:
    """
    One published item.

    @ivar id: its item id.
    @ivar publisher: the bare JID that published it (text).
    @ivar payload: its payload element, serialized.
    """

    __slots__ = ("id", "publisher", "payload")

    def __init__(self, id, publisher, payload):
        self.id = id
        self.publisher = publisher
        self.payload = payload

    def __repr__(self):
        return "<Item %s>" % (self.id,)


class PepLimits:
    """
    The budgets a publish is checked against.

    @ivar maxNodes: nodes of one account.
    @ivar maxItems: items of one account, every node together.
    """

    def __init__(self, maxNodes, maxItems):
        self.maxNodes = maxNodes
        self.maxItems = maxItems


class PublishOutcome:
    """
    What a publish did.

    @ivar config: the node's L{NodeConfig}.
    @ivar created: whether the node was created by it.
    @ivar items: the L{Item}s published.
    """

    def __init__(self, config, created, items):
        self.config = config
        self.created = created
        self.items = items


def _nodeMissing():
    return PubSubError("item-not-found", "cancel", text="No such node.")


class PersonalStore:
    """
    The personal data of the accounts of one server.

    @ivar db: the L{xmppws.c2s.asyncdb.AsyncDatabase}; its schema holds
        L{SCHEMA}.
    """

    def __init__(self, db):
        self.db = db

    def close(self):
        return self.db.close()

    # Nodes

    def config(self, owner, node):
        """
        @return: a L{Deferred} firing with the node's L{NodeConfig}, or
            L{None} when there is no such node.
        """
        return self.db.run(_config, owner, node)

    def nodes(self, owner):
        """
        @return: a L{Deferred} firing with C{(node, config)} pairs, sorted.
        """
        return self.db.run(_nodes, owner)

    def create(self, owner, node, values, limits):
        """
        Create a node with the default configuration changed by
        C{values} (attribute to value).

        @return: a L{Deferred} firing with its L{NodeConfig}; failing with
            C{conflict} when it exists, or when the account has as many
            nodes as it may.
        """
        return self.db.run(_create, owner, node, values, limits)

    def configure(self, owner, node, values):
        """
        Change a node's configuration; items beyond a smaller
        C{max_items} (or all of them, once not persistent) go.

        @return: a L{Deferred} firing with the new L{NodeConfig}.
        """
        return self.db.run(_configure, owner, node, values)

    def deleteNode(self, owner, node):
        """
        @return: a L{Deferred} firing with the deleted node's
            L{NodeConfig}.
        """
        return self.db.run(_deleteNode, owner, node)

    def purge(self, owner, node):
        """
        Remove every item of a node.

        @return: a L{Deferred} firing with its L{NodeConfig}.
        """
        return self.db.run(_purge, owner, node)

    # Items

    def publish(self, owner, node, items, preconditions, limits):
        """
        Publish items, creating the node (with C{preconditions} as its
        configuration) if needed.

        @param items: the L{Item}s.
        @param preconditions: attribute to value, from publish-options, or
            L{None}.
        @type limits: L{PepLimits}
        @return: a L{Deferred} firing with a L{PublishOutcome}.
        """
        return self.db.run(_publish, owner, node, items, preconditions, limits)

    def retract(self, owner, node, itemIds):
        """
        Remove items.

        @return: a L{Deferred} firing with the node's L{NodeConfig}.
        """
        return self.db.run(_retract, owner, node, itemIds)

    def items(self, owner, node, itemIds=None, maxItems=None):
        """
        A node's items, oldest first: all of them, the ones named, or the
        C{maxItems} most recent.

        @return: a L{Deferred} firing with C{(config, items)}.
        """
        return self.db.run(_items, owner, node, itemIds, maxItems)

    def lastItems(self, owners, nodes):
        """
        The last item of each of C{nodes} of each of C{owners} that sends
        it on presence (C{send_last_published_item} is
        C{on_sub_and_presence}).

        @return: a L{Deferred} firing with C{(owner, node, config, item)}
            tuples.
        """
        return self.db.run(_lastItems, list(owners), list(nodes))

    # vCards

    def vcard(self, owner):
        """
        @return: a L{Deferred} firing with the serialized vCard, or
            L{None}.
        """
        return self.db.run(_vcard, owner)

    def setVCard(self, owner, xml):
        return self.db.run(_setVCard, owner, xml)

    # Private XML

    def private(self, owner, name):
        """
        @param name: the element's name in Clark notation
            (C{{namespace}name}).
        @return: a L{Deferred} firing with its serialized element, or
            L{None}.
        """
        return self.db.run(_private, owner, name)

    def setPrivate(self, owner, elements, limit):
        """
        Store elements of private XML (name to serialized element),
        within C{limit} bytes for the account.

        @return: a L{Deferred}, failing with L{TooBig} beyond the limit.
        """
        return self.db.run(_setPrivate, owner, dict(elements), limit)

    # Accounts

    def deleteAccount(self, owner):
        """
        Forget everything of an account.
        """
        return self.db.run(_deleteAccount, owner)


def _config(connection, owner, node):
    row = connection.execute(
        "SELECT config FROM pep_nodes WHERE owner=? AND node=?", (owner, node)
    ).fetchone()
    return None if row is None else NodeConfig.fromJSON(row[0])


def _requireConfig(connection, owner, node):
    config = _config(connection, owner, node)
    if config is None:
        raise _nodeMissing()
    return config


def _nodes(connection, owner):
    return [
        (node, NodeConfig.fromJSON(config))
        for node, config in connection.execute(
            "SELECT node, config FROM pep_nodes WHERE owner=? ORDER BY node", (owner,)
        )
    ]


def _insertNode(connection, owner, node, config, limits):
    count = connection.execute(
        "SELECT COUNT(*) FROM pep_nodes WHERE owner=?", (owner,)
    ).fetchone()[0]
    if count >= limits.maxNodes:
        raise PubSubError(
            "not-allowed", "cancel", "max-nodes-exceeded",
            "An account may have at most %d nodes." % (limits.maxNodes,), quota="maxPepNodes",
        )
    connection.execute(
        "INSERT INTO pep_nodes (owner, node, config) VALUES (?, ?, ?)",
        (owner, node, config.toJSON()),
    )


def _create(connection, owner, node, values, limits):
    if _config(connection, owner, node) is not None:
        raise PubSubError("conflict", "cancel", text="The node exists.")
    config = NodeConfig().copy(**values)
    _insertNode(connection, owner, node, config, limits)
    return config


def _trim(connection, owner, node, config):
    if not config.persistItems:
        connection.execute("DELETE FROM pep_items WHERE owner=? AND node=?", (owner, node))
        return
    connection.execute(
        "DELETE FROM pep_items WHERE owner=? AND node=? AND seq NOT IN (SELECT seq FROM "
        "pep_items WHERE owner=? AND node=? ORDER BY seq DESC LIMIT ?)",
        (owner, node, owner, node, config.maxItems),
    )


def _configure(connection, owner, node, values):
    config = _requireConfig(connection, owner, node).copy(**values)
    connection.execute(
        "UPDATE pep_nodes SET config=? WHERE owner=? AND node=?", (config.toJSON(), owner, node)
    )
    _trim(connection, owner, node, config)
    return config


def _deleteNode(connection, owner, node):
    config = _requireConfig(connection, owner, node)
    connection.execute("DELETE FROM pep_nodes WHERE owner=? AND node=?", (owner, node))
    connection.execute("DELETE FROM pep_items WHERE owner=? AND node=?", (owner, node))
    return config


def _purge(connection, owner, node):
    config = _requireConfig(connection, owner, node)
    connection.execute("DELETE FROM pep_items WHERE owner=? AND node=?", (owner, node))
    return config


def _publish(connection, owner, node, items, preconditions, limits):
    config = _config(connection, owner, node)
    created = config is None
    if created:
        config = NodeConfig().copy(**(preconditions or {}))
        _insertNode(connection, owner, node, config, limits)
    elif preconditions:
        field = config.unmet(preconditions)
        if field is not None:
            raise PubSubError(
                "conflict", "cancel", "precondition-not-met",
                "The node's %s differs from the publish-options." % (field,),
            )
    if config.persistItems:
        for item in items:
            connection.execute(
                "DELETE FROM pep_items WHERE owner=? AND node=? AND item=?", (owner, node, item.id)
            )
            connection.execute(
                "INSERT INTO pep_items (owner, node, item, publisher, payload) "
                "VALUES (?, ?, ?, ?, ?)",
                (owner, node, item.id, item.publisher, item.payload),
            )
        _trim(connection, owner, node, config)
        total = connection.execute(
            "SELECT COUNT(*) FROM pep_items WHERE owner=?", (owner,)
        ).fetchone()[0]
        if total > limits.maxItems:
            raise PubSubError(
                "not-allowed", "cancel", "max-items-exceeded",
                "An account may keep at most %d items; retract some first." % (limits.maxItems,),
                quota="maxPepItems",
            )
    return PublishOutcome(config, created, list(items))


def _retract(connection, owner, node, itemIds):
    config = _requireConfig(connection, owner, node)
    for itemId in itemIds:
        row = connection.execute(
            "SELECT 1 FROM pep_items WHERE owner=? AND node=? AND item=?", (owner, node, itemId)
        ).fetchone()
        if row is None:
            raise PubSubError("item-not-found", "cancel", text="No such item.")
    connection.executemany(
        "DELETE FROM pep_items WHERE owner=? AND node=? AND item=?",
        [(owner, node, itemId) for itemId in itemIds],
    )
    return config


def _items(connection, owner, node, itemIds, maxItems):
    config = _requireConfig(connection, owner, node)
    if itemIds:
        rows = []
        for itemId in itemIds:
            row = connection.execute(
                "SELECT seq, item, publisher, payload FROM pep_items "
                "WHERE owner=? AND node=? AND item=?",
                (owner, node, itemId),
            ).fetchone()
            if row is not None:
                rows.append(row)
        rows.sort()
    else:
        rows = connection.execute(
            "SELECT seq, item, publisher, payload FROM pep_items WHERE owner=? AND node=? "
            "ORDER BY seq DESC LIMIT ?",
            (owner, node, maxItems if maxItems is not None else -1),
        ).fetchall()
        rows.reverse()
    return config, [Item(row[1], row[2], row[3]) for row in rows]


def _lastItems(connection, owners, nodes):
    found = []
    for owner in owners:
        for node in nodes:
            config = _config(connection, owner, node)
            if config is None or config.sendLast != "on_sub_and_presence":
                continue
            row = connection.execute(
                "SELECT item, publisher, payload FROM pep_items WHERE owner=? AND node=? "
                "ORDER BY seq DESC LIMIT 1",
                (owner, node),
            ).fetchone()
            if row is not None:
                found.append((owner, node, config, Item(*row)))
    return found


def _vcard(connection, owner):
    row = connection.execute("SELECT vcard FROM vcards WHERE owner=?", (owner,)).fetchone()
    return None if row is None else row[0]


def _setVCard(connection, owner, xml):
    connection.execute("INSERT OR REPLACE INTO vcards (owner, vcard) VALUES (?, ?)", (owner, xml))


def _private(connection, owner, name):
    row = connection.execute(
        "SELECT xml FROM private_xml WHERE owner=? AND name=?", (owner, name)
    ).fetchone()
    return None if row is None else row[0]


def _setPrivate(connection, owner, elements, limit):
    for name, xml in elements.items():
        connection.execute(
            "INSERT OR REPLACE INTO private_xml (owner, name, xml) VALUES (?, ?, ?)",
            (owner, name, xml),
        )
    total = connection.execute(
        "SELECT COALESCE(SUM(LENGTH(CAST(xml AS BLOB))), 0) FROM private_xml WHERE owner=?",
        (owner,),
    ).fetchone()[0]
    if total > limit:
        raise TooBig(limit)


def _deleteAccount(connection, owner):
    for table in ("pep_nodes", "pep_items", "vcards", "private_xml"):
        connection.execute("DELETE FROM %s WHERE owner=?" % (table,), (owner,))
