import LoomData
import LoomTensor

extension Dataset where Element == Sample {
    /// The dataset's elements as fit reads them: each element one batch (batch the dataset
    /// first), each epoch the dataset's epoch.
    public var batchStream: BatchStream {
        BatchStream(count: count) { epoch in
            let cursor = try self.makeIterator(epoch: epoch)
            return { try cursor.next().map { TrainingBatch(x: $0.inputs, y: $0.targets, sampleWeight: $0.weight) } }
        }
    }
}

extension Model {
    /// fit on a batched dataset, e.g. `folder.dataset(workers: 2).batch(128).prefetch(2)`:
    /// decoding runs ahead of training on the pipeline's threads; History.dataWait says how
    /// long training waited for it.
    @discardableResult
    public func fit(_ dataset: Dataset<Sample>, epochs: Int = 1, verbose: Verbosity = .auto, callbacks: [Callback] = [],
                    validation: Dataset<Sample>? = nil, initialEpoch: Int = 0, stepsPerEpoch: Int? = nil,
                    validationFreq: Int = 1, workers: Int? = nil) throws -> History {
        try fit(dataset.batchStream, epochs: epochs, verbose: verbose, callbacks: callbacks, validation: validation?.batchStream,
                initialEpoch: initialEpoch, stepsPerEpoch: stepsPerEpoch, validationFreq: validationFreq, workers: workers)
    }
}
