
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


#include "ngx_http_asyncx_limit_zone.h"


#define NGX_HTTP_ASYNCX_LIMIT_VAR_STATUS  0
#define NGX_HTTP_ASYNCX_LIMIT_VAR_WAIT    1


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
static ngx_int_t ngx_http_asyncx_limit_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_asyncx_limit_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);


/* the standard filter chain link, set once at configuration time */
static ngx_http_output_body_filter_pt  ngx_http_asyncx_limit_next_body_filter;


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


ngx_shm_zone_t *
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

    if (actx->limit == NULL) {
        /*
         * An internal redirect (try_files, error_page, index) clears the
         * module context but not the request's pool cleanups: find the
         * admission this request already holds.  Like limit_req, a
         * request is limited once, by the first zone it meets; otherwise
         * it would wait for its own slot.
         */
        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_asyncx_limit_cleanup
                && ((ngx_http_asyncx_limit_ctx_t *) cln->data)->request == r)
            {
                /* keeps $asyncx_limit_* and the slot with the request */
                actx->limit = cln->data;
                return NGX_DECLINED;
            }
        }
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
    ngx_http_asyncx_watch_client(r);
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
        ctx->waited = 1;
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
    ctx->decided_us = ctx->admitted_us;
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
    if (key->len) {
        /* without key= the key is empty and its data NULL (UB for memcpy) */
        ngx_memcpy(ln->data, key->data, key->len);
    }

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
        ctx->timed_out = 1;
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
    ctx->decided_us = ngx_http_asyncx_now_usec();

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


/*
 * $asyncx_limit_status and $asyncx_limit_wait, for access logs: what the
 * limiter decided for this request and how long it waited for it.  Not
 * found when no asyncx_limit applied (or the request left while waiting).
 */

static ngx_http_variable_t  ngx_http_asyncx_limit_vars[] = {

    { ngx_string("asyncx_limit_status"), NULL,
      ngx_http_asyncx_limit_variable, NGX_HTTP_ASYNCX_LIMIT_VAR_STATUS,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("asyncx_limit_wait"), NULL,
      ngx_http_asyncx_limit_variable, NGX_HTTP_ASYNCX_LIMIT_VAR_WAIT,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_asyncx_limit_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_asyncx_limit_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_http_asyncx_limit_ctx_t *
ngx_http_asyncx_limit_decided_ctx(ngx_http_request_t *r)
{
    ngx_http_asyncx_ctx_t  *actx;

    actx = ngx_http_get_module_ctx(r, ngx_http_asyncx_module);

    if (actx == NULL || actx->limit == NULL || actx->limit->decided_us == 0) {
        return NULL;
    }

    return actx->limit;
}


static ngx_int_t
ngx_http_asyncx_limit_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                       *p;
    uint64_t                      ms;
    ngx_http_asyncx_limit_ctx_t  *ctx;

    ctx = ngx_http_asyncx_limit_decided_ctx(r);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    if (data == NGX_HTTP_ASYNCX_LIMIT_VAR_STATUS) {
        p = (u_char *) (ctx->admitted_us
                        ? (ctx->waited ? "DELAYED" : "PASSED")
                        : (ctx->timed_out ? "TIMEOUT" : "REJECTED"));
        v->len = ngx_strlen(p);
        v->data = p;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN + 4);
    if (p == NULL) {
        return NGX_ERROR;
    }

    /* seconds with milliseconds, the format of $request_time */
    ms = (ctx->decided_us - ctx->arrived_us) / 1000;

    v->len = ngx_sprintf(p, "%uL.%03uL", ms / 1000, ms % 1000) - p;
    v->data = p;

    return NGX_OK;
}


double
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
