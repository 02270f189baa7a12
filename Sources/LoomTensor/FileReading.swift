import Foundation

/// Why a file could not be read, as a user should read it ("no such file", "is a folder").
public struct FileReadFailure: Error, Sendable {
    public let reason: String
}

/// A regular file open for reading, read with `pread` into memory Loom owns.
///
/// Loom reads its inputs rather than memory-mapping them: a mapped file that another process
/// truncates (a `cp` over it, a download restarting) kills the reader with SIGBUS when it
/// touches a page past the new end, where a read simply returns fewer bytes, which the parser
/// then reports as a truncated file.
public final class ReadableFile {
    private let descriptor: Int32
    /// A pipe's whole stream, read at open (a pipe cannot be read at an offset).
    private let stream: Data?
    /// The size when the file was opened.
    public let size: Int
    /// Whether this is a pipe, whose stream was read at open.
    public var isPipe: Bool { stream != nil }

    /// Opens `path`, which must be a readable regular file; with `acceptingPipes`, a named pipe
    /// (or `<(command)`) is also read, to its end, as `cat` would, waiting for its writer (and
    /// saying so on stderr after 2 s).
    /// Folders, devices and (otherwise) pipes are refused at once.
    public init(_ path: String, acceptingPipes: Bool = false) throws(FileReadFailure) {
        func failure(_ code: Int32) -> FileReadFailure {
            FileReadFailure(reason: code == ENOENT ? "no such file" : "cannot be read: \(String(cString: strerror(code)))")
        }
        // One walk of the path for a regular file (open, then fstat of what was opened): for small
        // image files a second walk costs as much as decoding them. O_NONBLOCK keeps the open of
        // a pipe from waiting for a writer before it is known to be wanted.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw failure(errno) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            close(fd)
            throw failure(code)
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG:
            descriptor = fd
            stream = nil
            size = Int(info.st_size)
            return
        case S_IFIFO where acceptingPipes: break
        case S_IFDIR: close(fd); throw FileReadFailure(reason: "is a folder, not a file")
        default: close(fd); throw FileReadFailure(reason: "is not a regular file (a pipe or device), so it cannot be read as one")
        }
        // A pipe read without a writer reads as empty, so wait (as `cat` does) until a writer has
        // written or come and gone, then read blocking to the end. The descriptor stays open
        // throughout: closed and opened again, a writer that wrote and left in between would take
        // its bytes with it and the second open would wait forever.
        // After 2 s with nothing written, one line says what Loom waits for: a batch job that
        // sits silent on a pipe nobody feeds looks hung.
        var waiting = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var ready = poll(&waiting, 1, 2000)
        while ready < 0 && errno == EINTR { ready = poll(&waiting, 1, 2000) }
        if ready == 0 {
            FileHandle.standardError.write(Data("loom: waiting for a writer on the pipe \(oneLine(path))\n".utf8))
            while poll(&waiting, 1, -1) < 0 && errno == EINTR {}
        }
        let contents: Data
        do throws(FileReadFailure) {
            guard fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0 else {
                throw FileReadFailure(reason: "cannot be read: \(String(cString: strerror(errno)))")
            }
            contents = try Self.readStream(fd)
        } catch {
            close(fd)
            throw error
        }
        descriptor = fd
        stream = contents
        size = contents.count
    }

    deinit { close(descriptor) }

    /// A pipe's stream to its end, refused once it outgrows what the machine can give (a
    /// `cat /dev/zero` would otherwise grow until the kernel kills the process).
    private static func readStream(_ fd: Int32) throws(FileReadFailure) -> Data {
        var contents = Data()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var budget = GrowingRead(what: "gave")
        while true {
            let n = chunk.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw FileReadFailure(reason: "cannot be read: \(String(cString: strerror(errno)))") }
            if n == 0 { return contents }
            contents.append(contentsOf: chunk[0..<n])
            try budget.grew(to: contents.count)
        }
    }

    /// Fills `buffer` from byte `offset` on; returns how many bytes were read, fewer than
    /// `buffer.count` only at the end of the file.
    public func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws(FileReadFailure) -> Int {
        guard let base = buffer.baseAddress else { return 0 }
        if let stream {
            let n = max(0, min(buffer.count, stream.count - offset))
            if n > 0 { stream.copyBytes(to: base.assumingMemoryBound(to: UInt8.self), from: offset..<(offset + n)) }
            return n
        }
        var done = 0
        while done < buffer.count {
            let n = pread(descriptor, base + done, buffer.count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw FileReadFailure(reason: "cannot be read: \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Up to `count` bytes from `offset` on (fewer at the end of the file).
    public func bytes(at offset: Int, count: Int) throws(FileReadFailure) -> Data {
        var data = Data(count: max(0, count))
        // withUnsafeMutableBytes rethrows untyped; the result carries the typed error out.
        let filled = data.withUnsafeMutableBytes { buffer in Result { () throws(FileReadFailure) in try read(at: offset, into: buffer) } }
        let n = try filled.get()
        if n < data.count { data.removeSubrange(n...) }
        return data
    }

    /// The whole file as it is now; a file that shrank while being read gives what was there.
    /// One larger than the machine can give is refused before anything is allocated.
    public func contents() throws(FileReadFailure) -> Data {
        try checkFitsInMemory(size, "is")
        return try bytes(at: 0, count: size)
    }
}

/// Reads below this size are not checked against the machine's memory: the check reads /proc
/// and the cgroup's files, which for thousands of small images costs more than the reads.
let bigRead = 64 << 20

/// A read whose size is not known ahead (a pipe, a gzip stream), checked against the machine's
/// memory as it grows: at each 64 MiB mark, not at every chunk, since the check reads /proc.
public struct GrowingRead {
    private let what: String
    private var nextCheck = bigRead

    /// `what` leads the size in the message, as for `checkFitsInMemory`.
    public init(what: String) { self.what = what }

    /// Refuses the read once `count` bytes are more than the machine can give.
    public mutating func grew(to count: Int) throws(FileReadFailure) {
        guard count >= nextCheck else { return }
        try checkFitsInMemory(count, what)
        nextCheck = (count / bigRead + 1) * bigRead
    }
}

/// Refuses to read `bytes` into memory when they are more than the machine can give now
/// (MemAvailable, or the room under the cgroup's limit); `what` leads the size in the message:
/// "is 1.00 TB, more than the 20.31 GB (MemAvailable in /proc/meminfo) this machine can give".
public func checkFitsInMemory(_ bytes: Int, _ what: String) throws(FileReadFailure) {
    guard bytes >= bigRead, let limit = MemoryLimit.machine(), bytes > limit.bytes else { return }
    throw FileReadFailure(reason: "\(what) \(readableBytes(bytes)), more than the \(limit) this machine can give to read it into memory")
}

/// A whole file's bytes, read with one open, fstat, read and close (Foundation's
/// `Data(contentsOf:)` walks the path twice).
public func readWholeFile(_ path: String, acceptingPipes: Bool = false) throws(FileReadFailure) -> Data {
    try ReadableFile(path, acceptingPipes: acceptingPipes).contents()
}
