import Foundation
import LoomLayers
import LoomModels
import Logging

/// The run folder's files that follow training: each epoch's metrics (metrics.csv in
/// CSVLogger's format, metrics.jsonl, history.json) and the checkpoint (checkpoint.keras: the
/// model, its optimizer's variables and, in `loom/state.json`, the fit's position, counters,
/// callbacks' states and history, with the job it belongs to). Checkpoints are written at the
/// end of every epoch, every `everySteps` steps if asked, and when a signal arrives.
final class RunRecorder: Callback, @unchecked Sendable {
    static let checkpointName = "checkpoint.keras"
    static let stateEntry = "loom/state.json"

    let folder: RunFolder
    let everySteps: Int
    let signals: InterruptSignals
    let job: JSONValue
    let logger: Logger
    private var stepsSinceCheckpoint = 0

    init(folder: RunFolder, everySteps: Int, signals: InterruptSignals, job: JSONValue, logger: Logger) {
        (self.folder, self.everySteps, self.signals, self.job, self.logger) = (folder, everySteps, signals, job, logger)
    }

    override func onTrainBatchEnd(_ batch: Int, logs: Logs) throws {
        stepsSinceCheckpoint += 1
        if let signal = signals.signal {
            let state = try checkpoint()
            throw JobEnded(.interrupted, "\(InterruptSignals.name(signal)): stopped in epoch \(state.epoch + 1) after batch \(state.step); "
                + "checkpoint written to \(folder.path(Self.checkpointName)); run the job again to resume")
        }
        if everySteps > 0 && stepsSinceCheckpoint >= everySteps { try checkpoint() }
    }

    override func onEpochRecorded(_ epoch: Int) throws {
        let state = try model!.trainingState()
        try Self.writeMetrics(state.history, to: folder)
        if let last = state.history.last {
            let values = last.logs.map { "\($0.0) \(String(format: "%.4f", $0.1))" }.joined(separator: ", ")
            logger.info("epoch \(epoch + 1)/\(params["epochs"] ?? 0): \(values)")
        }
        try checkpoint()
        if let signal = signals.signal {
            throw JobEnded(.interrupted, "\(InterruptSignals.name(signal)): stopped after epoch \(epoch + 1); checkpoint written to "
                + "\(folder.path(Self.checkpointName)); run the job again to resume")
        }
    }

    /// Writes the checkpoint and returns the state it holds.
    @discardableResult
    func checkpoint() throws -> TrainingState {
        let state = try model!.trainingState()
        let payload: JSONValue = ["format": 1, "job": job, "training": state.json]
        try KerasFile.save(model!, to: folder.path(Self.checkpointName), extraEntries: [(Self.stateEntry, Data(payload.description.utf8))])
        stepsSinceCheckpoint = 0
        logger.debug("checkpoint: epoch \(state.epoch + 1), step \(state.step)")
        return state
    }

    /// A checkpoint's job and training state, if the folder has one.
    static func readCheckpoint(_ folder: RunFolder) throws -> (job: JSONValue, state: TrainingState)? {
        guard folder.exists(checkpointName) else { return nil }
        let path = folder.path(checkpointName)
        do {
            guard let data = try KerasFile.entry(stateEntry, of: path) else {
                throw JobEnded(.failed, "\(path): not a Loom checkpoint (no \(stateEntry)); remove it or start over with --restart")
            }
            guard case let .object(o) = try JSONValue.parse(String(decoding: data, as: UTF8.self)),
                  let job = o["job"], let training = o["training"] else {
                throw JobEnded(.failed, "\(path): \(stateEntry) is not a checkpoint state; remove it or start over with --restart")
            }
            return (job, try TrainingState(json: training))
        } catch let error as JobEnded {
            throw error
        } catch {
            throw JobEnded(.failed, "\(path): the checkpoint cannot be read (\(error)); start over with --restart")
        }
    }

    /// metrics.csv (CSVLogger's format), metrics.jsonl (one object per epoch) and history.json
    /// (Keras's History.history), each rewritten whole from the epochs finished.
    static func writeMetrics(_ history: [(epoch: Int, logs: [(String, Float)])], to folder: RunFolder) throws {
        var keys: [String] = []
        for (_, logs) in history { for (k, _) in logs where !keys.contains(k) { keys.append(k) } }
        let columns = keys.sorted()
        var csv = history.isEmpty ? "" : CSVLogger.header(columns)
        var jsonl = ""
        for (epoch, logs) in history {
            csv += CSVLogger.row(epoch, Logs(logs), columns: columns)
            var o: [String: JSONValue] = ["epoch": .int(epoch + 1)]
            for (k, v) in logs { o[k] = jsonNumber(v) }
            jsonl += JSONValue.object(o).description + "\n"
        }
        var record: [String: JSONValue] = [:]
        for k in keys {
            record[k] = .array(history.map { entry in entry.logs.first { $0.0 == k }.map { jsonNumber($0.1) } ?? .null })
        }
        try folder.write(csv, to: "metrics.csv")
        try folder.write(jsonl, to: "metrics.jsonl")
        try folder.write(JSONValue.object(record).description + "\n", to: "history.json")
    }
}

/// A float for a JSON file: NaN and infinities, which JSON lacks, as null.
func jsonNumber(_ v: Float) -> JSONValue { v.isFinite ? .double(Double(v)) : .null }
