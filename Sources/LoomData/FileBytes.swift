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

/// Runs `body` on the file's bytes: memory-mapped when the file is plain, gunzipped into
/// memory when it starts with the gzip magic number.
func withFileBytes<T>(_ path: String, _ body: (UnsafeBufferPointer<UInt8>) throws -> T) throws -> T {
    guard let handle = FileHandle(forReadingAtPath: path) else {
        let reason = FileManager.default.fileExists(atPath: path) ? "cannot be opened" : "no such file"
        throw DataFileError(path: path, message: reason)
    }
    let magic = (try? handle.read(upToCount: 2)) ?? Data()
    try? handle.close()
    if magic.elementsEqual([0x1F, 0x8B]) {
        let bytes = try readFileMaybeGzip(path)
        return try bytes.withUnsafeBufferPointer(body)
    }
    let data: Data
    do {
        data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
    } catch {
        throw DataFileError(path: path, message: "cannot be read: \(describeFileError(error))")
    }
    return try data.withUnsafeBytes { try body($0.bindMemory(to: UInt8.self)) }
}

/// A whole file's bytes, read with one open, fstat, read and close: Foundation's
/// `Data(contentsOf:)` walks the path twice (a stat, then the open), which for small image
/// files costs as much as decoding them.
public func readWholeFile(_ path: String) throws(DataFileError) -> Data {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
        throw DataFileError(path: path, message: errno == ENOENT ? "no such file" : "cannot be read: \(String(cString: strerror(errno)))")
    }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw DataFileError(path: path, message: "cannot be read: \(String(cString: strerror(errno)))") }
    guard (info.st_mode & S_IFMT) == S_IFREG else { throw DataFileError(path: path, message: "cannot be read: not a regular file") }
    var data = Data(count: Int(info.st_size))
    var failure: Int32 = 0
    let filled = data.withUnsafeMutableBytes { buffer -> Int in
        var done = 0
        while done < buffer.count {
            let n = read(fd, buffer.baseAddress! + done, buffer.count - done)
            if n < 0 && errno == EINTR { continue }
            if n < 0 { failure = errno; break }
            if n == 0 { break }
            done += n
        }
        return done
    }
    if failure != 0 { throw DataFileError(path: path, message: "cannot be read: \(String(cString: strerror(failure)))") }
    // A file that shrank while being read: what was there.
    if filled < data.count { data.removeSubrange(filled...) }
    return data
}
