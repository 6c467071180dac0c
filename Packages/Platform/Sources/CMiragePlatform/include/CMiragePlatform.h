// C shims for MiragePlatform: the calls Swift cannot make directly
// (variadic ioctl) or imports awkwardly (epoll_event is packed on x86_64).
// Every function returns a non-negative value on success and -errno on
// failure, so callers never depend on reading errno afterwards.
#ifndef CMIRAGEPLATFORM_H
#define CMIRAGEPLATFORM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// One readiness event, unpacked (struct epoll_event is packed on x86_64).
typedef struct {
    uint32_t events;
    uint64_t data;
} mirage_epoll_event;

/// EPOLL* bits, so Swift need not import the enum-like macros.
extern const uint32_t mirage_epollin;
extern const uint32_t mirage_epollout;
extern const uint32_t mirage_epollerr;
extern const uint32_t mirage_epollhup;
extern const uint32_t mirage_epollrdhup;

/// epoll_create1(EPOLL_CLOEXEC).
int mirage_epoll_create(void);
/// epoll_ctl(ADD) with `events` and the 64-bit `data`.
int mirage_epoll_add(int epfd, int fd, uint32_t events, uint64_t data);
/// epoll_ctl(MOD).
int mirage_epoll_modify(int epfd, int fd, uint32_t events, uint64_t data);
/// epoll_ctl(DEL).
int mirage_epoll_remove(int epfd, int fd);
/// Waits for at most `max_events` events. `timeout_ns` < 0 waits forever.
/// Uses epoll_pwait2 (nanosecond timeout) and falls back to epoll_wait with
/// the timeout rounded up to whole milliseconds where the kernel lacks it.
/// Returns the number of events or -errno (-EINTR included).
int mirage_epoll_wait(int epfd, mirage_epoll_event *events, int max_events, int64_t timeout_ns);

/// eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK).
int mirage_eventfd(void);
/// Adds 1 to an eventfd counter.
int mirage_eventfd_signal(int fd);
/// Resets an eventfd counter (reads it); 0 also when it was already zero.
int mirage_eventfd_drain(int fd);

/// The pending error of a socket (SO_ERROR, cleared by reading it): 0 for
/// none, -errno when `fd` is not a socket or the call fails.
int mirage_socket_error(int fd);

/// getrandom(buffer, length, 0): bytes written or -errno.
ssize_t mirage_getrandom(void *buffer, size_t length);

/// Opens /dev/net/tun non-blocking and close-on-exec and attaches it to the
/// tap device `name` with IFF_TAP | IFF_NO_PI (and IFF_VNET_HDR when
/// `vnet_header` is non-zero), creating the device when it does not exist
/// (which needs CAP_NET_ADMIN). An empty `name` lets the kernel choose
/// (tap%d). The device's name is copied to `name_out` (at least 16 bytes).
/// Returns the descriptor or -errno.
int mirage_tap_open(const char *name, int vnet_header, char *name_out, size_t name_out_length);

/// TUN_F_* offload bits for `mirage_tap_set_offload` (linux/if_tun.h):
/// what the reader of the tap can take from the kernel.
extern const unsigned mirage_tun_f_csum;
extern const unsigned mirage_tun_f_tso4;
extern const unsigned mirage_tun_f_tso6;

/// TUNSETVNETLE(1): the virtio-net header's fields are little-endian (as
/// virtio 1.0 requires) whatever the host's byte order. 0 or -errno.
int mirage_tap_set_vnet_little_endian(int fd);
/// TUNSETVNETHDRSZ: the length of the header before each frame on a tap
/// opened with IFF_VNET_HDR (12 for struct virtio_net_hdr_v1). 0 or -errno.
int mirage_tap_set_vnet_header_size(int fd, int size);
/// TUNSETOFFLOAD with TUN_F_* bits: partial checksums (CSUM) and large TCP
/// frames (TSO4/TSO6) the kernel may hand to the reader. 0 or -errno.
int mirage_tap_set_offload(int fd, unsigned offloads);

/// The interface's MTU (SIOCGIFMTU) or -errno.
int mirage_interface_mtu(const char *name);
/// Sets the interface's MTU (SIOCSIFMTU); 0 or -errno.
int mirage_interface_set_mtu(const char *name, int mtu);
/// The interface's index in the caller's network namespace, or 0 if none.
unsigned mirage_interface_index(const char *name);

/// The parts of Linux's struct tcp_info (linux/tcp.h) the stack contract
/// reports; glibc's netinet/tcp.h has an older, shorter struct.
typedef struct {
    uint32_t snd_mss;
    uint32_t rtt_us;
    uint32_t rttvar_us;
    uint32_t rto_us;
    uint32_t unacked;
    uint32_t snd_cwnd;
    uint32_t snd_ssthresh;
    uint32_t rcv_space;
    uint32_t total_retrans;
    uint32_t segs_out;
    uint32_t segs_in;
    uint32_t snd_wnd;
    uint64_t bytes_acked;
    uint64_t bytes_received;
} mirage_tcp_info;

/// getsockopt(TCP_INFO) into `out`; fields the kernel did not fill are 0.
int mirage_tcp_info_get(int fd, mirage_tcp_info *out);

/// One datagram of a batched receive or send. recvmmsg and sendmmsg are
/// not imported by Swift (struct mmsghdr needs _GNU_SOURCE), so the caller
/// describes each datagram with its own buffers here and the shim builds
/// the kernel's array.
typedef struct {
    /// The payload: room for it (receive) or its bytes (send).
    void *data;
    /// Size of `data` (receive) or the payload's length (send).
    size_t data_length;
    /// A struct sockaddr_storage: the source (receive) or destination (send).
    void *name;
    /// Room at `name` in, the address's length out (receive); the
    /// address's length (send).
    uint32_t name_length;
    /// Room for ancillary data (receive; NULL and 0 for none, and for send).
    void *control;
    /// Room at `control` in, the length used out (receive).
    size_t control_length;
    /// Out: payload bytes received or sent.
    size_t length;
    /// Out (receive): msg_flags, e.g. MSG_TRUNC when the payload was cut.
    int flags;
} mirage_datagram;

/// Most datagrams one batched call takes (the shim's array is on its stack).
#define MIRAGE_DATAGRAM_BATCH_MAX 256

/// recvmmsg(fd, count datagrams, MSG_DONTWAIT): fills the out fields of the
/// first n datagrams and returns n (at least 1), or -errno (-EAGAIN: none
/// waiting). `count` above MIRAGE_DATAGRAM_BATCH_MAX is capped. EINTR
/// before the first datagram is retried a bounded number of times.
int mirage_receive_datagrams(int fd, mirage_datagram *datagrams, unsigned count);

/// sendmmsg(fd, count datagrams, MSG_DONTWAIT | MSG_NOSIGNAL): the number
/// sent from the start (at least 1; fewer than `count` when the next one
/// failed, whose error the kernel does not report: sending from there again
/// reports it), or -errno when the first one failed. `count` above
/// MIRAGE_DATAGRAM_BATCH_MAX is capped. EINTR is retried a bounded number
/// of times.
int mirage_send_datagrams(int fd, mirage_datagram *datagrams, unsigned count);

#endif
