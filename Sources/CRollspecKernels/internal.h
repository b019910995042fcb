// Private helpers shared by the kernel files: target attributes for run-time dispatch and
// the vector building blocks (horizontal sums, exp) each ISA level needs.
#ifndef ROLLSPEC_KERNELS_INTERNAL_H
#define ROLLSPEC_KERNELS_INTERNAL_H
#include "rollspec_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#define RS_X86 1
#include <immintrin.h>
// Functions compiled for one ISA level. The package builds without -march, so each fast
// function names its level here and is only called after CPUID said the CPU has it.
#define RS_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma,f16c,avx2")))
#define RS_AVX512BF16 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512bf16,fma,f16c,avx2")))
#define RS_AMXBF16 __attribute__((target("amx-tile,amx-bf16,avx512f,avx512vl,avx512bw,avx512dq,avx512bf16,fma,f16c,avx2")))
#define RS_AVX2 __attribute__((target("avx2,fma,f16c")))
#define RS_INLINE static inline __attribute__((always_inline))
#else
#define RS_X86 0
#endif

/// The level the CPU supports, dispatched on by default (written once, before main).
extern rs_isa rs_isa_level;
/// This thread's override of the level (−1: none), set by rs_isa_set and carried to the pool's
/// threads for the duration of each parallel call, so that a test forcing a level on its thread
/// does not change what other threads run.
extern _Thread_local int rs_isa_override;
/// The level a kernel called on this thread dispatches on.
#define RS_ISA_NOW (rs_isa_override >= 0 ? (rs_isa)rs_isa_override : rs_isa_level)

/// Output rows `o0 ..< o1` of a skinny matmul (one weight format, current ISA level).
/// `in` is `const float *` for every format but bf16 at the AVX512_BF16 level (bf16 bits).
typedef void (*rs_matmul_rows_fn)(float *out, const void *in, const void *w, const float *bias,
                                  int64_t n, int64_t c, int64_t oc, int64_t o0, int64_t o1);

/// Runs `rows` over all of OC, split into chunks across the kernel pool when `threaded` and
/// the product is large enough to pay for it (matmul.c; every weight format shares it).
void rs_matmul_split(rs_matmul_rows_fn rows, float *out, const void *in, const void *w, const float *bias,
                     int64_t n, int64_t c, int64_t oc, int threaded);

/// One numerically stable softmax row at the current ISA level (elementwise.c).
void rs_softmax_row(float *out, const float *in, int64_t dim);
/// scores[p] = scale · q·k_p for p < len, the keys `stride` floats apart (attention.c; also
/// the training attention in backward.c).
void rs_attention_scores(float *scores, const float *q, const float *k, int64_t len, int64_t stride, int64_t d,
                         float scale);
/// out[0 ..< d] = Σ_p w[p] · v_p for p < len, the values `stride` floats apart.
void rs_attention_mix(float *out, const float *w, const float *v, int64_t len, int64_t stride, int64_t d);

#if RS_X86
/// Sums of four vectors, as [Σa, Σb, Σc, Σd]: two shuffle-add rounds within 128-bit lanes,
/// then the four lanes are folded. Much cheaper than four separate horizontal sums.
RS_INLINE RS_AVX512 __m128 rs_reduce4_512(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
    __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
    __m512 s = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(s), _mm512_extractf32x8_ps(s, 1));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/// The epilogue of every AVX-512 register block of four weight rows: for each of `nb` input
/// rows j, out[j·oc + r] = Σ acc_r[j] (+ bias[r]) for the first `rows` (1...4) of the four.
RS_INLINE RS_AVX512 void rs_store4_512(float *out, const __m512 *acc0, const __m512 *acc1, const __m512 *acc2,
                                       const __m512 *acc3, const float *bias, int rows, int64_t oc, int nb) {
    __mmask8 sm = (__mmask8)((1u << rows) - 1u);
    __m128 b = bias ? _mm_maskz_loadu_ps(sm, bias) : _mm_setzero_ps();
    for (int j = 0; j < nb; j++) {
        __m128 s = _mm_add_ps(rs_reduce4_512(acc0[j], acc1[j], acc2[j], acc3[j]), b);
        _mm_mask_storeu_ps(out + j * oc, sm, s);
    }
}

RS_INLINE RS_AVX2 __m128 rs_reduce4_256(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 ab = _mm256_add_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
    __m256 cd = _mm256_add_ps(_mm256_unpacklo_ps(c, d), _mm256_unpackhi_ps(c, d));
    __m256 s = _mm256_add_ps(_mm256_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm256_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

RS_INLINE RS_AVX512 float rs_hsum_512(__m512 v) { return _mm512_reduce_add_ps(v); }
RS_INLINE RS_AVX512 float rs_hmax_512(__m512 v) { return _mm512_reduce_max_ps(v); }

RS_INLINE RS_AVX2 float rs_hsum_256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
RS_INLINE RS_AVX2 float rs_hmax_256(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// exp(x) for float lanes: x = k·ln2 + r with |r| ≤ ln2/2, e^r by a degree-6 polynomial
// (Cephes expf coefficients, ~1 ulp on the reduced range), 2^k built in the exponent field.
// x is clamped to [-87.3, 88.3] so tiny results stay finite (not NaN) and the exponent
// field cannot overflow; callers (softmax, silu) need only relative accuracy ~1e-7.
RS_INLINE RS_AVX512 __m512 rs_exp_512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500E-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i e = _mm512_slli_epi32(
        _mm512_add_epi32(_mm512_cvtps_epi32(k), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

RS_INLINE RS_AVX2 __m256 rs_exp_256(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500E-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/// Mask with the low `n` (0...16) lanes set.
RS_INLINE __mmask16 rs_mask16(int64_t n) { return (__mmask16)((1u << n) - 1u); }
#endif

#endif
