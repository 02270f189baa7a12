import CLoomImage
import Foundation

/// A decoded image: height × width × channels samples, row-major (HWC), each 8 bits, or 16
/// for a 16-bit PNG (two bytes a sample in `pixels`, in the machine's byte order).
public struct Image: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var channels: Int
    /// 1, or 2 for 16-bit samples.
    public var bytesPerSample: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, bytesPerSample: Int = 1, pixels: [UInt8]) {
        precondition(bytesPerSample == 1 || bytesPerSample == 2, "Image: \(bytesPerSample) bytes a sample")
        precondition(pixels.count == width * height * channels * bytesPerSample,
                     "Image: \(pixels.count) bytes for \(height)x\(width)x\(channels)x\(bytesPerSample)")
        self.width = width
        self.height = height
        self.channels = channels
        self.bytesPerSample = bytesPerSample
        self.pixels = pixels
    }

}

/// Why an image could not be decoded or encoded; `source` names the file when there is one.
public struct ImageCodecError: Error, CustomStringConvertible, Equatable {
    public var source: String?
    public var message: String
    public var description: String { source.map { "\($0): \(message)" } ?? message }
}

/// PNG (libpng) and JPEG (libjpeg-turbo) decoding and encoding, in memory.
public enum ImageCodec {
    /// Decodes PNG bytes. `channels` 0 keeps the file's channel count, else 1...4.
    public static func decodePNG(_ data: Data, channels: Int = 0, source: String? = nil) throws(ImageCodecError) -> Image {
        try decode(data, source, expectedBytes: pngBytes(data, channels: channels)) { bytes, count, image, error in
            loom_png_decode(bytes, count, Int32(channels), image, error)
        }
    }

    /// Decodes JPEG bytes. `channels` 0 keeps the file's (gray stays 1, color becomes 3 RGB,
    /// CMYK becomes RGB); `scaleDenominator` 1, 2, 4 or 8 downscales during decoding.
    public static func decodeJPEG(_ data: Data, channels: Int = 0, scaleDenominator: Int = 1,
                                  source: String? = nil) throws(ImageCodecError) -> Image {
        try decode(data, source, expectedBytes: jpegBytes(data, channels: channels, scaleDenominator: scaleDenominator)) {
            bytes, count, image, error in
            loom_jpeg_decode(bytes, count, Int32(channels), Int32(scaleDenominator), image, error)
        }
    }

    /// Encodes an image as PNG (lossless).
    public static func encodePNG(_ image: Image) throws(ImageCodecError) -> Data {
        guard image.bytesPerSample == 1 else { throw ImageCodecError(source: nil, message: "Loom encodes 8-bit PNGs only") }
        return try encode(image) { pixels, out, size, error in
            loom_png_encode(pixels, Int32(image.width), Int32(image.height), Int32(image.channels), out, size, error)
        }
    }

    /// Encodes a 1- or 3-channel image as baseline JPEG of `quality` 1...100.
    public static func encodeJPEG(_ image: Image, quality: Int = 90) throws(ImageCodecError) -> Data {
        try encode(image) { pixels, out, size, error in
            loom_jpeg_encode(pixels, Int32(image.width), Int32(image.height), Int32(image.channels),
                             Int32(quality), out, size, error)
        }
    }

    /// The NUL-terminated message the shim wrote.
    private static func errorText(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The largest decoded image, in bytes, a header may ask for.
    static let maximumBytes = 1 << 30

    /// The decoded size a PNG's header announces (IHDR's width, height and color type), or 0
    /// when it cannot be read here (the decoder then says what it needs).
    static func pngBytes(_ data: Data, channels: Int) -> Int {
        guard data.count >= 26, let (width, height) = pngSize(data) else { return 0 }
        // Gray 1, RGB 3, palette 3 (4 with transparency, found later), gray+alpha 2, RGBA 4.
        let own = [0: 1, 2: 3, 3: 3, 4: 2, 6: 4][Int(data[data.startIndex + 25])] ?? 4
        let sampleBytes = data[data.startIndex + 24] == 16 ? 2 : 1
        return clampedBytes(width, height, (channels == 0 ? own : channels) * sampleBytes)
    }

    /// (width, height) from a PNG's IHDR chunk, which the format puts first.
    static func pngSize(_ data: Data) -> (Int, Int)? {
        guard data.count >= 24 else { return nil }
        return data.withUnsafeBytes { raw -> (Int, Int) in
            let b = raw.bindMemory(to: UInt8.self)
            let big = { (i: Int) in Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3]) }
            return (big(16), big(20))
        }
    }

    /// The decoded size of a JPEG from its start-of-frame marker, or 0 when none is found in
    /// its first 64 KiB.
    static func jpegBytes(_ data: Data, channels: Int, scaleDenominator: Int) -> Int {
        guard let (height, width, components) = jpegFrame(data) else { return 0 }
        let scale = max(1, scaleDenominator)
        let own = components == 1 ? 1 : 3
        return clampedBytes((width + scale - 1) / scale, (height + scale - 1) / scale, channels == 0 ? own : channels)
    }

    private static func clampedBytes(_ width: Int, _ height: Int, _ channels: Int) -> Int {
        guard width > 0, height > 0, width <= maximumBytes / height else { return 0 }
        return width * height <= maximumBytes / max(1, channels) ? width * height * channels : 0
    }

    /// (height, width, components) from a JPEG's start-of-frame marker.
    static func jpegFrame(_ data: Data) -> (Int, Int, Int)? {
        data.withUnsafeBytes { raw -> (Int, Int, Int)? in
            let bytes = raw.bindMemory(to: UInt8.self)
            let end = min(bytes.count, 1 << 16)
            var i = 2
            while i + 9 < end {
                guard bytes[i] == 0xFF else { return nil }
                let marker = bytes[i + 1]
                if marker == 0xFF { i += 1; continue }
                let length = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
                if (0xC0...0xCF).contains(marker) && marker != 0xC4 && marker != 0xC8 && marker != 0xCC {
                    return (Int(bytes[i + 5]) << 8 | Int(bytes[i + 6]), Int(bytes[i + 7]) << 8 | Int(bytes[i + 8]), Int(bytes[i + 9]))
                }
                i += 2 + length
            }
            return nil
        }
    }

    /// Decodes into a new array of `expectedBytes` (the header's size): the decoder writes the
    /// pixels in place, with no copy (a 224x224 RGB copy per image cost two workers a sixth of
    /// their time). When the guess is short, the decoder names the size and is called again.
    private static func decode(
        _ data: Data, _ source: String?, expectedBytes: Int,
        _ call: (UnsafePointer<UInt8>, Int, UnsafeMutablePointer<loom_image>, UnsafeMutablePointer<CChar>) -> Int32
    ) throws(ImageCodecError) -> Image {
        guard !data.isEmpty else { throw ImageCodecError(source: source, message: "empty input") }
        var capacity = max(1, expectedBytes)
        for _ in 0..<2 {
            var image = loom_image()
            var error = [CChar](repeating: 0, count: Int(LOOM_IMAGE_ERROR_SIZE))
            var status: Int32 = 0
            let pixels = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
                image.pixels = buffer.baseAddress
                image.capacity = buffer.count
                status = data.withUnsafeBytes { raw in call(raw.bindMemory(to: UInt8.self).baseAddress!, raw.count, &image, &error) }
                count = status == 0 ? Int(image.width) * Int(image.height) * Int(image.channels) * Int(max(1, image.bytes_per_sample)) : 0
            }
            if status == LOOM_IMAGE_BUFFER_TOO_SMALL {
                capacity = clampedBytes(Int(image.width), Int(image.height), Int(image.channels) * Int(max(1, image.bytes_per_sample)))
                guard capacity > 0 else {
                    throw ImageCodecError(source: source, message: "\(image.width)x\(image.height)x\(image.channels) is larger than Loom decodes")
                }
                continue
            }
            guard status == 0 else { throw ImageCodecError(source: source, message: errorText(error)) }
            return Image(width: Int(image.width), height: Int(image.height), channels: Int(image.channels),
                         bytesPerSample: Int(max(1, image.bytes_per_sample)), pixels: pixels)
        }
        throw ImageCodecError(source: source, message: "the decoder asked for a larger buffer twice")
    }

    private static func encode(
        _ image: Image,
        _ call: (UnsafePointer<UInt8>, UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>, UnsafeMutablePointer<Int>,
                 UnsafeMutablePointer<CChar>) -> Int32
    ) throws(ImageCodecError) -> Data {
        var out: UnsafeMutablePointer<UInt8>? = nil
        var size = 0
        var error = [CChar](repeating: 0, count: Int(LOOM_IMAGE_ERROR_SIZE))
        let status = image.pixels.withUnsafeBufferPointer { call($0.baseAddress!, &out, &size, &error) }
        guard status == 0, let out else { throw ImageCodecError(source: nil, message: errorText(error)) }
        defer { loom_image_free(out) }
        return Data(bytes: out, count: size)
    }
}
