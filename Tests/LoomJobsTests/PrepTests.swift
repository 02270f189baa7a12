import Foundation
import Logging
import LoomData
import LoomLayers
import LoomTensor
import Testing
@testable import LoomJobs

@Suite struct PrepTests {
    /// An image folder of 3 classes x 4 PNG images (8x6 gray, pixel value = class * 50 + index),
    /// plus `corrupt` broken files in class "b".
    static func imageFolder(_ scratch: JobScratch, corrupt: Int = 0) throws -> String {
        let root = scratch.url.appendingPathComponent("images")
        for (c, name) in ["a", "b", "c"].enumerated() {
            let dir = root.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for i in 0..<4 {
                let image = Image(width: 6, height: 8, channels: 1, pixels: Array(repeating: UInt8(c * 50 + i), count: 48))
                try ImageCodec.encodePNG(image).write(to: dir.appendingPathComponent("\(i).png"))
            }
        }
        for i in 0..<corrupt {
            let truncated = try ImageCodec.encodePNG(Image(width: 6, height: 8, channels: 1, pixels: Array(repeating: 9, count: 48))).prefix(30)
            try truncated.write(to: root.appendingPathComponent("b/broken\(i).png"))
        }
        return root.path
    }

    static func options(_ folder: String, out: String) -> PrepOptions {
        var folderOptions = ImageFolderOptions(colorMode: .grayscale, imageSize: (8, 6), shuffle: false)
        folderOptions.jpegDownscale = false
        var o = PrepOptions(source: .imageFolder(directory: folder, options: folderOptions), output: out)
        (o.testFraction, o.seed, o.rescale, o.shardSize, o.workers) = (0.25, 3, 1 / 255, 4, 2)
        return o
    }

    @Test func imagesBecomeShardsWithAManifest() throws {
        let scratch = try JobScratch()
        defer { scratch.remove() }
        let out = scratch.path("prepared")
        let result = try Prep.run(Self.options(try Self.imageFolder(scratch), out: out), logger: Logger(label: "test"))
        #expect(!result.upToDate && result.counts == ["train": 9, "test": 3])
        let manifest = try JSONValue.parse(String(contentsOfFile: out + "/manifest.json", encoding: .utf8))
        guard case let .object(m) = manifest, case let .array(files)? = m["files"], case let .object(crc)? = m["crc32"],
              case let .object(pre)? = m["preprocessing"] else { Issue.record("manifest: \(manifest)"); return }
        #expect(files.count == 8, "train: 3 shards of x and y (4 + 4 + 1 samples); test: 1")
        #expect(pre["class_names"] == ["a", "b", "c"])
        // Every sample is in exactly one split, scaled, with its class.
        var seen: [Float: Float] = [:]
        for case let .string(file) in files where file.contains("-x-") {
            let x = try NPY.read(out + "/" + file), y = try NPY.read(out + "/" + file.replacingOccurrences(of: "-x-", with: "-y-"))
            #expect(x.shape.dropFirst() == [8, 6, 1])
            #expect(crc[file] != nil)
            for i in 0..<x.shape[0] {
                let value = (x.scalars[i * 48] * 255).rounded()
                #expect(seen[value] == nil)
                seen[value] = y.scalars[i]
                #expect(Float(Int(value) / 50) == y.scalars[i])
            }
        }
        #expect(seen.count == 12)
    }

    @Test func aRerunWithTheSameInputsDoesNothing() throws {
        let scratch = try JobScratch()
        defer { scratch.remove() }
        let folder = try Self.imageFolder(scratch), out = scratch.path("prepared")
        _ = try Prep.run(Self.options(folder, out: out), logger: Logger(label: "test"))
        let before = try FileManager.default.attributesOfItem(atPath: out + "/manifest.json")[.modificationDate] as? Date
        let again = try Prep.run(Self.options(folder, out: out), logger: Logger(label: "test"))
        #expect(again.upToDate && again.counts == ["train": 9, "test": 3])
        #expect(try FileManager.default.attributesOfItem(atPath: out + "/manifest.json")[.modificationDate] as? Date == before)
        // Other options, or --force, redo it.
        var other = Self.options(folder, out: out)
        other.seed = 4
        #expect(!(try Prep.run(other, logger: Logger(label: "test"))).upToDate)
        other.force = true
        #expect(!(try Prep.run(other, logger: Logger(label: "test"))).upToDate)
        // A changed input redoes it too.
        sleep(1)
        let image = Image(width: 6, height: 8, channels: 1, pixels: Array(repeating: 200, count: 48))
        try ImageCodec.encodePNG(image).write(to: URL(fileURLWithPath: folder + "/c/0.png"))
        #expect(!(try Prep.run(Self.options(folder, out: out), logger: Logger(label: "test"))).upToDate)
    }

    @Test func corruptImagesAreSkippedAndListed() throws {
        let scratch = try JobScratch()
        defer { scratch.remove() }
        let out = scratch.path("prepared")
        let result = try Prep.run(Self.options(try Self.imageFolder(scratch, corrupt: 2), out: out), logger: Logger(label: "test"))
        #expect(result.skipped.count == 2 && result.skipped.allSatisfy { $0.contains("broken") })
        #expect(result.counts == ["train": 9, "test": 3])
        let manifest = try String(contentsOfFile: out + "/manifest.json", encoding: .utf8)
        #expect(manifest.contains("broken0.png") && manifest.contains("broken1.png"))
    }

    @Test func corruptImagesAreFatalWhenAskedAndKeepTheEarlierOutput() throws {
        let scratch = try JobScratch()
        defer { scratch.remove() }
        let out = scratch.path("prepared")
        let folder = try Self.imageFolder(scratch)
        _ = try Prep.run(Self.options(folder, out: out), logger: Logger(label: "test"))
        let earlier = try String(contentsOfFile: out + "/manifest.json", encoding: .utf8)
        _ = try Self.imageFolder(scratch, corrupt: 1)
        var strict = Self.options(folder, out: out)
        strict.onError = .fail
        do {
            _ = try Prep.run(strict, logger: Logger(label: "test"))
            Issue.record("a corrupt image passed with on-error fail")
        } catch let error as JobEnded {
            #expect(error.exit == .failed && error.message.contains("broken0.png"), "\(error)")
        }
        #expect(try String(contentsOfFile: out + "/manifest.json", encoding: .utf8) == earlier)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: scratch.url.path).filter { $0.contains(".partial") || $0.contains(".old") }
        #expect(leftovers.isEmpty)
    }

    /// CSV: standardized features (statistics in the manifest), one-hot labels.
    @Test func csvBecomesStandardizedShards() throws {
        let scratch = try JobScratch()
        defer { scratch.remove() }
        try Data("u,v,label\n1,10,0\n2,20,1\n3,30,2\n4,40,1\n".utf8).write(to: scratch.url.appendingPathComponent("t.csv"))
        var o = PrepOptions(source: .csv(paths: [scratch.path("t.csv")], options: CSVOptions(labels: ["label"])), output: scratch.path("out"))
        (o.standardize, o.oneHot) = (true, 3)
        _ = try Prep.run(o, logger: Logger(label: "test"))
        let x = try NPY.read(scratch.path("out/train-x-00000.npy")), y = try NPY.read(scratch.path("out/train-y-00000.npy"))
        // mean 2.5, population std sqrt(1.25)
        let s = Float(1.25).squareRoot()
        for (a, b) in zip(x.scalars, [-1.5 / s, -1.5 / s, -0.5 / s, -0.5 / s, 0.5 / s, 0.5 / s, 1.5 / s, 1.5 / s]) { #expect(abs(a - b) < 1e-6) }
        #expect(y.shape == [4, 3] && y.scalars == [1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0])
    }
}
