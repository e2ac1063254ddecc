
/*
 * Copyright (C) asyncx authors
 *
 * The limiter's directives and the life of its zones: creation, reuse
 * over a reload (the newest configuration's limits apply from its first
 * worker on), a worker's start (its entry in the owner table, a look,
 * its wake-up socket) and exit.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/rand.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_limit_zone.h"


typedef struct {
    ngx_conf_t                          *cf;
    ngx_command_t                       *cmd;
    ngx_http_asyncx_limit_zone_t        *lz;
    ssize_t                              size;
} ngx_http_asyncx_limit_zone_parse_t;


typedef struct ngx_http_asyncx_limit_zone_param_s
    ngx_http_asyncx_limit_zone_param_t;

typedef ngx_int_t (*ngx_http_asyncx_limit_zone_param_pt)(
    ngx_http_asyncx_limit_zone_parse_t *ps, ngx_str_t *arg,
    const ngx_http_asyncx_limit_zone_param_t *param);

/* a parameter of asyncx_limit_zone: "prefix=" and its parser */
struct ngx_http_asyncx_limit_zone_param_s {
    ngx_str_t                            prefix;
    ngx_http_asyncx_limit_zone_param_pt  parse;
    size_t                               offset;   /* numbers only */
    ngx_int_t                            min;
    ngx_int_t                            max;
};


static char *ngx_http_asyncx_limit_zone_add(ngx_conf_t *cf,
    ngx_http_asyncx_limit_zone_t *lz, ssize_t size);
static ngx_int_t ngx_http_asyncx_limit_zone_name(
    ngx_http_asyncx_limit_zone_parse_t *ps, ngx_str_t *arg,
    const ngx_http_asyncx_limit_zone_param_t *param);
static ngx_int_t ngx_http_asyncx_limit_zone_rate(
    ngx_http_asyncx_limit_zone_parse_t *ps, ngx_str_t *arg,
    const ngx_http_asyncx_limit_zone_param_t *param);
static ngx_int_t ngx_http_asyncx_limit_zone_timeout(
    ngx_http_asyncx_limit_zone_parse_t *ps, ngx_str_t *arg,
    const ngx_http_asyncx_limit_zone_param_t *param);
static ngx_int_t ngx_http_asyncx_limit_zone_key(
    ngx_http_asyncx_limit_zone_parse_t *ps, ngx_str_t *arg,
    const ngx_http_asyncx_limit_zone_param_t *param);
static ngx_int_t ngx_http_asyncx_limit_zone_num(
    ngx_http_asyncx_limit_zone_parse_t *ps, ngx_str_t *arg,
    const ngx_http_asyncx_limit_zone_param_t *param);
static ngx_int_t ngx_http_asyncx_limit_zone_cluster(
    ngx_http_asyncx_limit_zone_parse_t *ps, ngx_str_t *arg,
    const ngx_http_asyncx_limit_zone_param_t *param);


/* concurrency=0: no cap; queue=0: no waiting, refused at once */
static const ngx_http_asyncx_limit_zone_param_t
    ngx_http_asyncx_limit_zone_params[] =
{
    { ngx_string("zone="), ngx_http_asyncx_limit_zone_name, 0, 0, 0 },
    { ngx_string("rate="), ngx_http_asyncx_limit_zone_rate, 0, 0, 0 },
    { ngx_string("timeout="), ngx_http_asyncx_limit_zone_timeout, 0, 0, 0 },
    { ngx_string("key="), ngx_http_asyncx_limit_zone_key, 0, 0, 0 },
    { ngx_string("burst="), ngx_http_asyncx_limit_zone_num,
      offsetof(ngx_http_asyncx_limit_zone_t, burst), 1, 1000000 },
    { ngx_string("concurrency="), ngx_http_asyncx_limit_zone_num,
      offsetof(ngx_http_asyncx_limit_zone_t, concurrency), 0, 100000 },
    { ngx_string("queue="), ngx_http_asyncx_limit_zone_num,
      offsetof(ngx_http_asyncx_limit_zone_t, queue), 0, 100000 },
    { ngx_string("cluster"), ngx_http_asyncx_limit_zone_cluster, 0, 0, 0 },
    { ngx_null_string, NULL, 0, 0, 0 }
};


static ngx_int_t ngx_http_asyncx_limit_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_asyncx_limit_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);


static ngx_conf_enum_t  ngx_http_asyncx_limit_log_levels[] = {
    { ngx_string("info"), NGX_LOG_INFO },
    { ngx_string("notice"), NGX_LOG_NOTICE },
    { ngx_string("warn"), NGX_LOG_WARN },
    { ngx_string("error"), NGX_LOG_ERR },
    { ngx_null_string, 0 }
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
    ngx_conf_merge_uint_value(conf->log_level, prev->log_level, NGX_LOG_ERR);
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
 * Every reference names a zone that asyncx_limit_zone declared: the
 * module's own statistics and metrics zones have its tag and data too
 * ("asyncx_limit asyncx_stats;" crashed every limited request).
 */

ngx_int_t
ngx_http_asyncx_limit_check_refs(ngx_conf_t *cf,
    ngx_http_asyncx_limit_main_conf_t *lmcf)
{
    ngx_uint_t        i;
    ngx_shm_zone_t  **refs;

    refs = lmcf->refs.elts;

    for (i = 0; i < lmcf->refs.nelts; i++) {
        if (refs[i]->data == NULL
            || refs[i]->init != ngx_http_asyncx_limit_init_zone)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown asyncx_limit_zone \"%V\"",
                               &refs[i]->shm.name);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * asyncx_limit_zone zone=name:size rate=Nr/s [burst=N] [concurrency=N]
 *                   [queue=N] [timeout=time] [key=string];
 */

char *
ngx_http_asyncx_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                            *value;
    ngx_uint_t                            i, k;
    ngx_http_asyncx_limit_zone_t         *lz;
    ngx_http_asyncx_limit_zone_parse_t    ps;

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

    ps.cf = cf;
    ps.cmd = cmd;
    ps.lz = lz;
    ps.size = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        for (k = 0; ngx_http_asyncx_limit_zone_params[k].prefix.len; k++) {
            if (ngx_strncmp(value[i].data,
                            ngx_http_asyncx_limit_zone_params[k].prefix.data,
                            ngx_http_asyncx_limit_zone_params[k].prefix.len)
                == 0)
            {
                break;
            }
        }

        if (ngx_http_asyncx_limit_zone_params[k].prefix.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in \"%V\" directive",
                               &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }

        if (ngx_http_asyncx_limit_zone_params[k].parse(&ps, &value[i],
                                        &ngx_http_asyncx_limit_zone_params[k])
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (lz->name.len == 0) {
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

    if (ngx_http_asyncx_limit_cluster_conf(cf, cmd, lz) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_asyncx_limit_zone_add(cf, lz, ps.size);
}


/* the zone's shared memory, its metrics series, its index */

static char *
ngx_http_asyncx_limit_zone_add(ngx_conf_t *cf,
    ngx_http_asyncx_limit_zone_t *lz, ssize_t size)
{
    ngx_shm_zone_t                *shm_zone, **zp;
    ngx_http_asyncx_main_conf_t   *amcf;

    shm_zone = ngx_shared_memory_add(cf, &lz->name, size,
                                     &ngx_http_asyncx_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\" in \"asyncx_limit_zone\" "
                           "directive", &lz->name);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_asyncx_limit_init_zone;
    shm_zone->data = lz;
    lz->shm_zone = shm_zone;

    /* asyncx_limit_wait_seconds{zone="name"} of the metrics endpoint */
    lz->metrics = ngx_http_asyncx_metrics_series(cf,
                                                 NGX_HTTP_ASYNCX_SERIES_LIMIT,
                                                 &lz->name, NULL);
    if (lz->metrics == NULL) {
        return NGX_CONF_ERROR;
    }

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


/* zone=name:size */

static ngx_int_t
ngx_http_asyncx_limit_zone_name(ngx_http_asyncx_limit_zone_parse_t *ps,
    ngx_str_t *arg, const ngx_http_asyncx_limit_zone_param_t *param)
{
    u_char     *p;
    ngx_str_t   name, s;

    name.data = arg->data + param->prefix.len;
    p = (u_char *) ngx_strchr(name.data, ':');

    if (p == NULL || p == name.data) {
        ngx_conf_log_error(NGX_LOG_EMERG, ps->cf, 0,
                           "invalid zone size \"%V\" in \"%V\" "
                           "directive, expected zone=name:size",
                           arg, &ps->cmd->name);
        return NGX_ERROR;
    }

    name.len = p - name.data;

    if (ngx_http_asyncx_conf_check_text(ps->cf, "zone name", &name,
                                        &ps->cmd->name)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the module's statistics and metrics zones (same tag, same list) */
    if ((name.len == sizeof("asyncx_stats") - 1
         && ngx_strncmp(name.data, "asyncx_stats", name.len) == 0)
        || (name.len == sizeof("asyncx_metrics") - 1
            && ngx_strncmp(name.data, "asyncx_metrics", name.len) == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, ps->cf, 0,
                           "invalid zone name \"%V\" in \"%V\" directive: "
                           "the module's own zone has that name",
                           &name, &ps->cmd->name);
        return NGX_ERROR;
    }

    s.data = p + 1;
    s.len = arg->data + arg->len - s.data;

    ps->size = ngx_parse_size(&s);

    if (ps->size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, ps->cf, 0,
                           "invalid zone size \"%V\" in \"%V\" "
                           "directive", arg, &ps->cmd->name);
        return NGX_ERROR;
    }

    if (ps->size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, ps->cf, 0,
                           "zone \"%V\" is too small: \"%V\" in \"%V\" "
                           "directive, at least %uzk", &name, arg,
                           &ps->cmd->name, 8 * ngx_pagesize / 1024);
        return NGX_ERROR;
    }

    ps->lz->name = name;

    return NGX_OK;
}


/* rate=Nr/s or Nr/m */

static ngx_int_t
ngx_http_asyncx_limit_zone_rate(ngx_http_asyncx_limit_zone_parse_t *ps,
    ngx_str_t *arg, const ngx_http_asyncx_limit_zone_param_t *param)
{
    if (ngx_http_asyncx_parse_rate(arg->data + param->prefix.len,
                                   arg->len - param->prefix.len,
                                   &ps->lz->rate)
        != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, ps->cf, 0,
                           "invalid rate \"%V\" in \"%V\" directive, "
                           "expected 1..1000000 r/s or r/m",
                           arg, &ps->cmd->name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* timeout=time: 0 would refuse every wait, queue=0 says that */

static ngx_int_t
ngx_http_asyncx_limit_zone_timeout(ngx_http_asyncx_limit_zone_parse_t *ps,
    ngx_str_t *arg, const ngx_http_asyncx_limit_zone_param_t *param)
{
    ngx_int_t   n;
    ngx_str_t   s;

    s.data = arg->data + param->prefix.len;
    s.len = arg->len - param->prefix.len;

    n = ngx_parse_time(&s, 0);

    if (n == NGX_ERROR || n == 0 || n > 86400000) {
        ngx_conf_log_error(NGX_LOG_EMERG, ps->cf, 0,
                           "invalid timeout \"%V\" in \"%V\" "
                           "directive, expected 1ms..24h",
                           arg, &ps->cmd->name);
        return NGX_ERROR;
    }

    ps->lz->timeout = (ngx_msec_t) n;

    return NGX_OK;
}


/* key=complex value */

static ngx_int_t
ngx_http_asyncx_limit_zone_key(ngx_http_asyncx_limit_zone_parse_t *ps,
    ngx_str_t *arg, const ngx_http_asyncx_limit_zone_param_t *param)
{
    ngx_str_t                          s;
    ngx_http_compile_complex_value_t   ccv;

    ps->lz->key = ngx_palloc(ps->cf->pool, sizeof(ngx_http_complex_value_t));
    if (ps->lz->key == NULL) {
        return NGX_ERROR;
    }

    s.data = arg->data + param->prefix.len;
    s.len = arg->len - param->prefix.len;

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
    ccv.cf = ps->cf;
    ccv.value = &s;
    ccv.complex_value = ps->lz->key;

    if (s.len == 0 || ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, ps->cf, 0,
                           "invalid key \"%V\" in \"%V\" directive",
                           arg, &ps->cmd->name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* burst=, concurrency=, queue=: a whole number within the param's range */

static ngx_int_t
ngx_http_asyncx_limit_zone_num(ngx_http_asyncx_limit_zone_parse_t *ps,
    ngx_str_t *arg, const ngx_http_asyncx_limit_zone_param_t *param)
{
    ngx_int_t  n;

    n = ngx_atoi(arg->data + param->prefix.len, arg->len - param->prefix.len);

    if (n == NGX_ERROR || n < param->min || n > param->max) {
        ngx_conf_log_error(NGX_LOG_EMERG, ps->cf, 0,
                           "invalid value \"%V\" in \"%V\" "
                           "directive, expected %i..%i",
                           arg, &ps->cmd->name, param->min, param->max);
        return NGX_ERROR;
    }

    *(ngx_uint_t *) ((u_char *) ps->lz + param->offset) = (ngx_uint_t) n;

    return NGX_OK;
}


/* cluster= and cluster_*=: ngx_http_asyncx_limit_cluster.c */

static ngx_int_t
ngx_http_asyncx_limit_zone_cluster(ngx_http_asyncx_limit_zone_parse_t *ps,
    ngx_str_t *arg, const ngx_http_asyncx_limit_zone_param_t *param)
{
    (void) param;

    return ngx_http_asyncx_limit_cluster_param(ps->cf, ps->cmd, ps->lz, arg);
}


/*
 * The zone keeps its state over a reload (tokens, slots, queues).  The
 * new configuration's limits take effect when its first worker starts
 * (ngx_http_asyncx_limit_lock() compares generations), so a reload that
 * fails later changes nothing.
 */

/*
 * After the whole configuration (worker_processes may come after http):
 * a zone's table has room for NGX_HTTP_ASYNCX_LQ_OWNERS workers, and a
 * worker without an entry refuses every limited request of the zone.
 */

ngx_int_t
ngx_http_asyncx_limit_init_module(ngx_cycle_t *cycle)
{
    ngx_core_conf_t              *ccf;
    ngx_http_asyncx_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_asyncx_module);
    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    if (amcf && amcf->limit.zones.nelts
        && ccf->worker_processes > NGX_HTTP_ASYNCX_LQ_OWNERS)
    {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "\"worker_processes\" %i is more than the %d "
                      "workers an \"asyncx_limit_zone\" has room for",
                      ccf->worker_processes, NGX_HTTP_ASYNCX_LQ_OWNERS);
        return NGX_ERROR;
    }

    return NGX_OK;
}


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
        return ngx_http_asyncx_limit_cluster_init_zone(lz, shm_zone->shm.log);
    }

    if (shm_zone->shm.exists) {
        lz->sh = lz->shpool->data;
        lz->gen = ++lz->sh->gen_next;
        return ngx_http_asyncx_limit_cluster_init_zone(lz, shm_zone->shm.log);
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

    return ngx_http_asyncx_limit_cluster_init_zone(lz, shm_zone->shm.log);
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

        ngx_http_asyncx_limit_cluster_init_process(cycle, lz);
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

        ngx_http_asyncx_limit_cluster_exit_process(cycle, lz);

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

            p = (ngx_http_asyncx_limit_key_cmp(lnt, ln->hashed, ln->data,
                                               ln->len) < 0)
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
