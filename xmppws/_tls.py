# -*- test-case-name: tests.test_service -*-
"""
TLS for the service: certificates read from PEM files that can be read
again while the service runs (operators renew them every few weeks), and
the C{ssl:} listening endpoints that use them.

Twisted's own C{ssl:} endpoint string reads its certificate once, so the
service parses C{ssl:} descriptions itself, with the same syntax, and
builds the endpoint around a L{ReloadableCertificate}.
"""

import re

from OpenSSL import SSL, crypto
from twisted.internet import ssl
from twisted.internet.endpoints import SSL4ServerEndpoint, serverFromString
from twisted.internet.interfaces import IOpenSSLContextFactory
from twisted.logger import Logger
from twisted.python.filepath import FilePath
from zope.interface import implementer

__all__ = [
    "CertificateError",
    "ReloadableCertificate",
    "parseDescription",
    "serverEndpoint",
]

_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL
)
_SSL_OPTIONS = (
    "port",
    "privateKey",
    "certKey",
    "extraCertChain",
    "interface",
    "backlog",
    "dhParameters",
)


class CertificateError(Exception):
    """
    A key or certificate could not be loaded; the message says which file
    and why.
    """


def _read(path, what):
    try:
        return FilePath(path).getContent()
    except OSError as e:
        raise CertificateError("cannot read the %s %s: %s" % (what, path, e.strerror))


def _loadCertificateOptions(keyPath, certPath, chainPath=None, dhPath=None):
    """
    Read a key and certificate (the certificate file may carry the chain
    after the certificate, like Let's Encrypt's C{fullchain.pem}) into
    L{ssl.CertificateOptions} with TLS 1.2 or later.

    @raise CertificateError: if a file is unreadable, holds no PEM
        certificate or key, or the key does not match the certificate.
    """
    keyPEM = _read(keyPath, "TLS private key")
    certPEM = _read(certPath, "TLS certificate")
    certificates = _PEM_CERTIFICATE.findall(certPEM)
    if not certificates:
        raise CertificateError("%s holds no PEM certificate" % (certPath,))
    if chainPath is not None:
        chain = _PEM_CERTIFICATE.findall(_read(chainPath, "certificate chain"))
        if not chain:
            raise CertificateError("%s holds no PEM certificate" % (chainPath,))
        certificates.extend(chain)
    try:
        certificate = ssl.Certificate.loadPEM(certificates[0])
    except Exception as e:
        raise CertificateError("cannot load the certificate %s: %s" % (certPath, e))
    try:
        keyPair = ssl.KeyPair.load(keyPEM, crypto.FILETYPE_PEM)
    except Exception as e:
        raise CertificateError("cannot load the private key %s: %s" % (keyPath, e))
    if not keyPair.matches(certificate.getPublicKey()):
        raise CertificateError(
            "the private key %s does not match the certificate %s" % (keyPath, certPath)
        )
    private = ssl.PrivateCertificate.fromCertificateAndKeyPair(certificate, keyPair)
    try:
        extra = [ssl.Certificate.loadPEM(pem).original for pem in certificates[1:]]
    except Exception as e:
        raise CertificateError("cannot load the chain in %s: %s" % (certPath, e))
    dhParameters = None
    if dhPath is not None:
        _read(dhPath, "Diffie-Hellman parameters")
        dhParameters = ssl.DiffieHellmanParameters.fromFile(FilePath(dhPath))
    options = ssl.CertificateOptions(
        privateKey=private.privateKey.original,
        certificate=private.original,
        extraCertChain=extra,
        dhParameters=dhParameters,
        raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
    )
    try:
        options.getContext()
    except SSL.Error as e:
        raise CertificateError(
            "OpenSSL refused the key %s and certificate %s: %s" % (keyPath, certPath, e)
        )
    return options, private


@implementer(IOpenSSLContextFactory)
class ReloadableCertificate:
    """
    A TLS server context factory whose key and certificate L{reload}
    reads again from their files.

    Every new connection (and every STARTTLS) gets the context current at
    that moment; connections already encrypted keep theirs.

    @ivar keyPath: the PEM private key file.
    @ivar certPath: the PEM certificate file, optionally followed by its
        chain.
    @ivar chainPath: a separate PEM chain file, or L{None}.
    @ivar dhPath: a PEM Diffie-Hellman parameters file, or L{None}.
    @ivar subject: the certificate's subject, for logs.
    @ivar notAfter: when the certificate expires, as the certificate says.
    """

    log = Logger()

    def __init__(self, keyPath, certPath, chainPath=None, dhPath=None):
        """
        @raise CertificateError: if the files cannot be used.
        """
        self.keyPath = keyPath
        self.certPath = certPath
        self.chainPath = chainPath
        self.dhPath = dhPath
        self._options, private = _loadCertificateOptions(
            keyPath, certPath, chainPath, dhPath
        )
        self._describe(private)

    def _describe(self, private):
        try:
            self.subject = private.getSubject().commonName
        except (AttributeError, KeyError):
            self.subject = None
        if isinstance(self.subject, bytes):
            self.subject = self.subject.decode("utf-8", "replace")
        notAfter = private.original.get_notAfter()
        self.notAfter = notAfter.decode("ascii") if notAfter else None

    def getContext(self):
        """
        @return: the current L{SSL.Context}.
        """
        return self._options.getContext()

    def reload(self):
        """
        Read the files again and use them for new connections.  On error
        the certificate in use stays.

        @raise CertificateError: if the files cannot be used.
        """
        options, private = _loadCertificateOptions(
            self.keyPath, self.certPath, self.chainPath, self.dhPath
        )
        self._options = options
        self._describe(private)
        self.log.info(
            "Loaded the TLS certificate {certPath} for {subject}, valid until {notAfter}",
            certPath=self.certPath,
            subject=self.subject,
            notAfter=self.notAfter,
        )


def parseDescription(description):
    """
    Split an endpoint description as Twisted does: fields at unescaped
    colons, a field's name at its first unescaped C{=}, backslash escapes.

    @type description: L{str}
    @return: C{(prefix, args, kwargs)}.
    @raise ValueError: for an empty description.
    """
    fields = []
    current = []
    key = None
    escaped = False
    for char in description:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            fields.append((key, "".join(current)))
            current, key = [], None
        elif char == "=" and key is None and fields:
            key, current = "".join(current), []
        else:
            current.append(char)
    fields.append((key, "".join(current)))
    prefix = fields[0][1]
    if not prefix:
        raise ValueError("an endpoint description must start with its type, such as tcp:")
    args = [value for name, value in fields[1:] if name is None]
    kwargs = {name: value for name, value in fields[1:] if name is not None}
    return prefix, args, kwargs


def serverEndpoint(reactor, description, certificates, defaultCertificate=None):
    """
    Build a listening endpoint from a description; C{ssl:} descriptions
    get a L{ReloadableCertificate}.

    C{ssl:PORT[:privateKey=KEY][:certKey=CERT][:extraCertChain=CHAIN]
    [:interface=ADDRESS][:backlog=N][:dhParameters=FILE]}: as Twisted's,
    except that without C{privateKey} the service's own certificate
    (C{--tls-key}, C{--tls-cert}) is used, and the protocol floor is
    always TLS 1.2.

    @param certificates: L{ReloadableCertificate}s already made, by
        C{(key, cert, chain, dh)} file names; new ones are added.
    @type certificates: L{dict}
    @param defaultCertificate: the service's certificate, or L{None}.
    @raise ValueError: for a description that cannot be used (the
        message says why).
    @raise CertificateError: for unusable key or certificate files.
    """
    prefix, args, kwargs = parseDescription(description)
    if prefix != "ssl":
        return serverFromString(reactor, description)
    unknown = sorted(set(kwargs) - set(_SSL_OPTIONS))
    if "sslmethod" in unknown:
        raise ValueError("sslmethod is not supported; the protocol floor is TLS 1.2")
    if unknown:
        raise ValueError("unknown ssl: option %s" % (", ".join(unknown),))
    if "port" in kwargs:
        args.insert(0, kwargs.pop("port"))
    if len(args) != 1:
        raise ValueError("an ssl: endpoint takes one port number")
    try:
        port = int(args[0])
        backlog = int(kwargs.get("backlog", 50))
    except ValueError:
        raise ValueError("the port and backlog of an ssl: endpoint are numbers")
    keyPath = kwargs.get("privateKey")
    if keyPath is None:
        if defaultCertificate is None:
            raise ValueError(
                "an ssl: endpoint needs privateKey=FILE (and certKey=FILE), "
                "or --tls-key and --tls-cert"
            )
        certificate = defaultCertificate
    else:
        key = (
            keyPath,
            kwargs.get("certKey", keyPath),
            kwargs.get("extraCertChain"),
            kwargs.get("dhParameters"),
        )
        certificate = certificates.get(key)
        if certificate is None:
            certificate = certificates[key] = ReloadableCertificate(*key)
    return SSL4ServerEndpoint(
        reactor, port, certificate, backlog=backlog, interface=kwargs.get("interface", "")
    )
