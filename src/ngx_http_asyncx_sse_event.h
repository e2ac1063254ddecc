
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_SSE_EVENT_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_SSE_EVENT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * The event stream format (WHATWG HTML, "Server-sent events"): an
 * optional "id:" line, an optional "event:" line, an optional "retry:"
 * line (the receiver's reconnection time, in milliseconds), one "data:"
 * line per line of the payload and a blank line.  A payload holding
 * CR LF, CR or LF is split there, and the receiver joins the lines back
 * with LF, so JSON whose whitespace holds a CR arrives intact.  Without
 * data (NULL) the block has no "data:" line: the receiver takes its
 * fields and dispatches no event.  Pure code: thread tasks format events
 * with it.
 */

typedef struct {
    ngx_str_t   id;          /* no CR, LF or NUL; empty: no id line */
    ngx_str_t   event;       /* no CR or LF; empty: "message" */
    ngx_msec_t  retry;       /* 0: no retry line */
    u_char     *data;        /* NULL: no data line, no event */
    size_t      len;
} ngx_http_asyncx_sse_event_t;


size_t ngx_http_asyncx_sse_event_len(ngx_http_asyncx_sse_event_t *ev);
u_char *ngx_http_asyncx_sse_event_write(u_char *p,
    ngx_http_asyncx_sse_event_t *ev);


#endif /* _NGX_HTTP_ASYNCX_SSE_EVENT_H_INCLUDED_ */
