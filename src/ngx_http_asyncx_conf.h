
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_CONF_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_CONF_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/*
 * The one setter of the module's number, size and time directives
 * (ngx_conf_set_num/size/msec_slot with the range check that
 * ngx_conf_post bounds would do, and a message naming the directive,
 * the value and the range).  cmd->post points to the bounds.
 */

typedef enum {
    NGX_HTTP_ASYNCX_CONF_NUMBER = 0,
    NGX_HTTP_ASYNCX_CONF_SIZE,
    NGX_HTTP_ASYNCX_CONF_MSEC
} ngx_http_asyncx_conf_type_e;


typedef struct {
    uint64_t                       min;
    uint64_t                       max;
    ngx_http_asyncx_conf_type_e    type;
    /* 0 and "off" are accepted below min and mean "off" */
    ngx_uint_t                     zero_off;
} ngx_http_asyncx_conf_bounds_t;


/* the largest time: what a 32-bit signed timer difference holds */
#define NGX_HTTP_ASYNCX_CONF_MSEC_MAX  NGX_MAX_INT32_VALUE


char *ngx_http_asyncx_conf_set_bounded(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_asyncx_conf_parse_bounded(ngx_str_t *value,
    ngx_http_asyncx_conf_bounds_t *b, uint64_t *v);
ngx_int_t ngx_http_asyncx_conf_nginx_status(ngx_uint_t code);
char *ngx_http_asyncx_conf_set_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_asyncx_conf_check_text(ngx_conf_t *cf, const char *what,
    ngx_str_t *name, ngx_str_t *directive);
char *ngx_http_asyncx_conf_set_handler(ngx_conf_t *cf,
    ngx_http_handler_pt handler, ngx_http_handler_pt *own);
ngx_int_t ngx_http_asyncx_conf_add_variables(ngx_conf_t *cf,
    ngx_http_variable_t *vars);
void ngx_http_asyncx_conf_log_range(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *value, ngx_http_asyncx_conf_bounds_t *b);


#endif /* _NGX_HTTP_ASYNCX_CONF_H_INCLUDED_ */
