import Foundation
import Testing
@testable import LoomData

@Suite struct ImageTests {
    /// A smooth gradient image: JPEG's lossy coding keeps it within a few levels.
    static func gradient(width: Int, height: Int, channels: Int) -> Image {
        var pixels: [UInt8] = []
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels { pixels.append(UInt8((x * 3 + y * 2 + c * 40) % 256)) }
            }
        }
        return Image(width: width, height: height, channels: channels, pixels: pixels)
    }

    /// A 16-bit image converts channels at 16 bits and reads as v / 257.
    @Test func sixteenBitImagesConvertAtSixteenBits() {
        // Gray 0x0101 (1.0 on the 8-bit scale) and 0x8000 (32768 / 257).
        let gray = Image(width: 2, height: 1, channels: 1, bytesPerSample: 2, pixels: [0x01, 0x01, 0x00, 0x80])
        #expect(gray.tensor.scalars == [1, Float(32768) / 257])
        let rgba = gray.converted(toChannels: 4)
        #expect(rgba.bytesPerSample == 2)
        #expect(rgba.tensor.scalars == [1, 1, 1, 255, Float(32768) / 257, Float(32768) / 257, Float(32768) / 257, 255])
        #expect(throws: ImageCodecError.self) { try ImageCodec.encodePNG(gray) }
    }

    @Test(arguments: [1, 2, 3, 4])
    func pngRoundTripIsExact(_ channels: Int) throws {
        let image = Self.gradient(width: 37, height: 21, channels: channels)
        let data = try ImageCodec.encodePNG(image)
        #expect(Array(data.prefix(4)) == [0x89, 0x50, 0x4E, 0x47])
        #expect(try ImageCodec.decodePNG(data) == image)
        let gray = try ImageCodec.decodePNG(try ImageCodec.encodePNG(Self.gradient(width: 4, height: 3, channels: 1)), channels: 3)
        #expect(gray.channels == 3 && gray.pixels[0] == gray.pixels[1] && gray.pixels[1] == gray.pixels[2])
    }

    @Test(arguments: [1, 3])
    func jpegRoundTripIsClose(_ channels: Int) throws {
        let image = Self.gradient(width: 64, height: 48, channels: channels)
        let data = try ImageCodec.encodeJPEG(image, quality: 95)
        #expect(Array(data.prefix(2)) == [0xFF, 0xD8])
        let decoded = try ImageCodec.decodeJPEG(data)
        #expect(decoded.width == 64 && decoded.height == 48 && decoded.channels == channels)
        let meanError = zip(decoded.pixels, image.pixels).map { abs(Int($0) - Int($1)) }.reduce(0, +) / image.pixels.count
        #expect(meanError <= 6) // quality 95 with 4:2:0 chroma subsampling
        let half = try ImageCodec.decodeJPEG(data, scaleDenominator: 2)
        #expect(half.width == 32 && half.height == 24)
    }

    @Test func corruptInputIsAnErrorNotACrash() throws {
        let png = try ImageCodec.encodePNG(Self.gradient(width: 16, height: 16, channels: 3))
        let jpeg = try ImageCodec.encodeJPEG(Self.gradient(width: 16, height: 16, channels: 3))
        #expect(throws: ImageCodecError.self) { try ImageCodec.decodePNG(Data("not a png".utf8), source: "x.png") }
        #expect(throws: ImageCodecError.self) { try ImageCodec.decodePNG(png.prefix(40)) }
        #expect(throws: ImageCodecError.self) { try ImageCodec.decodeJPEG(Data([0xFF, 0xD8, 0xFF, 0x00, 1, 2, 3])) }
        #expect(throws: ImageCodecError.self) { try ImageCodec.decodeJPEG(Data()) }
        #expect(throws: ImageCodecError.self) { try ImageCodec.decodeJPEG(jpeg, scaleDenominator: 3) }
        do {
            _ = try ImageCodec.decodePNG(Data("garbage".utf8), source: "images/cat.png")
        } catch {
            #expect(error.description.hasPrefix("images/cat.png: "))
        }
    }

    /// A JPEG cut short or with corrupt entropy-coded data decodes without an error in libjpeg
    /// (a warning, the rest painted gray); Pillow and TensorFlow refuse them, and so does Loom.
    @Test func truncatedAndCorruptJPEGsAreErrors() throws {
        var random = SystemRandomNumberGenerator()
        let noise = Image(width: 64, height: 64, channels: 3, pixels: (0..<(64 * 64 * 3)).map { _ in UInt8.random(in: 0...255, using: &random) })
        let jpeg = try ImageCodec.encodeJPEG(noise, quality: 90)
        #expect(throws: Never.self) { try ImageCodec.decodeJPEG(jpeg) }
        for cut in [jpeg.count / 2, jpeg.count - 2] {
            #expect(throws: ImageCodecError.self, "cut at \(cut) of \(jpeg.count) bytes") { try ImageCodec.decodeJPEG(jpeg.prefix(cut)) }
        }
        // A marker in the middle of the scan data (premature end of data segment), and bytes
        // overwritten there.
        var marked = jpeg
        marked[marked.startIndex + jpeg.count * 2 / 3] = 0xFF
        marked[marked.startIndex + jpeg.count * 2 / 3 + 1] = 0xD9
        #expect(throws: ImageCodecError.self) { try ImageCodec.decodeJPEG(marked, source: "cut.jpg") }
        var scrambled = jpeg
        for k in 0..<64 { scrambled[scrambled.startIndex + jpeg.count / 2 + k] = UInt8(truncatingIfNeeded: k &* 37 &+ 11) }
        #expect(throws: ImageCodecError.self) { try ImageCodec.decodeJPEG(scrambled) }
    }

    @Test func decodesTheBundledPhotograph() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../datasets/photos/flower.jpg").standardized
        let image = try ImageCodec.decodeJPEG(try Data(contentsOf: url))
        #expect(image.width == 640 && image.height == 427 && image.channels == 3)
    }
}
