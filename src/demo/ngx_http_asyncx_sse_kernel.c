
/*
 * Copyright (C) asyncx authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <string.h>

#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_sse_kernel.h"


void
ngx_http_asyncx_sse_search_batch(ngx_http_asyncx_sse_batch_t *b)
{
    u_char    rec[NGX_HTTP_ASYNCX_RECORD_MAX];
    size_t    len;
    uint64_t  i;

    b->nmatches = 0;
    b->stopped = 0;

    for (i = b->start; i < b->end; i++) {
        if (b->cancel && *b->cancel) {
            b->stopped = 1;
            break;
        }

        len = ngx_http_asyncx_dataset_record(i, rec);

        if (memmem(rec, len, b->keyword, b->keyword_len) == NULL) {
            continue;
        }

        if (!b->record_matches) {
            b->nmatches++;
            continue;
        }

        b->match_ids[b->nmatches++] = i;

        if (b->nmatches == b->max_matches) {
            /* the caller sends these first, then asks for the rest */
            i++;
            break;
        }
    }

    b->scanned = i;
}


/*
 * The transform: upper-case every record and fold it into an FNV-1a
 * checksum, so that the work is real and its result checkable.
 */

void
ngx_http_asyncx_sse_transform_batch(ngx_http_asyncx_sse_batch_t *b)
{
    u_char    rec[NGX_HTTP_ASYNCX_RECORD_MAX];
    size_t    len, k;
    uint32_t  h;
    uint64_t  i;

    h = 2166136261u;
    b->sample_len = 0;
    b->stopped = 0;

    for (i = b->start; i < b->end; i++) {
        if (b->cancel && *b->cancel) {
            b->stopped = 1;
            break;
        }

        len = ngx_http_asyncx_dataset_record(i, rec);

        for (k = 0; k < len; k++) {
            rec[k] = ngx_toupper(rec[k]);
            h = (h ^ rec[k]) * 16777619u;
        }

        if (i == b->start && b->sample) {
            ngx_memcpy(b->sample, rec, len);
            b->sample_len = len;
        }
    }

    b->checksum = h;
    b->scanned = i;
}


static void
ngx_http_asyncx_sse_agg_add(ngx_http_asyncx_sse_agg_t *a, ngx_uint_t v)
{
    if (a->count == 0 || v < a->min) {
        a->min = v;
    }

    if (a->count == 0 || v > a->max) {
        a->max = v;
    }

    a->count++;
    a->sum += v;
}


/* score of each record, grouped by its first word */

void
ngx_http_asyncx_sse_aggregate_batch(ngx_http_asyncx_sse_batch_t *b)
{
    uint64_t    i;
    ngx_uint_t  score;

    b->stopped = 0;

    for (i = b->start; i < b->end; i++) {
        if (b->cancel && *b->cancel) {
            b->stopped = 1;
            break;
        }

        score = ngx_http_asyncx_dataset_score(i);

        ngx_http_asyncx_sse_agg_add(
            &b->categories[ngx_http_asyncx_dataset_first_word(i)], score);
        ngx_http_asyncx_sse_agg_add(b->overall, score);
    }

    b->scanned = i;
}


/*
 * Where a resumed stream starts computing again.  Every event of a
 * record r has an id of 2r + 1 (match) or 2(r + 1) (the progress, batch
 * or stage event that closes a batch ending at r + 1), so a client that
 * saw id X has seen all of record X / 2 - 1 and maybe part of X / 2.
 * The stream redoes the whole batch holding record X / 2, so that
 * batch-wide results (checksum, sample, partial totals) come out as in
 * an uninterrupted run, and the caller drops the events up to X.  An
 * injected failure ends every stream at fail_at, resumed or not.
 */

uint64_t
ngx_http_asyncx_sse_resume_start(uint64_t last_id, uint64_t batch_size,
    uint64_t fail_at)
{
    uint64_t  record;

    record = last_id / 2;

    if (fail_at && record > fail_at) {
        record = fail_at;
    }

    return record - record % batch_size;
}


/*
 * Last-Event-ID as this module writes it: a decimal event position.
 * NGX_OK, or NGX_ERROR for anything else (the caller answers 400).
 */

ngx_int_t
ngx_http_asyncx_sse_parse_last_event_id(const u_char *p, size_t len,
    uint64_t *position)
{
    size_t  i;

    /* browsers send the id back verbatim; tolerate surrounding spaces */
    while (len && (*p == ' ' || *p == '\t')) {
        p++;
        len--;
    }

    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
        len--;
    }

    if (len == 0) {
        return NGX_ERROR;
    }

    for (i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return NGX_ERROR;
        }
    }

    /* a number past any stream's end is one: 204, not "invalid" */
    if (ngx_http_asyncx_parse_uint((u_char *) p, len, (uint64_t) 1 << 62,
                                   position)
        != NGX_OK)
    {
        *position = (uint64_t) 1 << 62;
    }

    return NGX_OK;
}
