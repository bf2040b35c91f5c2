#!/usr/bin/env bash
# Finds a MariaDB/MySQL server the tests and the demo can use as root, starting one if
# needed, and prints its URL (mysql://root@127.0.0.1:3306, or a ?socket= URL).
#
#   scripts/mariadb.sh url     print the URL, starting a server first if none answers
#   scripts/mariadb.sh stop    stop the private server this script started under var/
#
# Order of preference:
#   1. $PAYSYS_TEST_DB_URL, when set;
#   2. the local server as root over TCP 127.0.0.1:3306 (no password);
#   3. the local server as root over its default socket (Debian's unix_socket auth);
#   4. the system server, started (and installed with apt-get when we are root);
#   5. a private server under var/mariadb/, socket only, no network at all.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
private="$here/var/mariadb"
say() { printf 'mariadb.sh: %s\n' "$*" >&2; }

client() {
    if command -v mariadb >/dev/null 2>&1; then mariadb "$@"; else mysql "$@"; fi
}

works() { client "$@" -uroot --connect-timeout=3 -e 'SELECT 1' >/dev/null 2>&1; }

default_socket() {
    for s in /run/mysqld/mysqld.sock /var/run/mysqld/mysqld.sock /tmp/mysql.sock; do
        [ -S "$s" ] && { echo "$s"; return 0; }
    done
    return 1
}

find_url() {
    if works -h127.0.0.1 -P3306; then echo "mysql://root@127.0.0.1:3306"; return 0; fi
    local sock
    if sock=$(default_socket) && works --socket="$sock"; then
        echo "mysql://root@localhost/?socket=$sock"; return 0
    fi
    if [ -S "$private/mysqld.sock" ] && works --socket="$private/mysqld.sock"; then
        echo "mysql://root@localhost/?socket=$private/mysqld.sock"; return 0
    fi
    return 1
}

wait_for() {
    for _ in $(seq 1 60); do
        if url=$(find_url); then echo "$url"; return 0; fi
        sleep 1
    done
    return 1
}

start_system_server() {
    command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || return 1
    [ "$(id -u)" = 0 ] || return 1
    say "starting the system MariaDB"
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
    if command -v systemctl >/dev/null 2>&1 && systemctl start mariadb >/dev/null 2>&1; then :; else
        start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql >/dev/null 2>&1 || true
    fi
    wait_for
}

start_private_server() {
    command -v mariadb-install-db >/dev/null 2>&1 || return 1
    say "starting a private MariaDB under $private"
    mkdir -p "$private"
    local user; user=$(id -un)
    if [ ! -d "$private/data/mysql" ]; then
        mariadb-install-db --no-defaults --datadir="$private/data" --user="$user" \
            --auth-root-authentication-method=socket --skip-test-db >"$private/install.log" 2>&1
    fi
    (mariadbd --no-defaults --datadir="$private/data" --socket="$private/mysqld.sock" \
        --pid-file="$private/mysqld.pid" --skip-networking --user="$user" \
        --log-error="$private/error.log" >/dev/null 2>&1 &)
    wait_for
}

case "${1:-url}" in
url)
    if [ -n "${PAYSYS_TEST_DB_URL:-}" ]; then echo "$PAYSYS_TEST_DB_URL"; exit 0; fi
    find_url && exit 0
    start_system_server && exit 0
    if ! command -v mariadbd >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing mariadb-server with apt-get"
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >/dev/null
        start_system_server && exit 0
    fi
    start_private_server && exit 0
    say "no MariaDB/MySQL server could be found or started; install mariadb-server or set PAYSYS_TEST_DB_URL"
    exit 1
    ;;
stop)
    if [ -f "$private/mysqld.pid" ]; then kill "$(cat "$private/mysqld.pid")" 2>/dev/null || true; fi
    ;;
*)
    echo "usage: $0 url|stop" >&2; exit 2
    ;;
esac
