import COpenBLAS
#if canImport(Glibc)
import Glibc
#endif

/// OpenBLAS settings. Loom's parallelism is its trainer's workers, so BLAS runs one thread
/// by default; two levels of threads on few cores only fight.
public enum BLAS {
    /// The number of threads OpenBLAS uses for one call.
    public static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set {
            _ = configureOnce  // so the one-thread default cannot override this later
            openblas_set_num_threads(Int32(Swift.max(1, newValue)))
        }
    }

    /// Sets OpenBLAS to one thread unless the user asked otherwise through OPENBLAS_NUM_THREADS.
    /// Called once, before the first product.
    static let configureOnce: Void = {
        if getenv("OPENBLAS_NUM_THREADS") == nil { openblas_set_num_threads(1) }
    }()

    /// C[M, N] = op(A) · op(B), row-major; op transposes when asked. A is [M, K] (or [K, M]
    /// transposed), B is [K, N] (or [N, K] transposed). Short inner or output axes go to
    /// Loom's own kernels, everything else to OpenBLAS.
    /// With `accumulate`, C += op(A) · op(B).
    static func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                      a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>,
                      accumulate: Bool = false) {
        if accumulate {
            openBLAS(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: a, b: b, c: c, beta: 1)
            return
        }
        let short = SmallGEMM.maximumShortAxis
        if k <= short && k > 0 && n >= 8 {
            // B as row-major [K, N]: transposing a short B costs K·N copies against M·N·K FMAs.
            withRowMajor(b, rows: k, columns: n, transposed: transposeB) { bk in
                SmallGEMM.shortInner(m: m, n: n, k: k, a: a, rowStrideA: transposeA ? 1 : k,
                                     columnStrideA: transposeA ? m : 1, b: bk, c: c)
            }
            return
        }
        if n <= short && !transposeA && k >= 8 && m >= 2 {
            withRowMajor(b, rows: n, columns: k, transposed: !transposeB) { bt in
                SmallGEMM.shortOutput(m: m, n: n, k: k, a: a, bt: bt, c: c)
            }
            return
        }
        openBLAS(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: a, b: b, c: c)
    }

    /// The operand as a row-major [rows, columns] matrix: itself, or a transposed copy of the
    /// [columns, rows] matrix it holds.
    @inline(__always)
    private static func withRowMajor(_ p: UnsafePointer<Float>, rows: Int, columns: Int, transposed: Bool,
                                     _ body: (UnsafePointer<Float>) -> Void) {
        guard transposed else { return body(p) }
        let copy = UnsafeMutablePointer<Float>.allocate(capacity: rows * columns)
        defer { copy.deallocate() }
        transpose2D(p, copy, rows: columns, columns: rows)
        body(copy)
    }

    /// C = op(A) · op(B) + beta · C through cblas_sgemm. `lda` is A's row stride when A is a
    /// block of a wider matrix (by default A's own width).
    static func openBLAS(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                         a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, beta: Float = 0,
                         lda: Int? = nil) {
        _ = configureOnce
        var beta = beta
        if beta == 0 {
            // OpenBLAS clears C for beta 0 one scalar store at a time (sgemm_beta), which cost
            // as much as a tenth of an MLP's training step with two workers; memset's vector
            // stores clear it several times faster, and beta 1 skips that pass.
            memset(c, 0, m * n * MemoryLayout<Float>.stride)
            beta = 1
        }
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), 1, a, Int32(lda ?? (transposeA ? m : k)), b, Int32(transposeB ? k : n),
                    beta, c, Int32(n))
    }
}
