/// Winograd's minimal filtering F(2x2, 3x3) for 3x3, stride-1 convolutions (Lavin and Gray,
/// "Fast Algorithms for Convolutional Neural Networks", 2016): each 2x2 block of outputs comes
/// from a 4x4 block of inputs with 16 multiplications per channel pair instead of 36. The
/// transforms are
///
///     U = G g Gᵀ (kernel)    V = Bᵀ d B (input tile)    y = Aᵀ (Σ_c U ⊙ V) A (output tile)
///
///     G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]   Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
///     Aᵀ = [1 1 1 0; 0 1 -1 -1]
///
/// and the sum over channels is 16 matrix products, one per tile position ξ:
/// M[ξ] (tiles × F) = V[ξ] (tiles × C) · U[ξ] (C × F). The backward pass runs the adjoints of
/// the same linear maps: dM = A dY Aᵀ, dV[ξ] = dM[ξ] · U[ξ]ᵀ, dU[ξ] = V[ξ]ᵀ · dM[ξ],
/// dX += B dV Bᵀ, dg = Gᵀ dU G, so the gradients are those of the function computed.
/// Every transform runs over eight channels (or filters) at a time, the channels-last layout's
/// contiguous axis.
struct WinogradTiling {
    let height: Int, width: Int, channels: Int, filters: Int
    let outHeight: Int, outWidth: Int
    let padTop: Int, padLeft: Int
    /// 2x2 output tiles per image, by rows and columns (the last ones may hang over the edge).
    let tileRows: Int, tileColumns: Int

    var tilesPerImage: Int { tileRows * tileColumns }

    /// The fewest channels and filters taking this path. Measured with `loom bench conv`
    /// (forward + backward, 2026-11-25): 16 -> 16 runs 1.45-1.7x faster than im2col, 32 -> 64
    /// 1.9x, 128 -> 128 2.1x, while 8 -> 8, 8 -> 16, 16 -> 8, 12 -> 12 and 12 -> 24 run slower:
    /// with so few channels the 16 products are too thin to pay for the transforms.
    static let minimumChannels = 16

    /// The fewest tiles per chunk: each of the 16 products then has at least this many rows, so
    /// deep layers (7x7x512 has 16 tiles an image) do not pack the kernel for a thin product
    /// (`loom bench conv --batch 16 --size 7 --channels 512 --filters 512`, forward: 65 GFLOP/s
    /// at 16 tiles, 106 at 96 to 128; 14x14x256: 163 -> 170-180).
    static let minimumChunkTiles = 96

    /// The tiling of a convolution, or nil where F(2x2, 3x3) does not apply: it needs a 2-D
    /// 3x3 kernel, stride 1, no dilation and at least `minimumChannels` channels and filters.
    init?(_ g: ConvolutionGeometry, filters: Int) {
        guard g.input[0] == 1, g.kernel == [1, 3, 3], g.strides == [1, 1, 1], g.dilation == [1, 1, 1],
              g.channels >= WinogradTiling.minimumChannels, filters >= WinogradTiling.minimumChannels
        else { return nil }
        let out = g.output
        guard out[1] > 0, out[2] > 0 else { return nil }
        height = g.input[1]; width = g.input[2]; channels = g.channels; self.filters = filters
        outHeight = out[1]; outWidth = out[2]
        padTop = g.padBefore[1]; padLeft = g.padBefore[2]
        tileRows = (outHeight + 1) / 2; tileColumns = (outWidth + 1) / 2
    }

    /// Tiles per chunk: the chunk's transformed inputs and products (16 · (C + F) floats per
    /// tile) fit in about 1 MiB, so they stay in cache between the transforms and the products.
    var chunkTiles: Int { Swift.max(WinogradTiling.minimumChunkTiles, Tensor.convolutionChunkFloats / (16 * (channels + filters))) }

    /// Calls `body(i, image, row, column)` for the i-th of `tiles` (tile indices counted over
    /// the batch): its image and its first output position.
    @inline(__always) func forEachTile(_ tiles: Range<Int>, _ body: (Int, Int, Int, Int) -> Void) {
        for (i, t) in tiles.enumerated() {
            let r = t % tilesPerImage
            body(i, t / tilesPerImage, 2 * (r / tileColumns), 2 * (r % tileColumns))
        }
    }

    // MARK: Kernel

    /// U[ξ][c][f] = (G g[·][·][c][f] Gᵀ)[ξ] for a kernel [3, 3, C, F]; U holds 16 · C · F floats.
    func transformKernel(_ g: UnsafePointer<Float>, into u: UnsafeMutablePointer<Float>) {
        let slab = channels * filters
        forEachBlock(slab) { e, lanes in
            @inline(__always) func tap(_ a: Int, _ b: Int) -> Vec { loadLanes(g + (3 * a + b) * slab + e, lanes) }
            // Along the kernel's rows for each of its columns, then along the columns.
            let (r00, r10, r20, r30) = gRow(tap(0, 0), tap(1, 0), tap(2, 0))
            let (r01, r11, r21, r31) = gRow(tap(0, 1), tap(1, 1), tap(2, 1))
            let (r02, r12, r22, r32) = gRow(tap(0, 2), tap(1, 2), tap(2, 2))
            let out = u + e
            storeRow(gRow(r00, r01, r02), out, 0, slab, lanes)
            storeRow(gRow(r10, r11, r12), out, 1, slab, lanes)
            storeRow(gRow(r20, r21, r22), out, 2, slab, lanes)
            storeRow(gRow(r30, r31, r32), out, 3, slab, lanes)
        }
    }

    /// dg[a][b][c][f] += (Gᵀ dU[·][c][f] G)[a][b], the kernel gradient from the gradient of U.
    func kernelGradient(_ du: UnsafePointer<Float>, addingTo dg: UnsafeMutablePointer<Float>) {
        let slab = channels * filters
        forEachBlock(slab) { e, lanes in
            @inline(__always) func at(_ i: Int, _ j: Int) -> Vec { loadLanes(du + (4 * i + j) * slab + e, lanes) }
            let (s00, s10, s20) = gRowAdjoint(at(0, 0), at(1, 0), at(2, 0), at(3, 0))
            let (s01, s11, s21) = gRowAdjoint(at(0, 1), at(1, 1), at(2, 1), at(3, 1))
            let (s02, s12, s22) = gRowAdjoint(at(0, 2), at(1, 2), at(2, 2), at(3, 2))
            let (s03, s13, s23) = gRowAdjoint(at(0, 3), at(1, 3), at(2, 3), at(3, 3))
            @inline(__always) func add(_ a: Int, _ t: (Vec, Vec, Vec)) {
                let p = dg + 3 * a * slab + e
                storeLanes(loadLanes(p, lanes) + t.0, p, lanes)
                storeLanes(loadLanes(p + slab, lanes) + t.1, p + slab, lanes)
                storeLanes(loadLanes(p + 2 * slab, lanes) + t.2, p + 2 * slab, lanes)
            }
            add(0, gRowAdjoint(s00, s01, s02, s03))
            add(1, gRowAdjoint(s10, s11, s12, s13))
            add(2, gRowAdjoint(s20, s21, s22, s23))
        }
    }

    // MARK: Tiles
    //
    // A tile's block is read or written in place where it lies wholly inside the image; a tile
    // on an edge goes through a small zero-padded copy (`edge`), so the per-channel code never
    // tests a position.

    /// The offset in its image of tile (row, column)'s 4x4 input block, nil unless the block lies
    /// wholly inside the image (its rows are then `width · C` apart).
    @inline(__always) private func inputBlockOffset(_ row: Int, _ column: Int) -> Int? {
        let h0 = row - padTop, w0 = column - padLeft
        return h0 >= 0 && h0 + 4 <= height && w0 >= 0 && w0 + 4 <= width ? (h0 * width + w0) * channels : nil
    }

    /// Calls `body(p, q, offset)` for each position of tile (row, column)'s 4x4 input block,
    /// with the offset of its channels in its image, or nil in the padding.
    @inline(__always) private func forEachInputPosition(_ row: Int, _ column: Int, _ body: (Int, Int, Int?) -> Void) {
        for p in 0..<4 {
            for q in 0..<4 {
                let h = row - padTop + p, w = column - padLeft + q
                body(p, q, h >= 0 && h < height && w >= 0 && w < width ? (h * width + w) * channels : nil)
            }
        }
    }

    /// V[ξ][i][c] = (Bᵀ d B)[ξ] for the i-th of `tiles` (tile indices over the batch of inputs
    /// `x`), d its 4x4 input block with zeros in the padding; V holds 16 · tiles · C floats.
    func transformInput(_ x: UnsafePointer<Float>, tiles: Range<Int>, into v: UnsafeMutablePointer<Float>) {
        let c = channels, slab = tiles.count * c, imageSize = height * width * c
        let edge = UnsafeMutablePointer<Float>.allocate(capacity: 16 * c)
        defer { edge.deallocate() }
        forEachTile(tiles) { i, image, row, column in
            let image = x + image * imageSize
            var block: UnsafePointer<Float>, rowStride: Int
            if let offset = inputBlockOffset(row, column) {
                block = image + offset
                rowStride = width * c
            } else {
                forEachInputPosition(row, column) { p, q, offset in
                    let target = edge + (4 * p + q) * c
                    if let offset { target.update(from: image + offset, count: c) } else { target.update(repeating: 0, count: c) }
                }
                block = UnsafePointer(edge)
                rowStride = 4 * c
            }
            let out = v + i * c
            forEachBlock(c) { k, lanes in
                let d = block + k
                @inline(__always) func at(_ p: Int, _ q: Int) -> Vec { loadLanes(d + p * rowStride + q * c, lanes) }
                let (t00, t10, t20, t30) = bRow(at(0, 0), at(1, 0), at(2, 0), at(3, 0))
                let (t01, t11, t21, t31) = bRow(at(0, 1), at(1, 1), at(2, 1), at(3, 1))
                let (t02, t12, t22, t32) = bRow(at(0, 2), at(1, 2), at(2, 2), at(3, 2))
                let (t03, t13, t23, t33) = bRow(at(0, 3), at(1, 3), at(2, 3), at(3, 3))
                storeRow(bRow(t00, t01, t02, t03), out + k, 0, slab, lanes)
                storeRow(bRow(t10, t11, t12, t13), out + k, 1, slab, lanes)
                storeRow(bRow(t20, t21, t22, t23), out + k, 2, slab, lanes)
                storeRow(bRow(t30, t31, t32, t33), out + k, 3, slab, lanes)
            }
        }
    }

    /// dX += (B dV Bᵀ) over each tile's 4x4 input block (padding dropped): the adjoint of
    /// `transformInput`, dV laid out as V.
    func inputGradient(_ dv: UnsafePointer<Float>, tiles: Range<Int>, addingTo dx: UnsafeMutablePointer<Float>) {
        let c = channels, slab = tiles.count * c, imageSize = height * width * c
        let edge = UnsafeMutablePointer<Float>.allocate(capacity: 16 * c)
        defer { edge.deallocate() }
        forEachTile(tiles) { i, image, row, column in
            let image = dx + image * imageSize
            let offset = inputBlockOffset(row, column), inside = offset != nil
            let block = offset.map { image + $0 } ?? edge
            let rowStride = inside ? width * c : 4 * c
            if !inside { edge.update(repeating: 0, count: 16 * c) }
            let src = dv + i * c
            forEachBlock(c) { k, lanes in
                @inline(__always) func at(_ a: Int, _ b: Int) -> Vec { loadLanes(src + k + (4 * a + b) * slab, lanes) }
                let (r00, r10, r20, r30) = bRowAdjoint(at(0, 0), at(1, 0), at(2, 0), at(3, 0))
                let (r01, r11, r21, r31) = bRowAdjoint(at(0, 1), at(1, 1), at(2, 1), at(3, 1))
                let (r02, r12, r22, r32) = bRowAdjoint(at(0, 2), at(1, 2), at(2, 2), at(3, 2))
                let (r03, r13, r23, r33) = bRowAdjoint(at(0, 3), at(1, 3), at(2, 3), at(3, 3))
                @inline(__always) func add(_ p: Int, _ t: (Vec, Vec, Vec, Vec)) {
                    let d = block + p * rowStride + k
                    storeLanes(loadLanes(d, lanes) + t.0, d, lanes)
                    storeLanes(loadLanes(d + c, lanes) + t.1, d + c, lanes)
                    storeLanes(loadLanes(d + 2 * c, lanes) + t.2, d + 2 * c, lanes)
                    storeLanes(loadLanes(d + 3 * c, lanes) + t.3, d + 3 * c, lanes)
                }
                add(0, bRowAdjoint(r00, r01, r02, r03))
                add(1, bRowAdjoint(r10, r11, r12, r13))
                add(2, bRowAdjoint(r20, r21, r22, r23))
                add(3, bRowAdjoint(r30, r31, r32, r33))
            }
            if !inside {
                forEachInputPosition(row, column) { p, q, offset in
                    guard let offset else { return }
                    binaryLoop(image + offset, 1, edge + (4 * p + q) * c, 1, image + offset, c) { $0 + $1 }
                }
            }
        }
    }

    /// The offset in its image of tile (row, column)'s 2x2 outputs, nil unless all four lie inside
    /// the image (its rows are then `outWidth · F` apart).
    @inline(__always) private func outputBlockOffset(_ row: Int, _ column: Int) -> Int? {
        row + 2 <= outHeight && column + 2 <= outWidth ? (row * outWidth + column) * filters : nil
    }

    /// Calls `body(a, b, offset)` for each of tile (row, column)'s 2x2 outputs inside the image,
    /// with the offset of its filters in its image.
    @inline(__always) private func forEachOutputPosition(_ row: Int, _ column: Int, _ body: (Int, Int, Int) -> Void) {
        for a in 0..<Swift.min(2, outHeight - row) {
            for b in 0..<Swift.min(2, outWidth - column) { body(a, b, ((row + a) * outWidth + column + b) * filters) }
        }
    }

    /// y = Aᵀ M[·][i] A (+ bias, then max(·, 0) with `relu`) for the i-th of `tiles`, written to
    /// the outputs `y` ([N, outHeight, outWidth, F]) inside the image; M holds 16 · tiles · F floats.
    func transformOutput(_ m: UnsafePointer<Float>, tiles: Range<Int>, bias: UnsafePointer<Float>?, relu: Bool,
                         into y: UnsafeMutablePointer<Float>) {
        let f = filters, slab = tiles.count * f, imageSize = outHeight * outWidth * f
        let edge = UnsafeMutablePointer<Float>.allocate(capacity: 4 * f)
        defer { edge.deallocate() }
        forEachTile(tiles) { i, image, row, column in
            let image = y + image * imageSize
            let offset = outputBlockOffset(row, column), inside = offset != nil
            let block = offset.map { image + $0 } ?? edge
            let rowStride = inside ? outWidth * f : 2 * f
            let src = m + i * f
            forEachBlock(f) { k, lanes in
                @inline(__always) func at(_ a: Int, _ b: Int) -> Vec { loadLanes(src + k + (4 * a + b) * slab, lanes) }
                let (s00, s10) = aRow(at(0, 0), at(1, 0), at(2, 0), at(3, 0))
                let (s01, s11) = aRow(at(0, 1), at(1, 1), at(2, 1), at(3, 1))
                let (s02, s12) = aRow(at(0, 2), at(1, 2), at(2, 2), at(3, 2))
                let (s03, s13) = aRow(at(0, 3), at(1, 3), at(2, 3), at(3, 3))
                let shift = bias.map { loadLanes($0 + k, lanes) } ?? Vec()
                @inline(__always) func put(_ a: Int, _ t: (Vec, Vec)) {
                    var (left, right) = (t.0 + shift, t.1 + shift)
                    if relu { left = vmax(left, Vec()); right = vmax(right, Vec()) }
                    storeLanes(left, block + a * rowStride + k, lanes)
                    storeLanes(right, block + a * rowStride + f + k, lanes)
                }
                put(0, aRow(s00, s01, s02, s03))
                put(1, aRow(s10, s11, s12, s13))
            }
            if !inside {
                forEachOutputPosition(row, column) { a, b, offset in (image + offset).update(from: edge + (2 * a + b) * f, count: f) }
            }
        }
    }

    /// dM[ξ][i] = (A dY Aᵀ)[ξ] for the i-th of `tiles`, dY zero outside the image and, given the
    /// outputs `y` of a ReLU, where y <= 0: the adjoint of `transformOutput`. The same masked dY
    /// is summed into `biasSums` (F floats) when given.
    func outputGradient(_ dy: UnsafePointer<Float>, outputs y: UnsafePointer<Float>?, tiles: Range<Int>,
                        into dm: UnsafeMutablePointer<Float>, biasSums: UnsafeMutablePointer<Float>?) {
        let f = filters, slab = tiles.count * f, imageSize = outHeight * outWidth * f
        let edge = UnsafeMutablePointer<Float>.allocate(capacity: 4 * f)
        defer { edge.deallocate() }
        forEachTile(tiles) { i, image, row, column in
            var block: UnsafePointer<Float>, mask: UnsafePointer<Float>?, rowStride: Int
            if let inImage = outputBlockOffset(row, column) {
                let offset = image * imageSize + inImage
                block = dy + offset
                mask = y.map { $0 + offset }
                rowStride = outWidth * f
            } else {
                // The masked gradient inside the image, zeros outside.
                edge.update(repeating: 0, count: 4 * f)
                forEachOutputPosition(row, column) { a, b, offset in
                    let k = image * imageSize + offset, target = edge + (2 * a + b) * f
                    if let y {
                        binaryLoop(dy + k, 1, y + k, 1, target, f) { g, out in g.replacing(with: 0, where: out .<= 0) }
                    } else {
                        target.update(from: dy + k, count: f)
                    }
                }
                block = UnsafePointer(edge)
                mask = nil
                rowStride = 2 * f
            }
            let out = dm + i * f
            forEachBlock(f) { k, lanes in
                @inline(__always) func g(_ a: Int, _ b: Int) -> Vec {
                    let offset = a * rowStride + b * f + k
                    let v = loadLanes(block + offset, lanes)
                    guard let mask else { return v }
                    return v.replacing(with: 0, where: loadLanes(mask + offset, lanes) .<= 0)
                }
                let (g00, g01, g10, g11) = (g(0, 0), g(0, 1), g(1, 0), g(1, 1))
                if let biasSums {
                    storeLanes(loadLanes(biasSums + k, lanes) + ((g00 + g01) + (g10 + g11)), biasSums + k, lanes)
                }
                let (s00, s10, s20, s30) = aRowAdjoint(g00, g10)
                let (s01, s11, s21, s31) = aRowAdjoint(g01, g11)
                storeRow(aRowAdjoint(s00, s01), out + k, 0, slab, lanes)
                storeRow(aRowAdjoint(s10, s11), out + k, 1, slab, lanes)
                storeRow(aRowAdjoint(s20, s21), out + k, 2, slab, lanes)
                storeRow(aRowAdjoint(s30, s31), out + k, 3, slab, lanes)
            }
        }
    }
}

/// Stores row `i` of a 4x4 transform, (ξ = 4i .. 4i+3), at `p` + ξ · `slab`.
@inline(__always) private func storeRow(_ t: (Vec, Vec, Vec, Vec), _ p: UnsafeMutablePointer<Float>, _ i: Int,
                                        _ slab: Int, _ lanes: Int) {
    storeLanes(t.0, p + 4 * i * slab, lanes)
    storeLanes(t.1, p + (4 * i + 1) * slab, lanes)
    storeLanes(t.2, p + (4 * i + 2) * slab, lanes)
    storeLanes(t.3, p + (4 * i + 3) * slab, lanes)
}

// MARK: One-dimensional transforms and their adjoints, on eight lanes

/// G·(g0, g1, g2): (g0, (g0 + g1 + g2)/2, (g0 - g1 + g2)/2, g2).
@inline(__always) private func gRow(_ g0: Vec, _ g1: Vec, _ g2: Vec) -> (Vec, Vec, Vec, Vec) {
    let half = Vec(repeating: 0.5), outer = (g0 + g2) * half, middle = g1 * half
    return (g0, outer + middle, outer - middle, g2)
}

/// Gᵀ·(u0, u1, u2, u3): (u0 + (u1 + u2)/2, (u1 - u2)/2, (u1 + u2)/2 + u3).
@inline(__always) private func gRowAdjoint(_ u0: Vec, _ u1: Vec, _ u2: Vec, _ u3: Vec) -> (Vec, Vec, Vec) {
    let half = Vec(repeating: 0.5), sum = (u1 + u2) * half
    return (u0 + sum, (u1 - u2) * half, sum + u3)
}

/// Bᵀ·(d0, d1, d2, d3): (d0 - d2, d1 + d2, d2 - d1, d1 - d3).
@inline(__always) private func bRow(_ d0: Vec, _ d1: Vec, _ d2: Vec, _ d3: Vec) -> (Vec, Vec, Vec, Vec) {
    (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
}

/// B·(v0, v1, v2, v3): (v0, v1 - v2 + v3, v1 + v2 - v0, -v3).
@inline(__always) private func bRowAdjoint(_ v0: Vec, _ v1: Vec, _ v2: Vec, _ v3: Vec) -> (Vec, Vec, Vec, Vec) {
    (v0, v1 - v2 + v3, v1 + v2 - v0, -v3)
}

/// Aᵀ·(m0, m1, m2, m3): (m0 + m1 + m2, m1 - m2 - m3).
@inline(__always) private func aRow(_ m0: Vec, _ m1: Vec, _ m2: Vec, _ m3: Vec) -> (Vec, Vec) {
    (m0 + m1 + m2, m1 - m2 - m3)
}

/// A·(y0, y1): (y0, y0 + y1, y0 - y1, -y1).
@inline(__always) private func aRowAdjoint(_ y0: Vec, _ y1: Vec) -> (Vec, Vec, Vec, Vec) {
    (y0, y0 + y1, y0 - y1, -y1)
}

/// Calls `body(offset, lanes)` for each block of eight of `count` contiguous values, then for
/// the last few. (Two call sites: in the first, `lanes` is the constant 8, so the inlined body
/// loads and stores whole vectors without a test.)
@inline(__always) private func forEachBlock(_ count: Int, _ body: (Int, Int) -> Void) {
    var e = 0
    while e + 8 <= count {
        body(e, 8)
        e += 8
    }
    if e < count { body(e, count - e) }
}

extension Tensor {
    /// `convolved(with:bias:relu:_:)` by F(2x2, 3x3) over chunks of tiles, for a geometry
    /// `tiling` was made from; the same function, rounded differently.
    func winogradConvolved(with kernel: Tensor, bias: Tensor?, relu: Bool, _ tiling: WinogradTiling) -> Tensor {
        let batch = shape[0], c = tiling.channels, f = tiling.filters
        let total = batch * tiling.tilesPerImage, chunk = tiling.chunkTiles
        // [N, outHeight, outWidth, F], or [N, 1, outHeight, outWidth, F] for a depth-1 volume.
        let outSpatial = Array([1, tiling.outHeight, tiling.outWidth].suffix(rank - 2))
        var out = Tensor(uninitializedShape: [batch] + outSpatial + [f])
        /// The kernel in the Winograd domain, [16, C, F].
        @Sendable func transformed(_ kernel: Tensor) -> Tensor {
            var u = Tensor(uninitializedShape: [16 * c * f])
            u.withUnsafeMutableBufferPointer { us in
                kernel.withUnsafeBufferPointer { tiling.transformKernel($0.baseAddress!, into: us.baseAddress!) }
            }
            return u
        }
        let transformedKernel = transformed(kernel)
        // Workspaces come from the buffer cache: the same sizes recur every step.
        var workspaceTensor = Tensor(uninitializedShape: [16 * chunk * (c + f)])
        let v = workspaceTensor.withUnsafeMutableBufferPointer { $0.baseAddress! }, m = v + 16 * chunk * c
        defer { withExtendedLifetime(workspaceTensor) {} }
        withUnsafeBufferPointer { xs in
            transformedKernel.withUnsafeBufferPointer { us in
                out.withUnsafeMutableBufferPointer { ys in
                    let b = bias?.storage.base
                    for start in stride(from: 0, to: total, by: chunk) {
                        let tiles = start..<Swift.min(total, start + chunk), n = tiles.count
                        tiling.transformInput(xs.baseAddress!, tiles: tiles, into: v)
                        for xi in 0..<16 {
                            BLAS.sgemm(transposeA: false, transposeB: false, m: n, n: f, k: c, a: v + xi * n * c,
                                       b: us.baseAddress! + xi * c * f, c: m + xi * n * f)
                        }
                        tiling.transformOutput(m, tiles: tiles, bias: b.map { UnsafePointer($0) }, relu: relu, into: ys.baseAddress!)
                    }
                }
            }
        }
        withExtendedLifetime(bias) {}
        // The output is kept only for the ReLU's mask (else it may be freed before the backward pass).
        // The backward pass transforms the kernel again (16·C·F floats; 80 MB for one worker's
        // ResNet50) rather than keeping the forward pass's transform.
        let w = kernel.detached, y = relu ? out : Tensor.zeros([0])
        let needX = requiresGradient, needW = kernel.requiresGradient, needB = bias?.requiresGradient ?? false
        // The input only for the kernel's gradient.
        let input = needW ? SavedInput(self) : nil, xShape = shape
        let inputs = bias.map { [self, kernel, $0] } ?? [self, kernel]
        return Tensor.record("convolution", out, inputs) { grad in
            let x = input?.value ?? Tensor.zeros([0]), u = needX ? transformed(w) : Tensor.zeros([0])
            var dx: Tensor? = needX ? Tensor.zeros(xShape) : nil
            var dw: Tensor? = needW ? Tensor.zeros(w.shape) : nil
            var biasGradient: Tensor? = needB ? Tensor.zeros([f]) : nil
            var transformedGradient: Tensor? = needW ? Tensor.zeros([16 * c * f]) : nil
            // Per chunk: the transformed inputs (for dU), dM and dV. The inputs are transformed
            // again rather than kept from the forward pass, which would hold 16 · tiles · C floats
            // per convolution until now (4.7M for the CNN's 64-image shard); the input transform
            // is about 2% of a CNN step in the profile.
            var scratchTensor = Tensor(uninitializedShape: [16 * chunk * (2 * c + f)])
            let v = scratchTensor.withUnsafeMutableBufferPointer { $0.baseAddress! }
            let dm = v + 16 * chunk * c, dv = dm + 16 * chunk * f
            defer { withExtendedLifetime(scratchTensor) {} }
            let du = transformedGradient?.withUnsafeMutableBufferPointer { $0.baseAddress! }
            let sums = biasGradient?.withUnsafeMutableBufferPointer { $0.baseAddress! }
            let dxs = dx?.withUnsafeMutableBufferPointer { $0.baseAddress! }
            x.withUnsafeBufferPointer { xs in
                u.withUnsafeBufferPointer { us in
                    grad.withUnsafeBufferPointer { gs in
                        y.withUnsafeBufferPointer { ys in
                            for start in stride(from: 0, to: total, by: chunk) {
                                let tiles = start..<Swift.min(total, start + chunk), n = tiles.count
                                tiling.outputGradient(gs.baseAddress!, outputs: relu ? ys.baseAddress! : nil, tiles: tiles,
                                                      into: dm, biasSums: sums)
                                if let du {
                                    tiling.transformInput(xs.baseAddress!, tiles: tiles, into: v)
                                    for xi in 0..<16 {
                                        BLAS.sgemm(transposeA: true, transposeB: false, m: c, n: f, k: n, a: v + xi * n * c,
                                                   b: dm + xi * n * f, c: du + xi * c * f, accumulate: true)
                                    }
                                }
                                if let dxs {
                                    for xi in 0..<16 {
                                        BLAS.sgemm(transposeA: false, transposeB: true, m: n, n: c, k: f, a: dm + xi * n * f,
                                                   b: us.baseAddress! + xi * c * f, c: dv + xi * n * c)
                                    }
                                    tiling.inputGradient(dv, tiles: tiles, addingTo: dxs)
                                }
                            }
                        }
                    }
                }
            }
            if let du {
                dw!.withUnsafeMutableBufferPointer { tiling.kernelGradient(du, addingTo: $0.baseAddress!) }
            }
            withExtendedLifetime((dx, transformedGradient, biasGradient)) {}
            return bias == nil ? [dx, dw] : [dx, dw, biasGradient]
        }
    }
}
