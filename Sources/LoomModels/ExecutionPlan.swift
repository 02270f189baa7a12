import LoomLayers
import LoomTensor

/// How a functional model runs its graph: when each value can be let go, and which chains of
/// layers run as one call.
///
/// A chain is a convolution or batch normalization whose output only the next layer reads:
/// Conv → BatchNormalization → ReLU, Conv → ReLU or BatchNormalization → ReLU. Run fused, the
/// intermediate tensors are never made: on ResNet50 that is two of every three full-size
/// passes over memory at inference, and one of the tensors a training step keeps.
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
        chains = nodes.indices.map { i in
            let layer = nodes[i].layer
            guard layer is BaseConv || layer is BatchNormalization, nodes[i].inputs.count == 1,
                  let next = onlyReader(i) else { return nil }
            if nodes[next].layer.isPlainReLU { return [next] }
            guard layer is BaseConv, nodes[next].layer is BatchNormalization else { return nil }
            if let relu = onlyReader(next), nodes[relu].layer.isPlainReLU { return [next, relu] }
            return [next]
        }
    }

    /// Runs the chain headed by `head` as one call on `x` (its head's unmasked input): the
    /// value of the chain's last node and that node's position, or nil when the layers cannot
    /// fuse this time (a batch normalization being trained cannot fold into its convolution).
    func runChain(_ head: Int, _ x: Tensor, nodes: [Node], context: ForwardContext) throws -> (value: Tensor, last: Int)? {
        guard let chain = chains[head] else { return nil }
        var tail = FusedTail()
        var covered = 0
        for i in chain {
            if let bn = nodes[i].layer as? BatchNormalization {
                guard GradientRecording.isRecording == false, let affine = bn.fixedAffine(context) else { break }
                tail.affine = affine
            } else {
                tail.relu = true
            }
            covered += 1
        }
        guard covered > 0, let y = try nodes[head].layer.callFused(x, tail: tail, context: context) else { return nil }
        return (y, chain[covered - 1])
    }
}
