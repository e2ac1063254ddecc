
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_SSE_KERNEL_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_SSE_KERNEL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_asyncx_dataset.h"


/*
 * The CPU part of each SSE batch, run in a pool thread, and the small
 * parsers of the stream's inputs.  Pure code: no nginx functions, no
 * allocation; callers own every buffer.
 */

#define NGX_HTTP_ASYNCX_SSE_CATEGORIES  NGX_HTTP_ASYNCX_DATASET_WORDS


typedef struct {
    uint64_t     count;
    uint64_t     sum;
    ngx_uint_t   min;
    ngx_uint_t   max;
} ngx_http_asyncx_sse_agg_t;


typedef struct {
    const u_char                *keyword;
    size_t                       keyword_len;

    uint64_t                     start;          /* first record */
    uint64_t                     end;            /* one past the last */

    /* one past the last record looked at: end, or less for a search */
    uint64_t                     scanned;

    /*
     * search: ids of matching records, at most max_matches of them: the
     * search stops after the last one it can record
     */
    uint64_t                    *match_ids;
    ngx_uint_t                   max_matches;
    ngx_uint_t                   nmatches;
    ngx_uint_t                   record_matches; /* 0: count only */

    /* transform: the first record of the batch, transformed */
    u_char                      *sample;
    size_t                       sample_len;
    uint32_t                     checksum;

    /* aggregate: running totals, per category and overall */
    ngx_http_asyncx_sse_agg_t   *categories;
    ngx_http_asyncx_sse_agg_t   *overall;

    /*
     * the running job's mark, set when its client left (NULL: none):
     * looked at before each record; "stopped": the batch ended there,
     * at "scanned"
     */
    ngx_atomic_t                *cancel;
    ngx_uint_t                   stopped;
} ngx_http_asyncx_sse_batch_t;


void ngx_http_asyncx_sse_search_batch(ngx_http_asyncx_sse_batch_t *b);
void ngx_http_asyncx_sse_transform_batch(ngx_http_asyncx_sse_batch_t *b);
void ngx_http_asyncx_sse_aggregate_batch(ngx_http_asyncx_sse_batch_t *b);

uint64_t ngx_http_asyncx_sse_resume_start(uint64_t last_id,
    uint64_t batch_size, uint64_t fail_at);
ngx_int_t ngx_http_asyncx_sse_parse_last_event_id(const u_char *p, size_t len,
    uint64_t *position);


#endif /* _NGX_HTTP_ASYNCX_SSE_KERNEL_H_INCLUDED_ */
