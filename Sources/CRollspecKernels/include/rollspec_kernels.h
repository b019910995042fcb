// Hot loops of rollspec's kernels, in C so that they are optimised in every build and can
// pick AVX-512 / AVX2 / scalar code at run time. Only RollspecKernels imports this.
//
// Legend: N token rows, C input channels, OC output channels, H query heads, KV key/value
// heads, D head dim, L cached positions. All matrices are row-major float32.
#ifndef ROLLSPEC_KERNELS_H
#define ROLLSPEC_KERNELS_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Version of the kernel ABI (bumped when signatures change).
int rs_kernels_version(void);

// MARK: - CPU dispatch

/// Instruction-set levels the kernels can run at.
typedef enum {
    RS_ISA_SCALAR = 0,
    RS_ISA_AVX2 = 1,   // AVX2 + FMA (+ F16C for half conversion)
    RS_ISA_AVX512 = 2, // AVX-512 F/VL/BW/DQ + FMA
    RS_ISA_AVX512_BF16 = 3, // AVX-512 as above + AVX512_BF16 (VDPBF16PS: bf16 pair products, float sums)
    RS_ISA_AMX_BF16 = 4,    // AVX512_BF16 as above + AMX tiles with TDPBF16PS, granted by the OS
} rs_isa;

/// The best level this CPU supports (decided once, from CPUID).
rs_isa rs_isa_detected(void);
/// The level kernels called on this thread use.
rs_isa rs_isa_current(void);
/// Forces a level for kernels called on this thread (clamped to what the CPU supports; the
/// pool's threads take it for the calls this thread makes); returns the level now in use.
/// Other threads are not affected. For tests and benchmarks; the default is `rs_isa_detected()`.
rs_isa rs_isa_set(rs_isa level);

// MARK: - CPU identification

/// Vector extensions the CPU has and the OS saves registers for (`rs_cpu_info.features`).
enum {
    RS_CPU_SSE41 = 1 << 0,
    RS_CPU_AVX = 1 << 1,
    RS_CPU_AVX2 = 1 << 2,
    RS_CPU_FMA = 1 << 3,
    RS_CPU_F16C = 1 << 4,
    RS_CPU_AVX512F = 1 << 5,
    RS_CPU_AVX512DQ = 1 << 6,
    RS_CPU_AVX512CD = 1 << 7,
    RS_CPU_AVX512BW = 1 << 8,
    RS_CPU_AVX512VL = 1 << 9,
    RS_CPU_AVX512VNNI = 1 << 10,
    RS_CPU_AVX512BF16 = 1 << 11,
    RS_CPU_AVX512FP16 = 1 << 12,
    RS_CPU_AMX_TILE = 1 << 13,
};

/// What CPUID says about this CPU (zeros and empty strings off x86).
typedef struct {
    char vendor[13];      // "GenuineIntel", "AuthenticAMD"
    char brand[49];       // the brand string, e.g. "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"
    int family;           // display family (base + extended)
    int model;            // display model (base + extended)
    uint64_t features;    // RS_CPU_* bits
} rs_cpu_info;

/// Fills `info` from CPUID and XGETBV.
void rs_cpu_identify(rs_cpu_info *info);

// MARK: - Thread pool

/// Number of threads (including the caller) that parallel kernels use; at least 1.
int rs_threads_get(void);
/// Sets the number of threads (clamped to 1...64); 0 means the number of online CPUs.
/// Must not be called while a kernel is running on another thread.
void rs_threads_set(int threads);
/// How long (µs) an idle worker spins before it sleeps; default 100.
void rs_threads_set_spin_us(int microseconds);
/// Runs `fn(ctx, task)` for every task in `0 ..< tasks` on the pool; the calling thread
/// works too and the call returns when every task is done. Calls are serialised: a call made
/// while another is running (from another thread, or from inside a task) runs inline.
void rs_parallel_for(void (*fn)(void *ctx, int task), void *ctx, int tasks);

// MARK: - Matmul

/// `out[N, OC] = in[N, C] · w[OC, C]ᵀ (+ bias[OC])`, register-blocked so that each weight row
/// is read from memory once for all N rows; rows of OC are split across the pool when
/// `threaded` is nonzero. `bias` may be NULL.
void rs_matmul_skinny(float *out, const float *in, const float *w, const float *bias,
                      int64_t n, int64_t c, int64_t oc, int threaded);

/// As `rs_matmul_skinny` with bfloat16 weights `w[OC, C]` (half the bytes to stream), and the
/// inputs rounded to bfloat16 first (nearest, ties to even), so that every product is of two
/// bfloat16 values and exact in float32; sums and outputs are float32. Every ISA level computes
/// these products, up to summation order: AVX512_BF16 with VDPBF16PS (twice the multiply-adds
/// per instruction of a float FMA), the others with float FMAs on rounded, widened inputs.
void rs_matmul_skinny_bf16(float *out, const float *in, const uint16_t *w, const float *bias,
                           int64_t n, int64_t c, int64_t oc, int threaded);
/// Values `rs_bf16_pack_tiles` writes for bf16 weights `w[OC, C]` on this CPU: its full 16-row
/// blocks as AMX B tiles when the CPU has AMX and C is a multiple of 32, else 0 (no copy).
int64_t rs_bf16_tiles_count(int64_t c, int64_t oc);
/// Packs `w[OC, C]`'s full 16-row blocks for `rs_matmul_skinny_bf16_tiles` (as many values
/// as `rs_bf16_tiles_count` says; nothing when it says 0).
void rs_bf16_pack_tiles(uint16_t *tiles, const uint16_t *w, int64_t c, int64_t oc);
/// As `rs_matmul_skinny_bf16`, reading the weights from `tiles` (packed from the same `w` by
/// `rs_bf16_pack_tiles`; NULL: from `w`) where the CPU has AMX: each block of 16 outputs is
/// then one contiguous stream, and every 16 input rows one tile read in place. The last
/// OC % 16 rows, and every pass on other CPUs, read `w`.
void rs_matmul_skinny_bf16_tiles(float *out, const float *in, const uint16_t *w, const uint16_t *tiles,
                                 const float *bias, int64_t n, int64_t c, int64_t oc, int threaded);
/// float32 → bfloat16, rounding to nearest, ties to even (NaN stays NaN).
void rs_float_to_bf16(uint16_t *out, const float *in, int64_t count);
/// `in` rounded to bfloat16 (as rs_float_to_bf16) and written back as floats; `out` may be `in`.
void rs_round_to_bf16(float *out, const float *in, int64_t count);
/// `out[cols, rows] = in[rows, cols]ᵀ`.
void rs_transpose(float *out, const float *in, int64_t rows, int64_t cols);
/// `out[cols, rows] = bf16(in[rows, cols])ᵀ`, rounded as rs_float_to_bf16.
void rs_transpose_to_bf16(uint16_t *out, const float *in, int64_t rows, int64_t cols);

// MARK: - Elementwise and normalisation

/// RMSNorm over `n` rows of `dim`: out = x / sqrt(mean(x²) + eps) * weight. `out` may alias `in`.
void rs_rmsnorm(float *out, const float *in, const float *weight, int64_t n, int64_t dim, float eps);
/// Numerically stable softmax over `n` rows of `dim`. `out` may alias `in`.
void rs_softmax(float *out, const float *in, int64_t n, int64_t dim);
/// out = silu(gate) * up over `count` elements. `out` may alias `gate` or `up`.
void rs_swiglu(float *out, const float *gate, const float *up, int64_t count);
/// acc += x over `count` elements.
void rs_add_inplace(float *acc, const float *x, int64_t count);
/// x *= s over `count` elements.
void rs_scale_inplace(float *x, float s, int64_t count);
/// Σ a[i] * b[i] (float accumulators in several lanes).
float rs_dot(const float *a, const float *b, int64_t count);
/// IEEE half → float.
void rs_half_to_float(float *out, const uint16_t *in, int64_t count);
/// bfloat16 → float.
void rs_bf16_to_float(float *out, const uint16_t *in, int64_t count);

// MARK: - Row statistics (rowstats.c)

/// Max, first argmax and log Σ exp(scale·(x − max)) of one row (`scale` > 0, e.g. 1/T).
/// The log-sum-exp of scale·x is scale·max + log_sum. An empty row gives argmax −1.
typedef struct {
    float max;
    int64_t argmax;
    double log_sum;
} rs_row_stats;
rs_row_stats rs_row_logsumexp(const float *x, int64_t n, float scale);
/// out[i] = exp(scale·(x[i] − max)) (out may be NULL); returns their sum, accumulated in double.
double rs_exp_shifted(float *out, const float *x, int64_t n, float scale, float max);
/// Indices of the k largest entries (k ≤ n), largest first; ties keep the lower index first.
void rs_top_k(int32_t *out, const float *x, int64_t n, int32_t k);

// MARK: - RoPE

/// Rotate-half RoPE in place on `x[N, H, D]`; token t uses row `positions[t]` of the tables
/// `cos_table`, `sin_table`, each `[maxPos, D/2]`.
void rs_rope_table(float *x, const int32_t *positions, const float *cos_table,
                   const float *sin_table, int64_t n, int64_t heads, int64_t head_dim);
/// Fills `cos_out`, `sin_out` (`[count, D/2]`) for positions `start ..< start+count`, angles
/// computed in double precision from `inv_freq[D/2]`.
void rs_rope_fill_table(float *cos_out, float *sin_out, const double *inv_freq,
                        int64_t start, int64_t count, int64_t half);

// MARK: - Attention

/// Causal grouped-query attention over a KV cache; see `attentionForwardReference`.
/// out, query: `[N, H*D]`; keys, values: `[L, KV*D]` with L ≥ start + n. Parallel over
/// (token, head) pairs when there is enough work.
void rs_attention(float *out, const float *query, const float *keys, const float *values,
                  int64_t start, int64_t n, int64_t heads, int64_t kv_heads, int64_t head_dim);

/// One sequence's new tokens in a batched attention call: its own cache, the cache position
/// of its first new token, and that token's row in `query` and `out`. When `last_key` and
/// `last_value` are set (`[KV*D]` each), they stand at position start + n − 1 in place of the
/// cache's rows there: a token-tree candidate that shares its position with the chain's token
/// attends over the chain before it and itself, with no cache row swapped. With `bf16` set,
/// the cache and the last key and value hold bfloat16, widened exactly as they are read.
/// Segments over the same cache must agree on it.
typedef struct {
    const void *keys, *values;  // [L, KV*D] floats, or bfloat16 when bf16; L ≥ start + n
    int64_t start, n, row;
    const void *last_key, *last_value;  // NULL: the cache's own rows
    int32_t bf16;
} rs_attention_segment;

/// `rs_attention` for several sequences at once, each over its own cache, their n new tokens
/// at rows row ..< row + n of `query` and `out` (other rows are left alone). One parallel pass
/// over all (token, head) pairs, so a batch of B sequences costs one fork/join instead of B.
void rs_attention_segments(float *out, const float *query, const rs_attention_segment *segments,
                           int64_t count, int64_t heads, int64_t kv_heads, int64_t head_dim);

/// Most queries (tokens × query heads of one kv head, over one cache) that attend together,
/// each key and value read once for all of them (AVX-512). 1 computes one query at a time, as
/// `bench attention` does for its baseline; the bits are the same either way.
#define RS_ATTENTION_BLOCK 16
void rs_attention_set_block(int queries);
int rs_attention_get_block(void);

// MARK: - Backward (training), see backward.c

/// RMSNorm backward over `n` rows of `dim`, recomputing 1/rms from `inp`:
/// dinp += ∂L/∂in, dweight += ∂L/∂weight. Rows are split across the pool when large.
void rs_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                         const float *weight, int64_t n, int64_t dim, float eps);
/// SwiGLU backward: writes dgate and dup (not accumulated) over `count` elements.
void rs_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                        const float *up, int64_t count);
/// Transpose of `rs_rope_table` applied in place to the gradient `dx[N, H, D]`.
void rs_rope_table_backward(float *dx, const int32_t *positions, const float *cos_table,
                            const float *sin_table, int64_t n, int64_t heads, int64_t head_dim);
/// Causal GQA attention within each of `seqs` packed sequences (rows seq[s] ..< seq[s+1]),
/// saving the softmax log-sum-exp `lse[N, H]` for the backward. out, q: `[N, H*D]`;
/// k, v: `[N, KV*D]`. Parallel over (sequence, head).
void rs_attention_train_forward(float *out, float *lse, const float *q, const float *k,
                                const float *v, const int64_t *seq, int64_t seqs, int64_t heads,
                                int64_t kv_heads, int64_t head_dim);
/// Backward of `rs_attention_train_forward`; dq, dk, dv are accumulated (+=).
/// Parallel over (sequence, kv head).
void rs_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
                           const float *k, const float *v, const float *out, const float *lse,
                           const int64_t *seq, int64_t seqs, int64_t heads, int64_t kv_heads,
                           int64_t head_dim);
/// probs[N, V] = softmax(logits); losses[r] = −log probs[r, targets[r]] (0 where target < 0).
void rs_softmax_xent_forward(float *losses, float *probs, const float *logits,
                             const int32_t *targets, int64_t n, int64_t vocab);
/// dlogits[r] = dlosses[r] · (probs[r] − onehot(targets[r])), 0 rows where target < 0.
/// `dlogits` may alias `probs`.
void rs_softmax_xent_backward(float *dlogits, const float *probs, const int32_t *targets,
                              const float *dlosses, int64_t n, int64_t vocab);
/// One AdamW step over `n` parameters (PyTorch semantics); see backward.c.
void rs_adamw(float *param, const float *grad, float *m, float *v, int64_t n, float lr,
              float beta1, float beta2, float eps, float weight_decay, float bias_correction1,
              float bias_correction2, float grad_scale);
/// Σ x[i]² accumulated in double across blocks.
double rs_sum_squares(const float *x, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
