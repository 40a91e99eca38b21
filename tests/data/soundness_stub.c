/* The only programs on PATH inside the soundness sandbox (tests/bash_sandbox.py): every name is a hard link to this.
 *
 * Each run sends one datagram to the sandbox driver's abstract Unix socket (abstract names live in the network
 * namespace, so no line can delete or rewrite the log through the file system), then either exits 0 or, when built
 * with -DEXEC_REAL, replaces itself with the real program of the same name under /.real, so that wrappers (env,
 * xargs, find, sh, ...) really run what they are given and their children resolve through the stubs again.
 *
 * Record, each field NUL-terminated: the path the kernel was asked to execute (AT_EXECFN: not argv[0], which
 * `exec -a` and `hash -p` forge), the real program of the parent process (/proc/PPID/exe), the PID and the parent's
 * PID (so the driver can tell what a wrapper started on its own), then argv. Truncated at 60 KiB.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define LOG_NAME "keycardd-soundness-log"
#define RECORD_MAX (60 * 1024)

static char record[RECORD_MAX];
static size_t used;

static void append(const char *text) {
    size_t length = strlen(text) + 1;
    if (used + length > RECORD_MAX) {
        length = RECORD_MAX - used;
    }
    memcpy(record + used, text, length);
    used += length;
}

/* This process's and its parent's PIDs as the sandbox's /proc sees them, and the parent's executable. */
static void identify(char *pid, char *ppid, char *parent, size_t size) {
    char line[256];
    FILE *status = fopen("/proc/self/status", "r");
    strcpy(pid, "0");
    strcpy(ppid, "0");
    parent[0] = '\0';
    if (status == NULL) {
        return;
    }
    while (fgets(line, sizeof line, status) != NULL) {
        if (strncmp(line, "Pid:", 4) == 0) {
            snprintf(pid, 24, "%ld", strtol(line + 4, NULL, 10));
        } else if (strncmp(line, "PPid:", 5) == 0) {
            snprintf(ppid, 24, "%ld", strtol(line + 5, NULL, 10));
            break;
        }
    }
    fclose(status);
    char link[64];
    snprintf(link, sizeof link, "/proc/%s/exe", ppid);
    ssize_t length = readlink(link, parent, size - 1);
    parent[length > 0 ? length : 0] = '\0';
}

int main(int argc, char **argv) {
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    if (execfn != NULL && strncmp(execfn, "/.real/", 7) == 0) {
        /* we are the #! interpreter of a real program: it would exec itself again through us, forever */
        fprintf(stderr, "soundness stub: %s is a script; it cannot be a pass-through program\n", execfn);
        return 126;
    }
    char pid[24], ppid[24], parent[4096];
    identify(pid, ppid, parent, sizeof parent);
    append(execfn != NULL ? execfn : "");
    append(parent);
    append(pid);
    append(ppid);
    for (int i = 0; i < argc && used < RECORD_MAX; i++) {
        append(argv[i]);
    }

    struct sockaddr_un address = {.sun_family = AF_UNIX};
    memcpy(address.sun_path + 1, LOG_NAME, sizeof LOG_NAME - 1);
    socklen_t address_length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + sizeof LOG_NAME - 1);
    int sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0 || sendto(sock, record, used, 0, (struct sockaddr *)&address, address_length) < 0) {
        perror("soundness stub: cannot log");
        return 97; /* the driver counts lines whose stubs could not log: the harness, not the line, failed */
    }
    close(sock);

#ifdef EXEC_REAL
    const char *name = strrchr(execfn != NULL ? execfn : argv[0], '/');
    name = name != NULL ? name + 1 : (execfn != NULL ? execfn : argv[0]);
    static const char *const dirs[] = {"/.real/usr/bin/", "/.real/usr/sbin/"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char real[4096];
        snprintf(real, sizeof real, "%s%s", dirs[i], name);
        /* A host symlink through /etc/alternatives (awk -> /etc/alternatives/awk -> /usr/bin/mawk) resolves to the
           sandbox's stub of that name, which would exec this one again: run the real target instead. */
        char resolved[4096];
        if (realpath(real, resolved) != NULL && strncmp(resolved, "/.real/", 7) != 0) {
            char target[4096 + 8];
            snprintf(target, sizeof target, "/.real%s", resolved);
            execv(target, argv);
        }
        execv(real, argv);
    }
    perror("soundness stub: no real program");
    return 127;
#else
    return 0;
#endif
}
