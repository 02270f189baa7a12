#ifndef LOOM_SIMD_H
#define LOOM_SIMD_H
// Vector instructions Swift's SIMD types do not reach: Swift computes SIMD8<Float>'s
// squareRoot() lane by lane (eight scalar square roots); this is one vsqrtps, the same
// correctly rounded result.
#include <immintrin.h>

static inline __m256 loom_sqrt8(__m256 x) { return _mm256_sqrt_ps(x); }

#endif
