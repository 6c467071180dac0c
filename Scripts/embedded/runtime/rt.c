/* Minimal runtime for the Embedded check programs (Scripts/check-embedded).
 *
 * Built with `clang -target x86_64-unknown-none-elf -ffreestanding`: no libc.
 * It supplies what the Embedded Swift stdlib and the core objects import
 * (allocation, mem*, putchar, abort, the stack protector, arc4random_buf,
 * ceil). Console output and exit use the Linux x86-64 system-call ABI, so the
 * bare-metal ELF can also be run as a static Linux process by the check; a
 * unikernel supplies its own console, allocator and entropy instead.
 */

typedef unsigned long size_t;
typedef unsigned long uintptr_t;

extern int mirage_main(void);

/* ---- system calls (Linux x86-64 ABI) ---- */

static long sys3(long n, long a, long b, long c) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

static void write_all(const char *p, size_t n) {
    while (n > 0) {
        long w = sys3(1 /* write */, 1, (long)p, (long)n);
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

__attribute__((noreturn)) static void sys_exit(int code) {
    for (;;) sys3(231 /* exit_group */, code, 0, 0);
}

/* ---- memory ---- */

int memcmp(const void *a, const void *b, size_t n) {
    const volatile unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    return 0;
}

/* volatile stores keep clang from turning these loops back into calls to
 * themselves. */
void *memset(void *d, int c, size_t n) {
    volatile unsigned char *p = d;
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)c;
    return d;
}

void *memcpy(void *d, const void *s, size_t n) {
    volatile unsigned char *p = d;
    const unsigned char *q = s;
    for (size_t i = 0; i < n; i++) p[i] = q[i];
    return d;
}

void *memmove(void *d, const void *s, size_t n) {
    volatile unsigned char *p = d;
    const unsigned char *q = s;
    if (p < q) {
        for (size_t i = 0; i < n; i++) p[i] = q[i];
    } else {
        for (size_t i = n; i > 0; i--) p[i - 1] = q[i - 1];
    }
    return d;
}

size_t strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

/* A bump allocator over a static heap; free() does not reclaim. The check
 * programs are short and allocate little. */
#define HEAP_SIZE (64UL << 20)
static unsigned char heap[HEAP_SIZE] __attribute__((aligned(4096)));
static size_t heap_used;

int posix_memalign(void **out, size_t align, size_t size) {
    if (align < sizeof(void *)) align = sizeof(void *);
    if (align & (align - 1)) return 22; /* EINVAL */
    uintptr_t base = (uintptr_t)heap;
    uintptr_t p = (base + heap_used + align - 1) & ~(uintptr_t)(align - 1);
    if (size > HEAP_SIZE || p - base > HEAP_SIZE - size) return 12; /* ENOMEM */
    heap_used = p - base + size;
    *out = (void *)p;
    return 0;
}

void *malloc(size_t size) {
    void *p = 0;
    return posix_memalign(&p, 16, size) == 0 ? p : 0;
}

void free(void *p) { (void)p; }

/* ---- console, failure, entropy, math ---- */

int putchar(int c) {
    char ch = (char)c;
    write_all(&ch, 1);
    return (unsigned char)c;
}

__attribute__((noreturn)) void abort(void) {
    write_all("abort\n", 6);
    sys_exit(134);
}

unsigned long __stack_chk_guard = 0x595e9fbd94fda766UL;

__attribute__((noreturn)) void __stack_chk_fail(void) {
    write_all("stack smashing detected\n", 24);
    sys_exit(134);
}

/* Hash seeds only: deterministic is fine (and makes runs reproducible). */
void arc4random_buf(void *buf, size_t n) {
    static unsigned long s = 0x9E3779B97F4A7C15UL;
    unsigned char *p = buf;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        p[i] = (unsigned char)s;
    }
}

double ceil(double x) {
    /* |x| >= 2^52 (or NaN/inf): already integral. */
    if (!(x > -4503599627370496.0 && x < 4503599627370496.0)) return x;
    double t = (double)(long)x;
    if (t < x) t += 1.0;
    return t == 0.0 && x < 0.0 ? -0.0 : t;
}

/* ---- entry ---- */

__attribute__((noreturn, used)) void mirage_rt_start(void) {
    sys_exit(mirage_main());
}

/* The kernel enters with %rsp 16-byte aligned and no return address; align
 * explicitly and call into C. */
__asm__(".text\n"
        ".globl _start\n"
        "_start:\n"
        "  xor %ebp, %ebp\n"
        "  and $-16, %rsp\n"
        "  call mirage_rt_start\n"
        "  hlt\n");
