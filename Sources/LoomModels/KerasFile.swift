import CLoomZlib
import Foundation
import LoomLayers
import LoomTensor
import ZIPFoundation

/// Keras 3 `.keras` archives: a zip holding config.json (the model's config), metadata.json
/// and model.weights.h5 (the weights in Keras's layout).
public enum KerasFile {
    /// The largest config.json read: a model config is kilobytes; this bounds a crafted file.
    static let maximumConfigBytes: Int64 = 64 << 20

    /// Reads a `.keras` archive: the model from its config, with its weights, compiled as its
    /// compile_config says, with the optimizer's state when the file holds it.
    public static func load(_ path: String) throws -> Model {
        func fail(_ message: String) -> WeightsFileError { WeightsFileError(path: path, message: message) }
        try checkReadableFile(path)
        let archive = try openArchive(path)
        guard let configData = try read("config.json", of: archive, path: path) else { throw fail("not a .keras archive: no config.json") }
        guard let weightsEntry = archive["model.weights.h5"] else { throw fail("not a .keras archive: no model.weights.h5") }
        let config: JSONValue
        do {
            config = try JSONValue.parse(configData)
        } catch {
            throw fail("config.json is \(error.message)")
        }
        let model: Model
        do {
            // Every weight is then read from the file (or the load fails), so none is drawn.
            model = try WeightInitialization.leftForLoading { try Model.fromKerasConfig(config) }
            if case let .object(top) = config, let compileConfig = top["compile_config"] {
                try model.compile(fromKerasConfig: compileConfig)
            }
        } catch {
            throw fail("\(error)")
        }
        // The weights are read from the archive straight into memory (no temporary file).
        do throws(FileReadFailure) {
            try checkFitsInMemory(Int(clamping: weightsEntry.uncompressedSize), "model.weights.h5 is")
        } catch {
            throw fail(error.reason)
        }
        // Into memory Loom owns, which the model's weights then share (no copy, no temporary
        // file). The entry's size is checked as it is read: what the archive claims is not proof.
        let size = Int(clamping: weightsEntry.uncompressedSize)
        let weights = OwnedBytes(count: size)
        var filled = 0
        do {
            // The checksum is zlib's, below: ZIPFoundation's own took a third of loading ResNet50.
            _ = try archive.extract(weightsEntry, bufferSize: 1 << 20, skipCRC32: true) { chunk in
                guard chunk.count <= size - filled else { throw fail("model.weights.h5 holds more than the \(size) bytes the archive says") }
                chunk.copyBytes(to: (weights.base + filled).assumingMemoryBound(to: UInt8.self), count: chunk.count)
                filled += chunk.count
            }
        } catch let error as WeightsFileError {
            throw error
        } catch {
            throw fail("model.weights.h5 cannot be read: \(error)")
        }
        guard filled == size else { throw fail("model.weights.h5 holds \(filled) bytes, not the \(size) the archive says") }
        var checksum: uLong = 0
        for start in stride(from: 0, to: size, by: 1 << 30) {
            checksum = CLoomZlib.crc32(checksum, weights.base.assumingMemoryBound(to: UInt8.self) + start, uInt(Swift.min(1 << 30, size - start)))
        }
        guard UInt32(truncatingIfNeeded: checksum) == weightsEntry.checksum else {
            throw fail("model.weights.h5 is damaged: its CRC-32 does not match the archive's")
        }
        do {
            try model.loadWeights(try HDF5Reader(owned: weights, path: path))
        } catch let error as WeightsFileError {
            throw fail("model.weights.h5: \(error.message)")
        }
        return model
    }

    /// Writes `model` as a `.keras` archive Keras 3's `keras.saving.load_model` opens. The file
    /// is written beside `path` and renamed into place. `extraEntries` are added to the archive
    /// as they are (Keras ignores files it does not know; a checkpoint keeps its state there).
    public static func save(_ model: Model, to path: String, kerasVersion: String = "3.15.1",
                            extraEntries: [(name: String, data: Data)] = []) throws {
        func fail(_ message: String) -> WeightsFileError { WeightsFileError(path: path, message: message) }
        guard path.hasSuffix(".keras") else { throw fail("the file name must end in .keras, as Keras requires") }
        do throws(FileWriteFailure) { try checkReplaceable(path) } catch { throw fail(error.reason) }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("loom-save-\(getpid())-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let weights = folder.appendingPathComponent("model.weights.h5")
        try model.saveWeights(weights.path)
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd@HH:mm:ss"
        let metadata: JSONValue = ["keras_version": .string(kerasVersion), "date_saved": .string(formatter.string(from: Date()))]
        let temporary = path + ".partial-\(getpid())"
        try? FileManager.default.removeItem(atPath: temporary)
        do {
            let archive = try Archive(url: URL(fileURLWithPath: temporary), accessMode: .create)
            for (name, data) in [("metadata.json", Data(metadata.description.utf8)),
                                 ("config.json", Data(model.serialized.description.utf8))] + extraEntries {
                try archive.addEntry(with: name, type: .file, uncompressedSize: Int64(data.count), compressionMethod: .none) {
                    position, size in data.subdata(in: Int(position)..<(Int(position) + size))
                }
            }
            try archive.addEntry(with: "model.weights.h5", fileURL: weights, compressionMethod: .none)
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw fail("cannot write the archive: \(describeFileError(error))")
        }
        do throws(FileWriteFailure) { try moveIntoPlace(temporary, path) } catch { throw fail(error.reason) }
    }
}

extension KerasFile {
    /// The bytes of one entry of a `.keras` archive (nil when it has none by that name), at
    /// most `maximumConfigBytes`.
    public static func entry(_ name: String, of path: String) throws -> Data? {
        try checkReadableFile(path)
        return try read(name, of: try openArchive(path), path: path)
    }

    /// Throws unless `path` is a regular file this process can read: a folder or a device would
    /// otherwise be read as an endless or empty archive.
    static func checkReadableFile(_ path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw WeightsFileError(path: path, message: errno == ENOENT ? "no such file" : String(cString: strerror(errno)))
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw WeightsFileError(path: path, message: "is a folder, not a .keras file")
        default: throw WeightsFileError(path: path, message: "is not a regular file, so not a .keras file")
        }
        guard access(path, R_OK) == 0 else { throw WeightsFileError(path: path, message: "cannot be read: \(String(cString: strerror(errno)))") }
    }

    /// The archive at `path`, or an error naming the file.
    private static func openArchive(_ path: String) throws -> Archive {
        // A zip ends with its end-of-central-directory record (22 bytes and a comment of at most
        // 65,535). Looked for here first: ZIPFoundation scans the whole of a file that has none,
        // which for a 100 GB non-zip took minutes with no message.
        let tail: Data
        do throws(FileReadFailure) {
            let file = try ReadableFile(path)
            tail = try file.bytes(at: max(0, file.size - 65_557), count: min(file.size, 65_557))
        } catch {
            throw WeightsFileError(path: path, message: error.reason)
        }
        let hasEnd = tail.count >= 22 && tail.withUnsafeBytes { raw in
            (0...(raw.count - 22)).contains { i in raw[i] == 0x50 && raw[i + 1] == 0x4B && raw[i + 2] == 5 && raw[i + 3] == 6 }
        }
        guard hasEnd else { throw WeightsFileError(path: path, message: "not a .keras archive (not a zip file: it has no end-of-archive record)") }
        do {
            return try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
        } catch {
            throw WeightsFileError(path: path, message: "not a .keras archive (not a readable zip file)")
        }
    }

    /// The bytes of the entry `name` (nil when there is none), refusing one larger than a
    /// config can be before reading it.
    private static func read(_ name: String, of archive: Archive, path: String) throws -> Data? {
        func fail(_ message: String) -> WeightsFileError { WeightsFileError(path: path, message: message) }
        guard let found = archive[name] else { return nil }
        guard found.uncompressedSize <= maximumConfigBytes else {
            throw fail("\(name) is \(found.uncompressedSize) bytes, more than a model config can be")
        }
        var data = Data()
        do {
            _ = try archive.extract(found, skipCRC32: false) { data.append($0) }
        } catch {
            throw fail("\(name) cannot be read: \(error)")
        }
        return data
    }
}

extension Model {
    /// Writes the model as a Keras 3 `.keras` file (see `KerasFile.save`).
    public func save(_ path: String) throws { try KerasFile.save(self, to: path) }
}
