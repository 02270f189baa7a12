import Foundation
import Logging
import LoomData
import LoomLayers
import LoomTensor
import LoomModels
import Testing
@testable import LoomJobs

/// A scratch folder with a small classification dataset as .npy files (x.npy [60, 4], y.npy [60]).
struct JobScratch {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("loom-jobs-\(getpid())-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        let x = (0..<240).map { Float(($0 * 37) % 17) / 17 }
        try NPY.write(Tensor(shape: [60, 4], scalars: x), to: path("x.npy"))
        try NPY.write(Tensor((0..<60).map { Float($0 % 3) }), to: path("y.npy"))
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    /// Writes a job file and returns its path.
    func job(_ text: String, name: String = "job.yaml") throws -> String {
        try Data(text.utf8).write(to: url.appendingPathComponent(name))
        return path(name)
    }

    func remove() { try? FileManager.default.removeItem(at: url) }

    static let valid = """
    name: small
    seed: 4
    data:
      train:
        npy: {x: x.npy, y: y.npy}
      split: {test: 0.2, seed: 2}
      standardize: true
    model:
      layers:
        - Input: {shape: [4]}
        - Dense: {units: 8, activation: relu}
        - Dropout: {rate: 0.2}
        - Dense: {units: 3, activation: softmax}
    compile:
      optimizer: {Adam: {learning_rate: 0.01}}
      loss: sparse_categorical_crossentropy
      metrics: [accuracy]
    fit:
      epochs: 3
      batch_size: 8
      verbose: 0
    """
}

@Suite struct JobFileTests {
    /// The job's text with one line replaced.
    static func edited(_ old: String, _ new: String) -> String {
        #expect(JobScratch.valid.contains(old), "the edit's old text is not in the job: \(old)")
        return JobScratch.valid.replacingOccurrences(of: old, with: new)
    }

    @Test func aValidJobReadsWithItsDefaults() throws {
        let scratch = try JobScratch()
        defer { scratch.remove() }
        let job = try Job.read(try scratch.job(JobScratch.valid))
        #expect(job.name == "small" && job.seed == 4 && job.fit.epochs == 3 && job.fit.batchSize == 8 && job.fit.shuffle)
        #expect(job.evaluate, "a job with a test split evaluates by default")
        #expect(job.data.testFraction == 0.2 && job.data.splitSeed == 2 && job.data.standardize)
        guard case let .npy(x, y) = job.data.train else { Issue.record("not an npy source"); return }
        #expect(x == [scratch.path("x.npy")] && y == [scratch.path("y.npy")], "paths are taken from the job file's folder")
        // JSON is read as well as YAML, to the same job.
        let json = """
        {"name": "small", "seed": 4, "data": {"train": {"npy": {"x": "x.npy", "y": "y.npy"}}, "split": {"test": 0.2, "seed": 2},
         "standardize": true}, "model": {"layers": [{"Input": {"shape": [4]}}, {"Dense": {"units": 8, "activation": "relu"}},
         {"Dropout": {"rate": 0.2}}, {"Dense": {"units": 3, "activation": "softmax"}}]},
         "compile": {"optimizer": {"Adam": {"learning_rate": 0.01}}, "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
         "fit": {"epochs": 3, "batch_size": 8, "verbose": 0}}
        """
        #expect(try Job.read(try scratch.job(json, name: "job.json")).resolved == job.resolved)
    }

    /// Each kind of mistake is refused with the file, the line and the key path.
    @Test(arguments: [
        ("  batch_size: 8", "  batchsize: 8", "fit.batchsize", "unknown key (known here: "),
        ("  epochs: 3", "  epocs: 3", "fit", "missing key 'epochs' ('epocs' is given: misspelt?)"),
        ("  epochs: 3", "  epochs: three", "fit.epochs", "expected an integer"),
        ("  epochs: 3", "  epochs: 0", "fit.epochs", "must be in 1...1000000, got 0"),
        ("npy: {x: x.npy, y: y.npy}", "npy: {x: missing.npy, y: y.npy}", "data.train.npy.x", "no such file"),
        ("  loss: sparse_categorical_crossentropy\n", "", "compile", "missing key 'loss'"),
        ("  batch_size: 8", "  batch_size: [8]", "fit.batch_size", "expected an integer"),
        ("  standardize: true", "  standardize: maybe", "data.standardize", "expected true or false"),
        ("  split: {test: 0.2, seed: 2}", "  split: {test: 1.5, seed: 2}", "data.split.test", "must be in [0, 1)"),
        ("    npy: {x: x.npy, y: y.npy}", "    parquet: {x: x.npy}", "data.train.parquet", "unknown source (known: idx, npy, csv, image_folder, timeseries)"),
        ("  verbose: 0", "  verbose: 0\n  callbacks: [{ModelCheckpoint: {}}]", "fit.callbacks[0].ModelCheckpoint", "unknown callback"),
        ("  verbose: 0", "  verbose: 0\n  callbacks:\n    - EarlyStopping: {patience: -1}", "fit.callbacks[0].EarlyStopping.patience",
         "must be 0 or more, got -1"),
        ("  verbose: 0", "  verbose: 0\n  callbacks:\n    - EarlyStopping: {patiense: 3}", "fit.callbacks[0].EarlyStopping.patiense",
         "unknown key (known here: baseline, min_delta, mode, monitor, patience"),
        ("  verbose: 0", "  verbose: 0\n  callbacks:\n    - ReduceLROnPlateau: {mode: up}", "fit.callbacks[0].ReduceLROnPlateau.mode",
         "expected auto, min or max, got 'up'"),
    ])
    func mistakesNameTheKeyAndLine(old: String, new: String, keyPath: String, reason: String) throws {
        let scratch = try JobScratch()
        defer { scratch.remove() }
        let path = try scratch.job(Self.edited(old, new))
        do {
            _ = try Job.read(path)
            Issue.record("accepted: \(new)")
        } catch let error as JobFileError {
            #expect(error.keyPath == keyPath, "\(error)")
            #expect(error.message.contains(reason), "\(error)")
            #expect(error.file == path && error.line != nil, "\(error)")
            #expect(error.description.hasPrefix("\(path):\(error.line!): \(keyPath): "))
        }
    }

    @Test func notYAMLIsRefusedWithItsLine() throws {
        let scratch = try JobScratch()
        defer { scratch.remove() }
        do {
            _ = try Job.read(try scratch.job("fit:\n  epochs: [3\nmodel: {}\n"))
            Issue.record("accepted broken YAML")
        } catch let error as JobFileError {
            #expect(error.message.contains("not valid YAML or JSON") && error.line != nil, "\(error)")
        }
    }

    /// The 1-based line of the first line of `text` that contains `fragment`.
    static func line(of fragment: String, in text: String) -> Int {
        (text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains(fragment) } ?? -1) + 1
    }

    /// A wrong layer argument is named with the job file and the line of its entry; an error
    /// found only when the model is built, with the line of the model section.
    @Test func modelErrorsNameTheFileAndLine() throws {
        let scratch = try JobScratch()
        defer { scratch.remove() }
        let text = Self.edited("    - Dropout: {rate: 0.2}", "    - Dropout: {rate: 1.5}")
        let path = try scratch.job(text)
        #expect(throws: JobFileError.self) { _ = try Job.read(path) }
        do { _ = try Job.read(path) } catch {
            #expect("\(error)".hasPrefix("\(path):\(Self.line(of: "rate: 1.5", in: text)): model.layers"), "\(error)")
            #expect("\(error)".contains("rate"), "\(error)")
        }
        let misfit = Self.edited("    - Dense: {units: 8, activation: relu}", "    - Conv2D: {filters: 2, kernel_size: 3}")
        let misfitPath = try scratch.job(misfit, name: "misfit.yaml")
        do {
            _ = try TrainJob.run(TrainOptions(jobPath: misfitPath, runDirectory: scratch.path("run")), logger: Logger(label: "test"))
            Issue.record("trained a model whose layer does not fit")
        } catch let error as JobEnded {
            let modelLine = Self.line(of: "model:", in: misfit)
            #expect(error.message.hasPrefix("\(misfitPath):\(modelLine): model:") || error.message.hasPrefix("\(misfitPath):\(modelLine + 1): model:"),
                    "\(error)")
        }
        let badLoss = try scratch.job(Self.edited("loss: sparse_categorical_crossentropy", "loss: no_such_loss"), name: "loss.yaml")
        do {
            _ = try TrainJob.run(TrainOptions(jobPath: badLoss, runDirectory: scratch.path("run2")), logger: Logger(label: "test"))
            Issue.record("compiled an unknown loss")
        } catch let error as JobEnded {
            #expect(error.message.hasPrefix("\(badLoss):") && error.message.contains(": compile: "), "\(error)")
        }
    }

    /// A label outside the class range is named by its CSV file and line, after the split.
    @Test func aLabelOutOfRangeNamesItsFileAndLine() throws {
        let scratch = try JobScratch()
        defer { scratch.remove() }
        let rows = (0..<40).map { i in "\(Float(i) / 40),\(Float(i % 5) / 5),\(Float(i % 7) / 7),\(Float(i % 3) / 3),\(i == 26 ? 7 : i % 3)" }
        try ("a,b,c,d,label\n" + rows.joined(separator: "\n") + "\n").write(toFile: scratch.path("t.csv"), atomically: true, encoding: .utf8)
        let path = try scratch.job(Self.edited("    npy: {x: x.npy, y: y.npy}", "    csv: {path: t.csv, labels: [label]}"))
        do {
            _ = try TrainJob.run(TrainOptions(jobPath: path, runDirectory: scratch.path("run")), logger: Logger(label: "test"))
            Issue.record("trained on a label outside the classes")
        } catch let error as JobEnded {
            // Row 26 is on line 28 (the header is line 1).
            #expect(error.message.contains("label 7.0 at \(scratch.path("t.csv")):28 is out of range"), "\(error)")
        }
        // loom prep's one-hot names it too.
        var options = PrepOptions(source: .csv(paths: [scratch.path("t.csv")], options: CSVOptions(labels: [.name("label")])),
                                  output: scratch.path("prepared"))
        options.oneHot = 3
        do {
            _ = try Prep.run(options, logger: Logger(label: "test"))
            Issue.record("one-hot of a label outside the classes")
        } catch {
            #expect("\(error)".contains("label 7.0 at \(scratch.path("t.csv")):28 is not a class"), "\(error)")
        }
    }

    /// A layer that does not fit its input is refused before any file is written.
    @Test func aLayerThatDoesNotFitIsAUsageErrorBeforeAnyWork() throws {
        let scratch = try JobScratch()
        defer { scratch.remove() }
        let path = try scratch.job(Self.edited("    - Dense: {units: 8, activation: relu}", "    - Conv2D: {filters: 2, kernel_size: 3}"))
        let run = scratch.path("run")
        do {
            _ = try TrainJob.run(TrainOptions(jobPath: path, runDirectory: run), logger: Logger(label: "test"))
            Issue.record("trained a model whose layer does not fit")
        } catch let error as JobEnded {
            #expect(error.exit == .usage && error.message.contains("model"), "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: run), "nothing is written before the job is known to be right")
    }

    /// Data whose samples do not fit the model's input is refused before training, naming the fix.
    @Test func dataThatDoesNotFitTheModelIsAUsageError() throws {
        let scratch = try JobScratch()
        defer { scratch.remove() }
        let path = try scratch.job(Self.edited("    - Input: {shape: [4]}", "    - Input: {shape: [5]}"))
        do {
            _ = try TrainJob.run(TrainOptions(jobPath: path, runDirectory: scratch.path("run")), logger: Logger(label: "test"))
            Issue.record("trained on data of the wrong shape")
        } catch let error as JobEnded {
            #expect(error.exit == .usage && error.message.contains("[4]") && error.message.contains("data.reshape"), "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.path("run/checkpoint.keras")))
    }
}

@Suite struct RunFolderTests {
    @Test func aSecondRunOnTheSameFolderIsTurnedAway() throws {
        let scratch = try JobScratch()
        defer { scratch.remove() }
        let first = try RunFolder(scratch.path("run"))
        withExtendedLifetime(first) {
            do {
                _ = try RunFolder(scratch.path("run"))
                Issue.record("the lock was taken twice")
            } catch let error as JobEnded {
                #expect(error.exit == .locked && error.message.contains("process \(getpid())"), "\(error)")
            } catch {
                Issue.record("\(error)")
            }
        }
    }

    @Test func theLockGoesWithItsHolder() throws {
        let scratch = try JobScratch()
        defer { scratch.remove() }
        do { _ = try RunFolder(scratch.path("run")) }
        _ = try RunFolder(scratch.path("run"))
    }

    @Test func partialFilesOfAKilledRunAreCleared() throws {
        let scratch = try JobScratch()
        defer { scratch.remove() }
        try FileManager.default.createDirectory(atPath: scratch.path("run"), withIntermediateDirectories: true)
        try Data("half".utf8).write(to: URL(fileURLWithPath: scratch.path("run/checkpoint.keras.partial-99999")))
        try Data("kept".utf8).write(to: URL(fileURLWithPath: scratch.path("run/notes.txt")))
        let folder = try RunFolder(scratch.path("run"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.url.path).sorted() == [".lock", "notes.txt"])
    }

    @Test func atomicWritesLeaveNoPartialFiles() throws {
        let scratch = try JobScratch()
        defer { scratch.remove() }
        let folder = try RunFolder(scratch.path("run"))
        try folder.write("one", to: "a.txt")
        try folder.write("two", to: "a.txt")
        #expect(try String(contentsOfFile: folder.path("a.txt"), encoding: .utf8) == "two")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.url.path)
        #expect(names.sorted() == [".lock", "a.txt"])
    }
}

@Suite struct TrainJobTests {
    /// A run writes its folder; a second run of the finished job does nothing; --restart
    /// trains again to the same numbers.
    @Test func aRunWritesItsFolderAndARerunIsANoOp() throws {
        let scratch = try JobScratch()
        defer { scratch.remove() }
        let path = try scratch.job(JobScratch.valid)
        let run = scratch.path("run")
        let first = try TrainJob.run(TrainOptions(jobPath: path, runDirectory: run, workers: 2), logger: Logger(label: "test"))
        #expect(!first.alreadyFinished && first.epochs == 3 && first.test.map(\.0) == ["loss", "accuracy"])
        for name in TrainJob.outputs { #expect(FileManager.default.fileExists(atPath: run + "/" + name), "\(name)") }
        let csv = try String(contentsOfFile: run + "/metrics.csv", encoding: .utf8)
        #expect(csv.split(separator: "\n").first == "epoch,accuracy,loss" && csv.split(separator: "\n").count == 4)
        let again = try TrainJob.run(TrainOptions(jobPath: path, runDirectory: run), logger: Logger(label: "test"))
        #expect(again.alreadyFinished && again.test.map(\.1) == first.test.sorted { $0.0 < $1.0 }.map(\.1))
        let restarted = try TrainJob.run(TrainOptions(jobPath: path, runDirectory: run, restart: true, workers: 1), logger: Logger(label: "test"))
        #expect(!restarted.alreadyFinished)
        for ((k1, v1), (k2, v2)) in zip(restarted.test, first.test) {
            #expect(k1 == k2 && abs(v1 - v2) <= 1e-5 * Swift.max(1, abs(v2)), "\(k1): 1 worker \(v1), 2 workers \(v2)")
        }
    }

    /// A folder holding another job's run is refused, naming what changed.
    @Test func aChangedJobDoesNotResumeAnothersRun() throws {
        let scratch = try JobScratch()
        defer { scratch.remove() }
        let run = scratch.path("run")
        _ = try TrainJob.run(TrainOptions(jobPath: try scratch.job(JobScratch.valid), runDirectory: run), logger: Logger(label: "test"))
        let changed = try scratch.job(JobFileTests.edited("  batch_size: 8", "  batch_size: 4"), name: "changed.yaml")
        do {
            _ = try TrainJob.run(TrainOptions(jobPath: changed, runDirectory: run), logger: Logger(label: "test"))
            Issue.record("resumed another job's run")
        } catch let error as JobEnded {
            #expect(error.exit == .usage && error.message.contains("fit.batch_size was 8, is now 4"), "\(error)")
        }
    }

    /// Bad data content (a CSV row with a bad number) is the job failing, not a usage error.
    @Test func badDataFailsTheJob() throws {
        let scratch = try JobScratch()
        defer { scratch.remove() }
        try Data("a,b,label\n1,2,0\n3,x,1\n".utf8).write(to: scratch.url.appendingPathComponent("bad.csv"))
        let path = try scratch.job(JobFileTests.edited("    npy: {x: x.npy, y: y.npy}", "    csv: {path: bad.csv, labels: [label]}")
            .replacingOccurrences(of: "shape: [4]", with: "shape: [2]"))
        do {
            _ = try TrainJob.run(TrainOptions(jobPath: path, runDirectory: scratch.path("run")), logger: Logger(label: "test"))
            Issue.record("trained on a bad CSV")
        } catch let error as JobEnded {
            #expect(error.exit == .failed && error.message.contains("bad.csv:3: column 'b': cannot read 'x' as a number"), "\(error)")
        }
    }
}

@Suite struct TimeseriesSourceTests {
    /// A series 0, 10, 20, ... with two missing rows: interpolated linearly, windowed, the
    /// target `horizon` rows after each window, split from the end in time order.
    @Test func windowsInterpolateAndSplitInTimeOrder() throws {
        let scratch = try JobScratch()
        defer { scratch.remove() }
        var csv = "t,v\n"
        for i in 0..<20 { csv += "\(i),\(i == 5 || i == 6 ? "" : String(i * 10))\n" }
        try Data(csv.utf8).write(to: scratch.url.appendingPathComponent("s.csv"))
        var t = TimeseriesSpec(path: scratch.path("s.csv"), columns: ["v"], target: "v", sequenceLength: 3)
        (t.horizon, t.missing, t.scale) = (2, .interpolate, 0.1)
        var spec = DataSpec(train: .timeseries(t), splitSeed: 1)
        spec.testFraction = 0.25
        let data = try JobData.load(spec, workers: 1)
        // Rows 0..<20 (row 5 and 6 interpolated to 5 and 6 after scaling); windows start at
        // 0...15 (the last window's target, row 2 + 2 + 15 = 19, is the last row).
        #expect(data.filled.count == 2 && data.filled[0].hasSuffix("s.csv:7: v interpolated"))
        let test = try #require(data.test)
        #expect(data.train.count == 12 && test.count == 4)
        // The test windows are the last four, in time order: starts 12...15.
        #expect(test.x[0].shape == [4, 3, 1])
        #expect(test.x[0].scalars == [12, 13, 14, 13, 14, 15, 14, 15, 16, 15, 16, 17].map { Float($0) * 1 })
        #expect(test.y[0].scalars == [16, 17, 18, 19])
        #expect(data.train.x[0].scalars.prefix(9) == [0, 1, 2, 1, 2, 3, 2, 3, 4])
        #expect(data.train.x[0].scalars[12..<15] == [4, 5, 6], "the interpolated rows")
        #expect(data.naiveForecastFeature == 0)
    }
}

@Suite struct ModelSourceTests {
    /// A Keras model config (.json) and a .keras file (fine-tuning: its weights, compiled anew
    /// by the job) are model sources as well as a layer list.
    @Test func configAndFileModelsTrain() throws {
        let scratch = try JobScratch()
        defer { scratch.remove() }
        let first = try TrainJob.run(TrainOptions(jobPath: try scratch.job(JobScratch.valid), runDirectory: scratch.path("first")),
                                     logger: Logger(label: "test"))
        let trained = try KerasFile.load(scratch.path("first/model.keras"))
        try Data(trained.serialized.description.utf8).write(to: scratch.url.appendingPathComponent("model.json"))

        let layerList = """
          layers:
            - Input: {shape: [4]}
            - Dense: {units: 8, activation: relu}
            - Dropout: {rate: 0.2}
            - Dense: {units: 3, activation: softmax}
        """
        #expect(JobScratch.valid.contains(layerList))
        let fromConfig = try scratch.job(JobScratch.valid.replacingOccurrences(of: layerList, with: "  config: model.json\n"), name: "config.yaml")
        let viaConfig = try TrainJob.run(TrainOptions(jobPath: fromConfig, runDirectory: scratch.path("config")), logger: Logger(label: "test"))
        #expect(viaConfig.epochs == 3)

        // Fine-tuning starts from the trained weights: its first epoch's loss is below the
        // first run's first epoch.
        let fromFile = try scratch.job(JobScratch.valid.replacingOccurrences(of: layerList, with: "  file: first/model.keras\n"), name: "file.yaml")
        _ = try TrainJob.run(TrainOptions(jobPath: fromFile, runDirectory: scratch.path("tuned")), logger: Logger(label: "test"))
        func firstLoss(_ run: String) throws -> Double {
            guard case let .object(h) = try JSONValue.parse(String(contentsOfFile: scratch.path(run + "/history.json"), encoding: .utf8)),
                  case let .array(losses)? = h["loss"], let loss = losses.first?.numberValue else { return .nan }
            return loss
        }
        #expect(try firstLoss("tuned") < firstLoss("first"))
        _ = first
    }
}
