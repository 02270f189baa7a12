import Foundation
import LoomTensor

extension Dataset where Element == Sample {
    /// The first pass's samples written to `path` and read back from it in later epochs, and by
    /// later runs (tf.data's cache(filename)): decoding happens once, memory stays flat. The
    /// file is written beside `path` and renamed into place when the pass completes, so an
    /// interrupted pass leaves no half cache behind.
    public func cache(file path: String) -> Dataset {
        Dataset(count: count) { epoch in
            if FileManager.default.fileExists(atPath: path) { return try SampleFileReader.cursor(path) }
            let upstream = try self.make(epoch)
            let writer = try SampleFileWriter(path: path)
            return Cursor({
                if let sample = try upstream.next() {
                    try writer.append(sample)
                    return sample
                }
                try writer.finish()
                return nil
            }, stop: {
                upstream.close()
                writer.abandon()
            })
        }
    }
}

private let cacheMagic = Array("LOOMCACHE1\n".utf8)

/// Samples appended to a temporary file: per sample the counts of inputs, targets and weights,
/// then each tensor as its rank, its sizes (Int64) and its float32 values.
final class SampleFileWriter {
    private let path: String, temporary: String
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var done = false

    init(path: String) throws {
        self.path = path
        temporary = path + ".partial-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(cacheMagic)),
              let handle = FileHandle(forWritingAtPath: temporary) else {
            throw DataFileError(path: path, message: "cannot write the cache file")
        }
        self.handle = handle
        handle.seekToEndOfFile()
    }

    func append(_ sample: Sample) throws {
        func int(_ v: Int) { withUnsafeBytes(of: Int64(v).littleEndian) { buffer.append(contentsOf: $0) } }
        int(sample.inputs.count)
        int(sample.targets.count)
        int(sample.weight == nil ? 0 : 1)
        for t in sample.inputs + sample.targets + (sample.weight.map { [$0] } ?? []) {
            int(t.rank)
            for d in t.shape { int(d) }
            t.withUnsafeBufferPointer { buffer.append(contentsOf: UnsafeRawBufferPointer($0)) }
        }
        if buffer.count > 1 << 20 { try flush() }
    }

    private func flush() throws {
        do {
            try handle.write(contentsOf: buffer)
        } catch {
            throw DataFileError(path: path, message: "cannot write the cache file: \(describeFileError(error))")
        }
        buffer.removeAll(keepingCapacity: true)
    }

    func finish() throws {
        guard !done else { return }
        try flush()
        try? handle.close()
        done = true
        guard rename(temporary, path) == 0 else {
            throw DataFileError(path: path, message: "cannot move the cache file into place: \(String(cString: strerror(errno)))")
        }
    }

    /// An incomplete pass: its file is removed.
    func abandon() {
        guard !done else { return }
        done = true
        try? handle.close()
        try? FileManager.default.removeItem(atPath: temporary)
    }
}

/// Reading a cache file written by SampleFileWriter.
enum SampleFileReader {
    static func cursor(_ path: String) throws -> Cursor<Sample> {
        let data: Data
        do throws(FileReadFailure) {
            data = try readWholeFile(path)
        } catch {
            throw DataFileError(path: path, message: "cannot read the cache file: \(error.reason)")
        }
        guard data.starts(with: cacheMagic) else { throw DataFileError(path: path, message: "not a Loom cache file") }
        var offset = cacheMagic.count
        func int() throws -> Int {
            guard data.count - offset >= 8 else { throw DataFileError(path: path, message: "truncated cache file") }
            let v = data.withUnsafeBytes { Int64(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: Int64.self)) }
            offset += 8
            guard v >= 0 && v <= Int64(ShapeLimits.maximumElements) else { throw DataFileError(path: path, message: "corrupt cache file") }
            return Int(v)
        }
        func tensor() throws -> Tensor {
            let rank = try int()
            guard rank <= 8 else { throw DataFileError(path: path, message: "corrupt cache file") }
            let shape = try (0..<rank).map { _ in try int() }
            let count = shape.reduce(1) { $0 * $1 }
            guard count <= ShapeLimits.maximumElements, data.count - offset >= count * 4 else {
                throw DataFileError(path: path, message: "truncated cache file")
            }
            var t = Tensor(uninitializedShape: shape)
            t.withUnsafeMutableBufferPointer { out in
                data.withUnsafeBytes { raw in
                    UnsafeMutableRawBufferPointer(out).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + count * 4)]))
                }
            }
            offset += count * 4
            return t
        }
        return Cursor {
            guard offset < data.count else { return nil }
            let (inputs, targets, weights) = (try int(), try int(), try int())
            return Sample(inputs: try (0..<inputs).map { _ in try tensor() }, targets: try (0..<targets).map { _ in try tensor() },
                          weight: weights > 0 ? try tensor() : nil)
        }
    }
}
