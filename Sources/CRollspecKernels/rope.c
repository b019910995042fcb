// Rotary position embedding, Hugging Face "rotate half" layout: within each head, channel i
// pairs with channel i + D/2. cos/sin come from tables so that the trigonometry (done in
// double, as positions reach the thousands) is paid once per position, not per head.
#include "internal.h"
#include <math.h>

RS_INLINE void rope_head_body(float *restrict x, const float *restrict cs,
                              const float *restrict sn, int64_t half) {
    float *restrict y = x + half;
    for (int64_t i = 0; i < half; i++) {
        float a = x[i], b = y[i];
        x[i] = a * cs[i] - b * sn[i];
        y[i] = b * cs[i] + a * sn[i];
    }
}

#if RS_X86
static RS_AVX512 void rope_512(float *x, const int32_t *pos, const float *ct, const float *st,
                               int64_t n, int64_t heads, int64_t d) {
    int64_t half = d / 2;
    for (int64_t t = 0; t < n; t++)
        for (int64_t h = 0; h < heads; h++)
            rope_head_body(x + (t * heads + h) * d, ct + pos[t] * half, st + pos[t] * half, half);
}
static RS_AVX2 void rope_256(float *x, const int32_t *pos, const float *ct, const float *st,
                             int64_t n, int64_t heads, int64_t d) {
    int64_t half = d / 2;
    for (int64_t t = 0; t < n; t++)
        for (int64_t h = 0; h < heads; h++)
            rope_head_body(x + (t * heads + h) * d, ct + pos[t] * half, st + pos[t] * half, half);
}
#endif

void rs_rope_table(float *x, const int32_t *positions, const float *cos_table,
                   const float *sin_table, int64_t n, int64_t heads, int64_t head_dim) {
#if RS_X86
    if (RS_ISA_NOW >= RS_ISA_AVX512) { rope_512(x, positions, cos_table, sin_table, n, heads, head_dim); return; }
    if (RS_ISA_NOW == RS_ISA_AVX2) { rope_256(x, positions, cos_table, sin_table, n, heads, head_dim); return; }
#endif
    int64_t half = head_dim / 2;
    for (int64_t t = 0; t < n; t++)
        for (int64_t h = 0; h < heads; h++)
            rope_head_body(x + (t * heads + h) * head_dim, cos_table + positions[t] * half,
                           sin_table + positions[t] * half, half);
}

void rs_rope_fill_table(float *cos_out, float *sin_out, const double *inv_freq,
                        int64_t start, int64_t count, int64_t half) {
    for (int64_t p = 0; p < count; p++)
        for (int64_t i = 0; i < half; i++) {
            double angle = (double)(start + p) * inv_freq[i];
            cos_out[p * half + i] = (float)cos(angle);
            sin_out[p * half + i] = (float)sin(angle);
        }
}
