/// Shape helpers: element counts, row-major strides and NumPy broadcasting.
public enum ShapeError: Error, CustomStringConvertible, Equatable {
    case notBroadcastable([Int], [Int])
    case invalid(String)

    public var description: String {
        switch self {
        case let .notBroadcastable(a, b):
            return "shapes \(a) and \(b) cannot be broadcast together"
        case let .invalid(message):
            return message
        }
    }
}

@inline(__always) func elementCount(_ shape: [Int]) -> Int { shape.reduce(1, *) }

/// Row-major strides of a contiguous tensor of `shape`.
@inline(__always) func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var s = 1
    for axis in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[axis] = s
        s *= shape[axis]
    }
    return strides
}

/// NumPy broadcasting: shapes are aligned on their last axis; each pair of sizes must be equal
/// or one of them 1; the shorter shape is padded with leading 1s.
public func broadcastShape(_ a: [Int], _ b: [Int]) throws(ShapeError) -> [Int] {
    let rank = max(a.count, b.count)
    var result = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        if da == db || db == 1 {
            result[i] = da
        } else if da == 1 {
            result[i] = db
        } else {
            throw .notBroadcastable(a, b)
        }
    }
    return result
}

/// Strides that read a contiguous tensor of `shape` as if it had `target` shape (0 on broadcast axes).
func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
    let own = contiguousStrides(shape)
    let offset = target.count - shape.count
    var result = [Int](repeating: 0, count: target.count)
    for i in 0..<shape.count where shape[i] != 1 || target[i + offset] == 1 {
        result[i + offset] = shape[i] == 1 ? 0 : own[i]
    }
    return result
}

/// Resolves a possibly negative axis against `rank`.
@inline(__always) func normalizeAxis(_ axis: Int, rank: Int, _ function: String = #function) -> Int {
    let a = axis < 0 ? axis + rank : axis
    precondition(a >= 0 && a < max(rank, 1), "\(function): axis \(axis) is out of range for rank \(rank)")
    return a
}
