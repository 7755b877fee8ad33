// SPDX-License-Identifier: MIT
// A compression and hashing loop: 128 KiB of generated text-like data
// (words drawn by a fixed xorshift generator) is compressed with a small
// LZ77 coder of our own, decompressed, checked against the input, and both
// sides are hashed with FNV-1a 64.  About 400 KiB of heap, written once
// and read several times.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INPUT_BYTES (128u << 10)
#define MIN_MATCH 4
#define MAX_MATCH (MIN_MATCH + 127)
#define WINDOW 65535u
#define HASH_BITS 14

static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static uint32_t xorshift32(uint32_t *s) {
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static void generate(uint8_t *out, size_t n) {
    static const char *const words[] = {"pool ",  "slot ",   "reset ", "madvise ", "page ",
                                        "flush ", "tenant ", "batch ", "memory ",  "zero ",
                                        "the ",   "a ",      "of ",    "and ",     "\n"};
    uint32_t seed = 2463534242u;
    size_t at = 0;
    while (at < n) {
        uint32_t r = xorshift32(&seed);
        const char *w = words[r % (sizeof(words) / sizeof(words[0]))];
        // One word in eight is a number below 1000: less repetition.
        char num[5];
        if ((r >> 8) % 8 == 0) {
            unsigned v = (r >> 12) % 1000, k = sizeof(num) - 1;
            num[k] = 0;
            num[--k] = ' ';
            do
                num[--k] = (char)('0' + v % 10);
            while ((v /= 10) != 0);
            w = num + k;
        }
        for (; *w && at < n; w++)
            out[at++] = (uint8_t)*w;
    }
}

// Output: a token byte t; t < 128: t + 1 literals follow; t >= 128: a match
// of t - 128 + MIN_MATCH bytes at the 16-bit little-endian distance that
// follows.  At most n + n / 128 + 1 bytes.
static size_t compress(const uint8_t *in, size_t n, uint8_t *out) {
    uint32_t *head = calloc(1u << HASH_BITS, sizeof(uint32_t)); // position + 1
    size_t o = 0, lit_start = 0, i = 0;
    if (!head)
        return 0;
    while (i + MIN_MATCH <= n) {
        uint32_t v;
        memcpy(&v, in + i, 4);
        uint32_t h = (v * 2654435761u) >> (32 - HASH_BITS);
        size_t cand = head[h];
        head[h] = (uint32_t)i + 1;
        size_t len = 0;
        if (cand && i - (cand - 1) <= WINDOW) {
            const uint8_t *a = in + cand - 1, *b = in + i;
            while (len < MAX_MATCH && i + len < n && a[len] == b[len])
                len++;
        }
        if (len < MIN_MATCH) {
            i++;
            continue;
        }
        // Flush the literals before the match, 128 at most per token.
        while (lit_start < i) {
            size_t k = i - lit_start > 128 ? 128 : i - lit_start;
            out[o++] = (uint8_t)(k - 1);
            memcpy(out + o, in + lit_start, k);
            o += k;
            lit_start += k;
        }
        size_t dist = i - (cand - 1);
        out[o++] = (uint8_t)(128 + len - MIN_MATCH);
        out[o++] = (uint8_t)dist;
        out[o++] = (uint8_t)(dist >> 8);
        i += len;
        lit_start = i;
    }
    while (lit_start < n) {
        size_t k = n - lit_start > 128 ? 128 : n - lit_start;
        out[o++] = (uint8_t)(k - 1);
        memcpy(out + o, in + lit_start, k);
        o += k;
        lit_start += k;
    }
    free(head);
    return o;
}

// Returns the decoded size, or (size_t)-1 for a corrupt stream.
static size_t decompress(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
    size_t i = 0, o = 0;
    while (i < n) {
        uint8_t t = in[i++];
        if (t < 128) {
            size_t k = (size_t)t + 1;
            if (i + k > n || o + k > cap)
                return (size_t)-1;
            memcpy(out + o, in + i, k);
            i += k;
            o += k;
        } else {
            size_t len = (size_t)t - 128 + MIN_MATCH;
            if (i + 2 > n)
                return (size_t)-1;
            size_t dist = in[i] | (size_t)in[i + 1] << 8;
            i += 2;
            if (dist == 0 || dist > o || o + len > cap)
                return (size_t)-1;
            if (dist >= len)
                memcpy(out + o, out + o - dist, len);
            else // overlaps what it writes: byte by byte
                for (size_t k = 0; k < len; k++)
                    out[o + k] = out[o - dist + k];
            o += len;
        }
    }
    return o;
}

int main(void) {
    uint8_t *in = malloc(INPUT_BYTES);
    uint8_t *packed = malloc(INPUT_BYTES + INPUT_BYTES / 128 + 1);
    uint8_t *back = malloc(INPUT_BYTES);
    if (!in || !packed || !back) {
        fputs("out of memory\n", stderr);
        return 1;
    }
    generate(in, INPUT_BYTES);
    size_t packed_len = compress(in, INPUT_BYTES, packed);
    size_t back_len = decompress(packed, packed_len, back, INPUT_BYTES);
    if (packed_len == 0 || back_len != INPUT_BYTES || memcmp(in, back, INPUT_BYTES) != 0) {
        fputs("round trip failed\n", stderr);
        return 1;
    }
    printf("input %u bytes fnv1a64 %016llx\n", INPUT_BYTES,
           (unsigned long long)fnv1a(in, INPUT_BYTES));
    printf("lz77 %zu bytes fnv1a64 %016llx\n", packed_len,
           (unsigned long long)fnv1a(packed, packed_len));
    printf("round trip ok\n");
    free(back);
    free(packed);
    free(in);
    return 0;
}
