import Testing
import LoomTensor

/// Finite-difference gradient checking.
///
/// The checked scalar is L(x) = Σ f(x) · w for a fixed random w, summed in Double so the
/// only rounding is float32's in f itself. Central differences with step h = 1e-2 have a
/// truncation error of h² |f'''| / 6 ≈ 2e-5 |f'''| and a rounding error of about
/// 6e-8 · |L| / h ≈ 6e-6 |L|; together well inside the tolerance |analytic - numeric| <=
/// 2e-3 + 1e-2 · |numeric|, while a wrong VJP (a missing factor, a swapped axis) misses it by
/// orders of magnitude. Inputs are kept at least 3h away from kinks, where the one-sided
/// slopes differ.
public enum GradientCheck {
    public static let step: Float = 1e-2
    public static let absoluteTolerance: Float = 2e-3
    public static let relativeTolerance: Float = 1e-2

    public static func weightedSum(_ y: Tensor, _ w: Tensor) -> Double {
        zip(y.scalars, w.scalars).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }

    /// Checks every input's gradient (at most `maxElements` elements per input, spread evenly).
    public static func check(_ name: String, _ inputs: [Tensor], maxElements: Int = 48, step: Float = step,
                      sourceLocation: SourceLocation = #_sourceLocation,
                      _ f: ([Tensor]) throws -> Tensor) rethrows {
        let variables = inputs.map { $0.requiringGradient() }
        let y = try f(variables)
        let w = Tensor.randomUniform(y.shape, low: -1, high: 1, generator: RandomGenerator(seed: 99))
        let analytic = gradients(of: y, wrt: variables, seed: w)
        for (k, x) in inputs.enumerated() {
            #expect(analytic[k].shape == x.shape, "\(name): gradient shape", sourceLocation: sourceLocation)
            let stride = max(1, x.count / maxElements)
            for i in Swift.stride(from: 0, to: x.count, by: stride) {
                func loss(_ delta: Float) throws -> Double {
                    var moved = inputs
                    moved[k].withUnsafeMutableBufferPointer { $0[i] += delta }
                    return weightedSum(try f(moved), w)
                }
                let numeric = Float((try loss(step) - loss(-step)) / Double(2 * step))
                let a = analytic[k].scalars[i]
                let ok = abs(a - numeric) <= absoluteTolerance + relativeTolerance * abs(numeric)
                #expect(ok, "\(name): input \(k) element \(i): analytic \(a), numeric \(numeric)",
                        sourceLocation: sourceLocation)
                if !ok { return }
            }
        }
    }

    /// Checks the gradient of f with respect to a parameter f reads through `tracked`, by moving
    /// the parameter's value.
    public static func check(_ name: String, parameter p: Parameter, maxElements: Int = 48, step: Float = step,
                             sourceLocation: SourceLocation = #_sourceLocation, _ f: () throws -> Tensor) rethrows {
        let original = p.value
        defer { p.assign(original) }
        let y = try f()
        let w = Tensor.randomUniform(y.shape, low: -1, high: 1, generator: RandomGenerator(seed: 98))
        guard let analytic = gradients(of: y, wrt: [p], seed: w)[p] else {
            Issue.record("\(name): no gradient reached \(p.name)", sourceLocation: sourceLocation)
            return
        }
        let stride = max(1, original.count / maxElements)
        for i in Swift.stride(from: 0, to: original.count, by: stride) {
            func loss(_ delta: Float) throws -> Double {
                var moved = original
                moved.withUnsafeMutableBufferPointer { $0[i] += delta }
                p.assign(moved)
                return weightedSum(try f(), w)
            }
            let numeric = Float((try loss(step) - loss(-step)) / Double(2 * step))
            let a = analytic.scalars[i]
            let ok = abs(a - numeric) <= absoluteTolerance + relativeTolerance * abs(numeric)
            #expect(ok, "\(name): \(p.name) element \(i): analytic \(a), numeric \(numeric)", sourceLocation: sourceLocation)
            if !ok { return }
        }
    }

    /// Random values in [low, high) kept 3h away from each kink.
    public static func input(_ shape: [Int], seed: UInt64, low: Float = -2, high: Float = 2, kinks: [Float] = []) -> Tensor {
        var t = Tensor.randomUniform(shape, low: low, high: high, generator: RandomGenerator(seed: seed))
        t.withUnsafeMutableBufferPointer { p in
            for i in p.indices {
                for kink in kinks where abs(p[i] - kink) < 3 * step {
                    p[i] = kink + (p[i] >= kink ? 3 : -3) * step
                }
            }
        }
        return t
    }
}

/// Asserts two float arrays agree to a relative tolerance (with an absolute floor).
public func expectClose(_ a: [Float], _ b: [Float], relative: Float = 1e-5, absolute: Float = 1e-6,
                 _ what: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count, "\(what): \(a.count) values vs \(b.count)", sourceLocation: sourceLocation)
    for i in 0..<min(a.count, b.count) {
        let ok = abs(a[i] - b[i]) <= absolute + relative * abs(b[i]) || (a[i].isNaN && b[i].isNaN) || a[i] == b[i]
        #expect(ok, "\(what) [\(i)]: \(a[i]) vs expected \(b[i])", sourceLocation: sourceLocation)
        if !ok { return }
    }
}

/// Expects `body` to throw an error whose description contains `fragment` (the layer, the
/// argument, the reason).
public func expectError(_ fragment: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("no error; expected one mentioning \(fragment)", sourceLocation: sourceLocation)
    } catch {
        #expect("\(error)".contains(fragment), "\(error)", sourceLocation: sourceLocation)
    }
}
