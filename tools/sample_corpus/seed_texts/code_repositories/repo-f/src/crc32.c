/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2023, The packetkit authors
 *
 * Table-driven CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320),
 * the checksum used by zlib, PNG and Ethernet.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static uint32_t crc_table[256];
static int crc_table_ready;

static void crc32_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        crc_table[n] = c;
    }
    crc_table_ready = 1;
}

/* Continue a running CRC with len more bytes; start with crc = 0. */
uint32_t crc32_update(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;

    if (!crc_table_ready) {
        crc32_init();
    }
    crc = ~crc;
    while (len--) {
        crc = crc_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    }
    return ~crc;
}

uint32_t crc32_buf(const void *data, size_t len)
{
    return crc32_update(0, data, len);
}

#ifdef CRC32_MAIN
/* Build with -DCRC32_MAIN to get a tiny `crc32 FILE...` command. */
int main(int argc, char **argv)
{
    static const char check[] = "123456789";
    int status = 0;

    if (crc32_buf(check, strlen(check)) != 0xCBF43926u) {
        fputs("crc32: self-test failed\n", stderr);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        FILE *fp = fopen(argv[i], "rb");
        unsigned char buf[8192];
        uint32_t crc = 0;
        size_t n;

        if (fp == NULL) {
            perror(argv[i]);
            status = 1;
            continue;
        }
        while ((n = fread(buf, 1, sizeof buf, fp)) > 0) {
            crc = crc32_update(crc, buf, n);
        }
        if (ferror(fp)) {
            perror(argv[i]);
            status = 1;
        } else {
            printf("%08x  %s\n", (unsigned)crc, argv[i]);
        }
        fclose(fp);
    }
    return status;
}
#endif
