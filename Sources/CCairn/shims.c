#define _GNU_SOURCE
#include "CCairn.h"
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include <sys/sysmacros.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef SYS_close_range
#define SYS_close_range 436 /* the same number on every Linux architecture */
#endif
#include <sys/xattr.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <unistd.h>

int cairn_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
                int uid, int gid, long nproc, const int *fds, int nfds, int *err, int *stage) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) { *err = errno; *stage = 5; return -1; }
    pid_t pid = fork();
    if (pid < 0) { *err = errno; *stage = 5; close(report[0]); close(report[1]); return -1; }
    if (pid == 0) {
        /* Child: only async-signal-safe calls from here on. */
        int failure[2] = {0, 0};
        int devnull = -1;
        /* Move the parent's fds out of the 0..nfds-1 range first so dup2 cannot clobber them. */
        int moved[16];
        if (nfds > 16) nfds = 16;
        for (int i = 0; i < nfds; i++) {
            int fd = fds[i];
            if (fd < 0) {
                if (devnull < 0) devnull = open("/dev/null", O_RDWR);
                fd = devnull;
            }
            moved[i] = fcntl(fd, F_DUPFD, 64);
            if (moved[i] < 0) { failure[0] = errno; failure[1] = 6; goto fail; }
        }
        for (int i = 0; i < nfds; i++) {
            if (dup2(moved[i], i) < 0) { failure[0] = errno; failure[1] = 6; goto fail; }
        }
        for (int i = 0; i < nfds; i++) close(moved[i]);
        if (devnull >= nfds) close(devnull);
        /* No descriptor of the parent other than 0..nfds-1 reaches the new program, whether or
           not whoever opened it asked for close-on-exec (the report pipe is close-on-exec). */
        if (syscall(SYS_close_range, (unsigned)nfds, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
            long max = sysconf(_SC_OPEN_MAX);
            if (max < 0 || max > 65536) max = 65536;
            for (int fd = nfds; fd < max; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
        /* Default signal dispositions and an empty mask for the new program: an ignored signal
           stays ignored across exec, and this process ignores SIGINT/SIGTERM to forward them. */
        sigset_t none; sigemptyset(&none); sigprocmask(SIG_SETMASK, &none, NULL);
        struct sigaction dfl; memset(&dfl, 0, sizeof dfl); dfl.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; sig++) {
            if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, NULL);
        }
        if (nproc > 0) {
            struct rlimit limit = { (rlim_t)nproc, (rlim_t)nproc };
            if (setrlimit(RLIMIT_NPROC, &limit) != 0) { failure[0] = errno; failure[1] = 7; goto fail; }
        }
        if (gid >= 0) {
            if (setgroups(0, NULL) != 0 && errno != EPERM) { failure[0] = errno; failure[1] = 2; goto fail; }
            if (setgid((gid_t)gid) != 0) { failure[0] = errno; failure[1] = 2; goto fail; }
        }
        if (uid >= 0) {
            if (setuid((uid_t)uid) != 0) { failure[0] = errno; failure[1] = 3; goto fail; }
        }
        if (cwd && chdir(cwd) != 0) { failure[0] = errno; failure[1] = 1; goto fail; }
        execve(path, argv, envp);
        failure[0] = errno; failure[1] = 4;
    fail:
        (void)!write(report[1], failure, sizeof failure);
        _exit(127);
    }
    close(report[1]);
    int failure[2] = {0, 0};
    ssize_t n;
    do { n = read(report[0], failure, sizeof failure); } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == (ssize_t)sizeof failure) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        *err = failure[0]; *stage = failure[1];
        return -1;
    }
    return pid;
}

int cairn_wait(int pid) {
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

int cairn_await_exit(int pid) {
    siginfo_t info;
    while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) < 0) {
        if (errno != EINTR) return -1;
    }
    return 0;
}

int cairn_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

uint32_t cairn_dev_major(uint64_t dev) { return major(dev); }
uint32_t cairn_dev_minor(uint64_t dev) { return minor(dev); }
uint64_t cairn_dev_makedev(uint32_t ma, uint32_t mi) { return makedev(ma, mi); }

int cairn_overlay_opaque(const char *path) {
    const char *names[] = {"trusted.overlay.opaque", "user.overlay.opaque"};
    for (int i = 0; i < 2; i++) {
        char value = 0;
        if (lgetxattr(path, names[i], &value, 1) == 1 && value == 'y') return 1;
    }
    return 0;
}

size_t cairn_deflate_bound(size_t inLen) {
    /* deflateBound for raw streams plus room for the sync marker and final block. */
    return inLen + (inLen >> 12) + (inLen >> 14) + (inLen >> 25) + 64;
}

long cairn_deflate_chunk(int level, const uint8_t *dict, size_t dictLen,
                         const uint8_t *in, size_t inLen, int isFinal,
                         uint8_t *out, size_t outCap) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) return -1;
    if (dict && dictLen > 0) {
        if (deflateSetDictionary(&zs, dict, (uInt)dictLen) != Z_OK) { deflateEnd(&zs); return -1; }
    }
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)inLen;
    zs.next_out = out;
    zs.avail_out = (uInt)outCap;
    int flush = isFinal ? Z_FINISH : Z_SYNC_FLUSH;
    int rc = deflate(&zs, flush);
    long produced = (long)(outCap - zs.avail_out);
    int ok = isFinal ? (rc == Z_STREAM_END) : (rc == Z_OK && zs.avail_in == 0);
    deflateEnd(&zs);
    return ok ? produced : -1;
}

uint32_t cairn_crc32(uint32_t crc, const uint8_t *buf, size_t len) {
    while (len > 0) {
        uInt n = len > 0x40000000 ? 0x40000000 : (uInt)len;
        crc = (uint32_t)crc32(crc, buf, n);
        buf += n; len -= n;
    }
    return crc;
}

uint32_t cairn_crc32_combine(uint32_t crc1, uint32_t crc2, int64_t len2) {
    return (uint32_t)crc32_combine(crc1, crc2, (z_off_t)len2);
}

struct cairn_inflate { z_stream zs; };

cairn_inflate *cairn_inflate_new(void) {
    cairn_inflate *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (inflateInit2(&s->zs, 15 + 16) != Z_OK) { free(s); return NULL; }
    return s;
}
void cairn_inflate_free(cairn_inflate *s) { if (s) { inflateEnd(&s->zs); free(s); } }
int cairn_inflate_reset(cairn_inflate *s) { return inflateReset(&s->zs) == Z_OK ? 0 : -1; }

int cairn_inflate_step(cairn_inflate *s, const uint8_t *in, size_t inLen, size_t *consumed,
                       uint8_t *out, size_t outCap, size_t *produced) {
    s->zs.next_in = (Bytef *)in;
    s->zs.avail_in = (uInt)inLen;
    s->zs.next_out = out;
    s->zs.avail_out = (uInt)outCap;
    int rc = inflate(&s->zs, Z_NO_FLUSH);
    *consumed = inLen - s->zs.avail_in;
    *produced = outCap - s->zs.avail_out;
    if (rc == Z_STREAM_END) return 1;
    if (rc == Z_OK) return 0;
    if (rc == Z_BUF_ERROR) return (*consumed == 0 && *produced == 0 && inLen > 0) ? -1 : 0;
    return -1;
}

struct cairn_zstd_c { ZSTD_CCtx *c; };

cairn_zstd_c *cairn_zstd_c_new(int level, int workers) {
    cairn_zstd_c *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->c = ZSTD_createCCtx();
    if (!s->c) { free(s); return NULL; }
    ZSTD_CCtx_setParameter(s->c, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(s->c, ZSTD_c_checksumFlag, 1);
    /* nbWorkers >= 1 gives output independent of the worker count (zstd.h), so the
       digest does not depend on the machine's core count. */
    if (workers < 1) workers = 1;
    if (ZSTD_isError(ZSTD_CCtx_setParameter(s->c, ZSTD_c_nbWorkers, workers))) {
        ZSTD_freeCCtx(s->c); free(s); return NULL;
    }
    return s;
}
void cairn_zstd_c_free(cairn_zstd_c *s) { if (s) { ZSTD_freeCCtx(s->c); free(s); } }
size_t cairn_zstd_c_out_size(void) { return ZSTD_CStreamOutSize(); }

long cairn_zstd_c_step(cairn_zstd_c *s, const uint8_t *in, size_t inLen, size_t *consumed,
                       uint8_t *out, size_t outCap, size_t *produced, int mode) {
    ZSTD_inBuffer ib = { in, inLen, 0 };
    ZSTD_outBuffer ob = { out, outCap, 0 };
    size_t rc = ZSTD_compressStream2(s->c, &ob, &ib, mode == 2 ? ZSTD_e_end : ZSTD_e_continue);
    *consumed = ib.pos;
    *produced = ob.pos;
    if (ZSTD_isError(rc)) return -1;
    return (long)rc;
}

struct cairn_zstd_d { ZSTD_DCtx *d; };
cairn_zstd_d *cairn_zstd_d_new(void) {
    cairn_zstd_d *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->d = ZSTD_createDCtx();
    if (!s->d) { free(s); return NULL; }
    return s;
}
void cairn_zstd_d_free(cairn_zstd_d *s) { if (s) { ZSTD_freeDCtx(s->d); free(s); } }
long cairn_zstd_d_step(cairn_zstd_d *s, const uint8_t *in, size_t inLen, size_t *consumed,
                       uint8_t *out, size_t outCap, size_t *produced) {
    ZSTD_inBuffer ib = { in, inLen, 0 };
    ZSTD_outBuffer ob = { out, outCap, 0 };
    size_t rc = ZSTD_decompressStream(s->d, &ob, &ib);
    *consumed = ib.pos;
    *produced = ob.pos;
    if (ZSTD_isError(rc)) return -1;
    return (long)rc;
}

int cairn_set_topdir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int flags = 0;
    int r = ioctl(fd, FS_IOC_GETFLAGS, &flags);
    if (r == 0 && !(flags & FS_TOPDIR_FL)) {
        flags |= FS_TOPDIR_FL;
        r = ioctl(fd, FS_IOC_SETFLAGS, &flags);
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return r;
}
