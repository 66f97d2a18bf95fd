# Shared set-up for scripts/run.sh and scripts/test.sh; source it, don't run it.
#
# After sourcing, call:
#
#     xmppws_setup ""        # runtime dependencies only
#     xmppws_setup test      # plus the "test" extra
#
# It changes to the repository root, makes sure the Debian packages we need
# are present, creates .venv with python3 if it is missing, and installs
# xmppws into it in editable mode.  Nothing here reads standard input.

XMPPWS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
XMPPWS_VENV="$XMPPWS_ROOT/.venv"
: "${PYTHON:=python3}"

_xmppws_log() {
    printf '==> %s\n' "$*" >&2
}

# Run a command as root: directly when we are root, through sudo when it
# works without a password, otherwise fail with a message.
_xmppws_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        _xmppws_log "need root to run: $*"
        return 1
    fi
}

_xmppws_apt_updated=no

# Install Debian packages non-interactively; "apt-get update" runs at most
# once per script run.
_xmppws_apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        _xmppws_log "apt-get not found; please install: $*"
        return 1
    fi
    if [ "$_xmppws_apt_updated" = no ]; then
        _xmppws_as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get update -q </dev/null
        _xmppws_apt_updated=yes
    fi
    _xmppws_as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "$@" </dev/null
}

# ---------------------------------------------------------------------------
# HOOK: system dependencies.
#
# Every Debian (apt-get) or npm installation the service or the test suite
# needs goes here, guarded by a check so that a second run installs nothing.
# The argument is the extras being installed ("", "test" or "test,bench").
# ---------------------------------------------------------------------------
install_system_deps() {
    local extra="${1:-}"

    # Debian ships venv's ensurepip in a separate package (python3-venv).
    if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        _xmppws_log "installing python3-venv"
        _xmppws_apt_install python3-venv
    fi

    case ",$extra," in
        *,test,*)
            _xmppws_interop_deps
            _xmppws_xmpp_servers
            ;;
    esac
}

# Debian's Prosody and ejabberd, which the benchmarks (bench/) and the
# tests that need a real XMPP server (tests/peers.py) start themselves on
# free loopback ports with generated configurations.  They are installed
# when missing, without their system services ever starting: a
# policy-rc.d that refuses every start is in place during the
# installation, and afterwards the services are stopped and disabled
# where an init system runs them, so that nothing holds 5222, 5269, 5280,
# 5443 or 5347 (the defaults of twistd xmppws among them).
_xmppws_xmpp_servers() {
    local missing=() policy=/usr/sbin/policy-rc.d ours=no service
    command -v prosody >/dev/null 2>&1 || missing+=(prosody)
    [ -x /usr/sbin/ejabberdctl ] || missing+=(ejabberd)
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    _xmppws_log "installing ${missing[*]} (their system services stay stopped)"
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# xmppws: no service starts during this installation\nexit 101\n' \
            | _xmppws_as_root tee "$policy" >/dev/null
        _xmppws_as_root chmod 755 "$policy"
        ours=yes
    fi
    local status=0 epmd_before
    epmd_before="$(pgrep -x epmd || true)"
    _xmppws_apt_install "${missing[@]}" || status=$?
    if [ "$ours" = yes ]; then
        _xmppws_as_root rm -f "$policy"
    fi
    # Stopped now, and not started at the next boot either, whichever
    # init system there is (systemctl disables units even while systemd
    # does not run, as in a container).
    for service in prosody ejabberd; do
        if [ -d /run/systemd/system ]; then
            _xmppws_as_root systemctl disable --now "$service" >/dev/null 2>&1 || true
        else
            if command -v systemctl >/dev/null 2>&1; then
                _xmppws_as_root systemctl disable "$service" >/dev/null 2>&1 || true
            fi
            if [ -x "/etc/init.d/$service" ]; then
                _xmppws_as_root "/etc/init.d/$service" stop >/dev/null 2>&1 || true
                _xmppws_as_root update-rc.d "$service" disable >/dev/null 2>&1 || true
            fi
        fi
    done
    # ejabberd's installation, and stopping its service, start Erlang's
    # epmd (port 4369, every interface); stop it unless it ran before.
    # Our instances need none.
    if [ -z "$epmd_before" ] && pgrep -x epmd >/dev/null 2>&1; then
        epmd -kill >/dev/null 2>&1 || true
    fi
    return "$status"
}

# What the interoperability tests (tests/test_clients.py and
# tests/test_browser.py) need: Node.js and npm, Debian's Chromium (never a
# browser download), each installed when missing, and the packages pinned
# in tests/interop/package-lock.json (client libraries, Converse.js,
# playwright-core), installed with "npm ci" when the lock file changed
# since the last installation.
_xmppws_interop_deps() {
    local interop="$XMPPWS_ROOT/tests/interop"
    local stamp="$interop/node_modules/.xmppws-package-lock.sha256"
    local digest major

    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        _xmppws_log "installing Node.js and npm"
        _xmppws_apt_install nodejs npm
    fi
    major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
    if [ "$major" -lt 20 ]; then
        # Debian 12's nodejs is 18; the client libraries need 20.  The npm
        # registry carries Node.js builds as packages: install one locally.
        local arch
        case "$(uname -m)" in
            x86_64) arch=x64 ;;
            aarch64) arch=arm64 ;;
            *) arch="" ;;
        esac
        if [ -n "$arch" ] && [ ! -x "$XMPPWS_ROOT/.node/bin/node" ]; then
            _xmppws_log "Node.js $(node -v 2>/dev/null) is too old; installing Node.js 20 from the npm registry"
            (cd "$XMPPWS_ROOT" && npm install --no-save --no-audit --no-fund \
                --loglevel=error --prefix .node/pkg "node-linux-$arch@20.20.2" </dev/null)
            mkdir -p "$XMPPWS_ROOT/.node/bin"
            ln -sf "../pkg/node_modules/node-linux-$arch/bin/node" "$XMPPWS_ROOT/.node/bin/node"
        fi
    fi
    if ! command -v chromium >/dev/null 2>&1; then
        _xmppws_log "installing chromium"
        _xmppws_apt_install chromium
    fi

    digest="$(sha256sum "$interop/package-lock.json" | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then
        return 0
    fi
    _xmppws_log "installing the Node.js packages of tests/interop (npm ci)"
    (cd "$interop" && npm ci --no-audit --no-fund --loglevel=error </dev/null)
    printf '%s\n' "$digest" >"$stamp"
}

_xmppws_check_python() {
    if ! command -v "$PYTHON" >/dev/null 2>&1; then
        _xmppws_log "$PYTHON not found; xmppws needs Python 3.11 or later"
        return 1
    fi
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        _xmppws_log "$PYTHON is $("$PYTHON" -V 2>&1); xmppws needs Python 3.11 or later"
        return 1
    fi
}

# Create .venv if it is missing (or left half-made by an interrupted run).
_xmppws_ensure_venv() {
    if [ ! -x "$XMPPWS_VENV/bin/python" ] || [ ! -x "$XMPPWS_VENV/bin/pip" ]; then
        _xmppws_log "creating $XMPPWS_VENV"
        rm -rf "$XMPPWS_VENV"
        "$PYTHON" -m venv "$XMPPWS_VENV"
        "$XMPPWS_VENV/bin/pip" install --quiet --disable-pip-version-check \
            --upgrade pip </dev/null
    fi
}

# Install xmppws (editable) with the given extra.  The installation is
# skipped when the packaging files have not changed since the last one.
#
# editable_mode=compat puts the repository root on sys.path.  Twisted finds
# plugins by scanning twisted/plugins/ under every sys.path entry, so this is
# what makes twistd see twisted/plugins/xmppws_plugin.py from the checkout;
# setuptools' default editable mode for this layout uses an import hook that
# twisted.plugin never consults.
_xmppws_install() {
    local extra="${1:-}"
    local target="." stamp digest
    local mode="editable_mode=compat"
    if [ -n "$extra" ]; then
        target=".[$extra]"
    fi
    stamp="$XMPPWS_VENV/.xmppws-installed${extra:+-$extra}"
    digest="$( { echo "$mode"; cat "$XMPPWS_ROOT/pyproject.toml" "$XMPPWS_ROOT/setup.cfg"; } \
        | "$XMPPWS_VENV/bin/python" -c \
            'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then
        return 0
    fi
    _xmppws_log "installing xmppws${extra:+[$extra]} into $XMPPWS_VENV"
    "$XMPPWS_VENV/bin/pip" install --disable-pip-version-check \
        --config-settings "$mode" -e "$target" </dev/null
    printf '%s\n' "$digest" >"$stamp"
}

xmppws_setup() {
    local extra="${1:-}"
    cd "$XMPPWS_ROOT"
    _xmppws_check_python
    install_system_deps "$extra"
    _xmppws_ensure_venv
    _xmppws_install "$extra"
}
