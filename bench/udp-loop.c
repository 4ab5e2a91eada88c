/*
 * The C baseline of bench/udp-engine.ts: a plain sendto(2) / recvfrom(2) loop, one syscall per datagram, as the
 * UFTP C programs do. Built by the benchmark at run time (cc -O2), not shipped.
 *
 *   udp-loop send ADDR PORT COUNT SIZE    sends COUNT datagrams of SIZE bytes (waits in poll(2) on EAGAIN)
 *   udp-loop recv PORT IDLE_MS            counts datagrams (blocking recvfrom) until IDLE_MS pass without one
 *
 * Prints one JSON line: {"count":N,"cpu":seconds of user+system CPU from the first datagram on}. ADDR may be
 * IPv4 or IPv6.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static double cpu(void) {
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  return r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv) {
  if (argc >= 6 && strcmp(argv[1], "send") == 0) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    int port = atoi(argv[3]), fam;
    if (strchr(argv[2], ':')) {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(port);
      inet_pton(AF_INET6, argv[2], &a->sin6_addr);
      len = sizeof *a;
      fam = AF_INET6;
    } else {
      struct sockaddr_in *a = (struct sockaddr_in *)&ss;
      a->sin_family = AF_INET;
      a->sin_port = htons(port);
      inet_pton(AF_INET, argv[2], &a->sin_addr);
      len = sizeof *a;
      fam = AF_INET;
    }
    long count = atol(argv[4]);
    int size = atoi(argv[5]);
    int fd = socket(fam, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int buf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    char *data = calloc(1, size);
    double t0 = cpu();
    long sent = 0;
    while (sent < count) {
      if (sendto(fd, data, size, 0, (struct sockaddr *)&ss, len) >= 0) {
        sent++;
      } else if (errno == EAGAIN || errno == ENOBUFS) {
        struct pollfd p = {fd, POLLOUT, 0};
        poll(&p, 1, 100);
      } else if (errno != EINTR) {
        perror("sendto");
        return 1;
      }
    }
    printf("{\"count\":%ld,\"cpu\":%.6f}\n", sent, cpu() - t0);
    return 0;
  }
  if (argc >= 4 && strcmp(argv[1], "recv") == 0) {
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    int off = 0, buf = 4 << 20;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(atoi(argv[2]));
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
      perror("bind");
      return 1;
    }
    int idle = atoi(argv[3]);
    printf("{\"ready\":true}\n");
    fflush(stdout);
    static char data[65536];
    long n = 0;
    /* blocking recvfrom, one syscall per datagram; SO_RCVTIMEO ends the run after IDLE_MS without one */
    struct timeval tv = {60, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    double t0 = cpu();
    for (;;) {
      struct sockaddr_storage from;
      socklen_t fl = sizeof from;
      if (recvfrom(fd, data, sizeof data, 0, (struct sockaddr *)&from, &fl) >= 0) {
        if (n++ == 0) {
          tv.tv_sec = idle / 1000;
          tv.tv_usec = (idle % 1000) * 1000;
          setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        }
      } else if (errno != EINTR) {
        break;
      }
    }
    printf("{\"count\":%ld,\"cpu\":%.6f}\n", n, cpu() - t0);
    return 0;
  }
  fprintf(stderr, "usage: udp-loop send ADDR PORT COUNT SIZE | recv PORT IDLE_MS\n");
  return 2;
}
