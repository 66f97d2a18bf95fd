# -*- test-case-name: tests.test_gateway_routes -*-
"""
Where the gateway relays each domain: the C{--upstream} routes.

A route is C{DOMAIN=ENDPOINT}, where ENDPOINT is a Twisted client endpoint
string for the TCP connection to the server (C{tcp:host=...:port=...},
C{unix:path=...}, any endpoint plugin), with the gateway's own options
among its parameters, or C{srv} (with the same options after a colon)
to find the server through C{_xmpp-client._tcp} DNS SRV records:

    example.org=tcp:host=xmpp1.example.org:port=5222
    example.org=tcp:host=10.0.0.5:port=5222:proxy=v2:ca=/etc/xmppws/ca.pem
    example.net=tcp:host=10.0.0.6:port=5223:tls=direct
    example.com=srv
    localhost=tcp:host=127.0.0.1:port=5222:insecure=no-verify

C{tls=starttls} (the default) requires STARTTLS, C{tls=direct} speaks TLS
from the first byte (XEP-0368); either way the certificate is verified
for the domain (C{service_identity}) against the system's trust store or
the C{ca=} file.  C{insecure=no-verify} skips the verification and
C{insecure=no-tls} the TLS altogether: for tests.  C{proxy=v1} or
C{proxy=v2} sends a PROXY protocol header first.

Several routes for one domain are tried in turn (L{Router.routesFor}): a
server that refuses, or does not answer in time, fails over to the next.
A domain with no route is not relayed: the gateway is no open relay.
"""

import random
import re

import idna
from twisted.internet import defer, ssl
from twisted.internet.endpoints import HostnameEndpoint, clientFromString
from twisted.names import dns
from twisted.names import error as dnserror
from twisted.python.filepath import FilePath

from xmppws.c2s import jid as jids

__all__ = [
    "DEFAULT_PORT",
    "Router",
    "UpstreamRoute",
    "parseUpstream",
    "srvTargets",
]

DEFAULT_PORT = 5222
SRV_SERVICE = "_xmpp-client._tcp."
TLS_MODES = ("starttls", "direct")
INSECURE = ("no-verify", "no-tls")
_OPTIONS = ("tls", "ca", "insecure", "proxy")
_PEM = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL
)


def _tokens(description):
    """
    Split an endpoint description at its unescaped colons, keeping the
    escapes in each part.
    """
    parts, current, escaped = [], [], False
    for char in description:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(text):
    return re.sub(r"\\(.)", r"\1", text)


def _splitOptions(description):
    """
    Take the gateway's options out of an endpoint description.

    @return: C{(description, options)}: what is left for Twisted, and the
        gateway's options by name.
    @raise ValueError: if an option is given twice.
    """
    kept, options = [], {}
    for token in _tokens(description):
        key, sep, value = token.partition("=")
        if sep and key in _OPTIONS:
            if key in options:
                raise ValueError("%s= is given twice" % (key,))
            options[key] = _unescape(value)
        else:
            kept.append(token)
    return ":".join(kept), options


def _loadTrustRoot(path):
    """
    The certificates of a PEM file, as a trust root.

    @raise ValueError: if the file cannot be read or holds none.
    """
    try:
        data = FilePath(path).getContent()
    except OSError as e:
        raise ValueError("cannot read the CA file %s: %s" % (path, e.strerror))
    blocks = _PEM.findall(data)
    if not blocks:
        raise ValueError("no certificate in the CA file %s" % (path,))
    try:
        certificates = [ssl.Certificate.loadPEM(block) for block in blocks]
    except Exception as e:
        raise ValueError("cannot read the CA file %s: %s" % (path, e))
    return ssl.trustRootFromCertificates(certificates)


class UpstreamRoute:
    """
    One way to reach the server of a domain.

    @ivar domain: the domain, prepared.
    @ivar description: the route as configured (for logs).
    @ivar endpoint: the client endpoint, or L{None} for SRV.
    @ivar srv: C{True} to look up C{_xmpp-client._tcp} SRV records.
    @ivar tls: C{'starttls'} or C{'direct'}, or L{None} with
        C{insecure=no-tls}.
    @ivar verify: whether the server's certificate is verified.
    @ivar caFile: the CA file to verify it against, or L{None} for the
        system's trust store.
    @ivar proxy: the PROXY protocol version to send (1 or 2), or L{None}.
    """

    def __init__(self, domain, description, endpoint=None, srv=False, tls="starttls",
                 verify=True, caFile=None, proxy=None, connectTimeout=10):
        self.domain = domain
        self.description = description
        self.endpoint = endpoint
        self.srv = srv
        self.tls = tls
        self.verify = verify
        self.caFile = caFile
        self.proxy = proxy
        self.connectTimeout = connectTimeout
        self._tlsOptions = None
        self._trustRoot = _loadTrustRoot(caFile) if caFile and tls else None

    @property
    def insecure(self):
        """
        Why this route is not secure (C{'no-tls'}, C{'no-verify'}), or
        L{None}.
        """
        if self.tls is None:
            return "no-tls"
        if not self.verify:
            return "no-verify"
        return None

    def tlsOptions(self):
        """
        The client TLS options for the domain's server: its certificate
        checked for the domain, or (C{insecure=no-verify}) not checked.

        @return: an C{IOpenSSLClientConnectionCreator}, or L{None} without
            TLS.
        """
        if self.tls is None:
            return None
        if self._tlsOptions is None:
            if self.verify:
                self._tlsOptions = ssl.optionsForClientTLS(
                    self.domain,
                    trustRoot=self._trustRoot or ssl.platformTrust(),
                )
            else:
                self._tlsOptions = ssl.CertificateOptions(
                    verify=False, raiseMinimumTo=ssl.TLSVersion.TLSv1_2
                )
        return self._tlsOptions

    def candidates(self, reactor, resolver):
        """
        The endpoints to try, in order.

        @param resolver: the DNS resolver for SRV records.
        @return: a L{defer.Deferred} firing with a list of
            C{(label, endpoint)}.
        """
        if not self.srv:
            return defer.succeed([(self.description, self.endpoint)])

        def endpoints(targets):
            return [
                ("%s:%d (SRV)" % (host, port),
                 HostnameEndpoint(reactor, host, port, timeout=self.connectTimeout))
                for host, port in targets
            ]

        return srvTargets(resolver, self.domain).addCallback(endpoints)

    def __repr__(self):
        return "<UpstreamRoute %s=%s>" % (self.domain, self.description)


def parseUpstream(reactor, text):
    """
    Read one C{--upstream} value.

    @param text: C{DOMAIN=ENDPOINT} or C{DOMAIN=srv[:OPTIONS]}.
    @rtype: L{UpstreamRoute}
    @raise ValueError: with a message naming what is wrong.
    """
    domain, sep, description = text.partition("=")
    domain = domain.strip()
    if not sep or not domain or not description:
        raise ValueError("%r is not DOMAIN=ENDPOINT" % (text,))
    try:
        prepared = jids.prepDomainpart(domain)
    except jids.JIDMalformed as e:
        raise ValueError("%r is not a valid domain (%s)" % (domain, e.reason))
    rest, options = _splitOptions(description)
    tls = options.get("tls", "starttls")
    if tls not in TLS_MODES:
        raise ValueError("tls= must be 'starttls' or 'direct', not %r" % (tls,))
    insecure = options.get("insecure")
    if insecure is not None and insecure not in INSECURE:
        raise ValueError("insecure= must be 'no-verify' or 'no-tls', not %r" % (insecure,))
    if insecure == "no-tls":
        if "tls" in options or "ca" in options:
            raise ValueError("insecure=no-tls cannot be combined with tls= or ca=")
        tls = None
    proxy = options.get("proxy")
    if proxy is not None:
        if proxy not in ("v1", "v2", "1", "2"):
            raise ValueError("proxy= must be 'v1' or 'v2', not %r" % (proxy,))
        proxy = int(proxy[-1])
    srv = rest.strip().lower() == "srv"
    endpoint = None
    if not srv:
        try:
            endpoint = clientFromString(reactor, rest)
        except (ValueError, TypeError, KeyError, IndexError) as e:
            raise ValueError("%r: %s" % (rest, e))
    elif insecure is not None:
        raise ValueError("insecure= is not allowed with srv: SRV routes are verified")
    return UpstreamRoute(
        prepared,
        description,
        endpoint=endpoint,
        srv=srv,
        tls=tls,
        verify=insecure is None,
        caFile=options.get("ca"),
        proxy=proxy,
    )


def _ordered(records):
    """
    SRV records in the order RFC 2782 says to try them: by priority, and
    within a priority at random, weighted.
    """
    out = []
    for priority in sorted({r.priority for r in records}):
        group = [r for r in records if r.priority == priority]
        while group:
            total = sum(r.weight for r in group)
            pick = random.uniform(0, total) if total else 0
            chosen = group[0]
            for record in group:
                pick -= record.weight
                if pick <= 0:
                    chosen = record
                    break
            group.remove(chosen)
            out.append(chosen)
    return out


def srvTargets(resolver, domain):
    """
    Where the client-to-server service of C{domain} is, by its
    C{_xmpp-client._tcp} SRV records (RFC 6120 section 3.2): the targets
    in the order to try them; the domain itself on port 5222 when it has
    none; nothing when its record says the service is not offered.

    @param resolver: an C{IResolver}.
    @return: a L{defer.Deferred} firing with a list of C{(host, port)}.
    """
    name = SRV_SERVICE + idna.encode(domain, uts46=True).decode("ascii")

    def found(result):
        answers = result[0]
        records = [a.payload for a in answers if a.type == dns.SRV]
        if not records:
            return [(domain, DEFAULT_PORT)]
        if len(records) == 1 and str(records[0].target) in ("", "."):
            return []
        return [(str(r.target), r.port) for r in _ordered(records)]

    def notFound(failure):
        failure.trap(dnserror.DomainError, dnserror.DNSNameError, dnserror.DNSServerError,
                     dnserror.DNSQueryRefusedError, dnserror.DNSFormatError,
                     dnserror.DNSNotImplementedError, dnserror.DNSUnknownError,
                     dnserror.DNSQueryTimeoutError, defer.TimeoutError)
        return [(domain, DEFAULT_PORT)]

    return resolver.lookupService(name).addCallbacks(found, notFound)


class Router:
    """
    The routes of every relayed domain, and the domains served locally.

    @ivar local: the domains the embedded server serves.
    """

    def __init__(self, routes, local=()):
        """
        @param routes: L{UpstreamRoute}s, in the order given; those for one
            domain are tried in that order.
        @param local: domains served locally (never relayed).
        @raise ValueError: if a domain is both relayed and served locally.
        """
        self._routes = {}
        for route in routes:
            self._routes.setdefault(route.domain, []).append(route)
        self.local = tuple(local)
        both = set(self._routes) & set(self.local)
        if both:
            raise ValueError(
                "%s is served locally and relayed at once" % (", ".join(sorted(both)),)
            )

    @property
    def domains(self):
        """
        The relayed domains, in the order first given.
        """
        return list(self._routes)

    def routesFor(self, domain):
        """
        @param domain: a prepared domain.
        @return: its routes, or L{None} if it is not relayed.
        """
        return self._routes.get(domain)

    def insecureRoutes(self):
        """
        @return: the routes that are not secure.
        """
        return [r for routes in self._routes.values() for r in routes if r.insecure]
