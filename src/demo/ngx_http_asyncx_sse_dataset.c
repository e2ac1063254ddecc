
/*
 * Copyright (C) asyncx authors
 *
 * The exercise's stream (problem 4), a source of asyncx_sse: search,
 * transform and aggregate over the synthetic data set, one batch at a
 * time, with ?fail_at= to inject a failure.  Each batch
 * is a job in the CPU pool; the event loop only formats its events and
 * sends them.  The next job is posted only once everything before it has
 * left for the socket, and a search job stops after the matches one
 * output buffer holds, so what a stream keeps in memory is bounded
 * whatever data_size and batch_size the client asks for.
 *
 * Event ids are positions in the data: 2 * records done for progress,
 * batch and stage events, 2 * record + 1 for a match, 2 * total + 1 for
 * "complete".  A reconnect with Last-Event-ID redoes the batch holding
 * that event and sends exactly the events after it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <cjson/cJSON.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_http.h"
#include "ngx_http_asyncx_dataset.h"
#include "ngx_http_asyncx_sse_kernel.h"
#include "ngx_http_asyncx_sse_event.h"
#include "ngx_http_asyncx_sse_stream.h"
#include "ngx_http_asyncx_sse_dataset.h"


/* the longest match, progress, batch or stage event, id line included */
#define NGX_HTTP_ASYNCX_SSE_EVENT_MAX   (NGX_HTTP_ASYNCX_RECORD_MAX + 256)

/* "complete" of the aggregate: one object per category */
#define NGX_HTTP_ASYNCX_SSE_AGG_MAX                                          \
    (NGX_HTTP_ASYNCX_SSE_CATEGORIES * 128 + 512)

#define NGX_HTTP_ASYNCX_SSE_KEYWORD_MAX   64

/* matches per search job: a batch of 100000 hits goes out in parts */
#define NGX_HTTP_ASYNCX_SSE_MATCHES_MAX   128

/* the largest output buffer, whatever the batch (about 58 KiB) */
#define NGX_HTTP_ASYNCX_SSE_OUT_MAX                                          \
    ((NGX_HTTP_ASYNCX_SSE_MATCHES_MAX + 3) * NGX_HTTP_ASYNCX_SSE_EVENT_MAX  \
     + NGX_HTTP_ASYNCX_SSE_AGG_MAX)

/* records a resume rebuilds per job: a client that leaves stops it soon */
#define NGX_HTTP_ASYNCX_SSE_PREFIX_CHUNK  100000


struct ngx_http_asyncx_sse_ctx_s {
    ngx_http_asyncx_sse_stream_t   stream;
    ngx_http_request_t            *request;
    ngx_http_asyncx_job_t         *job;
    ngx_uint_t                     mode;

    /* owned by the thread while the job runs */
    ngx_http_asyncx_sse_batch_t    batch;
    ngx_atomic_t                  *records;      /* done by all streams */
    ngx_http_asyncx_sse_agg_t      categories[NGX_HTTP_ASYNCX_SSE_CATEGORIES];
    ngx_http_asyncx_sse_agg_t      overall;
    u_char                         sample[NGX_HTTP_ASYNCX_RECORD_MAX];

    ngx_str_t                      keyword;
    uint64_t                       total;
    uint64_t                       next;         /* first record not done */
    uint64_t                       prefix_end;   /* resume: totals only */
    uint64_t                       batch_end;
    uint64_t                       last_id;      /* sent before a resume */
    uint64_t                       fail_at;      /* 0: no injected error */
    uint64_t                       matches;
    ngx_uint_t                     batch_size;
    ngx_uint_t                     events;
    uint64_t                       started_at;

    /* one output buffer, reused: it is free whenever a batch is posted */
    ngx_buf_t                      out;
    size_t                         out_size;

    unsigned                       batch_open:1; /* batch_end is set */
    unsigned                       failing:1;
};


static ngx_int_t ngx_http_asyncx_sse_dataset_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_asyncx_sse_args(ngx_http_request_t *r,
    ngx_http_asyncx_sse_ctx_t *ctx, ngx_http_asyncx_sse_conf_t *scf,
    ngx_int_t *rc);
static ngx_int_t ngx_http_asyncx_sse_post(ngx_http_asyncx_sse_stream_t *s);
static ngx_int_t ngx_http_asyncx_sse_run(void *data);
static void ngx_http_asyncx_sse_write_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_asyncx_sse_format(ngx_http_asyncx_sse_stream_t *s);
static ngx_int_t ngx_http_asyncx_sse_fail(ngx_http_asyncx_sse_stream_t *s,
    ngx_int_t rc);
static u_char *ngx_http_asyncx_sse_put(u_char *p, uint64_t id, u_char *data,
    u_char *last);
static u_char *ngx_http_asyncx_sse_agg(u_char *p,
    ngx_http_asyncx_sse_agg_t *a);
static void ngx_http_asyncx_sse_cleanup(void *data);


static char  *ngx_http_asyncx_sse_dataset_args[] = {
    "data_size", "fail_at", NULL
};

static ngx_http_asyncx_sse_stream_ops_t  ngx_http_asyncx_sse_dataset_ops = {
    ngx_http_asyncx_sse_format, ngx_http_asyncx_sse_post,
    ngx_http_asyncx_sse_fail
};

ngx_http_asyncx_sse_source_t  ngx_http_asyncx_sse_dataset_source = {
    ngx_string("dataset"), ngx_http_asyncx_sse_dataset_handler,
    ngx_http_asyncx_sse_dataset_args,
    "data_size and fail_at are for the data set, not a file"
};


/*
 * One function: the stream's set-up in the order its cleanups must be
 * registered (ctx, pool cleanup, job, header).
 */

static ngx_int_t
ngx_http_asyncx_sse_dataset_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_pool_cleanup_t          *cln;
    ngx_http_asyncx_ctx_t       *actx;
    ngx_http_asyncx_sse_ctx_t   *ctx;
    ngx_http_asyncx_loc_conf_t  *alcf;

    if (ngx_http_asyncx_get_only(r, &rc) != NGX_OK) {
        return rc;
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_asyncx_module);

    actx = ngx_http_asyncx_get_ctx(r);
    if (actx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_asyncx_sse_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    actx->sse = ctx;
    ctx->request = r;
    ctx->mode = alcf->sse.mode;
    ctx->started_at = ngx_http_asyncx_now_usec();

    ngx_http_asyncx_sse_stream_init(&ctx->stream, r, ctx,
                                    &ngx_http_asyncx_sse_dataset_ops);

    if (ngx_http_asyncx_sse_args(r, ctx, &alcf->sse, &rc) != NGX_OK) {
        /* refused before any stream starts: rc is the JSON error's */
        return rc;
    }

    if (ctx->last_id > 2 * ctx->total) {
        /* the client saw "complete": 204 tells EventSource to stop */
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "asyncx sse: Last-Event-ID past the end of the stream, "
                      "answering 204");
        r->header_only = 1;
        r->headers_out.status = NGX_HTTP_NO_CONTENT;
        r->headers_out.content_length_n = 0;
        return ngx_http_send_header(r);
    }

    ctx->records = &ngx_http_asyncx_stats()->counters[
                                           NGX_HTTP_ASYNCX_STAT_SSE_RECORDS];
    ctx->batch.keyword = ctx->keyword.data;
    ctx->batch.keyword_len = ctx->keyword.len;
    ctx->batch.categories = ctx->categories;
    ctx->batch.overall = &ctx->overall;
    ctx->batch.sample = ctx->sample;

    if (ctx->mode == NGX_HTTP_ASYNCX_SSE_SEARCH) {
        ctx->batch.max_matches = NGX_HTTP_ASYNCX_SSE_MATCHES_MAX;
        ctx->batch.match_ids = ngx_palloc(r->pool,
                                          NGX_HTTP_ASYNCX_SSE_MATCHES_MAX
                                          * sizeof(uint64_t));
        if (ctx->batch.match_ids == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    ctx->job = ngx_http_asyncx_job_create(r, NGX_HTTP_ASYNCX_POOL_CPU);
    if (ctx->job == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /*
     * a batch still queued when the client leaves is skipped, a running
     * one stops at the next record
     */
    if (ngx_http_asyncx_job_skip_if_client_leaves(ctx->job) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->batch.cancel = &ctx->job->cancelled;

    ctx->stream.jobs[NGX_HTTP_ASYNCX_POOL_CPU] = ctx->job;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->method == NGX_HTTP_HEAD) {
        return ngx_http_asyncx_send_event_stream_header(r);
    }

    r->write_event_handler = ngx_http_asyncx_sse_write_handler;

    /* posted before the header goes out: a full queue is still a 503 */
    rc = ngx_http_asyncx_sse_stream_post(&ctx->stream);

    if (rc == NGX_BUSY) {
        return ngx_http_asyncx_job_reject(r);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_asyncx_sse_cleanup;
    cln->data = ctx;

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "asyncx sse: stream mode %ui, records %uL..%uL, batch %ui",
                   ctx->mode, ctx->next, ctx->total, ctx->batch_size);

    rc = ngx_http_asyncx_sse_stream_start(&ctx->stream);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        /* the job still holds the request; nginx frees it afterwards */
        return rc;
    }

    /* a client that goes away is noticed while the stream waits */
    ngx_http_asyncx_watch_client(r);

    r->main->count++;

    return NGX_DONE;
}


static ngx_int_t
ngx_http_asyncx_sse_args(ngx_http_request_t *r, ngx_http_asyncx_sse_ctx_t *ctx,
    ngx_http_asyncx_sse_conf_t *scf, ngx_int_t *rc)
{
    uint64_t    data_size, batch_size, fail_at, last_id;
    ngx_int_t   n;
    ngx_str_t   value;

    data_size = (ctx->mode == NGX_HTTP_ASYNCX_SSE_TRANSFORM) ? 1000 : 10000;

    if (data_size > scf->max_data_size) {
        data_size = scf->max_data_size;
    }

    n = ngx_http_asyncx_arg_uint(r, "data_size", 1, scf->max_data_size,
                                  &data_size);
    if (n == NGX_ERROR) {
        *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          NGX_LOG_INFO,
                                          "data_size must be an integer "
                                          "between 1 and %ui",
                                          scf->max_data_size);
        return NGX_ERROR;
    }

    batch_size = (ctx->mode == NGX_HTTP_ASYNCX_SSE_TRANSFORM)
                 ? 100 : scf->batch_size;

    n = ngx_http_asyncx_arg_uint(r, "batch_size", 1,
                                  NGX_HTTP_ASYNCX_SSE_BATCH_MAX, &batch_size);
    if (n == NGX_ERROR) {
        *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          NGX_LOG_INFO,
                                          "batch_size must be an integer "
                                          "between 1 and %d",
                                          NGX_HTTP_ASYNCX_SSE_BATCH_MAX);
        return NGX_ERROR;
    }

    fail_at = 0;

    n = ngx_http_asyncx_arg_uint(r, "fail_at", 1, data_size - 1, &fail_at);
    if (n == NGX_ERROR || (n == NGX_OK && data_size < 2)) {
        *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          NGX_LOG_INFO,
                                          "fail_at must be an integer "
                                          "between 1 and data_size - 1");
        return NGX_ERROR;
    }

    if (ctx->mode == NGX_HTTP_ASYNCX_SSE_SEARCH) {
        if (ngx_http_asyncx_arg(r, "keyword", &ctx->keyword) != NGX_OK
            || ctx->keyword.len == 0)
        {
            *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              NGX_LOG_INFO,
                                              "keyword is required");
            return NGX_ERROR;
        }

        if (ctx->keyword.len > NGX_HTTP_ASYNCX_SSE_KEYWORD_MAX) {
            *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              NGX_LOG_INFO,
                                              "keyword is longer than %d "
                                              "bytes",
                                              NGX_HTTP_ASYNCX_SSE_KEYWORD_MAX);
            return NGX_ERROR;
        }
    }

    ctx->total = data_size;
    ctx->batch_size = (ngx_uint_t) batch_size;
    ctx->fail_at = fail_at;

    if (ngx_http_asyncx_last_event_id(r, &value) == NGX_OK) {

        if (ngx_http_asyncx_sse_parse_last_event_id(value.data, value.len,
                                                    &last_id)
            != NGX_OK)
        {
            *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              NGX_LOG_INFO,
                                              "invalid Last-Event-ID \"%V\"",
                                              &value);
            return NGX_ERROR;
        }

        ctx->last_id = last_id;
    }

    ctx->prefix_end = ngx_http_asyncx_sse_resume_start(ctx->last_id,
                                                       ctx->batch_size,
                                                       ctx->fail_at);

    /* a resumed search or aggregate first rebuilds its totals silently */
    ctx->next = (ctx->mode == NGX_HTTP_ASYNCX_SSE_TRANSFORM)
                ? ctx->prefix_end : 0;

    return NGX_OK;
}


/*
 * Hands the next job to the CPU pool: a part of the resume prefix, the
 * next batch, or the rest of a search batch that found more matches than
 * one job sends.
 */

static ngx_int_t
ngx_http_asyncx_sse_post(ngx_http_asyncx_sse_stream_t *s)
{
    ngx_http_asyncx_sse_ctx_t *ctx = s->data;

    uint64_t                      end;
    ngx_int_t                     rc;
    ngx_http_asyncx_sse_batch_t  *b;

    b = &ctx->batch;

    if (ctx->next < ctx->prefix_end) {
        end = ngx_min(ctx->prefix_end,
                      ctx->next + NGX_HTTP_ASYNCX_SSE_PREFIX_CHUNK);
        b->record_matches = 0;

    } else {
        if (!ctx->batch_open) {
            /* batches stay aligned to batch_size, also after a resume */
            end = (ctx->next / ctx->batch_size + 1) * ctx->batch_size;

            if (end > ctx->total) {
                end = ctx->total;
            }

            if (ctx->fail_at && ctx->fail_at >= ctx->next
                && ctx->fail_at < end)
            {
                end = ctx->fail_at;
                ctx->failing = 1;
            }

            ctx->batch_end = end;
            ctx->batch_open = 1;
        }

        end = ctx->batch_end;
        b->record_matches = 1;
    }

    b->start = ctx->next;
    b->end = end;

    rc = ngx_http_asyncx_job_post(ctx->job, ngx_http_asyncx_sse_run, ctx);

    if (rc == NGX_OK) {
        ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_SSE_JOBS, 1);
    }

    return rc;
}


static ngx_int_t
ngx_http_asyncx_sse_run(void *data)
{
    ngx_http_asyncx_sse_ctx_t *ctx = data;

    switch (ctx->mode) {

    case NGX_HTTP_ASYNCX_SSE_SEARCH:
        ngx_http_asyncx_sse_search_batch(&ctx->batch);
        break;

    case NGX_HTTP_ASYNCX_SSE_TRANSFORM:
        ngx_http_asyncx_sse_transform_batch(&ctx->batch);
        break;

    default: /* NGX_HTTP_ASYNCX_SSE_AGGREGATE */
        ngx_http_asyncx_sse_aggregate_batch(&ctx->batch);
        break;
    }

    /* the work done, even for a client that is gone meanwhile */
    (void) ngx_atomic_fetch_add(ctx->records,
                                ctx->batch.scanned - ctx->batch.start);

    return ctx->batch.stopped ? NGX_HTTP_ASYNCX_JOB_STOPPED : NGX_OK;
}


/* the stream's state machine is the shared one (sse_stream.c) */

static void
ngx_http_asyncx_sse_write_handler(ngx_http_request_t *r)
{
    ngx_http_asyncx_ctx_t  *actx;

    actx = ngx_http_get_module_ctx(r, ngx_http_asyncx_module);

    ngx_http_asyncx_sse_stream_write(&actx->sse->stream);
}


static ngx_int_t
ngx_http_asyncx_sse_fail(ngx_http_asyncx_sse_stream_t *s, ngx_int_t rc)
{
    ngx_http_asyncx_sse_ctx_t *ctx = s->data;

    ngx_chain_t                  *cl;
    ngx_http_request_t           *r;
    ngx_http_asyncx_sse_event_t   ev;

    static u_char  busy[] = "{\"type\": \"error\", \"message\": "
                            "\"server busy: thread pool queue is full\"}";

    r = s->request;

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "asyncx sse: cannot post the next batch, %s",
                  rc == NGX_BUSY ? "thread pool queue is full" : "task error");

    ngx_memzero(&ev, sizeof(ngx_http_asyncx_sse_event_t));
    ev.data = busy;
    ev.len = sizeof(busy) - 1;

    cl = ngx_http_asyncx_sse_stream_event(s, &ev);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf->last_buf = 1;
    s->done = 1;

    ngx_http_asyncx_sse_stream_release(s);

    ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_SSE_ERRORS, 1);
    ngx_http_asyncx_metrics_stream(ctx->mode, NGX_HTTP_ASYNCX_STREAM_ERRORS, 1);

    return ngx_http_output_filter(r, cl);
}


/*
 * Formats the events of the job just done into the stream's buffer,
 * leaving out those a resuming client has seen (ids up to last_id).
 * NGX_OK, NGX_DECLINED (nothing to send) or NGX_ERROR.
 *
 * One function: the events of one job in id order, with the resume filter
 * applied to each; one emitter per event kind is the next split.
 */

static ngx_int_t
ngx_http_asyncx_sse_format(ngx_http_asyncx_sse_stream_t *s)
{
    ngx_http_asyncx_sse_ctx_t *ctx = s->data;

    ngx_http_request_t           *r;
    u_char                        rec[NGX_HTTP_ASYNCX_RECORD_MAX];
    u_char                        took[NGX_HTTP_ASYNCX_SECONDS_LEN];
    ngx_http_asyncx_main_conf_t  *amcf;
    u_char                        ev[NGX_HTTP_ASYNCX_SSE_AGG_MAX
                                     + NGX_HTTP_ASYNCX_SSE_EVENT_MAX];
    u_char                       *p, *q, *start;
    size_t                        need, len, wlen;
    const u_char                 *word;
    uint64_t                      usec, m, id;
    ngx_buf_t                    *b;
    ngx_uint_t                    i, nevents, closed;
    ngx_http_asyncx_sse_batch_t  *bt;

    r = s->request;
    bt = &ctx->batch;
    ctx->next = bt->scanned;

    if (!bt->record_matches) {
        /* a part of the resume prefix: totals only */
        ctx->matches += bt->nmatches;
        return NGX_DECLINED;
    }

    closed = (ctx->next == ctx->batch_end);

    /* at most NGX_HTTP_ASYNCX_SSE_OUT_MAX: nmatches <= max_matches */
    need = (bt->nmatches + 3) * NGX_HTTP_ASYNCX_SSE_EVENT_MAX;

    if (ctx->mode == NGX_HTTP_ASYNCX_SSE_AGGREGATE) {
        need += NGX_HTTP_ASYNCX_SSE_AGG_MAX;
    }

    b = &ctx->out;

    /* grow only for more matches: total memory stays under 2 * OUT_MAX */
    if (need > ctx->out_size) {
        len = ngx_min(ngx_max(need, 2 * ctx->out_size),
                      NGX_HTTP_ASYNCX_SSE_OUT_MAX);

        start = ngx_palloc(r->pool, len);
        if (start == NULL) {
            return NGX_ERROR;
        }

        ctx->out_size = len;
        b->start = start;
        b->end = start + len;
    }

    p = b->start;
    nevents = 0;
    id = 2 * ctx->batch_end;

    switch (ctx->mode) {

    case NGX_HTTP_ASYNCX_SSE_SEARCH:

        for (i = 0; i < bt->nmatches; i++) {
            m = bt->match_ids[i];

            if (2 * m + 1 <= ctx->last_id) {
                continue;
            }

            len = ngx_http_asyncx_dataset_record(m, rec);

            q = ngx_sprintf(ev, "{\"type\": \"match\", "
                            "\"item\": {\"id\": %uL, \"content\": \"%*s\"}}",
                            m, len, rec);
            p = ngx_http_asyncx_sse_put(p, 2 * m + 1, ev, q);
            nevents++;
        }

        ctx->matches += bt->nmatches;

        if (closed && !ctx->failing && id > ctx->last_id) {
            q = ngx_sprintf(ev, "{\"type\": \"progress\", "
                            "\"processed\": %uL, \"total\": %uL, "
                            "\"matches\": %uL}",
                            ctx->batch_end, ctx->total, ctx->matches);
            p = ngx_http_asyncx_sse_put(p, id, ev, q);
            nevents++;
        }

        break;

    case NGX_HTTP_ASYNCX_SSE_TRANSFORM:

        /* one job per batch: bt->start is where the batch starts */
        if (bt->end > bt->start && id > ctx->last_id) {
            q = ngx_sprintf(ev, "{\"type\": \"batch\", "
                            "\"batch_num\": %uL, \"items_processed\": %uL, "
                            "\"checksum\": \"%08xD\", \"sample\": \"%*s\"}",
                            (bt->end + ctx->batch_size - 1) / ctx->batch_size,
                            bt->end, bt->checksum, bt->sample_len,
                            bt->sample);
            p = ngx_http_asyncx_sse_put(p, id, ev, q);
            nevents++;
        }

        break;

    default: /* NGX_HTTP_ASYNCX_SSE_AGGREGATE */

        if (bt->end > bt->start && id > ctx->last_id) {
            q = ngx_sprintf(ev, "{\"type\": \"stage\", "
                            "\"stage\": %uL, \"processed\": %uL, "
                            "\"total\": %uL, \"partial\": ",
                            (bt->end + ctx->batch_size - 1) / ctx->batch_size,
                            bt->end, ctx->total);
            q = ngx_http_asyncx_sse_agg(q, &ctx->overall);
            *q++ = '}';
            p = ngx_http_asyncx_sse_put(p, id, ev, q);
            nevents++;
        }

        break;
    }

    if (closed) {
        ctx->batch_open = 0;
    }

    if (closed && ctx->failing) {
        q = ngx_sprintf(ev, "{\"type\": \"error\", \"message\": "
                        "\"injected failure at record %uL\"}", ctx->fail_at);
        p = ngx_http_asyncx_sse_put(p, 0, ev, q);
        nevents++;
        ctx->stream.done = 1;

        ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_SSE_ERRORS, 1);
        ngx_http_asyncx_metrics_stream(ctx->mode,
                                       NGX_HTTP_ASYNCX_STREAM_ERRORS, 1);
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "asyncx sse: injected failure at record %uL, "
                      "stream ends with an error event", ctx->fail_at);

    } else if (closed && ctx->batch_end == ctx->total) {
        usec = ngx_http_asyncx_now_usec() - ctx->started_at;
        amcf = ngx_http_get_module_main_conf(r, ngx_http_asyncx_module);
        len = ngx_http_asyncx_format_duration(took, sizeof(took), usec, 2,
                                              &amcf->duration_unit);

        q = ngx_cpymem(ev, "{\"type\": \"complete\", ",
                       sizeof("{\"type\": \"complete\", ") - 1);

        switch (ctx->mode) {

        case NGX_HTTP_ASYNCX_SSE_SEARCH:
            q = ngx_sprintf(q, "\"total_matches\": %uL, ", ctx->matches);
            break;

        case NGX_HTTP_ASYNCX_SSE_TRANSFORM:
            q = ngx_sprintf(q, "\"total_processed\": %uL, ", ctx->total);
            break;

        default:
            q = ngx_sprintf(q, "\"total_processed\": %uL, \"result\": ",
                            ctx->total);
            q = ngx_http_asyncx_sse_agg(q, &ctx->overall);
            q = ngx_sprintf(q, ", \"by_category\": {");

            for (i = 0; i < NGX_HTTP_ASYNCX_SSE_CATEGORIES; i++) {
                if (ctx->categories[i].count == 0) {
                    continue;
                }

                word = ngx_http_asyncx_dataset_word(i, &wlen);
                q = ngx_sprintf(q, "%s\"%*s\": ", q[-1] == '{' ? "" : ", ",
                                wlen, word);
                q = ngx_http_asyncx_sse_agg(q, &ctx->categories[i]);
            }

            q = ngx_sprintf(q, "}, ");
            break;
        }

        q = ngx_sprintf(q, "\"total_time\": \"%*s\", \"total_time_ms\": %.3f}",
                        len, took, ngx_http_asyncx_usec_to_ms(usec));
        p = ngx_http_asyncx_sse_put(p, 2 * ctx->total + 1, ev, q);
        nevents++;
        ctx->stream.done = 1;

        ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_SSE_COMPLETED, 1);
        ngx_http_asyncx_metrics_stream(ctx->mode,
                                       NGX_HTTP_ASYNCX_STREAM_COMPLETED, 1);
    }

    if (nevents == 0) {
        return NGX_DECLINED;
    }

    ctx->events += nevents;
    ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_SSE_EVENTS, nevents);
    ngx_http_asyncx_metrics_stream(ctx->mode,
                                   NGX_HTTP_ASYNCX_STREAM_EVENTS, nevents);

    b->pos = b->start;
    b->last = p;
    b->temporary = 1;
    b->flush = 1;
    b->last_buf = ctx->stream.done;
    b->last_in_chain = 1;

    s->out.buf = b;
    s->out.next = NULL;

    return NGX_OK;
}


/* one event through the encoder every stream uses; id 0: none */

static u_char *
ngx_http_asyncx_sse_put(u_char *p, uint64_t id, u_char *data, u_char *last)
{
    u_char                       buf[NGX_INT64_LEN];
    ngx_http_asyncx_sse_event_t  ev;

    ev.id.data = buf;
    ev.id.len = id ? (size_t) (ngx_sprintf(buf, "%uL", id) - buf) : 0;
    ngx_str_null(&ev.event);
    ev.retry = 0;
    ev.data = data;
    ev.len = last - data;

    return ngx_http_asyncx_sse_event_write(p, &ev);
}


static u_char *
ngx_http_asyncx_sse_agg(u_char *p, ngx_http_asyncx_sse_agg_t *a)
{
    return ngx_sprintf(p, "{\"count\": %uL, \"sum\": %uL, \"avg\": %.2f, "
                       "\"min\": %ui, \"max\": %ui}",
                       a->count, a->sum,
                       a->count ? (double) a->sum / a->count : 0.0,
                       a->min, a->max);
}


static void
ngx_http_asyncx_sse_cleanup(void *data)
{
    ngx_http_asyncx_sse_ctx_t *ctx = data;

    if (ngx_http_asyncx_sse_stream_close(&ctx->stream) == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_INFO, ctx->request->connection->log, 0,
                      "asyncx sse: client closed the stream after %ui "
                      "events, %uL of %uL records done, remaining work "
                      "cancelled", ctx->events, ctx->next, ctx->total);
    }
}
