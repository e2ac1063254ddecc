/*
 * Shared by the libFuzzer targets: they link only the pure sources
 * (PURE_SRCS), so every parser that sees client bytes runs here without
 * nginx, under ASan and UBSan.
 */

#ifndef _FUZZ_COMMON_H_INCLUDED_
#define _FUZZ_COMMON_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <stdlib.h>
#include <string.h>

/* a copy without slack: ASan catches any read past the input */
static u_char *
fuzz_dup(const uint8_t *data, size_t size)
{
    u_char  *p;

    p = malloc(size ? size : 1);
    if (p == NULL) {
        abort();
    }

    if (size) {
        memcpy(p, data, size);
    }

    return p;
}

#define fuzz_assert(cond)  do { if (!(cond)) abort(); } while (0)

#endif
