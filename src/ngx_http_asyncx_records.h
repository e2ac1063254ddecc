
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_RECORDS_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_RECORDS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * Generated records: a hook the handlers read when a request brings no
 * input of its own (asyncx_parse_json without a body, asyncx_regex_bulk
 * without texts).  Record i as a line of text and as a JSON object, each
 * written into buf and at most the size below; the length is returned.
 * Pure functions: thread tasks call them.
 */

#define NGX_HTTP_ASYNCX_RECORD_MAX       128
#define NGX_HTTP_ASYNCX_JSON_ITEM_MAX    (NGX_HTTP_ASYNCX_RECORD_MAX + 96)


typedef struct {
    ngx_str_t                      name;         /* "source" of answers */
    ngx_str_t                      description;  /* in messages */
    size_t                       (*text)(uint64_t i, u_char *buf);
    size_t                       (*json)(uint64_t i, u_char *buf);
} ngx_http_asyncx_records_t;


#endif /* _NGX_HTTP_ASYNCX_RECORDS_H_INCLUDED_ */
