// Fault injection for the recovery tests, loaded with LD_PRELOAD into the
// patchmgr binary (built for the tests only, never installed).
//
// It counts every call that changes the file system (open for writing,
// write, rename, unlink, mkdir, rmdir, truncate, fsync, symlink, chmod...),
// patchmgr's own and libgit2's alike, and kills the process with SIGKILL just
// before the k-th one, so a test can stop a run between any two of them:
//
//   PATCHMGR_KILL_AT_OP=k        die before the k-th such call (1-based)
//   PATCHMGR_OP_COUNT_FILE=path  at a normal exit, write the number of calls made there
//
// A kill before a call is the same as a kill after the previous one, so k = 1
// .. count+1 covers every boundary of a run.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static long kill_at = -1;  // -1: not read yet, 0: never
static long count = 0;

static void count_op(void) {
  if (kill_at < 0) {
    const char* k = getenv("PATCHMGR_KILL_AT_OP");
    kill_at = k ? atol(k) : 0;
  }
  if (++count == kill_at) kill(getpid(), SIGKILL);
}

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

static int writes(int flags) { return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND)) != 0; }

#define OPEN_LIKE(name)                                       \
  int name(const char* path, int flags, ...) {                \
    mode_t mode = 0;                                          \
    if (flags & (O_CREAT | O_TMPFILE)) {                      \
      va_list ap;                                             \
      va_start(ap, flags);                                    \
      mode = va_arg(ap, mode_t);                              \
      va_end(ap);                                             \
    }                                                         \
    if (writes(flags)) count_op();                            \
    return REAL(name)(path, flags, mode);                     \
  }
OPEN_LIKE(open)
OPEN_LIKE(open64)

#define OPENAT_LIKE(name)                                     \
  int name(int dir, const char* path, int flags, ...) {       \
    mode_t mode = 0;                                          \
    if (flags & (O_CREAT | O_TMPFILE)) {                      \
      va_list ap;                                             \
      va_start(ap, flags);                                    \
      mode = va_arg(ap, mode_t);                              \
      va_end(ap);                                             \
    }                                                         \
    if (writes(flags)) count_op();                            \
    return REAL(name)(dir, path, flags, mode);                \
  }
OPENAT_LIKE(openat)
OPENAT_LIKE(openat64)

// The _FORTIFY_SOURCE forms of open.
int __open_2(const char* path, int flags) {
  if (writes(flags)) count_op();
  return ((int (*)(const char*, int))dlsym(RTLD_NEXT, "__open_2"))(path, flags);
}
int __open64_2(const char* path, int flags) {
  if (writes(flags)) count_op();
  return ((int (*)(const char*, int))dlsym(RTLD_NEXT, "__open64_2"))(path, flags);
}
int __openat_2(int dir, const char* path, int flags) {
  if (writes(flags)) count_op();
  return ((int (*)(int, const char*, int))dlsym(RTLD_NEXT, "__openat_2"))(dir, path, flags);
}

int creat(const char* path, mode_t mode) { count_op(); return REAL(creat)(path, mode); }
ssize_t write(int fd, const void* buf, size_t n) { count_op(); return REAL(write)(fd, buf, n); }
ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) { count_op(); return REAL(pwrite)(fd, buf, n, off); }
ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t off) { count_op(); return REAL(pwrite64)(fd, buf, n, off); }
ssize_t writev(int fd, const struct iovec* iov, int n) { count_op(); return REAL(writev)(fd, iov, n); }
int rename(const char* a, const char* b) { count_op(); return REAL(rename)(a, b); }
int renameat(int da, const char* a, int db, const char* b) { count_op(); return REAL(renameat)(da, a, db, b); }
int renameat2(int da, const char* a, int db, const char* b, unsigned f) { count_op(); return REAL(renameat2)(da, a, db, b, f); }
int unlink(const char* p) { count_op(); return REAL(unlink)(p); }
int unlinkat(int d, const char* p, int f) { count_op(); return REAL(unlinkat)(d, p, f); }
int remove(const char* p) { count_op(); return REAL(remove)(p); }
int mkdir(const char* p, mode_t m) { count_op(); return REAL(mkdir)(p, m); }
int mkdirat(int d, const char* p, mode_t m) { count_op(); return REAL(mkdirat)(d, p, m); }
int rmdir(const char* p) { count_op(); return REAL(rmdir)(p); }
int truncate(const char* p, off_t l) { count_op(); return REAL(truncate)(p, l); }
int ftruncate(int fd, off_t l) { count_op(); return REAL(ftruncate)(fd, l); }
int ftruncate64(int fd, off64_t l) { count_op(); return REAL(ftruncate64)(fd, l); }
int fsync(int fd) { count_op(); return REAL(fsync)(fd); }
int fdatasync(int fd) { count_op(); return REAL(fdatasync)(fd); }
int symlink(const char* a, const char* b) { count_op(); return REAL(symlink)(a, b); }
int symlinkat(const char* a, int d, const char* b) { count_op(); return REAL(symlinkat)(a, d, b); }
int link(const char* a, const char* b) { count_op(); return REAL(link)(a, b); }
int linkat(int da, const char* a, int db, const char* b, int f) { count_op(); return REAL(linkat)(da, a, db, b, f); }
int chmod(const char* p, mode_t m) { count_op(); return REAL(chmod)(p, m); }
int fchmod(int fd, mode_t m) { count_op(); return REAL(fchmod)(fd, m); }
int fchmodat(int d, const char* p, mode_t m, int f) { count_op(); return REAL(fchmodat)(d, p, m, f); }

__attribute__((destructor)) static void report_count(void) {
  const char* file = getenv("PATCHMGR_OP_COUNT_FILE");
  if (!file) return;
  FILE* f = fopen(file, "w");  // glibc's internal open and write: not counted
  if (!f) return;
  fprintf(f, "%ld\n", count);
  fclose(f);
}
