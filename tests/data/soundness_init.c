/* Starts each line of the soundness sandbox (tests/bash_sandbox.py) in PID and mount namespaces of its own.
 *
 * The first child is the namespace's PID 1: it starts argv[1..] (bash -c LINE), reaps until bash is done, then gives
 * the rest a grace period, so that background jobs (`cmd &`, `coproc`, `setsid -f`) run to completion instead of
 * dying with bash: what they execute is part of what the line executes, and it must not depend on timing. When
 * PID 1 exits, or this process is killed (the driver's timeout), the kernel kills everything left in the namespace.
 * Exits with bash's status.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GRACE_MS 1000

static int status_code(int status) {
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int reap_all(char **argv) {
    pid_t shell = fork();
    if (shell < 0) {
        perror("soundness-init: fork");
        return 2;
    }
    if (shell == 0) {
        execv(argv[0], argv);
        perror("soundness-init: exec");
        _exit(127);
    }
    int shell_status = 0;
    int status;
    pid_t pid;
    while ((pid = wait(&status)) != shell) { /* until bash is done, whatever else ends on the way */
        if (pid < 0 && errno != EINTR) {
            return 2;
        }
    }
    shell_status = status_code(status);
    /* then background jobs get a grace period to finish; a daemon that stays (ssh-agent's agent) dies with us */
    struct timespec start, now, pause = {.tv_sec = 0, .tv_nsec = 5 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno == ECHILD) {
            return shell_status;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed_ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed_ms >= GRACE_MS) {
            return shell_status;
        }
        if (pid == 0) {
            nanosleep(&pause, NULL);
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs("usage: soundness-init PROGRAM [ARG...]\n", stderr);
        return 2;
    }
    if (unshare(CLONE_NEWPID | CLONE_NEWNS) != 0) { /* mounts a line makes (through /.real) vanish with it too */
        perror("soundness-init: unshare");
        return 2;
    }
    pid_t init = fork();
    if (init < 0) {
        perror("soundness-init: fork");
        return 2;
    }
    if (init == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* killed with its parent, taking the namespace with it */
        return reap_all(argv + 1);
    }
    int status;
    while (waitpid(init, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("soundness-init: waitpid");
            return 2;
        }
    }
    return status_code(status);
}
