
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_METRICS_PROM_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_METRICS_PROM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


ngx_int_t ngx_http_asyncx_metrics_format(ngx_http_request_t *r,
    ngx_str_t *format);
ngx_int_t ngx_http_asyncx_metrics_send(ngx_http_request_t *r);


#endif /* _NGX_HTTP_ASYNCX_METRICS_PROM_H_INCLUDED_ */
