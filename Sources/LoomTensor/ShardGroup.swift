import Foundation

/// The workers of one data-parallel step, and the sum across them (an all-reduce) that layers
/// needing whole-batch statistics use (BatchNormalization). Every worker calls `sum` the same
/// number of times in the same order; each call waits for all of them and returns, to each, the
/// sum of their tensors taken in worker order, so every worker gets the same bits.
public final class ShardGroup: @unchecked Sendable {
    /// The number of workers.
    public let workers: Int
    private let condition = NSCondition()
    private var slots: [Tensor?]
    private var arrived = 0
    private var generation = 0
    private var result: Tensor?
    private var aborted = false

    public init(workers: Int) {
        precondition(workers >= 1, "ShardGroup: workers must be at least 1")
        self.workers = workers
        slots = Array(repeating: nil, count: workers)
    }

    /// The sum of every worker's `value` (all of one shape), in worker order. Throws when the
    /// group was aborted because another worker failed.
    public func sum(_ value: Tensor, worker: Int) throws -> Tensor {
        if workers == 1 { return value }
        condition.lock()
        defer { condition.unlock() }
        if aborted { throw ShardGroupAborted() }
        let round = generation
        slots[worker] = value.detached
        arrived += 1
        if arrived == workers {
            var total = slots[0]!
            for k in 1..<workers { total = total + slots[k]! }
            result = total
            slots = Array(repeating: nil, count: workers)
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            while generation == round && !aborted { condition.wait() }
            if generation == round { throw ShardGroupAborted() }
        }
        return result!
    }

    /// Wakes every waiting worker with an error: one worker failed, so the others must not
    /// wait for it.
    public func abort() {
        condition.lock()
        aborted = true
        condition.broadcast()
        condition.unlock()
    }

    /// Whether `abort` was called.
    public var isAborted: Bool {
        condition.lock()
        defer { condition.unlock() }
        return aborted
    }
}

/// Thrown in a worker when another worker of its step failed.
public struct ShardGroupAborted: Error, CustomStringConvertible {
    public var description: String { "another worker of this step failed" }
}

extension Tensor {
    /// The sum of this tensor over the workers of `group` (see `ShardGroup.sum`). Its gradient
    /// is the sum of the workers' gradients: each worker's output feeds every worker's loss.
    public func summedAcrossShards(_ group: ShardGroup, worker: Int) throws -> Tensor {
        let total = try group.sum(self, worker: worker)
        return Tensor.record("summedAcrossShards", total, [self]) { g in
            // A failed sum leaves the local gradient; the step is discarded by the trainer anyway.
            [(try? group.sum(g, worker: worker)) ?? g]
        }
    }
}
