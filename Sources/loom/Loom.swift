import ArgumentParser
import Foundation
import Glibc

/// The `loom` command line: parses, calls the libraries, reports.
@main
struct Loom: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loom",
        abstract: "Keras-compatible layer engine and batch trainer.",
        subcommands: [Train.self, Prep.self, Predict.self, Fit.self, Evaluate.self, Summary.self, Bench.self, Demo.self]
    )

    static func main() {
        keepFreedMemoryForReuse()
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch {
            // Usage mistakes exit with 2 (ArgumentParser's own code is 64), as the README documents.
            let code = exitCode(for: error)
            if code == .validationFailure {
                // The usage text is several lines, written as ArgumentParser made it.
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Glibc.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// Decoded images and batches are allocated and freed by the thousand each second on several
/// threads. glibc would give each large block back to the kernel on free and fault it in again
/// on the next allocation (with cross-core TLB flushes); keeping freed blocks for reuse made
/// two-worker JPEG decoding 1.35x faster here (4,400 to 6,000 images/s or more).
func keepFreedMemoryForReuse() {
    // mallopt is in <malloc.h>, which Swift's Glibc module leaves out; its option numbers
    // there: M_TRIM_THRESHOLD -1, M_MMAP_THRESHOLD -3.
    typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    guard let symbol = dlsym(nil, "mallopt") else { return }
    let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
    _ = mallopt(-3, 32 << 20)
    _ = mallopt(-1, 32 << 20)
}
