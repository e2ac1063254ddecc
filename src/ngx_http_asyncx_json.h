
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_JSON_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_JSON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <cjson/cJSON.h>


/*
 * The module's one JSON policy, for every body a client sends (the
 * offload handlers, the pipeline, the mock) and for JSON in the
 * configuration: RFC 8259 exactly, one value with optional whitespace
 * (space, tab, CR, LF) around it, UTF-8, no raw control character in a
 * string, no unpaired UTF-16 surrogate escape, at most
 * NGX_HTTP_ASYNCX_JSON_MAX_DEPTH levels (cJSON's own limit).
 *
 * "\u0000" is valid JSON, but cJSON keeps strings NUL-terminated and
 * would cut them there.  Where the module uses strings (a password, a
 * pattern, a text it echoes), NGX_HTTP_ASYNCX_JSON_NO_NUL refuses a
 * document with U+0000 in a string (NGX_DECLINED, not a syntax error);
 * where it only counts or passes the text on, it is accepted.  Pure:
 * thread tasks use it, and t/unit links it without nginx.
 */


#define NGX_HTTP_ASYNCX_JSON_MAX_DEPTH  1000

#define NGX_HTTP_ASYNCX_JSON_NO_NUL     0x01

/*
 * A document the module nests n levels deep inside JSON of its own (the
 * pipeline wraps a client's body and the calls' answers in its call
 * documents and answers): refused beyond MAX_DEPTH - n levels, so what
 * the module writes stays within its own limit and every reader's.
 */
#define NGX_HTTP_ASYNCX_JSON_WRAPPED(n)  ((ngx_uint_t) (n) << 8)

/* the pipeline's wrapping: at most four levels (an exercise error) */
#define NGX_HTTP_ASYNCX_JSON_PIPELINE    NGX_HTTP_ASYNCX_JSON_WRAPPED(8)


typedef struct {
    u_char      *start;     /* the value, without the whitespace around */
    u_char      *end;
    size_t       offset;    /* of the first byte refused */
    const char  *reason;    /* NULL for a plain syntax error */
    unsigned     nomem:1;   /* valid, but cJSON could not allocate */
    unsigned     nul:1;     /* valid JSON, refused for U+0000 (NO_NUL) */
} ngx_http_asyncx_json_info_t;


ngx_int_t ngx_http_asyncx_json_validate(u_char *p, size_t len,
    ngx_uint_t flags, ngx_http_asyncx_json_info_t *info);
ngx_int_t ngx_http_asyncx_json_check(u_char *p, size_t len, u_char **start,
    u_char **end);
cJSON *ngx_http_asyncx_json_parse(u_char *p, size_t len, ngx_uint_t flags,
    ngx_http_asyncx_json_info_t *info);
ngx_int_t ngx_http_asyncx_json_member(cJSON *object, const char *name,
    cJSON **item);


#endif /* _NGX_HTTP_ASYNCX_JSON_H_INCLUDED_ */
