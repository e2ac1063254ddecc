
/*
 * Copyright (C) asyncx authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_pipeline_util.h"


/*
 * A stage or call name becomes a JSON key and a token of the mock's
 * "fail=a,b" list: UTF-8, no spaces, controls or list/argument
 * separators, so "fail=배송" can name it in a query string.
 */

ngx_int_t
ngx_http_asyncx_pipeline_check_name(u_char *p, size_t len)
{
    size_t  i;

    if (len == 0 || len > NGX_HTTP_ASYNCX_PIPELINE_NAME_MAX) {
        return NGX_ERROR;
    }

    for (i = 0; i < len; i++) {
        if (p[i] <= 0x20 || p[i] == 0x7f) {
            return NGX_ERROR;
        }

        switch (p[i]) {
        case '=': case ',': case '&': case '?': case '"': case '\\':
        case '/': case '#': case '%': case '+':
            return NGX_ERROR;
        }
    }

    return ngx_http_asyncx_utf8_valid(p, len) == NGX_OK ? NGX_OK : NGX_ERROR;
}


/*
 * A call target: an absolute path, optionally "?args".  Rejects what a
 * subrequest URI must not contain (spaces, controls, fragments) and dot
 * segments, which nginx would not normalize for a subrequest.
 * *path_len is the length before '?'.
 */

ngx_int_t
ngx_http_asyncx_pipeline_check_uri(u_char *p, size_t len, size_t *path_len)
{
    size_t   i, seg;
    u_char  *q;

    if (len == 0 || p[0] != '/') {
        return NGX_ERROR;
    }

    q = NULL;

    for (i = 0; i < len; i++) {
        if (p[i] <= 0x20 || p[i] == 0x7f || p[i] == '#') {
            return NGX_ERROR;
        }

        if (p[i] == '?' && q == NULL) {
            q = p + i;
        }
    }

    *path_len = q ? (size_t) (q - p) : len;

    /* dot segments in the path part */
    seg = 0;

    for (i = 1; i <= *path_len; i++) {
        if (i == *path_len || p[i] == '/') {
            if ((i - seg == 2 && p[seg + 1] == '.')
                || (i - seg == 3 && p[seg + 1] == '.' && p[seg + 2] == '.'))
            {
                return NGX_ERROR;
            }

            seg = i;
        }
    }

    return ngx_http_asyncx_utf8_valid(p, len) == NGX_OK ? NGX_OK : NGX_ERROR;
}


/* "a,b,c" contains name; "*" matches every name */

ngx_int_t
ngx_http_asyncx_pipeline_in_list(u_char *list, size_t len, u_char *name,
    size_t name_len)
{
    u_char  *p, *last, *comma;

    p = list;
    last = list + len;

    while (p < last) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        if ((comma - p == 1 && *p == '*')
            || ((size_t) (comma - p) == name_len
                && ngx_strncmp(p, name, name_len) == 0))
        {
            return 1;
        }

        p = comma + 1;
    }

    return 0;
}


/*
 * rc is what the subrequest was finalized with, status its response
 * status, overflow whether its answer did not fit the capture buffer.
 * rc >= 300 means nginx itself answered (no location, "return 404").
 */

ngx_http_asyncx_call_kind_e
ngx_http_asyncx_pipeline_classify(ngx_int_t rc, ngx_uint_t status,
    ngx_uint_t overflow)
{
    if (overflow) {
        return NGX_HTTP_ASYNCX_CALL_TOO_LARGE;
    }

    if (rc >= 300) {
        return NGX_HTTP_ASYNCX_CALL_STATUS;
    }

    if (rc == NGX_ERROR || status == 0) {
        return NGX_HTTP_ASYNCX_CALL_ERROR;
    }

    if (status >= 200 && status < 300) {
        return NGX_HTTP_ASYNCX_CALL_OK;
    }

    return NGX_HTTP_ASYNCX_CALL_STATUS;
}


const char *
ngx_http_asyncx_pipeline_kind_name(ngx_http_asyncx_call_kind_e kind)
{
    static const char  *names[] = {
        "ok", "status", "timeout", "invalid_json", "too_large", "error"
    };

    if ((ngx_uint_t) kind >= sizeof(names) / sizeof(names[0])) {
        return "error";
    }

    return names[kind];
}


/* "1.9초 (1단계 0.5초 + 2단계 0.6초 + 3단계 0.8초)"; 0 if it does not fit */

size_t
ngx_http_asyncx_pipeline_format_breakdown(u_char *buf, size_t size,
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
