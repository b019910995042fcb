// CPU dispatch: which ISA level the kernels use. Decided once from CPUID; never from the
// environment, so the hot path does not depend on how the process was started.
#include "internal.h"
#if RS_X86 && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

int rs_kernels_version(void) { return 2; }

/// AMX tiles with bf16 dot products, usable by this process. The CPU must have AMX-TILE and
/// AMX-BF16 (CPUID 7.0:EDX bits 24 and 22), the OS must manage tile state (XCR0 bits 17–18),
/// and Linux hands the 8 KB of tile data to a process only when it asks (arch_prctl
/// ARCH_REQ_XCOMP_PERM): asking here, before any thread starts, grants it to every thread.
static int amx_usable(void) {
#if RS_X86 && defined(__linux__)
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    if (!(d & (1u << 24)) || !(d & (1u << 22))) return 0;
    __get_cpuid(1, &a, &b, &c, &d);
    if (!(c & (1u << 27))) return 0;  // OSXSAVE
    unsigned lo, hi;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & (3u << 17)) != (3u << 17)) return 0;
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    return 0;
#endif
}

static rs_isa detect(void) {
#if RS_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("fma")) {
        if (!__builtin_cpu_supports("avx512bf16")) return RS_ISA_AVX512;
        return amx_usable() ? RS_ISA_AMX_BF16 : RS_ISA_AVX512_BF16;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return RS_ISA_AVX2;
#endif
    return RS_ISA_SCALAR;
}

rs_isa rs_isa_level = RS_ISA_SCALAR;
_Thread_local int rs_isa_override = -1;
static rs_isa detected = RS_ISA_SCALAR;

// Runs before main (and before Swift touches the kernels), so rs_isa_level is a plain global
// read with no lazy-initialisation check on the hot path.
__attribute__((constructor)) static void rs_isa_init(void) {
    detected = detect();
    rs_isa_level = detected;
}

rs_isa rs_isa_detected(void) { return detected; }
rs_isa rs_isa_current(void) { return RS_ISA_NOW; }

rs_isa rs_isa_set(rs_isa level) {
    rs_isa clamped = level > detected ? detected : (level < RS_ISA_SCALAR ? RS_ISA_SCALAR : level);
    rs_isa_override = clamped == detected ? -1 : (int)clamped;
    return clamped;
}
