// A test app that answers each request with the exact bytes it received (head and body, as the
// proxy framed them), so that a test can check what the proxy forwards. GET /env answers the
// app's PORT instead. POST /early answers before reading the body, and then reads nothing more
// until the peer hangs up; POST /stream (with a Content-Length) echoes the body as a chunked
// answer while it still arrives. It listens on argv[1] if given, else on $PORT, on every address.
// `rawecho syscalls` instead tries what RuntimeDefault seccomp blocks and prints each errno.
//   cc -static -O2 -o rawecho rawecho.c
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { kMax = 1 << 20 };

static char buf[kMax];
static size_t have;

// Reads more into buf; 0 at end of stream or when full.
static int fill(int fd) {
  if (have == kMax) return 0;
  ssize_t n = read(fd, buf + have, kMax - have);
  if (n <= 0) return 0;
  have += (size_t)n;
  return 1;
}

static const char* find(const char* from, const char* what) {
  size_t w = strlen(what);
  for (const char* p = from; p + w <= buf + have; ++p)
    if (memcmp(p, what, w) == 0) return p;
  return NULL;
}

// The value of header NAME in [head, end), or NULL.
static const char* header(const char* head, const char* end, const char* name) {
  size_t n = strlen(name);
  for (const char* p = head; p < end; ++p) {
    if ((p == head || p[-1] == '\n') && (size_t)(end - p) > n && strncasecmp(p, name, n) == 0 &&
        p[n] == ':') {
      p += n + 1;
      while (*p == ' ' || *p == '\t') ++p;
      return p;
    }
  }
  return NULL;
}

static void send_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w <= 0) return;
    p += w;
    n -= (size_t)w;
  }
}

// One request from buf (reading more as needed); its length, or 0 when the peer is gone.
static size_t request(int fd) {
  const char* eoh;
  while (!(eoh = find(buf, "\r\n\r\n")))
    if (!fill(fd)) return 0;
  size_t len = (size_t)(eoh + 4 - buf);
  const char* te = header(buf, eoh, "Transfer-Encoding");
  const char* cl = header(buf, eoh, "Content-Length");
  if (te && strncasecmp(te, "chunked", 7) == 0) {
    for (;;) {  // size CRLF data CRLF ... 0 CRLF (trailers) CRLF
      const char* line;
      while (!(line = find(buf + len, "\r\n")))
        if (!fill(fd)) return 0;
      unsigned long size = strtoul(buf + len, NULL, 16);
      len = (size_t)(line + 2 - buf);
      if (size == 0) {
        const char* end;
        while (!(end = find(buf + len - 2, "\r\n\r\n")))
          if (!fill(fd)) return 0;
        return (size_t)(end + 4 - buf);
      }
      while (have < len + size + 2)
        if (!fill(fd)) return 0;
      len += size + 2;
    }
  }
  if (cl) {
    size_t size = strtoul(cl, NULL, 10);
    while (have < len + size)
      if (!fill(fd)) return 0;
    len += size;
  }
  return len;
}

static void send_chunk(int fd, const char* p, size_t n) {
  char size[32];
  int h = snprintf(size, sizeof size, "%zx\r\n", n);
  send_all(fd, size, (size_t)h);
  send_all(fd, p, n);
  send_all(fd, "\r\n", 2);
}

// The full-duplex cases, answered from the head alone; 0 when the request is not one of them.
static int duplex(int fd) {
  const char* eoh;
  while (!(eoh = find(buf, "\r\n\r\n")))
    if (!fill(fd)) return 1;
  size_t len = (size_t)(eoh + 4 - buf);
  if (strncmp(buf, "POST /early ", 12) == 0) {
    static const char kEarly[] = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nearly\n";
    send_all(fd, kEarly, sizeof kEarly - 1);
    struct pollfd p = {fd, POLLRDHUP, 0};
    poll(&p, 1, 60000);  // reads nothing: the body stays unread until the peer goes
    return 1;
  }
  if (strncmp(buf, "POST /stream ", 13) != 0) return 0;
  const char* cl = header(buf, eoh, "Content-Length");
  size_t left = cl ? strtoul(cl, NULL, 10) : 0;
  static const char kHead[] =
      "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  send_all(fd, kHead, sizeof kHead - 1);
  size_t n = have - len < left ? have - len : left;
  if (n) send_chunk(fd, buf + len, n);
  left -= n;
  have = 0;
  while (left > 0) {
    ssize_t r = read(fd, buf, left < kMax ? left : kMax);
    if (r <= 0) return 1;
    send_chunk(fd, buf, (size_t)r);
    left -= (size_t)r;
  }
  send_all(fd, "0\r\n\r\n", 5);
  return 1;
}

static void serve(int fd) {
  for (;;) {
    if (duplex(fd)) return;
    size_t len = request(fd);
    if (len == 0) return;
    char head[256];
    if (strncmp(buf, "GET /env ", 9) == 0) {
      char body[128];
      const char* port = getenv("PORT");
      int b = snprintf(body, sizeof body, "PORT=%s\n", port ? port : "");
      int h =
          snprintf(head, sizeof head,
                   "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n", b);
      send_all(fd, head, (size_t)h);
      send_all(fd, body, (size_t)b);
    } else {
      int h = snprintf(head, sizeof head,
                       "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                       "Content-Length: %zu\r\n\r\n",
                       len);
      send_all(fd, head, (size_t)h);
      send_all(fd, buf, len);
    }
    memmove(buf, buf + len, have - len);
    have -= len;
  }
}

// Each blocked call, and what it returned: "name=0" or "name=ERRNO".
static int syscalls(void) {
  struct {
    const char* name;
    long result;
  } calls[4];
  calls[0].name = "unshare";
  calls[0].result = unshare(CLONE_NEWNS) == 0 ? 0 : errno;
  calls[1].name = "keyctl";
  calls[1].result = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0) >= 0 ? 0 : errno;
  calls[2].name = "socket_vsock";
  int vs = socket(40 /* AF_VSOCK */, SOCK_STREAM, 0);
  calls[2].result = vs >= 0 ? 0 : errno;
  calls[3].name = "getpid";
  calls[3].result = syscall(SYS_getpid) > 0 ? 0 : errno;
  for (int i = 0; i < 4; ++i)
    printf("%s=%s\n", calls[i].name,
           calls[i].result == 0 ? "0" : strerrorname_np((int)calls[i].result));
  return 0;
}

// `rawecho sniff SECONDS MARKER`: counts the packets a raw socket sees in this network
// namespace that hold MARKER (needs CAP_NET_RAW).
static int sniff(int seconds, const char* marker) {
  int s = socket(AF_PACKET, SOCK_RAW, htons(0x0003 /* ETH_P_ALL */));
  if (s < 0) {
    perror("rawecho: raw socket");
    return 1;
  }
  struct timeval tv = {1, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  time_t end = time(NULL) + seconds;
  int seen = 0;
  static char packet[65536];
  size_t m = strlen(marker);
  printf("sniffing\n");
  fflush(stdout);
  while (time(NULL) < end) {
    ssize_t n = recv(s, packet, sizeof packet, 0);
    for (ssize_t i = 0; n > 0 && i + (ssize_t)m <= n; ++i)
      if (memcmp(packet + i, marker, m) == 0) {
        ++seen;
        break;
      }
  }
  printf("seen=%d\n", seen);
  return 0;
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "syscalls") == 0) return syscalls();
  if (argc > 3 && strcmp(argv[1], "sniff") == 0) return sniff(atoi(argv[2]), argv[3]);
  const char* port = argc > 1 ? argv[1] : getenv("PORT");
  if (!port) {
    fprintf(stderr, "rawecho: give a port, or set PORT\n");
    return 2;
  }
  signal(SIGCHLD, SIG_IGN);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)atoi(port));
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(s, (struct sockaddr*)&a, sizeof a) != 0 || listen(s, 128) != 0) {
    perror("rawecho: listen");
    return 1;
  }
  fprintf(stderr, "rawecho: listening on 0.0.0.0:%s (PORT=%s)\n", port,
          getenv("PORT") ? getenv("PORT") : "");
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0) continue;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // head and body are two writes
    if (fork() == 0) {
      close(s);
      serve(c);
      _exit(0);
    }
    close(c);
  }
}
