/*
 * echo.c: the floor of the echo benchmark (issue 7). A plain single-threaded
 * epoll echo server: level-triggered, non-blocking sockets, TCP_NODELAY, one
 * 64 KiB read buffer shared by all connections. A write that the kernel takes
 * only in part keeps the rest in the connection's pending buffer and waits for
 * EPOLLOUT, without reading, until it is gone.
 *
 * Usage: echo [-addr host:port]   (IPv4; port 0 picks a free one)
 * Prints "pid PID addr HOST:PORT" once it listens; SIGINT or SIGTERM end it.
 *
 * Build: gcc -O2 -o echo-c echo.c   (cmd/echobench does it)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

struct conn {
	int fd;
	char *pending; /* bytes read but not yet written back */
	size_t len, off;
};

static void die(const char *what) {
	perror(what);
	exit(1);
}

static void drop(int ep, struct conn *c) {
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->pending);
	free(c);
}

static int watch(int ep, int op, struct conn *c, unsigned events) {
	struct epoll_event ev = {.events = events, .data.ptr = c};
	return epoll_ctl(ep, op, c->fd, &ev);
}

/* flush writes the pending bytes; 1 when all went out, 0 when the kernel is
 * full, -1 on an error. */
static int flush(struct conn *c) {
	while (c->off < c->len) {
		ssize_t n = write(c->fd, c->pending + c->off, c->len - c->off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -1;
		}
		c->off += (size_t)n;
	}
	c->len = c->off = 0;
	return 1;
}

/* echo writes back p[0:n]; what does not fit is kept. 1, 0 or -1 as flush. */
static int echo(struct conn *c, const char *p, size_t n) {
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(c->fd, p + done, n - done);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -1;
			break;
		}
		done += (size_t)w;
	}
	if (done == n)
		return 1;
	c->pending = realloc(c->pending, n - done);
	if (c->pending == NULL)
		return -1;
	memcpy(c->pending, p + done, n - done);
	c->len = n - done;
	c->off = 0;
	return 0;
}

int main(int argc, char **argv) {
	const char *addr = "127.0.0.1:7007";
	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-addr") == 0 || strcmp(argv[i], "--addr") == 0) && i + 1 < argc)
			addr = argv[++i];
		else if (strncmp(argv[i], "-addr=", 6) == 0)
			addr = argv[i] + 6;
		else {
			fprintf(stderr, "usage: %s [-addr host:port]\n", argv[0]);
			return 2;
		}
	}
	char host[64];
	const char *colon = strrchr(addr, ':');
	if (colon == NULL || (size_t)(colon - addr) >= sizeof host) {
		fprintf(stderr, "echo-c: -addr %s: want host:port\n", addr);
		return 2;
	}
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = 0;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(colon + 1))};
	if (host[0] == 0)
		sin.sin_addr.s_addr = htonl(INADDR_ANY);
	else if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
		fprintf(stderr, "echo-c: -addr %s: not an IPv4 address\n", addr);
		return 2;
	}

	/* Raise the descriptor limit to its hard limit, as Go programs do at start,
	 * for echobench's idle connections. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	int ln = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ln < 0)
		die("socket");
	int one = 1;
	setsockopt(ln, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(ln, (struct sockaddr *)&sin, sizeof sin) < 0)
		die("bind");
	if (listen(ln, 4096) < 0)
		die("listen");
	socklen_t sl = sizeof sin;
	getsockname(ln, (struct sockaddr *)&sin, &sl);
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof ip);
	printf("pid %d addr %s:%d\n", (int)getpid(), ip, ntohs(sin.sin_port));
	fflush(stdout);

	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");
	struct conn lnc = {.fd = ln};
	if (watch(ep, EPOLL_CTL_ADD, &lnc, EPOLLIN) < 0)
		die("epoll_ctl");

	static char buf[64 << 10];
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c == &lnc) {
				for (;;) {
					int fd = accept4(ln, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (fd < 0)
						break; /* EAGAIN, or EMFILE and the like: try again later */
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					struct conn *nc = calloc(1, sizeof *nc);
					if (nc == NULL) {
						close(fd);
						continue;
					}
					nc->fd = fd;
					if (watch(ep, EPOLL_CTL_ADD, nc, EPOLLIN) < 0) {
						close(fd);
						free(nc);
					}
				}
				continue;
			}
			unsigned ev = evs[i].events;
			if (c->len > 0) { /* waiting for EPOLLOUT */
				int r = flush(c);
				if (r < 0) {
					drop(ep, c);
				} else if (r == 1 && watch(ep, EPOLL_CTL_MOD, c, EPOLLIN) < 0) {
					drop(ep, c);
				}
				continue;
			}
			if (!(ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				continue;
			ssize_t r = read(c->fd, buf, sizeof buf);
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
				drop(ep, c);
				continue;
			}
			if (r < 0)
				continue;
			int w = echo(c, buf, (size_t)r);
			if (w < 0 || (w == 0 && watch(ep, EPOLL_CTL_MOD, c, EPOLLOUT) < 0))
				drop(ep, c);
		}
	}
}
