"""
The documentation builds, API reference included, with every reference
resolved and no warning, without fetching anything.
"""

import os
import subprocess
import sys

from twisted.trial import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class DocsTests(unittest.TestCase):
    """
    C{sphinx-build -n -W} over C{docs/}.
    """

    def test_build(self):
        """
        Sphinx builds the documentation in nitpicky mode with warnings as
        errors.
        """
        output = self.mktemp()
        result = subprocess.run(
            [
                sys.executable, "-m", "sphinx", "-E", "-q", "-n", "-W", "--keep-going",
                os.path.join(ROOT, "docs"), output,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertTrue(os.path.exists(os.path.join(output, "api", "xmppws.connection.html")))
