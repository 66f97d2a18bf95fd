"""
Sphinx configuration for the xmppws documentation.

Build with::

    .venv/bin/sphinx-build -W docs docs/_build
"""

import configparser
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
_setup = configparser.ConfigParser()
_setup.read(os.path.join(_here, os.pardir, "setup.cfg"), encoding="utf-8")

project = "xmppws"
author = "the xmppws developers"
copyright = "2026, the xmppws developers"
release = _setup.get("metadata", "version", fallback="unknown")
version = ".".join(release.split(".")[:2])

sys.path.insert(0, os.path.join(_here, "_ext"))
sys.path.insert(0, os.path.join(_here, os.pardir))

# The API reference: autodoc, reading the epytext docstrings through the
# local "epytext" extension.  Nothing is fetched while building (no
# intersphinx): names of other projects are accepted below instead.
extensions = ["sphinx.ext.autodoc", "repoze.sphinx.autointerface", "epytext"]
autodoc_member_order = "bysource"
autodoc_default_options = {"undoc-members": False, "exclude-members": "log"}
autodoc_typehints = "none"

nitpicky = True
nitpick_ignore_regex = [
    # Other projects, documented elsewhere.
    (r"py:.*", r"(twisted|autobahn|txaio|zope|tx_xmpp|wokkel|prometheus_client|scramp|precis_i18n|idna|OpenSSL|service_identity)(\..*)?"),
    # The standard library and builtins.
    (r"py:.*", r"(bytes|str|int|float|bool|list|dict|tuple|set|frozenset|None|object|callable|type|Exception|ValueError|TypeError|RuntimeError|KeyError|OSError|SystemExit|BaseException|iterable|sqlite3\..*|ipaddress\..*|pathlib\..*|datetime\..*|xml\..*|expat\..*|typing\..*|collections\..*)"),
    # Private names of xmppws (helper bases, request factories): not
    # documented by design.
    (r"py:.*", r"xmppws\.(.*\.)?_.*"),
    # Short names of Twisted and library types, as the docstrings write them.
    (r"py:.*", r"(domish|xmlstream|jid|error|defer|failure|protocol|interfaces|usage|service|resource|server|static|logger|Logger|Failure|Deferred|JID|XmlStream|Element|Site|Resource|Request|IProtocol|ITransport|IReactorTime|IReactorTCP|IStreamServerEndpoint|IStreamClientEndpoint|IPushProducer|IConsumer|InvalidFormat|StreamError|ConnectionLost|ConnectionDone|FilePath|Clock|StringTransport|MemoryReactorClock|ServerFactory|Factory|ProtocolWrapper|WrappingFactory|MultiService|Service|EventDispatcher|ListenAuthenticator|ConnectAuthenticator|XmlStreamServerFactory|XMPPHandler|ScramMechanism|ContextFactory|CertificateOptions|IOpenSSLServerConnectionCreator)(\..*)?"),
]

root_doc = "index"
exclude_patterns = ["_build"]
highlight_language = "python3"

html_theme = "alabaster"
html_static_path = []
