// What the CPU is and which vector extensions it and the OS support, read from CPUID and
// XGETBV. Used to pick BLAS kernels and to record the machine beside every benchmark figure.
#include "internal.h"
#include <string.h>

#if RS_X86
#include <cpuid.h>

static void cpuid_count(unsigned leaf, unsigned sub, unsigned r[4]) {
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
}

static uint64_t xgetbv0(void) {
    unsigned lo, hi;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

void rs_cpu_identify(rs_cpu_info *info) {
    memset(info, 0, sizeof *info);
#if RS_X86
    unsigned r[4];
    cpuid_count(0, 0, r);
    unsigned max_leaf = r[0];
    memcpy(info->vendor, &r[1], 4);
    memcpy(info->vendor + 4, &r[3], 4);
    memcpy(info->vendor + 8, &r[2], 4);

    cpuid_count(1, 0, r);
    unsigned family = (r[0] >> 8) & 0xf, model = (r[0] >> 4) & 0xf;
    if (family == 0xf) family += (r[0] >> 20) & 0xff;
    if (family == 0x6 || family >= 0xf) model += ((r[0] >> 16) & 0xf) << 4;
    info->family = (int)family;
    info->model = (int)model;
    unsigned ecx1 = r[2];
    uint64_t f = 0;
    if (ecx1 & (1u << 12)) f |= RS_CPU_FMA;
    if (ecx1 & (1u << 19)) f |= RS_CPU_SSE41;
    if (ecx1 & (1u << 29)) f |= RS_CPU_F16C;
    // The OS must save the vector registers on a context switch, or the instructions fault.
    int osxsave = (ecx1 >> 27) & 1;
    uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    int os_avx = (xcr0 & 0x6) == 0x6, os_avx512 = (xcr0 & 0xe6) == 0xe6;
    if ((ecx1 & (1u << 28)) && os_avx) f |= RS_CPU_AVX;
    if (max_leaf >= 7) {
        cpuid_count(7, 0, r);
        unsigned ebx = r[1], ecx = r[2], edx = r[3];
        if (os_avx && (ebx & (1u << 5))) f |= RS_CPU_AVX2;
        if (os_avx512) {
            if (ebx & (1u << 16)) f |= RS_CPU_AVX512F;
            if (ebx & (1u << 17)) f |= RS_CPU_AVX512DQ;
            if (ebx & (1u << 28)) f |= RS_CPU_AVX512CD;
            if (ebx & (1u << 30)) f |= RS_CPU_AVX512BW;
            if (ebx & (1u << 31)) f |= RS_CPU_AVX512VL;
            if (ecx & (1u << 11)) f |= RS_CPU_AVX512VNNI;
            if (edx & (1u << 23)) f |= RS_CPU_AVX512FP16;
            cpuid_count(7, 1, r);
            if (r[0] & (1u << 5)) f |= RS_CPU_AVX512BF16;
        }
        if (edx & (1u << 24)) f |= RS_CPU_AMX_TILE;
    }
    info->features = f;

    cpuid_count(0x80000000u, 0, r);
    if (r[0] >= 0x80000004u) {
        for (unsigned i = 0; i < 3; i++) {
            cpuid_count(0x80000002u + i, 0, r);
            memcpy(info->brand + 16 * i, r, 16);
        }
    }
#endif
}
