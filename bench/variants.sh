#!/usr/bin/env bash
# bench/variants.sh — build osmp with optimisations that src/ does not have (and the build
# `make` no longer ships), so that bench/run.sh can measure what each would buy, on the same
# machine, with the same harness:
#
#   bench/variants.sh
#   bench/run.sh --only web --osmp target/bench/variants/no-regex/osmp
#
# Each variant is HEAD (git archive, so uncommitted changes are not in it), built as `make`
# builds it — a static-pie executable (RUSTFLAGS="-C target-feature=+crt-static",
# --target <host>) — plus:
#
#   no-regex                 mysql_common parses the server version by hand instead of
#                            compiling two Unicode regexes on every connect
#                            (bench/variants/mysql_common-0.37.3-version-without-regex.patch,
#                            through [patch.crates-io]; only for mysql_common 0.37.3)
#   no-regex-text-check      + the check's SELECT as one text-protocol query instead of
#                            PREPARE + EXECUTE + CLOSE (bench/variants/check-text-protocol.patch)
#   dynamic                  the other way: HEAD unpatched, linked dynamically as
#                            `make STATIC=0` builds it, to keep what the static link buys
#                            measurable
#
# Output: target/bench/variants/<name>/osmp (sources in target/bench/variants/src). The
# patches are experiments to measure, not reviewed changes; a patch that no longer applies
# to HEAD stops the script.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=$root/target/bench/variants
mkdir -p "$out"
# A fixed place (not a temp dir) so that cargo rebuilds only what changed since last time.
work=$out/src
rm -rf "$work"
mkdir -p "$work"
say() { printf 'variants: %s\n' "$*" >&2; }
host=$(rustc -vV | sed -n 's/^host: //p')

version=$(awk '$0 == "name = \"mysql_common\"" { getline; gsub(/"/, "", $3); print $3 }' Cargo.lock)
if [ "$version" != "0.37.3" ]; then
    say "Cargo.lock has mysql_common $version; the patch is for 0.37.3: update it first"
    exit 1
fi
cargo fetch --locked >/dev/null
registry=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"mysql_common-$version" | head -1)
[ -d "$registry" ] || { say "mysql_common-$version source not found after cargo fetch"; exit 1; }

mkdir -p "$work/head" "$work/tree"
git archive HEAD | tar -x -C "$work/head"
git archive HEAD | tar -x -C "$work/tree"
cp -r "$registry" "$work/mysql_common"
patch -s -d "$work/mysql_common" -p1 < bench/variants/mysql_common-0.37.3-version-without-regex.patch
printf '\n[patch.crates-io]\nmysql_common = { path = "%s" }\n' "$work/mysql_common" >> "$work/tree/Cargo.toml"

build() { # name tree static|dynamic
    local name=$1 tree=$2 link=$3
    say "building $name"
    mkdir -p "$out/$name"
    if [ "$link" = static ]; then
        RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR=$out/build-static \
            cargo build --release --bin osmp --target "$host" --manifest-path "$tree/Cargo.toml"
        cp "$out/build-static/$host/release/osmp" "$out/$name/osmp"
    else
        CARGO_TARGET_DIR=$out/build \
            cargo build --release --locked --bin osmp --manifest-path "$tree/Cargo.toml"
        cp "$out/build/release/osmp" "$out/$name/osmp"
    fi
}

build no-regex "$work/tree" static
patch -s -d "$work/tree" -p1 < bench/variants/check-text-protocol.patch
build no-regex-text-check "$work/tree" static
build dynamic "$work/head" dynamic
# Builds of variants this script no longer makes.
rm -rf "$out/no-regex-text-check-static"
say "built (from $(git rev-parse --short HEAD)):"
ls -l "$out"/*/osmp >&2
