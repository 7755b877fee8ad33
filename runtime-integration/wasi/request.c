// SPDX-License-Identifier: MIT
// A CGI-style request handler: the request line comes in argv[1], an
// optional flat JSON body in argv[2], the headers as HTTP_* environment
// variables.  It parses them into malloc'd structures and prints an HTTP
// response with a JSON body.  A malformed request gets a 400 on stdout, the
// reason on stderr and exit status 2.  Small memory, many small mallocs.
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

// A growable byte buffer.
struct buf {
    char *p;
    size_t len, cap;
};

static void buf_put(struct buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            fputs("out of memory\n", stderr);
            exit(3);
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void buf_str(struct buf *b, const char *s) {
    buf_put(b, s, strlen(s));
}

static void buf_fmt(struct buf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    buf_put(b, tmp, n < (int)sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

// A JSON string literal, escaped.
static void buf_json(struct buf *b, const char *s) {
    buf_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            buf_put(b, e, 2);
        } else if (c < 0x20) {
            buf_fmt(b, "\\u%04x", c);
        } else {
            buf_put(b, s, 1);
        }
    }
    buf_put(b, "\"", 1);
}

static _Noreturn void bad_request(const char *why) {
    printf("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    fprintf(stderr, "bad request: %s\n", why);
    exit(2);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

// URL-decode [s, s + n) into a new string.
static char *url_decode(const char *s, size_t n) {
    char *out = malloc(n + 1), *o = out;
    if (!out)
        bad_request("out of memory");
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            *o++ = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                bad_request("bad percent-encoding");
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = 0;
    return out;
}

// Query parameters, in a hash table keyed by name (seeded, as a server
// must against hash flooding) and a list in arrival order.
struct param {
    char *key, *value;
    struct param *next_in_bucket, *next_in_order;
};
#define BUCKETS 64
struct params {
    uint64_t seed;
    struct param *bucket[BUCKETS];
    struct param *first, **tail;
};

static uint64_t hash(uint64_t seed, const char *s) {
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static struct param *lookup(struct params *ps, const char *key) {
    struct param *p = ps->bucket[hash(ps->seed, key) % BUCKETS];
    for (; p; p = p->next_in_bucket)
        if (strcmp(p->key, key) == 0)
            return p;
    return NULL;
}

// The first value of a repeated name wins.
static void parse_query(struct params *ps, const char *q) {
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t n = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', n);
        if (!eq || eq == q)
            bad_request("query parameter without a name or value");
        struct param *p = calloc(1, sizeof(*p));
        if (!p)
            bad_request("out of memory");
        p->key = url_decode(q, (size_t)(eq - q));
        p->value = url_decode(eq + 1, n - (size_t)(eq - q) - 1);
        if (lookup(ps, p->key)) {
            free(p->key);
            free(p->value);
            free(p);
        } else {
            struct param **b = &ps->bucket[hash(ps->seed, p->key) % BUCKETS];
            p->next_in_bucket = *b;
            *b = p;
            *ps->tail = p;
            ps->tail = &p->next_in_order;
        }
        q += n + (amp ? 1 : 0);
    }
}

// A flat JSON object of integer members: {"qty": 3, "price": 1250}.
static long body_member(const char *body, const char *name) {
    char key[64];
    snprintf(key, sizeof(key), "\"%s\"", name);
    const char *at = strstr(body, key);
    if (!at)
        return 0;
    at += strlen(key);
    while (*at == ' ')
        at++;
    if (*at++ != ':')
        bad_request("body: member without a value");
    char *end;
    long v = strtol(at, &end, 10);
    if (end == at)
        bad_request("body: not an integer");
    return v;
}

int main(int argc, char **argv) {
    struct timespec t0, t1;
    if (clock_gettime(CLOCK_MONOTONIC, &t0) != 0)
        bad_request("no clock");
    if (argc < 2)
        bad_request("no request line");

    // "METHOD TARGET VERSION"
    char *line = strdup(argv[1]);
    char *method = strtok(line, " ");
    char *target = strtok(NULL, " ");
    char *version = strtok(NULL, " ");
    if (!method || !target || !version || strtok(NULL, " ") || strncmp(version, "HTTP/1.", 7))
        bad_request("malformed request line");
    if (strcmp(method, "GET") && strcmp(method, "POST"))
        bad_request("method not allowed");

    struct params ps = {0};
    ps.tail = &ps.first;
    if (getentropy(&ps.seed, sizeof(ps.seed)) != 0)
        bad_request("no entropy");
    char *query = strchr(target, '?');
    if (query)
        *query++ = 0;
    char *path = url_decode(target, strlen(target));
    if (query)
        parse_query(&ps, query);

    struct buf body = {0};
    buf_str(&body, "{\"method\": ");
    buf_json(&body, method);
    buf_str(&body, ", \"path\": ");
    buf_json(&body, path);
    buf_str(&body, ", \"params\": {");
    for (struct param *p = ps.first; p; p = p->next_in_order) {
        buf_json(&body, p->key);
        buf_str(&body, ": ");
        buf_json(&body, p->value);
        if (p->next_in_order)
            buf_str(&body, ", ");
    }
    buf_str(&body, "}, \"headers\": {");
    // HTTP_USER_AGENT=x becomes "user-agent": "x".
    int first = 1;
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "HTTP_", 5))
            continue;
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        char *name = strndup(*e + 5, (size_t)(eq - *e - 5));
        for (char *c = name; *c; c++)
            *c = *c == '_' ? '-' : (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
        if (!first)
            buf_str(&body, ", ");
        first = 0;
        buf_json(&body, name);
        buf_str(&body, ": ");
        buf_json(&body, eq + 1);
        free(name);
    }
    buf_str(&body, "}");
    if (argc > 2) {
        long qty = body_member(argv[2], "qty"), price = body_member(argv[2], "price");
        buf_fmt(&body, ", \"order\": {\"qty\": %ld, \"price\": %ld, \"total\": %ld}", qty, price,
                qty * price);
    }
    struct param *id = lookup(&ps, "id");
    buf_str(&body, ", \"id\": ");
    buf_json(&body, id ? id->value : "none");
    if (clock_gettime(CLOCK_MONOTONIC, &t1) != 0 || t1.tv_sec < t0.tv_sec)
        bad_request("clock went backwards");
    buf_str(&body, "}\n");

    printf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
           body.len, body.p);

    for (struct param *p = ps.first, *next; p; p = next) {
        next = p->next_in_order;
        free(p->key);
        free(p->value);
        free(p);
    }
    free(body.p);
    free(path);
    free(line);
    return 0;
}
