import Foundation
import LoomLayers
import LoomTensor
import LoomTestSupport
import Testing
@testable import LoomModels

/// Misuse gets an error that says what is wrong and where, never a crash.
@Suite struct TrainingErrorTests {
    static func classifier() throws -> Sequential {
        let model = try Sequential([try Dense(units: 8, activation: .relu), try Dense(units: 10, activation: .softmax)])
        try model.build(inputShape: [nil, 4])
        return model
    }

    static let x = Tensor.randomNormal([40, 4], generator: RandomGenerator(seed: 2))
    static let labels = Tensor((0..<40).map { Float($0 % 10) })

    @Test func fitBeforeCompile() throws {
        let model = try Self.classifier()
        expectError("you must call compile() before fit()") { try model.fit(x: Self.x, y: Self.labels, verbose: .silent) }
        expectError("compile() before evaluate()") { try model.evaluate(x: Self.x, y: Self.labels, verbose: .silent) }
    }

    @Test func lossThatDoesNotFitTheOutput() throws {
        let model = try Self.classifier()
        try model.compile(optimizer: try SGD(), loss: CategoricalCrossentropy())
        // Integer labels with a one-hot loss: the message names the loss, both shapes and the fix.
        expectError("categorical_crossentropy: y_true of shape [32] does not match the model output of shape [32, 10] "
                    + "(integer class labels go with sparse_categorical_crossentropy)") {
            try model.fit(x: Self.x, y: Self.labels, verbose: .silent, workers: 1)
        }
        // Split across workers, the message says which samples the shard held.
        expectError("y_true of shape [16] does not match the model output of shape [16, 10] "
                    + "(integer class labels go with sparse_categorical_crossentropy) (in samples 0..<16 of the batch, split across 2 workers)") {
            try model.fit(x: Self.x, y: Self.labels, verbose: .silent, workers: 2)
        }
        try model.compile(optimizer: try SGD(), loss: MeanSquaredError())
        expectError("mean_squared_error: y_true of shape [32, 3] does not match the model output of shape [32, 10]") {
            try model.fit(x: Self.x, y: Tensor.zeros([40, 3]), verbose: .silent, workers: 1)
        }
        expectError("epoch 1, batch 0") { try model.fit(x: Self.x, y: Tensor.zeros([40, 3]), verbose: .silent) }
    }

    @Test func sparseLabelsOutOfRange() throws {
        let model = try Self.classifier()
        try model.compile(optimizer: try SGD(), loss: SparseCategoricalCrossentropy())
        var bad = Self.labels.scalars
        bad[37] = 10
        expectError("label 10.0 of sample 37 is out of range for sparse_categorical_crossentropy: the output 'dense_") {
            try model.fit(x: Self.x, y: Tensor(bad), verbose: .silent)
        }
        bad[37] = 2.5
        expectError("label 2.5 of sample 37") { try model.evaluate(x: Self.x, y: Tensor(bad), verbose: .silent) }
        // The loss alone reports it too.
        expectError("label -1.0 of sample 1 is out of range") {
            _ = try SparseCategoricalCrossentropy()(Tensor([0, -1]), Tensor.full([2, 3], 1.0 / 3))
        }
    }

    @Test func inputsAndLabelsOfDifferentLengths() throws {
        let model = try Self.classifier()
        try model.compile(optimizer: try SGD(), loss: SparseCategoricalCrossentropy())
        expectError("data cardinality is ambiguous: make sure all arrays contain the same number of samples (x[0]: 40, y[0]: 39)") {
            try model.fit(x: Self.x, y: Tensor(Array(Self.labels.scalars.prefix(39))), verbose: .silent)
        }
        expectError("sample_weight: 7") {
            try model.fit(x: Self.x, y: Self.labels, verbose: .silent, sampleWeight: Tensor.ones([7]))
        }
    }

    @Test func nanInTheInputsNamesTheBatch() throws {
        let model = try Self.classifier()
        try model.compile(optimizer: try SGD(), loss: SparseCategoricalCrossentropy())
        var values = Self.x.scalars
        values[35 * 4 + 2] = .nan
        let x = Tensor(shape: [40, 4], scalars: values)
        let before = model.weights.map(\.value.scalars)
        expectError("fit (epoch 1): batch 1 has nan in input 0 at sample 35; inputs must be finite") {
            try model.fit(x: x, y: Self.labels, batchSize: 32, verbose: .silent, shuffle: false)
        }
        // The first batch trained; the bad one was refused before it touched the weights.
        #expect(model.weights.map(\.value.scalars) != before)
        expectError("predict: batch 3 has nan in input 0 at sample 35") { _ = try model.predict(x, batchSize: 10, verbose: .silent) }
    }

    @Test(arguments: [1, 2, 4])
    func nanInALaterShardNamesItsSample(workers: Int) throws {
        // Each worker checks its own shard: the sample is counted from the batch's first.
        let model = try Self.classifier()
        try model.compile(optimizer: try SGD(), loss: SparseCategoricalCrossentropy())
        var values = Self.x.scalars
        values[37 * 4] = .infinity
        values[39 * 4 + 3] = .nan
        let x = Tensor(shape: [40, 4], scalars: values)
        expectError("fit (epoch 1): batch 1 has inf in input 0 at sample 37; inputs must be finite") {
            try model.fit(x: x, y: Self.labels, batchSize: 32, verbose: .silent, shuffle: false, workers: workers)
        }
    }

    @Test func badArguments() throws {
        let model = try Self.classifier()
        try model.compile(optimizer: try SGD(), loss: SparseCategoricalCrossentropy())
        expectError("argument `batch_size`: must be positive, got 0") { try model.fit(x: Self.x, y: Self.labels, batchSize: 0, verbose: .silent) }
        expectError("argument `validation_split`: must be in [0, 1), got 1.5") {
            try model.fit(x: Self.x, y: Self.labels, verbose: .silent, validationSplit: 1.5)
        }
        expectError("argument `class_weight`: has no weight for class 1 (sample 1)") {
            try model.fit(x: Self.x, y: Self.labels, verbose: .silent, classWeight: [0: 1])
        }
        expectError("only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set") { _ = try SGD(clipnorm: 1, clipvalue: 1) }
        expectError("unknown optimizer 'adamm'") { try model.compile(optimizer: "adamm", loss: "mse") }
        expectError("unknown loss 'msee'") { try model.compile(optimizer: "adam", loss: "msee") }
        expectError("unknown metric 'acuracy'") {
            try model.compile(optimizer: "adam", loss: "sparse_categorical_crossentropy", metrics: ["acuracy"])
            try model.fit(x: Self.x, y: Self.labels, verbose: .silent)
        }
        expectError("the model has 1 output but 2 label arrays were given") {
            try model.fit(x: [Self.x], y: [Self.labels, Self.labels], verbose: .silent)
        }
    }
}
