/// Reductions over axes with keepdims: sum, mean, max, min, argmax, variance, logsumexp.
enum ReductionKind { case sum, max, min }

/// Reduces the middle axis of a contiguous [outer, n, inner] buffer into [outer, inner].
func reduceMiddleAxis(_ kind: ReductionKind, _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
                      outer: Int, n: Int, inner: Int) {
    if inner == 1 {
        for o in 0..<outer { dst[o] = reduceRow(kind, src + o * n, n) }
        return
    }
    guard n > 0 else {
        dst.update(repeating: kind == .sum ? 0 : kind == .max ? -.infinity : .infinity, count: outer * inner)
        return
    }
    for o in 0..<outer {
        let row = dst + o * inner
        let base = src + o * n * inner
        row.update(from: base, count: inner)
        for j in 1..<n {
            let s = base + j * inner
            switch kind {
            case .sum: binaryLoop(row, 1, s, 1, row, inner) { $0 + $1 }
            case .max: binaryLoop(row, 1, s, 1, row, inner) { vmax($0, $1) }
            case .min: binaryLoop(row, 1, s, 1, row, inner) { vmin($0, $1) }
            }
        }
    }
}

/// Reduces one contiguous row. Sums accumulate blocks of 256 in float lanes (8 adds per lane),
/// then the block totals in double, so rounding stays near one ulp for long rows.
@inline(__always)
func reduceRow(_ kind: ReductionKind, _ p: UnsafePointer<Float>, _ n: Int) -> Float {
    switch kind {
    case .sum:
        var total: Double = 0
        var start = 0
        while start < n {
            let end = min(n, start + 256)
            var a0 = Vec(), a1 = Vec(), a2 = Vec(), a3 = Vec()
            var i = start
            while i + 32 <= end {
                a0 += load(p + i); a1 += load(p + i + 8); a2 += load(p + i + 16); a3 += load(p + i + 24)
                i += 32
            }
            while i + 8 <= end { a0 += load(p + i); i += 8 }
            var block = ((a0 + a1) + (a2 + a3)).sum()
            while i < end { block += p[i]; i += 1 }
            total += Double(block)
            start = end
        }
        return Float(total)
    case .max, .min:
        let isMax = kind == .max
        var acc = Vec(repeating: isMax ? -.infinity : .infinity)
        var i = 0
        var sawNaN = false
        while i + 8 <= n {
            let v = load(p + i)
            if any(v .!= v) { sawNaN = true }
            acc = isMax ? vmax(acc, v) : vmin(acc, v)
            i += 8
        }
        var r = isMax ? acc.max() : acc.min()
        while i < n {
            if p[i].isNaN { sawNaN = true }
            r = isMax ? Swift.max(r, p[i]) : Swift.min(r, p[i])
            i += 1
        }
        return sawNaN ? .nan : r
    }
}

extension Tensor {
    /// Normalized, sorted, de-duplicated axes; nil means every axis.
    func resolveAxes(_ axes: [Int]?) -> [Int] {
        guard let axes else { return Array(0..<rank) }
        return Array(Set(axes.map { normalizeAxis($0, rank: rank) })).sorted()
    }

    /// The shape after reducing `axes`, with or without the reduced axes kept as size 1.
    func reducedShape(_ axes: [Int], keepDims: Bool) -> [Int] {
        keepDims ? shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
                 : shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
    }

    /// The raw reduction (no autodiff) over sorted axes, result with kept size-1 axes.
    func reduceRaw(_ kind: ReductionKind, _ axes: [Int]) -> Tensor {
        var current = self.detached
        var remaining = axes
        // Reduce runs of adjacent axes in one pass, from the last run to the first.
        while let last = remaining.last {
            var first = last
            while remaining.contains(first - 1) { first -= 1 }
            remaining.removeAll { $0 >= first && $0 <= last }
            let outer = current.shape[..<first].reduce(1, *)
            let n = current.shape[first...last].reduce(1, *)
            let inner = current.shape[(last + 1)...].reduce(1, *)
            var newShape = current.shape
            for a in first...last { newShape[a] = 1 }
            var out = Tensor(uninitializedShape: newShape)
            current.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    reduceMiddleAxis(kind, src.baseAddress!, dst.baseAddress!, outer: outer, n: n, inner: inner)
                }
            }
            current = out
        }
        return current
    }

    /// Sum over `axes` (every axis when nil).
    public func sum(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let axes = resolveAxes(axes)
        let kept = reduceRaw(.sum, axes)
        let result = kept.reshapedRaw(reducedShape(axes, keepDims: keepDims))
        let inputShape = shape, keptShape = kept.shape
        return Tensor.record("sum", result, [self]) { g in
            [g.reshaped(keptShape).broadcast(to: inputShape)]
        }
    }

    /// Sum over one axis.
    public func sum(axis: Int, keepDims: Bool = false) -> Tensor { sum(axes: [axis], keepDims: keepDims) }

    /// Mean over `axes` (every axis when nil).
    public func mean(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let axes = resolveAxes(axes)
        let n = axes.reduce(1) { $0 * shape[$1] }
        return sum(axes: axes, keepDims: keepDims) * (1 / Float(Swift.max(n, 1)))
    }

    /// Mean over one axis.
    public func mean(axis: Int, keepDims: Bool = false) -> Tensor { mean(axes: [axis], keepDims: keepDims) }

    /// Maximum over `axes`; the gradient is shared equally by tied maxima.
    public func max(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor { extremum(.max, axes, keepDims) }

    /// Minimum over `axes`; the gradient is shared equally by tied minima.
    public func min(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor { extremum(.min, axes, keepDims) }

    private func extremum(_ kind: ReductionKind, _ axes: [Int]?, _ keepDims: Bool) -> Tensor {
        let axes = resolveAxes(axes)
        let kept = reduceRaw(kind, axes)
        let result = kept.reshapedRaw(reducedShape(axes, keepDims: keepDims))
        let x = detached, keptShape = kept.shape
        return Tensor.record(kind == .max ? "max" : "min", result, [self]) { g in
            let hits = x.equal(kept)
            let ties = hits.reduceRaw(.sum, axes)
            return [hits * (g.reshaped(keptShape) / ties)]
        }
    }

    /// Population variance over `axes` (NumPy's ddof = 0, as Keras).
    public func variance(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let axes = resolveAxes(axes)
        let centered = self - mean(axes: axes, keepDims: true)
        return (centered * centered).mean(axes: axes, keepDims: keepDims)
    }

    /// log(sum(exp(x))) over `axes`, computed stably by shifting by the maximum.
    public func logSumExp(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let axes = resolveAxes(axes)
        var shift = reduceRaw(.max, axes)
        // An all -inf slice would give inf - inf; shift by 0 there instead.
        shift = shift.mapElements { vselect(vabs($0) .== Float.infinity, Vec(), $0) }
        let summed = (self - shift).exp().sum(axes: axes, keepDims: true).log() + shift
        return summed.reshaped(reducedShape(axes, keepDims: keepDims))
    }

    /// Index of the maximum along `axis` (first one on ties), as float values.
    public func argmax(axis: Int = -1, keepDims: Bool = false) -> Tensor { argExtremum(axis, keepDims, greater: true) }

    /// Index of the minimum along `axis` (first one on ties), as float values.
    public func argmin(axis: Int = -1, keepDims: Bool = false) -> Tensor { argExtremum(axis, keepDims, greater: false) }

    private func argExtremum(_ axis: Int, _ keepDims: Bool, greater: Bool) -> Tensor {
        let a = normalizeAxis(axis, rank: rank)
        let outer = shape[..<a].reduce(1, *), n = shape[a], inner = shape[(a + 1)...].reduce(1, *)
        precondition(n > 0, "argmax: axis \(axis) of shape \(shape) is empty")
        var out = Tensor(uninitializedShape: reducedShape([a], keepDims: keepDims))
        withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for o in 0..<outer {
                    for i in 0..<inner {
                        var best = src[o * n * inner + i], bestIndex = 0
                        for j in 1..<n {
                            let v = src[(o * n + j) * inner + i]
                            if greater ? v > best : v < best { best = v; bestIndex = j }
                        }
                        dst[o * inner + i] = Float(bestIndex)
                    }
                }
            }
        }
        return out
    }

    /// Sums a gradient of a broadcast result back to `target`, the shape of the operand
    /// that was broadcast.
    func sumToShape(_ target: [Int]) -> Tensor {
        if shape == target { return self }
        let offset = rank - target.count
        var axes = Array(0..<offset)
        for (i, d) in target.enumerated() where d == 1 && shape[i + offset] != 1 { axes.append(i + offset) }
        return sum(axes: axes, keepDims: true).reshaped(target)
    }
}
