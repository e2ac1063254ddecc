
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_LIMIT_BUCKET_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_LIMIT_BUCKET_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * Token bucket arithmetic in integers, as it lives in shared memory:
 * one token is NGX_HTTP_ASYNCX_TOKEN units; a rate is in requests per
 * 1000 seconds ("milli-r/s"), so 5r/s is 5000 and 30r/m is 500, and one
 * millisecond of a rate R refills R units.  Pure code: unit-tested.
 */

#define NGX_HTTP_ASYNCX_TOKEN       1000000

/* longer idle times than this refill a full bucket anyway */
#define NGX_HTTP_ASYNCX_REFILL_MAX  3600000


typedef struct {
    uint64_t     tokens;        /* units */
    ngx_msec_t   last;          /* when tokens were last refilled */
} ngx_http_asyncx_bucket_t;


void ngx_http_asyncx_bucket_init(ngx_http_asyncx_bucket_t *b,
    uint64_t burst, ngx_msec_t now);
void ngx_http_asyncx_bucket_refill(ngx_http_asyncx_bucket_t *b,
    uint64_t rate, uint64_t burst, ngx_msec_t now);
ngx_msec_t ngx_http_asyncx_bucket_due(ngx_http_asyncx_bucket_t *b,
    uint64_t rate, uint64_t burst, ngx_msec_t now);
ngx_msec_t ngx_http_asyncx_bucket_take(ngx_http_asyncx_bucket_t *b,
    uint64_t rate, uint64_t burst, ngx_msec_t now);

ngx_int_t ngx_http_asyncx_parse_rate(u_char *p, size_t len, uint64_t *rate);


#endif /* _NGX_HTTP_ASYNCX_LIMIT_BUCKET_H_INCLUDED_ */
