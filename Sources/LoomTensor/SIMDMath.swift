#if canImport(Glibc)
import Glibc
#endif

/// Vectorized float math on eight lanes (AVX2 width): the transcendental functions the
/// elementwise kernels and activations need, accurate to a few ulp over the float range.
typealias Vec = SIMD8<Float>

@inline(__always) func load(_ p: UnsafePointer<Float>) -> Vec {
    UnsafeRawPointer(p).loadUnaligned(as: Vec.self)
}

@inline(__always) func store(_ v: Vec, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec.self)
}

/// Lane minimum; the second operand wins ties and NaNs in the first (one blend instruction).
@inline(__always) func vmin(_ a: Vec, _ b: Vec) -> Vec { b.replacing(with: a, where: a .< b) }

/// Lane maximum; the second operand wins ties and NaNs in the first.
@inline(__always) func vmax(_ a: Vec, _ b: Vec) -> Vec { b.replacing(with: a, where: a .> b) }

extension SIMD8 where Scalar == Float {
    /// Lanes clamped to [low, high].
    @inline(__always) func vclamped(_ low: Vec, _ high: Vec) -> Vec { vmin(vmax(self, low), high) }
}

/// |x| by clearing the sign bit.
@inline(__always) func vabs(_ x: Vec) -> Vec {
    unsafeBitCast(unsafeBitCast(x, to: SIMD8<UInt32>.self) & 0x7fff_ffff, to: Vec.self)
}

// 1.5 · 2^23: adding it rounds a float of magnitude below 2^22 to an integer held in the low
// mantissa bits, which turns float <-> int conversions into adds and bit casts. (Literals, not
// globals: a global would put a lazy-initialization check inside every vector loop.)
@inline(__always) var roundingMagic: Vec { Vec(repeating: 12_582_912) }
@inline(__always) var roundingMagicBits: Int32 { 0x4B40_0000 }

@inline(__always) func vint(_ i: SIMD8<Int32>) -> Vec {
    unsafeBitCast(i &+ roundingMagicBits, to: Vec.self) - roundingMagic
}

/// Loads `n < 8` elements, the other lanes `fill`.
@inline(__always) func loadPartial(_ p: UnsafePointer<Float>, _ n: Int, fill: Float = 0) -> Vec {
    var v = Vec(repeating: fill)
    for i in 0..<n { v[i] = p[i] }
    return v
}

@inline(__always) func storePartial(_ v: Vec, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
    for i in 0..<n { p[i] = v[i] }
}

/// The first `lanes` (1 to 8) elements: a full load when there are eight.
@inline(__always) func loadLanes(_ p: UnsafePointer<Float>, _ lanes: Int) -> Vec {
    lanes == 8 ? load(p) : loadPartial(p, lanes)
}

/// Stores the first `lanes` (1 to 8) lanes.
@inline(__always) func storeLanes(_ v: Vec, _ p: UnsafeMutablePointer<Float>, _ lanes: Int) {
    if lanes == 8 { store(v, p) } else { storePartial(v, p, lanes) }
}

@inline(__always) func vselect(_ mask: SIMDMask<SIMD8<Int32>>, _ a: Vec, _ b: Vec) -> Vec {
    b.replacing(with: a, where: mask)
}

/// e^x: Cody-Waite range reduction x = n ln2 + r, a degree-6 minimax polynomial on r (the
/// Cephes expf coefficients), and 2^n built in the exponent bits.
@inline(__always) func vexp(_ x: Vec) -> Vec {
    let hi = Vec(repeating: 88.72283)
    let lo = Vec(repeating: -87.33654)
    let xc = x.vclamped(lo, hi)
    let t = xc * 1.442695041 + roundingMagic
    let n = t - roundingMagic
    let ni = unsafeBitCast(t, to: SIMD8<Int32>.self) &- roundingMagicBits
    var r = xc - n * 0.693359375
    r = r + n * 2.12194440e-4
    var p = Vec(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    p = p * (r * r) + r + 1
    let bits = (ni &+ 127) &<< 23
    var result = p * unsafeBitCast(bits, to: Vec.self)
    result = vselect(x .> hi, Vec(repeating: .infinity), result)
    result = vselect(x .< lo, Vec(repeating: 0), result)
    return vselect(x .!= x, x, result)
}

/// Natural logarithm: x = m 2^e with m in [sqrt(1/2), sqrt(2)), a degree-9 polynomial in m - 1
/// (the Cephes logf coefficients). log(0) = -inf, log(negative) = nan.
@inline(__always) func vlog(_ x: Vec) -> Vec {
    let bits = unsafeBitCast(x, to: SIMD8<Int32>.self)
    var e = vint(((bits &>> 23) & 0xff) &- 126)
    var m = unsafeBitCast((bits & Int32(bitPattern: 0x807f_ffff)) | 0x3f00_0000, to: Vec.self)
    let small = m .< 0.707106781186547524
    e = vselect(small, e - 1, e)
    m = vselect(small, m + m - 1, m - 1)
    let z = m * m
    var y = Vec(repeating: 7.0376836292e-2)
    y = y * m - 1.1514610310e-1
    y = y * m + 1.1676998740e-1
    y = y * m - 1.2420140846e-1
    y = y * m + 1.4249322787e-1
    y = y * m - 1.6668057665e-1
    y = y * m + 2.0000714765e-1
    y = y * m - 2.4999993993e-1
    y = y * m + 3.3333331174e-1
    y = y * m * z
    y = y - e * 2.12194440e-4
    y = y - z * 0.5
    var result = m + y + e * 0.693359375
    // Subnormal inputs fall outside the bit trick: fall back lane by lane.
    let tiny = x .< Float.leastNormalMagnitude
    if any(tiny) {
        for i in 0..<8 where tiny[i] { result[i] = logf(x[i]) }
    }
    result = vselect(x .== Float.infinity, x, result)
    return vselect(x .!= x, x, result)
}

/// tanh: an odd polynomial for |x| < 0.625 (Cephes tanhf), 1 - 2 / (e^{2|x|} + 1) above it.
@inline(__always) func vtanh(_ x: Vec) -> Vec {
    let ax = vabs(x)
    let z = x * x
    var p = Vec(repeating: -5.70498872745e-3)
    p = p * z + 2.06390887954e-2
    p = p * z - 5.37397155531e-2
    p = p * z + 1.33314422036e-1
    p = p * z - 3.33332819422e-1
    let small = p * z * x + x
    let e = vexp(ax * 2)
    var large = 1 - 2 / (e + 1)
    large = vselect(x .< 0, -large, large)
    return vselect(ax .< 0.625, small, large)
}

/// The logistic function 1 / (1 + e^-x).
@inline(__always) func vsigmoid(_ x: Vec) -> Vec { 1 / (1 + vexp(-x)) }

/// log(1 + e^x) without overflow: max(x, 0) + log(1 + e^-|x|).
@inline(__always) func vsoftplus(_ x: Vec) -> Vec {
    x.replacing(with: 0, where: x .< 0) + vlog1p(vexp(-vabs(x)))
}

/// log(1 + u) accurate for small u: log(1 + u) * u / ((1 + u) - 1) (Goldberg's correction).
@inline(__always) func vlog1p(_ u: Vec) -> Vec {
    let w = 1 + u
    let d = w - 1
    let corrected = vlog(w) * (u / d)
    return vselect(d .== 0, u, corrected)
}

/// e^x - 1 accurate near 0: (e^x - 1) * x / log(e^x) (Kahan's correction).
@inline(__always) func vexpm1(_ x: Vec) -> Vec {
    let u = vexp(x)
    let um1 = u - 1
    let corrected = um1 * (x / vlog(u))
    var result = vselect(u .== 1, x, corrected)
    result = vselect(um1 .== -1, Vec(repeating: -1), result)
    return vselect(u .== Float.infinity, u, result)
}

/// erf: the Maclaurin series through x^11 for |x| < 0.5 (relative error below 3e-8), and
/// Abramowitz and Stegun 7.1.26 above (absolute error below 1.5e-7), odd-extended.
@inline(__always) func verf(_ x: Vec) -> Vec {
    let ax = vabs(x)
    let t = 1 / (1 + ax * 0.3275911)
    var p = Vec(repeating: 1.061405429)
    p = p * t - 1.453152027
    p = p * t + 1.421413741
    p = p * t - 0.284496736
    p = p * t + 0.254829592
    let y = 1 - p * t * vexp(-ax * ax)
    let z = x * x
    var s = Vec(repeating: -1.0 / 1320)
    s = s * z + 1.0 / 216
    s = s * z - 1.0 / 42
    s = s * z + 1.0 / 10
    s = s * z - 1.0 / 3
    s = s * z + 1
    let series: Vec = x * s * 1.1283791671
    let signed = vselect(x .< 0, -y, y)
    return vselect(ax .< 0.5, series, signed)
}

/// Applies a scalar function lane by lane, for functions without a vector form.
@inline(__always) func lanewise(_ x: Vec, _ f: (Float) -> Float) -> Vec {
    var r = Vec()
    for i in 0..<8 { r[i] = f(x[i]) }
    return r
}

/// -1, 0 or 1 per lane.
@inline(__always) func vsign(_ x: Vec) -> Vec {
    Vec().replacing(with: 1, where: x .> 0).replacing(with: -1, where: x .< 0)
}

extension SIMD8 where Scalar == Float {
    /// `f` applied to the lanes: lets a derivative written for one vector read like the
    /// tensor-level forward code it mirrors.
    @inline(__always) func mapElements(_ f: (Vec) -> Vec) -> Vec { f(self) }
}
