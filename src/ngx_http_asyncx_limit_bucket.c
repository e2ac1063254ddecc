
/*
 * Copyright (C) asyncx authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_limit_bucket.h"


void
ngx_http_asyncx_bucket_init(ngx_http_asyncx_bucket_t *b, uint64_t burst,
    ngx_msec_t now)
{
    /* a new bucket starts full: a fresh key may burst at once */
    b->tokens = burst * NGX_HTTP_ASYNCX_TOKEN;
    b->last = now;
}


void
ngx_http_asyncx_bucket_refill(ngx_http_asyncx_bucket_t *b, uint64_t rate,
    uint64_t burst, ngx_msec_t now)
{
    uint64_t          cap;
    ngx_msec_int_t    elapsed;

    /* workers' clocks may differ by a tick: never refill backwards */
    elapsed = (ngx_msec_int_t) (now - b->last);

    if (elapsed <= 0) {
        return;
    }

    if (elapsed > NGX_HTTP_ASYNCX_REFILL_MAX) {
        elapsed = NGX_HTTP_ASYNCX_REFILL_MAX;
    }

    cap = burst * NGX_HTTP_ASYNCX_TOKEN;

    b->tokens += rate * (uint64_t) elapsed;

    if (b->tokens > cap) {
        b->tokens = cap;
    }

    b->last = now;
}


/*
 * Takes one token: 0 if it was there, otherwise the milliseconds until
 * one will be (the bucket is left as it was).
 */

ngx_msec_t
ngx_http_asyncx_bucket_take(ngx_http_asyncx_bucket_t *b, uint64_t rate,
    uint64_t burst, ngx_msec_t now)
{
    ngx_msec_t  due;

    due = ngx_http_asyncx_bucket_due(b, rate, burst, now);

    if (due == 0) {
        b->tokens -= NGX_HTTP_ASYNCX_TOKEN;
    }

    return due;
}


/*
 * Milliseconds until one token is there (0: it is), without taking it.
 */

ngx_msec_t
ngx_http_asyncx_bucket_due(ngx_http_asyncx_bucket_t *b, uint64_t rate,
    uint64_t burst, ngx_msec_t now)
{
    ngx_http_asyncx_bucket_refill(b, rate, burst, now);

    if (b->tokens >= NGX_HTTP_ASYNCX_TOKEN) {
        return 0;
    }

    return (ngx_msec_t) ((NGX_HTTP_ASYNCX_TOKEN - b->tokens + rate - 1)
                         / rate);
}


/* "5r/s" or "30r/m" into milli-r/s; NGX_ERROR for anything else or 0 */

ngx_int_t
ngx_http_asyncx_parse_rate(u_char *p, size_t len, uint64_t *rate)
{
    uint64_t  n, scale;

    if (len < 4 || p[len - 3] != 'r' || p[len - 2] != '/') {
        return NGX_ERROR;
    }

    switch (p[len - 1]) {
    case 's':
        scale = 60;
        break;
    case 'm':
        scale = 1;
        break;
    default:
        return NGX_ERROR;
    }

    if (ngx_http_asyncx_parse_uint(p, len - 3, 1000000, &n) != NGX_OK
        || n == 0)
    {
        return NGX_ERROR;
    }

    /* r/m: n * 1000 / 60 milli-r/s, rounded, never below 1 */
    *rate = (n * 1000 * scale + 30) / 60;

    if (*rate == 0) {
        *rate = 1;
    }

    return NGX_OK;
}
