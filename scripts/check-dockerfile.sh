#!/usr/bin/env bash
# Checks the Dockerfile without a Docker engine (CI has none, so the images
# are never built there): that it agrees with deploy/, the systemd units, the
# workspace's Rust version and the CLI's subcommands and flags, and that the
# Debian packages it installs exist. Runs hadolint where it is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
bad() {
    echo "check-dockerfile: $*" >&2
    fail=1
}
# The value of `key = "value"` in a TOML file (flat keys only).
toml_get() { sed -n "s/^$2 *= *\"\(.*\)\"/\1/p" "$1" | head -1; }
# The lines of one build stage of the Dockerfile, `FROM ... AS $1` to the next FROM.
stage() { awk -v s="$1" '/^FROM /{on = ($NF == s)} on' Dockerfile; }

rust=$(sed -n 's/^rust-version *= *"\(.*\)"/\1/p' Cargo.toml)
grep -q "^ARG RUST_VERSION=$rust\$" Dockerfile || bad "ARG RUST_VERSION is not the workspace's rust-version ($rust)"

# Each server's image runs it with the file the systemd unit uses, the
# coordinator's from deploy/, and creates its data directory in the volume.
for role in coordinator node; do
    conf=/etc/suanli/$role.toml
    grep -q "ExecStart=/usr/local/bin/suanli $role --config $conf\$" "deploy/systemd/suanli-$role.service" ||
        bad "deploy/systemd/suanli-$role.service does not run \`suanli $role --config $conf\`"
    stage "$role" | grep -q "$conf" || bad "the $role image does not use $conf"
    data=$(toml_get "deploy/$role.toml" data)
    volume=$(stage "$role" | sed -n 's/^VOLUME \["\(.*\)"\]/\1/p')
    if [ -z "$volume" ] || [[ "$data" != "$volume"/* ]]; then
        bad "deploy/$role.toml's data ($data) is not inside the $role image's VOLUME ($volume)"
    fi
    grep -q "install -d -o suanli -g suanli -m 0700 $data\$" <(stage "$role") ||
        bad "the $role image does not create $data for the suanli user"
    grep -q "^\s*$(tr '[:lower:]' '[:upper:]' <<<"${role:0:1}")${role:1}(commands::$role::Args)," crates/cli/src/main.rs ||
        bad "\`suanli $role\` is not a subcommand in crates/cli/src/main.rs"
done
grep -q '^COPY deploy/coordinator.toml /etc/suanli/coordinator.toml$' Dockerfile || bad "the coordinator image lacks deploy/coordinator.toml"

# QUIC is UDP: the coordinator listens on all addresses, on a port the image
# exposes as UDP.
listen=$(toml_get deploy/coordinator.toml listen)
case "$listen" in
0.0.0.0:* | "[::]:"*) ;;
*) bad "deploy/coordinator.toml listens on $listen, unreachable from outside a container" ;;
esac
stage coordinator | grep -q "^EXPOSE .*\b${listen##*:}/udp\b" || bad "the coordinator image does not EXPOSE ${listen##*:}/udp"

# Every --flag of an image's ENTRYPOINT and CMD is a flag of its subcommand
# (`suanli coordinator` refuses the client flags, --config aside).
for role in coordinator node; do
    sources="crates/cli/src/commands/$role.rs"
    if [ "$role" = node ]; then sources="$sources crates/cli/src/commands/connect.rs"; fi
    for flag in $(stage "$role" | grep -E '^(ENTRYPOINT|CMD) ' | grep -o '"--[a-z-]*"' | tr -d '"' | sort -u); do
        field=${flag#--}
        field=${field//-/_}
        # shellcheck disable=SC2086 # $sources is a list of paths
        if [ "$flag" != --config ] && ! grep -Eq "^\s*(pub )?$field: " $sources; then
            bad "$flag (the $role image's ENTRYPOINT/CMD) is not a flag of \`suanli $role\`"
        fi
    done
done

# The Debian packages exist (where apt has package lists; the images are
# Debian bookworm like the project's machines).
packages=$(sed -n 's/.*apt-get install -y --no-install-recommends \([a-z0-9 .+-]*\).*/\1/p' Dockerfile | tr ' ' '\n' | grep . | sort -u)
if apt-cache show bash >/dev/null 2>&1; then
    for p in $packages; do
        apt-cache show "$p" >/dev/null 2>&1 || bad "Debian package $p not found (apt-cache show)"
    done
else
    echo "check-dockerfile: package names not checked (no apt package lists here)"
fi

if command -v hadolint >/dev/null; then
    hadolint Dockerfile || bad "hadolint found problems"
fi

if [ "$fail" != 0 ]; then
    echo "check-dockerfile: FAILED" >&2
    exit 1
fi
echo "check-dockerfile: ok ($(echo "$packages" | wc -w) Debian packages, $(grep -c '^FROM ' Dockerfile) stages)"
