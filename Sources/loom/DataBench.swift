import ArgumentParser
import Foundation
import LoomData

extension Bench {
    /// `loom bench csv FILE`: rows/s parsing a numeric CSV with a header into float32.
    struct CSVParse: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "csv", abstract: "Parse a numeric CSV with a header into float32 and report rows/s.")

        @Argument(help: "The CSV file (gzip-compressed files too).") var file: String
        @Option(help: "Threads parsing parts of the file.") var workers = 1
        @Option(help: "Times the file is parsed; the fastest counts.") var repeats = 3
        @Flag(help: "One JSON object.") var json = false

        func validate() throws {
            guard workers >= 1 else { throw ValidationError("--workers must be at least 1, got \(workers)") }
            guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1, got \(repeats)") }
        }

        func run() throws {
            try reporting("loom bench csv") {
                let (best, table) = try fastest(of: repeats) { try CSV.read([file], options: CSVOptions(workers: workers)) }
                let rows = table.rowCount, columns = table.featureNames.count
                printThroughput(json: json, unit: "rows", count: rows, seconds: best, workers: workers,
                                fields: ["columns": columns], what: "\(rows) rows x \(columns) columns")
            }
        }
    }
}

extension Bench {
    /// `loom bench decode DIR`: images/s decoding (and resizing) every image under DIR.
    struct Decode: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decode every PNG and JPEG under a folder through the pipeline and report images/s.")

        @Argument(help: "The folder, searched recursively.") var folder: String
        @Option(help: "Decoding threads.") var workers = 1
        @Option(help: "Resize every image to HxW (bilinear), e.g. 224x224.") var resize: String?
        @Option(help: "Times the folder is decoded; the fastest counts.") var repeats = 1
        @Option(help: "Images in flight across the workers (default 64 per worker).") var window: Int?
        @Flag(help: "One JSON object.") var json = false

        func validate() throws {
            guard workers >= 1 else { throw ValidationError("--workers must be at least 1, got \(workers)") }
            guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1, got \(repeats)") }
            if let window, window < 1 { throw ValidationError("--window must be at least 1, got \(window)") }
            if let resize, parsedSize(resize) == nil { throw ValidationError("--resize must look like 224x224, got \(resize)") }
        }

        func run() throws {
            try reporting("loom bench decode") {
                let files = try ImageFolder.walk(URL(fileURLWithPath: folder))
                guard !files.isEmpty else { throw DataFileError(path: folder, message: "no PNG or JPEG images") }
                let target = resize.flatMap(parsedSize)
                let images = Dataset.from(files).map(workers: workers, window: window) { path, _ -> Int in
                    let data = try readDataFile(path)
                    let image = try ImageDecoder.decode(data, path: path, channels: 0, target: target)
                    guard let (h, w) = target else { return image.pixels.count }
                    return ImageTransform.resize(image.tensor, height: h, width: w).count
                }
                let (best, pixels) = try fastest(of: repeats) { try images.collect().reduce(0, +) }
                printThroughput(json: json, unit: "images", count: files.count, seconds: best, workers: workers,
                                fields: ["values": pixels], what: "\(files.count) images")
            }
        }
    }
}

extension Bench {
    /// `loom bench pipeline DIR`: a whole image-folder pipeline (decode, resize, shuffle buffer,
    /// batch, prefetch), its images/s and the process's peak RSS.
    struct Pipeline: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run an image folder through decode, shuffle, batch and prefetch; report images/s and peak RSS.")

        @Argument(help: "A folder with one subfolder per class.") var folder: String
        @Option(help: "Decoding threads.") var workers = 1
        @Option(name: .customLong("shuffle-buffer"), help: "Decoded samples held for shuffling.") var shuffleBuffer = 10_000
        @Option(name: .customLong("batch-size"), help: "Samples per batch.") var batchSize = 128
        @Option(name: .customLong("image-size"), help: "HxW every image is resized to.") var imageSize = "28x28"
        @Option(name: .customLong("color-mode"), help: "grayscale, rgb or rgba.") var colorMode = "grayscale"
        @Flag(help: "One JSON object.") var json = false

        func run() throws {
            try reporting("loom bench pipeline") {
                guard let (height, width) = parsedSize(imageSize) else { throw ValidationError("--image-size must look like 28x28") }
                guard let mode = ColorMode(rawValue: colorMode) else { throw ValidationError("--color-mode must be grayscale, rgb or rgba") }
                let options = ImageFolderOptions(colorMode: mode, imageSize: (height, width))
                let images = try ImageFolder(directory: folder, options: options)
                let batches = images.dataset(workers: workers).shuffle(bufferSize: shuffleBuffer, seed: 1).batch(batchSize).prefetch(2)
                let start = ContinuousClock.now
                var count = 0
                let cursor = try batches.makeIterator()
                while let batch = try cursor.next() { count += batch.inputs[0].shape[0] }
                let seconds = (ContinuousClock.now - start).seconds
                let sampleBytes = height * width * (mode == .grayscale ? 1 : mode == .rgb ? 3 : 4) * 4
                let bufferMiB = Double(shuffleBuffer * sampleBytes) / 1_048_576
                let rss = peakResidentMiB()
                if json {
                    print(#"{"images_per_s": \#(Int(Double(count) / seconds)), "images": \#(count), "peak_rss_mib": \#(rss), "shuffle_buffer_mib": \#(bufferMiB), "workers": \#(workers)}"#)
                } else {
                    print("\(count) images in \(String(format: "%.2f", seconds)) s (\(Int(Double(count) / seconds)) images/s), peak RSS "
                          + String(format: "%.1f MiB; the shuffle buffer holds %.1f MiB", rss, bufferMiB))
                }
            }
        }
    }
}

/// "HxW" as (height, width), both positive.
func parsedSize(_ text: String) -> (Int, Int)? {
    let parts = text.split(separator: "x").compactMap { Int($0) }
    guard parts.count == 2, parts.allSatisfy({ $0 > 0 }) else { return nil }
    return (parts[0], parts[1])
}

/// A throughput: one JSON object ({"<unit>_per_s", "<unit>", fields, "workers", "seconds"}) or
/// one line of text.
func printThroughput(json: Bool, unit: String, count: Int, seconds: Double, workers: Int, fields: [String: Int], what: String) {
    let rate = Int(Double(count) / seconds)
    if json {
        let extra = fields.keys.sorted().map { #", "\#($0)": \#(fields[$0]!)"# }.joined()
        print(#"{"\#(unit)_per_s": \#(rate), "\#(unit)": \#(count)\#(extra), "workers": \#(workers), "seconds": \#(seconds)}"#)
    } else {
        print("\(what) in \(String(format: "%.3f", seconds)) s with \(workers) worker(s): \(rate) \(unit)/s")
    }
}

/// The fastest of `repeats` runs of `body`, in seconds, with its result.
func fastest<T>(of repeats: Int, _ body: () throws -> T) throws -> (Double, T) {
    var best = Double.infinity
    var result: T? = nil
    for _ in 0..<max(1, repeats) {
        let start = ContinuousClock.now
        result = try body()
        best = min(best, (ContinuousClock.now - start).seconds)
    }
    return (best, result!)
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
