import Foundation
import LoomLayers
import LoomTensor
import LoomTestSupport
import Testing

/// Initializers, regularizers and constraints against Keras's configs, penalties and projections.
@Suite struct ObjectTests {
    static let root = (try? Fixtures.load("objects.json")) ?? [:]

    static func list(_ key: String) -> [JSONValue] {
        if case let .array(a)? = root[key] { return a }
        return []
    }

    @Test func initializerConfigsRoundTrip() throws {
        let serialized = Self.list("initializers")
        #expect(serialized.count == 16)
        for s in serialized {
            let made = try initializers.make(s, owner: "test", argument: "initializer")
            #expect(made.serialized.isEquivalent(to: s), "\(made.serialized) vs Keras \(s)")
            let reparsed = try initializers.make(try JSONValue.parse(made.serialized.description), owner: "test", argument: "i")
            #expect(reparsed.serialized.isEquivalent(to: s))
        }
    }

    @Test func namesResolveAsKerasResolvesThem() throws {
        guard case let .object(byName)? = Self.root["by_name"] else { Issue.record("no by_name"); return }
        for (kind, table) in byName {
            guard case let .object(entries) = table else { continue }
            for (name, expected) in entries {
                let written: JSONValue
                switch kind {
                case "initializers": written = try initializers.make(.string(name), owner: "t", argument: "a").serialized
                case "regularizers": written = try regularizers.make(.string(name), owner: "t", argument: "a").serialized
                default: written = try constraints.make(.string(name), owner: "t", argument: "a").serialized
                }
                #expect(written.isEquivalent(to: expected), "\(kind) '\(name)': \(written) vs Keras \(expected)")
            }
        }
    }

    @Test func regularizerPenaltiesMatchKeras() throws {
        let cases = Self.list("regularizers")
        #expect(cases.count == 14)
        for case let .object(c) in cases {
            let r = try regularizers.make(c["serialized"]!, owner: "test", argument: "regularizer")
            let x = Fixtures.tensor(c["input"])!
            let expected = Float(c["penalty"]!.numberValue!)
            expectClose([r.penalty(x).scalar], [expected], relative: 1e-5, absolute: 1e-7, "\(c["serialized"]!)")
            #expect(r.serialized.isEquivalent(to: c["serialized"]!))
            // The penalty is differentiable: d/dx of l1|x| + l2 x² is l1 sign(x) + 2 l2 x.
            GradientCheck.check("penalty \(r.serialized)", [x.abs() + 0.1]) { r.penalty($0[0]) }
        }
    }

    @Test func constraintProjectionsMatchKeras() throws {
        let cases = Self.list("constraints")
        #expect(cases.count >= 17)
        for case let .object(c) in cases {
            let k = try constraints.make(c["serialized"]!, owner: "test", argument: "constraint")
            let x = Fixtures.tensor(c["input"])!
            expectClose(k.project(x).scalars, Fixtures.tensor(c["output"])!.scalars, relative: 1e-5, absolute: 1e-6,
                        "\(c["serialized"]!) on \(x.shape)")
            #expect(k.serialized.isEquivalent(to: c["serialized"]!), "\(k.serialized) vs \(c["serialized"]!)")
        }
    }

    @Test func userDefinedObjectsRegisterByName() throws {
        let scaled = CustomRegularizer(name: "MyPackage>Scaled", parameters: ["factor": 3]) { $0.sum() * 3 }
        regularizers.register("MyPackage>Scaled") { c in
            let f = Float(c["factor"]?.numberValue ?? 1)
            return CustomRegularizer(name: "MyPackage>Scaled", parameters: c) { $0.sum() * f }
        }
        let back = try regularizers.make(scaled.serialized, owner: "test", argument: "regularizer")
        #expect(back.penalty(Tensor([1, 2])).scalar == 9)
        #expect(scaled.serialized.isEquivalent(to: ["module": nil, "class_name": "Scaled", "config": ["factor": 3],
                                                    "registered_name": "MyPackage>Scaled"]))

        constraints.register("MyPackage>Clip") { _ in CustomConstraint(name: "MyPackage>Clip") { $0.clipped(min: -1, max: 1) } }
        let clip = try constraints.make(.string("MyPackage>Clip"), owner: "test", argument: "constraint")
        #expect(clip.project(Tensor([-3, 0.5, 2])).scalars == [-1, 0.5, 1])

        initializers.register("MyPackage>Twos") { _ in CustomInitializer(name: "MyPackage>Twos") { Tensor.full($0, 2) } }
        let dense = try Dense.from(config: ["units": 2, "kernel_initializer": ["class_name": "Twos", "config": [:],
                                                                               "registered_name": "MyPackage>Twos"]])
        _ = try dense(Tensor.ones([1, 3]))
        #expect(dense.kernel.value.scalars == [2, 2, 2, 2, 2, 2])

        ActivationFunction.register(ActivationFunction(name: "MyPackage>cube") { $0 * $0 * $0 })
        let act = try Activation.from(config: ["activation": "MyPackage>cube"])
        #expect(try act(Tensor([2])).scalar == 8)
    }
}

/// Initializers drawn at scale: moments, bounds, truncation, orthogonality, identity, with
/// Keras's fans for dense and convolution kernels.
@Suite struct InitializerStatisticsTests {
    static func moments(_ t: Tensor) -> (mean: Double, variance: Double) {
        let v = t.scalars.map(Double.init)
        let m = v.reduce(0, +) / Double(v.count)
        return (m, v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count))
    }

    /// (shape, fan_in, fan_out) as Keras's compute_fans gives them.
    static let shapes: [([Int], Int, Int)] = [([500, 300], 500, 300), ([3, 3, 64, 96], 576, 864), ([5, 40, 60], 200, 300)]

    @Test func varianceScalingFamilies() throws {
        for (shape, fanIn, fanOut) in Self.shapes {
            #expect(computeFans(shape) == (fanIn, fanOut))
            let n = Double(shape.reduce(1, *))
            let cases: [(any Initializer, Double, Bool, Double?)] = [
                // (initializer, expected variance, uniform?, bound)
                (GlorotUniform(seed: 1), 2.0 / Double(fanIn + fanOut), true, (6.0 / Double(fanIn + fanOut)).squareRoot()),
                (GlorotNormal(seed: 2), 2.0 / Double(fanIn + fanOut), false, 2 * (2.0 / Double(fanIn + fanOut)).squareRoot() / 0.87962566103423978),
                (HeUniform(seed: 3), 2.0 / Double(fanIn), true, (6.0 / Double(fanIn)).squareRoot()),
                (HeNormal(seed: 4), 2.0 / Double(fanIn), false, 2 * (2.0 / Double(fanIn)).squareRoot() / 0.87962566103423978),
                (LecunUniform(seed: 5), 1.0 / Double(fanIn), true, (3.0 / Double(fanIn)).squareRoot()),
                (LecunNormal(seed: 6), 1.0 / Double(fanIn), false, 2 * (1.0 / Double(fanIn)).squareRoot() / 0.87962566103423978),
                (try VarianceScaling(scale: 3, mode: .fanOut, distribution: .untruncatedNormal, seed: 7), 3.0 / Double(fanOut), false, nil),
            ]
            for (initializer, variance, uniform, bound) in cases {
                let t = initializer(shape: shape)
                #expect(t.shape == shape)
                let (m, v) = Self.moments(t)
                // Five standard errors of the mean and of the variance.
                #expect(abs(m) < 5 * (variance / n).squareRoot(), "\(initializer.serialized) mean \(m)")
                #expect(abs(v / variance - 1) < 5 * (2 / n).squareRoot() + (uniform ? 0.001 : 0), "\(initializer.serialized) variance \(v) vs \(variance)")
                if let bound {
                    let maxAbs = t.scalars.map { abs(Double($0)) }.max()!
                    #expect(maxAbs <= bound * (1 + 1e-6), "\(initializer.serialized) bound")
                    if !uniform { #expect(maxAbs > 0.9 * bound, "truncation reaches near the bound") }
                }
            }
        }
    }

    @Test func simpleDistributions() {
        let n = 200_000.0
        let u = RandomUniform(minval: -0.3, maxval: 0.7, seed: 1)(shape: [400, 500])
        #expect(u.scalars.allSatisfy { $0 >= -0.3 && $0 < 0.7 })
        let (um, uv) = Self.moments(u)
        #expect(abs(um - 0.2) < 5 * (1.0 / 12 / n).squareRoot() && abs(uv - 1.0 / 12) < 0.002)
        let normal = RandomNormal(mean: 0.5, stddev: 2, seed: 2)(shape: [400, 500])
        let (nm, nv) = Self.moments(normal)
        #expect(abs(nm - 0.5) < 5 * 2 / n.squareRoot() && abs(nv / 4 - 1) < 0.016)
        let truncated = TruncatedNormal(mean: 0, stddev: 0.1, seed: 3)(shape: [400, 500])
        #expect(truncated.scalars.allSatisfy { abs($0) <= 0.2 })
        #expect(abs(Self.moments(truncated).variance / 0.01 - 0.773741) < 0.01)
        #expect(Zeros()(shape: [2, 2]).scalars == [0, 0, 0, 0] && Ones()(shape: [3]).scalars == [1, 1, 1])
        #expect(Constant(value: 2.5)(shape: [2]).scalars == [2.5, 2.5])
        // Unseeded initializers fix their seed at construction: the same values every call.
        let unseeded = RandomNormal()
        #expect(unseeded(shape: [5]).scalars == unseeded(shape: [5]).scalars)
        #expect(RandomNormal()(shape: [5]).scalars != unseeded(shape: [5]).scalars)
    }

    /// A scoped seed sequence gives the same layers whatever other threads draw meanwhile (their
    /// draws come from the process-wide sequence, not the scope's).
    @Test func scopedSeedsIgnoreOtherThreads() throws {
        func drawOnAnotherThread() {
            let done = DispatchSemaphore(value: 0)
            let thread = Thread {
                for _ in 0..<5 { _ = RandomSeeds.next() }
                done.signal()
            }
            thread.start()
            done.wait()
        }
        func kernels(interleaved: Bool) throws -> [[Float]] {
            try RandomSeeds.withSeed(7) {
                try (0..<3).map { _ in
                    if interleaved { drawOnAnotherThread() }
                    let dense = try Dense(units: 4)
                    try dense.buildIfNeeded([[nil, 5]])
                    return dense.weights[0].value.scalars
                }
            }
        }
        let plain = try kernels(interleaved: false)
        #expect(Set(plain.map { $0.map(\.bitPattern) }).count == 3)
        #expect(try kernels(interleaved: true) == plain)
        #expect(try kernels(interleaved: false) == plain)
    }

    @Test func orthogonalAndIdentity() {
        for shape in [[64, 32], [32, 64], [3, 3, 8, 16]] {
            let q = Orthogonal(gain: 1.5, seed: 4)(shape: shape)
            let columns = shape.last!, rows = shape.dropLast().reduce(1, *)
            let m = q.reshaped([rows, columns])
            // QᵀQ = gain² I for tall matrices, QQᵀ = gain² I for wide ones.
            let gram = rows >= columns ? m.matmul(m, transposeA: true) : m.matmul(m, transposeB: true)
            let k = min(rows, columns)
            let expected = IdentityInitializer(gain: 2.25)(shape: [k, k])
            expectClose(gram.scalars, expected.scalars, relative: 1e-4, absolute: 2e-5, "orthogonal \(shape)")
        }
        #expect(IdentityInitializer(gain: 2)(shape: [2, 3]).scalars == [2, 0, 0, 0, 2, 0])
    }
}

/// Arguments Keras refuses fail with the layer and argument named.
@Suite struct BadArgumentTests {
    @Test func refusedWithTheirNames() {
        expectError("argument `units`: must be a positive integer, got 0") { _ = try Dense(units: 0, name: "head") }
        expectError("head") { _ = try Dense(units: -3, name: "head") }
        expectError("argument `rate`: must be in [0, 1), got 1.0") { _ = try Dropout(rate: 1) }
        expectError("argument `rate`") { _ = try Dropout.from(config: ["rate": -0.1]) }
        expectError("argument `rate`") { _ = try SpatialDropout2D.from(config: ["rate": 1.5]) }
        expectError("unknown activation 'relux'") { _ = try Dense.from(config: ["units": 2, "activation": "relux", "name": "d"]) }
        expectError("Dense 'd': argument `activation`") { _ = try Dense.from(config: ["units": 2, "activation": "relux", "name": "d"]) }
        expectError("unknown initializer 'glorot_uniformm'") {
            _ = try Dense.from(config: ["units": 2, "kernel_initializer": "glorot_uniformm"])
        }
        expectError("argument `kernel_regularizer`: unknown regularizer") { _ = try Dense.from(config: ["units": 2, "kernel_regularizer": "l3"]) }
        expectError("argument `dims`: must be a permutation") { _ = try Permute(dims: [1, 1]) }
        expectError("argument `dims`: must be a permutation") { _ = try Permute(dims: [0, 1]) }
        expectError("argument `target_shape`") {
            let r = try Reshape(targetShape: [4, 4], name: "r")
            _ = try r(Tensor.zeros([2, 3, 5]))
        }
        expectError("argument `target_shape`") { _ = try Reshape(targetShape: [-1, -1]) }
        expectError("argument `output_shape`: is needed") {
            let l = Lambda(functionName: "double", name: "twice") { $0 * 2 }
            _ = try l.computeOutputShape([[nil, nil, 3]])
        }
        expectError("argument `sparse`: sparse inputs are not supported") {
            _ = try InputLayer.from(config: ["batch_shape": [nil, 3], "sparse": true])
        }
        expectError("argument `dtype`: only float32") { _ = try Dense.from(config: ["units": 2, "dtype": "float16"]) }
        expectError("argument `mode`") { _ = try initializers.make(["class_name": "VarianceScaling", "config": ["mode": "fan"]], owner: "t", argument: "a") }
        expectError("argument `scale`") { _ = try VarianceScaling(scale: 0) }
        expectError("argument `l1`") { _ = try L1(l1: -1) }
        expectError("argument `n`") { _ = try RepeatVector(n: 0) }
        expectError("expects 1 input, got 2") { _ = try Dense(units: 2)([Tensor.ones([1, 2]), Tensor.ones([1, 2])]) }
        expectError("expects at least 2 inputs") { _ = try Add()([Tensor.ones([1, 2])]) }
        expectError("cannot be merged") { _ = try Add()([Tensor.ones([1, 2]), Tensor.ones([1, 3])]) }
        expectError("argument `function`: holds Python bytecode, which Loom never runs; register a Swift function under the layer's name with Lambda.register(\"bytecode\")") {
            _ = try Lambda.from(config: ["name": "bytecode", "function": ["class_name": "__lambda__", "config": ["code": "xyz"]]])
        }
        expectError("unknown layer 'Densee'; supported: Activation, ActivityRegularization, Add,") {
            _ = try Layer.deserialize(["class_name": "Densee", "config": [:]])
        }
        // Sizes a crafted config gives must not trap a conversion to Int.
        expectError("argument `padding`: expected sizes") {
            _ = try Layer.deserialize(["class_name": "ZeroPadding2D", "config": ["padding": 1e20]])
        }
        expectError("argument `cropping`: expected sizes") {
            _ = try Layer.deserialize(["class_name": "Cropping1D", "config": ["cropping": [1e300, 1]]])
        }
        expectError("bad input_shape") {
            _ = try Layer.deserialize(["class_name": "Dense", "config": ["units": 2], "build_config": ["input_shape": [nil, 1e20]]])
        }
        expectError("argument `kernel_initializer`: the Identity initializer fills 2-D weights only, not shape [3, 3, 2, 4]") {
            let conv = try Layer.deserialize(["class_name": "Conv2D", "config": ["filters": 4, "kernel_size": 3,
                                                                               "kernel_initializer": ["class_name": "Identity", "config": [:]]]])
            _ = try conv(Tensor.ones([1, 5, 5, 2]))
        }
        expectError("index 7.0 is not an integer in 0..<5") {
            let e = try Embedding(inputDim: 5, outputDim: 2)
            _ = try e(Tensor([[1, 7]]))
        }
    }
}
