#!/usr/bin/env bash
# The main job, end to end: build osmp.cgi and paysys_check.cgi, load a small NoDeny and a
# small ABillS database, install paysys into var/demo with `make install-files`, start a
# private nginx + fcgiwrap on a free 127.0.0.1 port with the installed etc/nginx/paysys.conf,
# then take a real check and pay over HTTP with curl -- through osmp.cgi on NoDeny (and a
# cancel), then through paysys_check.cgi on ABillS (check, pay, repeat, cancel), a card
# payment, and a bank statement imported with `paysys statement import` -- and show the
# URLs, the answers, the database rows and the log lines. Everything it starts is stopped
# on exit.
#
# nginx, fcgiwrap and curl are installed with apt-get when missing and we are root. Without
# them (or with PAYSYS_DEMO_WEB=0) the CGI is run directly, the way a web server runs it
# (the demo says so).
# As root, fcgiwrap runs the CGI as www-data, as in production: the database must then be
# reachable over TCP, and the install base readable by www-data.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
started=$(date +%s%N)

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
note() { printf '%s\n' "$*"; }
is_root() { [ "$(id -u)" = 0 ]; }
find_bin() {
    local d
    for d in $(printf '%s' "$PATH" | tr ':' ' ') /usr/local/sbin /usr/sbin /sbin; do
        [ -x "$d/$1" ] && { echo "$d/$1"; return 0; }
    done
    return 1
}

# What the exit trap stops and removes.
nginx_pid='' fcgiwrap_pid='' state=''
alive() { # not gone, and not a zombie waiting for us to reap it
    [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}
stop_group() { # the process (started with setsid) and everything in its process group
    local pid=$1 _
    kill -TERM -- "-$pid" 2>/dev/null || return 0
    for _ in $(seq 1 50); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    [ -z "$nginx_pid" ] || stop_group "$nginx_pid"
    [ -z "$fcgiwrap_pid" ] || stop_group "$fcgiwrap_pid"
    if [ -n "$state" ] && [ -d "$state" ]; then
        if [ "$rc" != 0 ] && [ -s "$state/logs/error.log" ]; then
            printf '\n--- tail of the demo nginx error log ---\n' >&2
            tail -n 20 "$state/logs/error.log" >&2
        fi
        rm -rf "$state"
    fi
    [ -z "$nginx_pid" ] || note "(the demo's nginx and fcgiwrap are stopped)"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "build"
make -s build

step "database"
url=$(scripts/mariadb.sh url)
db=paysys_demo
note "server: $url   database: $db"
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
adb=paysys_demo_abills
note "and an ABillS database: $adb (sql/abills.sql)"
sql -e "DROP DATABASE IF EXISTS $adb; CREATE DATABASE $adb CHARACTER SET utf8mb4"
sql "$adb" < sql/abills.sql
sql "$adb" < sql/paysys.sql

# The web server, when it can be had. Reasons not to are collected in $why_not.
why_not=''
[ "${PAYSYS_DEMO_WEB:-1}" != 0 ] || why_not="PAYSYS_DEMO_WEB=0"
worker=''
if is_root; then
    if getent passwd www-data >/dev/null; then worker=www-data; else worker=nobody; fi
fi
want=()
find_bin nginx >/dev/null || want+=(nginx)
find_bin fcgiwrap >/dev/null || want+=(fcgiwrap)
command -v curl >/dev/null || want+=(curl)
if [ "${#want[@]}" -gt 0 ] && [ -z "$why_not" ]; then
    if is_root && command -v apt-get >/dev/null; then
        step "installing ${want[*]} with apt-get"
        if ! { apt-get update -qq >/dev/null &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                "${want[@]}" >/dev/null; }; then
            why_not="apt-get could not install ${want[*]}"
        fi
    else
        why_not="${want[*]} not installed (run as root to have them installed with apt-get)"
    fi
fi
case "$url" in
*socket=*)
    if is_root && [ -z "$why_not" ]; then
        why_not="the database is reachable only over its socket as root, but the CGI behind the web server runs as $worker; set PAYSYS_TEST_DB_URL to a TCP URL to see it behind nginx"
    fi ;;
esac
runs_as() { # the worker user, when there is one, can do this
    if [ -n "$worker" ]; then setpriv --reuid="$worker" --regid="$worker" --init-groups "$@"; else "$@"; fi
}

step "make install-files PREFIX=… (cgi-bin, bin, etc, var/log, sql)"
base="$here/var/demo"
if [ -z "$why_not" ] && { [[ "$base" =~ [^A-Za-z0-9/._+-] ]] || ! runs_as test -x "$here"; }; then
    # The repository's path cannot go into an nginx config, or www-data cannot reach it.
    base=$(mktemp -d /tmp/paysys-demo.XXXXXX)
    chmod 0755 "$base"
    note "($here is not usable by $worker; installing into $base instead)"
fi
rm -rf "$base"
make -s install-files PREFIX="$base"
db_url_of() { # the server's URL with database $1
    case "$url" in
    *\?*) local u="${url%%\?*}"; echo "${u%/}/$1?${url#*\?}" ;;
    *) echo "$url/$1" ;;
    esac
}
db_url=$(db_url_of "$db")
sed -i -e "s|^url = .*|url = \"$db_url\"|" "$base/etc/paysys.toml"
grep -E '^(url|billing|name|allow|test) ' "$base/etc/paysys.toml"
if [ -z "$why_not" ] && ! runs_as test -r "$base/etc/paysys.toml" -a -x "$base/cgi-bin/osmp.cgi" -a -w "$base/var/log"; then
    why_not="$worker cannot read $base/etc/paysys.toml or write $base/var/log"
fi

start_nginx() {
    local nginx fcgiwrap
    nginx=$(find_bin nginx) && fcgiwrap=$(find_bin fcgiwrap) || return 1
    state=$(mktemp -d /tmp/paysys-demo-nginx.XXXXXX)
    chmod 0755 "$state"
    mkdir -p "$state"/{conf,logs,htdocs,run,tmp}
    [ -z "$worker" ] || chown "$worker:" "$state/run" "$state/tmp"
    local sock="$state/run/fcgiwrap.sock"

    # The installed snippet, pointed at our own fcgiwrap instead of /run/fcgiwrap.socket.
    sed -e "s|^\([[:space:]]*fastcgi_pass\)[[:space:]].*|\1 unix:$sock;|" \
        "$base/etc/nginx/paysys.conf" >"$state/conf/paysys.conf"
    if [ -f /etc/nginx/fastcgi_params ]; then
        cp /etc/nginx/fastcgi_params "$state/conf/"
    else
        for v in QUERY_STRING:query_string REQUEST_METHOD:request_method \
            CONTENT_TYPE:content_type CONTENT_LENGTH:content_length SCRIPT_NAME:fastcgi_script_name \
            REQUEST_URI:request_uri GATEWAY_INTERFACE:CGI/1.1 SERVER_PROTOCOL:server_protocol \
            REMOTE_ADDR:remote_addr REMOTE_PORT:remote_port REMOTE_USER:remote_user \
            SERVER_ADDR:server_addr SERVER_PORT:server_port SERVER_NAME:server_name; do
            case "${v#*:}" in CGI*) val=${v#*:} ;; *) val="\$${v#*:}" ;; esac
            printf 'fastcgi_param %s %s;\n' "${v%%:*}" "$val"
        done >"$state/conf/fastcgi_params"
    fi

    setsid ${worker:+setpriv --reuid="$worker" --regid="$worker" --init-groups} \
        "$fcgiwrap" -f -c 4 -s "unix:$sock" >>"$state/logs/fcgiwrap.log" 2>&1 </dev/null &
    fcgiwrap_pid=$!
    local _
    for _ in $(seq 1 50); do [ -S "$sock" ] && break; sleep 0.1; done
    [ -S "$sock" ] || { note "fcgiwrap did not start: $(cat "$state/logs/fcgiwrap.log")"; return 1; }

    local try
    for try in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue # taken
        cat >"$state/conf/nginx.conf" <<EOF
# The demo's private nginx; the production part is conf/paysys.conf, from
# $base/etc/nginx/paysys.conf as make install wrote it.
${worker:+user $worker $(id -gn "$worker");}
worker_processes 1;
pid $state/run/nginx.pid;
lock_file $state/run/nginx.lock;
error_log $state/logs/error.log warn;
events { worker_connections 64; }
http {
    access_log $state/logs/access.log;
    client_body_temp_path $state/tmp/client_body;
    fastcgi_temp_path $state/tmp/fastcgi;
    proxy_temp_path $state/tmp/proxy;
    scgi_temp_path $state/tmp/scgi;
    uwsgi_temp_path $state/tmp/uwsgi;
    server {
        listen 127.0.0.1:$port;
        server_name 127.0.0.1;
        root $state/htdocs;
        include $state/conf/paysys.conf;
        location / { return 404; }
    }
}
EOF
        setsid "$nginx" -p "$state/" -c "$state/conf/nginx.conf" -e "$state/logs/error.log" \
            -g 'daemon off;' >>"$state/logs/stderr.log" 2>&1 </dev/null &
        nginx_pid=$!
        for _ in $(seq 1 50); do
            kill -0 "$nginx_pid" 2>/dev/null || break
            if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
                nginx_version=$("$nginx" -v 2>&1 | sed 's|.*/||')
                return 0
            fi
            sleep 0.1
        done
        stop_group "$nginx_pid"
        nginx_pid=''
        grep -q 'in use' "$state/logs/error.log" "$state/logs/stderr.log" 2>/dev/null || break
    done
    note "nginx did not start:"
    tail -n 5 "$state/logs/error.log" "$state/logs/stderr.log" 2>/dev/null || true
    return 1
}

mode=direct
if [ -z "$why_not" ]; then
    step "web server: a private nginx + fcgiwrap"
    if start_nginx; then
        mode=http
        note "nginx $nginx_version on http://127.0.0.1:$port, config $state/conf/nginx.conf"
        note "  includes $base/etc/nginx/paysys.conf (from make install), passed to fcgiwrap -c 4"
        note "  the CGI runs as ${worker:-$(id -un)}"
    else
        why_not="nginx or fcgiwrap did not start"
    fi
fi
if [ "$mode" = direct ]; then
    step "no web server: running osmp.cgi directly, as a web server would"
    note "($why_not)"
fi

# One request: print the URL, then the answer (status and XML). CGI: osmp.cgi unless set.
call() {
    local query=$1 cgi=${CGI:-osmp.cgi}
    note "GET /cgi-bin/$cgi?$query"
    if [ "$mode" = http ]; then
        local out status
        out=$(curl -sS -w '\n%{http_code}' "http://127.0.0.1:$port/cgi-bin/$cgi?$query")
        status=${out##*$'\n'}
        note "HTTP $status"
        out=${out%$'\n'*}
        printf '%s\n' "${out%$'\n'}"
    else
        env -i PATH=/usr/bin:/bin GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=GET \
            REMOTE_ADDR=127.0.0.1 PAYSYS_CONFIG="$base/etc/paysys.toml" QUERY_STRING="$query" \
            "$base/cgi-bin/$cgi"
    fi
}
txn_date=$(date -d '-2 minutes' +%Y%m%d%H%M%S)
txn=$(date +%s)

step "check: is 59071 (subscriber 5907) a valid account?"
call "command=check&txn_id=$txn&account=59071&sum=10.25"

step "pay 10.25 to 59071"
call "command=pay&txn_id=$txn&account=59071&sum=10.25&txn_date=$txn_date"

step "the terminal did not hear the answer and repeats the pay: same answer, no second credit"
call "command=pay&txn_id=$txn&account=59071&sum=10.25&txn_date=$txn_date"

step "a typo in the account (58071): refused, result 4"
call "command=check&txn_id=$((txn + 1))&account=58071"

step "the billing's rows"
sql "$db" -e "SELECT id, balance FROM users WHERE id = 5907; SELECT id, mid, cash, FROM_UNIXTIME(time) AS time, reason, coment FROM pays; SELECT id AS prv_txn, system_name, txn_id, account, amount, txn_date FROM paysys_txn"

step "another pay, 5.00 to 59071, which the terminal then cancels"
answer=$(call "command=pay&txn_id=$((txn + 2))&account=59071&sum=5.00&txn_date=$txn_date")
printf '%s\n' "$answer"
nprv=$(printf '%s' "$answer" | sed -n 's|.*<prv_txn>\([0-9]*\)</prv_txn>.*|\1|p')
step "cancel prv_txn $nprv: reversed as NoDeny's admin deletes a payment (INSTALL section 17)"
call "command=cancel&txn_id=$((txn + 2))&prv_txn=$nprv"
step "cancel again: the first answer, nothing reversed twice; the pay again: nod22, not credited"
call "command=cancel&txn_id=$((txn + 2))&prv_txn=$nprv"
call "command=pay&txn_id=$((txn + 2))&account=59071&sum=5.00&txn_date=$txn_date"
step "NoDeny's rows after the cancel: the balance back, the payment's row gone, the old record (501) and the event of its deletion (502)"
sql "$db" -e "SELECT id, balance FROM users WHERE id = 5907; SELECT id, mid, cash, type, category, FROM_UNIXTIME(time) AS time, reason, coment FROM pays; SELECT id AS prv_txn, txn_id, amount, payment_ref, cancelled FROM paysys_txn"

step "the log: $base/var/log/paysys_check.log"
cat "$base/var/log/paysys_check.log"

step "now ABillS: paysys_check.cgi, billing = \"abills\" (an overlay in etc/paysys.d; read anew per request)"
mkdir -p "$base/etc/paysys.d"
{
    echo '[database]'
    echo "url = \"$(db_url_of "$adb")\""
    echo 'billing = "abills"'
    echo
    echo '[[system]]'
    echo 'name = "osmp"'
    echo 'account = ["uid", "login", "contract_id"]'
} >"$base/etc/paysys.d/50-demo-abills.toml"
chmod 0644 "$base/etc/paysys.d/50-demo-abills.toml"
cat "$base/etc/paysys.d/50-demo-abills.toml"
export CGI=paysys_check.cgi
step "check login test1: ABillS's answer, the name masked for the terminal's screen"
call "command=check&txn_id=$txn&account=test1&sum=0.00"
step "pay 10.25 to test1: prv_txn is ABillS's paysys_log row"
call "command=pay&txn_id=$txn&account=test1&sum=10.25&txn_date=$txn_date"
step "the terminal repeats it: same prv_txn, nothing credited again"
answer=$(call "command=pay&txn_id=$txn&account=test1&sum=10.25&txn_date=$txn_date")
printf '%s\n' "$answer"
prv=$(printf '%s' "$answer" | sed -n 's|.*<prv_txn>\([0-9]*\)</prv_txn>.*|\1|p')
step "ABillS's rows after the pay"
sql "$adb" -e "SELECT id, CAST(deposit AS DECIMAL(12,2)) AS deposit FROM bills WHERE id = 1; SELECT id, date, sum, dsc, ext_id, method, aid, INET_NTOA(ip) AS ip, last_deposit, bill_id FROM payments WHERE ext_id = 'OSM:$txn'; SELECT id, system_id, transaction_id, sum, uid, status, domain_id FROM paysys_log WHERE transaction_id = 'OSM:$txn'"
step "cancel prv_txn $prv: the deposit goes back, the payments row goes, paysys_log.status = 3"
call "command=cancel&prv_txn=$prv"
step "cancel again: the first answer, nothing reversed twice"
call "command=cancel&prv_txn=$prv"
step "a caller no system admits (192.0.2.99, run directly: over loopback every caller is 127.0.0.1)"
env -i PATH=/usr/bin:/bin GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=GET REMOTE_ADDR=192.0.2.99 \
    PAYSYS_CONFIG="$base/etc/paysys.toml" QUERY_STRING="command=check&account=test1" \
    "$base/cgi-bin/paysys_check.cgi"
echo
step "ABillS's rows after the cancel"
sql "$adb" -e "SELECT id, CAST(deposit AS DECIMAL(12,2)) AS deposit FROM bills WHERE id = 1; SELECT COUNT(*) AS payments_rows FROM payments WHERE ext_id = 'OSM:$txn'; SELECT id, transaction_id, status FROM paysys_log WHERE transaction_id = 'OSM:$txn'; SELECT prv_txn, system_name, txn_id, account, amount, cancelled FROM paysys_txn"
step "the log, from the ABillS part on"
tail -n 6 "$base/var/log/paysys_check.log"

# One POST of a form or a body: print the URL, then the answer. Through the web server, or
# run directly as a web server would.
post() {
    local path=$1 type=$2 body=$3
    note "POST /cgi-bin/paysys_check.cgi$path"
    if [ "$mode" = http ]; then
        curl -sS -D - -H "Content-Type: $type" --data-binary "$body" \
            "http://127.0.0.1:$port/cgi-bin/paysys_check.cgi$path"
    else
        printf '%s' "$body" | env -i PATH=/usr/bin:/bin GATEWAY_INTERFACE=CGI/1.1 \
            REQUEST_METHOD=POST REMOTE_ADDR=127.0.0.1 PAYSYS_CONFIG="$base/etc/paysys.toml" \
            SCRIPT_NAME=/cgi-bin/paysys_check.cgi PATH_INFO="$path" HTTP_HOST="127.0.0.1:${port:-80}" \
            CONTENT_TYPE="$type" CONTENT_LENGTH=${#body} "$base/cgi-bin/paysys_check.cgi"
    fi
}

step "a card payment: the subscriber's page sends test1 to LiqPay (a LiqPay system in the overlay)"
# LiqPay's published test keys; the provider's side is played below with openssl.
liqpay_public=i00000000
liqpay_private=a4825234f4bae72a0be04eafe9e8e2bada209255
{
    echo
    echo '[[system]]'
    echo 'name = "liqpay"'
    echo 'protocol = "liqpay"'
    echo "public_key = \"$liqpay_public\""
    echo "private_key = \"$liqpay_private\""
    echo 'abills_id = 62'
    echo 'account = "login"'
    echo
    echo '[page]'
    echo "public_url = \"http://127.0.0.1:${port:-80}/cgi-bin/paysys_check.cgi\""
    echo 'title = "Demo ISP"'
} >>"$base/etc/paysys.d/50-demo-abills.toml"
page=$(post /pay application/x-www-form-urlencoded "account=test1&sum=25.00&system=liqpay")
printf '%s\n' "$page" | grep -E '^(HTTP|Status|Content-Security-Policy)|name="(data|signature)"' | cut -c1-160
data=$(printf '%s' "$page" | sed -n 's/.*name="data" value="\([^"]*\)".*/\1/p' | head -n 1)
order=$(printf '%s' "$data" | base64 -d 2>/dev/null | sed -n 's/.*"order_id":"\([^"]*\)".*/\1/p')
note "the order LiqPay is asked to charge: $(printf '%s' "$data" | base64 -d 2>/dev/null)"
step "ABillS shows the order in progress (paysys_log status 1) before the subscriber pays"
sql "$adb" -e "SELECT id, system_id, transaction_id, sum, uid, status FROM paysys_log WHERE transaction_id = 'LIQ:$order'"
step "LiqPay's signed callback: success, 25.00 UAH (signature = base64(SHA-1(key + data + key)))"
json="{\"public_key\":\"$liqpay_public\",\"version\":3,\"action\":\"pay\",\"status\":\"success\",\"order_id\":\"$order\",\"payment_id\":1234567,\"amount\":25,\"currency\":\"UAH\"}"
cb_data=$(printf '%s' "$json" | base64 -w0)
cb_sign=$(printf '%s' "$liqpay_private$cb_data$liqpay_private" | openssl dgst -sha1 -binary | base64 -w0)
urlencode() { printf '%s' "$1" | sed 's/+/%2B/g; s|/|%2F|g; s/=/%3D/g'; }
post /callback/liqpay application/x-www-form-urlencoded "data=$(urlencode "$cb_data")&signature=$(urlencode "$cb_sign")"
step "LiqPay posts it again: answered, nothing credited twice"
again=$(post /callback/liqpay application/x-www-form-urlencoded "data=$(urlencode "$cb_data")&signature=$(urlencode "$cb_sign")")
printf '%s\n' "$again" | sed -n '1p;$p'
step "a forged callback (signed with another key): refused, nothing written"
forged=$(printf '%s' "not-the-key$cb_data""not-the-key" | openssl dgst -sha1 -binary | base64 -w0)
forged_answer=$(post /callback/liqpay application/x-www-form-urlencoded "data=$(urlencode "$cb_data")&signature=$(urlencode "$forged")")
printf '%s\n' "$forged_answer" | sed -n '1p;$p'
step "the subscriber is back on our page: the order's state"
note "GET /cgi-bin/paysys_check.cgi/pay/$order"
if [ "$mode" = http ]; then
    result=$(curl -sS "http://127.0.0.1:$port/cgi-bin/paysys_check.cgi/pay/$order")
else
    result=$(env -i PATH=/usr/bin:/bin GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=GET \
        REMOTE_ADDR=127.0.0.1 PAYSYS_CONFIG="$base/etc/paysys.toml" \
        SCRIPT_NAME=/cgi-bin/paysys_check.cgi PATH_INFO="/pay/$order" "$base/cgi-bin/paysys_check.cgi")
fi
printf '%s\n' "$result" | grep -o 'id="state"[^<]*' | sed 's/.*>//'
step "ABillS's rows: the same paysys_log row completed (status 2), one payments row, the deposit"
sql "$adb" -e "SELECT id, CAST(deposit AS DECIMAL(12,2)) AS deposit FROM bills WHERE id = 1; SELECT id, sum, ext_id, method FROM payments WHERE ext_id = 'LIQ:$order'; SELECT id, transaction_id, sum, status FROM paysys_log WHERE transaction_id = 'LIQ:$order'"
"$base/bin/paysys" orders "$base/etc/paysys.toml" || true

step "the admin's view: paysys txn and paysys report (ABillS's database, the config as it is now)"
"$base/bin/paysys" txn "$txn" --config "$base/etc/paysys.toml" | head -n 12 || true
# A payment's day is its txn_date's: from yesterday, for a demo run just after midnight.
"$base/bin/paysys" report --from "$(date -d yesterday +%Y-%m-%d)" --to "$(date +%Y-%m-%d)" \
    --config "$base/etc/paysys.toml"

step "a bank statement: the day's 1C export from the client-bank (UTF-8 here; cp1251 reads the same)"
stmt="$base/var/statement-$(date +%Y%m%d).txt"
stmt_iban=UA213223130000026007233566001
stmt_day=$(date +%d.%m.%Y)
stmt_doc() { # number, sum, the other side's account, payer, purpose, debit (1) or credit (0)
    local from=$3 to=$stmt_iban posted=ДатаПоступило
    if [ "$6" = 1 ]; then from=$stmt_iban to=$3 posted=ДатаСписано; fi
    printf '%s\n' "СекцияДокумент=Платіжне доручення" "Номер=$1" "Дата=$stmt_day" "Сумма=$2" \
        "ПлательщикСчет=$from" "Плательщик=$4" "ПлательщикИНН=2345678901" "ПолучательСчет=$to" \
        "Получатель=ТОВ Демо-Провайдер" "ПолучательИНН=12345678" "$posted=$stmt_day" \
        "НазначениеПлатежа=$5" "КонецДокумента"
}
{
    printf '%s\n' 1CClientBankExchange ВерсияФормата=1.03 Кодировка=UTF-8 \
        "ДатаНачала=$stmt_day" "ДатаКонца=$stmt_day" "РасчСчет=$stmt_iban"
    stmt_doc 501 300.00 UA903052992990004149123456789 "Петренко Петро" \
        "Плата за інтернет, о/р test1, Петренко П.В." 0
    stmt_doc 502 50.00 UA903052992990004149123456780 "Іваненко Іван" \
        "Сплата за Особистий рахунок 999999" 0
    stmt_doc 503 15400.00 UA903052992990004149123456781 "ТОВ ФК Платежі" \
        "Перерахування коштів, прийнятих від платників згідно реєстру від $stmt_day" 0
    stmt_doc 504 12.50 UA653052990000029024000000001 "АТ КБ ПриватБанк" \
        "Комісія банку за обслуговування рахунку" 1
    echo КонецФайла
} >"$stmt"
note "$stmt:"
grep -E '^(Номер|Сумма|НазначениеПлатежа)=' "$stmt" | paste -d' ' - - -
step "its bank account and the admin's rules (another overlay in etc/paysys.d)"
{
    echo '[[statement.bank]]'
    echo 'name = "privat_main"'
    echo 'bank = "file"'
    echo "iban = \"$stmt_iban\""
    echo 'account = "login"'
    echo 'abills_id = 70'
    echo 'txn_prefix = "BANK"'
    echo
    echo '[[statement.rule]]'
    echo 'settlement = true'
    echo "purpose = '(?i)перерахування коштів, прийнятих від платників'"
    echo
    echo '[[statement.rule]]'
    echo "purpose = '(?i)(?:о/р|ос\\.?\\s*рах\\.?|особистий рахунок|дог\\.)\\s*№?\\s*(?P<account>[0-9a-z]{3,12})'"
} >"$base/etc/paysys.d/60-demo-statement.toml"
chmod 0644 "$base/etc/paysys.d/60-demo-statement.toml"
cat "$base/etc/paysys.d/60-demo-statement.toml"
deposit() { sql -N "$adb" -e "SELECT CAST(deposit AS DECIMAL(12,2)) FROM bills WHERE id = 1"; }
deposit_before=$(deposit)
step "paysys statement import: a line per row, then the summary"
"$base/bin/paysys" statement import "$stmt" --config "$base/etc/paysys.toml" || true
step "the same file again: nothing is credited twice"
"$base/bin/paysys" statement import "$stmt" --config "$base/etc/paysys.toml" | tail -n 1 || true
step "paysys statement list: the row waiting for the admin"
"$base/bin/paysys" statement list --config "$base/etc/paysys.toml" || true
step "test1's deposit, and the credit's log line"
note "bills.deposit of test1: $deposit_before -> $(deposit)"
grep 'cmd=statement' "$base/var/log/paysys_check.log" | tail -n 1

ms=$((($(date +%s%N) - started) / 1000000))
step "done in $((ms / 1000)).$((ms % 1000 / 100)) s ($mode)"
