/* The memory latency probe of RESEARCH.md ("Memory latency on these machines"), for the
 * bench scripts that report their figures beside it (`mix bench --only subquery`).
 *
 * Random 8-byte reads over an array of MIB MiB (default 1024) of random words:
 *   dependent   - each read's index comes from the previous read's value (a chain of misses)
 *   independent - indices from a generator, reads summed (the CPU overlaps the misses)
 * Prints "dependent_ns <x>" and "independent_ns <y>", nanoseconds per read, and "cpu_ticks
 * <t>", its own CPU time in clock ticks (for the bench's account of the machine's use).
 *   cc -O2 -o mem_probe bench/mem_probe.c && ./mem_probe [MIB] [READS]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static uint64_t xorshift(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(int argc, char **argv) {
  uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 1024;
  uint64_t reads = argc > 2 ? strtoull(argv[2], NULL, 10) : 4000000;
  /* a power of two words, so an index is a mask away */
  uint64_t words = 1;
  while (words * 2 * 8 <= mib * 1024 * 1024) words *= 2;
  uint64_t mask = words - 1;
  uint64_t *a = malloc(words * 8);
  if (a == NULL) {
    fprintf(stderr, "mem_probe: cannot allocate %llu MiB\n", (unsigned long long)mib);
    return 1;
  }
  uint64_t s = 0x9E3779B97F4A7C15ull;
  for (uint64_t i = 0; i < words; i++) a[i] = xorshift(&s);

  /* dependent: the next index is the value just read (mixed with the step) */
  uint64_t idx = 0;
  double t0 = now_ns();
  for (uint64_t i = 0; i < reads; i++) idx = (a[idx] ^ i) & mask;
  double dep = (now_ns() - t0) / (double)reads;

  /* independent: indices from the generator; 4x the reads, they are cheaper */
  uint64_t sum = 0, n = reads * 4;
  t0 = now_ns();
  for (uint64_t i = 0; i < n; i++) sum += a[xorshift(&s) & mask];
  double indep = (now_ns() - t0) / (double)n;

  /* the results are used, so neither loop is optimised away */
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
  printf("dependent_ns %.1f\nindependent_ns %.1f\ncpu_ticks %.0f\nchecksum %llu\n", dep, indep,
         cpu_s * (double)sysconf(_SC_CLK_TCK), (unsigned long long)(sum ^ idx));
  free(a);
  return 0;
}
