
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_PIPELINE_JSON_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_PIPELINE_JSON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <cjson/cJSON.h>

#include "ngx_http_asyncx_pipeline.h"


/*
 * The run-time state of one pipeline request, shared by its files.
 * JSON is kept as text: the client's body, each answer and each error
 * object are checked once (ngx_http_asyncx_json_check) and then only
 * spliced into documents and into the answer, all in the request pool.
 */

#define NGX_HTTP_ASYNCX_PIPELINE_MAX_CALLS   64
#define NGX_HTTP_ASYNCX_PIPELINE_MAX_RETRIES 10

/* a call's state: 0 (zeroed) until it is issued */
#define NGX_HTTP_ASYNCX_CALL_PENDING         1
#define NGX_HTTP_ASYNCX_CALL_DONE            2


typedef struct ngx_http_asyncx_pipeline_call_s
    ngx_http_asyncx_pipeline_call_t;


/* one subrequest of a call: the first, or a retry */

typedef struct {
    ngx_http_asyncx_pipeline_call_t       *call;
    ngx_http_post_subrequest_t             ps;
    uint64_t                               start;
    uint64_t                               end;
    ngx_msec_t                             timeout;  /* its own */
    /* the configured time its timeout message names */
    ngx_msec_t                             limit;
    ngx_msec_t                             expires;  /* ngx_current_msec */
    ngx_uint_t                             status;
    ngx_http_asyncx_call_kind_e            kind;
    /* the subrequest's body and the last part of its header list */
    ngx_http_request_body_t                body;
    ngx_buf_t                              buf;
    ngx_chain_t                            chain;
    ngx_list_part_t                        headers;
    unsigned                               running:1; /* its subrequest */
    /* its answer's last buffer went by (body_filter): not cut short */
    unsigned                               whole:1;
    /*
     * the filters refused its answer (body_filter) while the client
     * connection had no error of its own: the error nginx then marks it
     * with is this attempt's alone
     */
    unsigned                               refused:1;
} ngx_http_asyncx_pipeline_attempt_t;


struct ngx_http_asyncx_pipeline_call_s {
    ngx_http_asyncx_pipeline_ctx_t        *ctx;
    ngx_http_asyncx_pipeline_call_conf_t  *conf;
    ngx_http_asyncx_pipeline_attempt_t    *attempts; /* 1 + retries */
    ngx_uint_t                             nattempts; /* issued */
    ngx_str_t                              doc;      /* what it sends */
    u_char                                *doc_end;  /* its outline's end */
    ngx_table_elt_t                        content_length;
    u_char                                 length[NGX_OFF_T_LEN];
    ngx_str_t                              uri;
    ngx_str_t                              args;
    ngx_str_t                              answer;   /* checked JSON */
    ngx_str_t                              passed;   /* to later calls */
    ngx_str_t                              msg;      /* why it failed */
    ngx_str_t                              detail;   /* for the message */
    uint64_t                               start;
    uint64_t                               end;
    uint64_t                               deadline; /* start + timeout */
    ngx_uint_t                             status;
    ngx_http_asyncx_call_kind_e            kind;
    unsigned                               state:2;
    unsigned                               failed:1;
};


struct ngx_http_asyncx_pipeline_ctx_s {
    ngx_http_request_t                    *request;
    ngx_http_asyncx_pipeline_conf_t       *conf;
    ngx_http_asyncx_pipeline_call_t       *calls;
    uint64_t                              *stage_usec;
    ngx_str_t                              body;     /* JSON text */
    ngx_http_headers_in_t                  headers_in; /* of every call */
    ngx_event_t                            timer;    /* the calls' */
    ngx_msec_t                             timer_expires;
    ngx_event_t                            deadline; /* pipeline timeout */
    uint64_t                               start;
    uint64_t                               end;
    uint64_t                               stage_start;
    ngx_uint_t                             stage;
    ngx_uint_t                             next;     /* within the stage */
    ngx_uint_t                             pending;
    ngx_http_asyncx_pipeline_call_t       *first_failed;  /* required */
    ngx_uint_t                             status;   /* of the answer */
    unsigned                               sequential:1;
    unsigned                               active:1;
    unsigned                               finished:1;
    unsigned                               timed_out:1;
};


/* the calls (ngx_http_asyncx_pipeline_call.c) */

ngx_int_t ngx_http_asyncx_pipeline_init_calls(
    ngx_http_asyncx_pipeline_ctx_t *ctx);
size_t ngx_http_asyncx_pipeline_reserve_size(ngx_uint_t n, size_t body_len);
ngx_int_t ngx_http_asyncx_pipeline_headers(
    ngx_http_asyncx_pipeline_ctx_t *ctx, ngx_str_t *bad);
void ngx_http_asyncx_pipeline_issue(ngx_http_asyncx_pipeline_ctx_t *ctx,
    ngx_http_asyncx_pipeline_call_t *call);
void ngx_http_asyncx_pipeline_abandon(ngx_http_asyncx_pipeline_call_t *call);
void ngx_http_asyncx_pipeline_cancel_timer(
    ngx_http_asyncx_pipeline_ctx_t *ctx);
ngx_msec_t ngx_http_asyncx_pipeline_timer_lag(void);
ngx_uint_t ngx_http_asyncx_pipeline_running(
    ngx_http_asyncx_pipeline_ctx_t *ctx);

/* the JSON texts (ngx_http_asyncx_pipeline_json.c) */

/*
 * The tag of a call's body buffer: a document written whole by
 * ngx_http_asyncx_pipeline_document() from checked parts only, so valid
 * JSON by construction; a handler in the same worker (the demo's mock
 * service) need not check it again.
 */
#define NGX_HTTP_ASYNCX_PIPELINE_DOCUMENT_TAG                                 \
    ((ngx_buf_tag_t) ngx_http_asyncx_pipeline_document)

/*
 * What ngx_http_asyncx_pipeline_document() wrote, as the document's own
 * bytes, for a reader that would otherwise walk it (the demo's mock
 * service): the "stage" and "call" values with their quotes, and the
 * names of the members of "results", each quoted, comma separated.  It
 * follows the document in its buffer, between last and end: the free
 * space of a memory buffer, which no reader of a request body touches.
 */
typedef struct {
    ngx_str_t                              stage;
    ngx_str_t                              call;
    ngx_str_t                              names;
} ngx_http_asyncx_pipeline_outline_t;

ngx_http_asyncx_pipeline_outline_t *ngx_http_asyncx_pipeline_outline(
    ngx_buf_t *b);

ngx_int_t ngx_http_asyncx_pipeline_document(
    ngx_http_asyncx_pipeline_ctx_t *ctx, ngx_http_asyncx_pipeline_call_t *call,
    ngx_str_t *text);
u_char *ngx_http_asyncx_pipeline_ms(u_char *p, u_char *last, uint64_t usec);
size_t ngx_http_asyncx_pipeline_error_len(ngx_http_asyncx_pipeline_ctx_t *ctx);
u_char *ngx_http_asyncx_pipeline_error(u_char *p, u_char *last,
    ngx_http_asyncx_pipeline_ctx_t *ctx);
u_char *ngx_http_asyncx_pipeline_json_string(u_char *p, u_char *last,
    ngx_str_t *s);
size_t ngx_http_asyncx_pipeline_tries_len(
    ngx_http_asyncx_pipeline_call_t *call);
u_char *ngx_http_asyncx_pipeline_tries(u_char *p, u_char *last,
    ngx_http_asyncx_pipeline_call_t *call);


/*
 * An answer format (asyncx_pipeline_answer): renders a finished
 * pipeline into one JSON text and its newline, in one allocation of the
 * request pool sized by a close upper bound (small enough to come from
 * the pipeline's reserved block, not malloc()); it is sent as it is.
 * "standard" is built in; others (the exercise's, under src/demo/) are
 * added at preconfiguration with ngx_http_asyncx_pipeline_add_answer().
 * reserved: call names the format cannot show (NULL-terminated), or NULL.
 */

typedef ngx_int_t (*ngx_http_asyncx_pipeline_render_pt)(
    ngx_http_asyncx_pipeline_ctx_t *ctx, ngx_str_t *text);

struct ngx_http_asyncx_pipeline_answer_s {
    ngx_str_t                              name;
    ngx_http_asyncx_pipeline_render_pt     render;
    ngx_str_t                             *reserved;
};


ngx_int_t ngx_http_asyncx_pipeline_add_answer(ngx_conf_t *cf,
    ngx_http_asyncx_pipeline_answer_t *answer);

extern ngx_http_asyncx_pipeline_answer_t  ngx_http_asyncx_pipeline_standard;


#endif /* _NGX_HTTP_ASYNCX_PIPELINE_JSON_H_INCLUDED_ */
