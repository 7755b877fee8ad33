// SPDX-License-Identifier: MIT
// Grows linear memory to several MiB: one 5 MiB allocation (wasi-libc's
// malloc grows the memory for it), a sieve of Eratosthenes over odd
// numbers in its first 512 KiB, and one record written and read back on
// every 4 KiB page of the remaining 4.5 MiB.  Prints the prime count (a
// known value: 82025 primes below 2^20) and a checksum of the records.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIMIT (1u << 20)        // sieve below this
#define SIEVE_BYTES (LIMIT / 2) // one byte per odd number
#define TOTAL_BYTES (5u << 20)
#define PAGE 4096u

int main(void) {
    uint8_t *mem = malloc(TOTAL_BYTES);
    if (!mem) {
        fputs("out of memory\n", stderr);
        return 1;
    }
    // Byte k stands for 2k + 1; 1 is not prime.
    uint8_t *composite = mem;
    memset(composite, 0, SIEVE_BYTES);
    composite[0] = 1;
    for (uint32_t p = 3; p * p < LIMIT; p += 2)
        if (!composite[p / 2])
            for (uint32_t m = p * p; m < LIMIT; m += 2 * p)
                composite[m / 2] = 1;
    uint32_t primes = 1; // 2
    for (uint32_t k = 0; k < SIEVE_BYTES; k++)
        primes += !composite[k];

    // One 8-byte record per page, at an offset that moves with the page.
    uint8_t *pages = mem + SIEVE_BYTES;
    uint32_t npages = (TOTAL_BYTES - SIEVE_BYTES) / PAGE;
    for (uint32_t i = 0; i < npages; i++) {
        uint64_t rec = (uint64_t)i * 0x9e3779b97f4a7c15ull ^ 0x5bd1e995u;
        memcpy(pages + (size_t)i * PAGE + (i * 8u) % PAGE, &rec, sizeof(rec));
    }
    uint64_t sum = 0;
    for (uint32_t i = 0; i < npages; i++) {
        uint64_t rec;
        memcpy(&rec, pages + (size_t)i * PAGE + (i * 8u) % PAGE, sizeof(rec));
        sum = (sum ^ rec) * 0x100000001b3ull;
    }
    printf("primes below %u: %u\n", LIMIT, primes);
    printf("pages %u checksum %016llx\n", npages, (unsigned long long)sum);
    free(mem);
    return 0;
}
