"""
The layering the code keeps: the embedded server stack knows nothing of
the carriers under it, and the reactor is passed in, not imported.
"""

import ast
import os

from twisted.trial import unittest

import xmppws

PACKAGE = os.path.dirname(os.path.abspath(xmppws.__file__))

# The modules that build the service for twistd, where the global
# reactor is where it comes from.
REACTOR_IMPORTERS = {"tap.py", os.path.join("muc", "tap.py")}


def modules(under=""):
    """
    The source files of the package under C{under}, relative to it.
    """
    top = os.path.join(PACKAGE, under)
    for directory, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                yield os.path.relpath(path, PACKAGE), path


def imports(path):
    """
    The modules a source file imports, as dotted names (C{from a import b}
    gives C{a.b}), resolving relative imports within the package.
    """
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    package = "xmppws." + os.path.relpath(os.path.dirname(path), PACKAGE).replace(os.sep, ".")
    package = package.rstrip(".").replace("xmppws..", "xmppws.")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                yield base + "." + alias.name


class LayeringTests(unittest.TestCase):
    """
    Data flows one way: carrier, framing, connection, XmlStream, server.
    """

    def test_serverStackCarrierAgnostic(self):
        """
        Nothing under C{xmppws.c2s} imports from C{xmppws} outside it.
        """
        found = []
        for name, path in modules("c2s"):
            for imported in imports(path):
                if imported.startswith("xmppws.") and not imported.startswith("xmppws.c2s."):
                    found.append("%s imports %s" % (name, imported))
        self.assertEqual(found, [])

    def test_reactorPassedIn(self):
        """
        Only the twistd plugins' option modules import the global reactor.
        """
        found = []
        for name, path in modules():
            if name in REACTOR_IMPORTERS:
                continue
            for imported in imports(path):
                if imported in ("twisted.internet.reactor",):
                    found.append(name)
        self.assertEqual(found, [])

    def test_importsRead(self):
        """
        The checks above read real imports: the server stack imports its
        own modules and Twisted.
        """
        seen = set()
        for _, path in modules("c2s"):
            seen.update(imports(path))
        self.assertIn("xmppws.c2s.jid", seen)
        self.assertIn("twisted.words.xish.domish", seen)
