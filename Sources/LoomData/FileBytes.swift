import CLoomZlib
import Foundation
import LoomTensor

/// The file's bytes, gunzipped when it starts with the gzip magic number.
func readFileMaybeGzip(_ path: String) throws(DataFileError) -> [UInt8] {
    guard let file = gzopen(path, "rb") else {
        let reason = FileManager.default.fileExists(atPath: path) ? "cannot be opened" : "no such file"
        throw DataFileError(path: path, message: reason)
    }
    defer { gzclose(file) }
    var result: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    var budget = GrowingRead(what: "unpacks to at least")
    while true {
        let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
        if n < 0 {
            var code: Int32 = 0
            let message = gzerror(file, &code).map { String(cString: $0) } ?? "read error"
            throw DataFileError(path: path, message: "corrupt or truncated: \(message)")
        }
        if n == 0 { break }
        result.append(contentsOf: chunk[0..<Int(n)])
        // A small file can unpack to any size (a gzip bomb).
        do throws(FileReadFailure) {
            try budget.grew(to: result.count)
        } catch {
            throw DataFileError(path: path, error)
        }
    }
    // zlib reports a stream that stops before its end (cut mid-stream, or its CRC and size
    // trailer missing) only through the error state, and returns what it had.
    var code: Int32 = 0
    _ = gzerror(file, &code)
    if code == Z_BUF_ERROR {
        throw DataFileError(path: path, message: "truncated: the gzip stream ends before its end marker and checksum")
    }
    return result
}

/// Runs `body` on a text file's bytes, read into memory (see `ReadableFile` for why not
/// mapped), gunzipped when the file starts with the gzip magic number. A NUL byte in the first
/// 64 KiB refuses it as not text, as Python's csv module does, before the rest is read: a
/// binary file or a UTF-16 export would otherwise be parsed as one endless header line.
func withTextFileBytes<T>(_ path: String, _ body: (UnsafeBufferPointer<UInt8>) throws -> T) throws -> T {
    let data: Data
    do {
        let file = try ReadableFile(path, acceptingPipes: true)
        let head = try file.bytes(at: 0, count: textCheckLength)
        if head.starts(with: [0x1F, 0x8B]) {
            // zlib's gzread reads from a path, which for a pipe would wait for a second writer.
            guard !file.isPipe else { throw DataFileError(path: path, message: "is gzip-compressed and a pipe: give the .gz file itself, which Loom unpacks") }
            let bytes = try readFileMaybeGzip(path)
            try checkIsText(bytes.prefix(textCheckLength), path: path)
            return try bytes.withUnsafeBufferPointer(body)
        }
        try checkIsText(head, path: path)
        data = try file.contents()
    } catch let failure as FileReadFailure {
        throw DataFileError(path: path, failure)
    }
    return try data.withUnsafeBytes { try body($0.bindMemory(to: UInt8.self)) }
}

/// How much of a text file is looked at for NUL bytes before it is read.
private let textCheckLength = 64 << 10

/// Refuses `head` (a file's first bytes) when it holds a NUL byte, naming its line.
private func checkIsText(_ head: some Collection<UInt8>, path: String) throws(DataFileError) {
    guard let at = head.firstIndex(of: 0) else { return }
    let line = 1 + head[..<at].reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
    throw DataFileError(path: "\(path):\(line)", message: "holds a NUL byte (byte \(head.distance(from: head.startIndex, to: at))), so it is not a text file: a binary file, or UTF-16 text (save it as UTF-8)")
}

/// A whole data file's bytes, or an error naming it.
public func readDataFile(_ path: String) throws(DataFileError) -> Data {
    do throws(FileReadFailure) {
        return try readWholeFile(path)
    } catch {
        throw DataFileError(path: path, error)
    }
}

extension DataFileError {
    /// The error naming `path` for a failure to read it.
    init(path: String, _ failure: FileReadFailure) { self.init(path: path, message: failure.reason) }
}
