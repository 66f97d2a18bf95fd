#!/usr/bin/env bash
# Set up .venv with the test and bench extras (Prosody, ejabberd,
# matplotlib, uvloop, py-spy) and run the side-by-side benchmark:
#
#     bash scripts/bench.sh                 # everything, 15 to 25 minutes
#     bash scripts/bench.sh --quick         # small counts, a few minutes
#     bash scripts/bench.sh --servers xmppws,prosody --workloads throughput
#     bash scripts/bench.sh --publish bench/results/latest.json
#
# Arguments go to bench/xmpp_bench.py (--help lists them).  Results and
# plots are written to bench/results/.
set -euo pipefail

# shellcheck source=scripts/_venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
xmppws_setup test,bench

exec .venv/bin/python bench/xmpp_bench.py "$@" </dev/null
