import Testing
@testable import LoomModels
@testable import LoomTensor

@Suite struct MLPClassifierTests {
    @Test func learnsASeparableProblemAndIsReproducible() {
        // Two Gaussian blobs per class, 3 classes in 2-D: a 2-16-3 network must fit them.
        let g = RandomGenerator(seed: 5)
        let centers: [[Float]] = [[2, 0], [-1, 1.7], [-1, -1.7]]
        let noise = Tensor.randomNormal([300, 2], stddev: 0.4, generator: g)
        let labels = Tensor((0..<300).map { Float($0 % 3) })
        let x = noise + Tensor((0..<300).map { centers[$0 % 3] })
        func run() -> (MLPClassifier, [Float]) {
            let model = MLPClassifier(sizes: [2, 16, 3], seed: 9)
            var losses: [Float] = []
            model.train(x: x, labels: labels, epochs: 15, batchSize: 32, learningRate: 0.05, seed: 3) { losses.append($0.meanLoss) }
            return (model, losses)
        }
        let (model, losses) = run()
        #expect(losses.last! < losses.first! / 4)
        #expect(model.accuracy(x: x, labels: labels) > 0.95)
        #expect(run().1 == losses)
    }

    @Test func permutationIsAPermutation() {
        let p = permutation(1000, generator: RandomGenerator(seed: 1), stream: 0)
        #expect(p.sorted() == Array(0..<1000))
        #expect(p != Array(0..<1000))
        #expect(p != permutation(1000, generator: RandomGenerator(seed: 1), stream: 1))
    }
}
