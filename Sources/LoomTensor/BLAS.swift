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
        set { openblas_set_num_threads(Int32(Swift.max(1, newValue))) }
    }

    /// Sets OpenBLAS to one thread unless the user asked otherwise through OPENBLAS_NUM_THREADS.
    /// Called once, before the first product.
    static let configureOnce: Void = {
        if getenv("OPENBLAS_NUM_THREADS") == nil { openblas_set_num_threads(1) }
    }()

    /// C[M, N] = alpha · op(A) · op(B) + beta · C, row-major; op transposes when asked.
    /// A is [M, K] (or [K, M] transposed), B is [K, N] (or [N, K] transposed).
    @inline(__always)
    static func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                      a: UnsafePointer<Float>, b: UnsafePointer<Float>, beta: Float = 0,
                      c: UnsafeMutablePointer<Float>) {
        _ = configureOnce
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(transposeA ? m : k), b, Int32(transposeB ? k : n),
                    beta, c, Int32(n))
    }
}
