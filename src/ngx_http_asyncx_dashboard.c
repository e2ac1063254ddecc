
/*
 * Copyright (C) asyncx authors
 *
 * The live dashboard.  asyncx_status_stream: the JSON of asyncx_status
 * (plus "time_ms"), pushed as an SSE event every interval by a timer;
 * a client that does not read gets no new event until it has read the
 * last one.  asyncx_status_page: one self-contained HTML page (no
 * external resource, enforced by its Content-Security-Policy) that
 * subscribes to such a stream and draws numbers and small charts.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <cjson/cJSON.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_http.h"
#include "ngx_http_asyncx_dashboard_page.h"
#include "ngx_http_asyncx_sse_event.h"


#define NGX_HTTP_ASYNCX_STREAM_INTERVAL  1000
#define NGX_HTTP_ASYNCX_STREAM_MIN       100
#define NGX_HTTP_ASYNCX_STREAM_MAX       60000


typedef struct {
    ngx_http_request_t            *request;
    ngx_event_t                    tick;
    ngx_msec_t                     interval;
    ngx_uint_t                     id;
    u_char                        *data;       /* one event, reused */
    size_t                         size;
    ngx_buf_t                      buf;
    ngx_chain_t                    cl;
} ngx_http_asyncx_status_stream_ctx_t;


static ngx_int_t ngx_http_asyncx_status_stream_handler(ngx_http_request_t *r);
static void ngx_http_asyncx_status_stream_tick(ngx_event_t *ev);
static ngx_int_t ngx_http_asyncx_status_stream_push(ngx_http_request_t *r,
    ngx_http_asyncx_status_stream_ctx_t *ctx);
static void ngx_http_asyncx_status_stream_write(ngx_http_request_t *r);
static ngx_int_t ngx_http_asyncx_status_stream_sent(ngx_http_request_t *r);
static void ngx_http_asyncx_status_stream_cleanup(void *data);
static ngx_int_t ngx_http_asyncx_status_page_handler(ngx_http_request_t *r);


/* asyncx_status_stream [interval=time]; */

char *
ngx_http_asyncx_status_stream(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    char                       *rv;
    ngx_str_t                  *value, s;
    ngx_msec_t                  interval;

    rv = ngx_http_asyncx_conf_set_handler(cf,
                                     ngx_http_asyncx_status_stream_handler,
                                     &alcf->content_handler);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    interval = NGX_HTTP_ASYNCX_STREAM_INTERVAL;
    value = cf->args->elts;

    if (cf->args->nelts == 2) {
        if (ngx_strncmp(value[1].data, "interval=", 9) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in \"%V\", "
                               "expected interval=time", &value[1],
                               &cmd->name);
            return NGX_CONF_ERROR;
        }

        s.data = value[1].data + 9;
        s.len = value[1].len - 9;

        interval = ngx_parse_time(&s, 0);

        if (interval == (ngx_msec_t) NGX_ERROR
            || interval < NGX_HTTP_ASYNCX_STREAM_MIN
            || interval > NGX_HTTP_ASYNCX_STREAM_MAX)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\", "
                               "expected 100ms..60s", &value[1], &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    alcf->dashboard.interval = interval;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_asyncx_status_stream_handler(ngx_http_request_t *r)
{
    ngx_int_t                             rc;
    ngx_pool_cleanup_t                   *cln;
    ngx_http_asyncx_loc_conf_t           *alcf;
    ngx_http_asyncx_status_stream_ctx_t  *ctx;

    if (ngx_http_asyncx_get_only(r, &rc) != NGX_OK) {
        return rc;
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_asyncx_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_asyncx_status_stream_ctx_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (ctx == NULL || cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->interval = alcf->dashboard.interval;

    cln->handler = ngx_http_asyncx_status_stream_cleanup;
    cln->data = ctx;

    rc = ngx_http_asyncx_send_event_stream_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    /*
     * Not cancelable: a worker that is shutting down (reload) waits for
     * the next tick, which ends the stream cleanly; EventSource then
     * reconnects to a new worker.
     */
    ctx->tick.handler = ngx_http_asyncx_status_stream_tick;
    ctx->tick.data = ctx;
    ctx->tick.log = r->connection->log;

    r->write_event_handler = ngx_http_asyncx_status_stream_write;
    ngx_http_asyncx_watch_client(r);
    r->main->count++;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "asyncx status stream: start, every %M ms", ctx->interval);

    if (ngx_http_asyncx_status_stream_push(r, ctx) == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return NGX_DONE;
    }

    ngx_add_timer(&ctx->tick, ctx->interval);

    return NGX_DONE;
}


static void
ngx_http_asyncx_status_stream_tick(ngx_event_t *ev)
{
    ngx_int_t                             rc;
    ngx_connection_t                     *c;
    ngx_http_request_t                   *r;
    ngx_http_asyncx_status_stream_ctx_t  *ctx;

    ctx = ev->data;
    r = ctx->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    if (ngx_exiting || ngx_terminate) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, 0,
                       "asyncx status stream: worker exits, stream ends");

        /*
         * A client that reads nothing would keep the old worker for
         * send_timeout behind its last chunk: a live view loses nothing
         * when it is closed instead (EventSource reconnects).
         */
        if (r->out || c->buffered) {
            ngx_http_finalize_request(r, NGX_ERROR);
            ngx_http_run_posted_requests(c);
            return;
        }

        rc = ngx_http_send_special(r, NGX_HTTP_LAST);
        ngx_http_finalize_request(r, rc == NGX_ERROR ? NGX_ERROR : NGX_OK);
        ngx_http_run_posted_requests(c);
        return;
    }

    if (!c->error && ngx_http_asyncx_status_stream_push(r, ctx) == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_ERROR);
        ngx_http_run_posted_requests(c);
        return;
    }

    ngx_add_timer(ev, ctx->interval);

    ngx_http_run_posted_requests(c);
}


/* id: N, data: the status as one line of JSON */

static ngx_int_t
ngx_http_asyncx_status_stream_push(ngx_http_request_t *r,
    ngx_http_asyncx_status_stream_ctx_t *ctx)
{
    u_char                       *p, id[NGX_INT_T_LEN];
    char                         *text;
    size_t                        len;
    cJSON                        *root;
    ngx_int_t                     rc;
    ngx_time_t                   *tp;
    ngx_http_asyncx_sse_event_t   ev;

    if (ctx->id && (r->out || r->connection->buffered)) {
        /*
         * The client has not read the last event yet: skip this one.
         * (Before the first event, r->out holds the header, which
         * waits for a body to go out with.)
         */
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "asyncx status stream: client behind, event skipped");
        return NGX_OK;
    }

    root = ngx_http_asyncx_status_json(r);
    if (root == NULL) {
        return NGX_ERROR;
    }

    tp = ngx_timeofday();

    if (cJSON_AddNumberToObject(root, "time_ms",
                                (double) tp->sec * 1000 + tp->msec)
        == NULL)
    {
        cJSON_Delete(root);
        return NGX_ERROR;
    }

    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);

    if (text == NULL) {
        return NGX_ERROR;
    }

    /* the encoder every stream uses */
    ev.id.data = id;
    ev.id.len = ngx_sprintf(id, "%ui", ++ctx->id) - id;
    ngx_str_null(&ev.event);
    ev.retry = 0;
    ev.data = (u_char *) text;
    ev.len = ngx_strlen(text);

    len = ngx_http_asyncx_sse_event_len(&ev);

    /* one buffer for the stream's life, not one per event */
    if (len > ctx->size) {
        if (ctx->data) {
            ngx_free(ctx->data);
        }

        ctx->size = ngx_align(len, 4096);
        ctx->data = ngx_alloc(ctx->size, r->connection->log);

        if (ctx->data == NULL) {
            ctx->size = 0;
            cJSON_free(text);
            return NGX_ERROR;
        }
    }

    p = ngx_http_asyncx_sse_event_write(ctx->data, &ev);
    cJSON_free(text);

    ngx_memzero(&ctx->buf, sizeof(ngx_buf_t));
    ctx->buf.pos = ctx->data;
    ctx->buf.last = p;
    ctx->buf.memory = 1;
    ctx->buf.flush = 1;

    ctx->cl.buf = &ctx->buf;
    ctx->cl.next = NULL;

    rc = ngx_http_output_filter(r, &ctx->cl);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    return ngx_http_asyncx_status_stream_sent(r);
}


static void
ngx_http_asyncx_status_stream_write(ngx_http_request_t *r)
{
    if (ngx_http_asyncx_event_stream_gone(r, "asyncx status stream")
        != NGX_OK)
    {
        return;
    }

    if (ngx_http_output_filter(r, NULL) == NGX_ERROR
        || ngx_http_asyncx_status_stream_sent(r) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_ERROR);
    }
}


/* what is not sent yet waits for the socket, within send_timeout */

static ngx_int_t
ngx_http_asyncx_status_stream_sent(ngx_http_request_t *r)
{
    ngx_event_t               *wev;
    ngx_http_core_loc_conf_t  *clcf;

    wev = r->connection->write;

    if (r->out || r->connection->buffered) {
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

        if (!wev->delayed) {
            ngx_add_timer(wev, clcf->send_timeout);
        }

        if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    return NGX_OK;
}


static void
ngx_http_asyncx_status_stream_cleanup(void *data)
{
    ngx_http_asyncx_status_stream_ctx_t  *ctx = data;

    if (ctx->tick.timer_set) {
        ngx_del_timer(&ctx->tick);
    }

    if (ctx->data) {
        ngx_free(ctx->data);
        ctx->data = NULL;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "asyncx status stream: end after %ui events", ctx->id);
}


/* asyncx_status_page uri; */

char *
ngx_http_asyncx_status_page(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    u_char                    *p, *at, c;
    size_t                     plen;
    ngx_str_t                 *value, uri;
    char                      *rv;
    ngx_uint_t                 i;

    static u_char  placeholder[] = "@ASYNCX_STREAM@";

    rv = ngx_http_asyncx_conf_set_handler(cf,
                                          ngx_http_asyncx_status_page_handler,
                                          &alcf->content_handler);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    value = cf->args->elts;
    uri = value[1];

    /* the URI goes into the page's script: no quote, no markup */
    for (i = 0; i < uri.len; i++) {
        c = uri.data[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9')
              || (c != '\0' && ngx_strchr("/-._~%!$()*+,;:@=?&", c))))
        {
            break;
        }
    }

    /* "//host/x" is another host's URL (a network-path reference) */
    if (uri.len == 0 || uri.data[0] != '/' || i < uri.len
        || (uri.len > 1 && uri.data[1] == '/'))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\", expected a "
                           "path starting with a single \"/\" without "
                           "quotes, spaces or markup", &uri, &cmd->name);
        return NGX_CONF_ERROR;
    }

    plen = sizeof(placeholder) - 1;

    at = ngx_strlcasestrn((u_char *) ngx_http_asyncx_dashboard_page,
                          (u_char *) ngx_http_asyncx_dashboard_page
                          + sizeof(ngx_http_asyncx_dashboard_page) - 1,
                          placeholder, plen - 1);
    if (at == NULL) {
        return "has no place for the stream URI in its page";
    }

    alcf->dashboard.page.len = sizeof(ngx_http_asyncx_dashboard_page) - 1
                               - plen + uri.len;
    alcf->dashboard.page.data = ngx_pnalloc(cf->pool,
                                            alcf->dashboard.page.len);
    if (alcf->dashboard.page.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_cpymem(alcf->dashboard.page.data, ngx_http_asyncx_dashboard_page,
                   at - ngx_http_asyncx_dashboard_page);
    p = ngx_cpymem(p, uri.data, uri.len);
    ngx_memcpy(p, at + plen,
               ngx_http_asyncx_dashboard_page
               + sizeof(ngx_http_asyncx_dashboard_page) - 1 - (at + plen));

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_asyncx_status_page_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_buf_t                   *b;
    ngx_uint_t                   i;
    ngx_chain_t                  out;
    ngx_table_elt_t             *h;
    ngx_http_asyncx_loc_conf_t  *alcf;

    static ngx_str_t  headers[] = {
        ngx_string("Cache-Control"), ngx_string("no-store"),
        ngx_string("X-Content-Type-Options"), ngx_string("nosniff"),
        /* nothing outside the page itself may load: no CDN, no font */
        ngx_string("Content-Security-Policy"),
        ngx_string("default-src 'none'; script-src 'unsafe-inline'; "
                   "style-src 'unsafe-inline'; connect-src 'self'; "
                   "base-uri 'none'; form-action 'none'; "
                   "frame-ancestors 'none'")
    };

    if (ngx_http_asyncx_get_only(r, &rc) != NGX_OK) {
        return rc;
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_asyncx_module);

    for (i = 0; i < sizeof(headers) / sizeof(ngx_str_t); i += 2) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        h->key = headers[i];
        h->value = headers[i + 1];
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = alcf->dashboard.page.len;
    ngx_str_set(&r->headers_out.content_type, "text/html; charset=utf-8");
    r->headers_out.content_type_len = sizeof("text/html") - 1;
    r->headers_out.content_type_lowcase = NULL;

    ngx_http_clear_accept_ranges(r);
    ngx_http_clear_last_modified(r);
    ngx_http_clear_etag(r);

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = alcf->dashboard.page.data;
    b->last = b->pos + alcf->dashboard.page.len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
