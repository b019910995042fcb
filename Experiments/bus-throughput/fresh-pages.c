// How long a fresh 538 MB anonymous mapping takes to fill, with 4 KiB pages and with
// transparent huge pages requested, written 4 MiB at a time as the reassembler writes a
// checkpoint (MADV_POPULATE_WRITE, then the copy). Run by fresh-pages.sh; see results.md,
// "Fresh pages in this VM".
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc != 2 || (argv[1][0] != '0' && argv[1][0] != '1')) {
        fprintf(stderr, "usage: %s 0|1   (1: MADV_HUGEPAGE)\n", argv[0]);
        return 2;
    }
    const int huge = argv[1][0] == '1';
    const size_t size = (size_t)538 << 20, page = (size_t)2 << 20, chunk = (size_t)4 << 20;
    char *raw = mmap(NULL, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) { perror("mmap"); return 1; }
    char *p = (char *)(((size_t)raw + page - 1) & ~(page - 1));
    if (huge) madvise(p, size, MADV_HUGEPAGE);
    double t0 = now();
    for (size_t off = 0; off < size; off += chunk) {
        madvise(p + off, chunk, MADV_POPULATE_WRITE);
        memset(p + off, 1, chunk);
    }
    double t = now() - t0;
    printf("%s pages: 538 MB written in %.3f s (%.2f GB/s)\n", huge ? "2 MiB" : "4 KiB", t, size / t / 1e9);
    return 0;
}
