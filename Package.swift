// swift-tools-version:6.1
import PackageDescription

// Kernels are compiled for the machine that builds them (AVX2 and FMA on Loom's servers):
// Swift's default x86-64 target is SSE2, which halves every vector loop and emulates blends.
let native: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-march=native"])]

let package = Package(
    name: "Loom",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "loom", targets: ["loom"]),
        .library(name: "LoomTensor", targets: ["LoomTensor"]),
        .library(name: "LoomLayers", targets: ["LoomLayers"]),
        .library(name: "LoomData", targets: ["LoomData"]),
        .library(name: "LoomModels", targets: ["LoomModels"]),
        .library(name: "LoomJobs", targets: ["LoomJobs"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // System libraries: the only places C is touched.
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5",
                       providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CLoomZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng16",
                       providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg",
                       providers: [.apt(["libjpeg-dev"])]),
        // C shims: libpng / libjpeg decode and encode (libjpeg needs setjmp), HDF5's macros.
        .target(name: "CLoomImage", dependencies: ["CPNG", "CJPEG", "CLoomZlib"]),
        .target(name: "CLoomHDF5", dependencies: ["CHDF5"]),
        // AVX intrinsics Swift's SIMD types do not lower to (a vector square root).
        .target(name: "CLoomSIMD", cSettings: [.unsafeFlags(["-march=native"])]),

        .target(name: "LoomTensor", dependencies: ["COpenBLAS", "CLoomSIMD"], swiftSettings: native),

        .target(name: "LoomLayers", dependencies: ["LoomTensor"], swiftSettings: native),
        // The input pipeline, beside the layers: it knows tensors, not models (as tf.data and
        // torch.utils.data do); LoomModels' fit reads its datasets.
        .target(name: "LoomData", dependencies: ["LoomTensor", "CLoomImage", "CLoomZlib"], swiftSettings: native),
        .target(name: "LoomModels", dependencies: ["LoomTensor", "LoomLayers", "LoomData", "CLoomSIMD", "CHDF5", "CLoomHDF5",
                                                  "CLoomZlib", .product(name: "ZIPFoundation", package: "ZIPFoundation")],
                swiftSettings: native),
        // Batch jobs: job files, run folders (lock, checkpoints, resume), dataset preparation.
        .target(name: "LoomJobs", dependencies: ["LoomTensor", "LoomLayers", "LoomData", "LoomModels", "CLoomZlib",
                                                .product(name: "Yams", package: "Yams"),
                                                .product(name: "Logging", package: "swift-log")]),
        .executableTarget(name: "loom", dependencies: [
            "LoomTensor", "LoomLayers", "LoomData", "LoomModels", "LoomJobs",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // libFuzzer targets over every parser of untrusted bytes (make fuzz); a plain build
        // makes a replayer of the corpora instead.
        .executableTarget(name: "loom-fuzz", dependencies: ["LoomLayers", "LoomData", "LoomModels", "LoomJobs"]),

        // Shared test helpers (finite differences, tolerant comparisons).
        .target(name: "LoomTestSupport", dependencies: ["LoomTensor", "LoomLayers"], path: "Tests/LoomTestSupport"),
        .testTarget(name: "LoomTensorTests", dependencies: ["LoomTensor", "LoomTestSupport"]),
        .testTarget(name: "LoomLayersTests", dependencies: ["LoomLayers", "LoomTestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "LoomDataTests", dependencies: ["LoomData", "LoomModels", "LoomLayers", "LoomTestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "LoomModelsTests", dependencies: ["LoomModels", "LoomLayers", "LoomTestSupport"],
                    resources: [.copy("Fixtures")]),
        // The `loom` command line as other tools drive it: the binary run as a process.
        .testTarget(name: "LoomCLITests", dependencies: ["loom", "LoomJobs", "LoomModels", "LoomData", "LoomLayers", "LoomTestSupport",
                                                       .product(name: "ZIPFoundation", package: "ZIPFoundation")],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "LoomJobsTests", dependencies: ["LoomJobs", "LoomModels", "LoomData", "LoomLayers"]),
        .testTarget(name: "SystemLibraryTests",
                    dependencies: ["COpenBLAS", "CHDF5", "CLoomHDF5", "CLoomZlib", "CLoomImage"]),
    ]
)
