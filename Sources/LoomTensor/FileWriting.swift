import Foundation

/// Why a file could not be written, as a user should read it.
public struct FileWriteFailure: Error, Sendable {
    public let reason: String
    public init(reason: String) { self.reason = reason }
}

/// Refuses to replace an existing file this user may not write (read-only, or another
/// user's), as `np.save` or `cp` would: Loom writes a temporary beside it and renames it into
/// place, which the file's own permissions would not stop.
public func checkReplaceable(_ path: String) throws(FileWriteFailure) {
    guard access(path, F_OK) == 0, access(path, W_OK) != 0 else { return }
    throw FileWriteFailure(reason: "cannot write: \(String(cString: strerror(errno))) (the file exists and may not be written, so it is not replaced)")
}

/// Renames the finished `temporary` onto `path`; when that fails, the temporary is removed.
public func moveIntoPlace(_ temporary: String, _ path: String) throws(FileWriteFailure) {
    guard rename(temporary, path) != 0 else { return }
    let reason = String(cString: strerror(errno))
    unlink(temporary)
    throw FileWriteFailure(reason: "cannot move the new file into place: \(reason)")
}

/// Writes `data` to a temporary beside `path` and renames it into place, so `path` never holds
/// half a file; with `flush`, the data is synced to disk before the rename (checkpoints and run
/// records, which must survive a crash). An existing file this user may not write is refused.
public func replaceFile(_ path: String, with data: Data, flush: Bool) throws(FileWriteFailure) {
    try checkReplaceable(path)
    let temporary = path + ".partial-\(getpid())"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw FileWriteFailure(reason: "cannot write: \(String(cString: strerror(errno)))") }
    var failure: Int32 = 0
    data.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                failure = errno
                return
            }
            offset += n
        }
    }
    if failure == 0 && flush && fsync(fd) != 0 { failure = errno }
    if close(fd) != 0 && failure == 0 { failure = errno }
    guard failure == 0 else {
        unlink(temporary)
        throw FileWriteFailure(reason: "cannot write: \(String(cString: strerror(failure)))")
    }
    try moveIntoPlace(temporary, path)
}
