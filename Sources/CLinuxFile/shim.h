// Linux file calls that glibc declares only under _GNU_SOURCE, which Swift's Glibc module is
// not built with; the symbols themselves are in every glibc since 2.6.
#include <stdint.h>
#include <sys/types.h>

#ifdef __linux__
extern int sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags);

/// sync_file_range's flag that starts write-out of the range's dirty pages and returns without
/// waiting for it (linux/fs.h).
static const unsigned int shiplog_SYNC_FILE_RANGE_WRITE = 2;
#endif
