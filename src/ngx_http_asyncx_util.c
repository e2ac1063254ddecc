
/*
 * Copyright (C) asyncx authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <time.h>
#include <stdio.h>

#include "ngx_http_asyncx_util.h"


/*
 * nginx's cached ngx_current_msec only moves once per event loop turn;
 * call and stage timings need sub-millisecond monotonic time.
 */

uint64_t
ngx_http_asyncx_now_usec(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}


double
ngx_http_asyncx_usec_to_ms(uint64_t usec)
{
    return (double) usec / 1000.0;
}


/* "1.9초": the exercise reports durations in seconds with a Korean unit */

size_t
ngx_http_asyncx_format_seconds(u_char *buf, size_t size, uint64_t usec,
    ngx_uint_t decimals)
{
    int  n;

    if (decimals > 6) {
        decimals = 6;
    }

    n = snprintf((char *) buf, size, "%.*f\xEC\xB4\x88", (int) decimals,
                 (double) usec / 1000000.0);

    if (n < 0 || (size_t) n >= size) {
        return 0;
    }

    return (size_t) n;
}


/* strict decimal: digits only, no sign, no spaces, no overflow past max */

ngx_int_t
ngx_http_asyncx_parse_uint(u_char *p, size_t len, uint64_t max,
    uint64_t *value)
{
    uint64_t  v;

    if (len == 0 || len > 20) {
        return NGX_ERROR;
    }

    v = 0;

    while (len--) {
        if (*p < '0' || *p > '9') {
            return NGX_ERROR;
        }

        /* v * 10 <= max first: "max - v * 10" cannot wrap around */
        if (v > max / 10 || (uint64_t) (*p - '0') > max - v * 10) {
            return NGX_DECLINED;
        }

        v = v * 10 + (uint64_t) (*p++ - '0');
    }

    *value = v;

    return NGX_OK;
}


/*
 * A client-supplied relative path: NGX_OK if it stays below its root
 * lexically; NGX_DECLINED for absolute paths, NUL bytes, ".." segments
 * and backslashes; NGX_ERROR for an empty path.  Symlinks are checked by
 * the caller against the real file system.
 */

ngx_int_t
ngx_http_asyncx_check_rel_path(u_char *p, size_t len)
{
    u_char  *seg, *end;

    if (len == 0) {
        return NGX_ERROR;
    }

    if (p[0] == '/') {
        return NGX_DECLINED;
    }

    end = p + len;
    seg = p;

    for ( ;; ) {
        if (p == end || *p == '/') {
            if (p - seg == 2 && seg[0] == '.' && seg[1] == '.') {
                return NGX_DECLINED;
            }

            if (p == end) {
                break;
            }

            seg = p + 1;

        } else if (*p == '\0' || *p == '\\') {
            return NGX_DECLINED;
        }

        p++;
    }

    return NGX_OK;
}


static const u_char  ngx_http_asyncx_hex[] = "0123456789abcdef";


size_t
ngx_http_asyncx_json_escape_len(u_char *src, size_t size)
{
    size_t  n;

    n = 0;

    while (size--) {
        switch (*src) {
        case '"': case '\\': case '\n': case '\r': case '\t':
            n++;
            break;
        default:
            if (*src < 0x20) {
                n += 5;
            }
        }

        src++;
    }

    return n;
}


/* JSON string body; bytes >= 0x80 pass through (callers check UTF-8) */

u_char *
ngx_http_asyncx_json_escape(u_char *dst, u_char *src, size_t size)
{
    u_char  ch;

    while (size--) {
        ch = *src++;

        switch (ch) {
        case '"': case '\\':
            *dst++ = '\\'; *dst++ = ch;
            break;
        case '\n':
            *dst++ = '\\'; *dst++ = 'n';
            break;
        case '\r':
            *dst++ = '\\'; *dst++ = 'r';
            break;
        case '\t':
            *dst++ = '\\'; *dst++ = 't';
            break;
        default:
            if (ch < 0x20) {
                *dst++ = '\\'; *dst++ = 'u'; *dst++ = '0'; *dst++ = '0';
                *dst++ = ngx_http_asyncx_hex[ch >> 4];
                *dst++ = ngx_http_asyncx_hex[ch & 0xf];

            } else {
                *dst++ = ch;
            }
        }
    }

    return dst;
}


ngx_int_t
ngx_http_asyncx_utf8_valid(u_char *p, size_t len)
{
    u_char    c;
    size_t    n, i;
    uint32_t  cp, min;

    while (len) {
        c = *p;

        if (c < 0x80) {
            p++;
            len--;
            continue;
        }

        if ((c & 0xe0) == 0xc0) {
            n = 1; cp = c & 0x1f; min = 0x80;

        } else if ((c & 0xf0) == 0xe0) {
            n = 2; cp = c & 0x0f; min = 0x800;

        } else if ((c & 0xf8) == 0xf0) {
            n = 3; cp = c & 0x07; min = 0x10000;

        } else {
            return NGX_DECLINED;
        }

        if (len < n + 1) {
            return NGX_DECLINED;
        }

        for (i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80) {
                return NGX_DECLINED;
            }

            cp = (cp << 6) | (p[i] & 0x3f);
        }

        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return NGX_DECLINED;
        }

        p += n + 1;
        len -= n + 1;
    }

    return NGX_OK;
}
