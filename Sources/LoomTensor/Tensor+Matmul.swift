/// Matrix products through cblas_sgemm: 2-D, and batched over leading axes with broadcasting.
extension Tensor {
    /// The matrix product of the last two axes: [..., M, K] · [..., K, N] -> [..., M, N], the
    /// leading (batch) axes broadcast as in NumPy's matmul. `transposeA` / `transposeB` read an
    /// operand's last two axes swapped without copying it. Rank-1 operands are not promoted.
    public func matmul(_ other: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
        precondition(rank >= 2 && other.rank >= 2, "matmul: operands need rank 2 or more, got \(shape) and \(other.shape)")
        let m = transposeA ? shape[rank - 1] : shape[rank - 2]
        let k = transposeA ? shape[rank - 2] : shape[rank - 1]
        let k2 = transposeB ? other.shape[other.rank - 1] : other.shape[other.rank - 2]
        let n = transposeB ? other.shape[other.rank - 2] : other.shape[other.rank - 1]
        precondition(k == k2, "matmul: inner sizes differ: \(shape)\(transposeA ? "ᵀ" : "") · \(other.shape)\(transposeB ? "ᵀ" : "")")
        let batchA = Array(shape.dropLast(2)), batchB = Array(other.shape.dropLast(2))
        let batch: [Int]
        do { batch = try broadcastShape(batchA, batchB) } catch { preconditionFailure("matmul: batch axes: \(error)") }
        let outShape = batch + [m, n]
        var out = Tensor(uninitializedShape: outShape)
        let batches = elementCount(batch)
        let sizeA = m * k, sizeB = k * n, sizeC = m * n
        withUnsafeBufferPointer { pa in
            other.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { pc in
                    if batchB.allSatisfy({ $0 == 1 }) && !transposeA {
                        // B is shared by every batch: one product with all of A's rows stacked.
                        BLAS.sgemm(transposeA: false, transposeB: transposeB, m: batches * m, n: n, k: k,
                                   a: pa.baseAddress!, b: pb.baseAddress!, c: pc.baseAddress!)
                        return
                    }
                    let stridesA = broadcastStrides(batchA, to: batch), stridesB = broadcastStrides(batchB, to: batch)
                    let batchStrides = contiguousStrides(batch)
                    for i in 0..<batches {
                        var oa = 0, ob = 0, rest = i
                        for axis in 0..<batch.count {
                            let idx = rest / batchStrides[axis]
                            rest %= batchStrides[axis]
                            oa += idx * stridesA[axis]
                            ob += idx * stridesB[axis]
                        }
                        BLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                                   a: pa.baseAddress! + oa * sizeA, b: pb.baseAddress! + ob * sizeB,
                                   c: pc.baseAddress! + i * sizeC)
                    }
                }
            }
        }
        let a = detached, b = other.detached
        let needA = requiresGradient, needB = other.requiresGradient
        return Tensor.record("matmul", out, [self, other]) { g in
            // C = A·B: dA = dC·Bᵀ, dB = Aᵀ·dC, with the transposes folded into the flags,
            // then summed over batch axes that were broadcast.
            var ga: Tensor? = nil, gb: Tensor? = nil
            if needA {
                ga = transposeA ? b.matmul(g, transposeA: transposeB, transposeB: true)
                                : g.matmul(b, transposeB: !transposeB)
                ga = ga!.sumToShape(a.shape)
            }
            if needB {
                gb = transposeB ? g.matmul(a, transposeA: true, transposeB: transposeA)
                                : a.matmul(g, transposeA: !transposeA)
                gb = gb!.sumToShape(b.shape)
            }
            return [ga, gb]
        }
    }
}
