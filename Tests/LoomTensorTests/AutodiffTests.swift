import Dispatch
import Testing
@testable import LoomTensor
import LoomTestSupport

/// A small two-layer network over shared parameters, the graph used by the thread tests.
struct TinyNetwork {
    let w1 = Parameter(name: "w1", value: Tensor.randomNormal([6, 8], stddev: 0.5, generator: RandomGenerator(seed: 81)))
    let b1 = Parameter(name: "b1", value: Tensor.randomNormal([8], stddev: 0.1, generator: RandomGenerator(seed: 82)))
    let w2 = Parameter(name: "w2", value: Tensor.randomNormal([8, 3], stddev: 0.5, generator: RandomGenerator(seed: 83)))
    let unused = Parameter(name: "unused", value: Tensor.ones([2]))
    var parameters: [Parameter] { [w1, b1, w2, unused] }

    /// Mean cross-entropy of softmax(relu(x·w1 + b1)·w2) against one-hot labels.
    func loss(_ x: Tensor, _ labels: Tensor) -> Tensor {
        let h = (x.matmul(w1.tracked) + b1.tracked).tanh()
        let logits = h.matmul(w2.tracked)
        return -(logits.logSoftmax() * labels.oneHot(depth: 3)).sum(axes: [1]).mean()
    }
}

@Suite struct AutodiffTests {
    let x = Tensor.randomNormal([16, 6], generator: RandomGenerator(seed: 84))
    let labels = Tensor((0..<16).map { Float($0 % 3) })

    @Test func parameterGradientsMatchFiniteDifferences() {
        let net = TinyNetwork()
        let g = gradients(of: net.loss(x, labels), wrt: net.parameters)
        #expect(g[net.unused] == nil)
        for p in [net.w1, net.b1, net.w2] {
            let original = p.value
            let analytic = g[p]!.scalars
            for i in Swift.stride(from: 0, to: original.count, by: 5) {
                func lossAt(_ delta: Float) -> Double {
                    var moved = original
                    moved.withUnsafeMutableBufferPointer { $0[i] += delta }
                    p.assign(moved)
                    defer { p.assign(original) }
                    return Double(net.loss(x, labels).scalar)
                }
                let numeric = Float((lossAt(1e-2) - lossAt(-1e-2)) / 2e-2)
                #expect(abs(analytic[i] - numeric) <= 2e-3 + 1e-2 * abs(numeric), "\(p.name)[\(i)]")
            }
        }
    }

    @Test func sharedSubgraphsAccumulate() {
        // y = x·x + x used twice: dy/dx = 2x + 1, and the reused parameter's leaves add up.
        let p = Parameter(name: "p", value: Tensor([3, -2]))
        let a = p.tracked, b = p.tracked
        let y = (a * b + a).sum()
        #expect(gradients(of: y, wrt: [p])[p]!.scalars == [7, -3])
        let v = Tensor([1, 2]).requiringGradient()
        let z = v * v
        let w = (z + z * 3).sum()
        #expect(gradients(of: w, wrt: [v])[0].scalars == [8, 16])
        #expect(!Tensor([1]).exp().requiresGradient)
        #expect(gradients(of: Tensor([1, 2]).sum(), wrt: [p]).values.isEmpty)
    }

    @Test func deepChainsDoNotOverflowTheStack() {
        let p = Parameter(name: "p", value: Tensor([1]))
        var y = p.tracked
        for _ in 0..<20_000 { y = y * 1.0001 }
        let g = gradients(of: y.sum(), wrt: [p])[p]!.scalar
        #expect(abs(g - Float(Foundation_pow(1.0001, 20_000))) < 1e-3 * g)
    }

    /// Forward and backward of the same graph on two threads at once, over shared parameters,
    /// give exactly (bit for bit) the gradients of one thread.
    @Test func twoThreadsGetExactlyTheGradientsOfOne() {
        let net = TinyNetwork()
        let params = [net.w1, net.b1, net.w2]
        let reference = gradients(of: net.loss(x, labels), wrt: params)
        let results = ResultSlots(count: 2, empty: Gradients())
        for _ in 0..<20 {
            DispatchQueue.concurrentPerform(iterations: 2) { worker in
                results.set(worker, gradients(of: net.loss(x, labels), wrt: params))
            }
            for worker in 0..<2 {
                for p in params { #expect(results.get(worker)[p]!.scalars == reference[p]!.scalars, "\(p.name)") }
            }
        }
    }
}

/// Per-thread result slots, behind a pthread lock: ThreadSanitizer does not follow
/// Synchronization.Mutex's futex path and reported the writes as a race.
final class ResultSlots<Value>: @unchecked Sendable {
    // `slots` is read and written only under `lock`.
    private let lock = NSLock()
    private var slots: [Value]
    init(count: Int, empty: Value) { slots = Array(repeating: empty, count: count) }
    func set(_ i: Int, _ value: Value) {
        lock.lock()
        slots[i] = value
        lock.unlock()
    }
    func get(_ i: Int) -> Value {
        lock.lock()
        defer { lock.unlock() }
        return slots[i]
    }
}

import Foundation
private func Foundation_pow(_ a: Double, _ b: Double) -> Double { Foundation.pow(a, b) }
