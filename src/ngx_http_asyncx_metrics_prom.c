
/*
 * Copyright (C) asyncx authors
 *
 * The Prometheus text format (version 0.0.4) of asyncx_status:
 * "?format=prometheus", or an Accept header naming text/plain;
 * version=0.0.4 as Prometheus sends it.  A renderer on top of the
 * series (metrics.c), the counters (stats.c) and the limiter's JSON.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <cjson/cJSON.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_version.h"
#include "ngx_http_asyncx_http.h"
#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_metrics_prom.h"


#define NGX_HTTP_ASYNCX_PROM_BUF          8192


typedef struct {
    const char                    *name;
    ngx_str_t                      value;
} ngx_http_asyncx_prom_label_t;


typedef struct {
    ngx_http_request_t            *request;
    ngx_chain_t                   *out;
    ngx_chain_t                  **last;
    ngx_buf_t                     *buf;
    ngx_uint_t                     failed;
} ngx_http_asyncx_prom_t;


static ngx_int_t ngx_http_asyncx_metrics_accept(ngx_http_request_t *r);

static void ngx_http_asyncx_prom_info(ngx_http_asyncx_prom_t *pr);
static void ngx_http_asyncx_prom_pools(ngx_http_asyncx_prom_t *pr,
    ngx_http_asyncx_metrics_main_conf_t *mmcf);
static void ngx_http_asyncx_prom_pipelines(ngx_http_asyncx_prom_t *pr,
    ngx_http_asyncx_metrics_main_conf_t *mmcf);
static void ngx_http_asyncx_prom_calls(ngx_http_asyncx_prom_t *pr,
    ngx_http_asyncx_metrics_main_conf_t *mmcf);
static void ngx_http_asyncx_prom_cluster_modes(ngx_http_asyncx_prom_t *pr,
    cJSON *zones);
static void ngx_http_asyncx_prom_limits(ngx_http_asyncx_prom_t *pr,
    ngx_http_asyncx_metrics_main_conf_t *mmcf);
static void ngx_http_asyncx_prom_streams(ngx_http_asyncx_prom_t *pr,
    ngx_http_asyncx_metrics_main_conf_t *mmcf);

static void ngx_http_asyncx_prom_family(ngx_http_asyncx_prom_t *pr,
    const char *name, const char *type, const char *help);
static void ngx_http_asyncx_prom_sample(ngx_http_asyncx_prom_t *pr,
    const char *name, const char *suffix, ngx_http_asyncx_prom_label_t *labels,
    ngx_uint_t n, u_char *value, size_t value_len);
static void ngx_http_asyncx_prom_uint(ngx_http_asyncx_prom_t *pr,
    const char *name, const char *suffix, ngx_http_asyncx_prom_label_t *labels,
    ngx_uint_t n, uint64_t value);
static void ngx_http_asyncx_prom_hist(ngx_http_asyncx_prom_t *pr,
    const char *name, ngx_http_asyncx_prom_label_t *labels, ngx_uint_t n,
    ngx_http_asyncx_hist_t *h, ngx_uint_t layout);
static u_char *ngx_http_asyncx_prom_reserve(ngx_http_asyncx_prom_t *pr,
    size_t size);



/*
 * NGX_OK: answer the Prometheus text format; NGX_DECLINED: JSON;
 * NGX_HTTP_BAD_REQUEST: format= names neither (in *format).  The answer
 * depends on Accept, so caches are told.
 */

ngx_int_t
ngx_http_asyncx_metrics_format(ngx_http_request_t *r, ngx_str_t *format)
{
    ngx_int_t         rc;
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Vary");
    ngx_str_set(&h->value, "Accept");

    rc = ngx_http_asyncx_arg(r, "format", format);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_asyncx_metrics_accept(r);
    }

    if (format->len == sizeof("prometheus") - 1
        && ngx_strncmp(format->data, "prometheus", format->len) == 0)
    {
        return NGX_OK;
    }

    if (format->len == sizeof("json") - 1
        && ngx_strncmp(format->data, "json", format->len) == 0)
    {
        return NGX_DECLINED;
    }

    return NGX_HTTP_BAD_REQUEST;
}


/*
 * One media range of an Accept header, [p, end): NGX_OK for the type
 * text/plain with a parameter version=0.0.4 (or "0.0.4") and a q that is
 * not zero (RFC 9110: q=0 is "not acceptable").  Parameters are matched
 * whole: "version=0.0.40" and "xversion=0.0.4" are not 0.0.4.
 */

static ngx_int_t
ngx_http_asyncx_metrics_range(u_char *p, u_char *end)
{
    u_char      *name, *value, *last;
    size_t       nlen, vlen;
    ngx_uint_t   version, zero;

    static u_char  type[] = "text/plain";

    if ((size_t) (end - p) < sizeof(type) - 1
        || ngx_strncasecmp(p, type, sizeof(type) - 1) != 0)
    {
        return NGX_DECLINED;
    }

    p += sizeof(type) - 1;
    version = 0;
    zero = 0;

    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t')) {
            p++;
        }

        if (p == end) {
            break;
        }

        if (*p != ';') {
            /* "text/plainx", or garbage after the type */
            return NGX_DECLINED;
        }

        p++;

        while (p < end && (*p == ' ' || *p == '\t')) {
            p++;
        }

        name = p;

        while (p < end && *p != '=' && *p != ';' && *p != ' ') {
            p++;
        }

        nlen = p - name;

        if (p == end || *p != '=') {
            continue;
        }

        value = ++p;

        if (p < end && *p == '"') {
            value = ++p;

            while (p < end && *p != '"') {
                p += (*p == '\\' && p + 1 < end) ? 2 : 1;
            }

            last = p;

            if (p < end) {
                p++;
            }

        } else {
            while (p < end && *p != ';' && *p != ' ' && *p != '\t') {
                p++;
            }

            last = p;
        }

        vlen = last - value;

        if (nlen == 7 && ngx_strncasecmp(name, (u_char *) "version", 7) == 0) {
            version = (vlen == 5 && ngx_strncmp(value, "0.0.4", 5) == 0);

        } else if (nlen == 1 && (*name == 'q' || *name == 'Q')) {
            /* "0", "0.", "0.0" ... "0.000" */
            zero = (vlen >= 1 && *value == '0');

            for (value++; zero && value < last; value++) {
                zero = (*value == '.' || *value == '0');
            }
        }
    }

    return (version && !zero) ? NGX_OK : NGX_DECLINED;
}


/* an Accept header with an acceptable text/plain; version=0.0.4 */

static ngx_int_t
ngx_http_asyncx_metrics_accept(ngx_http_request_t *r)
{
    u_char           *p, *end, *range;
    ngx_uint_t        quoted;
    ngx_table_elt_t  *h;

    static ngx_str_t  accept = ngx_string("Accept");

    for (h = ngx_http_asyncx_header_next(r, &accept, NULL);
         h != NULL;
         h = ngx_http_asyncx_header_next(r, &accept, h))
    {
        p = h->value.data;
        end = p + h->value.len;

        while (p < end) {
            while (p < end && (*p == ' ' || *p == ',')) {
                p++;
            }

            range = p;

            /* a "," inside a quoted value (RFC 9110 quoted-string, with
               its "\\" escapes) belongs to the value, not a new range */
            quoted = 0;

            while (p < end && (quoted || *p != ',')) {
                if (*p == '"') {
                    quoted = !quoted;

                } else if (*p == '\\' && quoted && p + 1 < end) {
                    p++;
                }

                p++;
            }

            if (ngx_http_asyncx_metrics_range(range, p) == NGX_OK) {
                return NGX_OK;
            }
        }
    }

    return NGX_DECLINED;
}


ngx_int_t
ngx_http_asyncx_metrics_send(ngx_http_request_t *r)
{
    off_t                                 size;
    ngx_int_t                             rc;
    ngx_chain_t                          *cl;
    ngx_http_asyncx_prom_t                pr;
    ngx_http_asyncx_main_conf_t          *amcf;
    ngx_http_asyncx_metrics_main_conf_t  *mmcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_asyncx_module);
    mmcf = &amcf->metrics;

    /* the gauges count no worker that was killed */
    ngx_http_asyncx_stats_reclaim_dead(r);

    ngx_memzero(&pr, sizeof(ngx_http_asyncx_prom_t));
    pr.request = r;
    pr.last = &pr.out;

    ngx_http_asyncx_prom_info(&pr);
    ngx_http_asyncx_prom_pools(&pr, mmcf);
    ngx_http_asyncx_prom_pipelines(&pr, mmcf);
    ngx_http_asyncx_prom_calls(&pr, mmcf);
    ngx_http_asyncx_prom_limits(&pr, mmcf);
    ngx_http_asyncx_prom_streams(&pr, mmcf);

    if (pr.failed || pr.buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    size = 0;

    for (cl = pr.out; cl; cl = cl->next) {
        size += cl->buf->last - cl->buf->pos;
    }

    pr.buf->last_buf = (r == r->main) ? 1 : 0;
    pr.buf->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = size;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = sizeof("text/plain") - 1;
    r->headers_out.content_type_lowcase = NULL;

    ngx_http_clear_accept_ranges(r);
    ngx_http_clear_last_modified(r);
    ngx_http_clear_etag(r);

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, pr.out);
}


/* families */


static void
ngx_http_asyncx_prom_info(ngx_http_asyncx_prom_t *pr)
{
    ngx_uint_t                    n;
    ngx_http_asyncx_prom_label_t  labels[2];

    labels[0].name = "version";
    ngx_str_set(&labels[0].value, NGX_HTTP_ASYNCX_VERSION);
    n = 1;

    /* server_tokens off: the nginx version is not told, as in "Server" */
    if (ngx_http_asyncx_server_tokens(pr->request)) {
        labels[1].name = "nginx_version";
        ngx_str_set(&labels[1].value, NGINX_VERSION);
        n = 2;
    }

    ngx_http_asyncx_prom_family(pr, "asyncx_info", "gauge",
                                "The module's version (and nginx's, "
                                "unless server_tokens is off).");
    ngx_http_asyncx_prom_uint(pr, "asyncx_info", "", labels, n, 1);
}


static void
ngx_http_asyncx_prom_pools(ngx_http_asyncx_prom_t *pr,
    ngx_http_asyncx_metrics_main_conf_t *mmcf)
{
    uint64_t                        value;
    ngx_uint_t                      i, j, k, n, slot[NGX_HTTP_ASYNCX_MAX_POOLS];
    ngx_http_asyncx_stats_t        *sh;
    ngx_http_asyncx_series_t      **sp, *pool[NGX_HTTP_ASYNCX_MAX_POOLS];
    ngx_http_asyncx_prom_label_t    label;
    ngx_http_asyncx_pool_stats_t   *ps;
    ngx_http_asyncx_pool_metrics_t *m;

    static const char  *const names[] = {
        "asyncx_pool_tasks_queued", "gauge",
        "Tasks posted to the thread pool and not started yet.",
        "asyncx_pool_tasks_running", "gauge",
        "Tasks running in a thread of the pool.",
        "asyncx_pool_tasks_posted_total", "counter",
        "Tasks posted to the thread pool.",
        "asyncx_pool_tasks_completed_total", "counter",
        "Tasks that ended successfully.",
        "asyncx_pool_tasks_failed_total", "counter",
        "Tasks that ended with an error.",
        "asyncx_pool_tasks_rejected_total", "counter",
        "Tasks refused because the pool's queue was full (answered 503).",
        "asyncx_pool_tasks_cancelled_total", "counter",
        "Queued tasks skipped because their client left."
    };

    /* the pools asyncx uses, with their slots among asyncx_stats' */

    sh = ngx_http_asyncx_stats();
    sp = mmcf->series.elts;
    n = 0;

    for (i = 0; i < mmcf->series.nelts && n < NGX_HTTP_ASYNCX_MAX_POOLS; i++) {
        if (sp[i]->kind != NGX_HTTP_ASYNCX_SERIES_POOL || sp[i]->sh == NULL) {
            continue;
        }

        for (j = 0; j < NGX_HTTP_ASYNCX_MAX_POOLS; j++) {
            if (ngx_strlen(sh->pools[j].name) == sp[i]->name.len
                && ngx_strncmp(sh->pools[j].name, sp[i]->name.data,
                               sp[i]->name.len) == 0)
            {
                pool[n] = sp[i];
                slot[n++] = j;
                break;
            }
        }
    }

    label.name = "pool";

    for (k = 0; k < sizeof(names) / sizeof(names[0]); k += 3) {
        ngx_http_asyncx_prom_family(pr, names[k], names[k + 1], names[k + 2]);

        for (i = 0; i < n; i++) {
            ps = &sh->pools[slot[i]];
            label.value = pool[i]->name;

            switch (k / 3) {

            case 0:
                /* in flight: per worker, as the JSON reads them */
                value = ngx_http_asyncx_gauge(NGX_HTTP_ASYNCX_GAUGE_QUEUED
                                              + slot[i]);
                break;

            case 1:
                value = ngx_http_asyncx_gauge(NGX_HTTP_ASYNCX_GAUGE_RUNNING
                                              + slot[i]);
                break;

            case 2:
                value = ps->posted;
                break;

            case 3:
                value = ps->completed;
                break;

            case 4:
                value = ps->failed;
                break;

            case 5:
                value = ps->rejected;
                break;

            default:
                value = ps->cancelled;
                break;
            }

            ngx_http_asyncx_prom_uint(pr, names[k], "", &label, 1, value);
        }
    }

    ngx_http_asyncx_prom_family(pr, "asyncx_pool_queue_wait_seconds",
                                "histogram",
                                "Time tasks waited in the pool's queue for "
                                "a thread.");

    for (i = 0; i < n; i++) {
        m = pool[i]->sh;
        label.value = pool[i]->name;
        ngx_http_asyncx_prom_hist(pr, "asyncx_pool_queue_wait_seconds",
                                  &label, 1, &m->queue_wait,
                                  NGX_HTTP_ASYNCX_HIST_QUEUE_WAIT);
    }

    ngx_http_asyncx_prom_family(pr, "asyncx_pool_run_seconds", "histogram",
                                "Time tasks ran in a thread of the pool.");

    for (i = 0; i < n; i++) {
        m = pool[i]->sh;
        label.value = pool[i]->name;
        ngx_http_asyncx_prom_hist(pr, "asyncx_pool_run_seconds", &label, 1,
                                  &m->run, NGX_HTTP_ASYNCX_HIST_RUN);
    }
}


static void
ngx_http_asyncx_prom_pipelines(ngx_http_asyncx_prom_t *pr,
    ngx_http_asyncx_metrics_main_conf_t *mmcf)
{
    ngx_uint_t                           i, k;
    ngx_atomic_t                        *v;
    ngx_http_asyncx_series_t           **sp;
    ngx_http_asyncx_prom_label_t         label;
    ngx_http_asyncx_pipeline_metrics_t  *m;

    static const char  *const names[] = {
        "asyncx_pipeline_requests_total",
        "Pipeline requests whose calls started.",
        "asyncx_pipeline_failed_total",
        "Pipeline requests answered with an error: a required call failed.",
        "asyncx_pipeline_aborted_total",
        "Pipeline requests whose client went away before the answer."
    };

    sp = mmcf->series.elts;
    label.name = "location";

    ngx_http_asyncx_prom_family(pr, "asyncx_pipelines_active", "gauge",
                                "Pipeline requests in progress.");
    ngx_http_asyncx_prom_uint(pr, "asyncx_pipelines_active", "", NULL, 0,
                              ngx_http_asyncx_gauge(
                                  NGX_HTTP_ASYNCX_GAUGE_PIPELINES));

    for (k = 0; k < 3; k++) {
        ngx_http_asyncx_prom_family(pr, names[2 * k], "counter",
                                    names[2 * k + 1]);

        for (i = 0; i < mmcf->series.nelts; i++) {
            if (sp[i]->kind != NGX_HTTP_ASYNCX_SERIES_PIPELINE
                || sp[i]->sh == NULL)
            {
                continue;
            }

            m = sp[i]->sh;
            v = (k == 0) ? &m->requests : (k == 1) ? &m->failed : &m->aborted;
            label.value = sp[i]->name;

            ngx_http_asyncx_prom_uint(pr, names[2 * k], "", &label, 1, *v);
        }
    }

    ngx_http_asyncx_prom_family(pr, "asyncx_pipeline_duration_seconds",
                                "histogram",
                                "Time from a pipeline's first call to its "
                                "answer.");

    for (i = 0; i < mmcf->series.nelts; i++) {
        if (sp[i]->kind != NGX_HTTP_ASYNCX_SERIES_PIPELINE
            || sp[i]->sh == NULL)
        {
            continue;
        }

        m = sp[i]->sh;
        label.value = sp[i]->name;

        ngx_http_asyncx_prom_hist(pr, "asyncx_pipeline_duration_seconds",
                                  &label, 1, &m->duration,
                                  NGX_HTTP_ASYNCX_HIST_PIPELINE);
    }
}


static void
ngx_http_asyncx_prom_calls(ngx_http_asyncx_prom_t *pr,
    ngx_http_asyncx_metrics_main_conf_t *mmcf)
{
    ngx_uint_t                       i, kind;
    ngx_http_asyncx_series_t       **sp;
    ngx_http_asyncx_prom_label_t     labels[3];
    ngx_http_asyncx_call_metrics_t  *m;

    sp = mmcf->series.elts;
    labels[0].name = "location";
    labels[1].name = "call";
    labels[2].name = "kind";

    ngx_http_asyncx_prom_family(pr, "asyncx_call_requests_total", "counter",
                                "Service calls issued by pipelines.");

    for (i = 0; i < mmcf->series.nelts; i++) {
        if (sp[i]->kind != NGX_HTTP_ASYNCX_SERIES_CALL || sp[i]->sh == NULL) {
            continue;
        }

        m = sp[i]->sh;
        labels[0].value = sp[i]->name;
        labels[1].value = sp[i]->call;

        ngx_http_asyncx_prom_uint(pr, "asyncx_call_requests_total", "",
                                  labels, 2, m->requests);
    }

    ngx_http_asyncx_prom_family(pr, "asyncx_call_failures_total", "counter",
                                "Service calls that failed, by kind: status "
                                "(non-2xx), timeout, invalid_json, "
                                "too_large, error, invalid_uri, "
                                "abandoned.");

    for (i = 0; i < mmcf->series.nelts; i++) {
        if (sp[i]->kind != NGX_HTTP_ASYNCX_SERIES_CALL || sp[i]->sh == NULL) {
            continue;
        }

        m = sp[i]->sh;
        labels[0].value = sp[i]->name;
        labels[1].value = sp[i]->call;

        for (kind = NGX_HTTP_ASYNCX_CALL_OK + 1;
             kind < NGX_HTTP_ASYNCX_CALL_KINDS;
             kind++)
        {
            labels[2].value.data = (u_char *)
                                   ngx_http_asyncx_pipeline_kind_name(kind);
            labels[2].value.len = ngx_strlen(labels[2].value.data);

            ngx_http_asyncx_prom_uint(pr, "asyncx_call_failures_total", "",
                                      labels, 3, m->failures[kind]);
        }
    }

    ngx_http_asyncx_prom_family(pr, "asyncx_call_duration_seconds",
                                "histogram",
                                "Time from a call's start to its answer, "
                                "failure or timeout.");

    for (i = 0; i < mmcf->series.nelts; i++) {
        if (sp[i]->kind != NGX_HTTP_ASYNCX_SERIES_CALL || sp[i]->sh == NULL) {
            continue;
        }

        m = sp[i]->sh;
        labels[0].value = sp[i]->name;
        labels[1].value = sp[i]->call;

        ngx_http_asyncx_prom_hist(pr, "asyncx_call_duration_seconds", labels,
                                  2, &m->duration, NGX_HTTP_ASYNCX_HIST_CALL);
    }
}


/*
 * The limit zones' numbers as the JSON status reads them, under each
 * zone's lock: the limiter's own counters, not copies.  A family is
 * written when the limiter reports that number.
 */

static void
ngx_http_asyncx_prom_limits(ngx_http_asyncx_prom_t *pr,
    ngx_http_asyncx_metrics_main_conf_t *mmcf)
{
    cJSON                            *root, *zones, *z, *v;
    ngx_uint_t                        i, k, found;
    ngx_http_asyncx_series_t        **sp;
    ngx_http_asyncx_prom_label_t      label;
    ngx_http_asyncx_limit_metrics_t  *m;

    /* metric, type, help, the JSON member (and the member inside it) */
    /* metric, type, help, the JSON member (and the members inside it) */
    static const char  *const names[] = {
        "asyncx_limit_admitted_total", "counter",
        "Requests the zone let in.", "admitted", NULL, NULL,
        "asyncx_limit_passed_total", "counter",
        "Requests let in without waiting.", "passed", NULL, NULL,
        "asyncx_limit_delayed_total", "counter",
        "Requests let in after waiting.", "delayed", NULL, NULL,
        "asyncx_limit_rejected_total", "counter",
        "Requests refused at once (429, the queue was full).",
        "rejected", NULL, NULL,
        "asyncx_limit_timed_out_total", "counter",
        "Requests that waited past the zone's timeout (503).",
        "timed_out", NULL, NULL,
        "asyncx_limit_left_total", "counter",
        "Requests whose client went away while waiting.", "left", NULL, NULL,
        "asyncx_limit_zone_full_total", "counter",
        "Requests refused because the zone's memory was full (503).",
        "zone_full", NULL, NULL,
        "asyncx_limit_reclaimed_total", "counter",
        "Places and slots taken back from workers that died.",
        "reclaimed", NULL, NULL,
        "asyncx_limit_waiting", "gauge",
        "Requests waiting for their turn.", "waiting", NULL, NULL,
        "asyncx_limit_in_flight", "gauge",
        "Requests inside the protected locations.", "concurrent", "current",
        NULL,
        "asyncx_limit_cluster_redis_errors_total", "counter",
        "Redis commands and connections of a cluster zone that failed.",
        "cluster", "redis_errors", NULL,
        "asyncx_limit_cluster_commands_total", "counter",
        "Redis commands a cluster zone sent.", "cluster", "commands", NULL,
        "asyncx_limit_cluster_global_slots", "gauge",
        "Slots the whole fleet holds, as Redis last said.",
        "cluster", "global", "slots_in_use",
        "asyncx_limit_cluster_local_held", "gauge",
        "Slots this server's requests hold in Redis.",
        "cluster", "local", "held"
    };

    root = cJSON_CreateObject();

    if (root == NULL
        || ngx_http_asyncx_limit_status_all(pr->request, root) != NGX_OK)
    {
        cJSON_Delete(root);
        pr->failed = 1;
        return;
    }

    zones = cJSON_GetObjectItemCaseSensitive(root, "limit_zones");
    label.name = "zone";

    for (k = 0; k < sizeof(names) / sizeof(names[0]); k += 6) {
        found = 0;

        cJSON_ArrayForEach(z, zones) {
            v = cJSON_GetObjectItemCaseSensitive(z, names[k + 3]);

            if (names[k + 4]) {
                v = cJSON_GetObjectItemCaseSensitive(v, names[k + 4]);
            }

            if (names[k + 5]) {
                v = cJSON_GetObjectItemCaseSensitive(v, names[k + 5]);
            }

            if (!cJSON_IsNumber(v)) {
                continue;
            }

            if (!found++) {
                ngx_http_asyncx_prom_family(pr, names[k], names[k + 1],
                                            names[k + 2]);
            }

            label.value.data = (u_char *) z->string;
            label.value.len = ngx_strlen(z->string);

            ngx_http_asyncx_prom_uint(pr, names[k], "", &label, 1,
                                      (uint64_t) v->valuedouble);
        }
    }

    ngx_http_asyncx_prom_cluster_modes(pr, zones);

    cJSON_Delete(root);

    sp = mmcf->series.elts;
    found = 0;

    for (i = 0; i < mmcf->series.nelts; i++) {
        if (sp[i]->kind != NGX_HTTP_ASYNCX_SERIES_LIMIT || sp[i]->sh == NULL) {
            continue;
        }

        if (!found++) {
            ngx_http_asyncx_prom_family(pr, "asyncx_limit_wait_seconds",
                                        "histogram",
                                        "Time from a request's arrival to "
                                        "its admission.");
        }

        m = sp[i]->sh;
        label.value = sp[i]->name;

        ngx_http_asyncx_prom_hist(pr, "asyncx_limit_wait_seconds", &label, 1,
                                  &m->wait, NGX_HTTP_ASYNCX_HIST_LIMIT_WAIT);
    }
}


/* asyncx_limit_cluster_mode{zone,mode}: 1 for the mode in force */

static void
ngx_http_asyncx_prom_cluster_modes(ngx_http_asyncx_prom_t *pr, cJSON *zones)
{
    cJSON                         *z, *mode;
    ngx_uint_t                     i, found;
    ngx_http_asyncx_prom_label_t   labels[2];

    static const char  *const modes[] = { "redis", "refuse", "allow",
                                          "local" };

    found = 0;
    labels[0].name = "zone";
    labels[1].name = "mode";

    cJSON_ArrayForEach(z, zones) {
        mode = cJSON_GetObjectItemCaseSensitive(
                   cJSON_GetObjectItemCaseSensitive(z, "cluster"), "mode");

        if (!cJSON_IsString(mode)) {
            continue;
        }

        if (!found++) {
            ngx_http_asyncx_prom_family(pr, "asyncx_limit_cluster_mode",
                                        "gauge",
                                        "The mode a cluster zone limits in: "
                                        "redis, or its fallback.");
        }

        labels[0].value.data = (u_char *) z->string;
        labels[0].value.len = ngx_strlen(z->string);

        for (i = 0; i < 4; i++) {
            labels[1].value.data = (u_char *) modes[i];
            labels[1].value.len = ngx_strlen(modes[i]);

            ngx_http_asyncx_prom_uint(pr, "asyncx_limit_cluster_mode", "",
                                      labels, 2,
                                      ngx_strcmp(mode->valuestring, modes[i])
                                      == 0);
        }
    }
}


static void
ngx_http_asyncx_prom_streams(ngx_http_asyncx_prom_t *pr,
    ngx_http_asyncx_metrics_main_conf_t *mmcf)
{
    uint64_t                           value;
    ngx_uint_t                         i, field;
    ngx_http_asyncx_series_t          *s;
    ngx_http_asyncx_prom_label_t       label;
    ngx_http_asyncx_stream_metrics_t  *m;

    static const char  *const names[] = {
        "asyncx_streams_open", "gauge",
        "Server-Sent Events streams open now.",
        "asyncx_streams_started_total", "counter",
        "Streams that started.",
        "asyncx_streams_completed_total", "counter",
        "Streams that sent their last event.",
        "asyncx_streams_aborted_total", "counter",
        "Streams whose client went away first.",
        "asyncx_streams_errors_total", "counter",
        "Streams that ended with an error event.",
        "asyncx_stream_events_total", "counter",
        "Events sent."
    };

    label.name = "kind";

    for (field = 0; field < NGX_HTTP_ASYNCX_STREAM_FIELDS; field++) {
        ngx_http_asyncx_prom_family(pr, names[3 * field],
                                    names[3 * field + 1],
                                    names[3 * field + 2]);

        for (i = 1; i < NGX_HTTP_ASYNCX_STREAM_KINDS; i++) {
            s = mmcf->streams[i];

            if (s == NULL || s->sh == NULL) {
                continue;
            }

            m = s->sh;
            label.value = s->name;
            value = (field == NGX_HTTP_ASYNCX_STREAM_OPEN)
                    ? ngx_http_asyncx_gauge(NGX_HTTP_ASYNCX_GAUGE_STREAM_KIND
                                            + i)
                    : m->field[field];

            ngx_http_asyncx_prom_uint(pr, names[3 * field], "", &label, 1,
                                      value);
        }
    }
}


/* the text format */


static void
ngx_http_asyncx_prom_family(ngx_http_asyncx_prom_t *pr, const char *name,
    const char *type, const char *help)
{
    u_char  *p;
    size_t   len;

    len = 2 * ngx_strlen(name) + ngx_strlen(type) + ngx_strlen(help)
          + sizeof("# HELP  \n# TYPE  \n");

    p = ngx_http_asyncx_prom_reserve(pr, len);
    if (p == NULL) {
        return;
    }

    pr->buf->last = ngx_sprintf(p, "# HELP %s %s\n# TYPE %s %s\n",
                                name, help, name, type);
}


/* name{l1="v1",...} value */

static void
ngx_http_asyncx_prom_sample(ngx_http_asyncx_prom_t *pr, const char *name,
    const char *suffix, ngx_http_asyncx_prom_label_t *labels, ngx_uint_t n,
    u_char *value, size_t value_len)
{
    u_char      *p;
    size_t       len;
    ngx_uint_t   i;

    len = ngx_strlen(name) + ngx_strlen(suffix) + sizeof("{} \n") + value_len;

    for (i = 0; i < n; i++) {
        len += ngx_strlen(labels[i].name) + sizeof(",=\"\"")
               + ngx_http_asyncx_prom_label_len(labels[i].value.data,
                                                labels[i].value.len);
    }

    p = ngx_http_asyncx_prom_reserve(pr, len);
    if (p == NULL) {
        return;
    }

    p = ngx_sprintf(p, "%s%s", name, suffix);

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, "%c%s=\"", i ? ',' : '{', labels[i].name);
        p = ngx_http_asyncx_prom_label(p, labels[i].value.data,
                                       labels[i].value.len);
        *p++ = '"';
    }

    if (n) {
        *p++ = '}';
    }

    *p++ = ' ';
    p = ngx_cpymem(p, value, value_len);
    *p++ = '\n';

    pr->buf->last = p;
}


static void
ngx_http_asyncx_prom_uint(ngx_http_asyncx_prom_t *pr, const char *name,
    const char *suffix, ngx_http_asyncx_prom_label_t *labels, ngx_uint_t n,
    uint64_t value)
{
    u_char  buf[NGX_INT64_LEN];

    ngx_http_asyncx_prom_sample(pr, name, suffix, labels, n, buf,
                                ngx_sprintf(buf, "%uL", value) - buf);
}


/*
 * Buckets are kept apart and summed here, so _bucket{le="+Inf"} and
 * _count are the same number by construction.
 */

static void
ngx_http_asyncx_prom_hist(ngx_http_asyncx_prom_t *pr, const char *name,
    ngx_http_asyncx_prom_label_t *labels, ngx_uint_t n,
    ngx_http_asyncx_hist_t *h, ngx_uint_t layout)
{
    u_char                               le[NGX_HTTP_ASYNCX_PROM_SECONDS_LEN];
    u_char                               sum[NGX_HTTP_ASYNCX_PROM_SECONDS_LEN];
    uint64_t                             count;
    ngx_uint_t                           i;
    ngx_http_asyncx_prom_label_t         all[4];
    const ngx_http_asyncx_hist_bounds_t *b;

    b = ngx_http_asyncx_hist_bounds(layout);

    ngx_memcpy(all, labels, n * sizeof(ngx_http_asyncx_prom_label_t));
    all[n].name = "le";
    count = 0;

    for (i = 0; i <= b->n; i++) {
        count += h->bucket[i];

        if (i < b->n) {
            all[n].value.data = le;
            all[n].value.len = ngx_http_asyncx_prom_seconds(le, le + sizeof(le),
                                                            b->le[i])
                               - le;

        } else {
            ngx_str_set(&all[n].value, "+Inf");
        }

        ngx_http_asyncx_prom_uint(pr, name, "_bucket", all, n + 1, count);
    }

    ngx_http_asyncx_prom_sample(pr, name, "_sum", labels, n, sum,
                                ngx_http_asyncx_prom_seconds(sum,
                                                        sum + sizeof(sum),
                                                        h->sum)
                                - sum);

    ngx_http_asyncx_prom_uint(pr, name, "_count", labels, n, count);
}


static u_char *
ngx_http_asyncx_prom_reserve(ngx_http_asyncx_prom_t *pr, size_t size)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (pr->failed) {
        return NULL;
    }

    if (pr->buf && (size_t) (pr->buf->end - pr->buf->last) >= size) {
        return pr->buf->last;
    }

    b = ngx_create_temp_buf(pr->request->pool,
                            ngx_max(size, NGX_HTTP_ASYNCX_PROM_BUF));
    cl = ngx_alloc_chain_link(pr->request->pool);

    if (b == NULL || cl == NULL) {
        pr->failed = 1;
        return NULL;
    }

    cl->buf = b;
    cl->next = NULL;
    *pr->last = cl;
    pr->last = &cl->next;
    pr->buf = b;

    return b->last;
}
