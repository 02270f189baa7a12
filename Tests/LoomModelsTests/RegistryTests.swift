import LoomLayers
import LoomTensor
import Testing
@testable import LoomModels

/// Every optimizer, loss, metric and callback Loom lists is built from its Keras config by its
/// own `from(config:)`: configs in the form Keras 3's get_config writes, with values other than
/// the defaults, come back with those values, and the names Keras accepts give the same class.
/// (The Keras fixtures in TrainingFixtureTests and LoomCLITests check the numbers.)
@Suite struct RegistryTests {
    @Test func optimizersReadEveryKeyKerasWrites() throws {
        // As keras.optimizers.Adam(learning_rate=0.01, beta_1=0.8, ..., clipnorm=2.0, name="a").get_config()
        // writes them, and the same for the others; the third column is a default the class fills in.
        let cases: [(String, Config, Config)] = [
            ("Adam", ["beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6, "amsgrad": true], [:]),
            ("AdamW", ["beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6, "amsgrad": false], ["weight_decay": 0.004]),
            ("SGD", ["momentum": 0.5, "nesterov": true], [:]),
            ("RMSprop", ["rho": 0.8, "momentum": 0.1, "epsilon": 1e-6, "centered": true], [:]),
            ("Adagrad", ["initial_accumulator_value": 0.2, "epsilon": 1e-6], [:]),
            ("Adadelta", ["rho": 0.9, "epsilon": 1e-6], [:]),
            ("Adamax", ["beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6], [:]),
            ("Nadam", ["beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6], [:]),
        ]
        for (className, own, defaults) in cases {
            var config = own
            config["name"] = "a"
            config["learning_rate"] = 0.01
            config["clipnorm"] = 2.0
            let optimizer = try optimizers.make(["class_name": .string(className), "config": .object(config)],
                                                owner: "test", argument: "optimizer")
            #expect(type(of: optimizer).kerasClassName == className)
            let written = optimizer.config
            for (key, value) in own.merging(defaults, uniquingKeysWith: { a, _ in a }) {
                #expect(written[key]?.numberValue.map { Float($0) } == value.numberValue.map { Float($0) }
                        || written[key] == value, "\(className).\(key): \(written[key] ?? .null) against \(value)")
            }
            #expect(written["name"] == "a" && written["clipnorm"]?.numberValue == 2 && optimizer.learningRate == 0.01)
            // The snake_case name gives the class with its defaults.
            let byName = try optimizers.make(.string(className.lowercased()), owner: "test", argument: "optimizer")
            #expect(type(of: byName) == type(of: optimizer))
        }
    }

    @Test func optimizerOptionsKerasHasButLoomDoesNotAreRefusedByName() {
        for (key, value): (String, JSONValue) in [("use_ema", true), ("gradient_accumulation_steps", 4), ("loss_scale_factor", 2)] {
            #expect(throws: ConfigError("Adam", argument: key, "is not supported")) {
                try optimizers.make(["class_name": "Adam", "config": [key: value]], owner: "test", argument: "optimizer")
            }
        }
    }

    @Test func lossesReadTheirArgumentsAndTheCommonOnes() throws {
        let focal = try losses.make(["class_name": "BinaryFocalCrossentropy",
                                     "config": ["alpha": 0.5, "gamma": 3.0, "from_logits": true, "apply_class_balancing": true,
                                                "label_smoothing": 0.1, "reduction": "sum", "name": "f"]],
                                    owner: "test", argument: "loss")
        let f = try #require(focal as? BinaryFocalCrossentropy)
        #expect(f.alpha == 0.5 && f.gamma == 3 && f.fromLogits && f.applyClassBalancing && abs(f.labelSmoothing - 0.1) < 1e-7)
        #expect(f.reduction == .sum && f.name == "f")
        let mse = try losses.make("mse", owner: "test", argument: "loss")
        #expect(mse is MeanSquaredError && mse.name == "mean_squared_error" && mse.reduction == .sumOverBatchSize)
        #expect(throws: ConfigError.self) {
            try losses.make(["class_name": "Huber", "config": ["reduction": "average"]], owner: "test", argument: "loss")
        }
    }

    @Test func metricsByNameAndByConfig() throws {
        let top = try makeMetric(["class_name": "SparseTopKCategoricalAccuracy", "config": ["k": 2, "name": "top2"]])
        #expect((top as? SparseTopKCategoricalAccuracy)?.k == 2 && top.name == "top2")
        // Two of three samples have their label among the 2 highest scores.
        try top.update(Tensor([2, 0, 1]), Tensor(shape: [3, 3], scalars: [0.1, 0.5, 0.4, 0.2, 0.3, 0.5, 0.6, 0.3, 0.1]),
                       sampleWeight: nil)
        #expect(abs(top.result() - 2.0 / 3) < 1e-6)
        let precision = try makeMetric(["class_name": "Precision", "config": ["thresholds": [0.7]]])
        #expect((precision as? Precision)?.thresholds == [0.7])
        #expect(try makeMetric("mae").name == "mean_absolute_error")
        #expect(throws: ConfigError("compile", argument: "metrics", "unknown metric 'acuracy'")) { try makeMetric("acuracy") }
    }

    @Test func callbacksWriteEveryArgumentTheyRead() throws {
        let made = try callbacks.make(["class_name": "ReduceLROnPlateau", "config": ["patience": 3, "factor": 0.5]],
                                      owner: "test", argument: "callbacks")
        let r = try #require(made as? ReduceLROnPlateau)
        #expect(r.patience == 3 && r.factor == 0.5 && r.minDelta == 1e-4 && r.monitorKey == "val_loss")
        let again = try ReduceLROnPlateau.from(config: r.config)
        #expect(again.config == r.config)
    }

    @Test func schedulesReadTheirConfigsAndFillTheirDefaults() throws {
        let made = try learningRateSchedules.make(["class_name": "CosineDecay",
                                                   "config": ["initial_learning_rate": 0.1, "decay_steps": 100,
                                                              "warmup_target": 0.2, "warmup_steps": 10]],
                                                  owner: "test", argument: "learning_rate")
        let cosine = try #require(made as? CosineDecay)
        #expect(cosine.alpha == 0 && cosine.name == "CosineDecay" && cosine.warmupTarget == 0.2)
        // Halfway through the warmup: halfway from 0.1 to 0.2; at the end of the decay, alpha · 0.2 = 0.
        #expect(abs(cosine(5) - 0.15) < 1e-6 && abs(cosine(110)) < 1e-7)
        let exponential = try learningRateSchedules.make(["class_name": "ExponentialDecay",
                                                          "config": ["initial_learning_rate": 1.0, "decay_steps": 10, "decay_rate": 0.5]],
                                                         owner: "test", argument: "learning_rate")
        #expect(exponential.className == "ExponentialDecay" && abs(exponential(20) - 0.25) < 1e-7)
        #expect(throws: ConfigError("ExponentialDecay", argument: "decay_steps", "must be > 0, got 0")) {
            try learningRateSchedules.make(["class_name": "ExponentialDecay",
                                            "config": ["initial_learning_rate": 1.0, "decay_steps": 0, "decay_rate": 0.5]],
                                           owner: "test", argument: "learning_rate")
        }
    }
}
