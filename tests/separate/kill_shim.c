// Fault injection for the `separate` interruption tests, loaded with
// LD_PRELOAD into the separate binary (built for the tests only, never
// installed). patchmgr's shim (tests/patchmgr/kill_shim.c) counts every call
// that changes the file system; this one counts one kind of call, so that a
// test can stop a run at each rename, each fsync, or a chosen write of a
// stem's samples, whatever libtorch and the progress bar do meanwhile:
//
//   STEMKIT_KILL_CALL=rename|fsync|write|unlink   the kind counted
//                    (write: to a descriptor above 2, not stdout or stderr;
//                     unlink: unlink, unlinkat and remove)
//   STEMKIT_KILL_AT=k                  SIGKILL just before the k-th one (1-based)
//   STEMKIT_CALL_COUNT_FILE=path       at a normal exit (exit, or the _Exit separate ends
//                                      with), write how many were made
//
// A kill before a call is the same as a kill after the previous one, so k = 1
// .. count + 1 covers every boundary between them.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static atomic_long count;

static void count_call(const char* kind) {
  const char* counted = getenv("STEMKIT_KILL_CALL");
  if (!counted || strcmp(counted, kind) != 0) return;
  const long n = atomic_fetch_add(&count, 1) + 1;
  const char* at = getenv("STEMKIT_KILL_AT");
  if (at && atol(at) == n) kill(getpid(), SIGKILL);
}

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

int rename(const char* a, const char* b) {
  count_call("rename");
  return REAL(rename)(a, b);
}
int renameat(int da, const char* a, int db, const char* b) {
  count_call("rename");
  return REAL(renameat)(da, a, db, b);
}
int renameat2(int da, const char* a, int db, const char* b, unsigned f) {
  count_call("rename");
  return REAL(renameat2)(da, a, db, b, f);
}
int fsync(int fd) {
  count_call("fsync");
  return REAL(fsync)(fd);
}
int fdatasync(int fd) {
  count_call("fsync");
  return REAL(fdatasync)(fd);
}
ssize_t write(int fd, const void* buf, size_t n) {
  if (fd > 2) count_call("write");
  return REAL(write)(fd, buf, n);
}
ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  if (fd > 2) count_call("write");
  return REAL(pwrite)(fd, buf, n, off);
}
ssize_t writev(int fd, const struct iovec* iov, int n) {
  if (fd > 2) count_call("write");
  return REAL(writev)(fd, iov, n);
}
int unlink(const char* p) {
  count_call("unlink");
  return REAL(unlink)(p);
}
int unlinkat(int d, const char* p, int f) {
  count_call("unlink");
  return REAL(unlinkat)(d, p, f);
}
int remove(const char* p) {
  count_call("unlink");
  return REAL(remove)(p);
}

__attribute__((destructor)) static void report_count(void) {
  const char* file = getenv("STEMKIT_CALL_COUNT_FILE");
  if (!file) return;
  FILE* f = fopen(file, "w");  // glibc's internal open and write: not counted
  if (!f) return;
  fprintf(f, "%ld\n", atomic_load(&count));
  fclose(f);
}

// separate ends with _Exit (no static destructors): report there too.
__attribute__((noreturn)) void _Exit(int status) {
  report_count();
  REAL(_Exit)(status);
  for (;;) {
  }
}
