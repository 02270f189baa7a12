import Foundation

/// What went wrong with a file operation, in the system's words ("No space left on device",
/// "Permission denied"), for Foundation and POSIX errors alike: Foundation's own description
/// of a full disk is `NSCocoaErrorDomain Code=640`, which tells a user nothing.
public func describeFileError(_ error: any Error) -> String {
    let ns = error as NSError
    if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(underlying.code)))
    }
    if ns.domain == NSCocoaErrorDomain {
        switch ns.code {
        case CocoaError.fileWriteOutOfSpace.rawValue: return String(cString: strerror(ENOSPC))
        case CocoaError.fileWriteNoPermission.rawValue, CocoaError.fileReadNoPermission.rawValue: return String(cString: strerror(EACCES))
        case CocoaError.fileNoSuchFile.rawValue, CocoaError.fileReadNoSuchFile.rawValue: return String(cString: strerror(ENOENT))
        case CocoaError.fileWriteVolumeReadOnly.rawValue: return String(cString: strerror(EROFS))
        default: break
        }
    }
    return ns.localizedDescription
}
