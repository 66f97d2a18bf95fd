# -*- test-case-name: tests.test_gateway_proxyprotocol -*-
"""
The PROXY protocol (HAProxy's C{proxy-protocol.txt}, versions 1 and 2):
the header a gateway writes first on an upstream connection so that the
server sees the client's address instead of the gateway's.

    header = proxyHeader(2, client.getPeer(), client.getHost())

L{parseProxyHeader} reads either version back, as a server that accepts
the protocol would (the tests' fake servers use it).
"""

import ipaddress
import struct

from twisted.internet.address import IPv4Address, IPv6Address

__all__ = ["SIGNATURE", "ProxyProtocolError", "parseProxyHeader", "proxyHeader"]

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_V1_MAX = 107  # the longest version 1 header, CRLF included
_COMMAND_LOCAL = 0x20
_COMMAND_PROXY = 0x21
_INET_STREAM = 0x11
_INET6_STREAM = 0x21


class ProxyProtocolError(ValueError):
    """
    A PROXY protocol header that cannot be read.
    """


def _ip(address):
    """
    The IP address of a Twisted address, or L{None} (a UNIX socket, a
    name).
    """
    host = getattr(address, "host", None)
    if not isinstance(address, (IPv4Address, IPv6Address)) or not host:
        return None
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def _pair(source, destination):
    """
    Both addresses in one family (an IPv4 one mapped into IPv6 when the
    other is IPv6), or L{None}.
    """
    src, dst = _ip(source), _ip(destination)
    if src is None or dst is None:
        return None
    if src.version != dst.version:
        src, dst = (
            ipaddress.IPv6Address("::ffff:%s" % (a,)) if a.version == 4 else a
            for a in (src, dst)
        )
    return src, dst


def proxyHeader(version, source, destination):
    """
    The PROXY protocol header for a connection from C{source} to
    C{destination}.

    @param version: 1 (text) or 2 (binary).
    @param source: the client's address.
    @param destination: the address the client connected to.
    @return: the header; for addresses that are not IP (a UNIX socket),
        one that says so (C{UNKNOWN}, or version 2's C{LOCAL}), and the
        server uses the connection's own.
    @rtype: L{bytes}
    """
    pair = _pair(source, destination)
    sport = getattr(source, "port", 0) or 0
    dport = getattr(destination, "port", 0) or 0
    if version == 1:
        if pair is None:
            return b"PROXY UNKNOWN\r\n"
        src, dst = pair
        family = b"TCP4" if src.version == 4 else b"TCP6"
        return b"PROXY %s %s %s %d %d\r\n" % (
            family, str(src).encode("ascii"), str(dst).encode("ascii"), sport, dport,
        )
    if version == 2:
        if pair is None:
            return SIGNATURE + struct.pack("!BBH", _COMMAND_LOCAL, 0, 0)
        src, dst = pair
        body = src.packed + dst.packed + struct.pack("!HH", sport, dport)
        family = _INET_STREAM if src.version == 4 else _INET6_STREAM
        return SIGNATURE + struct.pack("!BBH", _COMMAND_PROXY, family, len(body)) + body
    raise ValueError("PROXY protocol version must be 1 or 2, not %r" % (version,))


def parseProxyHeader(data):
    """
    Read a PROXY protocol header at the start of C{data}.

    @return: L{None} if C{data} does not hold the whole header yet, else
        C{(version, source, destination, rest)}: the addresses as
        C{(host, port)} (L{None} for C{UNKNOWN} or C{LOCAL}) and the
        bytes after the header.
    @raise ProxyProtocolError: if it is no PROXY protocol header.
    """
    if data[:12] == SIGNATURE[: len(data[:12])] and data[:1] == b"\r":
        if len(data) < 16:
            return None
        command, family, length = struct.unpack("!BBH", data[12:16])
        if len(data) < 16 + length:
            return None
        body, rest = data[16 : 16 + length], data[16 + length :]
        if command == _COMMAND_LOCAL:
            return 2, None, None, rest
        if command != _COMMAND_PROXY:
            raise ProxyProtocolError("unknown PROXY command %#x" % (command,))
        if family == _INET_STREAM and length >= 12:
            size = 4
        elif family == _INET6_STREAM and length >= 36:
            size = 16
        else:
            raise ProxyProtocolError("unsupported PROXY address family %#x" % (family,))
        src = ipaddress.ip_address(body[:size])
        dst = ipaddress.ip_address(body[size : 2 * size])
        sport, dport = struct.unpack("!HH", body[2 * size : 2 * size + 4])
        return 2, (str(src), sport), (str(dst), dport), rest
    if data[:6] != b"PROXY "[: len(data[:6])]:
        raise ProxyProtocolError("no PROXY protocol header")
    end = data.find(b"\r\n")
    if end < 0:
        if len(data) >= _V1_MAX:
            raise ProxyProtocolError("PROXY header too long")
        return None
    line, rest = data[:end].decode("ascii", "replace"), data[end + 2 :]
    parts = line.split(" ")
    if len(parts) == 2 and parts[1] == "UNKNOWN":
        return 1, None, None, rest
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProxyProtocolError("malformed PROXY header")
    try:
        src, dst = ipaddress.ip_address(parts[2]), ipaddress.ip_address(parts[3])
        sport, dport = int(parts[4]), int(parts[5])
    except ValueError:
        raise ProxyProtocolError("malformed PROXY header") from None
    if not (0 <= sport < 65536 and 0 <= dport < 65536):
        raise ProxyProtocolError("malformed PROXY header")
    return 1, (str(src), sport), (str(dst), dport), rest
