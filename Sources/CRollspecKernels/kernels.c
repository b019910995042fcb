// CPU dispatch: which ISA level the kernels use. Decided once from CPUID; never from the
// environment, so the hot path does not depend on how the process was started.
#include "internal.h"

int rs_kernels_version(void) { return 2; }

static rs_isa detect(void) {
#if RS_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("fma"))
        return __builtin_cpu_supports("avx512bf16") ? RS_ISA_AVX512_BF16 : RS_ISA_AVX512;
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
