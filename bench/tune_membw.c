/* A memory-bound workload for `gedge tune bench`: STREAM-like copy + scale over two buffers
 * larger than the last-level cache. Usage: tune_membw [MiB per buffer] [passes]
 * Build: cc -O2 -o tune_membw bench/tune_membw.c */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
  int passes = argc > 2 ? atoi(argv[2]) : 20;
  size_t n = mib * 1024 * 1024 / sizeof(double);
  double* a = malloc(n * sizeof(double));
  double* b = malloc(n * sizeof(double));
  if (!a || !b) return 1;
  for (size_t i = 0; i < n; ++i) a[i] = (double)i;
  double sum = 0;
  for (int p = 0; p < passes; ++p) {
    for (size_t i = 0; i < n; ++i) b[i] = a[i] * 1.0001;
    memcpy(a, b, n * sizeof(double));
    sum += a[p % n];
  }
  printf("%f\n", sum);
  free(a);
  free(b);
  return 0;
}
