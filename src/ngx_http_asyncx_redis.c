
/*
 * Copyright (C) asyncx authors
 *
 * hiredis's async API on nginx's event loop.  hiredis asks for read and
 * write interest through five hooks (the shape of its own adapters,
 * adapters/libevent.h); here they become level-triggered events of an
 * ngx_connection_t taken on hiredis's socket.  hiredis owns the socket:
 * the connection is given back with ngx_free_connection() once its
 * events are removed, and hiredis closes the fd.  Nothing blocks:
 * redisAsyncConnect() only, names are resolved at configuration time.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_redis.h"


static ngx_uint_t ngx_http_asyncx_redis_guard_bad(const redisReadTask *task,
    int type);
static void *ngx_http_asyncx_redis_guard_string(const redisReadTask *task,
    char *str, size_t len);
static void *ngx_http_asyncx_redis_guard_array(const redisReadTask *task,
    int elements);
static void *ngx_http_asyncx_redis_guard_integer(const redisReadTask *task,
    long long value);
static void *ngx_http_asyncx_redis_guard_nil(const redisReadTask *task);
static void ngx_http_asyncx_redis_guard_reader(ngx_http_asyncx_redis_t *rd,
    redisReader *reader);
static void ngx_http_asyncx_redis_connect(ngx_http_asyncx_redis_t *rd);
static void ngx_http_asyncx_redis_handshake(ngx_http_asyncx_redis_t *rd);
static void ngx_http_asyncx_redis_handshake_done(ngx_http_asyncx_redis_t *rd,
    redisReply *reply, void *data);
static void ngx_http_asyncx_redis_fail(ngx_http_asyncx_redis_t *rd,
    const char *fmt, const char *detail);
static void ngx_http_asyncx_redis_schedule(ngx_http_asyncx_redis_t *rd);
static void ngx_http_asyncx_redis_retry_handler(ngx_event_t *ev);
static void ngx_http_asyncx_redis_timer_handler(ngx_event_t *ev);
static void ngx_http_asyncx_redis_read_handler(ngx_event_t *ev);
static void ngx_http_asyncx_redis_write_handler(ngx_event_t *ev);
static void ngx_http_asyncx_redis_connected(const redisAsyncContext *ac,
    int status);
static void ngx_http_asyncx_redis_disconnected(const redisAsyncContext *ac,
    int status);
static void ngx_http_asyncx_redis_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_asyncx_redis_add_read(void *privdata);
static void ngx_http_asyncx_redis_del_read(void *privdata);
static void ngx_http_asyncx_redis_add_write(void *privdata);
static void ngx_http_asyncx_redis_del_write(void *privdata);
static void ngx_http_asyncx_redis_cleanup(void *privdata);


ngx_int_t
ngx_http_asyncx_redis_start(ngx_http_asyncx_redis_t *rd)
{
    if (rd->started) {
        return NGX_OK;
    }

    rd->started = 1;
    rd->backoff = NGX_HTTP_ASYNCX_REDIS_BACKOFF_MIN;

    rd->timer.handler = ngx_http_asyncx_redis_timer_handler;
    rd->timer.data = rd;
    rd->timer.log = rd->log;
    rd->timer.cancelable = 1;

    rd->retry.handler = ngx_http_asyncx_redis_retry_handler;
    rd->retry.data = rd;
    rd->retry.log = rd->log;
    rd->retry.cancelable = 1;

    ngx_http_asyncx_redis_connect(rd);

    return NGX_OK;
}


/*
 * hiredis's pub/sub code asserts on the shape of what a subscribed
 * connection receives (an array of at least two elements whose first two
 * are strings; an "unsubscribe" with an integer third, after which it
 * leaves subscribed mode and asserts on the next message): a broken or
 * hostile Redis, or anyone on its plaintext link, aborted the worker.
 * The subscriber's reader refuses such a reply as it is read (a creator
 * that returns NULL is a reader error: hiredis drops the connection, the
 * module makes it again).  The module never unsubscribes, so any
 * "unsubscribe" is refused too.
 */

static ngx_uint_t
ngx_http_asyncx_redis_guard_bad(const redisReadTask *task, int type)
{
    redisReply  *parent, *first;

    /* only the elements of a top-level array */
    if (task->parent == NULL || task->parent->parent != NULL) {
        return 0;
    }

    if (task->idx <= 1 && type != REDIS_REPLY_STRING) {
        return 1;
    }

    if (task->idx == 1) {
        parent = task->parent->obj;
        first = parent ? parent->element[0] : NULL;

        if (first && first->type == REDIS_REPLY_STRING
            && ((first->len == 11
                 && ngx_strncasecmp((u_char *) first->str,
                                    (u_char *) "unsubscribe", 11) == 0)
                || (first->len == 12
                    && ngx_strncasecmp((u_char *) first->str,
                                       (u_char *) "punsubscribe", 12) == 0)))
        {
            return 1;
        }
    }

    return 0;
}


static void *
ngx_http_asyncx_redis_guard_string(const redisReadTask *task, char *str,
    size_t len)
{
    ngx_http_asyncx_redis_t *rd = task->privdata;

    if (ngx_http_asyncx_redis_guard_bad(task, task->type)) {
        ngx_http_asyncx_redis_fail(rd, NULL, "a malformed pub/sub message");
        return NULL;
    }

    return rd->reply_fn->createString(task, str, len);
}


static void *
ngx_http_asyncx_redis_guard_array(const redisReadTask *task, int elements)
{
    ngx_http_asyncx_redis_t *rd = task->privdata;

    if ((task->parent == NULL && elements < 2)
        || ngx_http_asyncx_redis_guard_bad(task, REDIS_REPLY_ARRAY))
    {
        ngx_http_asyncx_redis_fail(rd, NULL, "a malformed pub/sub message");
        return NULL;
    }

    return rd->reply_fn->createArray(task, elements);
}


static void *
ngx_http_asyncx_redis_guard_integer(const redisReadTask *task,
    long long value)
{
    ngx_http_asyncx_redis_t *rd = task->privdata;

    if (ngx_http_asyncx_redis_guard_bad(task, REDIS_REPLY_INTEGER)) {
        ngx_http_asyncx_redis_fail(rd, NULL, "a malformed pub/sub message");
        return NULL;
    }

    return rd->reply_fn->createInteger(task, value);
}


static void *
ngx_http_asyncx_redis_guard_nil(const redisReadTask *task)
{
    ngx_http_asyncx_redis_t *rd = task->privdata;

    if (ngx_http_asyncx_redis_guard_bad(task, REDIS_REPLY_NIL)) {
        ngx_http_asyncx_redis_fail(rd, NULL, "a malformed pub/sub message");
        return NULL;
    }

    return rd->reply_fn->createNil(task);
}


static void
ngx_http_asyncx_redis_guard_reader(ngx_http_asyncx_redis_t *rd,
    redisReader *reader)
{
    rd->reply_fn = reader->fn;

    rd->guard = *reader->fn;
    rd->guard.createString = ngx_http_asyncx_redis_guard_string;
    rd->guard.createArray = ngx_http_asyncx_redis_guard_array;
    rd->guard.createInteger = ngx_http_asyncx_redis_guard_integer;
    rd->guard.createNil = ngx_http_asyncx_redis_guard_nil;

    reader->fn = &rd->guard;
    reader->privdata = rd;
}


static void
ngx_http_asyncx_redis_connect(ngx_http_asyncx_redis_t *rd)
{
    ngx_connection_t   *c;
    redisAsyncContext  *ac;

    rd->error[0] = '\0';

    ac = redisAsyncConnect((const char *) rd->host, rd->port);

    if (ac == NULL) {
        ngx_http_asyncx_redis_fail(rd, NULL, "no memory for a context");
        goto failed;
    }

    if (ac->err) {
        ngx_http_asyncx_redis_fail(rd, NULL, ac->errstr);
        redisAsyncFree(ac);
        goto failed;
    }

    if (rd->pubsub) {
        ngx_http_asyncx_redis_guard_reader(rd, ac->c.reader);
    }

    c = ngx_get_connection(ac->c.fd, rd->log);

    if (c == NULL) {
        ngx_http_asyncx_redis_fail(rd, NULL, "no free connection");
        redisAsyncFree(ac);
        goto failed;
    }

    c->data = rd;
    c->log = rd->log;
    c->read->log = rd->log;
    c->write->log = rd->log;
    c->read->handler = ngx_http_asyncx_redis_read_handler;
    c->write->handler = ngx_http_asyncx_redis_write_handler;

    rd->ac = ac;
    rd->conn = c;
    rd->pending = 0;
    rd->state = NGX_HTTP_ASYNCX_REDIS_CONNECTING;

    ac->data = rd;
    ac->ev.data = rd;
    ac->ev.addRead = ngx_http_asyncx_redis_add_read;
    ac->ev.delRead = ngx_http_asyncx_redis_del_read;
    ac->ev.addWrite = ngx_http_asyncx_redis_add_write;
    ac->ev.delWrite = ngx_http_asyncx_redis_del_write;
    ac->ev.cleanup = ngx_http_asyncx_redis_cleanup;

    /* after the hooks: it asks for the write event that tells "connected" */
    redisAsyncSetConnectCallback(ac, ngx_http_asyncx_redis_connected);
    redisAsyncSetDisconnectCallback(ac, ngx_http_asyncx_redis_disconnected);

    /* hiredis 0.14 has no connect timeout: this timer is it */
    ngx_add_timer(&rd->timer, rd->timeout);

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, rd->log, 0,
                   "asyncx redis %V: connecting", &rd->name);

    /* queued now, sent in this order once connected */
    ngx_http_asyncx_redis_handshake(rd);

    if (rd->ac && rd->on_connect) {
        rd->on_connect(rd);
    }

    return;

failed:

    ngx_http_asyncx_redis_schedule(rd);

    if (rd->on_close) {
        rd->on_close(rd);
    }
}


/* AUTH and SELECT, queued before anything else of the connection */

static void
ngx_http_asyncx_redis_handshake(ngx_http_asyncx_redis_t *rd)
{
    u_char       db[NGX_INT_T_LEN];
    size_t       len[2];
    const char  *argv[2];

    if (rd->password.len) {
        argv[0] = "AUTH";
        len[0] = 4;
        argv[1] = (const char *) rd->password.data;
        len[1] = rd->password.len;

        rd->auth.handler = ngx_http_asyncx_redis_handshake_done;
        rd->auth.data = (void *) "AUTH";

        if (ngx_http_asyncx_redis_command(rd, &rd->auth, 2, argv, len)
            != NGX_OK)
        {
            return;
        }
    }

    if (rd->db) {
        argv[0] = "SELECT";
        len[0] = 6;
        argv[1] = (const char *) db;
        len[1] = ngx_sprintf(db, "%ui", rd->db) - db;

        rd->select.handler = ngx_http_asyncx_redis_handshake_done;
        rd->select.data = (void *) "SELECT";

        (void) ngx_http_asyncx_redis_command(rd, &rd->select, 2, argv, len);
    }
}


static void
ngx_http_asyncx_redis_handshake_done(ngx_http_asyncx_redis_t *rd,
    redisReply *reply, void *data)
{
    if (reply == NULL) {
        return;
    }

    if (reply->type == REDIS_REPLY_STATUS) {
        return;
    }

    /* Redis's error text, never the password */
    ngx_http_asyncx_redis_fail(rd, (const char *) data,
                               reply->type == REDIS_REPLY_ERROR
                               ? reply->str : "unexpected reply");

    if (rd->ac) {
        /* within a callback: hiredis frees the context after it */
        redisAsyncFree(rd->ac);
    }
}


/* rd->error: "what failed: detail" or the detail, a C string, cut */

static void
ngx_http_asyncx_redis_fail(ngx_http_asyncx_redis_t *rd, const char *what,
    const char *detail)
{
    u_char  *p;

    p = rd->error;

    if (what != NULL) {
        p = ngx_slprintf(p, rd->error + NGX_HTTP_ASYNCX_REDIS_ERRLEN - 1,
                         "%s failed: ", what);
    }

    (void) ngx_http_asyncx_redis_text(p, rd->error + sizeof(rd->error) - p,
                                      detail);
}


/*
 * Text from Redis or hiredis (an error reply: a hostile server's bytes)
 * for a log line: control characters and bytes that are not UTF-8 as
 * \xNN, cut to fit "size" with its NUL.  Returns buf.
 */

u_char *
ngx_http_asyncx_redis_text(u_char *buf, size_t size, const char *text)
{
    size_t  n;

    n = ngx_min(ngx_strlen(text), (size - 1) / 4);

    *ngx_http_asyncx_utf8_escape(buf, (u_char *) text, n,
                                 NGX_HTTP_ASYNCX_UTF8_CONTROLS) = '\0';

    return buf;
}


static void
ngx_http_asyncx_redis_schedule(ngx_http_asyncx_redis_t *rd)
{
    rd->state = NGX_HTTP_ASYNCX_REDIS_CLOSED;

    if (rd->exiting || rd->retry.timer_set) {
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, rd->log, 0,
                   "asyncx redis %V: reconnect in %M ms", &rd->name,
                   rd->backoff);

    ngx_add_timer(&rd->retry, rd->backoff);

    rd->backoff = ngx_min(rd->backoff * 2, NGX_HTTP_ASYNCX_REDIS_BACKOFF_MAX);
}


static void
ngx_http_asyncx_redis_retry_handler(ngx_event_t *ev)
{
    ngx_http_asyncx_redis_t  *rd = ev->data;

    if (rd->exiting || rd->ac) {
        return;
    }

    rd->reconnects++;
    ngx_http_asyncx_redis_connect(rd);
}


/* no connection in time, or a command not answered in time */

static void
ngx_http_asyncx_redis_timer_handler(ngx_event_t *ev)
{
    ngx_http_asyncx_redis_t  *rd = ev->data;

    if (rd->ac == NULL) {
        return;
    }

    ngx_http_asyncx_redis_fail(rd, NULL,
                               (rd->ac->c.flags & REDIS_CONNECTED)
                               ? "timed out waiting for a reply"
                               : "connect timed out");

    /* every pending command's handler runs with NULL, then the cleanup */
    redisAsyncFree(rd->ac);
}


static void
ngx_http_asyncx_redis_read_handler(ngx_event_t *ev)
{
    ngx_connection_t         *c = ev->data;
    ngx_http_asyncx_redis_t  *rd = c->data;

    if (rd->ac) {
        redisAsyncHandleRead(rd->ac);
    }
}


static void
ngx_http_asyncx_redis_write_handler(ngx_event_t *ev)
{
    ngx_connection_t         *c = ev->data;
    ngx_http_asyncx_redis_t  *rd = c->data;

    if (rd->ac) {
        redisAsyncHandleWrite(rd->ac);
    }
}


static void
ngx_http_asyncx_redis_connected(const redisAsyncContext *ac, int status)
{
    ngx_http_asyncx_redis_t  *rd = ac->data;

    if (status != REDIS_OK) {
        /* hiredis frees the context after this: see the cleanup */
        ngx_http_asyncx_redis_fail(rd, "connect", ac->errstr);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, rd->log, 0,
                   "asyncx redis %V: connected", &rd->name);

    rd->state = NGX_HTTP_ASYNCX_REDIS_READY;
    rd->backoff = NGX_HTTP_ASYNCX_REDIS_BACKOFF_MIN;

    if (rd->pending == 0 && rd->timer.timer_set) {
        ngx_del_timer(&rd->timer);
    }
}


static void
ngx_http_asyncx_redis_disconnected(const redisAsyncContext *ac, int status)
{
    ngx_http_asyncx_redis_t  *rd = ac->data;

    if (status != REDIS_OK && rd->error[0] == '\0') {
        ngx_http_asyncx_redis_fail(rd, NULL, ac->errstr);
    }
}


ngx_int_t
ngx_http_asyncx_redis_command(ngx_http_asyncx_redis_t *rd,
    ngx_http_asyncx_redis_cmd_t *cmd, int argc, const char **argv,
    const size_t *argvlen)
{
    if (rd->ac == NULL || rd->ac->err
        || (rd->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)))
    {
        return NGX_DECLINED;
    }

    cmd->rd = rd;
    cmd->confirmed = 0;

    if (redisAsyncCommandArgv(rd->ac, ngx_http_asyncx_redis_reply, cmd, argc,
                              argv, argvlen)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    rd->pending++;
    rd->commands++;

    if (!rd->timer.timer_set) {
        ngx_add_timer(&rd->timer, rd->timeout);
    }

    return NGX_OK;
}


static void
ngx_http_asyncx_redis_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    ngx_http_asyncx_redis_cmd_t  *cmd = privdata;

    redisReply               *reply = r;
    ngx_http_asyncx_redis_t  *rd;

    rd = cmd->rd;

    if (!cmd->subscribe || !cmd->confirmed) {
        if (rd->pending) {
            rd->pending--;
        }

        if (reply && rd->ac) {
            /* an answer came: the next one is due within the timeout */
            if (rd->timer.timer_set) {
                ngx_del_timer(&rd->timer);
            }

            if (rd->pending
                || rd->state == NGX_HTTP_ASYNCX_REDIS_CONNECTING)
            {
                ngx_add_timer(&rd->timer, rd->timeout);
            }
        }
    }

    if (reply == NULL) {
        if (ac->err && rd->error[0] == '\0') {
            ngx_http_asyncx_redis_fail(rd, NULL, ac->errstr);
        }

        if (rd->error[0] == '\0') {
            ngx_http_asyncx_redis_fail(rd, NULL, "connection closed");
        }

    } else if (cmd->subscribe) {
        cmd->confirmed = 1;
    }

    cmd->handler(rd, reply, cmd->data);
}


/*
 * The hooks.  Level-triggered, as hiredis expects: it reads once per
 * call and asks again while it wants more.
 */

static void
ngx_http_asyncx_redis_add_read(void *privdata)
{
    ngx_http_asyncx_redis_t  *rd = privdata;

    if (rd->conn && !rd->conn->read->active
        && ngx_add_event(rd->conn->read, NGX_READ_EVENT, NGX_LEVEL_EVENT)
           != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, rd->log, 0,
                      "asyncx redis %V: adding a read event failed",
                      &rd->name);
    }
}


static void
ngx_http_asyncx_redis_del_read(void *privdata)
{
    ngx_http_asyncx_redis_t  *rd = privdata;

    if (rd->conn && rd->conn->read->active) {
        (void) ngx_del_event(rd->conn->read, NGX_READ_EVENT, 0);
    }
}


static void
ngx_http_asyncx_redis_add_write(void *privdata)
{
    ngx_http_asyncx_redis_t  *rd = privdata;

    if (rd->conn && !rd->conn->write->active
        && ngx_add_event(rd->conn->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
           != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, rd->log, 0,
                      "asyncx redis %V: adding a write event failed",
                      &rd->name);
    }
}


static void
ngx_http_asyncx_redis_del_write(void *privdata)
{
    ngx_http_asyncx_redis_t  *rd = privdata;

    if (rd->conn && rd->conn->write->active) {
        (void) ngx_del_event(rd->conn->write, NGX_WRITE_EVENT, 0);
    }
}


/*
 * hiredis frees the context (after an error, a timeout, or at exit):
 * every pending handler has run.  The events go, the connection is
 * given back without closing the fd (hiredis does), and a reconnect is
 * scheduled.
 */

static void
ngx_http_asyncx_redis_cleanup(void *privdata)
{
    ngx_http_asyncx_redis_t  *rd = privdata;

    ngx_connection_t  *c;

    c = rd->conn;

    if (c) {
        if (c->read->active) {
            (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
        }

        if (c->write->active) {
            (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
        }

        if (c->read->posted) {
            ngx_delete_posted_event(c->read);
        }

        if (c->write->posted) {
            ngx_delete_posted_event(c->write);
        }

        c->read->closed = 1;
        c->write->closed = 1;

        ngx_free_connection(c);
        c->fd = (ngx_socket_t) -1;

        rd->conn = NULL;
    }

    rd->ac = NULL;
    rd->pending = 0;

    if (rd->timer.timer_set) {
        ngx_del_timer(&rd->timer);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, rd->log, 0,
                   "asyncx redis %V: closed (%s)", &rd->name, rd->error);

    ngx_http_asyncx_redis_schedule(rd);

    if (!rd->exiting && rd->on_close) {
        rd->on_close(rd);
    }
}


/* a reply its user cannot use: what it was, for the log of the failure */

void
ngx_http_asyncx_redis_fail_reason(ngx_http_asyncx_redis_t *rd,
    redisReply *reply)
{
    ngx_http_asyncx_redis_fail(rd, NULL,
                               reply->type == REDIS_REPLY_ERROR
                               ? reply->str : "a reply of an unexpected type");
}


/* at a worker's exit: what is queued goes out if the socket takes it */

void
ngx_http_asyncx_redis_flush(ngx_http_asyncx_redis_t *rd)
{
    if (rd->ac && rd->conn && (rd->ac->c.flags & REDIS_CONNECTED)) {
        redisAsyncHandleWrite(rd->ac);
    }
}


void
ngx_http_asyncx_redis_close(ngx_http_asyncx_redis_t *rd)
{
    rd->exiting = 1;

    if (rd->retry.timer_set) {
        ngx_del_timer(&rd->retry);
    }

    if (rd->ac) {
        ngx_http_asyncx_redis_fail(rd, NULL, "worker exits");
        redisAsyncFree(rd->ac);
    }

    if (rd->timer.timer_set) {
        ngx_del_timer(&rd->timer);
    }
}
