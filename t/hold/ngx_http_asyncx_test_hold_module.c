
/*
 * Copyright (C) asyncx authors
 *
 * Test helper, never installed.  "asyncx_test_hold <pool> [<fifo>];"
 * makes a location whose GET (with ?fifo=/absolute/path, or the path
 * configured) occupies one thread of that thread pool until the test
 * lets it go: the task opens the FIFO for
 * reading, which blocks until the test opens the write end, and then
 * waits in read() until the test writes or closes it.  So a test knows
 * the thread is taken (its non-blocking open() of the write end
 * succeeds only once the reader is there) and frees it when it wants:
 * no test has to occupy a pool with a computation that races the
 * machine's speed.
 *
 * The answer is {"held_bytes": N}, N being what the test wrote.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


#if !(NGX_THREADS)
#error ngx_http_asyncx_test_hold_module needs nginx built --with-threads
#endif


/* far beyond any test; non-cancelable, so a quitting worker waits */
#define NGX_HTTP_ASYNCX_TEST_HOLD_KEEP  3600000


typedef struct {
    ngx_thread_pool_t    *pool;
    ngx_str_t             fifo;
} ngx_http_asyncx_test_hold_loc_conf_t;


typedef struct {
    ngx_http_request_t   *request;
    u_char               *path;
    ngx_err_t             err;
    size_t                bytes;
    ngx_uint_t            running;
    ngx_event_t           keep;
} ngx_http_asyncx_test_hold_ctx_t;


static ngx_int_t ngx_http_asyncx_test_hold_handler(ngx_http_request_t *r);
static void ngx_http_asyncx_test_hold_thread(void *data, ngx_log_t *log);
static void ngx_http_asyncx_test_hold_done(ngx_event_t *ev);
static void ngx_http_asyncx_test_hold_keep(ngx_event_t *ev);
static void ngx_http_asyncx_test_hold_respond(ngx_http_request_t *r);
static void *ngx_http_asyncx_test_hold_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_asyncx_test_hold(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_command_t  ngx_http_asyncx_test_hold_commands[] = {

    { ngx_string("asyncx_test_hold"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_asyncx_test_hold,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_asyncx_test_hold_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_asyncx_test_hold_create_loc_conf, /* create location conf */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_asyncx_test_hold_module = {
    NGX_MODULE_V1,
    &ngx_http_asyncx_test_hold_module_ctx, /* module context */
    ngx_http_asyncx_test_hold_commands,    /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_asyncx_test_hold_handler(ngx_http_request_t *r)
{
    u_char                                *dst, *src;
    ngx_int_t                              rc;
    ngx_str_t                              arg;
    ngx_thread_task_t                     *task;
    ngx_http_asyncx_test_hold_ctx_t       *ctx;
    ngx_http_asyncx_test_hold_loc_conf_t  *hlcf;

    if (!(r->method & NGX_HTTP_GET)) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_asyncx_test_hold_module);

    /* a mirror subrequest carries its parent's arguments: configure it */
    if (hlcf->fifo.len) {
        arg = hlcf->fifo;

    } else if (ngx_http_arg(r, (u_char *) "fifo", 4, &arg) != NGX_OK
               || arg.len == 0)
    {
        return NGX_HTTP_BAD_REQUEST;
    }

    task = ngx_thread_task_alloc(r->pool,
                                 sizeof(ngx_http_asyncx_test_hold_ctx_t));
    if (task == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = task->ctx;
    ctx->request = r;
    ngx_http_set_ctx(r, ctx, ngx_http_asyncx_test_hold_module);

    ctx->path = ngx_pnalloc(r->pool, arg.len + 1);
    if (ctx->path == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    dst = ctx->path;
    src = arg.data;
    ngx_unescape_uri(&dst, &src, arg.len, 0);
    *dst = '\0';

    task->handler = ngx_http_asyncx_test_hold_thread;
    task->event.handler = ngx_http_asyncx_test_hold_done;
    task->event.data = ctx;
    task->event.log = r->connection->log;

    if (ngx_thread_task_post(hlcf->pool, task) != NGX_OK) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    ctx->running = 1;
    r->main->blocked++;
    r->main->count++;
    r->write_event_handler = ngx_http_asyncx_test_hold_respond;

    ctx->keep.handler = ngx_http_asyncx_test_hold_keep;
    ctx->keep.data = ctx;
    ctx->keep.log = r->connection->log;
    ngx_add_timer(&ctx->keep, NGX_HTTP_ASYNCX_TEST_HOLD_KEEP);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "asyncx test hold: waiting on \"%s\"", ctx->path);

    return NGX_DONE;
}


/* in a thread: plain syscalls only */

static void
ngx_http_asyncx_test_hold_thread(void *data, ngx_log_t *log)
{
    ngx_http_asyncx_test_hold_ctx_t  *ctx = data;

    int      fd;
    u_char   buf[512];
    ssize_t  n;

    fd = open((char *) ctx->path, O_RDONLY|O_CLOEXEC);

    if (fd == -1) {
        ctx->err = ngx_errno;
        return;
    }

    /*
     * One read: it returns when the test writes (or closes), even if a
     * child process of the test inherited the write end.
     */

    do {
        n = read(fd, buf, sizeof(buf));
    } while (n == -1 && ngx_errno == NGX_EINTR);

    if (n == -1) {
        ctx->err = ngx_errno;

    } else {
        ctx->bytes = n;
    }

    (void) close(fd);
}


static void
ngx_http_asyncx_test_hold_done(ngx_event_t *ev)
{
    ngx_connection_t                 *c;
    ngx_http_request_t               *r;
    ngx_http_asyncx_test_hold_ctx_t  *ctx;

    ctx = ev->data;
    r = ctx->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    ctx->running = 0;
    r->main->blocked--;

    if (ctx->keep.timer_set) {
        ngx_del_timer(&ctx->keep);
    }

    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                  "asyncx test hold: released after %uz bytes", ctx->bytes);

    if (r->done) {
        c->write->handler(c->write);

    } else {
        r->write_event_handler(r);
        ngx_http_run_posted_requests(c);
    }
}


static void
ngx_http_asyncx_test_hold_keep(ngx_event_t *ev)
{
    ngx_add_timer(ev, NGX_HTTP_ASYNCX_TEST_HOLD_KEEP);
}


static void
ngx_http_asyncx_test_hold_respond(ngx_http_request_t *r)
{
    ngx_buf_t                        *b;
    ngx_int_t                         rc;
    ngx_chain_t                       out;
    ngx_http_asyncx_test_hold_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_asyncx_test_hold_module);

    if (ctx->running) {
        /* a write event of the connection, not the task: keep waiting */
        return;
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    if (ctx->err) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, ctx->err,
                      "asyncx test hold: \"%s\" failed", ctx->path);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    b = ngx_create_temp_buf(r->pool, sizeof("{\"held_bytes\": }\n") - 1
                                     + NGX_SIZE_T_LEN);
    if (b == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    b->last = ngx_sprintf(b->last, "{\"held_bytes\": %uz}\n", ctx->bytes);
    b->last_buf = (r == r->main);
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    out.buf = b;
    out.next = NULL;

    ngx_http_finalize_request(r, ngx_http_output_filter(r, &out));
}


static void *
ngx_http_asyncx_test_hold_create_loc_conf(ngx_conf_t *cf)
{
    return ngx_pcalloc(cf->pool,
                       sizeof(ngx_http_asyncx_test_hold_loc_conf_t));
}


static char *
ngx_http_asyncx_test_hold(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_asyncx_test_hold_loc_conf_t *hlcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    if (hlcf->pool != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    hlcf->pool = ngx_thread_pool_add(cf, &value[1]);
    if (hlcf->pool == NULL) {
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {
        hlcf->fifo = value[2];
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_asyncx_test_hold_handler;

    return NGX_CONF_OK;
}
