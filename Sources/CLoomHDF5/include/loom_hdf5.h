#ifndef LOOM_HDF5_H
#define LOOM_HDF5_H
#include <hdf5.h>

// HDF5's type and property constants are macros that call H5open(); Swift cannot import
// them, so these functions hand them over.
hid_t loom_h5t_native_float(void);
hid_t loom_h5t_native_double(void);
hid_t loom_h5t_native_int32(void);
hid_t loom_h5t_native_int64(void);
hid_t loom_h5t_native_uint8(void);
hid_t loom_h5t_c_s1(void);
hid_t loom_h5p_default(void);
hid_t loom_h5s_all(void);
unsigned loom_h5f_acc_trunc(void);
unsigned loom_h5f_acc_rdonly(void);
unsigned loom_h5f_acc_rdwr(void);
/// Silences HDF5's automatic error stack printing: Loom reports errors itself.
void loom_h5_silence_errors(void);
/// Clears the error stack after a failed call.
void loom_h5_clear_errors(void);

#endif
