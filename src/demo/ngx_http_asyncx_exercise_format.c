
/*
 * Copyright (C) asyncx authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_exercise_format.h"


/* "1.9초": the exercise's durations, in seconds with a Korean unit */

size_t
ngx_http_asyncx_format_seconds(u_char *buf, size_t size, uint64_t usec,
    ngx_uint_t decimals)
{
    static ngx_str_t  unit = ngx_string(NGX_HTTP_ASYNCX_EXERCISE_SECONDS);

    return ngx_http_asyncx_format_duration(buf, size, usec, decimals, &unit);
}


/* "1.9초 (1단계 0.5초 + 2단계 0.6초 + 3단계 0.8초)"; 0 if it does not fit */

size_t
ngx_http_asyncx_exercise_format_breakdown(u_char *buf, size_t size,
    uint64_t total, ngx_str_t *names, uint64_t *usec, ngx_uint_t n,
    ngx_uint_t decimals)
{
    u_char      *p, *last;
    size_t       len;
    ngx_uint_t   i;

    p = buf;
    last = buf + size;

    len = ngx_http_asyncx_format_seconds(p, last - p, total, decimals);
    if (len == 0) {
        return 0;
    }

    p += len;

    for (i = 0; i < n; i++) {
        /* " (" or " + ", the name, a space; then the seconds and NUL */
        if ((size_t) (last - p) < 3 + names[i].len + 1 + 1) {
            return 0;
        }

        p = ngx_cpymem(p, i == 0 ? " (" : " + ", i == 0 ? 2 : 3);
        p = ngx_cpymem(p, names[i].data, names[i].len);
        *p++ = ' ';

        len = ngx_http_asyncx_format_seconds(p, last - p, usec[i], decimals);
        if (len == 0) {
            return 0;
        }

        p += len;
    }

    if (n) {
        if (last - p < 2) {
            return 0;
        }

        *p++ = ')';
        *p = '\0';
    }

    return p - buf;
}
