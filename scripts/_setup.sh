# shellcheck shell=bash
# Shared set-up for scripts/run and scripts/test; sourced, not run.
#
# After `source scripts/_setup.sh`: the current folder is the project root ($ROOT), and
# `ensure_installed [EXTRA]` makes .venv if needed and installs the project into it
# (with an optional extra such as "test") unless nothing has changed since last time.
# $PY is the virtual environment's Python, $VENV its folder. `ensure_assets` installs the
# npm packages (GOV.UK Frontend; openid-client for the interop test) when the lock
# changed; `compile_translations` compiles the Welsh catalogue.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
cd "$ROOT" || exit 1

say() { printf '%s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}

_pick_python() {
    # $PYTHON wins; otherwise the newest Python 3 that is at least 3.11.
    local candidate
    for candidate in ${PYTHON:-} python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

_make_venv() {
    local python
    python="$(_pick_python)" || die "Tell Once needs Python 3.11 or newer, and none was found."
    say "Making a virtual environment in .venv with $("$python" --version 2>&1)..."
    rm -rf "$VENV"
    "$python" -m venv "$VENV" ||
        die "Could not make .venv. On Debian or Ubuntu, install the python3-venv package."
}

_stamp_value() {
    # What the install depends on: the project file, and where the project lives (a moved
    # folder needs its editable install and its scripts' first lines redone).
    printf '%s %s\n' "$(sha256sum pyproject.toml | cut -d' ' -f1)" "$ROOT"
}

_stamp_matches() {
    [[ -f "$VENV/.tellonce-installed-$1" ]] &&
        [[ "$(cat "$VENV/.tellonce-installed-$1")" == "$(_stamp_value)" ]]
}

ensure_installed() {
    local extra="${1:-}"
    local name="${extra:-base}"
    local target="."
    [[ -n "$extra" ]] && target=".[$extra]"

    # Two of our scripts started at once must not both build .venv; reading this file is
    # enough to hold a lock on it, and the lock is let go as soon as set-up is done.
    if command -v flock >/dev/null 2>&1; then
        exec 9<"$ROOT/scripts/_setup.sh"
        flock 9
    fi

    if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
        _make_venv
    fi
    # Everything the plain install gives, the test install gives too.
    if _stamp_matches "$name" || { [[ "$name" == base ]] && _stamp_matches test; }; then
        _release_lock
        return 0
    fi
    say "Installing Tell Once ($target) and what it needs into .venv..."
    rm -f "$VENV"/.tellonce-installed-*
    # Some machines list local package folders that only exist for some packages; pip
    # warns about each missing one, which says nothing useful, so those lines are dropped.
    "$PY" -m pip install --quiet --disable-pip-version-check -e "$target" \
        2> >(grep -v "^WARNING: Location 'file:.*is ignored" >&2) ||
        die "Installing the project failed (see above); nothing else was run."
    _stamp_value >"$VENV/.tellonce-installed-$name"
    _release_lock
}

_release_lock() {
    if command -v flock >/dev/null 2>&1; then
        flock -u 9
        exec 9<&-
    fi
}

ensure_assets() {
    # GOV.UK Frontend from npm into node_modules/, again only when package-lock.json (or
    # package.json, if there is no lock) has changed since the last install.
    local lock=package-lock.json stamp="$ROOT/node_modules/.tellonce-installed"
    [[ -f "$lock" ]] || lock=package.json
    local want
    want="$(sha256sum "$lock" | cut -d' ' -f1)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    command -v npm >/dev/null 2>&1 ||
        die "Tell Once needs npm for its page styles (GOV.UK Frontend). On Debian: apt-get install npm"
    say "Installing the npm packages (GOV.UK Frontend, openid-client) into node_modules..."
    if [[ "$lock" == package-lock.json ]]; then
        npm ci --no-audit --no-fund --loglevel=error >&2 || die "npm ci failed (see above)."
    else
        npm install --no-audit --no-fund --loglevel=error >&2 || die "npm install failed (see above)."
    fi
    printf '%s\n' "$want" >"$stamp"
}

compile_translations() {
    # The Welsh catalogue (.po, kept in git) becomes the .mo file the app reads (not in git).
    "$VENV/bin/pybabel" -q compile -d "$ROOT/web/translations" ||
        die "Could not compile the Welsh translations (see above)."
}
