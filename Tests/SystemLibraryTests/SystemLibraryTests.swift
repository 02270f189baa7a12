import CHDF5
import CLoomHDF5
import COpenBLAS
import CLoomZlib
import Foundation
import Testing

/// Smoke tests: each system library links, loads and computes.
@Suite struct SystemLibraryTests {
    @Test func openBLASMultiplies() {
        // [[1, 2], [3, 4]] · [[5, 6], [7, 8]] = [[19, 22], [43, 50]]
        let a: [Float] = [1, 2, 3, 4], b: [Float] = [5, 6, 7, 8]
        var c = [Float](repeating: 0, count: 4)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 2, 1, a, 2, b, 2, 0, &c, 2)
        #expect(c == [19, 22, 43, 50])
    }

    @Test func hdf5WritesAndReadsADataset() throws {
        loom_h5_silence_errors()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("loom-\(UUID()).h5").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let values: [Float] = (0..<6).map { Float($0) * 1.5 }
        var dims: [hsize_t] = [2, 3]
        let file = H5Fcreate(path, loom_h5f_acc_trunc(), loom_h5p_default(), loom_h5p_default())
        #expect(file >= 0)
        let group = H5Gcreate2(file, "layers", loom_h5p_default(), loom_h5p_default(), loom_h5p_default())
        let space = H5Screate_simple(2, &dims, nil)
        let dataset = H5Dcreate2(group, "kernel", loom_h5t_native_float(), space, loom_h5p_default(),
                                 loom_h5p_default(), loom_h5p_default())
        #expect(H5Dwrite(dataset, loom_h5t_native_float(), loom_h5s_all(), loom_h5s_all(), loom_h5p_default(), values) >= 0)
        H5Dclose(dataset); H5Sclose(space); H5Gclose(group); H5Fclose(file)

        let reopened = H5Fopen(path, loom_h5f_acc_rdonly(), loom_h5p_default())
        #expect(reopened >= 0)
        let read = H5Dopen2(reopened, "layers/kernel", loom_h5p_default())
        let readSpace = H5Dget_space(read)
        var readDims: [hsize_t] = [0, 0]
        #expect(H5Sget_simple_extent_dims(readSpace, &readDims, nil) == 2)
        #expect(readDims == [2, 3])
        var back = [Float](repeating: 0, count: 6)
        #expect(H5Dread(read, loom_h5t_native_float(), loom_h5s_all(), loom_h5s_all(), loom_h5p_default(), &back) >= 0)
        #expect(back == values)
        H5Sclose(readSpace); H5Dclose(read); H5Fclose(reopened)
        // A missing file is an error code, not a crash; the error stack is cleared after it.
        #expect(H5Fopen(path + ".missing", loom_h5f_acc_rdonly(), loom_h5p_default()) < 0)
        loom_h5_clear_errors()
    }

    @Test func zlibRoundTrips() {
        let text = Array(String(repeating: "loom weaves tensors ", count: 200).utf8)
        var compressedSize = compressBound(uLong(text.count))
        var compressed = [UInt8](repeating: 0, count: Int(compressedSize))
        #expect(compress(&compressed, &compressedSize, text, uLong(text.count)) == Z_OK)
        #expect(Int(compressedSize) < text.count / 10)
        var restoredSize = uLong(text.count)
        var restored = [UInt8](repeating: 0, count: text.count)
        #expect(uncompress(&restored, &restoredSize, compressed, compressedSize) == Z_OK)
        #expect(restored == text)
    }
}
