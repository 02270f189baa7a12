import CHDF5
import CLoomHDF5
import Foundation
import LoomLayers
import LoomTensor

/// A failure reading or writing a weights file, naming the file and what was wrong.
public struct WeightsFileError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let message: String
    public var description: String { oneLine("\(path): \(message)") }
}

/// Keras 3's `.weights.h5` layout: for each layer of a model, in the model's layer order, a
/// group `layers/<snake_case class name>[_n]` holding `vars/0`, `vars/1`, ... (the layer's own
/// weights in creation order), nested models holding `layers/...` of their own, and each level's
/// `vars` group carrying the object's name as an attribute.
enum KerasWeightsLayout {
    /// The group name of each layer in a container: its class name in snake case, with _1, _2,
    /// ... for repeats, as Keras's saving code names them.
    static func groupNames(_ layers: [Layer]) -> [String] {
        var counts: [String: Int] = [:]
        return layers.map { layer in
            let base = LayerNames.snakeCase(type(of: layer).kerasClassName)
            let n = counts[base, default: 0]
            counts[base] = n + 1
            return n == 0 ? base : "\(base)_\(n)"
        }
    }

    /// The layers Keras saves for a model (a Sequential model's InputLayer is not one of them).
    static func children(_ layer: Layer) -> [Layer] {
        (layer as? Model)?.layers ?? []
    }
}

/// A new HDF5 file being written through libhdf5 (reading is HDF5Reader's); every handle
/// opened through it is closed when it is released.
final class HDF5File {
    let path: String
    let id: hid_t

    init(creating path: String) throws {
        loom_h5_silence_errors()
        self.path = path
        id = H5Fcreate(path, loom_h5f_acc_trunc(), loom_h5p_default(), loom_h5p_default())
        guard id >= 0 else {
            loom_h5_clear_errors()
            throw WeightsFileError(path: path, message: "cannot create the file")
        }
    }

    deinit { H5Fclose(id) }

    func fail(_ message: String) -> WeightsFileError {
        loom_h5_clear_errors()
        return WeightsFileError(path: path, message: message)
    }

    /// Creates group `name` under `parent` and returns it (closed by the caller).
    func makeGroup(_ parent: hid_t, _ name: String) throws -> hid_t {
        let g = H5Gcreate2(parent, name, loom_h5p_default(), loom_h5p_default(), loom_h5p_default())
        guard g >= 0 else { throw fail("cannot create group \(name)") }
        return g
    }

    /// Writes a string attribute `name` = `value` on an object.
    func writeStringAttribute(_ object: hid_t, _ name: String, _ value: String) throws {
        let type = H5Tcopy(loom_h5t_c_s1())
        defer { H5Tclose(type) }
        let bytes = Array(value.utf8)
        H5Tset_size(type, max(bytes.count, 1))
        let space = H5Screate(H5S_SCALAR)
        defer { H5Sclose(space) }
        let attribute = H5Acreate2(object, name, type, space, loom_h5p_default(), loom_h5p_default())
        guard attribute >= 0 else { throw fail("cannot write attribute \(name)") }
        defer { H5Aclose(attribute) }
        let padded = bytes.isEmpty ? [UInt8(0)] : bytes
        guard H5Awrite(attribute, type, padded) >= 0 else { throw fail("cannot write attribute \(name)") }
    }

    /// Writes a float32 dataset `name` under `parent`.
    func writeTensor(_ parent: hid_t, _ name: String, _ tensor: Tensor) throws {
        var dims = tensor.shape.map { hsize_t($0) }
        let space = H5Screate_simple(Int32(dims.count), &dims, nil)
        defer { H5Sclose(space) }
        let dataset = H5Dcreate2(parent, name, loom_h5t_native_float(), space, loom_h5p_default(), loom_h5p_default(),
                                 loom_h5p_default())
        guard dataset >= 0 else { throw fail("cannot create dataset \(name)") }
        defer { H5Dclose(dataset) }
        let status = tensor.withUnsafeBufferPointer {
            H5Dwrite(dataset, loom_h5t_native_float(), loom_h5s_all(), loom_h5s_all(), loom_h5p_default(), $0.baseAddress)
        }
        guard status >= 0 else { throw fail("cannot write dataset \(name)") }
    }

    /// Writes a scalar int32 dataset `name` under `parent` (Keras's optimizer step count).
    func writeInt32(_ parent: hid_t, _ name: String, _ value: Int32) throws {
        let space = H5Screate(H5S_SCALAR)
        defer { H5Sclose(space) }
        let dataset = H5Dcreate2(parent, name, loom_h5t_native_int32(), space, loom_h5p_default(), loom_h5p_default(),
                                 loom_h5p_default())
        guard dataset >= 0 else { throw fail("cannot create dataset \(name)") }
        defer { H5Dclose(dataset) }
        var v = value
        guard H5Dwrite(dataset, loom_h5t_native_int32(), loom_h5s_all(), loom_h5s_all(), loom_h5p_default(), &v) >= 0 else {
            throw fail("cannot write dataset \(name)")
        }
    }

}

extension Model {
    /// Writes the model's weights as Keras 3's `model.save_weights` does (a `.weights.h5`
    /// file Keras loads with `load_weights`), with the optimizer's state when compiled. The file is written beside `path` and renamed
    /// into place, so an interrupted save never leaves a half-written file under that name.
    public func saveWeights(_ path: String) throws {
        guard path.hasSuffix(".weights.h5") else {
            throw WeightsFileError(path: path, message: "the file name must end in .weights.h5, as Keras requires")
        }
        do throws(FileWriteFailure) { try checkReplaceable(path) } catch { throw WeightsFileError(path: path, message: error.reason) }
        let temporary = path + ".partial-\(getpid())"
        do {
            let file = try HDF5File(creating: temporary)
            try write(self, to: file, at: file.id)
            if let optimizer = compiled?.optimizer { try write(optimizer, to: file) }
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        do throws(FileWriteFailure) { try moveIntoPlace(temporary, path) } catch { throw WeightsFileError(path: path, message: error.reason) }
    }

    private func write(_ layer: Layer, to file: HDF5File, at group: hid_t) throws {
        let children = KerasWeightsLayout.children(layer)
        if layer is Model {
            let layersGroup = try file.makeGroup(group, "layers")
            defer { H5Gclose(layersGroup) }
            for (child, name) in zip(children, KerasWeightsLayout.groupNames(children)) {
                let childGroup = try file.makeGroup(layersGroup, name)
                defer { H5Gclose(childGroup) }
                try write(child, to: file, at: childGroup)
            }
        }
        for (name, child) in layer.kerasSavedChildren {
            let childGroup = try file.makeGroup(group, name)
            defer { H5Gclose(childGroup) }
            try write(child, to: file, at: childGroup)
        }
        let vars = try file.makeGroup(group, "vars")
        defer { H5Gclose(vars) }
        try file.writeStringAttribute(vars, "name", layer.name)
        for (i, weight) in layer.ownWeights.enumerated() { try file.writeTensor(vars, String(i), weight.value) }
    }

    /// Loads weights written by Keras's `save_weights` (or `saveWeights`): every layer's
    /// weights must be there with the shapes the model has; nothing is assigned unless all are.
    /// A compiled model also takes the optimizer's state the file holds.
    public func loadWeights(_ path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw WeightsFileError(path: path, message: "no such file") }
        try loadWeights(try HDF5Reader(path: path))
    }

    /// Reads the weights (and any optimizer state) from an HDF5 file already in memory.
    func loadWeights(_ file: HDF5Reader) throws {
        var assignments: [(Parameter, Tensor)] = []
        try read(self, from: file, at: "", into: &assignments)
        if let optimizer = compiled?.optimizer, try file.exists("optimizer/vars") { try read(optimizer, from: file) }
        for (p, v) in assignments { p.assign(v) }
    }

    /// Writes the optimizer's state as Keras does: `optimizer/vars/0` the step count (int32),
    /// then its float variables in Keras's order.
    private func write(_ optimizer: Optimizer, to file: HDF5File) throws {
        let group = try file.makeGroup(file.id, "optimizer")
        defer { H5Gclose(group) }
        let vars = try file.makeGroup(group, "vars")
        defer { H5Gclose(vars) }
        try file.writeStringAttribute(vars, "name", optimizer.name)
        let state = optimizer.kerasVariables(for: trainableWeights)
        guard let iterations = Int32(exactly: state.iterations) else {
            throw WeightsFileError(path: file.path, message: "the optimizer's step count \(state.iterations) does not fit Keras's int32")
        }
        try file.writeInt32(vars, "0", iterations)
        for (i, value) in state.floats.enumerated() { try file.writeTensor(vars, String(i + 1), value) }
    }

    /// Restores the optimizer's state from `optimizer/vars`. A file from an optimizer with
    /// other variables (another class or settings) is skipped with a warning, as Keras does:
    /// the weights still load and the optimizer starts fresh.
    private func read(_ optimizer: Optimizer, from file: HDF5Reader) throws {
        let stored = try file.count("optimizer/vars")
        guard stored > 0 else { return }
        let parameters = trainableWeights
        let shapes = optimizer.kerasVariableShapes(for: parameters)
        let unbuilt = optimizer.kerasVariableShapes(for: parameters, built: false)
        let expected = stored - 1 == shapes.count ? shapes : stored - 1 == unbuilt.count ? unbuilt : nil
        guard let expected else {
            let warning = "warning: \(file.path): skipping the optimizer's state: the file holds \(stored) variables "
                + "but \(type(of: optimizer).kerasClassName) '\(optimizer.name)' has \(shapes.count + 1)\n"
            FileHandle.standardError.write(Data(warning.utf8))
            return
        }
        let iterations = try file.readInt("optimizer/vars/0")
        let floats = try expected.enumerated().map { i, shape in
            try file.readTensor("optimizer/vars/\(i + 1)", expecting: shape, what: "optimizer variable \(i + 1)")
        }
        do {
            try optimizer.loadKerasVariables(iterations: iterations, floats: floats, for: parameters)
        } catch {
            throw WeightsFileError(path: file.path, message: "optimizer/vars: \(error)")
        }
    }

    private func read(_ layer: Layer, from file: HDF5Reader, at prefix: String, into assignments: inout [(Parameter, Tensor)]) throws {
        let children = KerasWeightsLayout.children(layer)
        for (child, name) in zip(children, KerasWeightsLayout.groupNames(children)) {
            try read(child, from: file, at: prefix + "layers/" + name + "/", into: &assignments)
        }
        for (name, child) in layer.kerasSavedChildren {
            try read(child, from: file, at: prefix + name + "/", into: &assignments)
        }
        let weights = layer.ownWeights
        let vars = prefix + "vars"
        let stored = try file.exists(vars) ? try file.count(vars) : 0
        guard stored == weights.count else {
            throw WeightsFileError(path: file.path, message: "layer '\(layer.name)' (\(vars)) has \(weights.count) weights "
                                   + "but the file holds \(stored)")
        }
        for (i, p) in weights.enumerated() {
            assignments.append((p, try file.readTensor("\(vars)/\(i)", expecting: p.shape, what: "weight \(p.name)")))
        }
    }
}
