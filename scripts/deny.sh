#!/usr/bin/env bash
# Checks the dependency tree against deny.toml with cargo-deny: licenses,
# bans (wildcards; duplicate versions are only reported) and sources
# (crates.io only) always; RustSec advisories where the advisory database can
# be fetched or a fresh cached copy exists, else skipped with the reason.
#
# Installs the pinned cargo-deny from crates.io when missing (about 2 min on
# 2 cores). SUANLI_REQUIRE_ADVISORIES=1 makes a skipped advisory check fail.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DENY_VERSION=0.20.2

if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $CARGO_DENY_VERSION" ]; then
    echo "deny: installing cargo-deny $CARGO_DENY_VERSION from crates.io"
    cargo install --locked --quiet "cargo-deny@$CARGO_DENY_VERSION"
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# On success one line naming the crates with several versions (their
# inclusion graphs fill hundreds of lines) and other warnings' first lines;
# everything on failure.
show_warnings() {
    local dups
    dups=$(sed -n "s/^warning\[duplicate\]: found [0-9]* duplicate entries for crate '\(.*\)'/\1/p" "$log" | tr '\n' ' ')
    if [ -n "$dups" ]; then echo "deny: warning: several versions of: $dups"; fi
    grep -E '^warning' "$log" | grep -v '^warning\[duplicate\]' || true
}
run_check() {
    if cargo deny --locked --color never check --hide-inclusion-graph "$@" >"$log" 2>&1; then
        show_warnings
        echo "deny: $* ok"
    else
        cat "$log"
        echo "deny: FAILED: cargo deny check $* (see above; policy in deny.toml)" >&2
        exit 1
    fi
}

run_check licenses bans sources

# The advisory database is a git repository (RustSec's, on GitHub by
# default); cargo-deny keeps it under $CARGO_HOME/advisory-dbs.
db_dir="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"
skip_advisories() {
    echo "deny: advisories SKIPPED: $1" >&2
    if [ "${SUANLI_REQUIRE_ADVISORIES:-0}" = 1 ]; then
        echo "deny: FAILED: SUANLI_REQUIRE_ADVISORIES=1 and the advisory check did not run" >&2
        exit 1
    fi
}
# cargo-deny dates a cached copy by .git/FETCH_HEAD's mtime, which a failed
# `git fetch` touches: keep the old mtimes so that a stale copy stays stale.
stamps=$(mktemp -d)
trap 'rm -rf "$log" "$stamps"' EXIT
for git in "$db_dir"/*/.git; do
    if [ -f "$git/FETCH_HEAD" ]; then cp -p "$git/FETCH_HEAD" "$stamps/$(basename "$(dirname "$git")")"; fi
done
if timeout 180 cargo deny --color never fetch db >"$log" 2>&1; then
    run_check advisories
elif compgen -G "$db_dir/*/.git" >/dev/null; then
    for git in "$db_dir"/*/.git; do
        saved="$stamps/$(basename "$(dirname "$git")")"
        if [ -f "$saved" ]; then cp -p "$saved" "$git/FETCH_HEAD"; else rm -f "$git/FETCH_HEAD"; fi
    done
    echo "deny: advisory database unreachable; checking against the cached copy in $db_dir"
    if cargo deny --locked --offline --color never check --hide-inclusion-graph advisories >"$log" 2>&1; then
        show_warnings
        echo "deny: advisories ok (cached database)"
    elif grep -q 'repository is stale\|failed to load advisory database' "$log"; then
        skip_advisories "database unreachable and the cached copy is stale or unreadable ($(grep -m1 -o 'repository is stale.*\|failed to load advisory database.*' "$log"))"
    else
        cat "$log"
        echo "deny: FAILED: cargo deny check advisories (see above; policy in deny.toml)" >&2
        exit 1
    fi
else
    reason=$(grep -m1 -E 'fatal:|error' "$log" || true)
    skip_advisories "the advisory database could not be fetched and none is cached (${reason:-no reason given})"
fi
