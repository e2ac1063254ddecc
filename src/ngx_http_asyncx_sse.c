
/*
 * Copyright (C) asyncx authors
 *
 * Server-Sent Events: the asyncx_sse content handler and its sources.
 * A location streams the records of one source: an NDJSON file
 * (sse_file.c), or a source registered by name at preconfiguration.
 * The streams' counters are one section of asyncx_status.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <cjson/cJSON.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_conf.h"


static ngx_http_asyncx_sse_source_t *ngx_http_asyncx_sse_default_source(
    ngx_conf_t *cf);
static ngx_int_t ngx_http_asyncx_sse_handler(ngx_http_request_t *r);


/*
 * A day at most: longer timers overflow the int milliseconds epoll_wait()
 * takes, and a keepalive that rare keeps no proxy open anyway.
 */
ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_sse_heartbeat_bounds =
    { 0, 86400000, 2 };
/* "retry: 0" would be a real value (reconnect at once), never "off" */
ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_sse_retry_bounds =
    { 1, 86400000, NGX_HTTP_ASYNCX_CONF_MSEC, 0 };
ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_sse_batch_bounds =
    { 1, NGX_HTTP_ASYNCX_SSE_BATCH_MAX, 0 };
ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_sse_data_size_bounds =
    { 1, 1000000000, 0 };


static ngx_http_asyncx_sse_source_t  ngx_http_asyncx_sse_file_source = {
    ngx_string("file"), ngx_http_asyncx_sse_file_handler, NULL, NULL
};


ngx_int_t
ngx_http_asyncx_sse_init_main_conf(ngx_conf_t *cf,
    ngx_http_asyncx_sse_main_conf_t *smcf)
{
    return ngx_array_init(&smcf->sources, cf->pool, 2,
                          sizeof(ngx_http_asyncx_sse_source_t *));
}


ngx_int_t
ngx_http_asyncx_sse_add_source(ngx_conf_t *cf,
    ngx_http_asyncx_sse_source_t *source)
{
    ngx_http_asyncx_main_conf_t    *amcf;
    ngx_http_asyncx_sse_source_t  **s;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_asyncx_module);

    s = ngx_array_push(&amcf->sse.sources);
    if (s == NULL) {
        return NGX_ERROR;
    }

    *s = source;

    return NGX_OK;
}


/* the first named source, or NULL: asyncx_sse then needs a source */

static ngx_http_asyncx_sse_source_t *
ngx_http_asyncx_sse_default_source(ngx_conf_t *cf)
{
    ngx_http_asyncx_main_conf_t    *amcf;
    ngx_http_asyncx_sse_source_t  **s;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_asyncx_module);

    if (amcf->sse.sources.nelts == 0) {
        return NULL;
    }

    s = amcf->sse.sources.elts;

    return s[0];
}


static ngx_conf_enum_t  ngx_http_asyncx_sse_modes[] = {
    { ngx_string("search"), NGX_HTTP_ASYNCX_SSE_SEARCH },
    { ngx_string("transform"), NGX_HTTP_ASYNCX_SSE_TRANSFORM },
    { ngx_string("aggregate"), NGX_HTTP_ASYNCX_SSE_AGGREGATE },
    { ngx_null_string, 0 }
};


void
ngx_http_asyncx_sse_init_conf(ngx_http_asyncx_sse_conf_t *conf)
{
    conf->heartbeat = NGX_CONF_UNSET_MSEC;
    conf->retry = NGX_CONF_UNSET_MSEC;
    conf->batch_size = NGX_CONF_UNSET_UINT;
    conf->max_data_size = NGX_CONF_UNSET_UINT;
    conf->source = NGX_CONF_UNSET_PTR;

    ngx_http_asyncx_sse_file_init_conf(&conf->file);
}


char *
ngx_http_asyncx_sse_merge_conf(ngx_conf_t *cf,
    ngx_http_asyncx_sse_conf_t *prev, ngx_http_asyncx_sse_conf_t *conf)
{
    ngx_conf_merge_msec_value(conf->heartbeat, prev->heartbeat, 15000);
    ngx_conf_merge_msec_value(conf->retry, prev->retry, 0);
    ngx_conf_merge_uint_value(conf->batch_size, prev->batch_size, 1000);
    ngx_conf_merge_uint_value(conf->max_data_size, prev->max_data_size,
                              10000000);
    ngx_conf_merge_ptr_value(conf->source, prev->source,
                             ngx_http_asyncx_sse_default_source(cf));

    if (ngx_http_asyncx_sse_file_merge_conf(cf, &prev->file, &conf->file)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (conf->mode == NGX_HTTP_ASYNCX_SSE_OFF) {
        return NGX_CONF_OK;
    }

    if (conf->source == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"asyncx_sse\" needs \"asyncx_sse_source\"");
        return NGX_CONF_ERROR;
    }

    if (conf->source == &ngx_http_asyncx_sse_file_source) {
        return ngx_http_asyncx_sse_file_check(cf, &conf->file, conf->mode);
    }

    return NGX_CONF_OK;
}


/* asyncx_sse search | transform | aggregate; */

char *
ngx_http_asyncx_sse(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    char                      *rv;
    ngx_str_t                 *value;
    ngx_uint_t                 i;

    if (alcf->sse.mode != NGX_HTTP_ASYNCX_SSE_OFF) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 0; ngx_http_asyncx_sse_modes[i].name.len; i++) {
        if (ngx_strcmp(value[1].data, ngx_http_asyncx_sse_modes[i].name.data)
            == 0)
        {
            alcf->sse.mode = ngx_http_asyncx_sse_modes[i].value;
            break;
        }
    }

    if (alcf->sse.mode == NGX_HTTP_ASYNCX_SSE_OFF) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\", expected "
                           "\"search\", \"transform\" or \"aggregate\"",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    rv = ngx_http_asyncx_conf_set_handler(cf, ngx_http_asyncx_sse_handler,
                                          &alcf->content_handler);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    ngx_http_asyncx_executor_require(&alcf->executor);

    return NGX_CONF_OK;
}


/* asyncx_sse_source name | file=path root=dir; */

char *
ngx_http_asyncx_sse_source(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    u_char                            *p;
    size_t                             len;
    ngx_str_t                         *value, others;
    ngx_uint_t                         i;
    ngx_http_asyncx_main_conf_t       *amcf;
    ngx_http_asyncx_sse_source_t     **src;

    if (alcf->sse.source != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;
    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_asyncx_module);
    src = amcf->sse.sources.elts;

    if (cf->args->nelts == 2) {
        for (i = 0; i < amcf->sse.sources.nelts; i++) {
            if (src[i]->name.len == value[1].len
                && ngx_strncmp(src[i]->name.data, value[1].data,
                               value[1].len) == 0)
            {
                alcf->sse.source = src[i];
                return NGX_CONF_OK;
            }
        }
    }

    /* what the file source's message offers instead: ', or "name"' */
    len = 0;

    for (i = 0; i < amcf->sse.sources.nelts; i++) {
        len += sizeof(", or \"\"") - 1 + src[i]->name.len;
    }

    p = ngx_pnalloc(cf->pool, len + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    others.data = p;

    for (i = 0; i < amcf->sse.sources.nelts; i++) {
        p = ngx_sprintf(p, ", or \"%V\"", &src[i]->name);
    }

    others.len = p - others.data;

    alcf->sse.source = &ngx_http_asyncx_sse_file_source;

    return ngx_http_asyncx_sse_file_set_source(cf, cmd, &alcf->sse.file,
                                               &value[1], cf->args->nelts - 1,
                                               &others);
}


/* the content handler of asyncx_sse: the stream of the location's source */

static ngx_int_t
ngx_http_asyncx_sse_handler(ngx_http_request_t *r)
{
    ngx_http_asyncx_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_asyncx_module);

    return alcf->sse.source->handler(r);
}


ngx_int_t
ngx_http_asyncx_sse_status(ngx_http_request_t *r, cJSON *root)
{
    cJSON  *s;

    static const ngx_http_asyncx_status_field_t  fields[] = {
        { "active", 1, NGX_HTTP_ASYNCX_GAUGE_STREAMS },
        { "total", 0, NGX_HTTP_ASYNCX_STAT_SSE_TOTAL },
        { "completed", 0, NGX_HTTP_ASYNCX_STAT_SSE_COMPLETED },
        { "aborted", 0, NGX_HTTP_ASYNCX_STAT_SSE_ABORTED },
        { "errors", 0, NGX_HTTP_ASYNCX_STAT_SSE_ERRORS },
        { "events", 0, NGX_HTTP_ASYNCX_STAT_SSE_EVENTS },
        { "jobs", 0, NGX_HTTP_ASYNCX_STAT_SSE_JOBS },
        { "records", 0, NGX_HTTP_ASYNCX_STAT_SSE_RECORDS }
    };

    s = cJSON_AddObjectToObject(root, "streams");
    if (s == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_asyncx_status_fields(s, fields,
                                         sizeof(fields) / sizeof(fields[0]));
}
