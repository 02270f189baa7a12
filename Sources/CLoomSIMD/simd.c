// The header's functions are static inline, compiled where Swift imports them; SwiftPM needs
// one source file for a C target.
#include "loom_simd.h"
