"""
Interoperability with the clients people use: Node.js client libraries and
Converse.js in Chromium, run against the embedded server on loopback.

The Node.js side (C{package.json}, C{package-lock.json}, the scripts in
C{clients/} and C{browser/}) lives here; L{tests.interop.fixture} starts
servers and runs the scripts, L{tests.interop.matrix} turns the recorded
results into C{docs/matrix.rst}.
"""
