
/*
 * Copyright (C) asyncx authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <cjson/cJSON.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_conf.h"
#include "ngx_http_asyncx_json.h"
#include "ngx_http_asyncx_http.h"
#include "ngx_http_asyncx_pipeline_json.h"
#include "ngx_http_asyncx_mock.h"


#define NGX_HTTP_ASYNCX_MOCK_MAX_DELAY     60000
#define NGX_HTTP_ASYNCX_MOCK_FAIL_DELAY    10000
/* the bytes of a client's value that a message quotes */
#define NGX_HTTP_ASYNCX_MOCK_QUOTE         64
#define NGX_HTTP_ASYNCX_MOCK_BIG_DEFAULT   65536
/* what any client may make one answer hold in memory, unless max_big= */
#define NGX_HTTP_ASYNCX_MOCK_MAX_BIG       (1024 * 1024)
#define NGX_HTTP_ASYNCX_MOCK_BIG_MAX       (16 * 1024 * 1024)
/* bodies up to this size are parsed to describe what was received */
#define NGX_HTTP_ASYNCX_MOCK_PARSE_MAX     (64 * 1024)


typedef enum {
    NGX_HTTP_ASYNCX_MOCK_FAIL_NONE = 0,
    NGX_HTTP_ASYNCX_MOCK_FAIL_STATUS,
    NGX_HTTP_ASYNCX_MOCK_FAIL_SLOW,
    NGX_HTTP_ASYNCX_MOCK_FAIL_TEXT,
    NGX_HTTP_ASYNCX_MOCK_FAIL_BIG
} ngx_http_asyncx_mock_fail_e;


typedef struct {
    ngx_http_request_t            *request;
    ngx_http_asyncx_mock_conf_t   *conf;
    ngx_event_t                    timer;
    ngx_msec_t                     delay;
    ngx_http_asyncx_mock_fail_e    fail;
    ngx_uint_t                     fail_status;
    size_t                         big;
    ngx_str_t                      answer;
    ngx_uint_t                     answer_status;
    ngx_buf_t                      answer_buf;   /* made with the ctx */
    unsigned                       active:1;
    unsigned                       error_sent:1;
} ngx_http_asyncx_mock_ctx_t;


static ngx_int_t ngx_http_asyncx_mock_handler(ngx_http_request_t *r);
static void ngx_http_asyncx_mock_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_asyncx_mock_parse_args(ngx_http_request_t *r,
    ngx_http_asyncx_mock_ctx_t *ctx);
static void ngx_http_asyncx_mock_timer_handler(ngx_event_t *ev);
static void ngx_http_asyncx_mock_cleanup(void *data);
static ngx_int_t ngx_http_asyncx_mock_prepare(ngx_http_asyncx_mock_ctx_t *ctx);
static ngx_int_t ngx_http_asyncx_mock_respond(ngx_http_asyncx_mock_ctx_t *ctx);
static cJSON *ngx_http_asyncx_mock_received(ngx_http_request_t *r,
    ngx_uint_t echo);
static ngx_int_t ngx_http_asyncx_mock_summary(ngx_http_request_t *r,
    ngx_str_t *out);
static u_char *ngx_http_asyncx_mock_names(u_char *p, u_char **pos,
    u_char *last);
static off_t ngx_http_asyncx_mock_body_bytes(ngx_http_request_t *r);
static ngx_int_t ngx_http_asyncx_mock_body_text(ngx_http_request_t *r,
    ngx_str_t *text);
static ngx_int_t ngx_http_asyncx_mock_send_text(ngx_http_request_t *r,
    ngx_uint_t status, u_char *data, size_t len);
static cJSON *ngx_http_asyncx_mock_add_bytes(ngx_http_request_t *r,
    cJSON *obj, const char *key, ngx_str_t *s);


/* delay=0 answers at once; max_delay=0 lets no request ask for a delay */
static ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_mock_delay_bounds =
    { 0, NGX_HTTP_ASYNCX_CONF_MSEC_MAX, NGX_HTTP_ASYNCX_CONF_MSEC, 0 };


static ngx_str_t  ngx_http_asyncx_mock_fail_modes[] = {
    ngx_null_string,
    ngx_string("status"),
    ngx_string("slow"),
    ngx_string("text"),
    ngx_string("big")
};


/* "delay=1s" and "delay=2s" set the same thing; "echo=" is one key */

static ngx_uint_t
ngx_http_asyncx_mock_same_key(ngx_str_t *a, ngx_str_t *b)
{
    u_char  *ea, *eb;

    ea = ngx_strlchr(a->data, a->data + a->len, '=');
    eb = ngx_strlchr(b->data, b->data + b->len, '=');

    if (ea == NULL || eb == NULL) {
        return 0;
    }

    return ea - a->data == eb - b->data
           && ngx_strncmp(a->data, b->data, ea - a->data) == 0;
}


/*
 * One function: the directive's parameters read in one loop, as nginx's
 * own directives read theirs; demo code, split when it grows.
 */

char *
ngx_http_asyncx_mock_service(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    u_char                       *p;
    char                         *text, *rv;
    cJSON                        *json;
    size_t                        len;
    uint64_t                      v;
    ngx_int_t                     n;
    ngx_str_t                    *value, *delay, s;
    ngx_uint_t                    i, j;
    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_asyncx_json_info_t   info;
    ngx_http_asyncx_mock_conf_t  *mcf;

    /* the product keeps a slot for the demo's location conf, untyped */
    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_asyncx_mock_conf_t));
    if (mcf == NULL) {
        return NGX_CONF_ERROR;
    }

    alcf->demo = mcf;
    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    rv = ngx_http_asyncx_conf_set_handler(cf, ngx_http_asyncx_mock_handler,
                                          &alcf->content_handler);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    /* the last path segment of the location names the service */
    p = clcf->name.data + clcf->name.len;
    while (p > clcf->name.data && p[-1] != '/') {
        p--;
    }

    mcf->name.data = p;
    mcf->name.len = clcf->name.data + clcf->name.len - p;

    if (ngx_http_asyncx_pipeline_check_name(mcf->name.data, mcf->name.len)
        != NGX_OK)
    {
        ngx_str_set(&mcf->name, "mock");
    }

    mcf->delay = 0;
    mcf->max_delay = NGX_HTTP_ASYNCX_MOCK_MAX_DELAY;
    mcf->max_big = NGX_HTTP_ASYNCX_MOCK_MAX_BIG;
    mcf->status = NGX_HTTP_OK;
    mcf->fail_status = NGX_HTTP_INTERNAL_SERVER_ERROR;
    mcf->echo = NGX_HTTP_ASYNCX_MOCK_ECHO_SUMMARY;
    ngx_str_null(&mcf->json);

    value = cf->args->elts;
    delay = NULL;

    for (i = 1; i < cf->args->nelts; i++) {

        /* one value each: a second would silently replace the first */
        for (j = 1; j < i; j++) {
            if (ngx_http_asyncx_mock_same_key(&value[i], &value[j])) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "duplicate parameter \"%V\" in \"%V\"",
                                   &value[i], &cmd->name);
                return NGX_CONF_ERROR;
            }
        }

        if (ngx_strncmp(value[i].data, "name=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            if (ngx_http_asyncx_pipeline_check_name(s.data, s.len) != NGX_OK) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid value \"%V\" in \"%V\", expected "
                                   "a service name", &value[i],
                                   &cmd->name);
                return NGX_CONF_ERROR;
            }

            mcf->name = s;
            continue;
        }

        if (ngx_strncmp(value[i].data, "delay=", 6) == 0
            || ngx_strncmp(value[i].data, "max_delay=", 10) == 0)
        {
            p = (u_char *) ngx_strchr(value[i].data, '=') + 1;
            s.data = p;
            s.len = value[i].data + value[i].len - p;

            if (ngx_http_asyncx_conf_parse_bounded(&s,
                                            &ngx_http_asyncx_mock_delay_bounds,
                                            &v)
                != NGX_OK)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid value \"%V\" in \"%V\", "
                                   "expected 0..%uL ms", &value[i],
                                   &cmd->name,
                                   ngx_http_asyncx_mock_delay_bounds.max);
                return NGX_CONF_ERROR;
            }

            if (value[i].data[0] == 'd') {
                mcf->delay = (ngx_msec_t) v;
                delay = &value[i];

            } else {
                mcf->max_delay = (ngx_msec_t) v;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "max_big=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            n = ngx_parse_size(&s);

            if (n < 1 || n > NGX_HTTP_ASYNCX_MOCK_BIG_MAX) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid value \"%V\" in \"%V\", "
                                   "expected 1..%d bytes (16m)", &value[i],
                                   &cmd->name, NGX_HTTP_ASYNCX_MOCK_BIG_MAX);
                return NGX_CONF_ERROR;
            }

            mcf->max_big = (size_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "status=", 7) == 0
            || ngx_strncmp(value[i].data, "fail_status=", 12) == 0)
        {
            p = (u_char *) ngx_strchr(value[i].data, '=') + 1;
            n = ngx_atoi(p, value[i].data + value[i].len - p);

            /*
             * the mock always answers JSON: not a status that has no
             * body (204, 205, 304), nor one of nginx's own codes
             */
            if (n == NGX_HTTP_NO_CONTENT || n == 205 /* Reset Content */
                || n == NGX_HTTP_NOT_MODIFIED
                || (n != NGX_ERROR
                    && ngx_http_asyncx_conf_nginx_status(n) == NGX_OK))
            {
                goto invalid_status;
            }

            if (value[i].data[0] == 's') {
                if (n < 200 || n > 599) {
                    goto invalid_status;
                }

                mcf->status = n;

            } else {
                if (n < 400 || n > 599) {
                    goto invalid_status;
                }

                mcf->fail_status = n;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "json=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            /* printed back by cJSON: no U+0000 to cut a string at */
            json = ngx_http_asyncx_json_parse(s.data, s.len,
                                              NGX_HTTP_ASYNCX_JSON_NO_NUL,
                                              &info);

            if (json == NULL && info.nul) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid value \"%V\" in \"%V\", "
                                   "U+0000 (\\u0000) in a string at byte "
                                   "%uz: refused, it would cut the string "
                                   "short", &value[i], &cmd->name,
                                   info.offset);
                return NGX_CONF_ERROR;
            }

            if (json == NULL || !cJSON_IsObject(json)) {
                cJSON_Delete(json);
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid value \"%V\" in \"%V\", "
                                   "expected a JSON object", &value[i],
                                   &cmd->name);
                return NGX_CONF_ERROR;
            }

            /* the mock writes these itself: an answer would have two */
            if (cJSON_GetObjectItemCaseSensitive(json, "service")
                || cJSON_GetObjectItemCaseSensitive(json, "delay_ms")
                || cJSON_GetObjectItemCaseSensitive(json, "received"))
            {
                cJSON_Delete(json);
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid value \"%V\" in \"%V\", "
                                   "the members \"service\", \"delay_ms\" "
                                   "and \"received\" are the mock's own",
                                   &value[i], &cmd->name);
                return NGX_CONF_ERROR;
            }

            /* kept as the members' text, spliced into every answer */
            text = cJSON_PrintUnformatted(json);
            cJSON_Delete(json);

            if (text == NULL) {
                return NGX_CONF_ERROR;
            }

            len = ngx_strlen(text);

            mcf->json.len = len - 2;
            mcf->json.data = ngx_pnalloc(cf->pool, len);

            if (mcf->json.data == NULL) {
                cJSON_free(text);
                return NGX_CONF_ERROR;
            }

            ngx_memcpy(mcf->json.data, text + 1, len - 2);
            cJSON_free(text);
            continue;
        }

        if (ngx_strcmp(value[i].data, "echo=summary") == 0) {
            mcf->echo = NGX_HTTP_ASYNCX_MOCK_ECHO_SUMMARY;
            continue;
        }

        if (ngx_strcmp(value[i].data, "echo=body") == 0) {
            mcf->echo = NGX_HTTP_ASYNCX_MOCK_ECHO_BODY;
            continue;
        }

        if (ngx_strcmp(value[i].data, "echo=off") == 0) {
            mcf->echo = NGX_HTTP_ASYNCX_MOCK_ECHO_OFF;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\"",
                           &value[i], &cmd->name);
        return NGX_CONF_ERROR;
    }

    /* cJSON and log lines want it NUL-terminated */
    p = ngx_pnalloc(cf->pool, mcf->name.len + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(p, mcf->name.data, mcf->name.len);
    p[mcf->name.len] = '\0';
    mcf->name.data = p;

    if (mcf->delay > mcf->max_delay) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\", expected at "
                           "most max_delay (%M ms)", delay, &cmd->name,
                           mcf->max_delay);
        return NGX_CONF_ERROR;
    }


    return NGX_CONF_OK;

invalid_status:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\", expected %s "
                       "with a body, not nginx's own 444, 494..497, 499",
                       &value[i], &cmd->name,
                       value[i].data[0] == 's' ? "200..599 (not 204, 205, 304)"
                                               : "400..599");
    return NGX_CONF_ERROR;
}


/*
 * Works as a main request and as a subrequest (in memory or not): a
 * subrequest's "body" is whatever its parent attached, and reading it
 * returns at once.
 */

static ngx_int_t
ngx_http_asyncx_mock_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_asyncx_mock_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_asyncx_mock_body_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_pool_cleanup_t           *cln;
    ngx_http_asyncx_ctx_t        *actx;
    ngx_http_asyncx_loc_conf_t   *alcf;
    ngx_http_asyncx_mock_ctx_t   *ctx;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_asyncx_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_asyncx_mock_ctx_t));
    if (ctx == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->request = r;
    ctx->conf = alcf->demo;

    rc = ngx_http_asyncx_mock_parse_args(r, ctx);
    if (rc != NGX_OK || ctx->error_sent) {
        /* a 400 was sent already: rc is what sending it returned */
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (ngx_http_asyncx_mock_prepare(ctx) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->delay == 0) {
        ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_PIPELINE_MOCK_TOTAL, 1);
        ngx_http_finalize_request(r, ngx_http_asyncx_mock_respond(ctx));
        return;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cln->handler = ngx_http_asyncx_mock_cleanup;
    cln->data = ctx;

    ctx->timer.handler = ngx_http_asyncx_mock_timer_handler;
    ctx->timer.data = ctx;
    ctx->timer.log = r->connection->log;

    /*
     * Timers count from the event loop's cached clock, which is as old as
     * this iteration: refresh it, so the delay holds against the real
     * clock the pipeline times its calls with, also in a busy worker.
     * That clock counts whole milliseconds, so a timer fires up to one
     * early by the microsecond clock: one more keeps the delay a floor.
     */
    ngx_time_update();
    ngx_add_timer(&ctx->timer, ctx->delay ? ctx->delay + 1 : 0);

    ctx->active = 1;
    ngx_http_asyncx_gauge_add(NGX_HTTP_ASYNCX_GAUGE_MOCKS, 1);
    ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_PIPELINE_MOCK_TOTAL, 1);

    /*
     * A client that leaves during the delay ends the request: watched
     * here for the main request, and for a subrequest of another module
     * (auth_request, SSI), whose main request nginx does not watch (a
     * subrequest gets the connection's read events while it is the
     * active one).  The module's own pipelines and limit tests watch
     * their client themselves.
     */
    actx = ngx_http_get_module_ctx(r->main, ngx_http_asyncx_module);

    if (r == r->main
        || actx == NULL
        || (actx->pipeline == NULL && actx->limit_test == NULL))
    {
        ngx_http_asyncx_watch_client(r);
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "asyncx mock: \"%V\" answers in %M ms, fail mode %ui",
                   &ctx->conf->name, ctx->delay, (ngx_uint_t) ctx->fail);
}


/*
 * One function: every query argument the service takes, bounded and
 * refused where it is read; a table of them is the next split.
 */

static ngx_int_t
ngx_http_asyncx_mock_parse_args(ngx_http_request_t *r,
    ngx_http_asyncx_mock_ctx_t *ctx)
{
    uint64_t                      v;
    ngx_int_t                     n, rc;
    ngx_str_t                     s;
    ngx_uint_t                    i;
    ngx_msec_t                    extra;
    ngx_http_asyncx_mock_conf_t  *mcf;

    mcf = ctx->conf;

    ctx->delay = mcf->delay;
    ctx->fail_status = mcf->fail_status;
    ctx->big = ngx_min(NGX_HTTP_ASYNCX_MOCK_BIG_DEFAULT, mcf->max_big);
    extra = NGX_HTTP_ASYNCX_MOCK_FAIL_DELAY;

    rc = ngx_http_asyncx_arg(r, "delay", &s);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_OK) {
        n = ngx_parse_time(&s, 0);

        if (n == NGX_ERROR || (ngx_msec_t) n > mcf->max_delay) {
            /* quoted whole, or cut before a character: the quote ends */
            if (ngx_http_asyncx_quote(r->pool, s.data,
                                      ngx_http_asyncx_utf8_cut(s.data, s.len,
                                          NGX_HTTP_ASYNCX_MOCK_QUOTE),
                                      0, &s)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            ctx->error_sent = 1;

            if (n == NGX_ERROR) {
                return ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST,
                                                  NGX_LOG_INFO,
                                                  "invalid delay \"%V\"",
                                                  &s);
            }

            return ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              NGX_LOG_INFO,
                                              "delay \"%V\" exceeds the "
                                              "maximum of %M ms",
                                              &s, mcf->max_delay);
        }

        ctx->delay = (ngx_msec_t) n;
    }

    rc = ngx_http_asyncx_arg(r, "fail", &s);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED
        || !ngx_http_asyncx_pipeline_in_list(s.data, s.len, mcf->name.data,
                                             mcf->name.len))
    {
        return NGX_OK;
    }

    /* this service is told to fail: how */

    ctx->fail = NGX_HTTP_ASYNCX_MOCK_FAIL_STATUS;

    rc = ngx_http_asyncx_arg(r, "fail_mode", &s);

    if (rc == NGX_OK) {
        for (i = 1; i < sizeof(ngx_http_asyncx_mock_fail_modes)
                        / sizeof(ngx_str_t); i++)
        {
            if (s.len == ngx_http_asyncx_mock_fail_modes[i].len
                && ngx_strncmp(s.data, ngx_http_asyncx_mock_fail_modes[i].data,
                               s.len) == 0)
            {
                ctx->fail = i;
                break;
            }
        }

        if (i == sizeof(ngx_http_asyncx_mock_fail_modes) / sizeof(ngx_str_t))
        {
            ctx->error_sent = 1;
            return ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              NGX_LOG_INFO,
                                              "invalid fail_mode \"%V\", use "
                                              "status, slow, text or big",
                                              &s);
        }
    }

    rc = ngx_http_asyncx_arg_uint(r, "fail_status", 400, 599, &v);

    if (rc == NGX_ERROR) {
        ctx->error_sent = 1;
        return ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          NGX_LOG_INFO,
                                          "invalid fail_status, use a number "
                                          "from 400 to 599");
    }

    if (rc == NGX_OK) {
        ctx->fail_status = (ngx_uint_t) v;
    }

    /* the answer is held in memory until the client has read it */
    rc = ngx_http_asyncx_arg_uint(r, "big", 1, mcf->max_big, &v);

    if (rc == NGX_ERROR) {
        ctx->error_sent = 1;
        return ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          NGX_LOG_INFO,
                                          "invalid big, use a byte count "
                                          "from 1 to %uz (max_big)",
                                          mcf->max_big);
    }

    if (rc == NGX_OK) {
        ctx->big = (size_t) v;
    }

    if (ctx->fail == NGX_HTTP_ASYNCX_MOCK_FAIL_SLOW) {
        rc = ngx_http_asyncx_arg(r, "fail_delay", &s);

        if (rc == NGX_OK) {
            n = ngx_parse_time(&s, 0);

            if (n == NGX_ERROR) {
                ctx->error_sent = 1;
                return ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST,
                                                  NGX_LOG_INFO,
                                                  "invalid fail_delay \"%V\"",
                                                  &s);
            }

            extra = (ngx_msec_t) n;
        }

        /* slow, but bounded: never longer than max_delay in total */
        ctx->delay += extra;

        if (ctx->delay > mcf->max_delay) {
            ctx->delay = mcf->max_delay;
        }
    }

    return NGX_OK;
}


static void
ngx_http_asyncx_mock_timer_handler(ngx_event_t *ev)
{
    ngx_connection_t            *c;
    ngx_http_request_t          *r;
    ngx_http_asyncx_mock_ctx_t  *ctx;

    ctx = ev->data;
    r = ctx->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    ngx_http_finalize_request(r, ngx_http_asyncx_mock_respond(ctx));
    ngx_http_run_posted_requests(c);
}


/* the request pool is going away: on abort the timer is still armed */

static void
ngx_http_asyncx_mock_cleanup(void *data)
{
    ngx_http_asyncx_mock_ctx_t  *ctx = data;

    if (ctx->timer.timer_set) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ctx->timer.log, 0,
                       "asyncx mock: \"%V\" ended before its delay, "
                       "timer deleted", &ctx->conf->name);
        ngx_del_timer(&ctx->timer);
    }

    if (ctx->active) {
        ctx->active = 0;
        ngx_http_asyncx_gauge_add(NGX_HTTP_ASYNCX_GAUGE_MOCKS, -1);
    }
}


/*
 * The answer is made when the request is read, as a service works
 * before its delay, and only sent when the delay is over: a wave of
 * orders whose calls end together then has only the sending to do.
 * The text and big fail modes are made when sent (respond): a big
 * answer is not held through the delay.
 *
 * One function: the echo and the fail status decide the body together.
 */

static ngx_int_t
ngx_http_asyncx_mock_prepare(ngx_http_asyncx_mock_ctx_t *ctx)
{
    u_char                       *p, *data, *last;
    char                         *text;
    cJSON                        *received;
    size_t                        len;
    ngx_int_t                     rc;
    ngx_str_t                     rcv;
    ngx_http_request_t           *r;
    ngx_http_asyncx_mock_conf_t  *mcf;

    r = ctx->request;
    mcf = ctx->conf;

    if (ctx->fail == NGX_HTTP_ASYNCX_MOCK_FAIL_TEXT
        || ctx->fail == NGX_HTTP_ASYNCX_MOCK_FAIL_BIG)
    {
        return NGX_OK;
    }

    rcv.len = 0;

    if (mcf->echo == NGX_HTTP_ASYNCX_MOCK_ECHO_SUMMARY) {
        rc = ngx_http_asyncx_mock_summary(r, &rcv);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }
    }

    if (mcf->echo != NGX_HTTP_ASYNCX_MOCK_ECHO_OFF && rcv.len == 0) {
        received = ngx_http_asyncx_mock_received(r, mcf->echo);
        if (received == NULL) {
            return NGX_ERROR;
        }

        text = cJSON_PrintUnformatted(received);
        cJSON_Delete(received);

        if (text == NULL) {
            return NGX_ERROR;
        }

        rcv.len = ngx_strlen(text);
        rcv.data = ngx_pnalloc(r->pool, rcv.len);

        if (rcv.data == NULL) {
            cJSON_free(text);
            return NGX_ERROR;
        }

        ngx_memcpy(rcv.data, text, rcv.len);
        cJSON_free(text);
    }

    /*
     * {"service":"<name>",<configured members>,"delay_ms":N,"received":{}}
     * or, failing, {"service":..,"error":"simulated failure","status":N,
     * "delay_ms":N,"received":{}}, then the newline: names need no
     * escaping (checked).
     */

    len = sizeof("{\"service\":\"\",\"error\":\"simulated failure\","
                 "\"status\":,\"delay_ms\":,\"received\":}\n") - 1
          + mcf->name.len + mcf->json.len + rcv.len + 2 * NGX_INT_T_LEN;

    data = ngx_pnalloc(r->pool, len);
    if (data == NULL) {
        return NGX_ERROR;
    }

    /* plain copies where no number is written: the length bounds them */

    last = data + len;
    p = ngx_cpymem(data, "{\"service\":\"", sizeof("{\"service\":\"") - 1);
    p = ngx_cpymem(p, mcf->name.data, mcf->name.len);
    *p++ = '"';

    if (ctx->fail == NGX_HTTP_ASYNCX_MOCK_FAIL_STATUS) {
        ctx->answer_status = ctx->fail_status;
        p = ngx_slprintf(p, last, ",\"error\":\"simulated failure\","
                         "\"status\":%ui", ctx->fail_status);

    } else {
        ctx->answer_status = mcf->status;

        if (mcf->json.len) {
            *p++ = ',';
            p = ngx_cpymem(p, mcf->json.data, mcf->json.len);
        }
    }

    p = ngx_http_asyncx_copy_literal(p, last, ",\"delay_ms\":");
    p = ngx_http_asyncx_write_uint(p, last, ctx->delay);

    if (rcv.len) {
        p = ngx_cpymem(p, ",\"received\":", sizeof(",\"received\":") - 1);
        p = ngx_cpymem(p, rcv.data, rcv.len);
    }

    *p++ = '}';
    *p++ = '\n';

    ctx->answer.data = data;
    ctx->answer.len = p - data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_asyncx_mock_respond(ngx_http_asyncx_mock_ctx_t *ctx)
{
    u_char                       *p, *data;
    size_t                        len;
    ngx_http_request_t           *r;
    ngx_http_asyncx_mock_conf_t  *mcf;

    r = ctx->request;
    mcf = ctx->conf;

    if (ctx->active) {
        ctx->active = 0;
        ngx_http_asyncx_gauge_add(NGX_HTTP_ASYNCX_GAUGE_MOCKS, -1);
    }

    if (ctx->fail == NGX_HTTP_ASYNCX_MOCK_FAIL_TEXT) {
        len = sizeof("simulated non-JSON answer from ") - 1 + mcf->name.len;

        data = ngx_pnalloc(r->pool, len);
        if (data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_cpymem(data, "simulated non-JSON answer from ",
                       sizeof("simulated non-JSON answer from ") - 1);
        p = ngx_cpymem(p, mcf->name.data, mcf->name.len);

        return ngx_http_asyncx_mock_send_text(r, NGX_HTTP_OK, data, len);
    }

    if (ctx->fail == NGX_HTTP_ASYNCX_MOCK_FAIL_BIG) {
        /* {"service":"<name>","padding":"xxx..."}: exactly ctx->big bytes
         * when big is large enough, then the newline */
        len = sizeof("{\"service\":\"\",\"padding\":\"\"}") - 1
              + mcf->name.len;
        len = ngx_max(len, ctx->big);

        data = ngx_pnalloc(r->pool, len + 1);
        if (data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_sprintf(data, "{\"service\":\"%V\",\"padding\":\"",
                        &mcf->name);
        ngx_memset(p, 'x', data + len - 2 - p);
        data[len - 2] = '"';
        data[len - 1] = '}';
        data[len] = '\n';

        return ngx_http_asyncx_send_json_line(r, NGX_HTTP_OK, data, len + 1);
    }

    return ngx_http_asyncx_send_json_buf(r, ctx->answer_status,
                                         &ctx->answer_buf, ctx->answer.data,
                                         ctx->answer.len);
}


static cJSON *
ngx_http_asyncx_mock_add_str(ngx_http_request_t *r, cJSON *obj,
    const char *key, ngx_str_t *s)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, s->len + 1);
    if (p == NULL) {
        return NULL;
    }

    if (s->len) {
        /* an empty ngx_str_t may have a NULL data pointer: UB for memcpy */
        ngx_memcpy(p, s->data, s->len);
    }

    p[s->len] = '\0';

    return cJSON_AddStringToObject(obj, key, (char *) p);
}


/*
 * echo=summary without a parse tree: the same text cJSON would print
 *   {"method":"POST","bytes":412,"stage":"2단계","call":"배송",
 *    "results":["사용자","재고","가격"]}
 * written straight from the checked body.  Names are copied as they are
 * written, which is what cJSON prints when they hold no escape: a body
 * with a backslash anywhere takes the cJSON path (NGX_DECLINED).
 *
 * One function: one pass over the checked body, writing members in the
 * order cJSON would print them.
 */

static ngx_int_t
ngx_http_asyncx_mock_summary(ngx_http_request_t *r, ngx_str_t *out)
{
    u_char                              *p, *last, *start, *end, *pos;
    size_t                               len;
    off_t                                bytes;
    ngx_int_t                            rc;
    ngx_str_t                            text, key, value, stage, call,
                                         results, names;
    ngx_chain_t                         *cl;
    ngx_http_asyncx_pipeline_outline_t  *outline;

    cl = r->request_body ? r->request_body->bufs : NULL;

    if (r != r->main && cl && cl->next == NULL && !cl->buf->in_file
        && (size_t) (cl->buf->last - cl->buf->pos)
           <= NGX_HTTP_ASYNCX_MOCK_PARSE_MAX)
    {
        /* a pipeline call's document: one buffer, read where it is */
        text.data = cl->buf->pos;
        text.len = cl->buf->last - cl->buf->pos;
        rc = NGX_OK;

    } else {
        rc = ngx_http_asyncx_mock_body_text(r, &text);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }
    }

    /* memchr(): the body is read whole for one byte, word by word */

    if (rc == NGX_OK && text.len
        && memchr(text.data, '\\', text.len) != NULL)
    {
        return NGX_DECLINED;
    }

    bytes = 0;

    if (r->request_body) {
        bytes = ngx_http_asyncx_mock_body_bytes(r);
    }

    /*
     * The stage, the call and every name come from distinct parts of the
     * body, each at least as long as what is written for it (a name is
     * written with its quotes and a comma, it is read with its quotes and
     * at least a colon): the body's length bounds them all.
     */
    len = sizeof("{\"method\":\"\",\"bytes\":,\"stage\":,"
                 "\"call\":,\"results\":[]}") - 1
          + r->method_name.len + NGX_OFF_T_LEN + text.len;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;
    last = p + len;

    p = ngx_http_asyncx_copy_literal(p, last, "{\"method\":\"");
    p = ngx_http_asyncx_copy(p, last, r->method_name.data,
                             r->method_name.len);
    p = ngx_http_asyncx_copy_literal(p, last, "\",\"bytes\":");
    p = ngx_http_asyncx_write_uint(p, last, (uint64_t) bytes);

    if (rc != NGX_OK || text.len == 0) {
        goto done;
    }

    outline = NULL;

    if (cl && text.data == cl->buf->start
        && text.data + text.len == cl->buf->last
        && text.len <= 2 * NGX_HTTP_ASYNCX_JSON_MAX_DEPTH)
    {
        outline = ngx_http_asyncx_pipeline_outline(cl->buf);
    }

    if (outline) {
        /*
         * A pipeline's call, its whole document read where the pipeline
         * wrote it: valid JSON by construction, and too short to nest
         * deeper than the check allows (a level takes two bytes), so the
         * check could not refuse it; what the walk below would find in
         * it, the pipeline wrote down.  A longer one may wrap a client's
         * body nested to the limit: checked and walked.
         */
        p = ngx_cpymem(p, ",\"stage\":", sizeof(",\"stage\":") - 1);
        p = ngx_cpymem(p, outline->stage.data, outline->stage.len);
        p = ngx_cpymem(p, ",\"call\":", sizeof(",\"call\":") - 1);
        p = ngx_cpymem(p, outline->call.data, outline->call.len);
        p = ngx_cpymem(p, ",\"results\":[", sizeof(",\"results\":[") - 1);
        p = ngx_cpymem(p, outline->names.data, outline->names.len);
        *p++ = ']';

        goto done;
    }

    if (ngx_http_asyncx_json_check(text.data, text.len, &start, &end)
        != NGX_OK)
    {
        /* cJSON decides what it accepts (the check is stricter) */
        return NGX_DECLINED;
    }

    if (*start != '{') {
        goto done;
    }

    /*
     * The first member of each name, as cJSON finds it, in one walk: the
     * first "results", when an object, is walked into for its names.
     */

    ngx_str_null(&stage);
    ngx_str_null(&call);
    ngx_str_null(&results);
    ngx_str_null(&names);

    pos = start;

    while (ngx_http_asyncx_pipeline_json_key(&pos, end, &key) == NGX_OK) {

        if (key.len == 7 && ngx_strncmp(key.data, "results", 7) == 0
            && results.data == NULL && *pos == '{')
        {
            /* its names are shorter than its text, quoted and separated */
            names.data = ngx_pnalloc(r->pool, end - pos);
            if (names.data == NULL) {
                return NGX_ERROR;
            }

            results.data = pos;
            names.len = ngx_http_asyncx_mock_names(names.data, &pos, end)
                        - names.data;
            results.len = pos - results.data;
            continue;
        }

        value.data = pos;
        pos = ngx_http_asyncx_pipeline_json_skip(pos, end);
        value.len = pos - value.data;

        if (key.len == 5 && ngx_strncmp(key.data, "stage", 5) == 0
            && stage.data == NULL)
        {
            stage = value;

        } else if (key.len == 4 && ngx_strncmp(key.data, "call", 4) == 0
                   && call.data == NULL)
        {
            call = value;

        } else if (key.len == 7 && ngx_strncmp(key.data, "results", 7) == 0
                   && results.data == NULL)
        {
            results = value;
        }
    }

    /* plain copies: the body's length bounds them (above) */

    if (stage.data && stage.len && stage.data[0] == '"') {
        p = ngx_cpymem(p, ",\"stage\":", sizeof(",\"stage\":") - 1);
        p = ngx_cpymem(p, stage.data, stage.len);
    }

    if (call.data && call.len && call.data[0] == '"') {
        p = ngx_cpymem(p, ",\"call\":", sizeof(",\"call\":") - 1);
        p = ngx_cpymem(p, call.data, call.len);
    }

    if (names.data) {
        p = ngx_cpymem(p, ",\"results\":[", sizeof(",\"results\":[") - 1);
        p = ngx_cpymem(p, names.data, names.len);

    } else {
        p = ngx_cpymem(p, ",\"keys\":[", sizeof(",\"keys\":[") - 1);
        pos = start;
        p = ngx_http_asyncx_mock_names(p, &pos, end);
    }

    *p++ = ']';

done:

    if (p >= last) {
        /* cannot happen with the bound above; never a cut answer */
        return NGX_DECLINED;
    }

    *p++ = '}';
    out->len = p - out->data;

    return NGX_OK;
}


/*
 * The names of the checked object at *pos written at p, each as it is
 * written there, quoted and comma separated; *pos is left after the
 * object.  Each name takes fewer bytes than its member.
 */

static u_char *
ngx_http_asyncx_mock_names(u_char *p, u_char **pos, u_char *last)
{
    ngx_str_t   key;
    ngx_uint_t  n;

    for (n = 0;
         ngx_http_asyncx_pipeline_json_key(pos, last, &key) == NGX_OK;
         n++)
    {
        if (n) {
            *p++ = ',';
        }

        *p++ = '"';
        p = ngx_cpymem(p, key.data, key.len);
        *p++ = '"';

        *pos = ngx_http_asyncx_pipeline_json_skip(*pos, last);
    }

    return p;
}


static off_t
ngx_http_asyncx_mock_body_bytes(ngx_http_request_t *r)
{
    off_t         bytes;
    ngx_chain_t  *cl;

    bytes = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        bytes += ngx_buf_size(cl->buf);
    }

    return bytes;
}


/*
 * The body as one string for what the answer says of it, as
 * ngx_http_asyncx_body_copy() returns it (NGX_AGAIN: a part is in a
 * file, not read).  nginx keeps a client's body in memory when its
 * Content-Length is at most client_body_buffer_size.  A longer one, or
 * one of unknown length (chunked; HTTP/2 without Content-Length: nginx
 * flags both "chunked"), goes to a temp file whole, in part or not at
 * all, depending on how its bytes arrived (with the header or later, in
 * which chunks), so it is never read: the same request gets the same
 * answer.  A subrequest's body is what its parent attached.
 */

static ngx_int_t
ngx_http_asyncx_mock_body_text(ngx_http_request_t *r, ngx_str_t *text)
{
    ngx_http_core_loc_conf_t  *clcf;

    if (r == r->main && r->request_body
        && ngx_http_asyncx_mock_body_bytes(r) > 0)
    {
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

        /* nginx sets content_length_n of a chunked body once it is read */
        if (r->headers_in.chunked
            || r->headers_in.content_length_n
               > (off_t) clcf->client_body_buffer_size)
        {
            text->len = 0;
            text->data = (u_char *) "";
            return NGX_AGAIN;
        }
    }

    return ngx_http_asyncx_body_copy(r, text, NGX_HTTP_ASYNCX_MOCK_PARSE_MAX);
}


/*
 * Bytes from the client (the query string, a body that is not JSON) as
 * a JSON string: whole, with "\u0000" for a NUL where cJSON would stop,
 * and each byte that is not UTF-8 as the text \xNN.
 */

static cJSON *
ngx_http_asyncx_mock_add_bytes(ngx_http_request_t *r, cJSON *obj,
    const char *key, ngx_str_t *s)
{
    u_char  *utf8, *p, *last;
    size_t   len;

    len = ngx_http_asyncx_utf8_escape_len(s->data, s->len, 0);

    utf8 = ngx_pnalloc(r->pool, len + 1);
    if (utf8 == NULL) {
        return NULL;
    }

    last = ngx_http_asyncx_utf8_escape(utf8, s->data, s->len, 0);

    p = ngx_pnalloc(r->pool,
                    len + ngx_http_asyncx_json_escape_len(utf8, len) + 3);
    if (p == NULL) {
        return NULL;
    }

    last = ngx_http_asyncx_json_escape(p + 1, utf8, last - utf8);
    p[0] = '"';
    *last++ = '"';
    *last = '\0';

    return cJSON_AddRawToObject(obj, key, (char *) p);
}


/* the names of an object's members, as a JSON array */

static cJSON *
ngx_http_asyncx_mock_keys(cJSON *obj)
{
    cJSON  *keys, *item, *name;

    keys = cJSON_CreateArray();
    if (keys == NULL) {
        return NULL;
    }

    cJSON_ArrayForEach(item, obj) {
        name = cJSON_CreateString(item->string);
        if (name == NULL) {
            cJSON_Delete(keys);
            return NULL;
        }

        cJSON_AddItemToArray(keys, name);
    }

    return keys;
}


/*
 * What the service received.  "summary" lists the pipeline document's
 * stage, call and earlier results by name (a later stage's answer would
 * otherwise nest every earlier answer); "body" returns the body itself.
 *
 * One function: the summary and body forms share the document walk and its
 * failure paths.
 */

static cJSON *
ngx_http_asyncx_mock_received(ngx_http_request_t *r, ngx_uint_t echo)
{
    off_t                         bytes;
    cJSON                        *rcv, *body, *item, *keys;
    ngx_int_t                     rc;
    ngx_str_t                     text;
    ngx_http_asyncx_json_info_t   info;

    rcv = cJSON_CreateObject();
    if (rcv == NULL) {
        return NULL;
    }

    bytes = r->request_body ? ngx_http_asyncx_mock_body_bytes(r) : 0;

    if (ngx_http_asyncx_mock_add_str(r, rcv, "method", &r->method_name)
        == NULL
        || cJSON_AddNumberToObject(rcv, "bytes", (double) bytes) == NULL)
    {
        goto failed;
    }

    body = NULL;

    rc = ngx_http_asyncx_mock_body_text(r, &text);

    if (rc == NGX_ERROR) {
        goto failed;
    }

    if (rc == NGX_OK && text.len) {
        /*
         * the module's JSON policy: what it refuses (and U+0000, which
         * cJSON would cut a string at) is echoed as a string, whole
         */
        /* echoed two levels deeper: a pipeline calling it takes it */
        body = ngx_http_asyncx_json_parse(text.data, text.len,
                                          NGX_HTTP_ASYNCX_JSON_NO_NUL
                                          |NGX_HTTP_ASYNCX_JSON_WRAPPED(10),
                                          &info);

        if (body == NULL && info.nomem) {
            goto failed;
        }
    }

    if (echo == NGX_HTTP_ASYNCX_MOCK_ECHO_BODY) {
        if (ngx_http_asyncx_mock_add_bytes(r, rcv, "args", &r->args)
            == NULL)
        {
            goto failed_body;
        }

        if (body == NULL && rc == NGX_OK && text.len) {
            /* not JSON: returned as a string, whole and valid UTF-8 */
            if (ngx_http_asyncx_mock_add_bytes(r, rcv, "body", &text)
                == NULL)
            {
                goto failed;
            }

        } else if (body == NULL) {
            if (cJSON_AddNullToObject(rcv, "body") == NULL) {
                goto failed;
            }

        } else {
            cJSON_AddItemToObject(rcv, "body", body);
        }

        return rcv;
    }

    if (body == NULL) {
        if (rc == NGX_OK && text.len
            && cJSON_AddFalseToObject(rcv, "json") == NULL)
        {
            goto failed;
        }

        return rcv;
    }

    if (cJSON_IsObject(body)) {
        item = cJSON_GetObjectItemCaseSensitive(body, "stage");
        if (cJSON_IsString(item)
            && cJSON_AddStringToObject(rcv, "stage", item->valuestring)
               == NULL)
        {
            goto failed_body;
        }

        item = cJSON_GetObjectItemCaseSensitive(body, "call");
        if (cJSON_IsString(item)
            && cJSON_AddStringToObject(rcv, "call", item->valuestring)
               == NULL)
        {
            goto failed_body;
        }

        item = cJSON_GetObjectItemCaseSensitive(body, "results");

        keys = ngx_http_asyncx_mock_keys(cJSON_IsObject(item) ? item : body);
        if (keys == NULL) {
            goto failed_body;
        }

        cJSON_AddItemToObject(rcv, cJSON_IsObject(item) ? "results" : "keys",
                              keys);
    }

    cJSON_Delete(body);

    return rcv;

failed_body:

    cJSON_Delete(body);

failed:

    cJSON_Delete(rcv);

    return NULL;
}


static ngx_int_t
ngx_http_asyncx_mock_send_text(ngx_http_request_t *r, ngx_uint_t status,
    u_char *data, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;
    ngx_str_set(&r->headers_out.content_type, "text/plain");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = data;
    b->last = data + len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* a section of asyncx_status: "mock" inside "pipelines" */

ngx_int_t
ngx_http_asyncx_mock_status(ngx_http_request_t *r, cJSON *root)
{
    cJSON  *pipelines, *mock;

    static const ngx_http_asyncx_status_field_t  fields[] = {
        { "active", 1, NGX_HTTP_ASYNCX_GAUGE_MOCKS },
        { "total", 0, NGX_HTTP_ASYNCX_STAT_PIPELINE_MOCK_TOTAL }
    };

    pipelines = cJSON_GetObjectItemCaseSensitive(root, "pipelines");
    if (pipelines == NULL) {
        return NGX_ERROR;
    }

    mock = cJSON_AddObjectToObject(pipelines, "mock");
    if (mock == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_asyncx_status_fields(mock, fields,
                                         sizeof(fields) / sizeof(fields[0]));
}
