#if canImport(Glibc)
import Glibc
#endif

/// A value behind a pthread mutex, for process-wide state that threads (and tests running in
/// parallel) share: ThreadSanitizer follows a pthread mutex's ordering, not the futex path of
/// Synchronization.Mutex, which it reports as a race.
package final class SystemLock<Value>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var value: Value

    package init(_ value: Value) {
        self.value = value
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    package func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
