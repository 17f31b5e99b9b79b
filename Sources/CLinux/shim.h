#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

/// Exchanges two paths atomically: Linux `renameat2(2)` with `RENAME_EXCHANGE` (which Glibc's
/// Swift module does not declare). Both must exist, on one filesystem. Returns 0, or -1 and errno.
static inline int sluice_rename_exchange(const char *first, const char *second) {
    return (int)syscall(SYS_renameat2, AT_FDCWD, first, AT_FDCWD, second, 2 /* RENAME_EXCHANGE */);
}
