// Skinny matmul: out[N, OC] = in[N, C] · w[OC, C]ᵀ (+ bias) for a few token rows N.
//
// Decoding one token is a matrix-vector product, limited by how fast the weights stream from
// memory. Verifying k draft tokens multiplies the same weights by k+1 rows; if every weight
// row is read once for all rows, the extra rows cost only arithmetic on data already in
// registers, and verification costs little more than one decode step.
//
// So the loop nest is: a block of 4 weight rows (contiguous, 4·C floats) × a block of up to
// 6 input rows, accumulating 4×6 dot products in 24 zmm registers (16 lanes each) along C;
// one pass over C loads 4 weight vectors and 6 input vectors per 24 FMAs. The 4 row sums of
// one input row are then folded with one shuffle tree (rs_reduce4) into 4 contiguous outputs.
// Column blocks are sized evenly (N = 8 → 4 + 4, not 6 + 2) to keep loads per FMA even.
//
// Two things make the extra columns nearly free (measured, Experiments/kernels/README.md):
// - Software prefetch into L2 of the weight rows two row blocks ahead, spread evenly over
//   all column blocks. Without it the first column block stalls on DRAM while the others
//   compute with the memory bus idle (N = 8 cost 1.6× N = 1; with it ~1.1×). Prefetching
//   into L1 (T0) instead was no better than none: it evicts the inputs.
// - C is walked in chunks of 256 channels, all column blocks per chunk, with the partial
//   sums parked in a small stack array between chunks, so the weight and input slices of a
//   chunk stay in L1 when C is large (down_proj, C = 1536: N = 8 from 1.9× to ~1.4×).
// Threads split OC into chunks of rows; each chunk streams its own contiguous slice of W.
#include "internal.h"

#define RS_ROWS 4          // weight rows per register block
#define RS_COLS512 6       // input rows per register block, AVX-512 (4·6 + 4 + 1 ≤ 32 zmm)
#define RS_COLS256 2       // input rows per register block, AVX2    (4·2 + 4 + 1 ≤ 16 ymm)
#define RS_COLS_SUPER 48   // input rows kept hot in L2 while the weights stream past them
#define RS_PF_BLOCKS 2     // prefetch distance in row blocks (1, 2 and 4 measured alike)
#define RS_PF_HINT _MM_HINT_T1
#define RS_KCHUNK 256      // channels per C chunk (128 and 256 measured alike; 512 worse)

#if RS_X86
// MARK: AVX-512

/// One register block: `rows` (1...4) weight rows starting at `w` × `NB` input rows, over
/// channels `k0 ..< k1`. Missing weight rows read row 0 again; their sums are not stored.
/// When C is split into chunks, the 4·NB partial sums wait in `park` between chunks
/// (`first`: start from zero; `last`: reduce, add the bias and write `out`).
RS_INLINE RS_AVX512 void block512(float *out, const float *in, const float *w, const float *bias,
                                  int rows, int64_t c, int64_t oc, int64_t k0, int64_t k1,
                                  __m512 *park, int first, int last,
                                  const float *pf, int pfn, const int NB) {
    const float *w0 = w, *w1 = rows > 1 ? w + c : w, *w2 = rows > 2 ? w + 2 * c : w,
                *w3 = rows > 3 ? w + 3 * c : w;
    __m512 acc[RS_ROWS][RS_COLS512];
    for (int j = 0; j < NB; j++)
        for (int r = 0; r < RS_ROWS; r++)
            acc[r][j] = first ? _mm512_setzero_ps() : park[j * RS_ROWS + r];
    int64_t k = k0;
    for (; k + 16 <= k1; k += 16) {
        for (int p = 0; p < pfn; p++) _mm_prefetch((const char *)(pf + (k * pfn + 16 * p)), RS_PF_HINT);
        __m512 a0 = _mm512_loadu_ps(w0 + k), a1 = _mm512_loadu_ps(w1 + k);
        __m512 a2 = _mm512_loadu_ps(w2 + k), a3 = _mm512_loadu_ps(w3 + k);
        for (int j = 0; j < NB; j++) {
            __m512 x = _mm512_loadu_ps(in + j * c + k);
            acc[0][j] = _mm512_fmadd_ps(a0, x, acc[0][j]);
            acc[1][j] = _mm512_fmadd_ps(a1, x, acc[1][j]);
            acc[2][j] = _mm512_fmadd_ps(a2, x, acc[2][j]);
            acc[3][j] = _mm512_fmadd_ps(a3, x, acc[3][j]);
        }
    }
    if (k < k1) {  // C not a multiple of 16: masked loads read zeros past the end
        __mmask16 m = rs_mask16(k1 - k);
        __m512 a0 = _mm512_maskz_loadu_ps(m, w0 + k), a1 = _mm512_maskz_loadu_ps(m, w1 + k);
        __m512 a2 = _mm512_maskz_loadu_ps(m, w2 + k), a3 = _mm512_maskz_loadu_ps(m, w3 + k);
        for (int j = 0; j < NB; j++) {
            __m512 x = _mm512_maskz_loadu_ps(m, in + j * c + k);
            acc[0][j] = _mm512_fmadd_ps(a0, x, acc[0][j]);
            acc[1][j] = _mm512_fmadd_ps(a1, x, acc[1][j]);
            acc[2][j] = _mm512_fmadd_ps(a2, x, acc[2][j]);
            acc[3][j] = _mm512_fmadd_ps(a3, x, acc[3][j]);
        }
    }
    if (!last) {
        for (int j = 0; j < NB; j++)
            for (int r = 0; r < RS_ROWS; r++) park[j * RS_ROWS + r] = acc[r][j];
        return;
    }
    rs_store4_512(out, acc[0], acc[1], acc[2], acc[3], bias, rows, oc, NB);
}

static RS_AVX512 void rows512(float *out, const float *in, const float *w, const float *bias,
                              int64_t n, int64_t c, int64_t oc, int64_t o0, int64_t o1) {
    // Partial sums of every column block of the current row block, parked between C chunks.
    __m512 park[(RS_COLS_SUPER / RS_COLS512) * RS_COLS512 * RS_ROWS];
    for (int64_t nb0 = 0; nb0 < n; nb0 += RS_COLS_SUPER) {
        int64_t nn = n - nb0 < RS_COLS_SUPER ? n - nb0 : RS_COLS_SUPER;
        // Even column blocks of at most RS_COLS512 rows.
        int64_t blocks = (nn + RS_COLS512 - 1) / RS_COLS512;
        // Prefetch lines per 16-float step so that the column blocks together cover the
        // 4·C floats (C/4 lines) of a row block: each step of one block covers pfn lines.
        int pfn = (int)((RS_ROWS + blocks - 1) / blocks);
        if (nb0 > 0) pfn = 0;  // later column super-blocks find the weights in cache anyway
        for (int64_t o = o0; o < o1; o += RS_ROWS) {
            int rows = o1 - o < RS_ROWS ? (int)(o1 - o) : RS_ROWS;
            const float *wr = w + o * c;
            const float *br = bias ? bias + o : NULL;
            // C in chunks of RS_KCHUNK (the last one up to 1.5×), so the weight and input
            // slices of one chunk stay in L1 while every column block uses them.
            for (int64_t k0 = 0, k1; k0 < c; k0 = k1) {
                k1 = c - k0 <= RS_KCHUNK + RS_KCHUNK / 2 ? c : k0 + RS_KCHUNK;
                int first = k0 == 0, last = k1 == c;
                int64_t j0 = 0;
                for (int64_t b = 0; b < blocks; b++) {
                    int64_t j1 = nn * (b + 1) / blocks;
                    float *ob = out + (nb0 + j0) * oc + o;
                    const float *ib = in + (nb0 + j0) * c;
                    __m512 *pk = park + b * RS_COLS512 * RS_ROWS;
                    // Weight rows RS_PF_BLOCKS blocks ahead, spread over this block's column
                    // blocks, so memory keeps streaming while the columns are computed.
                    const float *pf = wr + RS_PF_BLOCKS * RS_ROWS * c + b * pfn * c;
#define RS_BLOCK(NB) block512(ob, ib, wr, br, rows, c, oc, k0, k1, pk, first, last, pf, pfn, NB)
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

// MARK: AVX2

/// As block512 with 8-lane registers, over all of C (tail in scalar), at most 2 input rows.
/// `pf`, if not NULL, is prefetched at 2 lines per 8-float step: 4·C floats, one row block.
RS_INLINE RS_AVX2 void block256(float *out, const float *in, const float *w, const float *bias,
                                int rows, int64_t c, int64_t oc, const float *pf, const int NB) {
    const float *w0 = w, *w1 = rows > 1 ? w + c : w, *w2 = rows > 2 ? w + 2 * c : w,
                *w3 = rows > 3 ? w + 3 * c : w;
    __m256 acc[RS_ROWS][RS_COLS256];
    for (int j = 0; j < NB; j++)
        for (int r = 0; r < RS_ROWS; r++) acc[r][j] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= c; k += 8) {
        if (pf) {
            _mm_prefetch((const char *)(pf + 4 * k), RS_PF_HINT);
            _mm_prefetch((const char *)(pf + 4 * k + 16), RS_PF_HINT);
        }
        __m256 a0 = _mm256_loadu_ps(w0 + k), a1 = _mm256_loadu_ps(w1 + k);
        __m256 a2 = _mm256_loadu_ps(w2 + k), a3 = _mm256_loadu_ps(w3 + k);
        for (int j = 0; j < NB; j++) {
            __m256 x = _mm256_loadu_ps(in + j * c + k);
            acc[0][j] = _mm256_fmadd_ps(a0, x, acc[0][j]);
            acc[1][j] = _mm256_fmadd_ps(a1, x, acc[1][j]);
            acc[2][j] = _mm256_fmadd_ps(a2, x, acc[2][j]);
            acc[3][j] = _mm256_fmadd_ps(a3, x, acc[3][j]);
        }
    }
    float sums[RS_COLS256][RS_ROWS];
    for (int j = 0; j < NB; j++)
        _mm_storeu_ps(sums[j], rs_reduce4_256(acc[0][j], acc[1][j], acc[2][j], acc[3][j]));
    const float *wr[RS_ROWS] = {w0, w1, w2, w3};
    for (int j = 0; j < NB; j++)
        for (int r = 0; r < rows; r++) {
            float s = sums[j][r];
            for (int64_t kk = k; kk < c; kk++) s += wr[r][kk] * in[j * c + kk];  // C tail
            out[j * oc + r] = s + (bias ? bias[r] : 0.0f);
        }
}

static RS_AVX2 void rows256(float *out, const float *in, const float *w, const float *bias,
                            int64_t n, int64_t c, int64_t oc, int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; o += RS_ROWS) {
        int rows = o1 - o < RS_ROWS ? (int)(o1 - o) : RS_ROWS;
        const float *wr = w + o * c;
        const float *br = bias ? bias + o : NULL;
        // The first column block prefetches the row block RS_PF_BLOCKS ahead into L2.
        const float *pf = wr + RS_PF_BLOCKS * RS_ROWS * c;
        int64_t j = 0;
        for (; j + 2 <= n; j += 2, pf = NULL)
            block256(out + j * oc + o, in + j * c, wr, br, rows, c, oc, pf, 2);
        if (j < n) block256(out + j * oc + o, in + j * c, wr, br, rows, c, oc, pf, 1);
    }
}
#endif

// MARK: Scalar

/// Portable fallback, same loop order (each block of weight rows once for all columns),
/// with 8 partial sums per dot product so the compiler can vectorise for the baseline ISA.
static void rows_scalar(float *out, const float *in, const float *w, const float *bias,
                        int64_t n, int64_t c, int64_t oc, int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; o++) {
        const float *wr = w + o * c;
        for (int64_t j = 0; j < n; j++) {
            const float *x = in + j * c;
            float p[8] = {0};
            int64_t k = 0;
            for (; k + 8 <= c; k += 8)
                for (int l = 0; l < 8; l++) p[l] += wr[k + l] * x[k + l];
            float s = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
            for (; k < c; k++) s += wr[k] * x[k];
            out[j * oc + o] = s + (bias ? bias[o] : 0.0f);
        }
    }
}

static void matmul_rows(float *out, const void *input, const void *weights, const float *bias,
                        int64_t n, int64_t c, int64_t oc, int64_t o0, int64_t o1) {
    const float *in = input, *w = weights;
#if RS_X86
    if (RS_ISA_NOW >= RS_ISA_AVX512) { rows512(out, in, w, bias, n, c, oc, o0, o1); return; }
    if (RS_ISA_NOW == RS_ISA_AVX2) { rows256(out, in, w, bias, n, c, oc, o0, o1); return; }
#endif
    rows_scalar(out, in, w, bias, n, c, oc, o0, o1);
}

// MARK: Threading

typedef struct {
    rs_matmul_rows_fn rows;
    float *out;
    const void *in;
    const void *w;
    const float *bias;
    int64_t n, c, oc, chunk;
} matmul_job;

static void matmul_task(void *ctx, int task) {
    const matmul_job *j = ctx;
    int64_t o0 = task * j->chunk;
    int64_t o1 = o0 + j->chunk < j->oc ? o0 + j->chunk : j->oc;
    j->rows(j->out, j->in, j->w, j->bias, j->n, j->c, j->oc, o0, o1);
}

void rs_matmul_split(rs_matmul_rows_fn rows, float *out, const void *in, const void *w, const float *bias,
                     int64_t n, int64_t c, int64_t oc, int threaded) {
    if (n <= 0 || oc <= 0) return;
    int threads = threaded ? rs_threads_get() : 1;
    // Below ~64k multiply-adds a second thread costs more than it saves.
    if (threads <= 1 || n * c * oc < (1 << 16)) {
        rows(out, in, w, bias, n, c, oc, 0, oc);
        return;
    }
    // A few chunks per thread so a thread slowed by a busy core does not hold up the call;
    // chunks are multiples of 16 rows so no two threads write one output cache line.
    int64_t chunks = 4 * (int64_t)threads;
    int64_t chunk = (oc + chunks - 1) / chunks;
    chunk = (chunk + 15) / 16 * 16;
    if (chunk < 16) chunk = 16;
    matmul_job job = {rows, out, in, w, bias, n, c, oc, chunk};
    rs_parallel_for(matmul_task, &job, (int)((oc + chunk - 1) / chunk));
}

void rs_matmul_skinny(float *out, const float *in, const float *w, const float *bias,
                      int64_t n, int64_t c, int64_t oc, int threaded) {
    rs_matmul_split(matmul_rows, out, in, w, bias, n, c, oc, threaded);
}
