/// sgemm kernels for products with a short inner or output axis, where OpenBLAS (0.3.21)
/// spends more time packing panels than multiplying: the last layer of a classifier (N = 10)
/// and its backward product (K = 10). `BLAS.sgemm` picks them by shape; measured by
/// `loom bench gemm` and `benchmarks/gemm_vs_numpy.sh`.
enum SmallGEMM {
    /// Largest short axis these kernels take.
    static let maximumShortAxis = 16

    /// C[M, N] = A[M, K] · B[K, N] for K <= 16, as K rank-1 updates held in registers:
    /// blocks of 4 rows × 16 columns accumulate over k in eight vector registers.
    /// `a(i, k)` is read through strides so a transposed A needs no copy; B is row-major [K, N].
    static func shortInner(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, rowStrideA: Int, columnStrideA: Int,
                           b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
        var i = 0
        while i < m {
            let rows = min(4, m - i)
            var j = 0
            while j + 16 <= n {
                var acc = (Vec(), Vec(), Vec(), Vec(), Vec(), Vec(), Vec(), Vec())
                for p in 0..<k {
                    let b0 = load(b + p * n + j), b1 = load(b + p * n + j + 8)
                    let base = a + p * columnStrideA + i * rowStrideA
                    let a0 = Vec(repeating: base[0])
                    acc.0 = acc.0.addingProduct(a0, b0); acc.1 = acc.1.addingProduct(a0, b1)
                    if rows > 1 {
                        let a1 = Vec(repeating: base[rowStrideA])
                        acc.2 = acc.2.addingProduct(a1, b0); acc.3 = acc.3.addingProduct(a1, b1)
                    }
                    if rows > 2 {
                        let a2 = Vec(repeating: base[2 * rowStrideA])
                        acc.4 = acc.4.addingProduct(a2, b0); acc.5 = acc.5.addingProduct(a2, b1)
                    }
                    if rows > 3 {
                        let a3 = Vec(repeating: base[3 * rowStrideA])
                        acc.6 = acc.6.addingProduct(a3, b0); acc.7 = acc.7.addingProduct(a3, b1)
                    }
                }
                let out = c + i * n + j
                store(acc.0, out); store(acc.1, out + 8)
                if rows > 1 { store(acc.2, out + n); store(acc.3, out + n + 8) }
                if rows > 2 { store(acc.4, out + 2 * n); store(acc.5, out + 2 * n + 8) }
                if rows > 3 { store(acc.6, out + 3 * n); store(acc.7, out + 3 * n + 8) }
                j += 16
            }
            // Remaining columns, eight (or fewer) at a time.
            while j < n {
                let width = min(8, n - j)
                for r in 0..<rows {
                    var acc = Vec()
                    for p in 0..<k {
                        let av = Vec(repeating: a[p * columnStrideA + (i + r) * rowStrideA])
                        acc = acc.addingProduct(av, loadPartial(b + p * n + j, width))
                    }
                    storePartial(acc, c + (i + r) * n + j, width)
                }
                j += width
            }
            i += rows
        }
    }

    /// C[M, N] = A[M, K] · Bᵀ for N <= 16, B given as [N, K] row-major: dot products along K,
    /// blocks of 2 rows × 4 columns in eight vector accumulators, reduced across lanes at the end.
    static func shortOutput(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, bt: UnsafePointer<Float>,
                            c: UnsafeMutablePointer<Float>) {
        let tail = k % 8, body = k - tail
        var i = 0
        while i < m {
            let rows = min(2, m - i)
            let a0 = a + i * k, a1 = a + (i + rows - 1) * k
            var j = 0
            while j < n {
                let cols = min(4, n - j)
                // Columns past n re-read the last column; their results are not stored.
                let b0 = bt + j * k, b1 = bt + min(j + 1, n - 1) * k
                let b2 = bt + min(j + 2, n - 1) * k, b3 = bt + min(j + 3, n - 1) * k
                var acc = (Vec(), Vec(), Vec(), Vec(), Vec(), Vec(), Vec(), Vec())
                var p = 0
                while p < body {
                    let x0 = load(a0 + p), x1 = load(a1 + p)
                    let y0 = load(b0 + p), y1 = load(b1 + p), y2 = load(b2 + p), y3 = load(b3 + p)
                    acc.0 = acc.0.addingProduct(x0, y0); acc.1 = acc.1.addingProduct(x0, y1)
                    acc.2 = acc.2.addingProduct(x0, y2); acc.3 = acc.3.addingProduct(x0, y3)
                    acc.4 = acc.4.addingProduct(x1, y0); acc.5 = acc.5.addingProduct(x1, y1)
                    acc.6 = acc.6.addingProduct(x1, y2); acc.7 = acc.7.addingProduct(x1, y3)
                    p += 8
                }
                if tail > 0 {
                    let x0 = loadPartial(a0 + p, tail), x1 = loadPartial(a1 + p, tail)
                    let y0 = loadPartial(b0 + p, tail), y1 = loadPartial(b1 + p, tail)
                    let y2 = loadPartial(b2 + p, tail), y3 = loadPartial(b3 + p, tail)
                    acc.0 = acc.0.addingProduct(x0, y0); acc.1 = acc.1.addingProduct(x0, y1)
                    acc.2 = acc.2.addingProduct(x0, y2); acc.3 = acc.3.addingProduct(x0, y3)
                    acc.4 = acc.4.addingProduct(x1, y0); acc.5 = acc.5.addingProduct(x1, y1)
                    acc.6 = acc.6.addingProduct(x1, y2); acc.7 = acc.7.addingProduct(x1, y3)
                }
                let first = SIMD4(acc.0.sum(), acc.1.sum(), acc.2.sum(), acc.3.sum())
                let second = SIMD4(acc.4.sum(), acc.5.sum(), acc.6.sum(), acc.7.sum())
                for q in 0..<cols {
                    c[i * n + j + q] = first[q]
                    if rows > 1 { c[(i + 1) * n + j + q] = second[q] }
                }
                j += cols
            }
            i += rows
        }
    }
}
