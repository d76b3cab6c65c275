# Shared by scripts/start and scripts/test. Source it; do not run it.
#
# Installs missing Debian packages, finds or bootstraps uv, and syncs the
# workspace from uv.lock. Everything works unattended (no prompt, no stdin).

# The repository root, whatever the caller's working directory.
GK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# uv version bootstrapped when none is on PATH (keep in step with uv.lock's needs).
GK_UV_VERSION="0.13.9"
export DEBIAN_FRONTEND=noninteractive

gk_say() { printf '==> %s\n' "$*" >&2; }
gk_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Run a command as root: directly when we are root, else through sudo.
gk_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@" || gk_die "needs root to run: $* (run as root, or allow sudo without a password)"
    else
        gk_die "needs root to run: $* (run as root)"
    fi
}

# gk_apt_install PACKAGE...: install the packages that are not installed yet.
# `apt-get update` runs once, and only when something is missing.
gk_apt_install() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        gk_say "not a Debian system: not installing $*; make sure they are present"
        return 0
    fi
    local missing=() pkg
    for pkg in "$@"; do
        if [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" != "installed" ]; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    gk_say "installing Debian packages: ${missing[*]}"
    if [ -z "${GK_APT_UPDATED:-}" ]; then
        gk_as_root apt-get update -q </dev/null
        GK_APT_UPDATED=1
    fi
    gk_as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
}

# gk_ensure_uv: set UV to a uv executable, bootstrapping one into .tools/uv
# (a venv with uv from PyPI) when there is none on PATH.
gk_ensure_uv() {
    if command -v uv >/dev/null 2>&1; then
        UV="$(command -v uv)"
        return 0
    fi
    local tools="$GK_ROOT/.tools/uv"
    if [ ! -x "$tools/bin/uv" ]; then
        gk_say "bootstrapping uv $GK_UV_VERSION into .tools/uv"
        python3 -m venv "$tools" </dev/null || gk_die "python3 -m venv failed (Debian: apt-get install python3-venv)"
        "$tools/bin/pip" install --quiet --disable-pip-version-check "uv==$GK_UV_VERSION" </dev/null
    fi
    UV="$tools/bin/uv"
}

# gk_sync: the workspace's virtual environment, exactly as uv.lock says.
gk_sync() {
    gk_say "uv sync --frozen --all-packages"
    "$UV" sync --project "$GK_ROOT" --frozen --all-packages --quiet </dev/null
}

# gk_run COMMAND...: run a command from the synced environment.
gk_run() {
    "$UV" run --project "$GK_ROOT" --frozen --no-sync "$@"
}
