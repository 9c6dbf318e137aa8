#!/usr/bin/env bash
# Install the third-party servers that the live tests (`python -m pytest -m live`) record
# from, pinned, into .live/ at the top of the repository (git-ignored), or $LLMX_REPLAY_LIVE_DIR:
#
#   .live/aimock/        aimock 1.43.0 from npm (`npm ci` from tests/live/servers/aimock's
#                        lockfile, integrity-checked); needs Node.js >= 20.15
#   .live/litellm-venv/  the LiteLLM proxy, litellm[proxy]==1.108.0, in its own virtualenv
#                        (~750 MB), from tests/live/servers/litellm-requirements.txt with
#                        --require-hashes, so the project's own dependencies are untouched
#
# Usage: .ci/live-servers.sh install [aimock|litellm]...   (default: both)
#
# Installing is idempotent: a server whose lockfile has not changed since it was installed is
# left as it is. The tests start and stop the servers themselves (by PID), on free ports of
# 127.0.0.1; see tests/live/conftest.py.
set -euo pipefail
cd "$(dirname "$0")/.."

REPO=$PWD
LIVE_DIR=${LLMX_REPLAY_LIVE_DIR:-$REPO/.live}
SERVERS=$REPO/tests/live/servers
AIMOCK_VERSION=1.43.0
LITELLM_VERSION=1.108.0
PYTHON=${PYTHON:-python3}

fail() {
    echo "live-servers: $*" >&2
    exit 2
}

# The sha256 of the given files, as one line: a stamp of what an installation was made from.
stamp_of() {
    cat "$@" | sha256sum | cut -d' ' -f1
}

install_aimock() {
    local dir=$LIVE_DIR/aimock
    local stamp
    stamp=$(stamp_of "$SERVERS/aimock/package.json" "$SERVERS/aimock/package-lock.json")
    if [[ -f $dir/node_modules/@copilotkit/aimock/dist/cli.js && -f $dir/.stamp &&
        $(<"$dir/.stamp") == "$stamp" ]]; then
        echo "live-servers: aimock $AIMOCK_VERSION is installed in $dir"
        return
    fi
    command -v node >/dev/null || fail "aimock needs Node.js >= 20.15, and node is not on PATH"
    command -v npm >/dev/null || fail "aimock is installed with npm, and npm is not on PATH"
    node -e '
        const [major, minor] = process.versions.node.split(".").map(Number);
        process.exit(major > 20 || (major === 20 && minor >= 15) ? 0 : 1);
    ' || fail "aimock needs Node.js >= 20.15; node is $(node --version)"
    echo "live-servers: installing aimock $AIMOCK_VERSION into $dir"
    rm -rf "$dir"
    mkdir -p "$dir"
    cp "$SERVERS/aimock/package.json" "$SERVERS/aimock/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    local installed
    installed=$(node -p "require('$dir/node_modules/@copilotkit/aimock/package.json').version")
    [[ $installed == "$AIMOCK_VERSION" ]] || fail "npm installed aimock $installed, not $AIMOCK_VERSION"
    echo "$stamp" >"$dir/.stamp"
}

install_litellm() {
    local venv=$LIVE_DIR/litellm-venv
    local requirements=$SERVERS/litellm-requirements.txt
    local stamp
    stamp=$(stamp_of "$requirements")
    if [[ -x $venv/bin/litellm && -f $venv/.stamp && $(<"$venv/.stamp") == "$stamp" ]]; then
        echo "live-servers: the LiteLLM proxy $LITELLM_VERSION is installed in $venv"
        return
    fi
    echo "live-servers: installing litellm[proxy]==$LITELLM_VERSION into $venv"
    "$PYTHON" -m venv --clear "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        --require-hashes --no-deps --only-binary=:all: -r "$requirements"
    local installed
    installed=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))')
    [[ $installed == "$LITELLM_VERSION" ]] || fail "pip installed litellm $installed, not $LITELLM_VERSION"
    echo "$stamp" >"$venv/.stamp"
}

main() {
    [[ ${1:-} == install ]] || fail "usage: $0 install [aimock|litellm]..."
    shift
    local servers=("$@")
    [[ ${#servers[@]} -gt 0 ]] || servers=(aimock litellm)
    mkdir -p "$LIVE_DIR"
    # Nothing installed here belongs in git, nor in `ruff check .` (it respects .gitignore).
    [[ -f $LIVE_DIR/.gitignore ]] || printf '*\n' >"$LIVE_DIR/.gitignore"
    for server in "${servers[@]}"; do
        case $server in
        aimock) install_aimock ;;
        litellm) install_litellm ;;
        *) fail "unknown server '$server' (known: aimock, litellm)" ;;
        esac
    done
}

main "$@"
