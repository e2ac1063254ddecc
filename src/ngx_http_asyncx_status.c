
/*
 * Copyright (C) asyncx authors
 *
 * asyncx_status: the JSON answer built from the sections the subsystems
 * register, or the Prometheus text format (metrics_prom) when asked.
 * A renderer on top: it calls no subsystem by name.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <cjson/cJSON.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_version.h"
#include "ngx_http_asyncx_conf.h"
#include "ngx_http_asyncx_http.h"
#include "ngx_http_asyncx_metrics_prom.h"


static ngx_int_t ngx_http_asyncx_status_handler(ngx_http_request_t *r);


ngx_int_t
ngx_http_asyncx_status_init_main_conf(ngx_conf_t *cf,
    ngx_http_asyncx_status_main_conf_t *smcf)
{
    return ngx_array_init(&smcf->sections, cf->pool, 8,
                          sizeof(ngx_http_asyncx_status_section_pt));
}


/* sections render in the order they are added */

ngx_int_t
ngx_http_asyncx_status_add_section(ngx_conf_t *cf,
    ngx_http_asyncx_status_section_pt handler)
{
    ngx_http_asyncx_main_conf_t         *amcf;
    ngx_http_asyncx_status_section_pt   *s;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_asyncx_module);

    s = ngx_array_push(&amcf->status.sections);
    if (s == NULL) {
        return NGX_ERROR;
    }

    *s = handler;

    return NGX_OK;
}


/* the one way a section writes counters and gauges: NGX_OK or NGX_ERROR */

ngx_int_t
ngx_http_asyncx_status_fields(cJSON *obj,
    const ngx_http_asyncx_status_field_t *fields, ngx_uint_t n)
{
    ngx_uint_t         i;
    ngx_atomic_uint_t  v;

    for (i = 0; i < n; i++) {
        v = fields[i].gauge ? ngx_http_asyncx_gauge(fields[i].index)
                            : ngx_http_asyncx_stat(fields[i].index);

        if (cJSON_AddNumberToObject(obj, fields[i].name, (double) v) == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


char *
ngx_http_asyncx_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    return ngx_http_asyncx_conf_set_handler(cf, ngx_http_asyncx_status_handler,
                                            &alcf->content_handler);
}

static ngx_int_t
ngx_http_asyncx_status_handler(ngx_http_request_t *r)
{
    cJSON      *root;
    ngx_str_t   format;
    ngx_int_t   rc;

    if (ngx_http_asyncx_get_only(r, &rc) != NGX_OK) {
        return rc;
    }

    rc = ngx_http_asyncx_metrics_format(r, &format);

    if (rc == NGX_OK) {
        return ngx_http_asyncx_metrics_send(r);
    }

    if (rc == NGX_HTTP_BAD_REQUEST) {
        if (ngx_http_asyncx_quote(r->pool, format.data, format.len, 0,
                                  &format)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          NGX_LOG_INFO,
                                          "invalid format \"%V\", use "
                                          "json or prometheus", &format);
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    root = ngx_http_asyncx_status_json(r);
    if (root == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_asyncx_send_cjson(r, NGX_HTTP_OK, root);
    cJSON_Delete(root);

    return rc;
}




/* the JSON status, also pushed by asyncx_status_stream */

cJSON *
ngx_http_asyncx_status_json(ngx_http_request_t *r)
{
    cJSON                               *root;
    ngx_uint_t                           i;
    ngx_http_asyncx_main_conf_t         *amcf;
    ngx_http_asyncx_status_section_pt   *section;

    ngx_http_asyncx_stats_reclaim_dead(r);

    root = cJSON_CreateObject();
    if (root == NULL) {
        return NULL;
    }

    if (cJSON_AddStringToObject(root, "module", "ngx_http_asyncx_module")
        == NULL
        || cJSON_AddStringToObject(root, "version", NGX_HTTP_ASYNCX_VERSION)
           == NULL
        || (ngx_http_asyncx_server_tokens(r)
            && cJSON_AddStringToObject(root, "nginx_version", NGINX_VERSION)
               == NULL)
        || cJSON_AddNumberToObject(root, "pid", (double) ngx_pid) == NULL)
    {
        goto failed;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_asyncx_module);
    section = amcf->status.sections.elts;

    for (i = 0; i < amcf->status.sections.nelts; i++) {
        if (section[i](r, root) != NGX_OK) {
            goto failed;
        }
    }

    return root;

failed:

    cJSON_Delete(root);

    return NULL;
}
