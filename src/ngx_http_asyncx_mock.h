
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_MOCK_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_MOCK_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <cjson/cJSON.h>


/*
 * asyncx_mock_service: a slow "external API" for demos and tests.  It
 * answers JSON after a delay kept by an nginx timer and can be told to
 * fail from the request (status, slowness, non-JSON, oversized body).
 */

#define NGX_HTTP_ASYNCX_MOCK_ECHO_SUMMARY  0
#define NGX_HTTP_ASYNCX_MOCK_ECHO_BODY     1
#define NGX_HTTP_ASYNCX_MOCK_ECHO_OFF      2


typedef struct {
    ngx_str_t                      name;
    ngx_str_t                      json;        /* validated object text */
    ngx_msec_t                     delay;
    ngx_msec_t                     max_delay;
    size_t                         max_big;     /* largest ?big= */
    ngx_uint_t                     status;
    ngx_uint_t                     fail_status;
    ngx_uint_t                     echo;
} ngx_http_asyncx_mock_conf_t;


char *ngx_http_asyncx_mock_service(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_asyncx_mock_status(cJSON *pipelines);


#endif /* _NGX_HTTP_ASYNCX_MOCK_H_INCLUDED_ */
