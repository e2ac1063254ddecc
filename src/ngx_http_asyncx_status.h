
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_STATUS_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_STATUS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/*
 * asyncx_status renders what the subsystems register: each section
 * handler adds its own members to the answer's root object.  The
 * renderer knows no subsystem; ngx_http_asyncx_module.c registers the
 * sections in the order of the answer's keys.
 */

struct cJSON;

typedef ngx_int_t (*ngx_http_asyncx_status_section_pt)(ngx_http_request_t *r,
    struct cJSON *root);


typedef struct {
    ngx_array_t                    sections;  /* section handlers */
} ngx_http_asyncx_status_main_conf_t;


/* one member of a section: a counter or a gauge of asyncx_stats */

typedef struct {
    const char                    *name;
    ngx_uint_t                     gauge;     /* 1: gauge, 0: counter */
    ngx_uint_t                     index;
} ngx_http_asyncx_status_field_t;


ngx_int_t ngx_http_asyncx_status_init_main_conf(ngx_conf_t *cf,
    ngx_http_asyncx_status_main_conf_t *smcf);
ngx_int_t ngx_http_asyncx_status_add_section(ngx_conf_t *cf,
    ngx_http_asyncx_status_section_pt handler);
ngx_int_t ngx_http_asyncx_status_fields(struct cJSON *obj,
    const ngx_http_asyncx_status_field_t *fields, ngx_uint_t n);

char *ngx_http_asyncx_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
struct cJSON *ngx_http_asyncx_status_json(ngx_http_request_t *r);


#endif /* _NGX_HTTP_ASYNCX_STATUS_H_INCLUDED_ */
