import LoomTensor
import Testing

/// The fused LSTM recurrence against the same recurrence composed of ordinary tensor
/// operations (whose gradients the autodiff tests check): outputs and both gradients.
@Suite struct RecurrenceTests {
    /// The outputs, then the final h and c.
    static func composed(_ projected: Tensor, _ kernel: Tensor, initial: [Tensor]? = nil, mask: Tensor?, keep: Tensor?,
                         backwards: Bool, sequences: Bool) -> [Tensor] {
        let (b, steps, width) = (projected.shape[0], projected.shape[1], projected.shape[2])
        let u = width / 4
        var h = initial?[0] ?? Tensor.zeros([b, u]), c = initial?[1] ?? Tensor.zeros([b, u])
        var outputs: [Tensor] = []
        for i in 0..<steps {
            let t = backwards ? steps - 1 - i : i
            let hin = keep.map { h * $0 } ?? h
            let z = projected.slice(lower: [0, t, 0], upper: [b, t + 1, width]).reshaped([b, width]) + hin.matmul(kernel)
            func gate(_ k: Int) -> Tensor { z.slice(lower: [0, k * u], upper: [b, (k + 1) * u]) }
            let newC = gate(1).sigmoid() * c + gate(0).sigmoid() * gate(2).tanh()
            let newH = gate(3).sigmoid() * newC.tanh()
            if let mask {
                let m = mask.slice(lower: [0, t], upper: [b, t + 1])
                c = newC * m + c * (1 - m)
                h = newH * m + h * (1 - m)
            } else {
                (c, h) = (newC, newH)
            }
            outputs.append(h.reshaped([b, 1, u]))
        }
        return [sequences ? Tensor.concatenate(outputs, axis: 1) : h, h, c]
    }

    @Test(arguments: [(false, false, false, false), (true, false, true, false), (false, true, false, true), (true, true, true, true)],
          [false, true])
    func fusedEqualsComposed(_ flags: (masked: Bool, dropped: Bool, backwards: Bool, sequences: Bool), withStates: Bool) throws {
        let (masked, dropped, backwards, sequences) = flags
        let (b, steps, u) = (3, 6, 5)
        let g = RandomGenerator(seed: 11)
        let projected = Tensor.randomNormal([b, steps, 4 * u], generator: g, stream: 1).requiringGradient()
        let kernel = (Tensor.randomNormal([u, 4 * u], generator: g, stream: 2) * 0.5).requiringGradient()
        let mask = masked ? Tensor(shape: [b, steps], scalars: (0..<(b * steps)).map { $0 % 4 == 1 ? 0 : 1 }) : nil
        let keep = dropped ? Tensor(shape: [b, u], scalars: (0..<(b * u)).map { $0 % 3 == 0 ? 0 : 1.5 }) : nil
        // With states: start from given h and c and return the final ones, all differentiated.
        let initial = withStates ? [Tensor.randomNormal([b, u], generator: g, stream: 4).requiringGradient(),
                                    Tensor.randomNormal([b, u], generator: g, stream: 5).requiringGradient()] : nil
        let fused = Tensor.lstmSequence(projected: projected, recurrentKernel: kernel, initialState: initial, mask: mask,
                                        recurrentKeep: keep, goBackwards: backwards, returnSequences: sequences,
                                        returnsState: withStates)
        let reference = Array(Self.composed(projected, kernel, initial: initial, mask: mask, keep: keep, backwards: backwards,
                                            sequences: sequences).prefix(withStates ? 3 : 1))
        #expect(fused.count == reference.count)
        for (f, r) in zip(fused, reference) {
            #expect(f.shape == r.shape)
            for (a, e) in zip(f.scalars, r.scalars) { #expect(abs(a - e) <= 1e-5 + 1e-5 * abs(e)) }
        }
        // A weighted sum, so every output element's gradient differs.
        func loss(_ ys: [Tensor]) -> Tensor {
            ys.enumerated().map { k, y in (y * Tensor.randomNormal(y.shape, generator: g, stream: 10 + UInt64(k))).sum() }
                .reduce(Tensor(0), +)
        }
        let variables = [projected, kernel] + (initial ?? [])
        let gotGradients = gradients(of: loss(fused), wrt: variables)
        let wantGradients = gradients(of: loss(reference), wrt: variables)
        for (got, want) in zip(gotGradients, wantGradients) {
            #expect(got.shape == want.shape)
            for (a, e) in zip(got.scalars, want.scalars) { #expect(abs(a - e) <= 1e-5 + 1e-4 * abs(e)) }
        }
    }
}
