/* The database floor for the benchmarks: the least a CGI can do per request and still
 * answer a check or a pay from the database, written in C against MariaDB's own client
 * library (libmariadb). It is what any one-process-per-request program pays on top of the
 * no-op CGI (bench/noop.c): exec of a program linked to a client library, a new connection
 * (TCP, handshake, authentication, a server thread), the statements, and the answer.
 *
 *   check: one text-protocol SELECT of the subscriber
 *   pay:   START TRANSACTION; INSERT paysys_txn; UPDATE users; INSERT pays; COMMIT
 *          (text protocol, one round trip per statement: fewer than osmp.cgi's prepared
 *          statements, and no checks, no config parsing, no log line)
 *
 * It is a measuring instrument, not a payment endpoint: it trusts its input, builds SQL
 * with sprintf from digits it has checked, and ignores everything else osmp.cgi does.
 * Its ratio to the no-op through the same server is what the plainest C CGI on the
 * standard client library gets. It is not a hard lower bound: mysql_init() initialises
 * OpenSSL (libmariadb's TLS backend) whether or not TLS is used, reading openssl.cnf and
 * loading error strings, and the dynamic loader relocates libmariadb, libssl and libcrypto;
 * under callgrind that is most of this program's user-space instructions, while the
 * connect and the statements are a few percent. A client speaking the protocol itself
 * would skip both.
 *
 * It reads the database from its own install base, as osmp.cgi does: SCRIPT_FILENAME's
 * directory/../etc/paysys.toml, the first `url = "mysql://user@host:port/db"` line
 * (no password; the benchmark's database is MariaDB's root over TCP).
 *
 * Build: gcc -O2 -o target/bench/floor bench/floor.c $(mariadb_config --cflags --libs)
 *        (bench/run.sh does it when libmariadb-dev is installed)
 */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void answer(const char *txn, const char *prv, int result)
{
    char body[512];
    int n = snprintf(body, sizeof body,
                     "Content-Type: text/xml; charset=utf-8\r\n\r\n"
                     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<response><osmp_txn_id>%s</osmp_txn_id><prv_txn>%s</prv_txn>"
                     "<sum>1.00</sum><result>%d</result><comment>%s</comment></response>\n",
                     txn, prv, result, result == 0 ? "OK" : "error");
    if (write(1, body, (size_t)n) != n)
        exit(1);
}

/* The value of `key` in the query string, if it is 1..20 digits. */
static int digits_param(const char *query, const char *key, char *out, size_t size)
{
    size_t klen = strlen(key);
    for (const char *p = query; p && *p;) {
        if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
            const char *v = p + klen + 1;
            size_t n = strspn(v, "0123456789");
            if (n == 0 || n >= size || n > 20 || (v[n] != '\0' && v[n] != '&'))
                return 0;
            memcpy(out, v, n);
            out[n] = '\0';
            return 1;
        }
        p = strchr(p, '&');
        if (p)
            p++;
    }
    return 0;
}

/* user, host, port, database from the config's `url = "mysql://user@host:port/db"`. */
static int read_url(char *user, char *host, unsigned *port, char *db)
{
    const char *script = getenv("SCRIPT_FILENAME");
    char path[4096], line[1024];
    const char *slash = script ? strrchr(script, '/') : NULL;
    if (!slash)
        return 0;
    snprintf(path, sizeof path, "%.*s/../etc/paysys.toml", (int)(slash - script), script);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = sscanf(line, " url = \"mysql://%63[^@]@%255[^:]:%u/%63[^\"?]", user, host, port,
                       db) == 4;
    fclose(f);
    return found;
}

int main(void)
{
    const char *query = getenv("QUERY_STRING");
    char user[64], host[256], db[64], code[24], account[24], txn[24], prv[24] = "0";
    unsigned port = 0;
    if (!query || !digits_param(query, "account", code, sizeof code) ||
        !digits_param(query, "txn_id", txn, sizeof txn) || strlen(code) < 2 ||
        !read_url(user, host, &port, db)) {
        answer("0", "0", 300);
        return 0;
    }
    /* The payment code's last digit is the check digit; the rest is the subscriber id. */
    memcpy(account, code, strlen(code) - 1);
    account[strlen(code) - 1] = '\0';
    int pay = strstr(query, "command=pay") != NULL;

    MYSQL *conn = mysql_init(NULL);
    if (!conn || !mysql_real_connect(conn, host, user, NULL, db, port, NULL, 0)) {
        answer(txn, "0", 1);
        return 0;
    }
    char sql[1024];
    int result = 1;
    if (!pay) {
        snprintf(sql, sizeof sql, "SELECT id FROM users WHERE id = %s AND mid = 0", account);
        if (mysql_query(conn, sql) == 0) {
            MYSQL_RES *res = mysql_store_result(conn);
            result = res && mysql_num_rows(res) == 1 ? 0 : 5;
            if (res)
                mysql_free_result(res);
        }
    } else if (mysql_query(conn, "START TRANSACTION") == 0) {
        snprintf(sql, sizeof sql,
                 "INSERT INTO paysys_txn (system_name, txn_id, account, subscriber_id, amount, "
                 "txn_date, created, caller_ip) VALUES ('osmp', '%s', '%s', %s, 1.00, NOW(), "
                 "NOW(), '127.0.0.1')",
                 txn, code, account);
        if (mysql_query(conn, sql) == 0) {
            unsigned long long id = mysql_insert_id(conn);
            snprintf(prv, sizeof prv, "%llu", id);
            snprintf(sql, sizeof sql,
                     "UPDATE users SET balance = balance + 1.00 WHERE id = %s AND mid = 0",
                     account);
            if (mysql_query(conn, sql) == 0 && mysql_affected_rows(conn) == 1) {
                snprintf(sql, sizeof sql,
                         "INSERT INTO pays (mid, cash, time, admin_id, admin_ip, office, bonus, "
                         "reason, coment, type, category) VALUES (%s, 1.00, %ld, 0, 0, 0, '', "
                         "'osmp txn_id=%s', 'floor', 10, 0)",
                         account, (long)time(NULL), txn);
                if (mysql_query(conn, sql) == 0 && mysql_query(conn, "COMMIT") == 0)
                    result = 0;
            }
        }
    }
    mysql_close(conn);
    answer(txn, prv, result);
    return 0;
}
