/*
 * keycard-hook: the tiny shim Claude Code and Cursor run before every tool call.
 *
 *   keycard-hook claude|cursor|codex|gemini [--timeout-ms N] [--fail-open EVENT[,EVENT...]] [--no-autostart]
 *   keycard-hook --help
 *
 * It reads the hook payload from stdin, sends it unparsed to keycardd in one MessagePack frame over the daemon's
 * Unix socket, and writes back exactly the stdout bytes and exit code the daemon returns. It parses no JSON on that
 * path. When the daemon cannot answer (absent, refusing, garbage, too slow) a gating event gets a deny in the
 * agent's own format, naming keycardd and the fix: the enforcement path fails closed. Observe-only events stay
 * silent. The protocol is keycardd/protocol.py; the Python fallback (keycard_hook.py) behaves identically.
 *
 * `--help` (or `-h`) prints the usage line on stdout and exits 0 without reading stdin. A hook command this shim
 * cannot parse (an unknown option, a missing value) is a broken install, and an agent may be the one running it: the
 * shim writes the error and the usage line on stderr, still reads the payload and answers it with a deny in the
 * agent's shape (never --fail-open), and exits non-zero where that cannot weaken the deny. Exit 2 blocks in Claude
 * Code, Codex, Cursor and Gemini CLI alike, so a gate gets the deny and exit 2; an observe-only event has nothing to
 * deny and gets exit 1 (a visible, non-blocking hook error; exit 2 would, say, keep Claude from stopping); Claude
 * Code and Codex ignore exit 2 on PermissionRequest and may then drop the JSON, so that deny exits 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* macOS: SIGPIPE is ignored instead */
#endif

#define MAX_FRAME (1u << 20)
#define MAX_PAYLOAD (MAX_FRAME - 8192u)
#define MAX_REASON 1024

typedef struct { unsigned char *data; size_t len, cap; } buf_t;

static const char *agent = "claude";
static const char *fail_open = "";
static long timeout_ms = 2000;
static int autostart = 1;
static char event[64];
static struct timespec deadline;

static void put(buf_t *b, const void *src, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        unsigned char *grown = realloc(b->data, cap);
        if (!grown) { perror("keycard-hook"); exit(1); }
        b->data = grown; b->cap = cap;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
}

static void put_u8(buf_t *b, unsigned v) { unsigned char c = (unsigned char)v; put(b, &c, 1); }
static void put_be(buf_t *b, uint32_t v, int bytes) { while (bytes--) put_u8(b, (v >> (8 * bytes)) & 0xff); }

static void put_str(buf_t *b, const char *s, size_t n) {
    if (n < 32) put_u8(b, 0xa0 | (unsigned)n);
    else if (n < 256) { put_u8(b, 0xd9); put_be(b, (uint32_t)n, 1); }
    else if (n < 65536) { put_u8(b, 0xda); put_be(b, (uint32_t)n, 2); }
    else { put_u8(b, 0xdb); put_be(b, (uint32_t)n, 4); }
    put(b, s, n);
}

static void put_cstr(buf_t *b, const char *s) { put_str(b, s, strlen(s)); }

static void put_bin(buf_t *b, const unsigned char *s, size_t n) {
    if (n < 256) { put_u8(b, 0xc4); put_be(b, (uint32_t)n, 1); }
    else if (n < 65536) { put_u8(b, 0xc5); put_be(b, (uint32_t)n, 2); }
    else { put_u8(b, 0xc6); put_be(b, (uint32_t)n, 4); }
    put(b, s, n);
}

/* ---- fail-closed answers -------------------------------------------------------------------------------- */

/* The event name, found with a byte scan (not a JSON parse): only needed when the daemon cannot answer. */
static void find_event(const buf_t *in) {
    const char *key = "\"hook_event_name\"";
    unsigned char *p = memmem(in->data, in->len, key, strlen(key));
    if (!p) return;
    unsigned char *end = in->data + in->len;
    p += strlen(key);
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == ':')) p++;
    if (p >= end || *p != '"') return;
    size_t n = 0;
    for (p++; p < end && *p != '"' && n + 1 < sizeof event; p++) event[n++] = (char)*p;
    event[n] = 0;
}

static int listed(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; *name && (p = strstr(p, name)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == 0 || p[n] == ',')) return 1;
    return 0;
}

static void json_escape(buf_t *b, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { put_u8(b, '\\'); put_u8(b, c); }
        else if (c < 0x20) { char hex[8]; snprintf(hex, sizeof hex, "\\u%04x", c); put(b, hex, 6); }
        else put_u8(b, c);
    }
}

static void emit(buf_t *b, const char *s) { put(b, s, strlen(s)); }

/* Answer by ourselves on stdout: a deny on gates (or "no objection" where --fail-open names the event). Returns
 * whether it denied. */
static int answer_alone(const char *reason) {
    buf_t out = {0};
    int open = listed(fail_open, event[0] ? event : "PreToolUse"), denied = 0;
    if (!strcmp(agent, "gemini")) { /* Gemini honours only {"decision":"deny"}: a Claude-shaped deny fails open */
        const char *e = event[0] ? event : "BeforeTool";
        if ((!strcmp(e, "BeforeTool") || !strcmp(e, "BeforeAgent")) && !listed(fail_open, e)) {
            denied = 1;
            emit(&out, "{\"decision\":\"deny\",\"reason\":\""); json_escape(&out, reason); emit(&out, "\"}");
        }
    } else if (strcmp(agent, "cursor") != 0) { /* Claude Code and Codex (whose hooks take Claude's shapes) */
        const char *e = event[0] ? event : "PreToolUse";
        denied = !open && (!strcmp(e, "PreToolUse") || !strcmp(e, "PermissionRequest") || !strcmp(e, "UserPromptSubmit"));
        if (open) { /* no objection: print nothing */ }
        else if (!strcmp(e, "PreToolUse")) {
            emit(&out, "{\"hookSpecificOutput\":{\"hookEventName\":\"PreToolUse\",\"permissionDecision\":\"deny\","
                       "\"permissionDecisionReason\":\"");
            json_escape(&out, reason); emit(&out, "\"}}");
        } else if (!strcmp(e, "PermissionRequest")) {
            emit(&out, "{\"hookSpecificOutput\":{\"hookEventName\":\"PermissionRequest\",\"decision\":"
                       "{\"behavior\":\"deny\",\"message\":\"");
            json_escape(&out, reason); emit(&out, "\"}}}");
        } else if (!strcmp(e, "UserPromptSubmit")) {
            emit(&out, "{\"decision\":\"block\",\"reason\":\""); json_escape(&out, reason); emit(&out, "\"}");
        }
    } else {
        static const char *gates[] = {"preToolUse", "beforeShellExecution", "beforeMCPExecution", "beforeReadFile",
                                      "beforeTabFileRead", "subagentStart", NULL};
        int gate = 0;
        for (int i = 0; gates[i]; i++) gate |= !strcmp(event, gates[i]);
        /* A gate this shim does not know (a newer Cursor event, before... or pre...): denied, in every vocabulary */
        int unknown_gate = !gate && (!strncmp(event, "before", 6) || !strncmp(event, "pre", 3));
        denied = !open && (gate || unknown_gate || !event[0] || !strcmp(event, "beforeSubmitPrompt"));
        if (!strcmp(event, "beforeSubmitPrompt")) {
            if (open) emit(&out, "{\"continue\":true}");
            else { emit(&out, "{\"continue\":false,\"user_message\":\""); json_escape(&out, reason); emit(&out, "\"}"); }
        } else if (gate || unknown_gate || !event[0]) {
            if (open) emit(&out, "{\"permission\":\"allow\"}");
            else {
                emit(&out, gate ? "{\"permission\":\"deny\",\"user_message\":\""
                                : "{\"permission\":\"deny\",\"continue\":false,\"user_message\":\"");
                json_escape(&out, reason); emit(&out, "\",\"agent_message\":\"");
                json_escape(&out, reason); emit(&out, "\"}");
            }
        } else emit(&out, "{}");
    }
    if (out.len) fwrite(out.data, 1, out.len, stdout);
    fflush(stdout);
    free(out.data);
    return denied;
}

/* The daemon cannot answer: answer alone, and exit 0 so the agent reads the answer. Never returns. */
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...) {
    char reason[MAX_REASON];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    fprintf(stderr, "keycard-hook: %s\n", reason);
    answer_alone(reason);
    exit(0);
}

/* ---- the socket ------------------------------------------------------------------------------------------- */

static void socket_path(char *out, size_t size) {
    const char *explicit = getenv("KEYCARDD_SOCKET"), *runtime = getenv("XDG_RUNTIME_DIR");
    const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    if (explicit && *explicit) snprintf(out, size, "%s", explicit);
    else if (runtime && *runtime) snprintf(out, size, "%s/keycard/keycardd.sock", runtime);
    else if (state && *state) snprintf(out, size, "%s/keycard/keycardd.sock", state);
    else snprintf(out, size, "%s/.local/state/keycard/keycardd.sock", home ? home : "");
#ifdef __APPLE__
    if (!(explicit && *explicit) && strlen(out) > 100) snprintf(out, size, "/tmp/keycard-%u/keycardd.sock", getuid());
#endif
}

static long remaining_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (deadline.tv_sec - now.tv_sec) * 1000 + (deadline.tv_nsec - now.tv_nsec) / 1000000;
}

static int try_connect(const char *path) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) { errno = ENAMETOOLONG; return -1; }
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) return fd;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

static int executable(const char *path) { return access(path, X_OK) == 0; }

/* Where `keycardctl install` records the keycardd that ran it (a link to it): <data dir>/keycard/bin/keycardd. */
static void recorded_daemon(char *out, size_t size) {
    const char *data = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    if (data && *data) snprintf(out, size, "%s/keycard/bin/keycardd", data);
    else snprintf(out, size, "%s/.local/share/keycard/bin/keycardd", home ? home : "");
}

/* The keycardd to start: $KEYCARDD_BIN, else keycardd beside this shim, else the one install recorded, else on
 * PATH. A checkout's keycardd is in its .venv/bin, on no PATH: the recorded link is how its hooks find it. */
static int daemon_binary(char *out, size_t size, const char *argv0) {
    const char *env = getenv("KEYCARDD_BIN");
    if (env && *env) { snprintf(out, size, "%s", env); return 1; }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) self[n] = 0; else if (!realpath(argv0, self)) self[0] = 0;
    char *slash = strrchr(self, '/');
    if (slash) { *slash = 0; snprintf(out, size, "%s/keycardd", self); if (executable(out)) return 1; }
    recorded_daemon(out, size);
    if (executable(out)) return 1;
    const char *path = getenv("PATH");
    for (char *dirs = strdup(path ? path : "/usr/local/bin:/usr/bin"), *dir = strtok(dirs, ":"); dir; dir = strtok(NULL, ":")) {
        snprintf(out, size, "%s/keycardd", dir);
        if (executable(out)) return 1;
    }
    out[0] = 0;
    return 0;
}

/* Where an auto-started keycardd writes its own output and failure: <state dir>/log/autostart.log (as the Python
 * shim's autostart_log). */
static void autostart_log(char *out, size_t size) {
    const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    if (state && *state) snprintf(out, size, "%s/keycard/log/autostart.log", state);
    else snprintf(out, size, "%s/.local/state/keycard/log/autostart.log", home ? home : "");
}

static void make_private_dirs(const char *file) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", file);
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        mkdir(dir, 0700); /* EEXIST is fine; any other failure shows when the log is opened */
        *p = '/';
    }
}

static void close_from(int lowest) {
#if defined(__linux__) && defined(SYS_close_range)
    if (syscall(SYS_close_range, (unsigned)lowest, ~0U, 0) == 0) return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536) max = 65536;
    for (int fd = lowest; fd < max; fd++) close(fd);
}

enum { START_NONE = -1, START_NOT_TRIED = 0, START_STARTED = 1, START_BUSY = 2, START_FAILED = 3 };

/* In the first child, after it forked keycardd: wait for keycardd until the shim's deadline, and if it ends first
 * write how ("exited with status 1") to `report`, since only a parent can wait for a process. It keeps nothing of
 * the hook's (stdin, stdout, the lock) open, so the agent never waits for it. Never returns. */
static void watch_daemon(pid_t daemon, int report) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0); dup2(null, 1); dup2(null, 2);
    dup2(report, 3);
    close_from(4);
    for (int status; remaining_ms() > 0;) {
        pid_t done = waitpid(daemon, &status, WNOHANG);
        if (done < 0) break;
        if (done == daemon) {
            char how[48];
            int n = WIFSIGNALED(status) ? snprintf(how, sizeof how, "was killed by signal %d", WTERMSIG(status))
                                        : snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(status));
            if (write(3, how, (size_t)n) < 0) { /* the shim has gone: there is nobody left to tell */ }
            break;
        }
        struct timespec pause = {0, 10 * 1000000};
        nanosleep(&pause, NULL);
    }
    _exit(0);
}

/* Start keycardd (`bin`) detached, unless another hook is already starting it (a lock this shim holds until it
 * exits). The daemon runs from / (never the agent's project, whose keycard.toml it must not read) with
 * --autostarted, no inherited descriptors, and stdout and stderr appended to the autostart log. `*report` is a
 * non-blocking pipe that says how keycardd ended if it ends before the shim's deadline (watch_daemon). */
static int start_daemon(const char *argv0, const char *log_path, char *bin, size_t bin_size, int *report) {
    if (!daemon_binary(bin, bin_size, argv0) || !executable(bin)) return START_NONE; /* `bin` set: $KEYCARDD_BIN's */
    make_private_dirs(log_path);
    char lock_path[PATH_MAX];
    snprintf(lock_path, sizeof lock_path, "%.*s.lock", (int)(strlen(log_path) - strlen(".log")), log_path);
    int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    int log = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lock < 0 || log < 0) {
        if (lock >= 0) close(lock);
        if (log >= 0) close(log);
        return START_FAILED;
    }
    if (flock(lock, LOCK_EX | LOCK_NB) != 0) { close(lock); close(log); return START_BUSY; }
    int ends[2];
    if (pipe(ends) != 0) { close(log); return START_FAILED; }
    fcntl(ends[0], F_SETFD, FD_CLOEXEC);
    fcntl(ends[1], F_SETFD, FD_CLOEXEC);
    pid_t pid = fork();
    if (pid < 0) { close(log); close(ends[0]); close(ends[1]); return START_FAILED; }
    if (pid == 0) {
        setsid();
        pid_t daemon = fork();
        if (daemon > 0) watch_daemon(daemon, ends[1]); /* then exits: keycardd is reparented, no tie to the agent */
        if (daemon < 0) _exit(0);
        if (chdir("/") != 0) _exit(127);
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0); dup2(log, 1); dup2(log, 2);
        close_from(3);
        execl(bin, "keycardd", "--autostarted", (char *)NULL);
        _exit(127);
    }
    close(log);
    close(ends[1]);
    fcntl(ends[0], F_SETFL, O_NONBLOCK);
    *report = ends[0];
    return START_STARTED; /* `lock` stays open, and held, until this shim exits */
}

static int connect_daemon(const char *path, const char *argv0) {
    char log_path[PATH_MAX], bin[PATH_MAX] = "", how[48] = "";
    autostart_log(log_path, sizeof log_path);
    int fd = try_connect(path), err = errno, started = START_NOT_TRIED, report = -1;
    while (fd < 0 && (err == ENOENT || err == ECONNREFUSED)) {
        if (autostart && (started == START_NOT_TRIED || started == START_BUSY))
            started = start_daemon(argv0, log_path, bin, sizeof bin, &report);
        if ((started != START_STARTED && started != START_BUSY) || remaining_ms() <= 0) break;
        ssize_t n = report >= 0 ? read(report, how, sizeof how - 1) : -1;
        if (n > 0) how[n] = 0;
        struct timespec pause = {0, 10 * 1000000};
        if (n <= 0) nanosleep(&pause, NULL);
        fd = try_connect(path); /* once more after keycardd ended: another may have started meanwhile */
        err = errno;
        if (n > 0) break;
    }
    if (fd < 0) {
        if (err == ENOENT || err == ECONNREFUSED) {
            const char *more = "set KEYCARDD_BIN to start another keycardd";
            if (*how)
                fail("keycardd is not running (nothing listens on %s): the hook started %s but it %s before answering; "
                     "see %s (%s)", path, bin, how, log_path, more);
            if (started == START_STARTED)
                fail("keycardd is not running (nothing listens on %s): the hook started %s but it did not answer within "
                     "%ld ms; see %s (%s, or raise --timeout-ms)", path, bin, timeout_ms, log_path, more);
            if (started == START_BUSY)
                fail("keycardd is not running (nothing listens on %s): another hook call started %s but it did not "
                     "answer within %ld ms; see %s (%s)", path, bin, timeout_ms, log_path, more);
            if (started == START_FAILED)
                fail("keycardd is not running (nothing listens on %s): the hook could not start %s, as it cannot open %s "
                     "or its lock; start keycardd with `keycardctl service start` or `keycardd`", path, bin, log_path);
            if (started == START_NONE && *bin)
                fail("keycardd is not running (nothing listens on %s) and the hook could not start it: KEYCARDD_BIN "
                     "names %s, which is not an executable file; set it to keycardd's path", path, bin);
            if (started == START_NONE) {
                char recorded[PATH_MAX];
                recorded_daemon(recorded, sizeof recorded);
                fail("keycardd is not running (nothing listens on %s) and the hook found no keycardd to start (not "
                     "beside it, at %s or on PATH): set KEYCARDD_BIN to keycardd's path, or run `keycardctl install` "
                     "again from the keycardd you use", path, recorded);
            }
            fail("keycardd is not running (nothing listens on %s): start it with `keycardctl service start` or `keycardd`", path);
        }
        fail("keycardd's socket %s cannot be used (%s): check it with `keycardctl doctor`", path, strerror(err));
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static void wait_fd(int fd, short events) {
    for (;;) {
        long left = remaining_ms();
        if (left <= 0) fail("keycardd did not answer within %ld ms: check `keycardctl status`, or raise --timeout-ms", timeout_ms);
        struct pollfd p = {fd, events, 0};
        int r = poll(&p, 1, (int)left);
        if (r > 0) return;
        if (r < 0 && errno != EINTR) fail("keycardd's socket failed (%s): restart keycardd", strerror(errno));
    }
}

static void send_all(int fd, const unsigned char *p, size_t n) {
    while (n) {
        wait_fd(fd, POLLOUT);
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (w <= 0) fail("keycardd closed the connection (%s): restart keycardd", strerror(errno));
        p += w; n -= (size_t)w;
    }
}

static void recv_all(int fd, unsigned char *p, size_t n) {
    while (n) {
        wait_fd(fd, POLLIN);
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (r <= 0) fail("keycardd closed the connection without an answer: see `keycardctl status` and its log");
        p += r; n -= (size_t)r;
    }
}

/* ---- the reply ------------------------------------------------------------------------------------------ */

typedef struct { const unsigned char *p, *end; } reader_t;

static int need(reader_t *r, size_t n) { return (size_t)(r->end - r->p) >= n; }
static uint64_t be(reader_t *r, int n) { uint64_t v = 0; while (n--) v = (v << 8) | *r->p++; return v; }

/* Read a str or bin; returns its length or -1. */
static long read_bytes(reader_t *r, const unsigned char **out) {
    if (!need(r, 1)) return -1;
    unsigned t = *r->p++;
    uint64_t n;
    if ((t & 0xe0) == 0xa0) n = t & 0x1f;
    else if (t == 0xd9 || t == 0xc4) { if (!need(r, 1)) return -1; n = be(r, 1); }
    else if (t == 0xda || t == 0xc5) { if (!need(r, 2)) return -1; n = be(r, 2); }
    else if (t == 0xdb || t == 0xc6) { if (!need(r, 4)) return -1; n = be(r, 4); }
    else return -1;
    if (!need(r, n)) return -1;
    *out = r->p;
    r->p += n;
    return (long)n;
}

static int read_int(reader_t *r, long *out) {
    if (!need(r, 1)) return 0;
    unsigned t = *r->p++;
    if (t <= 0x7f) { *out = (long)t; return 1; }
    if (t >= 0xe0) { *out = (long)(int8_t)t; return 1; }
    int sizes[] = {1, 2, 4, 8};
    if (t >= 0xcc && t <= 0xcf) { int n = sizes[t - 0xcc]; if (!need(r, n)) return 0; *out = (long)be(r, n); return 1; }
    if (t >= 0xd0 && t <= 0xd3) {
        int n = sizes[t - 0xd0]; if (!need(r, n)) return 0;
        uint64_t v = be(r, n);
        *out = n == 1 ? (int8_t)v : n == 2 ? (int16_t)v : n == 4 ? (int32_t)v : (long)(int64_t)v;
        return 1;
    }
    return 0;
}

static void answer(const unsigned char *body, size_t len) {
    reader_t r = {body, body + len};
    if (!need(&r, 1) || (*r.p & 0xf0) != 0x80) fail("keycardd sent an unreadable answer: restart keycardd");
    unsigned fields = *r.p++ & 0x0f;
    const unsigned char *type = NULL, *out = NULL, *message = NULL;
    long type_len = -1, out_len = -1, message_len = -1, code = 0;
    for (unsigned i = 0; i < fields; i++) {
        const unsigned char *key;
        long key_len = read_bytes(&r, &key);
        if (key_len < 0) fail("keycardd sent an unreadable answer: restart keycardd");
        if (key_len == 4 && !memcmp(key, "type", 4)) type_len = read_bytes(&r, &type);
        else if (key_len == 6 && !memcmp(key, "stdout", 6)) out_len = read_bytes(&r, &out);
        else if (key_len == 7 && !memcmp(key, "message", 7)) message_len = read_bytes(&r, &message);
        else if (key_len == 9 && !memcmp(key, "exit_code", 9)) { if (!read_int(&r, &code)) code = -1; }
        else fail("keycardd sent an answer this shim does not understand: update keycard-hook");
    }
    if (type_len == 5 && !memcmp(type, "error", 5) && message_len >= 0)
        fail("keycardd refused the request: %.*s", (int)(message_len < 800 ? message_len : 800), message);
    if (type_len != 11 || memcmp(type, "hook_result", 11) || out_len < 0 || code < 0 || code > 255)
        fail("keycardd sent an unreadable answer: restart keycardd");
    if (out_len && fwrite(out, 1, (size_t)out_len, stdout) != (size_t)out_len) exit(1);
    fflush(stdout);
    exit((int)code);
}

static void read_payload(buf_t *in) {
    unsigned char chunk[65536];
    for (ssize_t n; (n = read(0, chunk, sizeof chunk)) != 0;) {
        if (n < 0) { if (errno == EINTR) continue; break; }
        put(in, chunk, (size_t)n);
        if (in->len > MAX_PAYLOAD) return;
    }
}

static const char usage_line[] =
    "usage: keycard-hook claude|cursor|codex|gemini [--timeout-ms N] [--fail-open EVENT[,EVENT...]] [--no-autostart]";

/* The hook command itself is wrong: say so on stderr, and deny the agent's call (whatever --fail-open says). The
 * exit code is the one that keeps each agent's deny a deny (see the comment at the top). Never returns. */
static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...) {
    char what[MAX_REASON / 2], reason[MAX_REASON];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(reason, sizeof reason,
             "keycard-hook was run with %s: fix the hook command (see `keycard-hook --help`) or run `keycardctl "
             "install %s` again", what, agent);
    fprintf(stderr, "%s\n%s\n", reason, usage_line);
    buf_t in = {0};
    if (!isatty(0)) { read_payload(&in); find_event(&in); } /* a person at a terminal sends no payload */
    fail_open = "";
    int denied = answer_alone(reason);
    int claude_like = strcmp(agent, "cursor") && strcmp(agent, "gemini");
    exit(claude_like && !strcmp(event, "PermissionRequest") ? 0 : denied ? 2 : 1);
}

static void parse_args(int argc, char **argv) {
    int i = 1;
    if (i < argc && argv[i][0] != '-') agent = argv[i++];
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("%s\n", usage_line);
            exit(0);
        } else if (!strcmp(argv[i], "--claude")) agent = "claude";
        else if (!strcmp(argv[i], "--cursor")) agent = "cursor";
        else if (!strcmp(argv[i], "--timeout-ms")) {
            char *end = NULL;
            if (i + 1 >= argc) usage_error("no value after `%s`", argv[i]);
            timeout_ms = strtol(argv[++i], &end, 10);
            if (!*argv[i] || *end || timeout_ms <= 0)
                usage_error("`--timeout-ms %s`, which is not a positive number of milliseconds", argv[i]);
        } else if (!strcmp(argv[i], "--fail-open")) {
            if (i + 1 >= argc) usage_error("no value after `%s`", argv[i]);
            fail_open = argv[++i];
        } else if (!strcmp(argv[i], "--no-autostart")) autostart = 0;
        else if (argv[i][0] == '-') usage_error("the unknown option `%s`", argv[i]);
        else usage_error("the unexpected argument `%s`", argv[i]);
    }
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    parse_args(argc, argv);
    if (!strcmp(agent, "claude-code")) agent = "claude";
    const char *env_timeout = getenv("KEYCARD_HOOK_TIMEOUT_MS"), *env_open = getenv("KEYCARD_HOOK_FAIL_OPEN");
    const char *env_no_autostart = getenv("KEYCARD_HOOK_NO_AUTOSTART");
    if (env_timeout && *env_timeout) timeout_ms = strtol(env_timeout, NULL, 10);
    if (env_open && *env_open && !*fail_open) fail_open = env_open;
    if (env_no_autostart && *env_no_autostart && strcmp(env_no_autostart, "0")) autostart = 0;
    if (timeout_ms <= 0) timeout_ms = 2000;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) { deadline.tv_sec++; deadline.tv_nsec -= 1000000000; }

    buf_t in = {0};
    read_payload(&in);
    find_event(&in);
    if (in.len > MAX_PAYLOAD) fail("the hook payload is larger than 1 MiB, so keycardd cannot check it");
    if (strcmp(agent, "claude") && strcmp(agent, "cursor") && strcmp(agent, "codex") && strcmp(agent, "gemini"))
        fail("keycard-hook was run for an unknown agent (use claude, cursor, codex or gemini)");

    buf_t frame = {0};
    put_be(&frame, 0, 4);
    static const char *forwarded[] = {"CLAUDE_PROJECT_DIR", "CURSOR_VERSION", "GEMINI_PROJECT_DIR", "KEYCARD_RUN",
                                      "KEYCARD_RUN_SESSION_ID", "KEYCARD_CANARY", NULL};
    char cwd[PATH_MAX];
    int have_cwd = getcwd(cwd, sizeof cwd) != NULL, env_count = have_cwd;
    for (int k = 0; forwarded[k]; k++) env_count += getenv(forwarded[k]) != NULL;
    put_u8(&frame, 0x84);
    put_cstr(&frame, "type"); put_cstr(&frame, "hook");
    put_cstr(&frame, "agent"); put_cstr(&frame, agent);
    put_cstr(&frame, "payload"); put_bin(&frame, in.data ? in.data : (unsigned char *)"", in.len);
    put_cstr(&frame, "env"); put_u8(&frame, 0x80 | (unsigned)env_count);
    if (have_cwd) { put_cstr(&frame, "cwd"); put_cstr(&frame, cwd); }
    for (int k = 0; forwarded[k]; k++)
        if (getenv(forwarded[k])) { put_cstr(&frame, forwarded[k]); put_cstr(&frame, getenv(forwarded[k])); }
    uint32_t body = (uint32_t)(frame.len - 4);
    for (int k = 0; k < 4; k++) frame.data[k] = (body >> (8 * (3 - k))) & 0xff;

    char path[PATH_MAX];
    socket_path(path, sizeof path);
    int fd = connect_daemon(path, argv[0]);
    send_all(fd, frame.data, frame.len);
    unsigned char header[4];
    recv_all(fd, header, 4);
    uint32_t len = (uint32_t)header[0] << 24 | (uint32_t)header[1] << 16 | (uint32_t)header[2] << 8 | header[3];
    if (len > MAX_FRAME) fail("keycardd sent an unreadable answer: restart keycardd");
    unsigned char *reply = malloc(len ? len : 1);
    if (!reply) fail("out of memory reading keycardd's answer");
    recv_all(fd, reply, len);
    answer(reply, len);
}
