import Foundation
import LoomTensor

/// How labels come out of an image folder (Keras's label_mode).
public enum LabelMode: String, Sendable {
    /// The class index, shape [].
    case int
    /// One-hot over the classes, shape [classes].
    case categorical
    /// 0 or 1 as a float, shape [1] (two classes only).
    case binary
    /// No labels.
    case none
}

/// The channels images are decoded to (Keras's color_mode).
public enum ColorMode: String, Sendable {
    case grayscale, rgb, rgba

    var channels: Int { self == .grayscale ? 1 : self == .rgb ? 3 : 4 }
}

/// Which part of a split folder to read.
public enum Subset: String, Sendable { case training, validation }

/// keras.utils.image_dataset_from_directory's arguments.
public struct ImageFolderOptions: Sendable {
    public var labelMode: LabelMode = .int
    /// The classes in order (a subset of the subfolders); nil: every subfolder, sorted.
    public var classNames: [String]? = nil
    public var colorMode: ColorMode = .rgb
    /// (height, width) every image is resized to.
    public var imageSize: (Int, Int) = (256, 256)
    public var interpolation: Interpolation = .bilinear
    /// Center-crop each image to the target aspect ratio before resizing.
    public var cropToAspectRatio = false
    /// Shuffle the file list (with `seed`, as Keras does with NumPy's RandomState) and each epoch.
    public var shuffle = true
    public var seed: UInt32 = 1337
    /// Hold out this fraction of the (shuffled) files; `subset` picks the part to read.
    public var validationSplit: Float? = nil
    public var subset: Subset? = nil
    /// Let JPEG's decoder downscale by 2, 4 or 8 when the target is at most that much smaller
    /// (faster; pixels differ slightly from decoding at full size then resizing).
    public var jpegDownscale = true

    public init(labelMode: LabelMode = .int, classNames: [String]? = nil, colorMode: ColorMode = .rgb,
                imageSize: (Int, Int) = (256, 256), interpolation: Interpolation = .bilinear, cropToAspectRatio: Bool = false,
                shuffle: Bool = true, seed: UInt32 = 1337, validationSplit: Float? = nil, subset: Subset? = nil,
                jpegDownscale: Bool = true) {
        self.labelMode = labelMode
        self.classNames = classNames
        self.colorMode = colorMode
        self.imageSize = imageSize
        self.interpolation = interpolation
        self.cropToAspectRatio = cropToAspectRatio
        self.shuffle = shuffle
        self.seed = seed
        self.validationSplit = validationSplit
        self.subset = subset
        self.jpegDownscale = jpegDownscale
    }
}

/// A folder of images with one subfolder per class, read as Keras's
/// image_dataset_from_directory reads it: the same files, in the same order, with the same
/// labels and the same training / validation split for a given seed.
public struct ImageFolder: Sendable {
    /// The extensions Keras lists (decoding supports PNG and JPEG; others fail by name).
    public static let extensions = [".bmp", ".gif", ".jpeg", ".jpg", ".png"]

    public let files: [String]
    /// Each file's class index (empty with LabelMode.none).
    public let labels: [Int]
    public let classNames: [String]
    public let options: ImageFolderOptions

    /// Lists `directory` as Keras does: class subfolders (sorted, or `classNames`), files
    /// walked recursively in sorted order, shuffled with NumPy's RandomState(seed), then split.
    public init(directory: String, options: ImageFolderOptions = ImageFolderOptions()) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DataFileError(path: directory, message: "no such folder")
        }
        let root = URL(fileURLWithPath: directory)
        let subfolders = try fm.contentsOfDirectory(atPath: directory).sorted().filter { name in
            var d: ObjCBool = false
            return !name.hasPrefix(".") && fm.fileExists(atPath: root.appendingPathComponent(name).path, isDirectory: &d) && d.boolValue
        }
        var classes = subfolders
        if let given = options.classNames {
            guard Set(given).isSubset(of: Set(subfolders)) else {
                throw DataFileError(path: directory, message: "class_names \(given) are not all subfolders (found \(subfolders))")
            }
            classes = given
        }
        if options.labelMode == .none { classes = [""] }
        var files: [String] = []
        var labels: [Int] = []
        for (index, name) in classes.enumerated() {
            let folder = name.isEmpty ? root : root.appendingPathComponent(name)
            for file in try Self.walk(folder) {
                files.append(file)
                labels.append(index)
            }
        }
        guard !files.isEmpty else { throw DataFileError(path: directory, message: "no images (\(Self.extensions.joined(separator: ", ")))") }
        if options.labelMode == .binary && classes.count != 2 {
            throw DataFileError(path: directory, message: "label_mode binary needs exactly 2 classes, found \(classes.count)")
        }
        if options.shuffle {
            var state = NumPyRandomState(seed: options.seed)
            state.shuffle(&files)
            state = NumPyRandomState(seed: options.seed)
            state.shuffle(&labels)
        }
        if let split = options.validationSplit, split > 0 {
            guard split < 1 else { throw DataFileError(path: directory, message: "validation_split must be in (0, 1), got \(split)") }
            guard let subset = options.subset else {
                throw DataFileError(path: directory, message: "validation_split needs a subset (training or validation)")
            }
            let held = Int(split * Float(files.count))
            let cut = files.count - held
            if subset == .training {
                files = Array(files[..<cut])
                labels = Array(labels[..<cut])
            } else {
                files = Array(files[cut...])
                labels = Array(labels[cut...])
            }
        }
        self.files = files
        self.labels = options.labelMode == .none ? [] : labels
        classNames = options.labelMode == .none ? [] : classes
        self.options = options
    }

    /// The image files under `folder`, as os.walk visits them sorted by folder then name.
    public static func walk(_ folder: URL) throws -> [String] {
        var files: [String: [String]] = [:]
        var pending = [folder.path]
        while let next = pending.popLast() {
            var names: [String] = []
            for (name, isDirectory) in directoryEntries(next) {
                if isDirectory {
                    pending.append(next + "/" + name)
                } else if extensions.contains(where: { name.lowercased().hasSuffix($0) }) {
                    names.append(name)
                }
            }
            files[next] = names.sorted()
        }
        return files.keys.sorted().flatMap { path in files[path, default: []].map { path + "/" + $0 } }
    }

    /// The names in a folder (without . and ..) and whether each is a folder; readdir's entry
    /// types, with stat where the file system gives none (symbolic links are followed for
    /// files only, as os.walk does).
    static func directoryEntries(_ path: String) -> [(String, Bool)] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var out: [(String, Bool)] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            var isDirectory = Int32(entry.pointee.d_type) == Int32(DT_DIR)
            if Int32(entry.pointee.d_type) == Int32(DT_UNKNOWN) {
                var info = stat()
                if lstat(path + "/" + name, &info) == 0 { isDirectory = (info.st_mode & S_IFMT) == S_IFDIR }
            }
            out.append((name, isDirectory))
        }
        return out
    }

    /// The samples: each file read, decoded, converted to the color mode, cropped and resized
    /// on `workers` threads, as [height, width, channels] float32 0...255 with its label. The
    /// file order is reshuffled each epoch when `options.shuffle`.
    public func dataset(workers: Int = 1, onError: ErrorPolicy = .fail, log: SkipLog? = nil) -> Dataset<Sample> {
        let entries = files.indices.map { (files[$0], labels.isEmpty ? -1 : labels[$0]) }
        var listing = Dataset.from(entries)
        if options.shuffle { listing = listing.shuffle(bufferSize: entries.count, seed: UInt64(options.seed)) }
        let options = self.options, classes = classNames.count
        return listing.map(workers: workers, onError: onError, log: log) { entry, _ in
            let image = try Self.load(entry.0, options: options)
            guard entry.1 >= 0 else { return Sample(inputs: [image]) }
            let label: Tensor
            switch options.labelMode {
            case .int: label = Tensor(Float(entry.1))
            case .binary: label = Tensor(shape: [1], scalars: [Float(entry.1)])
            case .categorical:
                var oneHot = [Float](repeating: 0, count: classes)
                oneHot[entry.1] = 1
                label = Tensor(shape: [classes], scalars: oneHot)
            case .none: return Sample(inputs: [image])
            }
            return Sample(inputs: [image], targets: [label])
        }
    }

    /// One image file as the options want it.
    public static func load(_ path: String, options: ImageFolderOptions) throws -> Tensor {
        let (height, width) = options.imageSize
        let data = try readDataFile(path)
        let decoded = try ImageDecoder.decode(data, path: path, channels: options.colorMode.channels,
                                              target: options.jpegDownscale && !options.cropToAspectRatio ? (height, width) : nil)
        var image = decoded.tensor
        if options.cropToAspectRatio { image = ImageTransform.centerCropToAspectRatio(image, height: height, width: width) }
        return ImageTransform.resize(image, height: height, width: width, method: options.interpolation)
    }
}

/// Decoding by content (PNG or JPEG, whatever the extension says), to a channel count.
public enum ImageDecoder {
    /// The most pixels an image may declare: a crafted header must not allocate without bound.
    public static let maximumPixels = 1 << 28

    /// Decodes `data` to `channels` channels (0: the file's own, as decode_image's default);
    /// with a `target` size, JPEG decodes at the smallest DCT scale (1/2, 1/4, 1/8) still at
    /// least that large.
    public static func decode(_ data: Data, path: String, channels: Int, target: (Int, Int)? = nil) throws -> Image {
        do {
            if data.starts(with: [0x89, 0x50, 0x4E, 0x47]) {
                if let (width, height) = ImageCodec.pngSize(data) {
                    guard width * height <= maximumPixels else {
                        throw DataFileError(path: path, message: "PNG of \(width)x\(height) pixels is larger than Loom decodes")
                    }
                }
                return try ImageCodec.decodePNG(data, channels: channels, source: path)
            }
            if data.starts(with: [0xFF, 0xD8]) {
                var scale = 1
                if let (height, width, _) = ImageCodec.jpegFrame(data) {
                    guard width * height <= maximumPixels else {
                        throw DataFileError(path: path, message: "JPEG of \(width)x\(height) pixels is larger than Loom decodes")
                    }
                    if let (th, tw) = target {
                        while scale < 8 && height / (scale * 2) >= th && width / (scale * 2) >= tw { scale *= 2 }
                    }
                }
                let image = try ImageCodec.decodeJPEG(data, channels: channels == 0 ? 0 : channels >= 3 ? 3 : 1,
                                                      scaleDenominator: scale, source: path)
                return channels == 0 ? image : image.converted(toChannels: channels)
            }
        } catch let error as ImageCodecError {
            throw DataFileError(path: path, message: error.message)
        }
        if data.isEmpty { throw DataFileError(path: path, message: "empty file") }
        let kind = data.starts(with: Array("GIF8".utf8)) ? "a GIF image" : data.starts(with: Array("BM".utf8)) ? "a BMP image"
            : "not a PNG or JPEG image"
        throw DataFileError(path: path, message: "\(kind): Loom decodes PNG and JPEG")
    }
}

/// NumPy's legacy RandomState (MT19937) as far as Keras uses it: `RandomState(seed).shuffle`.
struct NumPyRandomState {
    private var state = [UInt32](repeating: 0, count: 624)
    private var index = 624

    init(seed: UInt32) {
        state[0] = seed
        for i in 1..<624 { state[i] = 1_812_433_253 &* (state[i - 1] ^ (state[i - 1] >> 30)) &+ UInt32(i) }
    }

    mutating func next() -> UInt32 {
        if index >= 624 {
            for i in 0..<624 {
                let y = (state[i] & 0x8000_0000) | (state[(i + 1) % 624] & 0x7FFF_FFFF)
                state[i] = state[(i + 397) % 624] ^ (y >> 1) ^ (y & 1 == 0 ? 0 : 0x9908_B0DF)
            }
            index = 0
        }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    /// A uniform integer in 0...max by masked rejection (NumPy's random_interval).
    mutating func interval(_ max: UInt32) -> UInt32 {
        guard max > 0 else { return 0 }
        var mask = max
        mask |= mask >> 1; mask |= mask >> 2; mask |= mask >> 4; mask |= mask >> 8; mask |= mask >> 16
        while true {
            let value = next() & mask
            if value <= max { return value }
        }
    }

    /// Fisher-Yates from the end, as RandomState.shuffle does on a list.
    mutating func shuffle<T>(_ items: inout [T]) {
        guard items.count > 1 else { return }
        for i in stride(from: items.count - 1, through: 1, by: -1) {
            items.swapAt(i, Int(interval(UInt32(i))))
        }
    }
}
