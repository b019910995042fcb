// Causal grouped-query attention over a KV cache (Vaswani et al. 2017 scaled dot product;
// GQA: Ainslie et al. 2023). For each new token t and query head h: scores against the cached
// keys of kv head h / (H / KV) at positions 0 ... start + t, softmax, weighted sum of values.
//
// The (token, head) pairs are independent, across all the sequences of a batch, so they are
// the tasks of the thread pool when there is enough work to pay for it: one task per token and
// kv head (its query heads in turn, reading the same keys and values) when there are enough
// of those, else one per token and head. Scores live in a per-pair scratch row.
#include "internal.h"
#include <math.h>
#include <stdlib.h>

typedef struct {
    float *out;
    const float *query;
    const rs_attention_segment *segments;
    const int32_t *segment_of;  // [tokens]: the segment each new token belongs to
    const int64_t *first;       // [segments]: each segment's first token in that order
    int64_t heads, kv_heads, d;
} attention_job;

#if RS_X86
/// scores[p] = scale · q·k_p for p < len, four keys at a time folded by one reduce4.
static RS_AVX512 void scores_512(float *scores, const float *q, const float *k, const float *k_last, int64_t len,
                                 int64_t stride, int64_t d, float scale) {
    __m128 sc = _mm_set1_ps(scale);
    int64_t p = 0;
    for (; p + 4 <= len; p += 4) {
        const float *k0 = k + p * stride, *k1 = k0 + stride, *k2 = k1 + stride;
        const float *k3 = k_last && p + 4 == len ? k_last : k2 + stride;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        __m512 a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
        for (int64_t i = 0; i < d; i += 16) {
            __mmask16 m = d - i >= 16 ? (__mmask16)0xffff : rs_mask16(d - i);
            __m512 x = _mm512_maskz_loadu_ps(m, q + i);
            a0 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(m, k0 + i), a0);
            a1 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(m, k1 + i), a1);
            a2 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(m, k2 + i), a2);
            a3 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(m, k3 + i), a3);
        }
        _mm_storeu_ps(scores + p, _mm_mul_ps(rs_reduce4_512(a0, a1, a2, a3), sc));
    }
    for (; p < len; p++) {
        const float *kp = k_last && p == len - 1 ? k_last : k + p * stride;
        __m512 a = _mm512_setzero_ps();
        for (int64_t i = 0; i < d; i += 16) {
            __mmask16 m = d - i >= 16 ? (__mmask16)0xffff : rs_mask16(d - i);
            a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), _mm512_maskz_loadu_ps(m, kp + i), a);
        }
        scores[p] = rs_hsum_512(a) * scale;
    }
}

/// out = Σ_p w[p] · v_p over 64-channel slices held in four registers.
static RS_AVX512 void mix_512(float *out, const float *w, const float *v, const float *v_last, int64_t len,
                              int64_t stride, int64_t d) {
    for (int64_t i = 0; i < d; i += 64) {
        __mmask16 m[4];
        for (int j = 0; j < 4; j++) {
            int64_t left = d - i - 16 * j;
            m[j] = left >= 16 ? (__mmask16)0xffff : left <= 0 ? 0 : rs_mask16(left);
        }
        __m512 o0 = _mm512_setzero_ps(), o1 = _mm512_setzero_ps();
        __m512 o2 = _mm512_setzero_ps(), o3 = _mm512_setzero_ps();
        for (int64_t p = 0; p < len; p++) {
            const float *vp = (v_last && p == len - 1 ? v_last : v + p * stride) + i;
            __m512 s = _mm512_set1_ps(w[p]);
            o0 = _mm512_fmadd_ps(s, _mm512_maskz_loadu_ps(m[0], vp), o0);
            o1 = _mm512_fmadd_ps(s, _mm512_maskz_loadu_ps(m[1], vp + 16), o1);
            o2 = _mm512_fmadd_ps(s, _mm512_maskz_loadu_ps(m[2], vp + 32), o2);
            o3 = _mm512_fmadd_ps(s, _mm512_maskz_loadu_ps(m[3], vp + 48), o3);
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
static RS_AVX2 void scores_256(float *scores, const float *q, const float *k, const float *k_last, int64_t len,
                               int64_t stride, int64_t d, float scale) {
    __m128 sc = _mm_set1_ps(scale);
    int64_t full = d / 8 * 8, p = 0;
    for (; p + 4 <= len; p += 4) {
        const float *k0 = k + p * stride, *k1 = k0 + stride, *k2 = k1 + stride;
        const float *k3 = k_last && p + 4 == len ? k_last : k2 + stride;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        for (int64_t i = 0; i < full; i += 8) {
            __m256 x = _mm256_loadu_ps(q + i);
            a0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k0 + i), a0);
            a1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k1 + i), a1);
            a2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k2 + i), a2);
            a3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k3 + i), a3);
        }
        float s[4];
        _mm_storeu_ps(s, rs_reduce4_256(a0, a1, a2, a3));
        const float *kr[4] = {k0, k1, k2, k3};
        for (int r = 0; r < 4; r++) {
            for (int64_t i = full; i < d; i++) s[r] += q[i] * kr[r][i];
        }
        _mm_storeu_ps(scores + p, _mm_mul_ps(_mm_loadu_ps(s), sc));
    }
    for (; p < len; p++) {
        const float *kp = k_last && p == len - 1 ? k_last : k + p * stride;
        __m256 a = _mm256_setzero_ps();
        for (int64_t i = 0; i < full; i += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(kp + i), a);
        float s = rs_hsum_256(a);
        for (int64_t i = full; i < d; i++) s += q[i] * kp[i];
        scores[p] = s * scale;
    }
}

/// mix_512 at AVX2 width: 32-channel slices in four registers, then 8-channel slices, then
/// the channels left one by one.
static RS_AVX2 void mix_256(float *out, const float *w, const float *v, const float *v_last, int64_t len,
                            int64_t stride, int64_t d) {
    int64_t i = 0;
    for (; i + 32 <= d; i += 32) {
        __m256 o0 = _mm256_setzero_ps(), o1 = _mm256_setzero_ps();
        __m256 o2 = _mm256_setzero_ps(), o3 = _mm256_setzero_ps();
        for (int64_t p = 0; p < len; p++) {
            const float *vp = (v_last && p == len - 1 ? v_last : v + p * stride) + i;
            __m256 s = _mm256_set1_ps(w[p]);
            o0 = _mm256_fmadd_ps(s, _mm256_loadu_ps(vp), o0);
            o1 = _mm256_fmadd_ps(s, _mm256_loadu_ps(vp + 8), o1);
            o2 = _mm256_fmadd_ps(s, _mm256_loadu_ps(vp + 16), o2);
            o3 = _mm256_fmadd_ps(s, _mm256_loadu_ps(vp + 24), o3);
        }
        _mm256_storeu_ps(out + i, o0);
        _mm256_storeu_ps(out + i + 8, o1);
        _mm256_storeu_ps(out + i + 16, o2);
        _mm256_storeu_ps(out + i + 24, o3);
    }
    for (; i + 8 <= d; i += 8) {
        __m256 o = _mm256_setzero_ps();
        for (int64_t p = 0; p < len; p++) {
            const float *vp = v_last && p == len - 1 ? v_last : v + p * stride;
            o = _mm256_fmadd_ps(_mm256_set1_ps(w[p]), _mm256_loadu_ps(vp + i), o);
        }
        _mm256_storeu_ps(out + i, o);
    }
    for (; i < d; i++) {
        float o = 0;
        for (int64_t p = 0; p < len; p++) o += w[p] * (v_last && p == len - 1 ? v_last : v + p * stride)[i];
        out[i] = o;
    }
}
#endif

/// Baseline versions (the compiler vectorises the inner loops for the baseline ISA).
static void scores_scalar(float *scores, const float *q, const float *k, const float *k_last, int64_t len,
                          int64_t stride, int64_t d, float scale) {
    for (int64_t p = 0; p < len; p++) {
        const float *kp = k_last && p == len - 1 ? k_last : k + p * stride;
        float acc[8] = {0};
        int64_t i = 0;
        for (; i + 8 <= d; i += 8)
            for (int l = 0; l < 8; l++) acc[l] += q[i + l] * kp[i + l];
        float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        for (; i < d; i++) s += q[i] * kp[i];
        scores[p] = s * scale;
    }
}

static void mix_scalar(float *out, const float *w, const float *v, const float *v_last, int64_t len, int64_t stride,
                       int64_t d) {
    for (int64_t i = 0; i < d; i++) out[i] = 0;
    for (int64_t p = 0; p < len; p++) {
        const float *vp = v_last && p == len - 1 ? v_last : v + p * stride;
        float s = w[p];
        for (int64_t i = 0; i < d; i++) out[i] += s * vp[i];
    }
}

void rs_attention_scores(float *scores, const float *q, const float *k, int64_t len, int64_t stride, int64_t d,
                         float scale) {
#if RS_X86
    if (RS_ISA_NOW >= RS_ISA_AVX512) { scores_512(scores, q, k, NULL, len, stride, d, scale); return; }
    if (RS_ISA_NOW == RS_ISA_AVX2) { scores_256(scores, q, k, NULL, len, stride, d, scale); return; }
#endif
    scores_scalar(scores, q, k, NULL, len, stride, d, scale);
}

void rs_attention_mix(float *out, const float *w, const float *v, int64_t len, int64_t stride, int64_t d) {
#if RS_X86
    if (RS_ISA_NOW >= RS_ISA_AVX512) { mix_512(out, w, v, NULL, len, stride, d); return; }
    if (RS_ISA_NOW == RS_ISA_AVX2) { mix_256(out, w, v, NULL, len, stride, d); return; }
#endif
    mix_scalar(out, w, v, NULL, len, stride, d);
}

/// One (token, head) pair, tokens counted over all segments in order: its scores against the
/// cache, softmax, and the weighted values.
static void attend(const attention_job *j, int64_t token, int64_t h) {
    const rs_attention_segment *seg = &j->segments[j->segment_of[token]];
    int64_t t = token - j->first[j->segment_of[token]], row = seg->row + t;
    int64_t group = j->heads / j->kv_heads, kvh = h / group, d = j->d;
    int64_t len = seg->start + t + 1, stride = j->kv_heads * d;
    const float *q = j->query + (row * j->heads + h) * d;
    const float *k = seg->keys + kvh * d, *v = seg->values + kvh * d;
    // The segment's last position may hold a candidate's own key and value (its last token
    // only sees that position).
    int own = seg->last_key && t == seg->n - 1;
    const float *k_last = own ? seg->last_key + kvh * d : NULL, *v_last = own ? seg->last_value + kvh * d : NULL;
    float *o = j->out + (row * j->heads + h) * d;
    float scale = (float)(1.0 / sqrt((double)d));

    // Scores on the stack up to 16k positions (64 KB; worker stacks are 1 MB), else the heap.
    float stack[len <= 16384 ? len : 1];
    float *scores = len <= 16384 ? stack : malloc((size_t)len * sizeof(float));
#if RS_X86
    if (RS_ISA_NOW >= RS_ISA_AVX512) {
        scores_512(scores, q, k, k_last, len, stride, d, scale);
        rs_softmax_row(scores, scores, len);
        mix_512(o, scores, v, v_last, len, stride, d);
    } else if (RS_ISA_NOW == RS_ISA_AVX2) {
        scores_256(scores, q, k, k_last, len, stride, d, scale);
        rs_softmax_row(scores, scores, len);
        mix_256(o, scores, v, v_last, len, stride, d);
    } else
#endif
    {
        scores_scalar(scores, q, k, k_last, len, stride, d, scale);
        rs_softmax_row(scores, scores, len);
        mix_scalar(o, scores, v, v_last, len, stride, d);
    }
    if (scores != stack) free(scores);
}

/// Task = token * heads + h: one (token, head) pair.
static void attention_head_task(void *ctx, int task) {
    const attention_job *j = ctx;
    attend(j, task / j->heads, task % j->heads);
}

/// Task = token * kv_heads + g: the query heads that share kv head g, one after another, so the
/// keys and values they read come from this core's cache after the first.
static void attention_group_task(void *ctx, int task) {
    const attention_job *j = ctx;
    int64_t token = task / j->kv_heads, g = task % j->kv_heads, group = j->heads / j->kv_heads;
    for (int64_t h = g * group; h < (g + 1) * group; h++) attend(j, token, h);
}

void rs_attention_segments(float *out, const float *query, const rs_attention_segment *segments,
                           int64_t count, int64_t heads, int64_t kv_heads, int64_t head_dim) {
    int64_t tokens = 0, work = 0;
    for (int64_t s = 0; s < count; s++) {
        tokens += segments[s].n;
        work += segments[s].n * (segments[s].start + segments[s].n);
    }
    if (tokens == 0) return;
    // Token → segment tables: on the stack for a decode step's few tokens, else the heap.
    int32_t stack_seg[tokens <= 1024 ? tokens : 1];
    int64_t stack_first[count <= 1024 ? count : 1];
    int32_t *segment_of = tokens <= 1024 ? stack_seg : malloc((size_t)tokens * sizeof(int32_t));
    int64_t *first = count <= 1024 ? stack_first : malloc((size_t)count * sizeof(int64_t));
    for (int64_t s = 0, i = 0; s < count; s++) {
        first[s] = i;
        for (int64_t t = 0; t < segments[s].n; t++) segment_of[i++] = (int32_t)s;
    }
    attention_job job = {out, query, segments, segment_of, first, heads, kv_heads, head_dim};
    // Tasks by kv head when there are enough of them to keep every thread busy, else by head.
    int64_t threads = rs_threads_get();
    int by_group = tokens * kv_heads >= 4 * threads;
    int64_t tasks = by_group ? tokens * kv_heads : tokens * heads;
    void (*task)(void *, int) = by_group ? attention_group_task : attention_head_task;
    // Work ≈ 2 · heads · Σ tokens · positions · D multiply-adds; below ~32k a thread wake costs
    // more. All segments share one fork/join: a batch of 64 sequences used to pay 64 per layer.
    work *= heads * head_dim;
    if (work < (1 << 15) || threads <= 1) {
        for (int64_t i = 0; i < tasks; i++) task(&job, (int)i);
    } else {
        rs_parallel_for(task, &job, (int)tasks);
    }
    if (segment_of != stack_seg) free(segment_of);
    if (first != stack_first) free(first);
}

void rs_attention(float *out, const float *query, const float *keys, const float *values,
                  int64_t start, int64_t n, int64_t heads, int64_t kv_heads, int64_t head_dim) {
    rs_attention_segment one = {keys, values, start, n, 0, NULL, NULL};
    rs_attention_segments(out, query, &one, 1, heads, kv_heads, head_dim);
}
