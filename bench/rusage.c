/* rusage PROGRAM [ARG...]: run PROGRAM (same environment, stdin, stdout) and, once it has
 * exited, append one line to stderr:
 *
 *     rusage status=0 cpu_us=1234 user_us=1200 sys_us=34 maxrss_kb=5372 wall_us=1620 minflt=410
 *
 * cpu_us is user+system CPU time from wait4(); maxrss_kb is the peak resident set size;
 * wall_us runs from just before fork() to wait4()'s return.
 *
 * Why a wrapper of our own: the kernel carries the peak RSS of the process image that
 * called exec() into the new program's ru_maxrss, so measuring a CGI by spawning it from a
 * large process (the test harness, several MB) would report the harness's RSS for small
 * programs. This wrapper is a few hundred KB, the same floor for every program measured,
 * and the no-op CGI run through it shows that floor.
 *
 * Build: gcc -O2 -o target/bench/rusage bench/rusage.c   (bench/run.sh does it)
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long us(struct timeval t) { return (long long)t.tv_sec * 1000000 + t.tv_usec; }

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: rusage PROGRAM [ARG...]\n");
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        perror("rusage: fork");
        return 2;
    }
    if (pid == 0) {
        execv(argv[1], argv + 1);
        perror("rusage: exec");
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid) {
        perror("rusage: wait4");
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long wall = (long long)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
    fprintf(stderr,
            "rusage status=%d cpu_us=%lld user_us=%lld sys_us=%lld maxrss_kb=%ld wall_us=%lld minflt=%ld\n",
            status, us(ru.ru_utime) + us(ru.ru_stime), us(ru.ru_utime), us(ru.ru_stime),
            ru.ru_maxrss, wall, ru.ru_minflt);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
