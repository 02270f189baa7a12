import Foundation
import LoomLayers
import LoomTensor
import Testing
@testable import LoomData

/// Images made by other encoders (pypng, Pillow; scripts/make_image_fixtures.py) decode to what
/// TensorFlow's decode_image gives, at 1, 3 and 4 channels (16-bit files at 16 bits, divided by
/// 257): 8- and 16-bit, 2-bit gray, gray with
/// alpha, palettes with and without transparency, interlaced PNG; gray, 4:2:0, 4:4:4,
/// progressive and CMYK JPEG.
@Suite struct DecoderFixtureTests {
    static let folder = Bundle.module.bundleURL.appendingPathComponent("Fixtures/images")

    static var cases: [String] {
        guard let data = try? Data(contentsOf: folder.appendingPathComponent("images.json")),
              case let .object(root) = try? JSONDecoder().decode(JSONValue.self, from: data),
              case let .object(files)? = root["files"] else { return [] }
        return files.flatMap { name, entry -> [String] in
            guard case let .object(e) = entry, case let .array(decoded)? = e["decoded"] else { return [] }
            return decoded.compactMap { $0.numberValue.map { "\(name) \(Int($0))" } }
        }.sorted()
    }

    @Test(arguments: cases)
    func decodesAsTensorFlow(_ item: String) throws {
        let parts = item.split(separator: " ")
        let (name, channels) = (String(parts[0]), Int(parts[1])!)
        let data = try Data(contentsOf: Self.folder.appendingPathComponent(name))
        let image = try ImageDecoder.decode(data, path: name, channels: channels)
        let expected = try NPY.read(Self.folder.appendingPathComponent("\(name).c\(channels).npy").path)
        #expect([image.height, image.width, image.channels] == expected.shape, "\(item)")
        guard [image.height, image.width, image.channels] == expected.shape else { return }
        // 16-bit files keep their 16 bits (v / 257): no rounding to 8 bits.
        #expect(image.bytesPerSample == (name.hasSuffix("16.png") ? 2 : 1), "\(item)")
        let got = image.tensor.scalars, want = expected.scalars
        let worst = zip(got, want).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= (image.bytesPerSample == 2 ? 1e-4 : 0), "\(item): differs by up to \(worst)")
        if image.bytesPerSample == 2 {
            #expect(got.contains { $0 != $0.rounded() }, "\(item): no value between the 8-bit steps")
        }
    }

    /// Pixels are decoded into an array sized from the header; where the header understates the
    /// size (a palette whose transparency adds an alpha channel) the decoder names the size and
    /// decodes again, to the same pixels.
    @Test func anUnderstatedSizeIsDecodedAgain() throws {
        let data = try Data(contentsOf: Self.folder.appendingPathComponent("palette_transparent.png"))
        let own = try ImageCodec.decodePNG(data)
        #expect(own.channels == 4 && ImageCodec.pngBytes(data, channels: 0) < own.pixels.count)
        #expect(own == (try ImageCodec.decodePNG(data, channels: 4)))
        // Headers the size cannot be read from (an empty guess) decode the same way.
        for name in ["rgb8.png", "rgb_progressive.jpg", "cmyk.jpg"] {
            let file = try Data(contentsOf: Self.folder.appendingPathComponent(name))
            let truncatedGuess = name.hasSuffix("png") ? ImageCodec.pngBytes(file.prefix(20), channels: 0)
                : ImageCodec.jpegBytes(file.prefix(4), channels: 0, scaleDenominator: 1)
            #expect(truncatedGuess == 0, "\(name)")
            let image = try ImageDecoder.decode(file, path: name, channels: 3)
            #expect(image.pixels.count == image.width * image.height * 3 && image.width > 0, "\(name)")
        }
    }
}
