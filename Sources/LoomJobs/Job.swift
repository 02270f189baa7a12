import Foundation
import LoomData
import LoomLayers
import LoomModels

/// A training job as a job file describes it: data, model, compile, fit, evaluation and where
/// the run's files go. Paths in the file are relative to the file's folder.
public struct Job: Sendable {
    public var name: String
    public var seed: UInt64
    public var data: DataSpec
    public var model: ModelSpec
    /// Keras's compile_config: optimizer, loss, metrics, loss_weights.
    public var compile: JSONValue
    public var fit: FitSpec
    /// Evaluate on the test split after training (default: when there is one).
    public var evaluate: Bool
    /// The run folder named by the file (relative to the working directory), if any.
    public var runDirectory: String?
    /// Where the model and compile sections stand in the job file ("job.yaml:12"), for errors
    /// found only when the model is built or compiled.
    public var places: [String: String] = [:]
    /// The job with every default filled in, as the run folder records it.
    public var resolved: JSONValue {
        ["name": .string(name), "seed": .string(String(seed)), "data": data.resolved, "model": model.resolved,
         "compile": compile, "fit": fit.resolved, "evaluate": .bool(evaluate), "run_dir": runDirectory.map { .string($0) } ?? .null]
    }
}

/// Where samples come from.
public enum SourceSpec: Sendable {
    /// MNIST-style IDX image and label files (gzip or plain).
    case idx(images: String, labels: String)
    /// `.npy` arrays: one per input, one per output.
    case npy(x: [String], y: [String])
    /// CSV files with a header: feature and label columns.
    case csv(paths: [String], options: CSVOptions)
    /// A folder with one subfolder of images per class (image_dataset_from_directory).
    case imageFolder(directory: String, options: ImageFolderOptions)
    /// Windows over the rows of a CSV file in time order (timeseries_dataset_from_array):
    /// the input columns over `sequenceLength` rows, the target column `horizon` rows after
    /// each window's last row. Splits of such a source are taken from the end, in time order.
    case timeseries(TimeseriesSpec)

    var resolved: JSONValue {
        switch self {
        case let .idx(images, labels): return ["idx": ["images": .string(images), "labels": .string(labels)]]
        case let .npy(x, y): return ["npy": ["x": .array(x.map { .string($0) }), "y": .array(y.map { .string($0) })]]
        case let .csv(paths, o):
            let missing: JSONValue
            switch o.missing {
            case .error: missing = "error"
            case .skipRow: missing = "skip"
            case let .fill(v): missing = .double(Double(v))
            }
            func columns(_ cs: [CSVColumn]) -> JSONValue {
                .array(cs.map { c in if case let .name(n) = c { return .string(n) } else if case let .index(i) = c { return .int(i) }; return .null })
            }
            var categorical: [String: JSONValue] = [:]
            for (c, vocabulary) in o.categorical {
                categorical["\(c)"] = vocabulary.map { .array($0.map { .string($0) }) } ?? .null
            }
            return ["csv": ["paths": .array(paths.map { .string($0) }), "labels": columns(o.labels),
                            "features": o.features.map(columns) ?? .null, "categorical": .object(categorical),
                            "missing": missing, "header": .bool(o.header),
                            "delimiter": .string(String(UnicodeScalar(o.delimiter))), "on_error": .string(o.onError.rawValue)]]
        case let .timeseries(t):
            return ["timeseries": ["path": .string(t.path), "columns": .array(t.columns.map { .string($0) }), "target": .string(t.target),
                                   "sequence_length": .int(t.sequenceLength), "horizon": .int(t.horizon),
                                   "sequence_stride": .int(t.sequenceStride), "sampling_rate": .int(t.samplingRate),
                                   "missing": .string(t.missing.rawValue), "scale": .double(Double(t.scale))]]
        case let .imageFolder(directory, o):
            return ["image_folder": ["directory": .string(directory), "image_size": [.int(o.imageSize.0), .int(o.imageSize.1)],
                                     "color_mode": .string(o.colorMode.rawValue), "label_mode": .string(o.labelMode.rawValue),
                                     "interpolation": .string(o.interpolation.rawValue), "crop_to_aspect_ratio": .bool(o.cropToAspectRatio),
                                     "class_names": o.classNames.map { .array($0.map { .string($0) }) } ?? .null]]
        }
    }
}

/// A time series in a CSV file, windowed for forecasting.
public struct TimeseriesSpec: Sendable {
    /// How empty fields (missing measurements) are handled.
    public enum Missing: String, Sendable {
        /// Refuse the file, naming the line.
        case error
        /// Linear interpolation between the nearest measured rows (the nearest one at the ends):
        /// the rows stay evenly spaced in time.
        case interpolate
    }
    public var path: String
    public var columns: [String]
    public var target: String
    public var sequenceLength: Int
    public var horizon = 1
    public var sequenceStride = 1, samplingRate = 1
    public var missing = Missing.error
    /// The series is multiplied by this before windowing (inputs and target alike).
    public var scale: Float = 1
}

/// The data section: the sources of the splits and the transforms applied to all of them.
public struct DataSpec: Sendable {
    public var train: SourceSpec
    public var validation: SourceSpec?
    public var test: SourceSpec?
    /// Fractions of the training source held out (shuffled with `splitSeed`) when the
    /// validation or test split has no source of its own.
    public var validationFraction: Double = 0, testFraction: Double = 0
    public var splitSeed: UInt64
    /// Inputs are multiplied by this (1/255 for pixels).
    public var rescale: Float?
    /// Each sample's input reshaped to this (e.g. [784] to flatten 28x28 images).
    public var reshape: [Int]?
    /// Standardize every input feature with the training split's mean and standard deviation.
    public var standardize = false
    /// Integer labels turned into one-hot rows of this many classes.
    public var oneHot: Int?
    /// Threads decoding images and parsing CSV.
    public var workers: Int?

    var resolved: JSONValue {
        ["train": train.resolved, "validation": validation?.resolved ?? .null, "test": test?.resolved ?? .null,
         "split": ["validation": .double(validationFraction), "test": .double(testFraction), "seed": .string(String(splitSeed))],
         "rescale": rescale.map { .double(Double($0)) } ?? .null, "reshape": reshape.map { .array($0.map { .int($0) }) } ?? .null,
         "standardize": .bool(standardize), "one_hot": oneHot.map { .int($0) } ?? .null, "workers": workers.map { .int($0) } ?? .null]
    }
}

/// Where the model comes from.
public enum ModelSpec: Sendable {
    /// A Keras model config (a Sequential built from the file's layer list, or a config file).
    case config(JSONValue, source: String)
    /// A .keras file to fine-tune (its weights; compiled anew by the job's compile section).
    case file(String)

    var resolved: JSONValue {
        switch self {
        case let .config(c, source): return ["config": c, "source": .string(source)]
        case let .file(path): return ["file": .string(path)]
        }
    }
}

/// A callback the job file names, with every argument (defaults filled in).
public struct CallbackSpec: Sendable {
    public let className: String
    public let config: Config

    func make() throws(ConfigError) -> Callback {
        try callbacks.make(["class_name": .string(className), "config": .object(config)], owner: "fit", argument: "callbacks")
    }
    var resolved: JSONValue { [className: .object(config)] }
}

/// The fit section.
public struct FitSpec: Sendable {
    public var epochs: Int
    public var batchSize: Int
    public var workers: Int?
    public var shuffle = true
    /// Validate each epoch on the validation split (a source, a held-out fraction, or the
    /// test split with `validation: test`).
    public var validateOnTest = false
    public var callbacks: [CallbackSpec] = []
    /// Also checkpoint every this many steps (0: at the end of each epoch only).
    public var checkpointEverySteps = 0
    /// 0 silent, 1 progress bar, 2 one line per epoch; nil: a bar on a terminal, lines otherwise.
    public var verbose: Int?

    var resolved: JSONValue {
        ["epochs": .int(epochs), "batch_size": .int(batchSize), "workers": workers.map { .int($0) } ?? .null, "shuffle": .bool(shuffle),
         "validation": validateOnTest ? "test" : .null, "callbacks": .array(callbacks.map(\.resolved)),
         "checkpoint_every_steps": .int(checkpointEverySteps), "verbose": verbose.map { .int($0) } ?? .null]
    }
}

extension Job {
    /// Reads and checks a job file (YAML or JSON): every key known, every value of its type
    /// and range, every file named present. Nothing is loaded or built yet.
    public static func read(_ path: String) throws -> Job {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw JobFileError(file: path, line: nil, keyPath: "", FileManager.default.fileExists(atPath: path)
                               ? "cannot be read as UTF-8 text" : "no such file")
        }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        return try parse(text, file: path, folder: folder)
    }

    /// Parses job text; relative paths are taken from `folder`.
    static func parse(_ text: String, file: String, folder: URL) throws -> Job {
        let root = try JobFileParser.parse(text, file: file).object()
        func resolve(_ field: JobField, isDirectory: Bool = false) throws -> String {
            let given = try field.string()
            let full = given.hasPrefix("/") ? given : folder.appendingPathComponent(given).standardizedFileURL.path
            var directory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: full, isDirectory: &directory) else { throw field.error("no such file: \(full)") }
            if isDirectory != directory.boolValue {
                throw field.error(isDirectory ? "\(full) is a file, not a folder" : "\(full) is a folder, not a file")
            }
            return full
        }
        let name = try root.optional("name")?.string() ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        let seed = UInt64(try root.optional("seed")?.int(in: 0...Int.max) ?? 1337)
        let data = try parseData(try root.required("data").object(), seed: seed, resolve: resolve)
        let modelField = try root.required("model"), compileField = try root.required("compile")
        let model = try parseModel(try modelField.object(), name: name, resolve: resolve)
        let compile = try parseCompile(compileField)
        let fit = try parseFit(try root.required("fit").object(), data: data)
        let evaluate = try root.optional("evaluate")?.bool() ?? (data.test != nil || data.testFraction > 0)
        if evaluate && data.test == nil && data.testFraction == 0 {
            throw root.field.error("evaluate is true but the data section has no test split (give data.test or data.split.test)")
        }
        let runDirectory = try root.optional("run_dir")?.string()
        try root.finish()
        var places: [String: String] = [:]
        for (key, field) in [("model", modelField), ("compile", compileField)] { places[key] = file + (field.line.map { ":\($0)" } ?? "") }
        return Job(name: name, seed: seed, data: data, model: model, compile: compile, fit: fit, evaluate: evaluate,
                   runDirectory: runDirectory, places: places)
    }

    private static func parseSource(_ field: JobField, resolve: (JobField, Bool) throws -> String) throws -> SourceSpec {
        let o = try field.object()
        guard o.keys.count == 1, let kind = o.keys.first else {
            throw field.error("expected one of idx, npy, csv, image_folder, timeseries, got \(o.keys.isEmpty ? "nothing" : o.keys.joined(separator: ", "))")
        }
        let spec = try o.required(kind)
        let s = try spec.object()
        let source: SourceSpec
        switch kind {
        case "idx":
            source = .idx(images: try resolve(try s.required("images"), false), labels: try resolve(try s.required("labels"), false))
        case "npy":
            source = .npy(x: try s.required("x").oneOrMany().map { try resolve($0, false) },
                          y: try s.optional("y")?.oneOrMany().map { try resolve($0, false) } ?? [])
        case "csv":
            var options = CSVOptions()
            let paths = try s.required("path").oneOrMany().map { try resolve($0, false) }
            func column(_ f: JobField) throws -> CSVColumn {
                if case let .scalar(sc) = f.node, sc.style == .plain, let i = f.node.int { return .index(i) }
                return .name(try f.string())
            }
            options.labels = try s.optional("labels")?.oneOrMany().map(column) ?? []
            options.features = try s.optional("features")?.list().map(column)
            if let c = s.optional("categorical") {
                let co = try c.object()
                for key in co.keys {
                    let v = co.optional(key)
                    options.categorical[.name(key)] = try v.map { try $0.list().map { try $0.string() } }
                }
                try co.finish()
            }
            if let m = s.optional("missing") {
                if case let .scalar(sc) = m.node, sc.style == .plain, let v = m.node.int.map(Double.init) ?? m.node.float {
                    options.missing = .fill(Float(v))
                } else {
                    switch try m.string() {
                    case "error": options.missing = .error
                    case "skip": options.missing = .skipRow
                    default: throw m.error("expected error, skip or a number to fill with, got \(m.shown)")
                    }
                }
            }
            options.header = try s.optional("header")?.bool() ?? true
            if let d = s.optional("delimiter") {
                let text = try d.string()
                guard text.count == 1, let a = text.first?.asciiValue else { throw d.error("expected one ASCII character, got \(d.shown)") }
                options.delimiter = a
            }
            if let e = s.optional("on_error") {
                guard let policy = ErrorPolicy(rawValue: try e.string()) else {
                    throw e.error("expected fail or skip, got \(e.shown)")
                }
                options.onError = policy
            }
            source = .csv(paths: paths, options: options)
        case "image_folder":
            var options = ImageFolderOptions()
            let directory = try resolve(try s.required("directory"), true)
            let size = try s.required("image_size")
            let dims = try size.list().map { try $0.int(in: 1...65_536) }
            guard dims.count == 2 else { throw size.error("expected [height, width], got \(dims.count) numbers") }
            options.imageSize = (dims[0], dims[1])
            func choice<T: RawRepresentable>(_ key: String, _ make: (String) -> T?, _ all: [String]) throws -> T? where T.RawValue == String {
                guard let f = s.optional(key) else { return nil }
                guard let v = make(try f.string()) else { throw f.error("expected one of \(all.joined(separator: ", ")), got \(f.shown)") }
                return v
            }
            options.colorMode = try choice("color_mode", ColorMode.init(rawValue:), ["grayscale", "rgb", "rgba"]) ?? .rgb
            options.labelMode = try choice("label_mode", LabelMode.init(rawValue:), ["int", "categorical", "binary"]) ?? .int
            options.interpolation = try choice("interpolation", Interpolation.init(rawValue:), Interpolation.allCases.map(\.rawValue))
                ?? .bilinear
            options.cropToAspectRatio = try s.optional("crop_to_aspect_ratio")?.bool() ?? false
            options.classNames = try s.optional("class_names")?.list().map { try $0.string() }
            // The job reads the files in order; fit shuffles the samples each epoch.
            options.shuffle = false
            source = .imageFolder(directory: directory, options: options)
        case "timeseries":
            let target = try s.required("target").string()
            var t = TimeseriesSpec(path: try resolve(try s.required("path"), false),
                                   columns: try s.optional("columns")?.list().map { try $0.string() } ?? [target], target: target,
                                   sequenceLength: try s.required("sequence_length").int(in: 1...1_000_000))
            guard t.columns.contains(target) || s.optional("columns") == nil else {
                throw spec.error("the target column '\(target)' must be one of the input columns (the naive forecast repeats its last value)")
            }
            t.horizon = try s.optional("horizon")?.int(in: 1...1_000_000) ?? 1
            t.sequenceStride = try s.optional("sequence_stride")?.int(in: 1...1_000_000) ?? 1
            t.samplingRate = try s.optional("sampling_rate")?.int(in: 1...1_000_000) ?? 1
            if let m = s.optional("missing") {
                guard let policy = TimeseriesSpec.Missing(rawValue: try m.string()) else {
                    throw m.error("expected error or interpolate, got \(m.shown)")
                }
                t.missing = policy
            }
            if let f = s.optional("scale") { t.scale = Float(try f.double()) }
            source = .timeseries(t)
        default:
            throw JobFileError(file: field.file, line: spec.line, keyPath: spec.path, "unknown source (known: idx, npy, csv, image_folder, timeseries)")
        }
        try s.finish()
        return source
    }

    private static func parseData(_ o: JobObject, seed: UInt64, resolve: @escaping (JobField, Bool) throws -> String) throws -> DataSpec {
        let train = try parseSource(try o.required("train"), resolve: resolve)
        var spec = DataSpec(train: train, splitSeed: seed)
        spec.validation = try o.optional("validation").map { try parseSource($0, resolve: resolve) }
        spec.test = try o.optional("test").map { try parseSource($0, resolve: resolve) }
        if let split = o.optional("split") {
            let so = try split.object()
            func fraction(_ key: String) throws -> Double {
                guard let f = so.optional(key) else { return 0 }
                let v = try f.double()
                guard v >= 0 && v < 1 else { throw f.error("must be in [0, 1), got \(v)") }
                return v
            }
            spec.validationFraction = try fraction("validation")
            spec.testFraction = try fraction("test")
            if let s = so.optional("seed") { spec.splitSeed = UInt64(try s.int(in: 0...Int.max)) }
            try so.finish()
            guard spec.validationFraction + spec.testFraction < 1 else {
                throw split.error("validation and test together must leave samples for training")
            }
            if spec.validationFraction > 0 && spec.validation != nil {
                throw split.error("validation has its own source (data.validation); do not also split it off")
            }
            if spec.testFraction > 0 && spec.test != nil {
                throw split.error("test has its own source (data.test); do not also split it off")
            }
        }
        if let r = o.optional("rescale") { spec.rescale = Float(try r.double()) }
        if let r = o.optional("reshape") { spec.reshape = try r.list().map { try $0.int(in: 1...Int(Int32.max)) } }
        spec.standardize = try o.optional("standardize")?.bool() ?? false
        if let h = o.optional("one_hot") { spec.oneHot = try h.int(in: 2...1_000_000) }
        if let w = o.optional("workers") { spec.workers = try w.int(in: 1...1024) }
        try o.finish()
        return spec
    }

    private static func parseModel(_ o: JobObject, name: String, resolve: (JobField, Bool) throws -> String) throws -> ModelSpec {
        let given = ["layers", "config", "file"].filter { o.keys.contains($0) }
        guard given.count == 1 else {
            throw o.field.error("give exactly one of layers (a list of Keras layers), config (a Keras model config .json) or file (a .keras model)")
        }
        let spec: ModelSpec
        switch given[0] {
        case "layers":
            // Each entry made into its layer now, so a wrong argument is named with its line.
            let layers = try o.required("layers").list().map { entry in
                let config = try layerConfig(entry)
                do {
                    _ = try Layer.deserialize(config)
                } catch {
                    throw entry.error("\(error)")
                }
                return config
            }
            guard !layers.isEmpty else { throw o.field.error("layers is empty") }
            spec = .config(["class_name": "Sequential", "config": ["name": .string(name), "layers": .array(layers)]], source: "layers")
        case "config":
            let f = try o.required("config")
            let path = try resolve(f, false)
            do {
                spec = .config(try JSONValue.parse(try String(contentsOfFile: path, encoding: .utf8)), source: path)
            } catch {
                throw f.error("\(path) is not a JSON model config")
            }
        default:
            let f = try o.required("file")
            let path = try resolve(f, false)
            guard path.hasSuffix(".keras") else { throw f.error("expected a .keras file, got \(path)") }
            spec = .file(path)
        }
        try o.finish()
        return spec
    }

    /// One entry of a layer list: `{Dense: {units: 10}}` or `{class_name: Dense, config: {...}}`;
    /// `{Input: {shape: [784]}}` is Keras's InputLayer.
    private static func layerConfig(_ field: JobField) throws -> JSONValue {
        guard case let .object(o) = try field.json() else { throw field.error("expected a layer such as {Dense: {units: 10}}") }
        let className: String, config: JSONValue
        if o.count == 1, let (k, v) = o.first {
            (className, config) = (k, v == .null ? .object([:]) : v)
        } else if case let .string(c)? = o["class_name"], o.keys.allSatisfy({ ["class_name", "config"].contains($0) }) {
            (className, config) = (c, o["config"] ?? .object([:]))
        } else {
            throw field.error("expected a layer such as {Dense: {units: 10}} or {class_name: Dense, config: {units: 10}}")
        }
        guard case var .object(c) = config else { throw field.error("the arguments of \(className) must be a mapping") }
        if className == "Input" || className == "InputLayer" {
            if case let .array(shape)? = c.removeValue(forKey: "shape") { c["batch_shape"] = .array([.null] + shape) }
            return ["class_name": "InputLayer", "config": .object(c)]
        }
        return ["class_name": .string(className), "config": .object(c)]
    }

    private static func parseCompile(_ field: JobField) throws -> JSONValue {
        let o = try field.object()
        var config: [String: JSONValue] = [:]
        let optimizer = try o.required("optimizer")
        // {RMSprop: {learning_rate: 0.001}} is the short form of {class_name: RMSprop, config: {...}}.
        var opt = try optimizer.json()
        if case let .object(oo) = opt, oo.count == 1, let (k, v) = oo.first, k != "class_name" {
            opt = ["class_name": .string(k), "config": v == .null ? .object([:]) : v]
        }
        config["optimizer"] = opt
        config["loss"] = try o.required("loss").json()
        for key in ["metrics", "weighted_metrics", "loss_weights"] {
            if let f = o.optional(key) { config[key] = try f.json() }
        }
        try o.finish()
        return .object(config)
    }

    private static func parseFit(_ o: JobObject, data: DataSpec) throws -> FitSpec {
        var fit = FitSpec(epochs: try o.required("epochs").int(in: 1...1_000_000),
                          batchSize: try o.optional("batch_size")?.int(in: 1...Int(Int32.max)) ?? 32)
        if let w = o.optional("workers") { fit.workers = try w.int(in: 1...1024) }
        fit.shuffle = try o.optional("shuffle")?.bool() ?? true
        if let v = o.optional("validation") {
            guard try v.string() == "test" else { throw v.error("expected 'test' (validate on the test split each epoch), got \(v.shown)") }
            guard data.test != nil || data.testFraction > 0 else { throw v.error("the data section has no test split") }
            guard data.validation == nil && data.validationFraction == 0 else {
                throw v.error("the data section already has a validation split")
            }
            fit.validateOnTest = true
        }
        if let c = o.optional("checkpoint_every_steps") { fit.checkpointEverySteps = try c.int(in: 0...Int.max) }
        if let v = o.optional("verbose") { fit.verbose = try v.int(in: 0...2) }
        if let list = o.optional("callbacks") {
            fit.callbacks = try list.list().map(parseCallback)
        }
        try o.finish()
        return fit
    }

    /// A callback's error at the line of the argument it names (else of the callback).
    private static func callbackError(_ error: ConfigError, field: JobField, arguments: JobObject?) -> JobFileError {
        if let argument = error.argument, let place = arguments?.optional(argument) { return place.error(error.message) }
        return field.error(error.message)
    }

    /// `{EarlyStopping: {patience: 3}}`: a callback of the registry, made once here so that a
    /// wrong argument is reported with its line before anything runs.
    private static func parseCallback(_ field: JobField) throws -> CallbackSpec {
        let o = try field.object()
        guard o.keys.count == 1, let kind = o.keys.first else {
            throw field.error("expected one callback such as {EarlyStopping: {patience: 3}}")
        }
        let argsField = o.optional(kind)
        let args = try argsField?.object()
        if kind == "EarlyStopping", let r = args?.optional("restore_best_weights"), try r.bool() {
            throw r.error("not supported in job files: a resumed run could not restore weights it no longer holds; the run folder keeps each epoch's checkpoint")
        }
        guard callbacks.names.contains(kind) else {
            throw JobFileError(file: field.file, line: field.line, keyPath: field.path + "." + kind,
                               "unknown callback (known: \(callbacks.names.joined(separator: ", ")); the run folder has its own CSV log and checkpoints)")
        }
        var config: Config = [:]
        if let argsField, case let .object(given) = try argsField.json() { config = given }
        let made: Callback
        do throws(ConfigError) {
            made = try CallbackSpec(className: kind, config: config).make()
        } catch {
            throw callbackError(error, field: field, arguments: args)
        }
        guard let known = made as? any KerasCallback else { throw field.error("\(kind) cannot be named in a job file") }
        // Keras's from_config refuses arguments the class does not take; so does a job file.
        for key in known.config.keys { _ = args?.optional(key) }
        try args?.finish()
        try o.finish()
        return CallbackSpec(className: kind, config: known.config)
    }
}
