
/*
 * Copyright (C) asyncx authors
 *
 * Labelled metrics in a shared zone and the Prometheus text format
 * (version 0.0.4) of asyncx_status: "?format=prometheus", or an Accept
 * header naming text/plain; version=0.0.4 as Prometheus sends it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx.h"


#define NGX_HTTP_ASYNCX_METRICS_MIN_SIZE  (128 * 1024)
#define NGX_HTTP_ASYNCX_METRICS_ROUND     (64 * 1024)
#define NGX_HTTP_ASYNCX_PROM_BUF          8192


typedef struct {
    ngx_queue_t                    queue;
    ngx_uint_t                     kind;
    size_t                         len;
    u_char                        *key;      /* name, '\0', call */
    void                          *data;
} ngx_http_asyncx_metrics_node_t;


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


static ngx_int_t ngx_http_asyncx_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void *ngx_http_asyncx_metrics_find(ngx_queue_t *list,
    ngx_http_asyncx_series_t *s);
static void *ngx_http_asyncx_metrics_alloc(ngx_slab_pool_t *shpool,
    ngx_queue_t *list, ngx_http_asyncx_series_t *s);
static size_t ngx_http_asyncx_metrics_node_size(ngx_http_asyncx_series_t *s);
static ngx_int_t ngx_http_asyncx_metrics_accept(ngx_http_request_t *r);

static void ngx_http_asyncx_prom_info(ngx_http_asyncx_prom_t *pr);
static void ngx_http_asyncx_prom_pools(ngx_http_asyncx_prom_t *pr,
    ngx_http_asyncx_metrics_main_conf_t *mmcf);
static void ngx_http_asyncx_prom_pipelines(ngx_http_asyncx_prom_t *pr,
    ngx_http_asyncx_metrics_main_conf_t *mmcf);
static void ngx_http_asyncx_prom_calls(ngx_http_asyncx_prom_t *pr,
    ngx_http_asyncx_metrics_main_conf_t *mmcf);
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


static ngx_str_t  ngx_http_asyncx_metrics_zone_name =
    ngx_string("asyncx_metrics");

static ngx_str_t  ngx_http_asyncx_stream_kinds[] = {
    ngx_null_string,
    ngx_string("search"),
    ngx_string("transform"),
    ngx_string("aggregate")
};

static const size_t  ngx_http_asyncx_series_size[] = {
    sizeof(ngx_http_asyncx_pool_metrics_t),
    sizeof(ngx_http_asyncx_pipeline_metrics_t),
    sizeof(ngx_http_asyncx_call_metrics_t),
    sizeof(ngx_http_asyncx_limit_metrics_t),
    sizeof(ngx_http_asyncx_stream_metrics_t)
};


/* configuration */


ngx_int_t
ngx_http_asyncx_metrics_init_main_conf(ngx_conf_t *cf,
    ngx_http_asyncx_metrics_main_conf_t *mmcf)
{
    return ngx_array_init(&mmcf->series, cf->pool, 16,
                          sizeof(ngx_http_asyncx_series_t *));
}


/*
 * The series of a pool, location, call, zone or stream kind, added when
 * new.  Two locations of the same name (in two servers) share one.
 */

ngx_http_asyncx_series_t *
ngx_http_asyncx_metrics_series(ngx_conf_t *cf, ngx_uint_t kind,
    ngx_str_t *name, ngx_str_t *call)
{
    ngx_str_t                             empty = ngx_null_string;
    ngx_uint_t                            i;
    ngx_http_asyncx_series_t            **sp, *s;
    ngx_http_asyncx_main_conf_t          *amcf;
    ngx_http_asyncx_metrics_main_conf_t  *mmcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_asyncx_module);
    mmcf = &amcf->metrics;

    if (call == NULL) {
        call = &empty;
    }

    sp = mmcf->series.elts;

    for (i = 0; i < mmcf->series.nelts; i++) {
        s = sp[i];

        if (s->kind == kind
            && s->name.len == name->len
            && ngx_strncmp(s->name.data, name->data, name->len) == 0
            && s->call.len == call->len
            && (call->len == 0
                || ngx_strncmp(s->call.data, call->data, call->len) == 0))
        {
            return s;
        }
    }

    s = ngx_pcalloc(cf->pool, sizeof(ngx_http_asyncx_series_t));
    sp = ngx_array_push(&mmcf->series);

    if (s == NULL || sp == NULL) {
        return NULL;
    }

    s->kind = kind;
    s->name = *name;
    s->call = *call;
    *sp = s;

    return s;
}


/*
 * postconfiguration: every series is known, so the zone is sized for
 * them, twice over for the series later reloads add.  The size moves in
 * 64 KiB steps only: nginx keeps a zone's contents over a reload only if
 * its size is unchanged.
 */

ngx_int_t
ngx_http_asyncx_metrics_init(ngx_conf_t *cf)
{
    size_t                                need, size;
    ngx_uint_t                            i;
    ngx_http_asyncx_series_t            **sp;
    ngx_http_asyncx_main_conf_t          *amcf;
    ngx_http_asyncx_metrics_main_conf_t  *mmcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_asyncx_module);
    mmcf = &amcf->metrics;

    for (i = 1; i < NGX_HTTP_ASYNCX_STREAM_KINDS; i++) {
        mmcf->streams[i] = ngx_http_asyncx_metrics_series(cf,
                                           NGX_HTTP_ASYNCX_SERIES_STREAM,
                                           &ngx_http_asyncx_stream_kinds[i],
                                           NULL);
        if (mmcf->streams[i] == NULL) {
            return NGX_ERROR;
        }
    }

    need = 0;
    sp = mmcf->series.elts;

    for (i = 0; i < mmcf->series.nelts; i++) {
        /* the slab allocator rounds small chunks up to a power of two */
        size = 8;

        while (size < ngx_http_asyncx_metrics_node_size(sp[i])) {
            size <<= 1;
        }

        need += size;
    }

    size = ngx_align(2 * need + NGX_HTTP_ASYNCX_METRICS_ROUND / 2,
                     NGX_HTTP_ASYNCX_METRICS_ROUND);
    size = ngx_max(size, NGX_HTTP_ASYNCX_METRICS_MIN_SIZE);

    mmcf->zone = ngx_shared_memory_add(cf, &ngx_http_asyncx_metrics_zone_name,
                                       size, &ngx_http_asyncx_module);
    if (mmcf->zone == NULL) {
        return NGX_ERROR;
    }

    if (mmcf->zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "asyncx: shared zone \"%V\" is already used",
                           &ngx_http_asyncx_metrics_zone_name);
        return NGX_ERROR;
    }

    mmcf->zone->init = ngx_http_asyncx_metrics_init_zone;
    mmcf->zone->data = mmcf;

    return NGX_OK;
}


static size_t
ngx_http_asyncx_metrics_node_size(ngx_http_asyncx_series_t *s)
{
    return ngx_align(sizeof(ngx_http_asyncx_metrics_node_t), 8)
           + ngx_http_asyncx_series_size[s->kind]
           + s->name.len + 1 + s->call.len;
}


/*
 * In the master, at start and at every reload: the series of the new
 * configuration find theirs among those the zone holds, by kind and
 * name, or get new ones.  Series the configuration dropped stay: old
 * workers may still be counting into them.
 */

static ngx_int_t
ngx_http_asyncx_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_asyncx_metrics_main_conf_t  *ommcf = data;

    u_char                               *p;
    size_t                                len;
    ngx_uint_t                            i;
    ngx_slab_pool_t                      *shpool;
    ngx_http_asyncx_series_t            **sp;
    ngx_http_asyncx_metrics_main_conf_t  *mmcf;

    mmcf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (ommcf) {
        mmcf->sh = ommcf->sh;

    } else if (shm_zone->shm.exists) {
        mmcf->sh = shpool->data;

    } else {
        mmcf->sh = ngx_slab_alloc(shpool, sizeof(ngx_queue_t));
        if (mmcf->sh == NULL) {
            return NGX_ERROR;
        }

        ngx_queue_init(mmcf->sh);
        shpool->data = mmcf->sh;

        len = sizeof(" in asyncx zone \"\"") + shm_zone->shm.name.len;

        p = ngx_slab_alloc(shpool, len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(p, " in asyncx zone \"%V\"%Z", &shm_zone->shm.name);
        shpool->log_ctx = p;
    }

    sp = mmcf->series.elts;

    for (i = 0; i < mmcf->series.nelts; i++) {
        sp[i]->sh = ngx_http_asyncx_metrics_find(mmcf->sh, sp[i]);

        if (sp[i]->sh == NULL) {
            sp[i]->sh = ngx_http_asyncx_metrics_alloc(shpool, mmcf->sh, sp[i]);
        }

        if (sp[i]->sh == NULL) {
            /* reloads added more series than the zone holds: not fatal */
            ngx_log_error(NGX_LOG_ALERT, shm_zone->shm.log, 0,
                          "asyncx: shared zone \"%V\" is full, "
                          "metrics of \"%V%s%V\" are not counted until "
                          "a restart", &shm_zone->shm.name, &sp[i]->name,
                          sp[i]->call.len ? " " : "", &sp[i]->call);
        }
    }

    return NGX_OK;
}


static void *
ngx_http_asyncx_metrics_find(ngx_queue_t *list, ngx_http_asyncx_series_t *s)
{
    size_t                           len;
    ngx_queue_t                     *q;
    ngx_http_asyncx_metrics_node_t  *node;

    len = s->name.len + 1 + s->call.len;

    for (q = ngx_queue_head(list);
         q != ngx_queue_sentinel(list);
         q = ngx_queue_next(q))
    {
        node = ngx_queue_data(q, ngx_http_asyncx_metrics_node_t, queue);

        if (node->kind == s->kind
            && node->len == len
            && ngx_memcmp(node->key, s->name.data, s->name.len) == 0
            && node->key[s->name.len] == '\0'
            && (s->call.len == 0
                || ngx_memcmp(node->key + s->name.len + 1, s->call.data,
                              s->call.len)
                   == 0))
        {
            return node->data;
        }
    }

    return NULL;
}


static void *
ngx_http_asyncx_metrics_alloc(ngx_slab_pool_t *shpool, ngx_queue_t *list,
    ngx_http_asyncx_series_t *s)
{
    u_char                          *p;
    ngx_http_asyncx_metrics_node_t  *node;

    p = ngx_slab_calloc(shpool, ngx_http_asyncx_metrics_node_size(s));
    if (p == NULL) {
        return NULL;
    }

    node = (ngx_http_asyncx_metrics_node_t *) p;
    p += ngx_align(sizeof(ngx_http_asyncx_metrics_node_t), 8);

    node->kind = s->kind;
    node->data = p;
    p += ngx_http_asyncx_series_size[s->kind];

    node->key = p;
    node->len = s->name.len + 1 + s->call.len;
    p = ngx_cpymem(p, s->name.data, s->name.len);
    *p++ = '\0';

    if (s->call.len) {
        /* no call: its data is NULL, which memcpy() must not see */
        ngx_memcpy(p, s->call.data, s->call.len);
    }

    ngx_queue_insert_tail(list, &node->queue);

    return node->data;
}


/* the hot path: a few atomic adds, no lock; NULL series are not counted */


void
ngx_http_asyncx_metrics_job(ngx_http_asyncx_series_t *s, uint64_t queued_usec,
    uint64_t run_usec)
{
    ngx_http_asyncx_pool_metrics_t  *m;

    if (s == NULL || s->sh == NULL) {
        return;
    }

    m = s->sh;

    ngx_http_asyncx_hist_observe(&m->queue_wait,
                                 NGX_HTTP_ASYNCX_HIST_QUEUE_WAIT, queued_usec);
    ngx_http_asyncx_hist_observe(&m->run, NGX_HTTP_ASYNCX_HIST_RUN, run_usec);
}


void
ngx_http_asyncx_metrics_pipeline_start(ngx_http_asyncx_series_t *s)
{
    ngx_http_asyncx_pipeline_metrics_t  *m;

    if (s == NULL || s->sh == NULL) {
        return;
    }

    m = s->sh;
    (void) ngx_atomic_fetch_add(&m->requests, 1);
}


void
ngx_http_asyncx_metrics_pipeline_end(ngx_http_asyncx_series_t *s,
    uint64_t usec, ngx_uint_t failed)
{
    ngx_http_asyncx_pipeline_metrics_t  *m;

    if (s == NULL || s->sh == NULL) {
        return;
    }

    m = s->sh;

    if (failed) {
        (void) ngx_atomic_fetch_add(&m->failed, 1);
    }

    ngx_http_asyncx_hist_observe(&m->duration, NGX_HTTP_ASYNCX_HIST_PIPELINE,
                                 usec);
}


void
ngx_http_asyncx_metrics_pipeline_aborted(ngx_http_asyncx_series_t *s)
{
    ngx_http_asyncx_pipeline_metrics_t  *m;

    if (s == NULL || s->sh == NULL) {
        return;
    }

    m = s->sh;
    (void) ngx_atomic_fetch_add(&m->aborted, 1);
}


void
ngx_http_asyncx_metrics_call_start(ngx_http_asyncx_series_t *s)
{
    ngx_http_asyncx_call_metrics_t  *m;

    if (s == NULL || s->sh == NULL) {
        return;
    }

    m = s->sh;
    (void) ngx_atomic_fetch_add(&m->requests, 1);
}


void
ngx_http_asyncx_metrics_call_end(ngx_http_asyncx_series_t *s, ngx_uint_t kind,
    uint64_t usec)
{
    ngx_http_asyncx_call_metrics_t  *m;

    if (s == NULL || s->sh == NULL) {
        return;
    }

    m = s->sh;

    if (kind != NGX_HTTP_ASYNCX_CALL_OK && kind < NGX_HTTP_ASYNCX_CALL_KINDS) {
        (void) ngx_atomic_fetch_add(&m->failures[kind], 1);
    }

    ngx_http_asyncx_hist_observe(&m->duration, NGX_HTTP_ASYNCX_HIST_CALL,
                                 usec);
}


/* from a request's arrival to its admission by a limit zone */

void
ngx_http_asyncx_metrics_limit_wait(ngx_http_asyncx_series_t *s,
    uint64_t wait_usec)
{
    ngx_http_asyncx_limit_metrics_t  *m;

    if (s == NULL || s->sh == NULL) {
        return;
    }

    m = s->sh;

    ngx_http_asyncx_hist_observe(&m->wait, NGX_HTTP_ASYNCX_HIST_LIMIT_WAIT,
                                 wait_usec);
}


void
ngx_http_asyncx_metrics_stream(ngx_uint_t mode, ngx_uint_t field,
    ngx_atomic_int_t delta)
{
    ngx_http_asyncx_series_t          *s;
    ngx_http_asyncx_main_conf_t       *amcf;
    ngx_http_asyncx_stream_metrics_t  *m;

    if (mode >= NGX_HTTP_ASYNCX_STREAM_KINDS) {
        return;
    }

    if (field == NGX_HTTP_ASYNCX_STREAM_OPEN) {
        ngx_http_asyncx_gauge_add(NGX_HTTP_ASYNCX_GAUGE_STREAM_KIND + mode,
                                  delta);
        return;
    }

    amcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_asyncx_module);
    if (amcf == NULL) {
        return;
    }

    s = amcf->metrics.streams[mode];

    if (s == NULL || s->sh == NULL) {
        return;
    }

    m = s->sh;
    (void) ngx_atomic_fetch_add(&m->field[field], delta);
}


/* the status location */


ngx_uint_t
ngx_http_asyncx_metrics_server_tokens(ngx_http_request_t *r)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    return clcf->server_tokens != NGX_HTTP_SERVER_TOKENS_OFF;
}


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


/* an Accept media range "text/plain" with "version=0.0.4" */

static ngx_int_t
ngx_http_asyncx_metrics_accept(ngx_http_request_t *r)
{
    u_char           *p, *end, *range;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len != sizeof("Accept") - 1
            || ngx_strncasecmp(h[i].key.data, (u_char *) "Accept",
                               h[i].key.len) != 0)
        {
            continue;
        }

        p = h[i].value.data;
        end = p + h[i].value.len;

        while (p < end) {
            while (p < end && (*p == ' ' || *p == ',')) {
                p++;
            }

            range = p;

            while (p < end && *p != ',') {
                p++;
            }

            if ((size_t) (p - range) >= sizeof("text/plain") - 1
                && ngx_strncasecmp(range, (u_char *) "text/plain",
                                   sizeof("text/plain") - 1) == 0
                && ngx_strlcasestrn(range, p, (u_char *) "version=0.0.4",
                                    sizeof("version=0.0.4") - 2)
                   != NULL)
            {
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
    ngx_http_asyncx_status_reclaim_dead(r);

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
    if (ngx_http_asyncx_metrics_server_tokens(pr->request)) {
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
        "Tasks refused because the pool's queue was full (answered 503)."
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

            default:
                value = ps->rejected;
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
                                "too_large, error.");

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
    static const char  *const names[] = {
        "asyncx_limit_admitted_total", "counter",
        "Requests the zone let in.", "admitted", NULL,
        "asyncx_limit_passed_total", "counter",
        "Requests let in without waiting.", "passed", NULL,
        "asyncx_limit_delayed_total", "counter",
        "Requests let in after waiting.", "delayed", NULL,
        "asyncx_limit_rejected_total", "counter",
        "Requests refused at once (429, the queue was full).",
        "rejected", NULL,
        "asyncx_limit_timed_out_total", "counter",
        "Requests that waited past the zone's timeout (503).",
        "timed_out", NULL,
        "asyncx_limit_left_total", "counter",
        "Requests whose client went away while waiting.", "left", NULL,
        "asyncx_limit_zone_full_total", "counter",
        "Requests refused because the zone's memory was full (503).",
        "zone_full", NULL,
        "asyncx_limit_reclaimed_total", "counter",
        "Places and slots taken back from workers that died.",
        "reclaimed", NULL,
        "asyncx_limit_waiting", "gauge",
        "Requests waiting for their turn.", "waiting", NULL,
        "asyncx_limit_in_flight", "gauge",
        "Requests inside the protected locations.", "concurrent", "current"
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

    for (k = 0; k < sizeof(names) / sizeof(names[0]); k += 5) {
        found = 0;

        cJSON_ArrayForEach(z, zones) {
            v = cJSON_GetObjectItemCaseSensitive(z, names[k + 3]);

            if (names[k + 4]) {
                v = cJSON_GetObjectItemCaseSensitive(v, names[k + 4]);
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
