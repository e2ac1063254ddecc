
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_DASHBOARD_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_DASHBOARD_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/*
 * The live dashboard: asyncx_status_stream pushes the JSON status as
 * Server-Sent Events, asyncx_status_page serves a self-contained page
 * that draws it.  Both are location content handlers.
 */

typedef struct {
    ngx_msec_t                     interval;    /* asyncx_status_stream */
    ngx_str_t                      page;        /* asyncx_status_page */
} ngx_http_asyncx_dashboard_conf_t;


char *ngx_http_asyncx_status_stream(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_asyncx_status_page(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_ASYNCX_DASHBOARD_H_INCLUDED_ */
