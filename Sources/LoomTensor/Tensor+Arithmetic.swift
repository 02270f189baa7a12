import CLoomSIMD
#if canImport(Glibc)
import Glibc
#endif

/// Elementwise arithmetic with NumPy broadcasting, comparisons and elementwise math, each with
/// its vector-Jacobian product.
extension Tensor {
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let result = zipElements(a, b) { $0 + $1 }
        let sa = a.shape, sb = b.shape
        return record("add", result, [a, b]) { g in [g.sumToShape(sa), g.sumToShape(sb)] }
    }

    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let result = zipElements(a, b) { $0 - $1 }
        let sa = a.shape, sb = b.shape
        return record("subtract", result, [a, b]) { g in [g.sumToShape(sa), (-g).sumToShape(sb)] }
    }

    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let result = zipElements(a, b) { $0 * $1 }
        let x = a.detached, y = b.detached, needA = a.requiresGradient, needB = b.requiresGradient
        return record("multiply", result, [a, b]) { g in
            [needA ? (g * y).sumToShape(x.shape) : nil, needB ? (g * x).sumToShape(y.shape) : nil]
        }
    }

    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let result = zipElements(a, b) { $0 / $1 }
        let x = a.detached, y = b.detached, q = result, needA = a.requiresGradient, needB = b.requiresGradient
        return record("divide", result, [a, b]) { g in
            [needA ? (g / y).sumToShape(x.shape) : nil,
             needB ? (-(g * q) / y).sumToShape(y.shape) : nil]
        }
    }

    public static prefix func - (a: Tensor) -> Tensor {
        record("negate", a.mapElements { -$0 }, [a]) { g in [-g] }
    }

    public static func + (a: Tensor, b: Float) -> Tensor { a + Tensor(b) }
    public static func + (a: Float, b: Tensor) -> Tensor { Tensor(a) + b }
    public static func - (a: Tensor, b: Float) -> Tensor { a - Tensor(b) }
    public static func - (a: Float, b: Tensor) -> Tensor { Tensor(a) - b }
    public static func * (a: Tensor, b: Float) -> Tensor { a * Tensor(b) }
    public static func * (a: Float, b: Tensor) -> Tensor { Tensor(a) * b }
    public static func / (a: Tensor, b: Float) -> Tensor { a / Tensor(b) }
    public static func / (a: Float, b: Tensor) -> Tensor { Tensor(a) / b }

    /// a^b elementwise (b broadcast); the gradient for b uses log(a), defined where a > 0.
    public func pow(_ exponent: Tensor) -> Tensor {
        let result = Tensor.zipElements(self, exponent) { a, b in
            var r = Vec()
            for i in 0..<8 { r[i] = powf(a[i], b[i]) }
            return r
        }
        let x = detached, e = exponent.detached, y = result
        let needBase = requiresGradient, needExponent = exponent.requiresGradient
        return Tensor.record("pow", result, [self, exponent]) { g in
            [needBase ? (g * e * x.pow(e - 1)).sumToShape(x.shape) : nil,
             needExponent ? (g * y * x.log()).sumToShape(e.shape) : nil]
        }
    }

    /// a^p elementwise for a constant exponent.
    public func pow(_ p: Float) -> Tensor {
        if p == 2 { return square() }
        return pow(Tensor(p))
    }

    /// The larger of a and b elementwise (NaN in a propagates); ties send the gradient to a.
    public static func maximum(_ a: Tensor, _ b: Tensor) -> Tensor {
        let result = zipElements(a, b) { x, y in vselect(x .!= x, x, vmax(x, y)) }
        return routeToChosen("maximum", result, a, b, choseA: a.detached.greaterEqual(b.detached))
    }

    /// The smaller of a and b elementwise (NaN in a propagates); ties send the gradient to a.
    public static func minimum(_ a: Tensor, _ b: Tensor) -> Tensor {
        let result = zipElements(a, b) { x, y in vselect(x .!= x, x, vmin(x, y)) }
        return routeToChosen("minimum", result, a, b, choseA: a.detached.lessEqual(b.detached))
    }

    /// Records a selection between a and b: the gradient goes where the value came from.
    private static func routeToChosen(_ name: String, _ result: Tensor, _ a: Tensor, _ b: Tensor,
                                      choseA: Tensor) -> Tensor {
        let sa = a.shape, sb = b.shape
        return record(name, result, [a, b]) { g in
            [(g * choseA).sumToShape(sa), (g * (1 - choseA)).sumToShape(sb)]
        }
    }

    // Comparisons return 1 where true and 0 where false; they carry no gradient.
    public func equal(_ other: Tensor) -> Tensor { Tensor.zipElements(self, other) { Vec(repeating: 1).replacing(with: 0, where: $0 .!= $1) } }
    public func greater(_ other: Tensor) -> Tensor { Tensor.zipElements(self, other) { Vec().replacing(with: 1, where: $0 .> $1) } }
    public func greaterEqual(_ other: Tensor) -> Tensor { Tensor.zipElements(self, other) { Vec().replacing(with: 1, where: $0 .>= $1) } }
    public func less(_ other: Tensor) -> Tensor { Tensor.zipElements(self, other) { Vec().replacing(with: 1, where: $0 .< $1) } }
    public func lessEqual(_ other: Tensor) -> Tensor { Tensor.zipElements(self, other) { Vec().replacing(with: 1, where: $0 .<= $1) } }

    /// What a unary op's derivative reads, and so what its pullback keeps alive until the
    /// backward pass: keeping only the output lets the input be freed (the next layer usually
    /// keeps the output anyway).
    enum UnaryOperands { case input, output, both }

    /// A differentiable unary operation: forward values, and the local derivative as a vector
    /// function of (x, y), of which it reads only `keeping`. The pullback is one fused pass
    /// g · f'(x, y), with no derivative tensor in between.
    @inline(__always)
    func unary(_ name: String, _ f: (Vec) -> Vec, keeping: UnaryOperands = .both,
               derivative: @escaping @Sendable (_ x: Vec, _ y: Vec) -> Vec) -> Tensor {
        let result = mapElements(f)
        // The operand not kept is never read: the gradient stands in for it in the pass.
        let x: Tensor? = keeping == .output ? nil : detached
        let y: Tensor? = keeping == .input ? nil : result
        return Tensor.record(name, result, [self]) { g in
            [Tensor.zipElements(g, x ?? g, y ?? g) { gv, xv, yv in gv * derivative(xv, yv) }]
        }
    }

    public func exp() -> Tensor { unary("exp", vexp, keeping: .output) { _, y in y } }
    public func log() -> Tensor { unary("log", vlog, keeping: .input) { x, _ in 1 / x } }
    public func log1p() -> Tensor { unary("log1p", vlog1p, keeping: .input) { x, _ in 1 / (x + 1) } }
    public func expm1() -> Tensor { unary("expm1", vexpm1, keeping: .output) { _, y in y + 1 } }
    public func sqrt() -> Tensor { unary("sqrt", { loom_sqrt8($0) }, keeping: .output) { _, y in 0.5 / y } }
    public func rsqrt() -> Tensor { unary("rsqrt", { 1 / loom_sqrt8($0) }) { x, y in -0.5 * y / x } }
    public func square() -> Tensor { unary("square", { $0 * $0 }, keeping: .input) { x, _ in 2 * x } }
    public func reciprocal() -> Tensor { unary("reciprocal", { 1 / $0 }, keeping: .output) { _, y in -(y * y) } }
    /// |x|; its derivative at 0 is 1, as JAX (Keras's reference backend) takes it, so an L1
    /// penalty moves a weight that is exactly zero the way Keras does.
    public func abs() -> Tensor {
        unary("abs", { vabs($0) }, keeping: .input) { x, _ in Vec(repeating: 1).replacing(with: -1, where: x .< 0) }
    }
    /// -1, 0 or 1; its gradient is zero.
    public func sign() -> Tensor { mapElements(vsign) }
    public func sin() -> Tensor { unary("sin", { lanewise($0, sinf) }, keeping: .input) { x, _ in lanewise(x, cosf) } }
    public func cos() -> Tensor { unary("cos", { lanewise($0, cosf) }, keeping: .input) { x, _ in -lanewise(x, sinf) } }
    public func erf() -> Tensor {
        unary("erf", verf, keeping: .input) { x, _ in vexp(-(x * x)) * Float(2 / Double.pi.squareRoot()) }
    }
    /// Values clipped to [low, high]; the gradient passes where the value was inside.
    public func clipped(min low: Float, max high: Float) -> Tensor {
        let lo = Vec(repeating: low), hi = Vec(repeating: high)
        return unary("clip", { $0.vclamped(lo, hi) }, keeping: .input) { x, _ in
            Vec().replacing(with: 1, where: (x .>= lo) .& (x .<= hi))
        }
    }

    /// `x` where `condition` is non-zero, `y` elsewhere; the three broadcast together.
    public static func `where`(_ condition: Tensor, _ x: Tensor, _ y: Tensor) -> Tensor {
        let shape: [Int]
        do { shape = try broadcastShape(broadcastShape(condition.shape, x.shape), y.shape) }
        catch { preconditionFailure("where: \(error)") }
        let c = condition.broadcast(to: shape).detached.mapElements { Vec().replacing(with: 1, where: $0 .!= 0) }
        let xb = x.detached.broadcast(to: shape), yb = y.detached.broadcast(to: shape)
        let result = zipElements(c, xb, yb) { m, a, b in vselect(m .!= 0, a, b) }
        let sx = x.shape, sy = y.shape
        return record("where", result, [x, y]) { g in [(g * c).sumToShape(sx), (g * (1 - c)).sumToShape(sy)] }
    }
}
