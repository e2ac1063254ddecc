
/*
 * Copyright (C) asyncx authors
 *
 * The limiter (exercise problem 3): token buckets and concurrency caps in
 * shared memory zones, so every worker sees the same numbers.  This file
 * admits, parks and refuses requests; _limit_conf.c has the directives
 * and the zone's life (creation, reload, worker start and exit).  A request
 * goes through each zone of its location in the order the zones were
 * declared; in each it enters at once, waits in the key's FIFO (on a
 * timer and wake-ups, never blocking the worker), or is refused.  The
 * queue itself is ngx_http_asyncx_limit_queue.c (pure); the wake-ups are
 * ngx_http_asyncx_limit_wake.c.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_http.h"
#include "ngx_http_asyncx_conf.h"
#include "ngx_http_asyncx_limit_zone.h"

#include <openssl/evp.h>


#define NGX_HTTP_ASYNCX_LIMIT_VAR_STATUS  0
#define NGX_HTTP_ASYNCX_LIMIT_VAR_WAIT    1

/* a full zone's alert: at most one per zone and worker this often */
#define NGX_HTTP_ASYNCX_LIMIT_FULL_LOG    60000


static ngx_int_t ngx_http_asyncx_limit_handler(ngx_http_request_t *r);
static ngx_http_asyncx_limit_ctx_t *ngx_http_asyncx_limit_find(
    ngx_http_request_t *r);
static ngx_uint_t ngx_http_asyncx_limit_held_by_main(ngx_http_request_t *r,
    ngx_http_asyncx_limit_zone_t *lz);
static ngx_http_asyncx_limit_ctx_t *ngx_http_asyncx_limit_create(
    ngx_http_request_t *r, ngx_http_asyncx_limit_conf_t *lcf);
static ngx_int_t ngx_http_asyncx_limit_run(ngx_http_request_t *r,
    ngx_http_asyncx_limit_ctx_t *ctx);
static ngx_int_t ngx_http_asyncx_limit_arrive(
    ngx_http_asyncx_limit_ctx_t *ctx, ngx_http_asyncx_limit_pass_t *pass);
static ngx_int_t ngx_http_asyncx_limit_stored_key(ngx_http_request_t *r,
    ngx_str_t *key, u_char *digest, ngx_str_t *stored);
static void ngx_http_asyncx_limit_log_full(ngx_http_request_t *r,
    ngx_http_asyncx_limit_zone_t *lz, ngx_str_t *key);
static ngx_str_t *ngx_http_asyncx_limit_log_key(ngx_http_request_t *r,
    ngx_str_t *key);
static ngx_int_t ngx_http_asyncx_limit_recheck(
    ngx_http_asyncx_limit_ctx_t *ctx, ngx_http_asyncx_limit_pass_t *pass);
static void ngx_http_asyncx_limit_park(ngx_http_request_t *r,
    ngx_http_asyncx_limit_ctx_t *ctx);
static void ngx_http_asyncx_limit_unpark(ngx_http_asyncx_limit_ctx_t *ctx);
static void ngx_http_asyncx_limit_wait_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_asyncx_limit_refuse(ngx_http_request_t *r,
    ngx_http_asyncx_limit_ctx_t *ctx, ngx_http_asyncx_limit_zone_t *lz,
    const char *what);
static void ngx_http_asyncx_limit_release(ngx_http_asyncx_limit_ctx_t *ctx);
static void ngx_http_asyncx_limit_cleanup(void *data);
static ngx_http_asyncx_limit_node_t *ngx_http_asyncx_limit_lookup(
    ngx_http_asyncx_limit_zone_t *lz, ngx_str_t *key, ngx_uint_t hashed,
    uint32_t hash);
static void *ngx_http_asyncx_limit_alloc(ngx_http_asyncx_limit_zone_t *lz,
    ngx_http_asyncx_limit_node_t *except);
static ngx_int_t ngx_http_asyncx_limit_evict(ngx_http_asyncx_limit_zone_t *lz,
    ngx_http_asyncx_limit_node_t *except);
static ngx_int_t ngx_http_asyncx_limit_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_asyncx_limit_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_asyncx_limit_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static void ngx_http_asyncx_limit_subrequest_done(ngx_http_request_t *r);


/* in a log line, a key that could not be escaped (no memory) */
static ngx_str_t  ngx_http_asyncx_limit_no_key = ngx_string("(not logged)");


/* the standard filter chain links, set once at configuration time */
static ngx_http_output_header_filter_pt
    ngx_http_asyncx_limit_next_header_filter;
static ngx_http_output_body_filter_pt
    ngx_http_asyncx_limit_next_body_filter;


static const char  *ngx_http_asyncx_limit_outcomes[] = {
    "", "PASSED", "DELAYED", "DELAYED_DRY_RUN", "REJECTED_DRY_RUN",
    "REJECTED", "TIMEOUT"
};


ngx_int_t
ngx_http_asyncx_limit_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt          *h;
    ngx_http_core_main_conf_t    *cmcf;
    ngx_http_asyncx_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_asyncx_module);

    if (amcf->limit.refs.nelts == 0) {
        return NGX_OK;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_asyncx_limit_handler;

    ngx_http_asyncx_limit_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_asyncx_limit_header_filter;

    ngx_http_asyncx_limit_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_asyncx_limit_body_filter;

    return NGX_OK;
}


/*
 * Subrequests share the main request's pool, so its cleanup would hold
 * their slots until the whole main request ends; a limited subrequest
 * gives its slots back when its last buffer goes through, or, when it
 * has no body to send (auth_request's header-only subrequests), when its
 * header does.
 */

static ngx_int_t
ngx_http_asyncx_limit_header_filter(ngx_http_request_t *r)
{
    if (r != r->main && r->header_only) {
        ngx_http_asyncx_limit_subrequest_done(r);
    }

    return ngx_http_asyncx_limit_next_header_filter(r);
}


static ngx_int_t
ngx_http_asyncx_limit_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_chain_t  *cl;

    if (r != r->main) {
        for (cl = in; cl; cl = cl->next) {
            if (cl->buf->last_in_chain || cl->buf->last_buf) {
                ngx_http_asyncx_limit_subrequest_done(r);
                break;
            }
        }
    }

    return ngx_http_asyncx_limit_next_body_filter(r, in);
}


/*
 * One that was redirected (try_files, error_page) to a location without
 * the zone has lost its module context: its state is found in the
 * pool's cleanups.
 */

static void
ngx_http_asyncx_limit_subrequest_done(ngx_http_request_t *r)
{
    ngx_http_asyncx_ctx_t        *actx;
    ngx_http_asyncx_limit_ctx_t  *ctx;

    actx = ngx_http_get_module_ctx(r, ngx_http_asyncx_module);

    ctx = (actx && actx->limit) ? actx->limit
                                : ngx_http_asyncx_limit_find(r);

    if (ctx && ctx->state == NGX_HTTP_ASYNCX_LIMIT_ADMITTED) {
        ngx_http_asyncx_limit_release(ctx);
    }
}


/*
 * PREACCESS: admits, refuses or parks the request; a parked request
 * comes back here when it is woken.  Subrequests pass through here too,
 * each counted on its own, except in a zone where the main request
 * holds a place for the same key (held_by_main).
 */

static ngx_int_t
ngx_http_asyncx_limit_handler(ngx_http_request_t *r)
{
    ngx_http_asyncx_ctx_t         *actx;
    ngx_http_asyncx_loc_conf_t    *alcf;
    ngx_http_asyncx_limit_ctx_t   *ctx;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_asyncx_module);

    if (alcf->limit.zones == NULL || alcf->limit.zones->nelts == 0) {
        return NGX_DECLINED;
    }

    actx = ngx_http_asyncx_get_ctx(r);
    if (actx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = actx->limit;

    if (ctx == NULL) {
        /*
         * Like limit_req, a request is limited once: after an internal
         * redirect it keeps what it was decided (otherwise it would wait
         * for its own slot).
         */
        ctx = ngx_http_asyncx_limit_find(r);

        if (ctx) {
            actx->limit = ctx;
            return NGX_DECLINED;
        }

        ctx = ngx_http_asyncx_limit_create(r, &alcf->limit);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        actx->limit = ctx;
    }

    if (ctx->state == NGX_HTTP_ASYNCX_LIMIT_ADMITTED
        || ctx->state == NGX_HTTP_ASYNCX_LIMIT_DONE)
    {
        /* a location that matched again */
        return NGX_DECLINED;
    }

    return ngx_http_asyncx_limit_run(r, ctx);
}


/*
 * An internal redirect (try_files, error_page, index) clears the module
 * context but not the request's pool cleanups: the request's limiter
 * state is found there.
 */

static ngx_http_asyncx_limit_ctx_t *
ngx_http_asyncx_limit_find(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t  *cln;

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_asyncx_limit_cleanup
            && ((ngx_http_asyncx_limit_ctx_t *) cln->data)->request == r)
        {
            return cln->data;
        }
    }

    return NULL;
}


/*
 * A subrequest meets a zone in which the main request holds a place for
 * the same key: the client's request was limited there already, as
 * limit_req limits a request once.  Counting it again would take a
 * second token, and under concurrency= the call would wait for the very
 * slot its own request holds until its timeout (a server-level
 * asyncx_limit inherited by the locations a pipeline calls).
 *
 * Only the main request's place counts: it is given back when the whole
 * request ends, after every subrequest, while a subrequest's is given
 * back at its last buffer, which can pass before the subrequests it
 * made have run (a proxied SSI include).  Only a place held in shared
 * memory or granted by Redis: a dry run's request that would have waited
 * holds none.  Only the same key: a zone keyed by $uri still limits each
 * backend URI the calls reach.  1: pass the zone.
 */

static ngx_uint_t
ngx_http_asyncx_limit_held_by_main(ngx_http_request_t *r,
    ngx_http_asyncx_limit_zone_t *lz)
{
    u_char                         digest[NGX_HTTP_ASYNCX_LIMIT_DIGEST];
    ngx_int_t                      rc;
    ngx_str_t                      key, stored;
    ngx_uint_t                     i;
    ngx_http_asyncx_limit_ctx_t   *ctx;
    ngx_http_asyncx_limit_pass_t  *pass;

    /* subrequests share the main request's pool, and its cleanups */
    ctx = ngx_http_asyncx_limit_find(r->main);

    if (ctx == NULL || ctx->state != NGX_HTTP_ASYNCX_LIMIT_ADMITTED) {
        return 0;
    }

    pass = NULL;

    for (i = 0; i < ctx->n; i++) {
        if (ctx->passes[i].zone == lz) {
            pass = &ctx->passes[i];
            break;
        }
    }

    if (pass == NULL) {
        return 0;
    }

    /* admitted by Redis; in cluster_fallback=local, as without cluster= */
    if (pass->admitted) {
        return ngx_http_asyncx_limit_cluster_held(r, pass);
    }

    if (pass->rec == NULL || pass->node == NULL) {
        return 0;
    }

    if (lz->key) {
        if (ngx_http_complex_value(r, lz->key, &key) != NGX_OK) {
            return 0;
        }

    } else {
        ngx_str_null(&key);
    }

    rc = ngx_http_asyncx_limit_stored_key(r, &key, digest, &stored);
    if (rc == NGX_ERROR) {
        return 0;
    }

    /* the node is the main request's, kept by its record: no lock needed */
    return ngx_http_asyncx_limit_key_cmp(pass->node, rc == NGX_DONE,
                                         stored.data, stored.len)
           == 0;
}


static ngx_http_asyncx_limit_ctx_t *
ngx_http_asyncx_limit_create(ngx_http_request_t *r,
    ngx_http_asyncx_limit_conf_t *lcf)
{
    ngx_uint_t                     i;
    ngx_shm_zone_t               **zp;
    ngx_pool_cleanup_t            *cln;
    ngx_http_asyncx_limit_ctx_t   *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_asyncx_limit_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    ctx->passes = ngx_pcalloc(r->pool, lcf->zones->nelts
                                       * sizeof(ngx_http_asyncx_limit_pass_t));
    if (ctx->passes == NULL) {
        return NULL;
    }

    zp = lcf->zones->elts;

    for (i = 0; i < lcf->zones->nelts; i++) {
        if (r != r->main
            && ngx_http_asyncx_limit_held_by_main(r, zp[i]->data))
        {
            continue;
        }

        ctx->passes[ctx->n++].zone = zp[i]->data;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    ctx->request = r;
    ctx->conf = lcf;
    ctx->arrived_us = ngx_http_asyncx_now_usec();

    ctx->wait.handler = ngx_http_asyncx_limit_wait_handler;
    ctx->wait.data = ctx;
    ctx->wait.log = r->connection->log;

    cln->handler = ngx_http_asyncx_limit_cleanup;
    cln->data = ctx;

    return ctx;
}


static ngx_int_t
ngx_http_asyncx_limit_run(ngx_http_request_t *r,
    ngx_http_asyncx_limit_ctx_t *ctx)
{
    ngx_int_t                      rc;
    ngx_uint_t                     outcome, level, delay_level, status;
    const char                    *what;
    ngx_http_asyncx_limit_pass_t  *pass;

    level = ctx->conf->log_level;
    delay_level = level == NGX_LOG_INFO ? NGX_LOG_INFO : level + 1;

    while (ctx->cur < ctx->n) {
        pass = &ctx->passes[ctx->cur];

        if (pass->rec) {
            rc = ngx_http_asyncx_limit_recheck(ctx, pass);

        } else if (pass->zone->cluster) {
            rc = ngx_http_asyncx_limit_cluster_pass(ctx, pass);

            if (rc == NGX_HTTP_ASYNCX_CLUSTER_LOCAL) {
                rc = ngx_http_asyncx_limit_arrive(ctx, pass);

            } else {
                /* the status counts this server's decisions in Redis where
                   it counts the shared-memory limiter's */
                ngx_http_asyncx_limit_cluster_count(pass, rc);
            }

        } else {
            rc = ngx_http_asyncx_limit_arrive(ctx, pass);
        }

        if (rc == NGX_AGAIN) {
            ngx_http_asyncx_limit_park(r, ctx);
            return NGX_AGAIN;
        }

        ngx_http_asyncx_limit_unpark(ctx);

        what = NULL;
        status = 0;
        outcome = NGX_HTTP_ASYNCX_LIMIT_PASSED;

        switch (rc) {

        case NGX_OK:
            outcome = pass->waited ? NGX_HTTP_ASYNCX_LIMIT_DELAYED
                                   : NGX_HTTP_ASYNCX_LIMIT_PASSED;

            /* the clock is read for a request that waited only */
            ngx_http_asyncx_metrics_limit_wait(pass->zone->metrics,
                pass->waited ? ngx_http_asyncx_now_usec() - pass->wait_start_us
                             : 0);
            break;

        case NGX_DONE:
            ngx_log_error(delay_level, r->connection->log, 0,
                          "asyncx: limited by zone \"%V\": would wait, "
                          "dry run", &pass->zone->name);
            outcome = NGX_HTTP_ASYNCX_LIMIT_DELAYED_DRY_RUN;
            break;

        case NGX_DECLINED:
            status = ctx->conf->status_rejected;
            what = "queue is full";
            break;

        case NGX_ABORT:
            status = NGX_HTTP_SERVICE_UNAVAILABLE;
            what = "zone is full";
            break;

        case NGX_HTTP_ASYNCX_CLUSTER_REFUSE:
            status = NGX_HTTP_SERVICE_UNAVAILABLE;
            what = "no answer from redis (cluster_fallback=refuse)";
            break;

        case NGX_BUSY:
            ctx->status = ctx->conf->status_timeout;
            ctx->outcome = NGX_HTTP_ASYNCX_LIMIT_TIMEOUT;
            what = "waited longer than the timeout";
            goto refuse;

        default:
            ngx_http_asyncx_limit_release(ctx);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (what) {
            if (!ctx->conf->dry_run) {
                ctx->status = status;
                ctx->outcome = NGX_HTTP_ASYNCX_LIMIT_REJECTED;

                /* the rate says nothing of when Redis answers again */
                if (rc == NGX_HTTP_ASYNCX_CLUSTER_REFUSE) {
                    ctx->retry_after = 1;
                }

                goto refuse;
            }

            /*
             * as limit_req_dry_run passes what it would refuse, a key it
             * has no memory for too
             */
            ngx_log_error(level, r->connection->log, 0,
                          "asyncx: limited by zone \"%V\": %s, dry run",
                          &pass->zone->name, what);
            outcome = NGX_HTTP_ASYNCX_LIMIT_REJECTED_DRY_RUN;
        }

        if (outcome > ctx->outcome) {
            ctx->outcome = outcome;
        }

        ctx->cur++;
    }

    ctx->state = NGX_HTTP_ASYNCX_LIMIT_ADMITTED;
    ctx->admitted_us = ngx_http_asyncx_now_usec();
    ctx->decided_us = ctx->admitted_us;

    return NGX_DECLINED;

refuse:

    ngx_http_asyncx_limit_release(ctx);
    ctx->decided_us = ngx_http_asyncx_now_usec();

    return ngx_http_asyncx_limit_refuse(r, ctx, pass->zone, what);
}


/*
 * A request meets a zone.  NGX_OK: it enters; NGX_AGAIN: it waits;
 * NGX_DECLINED: the queue is full; NGX_DONE: it would wait (dry run);
 * NGX_ABORT: no memory for its key or place; NGX_ERROR.
 *
 * One function: everything between taking and releasing the zone's lock,
 * so that each path releases it exactly once.
 */

static ngx_int_t
ngx_http_asyncx_limit_arrive(ngx_http_asyncx_limit_ctx_t *ctx,
    ngx_http_asyncx_limit_pass_t *pass)
{
    u_char                          digest[NGX_HTTP_ASYNCX_LIMIT_DIGEST];
    uint32_t                        hash;
    ngx_int_t                       rc;
    ngx_str_t                       key, stored;
    ngx_uint_t                      n, hashed, waiting;
    ngx_http_request_t             *r;
    ngx_http_asyncx_lq_rec_t       *rec;
    ngx_http_asyncx_limit_op_t      op;
    ngx_http_asyncx_limit_zone_t   *lz;
    ngx_http_asyncx_limit_node_t   *node;

    r = ctx->request;
    lz = pass->zone;

    if (lz->key) {
        if (ngx_http_complex_value(r, lz->key, &key) != NGX_OK) {
            return NGX_ERROR;
        }

    } else {
        ngx_str_null(&key);
    }

    rc = ngx_http_asyncx_limit_stored_key(r, &key, digest, &stored);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    hashed = (rc == NGX_DONE);
    hash = ngx_crc32_short(stored.data, stored.len);

    if (ngx_http_asyncx_limit_lock(lz, &op, ctx, r->connection->log)
        != NGX_OK)
    {
        lz->sh->lq.zone_full++;
        ngx_http_asyncx_limit_unlock(&op);
        return NGX_ABORT;
    }

    node = ngx_http_asyncx_limit_lookup(lz, &stored, hashed, hash);
    rec = node ? ngx_http_asyncx_limit_alloc(lz, node) : NULL;

    if (rec == NULL) {
        lz->sh->lq.zone_full++;
        ngx_http_asyncx_limit_unlock(&op);

        ngx_http_asyncx_limit_log_full(r, lz, &key);
        return NGX_ABORT;
    }

    rec->local = (uintptr_t) ctx;
    pass->node = node;

    rc = ngx_http_asyncx_lq_arrive(&lz->sh->lq, &node->key, rec,
                                   (ngx_uint_t) ctx->conf->dry_run, &op.env);

    waiting = node->key.waiting;

    switch (rc) {

    case NGX_OK:
        ngx_http_asyncx_limit_count(node->rps_slot, node->rps_count,
                                    op.env.now);
        pass->rec = rec;
        break;

    case NGX_AGAIN:
        if (ctx->conf->dry_run) {
            ngx_slab_free_locked(lz->shpool, rec);
            rc = NGX_DONE;
            break;
        }

        pass->rec = rec;
        pass->wait_start = ngx_current_msec;
        pass->wait_start_us = ngx_http_asyncx_now_usec();
        pass->waited = 1;

        ctx->due = ngx_http_asyncx_lq_due(&lz->sh->lq, &node->key, rec,
                                          op.env.now);
        if (ctx->due) {
            rec->armed = 1;
        }

        break;

    default: /* NGX_DECLINED */
        ngx_slab_free_locked(lz->shpool, rec);
    }

    ngx_http_asyncx_limit_unlock(&op);

    if (rc == NGX_AGAIN) {
        /* delays one level below refusals, as with limit_req */
        n = ctx->conf->log_level == NGX_LOG_INFO ? NGX_LOG_INFO
                                                 : ctx->conf->log_level + 1;
        ngx_log_error(n, r->connection->log, 0,
                      "asyncx limit: zone \"%V\": request waits, %ui in the "
                      "queue", &lz->name, waiting);
    }

    return rc;
}


/*
 * A full zone is something any client may cause again and again (new
 * keys): every refusal is logged at asyncx_limit_log_level by the
 * refusal itself, the alert that the zone is too small once a minute
 * per worker, with the count of the refusals it did not report.
 */

static void
ngx_http_asyncx_limit_log_full(ngx_http_request_t *r,
    ngx_http_asyncx_limit_zone_t *lz, ngx_str_t *key)
{
    if (lz->full_logged
        && ngx_current_msec - lz->full_logged_at
           < NGX_HTTP_ASYNCX_LIMIT_FULL_LOG)
    {
        lz->full_unlogged++;
        return;
    }

    if (lz->full_unlogged == 0) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "asyncx limit: zone \"%V\" is full, cannot add key "
                      "\"%V\"", &lz->name,
                      ngx_http_asyncx_limit_log_key(r, key));

    } else {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "asyncx limit: zone \"%V\" is full, cannot add key "
                      "\"%V\" (and %ui more refusals since this worker's "
                      "last such alert)", &lz->name,
                      ngx_http_asyncx_limit_log_key(r, key),
                      lz->full_unlogged);
    }

    lz->full_logged = 1;
    lz->full_logged_at = ngx_current_msec;
    lz->full_unlogged = 0;
}


/*
 * What a zone keeps of a key: the key itself (NGX_OK), or, longer than a
 * node holds, its SHA-256 digest (NGX_DONE), so that a client cannot
 * escape the limit by padding its key and two long keys share a bucket
 * only if SHA-256 collides.
 */

static ngx_int_t
ngx_http_asyncx_limit_stored_key(ngx_http_request_t *r, ngx_str_t *key,
    u_char *digest, ngx_str_t *stored)
{
    if (key->len <= NGX_HTTP_ASYNCX_LIMIT_KEY_INLINE) {
        *stored = *key;
        return NGX_OK;
    }

    if (EVP_Digest(key->data, key->len, digest, NULL, EVP_sha256(), NULL)
        != 1)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "asyncx limit: EVP_Digest(SHA-256) of a %uz-byte key "
                      "failed", key->len);
        return NGX_ERROR;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "asyncx limit: a %uz-byte key is kept as its digest",
                   key->len);

    stored->data = digest;
    stored->len = NGX_HTTP_ASYNCX_LIMIT_DIGEST;

    return NGX_DONE;
}


/*
 * A key is what the client sent (an address, a header): in a log line its
 * bytes that are not UTF-8 and its control characters are written as
 * \xNN, so the line stays valid UTF-8 and no terminal escape gets out.
 */

static ngx_str_t *
ngx_http_asyncx_limit_log_key(ngx_http_request_t *r, ngx_str_t *key)
{
    ngx_str_t  *s;

    s = ngx_palloc(r->pool, sizeof(ngx_str_t));
    if (s == NULL) {
        return &ngx_http_asyncx_limit_no_key;
    }

    s->data = ngx_pnalloc(r->pool,
                          ngx_http_asyncx_utf8_escape_len(key->data, key->len,
                                               NGX_HTTP_ASYNCX_UTF8_CONTROLS
                                               |NGX_HTTP_ASYNCX_UTF8_QUOTES)
                          + 1);
    if (s->data == NULL) {
        return &ngx_http_asyncx_limit_no_key;
    }

    s->len = ngx_http_asyncx_utf8_escape(s->data, key->data, key->len,
                                         NGX_HTTP_ASYNCX_UTF8_CONTROLS
                                         |NGX_HTTP_ASYNCX_UTF8_QUOTES)
             - s->data;

    return s;
}


/*
 * A waiting request is woken (its timer, a grant, a wake-up from
 * another worker).  NGX_OK: it enters; NGX_AGAIN: it waits on;
 * NGX_BUSY: it waited longer than the timeout.
 */

static ngx_int_t
ngx_http_asyncx_limit_recheck(ngx_http_asyncx_limit_ctx_t *ctx,
    ngx_http_asyncx_limit_pass_t *pass)
{
    ngx_int_t                      rc;
    ngx_http_asyncx_lq_rec_t      *rec;
    ngx_http_asyncx_lq_key_t      *k;
    ngx_http_asyncx_limit_op_t     op;
    ngx_http_asyncx_limit_zone_t  *lz;

    lz = pass->zone;
    rec = pass->rec;
    k = &pass->node->key;

    if (ngx_http_asyncx_limit_lock(lz, &op, ctx,
                                   ctx->request->connection->log)
        != NGX_OK)
    {
        /* cannot happen: this worker holds a record, so it registered */
        ngx_http_asyncx_limit_unlock(&op);
        return NGX_ERROR;
    }

    if (rec->state == NGX_HTTP_ASYNCX_LQ_GRANTED) {
        /* granted by another worker, before its wake-up was read */
        op.env.now_us = ngx_http_asyncx_now_usec();
        ngx_http_asyncx_lq_claim(&lz->sh->lq, rec, &op.env);
    }

    if (rec->state == NGX_HTTP_ASYNCX_LQ_WAITING
        && ngx_current_msec - pass->wait_start >= lz->timeout)
    {
        ngx_http_asyncx_lq_leave(&lz->sh->lq, k, rec, &op.env);
        ngx_slab_free_locked(lz->shpool, rec);
        pass->rec = NULL;
        lz->sh->lq.timed_out++;
        ngx_http_asyncx_limit_unlock(&op);
        return NGX_BUSY;
    }

    if (rec->state == NGX_HTTP_ASYNCX_LQ_WAITING) {
        ngx_http_asyncx_lq_pump(&lz->sh->lq, k, &op.env);
    }

    rc = NGX_OK;

    if (rec->state == NGX_HTTP_ASYNCX_LQ_WAITING) {
        ctx->due = ngx_http_asyncx_lq_due(&lz->sh->lq, k, rec, op.env.now);
        if (ctx->due) {
            rec->armed = 1;
        }

        rc = NGX_AGAIN;
    }

    ngx_http_asyncx_limit_unlock(&op);

    return rc;
}


static void
ngx_http_asyncx_limit_park(ngx_http_request_t *r,
    ngx_http_asyncx_limit_ctx_t *ctx)
{
    ngx_http_asyncx_limit_zone_t  *lz;

    lz = ctx->passes[ctx->cur].zone;

    if (ctx->state != NGX_HTTP_ASYNCX_LIMIT_WAITING) {
        ngx_queue_insert_tail(&lz->waiters, &ctx->local);
        ctx->state = NGX_HTTP_ASYNCX_LIMIT_WAITING;

        /* the client leaving ends the wait (and the main request) */
        ngx_http_asyncx_watch_client(r);
        r->write_event_handler = ngx_http_request_empty_handler;
    }

    ngx_http_asyncx_limit_arm(ctx);
}


static void
ngx_http_asyncx_limit_unpark(ngx_http_asyncx_limit_ctx_t *ctx)
{
    if (ctx->wait.timer_set) {
        ngx_del_timer(&ctx->wait);
    }

    if (ctx->wait.posted) {
        ngx_delete_posted_event(&ctx->wait);
    }

    if (ctx->state == NGX_HTTP_ASYNCX_LIMIT_WAITING) {
        ngx_queue_remove(&ctx->local);
        ctx->state = NGX_HTTP_ASYNCX_LIMIT_NEW;
        ctx->request->read_event_handler = ngx_http_block_reading;
    }
}


/* the timer, a grant or a wake-up: back into the phase handler */

static void
ngx_http_asyncx_limit_wait_handler(ngx_event_t *ev)
{
    ngx_connection_t             *c;
    ngx_http_request_t           *r;
    ngx_http_asyncx_limit_ctx_t  *ctx;

    ctx = ev->data;
    r = ctx->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);

    ngx_http_run_posted_requests(c);
}


/*
 * The refusal.  With an error_page for its status the status itself goes
 * back to nginx, which serves the page (as with limit_req); otherwise
 * the shared JSON error.  Both carry Retry-After: seconds to the next
 * token of the zone that refused.
 */

static ngx_int_t
ngx_http_asyncx_limit_refuse(ngx_http_request_t *r,
    ngx_http_asyncx_limit_ctx_t *ctx, ngx_http_asyncx_limit_zone_t *lz,
    const char *what)
{
    ngx_int_t                  rc;
    ngx_uint_t                 i;
    ngx_http_err_page_t       *err_page;
    ngx_http_core_loc_conf_t  *clcf;

    if (ctx->status == NGX_HTTP_CLOSE) {
        /*
         * as limit_req_status 444: closed unanswered, by nginx; in a
         * subrequest, the pipeline's and asyncx_limit_test's calls
         * report it as the call's status and the client is answered
         */
        ngx_log_error(ctx->conf->log_level, r->connection->log, 0,
                      "asyncx: limited by zone \"%V\": %s (status 444%s)",
                      &lz->name, what,
                      r == r->main ? ", connection closed" : "");
        return NGX_HTTP_CLOSE;
    }

    /* one token takes 1000 / rate seconds (rate in milli-r/s), rounded up */
    if (ngx_http_asyncx_set_retry_after(r, ctx->retry_after
                           ? ctx->retry_after
                           : (time_t) ((1000 + lz->rate - 1) / lz->rate))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (clcf->error_pages && !r->error_page && r->uri_changes) {
        err_page = clcf->error_pages->elts;

        for (i = 0; i < clcf->error_pages->nelts; i++) {
            if (err_page[i].status == (ngx_int_t) ctx->status) {
                ngx_log_error(ctx->conf->log_level, r->connection->log, 0,
                              "asyncx: limited by zone \"%V\": %s "
                              "(status %ui)", &lz->name, what, ctx->status);
                return ctx->status;
            }
        }
    }

    rc = ngx_http_asyncx_send_error(r, ctx->status, ctx->conf->log_level,
                                    "limited by zone \"%V\": %s",
                                    &lz->name, what);

    /* the JSON error is queued: end the request here, stop the phases */
    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/*
 * Gives back every place and slot the request holds, in every zone: at
 * its end on any path (pool cleanup), when a subrequest's last buffer
 * passes, and when a later zone refuses it.
 */

static void
ngx_http_asyncx_limit_release(ngx_http_asyncx_limit_ctx_t *ctx)
{
    ngx_uint_t                     i;
    ngx_http_asyncx_lq_rec_t      *rec;
    ngx_http_asyncx_limit_op_t     op;
    ngx_http_asyncx_limit_zone_t  *lz;
    ngx_http_asyncx_limit_pass_t  *pass;

    ngx_http_asyncx_limit_unpark(ctx);

    for (i = 0; i < ctx->n; i++) {
        pass = &ctx->passes[i];
        rec = pass->rec;

        if (pass->cluster) {
            ngx_http_asyncx_limit_cluster_release(pass);
        }

        if (pass->running) {
            ngx_http_asyncx_limit_cluster_done(pass);
        }

        if (rec == NULL) {
            continue;
        }

        lz = pass->zone;

        if (ngx_http_asyncx_limit_lock(lz, &op, ctx,
                                       ctx->request->connection->log)
            == NGX_OK)
        {
            if (rec->state == NGX_HTTP_ASYNCX_LQ_WAITING) {
                lz->sh->lq.left++;
            }

            ngx_http_asyncx_lq_leave(&lz->sh->lq, &pass->node->key, rec,
                                     &op.env);
            ngx_slab_free_locked(lz->shpool, rec);
            pass->rec = NULL;
        }

        ngx_http_asyncx_limit_unlock(&op);
    }

    ctx->state = NGX_HTTP_ASYNCX_LIMIT_DONE;
}


static void
ngx_http_asyncx_limit_cleanup(void *data)
{
    ngx_http_asyncx_limit_ctx_t *ctx = data;

    if (ctx->state == NGX_HTTP_ASYNCX_LIMIT_WAITING) {
        ngx_log_error(NGX_LOG_INFO, ctx->request->connection->log, 0,
                      "asyncx limit: zone \"%V\": request left the queue",
                      &ctx->passes[ctx->cur].zone->name);
    }

    ngx_http_asyncx_limit_release(ctx);
}


/* the limit_req recipe: rbtree by key, LRU list, evict idle keys */

static ngx_http_asyncx_limit_node_t *
ngx_http_asyncx_limit_lookup(ngx_http_asyncx_limit_zone_t *lz, ngx_str_t *key,
    ngx_uint_t hashed, uint32_t hash)
{
    ngx_int_t                      rc;
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

        rc = ngx_http_asyncx_limit_key_cmp(ln, hashed, key->data, key->len);

        if (rc == 0) {
            ngx_http_asyncx_lq_key_touch(&lz->sh->lq, &ln->key);
            return ln;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    node = ngx_http_asyncx_limit_alloc(lz, NULL);
    if (node == NULL) {
        return NULL;
    }

    ngx_memzero(node, NGX_HTTP_ASYNCX_LIMIT_CHUNK);

    ln = (ngx_http_asyncx_limit_node_t *) &node->color;

    node->key = hash;
    ln->hashed = (u_char) hashed;
    ln->len = (u_short) key->len;

    if (key->len) {
        /* without key= the key is empty and its data NULL (UB for memcpy) */
        ngx_memcpy(ln->data, key->data, key->len);
    }

    ngx_http_asyncx_lq_key_init(&lz->sh->lq, &ln->key, ngx_current_msec);
    ngx_rbtree_insert(&lz->sh->rbtree, node);

    return ln;
}


/* the order of keys in the rbtree among equal hashes */

ngx_int_t
ngx_http_asyncx_limit_key_cmp(ngx_http_asyncx_limit_node_t *ln,
    ngx_uint_t hashed, u_char *data, size_t len)
{
    if (hashed != ln->hashed) {
        return hashed ? 1 : -1;
    }

    if (len == 0 || ln->len == 0) {
        /* an empty key's data may be NULL: no memcmp() on it (UB) */
        return (len == ln->len) ? 0 : (len < ln->len ? -1 : 1);
    }

    return ngx_memn2cmp(data, ln->data, len, (size_t) ln->len);
}


/*
 * A key node or a record, all of one size: when the zone is full, idle
 * keys are evicted, least recently used first, until one fits, which
 * the first eviction guarantees (a freed chunk of the one size class).
 * NULL only when no key is idle: every key has a request waiting or
 * running.
 */

static void *
ngx_http_asyncx_limit_alloc(ngx_http_asyncx_limit_zone_t *lz,
    ngx_http_asyncx_limit_node_t *except)
{
    void  *p;

    for ( ;; ) {
        p = ngx_slab_alloc_locked(lz->shpool, NGX_HTTP_ASYNCX_LIMIT_CHUNK);

        if (p || ngx_http_asyncx_limit_evict(lz, except) != NGX_OK) {
            return p;
        }
    }
}


/* frees the least recently used key nobody waits in or holds a slot of */

static ngx_int_t
ngx_http_asyncx_limit_evict(ngx_http_asyncx_limit_zone_t *lz,
    ngx_http_asyncx_limit_node_t *except)
{
    ngx_rbtree_node_t             *node;
    ngx_http_asyncx_lq_key_t      *k;
    ngx_http_asyncx_limit_node_t  *ln;

    k = ngx_http_asyncx_lq_idle_key(&lz->sh->lq, except ? &except->key : NULL);

    if (k == NULL) {
        return NGX_DECLINED;
    }

    ln = ngx_http_asyncx_limit_node_of(k);
    node = (ngx_rbtree_node_t *)
               ((u_char *) ln - offsetof(ngx_rbtree_node_t, color));

    ngx_http_asyncx_lq_key_remove(&lz->sh->lq, k);
    ngx_rbtree_delete(&lz->sh->rbtree, node);
    ngx_slab_free_locked(lz->shpool, node);

    return NGX_OK;
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
    return ngx_http_asyncx_conf_add_variables(cf, ngx_http_asyncx_limit_vars);
}


static ngx_int_t
ngx_http_asyncx_limit_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                       *p;
    uint64_t                      ms;
    ngx_http_asyncx_ctx_t        *actx;
    ngx_http_asyncx_limit_ctx_t  *ctx;

    actx = ngx_http_get_module_ctx(r, ngx_http_asyncx_module);
    ctx = actx ? actx->limit : NULL;

    if (ctx == NULL) {
        /* after a redirect to a location without asyncx_limit */
        ctx = ngx_http_asyncx_limit_find(r);
    }

    if (ctx == NULL || ctx->decided_us == 0 || ctx->outcome == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    if (data == NGX_HTTP_ASYNCX_LIMIT_VAR_STATUS) {
        p = (u_char *) ngx_http_asyncx_limit_outcomes[ctx->outcome];
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
