# -*- test-case-name: tests.test_c2s_routing -*-
"""
The modules of the embedded server.  Each is a module of this package
with an C{install(server)} function that registers its hooks on an
L{xmppws.c2s.server.XMPPServer} and returns the module's state object.
"""

import importlib

__all__ = ["DEFAULT_MODULES", "installModules"]

DEFAULT_MODULES = (
    "roster",
    "presence",
    "offline",
    "carbons",
    "blocking",
    "disco",
    "ping",
    "version",
    "register",
    "sm",
)


def installModules(server, names=DEFAULT_MODULES):
    """
    Install the named modules on C{server}, in order.

    @return: C{server.modules}, a mapping of name to module state.
    """
    for name in names:
        if name in server.modules:
            continue
        module = importlib.import_module("xmppws.c2s." + name)
        server.modules[name] = module.install(server)
    return server.modules
