# -*- test-case-name: tests.test_c2s_auth -*-
"""
SASL mechanisms of the embedded server: SCRAM-SHA-256 and SCRAM-SHA-1
(via scramp), PLAIN (on encrypted streams, or where the operator allows
it) and optional ANONYMOUS.

Each mechanism is a small state machine fed the client's messages; it
answers with a challenge, a success, or raises L{SASLFailure}.
"""

import hmac
import uuid
from hashlib import sha256

from scramp import ScramException, ScramMechanism

from xmppws.c2s import jid
from xmppws.c2s.storage import ITERATIONS, SALT_BYTES

__all__ = ["SASLFailure", "Anonymous", "Plain", "Scram", "Success"]


class SASLFailure(Exception):
    """
    Authentication failed.

    @ivar condition: the RFC 6120 SASL failure condition.
    """

    def __init__(self, condition, text=None):
        Exception.__init__(self, condition)
        self.condition = condition
        self.text = text


class Success:
    """
    Authentication succeeded.

    @ivar username: the authenticated (normalised) user name.
    @ivar data: additional data for the C{<success/>} element, or L{None}.
    @ivar anonymous: C{True} for an ANONYMOUS login.
    """

    def __init__(self, username, data=None, anonymous=False):
        self.username = username
        self.data = data
        self.anonymous = anonymous


def normaliseUsername(name, domain):
    """
    Prepare a SASL user name as a JID localpart (RFC 7622 section 3.3,
    the C{UsernameCaseMapped} profile RFC 6120 and RFC 8265 give simple
    user names).

    @raise SASLFailure: C{not-authorized} for names that are no localpart.
    """
    try:
        return jid.prepLocalpart(name)
    except jid.JIDMalformed:
        raise SASLFailure("not-authorized") from None


def _saslname(text):
    """
    Decode a SCRAM C{saslname} (RFC 5802 section 5.1): C{=2C} is a comma,
    C{=3D} an equals sign.
    """
    return text.replace("=2C", ",").replace("=3D", "=")


class Plain:
    """
    SASL PLAIN (RFC 4616): C{authzid NUL authcid NUL password}.
    """

    name = "PLAIN"

    def __init__(self, storage, domain):
        self._storage = storage
        self._domain = domain

    def claimedUsername(self, data):
        """
        The user name a PLAIN message claims, unchecked, or L{None}.
        """
        parts = data.split(b"\0")
        if len(parts) != 3:
            return None
        try:
            return parts[1].decode("utf-8")
        except UnicodeDecodeError:
            return None

    def step(self, data):
        if data is None:
            return None
        try:
            authzid, authcid, password = data.decode("utf-8").split("\0")
        except (UnicodeDecodeError, ValueError):
            raise SASLFailure("malformed-request")
        username = normaliseUsername(authcid, self._domain)
        if authzid and authzid not in (username, "%s@%s" % (username, self._domain)):
            raise SASLFailure("invalid-authzid")
        if not self._storage.checkPassword(username, self._domain, password):
            raise SASLFailure("not-authorized")
        return Success(username)


class Anonymous:
    """
    SASL ANONYMOUS (RFC 4505): a throwaway identity.
    """

    name = "ANONYMOUS"

    def __init__(self, storage, domain):
        pass

    def claimedUsername(self, data):
        return None

    def step(self, data):
        return Success(uuid.uuid4().hex[:16], anonymous=True)


class Scram:
    """
    SCRAM-SHA-256 or SCRAM-SHA-1 (RFC 5802, RFC 7677) via scramp, without
    channel binding.

    Unknown users get a challenge with a salt derived from a server
    secret, as long as a real one and as stable, and fail at the proof.
    Their keys are derived from the secret with one HMAC, not the
    thousands of PBKDF2 rounds that made an unknown name answer
    measurably later than a known one.
    """

    def __init__(self, storage, domain, mechanism):
        self.name = mechanism
        self._storage = storage
        self._domain = domain
        self._mechanism = ScramMechanism(mechanism)
        self._server = self._mechanism.make_server(self._credentials)
        self._username = None
        self._stage = 0

    def claimedUsername(self, data):
        """
        The user name a client-first message claims, unchecked, or
        L{None}.
        """
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        for attribute in text.split(",")[2:]:
            if attribute.startswith("n="):
                return _saslname(attribute[2:])
        return None

    def _credentials(self, name):
        username = normaliseUsername(name, self._domain)
        self._username = username
        stored = self._storage.scramCredentials(username, self._domain, self.name)
        if stored is not None:
            return stored
        secret = self._storage.secret("scram-fake-salt")
        user = username.encode("utf-8")
        # As long as the salts of real accounts (a shorter one gave unknown
        # names away).
        salt = hmac.new(secret, b"salt\0" + user, sha256).digest()[:SALT_BYTES]
        size = len(self._mechanism.hf(b"").digest())
        storedKey = hmac.new(secret, b"stored-key\0" + user, sha256).digest()[:size]
        serverKey = hmac.new(secret, b"server-key\0" + user, sha256).digest()[:size]
        self._username = None
        return salt, storedKey, serverKey, ITERATIONS

    def step(self, data):
        if data is None:
            return None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SASLFailure("malformed-request")
        try:
            if self._stage == 0:
                self._stage = 1
                if not text.startswith(("n,", "y,")):
                    # "p=" asks for channel binding, which is not offered.
                    raise SASLFailure("malformed-request")
                self._server.set_client_first(text)
                return self._server.get_server_first().encode("utf-8")
            if self._stage == 1:
                self._stage = 2
                try:
                    self._server.set_client_final(text)
                except ScramException:
                    raise SASLFailure("not-authorized")
                if self._username is None:
                    raise SASLFailure("not-authorized")
                final = self._server.get_server_final().encode("utf-8")
                return Success(self._username, final)
        except SASLFailure:
            raise
        except ScramException:
            raise SASLFailure("malformed-request")
        raise SASLFailure("malformed-request")
