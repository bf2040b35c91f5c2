#!/usr/bin/env bash
# Builds every fuzz target and runs each for SECONDS (default 60) on a scratch copy of its
# committed seed corpus. Exits non-zero if any target crashes (panic, failed invariant,
# sanitizer report, timeout, out of memory); the input is kept under fuzz/artifacts/<target>/.
#
#   fuzz/run.sh [SECONDS]
#
# Environment:
#   FUZZ_SANITIZER   address (default) or none (about twice as many execs per second)
#   FUZZ_TARGETS     space-separated subset of targets (default: all of `cargo fuzz list`)
#   FUZZ_MAX_LEN     largest input libFuzzer generates (default 4096)
#
# Works on a stable toolchain: RUSTC_BOOTSTRAP=1 lets stable rustc accept the -Z flags
# cargo-fuzz passes (sanitizer, coverage instrumentation).
set -euo pipefail

seconds=${1:-60}
case $seconds in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
sanitizer=${FUZZ_SANITIZER:-address}
max_len=${FUZZ_MAX_LEN:-4096}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"
export RUSTC_BOOTSTRAP=1
say() { printf 'fuzz/run.sh: %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null 2>&1; then
    # rustup's default location, for a non-login shell.
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || { say "cargo not found: install Rust with rustup"; exit 2; }
command -v c++ >/dev/null 2>&1 || { say "no C++ compiler (libFuzzer is C++): apt-get install g++"; exit 2; }
if ! cargo fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

say "building ($(rustc --version), sanitizer $sanitizer)"
start=$SECONDS
cargo fuzz build --sanitizer "$sanitizer"
say "built in $((SECONDS - start)) s"

targets=${FUZZ_TARGETS:-$(cargo fuzz list)}
scratch="$here/target/run-corpus"
failed=()
summary=()
for target in $targets; do
    corpus="$scratch/$target"
    rm -rf "$corpus"
    mkdir -p "$corpus" "artifacts/$target"
    if [ -d "corpus/$target" ]; then
        cp -R "corpus/$target/." "$corpus/"
    fi
    log="$scratch/$target.log"
    say "running $target for $seconds s (log: $log)"
    status=0
    cargo fuzz run --sanitizer "$sanitizer" "$target" "$corpus" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len="$max_len" \
        -timeout=30 -print_final_stats=1 >"$log" 2>&1 || status=$?
    # (|| true: a crash during start-up leaves some of these lines out of the log.)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    files=$(find "$corpus" -type f | wc -l)
    cov=$({ grep -Eo 'cov: [0-9]+' "$log" || true; } | tail -n 1 | cut -d' ' -f2)
    if [ "$status" -eq 0 ]; then
        line=$(printf '%-12s ok     execs %-9s corpus %-5s files  cov %s' \
            "$target" "${execs:-?}" "$files" "${cov:-?}")
    else
        failed+=("$target")
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        reason=$({ grep -m1 -E "panicked at|ERROR: (libFuzzer|AddressSanitizer)" -A1 "$log" || true; } \
            | tr '\n' ' ' | cut -c1-160)
        line=$(printf '%-12s CRASH  execs %-9s exit %s  %s  %s' \
            "$target" "${execs:-?}" "$status" "${artifact:-(no artifact, see log)}" "$reason")
        # What went wrong, from the log.
        { grep -m1 -A12 -E "panicked at|ERROR: (libFuzzer|AddressSanitizer)" "$log" || tail -n 25 "$log"; } >&2
    fi
    summary+=("$line")
done

echo
echo "fuzz summary ($seconds s per target, sanitizer $sanitizer):"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "crashed: ${failed[*]}  (reproduce: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET artifacts/TARGET/FILE)"
    exit 1
fi
