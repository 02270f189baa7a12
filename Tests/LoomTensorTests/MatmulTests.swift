import Testing
@testable import LoomTensor
import LoomTestSupport

@Suite struct MatmulTests {
    /// C = A · B by the definition, in Double.
    static func naive(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k { s += Double(a[i * k + p]) * Double(b[p * n + j]) }
                c[i * n + j] = Float(s)
            }
        }
        return c
    }

    /// (M, N, K): OpenBLAS shapes, and the short-inner (K <= 16) and short-output (N <= 16)
    /// kernels with every kind of tail.
    @Test(arguments: [(1, 1, 1), (3, 5, 4), (17, 9, 33), (64, 70, 130),
                      (37, 29, 10), (6, 16, 16), (1, 8, 1), (130, 10, 53), (5, 3, 12), (2, 16, 8), (128, 512, 10)])
    func matchesDefinition(_ dims: (Int, Int, Int)) {
        let (m, n, k) = dims
        let a = GradientCheck.input([m, k], seed: 41), b = GradientCheck.input([k, n], seed: 42)
        let expected = Self.naive(a.scalars, b.scalars, m: m, n: n, k: k)
        expectClose(a.matmul(b).scalars, expected, relative: 1e-5, absolute: 1e-5, "plain")
        expectClose(a.transposed().matmul(b, transposeA: true).scalars, expected, relative: 1e-5, absolute: 1e-5, "Aᵀ")
        expectClose(a.matmul(b.transposed(), transposeB: true).scalars, expected, relative: 1e-5, absolute: 1e-5, "Bᵀ")
        expectClose(a.transposed().matmul(b.transposed(), transposeA: true, transposeB: true).scalars, expected,
                    relative: 1e-5, absolute: 1e-5, "AᵀBᵀ")
    }

    @Test func batchedWithBroadcasting() {
        let a = GradientCheck.input([2, 3, 4, 5], seed: 43), b = GradientCheck.input([3, 5, 2], seed: 44)
        let c = a.matmul(b)
        #expect(c.shape == [2, 3, 4, 2])
        for i in 0..<2 {
            for j in 0..<3 {
                let ai = a.slice(lower: [i, j, 0, 0], upper: [i + 1, j + 1, 4, 5]).scalars
                let bj = b.slice(lower: [j, 0, 0], upper: [j + 1, 5, 2]).scalars
                let ci = c.slice(lower: [i, j, 0, 0], upper: [i + 1, j + 1, 4, 2]).scalars
                expectClose(ci, Self.naive(ai, bj, m: 4, n: 2, k: 5), relative: 1e-5, absolute: 1e-5)
            }
        }
        let shared = GradientCheck.input([5, 2], seed: 45)
        let d = a.matmul(shared)
        expectClose(d.reshaped([24, 2]).scalars, Self.naive(a.scalars, shared.scalars, m: 24, n: 2, k: 5),
                    relative: 1e-5, absolute: 1e-5)
    }

    @Test func gradientChecks() {
        let a = GradientCheck.input([3, 4], seed: 46), b = GradientCheck.input([4, 5], seed: 47)
        GradientCheck.check("matmul", [a, b]) { $0[0].matmul($0[1]) }
        GradientCheck.check("matmul Aᵀ", [a.transposed(), b]) { $0[0].matmul($0[1], transposeA: true) }
        GradientCheck.check("matmul Bᵀ", [a, b.transposed()]) { $0[0].matmul($0[1], transposeB: true) }
        GradientCheck.check("matmul AᵀBᵀ", [a.transposed(), b.transposed()]) {
            $0[0].matmul($0[1], transposeA: true, transposeB: true)
        }
        let ba = GradientCheck.input([2, 3, 4], seed: 48), bb = GradientCheck.input([1, 4, 2], seed: 49)
        GradientCheck.check("batched broadcast", [ba, bb]) { $0[0].matmul($0[1]) }
        GradientCheck.check("batched shared B", [ba, GradientCheck.input([4, 2], seed: 50)]) { $0[0].matmul($0[1]) }
        GradientCheck.check("batched Aᵀ", [ba.transposed([0, 2, 1]), GradientCheck.input([2, 4, 2], seed: 51)]) {
            $0[0].matmul($0[1], transposeA: true)
        }
    }
}
