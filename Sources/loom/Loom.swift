import ArgumentParser

/// The `loom` command line: parses, calls the libraries, reports.
@main
struct Loom: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loom",
        abstract: "Keras-compatible layer engine and batch trainer.",
        subcommands: [Predict.self, Fit.self, Evaluate.self, Summary.self, Bench.self, Demo.self]
    )
}
