import CLoomImage
import Foundation

/// A decoded image: height × width × channels bytes, row-major (HWC), 8 bits per sample.
public struct Image: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * channels,
                     "Image: \(pixels.count) bytes for \(height)x\(width)x\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
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
        try decode(data, source) { bytes, count, image, error in
            loom_png_decode(bytes, count, Int32(channels), image, error)
        }
    }

    /// Decodes JPEG bytes. `channels` 0 keeps the file's (gray stays 1, color becomes 3 RGB,
    /// CMYK becomes RGB); `scaleDenominator` 1, 2, 4 or 8 downscales during decoding.
    public static func decodeJPEG(_ data: Data, channels: Int = 0, scaleDenominator: Int = 1,
                                  source: String? = nil) throws(ImageCodecError) -> Image {
        try decode(data, source) { bytes, count, image, error in
            loom_jpeg_decode(bytes, count, Int32(channels), Int32(scaleDenominator), image, error)
        }
    }

    /// Encodes an image as PNG (lossless).
    public static func encodePNG(_ image: Image) throws(ImageCodecError) -> Data {
        try encode(image) { pixels, out, size, error in
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

    private static func decode(
        _ data: Data, _ source: String?,
        _ call: (UnsafePointer<UInt8>, Int, UnsafeMutablePointer<loom_image>, UnsafeMutablePointer<CChar>) -> Int32
    ) throws(ImageCodecError) -> Image {
        var image = loom_image()
        var error = [CChar](repeating: 0, count: Int(LOOM_IMAGE_ERROR_SIZE))
        let status: Int32 = data.withUnsafeBytes { raw in
            guard let base = raw.bindMemory(to: UInt8.self).baseAddress, raw.count > 0 else { return -2 }
            return call(base, raw.count, &image, &error)
        }
        if status == -2 { throw ImageCodecError(source: source, message: "empty input") }
        guard status == 0, let pixels = image.pixels else {
            throw ImageCodecError(source: source, message: errorText(error))
        }
        defer { loom_image_free(pixels) }
        let count = Int(image.width) * Int(image.height) * Int(image.channels)
        return Image(width: Int(image.width), height: Int(image.height), channels: Int(image.channels),
                     pixels: Array(UnsafeBufferPointer(start: pixels, count: count)))
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
