
/*
 * Copyright (C) asyncx authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_metrics_util.h"


/*
 * Upper bounds in microseconds.  A task waits in a pool's queue for
 * microseconds when the pool keeps up and for seconds when it does not;
 * PBKDF2 runs about 0.2 s, a batch of an SSE stream a few ms; a pipeline
 * of the demo takes 1.9 s and a call is bounded by asyncx_call_timeout
 * (5 s by default); a limited request waits up to the zone's timeout
 * (10 s by default).
 */

static const uint64_t  ngx_http_asyncx_le_queue_wait[] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
    250000, 500000, 1000000, 2500000, 10000000
};

static const uint64_t  ngx_http_asyncx_le_run[] = {
    100, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
    500000, 1000000, 2500000, 5000000, 10000000, 30000000
};

static const uint64_t  ngx_http_asyncx_le_pipeline[] = {
    5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 1500000,
    2000000, 2500000, 3000000, 5000000, 10000000, 30000000
};

static const uint64_t  ngx_http_asyncx_le_call[] = {
    1000, 5000, 10000, 25000, 50000, 100000, 200000, 300000, 500000,
    750000, 1000000, 2500000, 5000000, 10000000
};

static const uint64_t  ngx_http_asyncx_le_limit_wait[] = {
    1000, 5000, 10000, 25000, 50000, 100000, 200000, 500000, 1000000,
    2000000, 5000000, 10000000, 30000000
};


static const ngx_http_asyncx_hist_bounds_t  ngx_http_asyncx_hist_layouts[] = {
    { ngx_http_asyncx_le_queue_wait,
      sizeof(ngx_http_asyncx_le_queue_wait) / sizeof(uint64_t) },
    { ngx_http_asyncx_le_run,
      sizeof(ngx_http_asyncx_le_run) / sizeof(uint64_t) },
    { ngx_http_asyncx_le_pipeline,
      sizeof(ngx_http_asyncx_le_pipeline) / sizeof(uint64_t) },
    { ngx_http_asyncx_le_call,
      sizeof(ngx_http_asyncx_le_call) / sizeof(uint64_t) },
    { ngx_http_asyncx_le_limit_wait,
      sizeof(ngx_http_asyncx_le_limit_wait) / sizeof(uint64_t) }
};


const ngx_http_asyncx_hist_bounds_t *
ngx_http_asyncx_hist_bounds(ngx_uint_t layout)
{
    return &ngx_http_asyncx_hist_layouts[layout];
}


/* the first bucket whose bound is >= usec; n is +Inf */

ngx_uint_t
ngx_http_asyncx_hist_index(ngx_uint_t layout, uint64_t usec)
{
    ngx_uint_t                            i;
    const ngx_http_asyncx_hist_bounds_t  *b;

    b = &ngx_http_asyncx_hist_layouts[layout];

    for (i = 0; i < b->n; i++) {
        if (usec <= b->le[i]) {
            break;
        }
    }

    return i;
}


void
ngx_http_asyncx_hist_observe(ngx_http_asyncx_hist_t *h, ngx_uint_t layout,
    uint64_t usec)
{
    (void) ngx_atomic_fetch_add(&h->bucket[ngx_http_asyncx_hist_index(layout,
                                                                      usec)],
                                1);
    (void) ngx_atomic_fetch_add(&h->sum, (ngx_atomic_int_t) usec);
}


/* n in decimal, at least width digits; nothing if it does not fit */

static u_char *
ngx_http_asyncx_prom_uint(u_char *p, u_char *last, uint64_t n,
    size_t width)
{
    u_char  digits[NGX_INT64_LEN];
    size_t  len;

    len = 0;

    do {
        digits[len++] = (u_char) ('0' + n % 10);
        n /= 10;
    } while (n || len < width);

    if ((size_t) (last - p) < len) {
        return p;
    }

    while (len) {
        *p++ = digits[--len];
    }

    return p;
}


/*
 * Microseconds as seconds in the shortest exact form: 250000 is "0.25",
 * 2000000 is "2".  Needs at most NGX_HTTP_ASYNCX_PROM_SECONDS_LEN bytes.
 */

u_char *
ngx_http_asyncx_prom_seconds(u_char *p, u_char *last, uint64_t usec)
{
    uint64_t  frac;
    size_t    width;

    p = ngx_http_asyncx_prom_uint(p, last, usec / 1000000, 1);

    frac = usec % 1000000;

    if (frac == 0 || p == last) {
        return p;
    }

    for (width = 6; frac % 10 == 0; width--) {
        frac /= 10;
    }

    *p++ = '.';

    return ngx_http_asyncx_prom_uint(p, last, frac, width);
}


/*
 * A label value: backslash, double quote and newline escaped as the text
 * format wants, and a byte that is not part of valid UTF-8 (a location
 * name may hold anything) replaced with U+FFFD, so a scrape is always
 * valid UTF-8.
 */

static size_t
ngx_http_asyncx_prom_char_len(u_char *p, size_t len)
{
    size_t  n;

    if (*p < 0x80) {
        return 1;
    }

    n = (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3
        : (*p & 0xf8) == 0xf0 ? 4 : 0;

    if (n == 0 || n > len || ngx_http_asyncx_utf8_valid(p, n) != NGX_OK) {
        return 0;
    }

    return n;
}


size_t
ngx_http_asyncx_prom_label_len(u_char *src, size_t len)
{
    size_t  n, size;

    size = 0;

    while (len) {
        n = ngx_http_asyncx_prom_char_len(src, len);

        if (n == 0) {
            size += 3;
            n = 1;

        } else if (*src == '\\' || *src == '"' || *src == '\n') {
            size += 2;

        } else {
            size += n;
        }

        src += n;
        len -= n;
    }

    return size;
}


u_char *
ngx_http_asyncx_prom_label(u_char *dst, u_char *src, size_t len)
{
    size_t  n;

    while (len) {
        n = ngx_http_asyncx_prom_char_len(src, len);

        if (n == 0) {
            *dst++ = 0xef; *dst++ = 0xbf; *dst++ = 0xbd;
            n = 1;

        } else if (*src == '\\' || *src == '"') {
            *dst++ = '\\';
            *dst++ = *src;

        } else if (*src == '\n') {
            *dst++ = '\\';
            *dst++ = 'n';

        } else {
            dst = ngx_cpymem(dst, src, n);
        }

        src += n;
        len -= n;
    }

    return dst;
}
