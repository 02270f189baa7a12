import LoomLayers
import LoomTensor

/// How a functional model runs its graph: when each value can be let go, and which chains of
/// layers run as one call.
///
/// A chain is a layer whose output only the next layer reads, run with it:
/// - Conv → BatchNormalization → ReLU, Conv → ReLU or BatchNormalization → ReLU. Run fused, the
///   intermediate tensors are never made: on ResNet50 that is two of every three full-size
///   passes over memory at inference, and one of the tensors a training step keeps.
/// - ZeroPadding → Conv (and what follows the convolution, as above) or ZeroPadding → valid
///   MaxPooling: the zeros become the window's own padding and the padded copy is never made
///   (ResNet50's stem: 52 MB per 16 images before its max pooling).
struct ExecutionPlan {
    /// For each position in the model's node order, the nodes whose values no later call
    /// reads (never a model output).
    let releases: [[ObjectIdentifier]]
    /// For each position, the chain it heads (the later nodes, in order), if any.
    let chains: [[Int]?]

    init(nodes: [Node], outputs: [SymbolicTensor]) {
        var last: [ObjectIdentifier: Int] = [:]
        var readers: [ObjectIdentifier: [Int]] = [:]
        for (i, node) in nodes.enumerated() {
            for x in node.inputs {
                last[ObjectIdentifier(x.node)] = i
                readers[ObjectIdentifier(x.node), default: []].append(i)
            }
        }
        let outputNodes = Set(outputs.map { ObjectIdentifier($0.node) })
        for id in outputNodes { last[id] = nil }
        var releases = [[ObjectIdentifier]](repeating: [], count: nodes.count)
        for (id, i) in last { releases[i].append(id) }
        self.releases = releases

        // The one node reading `i`'s single value, when nothing else (a model output) does.
        func onlyReader(_ i: Int) -> Int? {
            let id = ObjectIdentifier(nodes[i])
            guard nodes[i].layer.outputCount == 1, !outputNodes.contains(id),
                  let r = readers[id], r.count == 1, nodes[r[0]].inputs.count == 1,
                  nodes[r[0]].layer.activityRegularizer == nil else { return nil }
            return r[0]
        }
        // What runs fused after a convolution or batch normalization at `i`.
        func tail(_ i: Int) -> [Int]? {
            let layer = nodes[i].layer
            guard layer is BaseConv || layer is BatchNormalization, nodes[i].inputs.count == 1,
                  let next = onlyReader(i) else { return nil }
            if nodes[next].layer.isPlainReLU { return [next] }
            guard layer is BaseConv, nodes[next].layer is BatchNormalization else { return nil }
            if let relu = onlyReader(next), nodes[relu].layer.isPlainReLU { return [next, relu] }
            return [next]
        }
        chains = nodes.indices.map { i in
            if let padding = nodes[i].layer as? ZeroPadding {
                guard padding.dataFormat == .channelsLast, nodes[i].inputs.count == 1, let next = onlyReader(i),
                      nodes[next].layer is BaseConv || nodes[next].layer is BasePooling else { return nil }
                return [next] + (tail(next) ?? [])
            }
            return tail(i)
        }
    }

    /// Runs the chain headed by `head` as one call on `x` (its head's unmasked input): the
    /// value of the chain's last node and that node's position, or nil when the layers cannot
    /// fuse this time (a batch normalization being trained cannot fold into its convolution).
    func runChain(_ head: Int, _ x: Tensor, nodes: [Node], context: ForwardContext) throws -> (value: Tensor, last: Int)? {
        guard let chain = chains[head] else { return nil }
        var fused = FusedLayers()
        // The layer called, and how many of the chain's nodes the call covers.
        var caller = head, covered = 0
        if let padding = nodes[head].layer as? ZeroPadding {
            fused.padding = padding.padding.map { (before: $0.0, after: $0.1) }
            caller = chain[0]
            covered = 1
        }
        for i in chain[covered...] {
            if let bn = nodes[i].layer as? BatchNormalization {
                guard GradientRecording.isRecording == false, let affine = bn.fixedAffine(context) else { break }
                fused.affine = affine
            } else {
                fused.relu = true
            }
            covered += 1
        }
        guard covered > 0, let y = try nodes[caller].layer.callFused(x, fused: fused, context: context) else { return nil }
        return (y, chain[covered - 1])
    }
}
