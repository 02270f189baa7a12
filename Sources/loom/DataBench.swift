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
                var best = Double.infinity
                var table: CSVTable? = nil
                for _ in 0..<repeats {
                    let start = ContinuousClock.now
                    table = try CSV.read([file], options: CSVOptions(workers: workers))
                    best = min(best, (ContinuousClock.now - start).seconds)
                }
                let rows = table!.rowCount, columns = table!.featureNames.count
                let rate = Double(rows) / best
                if json {
                    print(#"{"rows_per_s": \#(Int(rate)), "rows": \#(rows), "columns": \#(columns), "workers": \#(workers), "seconds": \#(best)}"#)
                } else {
                    print("\(rows) rows x \(columns) columns in \(String(format: "%.3f", best)) s with \(workers) worker(s): \(Int(rate)) rows/s")
                }
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
        @Flag(help: "One JSON object.") var json = false

        func validate() throws {
            guard workers >= 1 else { throw ValidationError("--workers must be at least 1, got \(workers)") }
            guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1, got \(repeats)") }
            if let resize, size(resize) == nil { throw ValidationError("--resize must look like 224x224, got \(resize)") }
        }

        func size(_ text: String) -> (Int, Int)? {
            let parts = text.split(separator: "x").compactMap { Int($0) }
            guard parts.count == 2, parts.allSatisfy({ $0 > 0 }) else { return nil }
            return (parts[0], parts[1])
        }

        func run() throws {
            try reporting("loom bench decode") {
                let files = try ImageFolder.walk(URL(fileURLWithPath: folder))
                guard !files.isEmpty else { throw DataFileError(path: folder, message: "no PNG or JPEG images") }
                let target = resize.flatMap(size)
                let images = Dataset.from(files).map(workers: workers) { path, _ -> Int in
                    let data = try Data(contentsOf: URL(fileURLWithPath: path))
                    let image = try ImageDecoder.decode(data, path: path, channels: channelsOf(data), target: target)
                    guard let (h, w) = target else { return image.pixels.count }
                    return ImageTransform.resize(image.tensor, height: h, width: w).count
                }
                var best = Double.infinity
                var pixels = 0
                for _ in 0..<repeats {
                    let start = ContinuousClock.now
                    pixels = try images.collect().reduce(0, +)
                    best = min(best, (ContinuousClock.now - start).seconds)
                }
                let rate = Double(files.count) / best
                if json {
                    print(#"{"images_per_s": \#(Int(rate)), "images": \#(files.count), "values": \#(pixels), "workers": \#(workers), "seconds": \#(best)}"#)
                } else {
                    print("\(files.count) images in \(String(format: "%.3f", best)) s with \(workers) worker(s): \(Int(rate)) images/s")
                }
            }
        }
    }
}

/// The channel count to decode a file to: its own (gray stays gray, color is RGB).
func channelsOf(_ data: Data) -> Int {
    // PNG color type at byte 25: 0 gray, 4 gray+alpha, else color; JPEG gray or color is
    // decided by the decoder (3 asks for RGB, which gray files also give).
    if data.starts(with: [0x89, 0x50, 0x4E, 0x47]), data.count > 25 { return data[25] == 0 || data[25] == 4 ? 1 : 3 }
    return 3
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
