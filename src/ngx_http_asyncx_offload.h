
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_OFFLOAD_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_OFFLOAD_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx_executor.h"
#include "ngx_http_asyncx_conf.h"


typedef struct ngx_http_asyncx_offload_ctx_s  ngx_http_asyncx_offload_ctx_t;


typedef enum {
    NGX_HTTP_ASYNCX_OFFLOAD_NONE = 0,
    NGX_HTTP_ASYNCX_OFFLOAD_FILE_READ,
    NGX_HTTP_ASYNCX_OFFLOAD_FILE_WRITE,
    NGX_HTTP_ASYNCX_OFFLOAD_HASH,
    NGX_HTTP_ASYNCX_OFFLOAD_VERIFY,
    NGX_HTTP_ASYNCX_OFFLOAD_JSON,
    NGX_HTTP_ASYNCX_OFFLOAD_REGEX
} ngx_http_asyncx_offload_kind_e;


typedef struct {
    ngx_uint_t                     kind;       /* this location's handler */
    ngx_str_t                      file_root;
    size_t                         file_max_size;
    ngx_uint_t                     pbkdf2_iterations;
    ngx_uint_t                     pbkdf2_max_iterations;
    size_t                         password_max_length;
    ngx_uint_t                     json_max_items;
    size_t                         json_max_size;
    ngx_uint_t                     regex_match_limit;
    ngx_uint_t                     regex_depth_limit;
    ngx_uint_t                     regex_max_subjects;
    ngx_msec_t                     regex_time_limit;
} ngx_http_asyncx_offload_conf_t;


/*
 * One per request.  The loop fills the inputs before posting; the thread
 * task reads them and writes only the results; the loop reads the
 * results after the job's completion event.  "out" is malloc()ed by the
 * thread and freed by an r->pool cleanup, so a client abort cannot leak.
 */

#define NGX_HTTP_ASYNCX_OFFLOAD_MSG_LEN     512
/* the client's path, as far as messages quote it */
#define NGX_HTTP_ASYNCX_OFFLOAD_PATH_QUOTE  200

struct ngx_http_asyncx_offload_ctx_s {
    ngx_http_asyncx_offload_conf_t  *conf;
    ngx_str_t                       *duration_unit;
    ngx_http_asyncx_records_t       *records;   /* NULL: none */
    ngx_http_asyncx_job_t           *job;
    ngx_http_request_t              *request;   /* loop side only */

    /* inputs */
    ngx_str_t                        path;      /* client's, NUL-terminated */
    ngx_str_t                        full;      /* root + "/" + path */
    ngx_str_t                        quoted;    /* path's start, for a
                                                   message's "..." */
    ngx_str_t                        body;      /* NUL-terminated */
    ngx_chain_t                     *body_files;   /* parts in temp files */
    size_t                           parsed;       /* JSON bytes made a tree */
    ngx_uint_t                       items;     /* /parse/json generator */

    /* results */
    ngx_uint_t                       status;    /* NGX_HTTP_OK or an error */
    ngx_err_t                        err;       /* errno behind a 5xx */
    u_char                          *out;       /* malloc()ed JSON */
    size_t                           out_len;
    size_t                           msg_len;
    u_char                           msg[NGX_HTTP_ASYNCX_OFFLOAD_MSG_LEN];
};


void ngx_http_asyncx_offload_init_conf(ngx_http_asyncx_offload_conf_t *conf);
char *ngx_http_asyncx_offload_merge_conf(ngx_conf_t *cf,
    ngx_http_asyncx_offload_conf_t *prev, ngx_http_asyncx_offload_conf_t *conf);
char *ngx_http_asyncx_offload(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_asyncx_offload_file_root(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* thread side helpers shared by the file and CPU task files */
ngx_int_t ngx_http_asyncx_offload_send_failure(ngx_http_request_t *r,
    ngx_http_asyncx_offload_ctx_t *ctx, const ngx_str_t *what);
ngx_int_t ngx_http_asyncx_offload_fail(ngx_http_asyncx_offload_ctx_t *ctx,
    ngx_uint_t status, ngx_err_t err, const char *fmt, ...);
ngx_int_t ngx_http_asyncx_offload_body(ngx_http_asyncx_offload_ctx_t *ctx);
ngx_int_t ngx_http_asyncx_offload_set_json(ngx_http_asyncx_offload_ctx_t *ctx,
    struct cJSON *root);
struct cJSON *ngx_http_asyncx_offload_parse_json(
    ngx_http_asyncx_offload_ctx_t *ctx, const char *what, ngx_uint_t flags);

/* the sandbox of /files/read, shared with the file source of asyncx_sse */
ngx_int_t ngx_http_asyncx_offload_errno(ngx_http_asyncx_offload_ctx_t *ctx,
    ngx_err_t err, const char *what);
ngx_int_t ngx_http_asyncx_offload_resolve(const char *root,
    const char *full, size_t keep, char *real);
int ngx_http_asyncx_offload_open_beneath(const char *root, const char *real,
    int flags);

/* thread tasks (ngx_http_asyncx_job_run_pt) */
ngx_int_t ngx_http_asyncx_offload_file_read_run(void *data);
ngx_int_t ngx_http_asyncx_offload_file_write_run(void *data);
ngx_int_t ngx_http_asyncx_offload_hash_run(void *data);
ngx_int_t ngx_http_asyncx_offload_verify_run(void *data);
ngx_int_t ngx_http_asyncx_offload_json_run(void *data);
ngx_int_t ngx_http_asyncx_offload_regex_run(void *data);


#endif /* _NGX_HTTP_ASYNCX_OFFLOAD_H_INCLUDED_ */
