import CLoomZlib
import Foundation
import LoomData
import LoomLayers
import LoomModels
import LoomTensor
import Logging

/// `loom prep`: a dataset preprocessed once into `.npy` shards (or, from IDX, into an image
/// folder), split by ratio and seed, with a manifest of counts, class names, checksums and the
/// statistics inference needs. A rerun with the same inputs and options does nothing.
public struct PrepOptions: Sendable {
    public enum Output: String, Sendable { case npy, pngFolder = "png-folder" }

    public var source: SourceSpec
    public var output: String
    public var format: Output = .npy
    public var validationFraction = 0.0, testFraction = 0.0
    public var seed: UInt64 = 1337
    public var rescale: Float?
    public var standardize = false
    public var oneHot: Int?
    /// Samples per shard.
    public var shardSize = 10_000
    public var workers: Int?
    /// Corrupt images and malformed CSV rows: skipped and listed, or fatal.
    public var onError: ErrorPolicy = .skip
    /// Redo the work even when the manifest says it is done.
    public var force = false

    public init(source: SourceSpec, output: String) {
        self.source = source
        self.output = output
    }
}

/// What a prep run did.
public struct PrepResult: Sendable {
    public var upToDate: Bool
    public var counts: [String: Int]
    public var skipped: [String]
}

public enum Prep {
    static let manifestName = "manifest.json"

    public static func run(_ options: PrepOptions, logger: Logger) throws -> PrepResult {
        guard options.shardSize >= 1 else { throw JobEnded(.usage, "--shard-size must be at least 1") }
        guard options.validationFraction >= 0, options.testFraction >= 0, options.validationFraction + options.testFraction < 1 else {
            throw JobEnded(.usage, "--validation and --test must be in [0, 1) and leave samples for training")
        }
        if options.format == .pngFolder {
            guard case .idx = options.source else { throw JobEnded(.usage, "--png-folder writes image folders from IDX files only") }
            guard options.rescale == nil, !options.standardize, options.oneHot == nil else {
                throw JobEnded(.usage, "--png-folder writes the images as they are: --rescale, --standardize and --one-hot do not apply")
            }
        }
        let out = URL(fileURLWithPath: options.output).standardizedFileURL
        // SIGTERM or SIGINT stops with status 4 and a line saying where, the earlier output as it
        // was: at once while reading (nothing is written yet), at the next shard while writing
        // (the staging folder is removed), and not during the swap, which is two renames.
        let signals = InterruptSignals()
        signals.install()
        defer { signals.uninstall() }
        // Stale staging folders go first: cleaning up may put an interrupted swap's earlier
        // output back in place, which is then what a run that stops before its swap leaves.
        PrepOutput.cleanUp(out) { logger.info("\($0)") }
        let untouched = FileManager.default.fileExists(atPath: out.path) ? "\(out.path) is kept as it was" : "nothing was written to \(out.path)"
        signals.stopAtOnce(while: "reading the inputs", then: untouched)
        let fingerprint = try self.fingerprint(options)
        if !options.force, let (manifest, files) = PrepOutput.manifest(out),
           manifest["fingerprint"]?.isEquivalent(to: fingerprint, relativeTolerance: 0) == true,
           files.allSatisfy({ FileManager.default.fileExists(atPath: out.appendingPathComponent($0).path) }) {
            logger.info("\(out.path) is up to date with its inputs and options; nothing to do (--force redoes it)")
            var counts: [String: Int] = [:]
            if case let .object(c)? = manifest["counts"] { for (k, v) in c { counts[k] = Int(v.numberValue ?? 0) } }
            return PrepResult(upToDate: true, counts: counts, skipped: [])
        }
        try PrepOutput.check(out, inputs: inputRoots(options.source))

        var spec = DataSpec(train: options.source, splitSeed: options.seed)
        (spec.validationFraction, spec.testFraction) = (options.validationFraction, options.testFraction)
        (spec.rescale, spec.standardize, spec.oneHot) = (options.rescale, options.standardize, options.oneHot)
        if case .csv(let paths, var csv) = options.source {
            csv.onError = options.onError
            spec.train = .csv(paths: paths, options: csv)
        }
        let workers = options.workers ?? defaultWorkerCount()
        logger.info("reading \(describe(options.source)) with \(workers) worker(s)")
        let data: JobData
        do {
            data = try JobData.load(spec, workers: workers)
        } catch {
            throw JobEnded(.failed, "\(error)")
        }
        if !data.skipped.isEmpty {
            for s in data.skipped { logger.warning("skipped: \(s)") }
            if options.onError == .fail {
                throw JobEnded(.failed, "\(data.skipped.count) input(s) cannot be read (first: \(data.skipped[0])); nothing was written")
            }
        }

        // Written into a fresh folder beside the output, then swapped in: a failed or killed
        // run leaves the earlier output as it was.
        let fm = FileManager.default
        let staging = PrepOutput.staging(out)
        signals.stopAtOnce(while: nil)
        func stopIfSignalled() throws {
            if let signal = signals.signal { throw JobEnded(.interrupted, "\(InterruptSignals.name(signal)): stopped while writing the shards") }
        }
        try? fm.removeItem(at: staging)
        do {
            try fm.createDirectory(at: staging, withIntermediateDirectories: true)
        } catch {
            throw JobEnded(.failed, "\(staging.path): cannot create: \(describeFileError(error))")
        }
        var files: [JSONValue] = []
        var checksums: [String: JSONValue] = [:]
        var counts: [String: Int] = [:]
        var splits: [String: JSONValue] = [:]
        do {
            for (name, split) in [("train", Optional(data.train)), ("validation", data.validation), ("test", data.test)] {
                guard let split else { continue }
                counts[name] = split.count
                switch options.format {
                case .npy:
                    var shards: [JSONValue] = []
                    let n = split.count
                    for (index, start) in stride(from: 0, to: n, by: options.shardSize).enumerated() {
                        try stopIfSignalled()
                        let end = Swift.min(start + options.shardSize, n)
                        var entry: [String: JSONValue] = ["count": .int(end - start)]
                        for (role, arrays) in [("x", split.x), ("y", split.y)] {
                            for (k, array) in arrays.enumerated() {
                                let file = String(format: "%@-%@%@-%05d.npy", name, role, arrays.count > 1 ? "\(k)" : "", index)
                                let rows = array.slice(lower: [start] + Array(repeating: 0, count: array.rank - 1), upper: [end] + array.shape.dropFirst())
                                let path = staging.appendingPathComponent(file).path
                                try NPY.write(rows, to: path)
                                let crc = try crc32(of: path)
                                files.append(.string(file))
                                checksums[file] = .string(crc)
                                entry[role + (arrays.count > 1 ? "\(k)" : "")] = .string(file)
                            }
                        }
                        shards.append(.object(entry))
                        logger.info("\(name): shard \(index + 1) of \((n + options.shardSize - 1) / options.shardSize) written (\(end) of \(n) samples)")
                    }
                    splits[name] = ["count": .int(n), "shards": .array(shards)]
                case .pngFolder:
                    let written = try writePNGFolder(split, to: staging.appendingPathComponent(name), checksums: &checksums, prefix: name,
                                                  beforeEach: stopIfSignalled)
                    files += written.map { .string($0) }
                    splits[name] = ["count": .int(split.count)]
                    logger.info("\(name): \(split.count) PNG files written")
                }
            }
            var countJSON: [String: JSONValue] = [:]
            for (k, v) in counts { countJSON[k] = .int(v) }
            let manifest: JSONValue = [
                "format": .string(PrepOutput.format), "fingerprint": fingerprint, "counts": .object(countJSON), "splits": .object(splits),
                "files": .array(files), "crc32": .object(checksums), "preprocessing": data.preprocessing.json,
                "skipped": .array(data.skipped.map { .string($0) }),
            ]
            try stopIfSignalled()
            try writeAtomically(Data(prettyJSON(manifest).utf8), to: staging.appendingPathComponent(manifestName).path)
        } catch {
            try? fm.removeItem(at: staging)
            throw JobEnded((error as? JobEnded)?.exit == .interrupted ? .interrupted : .failed, "\((error as? JobEnded)?.message ?? "\(error)"); \(untouched)")
        }
        let old = PrepOutput.replaced(out)
        if fm.fileExists(atPath: out.path) {
            guard rename(out.path, old.path) == 0 else {
                try? fm.removeItem(at: staging)
                throw JobEnded(.failed, "\(out.path): cannot be replaced: \(String(cString: strerror(errno)))")
            }
        }
        guard rename(staging.path, out.path) == 0 else {
            let reason = String(cString: strerror(errno))
            _ = rename(old.path, out.path)
            try? fm.removeItem(at: staging)
            throw JobEnded(.failed, "\(out.path): cannot move the new output into place: \(reason)")
        }
        try? fm.removeItem(at: old)
        return PrepResult(upToDate: false, counts: counts, skipped: data.skipped)
    }

    /// Each image under <folder>/<label>/<index>.png (labels as the class names), as 8-bit PNG;
    /// `beforeEach` may stop the writing.
    static func writePNGFolder(_ split: SplitArrays, to folder: URL, checksums: inout [String: JSONValue], prefix: String,
                               beforeEach: () throws -> Void) throws -> [String] {
        let x = split.x[0], labels = split.y.first?.scalars ?? []
        guard x.rank >= 3 else { throw JobEnded(.usage, "--png-folder needs images ([N, height, width] or [N, height, width, channels]), got \(x.shape)") }
        let (height, width) = (x.shape[1], x.shape[2])
        let channels = x.rank == 4 ? x.shape[3] : 1
        let per = height * width * channels
        var written: [String] = []
        let pixels = x.scalars
        for i in 0..<split.count {
            try beforeEach()
            let label = labels.isEmpty ? "unlabeled" : String(Int(labels[i]))
            let dir = folder.appendingPathComponent(label)
            if i == 0 || !FileManager.default.fileExists(atPath: dir.path) {
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            }
            let bytes = pixels[(i * per)..<((i + 1) * per)].map { UInt8(Swift.max(0, Swift.min(255, $0.rounded()))) }
            let png = try ImageCodec.encodePNG(Image(width: width, height: height, channels: channels, pixels: bytes))
            let relative = "\(prefix)/\(label)/\(String(format: "%05d", i)).png"
            let file = dir.appendingPathComponent(String(format: "%05d.png", i))
            do {
                try png.write(to: file)
            } catch {
                throw JobEnded(.failed, "\(file.path): cannot write: \(describeFileError(error))")
            }
            checksums[relative] = .string(String(format: "%08x", png.withUnsafeBytes { UInt32(truncatingIfNeeded: CLoomZlib.crc32(0, $0.bindMemory(to: UInt8.self).baseAddress, uInt($0.count))) }))
            written.append(relative)
        }
        return written
    }

    /// What the output depends on: each input file's path, size and modification time, and
    /// the options.
    static func fingerprint(_ options: PrepOptions) throws -> JSONValue {
        var paths = inputRoots(options.source)
        if case let .imageFolder(directory, _) = options.source { paths = try ImageFolder.walk(URL(fileURLWithPath: directory)) }
        let inputs: [JSONValue] = try paths.map { path in
            let attributes: [FileAttributeKey: Any]
            do {
                attributes = try FileManager.default.attributesOfItem(atPath: path)
            } catch {
                throw JobEnded(.usage, "\(path): no such file")
            }
            let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
            let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            return [.string(path), .int(size), .double(modified)]
        }
        return ["inputs": .array(inputs), "source": options.source.resolved, "format": .string(options.format.rawValue),
                "validation": .double(options.validationFraction), "test": .double(options.testFraction), "seed": .string(String(options.seed)),
                "rescale": options.rescale.map { .double(Double($0)) } ?? .null, "standardize": .bool(options.standardize),
                "one_hot": options.oneHot.map { .int($0) } ?? .null, "shard_size": .int(options.shardSize),
                "on_error": .string(options.onError.rawValue)]
    }

    /// The files and folders a source reads.
    static func inputRoots(_ source: SourceSpec) -> [String] {
        switch source {
        case let .idx(images, labels): return [images, labels]
        case let .npy(x, y): return x + y
        case let .csv(paths, _): return paths
        case let .imageFolder(directory, _): return [directory]
        case let .timeseries(t): return [t.path]
        }
    }

    static func describe(_ source: SourceSpec) -> String {
        switch source {
        case let .idx(images, _): return images
        default: return inputRoots(source).joined(separator: ", ")
        }
    }

    static func crc32(of path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw JobEnded(.failed, "\(path): cannot be read back") }
        let value = data.withUnsafeBytes { CLoomZlib.crc32(0, $0.bindMemory(to: UInt8.self).baseAddress, uInt($0.count)) }
        return String(format: "%08x", UInt32(truncatingIfNeeded: value))
    }
}
