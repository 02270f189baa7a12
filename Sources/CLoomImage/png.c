#include "loom_image.h"
#include <png.h>
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

int loom_png_decode(const unsigned char *data, size_t size, int channels,
                    loom_image *out, char *error) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&image, data, size)) {
        snprintf(error, LOOM_IMAGE_ERROR_SIZE, "not a readable PNG: %s", image.message);
        return -1;
    }
    if (channels == 0) channels = PNG_IMAGE_SAMPLE_CHANNELS(image.format);
    if (channels < 1 || channels > 4) {
        png_image_free(&image);
        snprintf(error, LOOM_IMAGE_ERROR_SIZE, "unsupported channel count %d", channels);
        return -1;
    }
    image.format = format_for_channels(channels);
    size_t bytes = PNG_IMAGE_SIZE(image);
    unsigned char *pixels = malloc(bytes ? bytes : 1);
    if (!pixels) {
        png_image_free(&image);
        snprintf(error, LOOM_IMAGE_ERROR_SIZE, "out of memory for %zu bytes", bytes);
        return -1;
    }
    if (!png_image_finish_read(&image, NULL, pixels, 0, NULL)) {
        snprintf(error, LOOM_IMAGE_ERROR_SIZE, "corrupt PNG: %s", image.message);
        free(pixels);
        png_image_free(&image);
        return -1;
    }
    out->pixels = pixels;
    out->width = (int)image.width;
    out->height = (int)image.height;
    out->channels = channels;
    png_image_free(&image);
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
