/*
 * tls-load: the client side of Scripts/bench-tls, one program for every
 * server measured (mirage-tls-bench and openssl s_server), built by the
 * script with the system's OpenSSL (libssl-dev):
 *
 *   cc -O2 -pthread -o tls-load tls-load.c -lssl -lcrypto
 *
 * Why not `openssl s_time`: it runs one connection at a time (the server
 * waits for the client between handshakes, so it is never the bottleneck)
 * and counts whole seconds (`-time 3` reports "in 4 real seconds"). Here
 * THREADS threads each run connections back to back for exactly SECONDS
 * seconds of CLOCK_MONOTONIC, so with a few threads the server always has
 * a handshake waiting.
 *
 * Modes (one result line each, `result key=value ...`, on stdout):
 *   new     full handshakes: connect, handshake, close_notify, read to EOF
 *           (the server's close_notify and FIN; TLS 1.3 session tickets
 *           are read and dropped), close. No session is offered.
 *   reuse   the same, offering the session (TLS 1.3 ticket or TLS 1.2
 *           ticket/ID) the previous connection of the thread received; the
 *           first connection of each thread is a full one and is not
 *           counted. `reused=` counts the connections the server resumed.
 *   bulk    one connection: handshake, send REQUEST, read to EOF into a
 *           64 KiB buffer (discarded); the clock runs from the request to
 *           EOF. Prints bytes and MB/s (10^6 bytes per second).
 *   idle    COUNT connections, handshake completed, held open: prints
 *           `ready`, then waits for its standard input to close.
 *
 * Certificates are not verified (as s_time by default): the benchmark
 * measures the server, and verification is the client's cost.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *host = "127.0.0.1";
static int port = 4433;
static const char *mode = "new";
static int threads = 1;
static double seconds = 5;
static int count = 100;
static const char *ciphersuites = NULL; /* TLS 1.3 */
static const char *cipher = NULL;       /* TLS 1.2 */
static int tls12 = 0;
static const char *request = "GET /bulk HTTP/1.0\r\n\r\n";
static SSL_CTX *context;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int open_socket(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    inet_pton(AF_INET, host, &address.sin_addr);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* A server that stops answering fails the connection, not the run. */
    struct timeval timeout = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The newest session a thread's connections received (reuse mode). */
struct worker {
    pthread_t thread;
    SSL_SESSION *session;
    long connections, reused, errors;
    double elapsed;
};

static int session_index;

static int new_session(SSL *ssl, SSL_SESSION *session) {
    struct worker *w = SSL_get_ex_data(ssl, session_index);
    if (!w) return 0;
    if (w->session) SSL_SESSION_free(w->session);
    w->session = session;
    return 1; /* we keep the reference */
}

/* One connection: 0 on success; *was_reused set from the handshake. */
static int one_connection(struct worker *w, int offer, int *was_reused) {
    int fd = open_socket();
    if (fd < 0) return -1;
    SSL *ssl = SSL_new(context);
    SSL_set_fd(ssl, fd);
    SSL_set_ex_data(ssl, session_index, w);
    if (offer && w->session) SSL_set_session(ssl, w->session);
    int status = -1;
    if (SSL_connect(ssl) == 1) {
        *was_reused = SSL_session_reused(ssl);
        SSL_shutdown(ssl);
        char buffer[4096];
        /* Read to the server's close (tickets, its close_notify, FIN). */
        for (int i = 0; i < 1000; i++) {
            int n = SSL_read(ssl, buffer, sizeof buffer);
            if (n <= 0) break;
        }
        status = 0;
    } else {
        ERR_clear_error();
    }
    SSL_free(ssl);
    close(fd);
    return status;
}

static void *handshakes(void *argument) {
    struct worker *w = argument;
    int reuse = strcmp(mode, "reuse") == 0;
    int was_reused = 0;
    if (reuse) {
        /* The first, full handshake gives the session; not counted. */
        if (one_connection(w, 0, &was_reused) != 0) w->errors++;
    }
    double start = now(), end = start + seconds;
    while (now() < end) {
        if (one_connection(w, reuse, &was_reused) == 0) {
            w->connections++;
            if (was_reused) w->reused++;
        } else {
            w->errors++;
        }
    }
    w->elapsed = now() - start;
    return NULL;
}

static int run_handshakes(void) {
    struct worker *workers = calloc(threads, sizeof *workers);
    for (int i = 0; i < threads; i++) pthread_create(&workers[i].thread, NULL, handshakes, &workers[i]);
    long connections = 0, reused = 0, errors = 0;
    double elapsed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(workers[i].thread, NULL);
        connections += workers[i].connections;
        reused += workers[i].reused;
        errors += workers[i].errors;
        if (workers[i].elapsed > elapsed) elapsed = workers[i].elapsed;
    }
    printf("result mode=%s threads=%d seconds=%.3f connections=%ld reused=%ld errors=%ld rate=%.1f\n", mode, threads,
           elapsed, connections, reused, errors, elapsed > 0 ? connections / elapsed : 0.0);
    return connections > 0 ? 0 : 1;
}

static int run_bulk(void) {
    int fd = open_socket();
    if (fd < 0) {
        perror("tls-load: connect");
        return 1;
    }
    SSL *ssl = SSL_new(context);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    const char *suite = SSL_CIPHER_get_name(SSL_get_current_cipher(ssl));
    static char buffer[65536];
    double start = now();
    if (SSL_write(ssl, request, (int)strlen(request)) <= 0) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    long long bytes = 0;
    for (;;) {
        int n = SSL_read(ssl, buffer, sizeof buffer);
        if (n <= 0) break;
        bytes += n;
    }
    double elapsed = now() - start;
    printf("result mode=bulk suite=%s version=%s bytes=%lld seconds=%.4f mbps=%.1f\n", suite, SSL_get_version(ssl), bytes,
           elapsed, bytes / elapsed / 1e6);
    SSL_free(ssl);
    close(fd);
    return 0;
}

static int run_idle(void) {
    SSL **held = calloc(count, sizeof *held);
    int opened = 0;
    for (int i = 0; i < count; i++) {
        int fd = open_socket();
        if (fd < 0) break;
        SSL *ssl = SSL_new(context);
        SSL_set_fd(ssl, fd);
        if (SSL_connect(ssl) != 1) {
            ERR_clear_error();
            SSL_free(ssl);
            close(fd);
            break;
        }
        held[opened++] = ssl;
    }
    printf("ready connections=%d\n", opened);
    fflush(stdout);
    char c;
    while (read(STDIN_FILENO, &c, 1) > 0) {}
    for (int i = 0; i < opened; i++) {
        close(SSL_get_fd(held[i]));
        SSL_free(held[i]);
    }
    return opened == count ? 0 : 1;
}

static void usage(void) {
    fprintf(stderr, "usage: tls-load --port P [--host A] --mode new|reuse|bulk|idle [--threads T] [--seconds S] "
                    "[--count K] [--ciphersuites S] [--tls12 --cipher C] [--request R]\n");
    exit(2);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc && strcmp(a, "--tls12") != 0) usage();
        if (!strcmp(a, "--host")) host = argv[++i];
        else if (!strcmp(a, "--port")) port = atoi(argv[++i]);
        else if (!strcmp(a, "--mode")) mode = argv[++i];
        else if (!strcmp(a, "--threads")) threads = atoi(argv[++i]);
        else if (!strcmp(a, "--seconds")) seconds = atof(argv[++i]);
        else if (!strcmp(a, "--count")) count = atoi(argv[++i]);
        else if (!strcmp(a, "--ciphersuites")) ciphersuites = argv[++i];
        else if (!strcmp(a, "--cipher")) cipher = argv[++i];
        else if (!strcmp(a, "--request")) request = argv[++i];
        else if (!strcmp(a, "--tls12")) tls12 = 1;
        else usage();
    }
    if (threads < 1 || seconds <= 0 || count < 1) usage();
    context = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(context, SSL_VERIFY_NONE, NULL);
    if (tls12) {
        SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
        SSL_CTX_set_max_proto_version(context, TLS1_2_VERSION);
    } else {
        SSL_CTX_set_min_proto_version(context, TLS1_3_VERSION);
    }
    if (ciphersuites && SSL_CTX_set_ciphersuites(context, ciphersuites) != 1) usage();
    if (cipher && SSL_CTX_set_cipher_list(context, cipher) != 1) usage();
    session_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    /* Sessions come to new_session, never to an internal cache. */
    SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(context, new_session);
    if (!strcmp(mode, "new") || !strcmp(mode, "reuse")) return run_handshakes();
    if (!strcmp(mode, "bulk")) return run_bulk();
    if (!strcmp(mode, "idle")) return run_idle();
    usage();
}
