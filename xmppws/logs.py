# -*- test-case-name: tests.test_service -*-
"""
Log output for operators: a JSON observer for C{twistd --logger}, one
event per line, with addresses written as text.

    twistd -n --logger xmppws.logs.jsonObserver xmppws > xmppws.json

Connection events carry C{peer}, C{origin}, C{framing}, C{jid},
C{duration}, C{bytesIn}, C{bytesOut}, C{reason} and C{code} fields.
"""

import sys

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.interfaces import IAddress
from twisted.logger import ILogObserver, jsonFileLogObserver
from zope.interface import implementer

__all__ = ["formatAddress", "jsonObserver", "ReadableFields"]


def formatAddress(address):
    """
    An address as operators write it: C{127.0.0.1:5222},
    C{[::1]:5222}, C{unix:/run/xmppws.sock}.

    @rtype: L{str}
    """
    if isinstance(address, IPv6Address):
        return "[%s]:%d" % (address.host, address.port)
    if isinstance(address, IPv4Address):
        return "%s:%d" % (address.host, address.port)
    if isinstance(address, UNIXAddress):
        name = address.name
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        return "unix:%s" % (name,)
    return str(address)


@implementer(ILogObserver)
class ReadableFields:
    """
    Pass events on with their address fields written as text, so that
    serialized events keep them.

    @ivar observer: the observer events are passed to.
    """

    def __init__(self, observer):
        self.observer = observer

    def __call__(self, event):
        if any(IAddress.providedBy(value) for value in event.values()):
            event = {
                key: formatAddress(value) if IAddress.providedBy(value) else value
                for key, value in event.items()
            }
        self.observer(event)


def jsonObserver():
    """
    A JSON observer on standard output, for C{twistd --logger}: one event
    per line (no RFC 7464 record separators), ready for C{jq} and log
    shippers.

    @rtype: L{ILogObserver}
    """
    return ReadableFields(jsonFileLogObserver(sys.stdout, recordSeparator=""))
