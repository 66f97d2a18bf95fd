# -*- test-case-name: tests.test_muc_service -*-
"""
Group chat (XEP-0045 multi-user chat) as an XMPP component on the
Twisted and tx-xmpp component stack.

    xmppws.muc.service     the component's stanza handler and its rooms
    xmppws.muc.room        a room's state and the rules that follow from it
    xmppws.muc.occupants   entering, nickname changes, leaving, presence
    xmppws.muc.messages    groupchat and private messages, subject,
                           invitations, voice requests, iqs to occupants
    xmppws.muc.admin       roles, affiliations, registration (muc#admin)
    xmppws.muc.owner       configuration and destruction (muc#owner)
    xmppws.muc.config      the configuration, its forms
    xmppws.muc.storage     persistent rooms (SQLite, off the reactor thread)
    xmppws.muc.component   attaching in process or over XEP-0114
    xmppws.muc.tap         twistd xmppws-muc, the external component

C{twistd xmppws} serves it at C{conference.<domain>} by default; any
XMPP server can attach it as an external component with C{twistd
xmppws-muc}.
"""

from xmppws.muc.settings import MUCSettings

__all__ = ["MUCSettings"]
