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

extension Duration {
    /// The duration in seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
