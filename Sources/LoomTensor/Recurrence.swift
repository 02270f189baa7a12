/// The LSTM recurrence over a whole sequence as one differentiable operation: the forward
/// keeps each step's gates, and the backward walks back through time with hand-written step
/// derivatives, one matrix product per step each way, instead of a graph of small nodes.
extension Tensor {
    /// h and c through time for gates i, f, c, o = sigmoid, sigmoid, tanh, sigmoid of
    /// `projected[:, t] + h_{t-1} · recurrentKernel` (Keras's LSTM with its default activations).
    /// - projected: [B, T, 4U], the input projection of every step (x W + b).
    /// - recurrentKernel: [U, 4U].
    /// - initialState: [h0, c0], each [B, U], or nil for zeros; gradients flow into them.
    /// - mask: [B, T] of 0 / 1, or nil: a masked step keeps h and c (and outputs the previous h).
    /// - recurrentKeep: [B, U] multipliers of h_{t-1} before the product (recurrent dropout), or nil.
    /// - goBackwards: steps run from t = T-1 down; outputs are in the order they were computed.
    /// - zeroOutputForMask: a masked step outputs zeros instead of the previous h.
    /// - returnsState: also return the final h and c.
    /// Returns the outputs [B, T, U] with `returnSequences`, else the last one [B, U]; then, with
    /// `returnsState`, the final h and c [B, U].
    public static func lstmSequence(projected: Tensor, recurrentKernel: Tensor, initialState: [Tensor]? = nil, mask: Tensor?,
                                    recurrentKeep: Tensor?, goBackwards: Bool, returnSequences: Bool,
                                    zeroOutputForMask: Bool = false, returnsState: Bool = false) -> [Tensor] {
        let (b, steps, width) = (projected.shape[0], projected.shape[1], projected.shape[2])
        let u = width / 4
        precondition(width == 4 * u && recurrentKernel.shape == [u, width], "lstmSequence: shapes \(projected.shape) and \(recurrentKernel.shape)")
        precondition(initialState.map { $0.count == 2 && $0.allSatisfy { $0.shape == [b, u] } } ?? true,
                     "lstmSequence: initial state must be [h, c] of shape [\(b), \(u)]")
        let xp = projected.scalars, kernel = recurrentKernel.scalars
        let maskValues = mask?.scalars, keep = recurrentKeep?.scalars
        // One result of [B, rows, U]: the outputs (every step's, or the last), then with
        // returnsState the final h and c; the values returned are slices of it.
        let outputRows = returnSequences ? steps : 1
        let rows = outputRows + (returnsState ? 2 : 0)
        // Saved for the backward: per step the activated gates [B, 4U], the cell before it,
        // tanh of the cell after it, and the h that entered the product.
        var gates = [Float](repeating: 0, count: steps * b * width)
        var cellsBefore = [Float](repeating: 0, count: steps * b * u)
        var tanhCells = [Float](repeating: 0, count: steps * b * u)
        var hInputs = [Float](repeating: 0, count: steps * b * u)
        var packed = [Float](repeating: 0, count: b * rows * u)
        var h = initialState?[0].scalars ?? [Float](repeating: 0, count: b * u)
        var cell = initialState?[1].scalars ?? [Float](repeating: 0, count: b * u)
        // The step loop works on raw buffers allocated once: no allocation or reference
        // counting inside it.
        let z = UnsafeMutablePointer<Float>.allocate(capacity: b * width)
        defer { z.deallocate() }
        maskValues.withUnsafeBufferPointerOrNil { maskBuffer in keep.withUnsafeBufferPointerOrNil { keepBuffer in
        xp.withUnsafeBufferPointer { pxb in kernel.withUnsafeBufferPointer { pkb in
        gates.withUnsafeMutableBufferPointer { pgb in cellsBefore.withUnsafeMutableBufferPointer { pcb in
        tanhCells.withUnsafeMutableBufferPointer { ptb in hInputs.withUnsafeMutableBufferPointer { phib in
        packed.withUnsafeMutableBufferPointer { pob in h.withUnsafeMutableBufferPointer { phb in
        cell.withUnsafeMutableBufferPointer { pcellb in
            let (px, pk, ph, c) = (pxb.baseAddress!, pkb.baseAddress!, phb.baseAddress!, pcellb.baseAddress!)
            let (maskPointer, keepPointer) = (maskBuffer?.baseAddress, keepBuffer?.baseAddress)
            for i in 0..<steps {
                let t = goBackwards ? steps - 1 - i : i
                let hin = phib.baseAddress! + i * b * u
                if let keepPointer {
                    for k in 0..<(b * u) { hin[k] = ph[k] * keepPointer[k] }
                } else {
                    hin.update(from: ph, count: b * u)
                }
                for r in 0..<b { (z + r * width).update(from: px + (r * steps + t) * width, count: width) }
                BLAS.sgemm(transposeA: false, transposeB: false, m: b, n: width, k: u, a: hin, b: pk, c: z, accumulate: true)
                let g = pgb.baseAddress! + i * b * width
                for r in 0..<b {
                    let row = r * width
                    applyVec(z + row, g + row, u, vsigmoid)
                    applyVec(z + row + u, g + row + u, u, vsigmoid)
                    applyVec(z + row + 2 * u, g + row + 2 * u, u, vtanh)
                    applyVec(z + row + 3 * u, g + row + 3 * u, u, vsigmoid)
                }
                let before = pcb.baseAddress! + i * b * u, tanhCell = ptb.baseAddress! + i * b * u
                before.update(from: c, count: b * u)
                // The new cell goes into tanhCell's slot first, then is replaced by its tanh.
                for r in 0..<b {
                    let gr = g + r * width
                    for j in 0..<u { tanhCell[r * u + j] = gr[u + j] * c[r * u + j] + gr[j] * gr[2 * u + j] }
                }
                for r in 0..<b {
                    let kept = maskPointer.map { $0[r * steps + t] != 0 } ?? true
                    if kept { (c + r * u).update(from: tanhCell + r * u, count: u) }
                }
                applyVec(tanhCell, tanhCell, b * u, vtanh)
                for r in 0..<b {
                    let kept = maskPointer.map { $0[r * steps + t] != 0 } ?? true
                    guard kept else { continue }
                    let gr = g + r * width
                    for j in 0..<u { ph[r * u + j] = gr[3 * u + j] * tanhCell[r * u + j] }
                }
                if returnSequences {
                    for r in 0..<b {
                        if zeroOutputForMask, let m = maskPointer, m[r * steps + t] == 0 { continue }
                        (pob.baseAddress! + (r * rows + i) * u).update(from: ph + r * u, count: u)
                    }
                }
            }
            let out = pob.baseAddress!
            // The last output is the last step's: the state's h, or zeros where that step was
            // masked and masked steps output zeros.
            let lastStep = goBackwards ? 0 : steps - 1
            for r in 0..<b {
                if !returnSequences && !(zeroOutputForMask && maskPointer.map { $0[r * steps + lastStep] == 0 } == true) {
                    (out + r * rows * u).update(from: ph + r * u, count: u)
                }
                if returnsState {
                    (out + (r * rows + outputRows) * u).update(from: ph + r * u, count: u)
                    (out + (r * rows + outputRows + 1) * u).update(from: c + r * u, count: u)
                }
            }
        } } } } } } } } } } }
        let saved = (gates, cellsBefore, tanhCells, hInputs)
        let inputs = [projected, recurrentKernel] + (initialState ?? [])
        let result = record("lstm_sequence", Tensor(shape: [b, rows, u], scalars: packed), inputs) { gradient in
            let g = gradient.scalars
            let (gates, cellsBefore, tanhCells, hInputs) = saved
            var dProjected = [Float](repeating: 0, count: b * steps * width)
            var dKernel = [Float](repeating: 0, count: u * width)
            var dh = [Float](repeating: 0, count: b * u), dc = dh
            if returnsState {
                // The final state's gradients enter where the last step leaves them.
                for r in 0..<b {
                    for j in 0..<u {
                        dh[r * u + j] = g[(r * rows + outputRows) * u + j]
                        dc[r * u + j] = g[(r * rows + outputRows + 1) * u + j]
                    }
                }
            }
            var dz = [Float](repeating: 0, count: b * width)
            var dhIn = [Float](repeating: 0, count: b * u)
            // The step loop works on raw pointers taken once: no allocation, bounds checks or
            // reference counting inside it.
            g.withUnsafeBufferPointer { pgb in gates.withUnsafeBufferPointer { pgatesb in
            cellsBefore.withUnsafeBufferPointer { pcbb in tanhCells.withUnsafeBufferPointer { ptcb in
            hInputs.withUnsafeBufferPointer { phib in kernel.withUnsafeBufferPointer { pkb in
            dProjected.withUnsafeMutableBufferPointer { pdpb in dKernel.withUnsafeMutableBufferPointer { pdkb in
            dh.withUnsafeMutableBufferPointer { pdhb in dc.withUnsafeMutableBufferPointer { pdcb in
            dz.withUnsafeMutableBufferPointer { pdzb in dhIn.withUnsafeMutableBufferPointer { pdhib in
            maskValues.withUnsafeBufferPointerOrNil { mask in keep.withUnsafeBufferPointerOrNil { keepPointer in
                let (gp, gatesP, before, tanhP) = (pgb.baseAddress!, pgatesb.baseAddress!, pcbb.baseAddress!, ptcb.baseAddress!)
                let (hIn, kernelP, dProj, dKern) = (phib.baseAddress!, pkb.baseAddress!, pdpb.baseAddress!, pdkb.baseAddress!)
                let (dhP, dcP, dzP, dhInP) = (pdhb.baseAddress!, pdcb.baseAddress!, pdzb.baseAddress!, pdhib.baseAddress!)
                for i in stride(from: steps - 1, through: 0, by: -1) {
                    let t = goBackwards ? steps - 1 - i : i
                    // An output zeroed for its mask passes no gradient back.
                    let outputRow = returnSequences ? i : (i == steps - 1 ? 0 : -1)
                    if outputRow >= 0 {
                        for r in 0..<b where !(zeroOutputForMask && mask.map { $0[r * steps + t] == 0 } == true) {
                            let from = gp + (r * rows + outputRow) * u, to = dhP + r * u
                            for j in 0..<u { to[j] += from[j] }
                        }
                    }
                    for r in 0..<b {
                        let kept: Float = mask.map { $0[r * steps + t] != 0 ? 1 : 0 } ?? 1
                        let gr = gatesP + i * b * width + r * width, zr = dzP + r * width
                        let tcr = tanhP + i * b * u + r * u, cbr = before + i * b * u + r * u
                        let dhr = dhP + r * u, dcr = dcP + r * u
                        for j in 0..<u {
                            let (ig, fg, cg, og) = (gr[j], gr[u + j], gr[2 * u + j], gr[3 * u + j])
                            let tc = tcr[j]
                            let dhc = dhr[j] * kept, dcc = dcr[j] * kept
                            let dOut = dhc * tc
                            let dCell = dcc + dhc * og * (1 - tc * tc)
                            zr[j] = dCell * cg * ig * (1 - ig)
                            zr[u + j] = dCell * cbr[j] * fg * (1 - fg)
                            zr[2 * u + j] = dCell * ig * (1 - cg * cg)
                            zr[3 * u + j] = dOut * og * (1 - og)
                            dcr[j] = dCell * fg + dcr[j] * (1 - kept)
                            dhr[j] *= 1 - kept
                        }
                        (dProj + (r * steps + t) * width).update(from: zr, count: width)
                    }
                    // dU += h_inᵀ · dz, then dh_in = dz · Uᵀ.
                    BLAS.sgemm(transposeA: true, transposeB: false, m: u, n: width, k: b, a: hIn + i * b * u, b: dzP, c: dKern,
                               accumulate: true)
                    BLAS.sgemm(transposeA: false, transposeB: true, m: b, n: u, k: width, a: dzP, b: kernelP, c: dhInP)
                    if let keepPointer {
                        for k in 0..<(b * u) { dhP[k] += dhInP[k] * keepPointer[k] }
                    } else {
                        for k in 0..<(b * u) { dhP[k] += dhInP[k] }
                    }
                }
            } } } } } } } } } } } } } }
            var grads: [Tensor?] = [Tensor(shape: [b, steps, width], scalars: dProjected), Tensor(shape: [u, width], scalars: dKernel)]
            // What is left after the first step is the gradient of the state it started from.
            if initialState != nil { grads += [Tensor(shape: [b, u], scalars: dh), Tensor(shape: [b, u], scalars: dc)] }
            return grads
        }
        guard returnsState else { return [returnSequences ? result : result.reshaped([b, u])] }
        let output = returnSequences ? result.slice(lower: [0, 0, 0], upper: [b, steps, u])
                                     : result.slice(lower: [0, 0, 0], upper: [b, 1, u]).reshaped([b, u])
        return [output] + (0..<2).map { k in
            result.slice(lower: [0, outputRows + k, 0], upper: [b, outputRows + k + 1, u]).reshaped([b, u])
        }
    }
}

/// `f` over n floats from `source` into `target`, eight at a time, the tail through a padded vector.
@inline(__always)
private func applyVec(_ source: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>, _ n: Int, _ f: (Vec) -> Vec) {
    var i = 0
    while i + 8 <= n {
        store(f(load(source + i)), target + i)
        i += 8
    }
    if i < n {
        var tail = Vec(repeating: 0)
        for k in 0..<(n - i) { tail[k] = source[i + k] }
        let out = f(tail)
        for k in 0..<(n - i) { target[i + k] = out[k] }
    }
}

extension Optional where Wrapped == [Float] {
    /// `body` on the array's buffer, or on nil when there is no array.
    func withUnsafeBufferPointerOrNil<R>(_ body: (UnsafeBufferPointer<Float>?) throws -> R) rethrows -> R {
        guard let array = self else { return try body(nil) }
        return try array.withUnsafeBufferPointer { try body($0) }
    }
}
