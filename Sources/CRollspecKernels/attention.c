// Causal grouped-query attention over a KV cache (Vaswani et al. 2017 scaled dot product;
// GQA: Ainslie et al. 2023). For each new token t and query head h: scores against the cached
// keys of kv head h / (H / KV) at positions 0 ... start + t, softmax, weighted sum of values.
//
// The (token, head) pairs are independent, across all the sequences of a batch. They are
// grouped into units, the tasks of the thread pool when there is enough work to pay for it:
// up to RS_ATTENTION_BLOCK queries of one kv head over one cache (a verify's tokens and tree
// candidates, each with the query heads that share the kv head). With AVX-512 a unit reads
// each key and value once for all its queries rather than once per query, which is what a
// verify of several rows paid for: the cache streamed from L2 once per (token, head) pair.
// Each query's sums keep one order whatever unit it is in, so the bits are those of
// computing it alone. Scores live in a per-unit scratch block.
//
// A cache holds float32 or bfloat16 keys and values (`rs_attention_segment.bf16`). bfloat16
// is widened to float32 exactly as it is loaded, so attending over a bfloat16 cache gives the
// bits of attending over a float32 cache holding the same (rounded) values; only the bytes
// read from memory halve, which is what a rollout batch's decode step waits on.
#include "internal.h"
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/// `base` advanced by `elements` cache elements (4 bytes each, or 2 for bfloat16).
RS_INLINE const void *kv_at(const void *base, int64_t elements, const int bf16) {
    return (const char *)base + elements * (bf16 ? 2 : 4);
}

/// Element `i` of a cache row as a float (bfloat16 widened exactly).
RS_INLINE float kv_get(const void *row, int64_t i, const int bf16) {
    if (!bf16) return ((const float *)row)[i];
    uint32_t bits = (uint32_t)((const uint16_t *)row)[i] << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}


/// Cache positions ahead of the one being read whose rows are prefetched: a batch's caches
/// stream from memory, a few kilobytes per (sequence, kv head), too short for the hardware
/// prefetcher to ramp up on the rows' stride. Only when a call reads more than
/// RS_KV_PREFETCH_BYTES of caches: one sequence's rows stay in L2 from one step to the next,
/// and prefetching them costs its verify ~10% of attention.
#define RS_KV_AHEAD 16
#define RS_KV_PREFETCH_BYTES (1 << 20)

/// Prefetches `rows` cache rows of `d` elements from `row` on (`stride` elements apart).
RS_INLINE void kv_prefetch(const void *row, int rows, int64_t stride, int64_t d, const int bf16) {
    int64_t bytes = d * (bf16 ? 2 : 4);
    for (int r = 0; r < rows; r++) {
        const char *at = kv_at(row, r * stride, bf16);
        for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(at + b, 0, 3);
    }
}

#if RS_X86
/// 16 channels of a cache row from `row` (masked), widened to float32 if bfloat16.
RS_INLINE RS_AVX512 __m512 kv_load_512(const void *row, __mmask16 m, const int bf16) {
    if (!bf16) return _mm512_maskz_loadu_ps(m, row);
    __m512i wide = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, row));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}

/// 8 channels of a cache row from `row`, widened to float32 if bfloat16.
RS_INLINE RS_AVX2 __m256 kv_load_256(const void *row, const int bf16) {
    if (!bf16) return _mm256_loadu_ps(row);
    __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)row));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

/// scores[p] = scale · q·k_p for p < len, four keys at a time folded by one reduce4.
RS_INLINE RS_AVX512 void scores_512(float *scores, const float *q, const void *k, const void *k_last, int64_t len,
                                    int64_t stride, int64_t d, float scale, const int bf16) {
    __m128 sc = _mm_set1_ps(scale);
    int64_t p = 0;
    for (; p + 4 <= len; p += 4) {
        const void *k0 = kv_at(k, p * stride, bf16), *k1 = kv_at(k0, stride, bf16), *k2 = kv_at(k1, stride, bf16);
        const void *k3 = k_last && p + 4 == len ? k_last : kv_at(k2, stride, bf16);
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        __m512 a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
        for (int64_t i = 0; i < d; i += 16) {
            __mmask16 m = d - i >= 16 ? (__mmask16)0xffff : rs_mask16(d - i);
            __m512 x = _mm512_maskz_loadu_ps(m, q + i);
            a0 = _mm512_fmadd_ps(x, kv_load_512(kv_at(k0, i, bf16), m, bf16), a0);
            a1 = _mm512_fmadd_ps(x, kv_load_512(kv_at(k1, i, bf16), m, bf16), a1);
            a2 = _mm512_fmadd_ps(x, kv_load_512(kv_at(k2, i, bf16), m, bf16), a2);
            a3 = _mm512_fmadd_ps(x, kv_load_512(kv_at(k3, i, bf16), m, bf16), a3);
        }
        _mm_storeu_ps(scores + p, _mm_mul_ps(rs_reduce4_512(a0, a1, a2, a3), sc));
    }
    for (; p < len; p++) {
        const void *kp = k_last && p == len - 1 ? k_last : kv_at(k, p * stride, bf16);
        __m512 a = _mm512_setzero_ps();
        for (int64_t i = 0; i < d; i += 16) {
            __mmask16 m = d - i >= 16 ? (__mmask16)0xffff : rs_mask16(d - i);
            a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), kv_load_512(kv_at(kp, i, bf16), m, bf16), a);
        }
        scores[p] = rs_hsum_512(a) * scale;
    }
}

/// out = Σ_p w[p] · v_p over 64-channel slices held in four registers.
RS_INLINE RS_AVX512 void mix_512(float *out, const float *w, const void *v, const void *v_last, int64_t len,
                                 int64_t stride, int64_t d, const int bf16) {
    for (int64_t i = 0; i < d; i += 64) {
        __mmask16 m[4];
        for (int j = 0; j < 4; j++) {
            int64_t left = d - i - 16 * j;
            m[j] = left >= 16 ? (__mmask16)0xffff : left <= 0 ? 0 : rs_mask16(left);
        }
        __m512 o0 = _mm512_setzero_ps(), o1 = _mm512_setzero_ps();
        __m512 o2 = _mm512_setzero_ps(), o3 = _mm512_setzero_ps();
        for (int64_t p = 0; p < len; p++) {
            const void *vp = kv_at(v_last && p == len - 1 ? v_last : kv_at(v, p * stride, bf16), i, bf16);
            __m512 s = _mm512_set1_ps(w[p]);
            o0 = _mm512_fmadd_ps(s, kv_load_512(vp, m[0], bf16), o0);
            o1 = _mm512_fmadd_ps(s, kv_load_512(kv_at(vp, 16, bf16), m[1], bf16), o1);
            o2 = _mm512_fmadd_ps(s, kv_load_512(kv_at(vp, 32, bf16), m[2], bf16), o2);
            o3 = _mm512_fmadd_ps(s, kv_load_512(kv_at(vp, 48, bf16), m[3], bf16), o3);
        }
        _mm512_mask_storeu_ps(out + i, m[0], o0);
        _mm512_mask_storeu_ps(out + i + 16, m[1], o1);
        _mm512_mask_storeu_ps(out + i + 32, m[2], o2);
        _mm512_mask_storeu_ps(out + i + 48, m[3], o3);
    }
}

// MARK: AVX2

/// scores_512 at AVX2 width: four keys at a time over 8-channel slices, the channels past the
/// last full slice added one by one.
RS_INLINE RS_AVX2 void scores_256(float *scores, const float *q, const void *k, const void *k_last, int64_t len,
                                  int64_t stride, int64_t d, float scale, const int bf16) {
    __m128 sc = _mm_set1_ps(scale);
    int64_t full = d / 8 * 8, p = 0;
    for (; p + 4 <= len; p += 4) {
        const void *k0 = kv_at(k, p * stride, bf16), *k1 = kv_at(k0, stride, bf16), *k2 = kv_at(k1, stride, bf16);
        const void *k3 = k_last && p + 4 == len ? k_last : kv_at(k2, stride, bf16);
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        for (int64_t i = 0; i < full; i += 8) {
            __m256 x = _mm256_loadu_ps(q + i);
            a0 = _mm256_fmadd_ps(x, kv_load_256(kv_at(k0, i, bf16), bf16), a0);
            a1 = _mm256_fmadd_ps(x, kv_load_256(kv_at(k1, i, bf16), bf16), a1);
            a2 = _mm256_fmadd_ps(x, kv_load_256(kv_at(k2, i, bf16), bf16), a2);
            a3 = _mm256_fmadd_ps(x, kv_load_256(kv_at(k3, i, bf16), bf16), a3);
        }
        float s[4];
        _mm_storeu_ps(s, rs_reduce4_256(a0, a1, a2, a3));
        const void *kr[4] = {k0, k1, k2, k3};
        for (int r = 0; r < 4; r++) {
            for (int64_t i = full; i < d; i++) s[r] += q[i] * kv_get(kr[r], i, bf16);
        }
        _mm_storeu_ps(scores + p, _mm_mul_ps(_mm_loadu_ps(s), sc));
    }
    for (; p < len; p++) {
        const void *kp = k_last && p == len - 1 ? k_last : kv_at(k, p * stride, bf16);
        __m256 a = _mm256_setzero_ps();
        for (int64_t i = 0; i < full; i += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), kv_load_256(kv_at(kp, i, bf16), bf16), a);
        float s = rs_hsum_256(a);
        for (int64_t i = full; i < d; i++) s += q[i] * kv_get(kp, i, bf16);
        scores[p] = s * scale;
    }
}

/// mix_512 at AVX2 width: 32-channel slices in four registers, then 8-channel slices, then
/// the channels left one by one.
RS_INLINE RS_AVX2 void mix_256(float *out, const float *w, const void *v, const void *v_last, int64_t len,
                               int64_t stride, int64_t d, const int bf16) {
    int64_t i = 0;
    for (; i + 32 <= d; i += 32) {
        __m256 o0 = _mm256_setzero_ps(), o1 = _mm256_setzero_ps();
        __m256 o2 = _mm256_setzero_ps(), o3 = _mm256_setzero_ps();
        for (int64_t p = 0; p < len; p++) {
            const void *vp = kv_at(v_last && p == len - 1 ? v_last : kv_at(v, p * stride, bf16), i, bf16);
            __m256 s = _mm256_set1_ps(w[p]);
            o0 = _mm256_fmadd_ps(s, kv_load_256(vp, bf16), o0);
            o1 = _mm256_fmadd_ps(s, kv_load_256(kv_at(vp, 8, bf16), bf16), o1);
            o2 = _mm256_fmadd_ps(s, kv_load_256(kv_at(vp, 16, bf16), bf16), o2);
            o3 = _mm256_fmadd_ps(s, kv_load_256(kv_at(vp, 24, bf16), bf16), o3);
        }
        _mm256_storeu_ps(out + i, o0);
        _mm256_storeu_ps(out + i + 8, o1);
        _mm256_storeu_ps(out + i + 16, o2);
        _mm256_storeu_ps(out + i + 24, o3);
    }
    for (; i + 8 <= d; i += 8) {
        __m256 o = _mm256_setzero_ps();
        for (int64_t p = 0; p < len; p++) {
            const void *vp = v_last && p == len - 1 ? v_last : kv_at(v, p * stride, bf16);
            o = _mm256_fmadd_ps(_mm256_set1_ps(w[p]), kv_load_256(kv_at(vp, i, bf16), bf16), o);
        }
        _mm256_storeu_ps(out + i, o);
    }
    for (; i < d; i++) {
        float o = 0;
        for (int64_t p = 0; p < len; p++) o += w[p] * kv_get(v_last && p == len - 1 ? v_last : kv_at(v, p * stride, bf16), i, bf16);
        out[i] = o;
    }
}
#endif

/// Baseline versions (the compiler vectorises the inner loops for the baseline ISA).
RS_INLINE void scores_scalar(float *scores, const float *q, const void *k, const void *k_last, int64_t len,
                             int64_t stride, int64_t d, float scale, const int bf16) {
    for (int64_t p = 0; p < len; p++) {
        const void *kp = k_last && p == len - 1 ? k_last : kv_at(k, p * stride, bf16);
        float acc[8] = {0};
        int64_t i = 0;
        for (; i + 8 <= d; i += 8)
            for (int l = 0; l < 8; l++) acc[l] += q[i + l] * kv_get(kp, i + l, bf16);
        float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        for (; i < d; i++) s += q[i] * kv_get(kp, i, bf16);
        scores[p] = s * scale;
    }
}

RS_INLINE void mix_scalar(float *out, const float *w, const void *v, const void *v_last, int64_t len, int64_t stride,
                          int64_t d, const int bf16) {
    for (int64_t i = 0; i < d; i++) out[i] = 0;
    for (int64_t p = 0; p < len; p++) {
        const void *vp = v_last && p == len - 1 ? v_last : kv_at(v, p * stride, bf16);
        float s = w[p];
        for (int64_t i = 0; i < d; i++) out[i] += s * kv_get(vp, i, bf16);
    }
}

#if RS_X86
static RS_AVX512 void scores_512_f32(float *scores, const float *q, const float *k, int64_t len, int64_t stride,
                                     int64_t d, float scale) {
    scores_512(scores, q, k, NULL, len, stride, d, scale, 0);
}
static RS_AVX2 void scores_256_f32(float *scores, const float *q, const float *k, int64_t len, int64_t stride,
                                   int64_t d, float scale) {
    scores_256(scores, q, k, NULL, len, stride, d, scale, 0);
}
static RS_AVX512 void mix_512_f32(float *out, const float *w, const float *v, int64_t len, int64_t stride, int64_t d) {
    mix_512(out, w, v, NULL, len, stride, d, 0);
}
static RS_AVX2 void mix_256_f32(float *out, const float *w, const float *v, int64_t len, int64_t stride, int64_t d) {
    mix_256(out, w, v, NULL, len, stride, d, 0);
}
#endif

void rs_attention_scores(float *scores, const float *q, const float *k, int64_t len, int64_t stride, int64_t d,
                         float scale) {
#if RS_X86
    if (RS_ISA_NOW >= RS_ISA_AVX512) { scores_512_f32(scores, q, k, len, stride, d, scale); return; }
    if (RS_ISA_NOW == RS_ISA_AVX2) { scores_256_f32(scores, q, k, len, stride, d, scale); return; }
#endif
    scores_scalar(scores, q, k, NULL, len, stride, d, scale, 0);
}

void rs_attention_mix(float *out, const float *w, const float *v, int64_t len, int64_t stride, int64_t d) {
#if RS_X86
    if (RS_ISA_NOW >= RS_ISA_AVX512) { mix_512_f32(out, w, v, len, stride, d); return; }
    if (RS_ISA_NOW == RS_ISA_AVX2) { mix_256_f32(out, w, v, len, stride, d); return; }
#endif
    mix_scalar(out, w, v, NULL, len, stride, d, 0);
}

/// One query of a unit: its row and head in `query` and `out`, how many cache positions it
/// reads, and the key and value that stand in for the cache's at its last position (NULL: the
/// cache's own).
typedef struct {
    int64_t row, h, len;
    const void *k_last, *v_last;
} attention_query;

/// A task: `count` queries of kv head `g` over one cache (the queries of consecutive segments
/// that share a cache: a chain and its tree candidates), `queries[first ..< first + count]`.
typedef struct {
    const void *keys, *values;  // the cache, kv head g's columns
    int64_t g, first, count;
    int bf16;  // the cache's elements are bfloat16
} attention_unit;

typedef struct {
    float *out;
    const float *query;
    const attention_query *queries;
    const attention_unit *units;
    int64_t heads, kv_heads, d;
    int prefetch;  // the caches read are too big to stay in cache: prefetch their rows
} attention_job;

/// Most queries a unit holds (a verify's tokens × the query heads of one kv head, in turn).
/// Process-wide, set by tests and `bench attention` while other threads may run attention.
static _Atomic int rs_attention_block = RS_ATTENTION_BLOCK;

void rs_attention_set_block(int queries) {
    int block = queries < 1 ? 1 : queries > RS_ATTENTION_BLOCK ? RS_ATTENTION_BLOCK : queries;
    atomic_store_explicit(&rs_attention_block, block, memory_order_relaxed);
}
int rs_attention_get_block(void) { return atomic_load_explicit(&rs_attention_block, memory_order_relaxed); }

/// One query on its own: scores against the cache, softmax, weighted values; one copy per
/// instruction set and cache element, each with its element fixed at compile time.
#define RS_ATTEND_ONE(NAME, ATTR, SCORES, MIX)                                                              \
    static ATTR void NAME(const attention_job *j, const attention_unit *u, const attention_query *a,       \
                          float *scores) {                                                                  \
        int64_t d = j->d, len = a->len, stride = j->kv_heads * d;                                           \
        const float *q = j->query + (a->row * j->heads + a->h) * d;                                         \
        float *o = j->out + (a->row * j->heads + a->h) * d;                                                 \
        float scale = (float)(1.0 / sqrt((double)d));                                                       \
        if (u->bf16) {                                                                                      \
            SCORES(scores, q, u->keys, a->k_last, len, stride, d, scale, 1);                                \
            rs_softmax_row(scores, scores, len);                                                            \
            MIX(o, scores, u->values, a->v_last, len, stride, d, 1);                                        \
        } else {                                                                                            \
            SCORES(scores, q, u->keys, a->k_last, len, stride, d, scale, 0);                                \
            rs_softmax_row(scores, scores, len);                                                            \
            MIX(o, scores, u->values, a->v_last, len, stride, d, 0);                                        \
        }                                                                                                   \
    }
#if RS_X86
RS_ATTEND_ONE(attend_one_512, RS_AVX512, scores_512, mix_512)
RS_ATTEND_ONE(attend_one_256, RS_AVX2, scores_256, mix_256)
#endif
RS_ATTEND_ONE(attend_one_scalar, , scores_scalar, mix_scalar)

static void attend_one(const attention_job *j, const attention_unit *u, const attention_query *a, float *scores) {
#if RS_X86
    if (RS_ISA_NOW >= RS_ISA_AVX512) { attend_one_512(j, u, a, scores); return; }
    if (RS_ISA_NOW == RS_ISA_AVX2) { attend_one_256(j, u, a, scores); return; }
#endif
    attend_one_scalar(j, u, a, scores);
}

#if RS_X86
/// Weighted values of NQ (1–4) queries over channels i ..< i + 64: the first `shared`
/// positions with each value loaded once for all of them, then each query's own positions (its
/// last maybe its own value), in attend_one's order. Accumulators are named, not an array,
/// so that they stay in registers.
RS_INLINE RS_AVX512 void mix_queries_512(const attention_job *j, const attention_unit *u, const attention_query *qs,
                                         const float *const w[4], const __mmask16 m[4], int64_t shared, int64_t i,
                                         const int NQ, const int bf16) {
    int64_t stride = j->kv_heads * j->d;
    __m512 z = _mm512_setzero_ps();
    __m512 o00 = z, o01 = z, o02 = z, o03 = z, o10 = z, o11 = z, o12 = z, o13 = z;
    __m512 o20 = z, o21 = z, o22 = z, o23 = z, o30 = z, o31 = z, o32 = z, o33 = z;
    for (int64_t p = 0; p < shared; p++) {
        const void *vp = kv_at(u->values, p * stride + i, bf16);
        if (j->prefetch) kv_prefetch(kv_at(vp, RS_KV_AHEAD * stride, bf16), 1, stride, j->d - i < 64 ? j->d - i : 64, bf16);
        __m512 v0 = kv_load_512(vp, m[0], bf16), v1 = kv_load_512(kv_at(vp, 16, bf16), m[1], bf16);
        __m512 v2 = kv_load_512(kv_at(vp, 32, bf16), m[2], bf16), v3 = kv_load_512(kv_at(vp, 48, bf16), m[3], bf16);
        __m512 s0 = _mm512_set1_ps(w[0][p]);
        o00 = _mm512_fmadd_ps(s0, v0, o00); o01 = _mm512_fmadd_ps(s0, v1, o01);
        o02 = _mm512_fmadd_ps(s0, v2, o02); o03 = _mm512_fmadd_ps(s0, v3, o03);
        if (NQ > 1) {
            __m512 s1 = _mm512_set1_ps(w[1][p]);
            o10 = _mm512_fmadd_ps(s1, v0, o10); o11 = _mm512_fmadd_ps(s1, v1, o11);
            o12 = _mm512_fmadd_ps(s1, v2, o12); o13 = _mm512_fmadd_ps(s1, v3, o13);
        }
        if (NQ > 2) {
            __m512 s2 = _mm512_set1_ps(w[2][p]);
            o20 = _mm512_fmadd_ps(s2, v0, o20); o21 = _mm512_fmadd_ps(s2, v1, o21);
            o22 = _mm512_fmadd_ps(s2, v2, o22); o23 = _mm512_fmadd_ps(s2, v3, o23);
        }
        if (NQ > 3) {
            __m512 s3 = _mm512_set1_ps(w[3][p]);
            o30 = _mm512_fmadd_ps(s3, v0, o30); o31 = _mm512_fmadd_ps(s3, v1, o31);
            o32 = _mm512_fmadd_ps(s3, v2, o32); o33 = _mm512_fmadd_ps(s3, v3, o33);
        }
    }
    __m512 o[4][4] = {{o00, o01, o02, o03}, {o10, o11, o12, o13}, {o20, o21, o22, o23}, {o30, o31, o32, o33}};
    for (int e = 0; e < NQ; e++) {
        const attention_query *a = &qs[e];
        for (int64_t p = shared; p < a->len; p++) {
            const void *vp = kv_at(a->v_last && p == a->len - 1 ? a->v_last : kv_at(u->values, p * stride, bf16), i, bf16);
            __m512 s = _mm512_set1_ps(w[e][p]);
            o[e][0] = _mm512_fmadd_ps(s, kv_load_512(vp, m[0], bf16), o[e][0]);
            o[e][1] = _mm512_fmadd_ps(s, kv_load_512(kv_at(vp, 16, bf16), m[1], bf16), o[e][1]);
            o[e][2] = _mm512_fmadd_ps(s, kv_load_512(kv_at(vp, 32, bf16), m[2], bf16), o[e][2]);
            o[e][3] = _mm512_fmadd_ps(s, kv_load_512(kv_at(vp, 48, bf16), m[3], bf16), o[e][3]);
        }
        float *out = j->out + (a->row * j->heads + a->h) * j->d + i;
        _mm512_mask_storeu_ps(out, m[0], o[e][0]);
        _mm512_mask_storeu_ps(out + 16, m[1], o[e][1]);
        _mm512_mask_storeu_ps(out + 32, m[2], o[e][2]);
        _mm512_mask_storeu_ps(out + 48, m[3], o[e][3]);
    }
}

/// A unit's queries together (AVX-512): the keys and values below every query's last
/// position are read once per group of four keys (scores) or once per four queries (mix)
/// instead of once per query, while each query keeps the order of sums attend_one gives it,
/// so the bits do not depend on which queries share a unit. `scores` holds count × `pitch`.
RS_INLINE RS_AVX512 void attend_unit_512_t(const attention_job *j, const attention_unit *u, float *scores,
                                           int64_t pitch, const int bf16) {
    const attention_query *qs = j->queries + u->first;
    int64_t count = u->count, d = j->d, stride = j->kv_heads * d;
    float scale = (float)(1.0 / sqrt((double)d));
    __m128 sc = _mm_set1_ps(scale);
    // Positions every query reads from the cache, in whole groups of four (a query's last
    // position may hold its own key, so it is never shared).
    int64_t shared = INT64_MAX;
    for (int64_t r = 0; r < count; r++) shared = qs[r].len - 1 < shared ? qs[r].len - 1 : shared;
    shared = shared / 4 * 4;
    const float *q[RS_ATTENTION_BLOCK];
    for (int64_t r = 0; r < count; r++) q[r] = j->query + (qs[r].row * j->heads + qs[r].h) * d;

    // Two queries at a time share the four keys' loads; each keeps attend_one's sums.
    for (int64_t p = 0; p < shared; p += 4) {
        const void *k0 = kv_at(u->keys, p * stride, bf16), *k1 = kv_at(k0, stride, bf16);
        const void *k2 = kv_at(k1, stride, bf16), *k3 = kv_at(k2, stride, bf16);
        if (j->prefetch) kv_prefetch(kv_at(k0, RS_KV_AHEAD * stride, bf16), 4, stride, d, bf16);
        for (int64_t r = 0; r < count; r += 2) {
            int two = r + 1 < count;
            const float *qa = q[r], *qb = two ? q[r + 1] : q[r];
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            for (int64_t i = 0; i < d; i += 16) {
                __mmask16 m = d - i >= 16 ? (__mmask16)0xffff : rs_mask16(d - i);
                __m512 x = _mm512_maskz_loadu_ps(m, qa + i), y = _mm512_maskz_loadu_ps(m, qb + i);
                __m512 c0 = kv_load_512(kv_at(k0, i, bf16), m, bf16), c1 = kv_load_512(kv_at(k1, i, bf16), m, bf16);
                __m512 c2 = kv_load_512(kv_at(k2, i, bf16), m, bf16), c3 = kv_load_512(kv_at(k3, i, bf16), m, bf16);
                a0 = _mm512_fmadd_ps(x, c0, a0); a1 = _mm512_fmadd_ps(x, c1, a1);
                a2 = _mm512_fmadd_ps(x, c2, a2); a3 = _mm512_fmadd_ps(x, c3, a3);
                b0 = _mm512_fmadd_ps(y, c0, b0); b1 = _mm512_fmadd_ps(y, c1, b1);
                b2 = _mm512_fmadd_ps(y, c2, b2); b3 = _mm512_fmadd_ps(y, c3, b3);
            }
            _mm_storeu_ps(scores + r * pitch + p, _mm_mul_ps(rs_reduce4_512(a0, a1, a2, a3), sc));
            if (two) _mm_storeu_ps(scores + (r + 1) * pitch + p, _mm_mul_ps(rs_reduce4_512(b0, b1, b2, b3), sc));
        }
    }
    for (int64_t r = 0; r < count; r++) {
        float *s = scores + r * pitch;
        scores_512(s + shared, q[r], kv_at(u->keys, shared * stride, bf16), qs[r].k_last, qs[r].len - shared, stride, d,
                   scale, bf16);
        rs_softmax_row(s, s, qs[r].len);
    }

    // Weighted values, 64 channels at a time, four queries at a time: the shared positions
    // with each value read once for the four, then each query's own positions.
    for (int64_t i = 0; i < d; i += 64) {
        __mmask16 m[4];
        for (int c = 0; c < 4; c++) {
            int64_t left = d - i - 16 * c;
            m[c] = left >= 16 ? (__mmask16)0xffff : left <= 0 ? 0 : rs_mask16(left);
        }
        for (int64_t r0 = 0; r0 < count; r0 += 4) {
            int nq = count - r0 < 4 ? (int)(count - r0) : 4;
            const float *w[4];
            for (int e = 0; e < 4; e++) w[e] = scores + (r0 + (e < nq ? e : 0)) * pitch;
            switch (nq) {
            case 1: mix_queries_512(j, u, qs + r0, w, m, shared, i, 1, bf16); break;
            case 2: mix_queries_512(j, u, qs + r0, w, m, shared, i, 2, bf16); break;
            case 3: mix_queries_512(j, u, qs + r0, w, m, shared, i, 3, bf16); break;
            default: mix_queries_512(j, u, qs + r0, w, m, shared, i, 4, bf16); break;
            }
        }
    }
}

static RS_AVX512 void attend_unit_512(const attention_job *j, const attention_unit *u, float *scores, int64_t pitch) {
    if (u->bf16) attend_unit_512_t(j, u, scores, pitch, 1);
    else attend_unit_512_t(j, u, scores, pitch, 0);
}
#endif

/// Task = one unit.
static void attention_unit_task(void *ctx, int task) {
    const attention_job *j = ctx;
    const attention_unit *u = &j->units[task];
    int64_t pitch = 0;
    for (int64_t r = 0; r < u->count; r++) pitch = j->queries[u->first + r].len > pitch ? j->queries[u->first + r].len : pitch;
    pitch = (pitch + 15) / 16 * 16;
#if RS_X86
    int together = RS_ISA_NOW >= RS_ISA_AVX512 && u->count > 1;
#else
    int together = 0;
#endif
    // Scores on the stack up to 16k floats (64 KB; worker stacks are 1 MB), else the heap.
    int64_t need = together ? u->count * pitch : pitch;
    float stack[need <= 16384 ? need : 1];
    float *scores = need <= 16384 ? stack : malloc((size_t)need * sizeof(float));
#if RS_X86
    if (together) attend_unit_512(j, u, scores, pitch);
    else
#endif
        for (int64_t r = 0; r < u->count; r++) attend_one(j, u, &j->queries[u->first + r], scores);
    if (scores != stack) free(scores);
}

void rs_attention_segments(float *out, const float *query, const rs_attention_segment *segments,
                           int64_t count, int64_t heads, int64_t kv_heads, int64_t head_dim) {
    int64_t tokens = 0, work = 0;
    for (int64_t s = 0; s < count; s++) {
        tokens += segments[s].n;
        work += segments[s].n * (segments[s].start + segments[s].n);
    }
    if (tokens == 0) return;
    int64_t group = heads / kv_heads, threads = rs_threads_get(), nq = tokens * heads;
    // Queries per unit: as many as the block allows, but small enough for four units a
    // thread, so the pool's threads share the work evenly.
    int64_t target = (nq + 4 * threads - 1) / (4 * threads);
    // Rounded up to whole groups of four (the mix takes four queries at a time).
    if (target > 2) target = (target + 3) / 4 * 4;
    int64_t most = rs_attention_get_block(), block = target < most ? target : most;
    if (block < 1) block = 1;
    // At most one unit per query: the tables on the stack for a decode step's few queries.
    attention_query stack_q[nq <= 512 ? nq : 1];
    attention_unit stack_u[nq <= 512 ? nq : 1];
    attention_query *queries = nq <= 512 ? stack_q : malloc((size_t)nq * sizeof(attention_query));
    attention_unit *units = nq <= 512 ? stack_u : malloc((size_t)nq * sizeof(attention_unit));
    int64_t nu = 0, at = 0, bytes = 0;
    // Consecutive segments over the same cache (a chain and its candidates) share units.
    for (int64_t s0 = 0, s1; s0 < count; s0 = s1) {
        for (s1 = s0 + 1; s1 < count && segments[s1].keys == segments[s0].keys && segments[s1].values == segments[s0].values; s1++) {}
        int bf16 = segments[s0].bf16 != 0;
        bytes += 2 * (segments[s0].start + segments[s0].n) * kv_heads * head_dim * (bf16 ? 2 : 4);
        for (int64_t g = 0; g < kv_heads; g++) {
            int64_t begin = at;
            for (int64_t s = s0; s < s1; s++) {
                const rs_attention_segment *seg = &segments[s];
                for (int64_t t = 0; t < seg->n; t++) {
                    int own = seg->last_key && t == seg->n - 1;
                    for (int64_t h = g * group; h < (g + 1) * group; h++)
                        queries[at++] = (attention_query){seg->row + t, h, seg->start + t + 1,
                                                          own ? kv_at(seg->last_key, g * head_dim, bf16) : NULL,
                                                          own ? kv_at(seg->last_value, g * head_dim, bf16) : NULL};
                }
            }
            for (int64_t f = begin; f < at; f += block)
                units[nu++] = (attention_unit){kv_at(segments[s0].keys, g * head_dim, bf16),
                                               kv_at(segments[s0].values, g * head_dim, bf16), g, f,
                                               at - f < block ? at - f : block, bf16};
        }
    }
    attention_job job = {out, query, queries, units, heads, kv_heads, head_dim, bytes > RS_KV_PREFETCH_BYTES};
    // Work ≈ 2 · heads · Σ tokens · positions · D multiply-adds; below ~32k a thread wake costs
    // more. All segments share one fork/join: a batch of 64 sequences used to pay 64 per layer.
    work *= heads * head_dim;
    if (work < (1 << 15) || threads <= 1) {
        for (int64_t i = 0; i < nu; i++) attention_unit_task(&job, (int)i);
    } else {
        rs_parallel_for(attention_unit_task, &job, (int)nu);
    }
    if (queries != stack_q) free(queries);
    if (units != stack_u) free(units);
}

void rs_attention(float *out, const float *query, const float *keys, const float *values,
                  int64_t start, int64_t n, int64_t heads, int64_t kv_heads, int64_t head_dim) {
    rs_attention_segment one = {keys, values, start, n, 0, NULL, NULL, 0};
    rs_attention_segments(out, query, &one, 1, heads, kv_heads, head_dim);
}
