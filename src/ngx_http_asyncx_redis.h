
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_REDIS_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>


/*
 * A Redis connection of one worker, driven by nginx's event loop: the
 * hiredis async API with its events mapped onto an ngx_connection_t and
 * nginx timers for what hiredis 0.14 lacks (a connect timeout, a command
 * timeout).  It reconnects by itself with an exponential backoff.  It
 * knows nothing of its users: a command carries its own handler.
 */


#define NGX_HTTP_ASYNCX_REDIS_CLOSED      0   /* backoff timer, or idle */
#define NGX_HTTP_ASYNCX_REDIS_CONNECTING  1   /* commands are queued */
#define NGX_HTTP_ASYNCX_REDIS_READY       2

#define NGX_HTTP_ASYNCX_REDIS_BACKOFF_MIN  100
#define NGX_HTTP_ASYNCX_REDIS_BACKOFF_MAX  5000

#define NGX_HTTP_ASYNCX_REDIS_ERRLEN       128


typedef struct ngx_http_asyncx_redis_s      ngx_http_asyncx_redis_t;
typedef struct ngx_http_asyncx_redis_cmd_s  ngx_http_asyncx_redis_cmd_t;

/*
 * A command's answer: reply is NULL when the command failed (the
 * connection broke, timed out or was closed); rd->error says why.  A
 * subscription's handler is called for every message, then once with
 * NULL when the connection goes.
 */
typedef void (*ngx_http_asyncx_redis_reply_pt)(ngx_http_asyncx_redis_t *rd,
    redisReply *reply, void *data);

/*
 * on_connect: a fresh connection is made, the first commands to queue;
 * on_close: it failed or broke (rd->error says why), not at exit.
 */
typedef void (*ngx_http_asyncx_redis_event_pt)(ngx_http_asyncx_redis_t *rd);


struct ngx_http_asyncx_redis_cmd_s {
    ngx_http_asyncx_redis_t         *rd;
    ngx_http_asyncx_redis_reply_pt   handler;
    void                            *data;
    unsigned                         subscribe:1;
    unsigned                         confirmed:1;
};


struct ngx_http_asyncx_redis_s {
    /* set by the user before ngx_http_asyncx_redis_start() */
    u_char                          *host;       /* an IP literal, C string */
    int                              port;
    ngx_str_t                        password;   /* empty: no AUTH */
    ngx_uint_t                       db;
    ngx_msec_t                       timeout;
    ngx_str_t                        name;       /* "host:port", logs */
    ngx_log_t                       *log;
    ngx_http_asyncx_redis_event_pt   on_connect;
    ngx_http_asyncx_redis_event_pt   on_close;
    void                            *data;
    /* a subscriber: replies hiredis's pub/sub code would assert on are
     * refused by the reader (the connection is dropped, made again) */
    unsigned                         pubsub:1;

    /* the adapter's */
    redisReplyObjectFunctions        guard;      /* pubsub: the reader's */
    redisReplyObjectFunctions       *reply_fn;   /* hiredis's own */
    redisAsyncContext               *ac;
    ngx_connection_t                *conn;
    ngx_event_t                      timer;      /* connect or command */
    ngx_event_t                      retry;      /* reconnect after backoff */
    ngx_msec_t                       backoff;
    ngx_uint_t                       state;
    ngx_uint_t                       pending;    /* commands not answered */
    ngx_http_asyncx_redis_cmd_t      auth;
    ngx_http_asyncx_redis_cmd_t      select;
    u_char                           error[NGX_HTTP_ASYNCX_REDIS_ERRLEN];
    uint64_t                         commands;
    uint64_t                         reconnects;
    unsigned                         started:1;
    unsigned                         exiting:1;
};


ngx_int_t ngx_http_asyncx_redis_start(ngx_http_asyncx_redis_t *rd);
ngx_int_t ngx_http_asyncx_redis_command(ngx_http_asyncx_redis_t *rd,
    ngx_http_asyncx_redis_cmd_t *cmd, int argc, const char **argv,
    const size_t *argvlen);
void ngx_http_asyncx_redis_fail_reason(ngx_http_asyncx_redis_t *rd,
    redisReply *reply);
void ngx_http_asyncx_redis_flush(ngx_http_asyncx_redis_t *rd);
u_char *ngx_http_asyncx_redis_text(u_char *buf, size_t size,
    const char *text);
void ngx_http_asyncx_redis_close(ngx_http_asyncx_redis_t *rd);


#endif /* _NGX_HTTP_ASYNCX_REDIS_H_INCLUDED_ */
