
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_DATASET_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_DATASET_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_asyncx_records.h"


/*
 * The deterministic synthetic data set of docs/dataset.md: record i is
 * "record <i>: w1 w2 w3 w4 w5 w6" with words drawn from a xorshift32
 * sequence seeded from i.  Pure code: safe to call from thread tasks.
 */

/*
 * NGX_HTTP_ASYNCX_RECORD_MAX holds "record " + 20 digits + ": " + 6 *
 * (longest word 11 + space), NGX_HTTP_ASYNCX_JSON_ITEM_MAX {"id": i,
 * "content": "...", "score": n, "tags": ["a", "b"]}: the data set is the
 * module's generated records (ngx_http_asyncx_records_t).
 */


size_t ngx_http_asyncx_dataset_record(uint64_t i, u_char *buf);
size_t ngx_http_asyncx_dataset_json_item(uint64_t i, u_char *buf);
ngx_uint_t ngx_http_asyncx_dataset_first_word(uint64_t i);
const u_char *ngx_http_asyncx_dataset_word(ngx_uint_t n, size_t *len);

/* first words: the 64 of the vocabulary + "python" */
#define NGX_HTTP_ASYNCX_DATASET_WORDS  65
ngx_uint_t ngx_http_asyncx_dataset_score(uint64_t i);


#endif /* _NGX_HTTP_ASYNCX_DATASET_H_INCLUDED_ */
