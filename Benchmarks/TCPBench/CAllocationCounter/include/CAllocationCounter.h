#ifndef C_ALLOCATION_COUNTER_H
#define C_ALLOCATION_COUNTER_H

#include <stdint.h>

/// Allocation calls (malloc, calloc, realloc, posix_memalign, aligned_alloc,
/// memalign) made by the whole process so far, every thread included.
/// Read it before and after the measured work and subtract.
uint64_t mirage_bench_allocation_count(void);

#endif
