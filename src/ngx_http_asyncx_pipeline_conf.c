
/*
 * Copyright (C) asyncx authors
 *
 * The pipeline's directives, configuration merge and status section.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_pipeline_json.h"


static ngx_int_t ngx_http_asyncx_pipeline_strz(ngx_conf_t *cf, ngx_str_t *dst,
    u_char *src, size_t len);


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

    if (cJSON_AddNumberToObject(p, "active", (double)
            ngx_http_asyncx_gauge(NGX_HTTP_ASYNCX_GAUGE_PIPELINES)) == NULL)
    {
        return NGX_ERROR;
    }

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


/* configuration */


void
ngx_http_asyncx_pipeline_init_conf(ngx_http_asyncx_pipeline_conf_t *conf)
{
    conf->call_timeout = NGX_CONF_UNSET_MSEC;
    conf->error_status = NGX_CONF_UNSET_UINT;
    conf->pass_args = NGX_CONF_UNSET;
}


char *
ngx_http_asyncx_pipeline_merge_conf(ngx_conf_t *cf,
    ngx_http_asyncx_pipeline_conf_t *prev,
    ngx_http_asyncx_pipeline_conf_t *conf)
{
    ngx_uint_t                             i, j;
    ngx_http_asyncx_pipeline_optional_t   *opt;
    ngx_http_asyncx_pipeline_call_conf_t  *calls;

    ngx_conf_merge_msec_value(conf->call_timeout, prev->call_timeout, 5000);
    ngx_conf_merge_uint_value(conf->error_status, prev->error_status,
                              NGX_HTTP_BAD_GATEWAY);
    ngx_conf_merge_value(conf->pass_args, prev->pass_args, 1);

    if (!conf->enabled) {
        if (conf->stages || conf->optional) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"asyncx_stage\" and \"asyncx_call_optional\" "
                               "need \"asyncx_pipeline\" in the same "
                               "location");
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (conf->stages == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"asyncx_pipeline\" needs at least one "
                           "\"asyncx_stage\"");
        return NGX_CONF_ERROR;
    }

    /* a series for the location and one for each of its calls */

    conf->metrics = ngx_http_asyncx_metrics_series(cf,
                                            NGX_HTTP_ASYNCX_SERIES_PIPELINE,
                                            &conf->location, NULL);
    if (conf->metrics == NULL) {
        return NGX_CONF_ERROR;
    }

    calls = conf->calls->elts;

    for (j = 0; j < conf->calls->nelts; j++) {
        calls[j].metrics = ngx_http_asyncx_metrics_series(cf,
                                                NGX_HTTP_ASYNCX_SERIES_CALL,
                                                &conf->location,
                                                &calls[j].name);
        if (calls[j].metrics == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (conf->optional == NULL) {
        return NGX_CONF_OK;
    }

    /* asyncx_call_optional may come before the stage naming the call */

    opt = conf->optional->elts;
    calls = conf->calls->elts;

    for (i = 0; i < conf->optional->nelts; i++) {

        for (j = 0; j < conf->calls->nelts; j++) {
            if (calls[j].name.len == opt[i].name.len
                && ngx_strncmp(calls[j].name.data, opt[i].name.data,
                               opt[i].name.len) == 0)
            {
                break;
            }
        }

        if (j == conf->calls->nelts) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"asyncx_call_optional\" names unknown "
                               "call \"%V\"", &opt[i].name);
            return NGX_CONF_ERROR;
        }

        if (calls[j].optional) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "call \"%V\" is already optional",
                               &opt[i].name);
            return NGX_CONF_ERROR;
        }

        calls[j].optional = 1;
        calls[j].fallback = opt[i].fallback;
    }

    return NGX_CONF_OK;
}


/* a NUL-terminated copy: names become cJSON keys */

static ngx_int_t
ngx_http_asyncx_pipeline_strz(ngx_conf_t *cf, ngx_str_t *dst, u_char *src,
    size_t len)
{
    dst->data = ngx_pnalloc(cf->pool, len + 1);
    if (dst->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(dst->data, src, len);
    dst->data[len] = '\0';
    dst->len = len;

    return NGX_OK;
}


char *
ngx_http_asyncx_stage(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    u_char                                 *eq;
    size_t                                  path_len;
    ngx_str_t                              *value, name, uri;
    ngx_uint_t                              i, j;
    ngx_http_asyncx_pipeline_conf_t        *pcf;
    ngx_http_asyncx_pipeline_call_conf_t   *call, *calls;
    ngx_http_asyncx_pipeline_stage_conf_t  *stage, *stages;

    pcf = &alcf->pipeline;
    value = cf->args->elts;

    if (ngx_http_asyncx_pipeline_check_name(value[1].data, value[1].len)
        != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid stage name \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts < 3) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "stage \"%V\" has no calls, use "
                           "name=/uri ...", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (pcf->stages == NULL) {
        pcf->stages = ngx_array_create(cf->pool, 4,
                              sizeof(ngx_http_asyncx_pipeline_stage_conf_t));
        pcf->calls = ngx_array_create(cf->pool, 8,
                              sizeof(ngx_http_asyncx_pipeline_call_conf_t));
        if (pcf->stages == NULL || pcf->calls == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    stages = pcf->stages->elts;

    for (i = 0; i < pcf->stages->nelts; i++) {
        if (stages[i].name.len == value[1].len
            && ngx_strncmp(stages[i].name.data, value[1].data, value[1].len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate stage name \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    stage = ngx_array_push(pcf->stages);
    if (stage == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_asyncx_pipeline_strz(cf, &stage->name, value[1].data,
                                      value[1].len)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    stage->first = pcf->calls->nelts;
    stage->ncalls = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        eq = (u_char *) ngx_strlchr(value[i].data,
                                    value[i].data + value[i].len, '=');
        if (eq == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid call \"%V\", use name=/uri",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        name.data = value[i].data;
        name.len = eq - value[i].data;
        uri.data = eq + 1;
        uri.len = value[i].data + value[i].len - uri.data;

        if (ngx_http_asyncx_pipeline_check_name(name.data, name.len) != NGX_OK
            || (name.len == sizeof(NGX_HTTP_ASYNCX_KEY_ELAPSED) - 1
                && ngx_strncmp(name.data, NGX_HTTP_ASYNCX_KEY_ELAPSED,
                               name.len) == 0)
            || (name.len == sizeof(NGX_HTTP_ASYNCX_KEY_ELAPSED "_ms") - 1
                && ngx_strncmp(name.data, NGX_HTTP_ASYNCX_KEY_ELAPSED "_ms",
                               name.len) == 0))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid call name \"%V\"", &name);
            return NGX_CONF_ERROR;
        }

        if (ngx_http_asyncx_pipeline_check_uri(uri.data, uri.len, &path_len)
            != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid URI \"%V\" of call \"%V\"",
                               &uri, &name);
            return NGX_CONF_ERROR;
        }

        calls = pcf->calls->elts;

        for (j = 0; j < pcf->calls->nelts; j++) {
            if (calls[j].name.len == name.len
                && ngx_strncmp(calls[j].name.data, name.data, name.len) == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "duplicate call name \"%V\"", &name);
                return NGX_CONF_ERROR;
            }
        }

        if (pcf->calls->nelts == NGX_HTTP_ASYNCX_PIPELINE_MAX_CALLS) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "too many calls, a pipeline has at most %d",
                               NGX_HTTP_ASYNCX_PIPELINE_MAX_CALLS);
            return NGX_CONF_ERROR;
        }

        call = ngx_array_push(pcf->calls);
        if (call == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(call, sizeof(ngx_http_asyncx_pipeline_call_conf_t));

        if (ngx_http_asyncx_pipeline_strz(cf, &call->name, name.data,
                                          name.len)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        call->uri.data = uri.data;
        call->uri.len = path_len;

        if (path_len < uri.len) {
            call->args.data = uri.data + path_len + 1;
            call->args.len = uri.len - path_len - 1;
        }

        call->stage = pcf->stages->nelts - 1;
        stage->ncalls++;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_asyncx_call_optional(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    u_char                               *start, *end;
    ngx_str_t                            *value;
    ngx_http_asyncx_pipeline_conf_t      *pcf;
    ngx_http_asyncx_pipeline_optional_t  *opt;

    pcf = &alcf->pipeline;
    value = cf->args->elts;

    if (pcf->optional == NULL) {
        pcf->optional = ngx_array_create(cf->pool, 2,
                                sizeof(ngx_http_asyncx_pipeline_optional_t));
        if (pcf->optional == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    opt = ngx_array_push(pcf->optional);
    if (opt == NULL) {
        return NGX_CONF_ERROR;
    }

    opt->name = value[1];
    ngx_str_set(&opt->fallback, "null");

    if (cf->args->nelts == 3) {
        if (ngx_http_asyncx_json_check(value[2].data, value[2].len, &start,
                                       &end)
            != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid fallback \"%V\" of call \"%V\": "
                               "not JSON", &value[2], &value[1]);
            return NGX_CONF_ERROR;
        }

        /* spliced as is into error objects and call documents */
        opt->fallback.data = start;
        opt->fallback.len = end - start;
    }

    return NGX_CONF_OK;
}
