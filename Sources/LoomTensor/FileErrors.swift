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

/// `text` with its control characters written as JSON writes them (`\n`, `\t`, `\u001b`), so a
/// message that quotes a file name holding a line break or a terminal code stays one plain
/// line in a log.
public func oneLine(_ text: String) -> String {
    escapingControls(text, quotes: false)
}

/// `text` with control characters escaped as in JSON; with `quotes`, also `"` and `\`, as a
/// JSON string's contents need.
public func escapingControls(_ text: String, quotes: Bool) -> String {
    func isPlain(_ c: Unicode.Scalar) -> Bool {
        c.properties.generalCategory != .control && !(quotes && (c == "\"" || c == "\\"))
    }
    guard !text.unicodeScalars.allSatisfy(isPlain) else { return text }
    var out = ""
    for scalar in text.unicodeScalars {
        switch scalar {
        case _ where isPlain(scalar): out.unicodeScalars.append(scalar)
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case "\"", "\\": out += "\\" + String(scalar)
        default: out += String(format: "\\u%04x", scalar.value)
        }
    }
    return out
}
