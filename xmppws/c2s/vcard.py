# -*- test-case-name: tests.test_personal -*-
"""
XEP-0054 vCard-temp: each account's vCard, which clients such as
Converse.js use for avatars and nicknames, kept in C{personal.sqlite}
(L{xmppws.c2s.personal}).

An account sets its vCard with an iq C{set} of
C{<vCard xmlns='vcard-temp'/>} to itself and anyone gets it with an iq
C{get} to the account's bare JID (vCards are public, as in Prosody).  An
account that set none has an empty vCard (XEP-0054 section 3.1 allows
that or C{item-not-found}; Prosody 13, with C{vcard_legacy}, does the
same).  Setting another account's vCard is C{forbidden}; a vCard larger
than the account's C{maxVCardSize} bytes is C{not-acceptable}.

When a vCard with a C{PHOTO} is set, the photo is also published as the
account's XEP-0084 avatar (C{urn:xmpp:avatar:data} and C{:metadata},
open to anyone), so that clients that read avatars from PEP see it, as
Prosody's C{vcard_legacy} does.
"""

import base64
import hashlib

from twisted.logger import Logger
from twisted.words.xish import domish

from xmppws.c2s import jid as jids
from xmppws.c2s.modules import installModules
from xmppws.c2s.pepnode import PubSubError
from xmppws.c2s.personal import Item
from xmppws.c2s.quotas import refuse

__all__ = ["NS_VCARD", "VCards", "install"]

NS_VCARD = "vcard-temp"
NS_AVATAR_DATA = "urn:xmpp:avatar:data"
NS_AVATAR_METADATA = "urn:xmpp:avatar:metadata"

_AVATAR_OPTIONS = {"accessModel": "open", "maxItems": 1}


def _child(element, name):
    for child in element.elements():
        if child.name == name:
            return child
    return None


class VCards:
    """
    The vcard module's state.

    @ivar server: the L{xmppws.c2s.server.XMPPServer}.
    @ivar pep: the pep module (its store keeps the vCards).
    """

    log = Logger()
    discoFeatures = (NS_VCARD,)

    def __init__(self, server, pep):
        self.server = server
        self.pep = pep

    def onAccountIQ(self, session, iq):
        return self._request(iq, jids.bare(session.jid), True)

    def onBareIQ(self, iq, to):
        child = iq.firstChildElement()
        if child is None or child.uri != NS_VCARD or child.name != "vCard":
            return None
        if not self.server.accountExists(to):
            return None
        return self._request(iq, jids.bare(to), False)

    def _request(self, iq, owner, own):
        vcard = iq.firstChildElement()
        if vcard is None or vcard.uri != NS_VCARD or vcard.name != "vCard":
            return None
        kind = iq.getAttribute("type")
        if kind == "get":
            d = self.pep.store.vcard(owner.full())

            def answer(xml):
                reply = self.server.reply(iq)
                reply["from"] = owner.full()
                if xml is None:
                    reply.addElement((NS_VCARD, "vCard"))
                else:
                    reply.addRawXml(xml)
                self.server.route(reply)

            d.addCallbacks(answer, self._failed, errbackArgs=(iq,))
        elif kind == "set":
            if not own:
                self.server.bounce(iq, "forbidden", "auth", "Only an account sets its vCard.")
                return True
            xml = vcard.toXml()
            limit = self.server.config.quotas.maxVCardSize
            if len(xml.encode("utf-8")) > limit:
                refuse(self.server, iq, "maxVCardSize", "not-acceptable", "modify",
                       "A vCard may hold at most %d bytes." % (limit,))
                return True
            photo = _photo(vcard)
            d = self.pep.store.setVCard(owner.full(), xml)
            d.addCallbacks(lambda _: self.server.route(self.server.reply(iq)), self._failed,
                           errbackArgs=(iq,))
            if photo is not None:
                d.addCallback(lambda _: self._publishAvatar(owner, *photo))
        else:
            return None
        return True

    def _failed(self, failure, iq):
        self.log.failure("vCard request failed", failure)
        self.server.bounce(iq, "internal-server-error", "wait")

    def _publishAvatar(self, owner, data, mediaType):
        """
        Publish a vCard photo as the XEP-0084 avatar.
        """
        digest = hashlib.sha1(data).hexdigest()
        payload = domish.Element((NS_AVATAR_DATA, "data"))
        payload.addContent(base64.b64encode(data).decode("ascii"))
        metadata = domish.Element((NS_AVATAR_METADATA, "metadata"))
        info = metadata.addElement("info")
        info["id"] = digest
        info["bytes"] = str(len(data))
        info["type"] = mediaType
        publisher = owner.full()
        d = self.pep.publish(owner, NS_AVATAR_DATA, [Item(digest, publisher, payload.toXml())],
                             _AVATAR_OPTIONS)
        d.addCallback(lambda _: self.pep.publish(
            owner, NS_AVATAR_METADATA, [Item(digest, publisher, metadata.toXml())],
            _AVATAR_OPTIONS))

        def failed(failure):
            if failure.check(PubSubError):
                # The account configured its avatar nodes otherwise, or
                # has no room: its vCard is kept all the same.
                self.log.info("The vCard photo of {jid} was not published as an avatar: "
                              "{condition}", jid=owner.full(), condition=failure.value.condition)
                return None
            self.log.failure("Publishing the avatar of {jid} failed", failure, jid=owner.full())
            return None

        d.addErrback(failed)
        return d


def _photo(vcard):
    """
    The binary photo of a vCard and its media type, or L{None}.
    """
    photo = _child(vcard, "PHOTO")
    if photo is None:
        return None
    binval = _child(photo, "BINVAL")
    if binval is None:
        return None
    try:
        data = base64.b64decode("".join(str(binval).split()), validate=True)
    except ValueError:
        return None
    if not data:
        return None
    kind = _child(photo, "TYPE")
    mediaType = str(kind).strip() if kind is not None and str(kind).strip() else "image/png"
    return data, mediaType[:128]


def install(server):
    """
    Keep vCards for accounts, in the pep module's store.

    @return: the L{VCards} state.
    """
    pep = installModules(server, ("pep",))["pep"]
    vcards = VCards(server, pep)
    server.on("iq/account", vcards.onAccountIQ)
    server.on("iq/bare", vcards.onBareIQ)
    return vcards

