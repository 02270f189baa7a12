#include "loom_image.h"
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static png_uint_32 format_for_channels(int channels) {
    switch (channels) {
    case 1: return PNG_FORMAT_GRAY;
    case 2: return PNG_FORMAT_GA;
    case 3: return PNG_FORMAT_RGB;
    default: return PNG_FORMAT_RGBA;
    }
}

/// Reading from memory, and errors turned into a message and a jump back.
struct loom_png_source {
    const unsigned char *data;
    size_t size;
    size_t offset;
    char *error;
    jmp_buf jump;
};

static void loom_png_read(png_structp png, png_bytep out, png_size_t count) {
    struct loom_png_source *source = png_get_io_ptr(png);
    if (source->size - source->offset < count) png_error(png, "truncated file");
    memcpy(out, source->data + source->offset, count);
    source->offset += count;
}

static void loom_png_error(png_structp png, png_const_charp message) {
    struct loom_png_source *source = png_get_error_ptr(png);
    snprintf(source->error, LOOM_IMAGE_ERROR_SIZE, "corrupt PNG: %s", message);
    longjmp(source->jump, 1);
}

static void loom_png_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

int loom_png_decode(const unsigned char *data, size_t size, int channels,
                    loom_image *out, char *error) {
    if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
        snprintf(error, LOOM_IMAGE_ERROR_SIZE, "not a readable PNG: bad signature");
        return -1;
    }
    if (channels < 0 || channels > 4) {
        snprintf(error, LOOM_IMAGE_ERROR_SIZE, "unsupported channel count %d", channels);
        return -1;
    }
    struct loom_png_source source = { data, size, 0, error };
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &source, loom_png_error, loom_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    unsigned char *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (!png || !info) {
        snprintf(error, LOOM_IMAGE_ERROR_SIZE, "out of memory");
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        return -1;
    }
    unsigned char *const given = out->pixels;
    if (setjmp(source.jump)) {
        png_destroy_read_struct(&png, &info, NULL);
        if (pixels != given) free(pixels);
        free(rows);
        return -1;
    }
    png_set_read_fn(png, &source, loom_png_read);
    png_read_info(png, info);
    png_uint_32 width, height;
    int bit_depth, color_type, interlace;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
    if ((size_t)width * height > ((size_t)1 << 28)) png_error(png, "image larger than Loom decodes");

    // TensorFlow's decode_png transforms, in its order, so pixels match Keras's loaders.
    const int has_tRNS = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    if (channels == 0) {
        channels = color_type == PNG_COLOR_TYPE_PALETTE ? (has_tRNS ? 4 : 3) : png_get_channels(png, info);
    }
    const int has_alpha = (color_type & PNG_COLOR_MASK_ALPHA) != 0;
    if ((channels & 1) == 0) {
        if (!has_alpha) {
            if (color_type == PNG_COLOR_TYPE_PALETTE && has_tRNS) {
                png_set_tRNS_to_alpha(png);
            } else {
                // As TensorFlow: the filler is the largest value of the file's bit depth.
                png_set_add_alpha(png, (1 << bit_depth) - 1, PNG_FILLER_AFTER);
            }
        }
    } else if (has_alpha || has_tRNS) {
        png_set_strip_alpha(png);
    }
    // 16 bits are kept (their precision is the point of such a file), in the machine's order.
    const int sample_bytes = bit_depth > 8 ? 2 : 1;
    if (sample_bytes == 2) png_set_swap(png);
    png_set_packing(png);
    int passes = png_set_interlace_handling(png);
    (void)passes;
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    const int is_gray = !(color_type & PNG_COLOR_MASK_COLOR);
    if (is_gray && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (channels < 3) {
        if (!is_gray) png_set_rgb_to_gray(png, 1, 0.299, 0.587);
    } else if (is_gray) {
        png_set_gray_to_rgb(png);
    }
    png_read_update_info(png, info);
    size_t row_bytes = png_get_rowbytes(png, info);
    if (row_bytes != (size_t)width * (size_t)channels * sample_bytes) png_error(png, "unexpected row layout");
    if (given && out->capacity < row_bytes * height) {
        png_destroy_read_struct(&png, &info, NULL);
        out->width = (int)width;
        out->height = (int)height;
        out->channels = channels;
        out->bytes_per_sample = sample_bytes;
        return LOOM_IMAGE_BUFFER_TOO_SMALL;
    }
    pixels = given ? given : malloc(row_bytes * height ? row_bytes * height : 1);
    rows = malloc(sizeof(png_bytep) * (height ? height : 1));
    if (!pixels || !rows) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + (size_t)y * row_bytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    out->pixels = pixels;
    out->width = (int)width;
    out->height = (int)height;
    out->channels = channels;
    out->bytes_per_sample = sample_bytes;
    return 0;
}

int loom_png_encode(const unsigned char *pixels, int width, int height, int channels,
                    unsigned char **out, size_t *out_size, char *error) {
    if (channels < 1 || channels > 4 || width <= 0 || height <= 0) {
        snprintf(error, LOOM_IMAGE_ERROR_SIZE, "cannot encode %dx%dx%d as PNG", height, width, channels);
        return -1;
    }
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = (png_uint_32)width;
    image.height = (png_uint_32)height;
    image.format = format_for_channels(channels);
    png_alloc_size_t size = 0;
    // First pass measures, second pass writes.
    if (!png_image_write_to_memory(&image, NULL, &size, 0, pixels, 0, NULL)) {
        snprintf(error, LOOM_IMAGE_ERROR_SIZE, "PNG encode failed: %s", image.message);
        return -1;
    }
    unsigned char *buffer = malloc(size);
    if (!buffer) {
        snprintf(error, LOOM_IMAGE_ERROR_SIZE, "out of memory for %zu bytes", (size_t)size);
        return -1;
    }
    if (!png_image_write_to_memory(&image, buffer, &size, 0, pixels, 0, NULL)) {
        snprintf(error, LOOM_IMAGE_ERROR_SIZE, "PNG encode failed: %s", image.message);
        free(buffer);
        return -1;
    }
    *out = buffer;
    *out_size = size;
    return 0;
}

void loom_image_free(void *buffer) { free(buffer); }
