/// The loops behind every elementwise operation: unary maps and broadcasting binary maps over
/// raw buffers, eight lanes at a time. The per-element function is a closure inlined into the
/// loop, so each operation compiles to its own vector loop with no call or allocation inside.

/// dst[i] = f(src[i]) for i in 0..<n.
@inline(__always)
func unaryLoop(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int,
               _ f: (Vec) -> Vec) {
    var i = 0
    while i + 16 <= n {
        let a = f(load(src + i)), b = f(load(src + i + 8))
        store(a, dst + i)
        store(b, dst + i + 8)
        i += 16
    }
    while i + 8 <= n {
        store(f(load(src + i)), dst + i)
        i += 8
    }
    if i < n { storePartial(f(loadPartial(src + i, n - i)), dst + i, n - i) }
}

/// dst[i] = f(a[i * sa], b[i * sb]) for i in 0..<n, where each stride is 0 (broadcast) or 1.
@inline(__always)
func binaryLoop(_ a: UnsafePointer<Float>, _ sa: Int, _ b: UnsafePointer<Float>, _ sb: Int,
                _ dst: UnsafeMutablePointer<Float>, _ n: Int, _ f: (Vec, Vec) -> Vec) {
    var i = 0
    switch (sa, sb) {
    case (1, 1):
        while i + 16 <= n {
            let x = f(load(a + i), load(b + i)), y = f(load(a + i + 8), load(b + i + 8))
            store(x, dst + i)
            store(y, dst + i + 8)
            i += 16
        }
        while i + 8 <= n {
            store(f(load(a + i), load(b + i)), dst + i)
            i += 8
        }
        if i < n { storePartial(f(loadPartial(a + i, n - i), loadPartial(b + i, n - i)), dst + i, n - i) }
    case (1, _):
        let vb = Vec(repeating: b[0])
        while i + 8 <= n {
            store(f(load(a + i), vb), dst + i)
            i += 8
        }
        if i < n { storePartial(f(loadPartial(a + i, n - i), vb), dst + i, n - i) }
    case (_, 1):
        let va = Vec(repeating: a[0])
        while i + 8 <= n {
            store(f(va, load(b + i)), dst + i)
            i += 8
        }
        if i < n { storePartial(f(va, loadPartial(b + i, n - i)), dst + i, n - i) }
    default:
        let v = f(Vec(repeating: a[0]), Vec(repeating: b[0]))[0]
        for j in 0..<n { dst[j] = v }
    }
}

/// A broadcast plan: the output shape collapsed to as few axes as possible, with each
/// operand's strides over it. The innermost axis has stride 0 or 1 for both operands.
struct BroadcastPlan {
    var shape: [Int]
    var strides: [[Int]]
    let count: Int

    init(_ shapes: [[Int]], into out: [Int]) {
        count = elementCount(out)
        var dims = out
        var strides = shapes.map { broadcastStrides($0, to: out) }
        // Merge axis i into axis i + 1 when every operand steps through them as one axis.
        var i = dims.count - 2
        while i >= 0 {
            let mergeable = strides.allSatisfy { $0[i] == $0[i + 1] * dims[i + 1] }
            if mergeable {
                dims[i + 1] *= dims[i]
                dims.remove(at: i)
                for k in strides.indices { strides[k].remove(at: i) }
            }
            i -= 1
        }
        // Drop size-1 axes (they never move an offset), keeping at least one axis.
        var keep = dims.indices.filter { dims[$0] != 1 }
        if keep.isEmpty { keep = [dims.count - 1] }
        if dims.isEmpty {
            dims = [1]
            strides = strides.map { _ in [0] }
            keep = [0]
        }
        shape = keep.map { dims[$0] }
        self.strides = strides.map { s in keep.map { s[$0] } }
    }

    /// Calls `body(offsets, innerCount)` for each run of the innermost axis, with the
    /// starting offset of every operand.
    @inline(__always)
    func forEachRun(_ body: ([Int], Int) -> Void) {
        guard count > 0 else { return }
        let inner = shape[shape.count - 1]
        let outerRank = shape.count - 1
        var index = [Int](repeating: 0, count: outerRank)
        var offsets = [Int](repeating: 0, count: strides.count)
        let runs = count / inner
        for _ in 0..<runs {
            body(offsets, inner)
            // Advance the odometer over the outer axes.
            var axis = outerRank - 1
            while axis >= 0 {
                index[axis] += 1
                for k in offsets.indices { offsets[k] += strides[k][axis] }
                if index[axis] < shape[axis] { break }
                for k in offsets.indices { offsets[k] -= strides[k][axis] * shape[axis] }
                index[axis] = 0
                axis -= 1
            }
        }
    }

    /// The innermost stride of operand k (0 or 1).
    func innerStride(_ k: Int) -> Int { strides[k][strides[k].count - 1] }
}

extension Tensor {
    /// f applied to every element.
    @inline(__always)
    func mapElements(_ f: (Vec) -> Vec) -> Tensor {
        var out = Tensor(uninitializedShape: shape)
        let n = count
        withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in unaryLoop(src.baseAddress!, dst.baseAddress!, n, f) }
        }
        return out
    }

    /// f applied to pairs of elements of `a` and `b` broadcast together.
    @inline(__always)
    static func zipElements(_ a: Tensor, _ b: Tensor, _ f: (Vec, Vec) -> Vec) -> Tensor {
        let outShape: [Int]
        do { outShape = try broadcastShape(a.shape, b.shape) } catch { preconditionFailure("\(error)") }
        var out = Tensor(uninitializedShape: outShape)
        if a.shape == b.shape {
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    out.withUnsafeMutableBufferPointer { po in
                        binaryLoop(pa.baseAddress!, 1, pb.baseAddress!, 1, po.baseAddress!, po.count, f)
                    }
                }
            }
            return out
        }
        let plan = BroadcastPlan([a.shape, b.shape], into: outShape)
        let sa = plan.innerStride(0), sb = plan.innerStride(1)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { po in
                    var written = 0
                    plan.forEachRun { offsets, n in
                        binaryLoop(pa.baseAddress! + offsets[0], sa, pb.baseAddress! + offsets[1], sb,
                                   po.baseAddress! + written, n, f)
                        written += n
                    }
                }
            }
        }
        return out
    }

    /// f applied to triples of elements of three tensors of one shape.
    @inline(__always)
    static func zipElements(_ a: Tensor, _ b: Tensor, _ c: Tensor, _ f: (Vec, Vec, Vec) -> Vec) -> Tensor {
        precondition(a.shape == b.shape && b.shape == c.shape,
                     "elementwise: shapes \(a.shape), \(b.shape), \(c.shape) differ")
        var out = Tensor(uninitializedShape: a.shape)
        let n = a.count
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeBufferPointer { pc in
                    out.withUnsafeMutableBufferPointer { po in
                        let x = pa.baseAddress!, y = pb.baseAddress!, z = pc.baseAddress!, o = po.baseAddress!
                        var i = 0
                        while i + 8 <= n {
                            store(f(load(x + i), load(y + i), load(z + i)), o + i)
                            i += 8
                        }
                        if i < n {
                            let r = n - i
                            storePartial(f(loadPartial(x + i, r), loadPartial(y + i, r), loadPartial(z + i, r)), o + i, r)
                        }
                    }
                }
            }
        }
        return out
    }
}
