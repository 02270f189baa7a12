import Foundation
import LoomLayers
import LoomTensor

/// Long-lived worker threads: `run` hands one job to every worker, worker 0 being the calling
/// thread, and returns when all are done. Threads are kept from step to step and end when the
/// pool is released.
final class WorkerPool: @unchecked Sendable {
    /// What the threads share; they hold it, not the pool, so releasing the pool stops them
    /// without leaving them a dangling reference.
    private final class Control: @unchecked Sendable {
        var job: (@Sendable (Int) -> Void)?
        var stopping = false
        let starts: [DispatchSemaphore]
        let finished = DispatchSemaphore(value: 0)

        init(threads: Int) { starts = (0..<threads).map { _ in DispatchSemaphore(value: 0) } }

        func loop(worker k: Int) {
            while true {
                starts[k - 1].wait()
                if stopping { return }
                job?(k)
                finished.signal()
            }
        }
    }

    let count: Int
    private let control: Control

    init(count: Int) {
        self.count = count
        control = Control(threads: Swift.max(0, count - 1))
        for k in 1..<Swift.max(count, 1) {
            let thread = Thread { [control] in control.loop(worker: k) }
            thread.name = "loom-worker-\(k)"
            thread.stackSize = 16 << 20  // backward passes through deep graphs recurse
            thread.start()
        }
    }

    /// Runs `body(k)` for k in 0..<count, each on its own thread, and waits for all.
    func run(_ body: @escaping @Sendable (Int) -> Void) {
        control.job = body
        for s in control.starts { s.signal() }
        body(0)
        for _ in control.starts { control.finished.wait() }
        control.job = nil
    }

    deinit {
        control.stopping = true
        for s in control.starts { s.signal() }
    }
}

/// The number of workers fit uses by default: $LOOM_WORKERS, else the number of cores.
public func defaultWorkerCount() -> Int {
    if let text = ProcessInfo.processInfo.environment["LOOM_WORKERS"], let n = Int(text), n >= 1 { return n }
    return ProcessInfo.processInfo.activeProcessorCount
}

/// What one data-parallel step computed.
struct StepResult {
    /// The loss Keras reports for the batch: mean loss plus every penalty.
    let total: Float
    /// Each output's own loss, for models with several outputs.
    let parts: [Float]
    /// The outputs for the whole batch, shards joined in order.
    let yPred: [Tensor]
    /// The gradients in parts, summed in order by the optimizer: one per worker, then the
    /// weight penalties'.
    let gradients: [Gradients]
    /// The layers' new state (BatchNormalization's moving statistics).
    let stateUpdates: ForwardContext
}

extension Model {
    /// The workers this model's fit splits batches across (set once per fit).
    func workerPool(_ workers: Int) -> WorkerPool {
        if let pool = pool, pool.count == workers { return pool }
        let pool = WorkerPool(count: workers)
        self.pool = pool
        return pool
    }

    /// Forward and backward of one batch split into contiguous shards, one per worker: each
    /// worker's loss is weighted by its share of the batch so the gradients add up to the
    /// gradient of the whole batch's mean loss; the weight penalties are added once, after.
    func shardedStep(_ batch: ArrayData, compiled: CompiledModel, workers requested: Int, training: Bool) throws -> StepResult {
        let n = batch.count
        let workers = Swift.max(1, Swift.min(requested, n))
        let bounds = (0...workers).map { $0 * n / workers }
        let group = ShardGroup(workers: workers)
        try prepare(for: batch.x)
        let parameters = trainableWeights
        let step = trainStepsRun
        let seed = self.seed

        final class Slot: @unchecked Sendable {
            var loss: Float = 0
            var parts: [Float] = []
            var yPred: [Tensor] = []
            var gradients = Gradients()
            var context: ForwardContext?
            var error: (any Error)?
        }
        let slots = (0..<workers).map { _ in Slot() }
        let pool = workerPool(workers)
        pool.run { [self] k in
            guard k < workers else { return }
            let slot = slots[k]
            do {
                let shard = batch.rows(bounds[k]..<bounds[k + 1])
                let weight = Float(shard.count) / Float(n)
                let context = ForwardContext(training: training, seed: seed, step: step, sampleOffset: bounds[k],
                                             shardGroup: group, worker: k, batchSize: n)
                let yPred = try forward(shard.x, context: context)
                let (loss, parts) = try compiled.loss(yTrue: shard.y, yPred: yPred, sampleWeight: shard.sampleWeight)
                // The loss is this shard's mean, so it is weighted by the shard's share; activity
                // penalties are already divided by the whole batch's size.
                var weighted = workers == 1 ? loss : loss * weight
                for l in context.losses { weighted = weighted + l }
                slot.loss = weighted.scalar
                slot.parts = parts.map { $0.scalar * weight }
                slot.yPred = yPred.map(\.detached)
                slot.context = context
                if training { slot.gradients = gradients(of: weighted, wrt: parameters) }
            } catch let error as ShardGroupAborted {
                slot.error = error
                group.abort()
            } catch {
                // Shapes in the message are the shard's; say which samples it held.
                slot.error = workers == 1 ? error
                    : LoomTrainingError("\(error) (in samples \(bounds[k])..<\(bounds[k + 1]) of the batch, split across \(workers) workers)")
                group.abort()
            }
        }
        if let failure = slots.compactMap(\.error).first(where: { !($0 is ShardGroupAborted) }) ?? slots.compactMap(\.error).first {
            throw failure
        }

        // Summed in worker order by the optimizer, so the result does not depend on which
        // thread finished first.
        var parts = slots.map(\.gradients)
        var penalty: Tensor? = nil
        for p in parameters {
            if let r = p.regularizer {
                let term = r.penalty(p.tracked)
                penalty = penalty.map { $0 + term } ?? term
            }
        }
        if let penalty, training { parts.append(gradients(of: penalty, wrt: parameters)) }
        let total = slots.reduce(Float(0)) { $0 + $1.loss } + (penalty?.scalar ?? 0)
        let outputLosses = (0..<(slots.first?.parts.count ?? 0)).map { i in slots.reduce(Float(0)) { $0 + $1.parts[i] } }
        let yPred = slots[0].yPred.indices.map { o in
            workers == 1 ? slots[0].yPred[o] : Tensor.concatenate(slots.map { $0.yPred[o] }, axis: 0)
        }
        return StepResult(total: total, parts: outputLosses, yPred: yPred, gradients: parts,
                          stateUpdates: slots[0].context!)
    }

    /// Inference on a batch split across `workers` threads: the outputs, shards joined in order.
    func shardedPredict(_ x: [Tensor], workers requested: Int) throws -> [Tensor] {
        let n = x.first?.shape.first ?? 0
        let workers = Swift.max(1, Swift.min(requested, n))
        if workers == 1 { return try forward(x, context: ForwardContext(training: false, seed: seed)).map(\.detached) }
        let bounds = (0...workers).map { $0 * n / workers }
        try prepare(for: x)
        final class Slot: @unchecked Sendable {
            var outputs: [Tensor] = []
            var error: (any Error)?
        }
        let slots = (0..<workers).map { _ in Slot() }
        let data = ArrayData(x, [], nil, count: n)
        let seed = self.seed
        workerPool(workers).run { [self] k in
            do {
                let shard = data.rows(bounds[k]..<bounds[k + 1])
                let context = ForwardContext(training: false, seed: seed, sampleOffset: bounds[k], batchSize: n)
                slots[k].outputs = try forward(shard.x, context: context).map(\.detached)
            } catch {
                slots[k].error = error
            }
        }
        if let error = slots.compactMap(\.error).first { throw error }
        return slots[0].outputs.indices.map { o in Tensor.concatenate(slots.map { $0.outputs[o] }, axis: 0) }
    }
}
