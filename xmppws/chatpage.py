# -*- test-case-name: tests.test_chatpage -*-
"""
The web chat page (C{/chat} by default): Converse.js, configured for
this service, as Prosody's C{mod_conversejs} serves it.

The page gives Converse.js the WebSocket URL (built from the request as
the XEP-0156 documents are, or the configured public URL), the domain
users log in to (so a user name alone will do), and the group chat
service.  Converse.js itself comes from one of:

  - a directory of its C{dist} files (C{--chat-converse-dir}), served
    under the page's path at C{dist/};
  - a URL where the operator hosts them (C{--chat-converse-url}), such
    as C{https://cdn.conversejs.org/14.0.0/dist/}.

With neither, the page says what to set.  The service itself never
fetches anything.
"""

import json
import os
from html import escape
from urllib.parse import urlsplit

from twisted.web.resource import NoResource, Resource
from twisted.web.static import File

from xmppws.discovery import webSocketURLs

__all__ = ["ChatPage", "checkConverseDir"]

SCRIPT = "converse.min.js"
STYLESHEET = "converse.min.css"


# Converse.js's footer in full-screen mode shows its sponsors' logos from
# conversejs.org; a plain credit takes its place (Converse.js lets a page
# define its elements before it starts), so that the page loads nothing
# from elsewhere.
_FOOTER = (
    "customElements.define('converse-footer', class extends HTMLElement {"
    " connectedCallback() { this.innerHTML = \"<footer class='footer mt-auto py-3'>"
    "<p class='text-center'>Chat by <a href='https://conversejs.org/' target='_blank' "
    "rel='noopener nofollow'>Converse.js</a>, the open-source XMPP client.</p></footer>\"; }"
    " });"
)


class _Files(File):
    """
    Static files, without directory listings.
    """

    indexNames = []
    childNotFound = NoResource("No such file.")

    def directoryListing(self):
        return NoResource("No such file.")


def _scriptJSON(value):
    """
    JSON safe to put inside a C{<script>} element.
    """
    return (
        json.dumps(value, sort_keys=True)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


class ChatPage(Resource):
    """
    The chat page and, when served from a directory, Converse.js.

    @ivar domain: the domain users log in to.
    @ivar mucDomain: the group chat service, or L{None}.
    @ivar path: the WebSocket path on this listener.
    @ivar publicURLs: configured WebSocket URLs, if any.
    @ivar trustedProxies: see L{xmppws.discovery.webSocketURLs}.
    @ivar converseDir: the directory of Converse.js's C{dist} files, or
        L{None}.
    @ivar converseURL: where the operator serves those files, or L{None}.
    @ivar registration: whether users may register accounts in-band.
    """

    def __init__(
        self,
        domain,
        path,
        mucDomain=None,
        publicURLs=(),
        trustedProxies=(),
        converseDir=None,
        converseURL=None,
        registration=False,
    ):
        Resource.__init__(self)
        self.domain = domain
        self.mucDomain = mucDomain
        self.path = path
        self.publicURLs = list(publicURLs)
        self.trustedProxies = tuple(trustedProxies)
        self.converseDir = converseDir
        self.converseURL = converseURL
        self.registration = registration
        if converseDir is not None:
            self.putChild(b"dist", _Files(converseDir))

    def getChild(self, name, request):
        # Children put here (dist/, and any path under this one such as
        # the WebSocket endpoint) are found before this is asked.
        if name == b"":
            return self
        return NoResource()

    def _assets(self, request):
        """
        The base URL of Converse.js's files, or L{None}.
        """
        if self.converseURL is not None:
            return self.converseURL if self.converseURL.endswith("/") else self.converseURL + "/"
        if self.converseDir is not None:
            base = request.path.decode("utf-8", "replace")
            if not base.endswith("/"):
                base += "/"
            return base + "dist/"
        return None

    def settings(self, request):
        """
        The Converse.js settings for a request.

        @rtype: L{dict}
        """
        urls = webSocketURLs(request, self.publicURLs, self.path, self.trustedProxies)
        settings = {
            "websocket_url": urls[0],
            "discover_connection_methods": False,
            "authentication": "login",
            "default_domain": self.domain,
            "domain_placeholder": self.domain,
            "allow_registration": self.registration,
            "view_mode": "fullscreen",
            "assets_path": self._assets(request),
            "auto_reconnect": True,
            "play_sounds": False,
            # A room nickname to start with: the user name.
            "muc_nickname_from_jid": True,
        }
        if self.registration:
            settings["registration_domain"] = self.domain
        if self.mucDomain:
            settings["muc_domain"] = self.mucDomain
        return settings

    def _policy(self):
        """
        The page's content security policy: it may not be framed, and
        loads images and media only from here (or Converse.js's origin),
        so that opening it contacts no other site.
        """
        sources = "'self' data: blob:"
        if self.converseURL is not None:
            parts = urlsplit(self.converseURL)
            sources += " %s://%s" % (parts.scheme, parts.netloc)
        return "frame-ancestors 'none'; img-src %s; media-src %s" % (sources, sources)

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"referrer-policy", b"no-referrer")
        assets = self._assets(request)
        if assets is None:
            request.setHeader(b"content-security-policy", b"frame-ancestors 'none'")
            request.setResponseCode(503)
            return self._unconfigured().encode("utf-8")
        request.setHeader(b"content-security-policy", self._policy().encode("ascii"))
        title = "Chat on %s" % (self.domain,)
        page = [
            "<!DOCTYPE html>",
            "<html lang='en'><head><meta charset='utf-8'>",
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            "<title>%s</title>" % (escape(title),),
            "<link rel='stylesheet' href='%s'>" % (escape(assets + STYLESHEET, quote=True),),
            # Converse.js is an ES module that defines the global converse;
            # module scripts run in document order, after parsing.
            "<script type='module' src='%s'></script>" % (escape(assets + SCRIPT, quote=True),),
            "</head><body class='converse-fullscreen'>",
            "<noscript><p>This chat needs JavaScript. Any XMPP client can also connect "
            "to %s.</p></noscript>" % (escape(self.domain),),
            "<script type='module'>%s\nconverse.initialize(%s);</script>"
            % (_FOOTER, _scriptJSON(self.settings(request))),
            "</body></html>",
        ]
        return "\n".join(page).encode("utf-8")

    def _unconfigured(self):
        parts = [
            "<!DOCTYPE html>",
            "<html lang='en'><head><meta charset='utf-8'>",
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            "<title>Web chat not set up</title>",
            "</head><body>",
            "<h1>The web chat is not set up yet</h1>",
            "<p>This page runs Converse.js, a chat client in the browser, but this "
            "server has not been told where Converse.js's files are. Its operator "
            "sets one of:</p>",
            "<ul>",
            "<li><code>--chat-converse-dir DIRECTORY</code> (<code>chat-converse-dir</code> "
            "in the configuration file): a directory holding Converse.js's "
            "<code>dist</code> files (<code>converse.min.js</code>, "
            "<code>converse.min.css</code> and the rest), for example "
            "<code>node_modules/converse.js/dist</code> after "
            "<code>npm install converse.js</code>;</li>",
            "<li><code>--chat-converse-url URL</code>: where those files are served "
            "from, for example <code>https://cdn.conversejs.org/14.0.0/dist/</code>.</li>",
            "</ul>",
            "<p>Meanwhile any XMPP client can connect to <strong>%s</strong>; see "
            "<a href='/'>the front page</a>.</p>" % (escape(self.domain),),
            "</body></html>",
        ]
        return "\n".join(parts)


def checkConverseDir(directory):
    """
    Whether C{directory} holds Converse.js's C{dist} files.

    @return: L{None} if it does, else what is wrong.
    """
    if not os.path.isdir(directory):
        return "%s is not a directory" % (directory,)
    for name in (SCRIPT, STYLESHEET):
        if not os.path.isfile(os.path.join(directory, name)):
            return "%s has no %s (give the dist directory of Converse.js)" % (directory, name)
    return None

