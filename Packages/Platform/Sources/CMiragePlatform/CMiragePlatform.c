// See include/CMiragePlatform.h. Small, audited wrappers only: no state
// beyond the "does this kernel have epoll_pwait2" flag.
#define _GNU_SOURCE
#include "CMiragePlatform.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

const uint32_t mirage_epollin = EPOLLIN;
const uint32_t mirage_epollout = EPOLLOUT;
const uint32_t mirage_epollerr = EPOLLERR;
const uint32_t mirage_epollhup = EPOLLHUP;
const uint32_t mirage_epollrdhup = EPOLLRDHUP;

int mirage_epoll_create(void) {
    int fd = epoll_create1(EPOLL_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

static int epoll_control(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event event;
    memset(&event, 0, sizeof event);
    event.events = events;
    event.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &event) < 0 ? -errno : 0;
}

int mirage_epoll_add(int epfd, int fd, uint32_t events, uint64_t data) {
    return epoll_control(epfd, EPOLL_CTL_ADD, fd, events, data);
}

int mirage_epoll_modify(int epfd, int fd, uint32_t events, uint64_t data) {
    return epoll_control(epfd, EPOLL_CTL_MOD, fd, events, data);
}

int mirage_epoll_remove(int epfd, int fd) {
    return epoll_control(epfd, EPOLL_CTL_DEL, fd, 0, 0);
}

// 1 until epoll_pwait2 is found missing (ENOSYS, or EPERM from a seccomp
// filter that does not know it); relaxed atomics: a stale read only costs
// one more failed call.
static atomic_int have_pwait2 = 1;

enum { mirage_max_batch = 1024 };

int mirage_epoll_wait(int epfd, mirage_epoll_event *events, int max_events, int64_t timeout_ns) {
    if (max_events <= 0) return -EINVAL;
    if (max_events > mirage_max_batch) max_events = mirage_max_batch;
    struct epoll_event raw[mirage_max_batch];
    int count = -1;
    int done = 0;
    if (atomic_load_explicit(&have_pwait2, memory_order_relaxed)) {
        struct timespec ts;
        struct timespec *tsp = NULL;
        if (timeout_ns >= 0) {
            ts.tv_sec = (time_t)(timeout_ns / 1000000000);
            ts.tv_nsec = (long)(timeout_ns % 1000000000);
            tsp = &ts;
        }
        count = epoll_pwait2(epfd, raw, max_events, tsp, NULL);
        if (count >= 0 || (errno != ENOSYS && errno != EPERM)) {
            done = 1;
        } else {
            atomic_store_explicit(&have_pwait2, 0, memory_order_relaxed);
        }
    }
    if (!done) {
        int timeout_ms = -1;
        if (timeout_ns >= 0) {
            // Round up so a timer never fires early.
            int64_t ms = timeout_ns / 1000000 + (timeout_ns % 1000000 != 0);
            timeout_ms = ms > 0x7fffffff ? 0x7fffffff : (int)ms;
        }
        count = epoll_wait(epfd, raw, max_events, timeout_ms);
    }
    if (count < 0) return -errno;
    for (int i = 0; i < count; i++) {
        events[i].events = raw[i].events;
        events[i].data = raw[i].data.u64;
    }
    return count;
}

int mirage_eventfd(void) {
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return fd < 0 ? -errno : fd;
}

int mirage_eventfd_signal(int fd) {
    uint64_t one = 1;
    for (int attempt = 0; attempt < 16; attempt++) {
        if (write(fd, &one, sizeof one) == (ssize_t)sizeof one) return 0;
        if (errno != EINTR) return errno == EAGAIN ? 0 : -errno; // EAGAIN: counter saturated, a wakeup is pending anyway
    }
    return -EINTR;
}

int mirage_eventfd_drain(int fd) {
    uint64_t value;
    for (int attempt = 0; attempt < 16; attempt++) {
        if (read(fd, &value, sizeof value) == (ssize_t)sizeof value) return 0;
        if (errno != EINTR) return errno == EAGAIN ? 0 : -errno;
    }
    return -EINTR;
}

int mirage_socket_error(int fd) {
    int error = 0;
    socklen_t length = sizeof error;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) < 0) return -errno;
    return error;
}

ssize_t mirage_getrandom(void *buffer, size_t length) {
    ssize_t n = getrandom(buffer, length, 0);
    return n < 0 ? -errno : n;
}

static int copy_name(struct ifreq *request, const char *name) {
    size_t length = strlen(name);
    if (length >= IFNAMSIZ) return -EINVAL;
    memset(request, 0, sizeof *request);
    memcpy(request->ifr_name, name, length);
    return 0;
}

int mirage_tap_open(const char *name, int vnet_header, char *name_out, size_t name_out_length) {
    struct ifreq request;
    int status = copy_name(&request, name);
    if (status < 0) return status;
    if (name_out_length < IFNAMSIZ) return -EINVAL;
    request.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet_header ? IFF_VNET_HDR : 0);
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -errno;
    if (ioctl(fd, TUNSETIFF, &request) < 0) {
        int saved = errno;
        close(fd);
        return -saved;
    }
    memset(name_out, 0, name_out_length);
    memcpy(name_out, request.ifr_name, strnlen(request.ifr_name, IFNAMSIZ));
    return fd;
}

const unsigned mirage_tun_f_csum = TUN_F_CSUM;
const unsigned mirage_tun_f_tso4 = TUN_F_TSO4;
const unsigned mirage_tun_f_tso6 = TUN_F_TSO6;

int mirage_tap_set_vnet_little_endian(int fd) {
    int little_endian = 1;
    return ioctl(fd, TUNSETVNETLE, &little_endian) < 0 ? -errno : 0;
}

int mirage_tap_set_vnet_header_size(int fd, int size) {
    return ioctl(fd, TUNSETVNETHDRSZ, &size) < 0 ? -errno : 0;
}

int mirage_tap_set_offload(int fd, unsigned offloads) {
    // TUNSETOFFLOAD takes the bits as the argument itself, not a pointer.
    return ioctl(fd, TUNSETOFFLOAD, (unsigned long)offloads) < 0 ? -errno : 0;
}

static int interface_ioctl(unsigned long command, struct ifreq *request) {
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) return -errno;
    int status = ioctl(sock, command, request) < 0 ? -errno : 0;
    close(sock);
    return status;
}

int mirage_interface_mtu(const char *name) {
    struct ifreq request;
    int status = copy_name(&request, name);
    if (status < 0) return status;
    status = interface_ioctl(SIOCGIFMTU, &request);
    return status < 0 ? status : request.ifr_mtu;
}

int mirage_interface_set_mtu(const char *name, int mtu) {
    struct ifreq request;
    int status = copy_name(&request, name);
    if (status < 0) return status;
    request.ifr_mtu = mtu;
    return interface_ioctl(SIOCSIFMTU, &request);
}

unsigned mirage_interface_index(const char *name) {
    return if_nametoindex(name);
}

#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>

int mirage_tcp_info_get(int fd, mirage_tcp_info *out) {
    struct tcp_info info;
    memset(&info, 0, sizeof info);
    socklen_t length = sizeof info;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0) return -errno;
    memset(out, 0, sizeof *out);
    out->snd_mss = info.tcpi_snd_mss;
    out->rtt_us = info.tcpi_rtt;
    out->rttvar_us = info.tcpi_rttvar;
    out->rto_us = info.tcpi_rto;
    out->unacked = info.tcpi_unacked;
    out->snd_cwnd = info.tcpi_snd_cwnd;
    out->snd_ssthresh = info.tcpi_snd_ssthresh;
    out->rcv_space = info.tcpi_rcv_space;
    out->total_retrans = info.tcpi_total_retrans;
    // Older kernels return a shorter struct; what they leave out stays 0.
    if (length >= offsetof(struct tcp_info, tcpi_segs_in) + sizeof info.tcpi_segs_in) {
        out->segs_out = info.tcpi_segs_out;
        out->segs_in = info.tcpi_segs_in;
    }
    if (length >= offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof info.tcpi_bytes_acked)
        out->bytes_acked = info.tcpi_bytes_acked;
    if (length >= offsetof(struct tcp_info, tcpi_bytes_received) + sizeof info.tcpi_bytes_received)
        out->bytes_received = info.tcpi_bytes_received;
    if (length >= offsetof(struct tcp_info, tcpi_snd_wnd) + sizeof info.tcpi_snd_wnd)
        out->snd_wnd = info.tcpi_snd_wnd;
    return 0;
}

// Bounded like FileDescriptor.maximumInterruptedRetries on the Swift side.
enum { mirage_interrupted_retries = 64 };

static unsigned batch_count(unsigned count) {
    return count > MIRAGE_DATAGRAM_BATCH_MAX ? MIRAGE_DATAGRAM_BATCH_MAX : count;
}

// The kernel's view of `count` datagrams: one buffer and one address each,
// and their control buffers when receiving (sends pass none).
static void describe_datagrams(struct mmsghdr *messages, struct iovec *vectors, mirage_datagram *datagrams,
                               unsigned count, int with_control) {
    for (unsigned i = 0; i < count; i++) {
        vectors[i].iov_base = datagrams[i].data;
        vectors[i].iov_len = datagrams[i].data_length;
        memset(&messages[i], 0, sizeof messages[i]);
        messages[i].msg_hdr.msg_name = datagrams[i].name;
        messages[i].msg_hdr.msg_namelen = datagrams[i].name_length;
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
        if (with_control) {
            messages[i].msg_hdr.msg_control = datagrams[i].control;
            messages[i].msg_hdr.msg_controllen = datagrams[i].control_length;
        }
    }
}

int mirage_receive_datagrams(int fd, mirage_datagram *datagrams, unsigned count) {
    count = batch_count(count);
    if (count == 0) return -EINVAL;
    struct mmsghdr messages[MIRAGE_DATAGRAM_BATCH_MAX];
    struct iovec vectors[MIRAGE_DATAGRAM_BATCH_MAX];
    describe_datagrams(messages, vectors, datagrams, count, 1);
    int n = -1;
    for (int attempt = 0; attempt < mirage_interrupted_retries; attempt++) {
        n = recvmmsg(fd, messages, count, MSG_DONTWAIT, NULL);
        if (n >= 0 || errno != EINTR) break;
    }
    if (n < 0) return -errno;
    if (n == 0) return -EAGAIN;
    for (int i = 0; i < n; i++) {
        // The kernel never reports more than the room it was given.
        datagrams[i].length = messages[i].msg_len;
        datagrams[i].name_length = messages[i].msg_hdr.msg_namelen;
        datagrams[i].control_length = messages[i].msg_hdr.msg_controllen;
        datagrams[i].flags = messages[i].msg_hdr.msg_flags;
    }
    return n;
}

int mirage_send_datagrams(int fd, mirage_datagram *datagrams, unsigned count) {
    count = batch_count(count);
    if (count == 0) return -EINVAL;
    struct mmsghdr messages[MIRAGE_DATAGRAM_BATCH_MAX];
    struct iovec vectors[MIRAGE_DATAGRAM_BATCH_MAX];
    describe_datagrams(messages, vectors, datagrams, count, 0);
    int n = -1;
    for (int attempt = 0; attempt < mirage_interrupted_retries; attempt++) {
        n = sendmmsg(fd, messages, count, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0 || errno != EINTR) break;
    }
    if (n < 0) return -errno;
    if (n == 0) return -EAGAIN;
    for (int i = 0; i < n; i++) datagrams[i].length = messages[i].msg_len;
    return n;
}
