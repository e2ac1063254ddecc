
/*
 * Copyright (C) asyncx authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx.h"


struct ngx_http_asyncx_pipeline_ctx_s {
    ngx_uint_t  unused;
};


void
ngx_http_asyncx_pipeline_init_conf(ngx_http_asyncx_pipeline_conf_t *conf)
{
    conf->call_timeout = NGX_CONF_UNSET_MSEC;
    conf->error_status = NGX_CONF_UNSET_UINT;
    conf->pass_args = NGX_CONF_UNSET;
}


char *
ngx_http_asyncx_pipeline_merge_conf(ngx_conf_t *cf,
    ngx_http_asyncx_pipeline_conf_t *prev, ngx_http_asyncx_pipeline_conf_t *conf)
{
    ngx_conf_merge_msec_value(conf->call_timeout, prev->call_timeout, 5000);
    ngx_conf_merge_uint_value(conf->error_status, prev->error_status,
                              NGX_HTTP_BAD_GATEWAY);
    ngx_conf_merge_value(conf->pass_args, prev->pass_args, 1);

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_asyncx_pipeline_status(ngx_http_request_t *r, cJSON *root)
{
    cJSON                    *p;
    ngx_http_asyncx_stats_t  *sh;

    sh = ngx_http_asyncx_stats();

    p = cJSON_AddObjectToObject(root, "pipelines");
    if (p == NULL) {
        return NGX_ERROR;
    }

#define ngx_http_asyncx_pipeline_counter(name, id)                            \
    if (cJSON_AddNumberToObject(p, name, (double) sh->counters[id])          \
        == NULL)                                                              \
    {                                                                         \
        return NGX_ERROR;                                                     \
    }

    ngx_http_asyncx_pipeline_counter("active",
                                     NGX_HTTP_ASYNCX_STAT_PIPELINE_ACTIVE);
    ngx_http_asyncx_pipeline_counter("total",
                                     NGX_HTTP_ASYNCX_STAT_PIPELINE_TOTAL);
    ngx_http_asyncx_pipeline_counter("failed",
                                     NGX_HTTP_ASYNCX_STAT_PIPELINE_FAILED);
    ngx_http_asyncx_pipeline_counter("aborted",
                                     NGX_HTTP_ASYNCX_STAT_PIPELINE_ABORTED);
    ngx_http_asyncx_pipeline_counter("calls",
                                     NGX_HTTP_ASYNCX_STAT_PIPELINE_CALLS);
    ngx_http_asyncx_pipeline_counter("call_errors",
                                     NGX_HTTP_ASYNCX_STAT_PIPELINE_CALL_ERRORS);

#undef ngx_http_asyncx_pipeline_counter

    return ngx_http_asyncx_mock_status(p);
}
