/* The bench's open-loop HTTP/1.1 POST generator, in C (bench/loadgen.py builds and runs it).
 *
 * Request i is due at t0 + i/rate whatever happened to the others, and its latency counts
 * from when it was due (no coordinated omission). Keep-alive connections, one request at a
 * time on each; a due request finding none idle opens another (up to --max-connections per
 * target), else waits for one. Answers are read by their Content-Length. It prints one JSON
 * object (bench/loadgen.py run_open_loop reads it). Written in C because the generator shares
 * two cores with the suite it measures: every microsecond it spends is taken from the server.
 *
 * Usage: openloop --rate R --seconds S --targets http://h:p[,..] --path P --mode unique|none
 *                 --prefix X --max-connections N --max-in-flight M --preopen K
 * Environment: BENCH_SECRET (bearer key), BENCH_BODY (the JSON body).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_TARGETS 16
#define READ_MAX 65536
#define REQUEST_TIMEOUT 10.0
#define MAX_CODES 64

typedef struct {
    char host[64];
    int port;
    struct sockaddr_in addr;
    int *idle; /* stack of idle connection indexes */
    int n_idle, open;
} target_t;

typedef struct {
    int fd, target, busy, connecting;
    double due;
    char *out;
    size_t out_len, out_off;
    char in[READ_MAX];
    size_t in_len;
} conn_t;

static target_t targets[MAX_TARGETS];
static int n_targets;
static conn_t *conns;
static int n_conns, max_conns_total;
static int epfd;

static double rate, seconds;
static const char *path = "/api/v1/music", *mode = "unique", *prefix = "bench";
static int max_connections = 256, max_in_flight = 2000, preopen;
static const char *secret = "", *body = "{}";

static double *ok_lat, *shed_lat;
static long n_ok, n_shed, failures, dropped, in_window, in_flight, total;
static double t0, last_end;
static long statuses[600];
static char codes[MAX_CODES][96];
static long code_counts[MAX_CODES];
static int n_codes;
/* Requests due while no connection was free, per target: FIFO of (index, due). */
static long *wait_i;
static double *wait_due;
static int *wait_t;
static long wait_head, wait_tail;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void add_code(const char *code) {
    for (int i = 0; i < n_codes; i++)
        if (strcmp(codes[i], code) == 0) {
            code_counts[i]++;
            return;
        }
    if (n_codes < MAX_CODES) {
        snprintf(codes[n_codes], sizeof codes[0], "%s", code);
        code_counts[n_codes++] = 1;
    }
}

static char *build_request(int t, long i, size_t *len) {
    char idem[160] = "";
    if (strcmp(mode, "unique") == 0) snprintf(idem, sizeof idem, "Idempotency-Key: %s-%ld\r\n", prefix, i);
    size_t body_len = strlen(body);
    size_t cap = 512 + strlen(path) + strlen(secret) + strlen(idem) + body_len;
    char *buf = malloc(cap);
    if (!buf) die("malloc");
    int n = snprintf(buf, cap,
                     "POST %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n%s",
                     path, targets[t].host, targets[t].port, secret, idem, body_len, body);
    *len = (size_t)n;
    return buf;
}

static int free_slot(void) {
    if (n_conns < max_conns_total) return n_conns++;
    for (int c = 0; c < n_conns; c++)
        if (conns[c].fd < 0) return c;
    return -1;
}

static int open_conn(int t, int blocking) {
    int c = free_slot();
    if (c < 0) return -1;
    int fd = socket(AF_INET, SOCK_STREAM | (blocking ? 0 : SOCK_NONBLOCK), 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = connect(fd, (struct sockaddr *)&targets[t].addr, sizeof targets[t].addr);
    if (rc < 0 && errno != EINPROGRESS) {
        close(fd);
        conns[c].fd = -1;
        return -1;
    }
    if (blocking) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    free(conns[c].out);
    memset(&conns[c], 0, sizeof conns[c]);
    conns[c].fd = fd;
    conns[c].target = t;
    conns[c].connecting = rc < 0;
    targets[t].open++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u32 = (uint32_t)c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
    return c;
}

static void flush_out(int c) {
    conn_t *k = &conns[c];
    while (k->out && k->out_off < k->out_len && !k->connecting) {
        ssize_t n = send(k->fd, k->out + k->out_off, k->out_len - k->out_off, MSG_NOSIGNAL);
        if (n < 0) return; /* EAGAIN: EPOLLOUT will tell; an error shows on read */
        k->out_off += (size_t)n;
    }
}

static void start(int c, long i, double due) {
    conn_t *k = &conns[c];
    k->busy = 1;
    k->due = due;
    k->in_len = 0;
    free(k->out);
    k->out = build_request(k->target, i, &k->out_len);
    k->out_off = 0;
    in_flight++;
    flush_out(c);
}

static void dispatch(long i, double due, int t) {
    target_t *tg = &targets[t];
    int c = -1;
    if (tg->n_idle > 0) c = tg->idle[--tg->n_idle];
    else if (tg->open < max_connections) c = open_conn(t, 0);
    if (c < 0) { /* every connection busy: it waits for one, its clock running */
        wait_i[wait_tail] = i;
        wait_due[wait_tail] = due;
        wait_t[wait_tail++] = t;
        return;
    }
    start(c, i, due);
}

static void close_conn(int c) {
    conn_t *k = &conns[c];
    epoll_ctl(epfd, EPOLL_CTL_DEL, k->fd, NULL);
    close(k->fd);
    k->fd = -1;
    targets[k->target].open--;
}

/* An idle connection the server closed: out of the idle stack, closed. */
static void drop_idle(int c) {
    target_t *t = &targets[conns[c].target];
    for (int j = 0; j < t->n_idle; j++)
        if (t->idle[j] == c) {
            t->idle[j] = t->idle[--t->n_idle];
            break;
        }
    close_conn(c);
}

static void release(int c, int reusable) {
    conn_t *k = &conns[c];
    int t = k->target;
    k->busy = 0;
    in_flight--;
    if (!reusable) {
        close_conn(c);
    } else {
        targets[t].idle[targets[t].n_idle++] = c;
    }
    /* The oldest waiting request of this target takes the freed place. */
    for (long w = wait_head; w < wait_tail; w++) {
        if (wait_t[w] != t || wait_i[w] < 0) continue;
        long i = wait_i[w];
        wait_i[w] = -1;
        while (wait_head < wait_tail && wait_i[wait_head] < 0) wait_head++;
        dispatch(i, wait_due[w], t);
        return;
    }
}

static void record(int c, int status, const char *resp_body, size_t body_len) {
    double end = now();
    conn_t *k = &conns[c];
    if (end > last_end) last_end = end;
    statuses[status >= 0 && status < 600 ? status : 0]++;
    if (status >= 200 && status < 300) {
        ok_lat[n_ok++] = end - k->due;
        if (end <= t0 + seconds) in_window++;
        return;
    }
    failures++;
    char code[80] = "?";
    if (resp_body) {
        const char *at = memmem(resp_body, body_len, "\"code\":\"", 8);
        if (at) {
            at += 8;
            const char *stop = memchr(at, '"', body_len - (size_t)(at - resp_body));
            if (stop && stop - at < 64) snprintf(code, sizeof code, "%.*s", (int)(stop - at), at);
        }
    }
    char key[96];
    snprintf(key, sizeof key, "%d %s", status, code);
    add_code(key);
    if (status == 503 && strcmp(code, "overloaded") == 0) shed_lat[n_shed++] = end - k->due;
}

static void on_readable(int c) {
    conn_t *k = &conns[c];
    for (;;) {
        if (k->in_len == READ_MAX) break;
        ssize_t n = recv(k->fd, k->in + k->in_len, READ_MAX - k->in_len, 0);
        if (n > 0) {
            k->in_len += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) { /* closed or broken */
            if (k->busy) {
                record(c, 0, NULL, 0);
                release(c, 0);
            } else {
                drop_idle(c);
            }
            return;
        }
        break;
    }
    if (!k->busy) return;
    char *head_end = memmem(k->in, k->in_len, "\r\n\r\n", 4);
    if (!head_end) return;
    size_t head_len = (size_t)(head_end - k->in) + 4;
    int status = atoi(k->in + 9);
    long length = -1;
    int close_after = 0;
    for (char *line = k->in; line < head_end;) {
        char *eol = memmem(line, (size_t)(head_end - line) + 2, "\r\n", 2);
        if (!eol) break;
        if (strncasecmp(line, "content-length:", 15) == 0) length = atol(line + 15);
        if (strncasecmp(line, "connection:", 11) == 0 && strcasestr(line, "close") && strcasestr(line, "close") < eol)
            close_after = 1;
        line = eol + 2;
    }
    if (length < 0) { /* not what this generator reads: count as no answer */
        record(c, 0, NULL, 0);
        release(c, 0);
        return;
    }
    if (k->in_len < head_len + (size_t)length) return;
    record(c, status, k->in + head_len, (size_t)length);
    release(c, !close_after);
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, long n, double q) {
    if (n == 0) return -1;
    long i = (long)(q / 100.0 * n + 0.5) - 1;
    if (i < 0) i = 0;
    if (i >= n) i = n - 1;
    return v[i] * 1000;
}

static void print_ms(const char *name, double v, int comma) {
    if (v < 0) printf("\"%s\": NaN%s", name, comma ? ", " : "");
    else printf("\"%s\": %.3f%s", name, v, comma ? ", " : "");
}

static void parse_targets(char *list) {
    for (char *tok = strtok(list, ","); tok && n_targets < MAX_TARGETS; tok = strtok(NULL, ",")) {
        target_t *t = &targets[n_targets++];
        if (strncmp(tok, "http://", 7) == 0) tok += 7;
        char *colon = strrchr(tok, ':');
        if (!colon) die("target without a port");
        snprintf(t->host, sizeof t->host, "%.*s", (int)(colon - tok), tok);
        t->port = atoi(colon + 1);
        t->addr.sin_family = AF_INET;
        t->addr.sin_port = htons((uint16_t)t->port);
        if (inet_pton(AF_INET, strcmp(t->host, "localhost") == 0 ? "127.0.0.1" : t->host, &t->addr.sin_addr) != 1)
            die("target host must be an IPv4 address");
    }
}

int main(int argc, char **argv) {
    char *target_list = NULL;
    for (int a = 1; a + 1 < argc; a += 2) {
        const char *k = argv[a], *v = argv[a + 1];
        if (!strcmp(k, "--rate")) rate = atof(v);
        else if (!strcmp(k, "--seconds")) seconds = atof(v);
        else if (!strcmp(k, "--targets")) target_list = strdup(v);
        else if (!strcmp(k, "--path")) path = v;
        else if (!strcmp(k, "--mode")) mode = v;
        else if (!strcmp(k, "--prefix")) prefix = v;
        else if (!strcmp(k, "--max-connections")) max_connections = atoi(v);
        else if (!strcmp(k, "--max-in-flight")) max_in_flight = atoi(v);
        else if (!strcmp(k, "--preopen")) preopen = atoi(v);
        else {
            fprintf(stderr, "unknown argument %s\n", k);
            return 2;
        }
    }
    if (rate <= 0 || seconds <= 0 || !target_list) {
        fprintf(stderr, "usage: openloop --rate R --seconds S --targets URL[,URL]\n");
        return 2;
    }
    if (getenv("BENCH_SECRET")) secret = getenv("BENCH_SECRET");
    if (getenv("BENCH_BODY")) body = getenv("BENCH_BODY");
    parse_targets(target_list);
    total = (long)(rate * seconds);
    if (total < 1) total = 1;
    max_conns_total = max_connections * n_targets;
    conns = calloc((size_t)max_conns_total, sizeof *conns);
    ok_lat = malloc(sizeof(double) * (size_t)total);
    shed_lat = malloc(sizeof(double) * (size_t)total);
    wait_i = malloc(sizeof(long) * (size_t)total);
    wait_due = malloc(sizeof(double) * (size_t)total);
    wait_t = malloc(sizeof(int) * (size_t)total);
    if (!conns || !ok_lat || !shed_lat || !wait_i || !wait_due || !wait_t) die("malloc");
    for (int t = 0; t < n_targets; t++) {
        targets[t].idle = malloc(sizeof(int) * (size_t)max_connections);
        if (!targets[t].idle) die("malloc");
    }
    epfd = epoll_create1(0);
    if (epfd < 0) die("epoll_create1");
    for (int t = 0; t < n_targets; t++)
        for (int p = 0; p < preopen && p < max_connections; p++) {
            int c = open_conn(t, 1);
            if (c < 0) die("preopen connect");
            targets[t].idle[targets[t].n_idle++] = c;
        }

    struct epoll_event events[256];
    t0 = now() + 0.05;
    last_end = t0;
    long next = 0;
    double deadline = t0 + seconds + 15.0;
    while (next < total || in_flight > 0 || wait_head < wait_tail) {
        double at = now();
        if (at > deadline) break;
        while (next < total && t0 + (double)next / rate <= at) {
            double due = t0 + (double)next / rate;
            if (in_flight >= max_in_flight) dropped++;
            else dispatch(next, due, (int)(next % n_targets));
            next++;
        }
        /* Answers past their deadline count as none (status 0). */
        for (int c = 0; c < n_conns; c++)
            if (conns[c].busy && conns[c].fd >= 0 && at - conns[c].due > REQUEST_TIMEOUT) {
                record(c, 0, NULL, 0);
                release(c, 0);
            }
        struct timespec wait = {0, 50 * 1000 * 1000};
        if (next < total) {
            double gap = t0 + (double)next / rate - now();
            if (gap < 0) gap = 0;
            wait.tv_sec = (time_t)gap;
            wait.tv_nsec = (long)((gap - (double)wait.tv_sec) * 1e9);
        }
        int n = epoll_pwait2(epfd, events, 256, &wait, NULL);
        if (n < 0 && errno != EINTR) die("epoll_pwait2");
        for (int e = 0; e < n; e++) {
            int c = (int)events[e].data.u32;
            if (c >= n_conns || conns[c].fd < 0) continue;
            if (conns[c].connecting && (events[e].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(conns[c].fd, SOL_SOCKET, SO_ERROR, &err, &len);
                conns[c].connecting = 0;
                if (err) {
                    if (conns[c].busy) {
                        record(c, 0, NULL, 0);
                        release(c, 0);
                    } else {
                        drop_idle(c);
                    }
                    continue;
                }
            }
            if (events[e].events & EPOLLOUT) flush_out(c);
            if (events[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
        }
    }
    qsort(ok_lat, (size_t)n_ok, sizeof(double), cmp);
    qsort(shed_lat, (size_t)n_shed, sizeof(double), cmp);
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    double tail = last_end - t0 - seconds;
    printf("{\"generator\": \"open-loop C (bench/openloop.c)\", \"offered\": %.3f, ", rate);
    printf("\"achieved\": %.3f, \"tail_seconds\": %.3f, ", (double)in_window / seconds, tail > 0 ? tail : 0.0);
    printf("\"requests\": %ld, \"ok\": %ld, \"failures\": %ld, \"dropped\": %ld, ", total, n_ok, failures, dropped);
    print_ms("p50_ms", pct(ok_lat, n_ok, 50), 1);
    print_ms("p90_ms", pct(ok_lat, n_ok, 90), 1);
    print_ms("p99_ms", pct(ok_lat, n_ok, 99), 1);
    print_ms("max_ms", n_ok ? ok_lat[n_ok - 1] * 1000 : -1, 1);
    printf("\"statuses\": {");
    int first = 1;
    for (int s = 0; s < 600; s++)
        if (statuses[s]) {
            printf("%s\"%d\": %ld", first ? "" : ", ", s, statuses[s]);
            first = 0;
        }
    printf("}, \"error_codes\": {");
    for (int i = 0; i < n_codes; i++) printf("%s\"%s\": %ld", i ? ", " : "", codes[i], code_counts[i]);
    printf("}, \"shed\": %ld, ", n_shed);
    print_ms("shed_p50_ms", pct(shed_lat, n_shed, 50), 1);
    print_ms("shed_p99_ms", pct(shed_lat, n_shed, 99), 1);
    printf("\"self_cpu_seconds\": %.3f}\n",
           usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6);
    return 0;
}
