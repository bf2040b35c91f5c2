#!/usr/bin/env bash
# Debian 13's MariaDB (11.8) on 127.0.0.1:3307, for running the tests against the server a
# new install gets today, whatever this machine's own Debian ships. Its defaults differ from
# 10.11's where the money path notices: innodb_snapshot_isolation = ON (a locking read of a
# row committed after the transaction's first read ends it with error 1020), and uca1400
# collations for every table that names a character set without one.
#
#   scripts/mariadb-debian13.sh url     build (once) and start it, print its URL
#   scripts/mariadb-debian13.sh stop    stop it
#
#   PAYSYS_TEST_DB_URL=$(scripts/mariadb-debian13.sh url) FUZZ_SECONDS=0 make test
#
# Root only: it builds a minimal Debian 13 (trixie) under var/debian13 with debootstrap,
# from Debian's mirror (about 100 MB, a few minutes the first time), and runs its mariadbd
# there (chroot), with root without a password on TCP as the tests expect. Nothing is
# installed on this machine but debootstrap.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root="$here/var/debian13"
port=3307
url="mysql://root@127.0.0.1:$port"
say() { printf 'mariadb-debian13.sh: %s\n' "$*" >&2; }

answers() { mariadb -h127.0.0.1 -P"$port" -uroot --connect-timeout=3 -e 'SELECT 1' >/dev/null 2>&1; }

build() {
    [ -x "$root/usr/sbin/mariadbd" ] && return 0
    command -v debootstrap >/dev/null 2>&1 || {
        say "installing debootstrap"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    }
    say "building Debian 13 with mariadb-server under $root (once)"
    mkdir -p "$root"
    debootstrap --variant=minbase --include=mariadb-server trixie "$root" \
        http://deb.debian.org/debian >"$here/var/debian13.log" 2>&1 || {
        say "debootstrap failed; see var/debian13.log"
        exit 1
    }
}

start() {
    answers && return 0
    # mariadb-install-db looks the host name up; the chroot has no /etc/hosts of its own.
    cp /etc/hosts "$root/etc/hosts"
    cat >"$root/etc/mysql/mariadb.conf.d/99-paysys-tests.cnf" <<EOF
[mysqld]
port = $port
bind-address = 127.0.0.1
socket = /run/mysqld/mysqld-tests.sock
datadir = /var/lib/mysql-tests
skip-name-resolve
max_connections = 500
EOF
    mkdir -p "$root/run/mysqld"
    if [ ! -d "$root/var/lib/mysql-tests/mysql" ]; then
        chroot "$root" mariadb-install-db --user=root --datadir=/var/lib/mysql-tests \
            --auth-root-authentication-method=normal --skip-test-db --force \
            >"$here/var/debian13-install.log" 2>&1
    fi
    (chroot "$root" mariadbd --user=root --pid-file=/run/mysqld/mysqld-tests.pid \
        >"$here/var/debian13-mariadbd.log" 2>&1 &)
    for _ in $(seq 1 60); do
        answers && return 0
        sleep 1
    done
    say "its mariadbd did not answer on 127.0.0.1:$port; see var/debian13-mariadbd.log"
    exit 1
}

case "${1:-url}" in
url)
    [ "$(id -u)" = 0 ] || { say "run as root: it builds a chroot and runs a server in it"; exit 1; }
    build
    start
    say "$(mariadb -h127.0.0.1 -P"$port" -uroot -N -e 'SELECT VERSION()')"
    echo "$url"
    ;;
stop)
    pid="$root/run/mysqld/mysqld-tests.pid"
    if [ -f "$pid" ]; then kill "$(cat "$pid")" 2>/dev/null || true; fi
    ;;
*)
    echo "usage: $0 url|stop" >&2
    exit 2
    ;;
esac
