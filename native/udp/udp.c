/*
 * uftp-udp: a batched UDP engine for uftp-ts (Linux, N-API, MIT licensed).
 *
 * One `Socket` object owns one UDP socket. It runs on Node's event loop through a uv_poll handle on the fd:
 *
 *  receive  recvmmsg(2) into a ring of `slots` buffers of `slotSize` bytes, preallocated once and shared with JS
 *           as ArrayBuffers; per datagram the meta ring gets its length, flags (truncated), source address and
 *           port, destination address and interface (IP_PKTINFO / IPV6_PKTINFO), TOS / traffic class (IP_TOS /
 *           IPV6_TCLASS), and the socket's drop counter (SO_RXQ_OVFL) goes to the stats array. One JS callback,
 *           onBatch(count), per recvmmsg call. Nothing is allocated per datagram.
 *  send     JS writes datagrams back to back into a staging ArrayBuffer and their (offset, length, destination)
 *           into a staging meta array, then calls flush(n). Runs of equal-size datagrams to one destination go out
 *           as one sendmsg with UDP_SEGMENT (GSO, up to 64 segments); the rest with sendmmsg(2). Where the kernel or
 *           device refuses GSO (EIO, ENOPROTOOPT: for good; EINVAL: that run) the run goes by sendmmsg.
 *           EAGAIN / ENOBUFS: what is left stays staged, the poll waits for writability and onWritable() runs once
 *           everything is out. A datagram the kernel refuses for good (ENETUNREACH...) gets -errno in its meta
 *           slot and counts in stats; the others go on.
 *  options  bind, buffers, multicast joins/leaves (any-source and source-specific, by interface index), TTL /
 *           hop limit, loop, outgoing interface, TOS byte (DSCP and ECN), local address.
 *
 *  guard    one native thread per process keeps active sockets drained while the JS thread is late (a V8 or
 *           scheduler stall), into a bounded store delivered before the socket's content: see "the stall guard".
 *
 * close() stops the poll, closes the fd, and is safe from inside onBatch: the receive loop checks after every
 * callback. Errors are returned as negative errno values; JS turns them into messages.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/sock_diag.h>
#include "cipher.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif
#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif

/* Per received datagram: 20 int32 in the meta ring. With UDP GRO one ring slot may hold up to 64 datagrams
 * (coalesced by the kernel, split here), so the meta ring has 64 entries per slot then. */
enum {
  RM_LEN = 0,      /* bytes in the slot (min(real length, slotSize)) */
  RM_REALLEN = 1,  /* the datagram's real length */
  RM_FLAGS = 2,    /* 1 = truncated */
  RM_FAMILY = 3,   /* 4 or 6 (of the source address as the socket sees it) */
  RM_PORT = 4,
  RM_SRC = 5,      /* 4 int32 = 16 bytes: source address (4 bytes used for IPv4) */
  RM_DST = 9,      /* 4 int32: destination address (the group for multicast), from PKTINFO */
  RM_IFINDEX = 13, /* arrival interface, 0 unknown */
  RM_TOS = 14,     /* TOS / traffic class byte, -1 unknown */
  RM_DSTFAM = 15,  /* family of RM_DST: 0 unknown, 4, 6 */
  RM_OFF = 16,     /* where the datagram starts in the ring */
  RM_SIZE = 20
};
/* Per staged datagram to send: 4 int32. */
enum { SM_OFF = 0, SM_LEN = 1, SM_DEST = 2, SM_RESULT = 3, SM_SIZE = 4 };
/* Stats: float64. */
enum {
  ST_RXQ_OVFL = 0, ST_RECV = 1, ST_RECV_CALLS = 2, ST_SENT = 3, ST_SENDMMSG_CALLS = 4, ST_GSO_CALLS = 5,
  ST_GSO_FALLBACKS = 6, ST_SEND_ERRORS = 7, ST_BLOCKED = 8, ST_PENDING = 9, ST_TRUNCATED = 10, ST_GSO_ENABLED = 11,
  ST_LAST_ERRNO = 12, ST_GRO = 13, ST_SPIN_HITS = 14, ST_SPIN_MISSES = 15, ST_SPIN_NS = 16, ST_SPIN_YIELDS = 17,
  ST_ARM_FIRED = 18, ST_ARM_FAILED = 19,
  /* the stall guard (see "stall guard" below); copied from the guard's counters by guardSync() and each receive */
  ST_GUARD_ON = 20, ST_GUARD_RESCUED = 21, ST_GUARD_DRAINS = 22, ST_GUARD_PEAK = 23, ST_GUARD_FULL = 24,
  ST_GUARD_CHECKS = 25, ST_GUARD_HELD = 26, ST_GUARD_LIMIT = 27, ST_SIZE = 32
};
/* The armed reply (see arm_check): an int32 header, then the expected bytes at ARM_EXPECT_AT, the reply at
 * ARM_REPLY_AT. JS writes it (state ARMED) and reads `state` back: FIRED = the reply went out on this receive. */
enum { ARM_STATE = 0, ARM_DEST = 1, ARM_EXPECT_LEN = 2, ARM_REPLY_LEN = 3, ARM_HEADER = 32 };
enum { ARM_IDLE = 0, ARM_ARMED = 1, ARM_FIRED = 2 };
#define ARM_EXPECT_MAX 64
#define ARM_EXPECT_AT ARM_HEADER
#define ARM_REPLY_AT (ARM_HEADER + ARM_EXPECT_MAX)
#define ARM_REPLY_MAX 65535
#define ARM_BYTES (ARM_REPLY_AT + ARM_REPLY_MAX + 1)

#define MAX_DESTS 4096
#define MMSG_MAX 64
#define GSO_MAX_SEGS 64
#define GSO_MIN_RUN 4 /* shorter runs go in the sendmmsg vector: one syscall either way */
#define GSO_MAX_BYTES 65000
#define CTRL_LEN 256
#define GRO_MAX_SEGS 64
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

typedef struct sock {
  napi_env env;
  int fd;
  int family;
  int closed;
  uv_poll_t poll;
  int poll_init;   /* uv_poll_init done, uv_close not yet called */
  int poll_events; /* what we poll for now */
  int started;     /* onBatch set and reading */
  int in_callback;
  int freed_pending; /* the JS object is gone; free when the poll handle has closed */
  napi_ref self;     /* strong while the poll handle is open, so the object outlives its uv callbacks */
  napi_ref on_batch, on_writable;
  napi_async_context actx;
  /* receive */
  int rslots, rslot_size, rmeta_cap;
  uint8_t *rbuf;
  int32_t *rmeta;
  napi_ref rbuf_ref, rmeta_ref;
  struct mmsghdr *rmsgs;
  struct iovec *riov;
  struct sockaddr_storage *rnames;
  uint8_t *rctrl;
  /* send */
  int sslots, sbytes;
  uint8_t *sbuf;
  int32_t *smeta;
  napi_ref sbuf_ref, smeta_ref;
  int sdone, sn; /* staged datagrams [sdone, sn) are not sent yet */
  int gso_ok;
  struct sockaddr_storage dests[MAX_DESTS];
  socklen_t destlen[MAX_DESTS];
  struct mmsghdr smsgs[MMSG_MAX];
  struct iovec siov[MMSG_MAX];
  int sidx[MMSG_MAX];
  double *stats;
  napi_ref stats_ref;
  /* receive spin (request/response traffic): see do_recv */
  int64_t spin_ns;  /* the bound; 0 = never spin */
  int spin_skip;    /* chances to skip before the next spin (back-off after misses) */
  int spin_misses;  /* misses in a row */
  int last_dest;    /* destination index of the last datagram flushed */
  int loop_fd;      /* libuv's epoll descriptor (uv_backend_fd), to see other work while spinning */
  /* armed reply: see arm_check */
  uint8_t *arm;
  napi_ref arm_ref;
  /* the stall guard: see "stall guard" below */
  int handles_open;      /* uv handles (poll, async) initialised and not yet closed back */
  uv_async_t async;      /* the guard wakes the loop with it after a drain (the fd is then no longer readable) */
  int async_init;        /* uv_async_init done, uv_close not yet called */
  pthread_mutex_t mu;    /* held around every read of the socket and every use of the store, by either thread */
  int64_t guard_limit;   /* bytes the store may hold; 0 = no guard for this socket */
  int guard_busy16;      /* drain a socket whose main thread still reads at this many sixteenths of its buffer */
  int guard_reg;         /* in the guard's list (g_mu) */
  struct sock *gnext, *gprev;
  _Atomic uint64_t recv_seq; /* bumped by the main thread on every receive that got datagrams */
  _Atomic uint64_t read_seq; /* bumped by the main thread at every read of the ring (got something or not) */
  uint64_t g_reads_seen;     /* guard thread only: read_seq at its last look, and the queue's fill then */
  uint64_t g_last_fill;
  uint64_t g_seen_seq;   /* guard thread only: recv_seq at its last look, and when that changed */
  int64_t g_active_at;
  _Atomic int ovf_count; /* records in the store (read without the lock as a hint) */
  struct chunk *ovf_head, *ovf_tail; /* the store: chunks of records, oldest first (mu) */
  int64_t ovf_mem;       /* bytes of chunks held, in use and spare (mu) */
  struct chunk *spare;   /* read-out chunks kept for the next stall (mu) */
  int nspare;
  int64_t g_rescued, g_drains, g_peak, g_full; /* (mu) */
  _Atomic int64_t g_checks; /* guard ticks that looked at this socket */
} sock_t;

/* ---------- the stall guard ----------
 *
 * A receiver at full speed gets ~100,000 datagrams/s and the socket buffer holds a few tens of milliseconds of them.
 * When the JS thread is late (V8 recompiling the receive path on a shared core, a GC, the scheduler), the kernel
 * drops what does not fit. The guard is one thread per process, shared by all guarded sockets of all the process's
 * Node environments (one thread rather than one per socket: ktftpd opens a socket per transfer, and one 1 ms tick
 * serves every active socket with one wake-up). It:
 *  - sleeps on a condition variable while no guarded socket is active (a socket is active for GUARD_ACTIVE_NS after
 *    the main thread last received on it, or the guard last stored from it): an idle daemon costs no wake-up;
 *  - while one is, wakes every 1 ms (10 ms while every queue is nearly empty and not growing), reads how full each
 *    active socket's receive queue is (SO_MEMINFO: rmem_alloc against rcvbuf), and drains a socket whose queue is
 *    at three quarters of its buffer (per socket: guard_busy16), or at a quarter when its main thread has not started a
 *    read since the previous look (see guard_tick), with recvmmsg into the socket's store, taking the socket's lock
 *    per call (the first one waited for, with priority inheritance; the rest only tried: see guard_drain); then it wakes the loop with uv_async_send (the fd is no longer readable, so uv_poll alone would not fire);
 *  - runs at real-time priority where allowed (see guard_main), so that its tick comes on time on a busy core;
 *  - never stores past the socket's bound (guard_limit bytes of chunks): it then stops reading, the kernel's queue
 *    fills and its drop counter counts as it would without the guard. It reads only as many datagrams as it is sure
 *    to store, so nothing it has read is ever dropped.
 * The store keeps each datagram as recvmmsg gave it (real length, flags, source address, control messages: PKTINFO,
 * TOS, SO_RXQ_OVFL, UDP_GRO), and the main thread hands stored datagrams to the ring before anything still in the
 * socket (both under the socket's lock), so fill_meta, arm_check and JS see exactly what they would have seen. The
 * guard never touches the ring, never calls JS and never sends (the armed reply fires on the main thread only). */
#define GUARD_TICK_NS 1000000LL
#define GUARD_SLOW_TICK_NS 10000000LL
#define GUARD_DRAIN_NS 250000LL
#define GUARD_ACTIVE_NS 250000000LL
#define GUARD_MMSG 32
#define GUARD_CHUNK (1 << 20)
#define GUARD_DEFAULT_LIMIT (64LL << 20)
#define GUARD_MIN_LIMIT GUARD_CHUNK
#define GUARD_SPARE 8
#define GUARD_BUSY16_DEFAULT 12 /* three quarters; setOpt(13) per socket, 4-15 */

typedef struct chunk {
  struct chunk *next;
  size_t cap, rd, wr;
  uint8_t data[];
} chunk_t;

typedef struct {
  uint32_t msg_len; /* as recvmmsg reported it: the real length with MSG_TRUNC */
  uint32_t flags;   /* msg_flags */
  uint32_t datalen; /* bytes kept (at most the slot size) */
  uint16_t namelen, ctrllen;
} rec_t;

#define REC_ALIGN(n) (((n) + 7) & ~(size_t)7)

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond;
static int g_cond_ready, g_thread_on, g_stop, g_envs, g_atexit;
static pthread_t g_thread;
static sock_t *g_socks;
static _Atomic int g_sleeping;     /* the guard waits without a timeout: a receive must signal */
static _Atomic int64_t g_ticks;    /* the guard's wake-ups, process-wide */
static _Atomic int64_t g_store;    /* bytes of chunks held in all stores, process-wide */
static _Atomic int g_prio;         /* the thread's priority: 0 normal, 1 nice -20, 2 SCHED_FIFO */
static uint8_t *g_scratch;         /* GUARD_MMSG slots of 64 KiB: recvmmsg lands here, then is copied to a store */
static struct mmsghdr g_msgs[GUARD_MMSG];
static struct iovec g_iov[GUARD_MMSG];
static struct sockaddr_storage g_names[GUARD_MMSG];
static uint8_t g_ctrl[GUARD_MMSG][CTRL_LEN];

static int64_t guard_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static size_t rec_worst(const sock_t *s) { return REC_ALIGN(sizeof(rec_t) + sizeof(struct sockaddr_storage) + CTRL_LEN + (size_t)s->rslot_size); }

/* How many datagrams of at most the worst size the store can surely take now (mu). */
static int store_room(const sock_t *s) {
  size_t worst = rec_worst(s);
  int64_t n = 0;
  if (s->ovf_tail) n += (int64_t)((s->ovf_tail->cap - s->ovf_tail->wr) / worst);
  int64_t free_chunks = (s->guard_limit - s->ovf_mem) / GUARD_CHUNK + s->nspare;
  if (free_chunks > 0) n += free_chunks * (int64_t)(GUARD_CHUNK / worst);
  return n > GUARD_MMSG ? GUARD_MMSG : (int)n;
}

/* Appends g_msgs[i] (mu; store_room said it fits). */
static void store_put(sock_t *s, int i) {
  struct mmsghdr *mm = &g_msgs[i];
  rec_t r;
  r.msg_len = mm->msg_len;
  r.flags = (uint32_t)mm->msg_hdr.msg_flags;
  r.datalen = mm->msg_len < (unsigned)s->rslot_size ? mm->msg_len : (uint32_t)s->rslot_size;
  r.namelen = (uint16_t)mm->msg_hdr.msg_namelen;
  r.ctrllen = (uint16_t)mm->msg_hdr.msg_controllen;
  size_t need = REC_ALIGN(sizeof r + r.namelen + r.ctrllen + r.datalen);
  chunk_t *c = s->ovf_tail;
  if (!c || c->cap - c->wr < need) {
    chunk_t *n = s->spare;
    if (n) {
      s->spare = n->next;
      s->nspare--;
    } else {
      n = malloc(sizeof *n + GUARD_CHUNK);
      if (!n) abort(); /* store_room counted this chunk within the bound */
      n->cap = GUARD_CHUNK;
      s->ovf_mem += GUARD_CHUNK;
      atomic_fetch_add(&g_store, GUARD_CHUNK);
      if (s->ovf_mem > s->g_peak) s->g_peak = s->ovf_mem;
    }
    n->next = NULL;
    n->rd = n->wr = 0;
    if (c) c->next = n;
    else s->ovf_head = n;
    s->ovf_tail = c = n;
  }
  uint8_t *p = c->data + c->wr;
  memcpy(p, &r, sizeof r);
  p += sizeof r;
  memcpy(p, &g_names[i], r.namelen);
  p += r.namelen;
  memcpy(p, g_ctrl[i], r.ctrllen);
  p += r.ctrllen;
  memcpy(p, g_iov[i].iov_base, r.datalen);
  c->wr += need;
  atomic_fetch_add(&s->ovf_count, 1);
}

/* A chunk read out: kept as a spare (up to GUARD_SPARE: a fresh 1 MiB allocation costs page faults, and under a
 * long overload its munmap a TLB shoot-down each time), else freed. Spares go when the socket turns idle. (mu) */
static void chunk_done(sock_t *s, chunk_t *c) {
  if (s->nspare < GUARD_SPARE) {
    c->next = s->spare;
    s->spare = c;
    s->nspare++;
    return;
  }
  s->ovf_mem -= (int64_t)c->cap;
  atomic_fetch_sub(&g_store, (int64_t)c->cap);
  free(c);
}

/* Moves up to `max` stored datagrams into ring slots 0.. exactly as recvmmsg would have left them (mu). */
static int store_take(sock_t *s, int max) {
  int n = 0;
  while (n < max && s->ovf_head) {
    chunk_t *c = s->ovf_head;
    if (c->rd == c->wr) {
      s->ovf_head = c->next;
      if (c == s->ovf_tail) s->ovf_tail = NULL;
      chunk_done(s, c);
      continue;
    }
    uint8_t *p = c->data + c->rd;
    rec_t r;
    memcpy(&r, p, sizeof r);
    p += sizeof r;
    struct msghdr *mh = &s->rmsgs[n].msg_hdr;
    memcpy(&s->rnames[n], p, r.namelen);
    mh->msg_namelen = r.namelen;
    p += r.namelen;
    memcpy(s->rctrl + (size_t)n * CTRL_LEN, p, r.ctrllen);
    mh->msg_controllen = r.ctrllen;
    p += r.ctrllen;
    memcpy(s->rbuf + (size_t)n * s->rslot_size, p, r.datalen);
    mh->msg_flags = (int)r.flags;
    s->rmsgs[n].msg_len = r.msg_len;
    c->rd += REC_ALIGN(sizeof r + r.namelen + r.ctrllen + r.datalen);
    atomic_fetch_sub(&s->ovf_count, 1);
    n++;
  }
  chunk_t *c = s->ovf_head;
  if (c && c->rd == c->wr && !c->next) {
    s->ovf_head = s->ovf_tail = NULL;
    chunk_done(s, c);
  }
  return n;
}

static void chunks_free(sock_t *s, chunk_t *c) {
  while (c) {
    chunk_t *n = c->next;
    s->ovf_mem -= (int64_t)c->cap;
    atomic_fetch_sub(&g_store, (int64_t)c->cap);
    free(c);
    c = n;
  }
}

/* The spare chunks go back to the system (mu, or the socket no longer guarded). */
static void store_trim(sock_t *s) {
  chunks_free(s, s->spare);
  s->spare = NULL;
  s->nspare = 0;
}

static void store_free(sock_t *s) {
  chunks_free(s, s->ovf_head);
  s->ovf_head = s->ovf_tail = NULL;
  store_trim(s);
  s->ovf_mem = 0;
  atomic_store(&s->ovf_count, 0);
}

/* Reads the socket into its store until it is empty, the store is at its bound, the main thread is reading it (the
 * socket's lock is taken per recvmmsg; only the first is waited for), or GUARD_DRAIN_NS have passed: a receiver that is simply
 * slower than its sender (an overload the guard cannot cure) costs the guard at most that much per look (g_mu
 * held). */
static int guard_drain(sock_t *s, int64_t start) {
  int stored = 0;
  /* The first lock waits: the socket is past its threshold, and a main thread that holds the lock now was most
   * likely preempted inside its read (the lock inherits our priority: it lets go within microseconds). Later ones
   * only try: a main thread that reads again takes over. */
  int first = 1;
  while (guard_now() - start < GUARD_DRAIN_NS && (first ? pthread_mutex_lock(&s->mu) : pthread_mutex_trylock(&s->mu)) == 0) {
    first = 0;
    int k = store_room(s);
    if (k == 0) {
      s->g_full++;
      pthread_mutex_unlock(&s->mu);
      break;
    }
    for (int i = 0; i < k; i++) {
      g_iov[i].iov_base = g_scratch + (size_t)i * 65536;
      g_iov[i].iov_len = (size_t)s->rslot_size;
      struct msghdr *mh = &g_msgs[i].msg_hdr;
      mh->msg_name = &g_names[i];
      mh->msg_namelen = sizeof g_names[i];
      mh->msg_iov = &g_iov[i];
      mh->msg_iovlen = 1;
      mh->msg_control = g_ctrl[i];
      mh->msg_controllen = CTRL_LEN;
      mh->msg_flags = 0;
    }
    int n;
    do n = recvmmsg(s->fd, g_msgs, (unsigned)k, MSG_DONTWAIT | MSG_TRUNC, NULL);
    while (n < 0 && errno == EINTR);
    /* n < 0: EAGAIN (drained), or an error (a queued ICMP error) left for the main thread to see */
    for (int i = 0; i < n; i++) store_put(s, i);
    if (n > 0) {
      stored += n;
      s->g_rescued += n;
      if (stored == n) s->g_drains++;
    }
    pthread_mutex_unlock(&s->mu);
    if (n < k) break;
  }
  if (stored > 0) uv_async_send(&s->async);
  return stored;
}

/* One look at every guarded socket (g_mu held). Returns when to look again (ns), 0 when no socket is active. A
 * socket is drained when its queue is at a quarter of its buffer or more and the main thread has not started a read
 * of it since the previous look (it is stalled), or at three quarters or more whatever the main thread does (it
 * reads, but too slowly: preempted most of the time, or running cold code; at half, the proxies' CPU per datagram
 * rose by a fifth to a third in the Figure 1 chain, the guard taking what the main thread would have read soon). That
 * second threshold is per socket (setOpt 13, in sixteenths): uftpd asks for half, where a drop costs a
 * retransmission to every receiver (pinned fresh uftpd runs dropped in 3 of 20 at three quarters, 0 of 28 at half).
 * The next look is in GUARD_TICK_NS when a queue is
 * at 1/16 or more, grew by 1/16 since the last look, or was drained; otherwise in GUARD_SLOW_TICK_NS. */
static int64_t guard_tick(int64_t now) {
  int64_t period = 0;
  for (sock_t *s = g_socks; s; s = s->gnext) {
    uint64_t seq = atomic_load(&s->recv_seq);
    if (seq != s->g_seen_seq) {
      s->g_seen_seq = seq;
      s->g_active_at = now;
    }
    if (seq == 0 || now - s->g_active_at > GUARD_ACTIVE_NS || s->guard_limit <= 0) {
      if (s->nspare > 0 && pthread_mutex_trylock(&s->mu) == 0) {
        store_trim(s);
        pthread_mutex_unlock(&s->mu);
      }
      continue;
    }
    if (period == 0) period = GUARD_SLOW_TICK_NS;
    atomic_fetch_add_explicit(&s->g_checks, 1, memory_order_relaxed);
    uint64_t reads = atomic_load(&s->read_seq);
    int late = reads == s->g_reads_seen;
    s->g_reads_seen = reads;
    uint32_t mem[SK_MEMINFO_VARS];
    socklen_t len = sizeof mem;
    if (getsockopt(s->fd, SOL_SOCKET, SO_MEMINFO, mem, &len) != 0 || len < sizeof mem) continue;
    uint64_t fill = (uint64_t)mem[SK_MEMINFO_RMEM_ALLOC], cap = mem[SK_MEMINFO_RCVBUF];
    uint64_t last = s->g_last_fill;
    s->g_last_fill = fill;
    if (fill * 16 >= cap || (fill > last && (fill - last) * 16 >= cap)) period = GUARD_TICK_NS;
    if (fill * 16 >= cap * (uint64_t)s->guard_busy16 || (late && fill * 4 >= cap)) {
      /* what it stored keeps the socket active: a stall longer than GUARD_ACTIVE_NS is still covered */
      if (guard_drain(s, guard_now()) > 0) s->g_active_at = now;
      s->g_last_fill = 0;
      period = GUARD_TICK_NS;
    }
  }
  return period;
}

static void *guard_main(void *arg) {
  (void)arg;
  pthread_setname_np(pthread_self(), "uftp-udp-guard"); /* seen in top -H, /proc/PID/task/TID/comm */
  /* It must run when its tick comes even on a core that the late JS thread shares with V8's compiler threads and
   * other processes (measured: a normal-priority guard went 13-25 ms without running there, and the socket
   * overflowed meanwhile). UFTP_UDP_GUARD_PRIO: "fifo" (the default): SCHED_FIFO 1, the lowest real-time
   * priority, where allowed (root, CAP_SYS_NICE; else it stays normal); "nice": nice -20 (measured: no better than
   * normal in the pinned uftpd runs); "normal". Its work per look is one getsockopt, and a drain is bounded in time
   * (GUARD_DRAIN_NS) and by the store. Measured cost of "fifo" (docs/net-engine.md): a receiver flooded by a GSO
   * sender 5x faster than it can read received fewer datagrams with it. */
  const char *prio = getenv("UFTP_UDP_GUARD_PRIO");
  if (!prio || strcmp(prio, "fifo") == 0) {
    struct sched_param sp = {.sched_priority = 1};
    if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0) atomic_store(&g_prio, 2);
  } else if (strcmp(prio, "nice") == 0) {
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), -20) == 0) atomic_store(&g_prio, 1);
  }
  pthread_mutex_lock(&g_mu);
  while (!g_stop) {
    int64_t now = guard_now();
    atomic_fetch_add_explicit(&g_ticks, 1, memory_order_relaxed);
    int64_t period = guard_tick(now);
    if (period == 0) {
      /* nothing active: sleep until a receive says otherwise. The flag goes up before the last look, and a receive
       * bumps its sequence before it reads the flag (both sequentially consistent), so one of the two sees the other */
      atomic_store(&g_sleeping, 1);
      int again = 0;
      for (sock_t *s = g_socks; s && !again; s = s->gnext) again = s->guard_limit > 0 && atomic_load(&s->recv_seq) != s->g_seen_seq;
      if (!again && !g_stop) pthread_cond_wait(&g_cond, &g_mu);
      atomic_store(&g_sleeping, 0);
      continue;
    }
    int64_t at = now + period;
    struct timespec next = {.tv_sec = at / 1000000000, .tv_nsec = at % 1000000000};
    pthread_cond_timedwait(&g_cond, &g_mu, &next);
  }
  pthread_mutex_unlock(&g_mu);
  return NULL;
}

/* Stops and joins the thread (g_mu not held). */
static void guard_stop(void) {
  pthread_mutex_lock(&g_mu);
  if (!g_thread_on) {
    pthread_mutex_unlock(&g_mu);
    return;
  }
  g_stop = 1;
  pthread_cond_broadcast(&g_cond);
  pthread_mutex_unlock(&g_mu);
  pthread_join(g_thread, NULL);
  pthread_mutex_lock(&g_mu);
  g_thread_on = 0;
  g_stop = 0;
  pthread_mutex_unlock(&g_mu);
}

/* process.exit() does not run the environments' cleanup hooks: the thread is joined here then. */
static void guard_atexit(void) { guard_stop(); }

/* Adds a started socket to the guard's list, starting the thread if needed (main thread). 0 or -errno. */
static int guard_register(sock_t *s) {
  pthread_mutex_lock(&g_mu);
  if (!g_cond_ready) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g_cond, &ca);
    pthread_condattr_destroy(&ca);
    g_cond_ready = 1;
  }
  if (!g_scratch) {
    g_scratch = malloc((size_t)GUARD_MMSG * 65536);
    if (!g_scratch) {
      pthread_mutex_unlock(&g_mu);
      return -ENOMEM;
    }
  }
  if (!g_thread_on) {
    /* the thread takes no signal: they stay with Node's threads */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(&g_thread, NULL, guard_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
      pthread_mutex_unlock(&g_mu);
      return -r;
    }
    g_thread_on = 1;
    if (!g_atexit) g_atexit = atexit(guard_atexit) == 0;
  }
  s->gprev = NULL;
  s->gnext = g_socks;
  if (g_socks) g_socks->gprev = s;
  g_socks = s;
  s->guard_reg = 1;
  pthread_mutex_unlock(&g_mu);
  return 0;
}

static void guard_unlink(sock_t *s) {
  if (!s->guard_reg) return;
  if (s->gprev) s->gprev->gnext = s->gnext;
  else g_socks = s->gnext;
  if (s->gnext) s->gnext->gprev = s->gprev;
  s->gnext = s->gprev = NULL;
  s->guard_reg = 0;
}

/* Takes a socket off the list; once this returns the guard no longer touches it (main thread). */
static void guard_unregister(sock_t *s) {
  if (!s->guard_reg) return;
  pthread_mutex_lock(&g_mu);
  guard_unlink(s);
  pthread_mutex_unlock(&g_mu);
}

/* After a receive that got datagrams (main thread): the guard counts the socket active; wake it if it sleeps. */
static inline void guard_note_recv(sock_t *s) {
  atomic_fetch_add(&s->recv_seq, 1);
  if (atomic_load(&g_sleeping)) {
    pthread_mutex_lock(&g_mu);
    pthread_cond_signal(&g_cond);
    pthread_mutex_unlock(&g_mu);
  }
}

/* The guard's counters into the stats array (main thread). */
static void guard_sync(sock_t *s) {
  if (!s->guard_reg && !s->ovf_head) {
    s->stats[ST_GUARD_CHECKS] = (double)atomic_load(&s->g_checks);
    return;
  }
  pthread_mutex_lock(&s->mu);
  s->stats[ST_GUARD_RESCUED] = (double)s->g_rescued;
  s->stats[ST_GUARD_DRAINS] = (double)s->g_drains;
  s->stats[ST_GUARD_PEAK] = (double)s->g_peak;
  s->stats[ST_GUARD_FULL] = (double)s->g_full;
  s->stats[ST_GUARD_HELD] = (double)(s->ovf_mem - (int64_t)s->nspare * GUARD_CHUNK);
  pthread_mutex_unlock(&s->mu);
  s->stats[ST_GUARD_CHECKS] = (double)atomic_load(&s->g_checks);
}

/* An environment goes away (a worker ends, or Node's normal teardown): its sockets leave the list (their loop is
 * gone, the guard must not wake it), and the last environment stops the thread. */
static void guard_env_cleanup(void *arg) {
  napi_env env = (napi_env)arg;
  pthread_mutex_lock(&g_mu);
  for (sock_t *s = g_socks, *n; s; s = n) {
    n = s->gnext;
    if (s->env == env) guard_unlink(s);
  }
  int last = --g_envs == 0;
  pthread_mutex_unlock(&g_mu);
  if (last) guard_stop();
}

/* ---------- helpers ---------- */

#define CHECK(call)                                                                                                  \
  do {                                                                                                               \
    if ((call) != napi_ok) {                                                                                         \
      napi_throw_error(env, NULL, "uftp-udp: " #call " failed");                                                     \
      return NULL;                                                                                                   \
    }                                                                                                                \
  } while (0)

static napi_value int_value(napi_env env, int32_t v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

static sock_t *this_sock(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  void *p = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, self, &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, NULL, "uftp-udp: not a Socket");
    return NULL;
  }
  return (sock_t *)p;
}

static int arg_int(napi_env env, napi_value v, int32_t *out) {
  if (napi_get_value_int32(env, v, out) != napi_ok) {
    napi_throw_type_error(env, NULL, "uftp-udp: integer argument expected");
    return -1;
  }
  return 0;
}

static int arg_str(napi_env env, napi_value v, char *out, size_t cap) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, out, cap, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "uftp-udp: string argument expected");
    return -1;
  }
  return 0;
}

/* Parses an IPv4 or IPv6 literal (IPv6 may carry %scope, a name or a number) into a sockaddr for this socket's
 * family: an IPv4 address on an IPv6 socket becomes ::ffff:a.b.c.d. Returns 0 or -EINVAL / -EAFNOSUPPORT. */
static int make_sockaddr(int family, const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  strncpy(host, addr, sizeof host - 1);
  host[sizeof host - 1] = 0;
  if (family == 4) {
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) return strchr(host, ':') ? -EAFNOSUPPORT : -EINVAL;
    *len = sizeof *s4;
    return 0;
  }
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
  s6->sin6_family = AF_INET6;
  s6->sin6_port = htons((uint16_t)port);
  char *pct = strchr(host, '%');
  if (pct) {
    *pct = 0;
    const char *scope = pct + 1;
    char *end;
    unsigned long n = strtoul(scope, &end, 10);
    s6->sin6_scope_id = (*scope && !*end) ? (uint32_t)n : if_nametoindex(scope);
    if (s6->sin6_scope_id == 0) return -ENODEV;
  }
  if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1) {
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) != 1) return -EINVAL;
    s6->sin6_addr.s6_addr[10] = 0xff;
    s6->sin6_addr.s6_addr[11] = 0xff;
    memcpy(&s6->sin6_addr.s6_addr[12], &a4, 4);
  }
  *len = sizeof *s6;
  return 0;
}

/* ---------- life cycle ---------- */

static void free_raw(sock_t *s);

static void free_sock(napi_env env, sock_t *s) {
  if (s->on_batch) napi_delete_reference(env, s->on_batch);
  if (s->on_writable) napi_delete_reference(env, s->on_writable);
  if (s->rbuf_ref) napi_delete_reference(env, s->rbuf_ref);
  if (s->rmeta_ref) napi_delete_reference(env, s->rmeta_ref);
  if (s->sbuf_ref) napi_delete_reference(env, s->sbuf_ref);
  if (s->smeta_ref) napi_delete_reference(env, s->smeta_ref);
  if (s->stats_ref) napi_delete_reference(env, s->stats_ref);
  if (s->arm_ref) napi_delete_reference(env, s->arm_ref);
  if (s->actx) napi_async_destroy(env, s->actx);
  free_raw(s);
}

static void free_raw(sock_t *s) {
  store_free(s);
  pthread_mutex_destroy(&s->mu);
  free(s->rmsgs);
  free(s->riov);
  free(s->rnames);
  free(s->rctrl);
  free(s);
}

static void on_handle_closed(uv_handle_t *h) {
  sock_t *s = (sock_t *)h->data;
  if (--s->handles_open > 0) return;
  if (s->freed_pending) {
    /* the environment finalized the object while the handle was open (teardown): memory only, no N-API */
    free_raw(s);
    return;
  }
  if (s->self) {
    napi_delete_reference(s->env, s->self);
    s->self = NULL;
  }
}

/* Stops polling and closes the fd. The uv handles close asynchronously; the fd is closed at once (uv_poll_stop has
 * taken it out of epoll; the guard has let go of the socket). What the guard still holds is freed. Idempotent. */
static void do_close(sock_t *s) {
  if (s->closed) return;
  s->closed = 1;
  guard_unregister(s);
  if (s->poll_init) {
    uv_poll_stop(&s->poll);
    s->poll_init = 0;
    uv_close((uv_handle_t *)&s->poll, on_handle_closed);
  }
  if (s->async_init) {
    s->async_init = 0;
    uv_close((uv_handle_t *)&s->async, on_handle_closed);
  }
  store_free(s);
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
  s->stats[ST_PENDING] = 0;
  if (s->arm) ((int32_t *)s->arm)[ARM_STATE] = ARM_IDLE;
}

static void finalize_sock(napi_env env, void *data, void *hint) {
  (void)hint;
  sock_t *s = (sock_t *)data;
  if (s->handles_open > 0) {
    /* only at environment teardown: `self` keeps the object alive while the handle is open */
    do_close(s);
    s->freed_pending = 1;
    return;
  }
  do_close(s);
  free_sock(env, s);
}

static void poll_cb(uv_poll_t *h, int status, int events);

static void update_poll(sock_t *s) {
  if (s->closed || !s->poll_init) return;
  int want = (s->started ? UV_READABLE : 0) | (s->sdone < s->sn ? UV_WRITABLE : 0);
  if (want == s->poll_events) return;
  s->poll_events = want;
  if (want) {
    uv_poll_start(&s->poll, want, poll_cb);
  } else {
    uv_poll_stop(&s->poll);
  }
}

/* ---------- receive ---------- */

static void parse_cmsgs(sock_t *s, struct msghdr *mh, int32_t *m, int *gro) {
  *gro = 0;
  m[RM_IFINDEX] = 0;
  m[RM_TOS] = -1;
  m[RM_DSTFAM] = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      struct in_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof pi);
      m[RM_IFINDEX] = pi.ipi_ifindex;
      if (m[RM_DSTFAM] == 0) {
        memset(&m[RM_DST], 0, 16);
        memcpy(&m[RM_DST], &pi.ipi_addr, 4);
        m[RM_DSTFAM] = 4;
      }
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      struct in6_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof pi);
      m[RM_IFINDEX] = (int32_t)pi.ipi6_ifindex;
      memcpy(&m[RM_DST], &pi.ipi6_addr, 16);
      m[RM_DSTFAM] = 6;
    } else if (c->cmsg_level == IPPROTO_IP && (c->cmsg_type == IP_TOS || c->cmsg_type == IP_RECVTOS)) {
      m[RM_TOS] = *(uint8_t *)CMSG_DATA(c);
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_TCLASS) {
      int v;
      memcpy(&v, CMSG_DATA(c), sizeof v);
      m[RM_TOS] = v & 0xff;
    } else if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
      int v;
      memcpy(&v, CMSG_DATA(c), sizeof v);
      *gro = v;
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
      uint32_t v;
      memcpy(&v, CMSG_DATA(c), sizeof v);
      s->stats[ST_RXQ_OVFL] = v;
    }
  }
}

/* Fills the meta entries of ring slot i from entry k on; returns how many (more than one when the kernel
 * coalesced datagrams with GRO: they are split at the segment size it reports). */
static int fill_meta(sock_t *s, int i, int k) {
  struct mmsghdr *mm = &s->rmsgs[i];
  int32_t *m = s->rmeta + (size_t)k * RM_SIZE;
  unsigned real = mm->msg_len;
  unsigned len = real > (unsigned)s->rslot_size ? (unsigned)s->rslot_size : real;
  m[RM_REALLEN] = (int32_t)real;
  m[RM_LEN] = (int32_t)len;
  m[RM_OFF] = i * s->rslot_size;
  int trunc = (mm->msg_hdr.msg_flags & MSG_TRUNC) != 0 || real > (unsigned)s->rslot_size;
  m[RM_FLAGS] = trunc ? 1 : 0;
  if (trunc) s->stats[ST_TRUNCATED]++;
  struct sockaddr_storage *ss = &s->rnames[i];
  memset(&m[RM_SRC], 0, 16);
  if (ss->ss_family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    m[RM_FAMILY] = 4;
    m[RM_PORT] = ntohs(a->sin_port);
    memcpy(&m[RM_SRC], &a->sin_addr, 4);
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    m[RM_FAMILY] = 6;
    m[RM_PORT] = ntohs(a->sin6_port);
    memcpy(&m[RM_SRC], &a->sin6_addr, 16);
  }
  int gro;
  parse_cmsgs(s, &mm->msg_hdr, m, &gro);
  if (gro <= 0 || trunc || len <= (unsigned)gro) return 1;
  int n = (int)((len + (unsigned)gro - 1) / (unsigned)gro);
  if (k + n > s->rmeta_cap) n = s->rmeta_cap - k; /* cannot happen: 64 entries per slot */
  for (int j = n - 1; j >= 0; j--) {
    int32_t *e = s->rmeta + (size_t)(k + j) * RM_SIZE;
    if (j > 0) memcpy(e, m, RM_SIZE * sizeof *m);
    unsigned at = (unsigned)j * (unsigned)gro;
    e[RM_OFF] = i * s->rslot_size + (int32_t)at;
    e[RM_LEN] = e[RM_REALLEN] = (int32_t)(len - at < (unsigned)gro ? len - at : (unsigned)gro);
  }
  s->stats[ST_GRO] += n;
  return n;
}

static void call_js(sock_t *s, napi_ref fn_ref, int argc, int32_t arg) {
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn, recv, argv[1], result;
  if (napi_get_reference_value(env, fn_ref, &fn) == napi_ok && fn) {
    napi_get_global(env, &recv);
    argv[0] = int_value(env, arg);
    s->in_callback = 1;
    napi_status st = napi_make_callback(env, s->actx, recv, fn, (size_t)argc, argv, &result);
    s->in_callback = 0;
    if (st == napi_pending_exception) {
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
      napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

#define RECV_ROUNDS 8
/* The receive spin (see do_recv): at most SPIN_TURN_NS or SPIN_MAX_TURNS turns in one poll callback, then back to
 * libuv (timers, the thread pool's completions, other sockets); libuv's epoll set is looked at every SPIN_CHECK
 * turns; a turn that sent more than SPIN_MAX_REPLY datagrams is not request/response. */
#define SPIN_TURN_NS 1000000
#define SPIN_MAX_TURNS 64
#define SPIN_CHECK 16
#define SPIN_MAX_REPLY 4

static int64_t mono_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Same address and port (the answer went back to the datagram's sender). */
static int same_peer(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family) return 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
  return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

/* Is anything other than this socket ready in libuv's epoll set (another socket, a thread-pool completion, a
 * signal)? Level-triggered: asking takes nothing from libuv. 1 = something else, 0 = nothing else; *mine is set when
 * this socket is readable. */
static int loop_busy(sock_t *s, int *mine) {
  /* libuv registers each watcher with data.fd = its fd. Were that ever not so, every event would count as
   * "something else" and the spin would simply never run. */
  struct epoll_event ev[8];
  *mine = 0;
  if (s->loop_fd < 0) return 1;
  int r;
  do r = epoll_wait(s->loop_fd, ev, 8, 0);
  while (r < 0 && errno == EINTR);
  if (r < 0) return 1;
  for (int i = 0; i < r; i++) {
    if (ev[i].data.fd != s->fd) return 1;
    *mine = 1;
  }
  return 0;
}

/* Waits without sleeping until this socket has a datagram (1), `until` passes (0: a miss), or something else of
 * the event loop is ready (-1: libuv must run). One system call per round covers both. */
static int spin_wait(sock_t *s, int64_t until) {
  for (;;) {
    int mine;
    if (atomic_load_explicit(&s->ovf_count, memory_order_relaxed) > 0) return 1;
    if (loop_busy(s, &mine)) return -1;
    if (mine) return 1;
    if (mono_ns() >= until) return 0;
  }
}

/* The armed reply: request/response traffic whose next answer is known before the request comes (a lock-step TFTP
 * get: after DATA N, ACK N from the peer is answered by DATA N+1, read ahead). JS arms it after each turn: "if the
 * next datagram is exactly these bytes from that peer, send this". Here, right after a receive, before JS runs:
 * when the receive got exactly one datagram, from the armed peer, with exactly the armed bytes, and nothing staged
 * is waiting for the kernel, the reply goes out with one sendto and the state says FIRED; JS learns it in the batch
 * callback (the event loop then drops the machine's equal transmit once). Any receive disarms: the reply fires at
 * most once and only for the very next datagram, so a duplicate request never gets a second answer. A reply the
 * kernel refuses is left to JS (state IDLE: the machine sends it as usual). */
static void arm_check(sock_t *s, int n) {
  int32_t *a = (int32_t *)s->arm;
  if (a[ARM_STATE] != ARM_ARMED) {
    if (a[ARM_STATE] == ARM_FIRED) a[ARM_STATE] = ARM_IDLE; /* JS did not look: the old news goes */
    return;
  }
  a[ARM_STATE] = ARM_IDLE;
  struct mmsghdr *mm = &s->rmsgs[0];
  int d = a[ARM_DEST];
  int elen = a[ARM_EXPECT_LEN], rlen = a[ARM_REPLY_LEN];
  if (elen < 1 || elen > ARM_EXPECT_MAX || rlen < 0 || rlen > ARM_REPLY_MAX) return;
  if (n != 1 || (mm->msg_hdr.msg_flags & MSG_TRUNC) || mm->msg_len != (unsigned)elen || d < 0 || d >= MAX_DESTS ||
      s->sdone < s->sn || !same_peer(&s->dests[d], &s->rnames[0]) || memcmp(s->rbuf, s->arm + ARM_EXPECT_AT, (size_t)elen) != 0)
    return;
  ssize_t r;
  do r = sendto(s->fd, s->arm + ARM_REPLY_AT, (size_t)rlen, 0, (struct sockaddr *)&s->dests[d], s->destlen[d]);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    s->stats[ST_ARM_FAILED]++;
    return;
  }
  s->stats[ST_SENT]++;
  s->stats[ST_ARM_FIRED]++;
  s->last_dest = d;
  a[ARM_STATE] = ARM_FIRED;
}

/* Reads what the socket has, calling JS once per batch, while batches come back full (up to RECV_ROUNDS).
 *
 * The spin: request/response traffic (one datagram in, its answer sent back to its sender within the callback,
 * as a lock-step TFTP transfer) would otherwise go back to libuv, sleep in epoll and be woken for the next request:
 * a loop iteration, a context switch and a wake-up per round trip. After such a turn the engine reads again at
 * once and, if nothing is there yet, waits for up to `spin_ns` without sleeping; the next request is handled in
 * this same libuv callback. It stops as soon as anything else of the event loop is ready (checked while waiting,
 * and every SPIN_CHECK turns served this way), and one callback serves at most SPIN_MAX_TURNS such turns or
 * SPIN_TURN_NS (then libuv runs its timers). A wait that ends without a datagram (a miss) makes the socket skip
 * the next 1, 2, 4 ... 64 chances (back-off), so a peer that answers slowly, or a daemon that idles, stops
 * spinning; a hit resets it. A batch of more than one datagram, a turn that sent nothing, or more than
 * SPIN_MAX_REPLY datagrams, or sent them elsewhere (a proxy, a multicast sender) never spins. */
static int read_socket(sock_t *s, int *err) {
  for (int i = 0; i < s->rslots; i++) {
    s->rmsgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
    s->rmsgs[i].msg_hdr.msg_controllen = CTRL_LEN;
    s->rmsgs[i].msg_hdr.msg_flags = 0;
  }
  int n = recvmmsg(s->fd, s->rmsgs, (unsigned)s->rslots, MSG_DONTWAIT | MSG_TRUNC, NULL);
  *err = n < 0 ? errno : 0;
  return n;
}

/* One read into the ring: what the guard stored first (all of it was in the socket before what is there now), then
 * the socket. Under the socket's lock when guarded, so that the two threads never read the socket at once. */
static int read_ring(sock_t *s, int *err, int *from_store) {
  *from_store = 0;
  if (!s->guard_reg) return read_socket(s, err);
  atomic_fetch_add_explicit(&s->read_seq, 1, memory_order_relaxed);
  pthread_mutex_lock(&s->mu);
  int n;
  if (atomic_load_explicit(&s->ovf_count, memory_order_relaxed) > 0) {
    n = store_take(s, s->rslots);
    *err = 0;
    *from_store = 1;
  } else {
    n = read_socket(s, err);
  }
  pthread_mutex_unlock(&s->mu);
  if (n > 0) guard_note_recv(s);
  return n;
}

static void do_recv_turns(sock_t *s) {
  int rounds = 0, spun = 0, spinning = 0;
  int64_t turn_start = 0;
  while (!s->closed && s->started) {
    int err, from_store;
    int n = read_ring(s, &err, &from_store);
    if (n < 0) {
      if (err == EINTR) continue;
      /* EAGAIN: drained. Anything else (an ICMP error queued on the socket) is dropped here: it was read */
      if (err != EAGAIN && err != EWOULDBLOCK) {
        s->stats[ST_LAST_ERRNO] = err;
        return;
      }
      if (!spinning) return;
      int64_t now = mono_ns();
      int r = spin_wait(s, now + s->spin_ns);
      int64_t end = mono_ns();
      s->stats[ST_SPIN_NS] += (double)(end - now);
      if (r > 0) continue; /* read it (a hit, counted below) */
      spinning = 0;
      if (r < 0) {
        s->stats[ST_SPIN_YIELDS]++;
        return;
      }
      s->stats[ST_SPIN_MISSES]++;
      s->spin_misses++;
      s->spin_skip = 1 << (s->spin_misses < 7 ? s->spin_misses - 1 : 6);
      return;
    }
    if (n == 0) return;
    if (spinning) {
      s->stats[ST_SPIN_HITS]++;
      s->spin_misses = 0;
      spinning = 0;
    }
    double sent0 = s->stats[ST_SENT];
    arm_check(s, n);
    int k = 0;
    for (int i = 0; i < n; i++) k += fill_meta(s, i, k);
    s->stats[ST_RECV] += k;
    s->stats[ST_RECV_CALLS]++;
    call_js(s, s->on_batch, 1, k);
    if (n == s->rslots || from_store) {
      if (++rounds >= RECV_ROUNDS) return;
      continue;
    }
    /* drained: read again for the answer to what was just sent (spinning), or go back to libuv */
    double replies = s->stats[ST_SENT] - sent0;
    if (s->spin_ns <= 0 || s->closed || !s->started || k != 1 || replies < 1 || replies > SPIN_MAX_REPLY ||
        s->sdone < s->sn || !same_peer(&s->dests[s->last_dest], &s->rnames[0]))
      return;
    if (s->spin_skip > 0) {
      s->spin_skip--;
      return;
    }
    if (++spun > SPIN_MAX_TURNS) return;
    if (spun == 1) turn_start = mono_ns();
    else if (spun % SPIN_CHECK == 0) {
      int mine;
      if (loop_busy(s, &mine)) {
        s->stats[ST_SPIN_YIELDS]++;
        return;
      }
      if (mono_ns() - turn_start >= SPIN_TURN_NS) return;
    }
    spinning = 1;
  }
}

static void do_recv(sock_t *s) {
  do_recv_turns(s);
  /* the guard's store is not seen by uv_poll: if it still holds datagrams, come back on the next loop iteration
   * (after timers and other sockets, as a full socket would) */
  if (!s->closed && s->started && s->async_init && atomic_load_explicit(&s->ovf_count, memory_order_relaxed) > 0)
    uv_async_send(&s->async);
}

static void async_cb(uv_async_t *h) {
  sock_t *s = (sock_t *)h->data;
  if (s->closed) return;
  do_recv(s);
  if (!s->closed) update_poll(s);
}

/* ---------- send ---------- */

static int send_error_is_transient(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS || e == EINTR; }

static void mark_failed(sock_t *s, int idx, int e) {
  s->smeta[(size_t)idx * SM_SIZE + SM_RESULT] = -e;
  s->stats[ST_SEND_ERRORS]++;
  s->stats[ST_LAST_ERRNO] = e;
}

/* Sends the collected sendmmsg vector [0, k). Returns 0 when all went (or failed for good, marked), -1 when the
 * kernel is full: *sent_upto is then the vector index of the first datagram not sent. */
static int send_vector(sock_t *s, int k, int *first_unsent) {
  int at = 0;
  while (at < k) {
    int r = sendmmsg(s->fd, &s->smsgs[at], (unsigned)(k - at), 0);
    s->stats[ST_SENDMMSG_CALLS]++;
    if (r > 0) {
      s->stats[ST_SENT] += r;
      at += r;
      continue;
    }
    int e = r == 0 ? EAGAIN : errno;
    if (send_error_is_transient(e)) {
      if (e == EINTR) continue;
      *first_unsent = at;
      return -1;
    }
    mark_failed(s, s->sidx[at], e);
    at++;
  }
  return 0;
}

/* One GSO sendmsg of `count` datagrams starting at staged index i. Returns 0 sent (or failed for good), -1 full,
 * 1 GSO refused (send the run another way). */
static int send_gso(sock_t *s, int i, int count, int seg, int total) {
  int32_t *m = s->smeta + (size_t)i * SM_SIZE;
  int d = m[SM_DEST];
  struct iovec iov = {s->sbuf + m[SM_OFF], (size_t)total};
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr mh = {0};
  mh.msg_name = &s->dests[d];
  mh.msg_namelen = s->destlen[d];
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = u.buf;
  mh.msg_controllen = sizeof u.buf;
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_UDP;
  c->cmsg_type = UDP_SEGMENT;
  c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  uint16_t gs = (uint16_t)seg;
  memcpy(CMSG_DATA(c), &gs, sizeof gs);
  for (;;) {
    ssize_t r = sendmsg(s->fd, &mh, 0);
    s->stats[ST_GSO_CALLS]++;
    if (r >= 0) {
      s->stats[ST_SENT] += count;
      return 0;
    }
    int e = errno;
    if (e == EINTR) continue;
    if (send_error_is_transient(e)) return -1;
    if (e == EIO || e == ENOPROTOOPT || e == EOPNOTSUPP) {
      s->gso_ok = 0; /* the device or kernel cannot: never again on this socket */
      s->stats[ST_GSO_ENABLED] = 0;
      s->stats[ST_GSO_FALLBACKS]++;
      return 1;
    }
    if (e == EINVAL || e == EMSGSIZE) {
      s->stats[ST_GSO_FALLBACKS]++;
      return 1; /* this run (a segment above the MTU, say): one by one */
    }
    for (int k = 0; k < count; k++) mark_failed(s, i + k, e);
    return 0;
  }
}

/* Length of the GSO run starting at staged index i (1 = no run). */
static int gso_run(sock_t *s, int i, int *total) {
  int32_t *m0 = s->smeta + (size_t)i * SM_SIZE;
  int seg = m0[SM_LEN], d = m0[SM_DEST];
  int n = 1, bytes = seg, next_off = m0[SM_OFF] + seg;
  if (seg <= 0) {
    *total = bytes;
    return 1;
  }
  while (i + n < s->sn && n < GSO_MAX_SEGS) {
    int32_t *m = s->smeta + (size_t)(i + n) * SM_SIZE;
    if (m[SM_DEST] != d || m[SM_OFF] != next_off || m[SM_LEN] > seg || m[SM_LEN] <= 0 || bytes + m[SM_LEN] > GSO_MAX_BYTES) break;
    bytes += m[SM_LEN];
    next_off += m[SM_LEN];
    n++;
    if (m[SM_LEN] < seg) break; /* a shorter datagram may only end a run */
  }
  *total = bytes;
  return n;
}

/* Sends staged datagrams [sdone, sn). Returns the number left (kernel full) or 0. */
static int do_flush(sock_t *s) {
  int k = 0, nogso_until = 0;
  while (s->sdone + k < s->sn || k > 0) {
    int i = s->sdone + k;
    int total = 0, run = 1;
    if (i < s->sn && s->gso_ok && i >= nogso_until) {
      run = gso_run(s, i, &total);
      if (run < GSO_MIN_RUN) run = 1;
    }
    /* send the vector when it is full, at the end, or before a GSO run */
    if (k == MMSG_MAX || i >= s->sn || run > 1) {
      if (k > 0) {
        int unsent = 0;
        if (send_vector(s, k, &unsent) < 0) {
          s->sdone += unsent;
          goto blocked;
        }
        s->sdone += k;
        k = 0;
        continue;
      }
    }
    if (i >= s->sn) break;
    if (run > 1) {
      int32_t *m = s->smeta + (size_t)i * SM_SIZE;
      int r = send_gso(s, i, run, m[SM_LEN], total);
      if (r < 0) goto blocked;
      if (r == 0) {
        s->sdone += run;
        continue;
      }
      /* refused: the run goes by sendmmsg */
      nogso_until = i + run;
    }
    int32_t *m = s->smeta + (size_t)i * SM_SIZE;
    int d = m[SM_DEST];
    s->siov[k].iov_base = s->sbuf + m[SM_OFF];
    s->siov[k].iov_len = (size_t)m[SM_LEN];
    memset(&s->smsgs[k].msg_hdr, 0, sizeof s->smsgs[k].msg_hdr);
    s->smsgs[k].msg_hdr.msg_name = &s->dests[d];
    s->smsgs[k].msg_hdr.msg_namelen = s->destlen[d];
    s->smsgs[k].msg_hdr.msg_iov = &s->siov[k];
    s->smsgs[k].msg_hdr.msg_iovlen = 1;
    s->sidx[k] = i;
    k++;
  }
  s->stats[ST_PENDING] = 0;
  return 0;
blocked:
  s->stats[ST_BLOCKED]++;
  s->stats[ST_PENDING] = s->sn - s->sdone;
  return s->sn - s->sdone;
}

static void poll_cb(uv_poll_t *h, int status, int events) {
  sock_t *s = (sock_t *)h->data;
  if (s->closed) return;
  if (status < 0) {
    s->stats[ST_LAST_ERRNO] = -status;
    return;
  }
  if (events & UV_WRITABLE && s->sdone < s->sn) {
    if (do_flush(s) == 0) {
      update_poll(s);
      if (s->on_writable) call_js(s, s->on_writable, 1, 0);
      if (s->closed) return;
    }
  }
  if (events & UV_READABLE) do_recv(s);
  if (!s->closed) update_poll(s);
}

/* Destination address, interface and TOS of every datagram (control messages), on or off. On an IPv6 socket
 * IPV6_PKTINFO also covers v4-mapped traffic (its address as ::ffff:a.b.c.d); its TOS comes as IP_TOS. */
static void set_recv_info(sock_t *s, int on) {
  if (s->family == 4) {
    setsockopt(s->fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on);
    setsockopt(s->fd, IPPROTO_IP, IP_RECVTOS, &on, sizeof on);
  } else {
    setsockopt(s->fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on);
    setsockopt(s->fd, IPPROTO_IPV6, IPV6_RECVTCLASS, &on, sizeof on);
    setsockopt(s->fd, IPPROTO_IP, IP_RECVTOS, &on, sizeof on);
  }
}

/* ---------- JS methods ---------- */

/* new Socket(family, slots, slotSize, sendSlots, sendBytes) */
static napi_value New(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], self;
  CHECK(napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "uftp-udp: new Socket(family, slots, slotSize, sendSlots, sendBytes)");
    return NULL;
  }
  int32_t family, slots, slot_size, sslots, sbytes;
  if (arg_int(env, argv[0], &family) || arg_int(env, argv[1], &slots) || arg_int(env, argv[2], &slot_size) ||
      arg_int(env, argv[3], &sslots) || arg_int(env, argv[4], &sbytes))
    return NULL;
  if ((family != 4 && family != 6) || slots < 1 || slots > 1024 || slot_size < 64 || slot_size > 65536 || sslots < 1 ||
      sslots > 65536 || sbytes < 65536 || sbytes > (64 << 20)) {
    napi_throw_range_error(env, NULL, "uftp-udp: socket parameters out of range");
    return NULL;
  }
  sock_t *s = calloc(1, sizeof *s);
  if (!s) {
    napi_throw_error(env, NULL, "uftp-udp: out of memory");
    return NULL;
  }
  s->env = env;
  s->family = family;
  s->rslots = slots;
  s->rslot_size = slot_size;
  s->sslots = sslots;
  s->sbytes = sbytes;
  s->gso_ok = 1;
  s->loop_fd = -1;
  s->guard_limit = GUARD_DEFAULT_LIMIT;
  s->guard_busy16 = GUARD_BUSY16_DEFAULT;
  {
    /* priority inheritance: the main thread holds this lock across its recvmmsg, and the scheduler preempts it
     * most often right there, at the syscall's return. The guard's first lock of a drain waits for it (see
     * guard_drain); with PTHREAD_PRIO_INHERIT the preempted holder runs at the guard's real-time priority until it
     * lets go, microseconds, instead of the guard finding the lock taken for the whole preemption. */
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    if (pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_INHERIT) != 0) pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_NONE);
    pthread_mutex_init(&s->mu, &ma);
    pthread_mutexattr_destroy(&ma);
  }
  s->fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->fd < 0) {
    int e = errno;
    pthread_mutex_destroy(&s->mu);
    free(s);
    napi_throw_error(env, NULL, strerror(e));
    return NULL;
  }
  int one = 1;
  set_recv_info(s, 1);
  setsockopt(s->fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);

  napi_value rbuf, rmeta, sbuf, smeta, stats, arm;
  void *p;
  CHECK(napi_create_arraybuffer(env, (size_t)slots * slot_size, &p, &rbuf));
  s->rbuf = p;
  /* UDP GRO needs room for a whole coalesced datagram (64 KiB) per slot, and 64 meta entries per slot */
  int gro = slot_size >= 65536;
  s->rmeta_cap = gro ? slots * GRO_MAX_SEGS : slots;
  if (gro) setsockopt(s->fd, SOL_UDP, UDP_GRO, &one, sizeof one);
  CHECK(napi_create_arraybuffer(env, (size_t)s->rmeta_cap * RM_SIZE * 4, &p, &rmeta));
  s->rmeta = p;
  CHECK(napi_create_arraybuffer(env, (size_t)sbytes, &p, &sbuf));
  s->sbuf = p;
  CHECK(napi_create_arraybuffer(env, (size_t)sslots * SM_SIZE * 4, &p, &smeta));
  s->smeta = p;
  CHECK(napi_create_arraybuffer(env, ST_SIZE * 8, &p, &stats));
  s->stats = p;
  s->stats[ST_GSO_ENABLED] = 1;
  s->stats[ST_GUARD_LIMIT] = (double)s->guard_limit;
  CHECK(napi_create_arraybuffer(env, ARM_BYTES, &p, &arm));
  s->arm = p;
  memset(s->arm, 0, ARM_HEADER);
  napi_create_reference(env, rbuf, 1, &s->rbuf_ref);
  napi_create_reference(env, rmeta, 1, &s->rmeta_ref);
  napi_create_reference(env, sbuf, 1, &s->sbuf_ref);
  napi_create_reference(env, smeta, 1, &s->smeta_ref);
  napi_create_reference(env, stats, 1, &s->stats_ref);
  napi_create_reference(env, arm, 1, &s->arm_ref);
  napi_set_named_property(env, self, "recvBuffer", rbuf);
  napi_set_named_property(env, self, "recvMeta", rmeta);
  napi_set_named_property(env, self, "sendBuffer", sbuf);
  napi_set_named_property(env, self, "sendMeta", smeta);
  napi_set_named_property(env, self, "statsBuffer", stats);
  napi_set_named_property(env, self, "armBuffer", arm);

  s->rmsgs = calloc((size_t)slots, sizeof *s->rmsgs);
  s->riov = calloc((size_t)slots, sizeof *s->riov);
  s->rnames = calloc((size_t)slots, sizeof *s->rnames);
  s->rctrl = calloc((size_t)slots, CTRL_LEN);
  if (!s->rmsgs || !s->riov || !s->rnames || !s->rctrl) {
    close(s->fd);
    s->fd = -1;
    s->closed = 1;
    free_sock(env, s);
    napi_throw_error(env, NULL, "uftp-udp: out of memory");
    return NULL;
  }
  for (int i = 0; i < slots; i++) {
    s->riov[i].iov_base = s->rbuf + (size_t)i * slot_size;
    s->riov[i].iov_len = (size_t)slot_size;
    struct msghdr *mh = &s->rmsgs[i].msg_hdr;
    mh->msg_name = &s->rnames[i];
    mh->msg_iov = &s->riov[i];
    mh->msg_iovlen = 1;
    mh->msg_control = s->rctrl + (size_t)i * CTRL_LEN;
  }
  napi_value name;
  napi_create_string_utf8(env, "uftp-udp", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, self, name, &s->actx);
  if (napi_wrap(env, self, s, finalize_sock, NULL, NULL) != napi_ok) {
    close(s->fd);
    s->fd = -1;
    s->closed = 1;
    free_sock(env, s);
    napi_throw_error(env, NULL, "uftp-udp: napi_wrap failed");
    return NULL;
  }
  return self;
}

/* bind(address, port, reuseAddr, ipv6Only) -> 0 | -errno */
static napi_value Bind(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  sock_t *s = this_sock(env, info, &argc, argv);
  if (!s) return NULL;
  char addr[128];
  int32_t port, reuse, v6only;
  if (arg_str(env, argv[0], addr, sizeof addr) || arg_int(env, argv[1], &port) || arg_int(env, argv[2], &reuse) ||
      arg_int(env, argv[3], &v6only))
    return NULL;
  if (s->closed) return int_value(env, -EBADF);
  if (reuse) {
    int one = 1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  }
  if (s->family == 6) {
    int v = v6only ? 1 : 0;
    setsockopt(s->fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof v);
  }
  struct sockaddr_storage ss;
  socklen_t len;
  int r = make_sockaddr(s->family, addr, port, &ss, &len);
  if (r < 0) return int_value(env, r);
  if (bind(s->fd, (struct sockaddr *)&ss, len) != 0) return int_value(env, -errno);
  return int_value(env, 0);
}

/* start(onBatch, onWritable): begins reading; -errno if the loop refuses the fd */
static napi_value Start(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], self;
  void *p;
  CHECK(napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  CHECK(napi_unwrap(env, self, &p));
  sock_t *s = p;
  if (s->closed) return int_value(env, -EBADF);
  if (s->poll_init) return int_value(env, -EALREADY);
  napi_create_reference(env, argv[0], 1, &s->on_batch);
  napi_create_reference(env, argv[1], 1, &s->on_writable);
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  int r = uv_poll_init(loop, &s->poll, s->fd);
  if (r < 0) return int_value(env, r);
  s->loop_fd = uv_backend_fd(loop);
  s->poll.data = s;
  s->poll_init = 1;
  s->handles_open = 1;
  if (uv_async_init(loop, &s->async, async_cb) == 0) {
    s->async.data = s;
    s->async_init = 1;
    s->handles_open++;
    uv_unref((uv_handle_t *)&s->async); /* the poll handle alone says whether the socket keeps the loop alive */
    if (s->guard_limit > 0 && guard_register(s) == 0) s->stats[ST_GUARD_ON] = 1;
  }
  s->started = 1;
  napi_create_reference(env, self, 1, &s->self); /* keeps the object while the handle lives */
  s->poll_events = UV_READABLE;
  uv_poll_start(&s->poll, UV_READABLE, poll_cb);
  return int_value(env, 0);
}

/* setDest(index, address, port) -> 0 | -errno */
static napi_value SetDest(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  sock_t *s = this_sock(env, info, &argc, argv);
  if (!s) return NULL;
  int32_t idx, port;
  char addr[128];
  if (arg_int(env, argv[0], &idx) || arg_str(env, argv[1], addr, sizeof addr) || arg_int(env, argv[2], &port)) return NULL;
  if (idx < 0 || idx >= MAX_DESTS || port < 0 || port > 65535) return int_value(env, -EINVAL);
  return int_value(env, make_sockaddr(s->family, addr, port, &s->dests[idx], &s->destlen[idx]));
}

/* flush(n): sends staged datagrams up to n; -> number still staged (kernel full; onWritable follows) */
static napi_value Flush(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  sock_t *s = this_sock(env, info, &argc, argv);
  if (!s) return NULL;
  int32_t n;
  if (arg_int(env, argv[0], &n)) return NULL;
  if (s->closed) return int_value(env, -EBADF);
  if (n < 0 || n > s->sslots) return int_value(env, -EINVAL);
  for (int i = s->sn; i < n; i++) {
    int32_t *m = s->smeta + (size_t)i * SM_SIZE;
    if (m[SM_OFF] < 0 || m[SM_LEN] < 0 || (int64_t)m[SM_OFF] + m[SM_LEN] > s->sbytes || m[SM_DEST] < 0 ||
        m[SM_DEST] >= MAX_DESTS) {
      return int_value(env, -EINVAL);
    }
    m[SM_RESULT] = 0;
  }
  if (n > s->sn) {
    s->sn = n;
    s->last_dest = s->smeta[(size_t)(n - 1) * SM_SIZE + SM_DEST];
  }
  if (s->sdone < s->sn && s->poll_events & UV_WRITABLE) {
    s->stats[ST_PENDING] = s->sn - s->sdone; /* waiting for writability: queued behind */
    return int_value(env, s->sn - s->sdone);
  }
  int left = do_flush(s);
  if (left == 0) {
    s->sdone = s->sn = 0;
  } else {
    update_poll(s);
  }
  return int_value(env, left);
}

/* reset(): after onWritable, the staging is empty again */
static napi_value ResetStaging(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  sock_t *s = this_sock(env, info, &argc, NULL);
  if (!s) return NULL;
  if (s->sdone >= s->sn) s->sdone = s->sn = 0;
  return int_value(env, s->sn - s->sdone);
}

/* multicastIf(ifindex, address): outgoing multicast interface; IPv4 also takes the interface's address
 * (the source address of what we send), "" for any */
static napi_value MulticastIf(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  sock_t *s = this_sock(env, info, &argc, argv);
  if (!s) return NULL;
  int32_t ifindex;
  char addr[128];
  if (arg_int(env, argv[0], &ifindex) || arg_str(env, argv[1], addr, sizeof addr)) return NULL;
  if (s->closed) return int_value(env, -EBADF);
  int r;
  if (s->family == 6) {
    r = setsockopt(s->fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex, sizeof ifindex);
  } else {
    struct ip_mreqn mr;
    memset(&mr, 0, sizeof mr);
    mr.imr_ifindex = ifindex;
    if (addr[0] && inet_pton(AF_INET, addr, &mr.imr_address) != 1) return int_value(env, -EINVAL);
    r = setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr);
  }
  return int_value(env, r == 0 ? 0 : -errno);
}

/* ntop(slot, which): the source (0) or destination (1) address of a received datagram as text */
static napi_value Ntop(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  sock_t *s = this_sock(env, info, &argc, argv);
  if (!s) return NULL;
  int32_t slot, which;
  if (arg_int(env, argv[0], &slot) || arg_int(env, argv[1], &which)) return NULL;
  if (slot < 0 || slot >= s->rmeta_cap) return int_value(env, -EINVAL);
  int32_t *m = s->rmeta + (size_t)slot * RM_SIZE;
  int fam = which ? m[RM_DSTFAM] : m[RM_FAMILY];
  char text[INET6_ADDRSTRLEN];
  if (fam == 0 || !inet_ntop(fam == 4 ? AF_INET : AF_INET6, which ? (void *)&m[RM_DST] : (void *)&m[RM_SRC], text, sizeof text)) {
    napi_value u;
    napi_get_undefined(env, &u);
    return u;
  }
  napi_value r;
  napi_create_string_latin1(env, text, NAPI_AUTO_LENGTH, &r);
  return r;
}

/* local() -> [address, port] or -errno */
static napi_value Local(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  sock_t *s = this_sock(env, info, &argc, NULL);
  if (!s) return NULL;
  if (s->closed) return int_value(env, -EBADF);
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(s->fd, (struct sockaddr *)&ss, &len) != 0) return int_value(env, -errno);
  char text[INET6_ADDRSTRLEN];
  int port;
  if (ss.ss_family == AF_INET) {
    inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, text, sizeof text);
    port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  } else {
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, text, sizeof text);
    port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  }
  napi_value arr, a;
  napi_create_array_with_length(env, 2, &arr);
  napi_create_string_latin1(env, text, NAPI_AUTO_LENGTH, &a);
  napi_set_element(env, arr, 0, a);
  napi_set_element(env, arr, 1, int_value(env, port));
  return arr;
}

/* setOpt(which, value) -> 0 | -errno.  which: 1 rcvbuf 2 sndbuf 3 mcast ttl 4 mcast loop 5 tos 6 mcast ifindex
 *  7 unicast ttl 8 GSO on (1) / off (0) 9 per-datagram destination / interface / TOS on (1) / off (0)
 *  10 UDP GRO on (1, only with 64 KiB slots) / off (0) */
static napi_value SetOpt(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  sock_t *s = this_sock(env, info, &argc, argv);
  if (!s) return NULL;
  int32_t which, v;
  if (arg_int(env, argv[0], &which) || arg_int(env, argv[1], &v)) return NULL;
  if (s->closed) return int_value(env, -EBADF);
  int r = 0, v6 = s->family == 6;
  switch (which) {
  case 1: r = setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v); break;
  case 2: r = setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v); break;
  case 3:
    if (v6) {
      r = setsockopt(s->fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &v, sizeof v);
      (void)setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_TTL, &v, sizeof v);
    } else {
      r = setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_TTL, &v, sizeof v);
    }
    break;
  case 4:
    if (v6) {
      r = setsockopt(s->fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &v, sizeof v);
      (void)setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_LOOP, &v, sizeof v);
    } else {
      r = setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_LOOP, &v, sizeof v);
    }
    break;
  case 5:
    v &= 0xff;
    if (v6) {
      r = setsockopt(s->fd, IPPROTO_IPV6, IPV6_TCLASS, &v, sizeof v);
      (void)setsockopt(s->fd, IPPROTO_IP, IP_TOS, &v, sizeof v);
    } else {
      r = setsockopt(s->fd, IPPROTO_IP, IP_TOS, &v, sizeof v);
    }
    break;
  case 6:
    if (v6) {
      r = setsockopt(s->fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &v, sizeof v);
    } else {
      struct ip_mreqn mr;
      memset(&mr, 0, sizeof mr);
      mr.imr_ifindex = v;
      r = setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr);
    }
    break;
  case 7:
    r = v6 ? setsockopt(s->fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &v, sizeof v)
           : setsockopt(s->fd, IPPROTO_IP, IP_TTL, &v, sizeof v);
    break;
  case 9: set_recv_info(s, v ? 1 : 0); break;
  case 10:
    v = v && s->rslot_size >= 65536;
    r = setsockopt(s->fd, SOL_UDP, UDP_GRO, &v, sizeof v);
    break;
  case 11:
    if (v < 0 || v > 1000) return int_value(env, -EINVAL);
    s->spin_ns = (int64_t)v * 1000;
    s->spin_skip = s->spin_misses = 0;
    break;
  case 12:
    /* the stall guard's bound in bytes; 0 = no guard. Turning it on takes effect at start() */
    if (v != 0 && v < GUARD_MIN_LIMIT) return int_value(env, -EINVAL);
    if (s->guard_reg) {
      pthread_mutex_lock(&g_mu);
      pthread_mutex_lock(&s->mu);
      s->guard_limit = v;
      pthread_mutex_unlock(&s->mu);
      pthread_mutex_unlock(&g_mu);
    } else {
      s->guard_limit = v;
    }
    s->stats[ST_GUARD_LIMIT] = v;
    break;
  case 13:
    /* the fill (in sixteenths of the buffer) at which the guard drains a socket whose main thread still reads */
    if (v < 4 || v > 15) return int_value(env, -EINVAL);
    s->guard_busy16 = v;
    break;
  case 8:
    s->gso_ok = v ? 1 : 0;
    s->stats[ST_GSO_ENABLED] = s->gso_ok;
    break;
  default: return int_value(env, -EINVAL);
  }
  return int_value(env, r == 0 ? 0 : -errno);
}

/* getOpt(which) -> value | -errno.  which: 1 rcvbuf 2 sndbuf 5 tos */
static napi_value GetOpt(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  sock_t *s = this_sock(env, info, &argc, argv);
  if (!s) return NULL;
  int32_t which;
  if (arg_int(env, argv[0], &which)) return NULL;
  if (s->closed) return int_value(env, -EBADF);
  int v = 0;
  socklen_t len = sizeof v;
  int r;
  switch (which) {
  case 1: r = getsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &v, &len); break;
  case 2: r = getsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &v, &len); break;
  case 5:
    r = s->family == 6 ? getsockopt(s->fd, IPPROTO_IPV6, IPV6_TCLASS, &v, &len) : getsockopt(s->fd, IPPROTO_IP, IP_TOS, &v, &len);
    v &= 0xff;
    break;
  default: return int_value(env, -EINVAL);
  }
  return int_value(env, r == 0 ? v : -errno);
}

/* membership(join, group, ifindex, source|"") -> 0 | -errno: MCAST_(JOIN|LEAVE)_GROUP / _SOURCE_GROUP, both
 * families, by interface index */
static napi_value Membership(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  sock_t *s = this_sock(env, info, &argc, argv);
  if (!s) return NULL;
  int32_t join, ifindex;
  char group[128], source[128];
  if (arg_int(env, argv[0], &join) || arg_str(env, argv[1], group, sizeof group) || arg_int(env, argv[2], &ifindex) ||
      arg_str(env, argv[3], source, sizeof source))
    return NULL;
  if (s->closed) return int_value(env, -EBADF);
  int level = s->family == 6 ? IPPROTO_IPV6 : IPPROTO_IP;
  struct sockaddr_storage g, src;
  socklen_t len;
  /* an IPv4 group on an IPv4 socket; IPv6 (or v4-mapped) on an IPv6 socket */
  int gfam = strchr(group, ':') ? 6 : 4;
  int r = make_sockaddr(gfam, group, 0, &g, &len);
  if (r < 0) return int_value(env, r);
  if (source[0]) {
    r = make_sockaddr(gfam, source, 0, &src, &len);
    if (r < 0) return int_value(env, r);
    struct group_source_req gsr;
    memset(&gsr, 0, sizeof gsr);
    gsr.gsr_interface = (uint32_t)ifindex;
    memcpy(&gsr.gsr_group, &g, sizeof g);
    memcpy(&gsr.gsr_source, &src, sizeof src);
    r = setsockopt(s->fd, level, join ? MCAST_JOIN_SOURCE_GROUP : MCAST_LEAVE_SOURCE_GROUP, &gsr, sizeof gsr);
  } else {
    struct group_req gr;
    memset(&gr, 0, sizeof gr);
    gr.gr_interface = (uint32_t)ifindex;
    memcpy(&gr.gr_group, &g, sizeof g);
    r = setsockopt(s->fd, level, join ? MCAST_JOIN_GROUP : MCAST_LEAVE_GROUP, &gr, sizeof gr);
  }
  return int_value(env, r == 0 ? 0 : -errno);
}

static napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  sock_t *s = this_sock(env, info, &argc, NULL);
  if (!s) return NULL;
  do_close(s);
  return int_value(env, 0);
}

/* guardSync(): the stall guard's counters into the stats array */
static napi_value GuardSync(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  sock_t *s = this_sock(env, info, &argc, NULL);
  if (!s) return NULL;
  guard_sync(s);
  return int_value(env, 0);
}

/* guardInfo() -> [thread wake-ups, bytes held in all stores, thread running, sockets guarded, priority (0 normal,
 * 1 nice -20, 2 SCHED_FIFO)] (process-wide) */
static napi_value GuardInfo(napi_env env, napi_callback_info info) {
  (void)info;
  pthread_mutex_lock(&g_mu);
  int on = g_thread_on, n = 0;
  for (sock_t *s = g_socks; s; s = s->gnext) n++;
  pthread_mutex_unlock(&g_mu);
  double v[5] = {(double)atomic_load(&g_ticks), (double)atomic_load(&g_store), on, n, atomic_load(&g_prio)};
  napi_value arr, x;
  napi_create_array_with_length(env, 5, &arr);
  for (uint32_t i = 0; i < 5; i++) {
    napi_create_double(env, v[i], &x);
    napi_set_element(env, arr, i, x);
  }
  return arr;
}

/* fd() -> the descriptor (for tests and the DSCP helper), -1 when closed */
static napi_value Fd(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  sock_t *s = this_sock(env, info, &argc, NULL);
  if (!s) return NULL;
  return int_value(env, s->fd);
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"bind", NULL, Bind, NULL, NULL, NULL, napi_default, NULL},
    {"start", NULL, Start, NULL, NULL, NULL, napi_default, NULL},
    {"setDest", NULL, SetDest, NULL, NULL, NULL, napi_default, NULL},
    {"flush", NULL, Flush, NULL, NULL, NULL, napi_default, NULL},
    {"resetStaging", NULL, ResetStaging, NULL, NULL, NULL, napi_default, NULL},
    {"ntop", NULL, Ntop, NULL, NULL, NULL, napi_default, NULL},
    {"local", NULL, Local, NULL, NULL, NULL, napi_default, NULL},
    {"setOpt", NULL, SetOpt, NULL, NULL, NULL, napi_default, NULL},
    {"getOpt", NULL, GetOpt, NULL, NULL, NULL, napi_default, NULL},
    {"multicastIf", NULL, MulticastIf, NULL, NULL, NULL, napi_default, NULL},
    {"membership", NULL, Membership, NULL, NULL, NULL, napi_default, NULL},
    {"close", NULL, Close, NULL, NULL, NULL, napi_default, NULL},
    {"fd", NULL, Fd, NULL, NULL, NULL, napi_default, NULL},
    {"guardSync", NULL, GuardSync, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls;
  if (napi_define_class(env, "Socket", NAPI_AUTO_LENGTH, New, NULL, sizeof props / sizeof props[0], props, &cls) != napi_ok)
    return NULL;
  napi_set_named_property(env, exports, "Socket", cls);
  napi_value gi;
  if (napi_create_function(env, "guardInfo", NAPI_AUTO_LENGTH, GuardInfo, NULL, &gi) != napi_ok) return NULL;
  napi_set_named_property(env, exports, "guardInfo", gi);
  cipher_init(env, exports);
  pthread_mutex_lock(&g_mu);
  g_envs++;
  pthread_mutex_unlock(&g_mu);
  napi_add_env_cleanup_hook(env, guard_env_cleanup, env);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
