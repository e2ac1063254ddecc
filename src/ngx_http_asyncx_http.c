
/*
 * Copyright (C) asyncx authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <cjson/cJSON.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_http.h"


#define NGX_HTTP_ASYNCX_ERROR_MAX  1024


static ngx_int_t ngx_http_asyncx_send_error_text(ngx_http_request_t *r,
    ngx_uint_t status, ngx_uint_t level, u_char *logged, size_t logged_len,
    u_char *answered, size_t answered_len);


ngx_int_t
ngx_http_asyncx_send_json(ngx_http_request_t *r, ngx_uint_t status,
    u_char *data, size_t len)
{
    u_char  *line;

    line = ngx_pnalloc(r->pool, len + 1);
    if (line == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(line, data, len);
    line[len] = '\n';

    return ngx_http_asyncx_send_json_line(r, status, line, len + 1);
}


/*
 * A JSON text that ends with its newline already, sent as it is (no
 * copy): it must live as long as the request, in its pool or longer.
 */

ngx_int_t
ngx_http_asyncx_send_json_line(ngx_http_request_t *r, ngx_uint_t status,
    u_char *line, size_t len)
{
    ngx_buf_t  *b;

    b = ngx_palloc(r->pool, sizeof(ngx_buf_t));
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_asyncx_send_json_buf(r, status, b, line, len);
}


/*
 * send_json_line with the buffer given by the caller, for answers made
 * ahead of sending: a worker that ends thousands of them in one timer
 * run then allocates nothing from pools grown cold since they were
 * made.  b must live as long as the request; it is overwritten.
 */

ngx_int_t
ngx_http_asyncx_send_json_buf(ngx_http_request_t *r, ngx_uint_t status,
    ngx_buf_t *b, u_char *line, size_t len)
{
    ngx_int_t     rc;
    ngx_chain_t   out;

    if (r->header_sent) {
        /* too late to change the status: the caller streams already */
        return NGX_ERROR;
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    ngx_http_clear_accept_ranges(r);
    ngx_http_clear_last_modified(r);
    ngx_http_clear_etag(r);

    ngx_memzero(b, sizeof(ngx_buf_t));

    b->start = line;
    b->pos = line;
    b->last = line + len;
    b->end = b->last;
    b->temporary = 1;
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


ngx_int_t
ngx_http_asyncx_send_cjson(ngx_http_request_t *r, ngx_uint_t status,
    cJSON *root)
{
    char       *text;
    ngx_int_t   rc;

    text = cJSON_PrintUnformatted(root);
    if (text == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "asyncx: cannot serialize JSON response");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* send_json copies into r->pool before anything can fail */
    rc = ngx_http_asyncx_send_json(r, status, (u_char *) text,
                                   ngx_strlen(text));
    cJSON_free(text);

    return rc;
}


/*
 * The one error shape of the module: {"error": "...", "status": N},
 * logged at the level the caller chose, with the request in context.
 */

ngx_int_t
ngx_http_asyncx_send_error(ngx_http_request_t *r, ngx_uint_t status,
    ngx_uint_t level, const char *fmt, ...)
{
    u_char    buf[NGX_HTTP_ASYNCX_ERROR_MAX], *p;
    size_t    len;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    /* a message cut at the buffer's end does not end inside a character */
    len = ngx_http_asyncx_utf8_trim(buf, p - buf);

    return ngx_http_asyncx_send_error_text(r, status, level, buf, len,
                                           buf, len);
}


/*
 * A fault of the server (500): the log line has the detail (the file
 * root, the errno text), the client only what failed, as nginx's own
 * 500 pages tell nothing of the server's files.
 */

ngx_int_t
ngx_http_asyncx_send_server_error(ngx_http_request_t *r,
    const ngx_str_t *what, u_char *detail, size_t len)
{
    u_char  buf[NGX_HTTP_ASYNCX_ERROR_MAX], *p;

    p = ngx_slprintf(buf, buf + sizeof(buf),
                     "%V: internal error, see the error log", what);

    return ngx_http_asyncx_send_error_text(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                           NGX_LOG_ERR, detail, len,
                                           buf, p - buf);
}


/*
 * A client's value for a message that quotes it in "...": its '"' and
 * '\' (and its bytes that are not UTF-8) become \xNN, so that the value
 * can neither end its quote nor pass for an escape, and cannot forge the
 * fields that follow it in the log line.  The whole message cannot be
 * escaped so: its own quotes would be.  flags may add
 * NGX_HTTP_ASYNCX_UTF8_CONTROLS, for a line logged as it is; the error
 * answer's path escapes control characters itself.
 */

ngx_int_t
ngx_http_asyncx_quote(ngx_pool_t *pool, u_char *src, size_t len,
    ngx_uint_t flags, ngx_str_t *dst)
{
    flags |= NGX_HTTP_ASYNCX_UTF8_QUOTES;

    dst->data = ngx_pnalloc(pool,
                            ngx_http_asyncx_utf8_escape_len(src, len, flags)
                            + 1);
    if (dst->data == NULL) {
        return NGX_ERROR;
    }

    dst->len = ngx_http_asyncx_utf8_escape(dst->data, src, len, flags)
               - dst->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_asyncx_send_error_text(ngx_http_request_t *r, ngx_uint_t status,
    ngx_uint_t level, u_char *logged, size_t logged_len, u_char *answered,
    size_t answered_len)
{
    u_char  *json, *last, *msg;
    size_t   len;

    /*
     * Messages quote what clients sent (paths, names, patterns): bytes
     * that are not UTF-8, and control characters that would split a log
     * line, are written as \xNN, so the log line and the answer are
     * valid UTF-8.  A quoted value's '"' and '\' were escaped by its
     * caller (ngx_http_asyncx_quote()): here they are the message's own.
     */

    msg = ngx_pnalloc(r->pool,
                      ngx_http_asyncx_utf8_escape_len(logged, logged_len,
                                                NGX_HTTP_ASYNCX_UTF8_CONTROLS));
    if (msg == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ngx_http_asyncx_utf8_escape(msg, logged, logged_len,
                                      NGX_HTTP_ASYNCX_UTF8_CONTROLS) - msg;

    ngx_log_error(level, r->connection->log, 0,
                  "asyncx: %*s (status %ui)", len, msg, status);

    if (r->header_sent) {
        return NGX_ERROR;
    }

    if (answered != logged) {
        msg = ngx_pnalloc(r->pool,
                          ngx_http_asyncx_utf8_escape_len(answered,
                                              answered_len,
                                              NGX_HTTP_ASYNCX_UTF8_CONTROLS));
        if (msg == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        len = ngx_http_asyncx_utf8_escape(msg, answered, answered_len,
                                          NGX_HTTP_ASYNCX_UTF8_CONTROLS)
              - msg;
    }

    json = ngx_pnalloc(r->pool,
                       sizeof("{\"error\": \"\", \"status\": }") - 1
                       + len + ngx_http_asyncx_json_escape_len(msg, len)
                       + NGX_INT_T_LEN);
    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = ngx_cpymem(json, "{\"error\": \"", sizeof("{\"error\": \"") - 1);
    last = ngx_http_asyncx_json_escape(last, msg, len);
    last = ngx_sprintf(last, "\", \"status\": %ui}", status);

    if (r == r->main) {
        /*
         * A refusal decided before the body is read (a method, an
         * argument, a declared size) answers at once: no "100 Continue"
         * invites a body that nobody reads, as nginx's own 413 does not.
         */
        if (r->request_body == NULL) {
            r->expect_tested = 1;
        }

        if (ngx_http_discard_request_body(r) != NGX_OK) {
            r->keepalive = 0;
        }
    }

    return ngx_http_asyncx_send_json(r, status, json, last - json);
}


ngx_int_t
ngx_http_asyncx_set_retry_after(ngx_http_request_t *r, time_t seconds)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->value.data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (h->value.data == NULL) {
        h->hash = 0;
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Retry-After");
    h->value.len = ngx_sprintf(h->value.data, "%T", seconds) - h->value.data;
    h->lowcase_key = (u_char *) "retry-after";

    return NGX_OK;
}


/*
 * A query argument, percent-decoded once into r->pool and NUL-terminated
 * (see ngx_http_asyncx_unescape_arg: "+" is a plus sign, not a space);
 * NGX_DECLINED if absent.
 */

ngx_int_t
ngx_http_asyncx_arg(ngx_http_request_t *r, const char *name, ngx_str_t *value)
{
    ngx_str_t  raw;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &raw) != NGX_OK) {
        return NGX_DECLINED;
    }

    value->data = ngx_pnalloc(r->pool, raw.len + 1);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    value->len = ngx_http_asyncx_unescape_arg(value->data, raw.data,
                                              raw.len);
    value->data[value->len] = '\0';

    return NGX_OK;
}


/*
 * NGX_OK with *value set, NGX_DECLINED when absent (value untouched),
 * NGX_ERROR when present but not a decimal within [min, max].
 */

ngx_int_t
ngx_http_asyncx_arg_uint(ngx_http_request_t *r, const char *name,
    uint64_t min, uint64_t max, uint64_t *value)
{
    uint64_t   v;
    ngx_str_t  s;

    if (ngx_http_asyncx_arg(r, name, &s) != NGX_OK) {
        return NGX_DECLINED;
    }

    if (ngx_http_asyncx_parse_uint(s.data, s.len, max, &v) != NGX_OK
        || v < min)
    {
        return NGX_ERROR;
    }

    *value = v;

    return NGX_OK;
}


/*
 * The read request body as one contiguous buffer in r->pool.  In-memory
 * parts are copied here; parts nginx spilled to a temp file are left for
 * ngx_http_asyncx_body_read_files(), which a thread task runs, so the
 * event loop never reads a file.  Returns NGX_OK (complete), NGX_AGAIN
 * (file parts pending), NGX_DECLINED (larger than max) or NGX_ERROR.
 */

ngx_int_t
ngx_http_asyncx_body_copy(ngx_http_request_t *r, ngx_str_t *body, size_t max)
{
    u_char       *p;
    off_t         len;
    ngx_buf_t    *b;
    ngx_uint_t    in_file;
    ngx_chain_t  *cl;

    body->len = 0;
    body->data = (u_char *) "";

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    if (len == 0) {
        return NGX_OK;
    }

    if ((size_t) len > max) {
        return NGX_DECLINED;
    }

    p = ngx_pnalloc(r->pool, (size_t) len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;
    in_file = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            in_file = 1;
            p += b->file_last - b->file_pos;

        } else if (b->last > b->pos) {
            /* a chunked body ends with an empty buffer whose pos is NULL */
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    body->len = p - body->data;
    *p = '\0';

    return in_file ? NGX_AGAIN : NGX_OK;
}


/*
 * Thread side of ngx_http_asyncx_body_copy(): fills the holes left for
 * temp-file parts with pread().  No nginx logging or pools here.
 * Returns 0 or an errno value.
 */

ngx_err_t
ngx_http_asyncx_body_read_files(ngx_chain_t *bufs, u_char *dst)
{
    off_t       off;
    size_t      size;
    ssize_t     n;
    ngx_buf_t  *b;

    for ( /* void */ ; bufs; bufs = bufs->next) {
        b = bufs->buf;

        if (!b->in_file) {
            dst += b->last - b->pos;
            continue;
        }

        off = b->file_pos;
        size = (size_t) (b->file_last - b->file_pos);

        while (size) {
            n = pread(b->file->fd, dst, size, off);

            if (n == -1) {
                if (ngx_errno == NGX_EINTR) {
                    continue;
                }

                return ngx_errno;
            }

            if (n == 0) {
                return EIO;
            }

            dst += n;
            off += n;
            size -= n;
        }
    }

    return 0;
}


cJSON *
ngx_http_asyncx_cjson_add_seconds(cJSON *obj, const char *name, uint64_t usec,
    ngx_uint_t decimals, ngx_str_t *unit)
{
    u_char  buf[NGX_HTTP_ASYNCX_SECONDS_LEN];

    if (ngx_http_asyncx_format_duration(buf, sizeof(buf), usec, decimals, unit)
        == 0)
    {
        return NULL;
    }

    return cJSON_AddStringToObject(obj, name, (char *) buf);
}


/*
 * While a request waits (thread task, timer, subrequests), a client that
 * goes away makes nginx terminate it.  With edge-triggered epoll a close
 * that came before the request was processed has been reported already
 * (EPOLLRDHUP, rev->pending_eof) and will not be again: post the read
 * event, so ngx_http_test_reading() sees it as it would a new one.
 */

void
ngx_http_asyncx_watch_client(ngx_http_request_t *r)
{
    ngx_event_t  *rev;

    r->read_event_handler = ngx_http_test_reading;

    rev = r->connection->read;

    if (rev->pending_eof && !rev->posted) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "asyncx: client closed before the wait, look again");
        ngx_post_event(rev, &ngx_posted_events);
    }
}


/*
 * The Allow header RFC 9110 requires on a 405, listing "allowed"
 * (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST bits).
 */

ngx_int_t
ngx_http_asyncx_set_allow(ngx_http_request_t *r, ngx_uint_t allowed)
{
    u_char           *p;
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(r->pool, sizeof("GET, HEAD, POST, ") - 1);
    if (p == NULL) {
        h->hash = 0;
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Allow");
    h->lowcase_key = (u_char *) "allow";
    h->value.data = p;

    if (allowed & NGX_HTTP_GET) {
        p = ngx_cpymem(p, "GET, ", 5);
    }

    if (allowed & NGX_HTTP_HEAD) {
        p = ngx_cpymem(p, "HEAD, ", 6);
    }

    if (allowed & NGX_HTTP_POST) {
        p = ngx_cpymem(p, "POST, ", 6);
    }

    /* without the last ", " */
    h->value.len = (p - h->value.data) - 2;

    return NGX_OK;
}


/*
 * For read-only handlers: NGX_OK to go on (GET or HEAD, any body
 * discarded), or NGX_ERROR (refused) with *rc what the handler returns.
 */

ngx_int_t
ngx_http_asyncx_get_only(ngx_http_request_t *r, ngx_int_t *rc)
{
    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        if (ngx_http_asyncx_set_allow(r, NGX_HTTP_GET|NGX_HTTP_HEAD)
            != NGX_OK)
        {
            *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return NGX_ERROR;
        }

        *rc = ngx_http_asyncx_send_error(r, NGX_HTTP_NOT_ALLOWED, NGX_LOG_INFO,
                                         "method not allowed, use GET");
        return NGX_ERROR;
    }

    *rc = ngx_http_discard_request_body(r);

    return (*rc == NGX_OK) ? NGX_OK : NGX_ERROR;
}


/*
 * The header of a text/event-stream answer (asyncx_sse, the status
 * stream): chunked, never cached or buffered on the way.
 */

ngx_int_t
ngx_http_asyncx_send_event_stream_header(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h;

    r->headers_out.status = NGX_HTTP_OK;
    ngx_str_set(&r->headers_out.content_type, "text/event-stream");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    /* no length: the chunked filter frames every event as it goes */
    ngx_http_clear_content_length(r);
    ngx_http_clear_accept_ranges(r);
    ngx_http_clear_last_modified(r);

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-cache");

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    /* a proxy in front (nginx itself, say) must not buffer the stream */
    h->hash = 1;
    ngx_str_set(&h->key, "X-Accel-Buffering");
    ngx_str_set(&h->value, "no");

    return ngx_http_send_header(r);
}


/* server_tokens off: the nginx version is told nowhere, as in "Server" */

ngx_uint_t
ngx_http_asyncx_server_tokens(ngx_http_request_t *r)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    return clcf->server_tokens != NGX_HTTP_SERVER_TOKENS_OFF;
}


/* the keepalive comment of every stream, unless output is pending */

void
ngx_http_asyncx_event_stream_keepalive(ngx_http_request_t *r, ngx_buf_t *b,
    ngx_chain_t *cl)
{
    ngx_int_t          rc;
    ngx_connection_t  *c;

    static u_char  ping[] = ": keepalive\n\n";

    c = r->connection;

    if (r->out || c->buffered) {
        /* the client is not even reading what it has */
        return;
    }

    ngx_memzero(b, sizeof(ngx_buf_t));
    b->pos = ping;
    b->last = ping + sizeof(ping) - 1;
    b->memory = 1;
    b->flush = 1;
    cl->buf = b;
    cl->next = NULL;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, 0, "asyncx sse: keepalive");

    rc = ngx_http_output_filter(r, cl);

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_ERROR);
    }

    ngx_http_run_posted_requests(c);
}


/*
 * A stream's write event: NGX_OK while its client is there, else
 * NGX_DONE with the request finalized (send_timeout passed, or the
 * connection failed).
 */

ngx_int_t
ngx_http_asyncx_event_stream_gone(ngx_http_request_t *r, const char *who)
{
    ngx_connection_t  *c;

    c = r->connection;

    if (c->write->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "%s: client timed out reading the stream", who);
        c->timedout = 1;
        ngx_http_finalize_request(r, NGX_HTTP_REQUEST_TIME_OUT);
        return NGX_DONE;
    }

    if (c->error) {
        ngx_http_finalize_request(r, NGX_HTTP_CLIENT_CLOSED_REQUEST);
        return NGX_DONE;
    }

    return NGX_OK;
}


/*
 * The one walk of the request's header list: the next header named
 * "name" after "prev" (NULL: the first one), or NULL.
 */

ngx_table_elt_t *
ngx_http_asyncx_header_next(ngx_http_request_t *r, ngx_str_t *name,
    ngx_table_elt_t *prev)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (prev) {
            if (&h[i] == prev) {
                prev = NULL;
            }

            continue;
        }

        if (h[i].key.len == name->len
            && ngx_strncasecmp(h[i].key.data, name->data, name->len) == 0)
        {
            return &h[i];
        }
    }
}


/* Last-Event-ID is no standard nginx header: NGX_OK or NGX_DECLINED */

ngx_int_t
ngx_http_asyncx_last_event_id(ngx_http_request_t *r, ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    static ngx_str_t  name = ngx_string("Last-Event-ID");

    h = ngx_http_asyncx_header_next(r, &name, NULL);
    if (h == NULL) {
        return NGX_DECLINED;
    }

    *value = h->value;

    return NGX_OK;
}
