/* The floor for the benchmarks: a CGI that does nothing but answer.
 *
 * It prints a minimal OSMP-looking answer (the same Content-Type and about the same body
 * size as osmp.cgi's check answer) with one write() and exits. No environment parsing, no
 * file, no database: whatever a request to it costs is the web server's and the kernel's
 * share (accept, fork/exec, pipes), which osmp.cgi pays too.
 *
 * Build: gcc -O2 -o target/bench/noop bench/noop.c   (bench/run.sh does it)
 */
#include <unistd.h>

static const char answer[] =
    "Content-Type: text/xml; charset=utf-8\r\n"
    "\r\n"
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<response><osmp_txn_id>1</osmp_txn_id><sum>10.00</sum><result>0</result>"
    "<comment>OK</comment></response>\n";

int main(void)
{
    return write(1, answer, sizeof answer - 1) == (ssize_t)(sizeof answer - 1) ? 0 : 1;
}
