/// The one copy loop behind reshaping ops: copies a box of `shape` elements from `src` to
/// `dst`, each side with its own strides (in elements). Transpose, slice, pad, concatenate,
/// split and broadcast are all this loop with different strides.
func stridedCopy(_ src: UnsafePointer<Float>, _ srcStrides: [Int],
                 _ dst: UnsafeMutablePointer<Float>, _ dstStrides: [Int], _ shape: [Int],
                 accumulate: Bool = false) {
    let rank = shape.count
    if rank == 0 {
        if accumulate { dst[0] += src[0] } else { dst[0] = src[0] }
        return
    }
    if shape.contains(0) { return }
    let inner = shape[rank - 1], ss = srcStrides[rank - 1], ds = dstStrides[rank - 1]
    var index = [Int](repeating: 0, count: rank - 1)
    var so = 0, doff = 0
    let runs = shape.dropLast().reduce(1, *)
    for _ in 0..<runs {
        let s = src + so, d = dst + doff
        if ss == 1 && ds == 1 {
            if accumulate {
                binaryLoop(d, 1, s, 1, d, inner) { $0 + $1 }
            } else {
                d.update(from: s, count: inner)
            }
        } else if accumulate {
            for i in 0..<inner { d[i * ds] += s[i * ss] }
        } else {
            for i in 0..<inner { d[i * ds] = s[i * ss] }
        }
        var axis = rank - 2
        while axis >= 0 {
            index[axis] += 1
            so += srcStrides[axis]
            doff += dstStrides[axis]
            if index[axis] < shape[axis] { break }
            so -= srcStrides[axis] * shape[axis]
            doff -= dstStrides[axis] * shape[axis]
            index[axis] = 0
            axis -= 1
        }
    }
}

/// 2-D transpose in 32x32 tiles, so both sides stay in cache: dst[c, r] = src[r, c].
func transpose2D(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
    let tile = 32
    var r0 = 0
    while r0 < rows {
        let r1 = min(rows, r0 + tile)
        var c0 = 0
        while c0 < columns {
            let c1 = min(columns, c0 + tile)
            for r in r0..<r1 {
                for c in c0..<c1 { dst[c * rows + r] = src[r * columns + c] }
            }
            c0 = c1
        }
        r0 = r1
    }
}
