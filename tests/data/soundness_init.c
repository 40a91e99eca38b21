/* Starts each line of the soundness sandbox (tests/bash_sandbox.py) in PID and mount namespaces of its own.
 *
 * The first child is the namespace's PID 1: it starts argv[1..] (bash -c LINE) and reaps every process of the
 * namespace until none is left, so that background jobs (`cmd &`, `coproc`, `setsid -f`) run to completion instead
 * of dying with bash: what they execute is part of what the line executes, and it must not depend on timing. When
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
#include <unistd.h>

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
    for (;;) {
        int status;
        pid_t pid = wait(&status);
        if (pid == shell) {
            shell_status = status_code(status);
        } else if (pid < 0 && errno == ECHILD) {
            return shell_status;
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
