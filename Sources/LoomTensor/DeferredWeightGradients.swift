#if canImport(Glibc)
import Glibc
#endif

/// The kernel gradients of one pass's products x·W, kept as their factors (the input x and the
/// output's gradient g) instead of computed: a data-parallel step computes each kernel's
/// gradient once, over the whole batch, each worker its own rows (the sum over shards of
/// xᵀ·g), where every worker would otherwise make a whole copy to be summed afterwards.
///
/// Written only by the thread running the pass's backward; read after the workers join.
public final class DeferredWeightGradients: @unchecked Sendable {
    /// One product's factors: its input as [rows, in] and its output's gradient as [rows, out].
    public struct Factors: @unchecked Sendable {
        public let input: Tensor
        public let outputGradient: Tensor
    }

    private let wanted: Set<Parameter>
    /// The factors recorded so far, in the order the backward pass reached the products.
    public private(set) var products: [(parameter: Parameter, factors: Factors)] = []

    /// A record for the products whose kernel is one of `parameters`; others are
    /// differentiated as usual.
    public init(for parameters: [Parameter]) { wanted = Set(parameters) }

    func defers(_ parameter: Parameter) -> Bool { wanted.contains(parameter) }

    func record(_ parameter: Parameter, input: Tensor, outputGradient: Tensor) {
        products.append((parameter, Factors(input: input, outputGradient: outputGradient)))
    }

    /// Rows `rows` of the sum of xᵀ·g over `factors` (all of one kernel of shape [in, out]),
    /// written over the same rows of `gradient` (the whole kernel's gradient, row-major).
    /// Products are added in order, each as one sgemm onto the rows so far.
    public static func sumRows(_ rows: Range<Int>, of factors: [Factors], into gradient: UnsafeMutablePointer<Float>) {
        guard let first = factors.first, !rows.isEmpty else { return }
        let inputs = first.input.shape[1], outputs = first.outputGradient.shape[1]
        let c = gradient + rows.lowerBound * outputs
        memset(c, 0, rows.count * outputs * MemoryLayout<Float>.stride)
        for f in factors where f.input.shape[0] > 0 {
            f.input.withUnsafeBufferPointer { x in
                f.outputGradient.withUnsafeBufferPointer { g in
                    // Cᵣ += Xᵣᵀ·G: X's columns `rows` are Xᵀ's rows, read in place (lda = in).
                    BLAS.openBLAS(transposeA: true, transposeB: false, m: rows.count, n: outputs, k: f.input.shape[0],
                                  a: x.baseAddress! + rows.lowerBound, b: g.baseAddress!, c: c, beta: 1, lda: inputs)
                }
            }
        }
    }
}

extension Tensor {
    /// The product with a kernel [in, out] (a Dense layer's x·W, over the last axis of x).
    /// With `deferred` wanting the kernel, its gradient is not computed in the backward pass
    /// but its factors recorded there (see `DeferredWeightGradients`).
    public func matmul(_ kernel: Parameter, deferringTo deferred: DeferredWeightGradients?) -> Tensor {
        let w = kernel.tracked
        guard let deferred, deferred.defers(kernel), rank >= 2, w.rank == 2 else { return matmul(w) }
        let wv = w.detached, needX = requiresGradient
        let out = matmul(wv)
        let x = detached.reshapedRaw([elementCount(shape.dropLast()), shape[rank - 1]])
        return Tensor.record("matmul", out, [self, w]) { g in
            deferred.record(kernel, input: x, outputGradient: g.detached.reshapedRaw([x.shape[0], wv.shape[1]]))
            // dx = g·Wᵀ as `matmul` computes it; the kernel gets no gradient here.
            return [needX ? g.matmul(wv, transposeB: true) : nil, nil]
        }
    }
}
