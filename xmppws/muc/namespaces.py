"""
XML namespaces of the group chat service.
"""

NS_CLIENT = "jabber:client"
NS_COMPONENT = "jabber:component:accept"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"

NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"
NS_MUC_ADMIN = "http://jabber.org/protocol/muc#admin"
NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner"
NS_MUC_ROOMCONFIG = "http://jabber.org/protocol/muc#roomconfig"
NS_MUC_ROOMINFO = "http://jabber.org/protocol/muc#roominfo"
NS_MUC_REGISTER = "http://jabber.org/protocol/muc#register"
NS_MUC_REQUEST = "http://jabber.org/protocol/muc#request"
NS_MUC_STABLE_ID = "http://jabber.org/protocol/muc#stable_id"
NS_MUC_SELF_PING = "http://jabber.org/protocol/muc#self-ping-optimization"
NS_CONFERENCE = "jabber:x:conference"

NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
NS_DATA = "jabber:x:data"
NS_DELAY = "urn:xmpp:delay"
NS_HINTS = "urn:xmpp:hints"
NS_OCCUPANT_ID = "urn:xmpp:occupant-id:0"
NS_PING = "urn:xmpp:ping"
NS_REGISTER = "jabber:iq:register"
NS_SID = "urn:xmpp:sid:0"
NS_VCARD = "vcard-temp"

#: The namespaces of stanzas themselves, on client and component streams.
STANZA_NAMESPACES = (None, NS_CLIENT, NS_COMPONENT)
