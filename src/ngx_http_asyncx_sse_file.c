
/*
 * Copyright (C) asyncx authors
 *
 * The NDJSON file source of asyncx_sse: search, transform and aggregate
 * over the lines of a file below a configured root, streamed as events.
 *
 * A stream is a chain of jobs: reading in the io pool, scanning in the
 * cpu pool.  The first job (io) opens the file with the sandbox of
 * /files/read (realpath, below the root, no symlink on the way,
 * O_NONBLOCK so a FIFO cannot hang the thread, a regular file only; its
 * errors are plain JSON answers), reads the first part and scans it, so
 * that its events leave with the header.  Scan jobs (cpu) scan the
 * stream's one buffer (ngx_http_asyncx_ndjson_scan()) until they have
 * about 56 KiB of events (or the stream's first ones), have read their
 * share of the file, or the stream ends, and read on only what the
 * page cache holds (preadv2() with RWF_NOWAIT: a copy, it never waits
 * on the disk).  When the cache does not have the next part, a fill job
 * (io) reads it with pread() and the scan goes on in the cpu pool: a
 * cached file costs one round trip per scan job, a cold one waits on
 * the disk in the io pool only, and the io pool's other work
 * (/files/read) queues behind no more scanning than one buffer per
 * stream start.  The next job is posted once the socket took
 * everything (backpressure), so a stream holds its buffers and nothing
 * more whatever the file's size.
 *
 * Ids carry the byte offset of the next line and the running counts, so
 * Last-Event-ID resumes there with one pread() of checking (see
 * docs/directives.md); the aggregate, whose table no id can carry,
 * rebuilds it silently from the start.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_conf.h"
#include "ngx_http_asyncx_http.h"
#include "ngx_http_asyncx_offload.h"
#include "ngx_http_asyncx_offload_util.h"
#include "ngx_http_asyncx_ndjson.h"
#include "ngx_http_asyncx_sse_stream.h"


/* what a job reads at most: the first one little, for a first event soon */
#define NGX_HTTP_ASYNCX_SSE_FILE_FIRST_READ  (256 * 1024)
#define NGX_HTTP_ASYNCX_SSE_FILE_JOB_READ    (16 * 1024 * 1024)

/* the read buffer holds a whole line of max_line bytes plus this */
#define NGX_HTTP_ASYNCX_SSE_FILE_CHUNK       (128 * 1024)

#define NGX_HTTP_ASYNCX_SSE_FILE_OUT                                         \
    (NGX_HTTP_ASYNCX_NDJSON_OUT_BUDGET + 8 * NGX_HTTP_ASYNCX_NDJSON_EVENT_MAX)

#define NGX_HTTP_ASYNCX_SSE_FILE_LIMIT_MAX   1000000000000ULL


struct ngx_http_asyncx_sse_file_ctx_s {
    ngx_http_asyncx_sse_stream_t       stream;
    ngx_http_request_t                *request;
    ngx_http_asyncx_job_t             *job;        /* io: open, fill */
    ngx_http_asyncx_job_t             *scan_job;   /* cpu */

    /* the open job's inputs (path, full) and its error, if any */
    ngx_http_asyncx_offload_ctx_t      open;
    ngx_str_t                          log_path;   /* controls, quotes
                                                      escaped */
    ngx_http_asyncx_sse_file_conf_t   *conf;
    ngx_fd_t                           fd;
    uint32_t                           query_hash;
    ngx_http_asyncx_ndjson_pos_t       resume;

    /* owned by the thread while a job runs */
    ngx_http_asyncx_ndjson_scan_t      scan;
    u_char                            *buf;
    size_t                             buf_size;
    size_t                             win_pos;    /* window in buf */
    size_t                             win_len;
    off_t                              win_off;    /* its file offset */
    size_t                             job_read;   /* by this job */
    size_t                             budget;     /* its share */
    ngx_err_t                          err;
    size_t                             detail_len;
    u_char                             detail[64];

    ngx_uint_t                         mode;
    ngx_uint_t                         events;
    uint64_t                           records;    /* counted so far */
    ngx_str_t                          keyword;

    ngx_buf_t                          out;

    unsigned                           resuming:1;
    unsigned                           head:1;
    unsigned                           fill:1;       /* next job reads */
    unsigned                           blocking:1;   /* no RWF_NOWAIT */
};


static ngx_int_t ngx_http_asyncx_sse_file_args(ngx_http_request_t *r,
    ngx_http_asyncx_sse_file_ctx_t *ctx, ngx_int_t *rc);
static ngx_int_t ngx_http_asyncx_sse_file_query(ngx_http_request_t *r,
    ngx_http_asyncx_sse_file_ctx_t *ctx, ngx_int_t *rc);
static uint32_t ngx_http_asyncx_sse_file_query_hash(
    ngx_http_asyncx_ndjson_scan_t *sc);
static ngx_int_t ngx_http_asyncx_sse_file_eval(ngx_http_request_t *r,
    ngx_http_complex_value_t *cv, ngx_str_t *value);
static ngx_int_t ngx_http_asyncx_sse_file_path(ngx_http_request_t *r,
    ngx_http_asyncx_sse_file_ctx_t *ctx, ngx_int_t *rc);
static ngx_int_t ngx_http_asyncx_sse_file_buffers(ngx_http_request_t *r,
    ngx_http_asyncx_sse_file_ctx_t *ctx);
static ngx_int_t ngx_http_asyncx_sse_file_open_run(void *data);
static ngx_int_t ngx_http_asyncx_sse_file_open(
    ngx_http_asyncx_sse_file_ctx_t *ctx);
static ngx_int_t ngx_http_asyncx_sse_file_first(
    ngx_http_asyncx_sse_file_ctx_t *ctx);
static ngx_int_t ngx_http_asyncx_sse_file_scan_window(
    ngx_http_asyncx_sse_file_ctx_t *ctx);
static ngx_int_t ngx_http_asyncx_sse_file_scan_run(void *data);
static ngx_int_t ngx_http_asyncx_sse_file_fill_run(void *data);
static ngx_int_t ngx_http_asyncx_sse_file_read(
    ngx_http_asyncx_sse_file_ctx_t *ctx, ngx_uint_t wait);
static ngx_int_t ngx_http_asyncx_sse_file_post(
    ngx_http_asyncx_sse_stream_t *s);
static void ngx_http_asyncx_sse_file_opened(ngx_http_request_t *r);
static void ngx_http_asyncx_sse_file_write_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_asyncx_sse_file_busy(
    ngx_http_asyncx_sse_stream_t *s, ngx_int_t rc);
static ngx_int_t ngx_http_asyncx_sse_file_job_done(
    ngx_http_asyncx_sse_stream_t *s);
static void ngx_http_asyncx_sse_file_cleanup(void *data);


static ngx_http_asyncx_sse_stream_ops_t  ngx_http_asyncx_sse_file_ops = {
    ngx_http_asyncx_sse_file_job_done, ngx_http_asyncx_sse_file_post,
    ngx_http_asyncx_sse_file_busy
};


/* 64 bytes to 256 MiB: the read buffer holds a whole line */
ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_sse_line_bounds =
    { 64, 256 * 1024 * 1024, NGX_HTTP_ASYNCX_CONF_SIZE, 0 };




/* configuration */

void
ngx_http_asyncx_sse_file_init_conf(ngx_http_asyncx_sse_file_conf_t *conf)
{
    /* ngx_pcalloc() zeroed path, root and the query */
    conf->max_line = NGX_CONF_UNSET_SIZE;
    conf->invalid = NGX_CONF_UNSET_UINT;
}


char *
ngx_http_asyncx_sse_file_merge_conf(ngx_conf_t *cf,
    ngx_http_asyncx_sse_file_conf_t *prev,
    ngx_http_asyncx_sse_file_conf_t *conf)
{
    if (conf->path == NULL) {
        conf->path = prev->path;
        conf->root = prev->root;
    }

    if (!conf->query_set) {
        conf->query_set = prev->query_set;
        conf->field = prev->field;
        conf->fields = prev->fields;
        conf->group_by = prev->group_by;
        conf->value = prev->value;
    }

    ngx_conf_merge_size_value(conf->max_line, prev->max_line, 64 * 1024);
    ngx_conf_merge_uint_value(conf->invalid, prev->invalid, 0);

    return NGX_CONF_OK;
}


/* a stream over a file: what its kind needs must be configured */

char *
ngx_http_asyncx_sse_file_check(ngx_conf_t *cf,
    ngx_http_asyncx_sse_file_conf_t *conf, ngx_uint_t mode)
{
    if (mode == NGX_HTTP_ASYNCX_SSE_TRANSFORM && conf->fields == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"asyncx_sse transform\" over a file needs "
                           "\"fields=\" in \"asyncx_sse_query\"");
        return NGX_CONF_ERROR;
    }

    if (mode == NGX_HTTP_ASYNCX_SSE_AGGREGATE
        && (conf->group_by == NULL || conf->value == NULL))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"asyncx_sse aggregate\" over a file needs "
                           "\"group_by=\" and \"value=\" in "
                           "\"asyncx_sse_query\"");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * asyncx_sse_source file=path root=dir; (the parameters after "file=").
 * Messages quote the whole parameter, "file=" or "root=" included, and
 * name the directive, as nginx's own do.
 */

char *
ngx_http_asyncx_sse_file_set_source(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_asyncx_sse_file_conf_t *conf, ngx_str_t *value, ngx_uint_t n,
    ngx_str_t *others)
{
    u_char                            *p;
    ngx_str_t                          path, root, *file_arg, *root_arg;
    ngx_uint_t                         i;
    ngx_http_compile_complex_value_t   ccv;

    file_arg = NULL;
    root_arg = NULL;

    for (i = 0; i < n; i++) {

        if (ngx_strncmp(value[i].data, "file=", 5) == 0) {
            if (file_arg != NULL) {
                goto duplicate;
            }

            file_arg = &value[i];
            continue;
        }

        if (ngx_strncmp(value[i].data, "root=", 5) == 0) {
            if (root_arg != NULL) {
                goto duplicate;
            }

            root_arg = &value[i];
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\", expected "
                           "\"file=\" and \"root=\"%V",
                           &value[i], &cmd->name, others);
        return NGX_CONF_ERROR;
    }

    if (file_arg == NULL || root_arg == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" needs \"file=\" and \"root=\"%V",
                           &cmd->name, others);
        return NGX_CONF_ERROR;
    }

    path.data = file_arg->data + 5;
    path.len = file_arg->len - 5;
    root.data = root_arg->data + 5;
    root.len = root_arg->len - 5;

    if (path.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\": the file is "
                           "empty", file_arg, &cmd->name);
        return NGX_CONF_ERROR;
    }

    conf->path = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (conf->path == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
    ccv.cf = cf;
    ccv.value = &path;
    ccv.complex_value = conf->path;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* a fixed path is checked now, as a request's would be */
    if (conf->path->lengths == NULL
        && ngx_http_asyncx_check_rel_path(path.data, path.len) != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\": a path relative "
                           "to \"root=\" without \"..\" is expected",
                           file_arg, &cmd->name);
        return NGX_CONF_ERROR;
    }

    /* or every request would be refused as if the client had sent it */
    if (conf->path->lengths == NULL
        && ngx_http_asyncx_conf_check_text(cf, "file name", &path,
                                           &cmd->name)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (root.len == 0
        || ngx_strlen(root.data) != root.len
        || ngx_conf_full_name(cf->cycle, &root, 0) != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\"", root_arg,
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    /* "/srv/data/" and "/srv/data" are the same root */
    while (root.len > 1 && root.data[root.len - 1] == '/') {
        root.len--;
    }

    p = ngx_pnalloc(cf->pool, root.len + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(p, root.data, root.len);
    p[root.len] = '\0';

    conf->root.data = p;
    conf->root.len = root.len;

    return NGX_CONF_OK;

duplicate:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "duplicate parameter \"%V\" in \"%V\"", &value[i],
                       &cmd->name);
    return NGX_CONF_ERROR;
}


/* asyncx_sse_invalid_line error | skip; */

char *
ngx_http_asyncx_sse_invalid_line(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    ngx_str_t  *value;

    if (alcf->sse.file.invalid != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "error") == 0) {
        alcf->sse.file.invalid = 0;

    } else if (ngx_strcmp(value[1].data, "skip") == 0) {
        alcf->sse.file.invalid = 1;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\", expected "
                           "\"error\" or \"skip\"", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * asyncx_sse_query [field=name] [fields=list] [group_by=name]
 *                  [value=name];
 * Values may hold variables ($arg_field lets the client choose); fixed
 * ones are checked now.
 */

char *
ngx_http_asyncx_sse_query(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    size_t                             len;
    ngx_str_t                         *value, v;
    ngx_uint_t                         i, n;
    const char                        *reason;
    ngx_http_complex_value_t         **cvp;
    ngx_http_asyncx_sse_file_conf_t   *fcf;
    ngx_http_compile_complex_value_t   ccv;
    ngx_http_asyncx_ndjson_field_t    fields[NGX_HTTP_ASYNCX_NDJSON_FIELDS_MAX];

    fcf = &alcf->sse.file;

    if (fcf->query_set) {
        return "is duplicate";
    }

    fcf->query_set = 1;
    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "field=", 6) == 0) {
            cvp = &fcf->field;
            len = 6;

        } else if (ngx_strncmp(value[i].data, "fields=", 7) == 0) {
            cvp = &fcf->fields;
            len = 7;

        } else if (ngx_strncmp(value[i].data, "group_by=", 9) == 0) {
            cvp = &fcf->group_by;
            len = 9;

        } else if (ngx_strncmp(value[i].data, "value=", 6) == 0) {
            cvp = &fcf->value;
            len = 6;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\", expected "
                               "field=, fields=, group_by= or value=",
                               &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }

        if (*cvp != NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate parameter \"%V\" in \"%V\"",
                               &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }

        v.data = value[i].data + len;
        v.len = value[i].len - len;

        *cvp = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
        if (*cvp == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
        ccv.cf = cf;
        ccv.value = &v;
        ccv.complex_value = *cvp;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        if ((*cvp)->lengths != NULL) {
            continue;
        }

        if (cvp == &fcf->fields) {
            if (ngx_http_asyncx_ndjson_parse_fields(v.data, v.len, fields,
                                                    &n, &reason)
                != NGX_OK)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid value \"%V\" in \"%V\": %s",
                                   &value[i], &cmd->name, reason);
                return NGX_CONF_ERROR;
            }

        } else if (ngx_http_asyncx_ndjson_check_name(v.data, v.len)
                   != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\": a field "
                               "name is 1 to 128 bytes of UTF-8 without "
                               "control characters, quotes, backslashes, "
                               "',' or ':'", &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* the request */

ngx_int_t
ngx_http_asyncx_sse_file_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_pool_cleanup_t              *cln;
    ngx_http_asyncx_ctx_t           *actx;
    ngx_http_asyncx_loc_conf_t      *alcf;
    ngx_http_asyncx_sse_file_ctx_t  *ctx;

    if (ngx_http_asyncx_get_only(r, &rc) != NGX_OK) {
        return rc;
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_asyncx_module);

    actx = ngx_http_asyncx_get_ctx(r);
    if (actx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_asyncx_sse_file_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    actx->sse_file = ctx;
    ctx->request = r;
    ctx->conf = &alcf->sse.file;
    ctx->mode = alcf->sse.mode;
    ctx->fd = NGX_INVALID_FILE;

    ngx_http_asyncx_sse_stream_init(&ctx->stream, r, ctx,
                                    &ngx_http_asyncx_sse_file_ops);
    ctx->scan.batch_size = alcf->sse.batch_size;
    ctx->scan.max_line = alcf->sse.file.max_line;
    ctx->scan.skip_invalid = alcf->sse.file.invalid;
    ctx->scan.started = ngx_http_asyncx_now_usec();

    /* the fd is closed on every path from here on */
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_asyncx_sse_file_cleanup;
    cln->data = ctx;

    if (ngx_http_asyncx_sse_file_args(r, ctx, &rc) != NGX_OK
        || ngx_http_asyncx_sse_file_query(r, ctx, &rc) != NGX_OK
        || ngx_http_asyncx_sse_file_path(r, ctx, &rc) != NGX_OK)
    {
        /* refused before any stream starts: rc is the JSON error's */
        return rc;
    }

    if (ctx->resuming
        && (ctx->resume.phase == 'c' || ctx->resume.phase == 'e'))
    {
        /* the client saw the last event: 204 tells EventSource to stop */
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "asyncx sse: Last-Event-ID of the stream's last event, "
                      "answering 204");
        r->header_only = 1;
        r->headers_out.status = NGX_HTTP_NO_CONTENT;
        r->headers_out.content_length_n = 0;
        return ngx_http_send_header(r);
    }

    if (ngx_http_asyncx_sse_file_buffers(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_asyncx_ndjson_start(&ctx->scan,
                                 ctx->resuming ? &ctx->resume : NULL);

    ctx->head = (r->method == NGX_HTTP_HEAD);
    ctx->win_off = ctx->scan.pos.offset;
    ctx->records = ctx->scan.pos.records;
    /* doubled before each scan job: the first one reads 256 KiB */
    ctx->budget = NGX_HTTP_ASYNCX_SSE_FILE_FIRST_READ / 2;

    ctx->job = ngx_http_asyncx_job_create(r, NGX_HTTP_ASYNCX_POOL_IO);
    ctx->scan_job = ngx_http_asyncx_job_create(r, NGX_HTTP_ASYNCX_POOL_CPU);

    if (ctx->job == NULL || ctx->scan_job == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /*
     * A job still queued when the client leaves is skipped: nginx
     * terminates the request (the read-side check, a write error) and
     * runs these cleanups, which mark whichever job is out.
     */
    if (ngx_http_asyncx_job_skip_if_client_leaves(ctx->job) != NGX_OK
        || ngx_http_asyncx_job_skip_if_client_leaves(ctx->scan_job)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a running scan stops at the next line: the open job scans first */
    ctx->scan.cancel = &ctx->job->cancelled;

    ctx->stream.jobs[NGX_HTTP_ASYNCX_POOL_IO] = ctx->job;
    ctx->stream.jobs[NGX_HTTP_ASYNCX_POOL_CPU] = ctx->scan_job;

    /* the open job's end starts the stream, or answers its error */
    r->write_event_handler = ngx_http_asyncx_sse_file_opened;

    rc = ngx_http_asyncx_job_post(ctx->job, ngx_http_asyncx_sse_file_open_run,
                                  ctx);

    if (rc == NGX_BUSY) {
        r->write_event_handler = ngx_http_request_empty_handler;
        return ngx_http_asyncx_job_reject(r);
    }

    if (rc != NGX_OK) {
        r->write_event_handler = ngx_http_request_empty_handler;
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_SSE_JOBS, 1);

    /* a client that goes away is noticed while the stream waits */
    ngx_http_asyncx_watch_client(r);

    r->main->count++;

    return NGX_DONE;
}


/*
 * the request's own arguments: keyword, ignore_case, limit, batch_size
 *
 * One function: the query arguments of a file stream, each bounded and
 * refused where it is read; a table of them is the next split.
 */

static ngx_int_t
ngx_http_asyncx_sse_file_args(ngx_http_request_t *r,
    ngx_http_asyncx_sse_file_ctx_t *ctx, ngx_int_t *rc)
{
    char                          **arg;
    size_t                          i;
    uint64_t                        v;
    ngx_int_t                       n;
    ngx_str_t                       s;
    ngx_http_asyncx_main_conf_t    *amcf;
    ngx_http_asyncx_sse_source_t  **src;
    ngx_http_asyncx_ndjson_scan_t  *sc;

    sc = &ctx->scan;

    /* the arguments of the other sources mean nothing here */
    amcf = ngx_http_get_module_main_conf(r, ngx_http_asyncx_module);
    src = amcf->sse.sources.elts;

    for (i = 0; i < amcf->sse.sources.nelts; i++) {
        for (arg = src[i]->args; arg && *arg; arg++) {
            if (ngx_http_asyncx_arg(r, *arg, &s) == NGX_OK) {
                *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST,
                                                 NGX_LOG_INFO, "%s",
                                                 src[i]->refusal);
                return NGX_ERROR;
            }
        }
    }

    v = (ctx->mode == NGX_HTTP_ASYNCX_SSE_TRANSFORM) ? 100 : sc->batch_size;

    n = ngx_http_asyncx_arg_uint(r, "batch_size", 1,
                                  ngx_http_asyncx_sse_batch_bounds.max, &v);
    if (n == NGX_ERROR) {
        *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO,
                                          "batch_size must be an integer "
                                          "between 1 and %uL",
                                          ngx_http_asyncx_sse_batch_bounds.max);
        return NGX_ERROR;
    }

    sc->batch_size = v;

    if (ctx->mode != NGX_HTTP_ASYNCX_SSE_SEARCH) {
        sc->op = (ctx->mode == NGX_HTTP_ASYNCX_SSE_TRANSFORM)
                 ? NGX_HTTP_ASYNCX_NDJSON_TRANSFORM
                 : NGX_HTTP_ASYNCX_NDJSON_AGGREGATE;
        goto last_event_id;
    }

    sc->op = NGX_HTTP_ASYNCX_NDJSON_SEARCH;

    if (ngx_http_asyncx_arg(r, "keyword", &ctx->keyword) != NGX_OK
        || ctx->keyword.len == 0)
    {
        *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO,
                                          "keyword is required");
        return NGX_ERROR;
    }

    if (memchr(ctx->keyword.data, '\n', ctx->keyword.len) != NULL) {
        /* no line holds one; a search skips lines by that */
        *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO,
                                          "keyword holds a line feed, which "
                                          "no line of a file does");
        return NGX_ERROR;
    }

    if (ctx->keyword.len > NGX_HTTP_ASYNCX_NDJSON_KEYWORD_MAX) {
        *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO,
                                          "keyword is longer than %d bytes",
                                          NGX_HTTP_ASYNCX_NDJSON_KEYWORD_MAX);
        return NGX_ERROR;
    }

    v = 0;

    n = ngx_http_asyncx_arg_uint(r, "ignore_case", 0, 1, &v);
    if (n == NGX_ERROR) {
        *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO,
                                          "ignore_case must be 0 or 1");
        return NGX_ERROR;
    }

    sc->icase = (v == 1);

    if (sc->icase) {
        /* ASCII letters only: no locale in a worker */
        for (i = 0; i < ctx->keyword.len; i++) {
            ctx->keyword.data[i] = ngx_tolower(ctx->keyword.data[i]);
        }
    }

    sc->keyword = ctx->keyword.data;
    sc->keyword_len = ctx->keyword.len;

    v = 0;

    n = ngx_http_asyncx_arg_uint(r, "limit", 1,
                                  NGX_HTTP_ASYNCX_SSE_FILE_LIMIT_MAX, &v);
    if (n == NGX_ERROR) {
        *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO,
                                          "limit must be an integer between "
                                          "1 and %uL",
                                          NGX_HTTP_ASYNCX_SSE_FILE_LIMIT_MAX);
        return NGX_ERROR;
    }

    sc->limit = v;

last_event_id:

    if (ngx_http_asyncx_last_event_id(r, &s) != NGX_OK) {
        return NGX_OK;
    }

    if (ngx_http_asyncx_ndjson_id_parse(s.data, s.len, &ctx->resume)
        != NGX_OK)
    {
        if (ngx_http_asyncx_quote(r->pool, s.data, s.len, 0, &s) != NGX_OK) {
            *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return NGX_ERROR;
        }

        *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO,
                                          "invalid Last-Event-ID \"%V\"", &s);
        return NGX_ERROR;
    }

    ctx->resuming = 1;

    return NGX_OK;
}


/*
 * The fields of asyncx_sse_query for this request, checked, and the
 * hash of everything that decides the events (ids carry it: a resume
 * with another query or file is refused).
 */

static ngx_int_t
ngx_http_asyncx_sse_file_query(ngx_http_request_t *r,
    ngx_http_asyncx_sse_file_ctx_t *ctx, ngx_int_t *rc)
{
    ngx_str_t                         fields, *name;
    ngx_uint_t                        n;
    const char                       *reason;
    ngx_http_asyncx_ndjson_scan_t    *sc;
    ngx_http_asyncx_sse_file_conf_t  *fcf;

    sc = &ctx->scan;
    fcf = ctx->conf;

    if (ngx_http_asyncx_sse_file_eval(r, fcf->field, &sc->field) != NGX_OK
        || ngx_http_asyncx_sse_file_eval(r, fcf->fields, &fields) != NGX_OK
        || ngx_http_asyncx_sse_file_eval(r, fcf->group_by, &sc->group_by)
           != NGX_OK
        || ngx_http_asyncx_sse_file_eval(r, fcf->value, &sc->value) != NGX_OK)
    {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_ERROR;
    }

    switch (sc->op) {

    case NGX_HTTP_ASYNCX_NDJSON_SEARCH:
        /* no field: the whole line */
        name = sc->field.len ? &sc->field : NULL;
        break;

    case NGX_HTTP_ASYNCX_NDJSON_TRANSFORM:
        name = NULL;

        sc->fields = ngx_palloc(r->pool, NGX_HTTP_ASYNCX_NDJSON_FIELDS_MAX
                                   * sizeof(ngx_http_asyncx_ndjson_field_t));
        if (sc->fields == NULL) {
            *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return NGX_ERROR;
        }

        if (fields.len == 0) {
            *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              NGX_LOG_INFO,
                                              "no fields to transform: "
                                              "\"fields=\" is empty");
            return NGX_ERROR;
        }

        if (ngx_http_asyncx_ndjson_parse_fields(fields.data, fields.len,
                                                sc->fields, &n, &reason)
            != NGX_OK)
        {
            *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              NGX_LOG_INFO,
                                              "invalid fields: %s", reason);
            return NGX_ERROR;
        }

        sc->nfields = n;
        break;

    default: /* NGX_HTTP_ASYNCX_NDJSON_AGGREGATE */

        if (sc->group_by.len == 0 || sc->value.len == 0) {
            *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              NGX_LOG_INFO,
                                              "the aggregate needs "
                                              "\"group_by=\" and \"value=\"");
            return NGX_ERROR;
        }

        /* both names are checked: the one that fails is named below */
        name = (ngx_http_asyncx_ndjson_check_name(sc->group_by.data,
                                                  sc->group_by.len)
                == NGX_OK) ? &sc->value : &sc->group_by;
        break;
    }

    if (name != NULL
        && ngx_http_asyncx_ndjson_check_name(name->data, name->len) != NGX_OK)
    {
        *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO,
                                          "invalid field name: 1 to 128 "
                                          "bytes of UTF-8 without control "
                                          "characters, quotes, backslashes, "
                                          "',' or ':'");
        return NGX_ERROR;
    }

    ctx->query_hash = ngx_http_asyncx_sse_file_query_hash(sc);

    return NGX_OK;
}


/* the query's identity in the ids; the open job adds the file's */

static uint32_t
ngx_http_asyncx_sse_file_query_hash(ngx_http_asyncx_ndjson_scan_t *sc)
{
    u_char      params[8 * NGX_INT64_LEN];
    uint32_t    h;
    ngx_uint_t  i;

    h = ngx_http_asyncx_ndjson_hash(2166136261u, params,
                                    ngx_sprintf(params, "%ui %uL %uL %d %d %uz",
                                                sc->op, sc->batch_size,
                                                sc->limit, (int) sc->icase,
                                                (int) sc->skip_invalid,
                                                sc->max_line)
                                    - params);

    h = ngx_http_asyncx_ndjson_hash(h, sc->keyword, sc->keyword_len);
    h = ngx_http_asyncx_ndjson_hash(h, (u_char *) "\0", 1);
    h = ngx_http_asyncx_ndjson_hash(h, sc->field.data, sc->field.len);

    for (i = 0; i < sc->nfields; i++) {
        h = ngx_http_asyncx_ndjson_hash(h, (u_char *) "\0", 1);
        h = ngx_http_asyncx_ndjson_hash(h, sc->fields[i].name.data,
                                        sc->fields[i].name.len);
        h = ngx_http_asyncx_ndjson_hash(h, (u_char *) ":", 1);
        h = ngx_http_asyncx_ndjson_hash(h, sc->fields[i].alias.data,
                                        sc->fields[i].alias.len);
    }

    h = ngx_http_asyncx_ndjson_hash(h, (u_char *) "\0", 1);
    h = ngx_http_asyncx_ndjson_hash(h, sc->group_by.data, sc->group_by.len);
    h = ngx_http_asyncx_ndjson_hash(h, (u_char *) "\0", 1);

    return ngx_http_asyncx_ndjson_hash(h, sc->value.data, sc->value.len);
}


/*
 * A complex value of the configuration for this request: values made
 * with variables ($arg_file) are decoded once as query arguments are
 * (ngx_http_asyncx_unescape_arg); fixed ones are used as written.  A
 * NULL cv gives "".
 */

static ngx_int_t
ngx_http_asyncx_sse_file_eval(ngx_http_request_t *r,
    ngx_http_complex_value_t *cv, ngx_str_t *value)
{
    ngx_str_t  raw;

    ngx_str_null(value);

    if (cv == NULL) {
        return NGX_OK;
    }

    if (ngx_http_complex_value(r, cv, &raw) != NGX_OK) {
        return NGX_ERROR;
    }

    if (cv->lengths == NULL) {
        *value = raw;
        return NGX_OK;
    }

    value->data = ngx_pnalloc(r->pool, raw.len + 1);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    value->len = ngx_http_asyncx_unescape_arg(value->data, raw.data, raw.len);
    value->data[value->len] = '\0';

    return NGX_OK;
}


/* the file: a relative path below the root, checked lexically here */

static ngx_int_t
ngx_http_asyncx_sse_file_path(ngx_http_request_t *r,
    ngx_http_asyncx_sse_file_ctx_t *ctx, ngx_int_t *rc)
{
    u_char     *p;
    size_t      n;
    ngx_str_t   path, *root;

    if (ngx_http_asyncx_sse_file_eval(r, ctx->conf->path, &path) != NGX_OK) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_ERROR;
    }

    if (path.len == 0) {
        *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO,
                                          "no file: \"file=\" of "
                                          "asyncx_sse_source is empty for "
                                          "this request");
        return NGX_ERROR;
    }

    /* the rules of /files/read: messages quote whole characters */
    n = ngx_http_asyncx_utf8_cut(path.data, path.len,
                                 NGX_HTTP_ASYNCX_OFFLOAD_PATH_QUOTE);

    /* with its '"' escaped: the io pool's messages quote it too */
    if (ngx_http_asyncx_quote(r->pool, path.data, n, 0, &ctx->open.quoted)
        != NGX_OK)
    {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_ERROR;
    }

    if (ngx_http_asyncx_check_rel_path(path.data, path.len) != NGX_OK) {
        *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_FORBIDDEN, NGX_LOG_INFO,
                                          "path \"%V\" is not allowed: "
                                          "absolute paths, \"..\", NUL bytes "
                                          "and backslashes are refused",
                                          &ctx->open.quoted);
        return NGX_ERROR;
    }

    if (ngx_http_asyncx_utf8_valid(path.data, path.len) != NGX_OK) {
        *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO,
                                          "path \"%V\" is not valid UTF-8",
                                          &ctx->open.quoted);
        return NGX_ERROR;
    }

    root = &ctx->conf->root;

    if (root->len + 1 + path.len >= PATH_MAX) {
        *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO,
                                          "path is too long");
        return NGX_ERROR;
    }

    p = ngx_pnalloc(r->pool, root->len + 1 + path.len + 1);
    if (p == NULL) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_ERROR;
    }

    ctx->open.path = path;
    ctx->open.full.data = p;
    p = ngx_cpymem(p, root->data, root->len);
    *p++ = '/';
    p = ngx_cpymem(p, path.data, path.len);
    *p = '\0';
    ctx->open.full.len = p - ctx->open.full.data;

    /*
     * a name may hold a line feed or a '"': log lines quote it escaped,
     * so that it stays one line and cannot end its quote
     */
    if (ngx_http_asyncx_quote(r->pool, path.data, path.len,
                              NGX_HTTP_ASYNCX_UTF8_CONTROLS, &ctx->log_path)
        != NGX_OK)
    {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A stream's memory, whatever the file's size: the read buffer (a line
 * of max_line plus a chunk), the payload scratch, the output (grown
 * only for an event larger than it), the transform's records or the
 * aggregate's table.
 */

static ngx_int_t
ngx_http_asyncx_sse_file_buffers(ngx_http_request_t *r,
    ngx_http_asyncx_sse_file_ctx_t *ctx)
{
    ngx_http_asyncx_ndjson_scan_t  *sc;

    sc = &ctx->scan;

    ctx->buf_size = sc->max_line + 1 + NGX_HTTP_ASYNCX_SSE_FILE_CHUNK;
    ctx->buf = ngx_palloc(r->pool, ctx->buf_size);

    sc->scratch = ngx_palloc(r->pool,
                             ngx_http_asyncx_ndjson_scratch_size(sc));

    sc->out_size = NGX_HTTP_ASYNCX_SSE_FILE_OUT;
    sc->out = ngx_palloc(r->pool, sc->out_size);

    if (ctx->buf == NULL || sc->scratch == NULL || sc->out == NULL) {
        return NGX_ERROR;
    }

    if (sc->op == NGX_HTTP_ASYNCX_NDJSON_TRANSFORM) {
        sc->batch = ngx_palloc(r->pool, ngx_http_asyncx_ndjson_batch_size(sc));
        if (sc->batch == NULL) {
            return NGX_ERROR;
        }
    }

    if (sc->op == NGX_HTTP_ASYNCX_NDJSON_AGGREGATE) {
        sc->table = ngx_pcalloc(r->pool,
                                sizeof(ngx_http_asyncx_ndjson_table_t));
        if (sc->table == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* thread side: syscalls and pure code only, no nginx pools or logs */

/*
 * The sandbox of /files/read (ngx_http_asyncx_offload_file_read_run):
 * realpath() below the resolved root, opened by that name with no
 * symlink on the way, O_NONBLOCK so that a FIFO cannot block the thread,
 * a regular file only.  Then a resume's id is checked against the file.
 */

static ngx_int_t
ngx_http_asyncx_sse_file_open_run(void *data)
{
    ngx_http_asyncx_sse_file_ctx_t *ctx = data;

    ngx_int_t  rc;

    rc = ngx_http_asyncx_sse_file_open(ctx);

    /* a client's error (400, 403, 404, 409) is no failed task */
    if (rc != NGX_OK && ctx->open.status != 0
        && ctx->open.status < NGX_HTTP_INTERNAL_SERVER_ERROR)
    {
        return NGX_OK;
    }

    return rc;
}


static ngx_int_t
ngx_http_asyncx_sse_file_open(ngx_http_asyncx_sse_file_ctx_t *ctx)
{
    char                            root[PATH_MAX], real[PATH_MAX];
    u_char                          c;
    size_t                          n;
    ssize_t                         got;
    ngx_fd_t                        fd;
    ngx_err_t                       err;
    uint32_t                        tag;
    ngx_int_t                       rc;
    struct stat                     st;
    ngx_http_asyncx_offload_ctx_t  *o;

    o = &ctx->open;
    n = ngx_http_asyncx_utf8_cut(o->path.data, o->path.len,
                                 NGX_HTTP_ASYNCX_OFFLOAD_PATH_QUOTE);

    if (realpath((char *) ctx->conf->root.data, root) == NULL) {
        return ngx_http_asyncx_offload_fail(o, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            ngx_errno, "root \"%V\" is not "
                                            "available", &ctx->conf->root);
    }

    rc = ngx_http_asyncx_offload_resolve(root, (char *) o->full.data,
                                         o->full.len - 1 - o->path.len, real);

    if (rc == NGX_ERROR) {
        return ngx_http_asyncx_offload_errno(o, ngx_errno, "resolve");
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_asyncx_offload_fail(o, NGX_HTTP_FORBIDDEN, 0,
                                            "\"%*s\" resolves outside the "
                                            "root", n, o->path.data);
    }

    fd = ngx_http_asyncx_offload_open_beneath(root, real,
                                              O_RDONLY|O_NONBLOCK|O_NOCTTY);

    if (fd == NGX_INVALID_FILE) {
        return ngx_http_asyncx_offload_errno(o, ngx_errno, "open");
    }

    if (fstat(fd, &st) == -1) {
        err = ngx_errno;
        (void) close(fd);
        return ngx_http_asyncx_offload_errno(o, err, "fstat");
    }

    if (!S_ISREG(st.st_mode)) {
        (void) close(fd);
        return ngx_http_asyncx_offload_fail(o, NGX_HTTP_BAD_REQUEST, 0,
                                            "\"%*s\" is not a regular file",
                                            n, o->path.data);
    }

    /* the file's identity joins the query's in every id */
    tag = ngx_http_asyncx_ndjson_hash(ctx->query_hash, (u_char *) &st.st_dev,
                                      sizeof(st.st_dev));
    tag = ngx_http_asyncx_ndjson_hash(tag, (u_char *) &st.st_ino,
                                      sizeof(st.st_ino));

    ctx->scan.tag = tag;
    ctx->scan.size = st.st_size;
    ctx->fd = fd;

    if (!ctx->resuming) {
        return ngx_http_asyncx_sse_file_first(ctx);
    }

    if (ctx->resume.tag != tag) {
        return ngx_http_asyncx_offload_fail(o, NGX_HTTP_CONFLICT, 0,
                                            "Last-Event-ID is of another "
                                            "file or query (the file may "
                                            "have been replaced)");
    }

    if (ctx->resume.offset > st.st_size) {
        return ngx_http_asyncx_offload_fail(o, NGX_HTTP_CONFLICT, 0,
                                            "Last-Event-ID is past the end "
                                            "of the file (%O bytes): it was "
                                            "truncated", st.st_size);
    }

    if (ctx->resume.offset == 0 || ctx->resume.offset == st.st_size) {
        return ngx_http_asyncx_sse_file_first(ctx);
    }

    /* an offset that is no line start would read half a record */

    do {
        got = pread(fd, &c, 1, ctx->resume.offset - 1);
    } while (got == -1 && ngx_errno == NGX_EINTR);

    if (got != 1) {
        return ngx_http_asyncx_offload_errno(o, got ? ngx_errno : EIO, "read");
    }

    if (c != '\n') {
        return ngx_http_asyncx_offload_fail(o, NGX_HTTP_CONFLICT, 0,
                                            "Last-Event-ID does not match "
                                            "the file: offset %O is not the "
                                            "start of a line",
                                            ctx->resume.offset);
    }

    return ngx_http_asyncx_sse_file_first(ctx);
}


/*
 * The open job goes on with reading the stream's first part and scans
 * that one window: its events go out with the header, without a hand-off
 * to the cpu pool and back to the event loop first (on a busy machine
 * each hand-off waits for a core: docs/benchmarks/sse.md).  The io pool
 * scans at most one read buffer per stream (about 0.2 ms of CPU for
 * 192 KiB); the scan jobs in the cpu pool do the rest.  A HEAD request
 * wants the header only.
 */

static ngx_int_t
ngx_http_asyncx_sse_file_first(ngx_http_asyncx_sse_file_ctx_t *ctx)
{
    ngx_int_t  rc;

    if (ctx->head) {
        return NGX_OK;
    }

    rc = ngx_http_asyncx_sse_file_fill_run(ctx);

    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_asyncx_sse_file_scan_window(ctx) == NGX_ABORT) {
        /* the client left */
        return NGX_HTTP_ASYNCX_JOB_STOPPED;
    }

    return NGX_OK;
}


/*
 * The lines the buffer holds: what ngx_http_asyncx_ndjson_scan()
 * returns, the window moved past what it used.
 */

static ngx_int_t
ngx_http_asyncx_sse_file_scan_window(ngx_http_asyncx_sse_file_ctx_t *ctx)
{
    size_t     used;
    ngx_int_t  rc;

    rc = ngx_http_asyncx_ndjson_scan(&ctx->scan, ctx->buf + ctx->win_pos,
                                     ctx->win_len, ctx->win_off,
                                     ctx->win_off + (off_t) ctx->win_len
                                     == ctx->scan.size,
                                     &used);

    ctx->win_pos += used;
    ctx->win_len -= used;
    ctx->win_off += used;

    return rc;
}


/*
 * One step of the stream: scan what the buffer holds, read more, until
 * the output is full, the job has read its share, or the stream ends.
 * Whatever goes wrong with the file becomes the stream's error event.
 */

static ngx_int_t
ngx_http_asyncx_sse_file_scan_run(void *data)
{
    ngx_http_asyncx_sse_file_ctx_t *ctx = data;

    size_t                          budget;
    ngx_int_t                       rc;
    struct stat                     st;
    ngx_http_asyncx_ndjson_scan_t  *sc;

    sc = &ctx->scan;
    sc->out_len = 0;
    sc->nevents = 0;
    sc->need = 0;
    ctx->err = 0;

    budget = ctx->budget;
    ctx->job_read = 0;

    if (fstat(ctx->fd, &st) == -1) {
        ctx->err = ngx_errno;
        (void) ngx_http_asyncx_ndjson_fail(sc, 1, "cannot stat the file", NULL,
                                           0);
        return NGX_ERROR;
    }

    if (st.st_size < sc->size) {
        /* truncated while streamed: the rest is gone, say so */
        ctx->detail_len = ngx_sprintf(ctx->detail, " to %O bytes, it had %O",
                                      st.st_size, sc->size)
                          - ctx->detail;
        (void) ngx_http_asyncx_ndjson_fail(sc, 1, "the file was truncated",
                                           ctx->detail, ctx->detail_len);
        return NGX_OK;
    }

    for ( ;; ) {
        rc = ngx_http_asyncx_sse_file_scan_window(ctx);

        if (rc == NGX_ABORT) {
            /* the client left: the rest is not scanned for nobody */
            return NGX_HTTP_ASYNCX_JOB_STOPPED;
        }

        if (rc != NGX_AGAIN) {
            /* done, output full, or an event needs a larger output */
            return NGX_OK;
        }

        if (sc->nevents && ctx->events == 0) {
            /*
             * The stream's first events go out as soon as a window has
             * some, not after the job's whole share of the file: the
             * first event in about a window's scan (docs/benchmarks).
             */
            return NGX_OK;
        }

        if (ctx->job_read >= budget) {
            return NGX_OK;
        }

        rc = ngx_http_asyncx_sse_file_read(ctx, 0);

        if (rc == NGX_DECLINED) {
            /* not in the page cache: a fill job reads it in the io pool */
            ctx->fill = 1;
            return NGX_OK;
        }

        if (rc == NGX_DONE) {
            return NGX_OK;
        }

        if (rc != NGX_OK) {
            return rc;
        }
    }
}


/* the io pool's part: one read that may wait on the disk */

static ngx_int_t
ngx_http_asyncx_sse_file_fill_run(void *data)
{
    ngx_http_asyncx_sse_file_ctx_t *ctx = data;

    ngx_int_t                       rc;
    ngx_http_asyncx_ndjson_scan_t  *sc;

    sc = &ctx->scan;
    sc->out_len = 0;
    sc->nevents = 0;
    sc->need = 0;
    ctx->err = 0;
    ctx->fill = 0;

    if (ctx->win_off + (off_t) ctx->win_len == sc->size) {
        /* nothing more to read (an empty file, a resume at its end) */
        return NGX_OK;
    }

    rc = ngx_http_asyncx_sse_file_read(ctx, 1);

    return (rc == NGX_DONE) ? NGX_OK : rc;
}


/*
 * More of the file after the window: what is left of it moves to the
 * start of the buffer (less than a line), a read fills the rest.  wait:
 * pread() (the io pool); otherwise only what the page cache holds,
 * NGX_DECLINED if it holds none of it (or the file system cannot say:
 * from then on every read is the io pool's).
 */

static ngx_int_t
ngx_http_asyncx_sse_file_read(ngx_http_asyncx_sse_file_ctx_t *ctx,
    ngx_uint_t wait)
{
    off_t                           at;
    size_t                          want;
    ssize_t                         n;
    struct iovec                    iov;
    ngx_http_asyncx_ndjson_scan_t  *sc;

    sc = &ctx->scan;

    if (ctx->win_pos) {
        ngx_memmove(ctx->buf, ctx->buf + ctx->win_pos, ctx->win_len);
        ctx->win_pos = 0;
    }

    at = ctx->win_off + (off_t) ctx->win_len;
    want = ngx_min(ctx->buf_size - ctx->win_len, (size_t) (sc->size - at));

    if (!wait && ctx->blocking) {
        return NGX_DECLINED;
    }

    iov.iov_base = ctx->buf + ctx->win_len;
    iov.iov_len = want;

    for ( ;; ) {
        n = wait ? pread(ctx->fd, iov.iov_base, want, at)
                 : preadv2(ctx->fd, &iov, 1, at, RWF_NOWAIT);

        if (n != -1 || ngx_errno != NGX_EINTR) {
            break;
        }
    }

    if (n == -1 && !wait) {
        if (ngx_errno == NGX_EAGAIN) {
            return NGX_DECLINED;
        }

        if (ngx_errno == EOPNOTSUPP || ngx_errno == EINVAL) {
            ctx->blocking = 1;
            return NGX_DECLINED;
        }
    }

    if (n == -1) {
        ctx->err = ngx_errno;
        (void) ngx_http_asyncx_ndjson_fail(sc, 1, "cannot read the file", NULL,
                                           0);
        return NGX_ERROR;
    }

    if (n == 0) {
        ctx->detail_len = ngx_sprintf(ctx->detail, " to %O bytes, it had %O",
                                      at, sc->size)
                          - ctx->detail;
        (void) ngx_http_asyncx_ndjson_fail(sc, 1, "the file was truncated",
                                           ctx->detail, ctx->detail_len);

        /* the file's doing, not a failed task */
        return NGX_DONE;
    }

    ctx->win_len += n;
    ctx->job_read += n;

    return NGX_OK;
}


/* the event loop */

static ngx_int_t
ngx_http_asyncx_sse_file_post(ngx_http_asyncx_sse_stream_t *s)
{
    ngx_http_asyncx_sse_file_ctx_t *ctx = s->data;

    ngx_int_t  rc;

    if (ctx->fill) {
        rc = ngx_http_asyncx_job_post(ctx->job,
                                      ngx_http_asyncx_sse_file_fill_run, ctx);

    } else {
        /* scan jobs read 256 KiB, then twice as much each time */
        ctx->budget = ngx_min(2 * ctx->budget,
                              NGX_HTTP_ASYNCX_SSE_FILE_JOB_READ);

        ctx->scan.cancel = &ctx->scan_job->cancelled;

        rc = ngx_http_asyncx_job_post(ctx->scan_job,
                                      ngx_http_asyncx_sse_file_scan_run, ctx);
    }

    if (rc == NGX_OK) {
        ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_SSE_JOBS, 1);
    }

    return rc;
}


/* the stream's state machine is the shared one (sse_stream.c) */

static void
ngx_http_asyncx_sse_file_write_handler(ngx_http_request_t *r)
{
    ngx_http_asyncx_ctx_t  *actx;

    actx = ngx_http_get_module_ctx(r, ngx_http_asyncx_module);

    ngx_http_asyncx_sse_stream_write(&actx->sse_file->stream);
}


/*
 * The header is out: the client learns it from an error event.  It has
 * no id, so EventSource reconnects after the last event it got.
 */

static ngx_int_t
ngx_http_asyncx_sse_file_busy(ngx_http_asyncx_sse_stream_t *s, ngx_int_t rc)
{
    ngx_http_asyncx_sse_file_ctx_t *ctx = s->data;

    ngx_log_error(NGX_LOG_ERR, s->request->connection->log, 0,
                  "asyncx sse: cannot post the next part of \"%V\", %s",
                  &ctx->log_path,
                  rc == NGX_BUSY ? "thread pool queue is full" : "task error");

    ctx->scan.out_len = 0;
    (void) ngx_http_asyncx_ndjson_fail(&ctx->scan, 0, "server busy: thread "
                                       "pool queue is full", NULL, 0);

    ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_SSE_ERRORS, 1);
    ngx_http_asyncx_metrics_stream(ctx->mode, NGX_HTTP_ASYNCX_STREAM_ERRORS, 1);

    s->done = 1;

    ngx_http_asyncx_sse_stream_release(s);

    if (ngx_http_asyncx_sse_file_job_done(s) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_output_filter(s->request, &s->out);
}


/* the open job is done: an error answer, or the stream starts */

static void
ngx_http_asyncx_sse_file_opened(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_connection_t                *c;
    ngx_http_asyncx_ctx_t           *actx;
    ngx_http_asyncx_offload_ctx_t   *o;
    ngx_http_asyncx_sse_file_ctx_t  *ctx;

    static const ngx_str_t  what = ngx_string("asyncx_sse");

    c = r->connection;
    actx = ngx_http_get_module_ctx(r, ngx_http_asyncx_module);
    ctx = actx->sse_file;

    if (ctx->job->running) {
        /* a socket event while the open job works: nothing to do yet */
        return;
    }

    if (c->error) {
        ngx_http_finalize_request(r, NGX_HTTP_CLIENT_CLOSED_REQUEST);
        return;
    }

    o = &ctx->open;

    if (o->status != 0) {
        ngx_http_finalize_request(r,
            ngx_http_asyncx_offload_send_failure(r, o, &what));
        return;
    }

    if (r->method == NGX_HTTP_HEAD) {
        ngx_http_finalize_request(r,
                                  ngx_http_asyncx_send_event_stream_header(r));
        return;
    }

    /* the open job also did the first part: its events follow the header */
    ctx->stream.pending = 1;
    r->write_event_handler = ngx_http_asyncx_sse_file_write_handler;

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "asyncx sse: file \"%V\", %O bytes, mode %ui, from %O, "
                   "batch %uL", &ctx->log_path, ctx->scan.size, ctx->mode,
                   ctx->resuming ? ctx->resume.offset : 0,
                   ctx->scan.batch_size);

    rc = ngx_http_asyncx_sse_stream_start(&ctx->stream);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    ngx_http_asyncx_sse_stream_write(&ctx->stream);
}


/*
 * What a scan job left: counters, the log line of an error event, the
 * output buffer.  NGX_OK (events to send), NGX_DECLINED (none),
 * NGX_AGAIN (the output had to grow: post again) or NGX_ERROR.
 */

static ngx_int_t
ngx_http_asyncx_sse_file_job_done(ngx_http_asyncx_sse_stream_t *s)
{
    ngx_http_asyncx_sse_file_ctx_t *ctx = s->data;

    u_char                         *out;
    ngx_buf_t                      *b;
    ngx_uint_t                      level;
    ngx_http_request_t             *r;
    ngx_http_asyncx_ndjson_scan_t  *sc;

    r = s->request;
    sc = &ctx->scan;

    ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_SSE_RECORDS,
                             sc->pos.records - ctx->records);
    ctx->records = sc->pos.records;

    if (sc->need) {
        /* one event larger than the output: it grows, the job reruns */
        out = ngx_palloc(r->pool, sc->need);
        if (out == NULL) {
            return NGX_ERROR;
        }

        (void) ngx_pfree(r->pool, sc->out);

        sc->out = out;
        sc->out_size = sc->need;
        sc->need = 0;

        return NGX_AGAIN;
    }

    if (sc->done && !ctx->stream.done) {
        ctx->stream.done = 1;

        if (sc->error == NULL) {
            ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_SSE_COMPLETED, 1);
            ngx_http_asyncx_metrics_stream(ctx->mode,
                                           NGX_HTTP_ASYNCX_STREAM_COMPLETED,
                                           1);

        } else {
            ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_SSE_ERRORS, 1);
            ngx_http_asyncx_metrics_stream(ctx->mode,
                                           NGX_HTTP_ASYNCX_STREAM_ERRORS, 1);
            level = ctx->err ? NGX_LOG_ERR : NGX_LOG_INFO;

            ngx_log_error(level, r->connection->log, ctx->err,
                          "asyncx sse: \"%V\" at line %uL (offset %O): %s, "
                          "the stream ends with an error event",
                          &ctx->log_path, sc->pos.records + 1,
                          sc->pos.offset, sc->error);
        }
    }

    if (sc->out_len == 0) {
        return NGX_DECLINED;
    }

    ctx->events += sc->nevents;
    ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_SSE_EVENTS, sc->nevents);
    ngx_http_asyncx_metrics_stream(ctx->mode, NGX_HTTP_ASYNCX_STREAM_EVENTS,
                                   sc->nevents);

    b = &ctx->out;
    ngx_memzero(b, sizeof(ngx_buf_t));

    b->start = sc->out;
    b->pos = sc->out;
    b->last = sc->out + sc->out_len;
    b->end = sc->out + sc->out_size;
    b->temporary = 1;
    b->flush = 1;
    b->last_buf = ctx->stream.done;
    b->last_in_chain = 1;

    s->out.buf = b;
    s->out.next = NULL;

    return NGX_OK;
}


static void
ngx_http_asyncx_sse_file_cleanup(void *data)
{
    ngx_http_asyncx_sse_file_ctx_t *ctx = data;

    /* the request pool goes only after a running job is done (blocked) */

    if (ctx->fd != NGX_INVALID_FILE) {
        (void) close(ctx->fd);
        ctx->fd = NGX_INVALID_FILE;
    }

    if (ngx_http_asyncx_sse_stream_close(&ctx->stream) == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_INFO, ctx->request->connection->log, 0,
                      "asyncx sse: client closed the stream of \"%V\" after "
                      "%ui events, %uL lines (offset %O of %O), remaining "
                      "work cancelled", &ctx->log_path, ctx->events,
                      ctx->scan.pos.records, ctx->scan.pos.offset,
                      ctx->scan.size);
    }
}
