
/*
 * Copyright (C) asyncx authors
 *
 * The limiter (exercise problem 3): token buckets and concurrency caps in
 * shared memory zones, so every worker sees the same numbers.  A request
 * goes through each zone of its location in the order the zones were
 * declared; in each it enters at once, waits in the key's FIFO (on a
 * timer and wake-ups, never blocking the worker), or is refused.  The
 * queue itself is ngx_http_asyncx_limit_queue.c (pure); the wake-ups are
 * ngx_http_asyncx_limit_wake.c.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/rand.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_limit_zone.h"


#define NGX_HTTP_ASYNCX_LIMIT_VAR_STATUS  0
#define NGX_HTTP_ASYNCX_LIMIT_VAR_WAIT    1

#define NGX_HTTP_ASYNCX_LIMIT_KEY_MAX     255

/* how often a node or a record may evict idle keys to find room */
#define NGX_HTTP_ASYNCX_LIMIT_EVICT       8


static ngx_int_t ngx_http_asyncx_limit_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_asyncx_limit_handler(ngx_http_request_t *r);
static ngx_http_asyncx_limit_ctx_t *ngx_http_asyncx_limit_create(
    ngx_http_request_t *r, ngx_http_asyncx_limit_conf_t *lcf);
static ngx_int_t ngx_http_asyncx_limit_run(ngx_http_request_t *r,
    ngx_http_asyncx_limit_ctx_t *ctx);
static ngx_int_t ngx_http_asyncx_limit_arrive(
    ngx_http_asyncx_limit_ctx_t *ctx, ngx_http_asyncx_limit_pass_t *pass);
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
    ngx_http_asyncx_limit_zone_t *lz, ngx_str_t *key, uint32_t hash);
static ngx_int_t ngx_http_asyncx_limit_evict(ngx_http_asyncx_limit_zone_t *lz,
    ngx_http_asyncx_limit_node_t *except);
static void ngx_http_asyncx_limit_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_int_t ngx_http_asyncx_limit_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_asyncx_limit_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);


/* the standard filter chain link, set once at configuration time */
static ngx_http_output_body_filter_pt  ngx_http_asyncx_limit_next_body_filter;


static ngx_conf_enum_t  ngx_http_asyncx_limit_log_levels[] = {
    { ngx_string("info"), NGX_LOG_INFO },
    { ngx_string("notice"), NGX_LOG_NOTICE },
    { ngx_string("warn"), NGX_LOG_WARN },
    { ngx_string("error"), NGX_LOG_ERR },
    { ngx_null_string, 0 }
};


static const char  *ngx_http_asyncx_limit_outcomes[] = {
    "", "PASSED", "DELAYED", "DELAYED_DRY_RUN", "REJECTED_DRY_RUN",
    "REJECTED", "TIMEOUT"
};


void
ngx_http_asyncx_limit_init_conf(ngx_http_asyncx_limit_conf_t *conf)
{
    conf->zones = NGX_CONF_UNSET_PTR;
    conf->status_rejected = NGX_CONF_UNSET_UINT;
    conf->status_timeout = NGX_CONF_UNSET_UINT;
    conf->log_level = NGX_CONF_UNSET_UINT;
    conf->dry_run = NGX_CONF_UNSET;
}


char *
ngx_http_asyncx_limit_merge_conf(ngx_conf_t *cf,
    ngx_http_asyncx_limit_conf_t *prev, ngx_http_asyncx_limit_conf_t *conf)
{
    ngx_uint_t                     i, j;
    ngx_shm_zone_t               **zp, *t;
    ngx_http_asyncx_limit_zone_t  *a, *b;

    if (conf->zones == NGX_CONF_UNSET_PTR) {
        conf->zones = prev->zones == NGX_CONF_UNSET_PTR ? NULL : prev->zones;
    }

    /*
     * Every request takes its zones in the order they were declared,
     * whatever the order of asyncx_limit: two locations naming the same
     * zones can never each hold a slot the other one waits for.
     */
    if (conf->zones) {
        zp = conf->zones->elts;

        for (i = 1; i < conf->zones->nelts; i++) {
            for (j = i; j > 0; j--) {
                a = zp[j - 1]->data;
                b = zp[j]->data;

                if (a == NULL || b == NULL || a->index <= b->index) {
                    break;
                }

                t = zp[j - 1];
                zp[j - 1] = zp[j];
                zp[j] = t;
            }
        }
    }

    ngx_conf_merge_uint_value(conf->status_rejected, prev->status_rejected,
                              NGX_HTTP_TOO_MANY_REQUESTS);
    ngx_conf_merge_uint_value(conf->status_timeout, prev->status_timeout,
                              NGX_HTTP_SERVICE_UNAVAILABLE);
    ngx_conf_merge_uint_value(conf->log_level, prev->log_level, NGX_LOG_WARN);
    ngx_conf_merge_value(conf->dry_run, prev->dry_run, 0);

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
    lz->self = NGX_HTTP_ASYNCX_LQ_NOBODY;
    ngx_queue_init(&lz->waiters);

    size = 0;
    name.len = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {

            name.data = value[i].data + 5;
            p = (u_char *) ngx_strchr(name.data, ':');

            if (p == NULL || p == name.data) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid zone size \"%V\" in \"%V\" "
                                   "directive, expected zone=name:size",
                                   &value[i], &cmd->name);
                return NGX_CONF_ERROR;
            }

            name.len = p - name.data;

            s.data = p + 1;
            s.len = value[i].data + value[i].len - s.data;

            size = ngx_parse_size(&s);

            if (size == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid zone size \"%V\" in \"%V\" "
                                   "directive", &value[i], &cmd->name);
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
                                   "invalid rate \"%V\" in \"%V\" directive, "
                                   "expected 1..1000000 r/s or r/m",
                                   &value[i], &cmd->name);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            n = ngx_parse_time(&s, 0);

            /* 0 would refuse every wait: queue=0 says that */
            if (n == NGX_ERROR || n == 0 || n > 86400000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid timeout \"%V\" in \"%V\" "
                                   "directive, expected 1ms..24h",
                                   &value[i], &cmd->name);
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
                                   "invalid key \"%V\" in \"%V\" directive",
                                   &value[i], &cmd->name);
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
                                   "invalid value \"%V\" in \"%V\" "          \
                                   "directive, expected %d..%d",              \
                                   &value[i], &cmd->name, min, max);          \
                return NGX_CONF_ERROR;                                        \
            }                                                                 \
            lz->field = (ngx_uint_t) n;                                       \
            continue;                                                         \
        }

        /* concurrency=0: no cap; queue=0: no waiting, refused at once */
        ngx_http_asyncx_limit_num("burst=", burst, 1, 1000000);
        ngx_http_asyncx_limit_num("concurrency=", concurrency, 0, 100000);
        ngx_http_asyncx_limit_num("queue=", queue, 0, 100000);

#undef ngx_http_asyncx_limit_num

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\" directive",
                           &value[i], &cmd->name);
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
    lz->lmcf = &amcf->limit;

    if (amcf->limit.zones.elts == NULL
        && ngx_array_init(&amcf->limit.zones, cf->pool, 4,
                          sizeof(ngx_shm_zone_t *))
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    lz->index = amcf->limit.zones.nelts;

    zp = ngx_array_push(&amcf->limit.zones);
    if (zp == NULL) {
        return NGX_CONF_ERROR;
    }

    *zp = shm_zone;

    return NGX_CONF_OK;
}


/*
 * The zone keeps its state over a reload (tokens, slots, queues).  The
 * new configuration's limits take effect when its first worker starts
 * (ngx_http_asyncx_limit_lock() compares generations), so a reload that
 * fails later changes nothing.
 */

static ngx_int_t
ngx_http_asyncx_limit_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_asyncx_limit_zone_t  *olz = data;

    size_t                          len;
    ngx_http_asyncx_limit_zone_t   *lz;
    ngx_http_asyncx_limit_shctx_t  *sh;

    lz = shm_zone->data;
    lz->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (olz) {
        /* only the master writes gen_next */
        lz->sh = olz->sh;
        lz->gen = ++lz->sh->gen_next;
        return NGX_OK;
    }

    if (shm_zone->shm.exists) {
        lz->sh = lz->shpool->data;
        lz->gen = ++lz->sh->gen_next;
        return NGX_OK;
    }

    sh = ngx_slab_calloc(lz->shpool, sizeof(ngx_http_asyncx_limit_shctx_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    lz->sh = sh;
    lz->shpool->data = sh;

    ngx_rbtree_init(&sh->rbtree, &sh->sentinel,
                    ngx_http_asyncx_limit_rbtree_insert_value);

    ngx_http_asyncx_lq_zone_init(&sh->lq);
    sh->lq.rate = lz->rate;
    sh->lq.burst = lz->burst;
    sh->lq.concurrency = lz->concurrency;
    sh->lq.queue = lz->queue;

    sh->gen_next = 1;
    sh->gen_applied = 1;
    lz->gen = 1;

    if (RAND_bytes((u_char *) &sh->secret, sizeof(sh->secret)) != 1) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "asyncx_limit_zone \"%V\": RAND_bytes() failed",
                      &shm_zone->shm.name);
        return NGX_ERROR;
    }

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


/* asyncx_limit name | off;  (repeatable: every zone named applies) */

char *
ngx_http_asyncx_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    ngx_str_t                      *value;
    ngx_uint_t                      i;
    ngx_shm_zone_t                 *shm_zone, **zp;
    ngx_http_asyncx_limit_conf_t   *lcf;

    lcf = &alcf->limit;
    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        if (lcf->zones != NGX_CONF_UNSET_PTR) {
            return "is duplicate: \"off\" cannot be combined with zones";
        }

        lcf->zones = NULL;
        return NGX_CONF_OK;
    }

    if (lcf->zones == NULL) {
        return "is duplicate: \"off\" cannot be combined with zones";
    }

    shm_zone = ngx_http_asyncx_limit_ref(cf, &value[1]);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (lcf->zones == NGX_CONF_UNSET_PTR) {
        lcf->zones = ngx_array_create(cf->pool, 2, sizeof(ngx_shm_zone_t *));
        if (lcf->zones == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    zp = lcf->zones->elts;

    for (i = 0; i < lcf->zones->nelts; i++) {
        if (zp[i] == shm_zone) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "zone \"%V\" is duplicate in \"%V\" directive",
                               &value[1], &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    zp = ngx_array_push(lcf->zones);
    if (zp == NULL) {
        return NGX_CONF_ERROR;
    }

    *zp = shm_zone;

    return NGX_CONF_OK;
}


/*
 * asyncx_limit_status code [code];  the refusal status when the queue is
 * full and after a wait longer than the timeout (limit_req_status).
 * With one argument that is not a number, the zone status endpoint's
 * old name: still works, with a warning.
 */

char *
ngx_http_asyncx_limit_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    ngx_int_t    n;
    ngx_str_t   *value;
    ngx_uint_t   i, *codes[2];

    value = cf->args->elts;

    /* a zone name starts with a letter: "429" and "4x9" are codes */
    if (cf->args->nelts == 2 && value[1].len
        && !(value[1].data[0] >= '0' && value[1].data[0] <= '9'))
    {
        if (!(cf->cmd_type & NGX_HTTP_LOC_CONF)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\" directive, "
                               "expected a status code 400..599",
                               &value[1], &cmd->name);
            return NGX_CONF_ERROR;
        }

        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"asyncx_limit_status %V\" is deprecated for the "
                           "zone's status, use \"asyncx_limit_zone_status "
                           "%V\"; \"asyncx_limit_status\" now sets the "
                           "refusal status code", &value[1], &value[1]);

        return ngx_http_asyncx_limit_zone_status(cf, cmd, conf);
    }

    if (alcf->limit.status_rejected != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    codes[0] = &alcf->limit.status_rejected;
    codes[1] = &alcf->limit.status_timeout;

    for (i = 1; i < cf->args->nelts; i++) {
        n = ngx_atoi(value[i].data, value[i].len);

        if (n < 400 || n > 599) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\" directive, "
                               "expected a status code 400..599",
                               &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }

        *codes[i - 1] = (ngx_uint_t) n;
    }

    return NGX_CONF_OK;
}


/* asyncx_limit_log_level info | notice | warn | error; */

char *
ngx_http_asyncx_limit_log_level(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;

    if (alcf->limit.log_level != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 0; ngx_http_asyncx_limit_log_levels[i].name.len; i++) {
        if (ngx_strcmp(ngx_http_asyncx_limit_log_levels[i].name.data,
                       value[1].data)
            == 0)
        {
            alcf->limit.log_level = ngx_http_asyncx_limit_log_levels[i].value;
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\" directive, expected "
                       "info, notice, warn or error", &value[1], &cmd->name);

    return NGX_CONF_ERROR;
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
 * A worker starts: it takes its entry in every zone's owner table (an
 * entry with its pid is a dead process's: reclaimed), looks (what a
 * crashed worker left is reclaimed now, not when somebody needs it),
 * applies its configuration's limits and opens its wake-up socket.
 */

ngx_int_t
ngx_http_asyncx_limit_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                     i;
    ngx_shm_zone_t               **zp;
    ngx_http_asyncx_main_conf_t   *amcf;
    ngx_http_asyncx_limit_op_t     op;
    ngx_http_asyncx_limit_zone_t  *lz;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    amcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_asyncx_module);

    if (amcf == NULL || amcf->limit.zones.nelts == 0) {
        return NGX_OK;
    }

    if (ngx_http_asyncx_limit_wake_init(cycle, &amcf->limit) != NGX_OK) {
        return NGX_ERROR;
    }

    zp = amcf->limit.zones.elts;

    for (i = 0; i < amcf->limit.zones.nelts; i++) {
        lz = zp[i]->data;

        /* a table full of live workers: each request tries again */
        (void) ngx_http_asyncx_limit_lock(lz, &op, NULL, cycle->log);
        ngx_http_asyncx_limit_unlock(&op);
    }

    return NGX_OK;
}


void
ngx_http_asyncx_limit_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                     i;
    ngx_shm_zone_t               **zp;
    ngx_http_asyncx_main_conf_t   *amcf;
    ngx_http_asyncx_limit_zone_t  *lz;

    amcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_asyncx_module);

    if (amcf == NULL || amcf->limit.zones.nelts == 0) {
        return;
    }

    zp = amcf->limit.zones.elts;

    for (i = 0; i < amcf->limit.zones.nelts; i++) {
        lz = zp[i]->data;

        if (lz->self == NGX_HTTP_ASYNCX_LQ_NOBODY) {
            continue;
        }

        ngx_shmtx_lock(&lz->shpool->mutex);
        ngx_http_asyncx_lq_unregister(&lz->sh->lq, lz->self);
        ngx_shmtx_unlock(&lz->shpool->mutex);

        lz->self = NGX_HTTP_ASYNCX_LQ_NOBODY;
    }

    ngx_http_asyncx_limit_wake_exit(cycle, &amcf->limit);
}


/*
 * Subrequests share the main request's pool, so its cleanup would hold
 * their slots until the whole main request ends; a limited subrequest
 * gives its slots back when its last buffer goes through.
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
 * PREACCESS: admits, refuses or parks the request; a parked request
 * comes back here when it is woken.  Subrequests pass through here too,
 * each counted on its own.
 */

static ngx_int_t
ngx_http_asyncx_limit_handler(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t            *cln;
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
         * An internal redirect (try_files, error_page, index) clears the
         * module context but not the request's pool cleanups: find what
         * this request was already decided.  Like limit_req, a request is
         * limited once; otherwise it would wait for its own slot.
         */
        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_asyncx_limit_cleanup
                && ((ngx_http_asyncx_limit_ctx_t *) cln->data)->request == r)
            {
                actx->limit = cln->data;
                return NGX_DECLINED;
            }
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

    ctx->n = lcf->zones->nelts;
    ctx->passes = ngx_pcalloc(r->pool,
                              ctx->n * sizeof(ngx_http_asyncx_limit_pass_t));
    if (ctx->passes == NULL) {
        return NULL;
    }

    zp = lcf->zones->elts;

    for (i = 0; i < ctx->n; i++) {
        ctx->passes[i].zone = zp[i]->data;
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
    ngx_uint_t                     outcome, level, delay_level;
    const char                    *what;
    ngx_http_asyncx_limit_pass_t  *pass;

    level = ctx->conf->log_level;
    delay_level = level == NGX_LOG_INFO ? NGX_LOG_INFO : level + 1;

    while (ctx->cur < ctx->n) {
        pass = &ctx->passes[ctx->cur];

        rc = pass->rec ? ngx_http_asyncx_limit_recheck(ctx, pass)
                       : ngx_http_asyncx_limit_arrive(ctx, pass);

        if (rc == NGX_AGAIN) {
            ngx_http_asyncx_limit_park(r, ctx);
            return NGX_AGAIN;
        }

        ngx_http_asyncx_limit_unpark(ctx);

        switch (rc) {

        case NGX_OK:
            outcome = pass->waited ? NGX_HTTP_ASYNCX_LIMIT_DELAYED
                                   : NGX_HTTP_ASYNCX_LIMIT_PASSED;
            break;

        case NGX_DONE:
            ngx_log_error(delay_level, r->connection->log, 0,
                          "asyncx: limited by zone \"%V\": would wait, "
                          "dry run", &pass->zone->name);
            outcome = NGX_HTTP_ASYNCX_LIMIT_DELAYED_DRY_RUN;
            break;

        case NGX_DECLINED:
            if (ctx->conf->dry_run) {
                ngx_log_error(level, r->connection->log, 0,
                              "asyncx: limited by zone \"%V\": queue is "
                              "full, dry run", &pass->zone->name);
                outcome = NGX_HTTP_ASYNCX_LIMIT_REJECTED_DRY_RUN;
                break;
            }

            ctx->status = ctx->conf->status_rejected;
            ctx->outcome = NGX_HTTP_ASYNCX_LIMIT_REJECTED;
            what = "queue is full";
            goto refuse;

        case NGX_BUSY:
            ctx->status = ctx->conf->status_timeout;
            ctx->outcome = NGX_HTTP_ASYNCX_LIMIT_TIMEOUT;
            what = "waited longer than the timeout";
            goto refuse;

        case NGX_ABORT:
            ctx->status = NGX_HTTP_SERVICE_UNAVAILABLE;
            ctx->outcome = NGX_HTTP_ASYNCX_LIMIT_REJECTED;
            what = "zone is full";
            goto refuse;

        default:
            ngx_http_asyncx_limit_release(ctx);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
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
 */

static ngx_int_t
ngx_http_asyncx_limit_arrive(ngx_http_asyncx_limit_ctx_t *ctx,
    ngx_http_asyncx_limit_pass_t *pass)
{
    uint32_t                        hash;
    ngx_int_t                       rc;
    ngx_str_t                       key;
    ngx_uint_t                      n, waiting;
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

        if (key.len > NGX_HTTP_ASYNCX_LIMIT_KEY_MAX) {
            /* like limit_req: very long keys are not limited */
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "asyncx limit: key is more than %d bytes: \"%V\"",
                          NGX_HTTP_ASYNCX_LIMIT_KEY_MAX, &key);
            return NGX_OK;
        }

    } else {
        ngx_str_null(&key);
    }

    hash = ngx_crc32_short(key.data, key.len);

    if (ngx_http_asyncx_limit_lock(lz, &op, ctx, r->connection->log)
        != NGX_OK)
    {
        lz->sh->lq.zone_full++;
        ngx_http_asyncx_limit_unlock(&op);
        return NGX_ABORT;
    }

    node = ngx_http_asyncx_limit_lookup(lz, &key, hash);
    rec = NULL;

    if (node) {
        rec = ngx_slab_alloc_locked(lz->shpool,
                                    sizeof(ngx_http_asyncx_lq_rec_t));

        for (n = 0; rec == NULL && n < NGX_HTTP_ASYNCX_LIMIT_EVICT; n++) {
            if (ngx_http_asyncx_limit_evict(lz, node) != NGX_OK) {
                break;
            }

            rec = ngx_slab_alloc_locked(lz->shpool,
                                        sizeof(ngx_http_asyncx_lq_rec_t));
        }
    }

    if (rec == NULL) {
        lz->sh->lq.zone_full++;
        ngx_http_asyncx_limit_unlock(&op);

        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "asyncx limit: zone \"%V\" is full, cannot add key "
                      "\"%V\"", &lz->name, &key);
        return NGX_ABORT;
    }

    rec->local = (uintptr_t) ctx;
    pass->node = node;

    rc = ngx_http_asyncx_lq_arrive(&lz->sh->lq, &node->key, rec,
                                   (ngx_uint_t) ctx->conf->dry_run, &op.env);

    waiting = node->key.waiting;

    switch (rc) {

    case NGX_OK:
        ngx_http_asyncx_limit_count(node, op.env.now);
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

    /* one token takes 1000 / rate seconds (rate in milli-r/s), rounded up */
    if (ngx_http_asyncx_set_retry_after(r,
                                  (time_t) ((1000 + lz->rate - 1) / lz->rate))
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
    uint32_t hash)
{
    size_t                         size;
    ngx_int_t                      rc;
    ngx_uint_t                     n;
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
            ngx_http_asyncx_lq_key_touch(&lz->sh->lq, &ln->key);
            return ln;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_http_asyncx_limit_node_t, data)
           + key->len;

    node = ngx_slab_calloc_locked(lz->shpool, size);

    for (n = 0; node == NULL && n < NGX_HTTP_ASYNCX_LIMIT_EVICT; n++) {
        if (ngx_http_asyncx_limit_evict(lz, NULL) != NGX_OK) {
            break;
        }

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

    ngx_http_asyncx_lq_key_init(&lz->sh->lq, &ln->key, ngx_current_msec);
    ngx_rbtree_insert(&lz->sh->rbtree, node);

    return ln;
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


/* an admission, for current_rps: ten slots of 100 ms */

void
ngx_http_asyncx_limit_count(ngx_http_asyncx_limit_node_t *node,
    ngx_msec_t now)
{
    ngx_uint_t  slot;

    slot = (now / 100) % NGX_HTTP_ASYNCX_LIMIT_RPS_SLOTS;

    if (node->rps_slot[slot] != now / 100) {
        node->rps_slot[slot] = now / 100;
        node->rps_count[slot] = 0;
    }

    node->rps_count[slot]++;
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
