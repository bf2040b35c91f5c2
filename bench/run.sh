#!/usr/bin/env bash
# bench/run.sh — paysys benchmarks: figures to read, not pass/fail. See docs/BENCHMARKS.md.
#
#   bench/run.sh [--duration 10s] [--connections 8] [--threads 2] [--rounds 1]
#                [--reps 50] [--rows 1000000] [--wait-quiet MINUTES]
#                [--only web|process|scale|profile|protocols|protocols-web|cluster|card|statement|history|audit]
#                [--osmp PATH] [--variants]
#                [--workers N] [--no-fastcgi]
#
# What it does, in order:
#   1. installs what is missing (as root, with apt-get): wrk, time, strace, valgrind, the
#      web servers the tests use (apache2, nginx, fcgiwrap, and libapache2-mod-fcgid for
#      the persistent set-ups) and MariaDB's client library (libmariadb-dev, for
#      bench/floor.c); gcc and MariaDB must be there (scripts/mariadb.sh finds or starts the
#      database);
#   2. builds the release executables as `make` builds and ships them (static:
#      target/<host>/release/osmp and paysys_check, also installed as cgi-bin/osmp.cgi and
#      cgi-bin/paysys_check.cgi), the no-op CGI (bench/noop.c), the database floor
#      (bench/floor.c, when mariadb_config is there) and the rusage wrapper (bench/rusage.c)
#      into target/bench/;
#   3. with --wait-quiet M: waits up to M minutes until the 1-minute load average is below
#      1.0 and no cargo, rustc or fuzzer runs (the machine is shared); runs anyway after;
#   4. runs the #[ignore]d benchmarks of tests/bench.rs, one at a time:
#        bench_1_web      wrk: no-op CGI, the database floor's check and pay, osmp.cgi
#                         refused before the DB, check, pay through nginx+fcgiwrap and
#                         Apache (mod_cgid); beside them paysys_check.cgi's check and pay
#                         on ABillS, against the no-op through its own server instance
#        bench_2_process  one CGI process: CPU ms, peak RSS, wall ms; /usr/bin/time -v
#        bench_3_scale    check and pay at 10 k and at --rows rows per table
#        bench_4_profile  perf stat, strace (syscalls, DB round trips), callgrind
#        bench_5_protocols, bench_6_protocols_web  every protocol, next to OSMP
#        bench_7_cluster  check and pay through 1, 2 and 3 web nodes on a 3-node Galera
#                         cluster, against one web node on a plain server
#        bench_8_card_callback  a LiqPay callback paying an order next to an OSMP pay, on
#                         ABillS and NoDeny, as CGI processes and persistent (FastCGI), and
#                         the database round trips of each (a private server's general log)
#        bench_9_statement  `paysys statement import` of a 50 000-row 1C file into NoDeny:
#                         rows/s of a dry run, the first import (crediting) and the same
#                         file again; peak RSS at 5 000 and 50 000 rows (streamed: the
#                         ratio stays near 1); round trips per row (a private server's
#                         general log). BENCH_STATEMENT_ROWS=N changes the 50 000
#        bench_10_audit     `paysys audit` over 1 000 000 payments of a year on NoDeny and
#                         on ABillS: the year, its last 30 days and the timer's 2 days;
#                         wall, CPU, peak RSS (streamed: the year's RSS near the month's).
#                         BENCH_AUDIT_ROWS=N changes the 1 000 000
#        bench_11_history  OSMP check and pay with the request history ([log] database)
#                         off and on, alternating, on ABillS and NoDeny, as CGI processes
#                         and persistent (FastCGI)
#      and keeps everything they print in target/bench/run-<date>.txt (raw outputs of wrk,
#      strace, perf and callgrind next to it).
#
# Options:
#   --duration D      wrk -d for each measured target (default 10s)
#   --connections N   wrk -c; fcgiwrap gets max(N, 8) children (default 8)
#   --threads N       wrk -t (default 2; at most N connections)
#   --rounds N        repeat every web target N times per server (default 1)
#   --reps N          processes per figure in the process, scale and protocols benchmarks (default 50)
#   --rows N          rows per table for the large scale measurement (default 1000000)
#   --wait-quiet M    wait up to M minutes for a quiet machine first (default 0: don't)
#   --only NAME       run one benchmark: web, process, scale, profile, protocols,
#                     protocols-web, cluster, card, statement, history or audit
#   --osmp PATH       measure this osmp executable instead of make's (for example a build
#                     with an optimisation being tried)
#   --variants        also build bench/variants.sh's osmp variants (optimisations src/ does
#                     not have, and the dynamically linked build) and measure their check
#                     and pay in the same run, next to this tree's (web and process
#                     benchmarks)
#   --workers N       PAYSYS_WORKERS of the persistent (FastCGI) osmp behind nginx (default
#                     4); Apache's mod_fcgid starts processes as it needs them instead
#   --no-fastcgi      measure osmp.cgi and paysys_check.cgi as CGIs only (the web benchmark
#                     otherwise measures them a second time in persistent mode: nginx to
#                     their sockets, Apache through mod_fcgid, next to the same no-op CGI)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

duration=10s connections=8 threads=2 rounds=1 reps=50 rows=1000000 wait_quiet=0 only="" osmp="" variants=""
workers=4 fastcgi=1
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) duration=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --reps) reps=$2; shift 2 ;;
        --rows) rows=$2; shift 2 ;;
        --wait-quiet) wait_quiet=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        --osmp) osmp=$(realpath "$2"); shift 2 ;;
        --variants) variants=1; shift ;;
        --workers) workers=$2; shift 2 ;;
        --no-fastcgi) fastcgi=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench/run.sh: unknown option $1 (--help)" >&2; exit 2 ;;
    esac
done
case "$only" in
    "") filter="bench_" ;;
    web) filter="bench_1_web" ;;
    process) filter="bench_2_process" ;;
    scale) filter="bench_3_scale" ;;
    profile) filter="bench_4_profile" ;;
    protocols) filter="bench_5_protocols" ;;
    protocols-web) filter="bench_6_protocols_web" ;;
    cluster) filter="bench_7_cluster" ;;
    card) filter="bench_8_card_callback" ;;
    statement) filter="bench_9_statement" ;;
    history) filter="bench_11_history" ;;
    audit) filter="bench_10_audit" ;;
    *) echo "bench/run.sh: --only web|process|scale|profile|protocols|protocols-web|cluster|card|statement|history|audit" >&2; exit 2 ;;
esac

say() { printf 'bench: %s\n' "$*" >&2; }
started=$(date +%s)

# 1. Tools.
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
need=()
have wrk || need+=(wrk)
[ -x /usr/bin/time ] || need+=(time)
have strace || need+=(strace)
have valgrind || need+=(valgrind)
have apache2 || need+=(apache2)
have nginx || need+=(nginx)
have fcgiwrap || need+=(fcgiwrap)
# The persistent set-ups: Apache's through mod_fcgid.
if [ "$fastcgi" = 1 ] && [ ! -e "${PAYSYS_APACHE_MODULES:-/usr/lib/apache2/modules}/mod_fcgid.so" ]; then
    need+=(libapache2-mod-fcgid)
fi
have mariadb_config || need+=(libmariadb-dev)
# bench_7_cluster: a three-node Galera cluster on loopback.
[ -f /usr/lib/galera/libgalera_smm.so ] || [ -f /usr/lib/galera-4/libgalera_smm.so ] || need+=(galera-4)
have rsync || need+=(rsync)
have ss || need+=(iproute2)
if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && have apt-get; then
        say "installing ${need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    else
        say "missing ${need[*]}: install them (Debian: apt-get install ${need[*]})"
        have wrk || exit 1
    fi
fi
have gcc || { say "gcc is needed for bench/noop.c"; exit 1; }
have mariadb_config || say "mariadb_config not found: the web benchmark skips the database floor (Debian: apt-get install libmariadb-dev)"
have perf || say "perf not found: the profile skips perf stat (Debian: apt-get install linux-perf)"

PAYSYS_TEST_DB_URL=$(scripts/mariadb.sh url)
export PAYSYS_TEST_DB_URL
case "$PAYSYS_TEST_DB_URL" in
    *socket=*) say "the web benchmark needs MariaDB over TCP (the CGIs run as www-data); got $PAYSYS_TEST_DB_URL" ;;
esac

# 2. Builds.
say "building release executables (make build: static)"
make --no-print-directory build
host=$(rustc -vV | sed -n 's/^host: //p')
[ -n "$osmp" ] || osmp=$root/target/$host/release/osmp
mkdir -p target/bench
gcc -O2 -Wall -o target/bench/noop bench/noop.c
gcc -O2 -Wall -o target/bench/rusage bench/rusage.c
rm -f target/bench/floor
if have mariadb_config; then
    # shellcheck disable=SC2046 # mariadb_config's flags are words
    gcc -O2 -Wall -o target/bench/floor bench/floor.c $(mariadb_config --cflags --libs)
fi
cargo test --release --test bench --no-run
variant_list=""
if [ -n "$variants" ]; then
    bench/variants.sh
    for name in no-regex no-regex-text-check dynamic; do
        variant_list="$variant_list${variant_list:+;}$name=$root/target/bench/variants/$name/osmp"
    done
fi

# 3. A quiet machine.
busy() {
    # Prints why the machine is busy, if it is.
    local load1
    load1=$(cut -d' ' -f1 /proc/loadavg)
    if awk -v l="$load1" 'BEGIN { exit !(l >= 1.0) }'; then
        echo "load $load1"
        return 0
    fi
    if pgrep -x cargo >/dev/null || pgrep -x rustc >/dev/null ||
        pgrep -f 'fuzz/target|cargo fuzz|cargo-fuzz|-max_total_time=' >/dev/null; then
        echo "load $load1, but cargo/rustc/fuzz running"
        return 0
    fi
    return 1
}
if [ "$wait_quiet" -gt 0 ]; then
    deadline=$(( $(date +%s) + wait_quiet * 60 ))
    while why=$(busy); do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            say "still busy after $wait_quiet min ($why): running anyway"
            break
        fi
        say "waiting for a quiet machine: $why"
        sleep 20
    done
fi

# 4. The benchmarks.
stamp=$(date +%Y%m%d-%H%M%S)
out="target/bench/run-$stamp.txt"
{
    echo "# paysys benchmark run $(date -R)"
    echo "commit:     $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src 2>/dev/null || echo ' (src modified)')"
    echo "options:    --duration $duration --connections $connections --threads $threads --rounds $rounds --reps $reps --rows $rows --workers $workers${variants:+ --variants}$([ "$fastcgi" = 1 ] || echo ' --no-fastcgi')"
    echo "osmp:       $osmp"
    echo "paysys_check: $root/target/$host/release/paysys_check"
    [ -z "$variant_list" ] || echo "variants:   ${variant_list//;/ }"
    echo "cpu:        $(nproc) x $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
    echo "memory:     $(free -h | awk '/^Mem:/ { print $2 " total, " $7 " available" }')"
    echo "kernel:     $(uname -sr)"
    echo "mariadb:    $(mariadb -N -h127.0.0.1 -uroot -e 'SELECT VERSION()' 2>/dev/null || mysql -N -uroot -e 'SELECT VERSION()' 2>/dev/null || echo '?')"
    echo "nginx:      $(/usr/sbin/nginx -v 2>&1 | sed 's/^nginx version: //')"
    echo "apache:     $(/usr/sbin/apache2 -v 2>/dev/null | sed -n 's/^Server version: //p')"
    echo "wrk:        $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
    echo "rustc:      $(rustc --version)"
    echo "load:       $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at start"
} | tee "$out"

export BENCH_DURATION=$duration BENCH_CONNECTIONS=$connections BENCH_THREADS=$threads
export BENCH_ROUNDS=$rounds BENCH_REPS=$reps BENCH_ROWS=$rows
export BENCH_WORKERS=$workers BENCH_FASTCGI=$fastcgi
export BENCH_NOOP=$root/target/bench/noop BENCH_RUSAGE=$root/target/bench/rusage
export BENCH_FLOOR=$root/target/bench/floor
export BENCH_OUT=$root/target/bench BENCH_OSMP=$osmp BENCH_VARIANTS=$variant_list
export BENCH_PAYSYS_CHECK=$root/target/$host/release/paysys_check
export BENCH_PAYSYS=$root/target/$host/release/paysys
export PAYSYS_REQUIRE_WEB=1
set +e
cargo test --release --test bench -- --ignored --nocapture --test-threads=1 "$filter" 2>&1 | tee -a "$out"
status=${PIPESTATUS[0]}
set -e
{
    echo
    echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg); bench/run.sh took $(( $(date +%s) - started )) s"
} | tee -a "$out"
say "results: $out"
exit "$status"
