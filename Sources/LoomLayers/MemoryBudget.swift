import LoomTensor

/// A bound on the memory a model's weights may take, checked as each weight is created and
/// before its bytes are allocated: a model too large for the machine is refused at once, with
/// the layer and the figures, instead of growing until the kernel kills the process.
///
/// Set for a piece of work with `MemoryBudget.$current.withValue(budget) { ... }`; where none
/// is set (the Swift API), weights are created without a check, as Keras does.
public final class MemoryBudget: Sendable {
    /// What may be taken.
    public let limit: MemoryLimit
    /// Float copies the work keeps of each trainable weight: 1 to run a model; to train, its
    /// value, the optimizer's slots and a gradient.
    public let trainableCopies: Int
    /// Those copies in words, for the message ("the value, 2 Adam slots and a gradient").
    public let copiesExplained: String
    /// Whether weights are left uninitialized: a model built only to be measured, whose
    /// untouched pages cost no memory (and whose initializers cost no time).
    public let sizingOnly: Bool
    private let state = SystemLock(Reserved())

    private struct Reserved {
        var bytes = 0
        /// The weight that takes the most with its copies; `bytes` is one copy's.
        var largest: (layer: String, weight: String, shape: [Int], bytes: Int, copies: Int)? = nil
    }

    /// A budget for running a model: one copy of each weight.
    public convenience init(limit: MemoryLimit) {
        self.init(limit: limit, trainableCopies: 1, copiesExplained: "")
    }

    public init(limit: MemoryLimit, trainableCopies: Int, copiesExplained: String, sizingOnly: Bool = false) {
        self.limit = limit
        self.trainableCopies = trainableCopies
        self.copiesExplained = copiesExplained
        self.sizingOnly = sizingOnly
    }

    /// `build` run to measure a model before the real one is made: under this budget with
    /// weights left uninitialized, and with layer names drawn from a private copy of the
    /// counters, so the real build gets the same names ("dense", not "dense_2").
    public func sizing<T>(_ build: () throws -> T) throws -> T {
        let sizer = MemoryBudget(limit: limit, trainableCopies: trainableCopies, copiesExplained: copiesExplained, sizingOnly: true)
        return try MemoryBudget.$current.withValue(sizer) { try LayerNames.withPrivateCounters(build) }
    }

    /// The budget the model being built is checked against (none by default).
    @TaskLocal public static var current: MemoryBudget?

    /// Counts a weight of `count` elements against the limit, or refuses it naming the layer
    /// with the largest weight so far.
    func reserve(layer: String, weight: String, shape: [Int], count: Int, trainable: Bool) throws(ConfigError) {
        let copies = trainable ? trainableCopies : 1
        let (total, largest) = state.withLock { r in
            let bytes = count * 4
            r.bytes += bytes * copies
            if bytes * copies > r.largest.map({ $0.bytes * $0.copies }) ?? -1 { r.largest = (layer, weight, shape, bytes, copies) }
            return (r.bytes, r.largest!)
        }
        guard total > limit.bytes else { return }
        let kept = largest.copies > 1 ? ", kept \(largest.copies) times (\(copiesExplained))" : ""
        throw ConfigError(largest.layer, "its weight \(largest.weight) of shape \(largest.shape) takes "
            + "\(readableBytes(largest.bytes))\(kept); the model's weights need at least \(readableBytes(total)), "
            + "more than the \(limit) this machine can give: make the layer smaller, or set the limit with --max-memory")
    }
}
