import Foundation
import LoomTensor

/// How `resize` computes a pixel from the source (tf.image.resize's methods).
public enum Interpolation: String, Sendable, CaseIterable {
    case bilinear, nearest, area
}

extension Image {
    /// The pixels as a float32 HWC tensor, values 0...255 (what Keras's image loaders yield);
    /// a 16-bit image keeps its precision (v / 257) where Keras's loaders cut it to 8 bits.
    public var tensor: Tensor {
        var t = Tensor(uninitializedShape: [height, width, channels])
        t.withUnsafeMutableBufferPointer { out in
            pixels.withUnsafeBufferPointer { p in
                if bytesPerSample == 1 {
                    for i in 0..<p.count { out[i] = Float(p[i]) }
                } else {
                    for i in 0..<out.count { out[i] = Float(UInt16(p[2 * i]) | UInt16(p[2 * i + 1]) << 8) / 257 }
                }
            }
        }
        return t
    }

    /// The image with `channels` channels: gray to RGB repeats the value, RGB to gray takes
    /// the luma (ITU-R 601, as TensorFlow and Pillow), alpha is added opaque or dropped.
    public func converted(toChannels target: Int) -> Image {
        guard target != channels else { return self }
        if bytesPerSample == 1 {
            return Image(width: width, height: height, channels: target, pixels: Self.convert(pixels, from: channels, to: target))
        }
        let samples = (0..<(pixels.count / 2)).map { UInt16(pixels[2 * $0]) | UInt16(pixels[2 * $0 + 1]) << 8 }
        let out = Self.convert(samples, from: channels, to: target)
        return Image(width: width, height: height, channels: target, bytesPerSample: 2,
                     pixels: out.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8($0 >> 8)] })
    }

    private static func convert<S: FixedWidthInteger & UnsignedInteger>(_ pixels: [S], from channels: Int, to target: Int) -> [S] {
        let count = pixels.count / channels
        var out = [S](repeating: S.max, count: count * target)
        let hasAlpha = channels == 2 || channels == 4, color = channels >= 3
        for i in 0..<count {
            let src = i * channels, dst = i * target
            var gray = pixels[src]
            if color {
                let luma = Int(pixels[src]) * 299 + Int(pixels[src + 1]) * 587 + Int(pixels[src + 2]) * 114
                gray = S((luma + 500) / 1000)
            }
            let alpha = hasAlpha ? pixels[src + channels - 1] : S.max
            switch target {
            case 1: out[dst] = gray
            case 2: out[dst] = gray; out[dst + 1] = alpha
            case 3, 4:
                for c in 0..<3 { out[dst + c] = color ? pixels[src + c] : gray }
                if target == 4 { out[dst + 3] = alpha }
            default: break
            }
        }
        return out
    }
}

/// Resizing and cropping of HWC float32 images.
public enum ImageTransform {
    /// `image` [h, w, c] resized to [height, width, c] as tf.image.resize computes it
    /// (half-pixel centers, no antialiasing; `area` averages the source box of each pixel).
    public static func resize(_ image: Tensor, height: Int, width: Int, method: Interpolation = .bilinear) -> Tensor {
        let (h, w, c) = (image.shape[0], image.shape[1], image.shape[2])
        if h == height && w == width { return image }
        var out = Tensor(uninitializedShape: [height, width, c])
        let scaleY = Float(h) / Float(height), scaleX = Float(w) / Float(width)
        image.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                switch method {
                case .nearest:
                    let xs = (0..<width).map { min(w - 1, Int((Float($0) + 0.5) * scaleX)) }
                    for y in 0..<height {
                        let sy = min(h - 1, Int((Float(y) + 0.5) * scaleY))
                        for x in 0..<width {
                            let s = (sy * w + xs[x]) * c, d = (y * width + x) * c
                            for k in 0..<c { dst[d + k] = src[s + k] }
                        }
                    }
                case .bilinear:
                    func taps(_ i: Int, _ scale: Float, _ n: Int) -> (Int, Int, Float) {
                        let position = max(0, (Float(i) + 0.5) * scale - 0.5)
                        let low = min(n - 1, Int(position))
                        return (low, min(n - 1, low + 1), position - Float(low))
                    }
                    let xs = (0..<width).map { taps($0, scaleX, w) }
                    for y in 0..<height {
                        let (y0, y1, fy) = taps(y, scaleY, h)
                        for x in 0..<width {
                            let (x0, x1, fx) = xs[x]
                            let d = (y * width + x) * c
                            for k in 0..<c {
                                let top = src[(y0 * w + x0) * c + k] + (src[(y0 * w + x1) * c + k] - src[(y0 * w + x0) * c + k]) * fx
                                let bottom = src[(y1 * w + x0) * c + k] + (src[(y1 * w + x1) * c + k] - src[(y1 * w + x0) * c + k]) * fx
                                dst[d + k] = top + (bottom - top) * fy
                            }
                        }
                    }
                case .area:
                    // Each output pixel averages the source box [y·sy, (y+1)·sy) × [x·sx, (x+1)·sx),
                    // partly covered source pixels weighted by their coverage.
                    func spans(_ i: Int, _ scale: Float, _ n: Int) -> [(Int, Float)] {
                        let start = Float(i) * scale, end = Float(i + 1) * scale
                        var list: [(Int, Float)] = []
                        var p = Int(start)
                        while Float(p) < end && p < n {
                            let weight = min(end, Float(p + 1)) - max(start, Float(p))
                            if weight > 0 { list.append((p, weight)) }
                            p += 1
                        }
                        return list
                    }
                    let xs = (0..<width).map { spans($0, scaleX, w) }
                    for y in 0..<height {
                        let ys = spans(y, scaleY, h)
                        for x in 0..<width {
                            let d = (y * width + x) * c
                            for k in 0..<c {
                                var sum: Float = 0
                                for (sy, wy) in ys { for (sx, wx) in xs[x] { sum += src[(sy * w + sx) * c + k] * wy * wx } }
                                dst[d + k] = sum / (scaleY * scaleX)
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// The largest centered window of `image` with the aspect ratio height:width (Keras's
    /// crop_to_aspect_ratio, before resizing).
    public static func centerCropToAspectRatio(_ image: Tensor, height: Int, width: Int) -> Tensor {
        let (h, w) = (image.shape[0], image.shape[1])
        let cropHeight = min(h, Int(Float(w) * Float(height) / Float(width)))
        let cropWidth = min(w, Int(Float(h) * Float(width) / Float(height)))
        return crop(image, top: (h - cropHeight) / 2, left: (w - cropWidth) / 2, height: cropHeight, width: cropWidth)
    }

    /// The central height × width window (the image must be at least that large).
    public static func centerCrop(_ image: Tensor, height: Int, width: Int) -> Tensor {
        crop(image, top: max(0, (image.shape[0] - height) / 2), left: max(0, (image.shape[1] - width) / 2),
             height: min(height, image.shape[0]), width: min(width, image.shape[1]))
    }

    /// A height × width window at a random place drawn from `random`.
    public static func randomCrop(_ image: Tensor, height: Int, width: Int, using random: inout StreamRandom) -> Tensor {
        let top = Int.random(in: 0...max(0, image.shape[0] - height), using: &random)
        let left = Int.random(in: 0...max(0, image.shape[1] - width), using: &random)
        return crop(image, top: top, left: left, height: min(height, image.shape[0]), width: min(width, image.shape[1]))
    }

    /// The window at (top, left) of height × width.
    public static func crop(_ image: Tensor, top: Int, left: Int, height: Int, width: Int) -> Tensor {
        image.slice(lower: [top, left, 0], upper: [top + height, left + width, image.shape[2]])
    }

    /// The image mirrored left to right with probability 1/2 (drawn from `random`).
    public static func randomFlipLeftRight(_ image: Tensor, using random: inout StreamRandom) -> Tensor {
        guard Bool.random(using: &random) else { return image }
        let (h, w, c) = (image.shape[0], image.shape[1], image.shape[2])
        var out = Tensor(uninitializedShape: image.shape)
        image.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<h {
                    for x in 0..<w {
                        for k in 0..<c { dst[(y * w + x) * c + k] = src[(y * w + (w - 1 - x)) * c + k] }
                    }
                }
            }
        }
        return out
    }

    /// x · scale + offset (Keras's Rescaling: 1/255 maps pixels to [0, 1]).
    public static func rescale(_ x: Tensor, scale: Float, offset: Float = 0) -> Tensor { x * scale + offset }

    /// (x − mean) / std per channel (the last axis).
    public static func normalize(_ x: Tensor, mean: [Float], std: [Float]) -> Tensor {
        let c = x.shape.last ?? 1
        precondition(mean.count == c && std.count == c, "normalize: \(c) channels but \(mean.count) means and \(std.count) stds")
        var out = x
        out.withUnsafeMutableBufferPointer { p in
            for i in 0..<p.count { p[i] = (p[i] - mean[i % c]) / std[i % c] }
        }
        return out
    }

    /// Integer class labels [n] or [n, 1] as one-hot rows [n, classes].
    public static func oneHot(_ labels: Tensor, classes: Int) -> Tensor {
        let values = labels.scalars
        var out = Tensor.zeros([values.count, classes])
        out.withUnsafeMutableBufferPointer { p in
            for (i, v) in values.enumerated() where v >= 0 && Int(v) < classes { p[i * classes + Int(v)] = 1 }
        }
        return out
    }
}

/// Per-channel statistics learned from data (Keras's Normalization.adapt): the mean and the
/// standard deviation of each channel over every element.
public struct ChannelStatistics: Sendable, Equatable {
    public var mean: [Float]
    public var std: [Float]

    /// The statistics of the last axis over every element of `dataset` (an adapt pass).
    public static func adapt(_ dataset: Dataset<Tensor>) throws -> ChannelStatistics {
        var sum: [Double] = [], squares: [Double] = []
        var count = 0
        let cursor = try dataset.makeIterator()
        while let x = try cursor.next() {
            let c = x.shape.last ?? 1
            if sum.isEmpty {
                sum = Array(repeating: 0, count: c)
                squares = sum
            }
            x.withUnsafeBufferPointer { p in
                for i in 0..<p.count {
                    sum[i % c] += Double(p[i])
                    squares[i % c] += Double(p[i]) * Double(p[i])
                }
            }
            count += x.count / c
        }
        guard count > 0 else { throw DataFileError(path: "adapt", message: "no elements to learn statistics from") }
        let mean = sum.map { $0 / Double(count) }
        let std = zip(squares, mean).map { max(0, $0 / Double(count) - $1 * $1).squareRoot() }
        return ChannelStatistics(mean: mean.map(Float.init), std: std.map { Float(max($0, 1e-7)) })
    }
}
