#!/usr/bin/env bash
# Set up .venv with the test extra and run the test suite with trial.
#
#     bash scripts/test.sh                  # the whole suite (tests/)
#     bash scripts/test.sh tests.test_framing
#
# Arguments replace "tests" on trial's command line.  Trial's output is
# shown as it runs; the last line printed is always the summary
#
#     N passed, N failed, N skipped
#
# and the exit status is trial's, or 1 if trial ran no tests or crashed
# before printing its summary.
set -euo pipefail

# shellcheck source=scripts/_venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
xmppws_setup test

if [ "$#" -eq 0 ]; then
    set -- tests
fi

log="$(mktemp "${TMPDIR:-/tmp}/xmppws-trial.XXXXXX")"
trap 'rm -f "$log"' EXIT

set +e
.venv/bin/python -m twisted.trial --temp-directory=_trial_temp "$@" \
    </dev/null 2>&1 | tee "$log"
trial_status="${PIPESTATUS[0]}"
set -e
.venv/bin/python -m tests.interop.matrix </dev/null || true  # docs/matrix.rst from the interop results

# Trial ends with a line such as
#     PASSED (successes=12)
#     PASSED (skips=1, successes=12)
#     FAILED (skips=2, failures=1, errors=3, expectedFailures=1,
#             unexpectedSuccesses=1, successes=50)     (on one line)
# Count passes as successes + expectedFailures, failures as
# failures + errors + unexpectedSuccesses.  The script prints the summary
# line and exits 0 on success, 2 if there was no summary line and 3 if no
# test ran.
set +e
"$PYTHON" - "$log" <<'PY'
import re
import sys

ansi = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
summary = re.compile(r"^(PASSED|FAILED)(?:\s*\(([^()]*)\))?\s*$")

with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
    lines = [ansi.sub("", line).strip() for line in f]

found = None
for line in reversed(lines):
    match = summary.match(line)
    if match is not None:
        found = match
        break

if found is None:
    print("0 passed, 1 failed, 0 skipped")
    sys.exit(2)

counts = {}
for item in (found.group(2) or "").split(","):
    name, sep, value = item.strip().partition("=")
    if sep and value.strip().isdigit():
        counts[name.strip()] = int(value)

passed = counts.get("successes", 0) + counts.get("expectedFailures", 0)
failed = (
    counts.get("failures", 0)
    + counts.get("errors", 0)
    + counts.get("unexpectedSuccesses", 0)
)
skipped = counts.get("skips", 0)
print(f"{passed} passed, {failed} failed, {skipped} skipped")
if passed + failed + skipped == 0:
    sys.exit(3)
PY
parse_status=$?
set -e

case "$parse_status" in
    0) exit "$trial_status" ;;
    *) exit 1 ;;
esac
