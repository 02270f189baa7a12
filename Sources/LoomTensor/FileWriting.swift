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
