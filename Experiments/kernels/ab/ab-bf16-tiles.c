// Two builds of matmul_bf16.c's packed-tile path in one process, alternating call by call so
// that this machine's drifting memory speed hits both alike (ab-bf16-tiles.sh builds it).
// Build B's exported names are prefixed vB_. Weights cycle through MB megabytes of copies.
//   ./ab-bf16-tiles THREADS [MB]
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rollspec_kernels.h"

void vB_tiles(float *out, const float *in, const uint16_t *w, const uint16_t *tiles, const float *bias,
              int64_t n, int64_t c, int64_t oc, int threaded);

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    long mb = argc > 2 ? atol(argv[2]) : 160;
    rs_threads_set(threads);
    const long shapes[][2] = {{1536, 576}, {576, 1536}, {576, 576}, {192, 576}};  // [OC, C]
    const char *names[] = {"gate/up", "down", "q/o", "k/v"};
    const int rows[] = {1, 8, 16, 32};
    const int R = 400;
    printf("%d thread(s), weights cycled through %ld MB; median us per call, A -> B (B/A)\n", threads, mb);
    for (int s = 0; s < 4; s++) {
        long oc = shapes[s][0], c = shapes[s][1];
        long copies = (mb << 20) / (oc * c * 2) + 1, tc = rs_bf16_tiles_count(c, oc);
        if (tc == 0) { printf("no AMX tiles on this machine\n"); return 1; }
        uint16_t *w = aligned_alloc(64, copies * oc * c * 2), *tiles = aligned_alloc(64, copies * tc * 2);
        for (long i = 0; i < copies * oc * c; i++) w[i] = (uint16_t)(0x3f80 + i % 7);
        for (long k = 0; k < copies; k++) rs_bf16_pack_tiles(tiles + k * tc, w + k * oc * c, c, oc);
        float *in = aligned_alloc(64, 64 * c * 4), *out = aligned_alloc(64, 64 * oc * 4), *out2 = aligned_alloc(64, 64 * oc * 4);
        for (long i = 0; i < 64 * c; i++) in[i] = (float)(i % 97) / 97.f;
        double *t[8];
        for (int i = 0; i < 8; i++) t[i] = malloc(R * sizeof(double));
        for (int r = 0; r < R; r++)
            for (int q = 0; q < 8; q++) {
                long k = (r * 8 + q) % copies;
                double a = now();
                if (q & 1) vB_tiles(out2, in, w + k * oc * c, tiles + k * tc, NULL, rows[q >> 1], c, oc, 1);
                else rs_matmul_skinny_bf16_tiles(out, in, w + k * oc * c, tiles + k * tc, NULL, rows[q >> 1], c, oc, 1);
                t[q][r] = now() - a;
            }
        // Both builds on the same weights and 32 rows: the prefetch may move time, not bits.
        rs_matmul_skinny_bf16_tiles(out, in, w, tiles, NULL, 32, c, oc, 1);
        vB_tiles(out2, in, w, tiles, NULL, 32, c, oc, 1);
        int same = memcmp(out, out2, 32 * oc * sizeof(float)) == 0;
        printf("%-8s", names[s]);
        for (int q = 0; q < 8; q += 2) {
            qsort(t[q], R, sizeof(double), by_value);
            qsort(t[q + 1], R, sizeof(double), by_value);
            double a = t[q][R / 2] * 1e6, b = t[q + 1][R / 2] * 1e6;
            printf("  N=%-2d %6.1f -> %6.1f (%.2f)", rows[q >> 1], a, b, b / a);
        }
        printf("  %s\n", same ? "same bits" : "BITS DIFFER");
        for (int i = 0; i < 8; i++) free(t[i]);
        free(w), free(tiles), free(in), free(out), free(out2);
    }
    return 0;
}
