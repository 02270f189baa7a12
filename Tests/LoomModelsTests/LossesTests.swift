import Foundation
import LoomLayers
import LoomTensor
import LoomTestSupport
import Testing
@testable import LoomModels

/// A cross-entropy of a softmax or sigmoid output, recorded from Keras 3 on TensorFlow by
/// scripts/make_logits_loss_fixtures.py: per-sample losses and the gradient of their mean
/// with respect to the logits.
struct LogitsLossCase: Sendable, CustomStringConvertible {
    let fields: Config
    var description: String { if case let .string(s)? = fields["name"] { return s } else { return "?" } }
    func tensor(_ key: String) -> Tensor { FixtureFiles.tensor(fields[key])! }

    static let all = FixtureFiles.cases("logits_losses.json", bundle: .module).map(LogitsLossCase.init(fields:))

    /// The loss the case names, and whether its output is a sigmoid's (else a softmax's).
    var loss: (Loss, sigmoid: Bool) {
        switch description {
        case "sparse_categorical_crossentropy": (SparseCategoricalCrossentropy(), false)
        case "sparse_categorical_crossentropy_ignore_class": (SparseCategoricalCrossentropy(ignoreClass: 2), false)
        case "categorical_crossentropy": (CategoricalCrossentropy(), false)
        case "categorical_crossentropy_label_smoothing": (CategoricalCrossentropy(labelSmoothing: 0.1), false)
        default: (BinaryCrossentropy(), true)
        }
    }
}

@Suite struct LossesTests {
    @Test func theFixturesAreThere() { #expect(LogitsLossCase.all.count == 5) }

    /// Keras on TensorFlow takes the logits behind a softmax or sigmoid output: a confidently
    /// wrong sample's loss goes past -log(1e-7) and keeps its gradient (softmax - one-hot).
    /// With ignore_class the scores are masked first, and clipped, as in Keras.
    @Test(arguments: LogitsLossCase.all)
    func crossEntropyOfAnActivationOutputMatchesKerasOnTensorFlow(_ c: LogitsLossCase) throws {
        let z = c.tensor("logits").requiringGradient()
        let (loss, sigmoid) = c.loss
        let values = try loss.values(c.tensor("labels"), sigmoid ? z.sigmoid() : z.softmax())
        expectClose(values.scalars, c.tensor("losses").scalars, relative: 1e-5, absolute: 1e-6, "\(c) losses")
        let gradient = gradients(of: values.mean(), wrt: [z])[0]
        expectClose(gradient.scalars, c.tensor("gradient").scalars, relative: 1e-4, absolute: 1e-6, "\(c) gradient")
    }

    /// Probabilities that did not come from a softmax (or are no longer its output) are
    /// clipped, as on every Keras backend: -log(1e-7) at most.
    @Test func probabilitiesWithoutLogitsAreClipped() throws {
        let p = Tensor([[1, 0, 0], [0.2, 0.3, 0.5]])
        let values = try SparseCategoricalCrossentropy().values(Tensor([1, 2]), p)
        expectClose(values.scalars, [-Foundation.log(Float(1e-7)), -Foundation.log(Float(0.5))], relative: 1e-5, absolute: 0)
        let z = Tensor([[30, 0, -2]])
        let rewritten = z.softmax() * 1
        #expect(try SparseCategoricalCrossentropy().values(Tensor([1]), rewritten).scalar < 16.2)
    }
}
