/* An LD_PRELOAD shim that makes real write/fsync calls fail, for the storage-fault torture.
 *
 *   BEDSIDE_FAULT="OP:N:COUNT:ERRNO:PATH" LD_PRELOAD=./faultfs.so python ...
 *
 * OP is "fsync" (fsync and fdatasync) or "write" (write, pwrite, pwrite64). Among the calls
 * of that kind on files whose path contains PATH, calls N to N+COUNT-1 (counting from 1)
 * fail with ERRNO (EIO, ENOSPC or EROFS) without doing anything; all other calls go to libc
 * untouched. So SQLite and Python see exactly what a failing card would give them.
 *
 * With BEDSIDE_COUNT=FILE it also counts, for the benchmark, the fsync-class and write-class
 * calls on matching files and writes "fsync N write M" to FILE when the process exits.
 *
 * Build: cc -shared -fPIC -o faultfs.so faultfs.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int configured = 0;
static char op[16];
static long first = 0, count = 0, seen = 0;
static int err = EIO;
static char path_part[256];
static long counted_fsync = 0, counted_write = 0;

__attribute__((destructor)) static void report(void) {
    const char *out = getenv("BEDSIDE_COUNT");
    if (!out) return;
    FILE *f = fopen(out, "w");
    if (!f) return;
    fprintf(f, "fsync %ld write %ld\n", counted_fsync, counted_write);
    fclose(f);
}

static void configure(void) {
    if (configured) return;
    configured = 1;
    const char *spec = getenv("BEDSIDE_FAULT");
    if (!spec) return;
    char name[16] = {0};
    if (sscanf(spec, "%15[^:]:%ld:%ld:%15[^:]:%255s", op, &first, &count, name, path_part) < 4) {
        /* No fault: only counting (the path filter may still be given as BEDSIDE_FAULT=count::::PATH). */
        op[0] = 0;
        return;
    }
    if (strcmp(name, "ENOSPC") == 0) err = ENOSPC;
    else if (strcmp(name, "EROFS") == 0) err = EROFS;
    else err = EIO;
}

static int matches(int fd) {
    char link[64], target[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n < 0) return 0;
    target[n] = 0;
    return path_part[0] == 0 || strstr(target, path_part) != NULL;
}

/* 1 if this call (of kind `kind`, on `fd`) must fail. */
static int inject(const char *kind, int fd) {
    configure();
    if (getenv("BEDSIDE_COUNT") && matches(fd)) {
        if (strcmp(kind, "fsync") == 0) counted_fsync++; else counted_write++;
    }
    if (op[0] == 0 || strcmp(op, kind) != 0 || !matches(fd)) return 0;
    seen++;
    return seen >= first && seen < first + count;
}

#define REAL(type, name, args) \
    static type (*real_##name) args = NULL; \
    if (!real_##name) real_##name = (type (*) args) dlsym(RTLD_NEXT, #name);

int fsync(int fd) {
    REAL(int, fsync, (int))
    if (inject("fsync", fd)) { errno = err; return -1; }
    return real_fsync(fd);
}

int fdatasync(int fd) {
    REAL(int, fdatasync, (int))
    if (inject("fsync", fd)) { errno = err; return -1; }
    return real_fdatasync(fd);
}

ssize_t write(int fd, const void *buf, size_t n) {
    REAL(ssize_t, write, (int, const void *, size_t))
    if (inject("write", fd)) { errno = err; return -1; }
    return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    REAL(ssize_t, pwrite, (int, const void *, size_t, off_t))
    if (inject("write", fd)) { errno = err; return -1; }
    return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
    REAL(ssize_t, pwrite64, (int, const void *, size_t, off_t))
    if (inject("write", fd)) { errno = err; return -1; }
    return real_pwrite64(fd, buf, n, off);
}
