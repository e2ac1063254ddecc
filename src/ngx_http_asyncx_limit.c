
/*
 * Copyright (C) asyncx authors
 *
 * The limiter (exercise problem 3): a token bucket and a concurrency cap
 * kept in a shared memory zone, so every worker sees the same numbers.
 * A request that cannot enter takes a ticket and waits on a timer; only
 * the oldest ticket of a key may enter, so admission is first come,
 * first served across all workers.  Slots and tickets carry the pid of
 * their worker, so those of a worker that died are reclaimed.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_limit_bucket.h"


/* how often a waiter that is not at the head of the queue looks again */
#define NGX_HTTP_ASYNCX_LIMIT_POLL      10

/* admissions per 100 ms over the last second, for current_rps */
#define NGX_HTTP_ASYNCX_LIMIT_RPS_SLOTS  10

#define NGX_HTTP_ASYNCX_LIMIT_TEST_MAX   100

/* a ticket whose request went away; 0 is a free place */
#define NGX_HTTP_ASYNCX_LIMIT_CANCELLED  -1


typedef struct {
    ngx_rbtree_t                   rbtree;
    ngx_rbtree_node_t              sentinel;
    ngx_queue_t                    lru;
    ngx_uint_t                     nodes;
    uint64_t                       admitted;
    uint64_t                       rejected;
    uint64_t                       timed_out;
    uint64_t                       reclaimed;
    uint64_t                       nomem;
    ngx_uint_t                     concurrency;  /* layout of the nodes */
    ngx_uint_t                     queue;
} ngx_http_asyncx_limit_shctx_t;


typedef struct {
    u_char                         color;
    u_char                         dummy;
    u_short                        len;
    ngx_queue_t                    queue;
    ngx_http_asyncx_bucket_t       bucket;
    ngx_uint_t                     active;
    ngx_uint_t                     waiting;
    uint64_t                       head;         /* oldest live ticket */
    uint64_t                       tail;         /* next ticket */
    ngx_msec_t                     rps_slot[NGX_HTTP_ASYNCX_LIMIT_RPS_SLOTS];
    uint32_t                       rps_count[NGX_HTTP_ASYNCX_LIMIT_RPS_SLOTS];
    /* key, then int32 ticket owners [queue], int32 slot holders [conc.] */
    u_char                         data[1];
} ngx_http_asyncx_limit_node_t;


typedef struct {
    ngx_http_asyncx_limit_shctx_t *sh;
    ngx_slab_pool_t               *shpool;
    ngx_shm_zone_t                *shm_zone;
    ngx_str_t                      name;
    uint64_t                       rate;         /* milli-r/s */
    ngx_uint_t                     burst;
    ngx_uint_t                     concurrency;  /* 0: no cap */
    ngx_uint_t                     queue;
    ngx_msec_t                     timeout;
    ngx_http_complex_value_t      *key;          /* NULL: one bucket */
} ngx_http_asyncx_limit_zone_t;


typedef enum {
    NGX_HTTP_ASYNCX_LIMIT_NEW = 0,
    NGX_HTTP_ASYNCX_LIMIT_WAITING,
    NGX_HTTP_ASYNCX_LIMIT_ADMITTED,
    NGX_HTTP_ASYNCX_LIMIT_REFUSED
} ngx_http_asyncx_limit_state_e;


struct ngx_http_asyncx_limit_ctx_s {
    ngx_http_request_t            *request;
    ngx_http_asyncx_limit_zone_t  *zone;
    ngx_http_asyncx_limit_node_t  *node;
    uint64_t                       ticket;
    ngx_int_t                      holder;       /* slot index or -1 */
    ngx_event_t                    wait;
    ngx_msec_t                     wait_start;
    uint64_t                       arrived_us;
    uint64_t                       admitted_us;
    ngx_uint_t                     state;
};


typedef struct {
    ngx_http_request_t            *sr;
    ngx_uint_t                     id;
    ngx_int_t                      status;
    uint64_t                       end_us;
} ngx_http_asyncx_limit_call_t;


struct ngx_http_asyncx_limit_test_ctx_s {
    ngx_http_asyncx_limit_zone_t  *zone;
    ngx_http_asyncx_limit_call_t  *calls;
    ngx_uint_t                     n;
    ngx_uint_t                     pending;
    uint64_t                       start_us;
};


struct ngx_http_asyncx_limit_test_conf_s {
    ngx_shm_zone_t                *zone;
    ngx_str_t                      uri;        /* empty: status handler */
};


static ngx_int_t ngx_http_asyncx_limit_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_asyncx_limit_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_asyncx_limit_acquire(
    ngx_http_asyncx_limit_ctx_t *ctx, ngx_msec_t *wait);
static ngx_http_asyncx_limit_node_t *ngx_http_asyncx_limit_lookup(
    ngx_http_asyncx_limit_zone_t *lz, ngx_str_t *key, uint32_t hash);
static void ngx_http_asyncx_limit_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static void ngx_http_asyncx_limit_admit(ngx_http_asyncx_limit_ctx_t *ctx);
static void ngx_http_asyncx_limit_release(ngx_http_asyncx_limit_ctx_t *ctx);
static ngx_uint_t ngx_http_asyncx_limit_dead(int32_t pid);
static void ngx_http_asyncx_limit_wait_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_asyncx_limit_refuse(ngx_http_request_t *r,
    ngx_http_asyncx_limit_ctx_t *ctx, ngx_uint_t status, const char *what);
static void ngx_http_asyncx_limit_cleanup(void *data);
static ngx_int_t ngx_http_asyncx_limit_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static double ngx_http_asyncx_limit_rps(ngx_http_asyncx_limit_node_t *node,
    ngx_msec_t now);
static ngx_int_t ngx_http_asyncx_limit_status_handler(ngx_http_request_t *r);
static cJSON *ngx_http_asyncx_limit_zone_json(ngx_http_asyncx_limit_zone_t *lz,
    ngx_uint_t full);
static ngx_int_t ngx_http_asyncx_limit_test_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_asyncx_limit_test_call_done(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static void ngx_http_asyncx_limit_test_done(ngx_http_request_t *r);


/* the standard filter chain link, set once at configuration time */
static ngx_http_output_body_filter_pt  ngx_http_asyncx_limit_next_body_filter;


#define ngx_http_asyncx_limit_owners(lz, node)                                \
    ((int32_t *) ((node)->data + ngx_align((node)->len, sizeof(int32_t))))

#define ngx_http_asyncx_limit_holders(lz, node)                               \
    (ngx_http_asyncx_limit_owners(lz, node) + (lz)->queue)


void
ngx_http_asyncx_limit_init_conf(ngx_http_asyncx_limit_conf_t *conf)
{
    conf->zone = NGX_CONF_UNSET_PTR;
}


char *
ngx_http_asyncx_limit_merge_conf(ngx_conf_t *cf,
    ngx_http_asyncx_limit_conf_t *prev, ngx_http_asyncx_limit_conf_t *conf)
{
    ngx_conf_merge_ptr_value(conf->zone, prev->zone, NULL);

    return NGX_CONF_OK;
}


static ngx_shm_zone_t *
ngx_http_asyncx_limit_ref(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_shm_zone_t                     **ref;
    ngx_http_asyncx_main_conf_t         *amcf;
    ngx_http_asyncx_limit_main_conf_t   *lmcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_asyncx_module);
    lmcf = &amcf->limit;

    if (lmcf->refs.elts == NULL
        && ngx_array_init(&lmcf->refs, cf->pool, 4, sizeof(ngx_shm_zone_t *))
           != NGX_OK)
    {
        return NULL;
    }

    ref = ngx_array_push(&lmcf->refs);
    if (ref == NULL) {
        return NULL;
    }

    /* size 0: a reference, sized later by asyncx_limit_zone */
    *ref = ngx_shared_memory_add(cf, name, 0, &ngx_http_asyncx_module);

    return *ref;
}


/*
 * asyncx_limit_zone zone=name:size rate=Nr/s [burst=N] [concurrency=N]
 *                   [queue=N] [timeout=time] [key=string];
 */

char *
ngx_http_asyncx_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    u_char                              *p;
    ssize_t                              size;
    ngx_str_t                           *value, name, s;
    ngx_int_t                            n;
    ngx_uint_t                           i;
    ngx_shm_zone_t                      *shm_zone, **zp;
    ngx_http_asyncx_main_conf_t         *amcf;
    ngx_http_asyncx_limit_zone_t        *lz;
    ngx_http_compile_complex_value_t     ccv;

    value = cf->args->elts;

    lz = ngx_pcalloc(cf->pool, sizeof(ngx_http_asyncx_limit_zone_t));
    if (lz == NULL) {
        return NGX_CONF_ERROR;
    }

    lz->burst = NGX_CONF_UNSET_UINT;
    lz->queue = 100;
    lz->timeout = 10000;

    size = 0;
    name.len = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {

            name.data = value[i].data + 5;
            p = (u_char *) ngx_strchr(name.data, ':');

            if (p == NULL) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid zone size \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            name.len = p - name.data;

            s.data = p + 1;
            s.len = value[i].data + value[i].len - s.data;

            size = ngx_parse_size(&s);

            if (size == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid zone size \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            if (size < (ssize_t) (8 * ngx_pagesize)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "zone \"%V\" is too small: %V, at least "
                                   "%uzk", &name, &s, 8 * ngx_pagesize / 1024);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "rate=", 5) == 0) {
            if (ngx_http_asyncx_parse_rate(value[i].data + 5,
                                           value[i].len - 5, &lz->rate)
                != NGX_OK)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid rate \"%V\", expected a positive "
                                   "number of r/s or r/m", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            n = ngx_parse_time(&s, 0);
            if (n == NGX_ERROR || n == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid timeout \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            lz->timeout = (ngx_msec_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "key=", 4) == 0) {
            lz->key = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
            if (lz->key == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
            ccv.cf = cf;
            ccv.value = &s;
            ccv.complex_value = lz->key;
            s.data = value[i].data + 4;
            s.len = value[i].len - 4;

            if (s.len == 0 || ngx_http_compile_complex_value(&ccv) != NGX_OK) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid key \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

#define ngx_http_asyncx_limit_num(prefix, field, min, max)                    \
        if (ngx_strncmp(value[i].data, prefix, sizeof(prefix) - 1) == 0) {    \
            n = ngx_atoi(value[i].data + sizeof(prefix) - 1,                  \
                         value[i].len - (sizeof(prefix) - 1));                \
            if (n == NGX_ERROR || n < (min) || n > (max)) {                   \
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,                      \
                                   "invalid value \"%V\", expected %d..%d",   \
                                   &value[i], min, max);                      \
                return NGX_CONF_ERROR;                                        \
            }                                                                 \
            lz->field = (ngx_uint_t) n;                                       \
            continue;                                                         \
        }

        ngx_http_asyncx_limit_num("burst=", burst, 1, 1000000);
        ngx_http_asyncx_limit_num("concurrency=", concurrency, 0, 100000);
        ngx_http_asyncx_limit_num("queue=", queue, 0, 100000);

#undef ngx_http_asyncx_limit_num

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"zone\" parameter",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (lz->rate == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"rate\" parameter",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (lz->burst == NGX_CONF_UNSET_UINT) {
        /* one second's worth, at least one request */
        lz->burst = ngx_max(1, (ngx_uint_t) (lz->rate / 1000));
    }

    lz->name = name;

    shm_zone = ngx_shared_memory_add(cf, &name, size, &ngx_http_asyncx_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_asyncx_limit_init_zone;
    shm_zone->data = lz;
    lz->shm_zone = shm_zone;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_asyncx_module);

    if (amcf->limit.zones.elts == NULL
        && ngx_array_init(&amcf->limit.zones, cf->pool, 4,
                          sizeof(ngx_shm_zone_t *))
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    zp = ngx_array_push(&amcf->limit.zones);
    if (zp == NULL) {
        return NGX_CONF_ERROR;
    }

    *zp = shm_zone;

    return NGX_CONF_OK;
}


/*
 * The zone keeps its state over a reload; a changed node layout (queue
 * or concurrency) cannot be reused, so the reload is refused instead.
 */

static ngx_int_t
ngx_http_asyncx_limit_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_asyncx_limit_zone_t  *olz = data;

    size_t                         len;
    ngx_http_asyncx_limit_zone_t  *lz;

    lz = shm_zone->data;
    lz->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (olz) {
        if (olz->sh->concurrency != lz->concurrency
            || olz->sh->queue != lz->queue)
        {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "asyncx_limit_zone \"%V\" was created with "
                          "concurrency=%ui queue=%ui; to change them, "
                          "rename the zone or restart nginx",
                          &shm_zone->shm.name, olz->sh->concurrency,
                          olz->sh->queue);
            return NGX_ERROR;
        }

        lz->sh = olz->sh;
        return NGX_OK;
    }

    if (shm_zone->shm.exists) {
        lz->sh = lz->shpool->data;
        return NGX_OK;
    }

    lz->sh = ngx_slab_calloc(lz->shpool,
                             sizeof(ngx_http_asyncx_limit_shctx_t));
    if (lz->sh == NULL) {
        return NGX_ERROR;
    }

    lz->shpool->data = lz->sh;

    ngx_rbtree_init(&lz->sh->rbtree, &lz->sh->sentinel,
                    ngx_http_asyncx_limit_rbtree_insert_value);
    ngx_queue_init(&lz->sh->lru);
    lz->sh->concurrency = lz->concurrency;
    lz->sh->queue = lz->queue;

    len = sizeof(" in asyncx_limit_zone \"\"") + shm_zone->shm.name.len;

    lz->shpool->log_ctx = ngx_slab_alloc(lz->shpool, len);
    if (lz->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(lz->shpool->log_ctx, " in asyncx_limit_zone \"%V\"%Z",
                &shm_zone->shm.name);

    lz->shpool->log_nomem = 0;

    return NGX_OK;
}


/* asyncx_limit name; */

char *
ngx_http_asyncx_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    ngx_str_t  *value;

    if (alcf->limit.zone != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        alcf->limit.zone = NULL;
        return NGX_CONF_OK;
    }

    alcf->limit.zone = ngx_http_asyncx_limit_ref(cf, &value[1]);
    if (alcf->limit.zone == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_asyncx_limit_init(ngx_conf_t *cf)
{
    ngx_uint_t                    i;
    ngx_shm_zone_t              **refs;
    ngx_http_handler_pt          *h;
    ngx_http_core_main_conf_t    *cmcf;
    ngx_http_asyncx_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_asyncx_module);

    refs = amcf->limit.refs.elts;

    for (i = 0; i < amcf->limit.refs.nelts; i++) {
        if (refs[i]->data == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown asyncx_limit_zone \"%V\"",
                               &refs[i]->shm.name);
            return NGX_ERROR;
        }
    }

    if (amcf->limit.refs.nelts == 0) {
        return NGX_OK;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_asyncx_limit_handler;

    ngx_http_asyncx_limit_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_asyncx_limit_body_filter;

    return NGX_OK;
}


/*
 * Subrequests share the main request's pool, so its cleanup would hold
 * their slots until the whole main request ends; a limited subrequest
 * gives its slot back when its last buffer goes through.
 */

static ngx_int_t
ngx_http_asyncx_limit_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_chain_t            *cl;
    ngx_http_asyncx_ctx_t  *actx;

    if (r != r->main) {
        actx = ngx_http_get_module_ctx(r, ngx_http_asyncx_module);

        if (actx && actx->limit
            && actx->limit->state == NGX_HTTP_ASYNCX_LIMIT_ADMITTED)
        {
            for (cl = in; cl; cl = cl->next) {
                if (cl->buf->last_in_chain || cl->buf->last_buf) {
                    ngx_http_asyncx_limit_release(actx->limit);
                    break;
                }
            }
        }
    }

    return ngx_http_asyncx_limit_next_body_filter(r, in);
}


/*
 * PREACCESS: admits, refuses or parks the request.  Subrequests pass
 * through here too, each counted on its own.
 */

static ngx_int_t
ngx_http_asyncx_limit_handler(ngx_http_request_t *r)
{
    uint32_t                       hash;
    ngx_str_t                      key;
    ngx_int_t                      rc;
    ngx_msec_t                     wait;
    ngx_pool_cleanup_t            *cln;
    ngx_http_asyncx_ctx_t         *actx;
    ngx_http_asyncx_loc_conf_t    *alcf;
    ngx_http_asyncx_limit_ctx_t   *ctx;
    ngx_http_asyncx_limit_zone_t  *lz;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_asyncx_module);

    if (alcf->limit.zone == NULL) {
        return NGX_DECLINED;
    }

    actx = ngx_http_asyncx_get_ctx(r);
    if (actx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (actx->limit) {
        /* resumed after the wait, or a location that matched again */
        return actx->limit->state == NGX_HTTP_ASYNCX_LIMIT_ADMITTED
               ? NGX_DECLINED : NGX_DONE;
    }

    lz = alcf->limit.zone->data;

    if (lz->key) {
        if (ngx_http_complex_value(r, lz->key, &key) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (key.len > 255) {
            /* like limit_req: very long keys are not limited */
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "asyncx limit: key is more than 255 bytes: \"%V\"",
                          &key);
            return NGX_DECLINED;
        }

    } else {
        ngx_str_null(&key);
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_asyncx_limit_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->zone = lz;
    ctx->holder = -1;
    ctx->arrived_us = ngx_http_asyncx_now_usec();
    ctx->wait_start = ngx_current_msec;
    actx->limit = ctx;

    cln->handler = ngx_http_asyncx_limit_cleanup;
    cln->data = ctx;

    hash = ngx_crc32_short(key.data, key.len);

    ngx_shmtx_lock(&lz->shpool->mutex);

    ctx->node = ngx_http_asyncx_limit_lookup(lz, &key, hash);

    if (ctx->node == NULL) {
        lz->sh->nomem++;
        ngx_shmtx_unlock(&lz->shpool->mutex);

        ctx->state = NGX_HTTP_ASYNCX_LIMIT_REFUSED;

        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "asyncx limit: zone \"%V\" is full, cannot add key "
                      "\"%V\"", &lz->name, &key);

        rc = ngx_http_asyncx_limit_refuse(r, ctx,
                                          NGX_HTTP_SERVICE_UNAVAILABLE,
                                          "zone is full");
        goto refused;
    }

    rc = ngx_http_asyncx_limit_acquire(ctx, &wait);

    ngx_shmtx_unlock(&lz->shpool->mutex);

    if (rc == NGX_OK) {
        return NGX_DECLINED;
    }

    if (rc == NGX_DECLINED) {
        rc = ngx_http_asyncx_limit_refuse(r, ctx, NGX_HTTP_TOO_MANY_REQUESTS,
                                          "queue is full");
        goto refused;
    }

    /* NGX_AGAIN: parked on a timer, never blocking the worker */

    ctx->wait.handler = ngx_http_asyncx_limit_wait_handler;
    ctx->wait.data = r;
    ctx->wait.log = r->connection->log;

    ngx_add_timer(&ctx->wait, ngx_min(wait, lz->timeout));

    /* the client leaving ends the wait (and the main request) */
    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "asyncx limit: zone \"%V\" ticket %uL waits, next look "
                   "in %M ms", &lz->name, ctx->ticket, wait);

    return NGX_AGAIN;

refused:

    /* the JSON error is queued: end the request here, stop the phases */
    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/*
 * Under the zone lock.  NGX_OK: admitted.  NGX_AGAIN: waiting, look again
 * in *wait ms.  NGX_DECLINED: the queue is full.
 */

static ngx_int_t
ngx_http_asyncx_limit_acquire(ngx_http_asyncx_limit_ctx_t *ctx,
    ngx_msec_t *wait)
{
    int32_t                       *owners, *holders, pid;
    ngx_uint_t                     i, place;
    ngx_msec_t                     now, need;
    ngx_http_asyncx_limit_node_t  *node;
    ngx_http_asyncx_limit_zone_t  *lz;

    lz = ctx->zone;
    node = ctx->node;
    now = ngx_current_msec;
    owners = ngx_http_asyncx_limit_owners(lz, node);
    holders = ngx_http_asyncx_limit_holders(lz, node);

    if (ctx->state == NGX_HTTP_ASYNCX_LIMIT_NEW) {

        if (node->head == node->tail) {
            /* nobody waits: a free slot and a token admit at once */
            goto try;
        }

join:

        if (node->tail - node->head >= lz->queue) {
            lz->sh->rejected++;
            ctx->state = NGX_HTTP_ASYNCX_LIMIT_REFUSED;
            return NGX_DECLINED;
        }

        ctx->ticket = node->tail++;
        owners[ctx->ticket % lz->queue] = (int32_t) ngx_pid;
        node->waiting++;
        ctx->state = NGX_HTTP_ASYNCX_LIMIT_WAITING;
    }

    /* the head moves past tickets of requests gone, or of dead workers */

    while (node->head < node->tail) {
        place = node->head % lz->queue;
        pid = owners[place];

        if (pid == NGX_HTTP_ASYNCX_LIMIT_CANCELLED) {
            owners[place] = 0;
            node->head++;
            continue;
        }

        if (pid != (int32_t) ngx_pid && ngx_http_asyncx_limit_dead(pid)) {
            owners[place] = 0;
            node->head++;
            node->waiting--;
            lz->sh->reclaimed++;
            continue;
        }

        break;
    }

    if (node->head != ctx->ticket) {
        *wait = NGX_HTTP_ASYNCX_LIMIT_POLL;
        return NGX_AGAIN;
    }

try:

    if (lz->concurrency && node->active >= lz->concurrency) {

        for (i = 0; i < lz->concurrency; i++) {
            if (holders[i] && holders[i] != (int32_t) ngx_pid
                && ngx_http_asyncx_limit_dead(holders[i]))
            {
                ngx_log_error(NGX_LOG_WARN, ctx->request->connection->log, 0,
                              "asyncx limit: zone \"%V\" reclaims a slot "
                              "of exited worker %D", &lz->name, holders[i]);
                holders[i] = 0;
                node->active--;
                lz->sh->reclaimed++;
            }
        }

        if (node->active >= lz->concurrency) {
            if (ctx->state == NGX_HTTP_ASYNCX_LIMIT_NEW) {
                goto join;
            }

            *wait = NGX_HTTP_ASYNCX_LIMIT_POLL;
            return NGX_AGAIN;
        }
    }

    need = ngx_http_asyncx_bucket_take(&node->bucket, lz->rate, lz->burst,
                                       now);
    if (need) {
        if (ctx->state == NGX_HTTP_ASYNCX_LIMIT_NEW) {
            goto join;
        }

        *wait = need;
        return NGX_AGAIN;
    }

    if (ctx->state == NGX_HTTP_ASYNCX_LIMIT_WAITING) {
        owners[ctx->ticket % lz->queue] = 0;
        node->head++;
        node->waiting--;
    }

    ngx_http_asyncx_limit_admit(ctx);

    return NGX_OK;
}


static void
ngx_http_asyncx_limit_admit(ngx_http_asyncx_limit_ctx_t *ctx)
{
    int32_t                       *holders;
    ngx_uint_t                     i, slot;
    ngx_msec_t                     now;
    ngx_http_asyncx_limit_node_t  *node;
    ngx_http_asyncx_limit_zone_t  *lz;

    lz = ctx->zone;
    node = ctx->node;
    now = ngx_current_msec;

    node->active++;
    lz->sh->admitted++;

    if (lz->concurrency) {
        holders = ngx_http_asyncx_limit_holders(lz, node);

        for (i = 0; i < lz->concurrency; i++) {
            if (holders[i] == 0) {
                holders[i] = (int32_t) ngx_pid;
                ctx->holder = i;
                break;
            }
        }
    }

    slot = (now / 100) % NGX_HTTP_ASYNCX_LIMIT_RPS_SLOTS;

    if (node->rps_slot[slot] != now / 100) {
        node->rps_slot[slot] = now / 100;
        node->rps_count[slot] = 0;
    }

    node->rps_count[slot]++;

    ctx->state = NGX_HTTP_ASYNCX_LIMIT_ADMITTED;
    ctx->admitted_us = ngx_http_asyncx_now_usec();
}


/* the limit_req recipe: rbtree by key, LRU queue, expire idle, retry */

static ngx_http_asyncx_limit_node_t *
ngx_http_asyncx_limit_lookup(ngx_http_asyncx_limit_zone_t *lz, ngx_str_t *key,
    uint32_t hash)
{
    size_t                         size;
    ngx_int_t                      rc;
    ngx_uint_t                     n;
    ngx_queue_t                   *q;
    ngx_rbtree_node_t             *node, *sentinel;
    ngx_http_asyncx_limit_node_t  *ln;

    node = lz->sh->rbtree.root;
    sentinel = lz->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        ln = (ngx_http_asyncx_limit_node_t *) &node->color;

        rc = ngx_memn2cmp(key->data, ln->data, key->len, (size_t) ln->len);

        if (rc == 0) {
            ngx_queue_remove(&ln->queue);
            ngx_queue_insert_head(&lz->sh->lru, &ln->queue);
            return ln;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_http_asyncx_limit_node_t, data)
           + ngx_align(key->len, sizeof(int32_t))
           + (lz->queue + lz->concurrency) * sizeof(int32_t);

    node = ngx_slab_calloc_locked(lz->shpool, size);

    for (n = 0; node == NULL && n < 3; n++) {

        /* expire the least recently used key that nobody uses */

        if (ngx_queue_empty(&lz->sh->lru)) {
            break;
        }

        q = ngx_queue_last(&lz->sh->lru);
        ln = ngx_queue_data(q, ngx_http_asyncx_limit_node_t, queue);

        if (ln->active || ln->head != ln->tail) {
            break;
        }

        ngx_queue_remove(q);
        ngx_rbtree_delete(&lz->sh->rbtree, (ngx_rbtree_node_t *)
                          ((u_char *) ln - offsetof(ngx_rbtree_node_t, color)));
        ngx_slab_free_locked(lz->shpool, (u_char *) ln
                             - offsetof(ngx_rbtree_node_t, color));
        lz->sh->nodes--;

        node = ngx_slab_calloc_locked(lz->shpool, size);
    }

    if (node == NULL) {
        return NULL;
    }

    ln = (ngx_http_asyncx_limit_node_t *) &node->color;

    node->key = hash;
    ln->len = (u_short) key->len;
    ngx_memcpy(ln->data, key->data, key->len);

    ngx_http_asyncx_bucket_init(&ln->bucket, lz->burst, ngx_current_msec);

    ngx_rbtree_insert(&lz->sh->rbtree, node);
    ngx_queue_insert_head(&lz->sh->lru, &ln->queue);
    lz->sh->nodes++;

    return ln;
}


static void
ngx_http_asyncx_limit_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t             **p;
    ngx_http_asyncx_limit_node_t   *ln, *lnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            ln = (ngx_http_asyncx_limit_node_t *) &node->color;
            lnt = (ngx_http_asyncx_limit_node_t *) &temp->color;

            p = (ngx_memn2cmp(ln->data, lnt->data, ln->len, lnt->len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_uint_t
ngx_http_asyncx_limit_dead(int32_t pid)
{
    return pid > 0 && kill((ngx_pid_t) pid, 0) == -1 && ngx_errno == NGX_ESRCH;
}


static void
ngx_http_asyncx_limit_wait_handler(ngx_event_t *ev)
{
    ngx_int_t                      rc;
    ngx_msec_t                     wait, waited;
    ngx_connection_t              *c;
    ngx_http_request_t            *r;
    ngx_http_asyncx_ctx_t         *actx;
    ngx_http_asyncx_limit_ctx_t   *ctx;
    ngx_http_asyncx_limit_zone_t  *lz;

    r = ev->data;
    c = r->connection;
    actx = ngx_http_get_module_ctx(r, ngx_http_asyncx_module);
    ctx = actx->limit;
    lz = ctx->zone;

    ngx_http_set_log_request(c->log, r);

    waited = ngx_current_msec - ctx->wait_start;

    ngx_shmtx_lock(&lz->shpool->mutex);

    rc = ngx_http_asyncx_limit_acquire(ctx, &wait);

    if (rc == NGX_AGAIN && waited >= lz->timeout) {
        /* give the place up: cleanup must not cancel it twice */
        ngx_http_asyncx_limit_owners(lz, ctx->node)[ctx->ticket % lz->queue]
            = NGX_HTTP_ASYNCX_LIMIT_CANCELLED;
        ctx->node->waiting--;
        lz->sh->timed_out++;
        ctx->state = NGX_HTTP_ASYNCX_LIMIT_REFUSED;
        rc = NGX_DECLINED;
    }

    ngx_shmtx_unlock(&lz->shpool->mutex);

    if (rc == NGX_AGAIN) {
        ngx_add_timer(ev, ngx_min(wait, lz->timeout - waited));
        return;
    }

    r->read_event_handler = ngx_http_block_reading;

    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r, ngx_http_asyncx_limit_refuse(r, ctx,
                                           NGX_HTTP_SERVICE_UNAVAILABLE,
                                           "waited longer than the timeout"));
        ngx_http_run_posted_requests(c);
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "asyncx limit: zone \"%V\" admits after %M ms",
                   &lz->name, waited);

    r->write_event_handler = ngx_http_core_run_phases;

    if (ngx_http_post_request(r, NULL) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    ngx_http_run_posted_requests(c);
}


/* 429 or 503 with Retry-After and the shared JSON error */

static ngx_int_t
ngx_http_asyncx_limit_refuse(ngx_http_request_t *r,
    ngx_http_asyncx_limit_ctx_t *ctx, ngx_uint_t status, const char *what)
{
    ngx_http_asyncx_limit_zone_t  *lz;

    lz = ctx->zone;

    /* one token takes 1000 / rate seconds (rate in milli-r/s), rounded up */
    if (ngx_http_asyncx_set_retry_after(r,
                                  (time_t) ((1000 + lz->rate - 1) / lz->rate))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_asyncx_send_error(r, status, NGX_LOG_WARN,
                                      "limited by zone \"%V\": %s",
                                      &lz->name, what);
}


static void
ngx_http_asyncx_limit_cleanup(void *data)
{
    ngx_http_asyncx_limit_ctx_t *ctx = data;

    ngx_http_asyncx_limit_zone_t  *lz;

    if (ctx->wait.timer_set) {
        ngx_del_timer(&ctx->wait);
    }

    lz = ctx->zone;

    if (ctx->state == NGX_HTTP_ASYNCX_LIMIT_WAITING) {
        ngx_shmtx_lock(&lz->shpool->mutex);
        ngx_http_asyncx_limit_owners(lz, ctx->node)[ctx->ticket % lz->queue]
            = NGX_HTTP_ASYNCX_LIMIT_CANCELLED;
        ctx->node->waiting--;
        ngx_shmtx_unlock(&lz->shpool->mutex);

        ngx_log_error(NGX_LOG_INFO, ctx->request->connection->log, 0,
                      "asyncx limit: zone \"%V\": request left the queue",
                      &lz->name);

    } else if (ctx->state == NGX_HTTP_ASYNCX_LIMIT_ADMITTED) {
        ngx_http_asyncx_limit_release(ctx);
    }
}


static void
ngx_http_asyncx_limit_release(ngx_http_asyncx_limit_ctx_t *ctx)
{
    ngx_http_asyncx_limit_zone_t  *lz;

    lz = ctx->zone;

    ngx_shmtx_lock(&lz->shpool->mutex);

    if (ctx->holder >= 0) {
        ngx_http_asyncx_limit_holders(lz, ctx->node)[ctx->holder] = 0;
    }

    if (ctx->node->active) {
        ctx->node->active--;
    }

    ngx_shmtx_unlock(&lz->shpool->mutex);

    ctx->state = NGX_HTTP_ASYNCX_LIMIT_REFUSED;
}


static double
ngx_http_asyncx_limit_rps(ngx_http_asyncx_limit_node_t *node, ngx_msec_t now)
{
    ngx_uint_t  i, n;

    n = 0;

    for (i = 0; i < NGX_HTTP_ASYNCX_LIMIT_RPS_SLOTS; i++) {
        if (now / 100 - node->rps_slot[i] < NGX_HTTP_ASYNCX_LIMIT_RPS_SLOTS) {
            n += node->rps_count[i];
        }
    }

    /* admissions in the last 10 slots of 100 ms */
    return (double) n;
}


/* asyncx_limit_status name; */

char *
ngx_http_asyncx_limit_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                          *value;
    ngx_http_core_loc_conf_t           *clcf;
    ngx_http_asyncx_limit_test_conf_t  *tcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler != NULL) {
        return "is duplicate: the location already has a content handler";
    }

    value = cf->args->elts;

    tcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_asyncx_limit_test_conf_t));
    if (tcf == NULL) {
        return NGX_CONF_ERROR;
    }

    tcf->zone = ngx_http_asyncx_limit_ref(cf, &value[1]);
    if (tcf->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {
        tcf->uri = value[2];

        if (tcf->uri.len == 0 || tcf->uri.data[0] != '/') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid uri \"%V\", expected a location "
                               "path starting with \"/\"", &tcf->uri);
            return NGX_CONF_ERROR;
        }

        clcf->handler = ngx_http_asyncx_limit_test_handler;

    } else {
        clcf->handler = ngx_http_asyncx_limit_status_handler;
    }

    /* the content handler finds its zone through the location's conf */
    ((ngx_http_asyncx_loc_conf_t *) conf)->limit.test = tcf;
    (void) cmd;

    return NGX_CONF_OK;
}


char *
ngx_http_asyncx_limit_test(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    return ngx_http_asyncx_limit_status(cf, cmd, conf);
}


/* one zone's live numbers, copied under the lock, formatted after it */

static cJSON *
ngx_http_asyncx_limit_zone_json(ngx_http_asyncx_limit_zone_t *lz,
    ngx_uint_t full)
{
    cJSON                          *root, *o;
    double                          rps;
    uint64_t                        admitted, rejected, timed_out, reclaimed;
    ngx_uint_t                      active, waiting, keys;
    ngx_queue_t                    *q;
    ngx_msec_t                      now;
    ngx_http_asyncx_limit_node_t   *ln;

    now = ngx_current_msec;
    active = 0;
    waiting = 0;
    rps = 0;

    ngx_shmtx_lock(&lz->shpool->mutex);

    for (q = ngx_queue_head(&lz->sh->lru);
         q != ngx_queue_sentinel(&lz->sh->lru);
         q = ngx_queue_next(q))
    {
        ln = ngx_queue_data(q, ngx_http_asyncx_limit_node_t, queue);
        active += ln->active;
        waiting += ln->waiting;
        rps += ngx_http_asyncx_limit_rps(ln, now);
    }

    keys = lz->sh->nodes;
    admitted = lz->sh->admitted;
    rejected = lz->sh->rejected;
    timed_out = lz->sh->timed_out;
    reclaimed = lz->sh->reclaimed;

    ngx_shmtx_unlock(&lz->shpool->mutex);

    root = cJSON_CreateObject();
    if (root == NULL) {
        return NULL;
    }

    o = cJSON_AddObjectToObject(root, "concurrent");
    if (o == NULL
        || cJSON_AddNumberToObject(o, "current", (double) active) == NULL
        || cJSON_AddNumberToObject(o, "max", (double) lz->concurrency) == NULL)
    {
        goto failed;
    }

    o = cJSON_AddObjectToObject(root, "rate");
    if (o == NULL
        || cJSON_AddNumberToObject(o, "current_rps", rps) == NULL
        || cJSON_AddNumberToObject(o, "max_rps", (double) lz->rate / 1000)
           == NULL
        || cJSON_AddNumberToObject(root, "waiting", (double) waiting) == NULL)
    {
        goto failed;
    }

    if (full
        && (cJSON_AddNumberToObject(root, "burst", (double) lz->burst) == NULL
            || cJSON_AddNumberToObject(root, "queue", (double) lz->queue)
               == NULL
            || cJSON_AddNumberToObject(root, "keys", (double) keys) == NULL
            || cJSON_AddNumberToObject(root, "admitted", (double) admitted)
               == NULL
            || cJSON_AddNumberToObject(root, "rejected", (double) rejected)
               == NULL
            || cJSON_AddNumberToObject(root, "timed_out", (double) timed_out)
               == NULL
            || cJSON_AddNumberToObject(root, "reclaimed", (double) reclaimed)
               == NULL))
    {
        goto failed;
    }

    return root;

failed:

    cJSON_Delete(root);
    return NULL;
}


static ngx_int_t
ngx_http_asyncx_limit_status_handler(ngx_http_request_t *r)
{
    cJSON                       *root;
    ngx_int_t                    rc;
    ngx_http_asyncx_loc_conf_t  *alcf;

    if (ngx_http_asyncx_get_only(r, &rc) != NGX_OK) {
        return rc;
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_asyncx_module);

    root = ngx_http_asyncx_limit_zone_json(alcf->limit.test->zone->data, 0);
    if (root == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_asyncx_send_cjson(r, NGX_HTTP_OK, root);
    cJSON_Delete(root);

    return rc;
}


ngx_int_t
ngx_http_asyncx_limit_status_all(ngx_http_request_t *r, cJSON *root)
{
    u_char                         name[256];
    cJSON                         *zones, *z;
    ngx_uint_t                     i;
    ngx_shm_zone_t               **zp;
    ngx_http_asyncx_main_conf_t   *amcf;
    ngx_http_asyncx_limit_zone_t  *lz;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_asyncx_module);

    zones = cJSON_AddObjectToObject(root, "limit_zones");
    if (zones == NULL) {
        return NGX_ERROR;
    }

    zp = amcf->limit.zones.elts;

    for (i = 0; i < amcf->limit.zones.nelts; i++) {
        lz = zp[i]->data;

        z = ngx_http_asyncx_limit_zone_json(lz, 1);
        if (z == NULL) {
            return NGX_ERROR;
        }

        /* the zone name is not NUL-terminated in the configuration */
        ngx_cpystrn(name, lz->name.data,
                    ngx_min(lz->name.len + 1, sizeof(name)));
        cJSON_AddItemToObject(zones, (char *) name, z);
    }

    return NGX_OK;
}


/*
 * GET /rate-limit-test?requests=N: N subrequests at once through the
 * zone, each recording when it was admitted and when it ended.
 */

static ngx_int_t
ngx_http_asyncx_limit_test_handler(ngx_http_request_t *r)
{
    u_char                            *p;
    uint64_t                           n;
    ngx_int_t                          rc;
    ngx_str_t                          args;
    ngx_uint_t                         i;
    ngx_http_request_t                *sr;
    ngx_http_asyncx_ctx_t             *actx;
    ngx_http_asyncx_loc_conf_t        *alcf;
    ngx_http_post_subrequest_t        *ps;
    ngx_http_asyncx_limit_test_ctx_t  *tctx;

    if (ngx_http_asyncx_get_only(r, &rc) != NGX_OK) {
        return rc;
    }

    n = 10;

    if (ngx_http_asyncx_arg_uint(r, "requests", 1,
                                 NGX_HTTP_ASYNCX_LIMIT_TEST_MAX, &n)
        == NGX_ERROR)
    {
        return ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          NGX_LOG_INFO,
                                          "requests must be an integer "
                                          "between 1 and %d",
                                          NGX_HTTP_ASYNCX_LIMIT_TEST_MAX);
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_asyncx_module);

    tctx = ngx_pcalloc(r->pool, sizeof(ngx_http_asyncx_limit_test_ctx_t));
    if (tctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    tctx->calls = ngx_pcalloc(r->pool,
                              n * sizeof(ngx_http_asyncx_limit_call_t));
    if (tctx->calls == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    tctx->zone = alcf->limit.test->zone->data;
    tctx->n = (ngx_uint_t) n;
    tctx->start_us = ngx_http_asyncx_now_usec();

    actx = ngx_http_asyncx_get_ctx(r);
    if (actx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    actx->limit_test = tctx;

    for (i = 0; i < tctx->n; i++) {
        ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
        if (ps == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ps->handler = ngx_http_asyncx_limit_test_call_done;
        ps->data = &tctx->calls[i];

        p = ngx_pnalloc(r->pool, sizeof("id=") + NGX_INT_T_LEN);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        args.data = p;
        args.len = ngx_sprintf(p, "id=%ui", i + 1) - p;

        tctx->calls[i].id = i + 1;

        if (ngx_http_subrequest(r, &alcf->limit.test->uri, &args, &sr, ps,
                                NGX_HTTP_SUBREQUEST_IN_MEMORY
                                |NGX_HTTP_SUBREQUEST_WAITED)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        tctx->calls[i].sr = sr;
        tctx->pending++;

        /* whichever call is active sees the client leave */
        sr->read_event_handler = ngx_http_test_reading;
    }

    r->write_event_handler = ngx_http_asyncx_limit_test_done;

    /* a client that leaves ends every call: their cleanups free slots */
    r->read_event_handler = ngx_http_test_reading;
    r->main->count++;

    return NGX_DONE;
}


static ngx_int_t
ngx_http_asyncx_limit_test_call_done(ngx_http_request_t *sr, void *data,
    ngx_int_t rc)
{
    ngx_http_asyncx_limit_call_t *call = data;

    ngx_http_asyncx_ctx_t             *actx;
    ngx_http_asyncx_limit_test_ctx_t  *tctx;

    if (call->end_us) {
        return rc;
    }

    call->end_us = ngx_http_asyncx_now_usec();
    call->status = sr->headers_out.status ? (ngx_int_t) sr->headers_out.status
                                          : rc;

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE && call->status < 300) {
        call->status = rc;
    }

    actx = ngx_http_get_module_ctx(sr->parent, ngx_http_asyncx_module);
    tctx = actx->limit_test;
    tctx->pending--;

    return rc;
}


static void
ngx_http_asyncx_limit_test_done(ngx_http_request_t *r)
{
    u_char                             text[256], *p;
    cJSON                             *root, *results, *o;
    uint64_t                           now, start;
    ngx_int_t                          rc;
    ngx_uint_t                         i;
    ngx_http_asyncx_ctx_t             *actx;
    ngx_http_asyncx_limit_ctx_t       *lctx;
    ngx_http_asyncx_limit_test_ctx_t  *tctx;
    ngx_http_asyncx_limit_zone_t      *lz;

    actx = ngx_http_get_module_ctx(r, ngx_http_asyncx_module);
    tctx = actx->limit_test;

    if (tctx->pending) {
        return;
    }

    now = ngx_http_asyncx_now_usec();
    lz = tctx->zone;

    root = cJSON_CreateObject();
    if (root == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cJSON_AddNumberToObject(root, "total_requests", (double) tctx->n);
    cJSON_AddNumberToObject(root, "max_concurrent", (double) lz->concurrency);
    cJSON_AddNumberToObject(root, "max_per_second", (double) lz->rate / 1000);

    results = cJSON_AddArrayToObject(root, "results");

    for (i = 0; results && i < tctx->n; i++) {
        o = cJSON_CreateObject();
        if (o == NULL) {
            break;
        }

        cJSON_AddItemToArray(results, o);
        cJSON_AddNumberToObject(o, "id", (double) tctx->calls[i].id);
        cJSON_AddNumberToObject(o, "status", (double) tctx->calls[i].status);

        actx = ngx_http_get_module_ctx(tctx->calls[i].sr,
                                       ngx_http_asyncx_module);
        lctx = actx ? actx->limit : NULL;

        if (lctx && lctx->admitted_us) {
            start = lctx->admitted_us - tctx->start_us;
            ngx_http_asyncx_cjson_add_seconds(o, "waited",
                                    lctx->admitted_us - lctx->arrived_us, 2);
            cJSON_AddNumberToObject(o, "waited_ms",
                ngx_http_asyncx_usec_to_ms(lctx->admitted_us
                                           - lctx->arrived_us));
            ngx_http_asyncx_cjson_add_seconds(o, "start", start, 2);
            cJSON_AddNumberToObject(o, "start_ms",
                                    ngx_http_asyncx_usec_to_ms(start));

        } else {
            cJSON_AddNullToObject(o, "waited");
            cJSON_AddNullToObject(o, "start");
        }

        ngx_http_asyncx_cjson_add_seconds(o, "end",
                                    tctx->calls[i].end_us - tctx->start_us, 2);
        cJSON_AddNumberToObject(o, "end_ms",
            ngx_http_asyncx_usec_to_ms(tctx->calls[i].end_us - tctx->start_us));
    }

    ngx_http_asyncx_cjson_add_seconds(root, "total_time",
                                      now - tctx->start_us, 1);
    cJSON_AddNumberToObject(root, "total_time_ms",
                            ngx_http_asyncx_usec_to_ms(now - tctx->start_us));

    /* "동시 3개 제한 + 초당 5개 제한으로 약 2.0초 소요" */
    p = ngx_snprintf(text, sizeof(text) - 1,
                     "\xeb\x8f\x99\xec\x8b\x9c %ui\xea\xb0\x9c \xec\xa0\x9c"
                     "\xed\x95\x9c + \xec\xb4\x88\xeb\x8b\xb9 ",
                     lz->concurrency);

    if (lz->rate % 1000 == 0) {
        p = ngx_snprintf(p, text + sizeof(text) - 1 - p, "%uL",
                         lz->rate / 1000);

    } else {
        p = ngx_snprintf(p, text + sizeof(text) - 1 - p, "%.1f",
                         (double) lz->rate / 1000);
    }

    p = ngx_snprintf(p, text + sizeof(text) - 1 - p,
                     "\xea\xb0\x9c \xec\xa0\x9c\xed\x95\x9c\xec\x9c\xbc"
                     "\xeb\xa1\x9c \xec\x95\xbd %.1f\xec\xb4\x88 \xec\x86"
                     "\x8c\xec\x9a\x94",
                     (double) (now - tctx->start_us) / 1000000);
    *p = '\0';

    cJSON_AddStringToObject(root, "\xec\x84\xa4\xeb\xaa\x85", (char *) text);

    rc = ngx_http_asyncx_send_cjson(r, NGX_HTTP_OK, root);
    cJSON_Delete(root);

    ngx_http_finalize_request(r, rc);
}
