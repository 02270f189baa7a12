import CLoomSIMD
import Foundation
import Synchronization
import LoomLayers
import LoomTensor

/// A thread's wait for a condition another thread makes true: it polls for a short while
/// (a sleeping thread takes tens of microseconds to wake on a virtual machine, several times
/// per training step), then sleeps until `notify`.
final class SpinThenSleep: Sendable {
    private let asleep = Atomic<Bool>(false)
    private let wake = DispatchSemaphore(value: 0)

    /// How long a waiter polls before it sleeps.
    static let spin = Duration.microseconds(200)

    /// Returns once `ready()` holds; `ready` must read with sequentially consistent loads.
    func wait(until ready: () -> Bool) {
        let start = ContinuousClock.now
        repeat {
            for _ in 0..<64 {
                if ready() { return }
                loom_cpu_relax()
            }
        } while ContinuousClock.now - start < SpinThenSleep.spin
        while true {
            // Raise the flag, then look again: a notifier that made the condition true before
            // seeing the flag does not signal, so this thread must not sleep on it.
            asleep.store(true, ordering: .sequentiallyConsistent)
            if ready() && asleep.exchange(false, ordering: .sequentiallyConsistent) { return }
            wake.wait()
            // The signal may be a late one, meant for an earlier wait that ended while polling
            // (its notifier was descheduled before it looked at the flag): look again.
            if ready() { return }
        }
    }

    /// Wakes the waiter if it sleeps; called after making its condition true.
    func notify() {
        if asleep.exchange(false, ordering: .sequentiallyConsistent) { wake.signal() }
    }
}

/// Long-lived worker threads: `run` hands one job to every worker, worker 0 being the calling
/// thread, and returns when all are done. Threads are kept from step to step and end when the
/// pool is released.
final class WorkerPool: @unchecked Sendable {
    /// What the threads share; they hold it, not the pool, so releasing the pool stops them
    /// without leaving them a dangling reference.
    private final class Control: @unchecked Sendable {
        /// Written by the caller before `generation` moves, read by workers after they see it move.
        var job: (@Sendable (Int) -> Void)?
        /// The number of jobs handed out so far.
        let generation = Atomic<Int>(0)
        /// Workers that finished the current job.
        let finished = Atomic<Int>(0)
        let stopping = Atomic<Bool>(false)
        let workers: [SpinThenSleep]
        let caller = SpinThenSleep()

        init(threads: Int) { workers = (0..<threads).map { _ in SpinThenSleep() } }

        func loop(worker k: Int) {
            var next = 1
            while true {
                workers[k - 1].wait { generation.load(ordering: .sequentiallyConsistent) >= next }
                next += 1
                if stopping.load(ordering: .sequentiallyConsistent) { return }
                job?(k)
                if finished.add(1, ordering: .sequentiallyConsistent).newValue == workers.count { caller.notify() }
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
        let control = self.control
        control.job = body
        control.finished.store(0, ordering: .sequentiallyConsistent)
        control.generation.add(1, ordering: .sequentiallyConsistent)
        for w in control.workers { w.notify() }
        body(0)
        control.caller.wait { control.finished.load(ordering: .sequentiallyConsistent) == control.workers.count }
        control.job = nil
    }

    deinit {
        control.stopping.store(true, ordering: .sequentiallyConsistent)
        control.generation.add(1, ordering: .sequentiallyConsistent)
        for w in control.workers { w.notify() }
    }
}

/// One worker's run of pieces (see `WorkerPool.run(pieces:on:_:)`): its owner takes them from the
/// front, a worker done with its own takes them from the back.
private final class PieceRun: Sendable {
    /// The run's front and back indices into the pieces' order, as back << 32 | front, so
    /// taking one is a single compare-and-swap and no piece is taken twice.
    private let ends: Atomic<Int>

    init(_ range: Range<Int>) { ends = Atomic(range.upperBound << 32 | range.lowerBound) }

    /// The index of a piece not yet taken, nil once the run is empty.
    func take(fromBack: Bool) -> Int? {
        var current = ends.load(ordering: .sequentiallyConsistent)
        while true {
            let front = current & 0xFFFF_FFFF, back = current >> 32
            guard front < back else { return nil }
            let next = fromBack ? (back - 1) << 32 | front : back << 32 | (front + 1)
            let (done, seen) = ends.compareExchange(expected: current, desired: next, ordering: .sequentiallyConsistent)
            if done { return fromBack ? back - 1 : front }
            current = seen
        }
    }
}

extension WorkerPool {
    /// Runs `body(worker, piece)` once for each piece in 0..<homes.count on the pool's threads,
    /// and waits for all. Worker homes[p] runs piece p, in order, unless it is still busy when
    /// another worker has run all of its own: that one then takes the busy worker's last pieces.
    /// So a worker the host holds up for a while does not hold up the step by its whole share.
    /// Which thread runs a piece must not change what the piece computes.
    static func run(pieces homes: [Int], on pool: WorkerPool?, _ body: @escaping @Sendable (_ worker: Int, _ piece: Int) -> Void) {
        guard let pool, pool.count > 1 else {
            for p in homes.indices { body(0, p) }
            return
        }
        let workers = pool.count
        precondition(homes.allSatisfy { (0..<workers).contains($0) }, "WorkerPool.run(pieces:): a home outside 0..<\(workers)")
        let order = homes.indices.sorted { (homes[$0], $0) < (homes[$1], $1) }
        var runs: [PieceRun] = [], start = 0
        for k in 0..<workers {
            let end = order[start...].firstIndex { homes[$0] != k } ?? order.endIndex
            runs.append(PieceRun(start..<end))
            start = end
        }
        pool.run { [runs] k in
            while let i = runs[k].take(fromBack: false) { body(k, order[i]) }
            for other in (1..<workers).map({ (k + $0) % workers }) {
                while let i = runs[other].take(fromBack: true) { body(k, order[i]) }
            }
        }
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
    /// The kernels' gradients as their products' factors, one record per worker in order:
    /// the optimizer computes them, each worker its rows, before the parts are added.
    let deferred: [DeferredWeightGradients]
    /// The layers' new state (BatchNormalization's moving statistics).
    let stateUpdates: ForwardContext
}

/// Where a step's batch came from, for a worker to name it when its shard's inputs are not
/// finite (see `checkFinite`).
struct InputCheck: Sendable {
    let batch: Int, firstSample: Int, method: String
}

/// A shard's inputs were not finite: the error is the batch's, not the worker's.
struct BadShardInput: Error {
    let error: LoomTrainingError
}

/// One shard's result or failure, written by its worker thread and read after the pool joins.
private final class ShardSlot<R>: @unchecked Sendable {
    var result: R?
    var error: (any Error)?
    init() {}
}

/// What one worker computed for its shard of a training or test step.
private struct ShardResult {
    var loss: Float
    var parts: [Float]
    var yPred: [Tensor]
    var gradients: Gradients
    var deferred: DeferredWeightGradients
    var context: ForwardContext
}

extension Model {
    /// The pool of `workers` threads, kept between steps while the count stays the same.
    func workerPool(_ workers: Int) -> WorkerPool {
        if let pool = pool, pool.count == workers { return pool }
        let pool = WorkerPool(count: workers)
        self.pool = pool
        return pool
    }

    /// The workers a batch of `samples` is split across: never more than one per sample.
    static func effectiveWorkers(_ requested: Int, samples: Int) -> Int { Swift.max(1, Swift.min(requested, samples)) }

    /// Runs `body` for each contiguous shard of `data` on its own worker thread (the model is
    /// built already) and returns the results in shard order. A failing shard aborts
    /// `group`, so shards waiting on it stop; the first real failure is thrown, naming the
    /// shard's samples when the batch was split.
    private func runShards<R>(_ data: ArrayData, workers requested: Int, group: ShardGroup?,
                              _ body: @escaping @Sendable (_ k: Int, _ shard: ArrayData, _ offset: Int) throws -> R) throws -> [R] {
        let n = data.count
        let workers = Model.effectiveWorkers(requested, samples: n)
        let bounds = (0...workers).map { $0 * n / workers }
        let slots = (0..<workers).map { _ in ShardSlot<R>() }
        workerPool(workers).run { k in
            do {
                slots[k].result = try body(k, data.rows(bounds[k]..<bounds[k + 1]), bounds[k])
            } catch let error as ShardGroupAborted {
                slots[k].error = error
            } catch let error as BadShardInput {
                slots[k].error = error
                group?.abort()
            } catch {
                // Shapes in the message are the shard's; say which samples it held.
                slots[k].error = workers == 1 ? error
                    : LoomTrainingError("\(error) (in samples \(bounds[k])..<\(bounds[k + 1]) of the batch, split across \(workers) workers)")
                group?.abort()
            }
        }
        let errors = slots.compactMap { $0.error }
        if let failure = errors.first(where: { !($0 is ShardGroupAborted) }) ?? errors.first { throw failure }
        return slots.map { $0.result! }
    }

    /// Each output of every shard, joined along the batch axis in shard order.
    private static func joined(_ shards: [[Tensor]]) -> [Tensor] {
        shards[0].indices.map { o in shards.count == 1 ? shards[0][o] : Tensor.concatenate(shards.map { $0[o] }, axis: 0) }
    }

    /// Forward and backward of one batch split into contiguous shards, one per worker: each
    /// worker's loss is weighted by its share of the batch so the gradients add up to the
    /// gradient of the whole batch's mean loss; the weight penalties are added once, after.
    /// With `inputCheck`, each worker first checks its shard's inputs are finite.
    func shardedStep(_ batch: ArrayData, compiled: CompiledModel, workers requested: Int, training: Bool,
                     inputCheck: InputCheck? = nil) throws -> StepResult {
        let n = batch.count
        let workers = Model.effectiveWorkers(requested, samples: n)
        let group = ShardGroup(workers: workers)
        let step = trainStepsRun, seed = self.seed
        // Built here, on this thread: the workers only read the model.
        try prepare(for: batch.inputsForShapes)
        let parameters = trainableWeights
        let shards = try runShards(batch, workers: workers, group: group) { [self] k, shard, offset in
            if let c = inputCheck {
                do throws(LoomTrainingError) {
                    try checkFinite(shard.x, batch: c.batch, firstSample: c.firstSample + offset, method: c.method)
                } catch {
                    throw BadShardInput(error: error)
                }
            }
            let weight = Float(shard.count) / Float(n)
            let deferred = DeferredWeightGradients(for: training ? parameters : [])
            let context = ForwardContext(training: training, seed: seed, step: step, sampleOffset: offset,
                                         shardGroup: group, worker: k, batchSize: n, deferredWeightGradients: deferred)
            // Evaluation needs no graph: without one, intermediates are freed as the pass goes.
            let yPred = try training ? forward(shard.x, context: context)
                : GradientRecording.disabled { try forward(shard.x, context: context) }
            let (loss, parts) = try compiled.loss(yTrue: shard.y, yPred: yPred, sampleWeight: shard.sampleWeight)
            // The loss is this shard's mean, so it is weighted by the shard's share; activity
            // penalties are already divided by the whole batch's size.
            var weighted = workers == 1 ? loss : loss * weight
            for l in context.losses { weighted = weighted + l }
            return ShardResult(loss: weighted.scalar, parts: parts.map { $0.scalar * weight }, yPred: yPred.map(\.detached),
                               gradients: training ? gradients(of: weighted, wrt: parameters, releasingGraph: true) : Gradients(),
                               deferred: deferred, context: context)
        }

        // Summed in worker order by the optimizer, so the result does not depend on which
        // thread finished first.
        var parts = shards.map(\.gradients)
        var penalty: Tensor? = nil
        for p in parameters {
            if let r = p.regularizer {
                let term = r.penalty(p.tracked)
                penalty = penalty.map { $0 + term } ?? term
            }
        }
        if let penalty, training { parts.append(gradients(of: penalty, wrt: parameters)) }
        let total = shards.reduce(Float(0)) { $0 + $1.loss } + (penalty?.scalar ?? 0)
        let outputLosses = shards[0].parts.indices.map { i in shards.reduce(Float(0)) { $0 + $1.parts[i] } }
        return StepResult(total: total, parts: outputLosses, yPred: Model.joined(shards.map(\.yPred)), gradients: parts,
                          deferred: shards.map(\.deferred), stateUpdates: shards[0].context)
    }

    /// Inference on a batch split across `workers` threads: the outputs, shards joined in order.
    func shardedPredict(_ x: [Tensor], workers requested: Int) throws -> [Tensor] {
        let n = x.first?.shape.first ?? 0
        let seed = self.seed
        try prepare(for: x)
        // A batch smaller than the workers (batch 1) cannot be split: its products use the idle
        // cores instead, through OpenBLAS's own threads (inference only, so no result of a fit
        // depends on it).
        let spare = requested / Model.effectiveWorkers(requested, samples: n)
        let blasThreads = BLAS.threads
        if spare > 1 { BLAS.threads = spare }
        defer { if spare > 1 { BLAS.threads = blasThreads } }
        let outputs = try runShards(ArrayData(x, [], nil, count: n), workers: requested, group: nil) { [self] _, shard, offset in
            let context = ForwardContext(training: false, seed: seed, sampleOffset: offset, batchSize: n)
            return try GradientRecording.disabled { try forward(shard.x, context: context) }
        }
        return Model.joined(outputs)
    }
}
