#ifndef LOOM_IMAGE_H
#define LOOM_IMAGE_H
#include <stddef.h>

/// A decoded image: height x width x channels samples, row-major, each of `bytes_per_sample`
/// bytes (1, or 2 for a 16-bit PNG, in the machine's byte order). Decoders write into `pixels`
/// when it is given (non-NULL) with `capacity` bytes, so the caller's own buffer (a Swift
/// array's) receives the pixels without a copy; if it is too small they return
/// LOOM_IMAGE_BUFFER_TOO_SMALL with width, height and channels set, to call again with a
/// buffer that size. Given NULL, they malloc it (release with loom_image_free).
typedef struct {
    unsigned char *pixels;
    size_t capacity;
    int width;
    int height;
    int channels;
    int bytes_per_sample;
} loom_image;

/// Error text buffer size the shim writes into.
#define LOOM_IMAGE_ERROR_SIZE 256

/// The status a decoder returns when the caller's buffer cannot hold the image.
#define LOOM_IMAGE_BUFFER_TOO_SMALL (-3)

/// Decodes a PNG held in memory. channels: 0 keeps the file's (1 gray, 2 gray+alpha, 3 RGB,
/// 4 RGBA), otherwise 1..4. A 16-bit file keeps its 16 bits. Returns 0 on success, -1 with a
/// message in error.
int loom_png_decode(const unsigned char *data, size_t size, int channels,
                    loom_image *out, char *error);

/// Encodes height x width x channels bytes (channels 1..4) as PNG into a malloc'd buffer.
int loom_png_encode(const unsigned char *pixels, int width, int height, int channels,
                    unsigned char **out, size_t *out_size, char *error);

/// Decodes a JPEG held in memory. channels: 0 keeps the file's (1 gray or 3 RGB; CMYK and
/// YCCK become RGB), otherwise 1 or 3. scale_denom (1, 2, 4 or 8) downscales in the DCT domain.
int loom_jpeg_decode(const unsigned char *data, size_t size, int channels, int scale_denom,
                     loom_image *out, char *error);

/// Encodes height x width x channels bytes (1 gray or 3 RGB) as baseline JPEG, quality 1..100.
int loom_jpeg_encode(const unsigned char *pixels, int width, int height, int channels,
                     int quality, unsigned char **out, size_t *out_size, char *error);

/// Releases a buffer the shim allocated (pixels or encoded bytes).
void loom_image_free(void *buffer);

#endif
