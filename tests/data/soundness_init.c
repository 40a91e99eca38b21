/* PID 1 of each line's PID namespace in the soundness sandbox (tests/bash_sandbox.py).
 *
 * Starts argv[1..] (bash -c LINE) and reaps every process of the namespace until none is left, so that background
 * jobs (`cmd &`, `coproc`, `setsid -f`) run to completion instead of dying with bash: what they execute is part of
 * what the line executes, and it must not depend on timing. Exits with bash's status; the driver's timeout kills
 * the whole namespace when something never ends.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs("usage: soundness-init PROGRAM [ARG...]\n", stderr);
        return 2;
    }
    pid_t shell = fork();
    if (shell < 0) {
        perror("soundness-init: fork");
        return 2;
    }
    if (shell == 0) {
        execv(argv[1], argv + 1);
        perror("soundness-init: exec");
        _exit(127);
    }
    int shell_status = 0;
    for (;;) {
        int status;
        pid_t pid = wait(&status);
        if (pid == shell) {
            shell_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        } else if (pid < 0 && errno == ECHILD) {
            return shell_status;
        }
    }
}
