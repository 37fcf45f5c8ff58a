#ifndef CCAIRN_H
#define CCAIRN_H

#include <stddef.h>
#include <stdint.h>

/// Raw-deflate one chunk of a parallel gzip stream (pigz's scheme).
/// `dict` (may be NULL) primes the window with the tail of the previous chunk.
/// Non-final chunks end with a sync flush (byte aligned, no final block); the final chunk
/// ends the deflate stream. Returns the number of bytes written to `out`, or -1 on error.
/// `outCap` must be at least cairn_deflate_bound(inLen).
long cairn_deflate_chunk(int level,
                         const uint8_t *dict, size_t dictLen,
                         const uint8_t *in, size_t inLen,
                         int isFinal,
                         uint8_t *out, size_t outCap);
size_t cairn_deflate_bound(size_t inLen);
uint32_t cairn_crc32(uint32_t crc, const uint8_t *buf, size_t len);
uint32_t cairn_crc32_combine(uint32_t crc1, uint32_t crc2, int64_t len2);

/// Streaming inflate for gzip (windowBits 15+16, multi-member aware by the caller).
typedef struct cairn_inflate cairn_inflate;
cairn_inflate *cairn_inflate_new(void);
void cairn_inflate_free(cairn_inflate *s);
/// Feeds input, produces output. Returns 0 = ok/more, 1 = stream end, <0 = error.
/// *consumed and *produced report progress.
int cairn_inflate_step(cairn_inflate *s, const uint8_t *in, size_t inLen, size_t *consumed,
                       uint8_t *out, size_t outCap, size_t *produced);
int cairn_inflate_reset(cairn_inflate *s);

/// Streaming zstd compression with libzstd's own worker threads.
typedef struct cairn_zstd_c cairn_zstd_c;
cairn_zstd_c *cairn_zstd_c_new(int level, int workers);
void cairn_zstd_c_free(cairn_zstd_c *s);
/// mode: 0 continue, 2 end. Returns remaining-to-flush (>=0) or <0 on error.
/// Caller loops until input consumed (and for end, until return is 0).
long cairn_zstd_c_step(cairn_zstd_c *s, const uint8_t *in, size_t inLen, size_t *consumed,
                       uint8_t *out, size_t outCap, size_t *produced, int mode);
size_t cairn_zstd_c_out_size(void);

typedef struct cairn_zstd_d cairn_zstd_d;
cairn_zstd_d *cairn_zstd_d_new(void);
void cairn_zstd_d_free(cairn_zstd_d *s);
/// Returns 0 when a frame is complete, >0 when more input is expected, <0 on error.
long cairn_zstd_d_step(cairn_zstd_d *s, const uint8_t *in, size_t inLen, size_t *consumed,
                       uint8_t *out, size_t outCap, size_t *produced);

/// Device numbers (glibc macros, not importable).
uint32_t cairn_dev_major(uint64_t dev);
uint32_t cairn_dev_minor(uint64_t dev);
uint64_t cairn_dev_makedev(uint32_t major, uint32_t minor);

/// 1 when the overlayfs upper directory `path` is opaque (`trusted.overlay.opaque` or
/// `user.overlay.opaque` is "y"), else 0.
int cairn_overlay_opaque(const char *path);

/// Starts `path` with `argv`/`envp` (NULL-terminated) in `cwd`. When `uid`/`gid` are >= 0 the
/// child drops to them (supplementary groups cleared) before exec. `fds` maps child fd i (0..n-1)
/// to the parent's fds[i] (-1: /dev/null). Returns the pid, or -1 with *err set to the errno of
/// the step that failed in the child (exec, chdir, setuid, ...), *stage naming it (1 chdir,
/// 2 setgroups/setgid, 3 setuid, 4 exec, 5 fork, 6 dup2, 7 setrlimit). `nproc` > 0 limits the
/// processes of the child's user (RLIMIT_NPROC, checked at every fork of it and its descendants).
int cairn_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
                int uid, int gid, long nproc, const int *fds, int nfds, int *err, int *stage);
/// Waits for `pid`; returns its exit code, or 128+signal when killed by a signal.
int cairn_wait(int pid);
/// Blocks until `pid` has exited without reaping it (waitid WNOWAIT), so that nothing can reuse
/// its pid while the caller still may signal it. Returns 0, or -1 with errno.
int cairn_await_exit(int pid);
/// pipe2(fds, O_CLOEXEC): both ends close-on-exec from the start, so a child spawned at the same
/// moment by another thread cannot inherit them.
int cairn_pipe_cloexec(int fds[2]);

/// Sets the "top of directory hierarchy" attribute (chattr +T, FS_TOPDIR_FL) on the directory
/// `path`: ext4's Orlov allocator then spreads its subdirectories over the block groups. Returns
/// 0, or -1 with errno (a file system without the attribute says ENOTTY or EOPNOTSUPP).
int cairn_set_topdir(const char *path);

#endif
