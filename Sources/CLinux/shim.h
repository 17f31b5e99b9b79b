#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

/// Exchanges two paths atomically: Linux `renameat2(2)` with `RENAME_EXCHANGE` (which Glibc's
/// Swift module does not declare). Both must exist, on one filesystem. Returns 0, or -1 and errno.
static inline int sluice_rename_exchange(const char *first, const char *second) {
    return (int)syscall(SYS_renameat2, AT_FDCWD, first, AT_FDCWD, second, 2 /* RENAME_EXCHANGE */);
}

/// Processors this process may run on (its CPU affinity mask, as `taskset` sets it), or 0 when
/// it cannot be read. `sched_getaffinity` and `CPU_COUNT` need `_GNU_SOURCE`, which Swift's Glibc
/// module does not define, so the call is made here.
static inline int sluice_affinity_processor_count(void) {
    unsigned long mask[16] = {0};
    long n = syscall(SYS_sched_getaffinity, 0, sizeof(mask), mask);
    if (n <= 0) return 0;
    int count = 0;
    for (long i = 0; i < n / (long)sizeof(unsigned long); i++) count += __builtin_popcountl(mask[i]);
    return count;
}

/// Starts writing back the dirty pages of `fd` in `[offset, offset + count)` without waiting for
/// them (`sync_file_range(2)` with `SYNC_FILE_RANGE_WRITE`), so that a later `fsync` has less left
/// to wait for. A hint: it makes nothing durable. Returns 0, or -1 and errno. The argument order
/// is the one of 64-bit Linux (x86_64, aarch64); 32-bit ARM has `sync_file_range2` instead.
static inline int sluice_start_writeback(int fd, long long offset, long long count) {
    return (int)syscall(SYS_sync_file_range, fd, (off_t)offset, (off_t)count, 2 /* SYNC_FILE_RANGE_WRITE */);
}

/// Asks the processor to start loading the cache line at `address` for reading, so that a later
/// load of it (a filter probe some keys ahead) finds it in cache. A hint; never faults.
static inline void sluice_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

/// As `sluice_prefetch`, for a line about to be written (a bit set some keys later).
static inline void sluice_prefetch_write(const void *address) {
    __builtin_prefetch(address, 1, 3);
}
