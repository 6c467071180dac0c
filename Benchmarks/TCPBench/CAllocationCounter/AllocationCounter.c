// Counts the process's heap allocations for mirage-tcp-bench.
//
// The executable defines malloc and its relatives itself; the dynamic linker
// binds every call in the process (libc's own, the Swift runtime's, ours) to
// an executable's definition before libc's, so these see every allocation.
// Each one adds 1 to a relaxed atomic counter and forwards to glibc's
// allocator through the entry points glibc exports for exactly this purpose
// (__libc_malloc & co.), so memory management is glibc's unchanged: free is
// not interposed (glibc's free takes what __libc_* handed out).
//
// Kept small on purpose: no locks, no I/O, nothing that could allocate.
// glibc only (the benchmark runs on Linux).
#include "CAllocationCounter.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

static unsigned long long allocation_count;

#define EXPORTED __attribute__((visibility("default"), used))

static inline void count_one(void) {
    __atomic_fetch_add(&allocation_count, 1, __ATOMIC_RELAXED);
}

EXPORTED void *malloc(size_t size) {
    count_one();
    return __libc_malloc(size);
}

EXPORTED void *calloc(size_t count, size_t size) {
    count_one();
    return __libc_calloc(count, size);
}

// Counted whether it grows in place, moves or frees (size 0): it is one
// call into the allocator either way.
EXPORTED void *realloc(void *pointer, size_t size) {
    count_one();
    return __libc_realloc(pointer, size);
}

EXPORTED int posix_memalign(void **result, size_t alignment, size_t size) {
    count_one();
    // POSIX: a power of two multiple of sizeof(void *), else EINVAL.
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL) return ENOMEM;
    *result = pointer;
    return 0;
}

EXPORTED void *aligned_alloc(size_t alignment, size_t size) {
    count_one();
    return __libc_memalign(alignment, size);
}

EXPORTED void *memalign(size_t alignment, size_t size) {
    count_one();
    return __libc_memalign(alignment, size);
}

uint64_t mirage_bench_allocation_count(void) {
    return __atomic_load_n(&allocation_count, __ATOMIC_RELAXED);
}
