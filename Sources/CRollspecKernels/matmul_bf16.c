// Skinny matmul with bfloat16 weights and bfloat16-rounded inputs: out[N, OC] = bf16(in[N, C]) ·
// w[OC, C]ᵀ (+ bias), sums and outputs in float32.
//
// For a bfloat16 policy and for drafts. A decode step is a few rows through the matrices,
// limited by how fast the weights stream from memory; weights stored as bf16 stream half the
// bytes. A verify or batched step of 8–100 rows is limited by multiply-adds instead, and with
// the inputs rounded to bf16 as well, AVX512_BF16's VDPBF16PS does two per lane per
// instruction: twice a float FMA's rate. Every product is of two bf16 values, exact in float32,
// so every ISA level computes the same function up to summation order: the others widen the
// rounded inputs and the weights and use float FMAs.
//
// Same loop nest as matmul.c: a block of 4 weight rows × up to 6 input rows in 24 zmm
// accumulators, each weight vector loaded once and used for every input row. Row blocks
// RS_BF16_PF blocks ahead are prefetched into L2 by the first column block. C is not chunked:
// a block's inputs (6 rows × C × 2 or 4 bytes) stay in L1 at the widths of small models.
#include "internal.h"
#include <stdlib.h>
#include <string.h>

#define RS_BF16_ROWS 4
#define RS_BF16_COLS512 6
#define RS_BF16_COLS256 2
#define RS_BF16_PF 2
#define RS_BF16_DP_MIN_ROWS 5  // AVX512_BF16: passes of fewer rows take the AVX-512 FMA kernel
#define RS_BF16_AMX_MIN_ROWS 3 // AMX: passes of fewer rows take the kernels below
#define RS_BF16_AMX_PAD_MIN 256 // AMX: C of at least this many channels is padded to a multiple of 32
#define RS_BF16_TILES_MAX_ROWS 32 // AMX with packed weights: longer passes take the kernels below
#define RS_BF16_COLS256X2 6  // AVX2, N ≥ 2: 2 weight rows × 6 input rows (12 + 2 + 1 ≤ 16 ymm)
#define RS_BF16_KCHUNK 256   // AVX2, N ≥ 2: channels per C chunk (all column blocks per chunk)
#define RS_BF16_SUPER 48     // AVX2, N ≥ 2: input rows per pass over the weights
#define RS_BF16_PF1 8        // AVX2, N ≥ 2: prefetch distance in weight rows

static inline float bf16_to_float(uint16_t h) {
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}

/// The bfloat16 nearest to `x` (ties to even), as its 16 bits.
static inline uint16_t bf16_round(float x) {
    union { float f; uint32_t u; } v = {x};
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x0040u);  // NaN stays a quiet NaN
    // Round to nearest, ties to even, on the 16 bits dropped.
    uint32_t rounding = 0x7fffu + ((v.u >> 16) & 1u);
    return (uint16_t)((v.u + rounding) >> 16);
}

#if RS_X86
/// bf16_round on 16 lanes, by the same integer steps; the bf16 bits in the low half of each lane.
RS_INLINE RS_AVX512 __m512i bf16_round_512(__m512 x) {
    __m512i u = _mm512_castps_si512(x);
    __m512i top = _mm512_srli_epi32(u, 16);
    __m512i rounding = _mm512_add_epi32(_mm512_set1_epi32(0x7fff), _mm512_and_si512(top, _mm512_set1_epi32(1)));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, rounding), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                           _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_or_epi32(r, nan, top, _mm512_set1_epi32(0x0040));
}

static RS_AVX512 void float_to_bf16_512(uint16_t *out, const float *in, int64_t count) {
    int64_t i = 0;
    for (; i + 16 <= count; i += 16)
        _mm256_storeu_si256((__m256i *)(out + i), _mm512_cvtepi32_epi16(bf16_round_512(_mm512_loadu_ps(in + i))));
    if (i < count) {
        __mmask16 m = rs_mask16(count - i);
        _mm256_mask_storeu_epi16(out + i, m, _mm512_cvtepi32_epi16(bf16_round_512(_mm512_maskz_loadu_ps(m, in + i))));
    }
}

static RS_AVX512 void round_to_bf16_512(float *out, const float *in, int64_t count) {
    int64_t i = 0;
    for (; i + 16 <= count; i += 16)
        _mm512_storeu_ps(out + i, _mm512_castsi512_ps(_mm512_slli_epi32(bf16_round_512(_mm512_loadu_ps(in + i)), 16)));
    if (i < count) {
        __mmask16 m = rs_mask16(count - i);
        __m512i r = bf16_round_512(_mm512_maskz_loadu_ps(m, in + i));
        _mm512_mask_storeu_ps(out + i, m, _mm512_castsi512_ps(_mm512_slli_epi32(r, 16)));
    }
}
#endif

void rs_float_to_bf16(uint16_t *out, const float *in, int64_t count) {
#if RS_X86
    if (RS_ISA_NOW >= RS_ISA_AVX512) { float_to_bf16_512(out, in, count); return; }
#endif
    for (int64_t i = 0; i < count; i++) out[i] = bf16_round(in[i]);
}

void rs_round_to_bf16(float *out, const float *in, int64_t count) {
#if RS_X86
    if (RS_ISA_NOW >= RS_ISA_AVX512) { round_to_bf16_512(out, in, count); return; }
#endif
    for (int64_t i = 0; i < count; i++) {
        union { uint32_t u; float f; } v = {(uint32_t)bf16_round(in[i]) << 16};
        out[i] = v.f;
    }
}

// MARK: Transposes (a learner's bfloat16 backward)

#define RS_TRANSPOSE_BLOCK 32

/// out[c · rows + r] = CONVERT(in[r · cols + c]) for input rows r0 ..< r1, in 32 × 32 blocks so
/// that both sides stay in cache lines already loaded.
#define RS_TRANSPOSE(out, in, rows, cols, r_begin, r_end, CONVERT)                                \
    for (int64_t r0 = (r_begin); r0 < (r_end); r0 += RS_TRANSPOSE_BLOCK)                          \
        for (int64_t c0 = 0; c0 < (cols); c0 += RS_TRANSPOSE_BLOCK) {                             \
            int64_t r1 = r0 + RS_TRANSPOSE_BLOCK < (r_end) ? r0 + RS_TRANSPOSE_BLOCK : (r_end);   \
            int64_t c1 = c0 + RS_TRANSPOSE_BLOCK < (cols) ? c0 + RS_TRANSPOSE_BLOCK : (cols);     \
            for (int64_t c = c0; c < c1; c++)                                                     \
                for (int64_t r = r0; r < r1; r++) (out)[c * (rows) + r] = CONVERT((in)[r * (cols) + c]); \
        }

static inline float rs_identity(float x) { return x; }

typedef struct {
    void *out;
    const float *in;
    int64_t rows, cols, chunk;
    int to_bf16;
} transpose_job;

/// Task t: input rows t · chunk ..< (t + 1) · chunk, whose output columns no other task writes.
static void transpose_task(void *ctx, int task) {
    const transpose_job *j = ctx;
    int64_t begin = task * j->chunk, end = begin + j->chunk < j->rows ? begin + j->chunk : j->rows;
    if (j->to_bf16) {
        uint16_t *out = j->out;
        RS_TRANSPOSE(out, j->in, j->rows, j->cols, begin, end, bf16_round)
    } else {
        float *out = j->out;
        RS_TRANSPOSE(out, j->in, j->rows, j->cols, begin, end, rs_identity)
    }
}

/// Splits the input rows across the pool in multiples of the block, when there is enough to
/// pay for a fork (a learner's backward transposes ~600M values a 2,048-row pass).
static void transpose(void *out, const float *in, int64_t rows, int64_t cols, int to_bf16) {
    if (rows <= 0 || cols <= 0) return;
    int threads = rs_threads_get();
    int64_t blocks = (rows + RS_TRANSPOSE_BLOCK - 1) / RS_TRANSPOSE_BLOCK;
    int tasks = rows * cols < (1 << 16) || threads <= 1 ? 1 : (int)(blocks < threads ? blocks : threads);
    int64_t chunk = (blocks + tasks - 1) / tasks * RS_TRANSPOSE_BLOCK;
    transpose_job job = {out, in, rows, cols, chunk, to_bf16};
    tasks = (int)((rows + chunk - 1) / chunk);
    rs_parallel_for(transpose_task, &job, tasks > 0 ? tasks : 1);
}

void rs_transpose(float *out, const float *in, int64_t rows, int64_t cols) { transpose(out, in, rows, cols, 0); }

void rs_transpose_to_bf16(uint16_t *out, const float *in, int64_t rows, int64_t cols) { transpose(out, in, rows, cols, 1); }

#if RS_X86
// MARK: AVX-512

RS_INLINE RS_AVX512 __m512 load_bf16_512(const uint16_t *p) {
    __m256i h = _mm256_loadu_si256((const __m256i *)p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

RS_INLINE RS_AVX512 __m512 maskz_load_bf16_512(__mmask16 m, const uint16_t *p) {
    __m256i h = _mm256_maskz_loadu_epi16(m, p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/// One register block: `rows` (1...4) weight rows at `w` × `NB` input rows over all of C.
/// Missing weight rows read row 0 again; their sums are not stored. `pf`, if not NULL, is
/// prefetched at 2 lines per 16-channel step: 4 rows · C · 2 bytes, one row block.
RS_INLINE RS_AVX512 void bf16_block512(float *out, const float *in, const uint16_t *w,
                                       const float *bias, int rows, int64_t c, int64_t oc,
                                       const char *pf, const int NB) {
    const uint16_t *w0 = w, *w1 = rows > 1 ? w + c : w, *w2 = rows > 2 ? w + 2 * c : w,
                   *w3 = rows > 3 ? w + 3 * c : w;
    __m512 acc[RS_BF16_ROWS][RS_BF16_COLS512];
    for (int j = 0; j < NB; j++)
        for (int r = 0; r < RS_BF16_ROWS; r++) acc[r][j] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= c; k += 16) {
        if (pf) {
            _mm_prefetch(pf + 8 * k, _MM_HINT_T1);
            _mm_prefetch(pf + 8 * k + 64, _MM_HINT_T1);
        }
        __m512 a0 = load_bf16_512(w0 + k), a1 = load_bf16_512(w1 + k);
        __m512 a2 = load_bf16_512(w2 + k), a3 = load_bf16_512(w3 + k);
        for (int j = 0; j < NB; j++) {
            __m512 x = _mm512_loadu_ps(in + j * c + k);
            acc[0][j] = _mm512_fmadd_ps(a0, x, acc[0][j]);
            acc[1][j] = _mm512_fmadd_ps(a1, x, acc[1][j]);
            acc[2][j] = _mm512_fmadd_ps(a2, x, acc[2][j]);
            acc[3][j] = _mm512_fmadd_ps(a3, x, acc[3][j]);
        }
    }
    if (k < c) {  // C not a multiple of 16: masked loads read zeros past the end
        __mmask16 m = rs_mask16(c - k);
        __m512 a0 = maskz_load_bf16_512(m, w0 + k), a1 = maskz_load_bf16_512(m, w1 + k);
        __m512 a2 = maskz_load_bf16_512(m, w2 + k), a3 = maskz_load_bf16_512(m, w3 + k);
        for (int j = 0; j < NB; j++) {
            __m512 x = _mm512_maskz_loadu_ps(m, in + j * c + k);
            acc[0][j] = _mm512_fmadd_ps(a0, x, acc[0][j]);
            acc[1][j] = _mm512_fmadd_ps(a1, x, acc[1][j]);
            acc[2][j] = _mm512_fmadd_ps(a2, x, acc[2][j]);
            acc[3][j] = _mm512_fmadd_ps(a3, x, acc[3][j]);
        }
    }
    rs_store4_512(out, acc[0], acc[1], acc[2], acc[3], bias, rows, oc, NB);
}

/// The AVX-512 row loop of both bf16 kernels (float FMAs here, VDPBF16PS below): blocks of
/// RS_BF16_ROWS weight rows, each over even column blocks of up to RS_BF16_COLS512 input rows,
/// the first of which prefetches the row block RS_BF16_PF blocks ahead. `BLOCK` is the register
/// block, `IN` the inputs' element type.
#define RS_BF16_ROWS512(BLOCK, IN)                                                                   \
    const IN *in = input;                                                                            \
    const uint16_t *w = weights;                                                                     \
    int64_t blocks = (n + RS_BF16_COLS512 - 1) / RS_BF16_COLS512;                                    \
    for (int64_t o = o0; o < o1; o += RS_BF16_ROWS) {                                                \
        int rows = o1 - o < RS_BF16_ROWS ? (int)(o1 - o) : RS_BF16_ROWS;                             \
        const uint16_t *wr = w + o * c;                                                              \
        const float *br = bias ? bias + o : NULL;                                                    \
        const char *pf = (const char *)(wr + RS_BF16_PF * RS_BF16_ROWS * c);                         \
        int64_t j0 = 0;                                                                              \
        for (int64_t b = 0; b < blocks; b++, pf = NULL) {                                            \
            int64_t j1 = n * (b + 1) / blocks; /* even column blocks */                              \
            float *ob = out + j0 * oc + o;                                                           \
            const IN *ib = in + j0 * c;                                                              \
            switch (j1 - j0) {                                                                       \
            case 1: BLOCK(ob, ib, wr, br, rows, c, oc, pf, 1); break;                                \
            case 2: BLOCK(ob, ib, wr, br, rows, c, oc, pf, 2); break;                                \
            case 3: BLOCK(ob, ib, wr, br, rows, c, oc, pf, 3); break;                                \
            case 4: BLOCK(ob, ib, wr, br, rows, c, oc, pf, 4); break;                                \
            case 5: BLOCK(ob, ib, wr, br, rows, c, oc, pf, 5); break;                                \
            default: BLOCK(ob, ib, wr, br, rows, c, oc, pf, 6); break;                               \
            }                                                                                        \
            j0 = j1;                                                                                 \
        }                                                                                            \
    }

static RS_AVX512 void bf16_rows512(float *out, const void *input, const void *weights, const float *bias,
                                   int64_t n, int64_t c, int64_t oc, int64_t o0, int64_t o1) {
    RS_BF16_ROWS512(bf16_block512, float)
}

// MARK: AVX512_BF16

/// As bf16_block512 with bf16 inputs: steps of 32 channels, each VDPBF16PS adding two
/// products per float lane. The C tail is read under a mask (zeros past the end). `pf`, if not
/// NULL, is prefetched at 4 lines per 32-channel step: 4 rows · C · 2 bytes, one row block.
RS_INLINE RS_AVX512BF16 void dp_block512(float *out, const uint16_t *in, const uint16_t *w,
                                         const float *bias, int rows, int64_t c, int64_t oc,
                                         const char *pf, const int NB) {
    const uint16_t *w0 = w, *w1 = rows > 1 ? w + c : w, *w2 = rows > 2 ? w + 2 * c : w,
                   *w3 = rows > 3 ? w + 3 * c : w;
    __m512 acc[RS_BF16_ROWS][RS_BF16_COLS512];
    for (int j = 0; j < NB; j++)
        for (int r = 0; r < RS_BF16_ROWS; r++) acc[r][j] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 32 <= c; k += 32) {
        if (pf)
            for (int l = 0; l < 4; l++) _mm_prefetch(pf + 8 * k + 64 * l, _MM_HINT_T1);
        __m512bh a0 = (__m512bh)_mm512_loadu_si512(w0 + k), a1 = (__m512bh)_mm512_loadu_si512(w1 + k);
        __m512bh a2 = (__m512bh)_mm512_loadu_si512(w2 + k), a3 = (__m512bh)_mm512_loadu_si512(w3 + k);
        for (int j = 0; j < NB; j++) {
            __m512bh x = (__m512bh)_mm512_loadu_si512(in + j * c + k);
            acc[0][j] = _mm512_dpbf16_ps(acc[0][j], a0, x);
            acc[1][j] = _mm512_dpbf16_ps(acc[1][j], a1, x);
            acc[2][j] = _mm512_dpbf16_ps(acc[2][j], a2, x);
            acc[3][j] = _mm512_dpbf16_ps(acc[3][j], a3, x);
        }
    }
    if (k < c) {
        __mmask32 m = (__mmask32)((1ull << (c - k)) - 1ull);
        __m512bh a0 = (__m512bh)_mm512_maskz_loadu_epi16(m, w0 + k), a1 = (__m512bh)_mm512_maskz_loadu_epi16(m, w1 + k);
        __m512bh a2 = (__m512bh)_mm512_maskz_loadu_epi16(m, w2 + k), a3 = (__m512bh)_mm512_maskz_loadu_epi16(m, w3 + k);
        for (int j = 0; j < NB; j++) {
            __m512bh x = (__m512bh)_mm512_maskz_loadu_epi16(m, in + j * c + k);
            acc[0][j] = _mm512_dpbf16_ps(acc[0][j], a0, x);
            acc[1][j] = _mm512_dpbf16_ps(acc[1][j], a1, x);
            acc[2][j] = _mm512_dpbf16_ps(acc[2][j], a2, x);
            acc[3][j] = _mm512_dpbf16_ps(acc[3][j], a3, x);
        }
    }
    rs_store4_512(out, acc[0], acc[1], acc[2], acc[3], bias, rows, oc, NB);
}

static RS_AVX512BF16 void dp_rows512(float *out, const void *input, const void *weights, const float *bias,
                                     int64_t n, int64_t c, int64_t oc, int64_t o0, int64_t o1) {
    RS_BF16_ROWS512(dp_block512, uint16_t)
}

// MARK: AMX

// Sapphire Rapids and later multiply 16×32 bf16 tiles: one TDPBF16PS adds a 16×32 by 32×16
// product into a 16×16 float tile, 8,192 multiply-adds, where one VDPBF16PS does 32. Verify and
// batched passes of up to a few dozen rows are then limited by the weights' stream again.
//
// Two paths. With packed tiles (amx_packed_rows: a decoding model's matrices, packed once by
// rs_bf16_pack_tiles; passes of up to 32 rows) the weights are B tiles streamed in order and
// the inputs A tiles read in place. Without (amx_rows: any bf16 matrix, passes of 3+ rows) the
// weights need no repacking: tile A is 16 weight rows × 32 channels, read in place with
// the rows' stride. Tile B is the inputs of 16 token rows over the same 32 channels, in the
// pair-interleaved layout TDPBF16PS takes (B[k][t] = x[t][2k], x[t][2k+1]), packed once per call
// (amx_pack). The float tile C[16 weight rows][16 tokens] is transposed into `out` as it is
// stored. Up to four token blocks (64 rows) share each weight tile in tiles 0–3; more rows pass
// over the weights again, from cache. Weight rows a block or two ahead are prefetched into L2.
#define RS_AMX_TOKENS 64    // token rows per pass over the weights (four accumulator tiles)
#define RS_AMX_PACKED_TOKENS 48 // the same with packed tiles (three: tiles 5–7 hold their inputs)
#define RS_AMX_PACKED_PF 8  // packed tiles, 2+ token blocks: prefetch distance in tiles (4–16 alike)
#define RS_AMX_PF 2         // prefetch distance in blocks of 16 weight rows (0, 1, 2, 4 and
                            // into L1 measured alike on SmolLM2's shapes)

#if RS_X86
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_tile_config;

/// What both AMX paths read beside the weights' rows: the inputs, row-major bf16 (the A tiles
/// of amx_packed_rows, read in place, and the rows dp_rows512 takes for the last OC % 16
/// outputs), and `tiles`: for amx_rows the inputs packed as B tiles [token block][channel
/// block][16 pairs][16 tokens][2], for amx_packed_rows the weights packed once the same way.
typedef struct {
    const uint16_t *rows;
    const uint16_t *tiles;
} amx_input;

/// B tiles from row-major bf16 inputs x[n][c] (c a multiple of 32): tile (tb, kb) holds, as
/// 32-bit pairs, T[kk][t] = x[16 tb + t][32 kb + 2 kk ... + 1], zero for t past the last row.
static RS_AVX512 void amx_pack(uint16_t *tiles, const uint16_t *x, int64_t n, int64_t c) {
    const int32_t *x32 = (const int32_t *)x;
    int32_t *t32 = (int32_t *)tiles;
    int64_t kbs = c / 32, pitch = c / 2;
    __m512i lane = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                      _mm512_set1_epi32((int)pitch));
    for (int64_t tb = 0; tb * 16 < n; tb++) {
        int64_t left = n - tb * 16;
        __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
        const int32_t *base = x32 + tb * 16 * pitch;
        for (int64_t kb = 0; kb < kbs; kb++) {
            int32_t *tile = t32 + (tb * kbs + kb) * 256;
            for (int kk = 0; kk < 16; kk++)
                _mm512_storeu_si512(tile + 16 * kk,
                                   _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, lane, base + kb * 16 + kk, 4));
        }
    }
}

/// Stores accumulator tile `cbuf` (16 weight rows × 16 tokens) for `count` tokens starting at
/// token row `t0`, transposed: out[(t0 + t)·oc + r] = cbuf[r][t] + bias[r].
RS_INLINE RS_AVX512 void amx_store(float *out, const float *cbuf, const float *bias, int64_t t0, int64_t count,
                                   int64_t oc) {
    __m512i column = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                        _mm512_set1_epi32(16));
    __m512 b = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
    for (int64_t t = 0; t < count; t++)
        _mm512_storeu_ps(out + (t0 + t) * oc, _mm512_add_ps(_mm512_i32gather_ps(column, cbuf + t, 4), b));
}

/// The weights' full 16-row blocks as B tiles, packed once where a model is built: block (ob, kb)
/// holds, as 32-bit pairs, T[kk][o] = w[16 ob + o][32 kb + 2 kk ... + 1] (amx_pack's layout).
/// Each block of 16 outputs is then one contiguous run of C/32 tiles, streamed in order.
static RS_AMXBF16 void amx_packed_rows(float *out, const void *input, const void *weights, const float *bias,
                                       int64_t n, int64_t c, int64_t oc, int64_t o0, int64_t o1) {
    const amx_input *x = input;
    int64_t kbs = c / 32, full = o0 + (o1 - o0) / 16 * 16;
    amx_tile_config config = {.palette = 1};
    for (int64_t t0 = 0; t0 < n; t0 += RS_AMX_PACKED_TOKENS) {
        int64_t left = n - t0;
        int nb = left >= RS_AMX_PACKED_TOKENS ? RS_AMX_PACKED_TOKENS / 16 : (int)((left + 15) / 16);
        // Tiles 0–2 accumulate token blocks 0–2 (the last one maybe short), 4 holds the weights,
        // 5–7 the token blocks' inputs.
        int last = (int)(left - 16 * (nb - 1) < 16 ? left - 16 * (nb - 1) : 16);
        for (int i = 0; i < 8; i++) config.rows[i] = 16, config.colsb[i] = 64;
        config.rows[nb - 1] = (uint8_t)last;
        config.rows[4 + nb] = (uint8_t)last;
        _tile_loadconfig(&config);
        const uint16_t *a = x->rows + t0 * c;
        for (int64_t o = o0; o < full; o += 16) {
            const uint16_t *b = x->tiles + (o / 16) * kbs * 512;
            _tile_zero(0);
            if (nb > 1) _tile_zero(1);
            if (nb > 2) _tile_zero(2);
            for (int64_t kb = 0; kb < kbs; kb++) {
                // With two or three token blocks the tile products no longer hide the weights'
                // misses; the tiles RS_AMX_PACKED_PF ahead in the packed stream are fetched into
                // L2 meanwhile (one thread, 32 rows: 0.71–0.97× the time; with one block it
                // cost up to 5% with two threads, so it is left off there).
                if (nb > 1)
                    for (int l = 0; l < 16; l++)
                        _mm_prefetch((const char *)(b + kb * 512) + RS_AMX_PACKED_PF * 1024 + l * 64, _MM_HINT_T1);
                _tile_loadd(4, b + kb * 512, 64);
                _tile_loadd(5, a + kb * 32, c * 2);
                _tile_dpbf16ps(0, 5, 4);
                if (nb > 1) { _tile_loadd(6, a + 16 * c + kb * 32, c * 2); _tile_dpbf16ps(1, 6, 4); }
                if (nb > 2) { _tile_loadd(7, a + 32 * c + kb * 32, c * 2); _tile_dpbf16ps(2, 7, 4); }
            }
            float *dst = out + t0 * oc + o;
            _tile_stored(0, dst, oc * 4);
            if (nb > 1) _tile_stored(1, dst + 16 * oc, oc * 4);
            if (nb > 2) _tile_stored(2, dst + 32 * oc, oc * 4);
        }
    }
    _tile_release();
    if (bias)
        for (int64_t t = 0; t < n; t++)
            for (int64_t o = o0; o < full; o += 16)
                _mm512_storeu_ps(out + t * oc + o, _mm512_add_ps(_mm512_loadu_ps(out + t * oc + o), _mm512_loadu_ps(bias + o)));
    if (full < o1) dp_rows512(out, x->rows, weights, bias, n, c, oc, full, o1);
}

static RS_AMXBF16 void amx_rows(float *out, const void *input, const void *weights, const float *bias,
                                int64_t n, int64_t c, int64_t oc, int64_t o0, int64_t o1) {
    const amx_input *x = input;
    const uint16_t *w = weights;
    int64_t kbs = c / 32, blocks = (n + 15) / 16, full = o0 + (o1 - o0) / 16 * 16;
    // Fewer than 16 token rows: the accumulator and input tiles are only that many columns
    // (4 bytes each) wide, so TDPBF16PS does no work on padding.
    int width = n < 16 ? (int)n * 4 : 64;
    amx_tile_config config = {.palette = 1};
    for (int i = 0; i < 8; i++) config.rows[i] = 16, config.colsb[i] = i == 4 ? 64 : width;
    _tile_loadconfig(&config);
    float cbuf[4][256] __attribute__((aligned(64)));
    const char *end = (const char *)(w + o1 * c);
    for (int64_t b0 = 0; b0 < blocks; b0 += RS_AMX_TOKENS / 16) {
        int nb = blocks - b0 < RS_AMX_TOKENS / 16 ? (int)(blocks - b0) : RS_AMX_TOKENS / 16;
        const uint16_t *tk0 = x->tiles + b0 * kbs * 512;
        for (int64_t o = o0; o < full; o += 16) {
            const uint16_t *wr = w + o * c;
            // The block RS_AMX_PF ahead: one line of each of its 16 rows per channel block,
            // the rate this block reads its own. Later passes find the weights in cache.
            const char *pf = b0 == 0 ? (const char *)(wr + RS_AMX_PF * 16 * c) : end;
            _tile_zero(0);
            if (nb > 1) _tile_zero(1);
            if (nb > 2) _tile_zero(2);
            if (nb > 3) _tile_zero(3);
            for (int64_t kb = 0; kb < kbs; kb++) {
                if (pf < end)
                    for (int r = 0; r < 16; r++) _mm_prefetch(pf + r * c * 2 + kb * 64, _MM_HINT_T1);
                const uint16_t *tk = tk0 + kb * 512;
                _tile_loadd(4, wr + kb * 32, c * 2);
                _tile_loadd(5, tk, 64);
                _tile_dpbf16ps(0, 4, 5);
                if (nb > 1) { _tile_loadd(6, tk + kbs * 512, 64); _tile_dpbf16ps(1, 4, 6); }
                if (nb > 2) { _tile_loadd(7, tk + 2 * kbs * 512, 64); _tile_dpbf16ps(2, 4, 7); }
                if (nb > 3) { _tile_loadd(5, tk + 3 * kbs * 512, 64); _tile_dpbf16ps(3, 4, 5); }
            }
            _tile_stored(0, cbuf[0], 64);
            if (nb > 1) _tile_stored(1, cbuf[1], 64);
            if (nb > 2) _tile_stored(2, cbuf[2], 64);
            if (nb > 3) _tile_stored(3, cbuf[3], 64);
            const float *br = bias ? bias + o : NULL;
            for (int i = 0; i < nb; i++) {
                int64_t t0 = (b0 + i) * 16, count = n - t0 < 16 ? n - t0 : 16;
                amx_store(out + o, cbuf[i], br, t0, count, oc);
            }
        }
    }
    _tile_release();
    if (full < o1) dp_rows512(out, x->rows, w, bias, n, c, oc, full, o1);
}
#endif

// MARK: AVX2

RS_INLINE RS_AVX2 __m256 load_bf16_256(const uint16_t *p) {
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/// As bf16_block512 with 8-lane registers, C tail in scalar, at most 2 input rows; `pf`, if
/// not NULL, is prefetched at 2 lines per 16 channels (one row block).
RS_INLINE RS_AVX2 void bf16_block256(float *out, const float *in, const uint16_t *w, const float *bias,
                                     int rows, int64_t c, int64_t oc, const char *pf, const int NB) {
    const uint16_t *wr[RS_BF16_ROWS] = {w, rows > 1 ? w + c : w, rows > 2 ? w + 2 * c : w,
                                        rows > 3 ? w + 3 * c : w};
    __m256 acc[RS_BF16_ROWS][RS_BF16_COLS256];
    for (int j = 0; j < NB; j++)
        for (int r = 0; r < RS_BF16_ROWS; r++) acc[r][j] = _mm256_setzero_ps();
    // 4 rows · 2 bytes · 16 channels = 2 lines to prefetch per 16 channels; with nothing ahead,
    // the block itself (a no-op that keeps the loop free of branches).
    const char *ahead = pf ? pf : (const char *)w;
    int64_t k = 0;
    for (; k + 8 <= c; k += 8) {
        if ((k & 15) == 0) {
            _mm_prefetch(ahead + 8 * k, _MM_HINT_T1);
            _mm_prefetch(ahead + 8 * k + 64, _MM_HINT_T1);
        }
        __m256 a0 = load_bf16_256(wr[0] + k), a1 = load_bf16_256(wr[1] + k);
        __m256 a2 = load_bf16_256(wr[2] + k), a3 = load_bf16_256(wr[3] + k);
        for (int j = 0; j < NB; j++) {
            __m256 x = _mm256_loadu_ps(in + j * c + k);
            acc[0][j] = _mm256_fmadd_ps(a0, x, acc[0][j]);
            acc[1][j] = _mm256_fmadd_ps(a1, x, acc[1][j]);
            acc[2][j] = _mm256_fmadd_ps(a2, x, acc[2][j]);
            acc[3][j] = _mm256_fmadd_ps(a3, x, acc[3][j]);
        }
    }
    float sums[RS_BF16_COLS256][RS_BF16_ROWS];
    for (int j = 0; j < NB; j++)
        _mm_storeu_ps(sums[j], rs_reduce4_256(acc[0][j], acc[1][j], acc[2][j], acc[3][j]));
    for (int j = 0; j < NB; j++)
        for (int r = 0; r < rows; r++) {
            float s = sums[j][r];
            for (int64_t kk = k; kk < c; kk++) s += bf16_to_float(wr[r][kk]) * in[j * c + kk];
            out[j * oc + r] = s + (bias ? bias[r] : 0.0f);
        }
}

/// Several input rows (N ≥ 2): a block of 2 weight rows × up to 6 input rows in 12 ymm
/// accumulators, so each widened weight vector feeds up to 6 FMAs (the 4 × 2 block above feeds
/// 2, and widening then costs as much issue width as the math). C is walked in chunks of
/// RS_BF16_KCHUNK channels, every column block per chunk with its sums parked between chunks,
/// so a chunk's inputs stay in L1 at any C. The first column block prefetches the row block
/// RS_BF16_PF1 rows ahead into L2. Missing weight rows read row 0 again; their sums are not
/// stored.
RS_INLINE RS_AVX2 void bf16_rows2x256(float *out, const float *in, const uint16_t *w, const float *bias,
                                      int rows, int64_t c, int64_t oc, int64_t k0, int64_t k1,
                                      __m256 *park, int first, int last, const char *pf, const int NB) {
    const uint16_t *w0 = w, *w1 = rows > 1 ? w + c : w;
    __m256 acc[2][RS_BF16_COLS256X2];
    for (int j = 0; j < NB; j++)
        for (int r = 0; r < 2; r++) acc[r][j] = first ? _mm256_setzero_ps() : park[2 * j + r];
    // Steps of 32 channels, one prefetched line per row each (with nothing ahead, the block
    // itself: a no-op that keeps the loop free of branches).
    const char *ahead = pf ? pf : (const char *)w;
    int64_t k = k0;
    for (; k + 32 <= k1; k += 32) {
        _mm_prefetch(ahead + 2 * k, _MM_HINT_T1);
        _mm_prefetch(ahead + 2 * (c + k), _MM_HINT_T1);
        for (int u = 0; u < 32; u += 8) {
            __m256 a0 = load_bf16_256(w0 + k + u), a1 = load_bf16_256(w1 + k + u);
            for (int j = 0; j < NB; j++) {
                __m256 x = _mm256_loadu_ps(in + j * c + k + u);
                acc[0][j] = _mm256_fmadd_ps(a0, x, acc[0][j]);
                acc[1][j] = _mm256_fmadd_ps(a1, x, acc[1][j]);
            }
        }
    }
    for (; k + 8 <= k1; k += 8) {
        __m256 a0 = load_bf16_256(w0 + k), a1 = load_bf16_256(w1 + k);
        for (int j = 0; j < NB; j++) {
            __m256 x = _mm256_loadu_ps(in + j * c + k);
            acc[0][j] = _mm256_fmadd_ps(a0, x, acc[0][j]);
            acc[1][j] = _mm256_fmadd_ps(a1, x, acc[1][j]);
        }
    }
    if (!last) {
        for (int j = 0; j < NB; j++)
            for (int r = 0; r < 2; r++) park[2 * j + r] = acc[r][j];
        return;
    }
    const __m256 zero = _mm256_setzero_ps();
    for (int j = 0; j < NB; j++) {
        float sums[4];
        _mm_storeu_ps(sums, rs_reduce4_256(acc[0][j], acc[1][j], zero, zero));
        for (int r = 0; r < rows; r++) {
            const uint16_t *wr = r == 0 ? w0 : w1;
            float s = sums[r];
            for (int64_t kk = k; kk < c; kk++) s += bf16_to_float(wr[kk]) * in[j * c + kk];  // C tail
            out[j * oc + r] = s + (bias ? bias[r] : 0.0f);
        }
    }
}

static RS_AVX2 void bf16_rows256(float *out, const float *in, const uint16_t *w, const float *bias,
                                 int64_t n, int64_t c, int64_t oc, int64_t o0, int64_t o1) {
    if (n == 1) {  // one input row: limited by memory; 4 weight streams, the next blocks prefetched
        for (int64_t o = o0; o < o1; o += RS_BF16_ROWS) {
            int rows = o1 - o < RS_BF16_ROWS ? (int)(o1 - o) : RS_BF16_ROWS;
            const uint16_t *wr = w + o * c;
            const char *pf = o + RS_BF16_ROWS * (1 + RS_BF16_PF) <= o1
                ? (const char *)(wr + RS_BF16_PF * RS_BF16_ROWS * c) : NULL;
            bf16_block256(out + o, in, wr, bias ? bias + o : NULL, rows, c, oc, pf, 1);
        }
        return;
    }
    __m256 park[2 * RS_BF16_SUPER];
    for (int64_t nb0 = 0; nb0 < n; nb0 += RS_BF16_SUPER) {
        int64_t nn = n - nb0 < RS_BF16_SUPER ? n - nb0 : RS_BF16_SUPER;
        int64_t blocks = (nn + RS_BF16_COLS256X2 - 1) / RS_BF16_COLS256X2;
        for (int64_t o = o0; o < o1; o += 2) {
            int rows = o1 - o < 2 ? (int)(o1 - o) : 2;
            const uint16_t *wr = w + o * c;
            const float *br = bias ? bias + o : NULL;
            const char *ahead = o + RS_BF16_PF1 + 2 <= o1 && nb0 == 0 ? (const char *)(wr + RS_BF16_PF1 * c) : NULL;
            for (int64_t k0 = 0, k1; k0 < c; k0 = k1) {
                // Chunks of RS_BF16_KCHUNK (multiples of 32), the last up to 1.5× that.
                k1 = c - k0 <= RS_BF16_KCHUNK + RS_BF16_KCHUNK / 2 ? c : k0 + RS_BF16_KCHUNK;
                int first = k0 == 0, last = k1 == c;
                int64_t j0 = 0;
                for (int64_t b = 0; b < blocks; b++) {
                    int64_t j1 = nn * (b + 1) / blocks;  // even column blocks
                    float *ob = out + (nb0 + j0) * oc + o;
                    const float *ib = in + (nb0 + j0) * c;
                    const char *pf = b == 0 ? ahead : NULL;
#define RS_BLOCK(NB) bf16_rows2x256(ob, ib, wr, br, rows, c, oc, k0, k1, park + 2 * j0, first, last, pf, NB)
                    switch (j1 - j0) {
                    case 1: RS_BLOCK(1); break;
                    case 2: RS_BLOCK(2); break;
                    case 3: RS_BLOCK(3); break;
                    case 4: RS_BLOCK(4); break;
                    case 5: RS_BLOCK(5); break;
                    default: RS_BLOCK(6); break;
                    }
#undef RS_BLOCK
                    j0 = j1;
                }
            }
        }
    }
}
#endif

// MARK: Scalar

static void bf16_rows_scalar(float *out, const float *in, const uint16_t *w, const float *bias,
                             int64_t n, int64_t c, int64_t oc, int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; o++) {
        const uint16_t *wr = w + o * c;
        for (int64_t j = 0; j < n; j++) {
            const float *x = in + j * c;
            float p[8] = {0};
            int64_t k = 0;
            for (; k + 8 <= c; k += 8)
                for (int l = 0; l < 8; l++) p[l] += bf16_to_float(wr[k + l]) * x[k + l];
            float s = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
            for (; k < c; k++) s += bf16_to_float(wr[k]) * x[k];
            out[j * oc + o] = s + (bias ? bias[o] : 0.0f);
        }
    }
}

/// Float inputs (already rounded to bf16 values) against bf16 weights, below AVX512_BF16.
static void bf16_rows(float *out, const void *input, const void *weights, const float *bias,
                      int64_t n, int64_t c, int64_t oc, int64_t o0, int64_t o1) {
    const float *in = input;
    const uint16_t *w = weights;
#if RS_X86
    if (RS_ISA_NOW >= RS_ISA_AVX512) { bf16_rows512(out, in, w, bias, n, c, oc, o0, o1); return; }
    if (RS_ISA_NOW == RS_ISA_AVX2) { bf16_rows256(out, in, w, bias, n, c, oc, o0, o1); return; }
#endif
    bf16_rows_scalar(out, in, w, bias, n, c, oc, o0, o1);
}

/// This thread's buffer for a pass's rounded inputs, grown to the largest pass it has run
/// (a few hundred rows × C at most) and kept for the next.
static void *scratch(int slot, size_t bytes) {
    static _Thread_local void *buffer[2];
    static _Thread_local size_t capacity[2];
    if (bytes > capacity[slot]) {
        free(buffer[slot]);
        capacity[slot] = (bytes + 4095) / 4096 * 4096;
        buffer[slot] = aligned_alloc(64, capacity[slot]);
        if (!buffer[slot]) abort();
    }
    return buffer[slot];
}

static void *input_scratch(size_t bytes) { return scratch(0, bytes); }

void rs_matmul_skinny_bf16(float *out, const float *in, const uint16_t *w, const float *bias,
                           int64_t n, int64_t c, int64_t oc, int threaded) {
    if (n <= 0 || oc <= 0) return;
    size_t count = (size_t)(n * c);
#if RS_X86
    // A few rows stream the weights from memory, and there float FMAs on widened weights keep
    // more loads in flight: on SmolLM2's shapes with the weights streamed from memory, one
    // core, VDPBF16PS ran 0.72–0.89× as fast at N ≤ 2, even at 3, and 1.2–2× from 4; with 2
    // threads a 4-row verify still ran ~5% slower (`rollspec bench decode`).
    // C not a multiple of 32 (a learner's weight gradient sums over its token count): from
    // RS_BF16_AMX_PAD_MIN channels, the inputs and a copy of the weights are padded with zeros
    // to the next multiple, which adds nothing to any sum.
    if (RS_ISA_NOW >= RS_ISA_AMX_BF16 && n >= RS_BF16_AMX_MIN_ROWS && oc >= 16 &&
        (c % 32 == 0 || c >= RS_BF16_AMX_PAD_MIN)) {
        int64_t cp = (c + 31) / 32 * 32, padded = n * cp;
        int64_t tiles = (n + 15) / 16 * 16 * cp;
        uint16_t *x = input_scratch(((size_t)padded + 32 + (size_t)tiles) * sizeof(uint16_t));
        if (cp == c) {
            rs_float_to_bf16(x, in, (int64_t)count);
        } else {
            for (int64_t t = 0; t < n; t++) {
                rs_float_to_bf16(x + t * cp, in + t * c, c);
                memset(x + t * cp + c, 0, (size_t)(cp - c) * sizeof(uint16_t));
            }
            uint16_t *wp = scratch(1, (size_t)(oc * cp) * sizeof(uint16_t));
            for (int64_t o = 0; o < oc; o++) {
                memcpy(wp + o * cp, w + o * c, (size_t)c * sizeof(uint16_t));
                memset(wp + o * cp + c, 0, (size_t)(cp - c) * sizeof(uint16_t));
            }
            w = wp;
        }
        uint16_t *packed = x + ((size_t)padded + 31) / 32 * 32;
        amx_pack(packed, x, n, cp);
        amx_input input = {x, packed};
        rs_matmul_split(amx_rows, out, &input, w, bias, n, cp, oc, threaded);
        return;
    }
    if (RS_ISA_NOW >= RS_ISA_AVX512_BF16 && n >= RS_BF16_DP_MIN_ROWS) {
        uint16_t *x = input_scratch(count * sizeof(uint16_t));
        rs_float_to_bf16(x, in, (int64_t)count);
        rs_matmul_split(dp_rows512, out, x, w, bias, n, c, oc, threaded);
        return;
    }
#endif
    float *x = input_scratch(count * sizeof(float));
    rs_round_to_bf16(x, in, (int64_t)count);
    rs_matmul_split(bf16_rows, out, x, w, bias, n, c, oc, threaded);
}

int64_t rs_bf16_tiles_count(int64_t c, int64_t oc) {
#if RS_X86
    if (rs_isa_detected() >= RS_ISA_AMX_BF16 && c % 32 == 0 && oc >= 16) return oc / 16 * 16 * c;
#endif
    (void)c, (void)oc;
    return 0;
}

void rs_bf16_pack_tiles(uint16_t *tiles, const uint16_t *w, int64_t c, int64_t oc) {
#if RS_X86
    if (rs_bf16_tiles_count(c, oc) > 0) amx_pack(tiles, w, oc / 16 * 16, c);
#else
    (void)tiles, (void)w, (void)c, (void)oc;
#endif
}

void rs_matmul_skinny_bf16_tiles(float *out, const float *in, const uint16_t *w, const uint16_t *tiles,
                                 const float *bias, int64_t n, int64_t c, int64_t oc, int threaded) {
#if RS_X86
    if (tiles && RS_ISA_NOW >= RS_ISA_AMX_BF16 && n > 0 && n <= RS_BF16_TILES_MAX_ROWS && oc > 0) {
        size_t count = (size_t)(n * c);
        uint16_t *x = input_scratch(count * sizeof(uint16_t));
        rs_float_to_bf16(x, in, (int64_t)count);
        amx_input input = {x, tiles};
        rs_matmul_split(amx_packed_rows, out, &input, w, bias, n, c, oc, threaded);
        return;
    }
#else
    (void)tiles;
#endif
    rs_matmul_skinny_bf16(out, in, w, bias, n, c, oc, threaded);
}
