// Backward kernels for training (and the training-time attention forward that saves the
// log-sum-exp the backward needs): RMSNorm, SwiGLU, RoPE, causal GQA attention within packed
// sequences, fused softmax + cross-entropy, AdamW and a sum of squares.
//
// Like elementwise.c, simple loops are an always-inline plain-C body compiled once per ISA
// level (BW_CLONES) so the compiler vectorises each for its level. Float reductions keep
// eight explicit partial sums, which the compiler can vectorise without reordering a sum.
//
// Legend: N token rows, C channels, H query heads, KV key/value heads, D head dim,
// S packed sequences (row offsets `seq[0] = 0 < seq[1] < … < seq[S] = N`), V vocab.
#include "internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if RS_X86
#define BW_CLONES(ret, name, params, args)                               \
    static RS_AVX512 ret name##_512 params { return name##_body args; }  \
    static RS_AVX2 ret name##_256 params { return name##_body args; }    \
    static ret name##_scalar params { return name##_body args; }         \
    static ret name##_dispatch params {                                  \
        if (RS_ISA_NOW >= RS_ISA_AVX512) return name##_512 args;       \
        if (RS_ISA_NOW == RS_ISA_AVX2) return name##_256 args;         \
        return name##_scalar args;                                       \
    }
#else
#define BW_CLONES(ret, name, params, args) \
    static ret name##_dispatch params { return name##_body args; }
#endif

/// Σ a[i]·b[i] with eight partial sums (vectorisable without reassociating one sum).
RS_INLINE float bw_dot(const float *restrict a, const float *restrict b, int64_t n) {
    float acc[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) acc[l] += a[i + l] * b[i + l];
    float s = 0;
    for (int l = 0; l < 16; l++) s += acc[l];
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/// y += s · x.
RS_INLINE void bw_axpy(float *restrict y, float s, const float *restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += s * x[i];
}

// MARK: RMSNorm

/// One row: r = 1/sqrt(mean(x²)+eps); y = x·r·w.
/// dx += r·(w⊙dy) − r³/C · x · Σ(w⊙dy⊙x);  dw += dy⊙x·r.
RS_INLINE int rmsnorm_bw_body(float *restrict dinp, float *restrict dweight, const float *restrict dout,
                              const float *restrict inp, const float *restrict weight, int64_t n,
                              int64_t dim, float eps) {
    for (int64_t r = 0; r < n; r++) {
        const float *x = inp + r * dim, *dy = dout + r * dim;
        float *dx = dinp + r * dim;
        double ss = bw_dot(x, x, dim);
        float rs = (float)(1.0 / sqrt(ss / (double)dim + (double)eps));
        float acc[16] = {0};
        int64_t i = 0;
        for (; i + 16 <= dim; i += 16)
            for (int l = 0; l < 16; l++) acc[l] += weight[i + l] * dy[i + l] * x[i + l];
        float dot = 0;
        for (int l = 0; l < 16; l++) dot += acc[l];
        for (; i < dim; i++) dot += weight[i] * dy[i] * x[i];
        float k = rs * rs * rs * dot / (float)dim;
        for (int64_t c = 0; c < dim; c++) {
            dx[c] += rs * weight[c] * dy[c] - k * x[c];
            dweight[c] += dy[c] * x[c] * rs;
        }
    }
    return 0;
}
BW_CLONES(int, rmsnorm_bw,
          (float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
           int64_t n, int64_t dim, float eps),
          (dinp, dweight, dout, inp, weight, n, dim, eps))

typedef struct {
    float *dinp, *dweight_parts;
    const float *dout, *inp, *weight;
    int64_t n, dim, chunk;
    float eps;
} rmsnorm_bw_job;

static void rmsnorm_bw_task(void *ctx, int task) {
    const rmsnorm_bw_job *j = ctx;
    int64_t lo = task * j->chunk, hi = lo + j->chunk < j->n ? lo + j->chunk : j->n;
    if (lo >= hi) return;
    rmsnorm_bw_dispatch(j->dinp + lo * j->dim, j->dweight_parts + task * j->dim, j->dout + lo * j->dim,
                        j->inp + lo * j->dim, j->weight, hi - lo, j->dim, j->eps);
}

void rs_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                         const float *weight, int64_t n, int64_t dim, float eps) {
    int threads = rs_threads_get();
    if (threads <= 1 || n * dim < (1 << 16)) {
        rmsnorm_bw_dispatch(dinp, dweight, dout, inp, weight, n, dim, eps);
        return;
    }
    // Each task owns a block of rows and a private dweight row; the parts are summed after.
    int64_t tasks = threads;
    float *parts = calloc((size_t)(tasks * dim), sizeof(float));
    rmsnorm_bw_job job = {dinp, parts, dout, inp, weight, n, dim, (n + tasks - 1) / tasks, eps};
    rs_parallel_for(rmsnorm_bw_task, &job, (int)tasks);
    for (int64_t t = 0; t < tasks; t++)
        for (int64_t c = 0; c < dim; c++) dweight[c] += parts[t * dim + c];
    free(parts);
}

// MARK: SwiGLU

/// y = silu(g)·u with silu(g) = g·σ(g):  dg = dy·u·σ(g)·(1 + g·(1 − σ(g))),  du = dy·g·σ(g).
RS_INLINE int swiglu_bw_body(float *restrict dgate, float *restrict dup, const float *restrict dout,
                             const float *restrict gate, const float *restrict up, int64_t count) {
    for (int64_t i = 0; i < count; i++) {
        float g = gate[i], s = 1.0f / (1.0f + expf(-g));
        dgate[i] = dout[i] * up[i] * s * (1.0f + g * (1.0f - s));
        dup[i] = dout[i] * g * s;
    }
    return 0;
}
BW_CLONES(int, swiglu_bw,
          (float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t count),
          (dgate, dup, dout, gate, up, count))

void rs_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                        const float *up, int64_t count) {
    swiglu_bw_dispatch(dgate, dup, dout, gate, up, count);
}

// MARK: RoPE

/// The forward rotates (a, b) by +θ; the gradient rotates (da, db) by −θ (the transpose).
RS_INLINE int rope_bw_body(float *restrict dx, const int32_t *restrict positions, const float *restrict cos_table,
                           const float *restrict sin_table, int64_t n, int64_t heads, int64_t head_dim) {
    int64_t half = head_dim / 2;
    for (int64_t t = 0; t < n; t++) {
        const float *c = cos_table + positions[t] * half, *s = sin_table + positions[t] * half;
        for (int64_t h = 0; h < heads; h++) {
            float *x = dx + (t * heads + h) * head_dim;
            for (int64_t i = 0; i < half; i++) {
                float a = x[i], b = x[i + half];
                x[i] = a * c[i] + b * s[i];
                x[i + half] = b * c[i] - a * s[i];
            }
        }
    }
    return 0;
}
BW_CLONES(int, rope_bw,
          (float *dx, const int32_t *positions, const float *cos_table, const float *sin_table,
           int64_t n, int64_t heads, int64_t head_dim),
          (dx, positions, cos_table, sin_table, n, heads, head_dim))

void rs_rope_table_backward(float *dx, const int32_t *positions, const float *cos_table,
                            const float *sin_table, int64_t n, int64_t heads, int64_t head_dim) {
    rope_bw_dispatch(dx, positions, cos_table, sin_table, n, heads, head_dim);
}

// MARK: Attention (training)

typedef struct {
    float *out, *lse, *dq, *dk, *dv;
    const float *q, *k, *v, *dout, *o;
    const int64_t *seq;
    int64_t seqs, heads, kv_heads, d;
} attn_job;

/// Forward of one (sequence, query head): causal softmax(q·kᵀ/√D)·v, saving lse[t, h]. The
/// scores and the weighted sum of values are the inference kernel's (`rs_attention_scores`,
/// `rs_attention_mix`: several keys per pass, no horizontal sum per key), and the
/// exponentials are vectorised (`rs_exp_shifted`, summed in double).
RS_INLINE int attn_fwd_body(const attn_job *j, int task) {
    int64_t s = task / j->heads, h = task % j->heads, d = j->d, H = j->heads;
    int64_t group = H / j->kv_heads, kvh = h / group, qs = H * d, ks = j->kv_heads * d;
    int64_t r0 = j->seq[s], T = j->seq[s + 1] - r0;
    float scale = (float)(1.0 / sqrt((double)d));
    float *p = malloc((size_t)(T > 0 ? T : 1) * sizeof(float));
    const float *K = j->k + r0 * ks + kvh * d, *V = j->v + r0 * ks + kvh * d;
    for (int64_t t = 0; t < T; t++) {
        const float *q = j->q + (r0 + t) * qs + h * d;
        rs_attention_scores(p, q, K, t + 1, ks, d, scale);
        float m = -INFINITY;
        for (int64_t u = 0; u <= t; u++) m = p[u] > m ? p[u] : m;
        double sum = rs_exp_shifted(p, p, t + 1, 1, m);
        float inv = (float)(1.0 / sum);
        for (int64_t u = 0; u <= t; u++) p[u] *= inv;
        rs_attention_mix(j->out + (r0 + t) * qs + h * d, p, V, t + 1, ks, d);
        j->lse[(r0 + t) * H + h] = m + (float)log(sum);
    }
    free(p);
    return 0;
}
BW_CLONES(int, attn_fwd, (const attn_job *j, int task), (j, task))
static void attn_fwd_task(void *ctx, int task) { attn_fwd_dispatch(ctx, task); }

void rs_attention_train_forward(float *out, float *lse, const float *q, const float *k,
                                const float *v, const int64_t *seq, int64_t seqs, int64_t heads,
                                int64_t kv_heads, int64_t head_dim) {
    attn_job job = {out, lse, NULL, NULL, NULL, q, k, v, NULL, NULL, seq, seqs, heads, kv_heads, head_dim};
    int tasks = (int)(seqs * heads);
    if (rs_threads_get() <= 1 || tasks == 1) {
        for (int i = 0; i < tasks; i++) attn_fwd_task(&job, i);
    } else {
        rs_parallel_for(attn_fwd_task, &job, tasks);
    }
}

/// Backward of one (sequence, kv head) with every query head of its group, recomputing the
/// probabilities from the saved lse (Dao et al. 2022, FlashAttention backward, unblocked):
/// P = exp(s − lse), dv_u += P·do, dP = do·v_u, dS = P·(dP − do·o), dq += dS·k/√D,
/// dk_u += dS·q/√D. A task owns its kv head's dk, dv rows and its heads' dq rows. The scores,
/// the dP row and dq's sum over keys are the inference kernel's products (as in the forward).
RS_INLINE int attn_bw_body(const attn_job *j, int task) {
    int64_t s = task / j->kv_heads, kvh = task % j->kv_heads, d = j->d, H = j->heads;
    int64_t group = H / j->kv_heads, qs = H * d, ks = j->kv_heads * d;
    int64_t r0 = j->seq[s], T = j->seq[s + 1] - r0;
    float scale = (float)(1.0 / sqrt((double)d));
    size_t row_bytes = (size_t)(T > 0 ? T : 1) * sizeof(float);
    float *p = malloc(row_bytes), *dp = malloc(row_bytes), *dq_sum = malloc((size_t)d * sizeof(float));
    const float *K = j->k + r0 * ks + kvh * d, *V = j->v + r0 * ks + kvh * d;
    float *dK = j->dk + r0 * ks + kvh * d, *dV = j->dv + r0 * ks + kvh * d;
    for (int64_t h = kvh * group; h < (kvh + 1) * group; h++) {
        for (int64_t t = 0; t < T; t++) {
            int64_t row = (r0 + t) * qs + h * d;
            const float *q = j->q + row, *dout = j->dout + row;
            float *dq = j->dq + row;
            float lse = j->lse[(r0 + t) * H + h];
            float di = bw_dot(dout, j->o + row, d);
            rs_attention_scores(p, q, K, t + 1, ks, d, scale);
            rs_exp_shifted(p, p, t + 1, 1, lse);
            rs_attention_scores(dp, dout, V, t + 1, ks, d, 1);
            for (int64_t u = 0; u <= t; u++) {
                bw_axpy(dV + u * ks, p[u], dout, d);
                p[u] = p[u] * (dp[u] - di) * scale;
            }
            rs_attention_mix(dq_sum, p, K, t + 1, ks, d);
            for (int64_t i = 0; i < d; i++) dq[i] += dq_sum[i];
            for (int64_t u = 0; u <= t; u++) bw_axpy(dK + u * ks, p[u], q, d);
        }
    }
    free(p);
    free(dp);
    free(dq_sum);
    return 0;
}
BW_CLONES(int, attn_bw, (const attn_job *j, int task), (j, task))
static void attn_bw_task(void *ctx, int task) { attn_bw_dispatch(ctx, task); }

void rs_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
                           const float *k, const float *v, const float *out, const float *lse,
                           const int64_t *seq, int64_t seqs, int64_t heads, int64_t kv_heads,
                           int64_t head_dim) {
    attn_job job = {NULL, (float *)lse, dq, dk, dv, q, k, v, dout, out, seq, seqs, heads, kv_heads, head_dim};
    job.lse = (float *)lse;
    int tasks = (int)(seqs * kv_heads);
    if (rs_threads_get() <= 1 || tasks == 1) {
        for (int i = 0; i < tasks; i++) attn_bw_task(&job, i);
    } else {
        rs_parallel_for(attn_bw_task, &job, tasks);
    }
}

// MARK: Softmax + cross-entropy

typedef struct {
    float *losses, *probs, *dlogits;
    const float *logits, *dlosses;
    const int32_t *targets;
    int64_t n, vocab, chunk;
} xent_job;

static void xent_fwd_task(void *ctx, int task) {
    const xent_job *j = ctx;
    int64_t lo = task * j->chunk, hi = lo + j->chunk < j->n ? lo + j->chunk : j->n;
    for (int64_t r = lo; r < hi; r++) {
        const float *z = j->logits + r * j->vocab;
        float *p = j->probs + r * j->vocab;
        rs_softmax_row(p, z, j->vocab);
        int32_t t = j->targets[r];
        if (t < 0) { j->losses[r] = 0; continue; }
        float pt = p[t];
        if (pt > 1e-30f) {
            j->losses[r] = -logf(pt);
        } else {  // p[t] underflowed: the exact log-sum-exp.
            float m = -INFINITY;
            for (int64_t c = 0; c < j->vocab; c++) m = z[c] > m ? z[c] : m;
            double sum = 0;
            for (int64_t c = 0; c < j->vocab; c++) sum += exp((double)(z[c] - m));
            j->losses[r] = (float)((double)m + log(sum) - (double)z[t]);
        }
    }
}

static int64_t xent_tasks(int64_t n, int64_t vocab) {
    int threads = rs_threads_get();
    return (threads <= 1 || n * vocab < (1 << 16)) ? 1 : (n < threads ? n : threads);
}

void rs_softmax_xent_forward(float *losses, float *probs, const float *logits,
                             const int32_t *targets, int64_t n, int64_t vocab) {
    int64_t tasks = xent_tasks(n, vocab);
    xent_job job = {losses, probs, NULL, logits, NULL, targets, n, vocab, (n + tasks - 1) / tasks};
    if (tasks == 1) xent_fwd_task(&job, 0);
    else rs_parallel_for(xent_fwd_task, &job, (int)tasks);
}

RS_INLINE int xent_row_bw_body(float *restrict dz, const float *restrict p, float g, int64_t vocab) {
    for (int64_t c = 0; c < vocab; c++) dz[c] = g * p[c];
    return 0;
}
BW_CLONES(int, xent_row_bw, (float *dz, const float *p, float g, int64_t vocab), (dz, p, g, vocab))

static void xent_bw_task(void *ctx, int task) {
    const xent_job *j = ctx;
    int64_t lo = task * j->chunk, hi = lo + j->chunk < j->n ? lo + j->chunk : j->n;
    for (int64_t r = lo; r < hi; r++) {
        int32_t t = j->targets[r];
        float g = t < 0 ? 0 : j->dlosses[r];
        float *dz = j->dlogits + r * j->vocab;
        xent_row_bw_dispatch(dz, j->probs + r * j->vocab, g, j->vocab);
        if (t >= 0) dz[t] -= g;
    }
}

void rs_softmax_xent_backward(float *dlogits, const float *probs, const int32_t *targets,
                              const float *dlosses, int64_t n, int64_t vocab) {
    int64_t tasks = xent_tasks(n, vocab);
    xent_job job = {NULL, (float *)probs, dlogits, NULL, dlosses, targets, n, vocab, (n + tasks - 1) / tasks};
    if (tasks == 1) xent_bw_task(&job, 0);
    else rs_parallel_for(xent_bw_task, &job, (int)tasks);
}

// MARK: Optimiser

/// AdamW (Loshchilov & Hutter 2019) as in PyTorch: p −= lr·wd·p, then the Adam step with
/// bias corrections bc1 = 1 − β1^t, bc2 = 1 − β2^t; `gscale` multiplies the gradient
/// (global-norm clipping).
RS_INLINE int adamw_body(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                         int64_t n, float lr, float b1, float b2, float eps, float wd, float bc1,
                         float bc2, float gscale) {
    float decay = 1.0f - lr * wd, sc = lr / bc1, rbc2 = 1.0f / bc2;
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i] * gscale;
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * decay - sc * mi / (sqrtf(vi * rbc2) + eps);
    }
    return 0;
}
BW_CLONES(int, adamw,
          (float *p, const float *g, float *m, float *v, int64_t n, float lr, float b1, float b2,
           float eps, float wd, float bc1, float bc2, float gscale),
          (p, g, m, v, n, lr, b1, b2, eps, wd, bc1, bc2, gscale))

void rs_adamw(float *param, const float *grad, float *m, float *v, int64_t n, float lr,
              float beta1, float beta2, float eps, float weight_decay, float bias_correction1,
              float bias_correction2, float grad_scale) {
    adamw_dispatch(param, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, bias_correction1,
                   bias_correction2, grad_scale);
}

RS_INLINE double sumsq_body(const float *restrict x, int64_t n) {
    double total = 0;
    for (int64_t i = 0; i < n; i += 4096) {
        int64_t len = n - i < 4096 ? n - i : 4096;
        total += bw_dot(x + i, x + i, len);
    }
    return total;
}
BW_CLONES(double, sumsq, (const float *x, int64_t n), (x, n))

double rs_sum_squares(const float *x, int64_t n) { return sumsq_dispatch(x, n); }
