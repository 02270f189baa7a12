import ArgumentParser
import Foundation
import Logging
import LoomData
import LoomJobs

/// Timestamped log lines on stderr (swift-log's stream handler: no colors, no control codes);
/// LOOM_LOG_LEVEL (trace, debug, info, notice, warning, error) sets the level, info by default.
func makeLogger(_ label: String) -> Logger {
    LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
    var logger = Logger(label: label)
    if let level = ProcessInfo.processInfo.environment["LOOM_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) { logger.logLevel = level }
    return logger
}

/// Runs a job body, turning its end into the documented exit status and one line on stderr.
func runJob(_ command: String, _ body: () throws -> Void) throws {
    do {
        try body()
    } catch let ended as JobEnded {
        printError("\(command): \(ended.message)")
        throw ExitCode(ended.exit.rawValue)
    } catch let exit as ExitCode {
        throw exit
    } catch {
        printError("\(command): \(error)")
        throw ExitCode(JobExit.failed.rawValue)
    }
}

/// `loom train JOB.yaml`.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a training job file (YAML or JSON) into a run folder; an interrupted run resumes where it stopped.",
        discussion: """
        Exit status: 0 finished (or had already), 1 the job failed, 2 usage or job file error (nothing done), \
        3 the run folder is locked by another run, 4 interrupted by SIGTERM or SIGINT (checkpoint written: run again to resume).
        """)

    @Argument(help: "The job file (.yaml, .yml or .json).") var job: String
    @Option(name: .customLong("run-dir"), help: "The run folder (default: the job's run_dir, else runs/<job name>).") var runDir: String?
    @Flag(help: "Discard the run folder's checkpoint and results and start over.") var restart = false
    @Option(help: "Worker threads (default: the job's fit.workers, else $LOOM_WORKERS, else the cores).") var workers: Int?
    @Option(help: "0 silent, 1 progress bar (on a terminal), 2 one line per epoch.") var verbose: Int?
    @OptionGroup var memory: MemoryOption

    func validate() throws {
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1, got \(workers)") }
        if let verbose, !(0...2).contains(verbose) { throw ValidationError("--verbose must be 0, 1 or 2, got \(verbose)") }
    }

    func run() throws {
        let logger = makeLogger("loom.train")
        try runJob("loom train") {
            let result = try TrainJob.run(TrainOptions(jobPath: job, runDirectory: runDir, restart: restart, workers: workers,
                                                       verbose: verbose, maxMemory: memory.given), logger: logger)
            let test = result.test.map { "\($0.0) \(String(format: "%.4f", $0.1))" }.joined(separator: ", ")
            if result.alreadyFinished {
                print("\(result.runDirectory): already finished\(test.isEmpty ? "" : "; test: \(test)")")
            } else {
                print("\(result.runDirectory): finished \(result.epochs) epoch(s)\(test.isEmpty ? "" : "; test: \(test)")")
            }
        }
    }
}

/// `loom prep`: preprocessing without training.
struct Prep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Preprocess a dataset into .npy shards (or MNIST IDX into an image folder) with a manifest; reruns do nothing unless --force.",
        discussion: "Exit status: 0 done (or already up to date), 1 failed (the earlier output is kept), 2 usage error, 4 interrupted by SIGTERM or SIGINT (the earlier output is kept).",
        subcommands: [Images.self, CSVFiles.self, IDXFiles.self])

    /// What every prep takes: where to write, the splits, the transforms, the shards.
    struct Common: ParsableArguments {
        @Option(help: "The output folder (replaced whole when done).") var out: String
        @Option(help: "Fraction held out for validation (shuffled with --seed).") var validation: Double = 0
        @Option(help: "Fraction held out for test (shuffled with --seed).") var test: Double = 0
        @Option(help: "Seed of the split.") var seed: UInt64 = 1337
        @Option(help: "Multiply the inputs by this (e.g. 0.00392156862745098 for 1/255).") var rescale: Float?
        @Flag(help: "Standardize each input feature with the training split's mean and standard deviation.") var standardize = false
        @Option(name: .customLong("one-hot"), help: "Turn integer labels into one-hot rows of this many classes.") var oneHot: Int?
        @Option(name: .customLong("shard-size"), help: "Samples per .npy shard.") var shardSize = 10_000
        @Option(help: "Worker threads (default: $LOOM_WORKERS, else the cores).") var workers: Int?
        @Option(name: .customLong("on-error"), help: "skip: corrupt inputs are skipped and listed; fail: the first one stops the run.")
        var onError: String = "skip"
        @Flag(help: "Redo the work even when the output is up to date.") var force = false

        func validate() throws {
            guard ErrorPolicy(rawValue: onError) != nil else { throw ValidationError("--on-error must be skip or fail, got \(onError)") }
            if let workers, workers < 1 { throw ValidationError("--workers must be at least 1, got \(workers)") }
            guard shardSize >= 1 else { throw ValidationError("--shard-size must be at least 1, got \(shardSize)") }
        }

        func options(_ source: SourceSpec) -> PrepOptions {
            var o = PrepOptions(source: source, output: out)
            (o.validationFraction, o.testFraction, o.seed, o.rescale) = (validation, test, seed, rescale)
            (o.standardize, o.oneHot, o.shardSize, o.workers) = (standardize, oneHot, shardSize, workers)
            (o.onError, o.force) = (ErrorPolicy(rawValue: onError) ?? .skip, force)
            return o
        }
    }

    static func run(_ options: PrepOptions) throws {
        let logger = makeLogger("loom.prep")
        try runJob("loom prep") {
            let result = try LoomJobs.Prep.run(options, logger: logger)
            let counts = result.counts.sorted { $0.key > $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            print("\(options.output): \(result.upToDate ? "up to date" : "written"): \(counts)"
                  + (result.skipped.isEmpty ? "" : "; \(result.skipped.count) input(s) skipped (listed in the manifest)"))
        }
    }

    struct Images: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "images",
            abstract: "An image folder (one subfolder per class) to decoded, resized .npy shards.")
        @Argument(help: "The folder.") var directory: String
        @Option(name: .customLong("image-size"), help: "HEIGHTxWIDTH every image is resized to.") var imageSize: String
        @Option(name: .customLong("color-mode"), help: "grayscale, rgb or rgba.") var colorMode = "rgb"
        @Option(help: "bilinear, nearest or area.") var interpolation = "bilinear"
        @Flag(name: .customLong("crop-to-aspect-ratio"), help: "Center-crop to the target's aspect ratio before resizing.")
        var cropToAspectRatio = false
        @OptionGroup var common: Common

        func run() throws {
            let parts = imageSize.lowercased().split(separator: "x").compactMap { Int($0) }
            guard parts.count == 2, parts.allSatisfy({ $0 >= 1 }) else {
                throw ValidationError("--image-size must be HEIGHTxWIDTH, got \(imageSize)")
            }
            guard let color = ColorMode(rawValue: colorMode) else { throw ValidationError("--color-mode must be grayscale, rgb or rgba") }
            guard let method = Interpolation(rawValue: interpolation) else {
                throw ValidationError("--interpolation must be one of \(Interpolation.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            var folder = ImageFolderOptions(colorMode: color, imageSize: (parts[0], parts[1]), interpolation: method,
                                            cropToAspectRatio: cropToAspectRatio, shuffle: false)
            folder.jpegDownscale = true
            try Prep.run(common.options(.imageFolder(directory: directory, options: folder)))
        }
    }

    struct CSVFiles: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "csv",
            abstract: "CSV files with a header to .npy shards of features and labels.")
        @Argument(help: "The files (sharing their header; .gz read as gzip).") var files: [String]
        @Option(name: .customLong("labels"), help: "Label column(s), by name.") var labels: [String] = []
        @Option(name: .customLong("features"), help: "Feature columns, by name (default: all but the labels).") var features: [String] = []
        @Option(help: "Empty fields: error, skip (the row), or a number to fill with.") var missing = "error"
        @OptionGroup var common: Common

        func run() throws {
            var csv = CSVOptions(features: features.isEmpty ? nil : features.map { .name($0) }, labels: labels.map { .name($0) })
            switch missing {
            case "error": csv.missing = .error
            case "skip": csv.missing = .skipRow
            default:
                guard let v = Float(missing) else { throw ValidationError("--missing must be error, skip or a number, got \(missing)") }
                csv.missing = .fill(v)
            }
            try Prep.run(common.options(.csv(paths: files, options: csv)))
        }
    }

    struct IDXFiles: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "idx",
            abstract: "IDX image and label files (MNIST) to .npy shards, or with --png-folder to an image folder of PNG files.")
        @Argument(help: "The images file (.gz or plain).") var images: String
        @Argument(help: "The labels file (.gz or plain).") var labels: String
        @Flag(name: .customLong("png-folder"), help: "Write <out>/<split>/<label>/<n>.png instead of .npy shards.") var pngFolder = false
        @OptionGroup var common: Common

        func run() throws {
            var options = common.options(.idx(images: images, labels: labels))
            if pngFolder { options.format = .pngFolder }
            try Prep.run(options)
        }
    }
}
