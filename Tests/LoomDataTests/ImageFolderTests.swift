import Foundation
import LoomTensor
import Testing
@testable import LoomData

/// Image folders read as keras.utils.image_dataset_from_directory reads them, and the bad
/// files a folder can hold.
@Suite struct ImageFolderTests {
    /// A folder of classes holding images written by the shim's encoders.
    static func makeFolder(_ layout: [String: [String]], size: (Int, Int) = (12, 10)) throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("loom-images-\(UInt64.random(in: 0...UInt64.max))")
        for (folder, files) in layout {
            let dir = root.appendingPathComponent(folder)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for (n, name) in files.enumerated() {
                let image = ImageTests.gradient(width: size.1, height: size.0, channels: 3)
                let shifted = Image(width: image.width, height: image.height, channels: 3, pixels: image.pixels.map { $0 &+ UInt8(n * 7) })
                let data = name.hasSuffix(".png") ? try ImageCodec.encodePNG(shifted) : try ImageCodec.encodeJPEG(shifted, quality: 95)
                try data.write(to: dir.appendingPathComponent(name))
            }
        }
        return root.path
    }

    @Test func listsClassesFilesAndLabelsAsKeras() throws {
        let root = try Self.makeFolder(["dogs": ["b.png", "a.jpg", "notes.txt.png"], "cats": ["z.jpeg", "y.PNG"],
                                        "cats/inner": ["x.png"], ".hidden": ["h.png"]])
        try Data("not an image list".utf8).write(to: URL(fileURLWithPath: root).appendingPathComponent("dogs/readme.txt"))
        let folder = try ImageFolder(directory: root, options: ImageFolderOptions(shuffle: false))
        #expect(folder.classNames == ["cats", "dogs"])
        #expect(folder.files.map { String($0.dropFirst(root.count + 1)) }
                == ["cats/y.PNG", "cats/z.jpeg", "cats/inner/x.png", "dogs/a.jpg", "dogs/b.png", "dogs/notes.txt.png"])
        #expect(folder.labels == [0, 0, 0, 1, 1, 1])
        let chosen = try ImageFolder(directory: root, options: ImageFolderOptions(classNames: ["dogs"], shuffle: false))
        #expect(chosen.files.count == 3 && chosen.labels == [0, 0, 0])
        #expect(throws: DataFileError.self) { _ = try ImageFolder(directory: root, options: ImageFolderOptions(classNames: ["birds"])) }
    }

    /// Keras shuffles the file list with NumPy's RandomState(seed) and holds out the end.
    @Test func shufflesAndSplitsAsKerasDoes() throws {
        // numpy: x = list(range(20)); np.random.RandomState(1337).shuffle(x)
        var x = Array(0..<20)
        var state = NumPyRandomState(seed: 1337)
        state.shuffle(&x)
        #expect(x == [5, 3, 4, 0, 15, 11, 2, 12, 13, 1, 16, 17, 10, 14, 6, 9, 19, 18, 7, 8])
        let names = (0..<10).map { "img\($0).png" }
        let root = try Self.makeFolder(["a": names, "b": names])
        let all = try ImageFolder(directory: root, options: ImageFolderOptions(shuffle: false))
        let training = try ImageFolder(directory: root, options: ImageFolderOptions(seed: 1337, validationSplit: 0.2, subset: .training))
        let validation = try ImageFolder(directory: root, options: ImageFolderOptions(seed: 1337, validationSplit: 0.2, subset: .validation))
        #expect(training.files == x.prefix(16).map { all.files[$0] })
        #expect(validation.files == x.suffix(4).map { all.files[$0] })
        #expect(validation.labels == x.suffix(4).map { all.labels[$0] })
        #expect(throws: DataFileError.self) {
            _ = try ImageFolder(directory: root, options: ImageFolderOptions(validationSplit: 0.2))
        }
    }

    @Test func samplesHaveTheAskedSizeChannelsAndLabels() throws {
        let root = try Self.makeFolder(["a": ["1.png", "2.jpg"], "b": ["3.png"]], size: (20, 16))
        for (mode, channels) in [(ColorMode.grayscale, 1), (.rgb, 3), (.rgba, 4)] {
            let folder = try ImageFolder(directory: root, options: ImageFolderOptions(labelMode: .categorical, colorMode: mode,
                                                                                       imageSize: (8, 6), shuffle: false))
            let samples = try folder.dataset(workers: 2).collect()
            #expect(samples.map { $0.inputs[0].shape } == Array(repeating: [8, 6, channels], count: 3))
            #expect(samples.map { $0.targets[0].scalars } == [[1, 0], [1, 0], [0, 1]])
        }
        let binary = try ImageFolder(directory: root, options: ImageFolderOptions(labelMode: .binary, imageSize: (4, 4), shuffle: false))
        #expect(try binary.dataset().collect().map { $0.targets[0].scalars } == [[0], [0], [1]])
        let unlabeled = try ImageFolder(directory: root, options: ImageFolderOptions(labelMode: .none, imageSize: (4, 4)))
        #expect(try unlabeled.dataset().collect().allSatisfy { $0.targets.isEmpty })
    }

    @Test func theSameSeedGivesTheSameBatchesWithAnyWorkers() throws {
        let root = try Self.makeFolder(["a": (0..<9).map { "a\($0).png" }, "b": (0..<8).map { "b\($0).jpg" }], size: (9, 9))
        let folder = try ImageFolder(directory: root, options: ImageFolderOptions(imageSize: (5, 7), seed: 3))
        func batches(_ workers: Int, epoch: Int) throws -> [[Float]] {
            try folder.dataset(workers: workers).batch(4).prefetch(2).collect(epoch: epoch).map { $0.inputs[0].scalars + $0.targets[0].scalars }
        }
        let one = try batches(1, epoch: 0)
        #expect(try batches(2, epoch: 0) == one)
        #expect(try batches(4, epoch: 0) == one)
        #expect(try batches(1, epoch: 1) != one)
    }

    @Test func resizeMatchesTensorFlowsFormulas() throws {
        // A 2x4 single-channel ramp: tf.image.resize to 4x2 gives these values (bilinear,
        // half-pixel centers), and nearest and area their own.
        let source = Tensor(shape: [2, 4, 1], scalars: [0, 10, 20, 30, 40, 50, 60, 70])
        #expect(ImageTransform.resize(source, height: 4, width: 2).scalars == [5, 25, 15, 35, 35, 55, 45, 65])
        #expect(ImageTransform.resize(source, height: 4, width: 2, method: .nearest).scalars == [10, 30, 10, 30, 50, 70, 50, 70])
        #expect(ImageTransform.resize(source, height: 1, width: 2, method: .area).scalars == [25, 45])
        let same = ImageTransform.resize(source, height: 2, width: 4)
        #expect(same.scalars == source.scalars)
        let cropped = ImageTransform.centerCropToAspectRatio(Tensor.zeros([10, 40, 3]), height: 1, width: 2)
        #expect(cropped.shape == [10, 20, 3])
    }

    @Test func transformsAndStatistics() throws {
        let x = Tensor(shape: [1, 2, 2], scalars: [0, 10, 20, 30])
        var random = StreamRandom(seed: 1, stream: 0)
        var flips = 0
        for _ in 0..<20 where ImageTransform.randomFlipLeftRight(x, using: &random).scalars == [20, 30, 0, 10] { flips += 1 }
        #expect(flips > 0 && flips < 20)
        #expect(ImageTransform.normalize(x, mean: [10, 20], std: [10, 5]).scalars == [-1, -2, 1, 2])
        #expect(ImageTransform.oneHot(Tensor(shape: [3], scalars: [2, 0, 1]), classes: 3).scalars == [0, 0, 1, 1, 0, 0, 0, 1, 0])
        let stats = try ChannelStatistics.adapt(.from([x, x * 3]))
        #expect(stats.mean == [20, 40])
        #expect(ImageTransform.randomCrop(Tensor.zeros([5, 6, 1]), height: 3, width: 4, using: &random).shape == [3, 4, 1])
        #expect(ImageTransform.centerCrop(Tensor.zeros([5, 6, 1]), height: 3, width: 4).shape == [3, 4, 1])
    }

    @Test func badFilesAreNamedOrSkipped() throws {
        let root = try Self.makeFolder(["a": ["good.png", "good2.jpg"]])
        let dir = URL(fileURLWithPath: root).appendingPathComponent("a")
        let png = try ImageCodec.encodePNG(ImageTests.gradient(width: 30, height: 30, channels: 3))
        let jpeg = try ImageCodec.encodeJPEG(ImageTests.gradient(width: 30, height: 30, channels: 3))
        let bad: [(String, Data, String)] = [
            ("empty.png", Data(), "empty file"),
            ("truncated.png", png.prefix(png.count / 2), "PNG"),
            ("truncated.jpg", jpeg.prefix(jpeg.count / 2), "JPEG"),
            ("random.png", Data((0..<500).map { UInt8(($0 * 7919) % 251) }), "not a PNG or JPEG image"),
            ("animation.gif", Data("GIF89a....".utf8), "a GIF image: Loom decodes PNG and JPEG"),
        ]
        for (name, data, message) in bad {
            try data.write(to: dir.appendingPathComponent(name))
            do {
                _ = try ImageFolder.load(dir.appendingPathComponent(name).path, options: ImageFolderOptions(imageSize: (8, 8)))
                Issue.record("\(name): no error")
            } catch {
                #expect("\(error)".hasPrefix(dir.appendingPathComponent(name).path + ": "), "\(error)")
                #expect("\(error)".contains(message), "\(error)")
            }
        }
        // A JPEG named .png decodes by its content, as TensorFlow's decode_image does.
        try jpeg.write(to: dir.appendingPathComponent("misnamed.png"))
        #expect(try ImageFolder.load(dir.appendingPathComponent("misnamed.png").path, options: ImageFolderOptions(imageSize: (8, 8))).shape == [8, 8, 3])
        let folder = try ImageFolder(directory: root, options: ImageFolderOptions(imageSize: (8, 8), shuffle: false))
        #expect(throws: DataFileError.self) { _ = try folder.dataset(workers: 2).collect() }
        let log = SkipLog()
        let kept = try folder.dataset(workers: 2, onError: .skip, log: log).collect()
        #expect(kept.count == 3)
        #expect(log.count == 5)
        // Another epoch starts a new count.
        log.reset()
        #expect(try folder.dataset(workers: 2, onError: .skip, log: log).collect().count == 3 && log.count == 5)
    }

    @Test func jpegDownscalesInTheDCTWhenTheTargetIsSmall() throws {
        let big = try ImageCodec.encodeJPEG(ImageTests.gradient(width: 64, height: 48, channels: 3), quality: 95)
        let fast = try ImageDecoder.decode(big, path: "x.jpg", channels: 3, target: (12, 16))
        #expect(fast.width == 16 && fast.height == 12)
        let exact = try ImageDecoder.decode(big, path: "x.jpg", channels: 3, target: (13, 16))
        #expect(exact.width == 32 && exact.height == 24)
        #expect(ImageCodec.jpegFrame(big)! == (48, 64, 3))
    }
}
