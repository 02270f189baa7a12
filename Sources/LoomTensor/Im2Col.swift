/// im2col / col2im for convolutions over 1, 2 or 3 spatial axes, channels last.
///
/// A convolution becomes one sgemm: every output position's receptive field is laid out as a
/// row of `cols` ([N · outD · outH · outW, kD · kH · kW · C]), so cols · kernel[kD·kH·kW·C, F]
/// is the output. 1-D and 2-D inputs are the 3-D case with size-1 leading spatial axes.
public struct ConvolutionGeometry: Sendable, Equatable {
    /// Input spatial sizes (depth, height, width) and channels.
    public var input: [Int]
    public var channels: Int
    /// Kernel sizes, strides and dilations per spatial axis.
    public var kernel: [Int]
    public var strides: [Int]
    public var dilation: [Int]
    /// Zero padding before and after each spatial axis.
    public var padBefore: [Int]
    public var padAfter: [Int]

    /// This geometry over the input as it was before `padding` zeros were added around its
    /// spatial axes (as many pairs as it has axes): those zeros become padding of the geometry,
    /// so a ZeroPadding layer and the window after it run as one op without the padded copy.
    public func overUnpadded(_ padding: [(before: Int, after: Int)]?) -> ConvolutionGeometry {
        guard let padding else { return self }
        var g = self
        for (i, p) in padding.enumerated() {
            let axis = 3 - padding.count + i
            g.input[axis] -= p.before + p.after
            g.padBefore[axis] += p.before
            g.padAfter[axis] += p.after
        }
        return g
    }

    /// Geometry for `spatial` input sizes (1 to 3 axes); shorter lists are padded to 3 axes.
    public init(input spatial: [Int], channels: Int, kernel: [Int], strides: [Int]? = nil,
                dilation: [Int]? = nil, padBefore: [Int]? = nil, padAfter: [Int]? = nil) {
        let r = spatial.count
        precondition((1...3).contains(r), "im2col: 1 to 3 spatial axes, got \(r)")
        func lift(_ v: [Int]?, _ fill: Int) -> [Int] {
            let v = v ?? Array(repeating: fill, count: r)
            precondition(v.count == r, "im2col: \(v) does not have \(r) entries")
            return Array(repeating: fill, count: 3 - r) + v
        }
        input = lift(spatial, 1)
        self.channels = channels
        self.kernel = lift(kernel, 1)
        self.strides = lift(strides, 1)
        self.dilation = lift(dilation, 1)
        self.padBefore = lift(padBefore, 0)
        self.padAfter = lift(padAfter, 0)
        precondition(self.kernel.allSatisfy { $0 > 0 } && self.strides.allSatisfy { $0 > 0 }
                     && self.dilation.allSatisfy { $0 > 0 }, "im2col: kernel, strides and dilation must be positive")
    }

    /// Output spatial sizes (3 axes): floor((in + pads - dilation·(k-1) - 1) / stride) + 1.
    public var output: [Int] {
        (0..<3).map { i in
            let effective = dilation[i] * (kernel[i] - 1) + 1
            return Swift.max(0, (input[i] + padBefore[i] + padAfter[i] - effective) / strides[i] + 1)
        }
    }

    /// Columns per row: kD · kH · kW · C.
    public var patchSize: Int { kernel.reduce(1, *) * channels }
}

/// Walks every (output position, kernel tap) pair and calls `body(rowOffset, inputOffset)` for
/// the C-channel run of each, with inputOffset nil where the tap falls in the padding.
@inline(__always)
func forEachPatchRun(_ g: ConvolutionGeometry, batch: Int, _ body: (Int, Int?) -> Void) {
    let out = g.output, c = g.channels
    let inStrides = [g.input[1] * g.input[2] * c, g.input[2] * c, c]
    let imageSize = g.input.reduce(1, *) * c
    var row = 0
    for n in 0..<batch {
        let image = n * imageSize
        for od in 0..<out[0] {
            for oh in 0..<out[1] {
                for ow in 0..<out[2] {
                    var column = 0
                    for kd in 0..<g.kernel[0] {
                        let d = od * g.strides[0] - g.padBefore[0] + kd * g.dilation[0]
                        for kh in 0..<g.kernel[1] {
                            let h = oh * g.strides[1] - g.padBefore[1] + kh * g.dilation[1]
                            for kw in 0..<g.kernel[2] {
                                let w = ow * g.strides[2] - g.padBefore[2] + kw * g.dilation[2]
                                let inside = d >= 0 && d < g.input[0] && h >= 0 && h < g.input[1] && w >= 0 && w < g.input[2]
                                body(row + column, inside ? image + d * inStrides[0] + h * inStrides[1] + w * inStrides[2] : nil)
                                column += c
                            }
                        }
                    }
                    row += g.patchSize
                }
            }
        }
    }
}

/// Like `forEachPatchRun`, but whole spans: the taps of one kernel row that lie inside the input
/// are contiguous there when the width dilation is 1, so they come as one span of taps · C
/// values; padding comes as spans with no input offset.
@inline(__always)
func forEachPatchSpan(_ g: ConvolutionGeometry, batch: Int, _ body: (Int, Int?, Int) -> Void) {
    guard g.dilation[2] == 1 else {
        forEachPatchRun(g, batch: batch) { o, i in body(o, i, g.channels) }
        return
    }
    // Plain integers: array reads inside these loops would cost a bounds check each.
    let (outD, outH, outW) = (g.output[0], g.output[1], g.output[2])
    let (inD, inH, inW) = (g.input[0], g.input[1], g.input[2])
    let (kD, kH, kW) = (g.kernel[0], g.kernel[1], g.kernel[2])
    let (sD, sH, sW) = (g.strides[0], g.strides[1], g.strides[2])
    let (dD, dH) = (g.dilation[0], g.dilation[1])
    let (pD, pH, pW) = (g.padBefore[0], g.padBefore[1], g.padBefore[2])
    let c = g.channels, patch = g.patchSize
    let strideD = inH * inW * c, strideH = inW * c, imageSize = inD * strideD
    var row = 0
    for n in 0..<batch {
        let image = n * imageSize
        for od in 0..<outD {
            for oh in 0..<outH {
                for ow in 0..<outW {
                    var column = 0
                    let w0 = ow * sW - pW
                    // The taps 0..<kW cover input columns w0..<w0+kW; those inside [0, W) form one span.
                    let first = max(0, -w0), last = min(kW, inW - w0)
                    for kd in 0..<kD {
                        let d = od * sD - pD + kd * dD
                        for kh in 0..<kH {
                            let h = oh * sH - pH + kh * dH
                            if d < 0 || d >= inD || h < 0 || h >= inH || first >= last {
                                body(row + column, nil, kW * c)
                            } else {
                                if first > 0 { body(row + column, nil, first * c) }
                                body(row + column + first * c, image + d * strideD + h * strideH + (w0 + first) * c,
                                     (last - first) * c)
                                if last < kW { body(row + column + last * c, nil, (kW - last) * c) }
                            }
                            column += kW * c
                        }
                    }
                    row += patch
                }
            }
        }
    }
}

/// Writes the receptive fields of `batch` images starting at `src` as rows of `dst`.
func im2colRaw(_ g: ConvolutionGeometry, batch: Int, _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>) {
    forEachPatchSpan(g, batch: batch) { o, i, count in
        if let i {
            // Short spans are copied inline: a library call per span costs more than the copy.
            if count <= 256 {
                var k = 0
                while k + 8 <= count { store(load(src + i + k), dst + o + k); k += 8 }
                while k < count { dst[o + k] = src[i + k]; k += 1 }
            } else {
                (dst + o).update(from: src + i, count: count)
            }
        } else {
            (dst + o).update(repeating: 0, count: count)
        }
    }
}

/// Adds each row entry of `src` back to the input position it was read from (the adjoint of
/// `im2colRaw`); `dst` must hold `batch` images.
func col2imRaw(_ g: ConvolutionGeometry, batch: Int, _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>) {
    forEachPatchSpan(g, batch: batch) { o, i, count in
        guard let i else { return }
        binaryLoop(dst + i, 1, src + o, 1, dst + i, count) { $0 + $1 }
    }
}

/// `col2imRaw` that also clears `src` as it reads it (padding taps included), leaving it all
/// zeros: the next product can accumulate onto it without a separate zeroing pass.
func col2imClearingRaw(_ g: ConvolutionGeometry, batch: Int, _ src: UnsafeMutablePointer<Float>,
                       _ dst: UnsafeMutablePointer<Float>) {
    forEachPatchSpan(g, batch: batch) { o, i, count in
        if let i { binaryLoop(dst + i, 1, src + o, 1, dst + i, count) { $0 + $1 } }
        (src + o).update(repeating: 0, count: count)
    }
}

extension Tensor {
    /// Receptive fields as rows: input [N, spatial..., C] (1 to 3 spatial axes) to
    /// [N · out positions, kernel taps · C]. Its gradient is `col2im`.
    public func im2col(_ g: ConvolutionGeometry) -> Tensor {
        let batch = shape[0]
        precondition(count == batch * g.input.reduce(1, *) * g.channels,
                     "im2col: input of shape \(shape) does not match the geometry \(g.input) x \(g.channels)")
        var out = Tensor(uninitializedShape: [batch * g.output.reduce(1, *), g.patchSize])
        withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in im2colRaw(g, batch: batch, src.baseAddress!, dst.baseAddress!) }
        }
        let inputShape = shape
        return Tensor.record("im2col", out, [self]) { grad in [grad.col2im(g, inputShape: inputShape)] }
    }

    /// The adjoint of `im2col`: each row's entries added back to the input positions they were
    /// read from (overlapping fields accumulate); padding taps are dropped.
    public func col2im(_ g: ConvolutionGeometry, inputShape: [Int]) -> Tensor {
        let batch = inputShape[0]
        precondition(shape == [batch * g.output.reduce(1, *), g.patchSize],
                     "col2im: columns of shape \(shape) do not match the geometry")
        var out = Tensor.zeros(inputShape)
        withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in col2imRaw(g, batch: batch, src.baseAddress!, dst.baseAddress!) }
        }
        return Tensor.record("col2im", out, [self]) { grad in [grad.im2col(g)] }
    }
}
