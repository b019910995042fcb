// CRC-32C (Castagnoli) for the bus envelope checksum: the SSE4.2 crc32 instruction when the CPU
// has it, slicing-by-8 tables otherwise, chosen at run time.
//
// One crc32 instruction takes 8 bytes but waits ~3 cycles for the one before it, so a single
// chain runs at ~2.7 bytes a cycle. Three chains over three adjacent stretches of a block run
// side by side, and are joined with the linearity of the raw (uninverted) update:
//   update(c, A‖B‖C) = shift(update(c, A), |B|+|C|) ^ shift(update(0, B), |C|) ^ update(0, C),
// where shift(c, n) = update(c, n zero bytes) is linear in c: four 256-entry tables per n,
// built once from update() itself on the 32 one-bit states.
#include "rollspec_digest.h"
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

static uint32_t table[8][256];
static int table_ready;

static void build_table(void) {
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t crc = b;
        for (int i = 0; i < 8; i++) crc = (crc >> 1) ^ ((crc & 1) ? 0x82F63B78u : 0);
        table[0][b] = crc;
    }
    for (int k = 1; k < 8; k++)
        for (uint32_t b = 0; b < 256; b++) table[k][b] = (table[k - 1][b] >> 8) ^ table[0][table[k - 1][b] & 0xFF];
    table_ready = 1;
}

uint32_t rs_crc32c_update_portable(uint32_t crc, const void *data, size_t length) {
    if (!table_ready) build_table();  // idempotent: racing threads write the same values
    const uint8_t *p = data;
    while (length >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
        lo ^= crc;
        crc = table[7][lo & 0xFF] ^ table[6][(lo >> 8) & 0xFF] ^ table[5][(lo >> 16) & 0xFF] ^ table[4][lo >> 24]
            ^ table[3][hi & 0xFF] ^ table[2][(hi >> 8) & 0xFF] ^ table[1][(hi >> 16) & 0xFF] ^ table[0][hi >> 24];
        p += 8;
        length -= 8;
    }
    while (length--) crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xFF];
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t update_sse42(uint32_t crc, const void *data, size_t length) {
    const uint8_t *p = data;
    uint64_t c = crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
        p += 8;
        length -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (length--) c32 = _mm_crc32_u8(c32, *p++);
    return c32;
}
#endif

#if defined(__x86_64__)
// Stretch lengths per chain: long blocks for bulk (chunks of checkpoints), short ones so that a
// trajectory of a few KB also runs three chains. Each a multiple of 8.
enum { LONG_STRETCH = 8192, SHORT_STRETCH = 256 };

// shift_long[k][b] = shift(b << 8k, LONG_STRETCH); shift_short likewise.
static uint32_t shift_long[4][256], shift_short[4][256];
static int shifts_ready;

static void build_shift(uint32_t out[4][256], size_t n) {
    static const uint8_t zeros[LONG_STRETCH];
    uint32_t basis[32];
    for (int bit = 0; bit < 32; bit++) basis[bit] = update_sse42(1u << bit, zeros, n);
    for (int k = 0; k < 4; k++)
        for (uint32_t b = 0; b < 256; b++) {
            uint32_t v = 0;
            for (int i = 0; i < 8; i++)
                if (b & (1u << i)) v ^= basis[8 * k + i];
            out[k][b] = v;
        }
}

static inline uint32_t shift(const uint32_t t[4][256], uint32_t c) {
    return t[0][c & 0xFF] ^ t[1][(c >> 8) & 0xFF] ^ t[2][(c >> 16) & 0xFF] ^ t[3][c >> 24];
}

// Blocks of three stretches of `stretch` bytes each, while they fit; returns the bytes used.
__attribute__((target("sse4.2")))
static size_t three_chains(uint32_t *crc, const uint8_t *p, size_t length, size_t stretch, const uint32_t t[4][256]) {
    size_t used = 0;
    while (length - used >= 3 * stretch) {
        const uint8_t *a = p + used, *b = a + stretch, *c = b + stretch;
        uint64_t ca = *crc, cb = 0, cc = 0;
        for (size_t i = 0; i < stretch; i += 8) {
            uint64_t wa, wb, wc;
            memcpy(&wa, a + i, 8);
            memcpy(&wb, b + i, 8);
            memcpy(&wc, c + i, 8);
            ca = _mm_crc32_u64(ca, wa);
            cb = _mm_crc32_u64(cb, wb);
            cc = _mm_crc32_u64(cc, wc);
        }
        *crc = shift(t, shift(t, (uint32_t)ca) ^ (uint32_t)cb) ^ (uint32_t)cc;
        used += 3 * stretch;
    }
    return used;
}

static uint32_t update_sse42_3way(uint32_t crc, const void *data, size_t length) {
    if (length < 3 * SHORT_STRETCH) return update_sse42(crc, data, length);
    if (!shifts_ready) {  // idempotent: racing threads write the same values
        build_shift(shift_long, LONG_STRETCH);
        build_shift(shift_short, SHORT_STRETCH);
        shifts_ready = 1;
    }
    const uint8_t *p = data;
    size_t used = three_chains(&crc, p, length, LONG_STRETCH, shift_long);
    used += three_chains(&crc, p + used, length - used, SHORT_STRETCH, shift_short);
    return update_sse42(crc, p + used, length - used);
}
#endif

int rs_crc32c_accelerated(void) {
#if defined(__x86_64__)
    static int cached = -1;
    if (cached < 0) cached = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    return cached;
#else
    return 0;
#endif
}

uint32_t rs_crc32c_update(uint32_t crc, const void *data, size_t length) {
#if defined(__x86_64__)
    if (rs_crc32c_accelerated()) return update_sse42_3way(crc, data, length);
#endif
    return rs_crc32c_update_portable(crc, data, length);
}
