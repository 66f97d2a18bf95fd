# -*- test-case-name: tests.test_pep -*-
"""
The configuration of a personal eventing (XEP-0163) node, as XEP-0060
defines it and as far as a PEP service honours it, after Prosody 13's
C{mod_pep}: its fields, defaults and limits, the C{pubsub#node_config}
form, and the publish-options preconditions (XEP-0060 section 7.1.5).

Fields (Prosody's set; values as XEP-0060 registers them):

    pubsub#title, pubsub#description, pubsub#type      text
    pubsub#max_items          1 to MAX_ITEMS, or 'max' (= MAX_ITEMS); 1
    pubsub#persist_items      boolean; true
    pubsub#access_model       'presence' (default), 'open' or 'whitelist'
                              ('roster' and 'authorize' are not offered)
    pubsub#publish_model      'publishers' (only the owner publishes)
    pubsub#send_last_published_item
                              'never', 'on_sub', 'on_sub_and_presence'
                              (default)
    pubsub#deliver_notifications, pubsub#deliver_payloads,
    pubsub#notify_delete, pubsub#notify_retract        boolean; true
    pubsub#notification_type  'headline' (default) or 'normal'

Publish-options are preconditions: every field must name one of these
(else the publish is refused with C{not-acceptable}); a new node is
created with them; an existing node must already have each value, or
the publish gets C{conflict} with C{precondition-not-met} -- and nothing
else does.  C{'max'} and C{MAX_ITEMS} are the same value, and booleans
compare by meaning (C{'1'} is C{'true'}).
"""

import json

from twisted.words.xish import domish

__all__ = [
    "ACCESS_MODELS",
    "MAX_ITEMS",
    "NS_NODE_CONFIG",
    "NS_PUBLISH_OPTIONS",
    "NodeConfig",
    "PubSubError",
    "parseConfigForm",
]

NS_DATA = "jabber:x:data"
NS_PUBSUB_ERRORS = "http://jabber.org/protocol/pubsub#errors"
NS_NODE_CONFIG = "http://jabber.org/protocol/pubsub#node_config"
NS_PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options"

#: The most items one node keeps (Prosody's C{pep_max_items}).
MAX_ITEMS = 256

ACCESS_MODELS = ("presence", "open", "whitelist")


class PubSubError(Exception):
    """
    A pubsub request refused.

    @ivar condition: the RFC 6120 stanza error condition.
    @ivar errorType: its type.
    @ivar pubsubCondition: the XEP-0060 condition (in
        C{http://jabber.org/protocol/pubsub#errors}), or L{None}.
    @ivar text: an explanation, or L{None}.
    @ivar feature: for C{unsupported}, the feature.
    @ivar quota: the L{xmppws.c2s.quotas.Quotas} budget that was spent,
        or L{None}.
    """

    def __init__(self, condition, errorType, pubsubCondition=None, text=None, feature=None,
                 quota=None):
        Exception.__init__(self, condition, pubsubCondition, text)
        self.condition = condition
        self.errorType = errorType
        self.pubsubCondition = pubsubCondition
        self.text = text
        self.feature = feature
        self.quota = quota

    def appCondition(self):
        """
        The pubsub-specific condition element, or L{None}.
        """
        if self.pubsubCondition is None:
            return None
        element = domish.Element((NS_PUBSUB_ERRORS, self.pubsubCondition))
        if self.feature is not None:
            element["feature"] = self.feature
        return element


def _boolean(name, text):
    value = text.strip().lower()
    if value in ("1", "true"):
        return True
    if value in ("0", "false"):
        return False
    raise _invalid(name, text)


def _invalid(name, text):
    return PubSubError("not-acceptable", "modify", text="%s cannot be %r." % (name, text[:64]))


def _choice(choices):
    def parse(name, text):
        value = text.strip()
        if value not in choices:
            raise _invalid(name, text)
        return value

    return parse


def _text(name, text):
    if len(text) > 1024:
        raise _invalid(name, text)
    return text


def _maxItems(name, text):
    value = text.strip()
    if value == "max":
        return MAX_ITEMS
    if not value.isdigit() or len(value) > 9 or int(value) < 1:
        raise _invalid(name, text)
    if int(value) > MAX_ITEMS:
        raise PubSubError(
            "not-acceptable", "modify",
            text="A node keeps at most %d items ('max')." % (MAX_ITEMS,),
        )
    return int(value)


def _accessModel(name, text):
    value = text.strip()
    if value in ("roster", "authorize"):
        raise PubSubError(
            "not-acceptable", "modify", "unsupported-access-model",
            "The access models offered are %s." % (", ".join(ACCESS_MODELS),),
        )
    return _choice(ACCESS_MODELS)(name, value)


# field: (attribute, parser, form type, label)
FIELDS = {
    "pubsub#title": ("title", _text, "text-single", "A friendly name for the node"),
    "pubsub#description": ("description", _text, "text-single", "A description of the node"),
    "pubsub#type": ("payloadType", _text, "text-single", "The type of the node's payloads"),
    "pubsub#max_items": ("maxItems", _maxItems, "text-single", "Max # of items to persist"),
    "pubsub#persist_items": ("persistItems", _boolean, "boolean", "Persist items to storage"),
    "pubsub#access_model": ("accessModel", _accessModel, "list-single", "Who may see the items"),
    "pubsub#publish_model": (
        "publishModel", _choice(("publishers",)), "list-single", "Who may publish"),
    "pubsub#send_last_published_item": (
        "sendLast", _choice(("never", "on_sub", "on_sub_and_presence")), "list-single",
        "When to send the last published item"),
    "pubsub#deliver_notifications": (
        "notify", _boolean, "boolean", "Whether to deliver event notifications"),
    "pubsub#deliver_payloads": (
        "payloads", _boolean, "boolean", "Whether to deliver payloads with notifications"),
    "pubsub#notify_delete": (
        "notifyDelete", _boolean, "boolean", "Notify subscribers when the node is deleted"),
    "pubsub#notify_retract": (
        "notifyRetract", _boolean, "boolean", "Notify subscribers when items are removed"),
    "pubsub#notification_type": (
        "notificationType", _choice(("headline", "normal")), "list-single",
        "The type of notification messages"),
}

_OPTIONS = {
    "pubsub#access_model": ACCESS_MODELS,
    "pubsub#publish_model": ("publishers",),
    "pubsub#send_last_published_item": ("never", "on_sub", "on_sub_and_presence"),
    "pubsub#notification_type": ("headline", "normal"),
}


class NodeConfig:
    """
    A node's configuration (see the module's docstring for the fields).
    """

    title = ""
    description = ""
    payloadType = ""
    maxItems = 1
    persistItems = True
    accessModel = "presence"
    publishModel = "publishers"
    sendLast = "on_sub_and_presence"
    notify = True
    payloads = True
    notifyDelete = True
    notifyRetract = True
    notificationType = "headline"

    def __init__(self, **values):
        for name, value in values.items():
            setattr(self, name, value)

    def __eq__(self, other):
        if not isinstance(other, NodeConfig):
            return NotImplemented
        return self.toDict() == other.toDict()

    def __repr__(self):
        return "NodeConfig(%s)" % (", ".join("%s=%r" % kv for kv in sorted(self.toDict().items())),)

    def toDict(self):
        return {attribute: getattr(self, attribute) for attribute, _, _, _ in FIELDS.values()}

    def toJSON(self):
        return json.dumps(self.toDict(), sort_keys=True)

    @classmethod
    def fromJSON(cls, text):
        """
        The configuration stored with L{toJSON}; defaults for what is
        missing or unreadable.
        """
        known = {attribute for attribute, _, _, _ in FIELDS.values()}
        try:
            data = json.loads(text)
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        return cls(**{k: v for k, v in data.items() if k in known})

    def copy(self, **changes):
        values = self.toDict()
        values.update(changes)
        return NodeConfig(**values)

    def unmet(self, preconditions):
        """
        The first precondition this configuration does not meet.

        @param preconditions: attribute name to parsed value (from
            L{parseConfigForm}).
        @return: the field's name, or L{None} when all are met.
        """
        for field, (attribute, _, _, _) in FIELDS.items():
            if attribute in preconditions and getattr(self, attribute) != preconditions[attribute]:
                return field
        return None

    def toForm(self, formType="form"):
        """
        The C{pubsub#node_config} data form of this configuration.
        """
        form = domish.Element((NS_DATA, "x"))
        form["type"] = formType
        hidden = form.addElement("field")
        hidden["var"] = "FORM_TYPE"
        hidden["type"] = "hidden"
        hidden.addElement("value", content=NS_NODE_CONFIG)
        for field, (attribute, _, kind, label) in FIELDS.items():
            element = form.addElement("field")
            element["var"] = field
            element["type"] = kind
            element["label"] = label
            value = getattr(self, attribute)
            if kind == "boolean":
                value = "true" if value else "false"
            element.addElement("value", content=str(value))
            for option in _OPTIONS.get(field, ()):
                element.addElement("option").addElement("value", content=option)
        return form


def parseConfigForm(form, formType):
    """
    Read a submitted node configuration or publish-options form.

    @param form: the C{jabber:x:data} element.
    @param formType: the FORM_TYPE it must have (L{NS_NODE_CONFIG} or
        L{NS_PUBLISH_OPTIONS}); a form without one is taken as that type.
    @return: attribute name to value, for each field given.
    @raise PubSubError: C{not-acceptable} for an unknown field or a
        value the service does not offer; C{bad-request} for a form of
        another type.
    """
    if form.getAttribute("type", "submit") not in ("submit", "result"):
        raise PubSubError("bad-request", "modify", text="The form must be of type 'submit'.")
    values = {}
    for field in form.elements(NS_DATA, "field"):
        name = field.getAttribute("var")
        texts = [str(value) for value in field.elements(NS_DATA, "value")]
        if name == "FORM_TYPE":
            if texts != [formType]:
                raise PubSubError("bad-request", "modify", text="The form's FORM_TYPE must be %s."
                                  % (formType,))
            continue
        if name not in FIELDS:
            raise PubSubError(
                "not-acceptable", "modify", text="The option %r is not supported." % (
                    (name or "")[:64],),
            )
        if len(texts) != 1:
            raise PubSubError("not-acceptable", "modify",
                              text="The option %s takes one value." % (name,))
        attribute, parse, _, _ = FIELDS[name]
        values[attribute] = parse(name, texts[0])
    return values
