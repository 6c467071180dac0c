/* Host entry for the Embedded check programs built for
 * x86_64-unknown-linux-gnu (Scripts/check-embedded): libc provides the
 * allocator, putchar and arc4random_buf. */
extern int mirage_main(void);

int main(void) { return mirage_main(); }
