#include "loom_image.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>
#include <jerror.h>

// libjpeg reports fatal errors by calling error_exit, which must not return: we longjmp back
// to the entry point, which Swift cannot do itself.
struct loom_jpeg_error {
    struct jpeg_error_mgr manager;
    jmp_buf jump;
    char *message;
    // Set once the scan data is being decoded: stray bytes there mean the data is corrupt.
    int in_scan;
};

static void loom_jpeg_error_exit(j_common_ptr cinfo) {
    struct loom_jpeg_error *err = (struct loom_jpeg_error *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    snprintf(err->message, LOOM_IMAGE_ERROR_SIZE, "%s", text);
    longjmp(err->jump, 1);
}

// Nothing is written to stderr.
static void loom_jpeg_output_message(j_common_ptr cinfo) { (void)cinfo; }

// libjpeg only warns about a file cut short (it pads the rest gray) or corrupt entropy-coded
// data, and goes on: such a file is corrupt, as Pillow and TensorFlow say, so these warnings
// end the decode as errors. Others (an unknown JFIF revision, a bad ICC marker, stray bytes
// between header markers) leave the pixels intact and stay silent.
static void loom_jpeg_emit_message(j_common_ptr cinfo, int msg_level) {
    struct loom_jpeg_error *err = (struct loom_jpeg_error *)cinfo->err;
    if (msg_level != -1) return;
    cinfo->err->num_warnings++;
    switch (cinfo->err->msg_code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_ARITH_BAD_CODE:
    case JWRN_MUST_RESYNC:
    case JWRN_NOT_SEQUENTIAL:
    case JWRN_BOGUS_PROGRESSION:
        loom_jpeg_error_exit(cinfo);
        break;
    case JWRN_EXTRANEOUS_DATA:
        if (err->in_scan) loom_jpeg_error_exit(cinfo);
        break;
    default:
        break;
    }
}

int loom_jpeg_decode(const unsigned char *data, size_t size, int channels, int scale_denom,
                     loom_image *out, char *error) {
    struct jpeg_decompress_struct cinfo;
    struct loom_jpeg_error jerr;
    unsigned char *volatile pixels = NULL;
    unsigned char *volatile row = NULL;
    if (channels != 0 && channels != 1 && channels != 3) {
        snprintf(error, LOOM_IMAGE_ERROR_SIZE, "JPEG decodes to 1 or 3 channels, not %d", channels);
        return -1;
    }
    if (scale_denom != 1 && scale_denom != 2 && scale_denom != 4 && scale_denom != 8) {
        snprintf(error, LOOM_IMAGE_ERROR_SIZE, "scale_denom must be 1, 2, 4 or 8, not %d", scale_denom);
        return -1;
    }
    cinfo.err = jpeg_std_error(&jerr.manager);
    jerr.manager.error_exit = loom_jpeg_error_exit;
    jerr.manager.output_message = loom_jpeg_output_message;
    jerr.manager.emit_message = loom_jpeg_emit_message;
    jerr.message = error;
    jerr.in_scan = 0;
    unsigned char *const given = out->pixels;
    if (setjmp(jerr.jump)) {
        jpeg_destroy_decompress(&cinfo);
        if (pixels != given) free(pixels);
        free(row);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);

    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    if (channels == 0) channels = cinfo.num_components == 1 ? 1 : 3;
    if (cmyk) {
        cinfo.out_color_space = JCS_CMYK;
    } else {
        cinfo.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    }
    cinfo.scale_num = 1;
    cinfo.scale_denom = (unsigned)scale_denom;
    // TensorFlow's decode_image (what Keras's image loaders use) decodes with the fast integer
    // IDCT and fancy upsampling: the same settings give the same pixels.
    cinfo.dct_method = JDCT_IFAST;
    cinfo.do_fancy_upsampling = TRUE;
    jerr.in_scan = 1;
    jpeg_start_decompress(&cinfo);

    size_t width = cinfo.output_width, height = cinfo.output_height;
    int components = cinfo.output_components;
    if (given && out->capacity < width * height * (size_t)channels) {
        jpeg_destroy_decompress(&cinfo);
        out->width = (int)width;
        out->height = (int)height;
        out->channels = channels;
        out->bytes_per_sample = 1;
        return LOOM_IMAGE_BUFFER_TOO_SMALL;
    }
    pixels = given ? given : malloc(width * height * (size_t)channels);
    // Gray and RGB scanlines go straight to their rows; CMYK ones through a row buffer.
    row = cmyk ? malloc(width * (size_t)components) : NULL;
    if (!pixels || (cmyk && !row)) {
        snprintf(error, LOOM_IMAGE_ERROR_SIZE, "out of memory for a %zux%zu image", height, width);
        jpeg_destroy_decompress(&cinfo);
        if (pixels != given) free(pixels);
        free(row);
        return -1;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        size_t y = cinfo.output_scanline;
        unsigned char *dst = pixels + y * width * (size_t)channels;
        JSAMPROW rows[1] = { (JSAMPROW)(cmyk ? row : dst) };
        jpeg_read_scanlines(&cinfo, rows, 1);
        if (!cmyk) continue;
        // Adobe writes CMYK inverted: each stored byte is 255 - ink, so RGB = stored * K / 255
        // (rounded down, as TensorFlow does).
        for (size_t x = 0; x < width; x++) {
            unsigned c = row[4 * x], m = row[4 * x + 1], yy = row[4 * x + 2], k = row[4 * x + 3];
            unsigned r = c * k / 255, g = m * k / 255, b = yy * k / 255;
            if (channels == 3) {
                dst[3 * x] = (unsigned char)r;
                dst[3 * x + 1] = (unsigned char)g;
                dst[3 * x + 2] = (unsigned char)b;
            } else {
                dst[x] = (unsigned char)((299 * r + 587 * g + 114 * b + 500) / 1000);
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    out->pixels = pixels;
    out->width = (int)width;
    out->height = (int)height;
    out->channels = channels;
    out->bytes_per_sample = 1;
    return 0;
}

int loom_jpeg_encode(const unsigned char *pixels, int width, int height, int channels,
                     int quality, unsigned char **out, size_t *out_size, char *error) {
    if ((channels != 1 && channels != 3) || width <= 0 || height <= 0) {
        snprintf(error, LOOM_IMAGE_ERROR_SIZE, "cannot encode %dx%dx%d as JPEG", height, width, channels);
        return -1;
    }
    if (quality < 1 || quality > 100) {
        snprintf(error, LOOM_IMAGE_ERROR_SIZE, "JPEG quality must be 1...100, not %d", quality);
        return -1;
    }
    struct jpeg_compress_struct cinfo;
    struct loom_jpeg_error jerr;
    unsigned char *buffer = NULL;
    unsigned long size = 0;
    cinfo.err = jpeg_std_error(&jerr.manager);
    jerr.manager.error_exit = loom_jpeg_error_exit;
    jerr.manager.output_message = loom_jpeg_output_message;
    jerr.message = error;
    if (setjmp(jerr.jump)) {
        jpeg_destroy_compress(&cinfo);
        free(buffer);
        return -1;
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &buffer, &size);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = channels;
    cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW rows[1] = { (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * (size_t)width * (size_t)channels) };
        jpeg_write_scanlines(&cinfo, rows, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    *out = buffer;
    *out_size = size;
    return 0;
}
