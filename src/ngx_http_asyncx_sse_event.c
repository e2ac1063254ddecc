
/*
 * Copyright (C) asyncx authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_asyncx_sse_event.h"


static size_t ngx_http_asyncx_sse_retry_len(ngx_msec_t ms);


/* the bytes ngx_http_asyncx_sse_event_write() writes for ev */

size_t
ngx_http_asyncx_sse_event_len(ngx_http_asyncx_sse_event_t *ev)
{
    u_char  *p, *last;
    size_t   len;

    len = 0;

    if (ev->id.len) {
        len += sizeof("id: \n") - 1 + ev->id.len;
    }

    if (ev->event.len) {
        len += sizeof("event: \n") - 1 + ev->event.len;
    }

    if (ev->retry) {
        len += sizeof("retry: \n") - 1
               + ngx_http_asyncx_sse_retry_len(ev->retry);
    }

    if (ev->data == NULL) {
        return len + 1;
    }

    len += sizeof("data: \n\n") - 1 + ev->len;

    /* every line break becomes "\ndata: " */

    p = ev->data;
    last = p + ev->len;

    while (p < last) {
        if (*p == '\r') {
            if (p + 1 < last && p[1] == '\n') {
                len += sizeof("\ndata: ") - 1 - 2;
                p += 2;
                continue;
            }

            len += sizeof("\ndata: ") - 1 - 1;

        } else if (*p == '\n') {
            len += sizeof("\ndata: ") - 1 - 1;
        }

        p++;
    }

    return len;
}


u_char *
ngx_http_asyncx_sse_event_write(u_char *p, ngx_http_asyncx_sse_event_t *ev)
{
    u_char      *s, *last, *brk, *d;
    ngx_msec_t   ms;

    if (ev->id.len) {
        p = ngx_cpymem(p, "id: ", sizeof("id: ") - 1);
        p = ngx_cpymem(p, ev->id.data, ev->id.len);
        *p++ = '\n';
    }

    if (ev->event.len) {
        p = ngx_cpymem(p, "event: ", sizeof("event: ") - 1);
        p = ngx_cpymem(p, ev->event.data, ev->event.len);
        *p++ = '\n';
    }

    if (ev->retry) {
        p = ngx_cpymem(p, "retry: ", sizeof("retry: ") - 1);
        p += ngx_http_asyncx_sse_retry_len(ev->retry);

        /* the digits backwards: ngx_sprintf() is not linked in pure code */
        for (ms = ev->retry, d = p; ms; ms /= 10) {
            *--d = (u_char) ('0' + ms % 10);
        }

        *p++ = '\n';
    }

    if (ev->data == NULL) {
        *p++ = '\n';
        return p;
    }

    p = ngx_cpymem(p, "data: ", sizeof("data: ") - 1);

    s = ev->data;
    last = s + ev->len;

    for ( ;; ) {
        /* JSON payloads seldom hold a line break: copy runs of bytes */
        for (brk = s; brk < last && *brk != '\r' && *brk != '\n'; brk++) {
            /* void */
        }

        p = ngx_cpymem(p, s, brk - s);

        if (brk == last) {
            break;
        }

        p = ngx_cpymem(p, "\ndata: ", sizeof("\ndata: ") - 1);

        s = brk + 1;

        if (*brk == '\r' && s < last && *s == '\n') {
            s++;
        }
    }

    *p++ = '\n';
    *p++ = '\n';

    return p;
}


/* the digits of a retry value */

static size_t
ngx_http_asyncx_sse_retry_len(ngx_msec_t ms)
{
    size_t  n;

    for (n = 1; ms >= 10; n++) {
        ms /= 10;
    }

    return n;
}
