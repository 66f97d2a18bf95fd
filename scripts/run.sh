#!/usr/bin/env bash
# Set up .venv and start the xmppws service in the foreground:
# "twistd -n xmppws", by default with its WebSocket endpoint at
# ws://127.0.0.1:5280/xmpp-websocket and plain XMPP on 127.0.0.1:5222.
# Arguments are passed to the xmppws plugin, e.g. "bash scripts/run.sh --help".
#
# Without arguments, on a data directory with no accounts yet, two demo
# accounts are created (alice@localhost and bob@localhost) with random
# passwords, printed below and kept in xmppws-data/demo-accounts.txt, so a
# browser client can log in and chat right away.  When the test setup
# has installed Converse.js, the web chat page at /chat serves it.
set -euo pipefail

# shellcheck source=scripts/_venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
xmppws_setup ""

if [ "$#" -eq 0 ] && [ -z "$(.venv/bin/xmppws-admin --data-dir xmppws-data list)" ]; then
    umask 077
    : >xmppws-data/demo-accounts.txt
    for user in alice bob; do
        password="$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(9))')"
        .venv/bin/xmppws-admin --data-dir xmppws-data adduser "$user@localhost" "$password" >/dev/null
        printf '%s@localhost %s\n' "$user" "$password" >>xmppws-data/demo-accounts.txt
    done
    printf '==> demo accounts (also in xmppws-data/demo-accounts.txt):\n'
    sed 's/^/      /' xmppws-data/demo-accounts.txt
fi

# The web chat page (/chat) needs Converse.js's files; the test setup
# installs them (bash scripts/test.sh), and then the demo serves them.
converse="tests/interop/node_modules/converse.js/dist"
if [ "$#" -eq 0 ] && [ -f "$converse/converse.min.js" ]; then
    printf '==> web chat at http://127.0.0.1:5280/chat (Converse.js from %s)\n' "$converse"
    set -- --chat-converse-dir "$converse"
fi

exec .venv/bin/twistd -n xmppws "$@"
