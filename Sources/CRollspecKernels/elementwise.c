// Elementwise kernels and reductions along one row: RMSNorm, softmax, SwiGLU, residual add,
// scale, dot product, and half / bfloat16 → float conversion.
//
// Simple loops are written once as an always-inline plain-C body and compiled three times
// (AVX-512, AVX2, baseline) through RS_CLONES so the compiler vectorises each for its level.
// Loops that need exp() or a reduction use explicit intrinsics, since the compiler can neither
// call a vector exp nor reorder a float sum on its own.
#include "internal.h"
#include <math.h>
#include <string.h>

/// Defines name_512, name_256 and name_scalar, each the inlined body `name##_body` compiled
/// for one ISA level, and `name(...)` dispatching on RS_ISA_NOW.
#if RS_X86
#define RS_CLONES(name, params, args)                                     \
    static RS_AVX512 void name##_512 params { name##_body args; }         \
    static RS_AVX2 void name##_256 params { name##_body args; }           \
    static void name##_scalar params { name##_body args; }                \
    static void name##_dispatch params {                                  \
        if (RS_ISA_NOW >= RS_ISA_AVX512) name##_512 args;               \
        else if (RS_ISA_NOW == RS_ISA_AVX2) name##_256 args;            \
        else name##_scalar args;                                          \
    }
#else
#define RS_CLONES(name, params, args) \
    static void name##_dispatch params { name##_body args; }
#endif

// MARK: Add, scale, bf16

RS_INLINE void add_body(float *restrict acc, const float *restrict x, int64_t count) {
    for (int64_t i = 0; i < count; i++) acc[i] += x[i];
}
RS_CLONES(add, (float *acc, const float *x, int64_t count), (acc, x, count))
void rs_add_inplace(float *acc, const float *x, int64_t count) { add_dispatch(acc, x, count); }

RS_INLINE void scale_body(float *restrict x, float s, int64_t count) {
    for (int64_t i = 0; i < count; i++) x[i] *= s;
}
RS_CLONES(scale, (float *x, float s, int64_t count), (x, s, count))
void rs_scale_inplace(float *x, float s, int64_t count) { scale_dispatch(x, s, count); }

/// bfloat16 is the top half of a float32: shift it back into place.
RS_INLINE void bf16_body(float *restrict out, const uint16_t *restrict in, int64_t count) {
    uint32_t *o = (uint32_t *)out;
    for (int64_t i = 0; i < count; i++) o[i] = (uint32_t)in[i] << 16;
}
RS_CLONES(bf16, (float *out, const uint16_t *in, int64_t count), (out, in, count))
void rs_bf16_to_float(float *out, const uint16_t *in, int64_t count) { bf16_dispatch(out, in, count); }

// MARK: Half → float

/// IEEE binary16 → binary32 by bit manipulation (normals, subnormals, inf, NaN).
static float half_to_float_scalar(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) bits = sign | 0x7f800000 | (man << 13);          // inf / NaN
    else if (exp != 0) bits = sign | ((exp + 112) << 23) | (man << 13); // normal: rebias 15 → 127
    else if (man == 0) bits = sign;                                    // ±0
    else {                                                             // subnormal: normalise
        int e = -1;
        do { man <<= 1; e++; } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

#if RS_X86
static RS_AVX512 void half_512(float *out, const uint16_t *in, int64_t count) {
    int64_t i = 0;
    for (; i + 16 <= count; i += 16)
        _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(in + i))));
    if (i < count) {
        __mmask16 m = rs_mask16(count - i);
        __m256i h = _mm256_maskz_loadu_epi16(m, in + i);
        _mm512_mask_storeu_ps(out + i, m, _mm512_cvtph_ps(h));
    }
}
static RS_AVX2 void half_256(float *out, const uint16_t *in, int64_t count) {
    int64_t i = 0;
    for (; i + 8 <= count; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(in + i))));
    for (; i < count; i++) out[i] = half_to_float_scalar(in[i]);
}
#endif

void rs_half_to_float(float *out, const uint16_t *in, int64_t count) {
#if RS_X86
    if (RS_ISA_NOW >= RS_ISA_AVX512) { half_512(out, in, count); return; }
    if (RS_ISA_NOW == RS_ISA_AVX2) { half_256(out, in, count); return; }
#endif
    for (int64_t i = 0; i < count; i++) out[i] = half_to_float_scalar(in[i]);
}

// MARK: Dot product

/// Baseline dot product: 8 independent partial sums (vectorisable, and more accurate than
/// one running sum).
static float dot_scalar(const float *a, const float *b, int64_t count) {
    float p[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= count; i += 8)
        for (int l = 0; l < 8; l++) p[l] += a[i + l] * b[i + l];
    float s = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
    for (; i < count; i++) s += a[i] * b[i];
    return s;
}

#if RS_X86
RS_INLINE RS_AVX512 float dot_512(const float *a, const float *b, int64_t count) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= count; i += 64) {  // four chains hide the FMA latency
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= count; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < count) {
        __mmask16 m = rs_mask16(count - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return rs_hsum_512(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}
static RS_AVX512 float dot_512_call(const float *a, const float *b, int64_t count) {
    return dot_512(a, b, count);
}
static RS_AVX2 float dot_256(const float *a, const float *b, int64_t count) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= count; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= count; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = rs_hsum_256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < count; i++) s += a[i] * b[i];
    return s;
}
#endif

float rs_dot(const float *a, const float *b, int64_t count) {
#if RS_X86
    if (RS_ISA_NOW >= RS_ISA_AVX512) return dot_512_call(a, b, count);
    if (RS_ISA_NOW == RS_ISA_AVX2) return dot_256(a, b, count);
#endif
    return dot_scalar(a, b, count);
}

// MARK: RMSNorm

RS_INLINE void rmsnorm_scale_body(float *restrict out, const float *restrict in,
                                  const float *restrict weight, float scale, int64_t dim) {
    for (int64_t c = 0; c < dim; c++) out[c] = in[c] * scale * weight[c];
}
// `out` may alias `in`, so this one is not `restrict` on in/out: element c is read before
// it is written, which the vectorised loop also respects (it reads a vector, then writes it).
RS_INLINE void rmsnorm_apply_body(float *out, const float *in, const float *restrict weight,
                                  float scale, int64_t dim) {
    if (out == in) {
        for (int64_t c = 0; c < dim; c++) out[c] = out[c] * scale * weight[c];
    } else {
        rmsnorm_scale_body(out, in, weight, scale, dim);
    }
}
RS_CLONES(rmsnorm_apply, (float *out, const float *in, const float *weight, float scale, int64_t dim),
          (out, in, weight, scale, dim))

void rs_rmsnorm(float *out, const float *in, const float *weight, int64_t n, int64_t dim, float eps) {
    for (int64_t r = 0; r < n; r++) {
        const float *x = in + r * dim;
        // Sum of squares in double from the vector dot (float lanes, then one double step):
        // rows are a few thousand wide, so float partial sums lose < 1e-6 relative.
        double ss = rs_dot(x, x, dim);
        float scale = (float)(1.0 / sqrt(ss / (double)dim + (double)eps));
        rmsnorm_apply_dispatch(out + r * dim, x, weight, scale, dim);
    }
}

// MARK: Softmax

#if RS_X86
static RS_AVX512 void softmax_row_512(float *out, const float *in, int64_t dim) {
    __m512 mv = _mm512_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 16 <= dim; i += 16) mv = _mm512_max_ps(mv, _mm512_loadu_ps(in + i));
    __mmask16 tm = rs_mask16(dim - i);
    if (i < dim) mv = _mm512_mask_max_ps(mv, tm, mv, _mm512_maskz_loadu_ps(tm, in + i));
    float m = rs_hmax_512(mv);
    if (m == -INFINITY) m = 0;  // an all -inf row: avoid inf - inf
    __m512 mm = _mm512_set1_ps(m), sv = _mm512_setzero_ps();
    for (i = 0; i + 16 <= dim; i += 16) {
        __m512 e = rs_exp_512(_mm512_sub_ps(_mm512_loadu_ps(in + i), mm));
        _mm512_storeu_ps(out + i, e);
        sv = _mm512_add_ps(sv, e);
    }
    if (i < dim) {
        __m512 e = rs_exp_512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tm, in + i), mm));
        _mm512_mask_storeu_ps(out + i, tm, e);
        sv = _mm512_add_ps(sv, _mm512_maskz_mov_ps(tm, e));
    }
    __m512 inv = _mm512_set1_ps(1.0f / rs_hsum_512(sv));
    for (i = 0; i + 16 <= dim; i += 16) _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_loadu_ps(out + i), inv));
    if (i < dim) _mm512_mask_storeu_ps(out + i, tm, _mm512_mul_ps(_mm512_maskz_loadu_ps(tm, out + i), inv));
}

static RS_AVX2 void softmax_row_256(float *out, const float *in, int64_t dim) {
    float m = -INFINITY;
    __m256 mv = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= dim; i += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(in + i));
    m = rs_hmax_256(mv);
    for (int64_t j = i; j < dim; j++) m = in[j] > m ? in[j] : m;
    if (m == -INFINITY) m = 0;
    __m256 mm = _mm256_set1_ps(m), sv = _mm256_setzero_ps();
    for (i = 0; i + 8 <= dim; i += 8) {
        __m256 e = rs_exp_256(_mm256_sub_ps(_mm256_loadu_ps(in + i), mm));
        _mm256_storeu_ps(out + i, e);
        sv = _mm256_add_ps(sv, e);
    }
    float s = rs_hsum_256(sv);
    for (; i < dim; i++) { out[i] = expf(in[i] - m); s += out[i]; }
    float inv = 1.0f / s;
    for (i = 0; i < dim; i++) out[i] *= inv;
}
#endif

static void softmax_row_scalar(float *out, const float *in, int64_t dim) {
    float m = -INFINITY;
    for (int64_t i = 0; i < dim; i++) m = in[i] > m ? in[i] : m;
    if (m == -INFINITY) m = 0;
    double s = 0;
    for (int64_t i = 0; i < dim; i++) { out[i] = expf(in[i] - m); s += out[i]; }
    float inv = (float)(1.0 / s);
    for (int64_t i = 0; i < dim; i++) out[i] *= inv;
}

/// One softmax row, dispatched; also used by attention.
void rs_softmax_row(float *out, const float *in, int64_t dim) {
#if RS_X86
    if (RS_ISA_NOW >= RS_ISA_AVX512) { softmax_row_512(out, in, dim); return; }
    if (RS_ISA_NOW == RS_ISA_AVX2) { softmax_row_256(out, in, dim); return; }
#endif
    softmax_row_scalar(out, in, dim);
}

void rs_softmax(float *out, const float *in, int64_t n, int64_t dim) {
    for (int64_t r = 0; r < n; r++) rs_softmax_row(out + r * dim, in + r * dim, dim);
}

// MARK: SwiGLU

#if RS_X86
static RS_AVX512 void swiglu_512(float *out, const float *gate, const float *up, int64_t count) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < count; i += 16) {
        __mmask16 m = count - i >= 16 ? (__mmask16)0xffff : rs_mask16(count - i);
        __m512 g = _mm512_maskz_loadu_ps(m, gate + i), u = _mm512_maskz_loadu_ps(m, up + i);
        // silu(g) = g / (1 + e^-g); e^-g saturates (not NaN) for large |g| thanks to the clamp.
        __m512 s = _mm512_div_ps(g, _mm512_add_ps(one, rs_exp_512(_mm512_sub_ps(_mm512_setzero_ps(), g))));
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(s, u));
    }
}
static RS_AVX2 void swiglu_256(float *out, const float *gate, const float *up, int64_t count) {
    const __m256 one = _mm256_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i), u = _mm256_loadu_ps(up + i);
        __m256 s = _mm256_div_ps(g, _mm256_add_ps(one, rs_exp_256(_mm256_sub_ps(_mm256_setzero_ps(), g))));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(s, u));
    }
    for (; i < count; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}
#endif

static void swiglu_span(float *out, const float *gate, const float *up, int64_t count) {
#if RS_X86
    if (RS_ISA_NOW >= RS_ISA_AVX512) { swiglu_512(out, gate, up, count); return; }
    if (RS_ISA_NOW == RS_ISA_AVX2) { swiglu_256(out, gate, up, count); return; }
#endif
    for (int64_t i = 0; i < count; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

// Below this many elements one thread is faster than a fork/join: a verify of 8 rows (12,288
// for SmolLM2) took 5 µs a layer on one thread, a division and an exp per element.
#define RS_SWIGLU_SPLIT 4096

typedef struct {
    float *out;
    const float *gate, *up;
    int64_t count, chunk;
} swiglu_job;

static void swiglu_task(void *ctx, int task) {
    const swiglu_job *j = ctx;
    int64_t i0 = task * j->chunk, i1 = i0 + j->chunk < j->count ? i0 + j->chunk : j->count;
    swiglu_span(j->out + i0, j->gate + i0, j->up + i0, i1 - i0);
}

/// Each element on its own, so the split (whole cache lines per thread) changes no bit.
void rs_swiglu(float *out, const float *gate, const float *up, int64_t count) {
    int threads = rs_threads_get();
    if (threads <= 1 || count < RS_SWIGLU_SPLIT) { swiglu_span(out, gate, up, count); return; }
    int64_t chunk = ((count + threads - 1) / threads + 15) / 16 * 16;
    swiglu_job job = {out, gate, up, count, chunk};
    rs_parallel_for(swiglu_task, &job, (int)((count + chunk - 1) / chunk));
}
