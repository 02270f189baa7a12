#include "loom_hdf5.h"

hid_t loom_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
hid_t loom_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
hid_t loom_h5t_native_int32(void) { return H5T_NATIVE_INT32; }
hid_t loom_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
hid_t loom_h5t_native_uint8(void) { return H5T_NATIVE_UINT8; }
hid_t loom_h5t_c_s1(void) { return H5T_C_S1; }
hid_t loom_h5p_default(void) { return H5P_DEFAULT; }
hid_t loom_h5s_all(void) { return H5S_ALL; }
unsigned loom_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
unsigned loom_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
unsigned loom_h5f_acc_rdwr(void) { return H5F_ACC_RDWR; }
void loom_h5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
void loom_h5_clear_errors(void) { H5Eclear2(H5E_DEFAULT); }
