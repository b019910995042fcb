// SHA-256 (FIPS 180-4), the piecewise SHA-256 of checkpoint digests, and CRC-32C for envelope
// checksums on the bus: SHA-NI / SSE4.2 when the CPU has them, portable C otherwise, chosen at
// run time. Only RollspecBus imports this.
#ifndef ROLLSPEC_DIGEST_H
#define ROLLSPEC_DIGEST_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Streaming SHA-256 state. Plain value: copying it forks the hash.
typedef struct {
    uint32_t state[8];
    uint64_t length;      // bytes fed so far
    uint8_t buffer[64];   // a partial block
    uint32_t buffered;    // bytes in `buffer`
    uint32_t accelerated; // 1: this context compresses with SHA-NI
} rs_sha256_ctx;

/// Starts a hash with the fastest compression function this CPU supports.
void rs_sha256_init(rs_sha256_ctx *ctx);
/// Starts a hash that always uses the portable C compression (for tests and benchmarks).
void rs_sha256_init_portable(rs_sha256_ctx *ctx);
void rs_sha256_update(rs_sha256_ctx *ctx, const void *data, size_t length);
/// Pads, writes the 32-byte digest and leaves `ctx` finished (init it again to reuse).
void rs_sha256_final(rs_sha256_ctx *ctx, uint8_t digest[32]);
/// 1 when `rs_sha256_init` picks SHA-NI on this CPU.
int rs_sha256_accelerated(void);

/// The bus's checkpoint digest (wire protocol §4): the file cut into pieces of
/// RS_PIECE_SIZE bytes (the last may be shorter; an empty file has none), and the SHA-256 of
/// the pieces' SHA-256 digests one after another. Same strength as SHA-256 of the file, but
/// the pieces are independent, so four are hashed side by side (twice the speed with SHA-NI).
#define RS_PIECE_SIZE ((size_t)1 << 20)

/// Streaming piecewise digest state. Plain value: copying it forks the hash.
typedef struct {
    rs_sha256_ctx piece;  // the piece being filled
    rs_sha256_ctx list;   // SHA-256 over the digests of the pieces finished so far
    uint64_t filled;      // bytes in `piece`, below RS_PIECE_SIZE
} rs_piece_digest_ctx;

void rs_piece_digest_init(rs_piece_digest_ctx *ctx);
/// Hashes every piece with the portable C compression, one at a time (for tests).
void rs_piece_digest_init_portable(rs_piece_digest_ctx *ctx);
void rs_piece_digest_update(rs_piece_digest_ctx *ctx, const void *data, size_t length);
/// Writes the 32-byte digest and leaves `ctx` finished (init it again to reuse).
void rs_piece_digest_final(rs_piece_digest_ctx *ctx, uint8_t digest[32]);

/// Advances a running CRC-32C (pre-inverted: start from 0xFFFFFFFF, XOR the result with
/// 0xFFFFFFFF) over `length` bytes; SSE4.2 when available.
uint32_t rs_crc32c_update(uint32_t crc, const void *data, size_t length);
/// The same with slicing-by-8 tables only (for tests and benchmarks).
uint32_t rs_crc32c_update_portable(uint32_t crc, const void *data, size_t length);
/// 1 when `rs_crc32c_update` uses the SSE4.2 crc32 instruction on this CPU.
int rs_crc32c_accelerated(void);

#ifdef __cplusplus
}
#endif
#endif
