import Testing
@testable import LoomTensor
import LoomTestSupport

@Suite struct ShapeTests {
    let x = Tensor.arange(0, 24).reshaped([2, 3, 4])

    @Test func reshapeInfersAndShares() {
        let y = x.reshaped([4, -1])
        #expect(y.shape == [4, 6] && y.scalars == x.scalars)
        #expect(y.storage === x.storage)
        var z = y
        z.withUnsafeMutableBufferPointer { $0[0] = 99 }
        #expect(x[0, 0, 0] == 0 && z[0, 0] == 99) // copy on write
        #expect(x.expandingDims(at: 1).shape == [2, 1, 3, 4])
        #expect(x.expandingDims(at: -1).shape == [2, 3, 4, 1])
        #expect(x.reshaped([1, 2, 1, 12]).squeezed().shape == [2, 12])
    }

    @Test func transposeMatchesIndexing() {
        let perm = [2, 0, 1]
        let t = x.transposed(perm)
        #expect(t.shape == [4, 2, 3])
        for i in 0..<4 { for j in 0..<2 { for k in 0..<3 { #expect(t[i, j, k] == x[j, k, i]) } } }
        let m = Tensor.arange(0, 70 * 33).reshaped([70, 33]).transposed()
        for i in [0, 5, 32] { for j in [0, 31, 69] { #expect(m[i, j] == Float(j * 33 + i)) } }
    }

    @Test func concatenateSplitSlicePad() {
        let a = Tensor.arange(0, 6).reshaped([2, 3]), b = Tensor.arange(10, 14).reshaped([2, 2])
        let c = Tensor.concatenate([a, b], axis: 1)
        #expect(c.scalars == [0, 1, 2, 10, 11, 3, 4, 5, 12, 13])
        let parts = c.split(sizes: [3, 2], axis: -1)
        #expect(parts[0].scalars == a.scalars && parts[1].scalars == b.scalars)
        #expect(Tensor.concatenate([a, a], axis: 0).shape == [4, 3])
        let s = x.slice(lower: [1, 0, 1], upper: [2, 3, 4], steps: [1, 2, 2])
        #expect(s.shape == [1, 2, 2] && s.scalars == [13, 15, 21, 23])
        let p = a.padded([(1, 0), (0, 2)], value: -1)
        #expect(p.shape == [3, 5])
        #expect(p.scalars == [-1, -1, -1, -1, -1, 0, 1, 2, -1, -1, 3, 4, 5, -1, -1])
        #expect(Tensor([1, 2]).broadcast(to: [2, 2]).scalars == [1, 2, 1, 2])
        let empty = Tensor(shape: [0, 3], scalars: [])
        #expect(empty.count == 0 && Tensor.concatenate([empty, a], axis: 0).scalars == a.scalars)
    }

    @Test func gradientChecks() {
        let v = GradientCheck.input([2, 3, 4], seed: 21)
        let w = GradientCheck.input([2, 2, 4], seed: 22)
        GradientCheck.check("reshape", [v]) { $0[0].reshaped([6, 4]) }
        GradientCheck.check("transpose", [v]) { $0[0].transposed([1, 2, 0]) }
        GradientCheck.check("transpose 2d", [v.reshaped([6, 4])]) { $0[0].transposed() }
        GradientCheck.check("broadcast", [GradientCheck.input([3, 1], seed: 23)]) { $0[0].broadcast(to: [2, 3, 5]) }
        GradientCheck.check("concatenate", [v, w]) { Tensor.concatenate([$0[0], $0[1]], axis: 1) }
        GradientCheck.check("split", [v]) { let p = $0[0].split(sizes: [1, 3], axis: 2); return p[1] * 2 + p[0] }
        GradientCheck.check("slice", [v]) { $0[0].slice(lower: [0, 1, 0], upper: [2, 3, 4], steps: [1, 1, 3]) }
        GradientCheck.check("pad", [v]) { $0[0].padded([(0, 1), (2, 0), (1, 1)], value: 3) }
        GradientCheck.check("squeeze", [v.reshaped([2, 1, 12])]) { $0[0].squeezed(axes: [1]) }
        GradientCheck.check("expandDims", [v]) { $0[0].expandingDims(at: -2) * Tensor([1, 2]).reshaped([2, 1]) }
    }
}

@Suite struct IndexTests {
    @Test func gatherAndScatterAdd() {
        let table = Tensor.arange(0, 12).reshaped([4, 3])
        let rows = table.gather(Tensor([[3, 0], [1, 3]]))
        #expect(rows.shape == [2, 2, 3])
        #expect(rows.scalars == [9, 10, 11, 0, 1, 2, 3, 4, 5, 9, 10, 11])
        let columns = table.gather(Tensor([2, -1, 0]), axis: 1)
        #expect(columns.scalars == [2, 2, 0, 5, 5, 3, 8, 8, 6, 11, 11, 9])
        let s = Tensor.scatterAdd(Tensor([[1, 1], [2, 2], [3, 3]]), indices: Tensor([2, 0, 2]), into: [3, 2])
        #expect(s.scalars == [2, 2, 0, 0, 4, 4])
        #expect(Tensor([0, 2, 5]).oneHot(depth: 3).scalars == [1, 0, 0, 0, 0, 1, 0, 0, 0])
    }

    @Test func gradientChecks() {
        let table = GradientCheck.input([5, 3], seed: 31)
        GradientCheck.check("gather", [table]) { $0[0].gather(Tensor([4, 1, 1, 0]), axis: 0) }
        GradientCheck.check("gather axis 1", [table]) { $0[0].gather(Tensor([[2, 0], [2, 2]]), axis: 1) }
        let updates = GradientCheck.input([4, 3], seed: 32)
        GradientCheck.check("scatterAdd", [updates]) {
            Tensor.scatterAdd($0[0], indices: Tensor([1, 3, 1, 0]), into: [5, 3])
        }
    }
}
