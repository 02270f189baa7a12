import ArgumentParser
import Foundation
import Logging
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

    func validate() throws {
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1, got \(workers)") }
        if let verbose, !(0...2).contains(verbose) { throw ValidationError("--verbose must be 0, 1 or 2, got \(verbose)") }
    }

    func run() throws {
        let logger = makeLogger("loom.train")
        try runJob("loom train") {
            let result = try TrainJob.run(TrainOptions(jobPath: job, runDirectory: runDir, restart: restart, workers: workers,
                                                       verbose: verbose), logger: logger)
            let test = result.test.map { "\($0.0) \(String(format: "%.4f", $0.1))" }.joined(separator: ", ")
            if result.alreadyFinished {
                print("\(result.runDirectory): already finished\(test.isEmpty ? "" : "; test: \(test)")")
            } else {
                print("\(result.runDirectory): finished \(result.epochs) epoch(s)\(test.isEmpty ? "" : "; test: \(test)")")
            }
        }
    }
}
