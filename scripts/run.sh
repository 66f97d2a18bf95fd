#!/usr/bin/env bash
# Set up .venv and start the xmppws service in the foreground:
# "twistd -n xmppws", by default with its WebSocket endpoint at
# ws://127.0.0.1:5280/xmpp-websocket.  Arguments are passed to the xmppws
# plugin, e.g. "bash scripts/run.sh --help".
set -euo pipefail

# shellcheck source=scripts/_venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
xmppws_setup ""

exec .venv/bin/twistd -n xmppws "$@"
