import Foundation
import LoomTensor

/// A CSV column, by header name or by 0-based index.
public enum CSVColumn: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, CustomStringConvertible {
    case name(String)
    case index(Int)

    public init(stringLiteral value: String) { self = .name(value) }
    public init(integerLiteral value: Int) { self = .index(value) }

    public var description: String {
        switch self {
        case let .name(n): return "'\(n)'"
        case let .index(i): return "#\(i)"
        }
    }
}

/// What to do with an empty or NA field in a numeric column.
public enum MissingValues: Sendable, Equatable {
    /// Stop with an error naming the file, line and column.
    case error
    /// Use this value.
    case fill(Float)
    /// Leave the row out (counted in the table's skipped rows).
    case skipRow
}

/// How to read CSV files: the header, the delimiter, which columns are features and which are
/// labels, which hold categories (strings turned into indices through a vocabulary), and what
/// to do with missing values and malformed rows.
public struct CSVOptions: Sendable {
    /// Whether the first line names the columns (otherwise they are named "0", "1", ...).
    public var header = true
    /// The field separator (one ASCII character).
    public var delimiter: UInt8 = UInt8(ascii: ",")
    /// The feature columns in order; nil: every column that is not a label.
    public var features: [CSVColumn]? = nil
    /// The label columns, in order.
    public var labels: [CSVColumn] = []
    /// Columns of strings, each with its vocabulary (index = position), or nil to learn one
    /// from the data (the sorted distinct values).
    public var categorical: [CSVColumn: [String]?] = [:]
    /// Empty and NA fields ("", "NA", "NaN", "null", ... as pandas reads them) in numeric columns.
    public var missing: MissingValues = .error
    /// Malformed rows (a missing or extra field, a bad number, an unterminated quote).
    public var onError: ErrorPolicy = .fail
    /// Threads that parse parts of each file.
    public var workers = 1

    public init(header: Bool = true, delimiter: Character = ",", features: [CSVColumn]? = nil, labels: [CSVColumn] = [],
                categorical: [CSVColumn: [String]?] = [:], missing: MissingValues = .error, onError: ErrorPolicy = .fail,
                workers: Int = 1) {
        self.header = header
        self.delimiter = delimiter.asciiValue ?? UInt8(ascii: ",")
        self.features = features
        self.labels = labels
        self.categorical = categorical
        self.missing = missing
        self.onError = onError
        self.workers = workers
    }
}

/// CSV rows read into float32 matrices: one row per record, the features and the labels.
public struct CSVTable: Sendable {
    public var featureNames: [String]
    public var labelNames: [String]
    /// [rows, features].
    public var features: Tensor
    /// [rows, labels], nil without label columns.
    public var labels: Tensor?
    /// The vocabulary of each categorical column, by name.
    public var vocabularies: [String: [String]]
    /// The rows left out (ErrorPolicy.skip, MissingValues.skipRow), one message each.
    public var skipped: [String]
    /// Where each row came from.
    public var origins = CSVRowOrigins()

    public var rowCount: Int { features.shape[0] }
}

/// The file and line of each row of a table, for messages about a value found wrong after
/// parsing (a label out of range).
public struct CSVRowOrigins: Sendable {
    var files: [String] = [], rowFile: [Int32] = [], rowLine: [Int32] = []

    /// "file:line" of row `row`.
    public func callAsFunction(_ row: Int) -> String {
        guard row >= 0, row < rowLine.count else { return "row \(row)" }
        return "\(files[Int(rowFile[row])]):\(rowLine[row])"
    }
}

/// RFC 4180 CSV files (quoted fields with doubled quotes and line breaks inside them; CRLF or LF
/// line ends; gzip-compressed files read transparently) parsed into float32, in parallel.
public enum CSV {
    /// Reads `paths` (which must share their header) into one table, rows in file order.
    public static func read(_ paths: [String], options: CSVOptions = CSVOptions()) throws -> CSVTable {
        guard !paths.isEmpty else { throw DataFileError(path: "CSV", message: "no files given") }
        var plan: ColumnPlan? = nil
        var parts: [ChunkResult] = []
        var skipped: [String] = []
        var rowFile: [Int32] = [], rowLine: [Int32] = []
        // The parts' buffers go to the table; on an error they are given back here.
        var assembled = false
        defer { if !assembled { parts.forEach { $0.freeBuffers() } } }
        for (fileIndex, path) in paths.enumerated() {
            try withTextFileBytes(path) { buffer in
                var start = 0, headerLines = 0
                var names: [String]
                if options.header {
                    guard let (fields, next, lines) = try headerRecord(buffer, options.delimiter, path: path) else {
                        throw DataFileError(path: path, message: "empty file: no header line")
                    }
                    names = fields
                    start = next
                    headerLines = lines
                } else {
                    guard let (fields, _, _) = try headerRecord(buffer, options.delimiter, path: path) else {
                        throw DataFileError(path: path, message: "empty file")
                    }
                    names = fields.indices.map(String.init)
                }
                if let plan {
                    guard plan.names == names else {
                        throw DataFileError(path: path, message: "its columns \(names) differ from the first file's \(plan.names)")
                    }
                } else {
                    plan = try ColumnPlan(names: names, options: options, path: path)
                }
                let thePlan = plan!
                // Parts are first cut at line ends without reading for quotes (a pass over the
                // whole file, on one thread); if a part meets a quoted field, whose line breaks
                // may have been cut, the file is parsed again from cuts that respect quotes.
                var results = parseParts(buffer, splitPoints(buffer, from: start, parts: max(1, options.workers),
                                                             delimiter: options.delimiter, quotes: false), thePlan, options)
                if results.count > 1 && results.contains(where: \.sawQuote) {
                    results.forEach { $0.freeBuffers() }
                    results = parseParts(buffer, splitPoints(buffer, from: start, parts: max(1, options.workers),
                                                             delimiter: options.delimiter, quotes: true), thePlan, options)
                }
                // Line numbers: 1-based, counting the header, the chunks before, and each chunk's own.
                var line = 1 + headerLines
                let first = parts.count
                parts += results
                for k in first..<parts.count {
                    for (local, message, fatal) in parts[k].errors {
                        if fatal && options.onError == .fail {
                            throw DataFileError(path: "\(path):\(line + local)", message: message)
                        }
                        skipped.append("\(path):\(line + local): \(message)")
                    }
                    parts[k].errors = []
                    rowFile += repeatElement(Int32(fileIndex), count: parts[k].rowLines.count)
                    rowLine += parts[k].rowLines.map { Int32(clamping: line + Int($0)) }
                    parts[k].rowLines = []
                    line += parts[k].lines
                }
            }
        }
        assembled = true
        var table = try assemble(parts, plan: plan!, skipped: skipped)
        table.origins = CSVRowOrigins(files: paths, rowFile: rowFile, rowLine: rowLine)
        return table
    }

    /// Each part parsed on its own thread (the only one here), in order.
    static func parseParts(_ buffer: UnsafeBufferPointer<UInt8>, _ chunks: [Range<Int>], _ plan: ColumnPlan,
                           _ options: CSVOptions) -> [ChunkResult] {
        // One part: parsed here, without waking a pool that would only wait.
        if chunks.count == 1 { return [parseChunk(buffer, chunks[0], plan, options)] }
        var results = [ChunkResult?](repeating: nil, count: chunks.count)
        nonisolated(unsafe) let base = buffer.baseAddress!
        let count = buffer.count
        results.withUnsafeMutableBufferPointer { out in
            nonisolated(unsafe) let slots = out
            DispatchQueue.concurrentPerform(iterations: chunks.count) { k in
                slots[k] = parseChunk(UnsafeBufferPointer(start: base, count: count), chunks[k], plan, options)
            }
        }
        return results.map { $0! }
    }

    /// The first record's fields as strings (the header), where the next record starts, and
    /// how many lines it spans; nil for an empty file.
    static func headerRecord(_ b: UnsafeBufferPointer<UInt8>, _ delimiter: UInt8, path: String) throws -> ([String], Int, Int)? {
        var i = 0
        guard !b.isEmpty else { return nil }
        var fields: [String] = []
        var lines = 0
        while true {
            var bytes: [UInt8] = []
            if i < b.count && b[i] == quote {
                i += 1
                while true {
                    guard i < b.count else { throw DataFileError(path: "\(path):1", message: "unterminated quoted field") }
                    if b[i] == quote {
                        if i + 1 < b.count && b[i + 1] == quote { bytes.append(quote); i += 2; continue }
                        i += 1
                        break
                    }
                    if b[i] == newline { lines += 1 }
                    bytes.append(b[i])
                    i += 1
                }
            }
            while i < b.count && b[i] != delimiter && b[i] != newline && b[i] != carriageReturn { bytes.append(b[i]); i += 1 }
            fields.append(String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespaces))
            if i < b.count && b[i] == delimiter { i += 1; continue }
            if i < b.count && b[i] == carriageReturn { i += 1 }
            if i < b.count && b[i] == newline { i += 1 }
            return (fields, i, lines + 1)
        }
    }

    /// Where `workers` parts of the records after `start` begin: at line ends outside quotes.
    /// Without `quotes`, the cuts are at the next line end, inside a quoted field or not.
    static func splitPoints(_ b: UnsafeBufferPointer<UInt8>, from start: Int, parts: Int, delimiter: UInt8,
                            quotes: Bool = true) -> [Range<Int>] {
        let n = b.count
        guard parts > 1, n - start > 1 << 16 else { return [start..<n] }
        let hasQuotes = quotes && memchr(b.baseAddress! + start, Int32(quote), n - start) != nil
        var cuts = [start]
        var inQuotes = false, scanned = start
        for k in 1..<parts {
            var p = start + (n - start) * k / parts
            if hasQuotes {
                // Quote parity from the last cut to here decides whether p is inside a field.
                while scanned < p { if b[scanned] == quote { inQuotes.toggle() }; scanned += 1 }
                while p < n && (b[p] != newline || inQuotes) {
                    if b[p] == quote { inQuotes.toggle() }
                    p += 1
                }
                scanned = p
            } else {
                while p < n && b[p] != newline { p += 1 }
            }
            p = min(n, p + 1)
            if p > cuts.last! { cuts.append(p) }
        }
        cuts.append(n)
        return (0..<(cuts.count - 1)).compactMap { cuts[$0] < cuts[$0 + 1] ? cuts[$0]..<cuts[$0 + 1] : nil }
    }
}

let quote = UInt8(ascii: "\""), newline = UInt8(ascii: "\n"), carriageReturn = UInt8(ascii: "\r")

/// What each column of the file becomes.
struct ColumnPlan: Sendable {
    enum Kind: UInt8, Sendable { case ignore, feature, label, featureCategory, labelCategory }
    let names: [String]
    let kinds: [Kind]
    /// The position in the feature or label row.
    let slots: [Int]
    /// For categorical columns: their position among the categorical columns.
    let categoryIndex: [Int]
    let featureNames: [String], labelNames: [String]
    let categoryColumns: [Int]
    let vocabularies: [[String]?]

    init(names: [String], options: CSVOptions, path: String) throws {
        func resolve(_ c: CSVColumn) throws -> Int {
            switch c {
            case let .name(n):
                guard let i = names.firstIndex(of: n) else {
                    throw DataFileError(path: path, message: "no column named '\(n)' (columns: \(names.joined(separator: ", ")))")
                }
                return i
            case let .index(i):
                guard i >= 0 && i < names.count else {
                    throw DataFileError(path: path, message: "no column #\(i): the file has \(names.count) columns")
                }
                return i
            }
        }
        let labelColumns = try options.labels.map(resolve)
        let featureColumns = try options.features.map { try $0.map(resolve) } ?? names.indices.filter { !labelColumns.contains($0) }
        if let both = featureColumns.first(where: labelColumns.contains) {
            throw DataFileError(path: path, message: "column '\(names[both])' is both a feature and a label")
        }
        var categorical: [Int: [String]?] = [:]
        for (c, vocabulary) in options.categorical { categorical[try resolve(c)] = vocabulary }
        var kinds = [Kind](repeating: .ignore, count: names.count)
        var slots = [Int](repeating: 0, count: names.count)
        var categoryIndex = [Int](repeating: -1, count: names.count)
        var categoryColumns: [Int] = []
        var vocabularies: [[String]?] = []
        for (slot, c) in featureColumns.enumerated() {
            kinds[c] = categorical[c] != nil ? .featureCategory : .feature
            slots[c] = slot
        }
        for (slot, c) in labelColumns.enumerated() {
            kinds[c] = categorical[c] != nil ? .labelCategory : .label
            slots[c] = slot
        }
        for c in names.indices where kinds[c] == .featureCategory || kinds[c] == .labelCategory {
            categoryIndex[c] = categoryColumns.count
            categoryColumns.append(c)
            vocabularies.append(categorical[c]!)
        }
        self.names = names
        self.kinds = kinds
        self.slots = slots
        self.categoryIndex = categoryIndex
        featureNames = featureColumns.map { names[$0] }
        labelNames = labelColumns.map { names[$0] }
        self.categoryColumns = categoryColumns
        self.vocabularies = vocabularies
    }
}

/// One part of a file, parsed.
struct ChunkResult: Sendable {
    var features = FloatRows()
    var labels = FloatRows()
    /// Whether a field began with a quote: a part split without looking at quotes is then
    /// parsed again from cuts that respect them.
    var sawQuote = false

    /// Gives back the values' buffers (a part not joined into a table).
    func freeBuffers() {
        free(features.base)
        free(labels.base)
    }
    /// The strings of the categorical columns, row by row.
    var categories: [String] = []
    /// Each row's line, counted from the part's start as the errors' are.
    var rowLines: [Int32] = []
    var rows = 0
    /// Line breaks in the part.
    var lines = 0
    /// (line within the part, message, whether the row was malformed) of rows that failed or
    /// were left out; rows left out for a missing value under `.skipRow` are never fatal.
    var errors: [(Int, String, Bool)] = []
}

/// Parsed float32 values, appended row by row into one malloc'd buffer that a tensor then
/// adopts without a copy (or that is copied, with the other parts', into the table's place).
/// Owned by one part's parse at a time; `joined` frees it or hands it to the tensor.
struct FloatRows: @unchecked Sendable {
    private(set) var base: UnsafeMutablePointer<Float>? = nil
    private(set) var count = 0
    private var capacity = 0

    /// Makes room for `n` values in all.
    mutating func reserve(_ n: Int) {
        guard n > capacity else { return }
        // realloc of a large block remaps its pages rather than copying them.
        guard let grown = realloc(base, max(n, 1) * MemoryLayout<Float>.stride) else { fatalError("CSV: out of memory for \(n) values") }
        base = grown.assumingMemoryBound(to: Float.self)
        capacity = n
    }

    @inline(__always)
    mutating func append(_ row: UnsafePointer<Float>, count n: Int) {
        guard n > 0 else { return }
        if count + n > capacity { reserve(max(capacity * 2, count + n, 1024)) }
        (base! + count).update(from: row, count: n)
        count += n
    }

    /// The parts' values one after another as a tensor of `shape`: the only part's buffer
    /// adopted as it is, or the parts copied into one buffer in parallel.
    static func joined(_ parts: [FloatRows], shape: [Int]) -> Tensor {
        let total = parts.reduce(0) { $0 + $1.count }
        if parts.count == 1, let base = parts[0].base, total > 0 {
            nonisolated(unsafe) let owned = base
            return Tensor(storage: TensorStorage(external: base, count: total) { free(owned) }, shape: shape)
        }
        var out = Tensor(uninitializedShape: shape)
        let offsets = parts.reduce(into: [0]) { $0.append($0.last! + $1.count) }
        out.withUnsafeMutableBufferPointer { target in
            nonisolated(unsafe) let destination = target.baseAddress
            DispatchQueue.concurrentPerform(iterations: parts.count) { k in
                if let source = parts[k].base, parts[k].count > 0 { (destination! + offsets[k]).update(from: source, count: parts[k].count) }
            }
        }
        for part in parts { free(part.base) }
        return out
    }
}

/// pandas's default NA strings: read as missing values in numeric columns.
let missingMarkers: Set<String> = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
                                   "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]

/// Parses the records in `range` of `b`.
func parseChunk(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ plan: ColumnPlan, _ options: CSVOptions) -> ChunkResult {
    var out = ChunkResult()
    let columns = plan.kinds.count
    let nf = plan.featureNames.count, nl = plan.labelNames.count, nc = plan.categoryColumns.count
    let delimiter = options.delimiter
    let estimate = range.count / max(1, columns * 4)
    out.features.reserve(estimate * nf)
    out.labels.reserve(estimate * nl)
    var rowCategories = [String](repeating: "", count: nc)
    // An unquoted copy of a quoted field, in a buffer of our own: a pointer into an array is
    // valid only inside its withUnsafeBufferPointer closure.
    var scratchCapacity = 256
    var scratch = UnsafeMutablePointer<UInt8>.allocate(capacity: scratchCapacity)
    defer { scratch.deallocate() }
    // The row being read; appended to the output once the whole record is good.
    let featureRow = UnsafeMutablePointer<Float>.allocate(capacity: max(1, nf))
    let labelRow = UnsafeMutablePointer<Float>.allocate(capacity: max(1, nl))
    defer {
        featureRow.deallocate()
        labelRow.deallocate()
    }
    let kinds = plan.kinds, slots = plan.slots
    // Where each column's number goes when every column is a number (the common file): the
    // row is read in one tight loop, and anything unusual falls back to the general reader.
    let allNumbers = kinds.allSatisfy { $0 == .feature || $0 == .label }
    let destinations = UnsafeMutablePointer<UnsafeMutablePointer<Float>>.allocate(capacity: max(1, columns))
    defer { destinations.deallocate() }
    for c in 0..<columns { destinations[c] = kinds[c] == .label ? labelRow + slots[c] : featureRow + slots[c] }
    let p = b.baseAddress!
    var i = range.lowerBound
    let end = range.upperBound
    var line = 0
    while i < end {
        // Blank lines are skipped, as pandas does.
        if p[i] == newline { i += 1; line += 1; continue }
        if p[i] == carriageReturn && i + 1 < end && p[i + 1] == newline { i += 2; line += 1; continue }
        if allNumbers {
            var j = i, column = 0
            while let (value, after) = scanNumber(p, j, end) {
                destinations[column].pointee = value
                column += 1
                j = after
                guard j < end, p[j] == delimiter, column < columns else { break }
                j += 1
            }
            if column == columns {
                var lineEnd = j == end || p[j] == newline
                if !lineEnd && p[j] == carriageReturn && (j + 1 == end || p[j + 1] == newline) { j += 1; lineEnd = true }
                if lineEnd {
                    i = min(end, j + 1)
                    out.rowLines.append(Int32(clamping: line))
                    line += 1
                    out.features.append(featureRow, count: nf)
                    out.labels.append(labelRow, count: nl)
                    out.rows += 1
                    continue
                }
            }
        }
        let recordLine = line
        var field = 0
        var failure: String? = nil
        var missingSkip = false
        record: while true {
            // The common case, a plain number: read while scanning, in one pass.
            if field < columns, failure == nil, case let kind = kinds[field], kind == .feature || kind == .label,
               let (value, after) = scanNumber(p, i, end),
               after == end || p[after] == delimiter || p[after] == newline || p[after] == carriageReturn {
                if kind == .feature { featureRow[slots[field]] = value } else { labelRow[slots[field]] = value }
                i = after
            } else {
                readField()
            }
            field += 1
            if i < end && p[i] == delimiter { i += 1; continue record }
            if i < end && p[i] == carriageReturn { i += 1 }
            if i < end && p[i] == newline { i += 1 }
            line += 1
            break
        }
        /// Reads the field at i (quoted or not) and stores it by its column's kind.
        func readField() {
            var start = i, stop: Int
            var escaped = false
            if i < end && p[i] == quote {
                out.sawQuote = true
                i += 1
                start = i
                while true {
                    guard i < end else {
                        failure = failure ?? "unterminated quoted field"
                        stop = i
                        break
                    }
                    let c = p[i]
                    if c == quote {
                        if i + 1 < end && p[i + 1] == quote { escaped = true; i += 2; continue }
                        break
                    }
                    if c == newline { line += 1 }
                    i += 1
                }
                stop = min(i, end)
                if i < end { i += 1 }
                if i < end && p[i] != delimiter && p[i] != newline && p[i] != carriageReturn {
                    failure = failure ?? "unexpected character after a closing quote in field \(field + 1)"
                    while i < end && p[i] != delimiter && p[i] != newline { i += 1 }
                }
            } else {
                while i < end {
                    let c = p[i]
                    if c == delimiter || c == newline || c == carriageReturn { break }
                    i += 1
                }
                stop = i
            }
            if field < columns && failure == nil {
                let kind = plan.kinds[field]
                if kind != .ignore {
                    var fieldStart = p + start
                    var fieldCount = stop - start
                    if escaped {
                        if stop - start > scratchCapacity {
                            scratch.deallocate()
                            scratchCapacity = stop - start
                            scratch = UnsafeMutablePointer<UInt8>.allocate(capacity: scratchCapacity)
                        }
                        var k = start, n = 0
                        while k < stop {
                            scratch[n] = p[k]
                            n += 1
                            k += p[k] == quote ? 2 : 1
                        }
                        fieldCount = n
                        fieldStart = UnsafePointer(scratch)
                    }
                    switch kind {
                    case .feature, .label:
                        let row = kind == .feature ? featureRow : labelRow
                        let parsed = parseNumber(fieldStart, fieldCount)
                        // The field as written (its first 40 bytes), for messages.
                        func written() -> String {
                            String(decoding: UnsafeBufferPointer(start: fieldStart, count: min(fieldCount, 40)), as: UTF8.self)
                        }
                        switch parsed {
                        case let .value(v) where v.isFinite:
                            row[slots[field]] = v
                        case .value, .missing:
                            // A number too large for float32 or written as inf is no value a model
                            // can learn from: it takes the missing-value policy, here, with its line.
                            switch options.missing {
                            case .error:
                                let what = if case .missing = parsed { "missing value" } else {
                                    "non-finite value '\(written().trimmingCharacters(in: .whitespaces))'"
                                }
                                failure = "column '\(plan.names[field])': \(what)"
                            case let .fill(v):
                                row[slots[field]] = v
                            case .skipRow:
                                missingSkip = true
                            }
                        case .bad:
                            failure = "column '\(plan.names[field])': cannot read '\(written())' as a number"
                        }
                    default:
                        rowCategories[plan.categoryIndex[field]] = String(decoding: UnsafeBufferPointer(start: fieldStart, count: fieldCount), as: UTF8.self)
                    }
                }
            }
        }
        if failure == nil && field != columns {
            failure = field < columns ? "\(field) fields where the header has \(columns): a field is missing"
                : "\(field) fields where the header has \(columns): an extra field"
        }
        if failure != nil || missingSkip {
            if let failure {
                out.errors.append((recordLine, failure, true))
                if options.onError == .fail { break }
            } else {
                out.errors.append((recordLine, "a missing value: row left out", false))
            }
            continue
        }
        out.features.append(featureRow, count: nf)
        out.labels.append(labelRow, count: nl)
        if nc > 0 { out.categories.append(contentsOf: rowCategories) }
        out.rowLines.append(Int32(clamping: recordLine))
        out.rows += 1
    }
    out.lines = line
    return out
}

/// A field read as a number.
enum ParsedNumber { case value(Float), missing, bad }

/// A plain decimal number at `p[i...]` (sign, up to 19 digits with an optional point, an
/// optional exponent), correctly rounded to float32, and where it ends; nil for anything else
/// (spaces, NA markers, long mantissas), which the general path reads.
// @_transparent, not @inline(__always): the optimizer kept the latter as a call in
// parseChunk's loops, and inlining it there reads 11% more rows per second.
@_transparent
func scanNumber(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> (Float, Int)? {
    var i = start
    guard i < end else { return nil }
    // Signs come at random in data: stepping over one without a branch saves mispredictions.
    let first = p[i]
    let negative = first == UInt8(ascii: "-")
    i &+= (negative ? 1 : 0) | (first == UInt8(ascii: "+") ? 1 : 0)
    var mantissa: UInt64 = 0
    var exponent = 0
    // Integer parts are mostly short: one digit at a time; fractions eight at a time.
    let integerStart = i
    while i < end, case let d = p[i] &- 48, d < 10 {
        mantissa = mantissa &* 10 &+ UInt64(d)
        i += 1
    }
    var digits = i - integerStart
    if i < end && p[i] == UInt8(ascii: ".") {
        i += 1
        let fraction = readDigits(p, &i, end, &mantissa)
        exponent = -fraction
        digits += fraction
    }
    guard digits > 0, digits <= 19 else { return nil }
    if i < end && (p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E")) {
        i += 1
        let negativeExponent = i < end && p[i] == UInt8(ascii: "-")
        if i < end && (p[i] == UInt8(ascii: "-") || p[i] == UInt8(ascii: "+")) { i += 1 }
        var value = 0
        let exponentStart = i
        while i < end, case let d = p[i] &- 48, d < 10, i - exponentStart < 5 {
            value = value * 10 + Int(d)
            i += 1
        }
        guard i > exponentStart else { return nil }
        exponent += negativeExponent ? -value : value
    }
    guard let v = roundedFloat(mantissa, exponent) else { return nil }
    return (negative ? -v : v, i)
}

/// Reads the decimal digits at p[i...] into `mantissa` (wrapping past 19 digits, which the
/// caller refuses), eight at a time where eight bytes remain; returns how many it read.
@inline(__always)
func readDigits(_ p: UnsafePointer<UInt8>, _ i: inout Int, _ end: Int, _ mantissa: inout UInt64) -> Int {
    let start = i
    while end - i >= 8 {
        let chunk = UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)
        // A byte's top bit is set when it is above '9' or (borrowing) below '0'; a borrow only
        // reaches later bytes, so the first non-digit is found exactly.
        let outside = ((chunk &+ 0x4646_4646_4646_4646) | (chunk &- 0x3030_3030_3030_3030)) & 0x8080_8080_8080_8080
        let count = outside == 0 ? 8 : outside.trailingZeroBitCount / 8
        if count > 0 {
            // The digits moved to the high bytes are the number with leading zeros; the usual
            // SWAR steps combine pairs, quads and octets (the first byte is the first digit).
            var v = (chunk &- 0x3030_3030_3030_3030) << UInt64((8 - count) * 8)
            v = ((v & 0x0F0F_0F0F_0F0F_0F0F) &* 2561) >> 8
            v = ((v & 0x00FF_00FF_00FF_00FF) &* 6_553_601) >> 16
            v = ((v & 0x0000_FFFF_0000_FFFF) &* 42_949_672_960_001) >> 32
            mantissa = mantissa &* decimalScales[count] &+ v
            i += count
        }
        if count < 8 { return i - start }
    }
    while i < end, case let d = p[i] &- 48, d < 10 {
        mantissa = mantissa &* 10 &+ UInt64(d)
        i += 1
    }
    return i - start
}

private let decimalScales: [UInt64] = [1, 10, 100, 1000, 10000, 100_000, 1_000_000, 10_000_000, 100_000_000]

/// mantissa · 10^exponent correctly rounded to float32, when a fast path can vouch for it.
@inline(__always)
func roundedFloat(_ mantissa: UInt64, _ exponent: Int) -> Float? {
    if mantissa == 0 { return 0 }
    guard mantissa <= 1 << 53, exponent >= -22, exponent <= 22 else { return nil }
    let m = Double(mantissa)
    if exponent >= 0 {
        // m and 10^e are exact doubles: the product is the correctly rounded double, and
        // rounding it to float32 is correct unless it lies exactly halfway between two floats.
        let d = m * exactDoublePowers[exponent]
        if d.bitPattern & 0x1FFF_FFFF != 0x1000_0000 && d >= Double(Float.leastNormalMagnitude) { return Float(d) }
        return nil
    }
    // A multiplication by the rounded reciprocal is within 2 double ulps of the true value:
    // float32 rounding is decided unless those ulps reach a halfway point between floats.
    let d = m * reciprocalPowers[-exponent]
    let low = Int(d.bitPattern & 0x1FFF_FFFF)
    if abs(low - 0x1000_0000) > 4 && d >= Double(Float.leastNormalMagnitude) { return Float(d) }
    if mantissa <= 1 << 24 && exponent >= -10 {
        // Both operands exact in float32: one correctly rounded division.
        return Float(mantissa) / exactFloatPowers[-exponent]
    }
    let exact = m / exactDoublePowers[-exponent]
    if exact.bitPattern & 0x1FFF_FFFF != 0x1000_0000 && exact >= Double(Float.leastNormalMagnitude) { return Float(exact) }
    return nil
}

/// Powers of ten exact in float32 and in float64, and the doubles nearest their reciprocals
/// (literals, so they need no lazy initialization on the hot path).
private let exactFloatPowers: [Float] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10]
private let exactDoublePowers: [Double] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14,
                                           1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22]
private let reciprocalPowers: [Double] = [1e0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11, 1e-12,
                                          1e-13, 1e-14, 1e-15, 1e-16, 1e-17, 1e-18, 1e-19, 1e-20, 1e-21, 1e-22]

/// Parses a decimal number (optional sign, digits, fraction, exponent; spaces around), rounded
/// correctly to float32: exact fast paths for up to 19 significant digits, and the C library
/// for the rest and for the rare case where rounding through float64 could differ.
@inline(__always)
func parseNumber(_ text: UnsafePointer<UInt8>, _ length: Int) -> ParsedNumber {
    var s = 0, e = length
    while s < e && (text[s] == 32 || text[s] == 9) { s += 1 }
    while e > s && (text[e - 1] == 32 || text[e - 1] == 9) { e -= 1 }
    if s == e { return .missing }
    var i = s
    var negative = false
    if text[i] == UInt8(ascii: "-") || text[i] == UInt8(ascii: "+") { negative = text[i] == UInt8(ascii: "-"); i += 1 }
    var mantissa: UInt64 = 0
    var significant = 0, exponent = 0
    var digits = 0
    while i < e, case let d = text[i] &- 48, d < 10 {
        if significant < 19 {
            mantissa = mantissa * 10 + UInt64(d)
            if mantissa != 0 { significant += 1 }
        } else {
            exponent += 1
        }
        digits += 1
        i += 1
    }
    if i < e && text[i] == UInt8(ascii: ".") {
        i += 1
        while i < e, case let d = text[i] &- 48, d < 10 {
            if significant < 19 {
                mantissa = mantissa * 10 + UInt64(d)
                if mantissa != 0 { significant += 1 }
                exponent -= 1
            }
            digits += 1
            i += 1
        }
    }
    guard digits > 0 else { return special(text + s, e - s) }
    if i < e && (text[i] == UInt8(ascii: "e") || text[i] == UInt8(ascii: "E")) {
        i += 1
        var negativeExponent = false
        if i < e && (text[i] == UInt8(ascii: "-") || text[i] == UInt8(ascii: "+")) { negativeExponent = text[i] == UInt8(ascii: "-"); i += 1 }
        var value = 0, exponentDigits = 0
        while i < e, case let d = text[i] &- 48, d < 10 {
            if value < 100_000 { value = value * 10 + Int(d) }
            exponentDigits += 1
            i += 1
        }
        guard exponentDigits > 0 else { return .bad }
        exponent += negativeExponent ? -value : value
    }
    guard i == e else { return .bad }
    if significant < 19, let v = roundedFloat(mantissa, exponent) { return .value(negative ? -v : v) }
    return libraryNumber(text + s, e - s)
}

/// NA markers, inf and nan, or not a number.
private func special(_ text: UnsafePointer<UInt8>, _ length: Int) -> ParsedNumber {
    let string = String(decoding: UnsafeBufferPointer(start: text, count: length), as: UTF8.self)
    if missingMarkers.contains(string) { return .missing }
    switch string.lowercased() {
    case "inf", "+inf", "infinity", "+infinity": return .value(.infinity)
    case "-inf", "-infinity": return .value(-.infinity)
    default: return .bad
    }
}

/// strtof on a NUL-terminated copy.
private func libraryNumber(_ text: UnsafePointer<UInt8>, _ length: Int) -> ParsedNumber {
    var copy = [CChar](repeating: 0, count: length + 1)
    for k in 0..<length { copy[k] = CChar(bitPattern: text[k]) }
    return copy.withUnsafeBufferPointer { buffer in
        var endPointer: UnsafeMutablePointer<CChar>? = nil
        let v = strtof(buffer.baseAddress!, &endPointer)
        guard let endPointer, endPointer - UnsafeMutablePointer(mutating: buffer.baseAddress!) == length else { return .bad }
        return .value(v)
    }
}

extension CSV {
    /// The parts joined in order, categories turned into indices.
    static func assemble(_ parts: [ChunkResult], plan: ColumnPlan, skipped: [String]) throws -> CSVTable {
        let rows = parts.reduce(0) { $0 + $1.rows }
        let nf = plan.featureNames.count, nl = plan.labelNames.count, nc = plan.categoryColumns.count
        var features = FloatRows.joined(parts.map(\.features), shape: [rows, nf])
        var labels = FloatRows.joined(parts.map(\.labels), shape: [rows, nl])
        var vocabularies: [String: [String]] = [:]
        if nc > 0 {
            for (k, column) in plan.categoryColumns.enumerated() {
                let name = plan.names[column]
                let vocabulary = plan.vocabularies[k] ?? Array(Set(parts.flatMap { p in stride(from: k, to: p.categories.count, by: nc).map { p.categories[$0] } })).sorted()
                vocabularies[name] = vocabulary
                var index: [String: Int] = [:]
                for (i, v) in vocabulary.enumerated() where index[v] == nil { index[v] = i }
                let isFeature = plan.kinds[column] == .featureCategory
                let slot = plan.slots[column]
                var codes: [Float] = []
                codes.reserveCapacity(rows)
                for part in parts {
                    for r in 0..<part.rows {
                        let value = part.categories[r * nc + k]
                        guard let i = index[value] else {
                            throw DataFileError(path: "CSV", message: "column '\(name)': '\(value)' is not in its vocabulary \(vocabulary)")
                        }
                        codes.append(Float(i))
                    }
                }
                let width = isFeature ? nf : nl
                func fill(_ t: inout Tensor) {
                    t.withUnsafeMutableBufferPointer { out in for (row, code) in codes.enumerated() { out[row * width + slot] = code } }
                }
                if isFeature { fill(&features) } else { fill(&labels) }
            }
        }
        return CSVTable(featureNames: plan.featureNames, labelNames: plan.labelNames, features: features,
                        labels: nl > 0 ? labels : nil, vocabularies: vocabularies, skipped: skipped)
    }
}

/// The mean and standard deviation of each feature column, learned by an adapt pass over a
/// table (Keras's Normalization layer adapted on the features), to standardize it and the
/// data seen at inference.
public struct ColumnStatistics: Sendable, Equatable, Codable {
    public var names: [String]
    public var mean: [Float]
    public var std: [Float]

    /// The statistics of `table`'s feature columns (population standard deviation, as Keras).
    public static func adapt(_ table: CSVTable) -> ColumnStatistics {
        adapt(table.features, names: table.featureNames)
    }

    /// The statistics of each feature along the last axis of `x` over all the other axes
    /// (Keras's Normalization(axis=-1) adapted on x).
    public static func adapt(_ x: Tensor, names: [String]? = nil) -> ColumnStatistics {
        let columns = x.shape.last ?? 1
        let rows = x.count / Swift.max(columns, 1)
        var sum = [Double](repeating: 0, count: columns), squares = sum
        x.withUnsafeBufferPointer { p in
            for r in 0..<rows {
                for c in 0..<columns {
                    let v = Double(p[r * columns + c])
                    sum[c] += v
                    squares[c] += v * v
                }
            }
        }
        let n = Double(max(rows, 1))
        let mean = sum.map { $0 / n }
        let std = zip(squares, mean).map { max(0, $0 / n - $1 * $1).squareRoot() }
        return ColumnStatistics(names: names ?? (0..<columns).map(String.init), mean: mean.map(Float.init),
                                std: std.map { Float(max($0, 1e-7)) })
    }

    /// The table with every feature column standardized: (x − mean) / std.
    public func standardized(_ table: CSVTable) throws -> CSVTable {
        guard table.featureNames == names else {
            throw DataFileError(path: "CSV", message: "the columns \(table.featureNames) are not the ones the statistics were learned on (\(names))")
        }
        var out = table
        out.features = ImageTransform.normalize(table.features, mean: mean, std: std)
        return out
    }
}

extension Dataset where Element == Sample {
    /// The rows of a CSV table as samples (features as the input, labels as the target).
    public static func csv(_ table: CSVTable) throws -> Dataset<Sample> {
        try .slices(inputs: [table.features], targets: table.labels.map { [$0] } ?? [])
    }
}
