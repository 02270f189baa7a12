import Foundation
import LoomLayers
import LoomTensor
import LoomTestSupport
import Testing
@testable import LoomModels

@Suite struct CallbackTests {
    static let root = (try? FixtureFiles.load("callback_training.json", bundle: .module)) ?? [:]

    /// The recorded Keras run `name`: the model from its initial weights, fitted with `callbacks`.
    static func replay(_ name: String, _ callbacks: [Callback]) throws -> (History, Config, Model) {
        guard case let .object(run)? = root[name] else { throw LoomTrainingError("missing fixture \(name)") }
        let model = try Sequential([try Dense(units: 5, activation: .relu), try Dense(units: 3)])
        try model.build(inputShape: [nil, 4])
        try model.setWeights(FixtureFiles.tensors(run["initial_weights"]).map { $0! })
        try model.compile(optimizer: try SGD(learningRate: .constant(Float(run["learning_rate"]!.numberValue!))),
                          loss: MeanSquaredError())
        let history = try model.fit(x: FixtureFiles.tensor(run["x"])!, y: FixtureFiles.tensor(run["y"])!, batchSize: 8,
                                    epochs: Int(run["epochs"]!.numberValue!), verbose: .silent, callbacks: callbacks,
                                    validationSplit: Float(run["validation_split"]!.numberValue!), shuffle: false)
        return (history, run, model)
    }

    static func check(_ history: History, _ run: Config, _ model: Model, _ name: String) {
        guard case let .object(expected)? = run["history"] else { Issue.record("no history"); return }
        #expect(Set(history.history.keys) == Set(expected.keys), "\(name): \(history.keys)")
        for (key, values) in expected {
            guard case let .array(v) = values else { continue }
            expectClose(history.history[key] ?? [], v.map { Float($0.numberValue!) }, relative: 1e-4, absolute: 1e-6, "\(name) \(key)")
        }
        for (p, w) in zip(model.weights, FixtureFiles.tensors(run["final_weights"])) {
            expectClose(p.value.scalars, w!.scalars, relative: 1e-4, absolute: 1e-5, "\(name) \(p.name)")
        }
    }

    @Test func earlyStoppingRestoresTheBestWeightsAsKerasDoes() throws {
        let stop = EarlyStopping(monitor: "loss", minDelta: 0.02, patience: 2, restoreBestWeights: true)
        let (history, run, model) = try Self.replay("early_stopping", [stop])
        Self.check(history, run, model, "early_stopping")
        #expect(stop.stoppedEpoch == history.epochs.last)
    }

    @Test func earlyStoppingWithABaselineNotBeaten() throws {
        let (history, run, model) = try Self.replay("early_stopping_val_baseline",
                                                    [EarlyStopping(monitor: "val_loss", patience: 1, baseline: 1.2)])
        Self.check(history, run, model, "early_stopping_val_baseline")
    }

    @Test func reduceLROnPlateauAsKerasDoes() throws {
        let reduce = try ReduceLROnPlateau(monitor: "loss", factor: 0.5, patience: 1, minDelta: 0.03, cooldown: 1, minLR: 0.02)
        let (history, run, model) = try Self.replay("reduce_lr_on_plateau", [reduce])
        Self.check(history, run, model, "reduce_lr_on_plateau")
    }

    @Test func learningRateSchedulerAsKerasDoes() throws {
        let scheduler = LearningRateScheduler { epoch, rate in epoch >= 2 ? rate * 0.5 : rate }
        let (history, run, model) = try Self.replay("learning_rate_scheduler", [scheduler])
        Self.check(history, run, model, "learning_rate_scheduler")
    }

    /// Records every hook in order.
    final class Recorder: Callback, @unchecked Sendable {
        var events: [String] = []
        override func onTrainBegin(logs: Logs) throws { events.append("train_begin") }
        override func onTrainEnd(logs: Logs) throws { events.append("train_end") }
        override func onEpochBegin(_ epoch: Int, logs: Logs) throws { events.append("epoch_begin \(epoch)") }
        override func onEpochEnd(_ epoch: Int, logs: Logs) throws { events.append("epoch_end \(epoch) \(logs.keys)") }
        override func onTrainBatchBegin(_ batch: Int, logs: Logs) throws { events.append("batch_begin \(batch)") }
        override func onTrainBatchEnd(_ batch: Int, logs: Logs) throws { events.append("batch_end \(batch)") }
        override func onTestBegin(logs: Logs) throws { events.append("test_begin") }
        override func onTestEnd(logs: Logs) throws { events.append("test_end") }
        override func onTestBatchBegin(_ batch: Int, logs: Logs) throws { events.append("test_batch_begin \(batch)") }
        override func onTestBatchEnd(_ batch: Int, logs: Logs) throws { events.append("test_batch_end \(batch)") }
        override func onPredictBegin(logs: Logs) throws { events.append("predict_begin") }
        override func onPredictEnd(logs: Logs) throws { events.append("predict_end") }
        override func onPredictBatchBegin(_ batch: Int, logs: Logs) throws { events.append("predict_batch_begin \(batch)") }
        override func onPredictBatchEnd(_ batch: Int, logs: Logs) throws { events.append("predict_batch_end \(batch)") }
    }

    static func smallModel() throws -> Sequential {
        let model = try Sequential([try Dense(units: 2)])
        try model.build(inputShape: [nil, 3])
        try model.compile(optimizer: try SGD(), loss: MeanSquaredError(), metrics: ["mae"])
        return model
    }

    @Test func everyHookRunsInKerasOrder() throws {
        let model = try Self.smallModel()
        let recorder = Recorder()
        let x = Tensor.zeros([3, 3]), y = Tensor.zeros([3, 2])
        try model.fit(x: x, y: y, batchSize: 2, epochs: 1, verbose: .silent, callbacks: [recorder],
                      validationData: ValidationData(x: x, y: y))
        #expect(recorder.events == ["train_begin", "epoch_begin 0", "batch_begin 0", "batch_end 0", "batch_begin 1", "batch_end 1",
                                    "test_begin", "test_batch_begin 0", "test_batch_end 0", "test_batch_begin 1", "test_batch_end 1",
                                    "test_end", "epoch_end 0 [\"loss\", \"mae\", \"val_loss\", \"val_mae\"]", "train_end"])
        recorder.events = []
        _ = try model.predict(x, batchSize: 2, verbose: .silent, callbacks: [recorder])
        #expect(recorder.events == ["predict_begin", "predict_batch_begin 0", "predict_batch_end 0", "predict_batch_begin 1",
                                    "predict_batch_end 1", "predict_end"])
    }

    @Test func terminateOnNaNStopsAtTheBatch() throws {
        let model = try Sequential([try Dense(units: 1)])
        try model.build(inputShape: [nil, 1])
        try model.compile(optimizer: try SGD(learningRate: 1e30), loss: MeanSquaredError())
        let stop = TerminateOnNaN()
        let x = Tensor.full([64, 1], 1e10), y = Tensor.zeros([64, 1])
        let history = try model.fit(x: x, y: y, batchSize: 8, epochs: 5, verbose: .silent, callbacks: [stop], shuffle: false)
        #expect(stop.stoppedAtBatch != nil)
        #expect(history.epochs == [0])
    }

    @Test func lambdaCallbackAndStopTraining() throws {
        let model = try Self.smallModel()
        var seen: [Int] = []
        let callback = LambdaCallback(onEpochEnd: { epoch, _ in
            seen.append(epoch)
            if epoch == 2 { model.stopTraining = true }
        })
        let history = try model.fit(x: Tensor.zeros([4, 3]), y: Tensor.zeros([4, 2]), epochs: 10, verbose: .silent,
                                    callbacks: [callback], initialEpoch: 1)
        #expect(seen == [1, 2])
        #expect(history.epochs == [1, 2])
    }

    @Test func csvLoggerWritesOneRowPerEpoch() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("loom-csv-\(getpid()).csv").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let model = try Self.smallModel()
        let history = try model.fit(x: Tensor.ones([4, 3]), y: Tensor.zeros([4, 2]), epochs: 3, verbose: .silent,
                                    callbacks: [CSVLogger(path)])
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(lines.count == 4)
        #expect(lines[0] == "epoch,loss,mae")
        let last = lines[3].split(separator: ",").map { Double($0)! }
        #expect(last[0] == 2)
        expectClose([Float(last[1])], [history.history["loss"]![2]], relative: 1e-6)
        // append: a second run adds rows under the same header.
        try model.fit(x: Tensor.ones([4, 3]), y: Tensor.zeros([4, 2]), epochs: 1, verbose: .silent,
                      callbacks: [CSVLogger(path, append: true)])
        #expect(try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").count == 5)
    }
}

@Suite struct ProgressBarTests {
    final class Sink: @unchecked Sendable {
        var text = ""
    }

    @Test func onePlainLinePerEpoch() throws {
        let model = try CallbackTests.smallModel()
        let sink = Sink()
        try model.fit(x: Tensor.ones([40, 3]), y: Tensor.zeros([40, 2]), batchSize: 8, epochs: 2, verbose: .silent,
                      callbacks: [ProgressBar(verbosity: .oneLinePerEpoch) { sink.text += $0 }])
        let lines = sink.text.split(separator: "\n").map(String.init)
        #expect(lines.count == 4)
        #expect(lines[0] == "Epoch 1/2" && lines[2] == "Epoch 2/2")
        // "5/5 - 0s - 1ms/step - loss: 0.1234 - mae: 0.1234", as Keras's verbose=2 prints it.
        let pattern = #"^5/5 - \d+s - \d+(us|ms|s)/step - loss: \d\.\d{4}(e-\d\d)? - mae: \d\.\d{4}(e-\d\d)?$"#
        #expect(lines[1].range(of: pattern, options: .regularExpression) != nil, "\(lines[1])")
        #expect(!sink.text.contains("\r"))
    }

    @Test func liveBarRedrawsInPlace() throws {
        let model = try CallbackTests.smallModel()
        let sink = Sink()
        try model.fit(x: Tensor.ones([16, 3]), y: Tensor.zeros([16, 2]), batchSize: 8, epochs: 1, verbose: .silent,
                      callbacks: [ProgressBar(verbosity: .progressBar) { sink.text += $0 }])
        // Redrawn with carriage returns, ending with the full bar and a newline.
        #expect(sink.text.hasPrefix("Epoch 1/1\n\r1/2 "))
        #expect(sink.text.contains("\r2/2 \u{1B}[32m━━━━━━━━━━━━━━━━━━━━\u{1B}[0m"))
        #expect(sink.text.hasSuffix("\n") && sink.text.contains(" - loss: "))
    }

    @Test func numberFormats() {
        #expect(ProgressBar.format(0.25) == "0.2500")
        #expect(ProgressBar.format(0.0001234) == "1.2340e-04")
        #expect(ProgressBar.eta(75) == "1:15" && ProgressBar.eta(3725) == "1:02:05" && ProgressBar.eta(9) == "9s")
        #expect(ProgressBar.stepTime(0.0042) == "4ms/step" && ProgressBar.stepTime(2) == "2s/step")
    }
}

@Suite struct UserDefinedTests {
    @Test func userLossAndMetricTrainLikeTheBuiltIns() throws {
        func run(_ loss: Loss, _ metric: MetricSpec) throws -> History {
            let model = try Sequential([try Dense(units: 2, kernelInitializer: Constant(value: 0.1))])
            try model.build(inputShape: [nil, 3])
            try model.compile(optimizer: try Adam(learningRate: 0.01), loss: loss, metrics: [metric])
            let x = Tensor.randomNormal([24, 3], generator: RandomGenerator(seed: 4))
            let y = Tensor.randomNormal([24, 2], generator: RandomGenerator(seed: 5))
            return try model.fit(x: x, y: y, batchSize: 8, epochs: 3, verbose: .silent, shuffle: false)
        }
        let mine = Loss(name: "my_package>squared") { t, p in (t - p).square().mean(axes: [1]) }
        let absolute = MeanMetricWrapper(name: "my_mae") { t, p in (t - p).abs().mean(axes: [1]) }
        let custom = try run(mine, .metric(absolute))
        let builtIn = try run(MeanSquaredError(), "mae")
        expectClose(custom.history["loss"]!, builtIn.history["loss"]!, relative: 1e-6)
        expectClose(custom.history["my_mae"]!, builtIn.history["mae"]!, relative: 1e-6)
        #expect(mine.serialized.description.contains("\"registered_name\": \"my_package>squared\""))
    }
}
