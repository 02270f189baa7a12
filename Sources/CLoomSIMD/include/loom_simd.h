#ifndef LOOM_SIMD_H
#define LOOM_SIMD_H
// Vector instructions Swift's SIMD types do not reach: Swift computes SIMD8<Float>'s
// squareRoot() lane by lane (eight scalar square roots); this is one vsqrtps, the same
// correctly rounded result.
#include <immintrin.h>
#include <stdint.h>

static inline __m256 loom_sqrt8(__m256 x) { return _mm256_sqrt_ps(x); }

// A spin-wait hint (PAUSE): a thread polling a flag leaves the core's resources to others.
static inline void loom_cpu_relax(void) { _mm_pause(); }

// The low and high 32 bits of each lane's product with m (Philox's mulhilo), eight lanes:
// vpmuludq multiplies the even lanes; the odd ones are shifted down for a second one.
static inline void loom_mulhilo8(__m256i x, __m256i m, __m256i *lo, __m256i *hi) {
    __m256i even = _mm256_mul_epu32(x, m);
    __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), m);
    *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

// Philox4x32-10 (Random123) for the eight counters counter..counter+7 of `stream` under key
// `seed`: out[4 * b + w] is word w of block b, the order RandomGenerator.block returns them in.
static inline void loom_philox8(uint64_t seed, uint64_t stream, uint64_t counter, uint32_t out[32]) {
    uint32_t lo32[8], hi32[8];
    for (int b = 0; b < 8; b++) {
        uint64_t c = counter + (uint64_t)b;
        lo32[b] = (uint32_t)c;
        hi32[b] = (uint32_t)(c >> 32);
    }
    __m256i c0 = _mm256_loadu_si256((const __m256i *)lo32), c1 = _mm256_loadu_si256((const __m256i *)hi32);
    __m256i c2 = _mm256_set1_epi32((int)(uint32_t)stream), c3 = _mm256_set1_epi32((int)(uint32_t)(stream >> 32));
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u), m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
    for (int round = 0; round < 10; round++) {
        __m256i lo0, hi0, lo1, hi1;
        loom_mulhilo8(c0, m0, &lo0, &hi0);
        loom_mulhilo8(c2, m1, &lo1, &hi1);
        __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)k0));
        __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)k1));
        c1 = lo1;
        c3 = lo0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    // Four vectors of eight blocks' words to blocks of four words: a 4x8 transpose.
    __m256i a = _mm256_unpacklo_epi32(c0, c1), b = _mm256_unpackhi_epi32(c0, c1);
    __m256i c = _mm256_unpacklo_epi32(c2, c3), d = _mm256_unpackhi_epi32(c2, c3);
    __m256i r0 = _mm256_unpacklo_epi64(a, c), r1 = _mm256_unpackhi_epi64(a, c);
    __m256i r2 = _mm256_unpacklo_epi64(b, d), r3 = _mm256_unpackhi_epi64(b, d);
    // r0 holds blocks 0 and 4, r1 blocks 1 and 5, r2 blocks 2 and 6, r3 blocks 3 and 7.
    _mm256_storeu_si256((__m256i *)out, _mm256_permute2x128_si256(r0, r1, 0x20));
    _mm256_storeu_si256((__m256i *)(out + 8), _mm256_permute2x128_si256(r2, r3, 0x20));
    _mm256_storeu_si256((__m256i *)(out + 16), _mm256_permute2x128_si256(r0, r1, 0x31));
    _mm256_storeu_si256((__m256i *)(out + 24), _mm256_permute2x128_si256(r2, r3, 0x31));
}

#endif
