
/*
 * Copyright (C) asyncx authors
 *
 * Labelled metrics in a shared zone: series registered at configuration,
 * observed by the subsystems.  A leaf: metrics_prom.c renders them.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx.h"


#define NGX_HTTP_ASYNCX_METRICS_MIN_SIZE  (128 * 1024)
#define NGX_HTTP_ASYNCX_METRICS_ROUND     (64 * 1024)


typedef struct {
    ngx_queue_t                    queue;
    ngx_uint_t                     kind;
    size_t                         len;
    u_char                        *key;      /* name, '\0', call */
    void                          *data;
} ngx_http_asyncx_metrics_node_t;


static ngx_int_t ngx_http_asyncx_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void *ngx_http_asyncx_metrics_find(ngx_queue_t *list,
    ngx_http_asyncx_series_t *s);
static void *ngx_http_asyncx_metrics_alloc(ngx_slab_pool_t *shpool,
    ngx_queue_t *list, ngx_http_asyncx_series_t *s);
static size_t ngx_http_asyncx_metrics_node_size(ngx_http_asyncx_series_t *s);


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
