// Statistics of one row of logits: max, argmax, log-sum-exp at a temperature, the shifted
// exponentials a sampler draws from, and the top k. What sampling, logprobs and top-k recording
// need once per token of every sequence, vectorised instead of three scalar passes in Swift.
// Sums of exponentials run in double (a vocabulary of 49,152 summed in float lanes would lose
// ~1e-5 of the total). Legend: V entries.
#include "internal.h"
#include <math.h>

// MARK: Max and argmax

static void max_scalar(const float *x, int64_t n, float *max_out) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    *max_out = m;
}

#if RS_X86
static RS_AVX512 void max_512(const float *x, int64_t n, float *max_out) {
    __m512 mv = _mm512_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) mv = _mm512_max_ps(mv, _mm512_loadu_ps(x + i));
    if (i < n) {
        __mmask16 tm = rs_mask16(n - i);
        mv = _mm512_mask_max_ps(mv, tm, mv, _mm512_maskz_loadu_ps(tm, x + i));
    }
    *max_out = rs_hmax_512(mv);
}

static RS_AVX2 void max_256(const float *x, int64_t n, float *max_out) {
    __m256 mv = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + i));
    float m = rs_hmax_256(mv);
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    *max_out = m;
}
#endif

static float row_max(const float *x, int64_t n) {
    float m;
#if RS_X86
    if (RS_ISA_NOW >= RS_ISA_AVX512) { max_512(x, n, &m); return m; }
    if (RS_ISA_NOW == RS_ISA_AVX2) { max_256(x, n, &m); return m; }
#endif
    max_scalar(x, n, &m);
    return m;
}

/// The first index holding `max` (the row's max), or −1 when none does (NaN in the row).
static int64_t first_of(const float *x, int64_t n, float max) {
    for (int64_t i = 0; i < n; i++) if (x[i] == max) return i;
    return -1;
}

// MARK: Sum of exponentials

/// Σ exp(scale·(x_i − m)), optionally storing each term in `out`; double accumulation.
static double expsum_scalar(float *out, const float *x, int64_t n, float scale, float m) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        float e = expf((x[i] - m) * scale);
        if (out) out[i] = e;
        s += e;
    }
    return s;
}

#if RS_X86
static RS_AVX512 double expsum_512(float *out, const float *x, int64_t n, float scale, float m) {
    __m512 mm = _mm512_set1_ps(m), sc = _mm512_set1_ps(scale);
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    int64_t i = 0;
    for (; i < n; i += 16) {
        __mmask16 tm = n - i >= 16 ? (__mmask16)0xffff : rs_mask16(n - i);
        __m512 e = rs_exp_512(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(tm, x + i), mm), sc));
        e = _mm512_maskz_mov_ps(tm, e);
        if (out) _mm512_mask_storeu_ps(out + i, tm, e);
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
}

static RS_AVX2 double expsum_256(float *out, const float *x, int64_t n, float scale, float m) {
    __m256 mm = _mm256_set1_ps(m), sc = _mm256_set1_ps(scale);
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = rs_exp_256(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), mm), sc));
        if (out) _mm256_storeu_ps(out + i, e);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    __m256d s = _mm256_add_pd(s0, s1);
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    double total = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
    return total + expsum_scalar(out ? out + i : NULL, x + i, n - i, scale, m);
}
#endif

static double expsum(float *out, const float *x, int64_t n, float scale, float m) {
#if RS_X86
    if (RS_ISA_NOW >= RS_ISA_AVX512) return expsum_512(out, x, n, scale, m);
    if (RS_ISA_NOW == RS_ISA_AVX2) return expsum_256(out, x, n, scale, m);
#endif
    return expsum_scalar(out, x, n, scale, m);
}

// MARK: Public

rs_row_stats rs_row_logsumexp(const float *x, int64_t n, float scale) {
    rs_row_stats s = {-INFINITY, -1, -INFINITY};
    if (n <= 0) return s;
    s.max = row_max(x, n);
    s.argmax = first_of(x, n, s.max);
    if (s.max == -INFINITY || isnan(s.max)) return s;
    s.log_sum = log(expsum(NULL, x, n, scale, s.max));
    return s;
}

double rs_exp_shifted(float *out, const float *x, int64_t n, float scale, float max) {
    return expsum(out, x, n, scale, max);
}

void rs_top_k(int32_t *out, const float *x, int64_t n, int32_t k) {
    // k = 1 (a sampler's shift, greedy decoding): the vectorised max and the first entry
    // equal to it, ~10× the scan below on 49,152 logits; the same index.
    if (k == 1 && n > 0) {
        int64_t at = first_of(x, n, row_max(x, n));
        if (at >= 0) { out[0] = (int32_t)at; return; }
    }
    // A small buffer kept sorted, largest first; an entry must beat the k-th to get in, which
    // after the first few hundred entries almost none do, so this is one compare per entry.
    int32_t count = 0;
    for (int64_t i = 0; i < n && k > 0; i++) {
        float v = x[i];
        if (count == k && !(v > x[out[k - 1]])) continue;
        int32_t at = count < k ? count : k - 1;
        while (at > 0 && x[out[at - 1]] < v) { out[at] = out[at - 1]; at--; }
        out[at] = (int32_t)i;
        if (count < k) count++;
    }
}
