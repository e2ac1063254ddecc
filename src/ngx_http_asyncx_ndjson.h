
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_NDJSON_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_NDJSON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * Search, transform and aggregate over NDJSON (JSON Lines) text: the
 * per-line work of the file source of asyncx_sse, run in pool threads.
 * Pure code: no nginx functions, no allocation; the caller owns every
 * buffer and feeds the file to ngx_http_asyncx_ndjson_scan() window by
 * window.  Each event it writes is a whole SSE event (id, data lines).
 */


#define NGX_HTTP_ASYNCX_NDJSON_FIELDS_MAX   32
#define NGX_HTTP_ASYNCX_NDJSON_NAME_MAX     128
#define NGX_HTTP_ASYNCX_NDJSON_DEPTH_MAX    128
#define NGX_HTTP_ASYNCX_NDJSON_GROUPS_MAX   256
#define NGX_HTTP_ASYNCX_NDJSON_KEY_MAX      128
#define NGX_HTTP_ASYNCX_NDJSON_SLOTS        512     /* 2 * GROUPS_MAX */
#define NGX_HTTP_ASYNCX_NDJSON_KEYWORD_MAX  256

/* "<offset>-<records>-<matches>-<skipped>-<phase>-<tag>" */
#define NGX_HTTP_ASYNCX_NDJSON_ID_MAX       (4 * NGX_INT64_LEN + 16)

/* output a job writes before it stops, and a transform event's records */
#define NGX_HTTP_ASYNCX_NDJSON_OUT_BUDGET   (56 * 1024)
#define NGX_HTTP_ASYNCX_NDJSON_BATCH_BUDGET (48 * 1024)

/* room in front of a transform event's records for its header */
#define NGX_HTTP_ASYNCX_NDJSON_HEAD_MAX     512

/* the largest non-record part of an event's payload */
#define NGX_HTTP_ASYNCX_NDJSON_EVENT_MAX    1024


typedef enum {
    NGX_HTTP_ASYNCX_NDJSON_SEARCH = 1,
    NGX_HTTP_ASYNCX_NDJSON_TRANSFORM,
    NGX_HTTP_ASYNCX_NDJSON_AGGREGATE
} ngx_http_asyncx_ndjson_op_e;


typedef enum {
    NGX_HTTP_ASYNCX_NDJSON_ABSENT = 0,
    NGX_HTTP_ASYNCX_NDJSON_STRING,
    NGX_HTTP_ASYNCX_NDJSON_NUMBER,
    NGX_HTTP_ASYNCX_NDJSON_OBJECT,
    NGX_HTTP_ASYNCX_NDJSON_ARRAY,
    NGX_HTTP_ASYNCX_NDJSON_LITERAL
} ngx_http_asyncx_ndjson_type_e;


/* a member's value as written in the line */
typedef struct {
    u_char                          *data;
    size_t                           len;
    ngx_uint_t                       type;
} ngx_http_asyncx_ndjson_value_t;


/* transform: "name" or "name:alias" */
typedef struct {
    ngx_str_t                        name;
    ngx_str_t                        alias;
} ngx_http_asyncx_ndjson_field_t;


/*
 * Where a stream is: what an event id carries.  offset is the file
 * offset of the next line, records the lines before it.  phase: 'm' a
 * match (the progress event closing its batch may still be due), 'b'
 * a batch, progress or stage event, 'c' complete, 'e' an error.
 */
typedef struct {
    off_t                            offset;
    uint64_t                         records;
    uint64_t                         matches;
    uint64_t                         skipped;
    u_char                           phase;
    uint32_t                         tag;
} ngx_http_asyncx_ndjson_pos_t;


/*
 * count: the numeric values within the range of doubles; out_of_range:
 * the numbers beyond it (1e309).  The sum is exact in isum until a value
 * is no integer that fits in 64 bits or the sum overflows, then dsum;
 * min and max keep the integers exact (i*) apart from the rest (d*).
 */
typedef struct {
    uint64_t                         records;    /* lines of the group */
    uint64_t                         count;
    uint64_t                         out_of_range;
    int64_t                          isum;
    int64_t                          imin;
    int64_t                          imax;
    double                           dsum;
    double                           dmin;
    double                           dmax;
    unsigned                         real:1;     /* dsum holds the sum */
    unsigned                         ints:1;     /* imin, imax are set */
    unsigned                         reals:1;    /* dmin, dmax are set */
} ngx_http_asyncx_ndjson_stats_t;


typedef struct {
    ngx_http_asyncx_ndjson_stats_t   stats;
    uint32_t                         hash;
    size_t                           key_len;
    u_char                           key[NGX_HTTP_ASYNCX_NDJSON_KEY_MAX];
} ngx_http_asyncx_ndjson_group_t;


typedef struct {
    ngx_http_asyncx_ndjson_stats_t   overall;
    ngx_http_asyncx_ndjson_stats_t   other;      /* past the table's room */
    ngx_uint_t                       ngroups;
    uint16_t                         slots[NGX_HTTP_ASYNCX_NDJSON_SLOTS];
    ngx_http_asyncx_ndjson_group_t   groups[NGX_HTTP_ASYNCX_NDJSON_GROUPS_MAX];
} ngx_http_asyncx_ndjson_table_t;


typedef struct {
    /* the query, fixed for the stream */
    ngx_uint_t                       op;
    u_char                          *keyword;    /* lower-case if icase */
    size_t                           keyword_len;
    ngx_str_t                        field;      /* search: empty: line */
    ngx_http_asyncx_ndjson_field_t  *fields;     /* transform */
    ngx_uint_t                       nfields;
    ngx_str_t                        group_by;   /* aggregate */
    ngx_str_t                        value;
    uint64_t                         batch_size;
    uint64_t                         limit;      /* 0: no limit */
    size_t                           max_line;
    off_t                            size;       /* the stream ends here */
    uint32_t                         tag;
    uint64_t                         started;    /* usec, for complete */
    unsigned                         icase:1;
    unsigned                         skip_invalid:1;

    /* the position; "closed": records at the last batch event sent */
    ngx_http_asyncx_ndjson_pos_t     pos;
    uint64_t                         closed;

    /* aggregate resume: rebuild the table up to this id, silently */
    ngx_http_asyncx_ndjson_pos_t     resume;
    unsigned                         silent:1;

    unsigned                         skipping:1; /* in a too long line */
    unsigned                         limit_reached:1;
    unsigned                         done:1;

    ngx_http_asyncx_ndjson_table_t  *table;

    /* transform: the event being filled (records after HEAD_MAX) */
    u_char                          *batch;
    size_t                           batch_len;
    ngx_uint_t                       batch_count;
    uint64_t                         batch_first;  /* its first record */
    uint32_t                         batch_hash;

    /* payload scratch, at least max_line + 2 * EVENT_MAX bytes */
    u_char                          *scratch;

    /* the job's output; "need": the room one event needs (NGX_DECLINED) */
    u_char                          *out;
    size_t                           out_len;
    size_t                           out_size;
    size_t                           need;
    ngx_uint_t                       nevents;

    /* the last error event, for the log */
    const char                      *error;

    /* the running job's mark, set when its client left; NULL: none */
    ngx_atomic_t                    *cancel;
} ngx_http_asyncx_ndjson_scan_t;


ngx_int_t ngx_http_asyncx_ndjson_parse(u_char *p, size_t len,
    ngx_str_t *names, ngx_uint_t n, ngx_http_asyncx_ndjson_value_t *values,
    size_t *err_at, const char **reason);

ngx_int_t ngx_http_asyncx_ndjson_check_name(u_char *p, size_t len);
ngx_int_t ngx_http_asyncx_ndjson_parse_fields(u_char *p, size_t len,
    ngx_http_asyncx_ndjson_field_t *fields, ngx_uint_t *n,
    const char **reason);

u_char *ngx_http_asyncx_ndjson_find(u_char *p, size_t len, u_char *kw,
    size_t n, ngx_uint_t icase);

void ngx_http_asyncx_ndjson_stats_add(ngx_http_asyncx_ndjson_stats_t *s,
    ngx_http_asyncx_ndjson_value_t *v);
u_char *ngx_http_asyncx_ndjson_stats_write(u_char *p,
    ngx_http_asyncx_ndjson_stats_t *s);
void ngx_http_asyncx_ndjson_table_add(ngx_http_asyncx_ndjson_table_t *t,
    ngx_http_asyncx_ndjson_value_t *key, ngx_http_asyncx_ndjson_value_t *v);

size_t ngx_http_asyncx_ndjson_id_write(u_char *p,
    ngx_http_asyncx_ndjson_pos_t *pos);
ngx_int_t ngx_http_asyncx_ndjson_id_parse(u_char *p, size_t len,
    ngx_http_asyncx_ndjson_pos_t *pos);
uint32_t ngx_http_asyncx_ndjson_hash(uint32_t h, const u_char *p,
    size_t len);

void ngx_http_asyncx_ndjson_start(ngx_http_asyncx_ndjson_scan_t *s,
    ngx_http_asyncx_ndjson_pos_t *resume);
ngx_int_t ngx_http_asyncx_ndjson_scan(ngx_http_asyncx_ndjson_scan_t *s,
    u_char *window, size_t len, off_t window_offset, ngx_uint_t eof,
    size_t *used);
ngx_int_t ngx_http_asyncx_ndjson_fail(ngx_http_asyncx_ndjson_scan_t *s,
    ngx_uint_t final, const char *message, const u_char *detail,
    size_t detail_len);
size_t ngx_http_asyncx_ndjson_scratch_size(ngx_http_asyncx_ndjson_scan_t *s);
size_t ngx_http_asyncx_ndjson_batch_size(ngx_http_asyncx_ndjson_scan_t *s);


#endif /* _NGX_HTTP_ASYNCX_NDJSON_H_INCLUDED_ */
