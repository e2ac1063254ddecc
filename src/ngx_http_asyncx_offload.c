
/*
 * Copyright (C) asyncx authors
 *
 * Offload handlers (exercise problem 2): file read/write, PBKDF2 hash and
 * verify, large JSON parsing and bulk regex matching.  This file holds
 * the loop side shared by all of them: directives, argument checks, the
 * non-blocking body read, posting the job, and answering when it is done.
 * The thread tasks live in ngx_http_asyncx_offload_file.c (I/O pool) and
 * ngx_http_asyncx_offload_cpu.c (CPU pool).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_http.h"
#include "ngx_http_asyncx_offload_util.h"


/* {"password": ...} or {"password": ..., "hash": ...}, escapes included */
#define NGX_HTTP_ASYNCX_OFFLOAD_AUTH_BODY_MAX  (64 * 1024)

/* a JSON document this large asks for the heap to be trimmed */
#define NGX_HTTP_ASYNCX_OFFLOAD_TRIM_MIN       (256 * 1024)


typedef struct {
    ngx_str_t                      name;
    ngx_uint_t                     method;
    ngx_http_asyncx_pool_role_e    role;
    ngx_http_asyncx_job_run_pt     run;
} ngx_http_asyncx_offload_op_t;


static ngx_int_t ngx_http_asyncx_offload_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_asyncx_offload_path(ngx_http_request_t *r,
    ngx_http_asyncx_offload_ctx_t *ctx, ngx_int_t *rc);
static size_t ngx_http_asyncx_offload_body_max(ngx_http_request_t *r,
    ngx_http_asyncx_offload_ctx_t *ctx);
static const char *ngx_http_asyncx_offload_body_max_name(
    ngx_http_asyncx_offload_ctx_t *ctx);
static ngx_int_t ngx_http_asyncx_offload_too_large(ngx_http_request_t *r,
    ngx_http_asyncx_offload_ctx_t *ctx, size_t max);
static void ngx_http_asyncx_offload_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_asyncx_offload_post(ngx_http_request_t *r,
    ngx_http_asyncx_offload_ctx_t *ctx);
static void ngx_http_asyncx_offload_done(ngx_http_request_t *r);
static ngx_int_t ngx_http_asyncx_offload_run(void *data);
static void ngx_http_asyncx_offload_cleanup(void *data);


static const ngx_http_asyncx_offload_op_t  ngx_http_asyncx_offload_ops[] = {
    { ngx_null_string, 0, 0, NULL },

    /* HEAD answers the GET's headers, Content-Length included */
    { ngx_string("file read"), NGX_HTTP_GET|NGX_HTTP_HEAD,
      NGX_HTTP_ASYNCX_POOL_IO,
      ngx_http_asyncx_offload_file_read_run },

    { ngx_string("file write"), NGX_HTTP_POST, NGX_HTTP_ASYNCX_POOL_IO,
      ngx_http_asyncx_offload_file_write_run },

    { ngx_string("password hash"), NGX_HTTP_POST, NGX_HTTP_ASYNCX_POOL_CPU,
      ngx_http_asyncx_offload_hash_run },

    { ngx_string("password verify"), NGX_HTTP_POST, NGX_HTTP_ASYNCX_POOL_CPU,
      ngx_http_asyncx_offload_verify_run },

    { ngx_string("json parse"), NGX_HTTP_POST, NGX_HTTP_ASYNCX_POOL_CPU,
      ngx_http_asyncx_offload_json_run },

    { ngx_string("regex match"), NGX_HTTP_POST, NGX_HTTP_ASYNCX_POOL_CPU,
      ngx_http_asyncx_offload_regex_run }
};


void
ngx_http_asyncx_offload_init_conf(ngx_http_asyncx_offload_conf_t *conf)
{
    /* ngx_pcalloc() zeroed kind and file_root */
    conf->file_max_size = NGX_CONF_UNSET_SIZE;
    conf->pbkdf2_iterations = NGX_CONF_UNSET_UINT;
    conf->pbkdf2_max_iterations = NGX_CONF_UNSET_UINT;
    conf->password_max_length = NGX_CONF_UNSET_SIZE;
    conf->json_max_items = NGX_CONF_UNSET_UINT;
    conf->json_max_size = NGX_CONF_UNSET_SIZE;
    conf->regex_match_limit = NGX_CONF_UNSET_UINT;
    conf->regex_depth_limit = NGX_CONF_UNSET_UINT;
    conf->regex_max_subjects = NGX_CONF_UNSET_UINT;
    conf->regex_time_limit = NGX_CONF_UNSET_MSEC;
}


char *
ngx_http_asyncx_offload_merge_conf(ngx_conf_t *cf,
    ngx_http_asyncx_offload_conf_t *prev, ngx_http_asyncx_offload_conf_t *conf)
{
    ngx_conf_merge_str_value(conf->file_root, prev->file_root, "");
    ngx_conf_merge_size_value(conf->file_max_size, prev->file_max_size,
                              1024 * 1024);

    /* OWASP Password Storage Cheat Sheet (2023): PBKDF2-HMAC-SHA256 */
    ngx_conf_merge_uint_value(conf->pbkdf2_iterations,
                              prev->pbkdf2_iterations, 600000);
    ngx_conf_merge_uint_value(conf->pbkdf2_max_iterations,
                              prev->pbkdf2_max_iterations, 2000000);
    ngx_conf_merge_size_value(conf->password_max_length,
                              prev->password_max_length, 1024);

    ngx_conf_merge_uint_value(conf->json_max_items, prev->json_max_items,
                              100000);

    /* cJSON takes up to about 40 times a document of small values */
    ngx_conf_merge_size_value(conf->json_max_size, prev->json_max_size,
                              2 * 1024 * 1024);

    ngx_conf_merge_uint_value(conf->regex_match_limit,
                              prev->regex_match_limit, 1000000);
    ngx_conf_merge_uint_value(conf->regex_depth_limit,
                              prev->regex_depth_limit, 10000);
    ngx_conf_merge_uint_value(conf->regex_max_subjects,
                              prev->regex_max_subjects, 1000000);
    ngx_conf_merge_msec_value(conf->regex_time_limit,
                              prev->regex_time_limit, 5000);

    /*
     * where hashes are made: checked against the default count at a
     * server level, it refused a verify-only http or server block
     */
    if (conf->kind == NGX_HTTP_ASYNCX_OFFLOAD_HASH
        && conf->pbkdf2_max_iterations < conf->pbkdf2_iterations)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "asyncx_pbkdf2_max_iterations %ui is below "
                           "asyncx_pbkdf2_iterations %ui: hashes made here "
                           "could not be verified",
                           conf->pbkdf2_max_iterations,
                           conf->pbkdf2_iterations);
        return NGX_CONF_ERROR;
    }

    if ((conf->kind == NGX_HTTP_ASYNCX_OFFLOAD_FILE_READ
         || conf->kind == NGX_HTTP_ASYNCX_OFFLOAD_FILE_WRITE)
        && conf->file_root.len == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" needs \"asyncx_file_root\"",
                           conf->kind == NGX_HTTP_ASYNCX_OFFLOAD_FILE_READ
                           ? "asyncx_file_read" : "asyncx_file_write");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* asyncx_file_read; asyncx_password_hash; ...: the kind is cmd->offset */

char *
ngx_http_asyncx_offload(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    char  *rv;

    rv = ngx_http_asyncx_conf_set_handler(cf, ngx_http_asyncx_offload_handler,
                                          &alcf->content_handler);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    alcf->offload.kind = cmd->offset;

    ngx_http_asyncx_executor_require(&alcf->executor);

    return NGX_CONF_OK;
}


/* asyncx_file_root path; relative to the prefix, like "root" */

char *
ngx_http_asyncx_offload_file_root(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    u_char     *p;
    ngx_str_t  *value, root;

    if (alcf->offload.file_root.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;
    root = value[1];

    if (root.len == 0 || ngx_strlen(root.data) != root.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\"", &value[1],
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (ngx_conf_full_name(cf->cycle, &root, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* "/srv/files/" and "/srv/files" are the same root */
    while (root.len > 1 && root.data[root.len - 1] == '/') {
        root.len--;
    }

    p = ngx_pnalloc(cf->pool, root.len + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(p, root.data, root.len);
    p[root.len] = '\0';

    alcf->offload.file_root.data = p;
    alcf->offload.file_root.len = root.len;

    return NGX_CONF_OK;
}


/*
 * One function: the request's checks in the order their answers are
 * documented, then the one post of the job.
 */

static ngx_int_t
ngx_http_asyncx_offload_handler(ngx_http_request_t *r)
{
    size_t                               max;
    ngx_int_t                            rc;
    uint64_t                             items;
    ngx_pool_cleanup_t                  *cln;
    ngx_http_asyncx_ctx_t               *actx;
    ngx_http_asyncx_loc_conf_t          *alcf;
    ngx_http_asyncx_main_conf_t         *amcf;
    ngx_http_asyncx_offload_ctx_t       *ctx;
    const ngx_http_asyncx_offload_op_t  *op;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_asyncx_module);
    amcf = ngx_http_get_module_main_conf(r, ngx_http_asyncx_module);
    op = &ngx_http_asyncx_offload_ops[alcf->offload.kind];

    if (!(r->method & op->method)) {
        if (ngx_http_asyncx_set_allow(r, op->method) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_asyncx_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                          NGX_LOG_INFO,
                                          "%V: method not allowed, use %s",
                                          &op->name,
                                          (op->method & NGX_HTTP_GET)
                                          ? "GET" : "POST");
    }

    actx = ngx_http_asyncx_get_ctx(r);
    if (actx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (actx->offload != NULL) {
        /* an internal redirect back here: never post twice */
        return ngx_http_asyncx_send_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                          NGX_LOG_ERR,
                                          "%V: request already offloaded",
                                          &op->name);
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_asyncx_offload_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* freed last with the pool: the thread's output, on every path */
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_asyncx_offload_cleanup;
    cln->data = ctx;

    ctx->conf = &alcf->offload;
    ctx->duration_unit = &amcf->duration_unit;
    ctx->records = amcf->records;
    ctx->request = r;
    ctx->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
    ctx->body.data = (u_char *) "";

    actx->offload = ctx;

    switch (alcf->offload.kind) {

    case NGX_HTTP_ASYNCX_OFFLOAD_FILE_READ:
    case NGX_HTTP_ASYNCX_OFFLOAD_FILE_WRITE:
        if (ngx_http_asyncx_offload_path(r, ctx, &rc) != NGX_OK) {
            return rc;
        }

        break;

    case NGX_HTTP_ASYNCX_OFFLOAD_JSON:
        /* the default size obeys the operator's bound too */
        items = ngx_min(10000, alcf->offload.json_max_items);

        rc = ngx_http_asyncx_arg_uint(r, "items", 1,
                                      alcf->offload.json_max_items, &items);
        if (rc == NGX_ERROR) {
            return ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              NGX_LOG_INFO,
                                              "%V: \"items\" must be an "
                                              "integer from 1 to %ui",
                                              &op->name,
                                              alcf->offload.json_max_items);
        }

        ctx->items = (ngx_uint_t) items;
        break;

    default:
        break;
    }

    if (op->method & NGX_HTTP_GET) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        rc = ngx_http_asyncx_offload_post(r, ctx);

        if (rc == NGX_DONE) {
            /* the job's completion finalizes the request */
            r->main->count++;
        }

        return rc;
    }

    /* refuse a declared oversized body before reading any of it */
    max = ngx_http_asyncx_offload_body_max(r, ctx);

    if (r->headers_in.content_length_n > 0
        && (uint64_t) r->headers_in.content_length_n > (uint64_t) max)
    {
        return ngx_http_asyncx_offload_too_large(r, ctx, max);
    }

    rc = ngx_http_read_client_request_body(r,
                                       ngx_http_asyncx_offload_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/*
 * ?path=...: a relative path below asyncx_file_root, checked lexically.
 * NGX_ERROR when refused, with *rc what the refusal's answer returned.
 */

static ngx_int_t
ngx_http_asyncx_offload_path(ngx_http_request_t *r,
    ngx_http_asyncx_offload_ctx_t *ctx, ngx_int_t *rc)
{
    u_char     *p;
    size_t      dir_len, n;
    ngx_str_t  *root;

    switch (ngx_http_asyncx_arg(r, "path", &ctx->path)) {

    case NGX_ERROR:
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_ERROR;

    case NGX_DECLINED:
        ctx->path.len = 0;
        break;
    }

    if (ctx->path.len == 0) {
        *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO,
                                         "the \"path\" argument is required");
        return NGX_ERROR;
    }

    /*
     * messages quote at most 200 bytes of it, whole characters only,
     * with its '"' and '\' escaped (the thread's messages too)
     */
    n = ngx_http_asyncx_utf8_cut(ctx->path.data, ctx->path.len,
                                 NGX_HTTP_ASYNCX_OFFLOAD_PATH_QUOTE);

    if (ngx_http_asyncx_quote(r->pool, ctx->path.data, n, 0, &ctx->quoted)
        != NGX_OK)
    {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_ERROR;
    }

    if (ngx_http_asyncx_check_rel_path(ctx->path.data, ctx->path.len)
        != NGX_OK)
    {
        *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_FORBIDDEN, NGX_LOG_INFO,
                                         "path \"%V\" is not allowed: "
                                         "absolute paths, \"..\", NUL bytes "
                                         "and backslashes are refused",
                                         &ctx->quoted);
        return NGX_ERROR;
    }

    /*
     * Names are echoed in JSON answers: they must be text.  Also refuses
     * overlong forms such as %C0%AE, which some decoders take for ".".
     */

    if (ngx_http_asyncx_utf8_valid(ctx->path.data, ctx->path.len) != NGX_OK) {
        *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO,
                                         "path \"%V\" is not valid UTF-8",
                                         &ctx->quoted);
        return NGX_ERROR;
    }

    if (ctx->conf->kind == NGX_HTTP_ASYNCX_OFFLOAD_FILE_WRITE
        && ngx_http_asyncx_path_split(ctx->path.data, ctx->path.len,
                                      &dir_len)
           != NGX_OK)
    {
        *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO,
                                         "path \"%V\" does not name a file",
                                         &ctx->quoted);
        return NGX_ERROR;
    }

    root = &ctx->conf->file_root;

    if (root->len + 1 + ctx->path.len >= PATH_MAX) {
        *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO,
                                         "path is too long");
        return NGX_ERROR;
    }

    p = ngx_pnalloc(r->pool, root->len + 1 + ctx->path.len + 1);
    if (p == NULL) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_ERROR;
    }

    ctx->full.data = p;
    p = ngx_cpymem(p, root->data, root->len);
    *p++ = '/';
    p = ngx_cpymem(p, ctx->path.data, ctx->path.len);
    *p = '\0';
    ctx->full.len = p - ctx->full.data;

    return NGX_OK;
}


static size_t
ngx_http_asyncx_offload_body_max(ngx_http_request_t *r,
    ngx_http_asyncx_offload_ctx_t *ctx)
{
    ngx_http_core_loc_conf_t  *clcf;

    switch (ctx->conf->kind) {

    case NGX_HTTP_ASYNCX_OFFLOAD_FILE_WRITE:
        return ctx->conf->file_max_size;

    case NGX_HTTP_ASYNCX_OFFLOAD_HASH:
    case NGX_HTTP_ASYNCX_OFFLOAD_VERIFY:
        return NGX_HTTP_ASYNCX_OFFLOAD_AUTH_BODY_MAX;

    case NGX_HTTP_ASYNCX_OFFLOAD_JSON:
    case NGX_HTTP_ASYNCX_OFFLOAD_REGEX:
        /* the tree, not the text, is what a document costs in memory */
        return ctx->conf->json_max_size;

    default:
        /* client_max_body_size already caps what nginx accepts */
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

        return clcf->client_max_body_size ? (size_t) clcf->client_max_body_size
                                          : NGX_MAX_SIZE_T_VALUE;
    }
}


/* the directive to raise, where the operator may not guess it */

static const char *
ngx_http_asyncx_offload_body_max_name(ngx_http_asyncx_offload_ctx_t *ctx)
{
    switch (ctx->conf->kind) {

    case NGX_HTTP_ASYNCX_OFFLOAD_JSON:
    case NGX_HTTP_ASYNCX_OFFLOAD_REGEX:
        return " (asyncx_json_max_size)";

    default:
        return "";
    }
}


/*
 * The 413 of a body over the handler's limit: at once when the declared
 * Content-Length is over it, or once a chunked body is read.  Refused
 * from the headers, the body has not been read: like nginx's own
 * client_max_body_size, no "100 Continue" invites the client to send
 * what is refused (ngx_http_discard_request_body() would send it), and
 * what the client sends anyway is read and discarded, so the connection
 * stays usable for the next request.
 */

static ngx_int_t
ngx_http_asyncx_offload_too_large(ngx_http_request_t *r,
    ngx_http_asyncx_offload_ctx_t *ctx, size_t max)
{
    r->expect_tested = 1;

    return ngx_http_asyncx_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                      NGX_LOG_INFO,
                                      "request body is larger than %uz "
                                      "bytes%s", max,
                                   ngx_http_asyncx_offload_body_max_name(ctx));
}


static void
ngx_http_asyncx_offload_body_handler(ngx_http_request_t *r)
{
    size_t                           max;
    ngx_int_t                        rc;
    ngx_http_asyncx_ctx_t           *actx;
    ngx_http_asyncx_offload_ctx_t   *ctx;

    actx = ngx_http_get_module_ctx(r, ngx_http_asyncx_module);
    ctx = actx->offload;

    max = ngx_http_asyncx_offload_body_max(r, ctx);

    rc = ngx_http_asyncx_body_copy(r, &ctx->body, max);

    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r,
                                ngx_http_asyncx_offload_too_large(r, ctx, max));
        return;
    }

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (rc == NGX_AGAIN) {
        /* parts in temp files: the task reads them, not the loop */
        ctx->body_files = r->request_body->bufs;
    }

    rc = ngx_http_asyncx_offload_post(r, ctx);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


/* NGX_DONE when posted; otherwise what to finalize the request with */

static ngx_int_t
ngx_http_asyncx_offload_post(ngx_http_request_t *r,
    ngx_http_asyncx_offload_ctx_t *ctx)
{
    ngx_int_t                            rc;
    ngx_http_asyncx_job_t               *job;
    const ngx_http_asyncx_offload_op_t  *op;

    op = &ngx_http_asyncx_offload_ops[ctx->conf->kind];

    job = ngx_http_asyncx_job_create(r, op->role);
    if (job == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->job = job;

    if (ngx_http_asyncx_job_skip_if_client_leaves(job) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->write_event_handler = ngx_http_asyncx_offload_done;

    rc = ngx_http_asyncx_job_post(job, ngx_http_asyncx_offload_run, ctx);

    if (rc == NGX_BUSY) {
        r->write_event_handler = ngx_http_request_empty_handler;
        return ngx_http_asyncx_job_reject(r);
    }

    if (rc != NGX_OK) {
        r->write_event_handler = ngx_http_request_empty_handler;
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /*
     * Notice a client that goes away while the task runs: nginx then
     * terminates the request, which stays allocated (r->main->blocked)
     * until the task is done.
     */

    if (!r->discard_body) {
        ngx_http_asyncx_watch_client(r);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "asyncx offload: %V posted, body %uz bytes",
                   &op->name, ctx->body.len);

    return NGX_DONE;
}


static void
ngx_http_asyncx_offload_done(ngx_http_request_t *r)
{
    ngx_int_t                            rc;
    ngx_http_asyncx_ctx_t               *actx;
    ngx_http_asyncx_offload_ctx_t       *ctx;
    const ngx_http_asyncx_offload_op_t  *op;

    actx = ngx_http_get_module_ctx(r, ngx_http_asyncx_module);
    ctx = actx->offload;

    if (ctx->job->running) {
        /* a write event of the connection, not the job: keep waiting */
        return;
    }

    op = &ngx_http_asyncx_offload_ops[ctx->conf->kind];

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "asyncx offload: %V done, status %ui, queued %uL us, "
                   "ran %uL us", &op->name, ctx->status,
                   ctx->job->started_at - ctx->job->posted_at,
                   ctx->job->finished_at - ctx->job->started_at);

    if (ctx->status == NGX_HTTP_OK && ctx->out != NULL) {
        rc = ngx_http_asyncx_send_json(r, NGX_HTTP_OK, ctx->out, ctx->out_len);

    } else {
        if (ctx->status == 422) {
            /* nginx 1.22 knows no reason phrase for 422 */
            ngx_str_set(&r->headers_out.status_line,
                        "422 Unprocessable Entity");
        }

        rc = ngx_http_asyncx_offload_send_failure(r, ctx, &op->name);
    }

    /* send_json() copied it into r->pool */
    if (ctx->out) {
        cJSON_free(ctx->out);
        ctx->out = NULL;
    }

    ngx_http_finalize_request(r, rc);
}


static void
ngx_http_asyncx_offload_cleanup(void *data)
{
    ngx_http_asyncx_offload_ctx_t  *ctx = data;

    /* the request pool goes only after the task is done (blocked) */

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "asyncx offload: cleanup, %s, %uz result bytes freed",
                   ctx->job && ctx->job->running ? "task running" : "idle",
                   ctx->out ? ctx->out_len : 0);

    if (ctx->out) {
        cJSON_free(ctx->out);
        ctx->out = NULL;
    }
}


/* thread side helpers: no nginx pools, no logging */

/*
 * A task that answers a client error (400, 403, 404, 422) did its work:
 * only server-side failures count as "failed" in the pool's counters.
 */

static ngx_int_t
ngx_http_asyncx_offload_run(void *data)
{
    ngx_http_asyncx_offload_ctx_t *ctx = data;

    ngx_int_t  rc;

    rc = ngx_http_asyncx_offload_ops[ctx->conf->kind].run(ctx);

    /*
     * A large document's tree (cJSON: a node of 64 bytes and more per
     * value, up to 40 times the text) is freed in small chunks that
     * glibc keeps in this thread's arena: the executor trims the heap
     * once the pools are idle, or the worker would keep its peak.
     */
    if (ctx->parsed >= NGX_HTTP_ASYNCX_OFFLOAD_TRIM_MIN) {
        ctx->job->freed_large = 1;
    }

    if (rc == NGX_HTTP_ASYNCX_JOB_STOPPED) {
        /* its client left: neither done nor failed */
        return rc;
    }

    if (rc != NGX_OK && ctx->status < NGX_HTTP_INTERNAL_SERVER_ERROR) {
        return NGX_OK;
    }

    return rc;
}


/*
 * The answer to a failed task: a client's error names what it sent; a
 * fault of the server (500) is detailed in the log only, as its detail
 * names the server's files (the root, an errno text).
 */

ngx_int_t
ngx_http_asyncx_offload_send_failure(ngx_http_request_t *r,
    ngx_http_asyncx_offload_ctx_t *ctx, const ngx_str_t *what)
{
    u_char  *p, detail[NGX_HTTP_ASYNCX_OFFLOAD_MSG_LEN + 64];

    if (ctx->msg_len == 0) {
        ctx->msg_len = ngx_cpymem(ctx->msg, "internal error", 14) - ctx->msg;
    }

    if (ctx->status != NGX_HTTP_INTERNAL_SERVER_ERROR) {
        return ngx_http_asyncx_send_error(r, ctx->status,
                                          ctx->status > 500 ? NGX_LOG_ERR
                                                            : NGX_LOG_INFO,
                                          "%V: %*s", what, ctx->msg_len,
                                          ctx->msg);
    }

    p = ngx_slprintf(detail, detail + sizeof(detail), "%V: %*s",
                     what, ctx->msg_len, ctx->msg);

    return ngx_http_asyncx_send_server_error(r, what, detail,
                                   ngx_http_asyncx_utf8_trim(detail,
                                                             p - detail));
}


ngx_int_t
ngx_http_asyncx_offload_fail(ngx_http_asyncx_offload_ctx_t *ctx,
    ngx_uint_t status, ngx_err_t err, const char *fmt, ...)
{
    u_char   *p, *last;
    va_list   args;

    last = ctx->msg + sizeof(ctx->msg);

    va_start(args, fmt);
    p = ngx_vslprintf(ctx->msg, last, fmt, args);
    va_end(args);

    if (err) {
        p = ngx_slprintf(p, last, " (%d: ", err);
        p = ngx_strerror(err, p, last - p);
        p = ngx_slprintf(p, last, ")");
    }

    /* cut at the buffer's end: not inside a character */
    ctx->msg_len = ngx_http_asyncx_utf8_trim(ctx->msg, p - ctx->msg);
    ctx->status = status;
    ctx->err = err;

    return NGX_ERROR;
}


/* completes ctx->body from the request body's temp file parts */

ngx_int_t
ngx_http_asyncx_offload_body(ngx_http_asyncx_offload_ctx_t *ctx)
{
    ngx_err_t  err;

    if (ctx->body_files == NULL) {
        return NGX_OK;
    }

    err = ngx_http_asyncx_body_read_files(ctx->body_files, ctx->body.data);

    if (err) {
        return ngx_http_asyncx_offload_fail(ctx,
                                            NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            err, "cannot read the request "
                                            "body from its temp file");
    }

    return NGX_OK;
}


