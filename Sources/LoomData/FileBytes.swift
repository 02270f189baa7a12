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
    while true {
        let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
        if n < 0 {
            var code: Int32 = 0
            let message = gzerror(file, &code).map { String(cString: $0) } ?? "read error"
            throw DataFileError(path: path, message: "corrupt or truncated: \(message)")
        }
        if n == 0 { break }
        result.append(contentsOf: chunk[0..<Int(n)])
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

/// Runs `body` on the file's bytes, read into memory (see `ReadableFile` for why not mapped),
/// gunzipped when the file starts with the gzip magic number.
func withFileBytes<T>(_ path: String, _ body: (UnsafeBufferPointer<UInt8>) throws -> T) throws -> T {
    let data: Data
    do {
        let file = try ReadableFile(path, acceptingPipes: true)
        if try file.bytes(at: 0, count: 2).elementsEqual([0x1F, 0x8B]) {
            // zlib's gzread reads from a path, which for a pipe would wait for a second writer.
            guard !file.isPipe else { throw DataFileError(path: path, message: "is gzip-compressed and a pipe: give the .gz file itself, which Loom unpacks") }
            let bytes = try readFileMaybeGzip(path)
            return try bytes.withUnsafeBufferPointer(body)
        }
        data = try file.contents()
    } catch let failure as FileReadFailure {
        throw DataFileError(path: path, failure)
    }
    return try data.withUnsafeBytes { try body($0.bindMemory(to: UInt8.self)) }
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
