
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_PIPELINE_CONF_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_PIPELINE_CONF_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* directive handlers of the pipeline (the table is in the module file) */

char *ngx_http_asyncx_stage(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_asyncx_call_optional(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_asyncx_call_idempotent(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_asyncx_call_set_header(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_asyncx_call_hide_header(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_asyncx_pipeline_answer(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_ASYNCX_PIPELINE_CONF_H_INCLUDED_ */
