// Linux pipe calls that glibc declares only under _GNU_SOURCE, which Swift's Glibc module is
// not built with; the symbols themselves are in every glibc since 2.5.
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __linux__
extern ssize_t vmsplice(int fd, const struct iovec *iov, size_t nr_segs, unsigned int flags);
extern ssize_t splice(int fd_in, off_t *off_in, int fd_out, off_t *off_out, size_t len, unsigned int flags);

/// fcntl commands for a pipe's capacity (linux/fcntl.h).
static const int shiplog_F_SETPIPE_SZ = 1031;
static const int shiplog_F_GETPIPE_SZ = 1032;
#endif

// glibc's allocator tuning (`shiplog serve`'s ServeMemory); malloc.h is not in Swift's Glibc module.
#if defined(__linux__) && defined(__GLIBC__)
#include <malloc.h>
#endif
