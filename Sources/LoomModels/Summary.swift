import Foundation
import LoomLayers
import LoomTensor

extension Model {
    /// The model's table as Keras's model.summary() prints it: one row per layer with its
    /// output shape and parameter count (and, for a functional model that is not a simple
    /// chain, the layers it reads), then the parameter totals. `lineLength` is the table's
    /// width (Keras's default: 88 for a chain, 108 otherwise, at most the terminal's width - 4).
    public func summary(lineLength: Int? = nil) -> String {
        let chain = isChain
        let positions: [Double] = chain ? [0.45, 0.80, 1.0] : [0.3, 0.56, 0.74, 1.0]
        let header = chain ? ["Layer (type)", "Output Shape", "Param #"] : ["Layer (type)", "Output Shape", "Param #", "Connected to"]
        let rightAligned = [false, false, true, false]
        let width = lineLength ?? Swift.min(chain ? 88 : 108, terminalColumns() - 4)

        var rows: [[String]] = []
        let outputShapesByLayer = layerOutputShapes()
        for layer in layers {
            let params: String
            if layer.isBuilt || layer is InputLayer || !layer.weights.isEmpty || layer is Model {
                params = grouped(layer.weights.reduce(0) { $0 + $1.value.count })
            } else {
                params = "0 (unbuilt)"
            }
            var row = ["\(layer.name) (\(type(of: layer).kerasClassName))",
                       outputShapesByLayer[ObjectIdentifier(layer)] ?? "?", params]
            if !chain { row.append(connections(of: layer)) }
            rows.append(row)
        }

        // Column widths as rich lays out Keras's table: the positions give the widths (plus
        // one space of padding each side); what does not fit beside the borders is taken from
        // the columns in turn, in proportion, rounding half to even.
        var current = 0
        var widths = positions.map { p -> Int in
            let w = Int(p * Double(width)) - current
            current += w
            return w + 2
        }
        let available = width - (widths.count + 1)
        var excess = widths.reduce(0, +) - available
        if excess > 0 {
            var remainingRatio = widths.count
            for i in widths.indices {
                let share = Swift.min(widths[i], Int((Double(excess) / Double(remainingRatio)).rounded(.toNearestOrEven)))
                widths[i] -= share
                excess -= share
                remainingRatio -= 1
            }
        }
        let content = widths.map { $0 - 2 }

        func line(_ left: String, _ fill: String, _ join: String, _ right: String) -> String {
            left + widths.map { String(repeating: fill, count: $0) }.joined(separator: join) + right
        }
        func cells(_ values: [String], _ bar: String) -> [String] {
            let wrapped = zip(values, content).map { wrap($0, width: $1) }
            let height = wrapped.map(\.count).max() ?? 1
            return (0..<height).map { r in
                bar + wrapped.enumerated().map { c, lines in
                    let text = r < lines.count ? lines[r] : ""
                    let pad = String(repeating: " ", count: Swift.max(0, content[c] - text.count))
                    return " " + (rightAligned[c] ? pad + text : text + pad) + " "
                }.joined(separator: bar) + bar
            }
        }

        var out = ["Model: \"\(name)\"", line("┏", "━", "┳", "┓")]
        out += cells(header, "┃")
        out.append(line("┡", "━", "╇", "┩"))
        for (i, row) in rows.enumerated() {
            if i > 0 { out.append(line("├", "─", "┼", "┤")) }
            out += cells(row, "│")
        }
        out.append(line("└", "─", "┴", "┘"))
        let trainable = trainableWeights.reduce(0) { $0 + $1.value.count }
        let frozen = nonTrainableWeights.reduce(0) { $0 + $1.value.count }
        out.append(" Total params: \(grouped(trainable + frozen)) (\(readableBytes(4 * (trainable + frozen))))")
        out.append(" Trainable params: \(grouped(trainable)) (\(readableBytes(4 * trainable)))")
        out.append(" Non-trainable params: \(grouped(frozen)) (\(readableBytes(4 * frozen)))")
        return out.joined(separator: "\n") + "\n"
    }

    /// Whether Keras prints the model as a chain (no "Connected to" column): a Sequential
    /// model, or a graph with one node per depth, each reading one value, and no shared layers.
    private var isChain: Bool {
        if self is Sequential { return true }
        var seen = Set<ObjectIdentifier>()
        for node in nodes where !node.inputs.isEmpty {
            if node.inputs.count > 1 || !seen.insert(ObjectIdentifier(node.layer)).inserted { return false }
        }
        // One node per depth means every value is read by at most one node.
        var readers: [ObjectIdentifier: Int] = [:]
        for node in nodes { for x in node.inputs { readers[ObjectIdentifier(x.node), default: 0] += 1 } }
        return readers.values.allSatisfy { $0 <= 1 } && inputs.count == 1 && outputs.count == 1
    }

    /// Each layer's output shape as the summary prints it: from the graph, or from building a
    /// Sequential model; a call making several values lists them as Keras does.
    private func layerOutputShapes() -> [ObjectIdentifier: String] {
        var shapes: [ObjectIdentifier: String] = [:]
        if let sequential = self as? Sequential {
            for (layer, shape) in zip(sequential.layers, sequential.layerOutputShapes) { shapes[ObjectIdentifier(layer)] = shape.text }
            return shapes
        }
        for node in nodes {
            let texts = node.outputShapes.map(\.text)
            shapes[ObjectIdentifier(node.layer)] = texts.count == 1 ? texts[0] : "[" + texts.joined(separator: ", ") + "]"
        }
        return shapes
    }

    /// "dense[0][0], dense_1[1][0]": the values each call of `layer` in this model reads.
    private func connections(of layer: Layer) -> String {
        let parts = nodes.filter { $0.layer === layer }.flatMap { node in
            node.inputs.map { "\($0.node.layer.name)[\($0.node.callIndex)][\($0.index)]" }
        }
        return parts.isEmpty ? "-" : parts.joined(separator: ", ")
    }

    /// Prints `summary()` (Keras's model.summary()).
    public func printSummary(lineLength: Int? = nil) {
        print(summary(lineLength: lineLength), terminator: "")
    }
}

/// Words filled greedily into lines of `width`; a word longer than a line is cut with "…",
/// as rich does in Keras's summary table.
func wrap(_ text: String, width: Int) -> [String] {
    var lines: [String] = []
    var current = ""
    for word in text.split(separator: " ", omittingEmptySubsequences: true).map(String.init) {
        if current.isEmpty {
            current = word
        } else if current.count + 1 + word.count <= width {
            current += " " + word
        } else {
            lines.append(current)
            current = word
        }
    }
    lines.append(current)
    return lines.map { $0.count > width ? String($0.prefix(Swift.max(width - 1, 0))) + "…" : $0 }
}

/// 1234567 -> "1,234,567".
func grouped(_ n: Int) -> String {
    let digits = String(n)
    var out = ""
    for (i, ch) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(ch)
    }
    return out
}

/// The terminal's width as Python's shutil.get_terminal_size reports it: $COLUMNS, else the
/// terminal's, else 80.
func terminalColumns() -> Int {
    if let env = ProcessInfo.processInfo.environment["COLUMNS"], let n = Int(env), n > 0 { return n }
    var size = winsize()
    if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
    return 80
}
