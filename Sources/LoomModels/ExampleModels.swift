import LoomLayers

/// The classic Keras MNIST models, as Loom's demos and benchmarks build them.
public enum ExampleModels {
    /// Keras's mnist_mlp: Dense(512, relu) -> Dropout(0.2) -> Dense(512, relu) -> Dropout(0.2)
    /// -> Dense(10, softmax) on flattened 28x28 images.
    public static func mnistMLP(features: Int = 784) throws -> Sequential {
        let model = try Sequential([try Dense(units: 512, activation: .relu), try Dropout(rate: 0.2),
                                    try Dense(units: 512, activation: .relu), try Dropout(rate: 0.2),
                                    try Dense(units: 10, activation: .softmax)], name: "mnist_mlp")
        try model.build(inputShape: [nil, features])
        return model
    }

    /// Keras's mnist_cnn: Conv2D(32, 3, relu) -> Conv2D(64, 3, relu) -> MaxPooling2D(2) ->
    /// Dropout(0.25) -> Flatten -> Dense(128, relu) -> Dropout(0.5) -> Dense(10, softmax).
    public static func mnistCNN() throws -> Sequential {
        let model = try Sequential([
            try Conv2D(filters: 32, kernelSize: [3], activation: .relu),
            try Conv2D(filters: 64, kernelSize: [3], activation: .relu),
            try MaxPooling2D(poolSize: [2]),
            try Dropout(rate: 0.25),
            Flatten(),
            try Dense(units: 128, activation: .relu),
            try Dropout(rate: 0.5),
            try Dense(units: 10, activation: .softmax),
        ], name: "mnist_cnn")
        try model.build(inputShape: [nil, 28, 28, 1])
        return model
    }
}
