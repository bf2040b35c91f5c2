#!/usr/bin/env bash
# The main job, end to end: build osmp.cgi, load a small NoDeny database, then take a real
# check and a real pay through the executable exactly as a web server runs a CGI, and show
# the XML answers, the database rows and the log lines.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "build"
make -s build

step "database"
url=$(scripts/mariadb.sh url)
db=paysys_demo
echo "server: $url   database: $db"
sql() {
    case "$url" in
    *socket=*) mariadb -uroot --socket="${url##*socket=}" "$@" ;;
    *) hostport=${url#*@}; hostport=${hostport%%/*}
       mariadb -uroot -h"${hostport%:*}" -P"${hostport##*:}" "$@" ;;
    esac
}
sql -e "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db CHARACTER SET utf8mb4"
sql "$db" < sql/paysys.sql
sql "$db" < sql/nodeny.sql
sql "$db" -e "SELECT id, name, balance FROM users WHERE mid = 0"

step "install base var/demo (cgi-bin, etc, var/log)"
base="$here/var/demo"
rm -rf "$base" && mkdir -p "$base/cgi-bin" "$base/etc" "$base/var/log"
cp cgi-bin/osmp.cgi "$base/cgi-bin/"
case "$url" in
*\?*) db_url="${url%%\?*}"; db_url="${db_url%/}/$db?${url#*\?}" ;;
*) db_url="$url/$db" ;;
esac
sed -e "s|^url = .*|url = \"$db_url\"|" etc/paysys.toml.example > "$base/etc/paysys.toml"
grep -E '^(url|billing|name|allow|test) ' "$base/etc/paysys.toml"

cgi() {
    env -i PATH=/usr/bin:/bin GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=GET REMOTE_ADDR=127.0.0.1 \
        QUERY_STRING="$1" "$base/cgi-bin/osmp.cgi"
    echo
}
txn_date=$(date -d '-2 minutes' +%Y%m%d%H%M%S)
txn=$(date +%s)

step "check: is 59071 (subscriber 5907) a valid account?"
echo "GET /cgi-bin/osmp.cgi?command=check&txn_id=$txn&account=59071&sum=10.25"
cgi "command=check&txn_id=$txn&account=59071&sum=10.25"

step "pay 10.25 to 59071"
echo "GET /cgi-bin/osmp.cgi?command=pay&txn_id=$txn&account=59071&sum=10.25&txn_date=$txn_date"
cgi "command=pay&txn_id=$txn&account=59071&sum=10.25&txn_date=$txn_date"

step "the terminal did not hear the answer and repeats the pay: same answer, no second credit"
cgi "command=pay&txn_id=$txn&account=59071&sum=10.25&txn_date=$txn_date"

step "a typo in the account (58071): refused, result 4"
cgi "command=check&txn_id=$((txn + 1))&account=58071"

step "the billing's rows"
sql "$db" -e "SELECT id, balance FROM users WHERE id = 5907; SELECT id, mid, cash, FROM_UNIXTIME(time) AS time, reason, coment FROM pays; SELECT id AS prv_txn, system_name, txn_id, account, amount, txn_date FROM paysys_txn"

step "the log: $base/var/log/paysys_check.log"
cat "$base/var/log/paysys_check.log"
