import LoomTensor

extension Optimizer {
    /// About how many elements of a large weight one piece of the parallel update holds: small
    /// enough that a worker done early can take over part of a late one's share, large enough
    /// that a kernel's rows computed from products keep sgemm efficient.
    static let pieceElements = 65_536

    /// One step from gradients in parts (one per worker, summed in order) and kernels' products
    /// recorded by the workers (`deferred`, in worker order): the kernels' gradients, the sum,
    /// the decay and the update run on the pool's threads, in pieces of the weights (whole rows
    /// of a kernel computed from products, the first part), each worker's own first, then what
    /// a late worker has not begun. The pieces depend only on the shapes and the worker count,
    /// so which thread runs one does not change the result.
    /// Without clipping, each piece is summed a few thousand elements at a time into a buffer
    /// that stays in cache and updated from there (a single part is read in place); clipping
    /// needs whole norms, so it sums whole weights first and clips between.
    func apply(_ parts: [Gradients], deferred: [DeferredWeightGradients] = [], to parameters: [Parameter], pool: WorkerPool?) {
        var recorded: [Parameter: [DeferredWeightGradients.Factors]] = [:]
        for d in deferred {
            for (p, f) in d.products { recorded[p, default: []].append(f) }
        }
        let updated = parameters.filter { p in recorded[p] != nil || parts.contains { $0[p] != nil } }
        let lr = learningRate
        let decay = (options.weightDecay ?? 0) * lr
        beginStep()
        // Everything the threads touch is made here: slots, kernels' gradients and with clipping
        // the merged gradients. Pointers stay valid while these arrays hold their tensors.
        let needsClip = [options.clipnorm, options.clipvalue, options.globalClipnorm].contains { ($0 ?? 0) > 0 }
        // Taken out of the parameters and updated in place: writing new values over the old
        // ones spares a buffer as large as the model and a pass of cache misses to fill it. (A
        // value another reference still holds is copied first.) Until they are put back, the
        // parameters read empty, so shapes come from here.
        var values = updated.map { $0.take() }
        let valueBuffers = values.indices.map { i in values[i].withUnsafeMutableBufferPointer { $0.baseAddress! } }
        // A kernel's gradient from its products goes into a tensor of its own, the first part.
        let factors = updated.map { recorded[$0] ?? [] }
        var computed = factors.indices.map { i in factors[i].isEmpty ? nil : Tensor(uninitializedShape: values[i].shape) }
        let computedBuffers = computed.indices.map { i in computed[i]?.withUnsafeMutableBufferPointer { $0.baseAddress! } }
        let sources = updated.map { p in parts.compactMap { $0[p] } }
        let sourceBuffers = sources.indices.map { i in
            (computedBuffers[i].map { [UnsafePointer($0)] } ?? []) + sources[i].map { t in t.withUnsafeBufferPointer { $0.baseAddress! } }
        }
        var merged = needsClip ? values.map { Tensor(uninitializedShape: $0.shape) } : []
        let mergedBuffers = merged.indices.map { i in merged[i].withUnsafeMutableBufferPointer { $0.baseAddress! } }
        // Taken out of the table, so the slots are uniquely owned and updated without a copy.
        var slotTensors = updated.indices.map { i in
            slots.removeValue(forKey: ObjectIdentifier(updated[i])) ?? makeSlots(for: values[i])
        }
        let slotBuffers = slotTensors.indices.map { i in
            slotTensors[i].indices.map { j in slotTensors[i][j].withUnsafeMutableBufferPointer { $0.baseAddress! } }
        }
        let workers = pool?.count ?? 1

        // Elements a piece of weight i is cut at: whole rows of a kernel computed from products.
        let rowLength = updated.indices.map { i in factors[i].isEmpty ? 1 : values[i].shape[1] }
        // The pieces of the update: small weights whole, each on one worker in turn; large ones
        // split evenly across the workers, each worker's part cut into pieces of about
        // `Optimizer.pieceElements`, which a worker done early may take from a late one.
        var pieces: [(weight: Int, elements: Range<Int>)] = [], homes: [Int] = []
        for i in values.indices {
            let n = values[i].count
            if n < 32_768 {
                pieces.append((i, 0..<n))
                homes.append(i % workers)
                continue
            }
            let rows = n / rowLength[i]
            let perWorker = Swift.max(1, (n / workers + Optimizer.pieceElements / 2) / Optimizer.pieceElements)
            let count = workers * perWorker
            for j in 0..<count where j * rows / count < (j + 1) * rows / count {
                pieces.append((i, (j * rows / count * rowLength[i])..<((j + 1) * rows / count * rowLength[i])))
                homes.append(j / perWorker)
            }
        }
        // Rows r of a kernel computed from products, before its parts are read.
        func computeRows(_ i: Int, _ r: Range<Int>) {
            guard let out = computedBuffers[i] else { return }
            DeferredWeightGradients.sumRows((r.lowerBound / rowLength[i])..<(r.upperBound / rowLength[i]),
                                            of: factors[i], into: out)
        }
        // Elements r of weight i's parts, summed in part order into `out`.
        func sum(_ i: Int, _ r: Range<Int>, into out: UnsafeMutablePointer<Float>) {
            out.update(from: sourceBuffers[i][0] + r.lowerBound, count: r.count)
            for source in sourceBuffers[i].dropFirst() {
                let src = source + r.lowerBound
                for e in 0..<r.count { out[e] += src[e] }
            }
        }
        // Elements r of weight i decayed and updated from their gradient g; `s` is filled with
        // the slots' pointers at r (an array the caller keeps, so chunks allocate nothing).
        func update(_ i: Int, _ r: Range<Int>, gradient g: UnsafePointer<Float>, slots s: inout [UnsafeMutablePointer<Float>]) {
            let w = valueBuffers[i] + r.lowerBound
            for j in s.indices { s[j] = slotBuffers[i][j] + r.lowerBound }
            if decay != 0 {
                // Keras decays the weight before the update reads it.
                for e in 0..<r.count { w[e] = w[e] - w[e] * decay }
            }
            updateElements(r.count, w, w, g, s, learningRate: lr)
        }
        func sumWhole(_ p: Int) {
            let (i, r) = pieces[p]
            computeRows(i, r)
            sum(i, r, into: mergedBuffers[i] + r.lowerBound)
        }
        func stepFromMerged(_ p: Int) {
            let (i, r) = pieces[p]
            var slots = slotBuffers[i]
            update(i, r, gradient: mergedBuffers[i] + r.lowerBound, slots: &slots)
        }
        func sumAndStep(_ p: Int) {
            let (i, r) = pieces[p]
            computeRows(i, r)
            var slots = slotBuffers[i]
            if sourceBuffers[i].count == 1 {
                update(i, r, gradient: sourceBuffers[i][0] + r.lowerBound, slots: &slots)
                return
            }
            let chunk = 4096
            withUnsafeTemporaryAllocation(of: Float.self, capacity: chunk) { scratch in
                for start in stride(from: r.lowerBound, to: r.upperBound, by: chunk) {
                    let piece = start..<Swift.min(start + chunk, r.upperBound)
                    sum(i, piece, into: scratch.baseAddress!)
                    update(i, piece, gradient: scratch.baseAddress!, slots: &slots)
                }
            }
        }
        nonisolated(unsafe) let sumJob = sumWhole, stepJob = stepFromMerged, fusedJob = sumAndStep
        if needsClip {
            WorkerPool.run(pieces: homes, on: pool) { _, p in sumJob(p) }
            let clipped = clip(merged)
            for (i, c) in clipped.enumerated() {
                c.withUnsafeBufferPointer { mergedBuffers[i].update(from: $0.baseAddress!, count: $0.count) }
            }
            WorkerPool.run(pieces: homes, on: pool) { _, p in stepJob(p) }
        } else {
            WorkerPool.run(pieces: homes, on: pool) { _, p in fusedJob(p) }
        }
        withExtendedLifetime((sources, computed, factors, merged, values, slotTensors)) {}
        for (i, p) in updated.enumerated() {
            slots[ObjectIdentifier(p)] = slotTensors[i]
            p.restore(values[i])
            if let c = p.constraint { p.assign(c.project(p.value)) }
        }
        iterations += 1
    }
}
