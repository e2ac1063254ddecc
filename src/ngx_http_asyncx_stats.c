
/*
 * Copyright (C) asyncx authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx.h"


/* about 165 KiB of counters, most of it the per-process slots */
#define NGX_HTTP_ASYNCX_STATS_ZONE_SIZE  (256 * 1024)


static ngx_int_t ngx_http_asyncx_stats_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_asyncx_stats_reclaim(ngx_http_asyncx_stats_t *sh,
    ngx_uint_t claiming, ngx_log_t *log);
static void ngx_http_asyncx_stats_clear(ngx_http_asyncx_worker_stats_t *w);
static ngx_http_asyncx_worker_stats_t *ngx_http_asyncx_worker_stats(void);


static ngx_str_t  ngx_http_asyncx_stats_zone_name =
    ngx_string("asyncx_stats");


ngx_int_t
ngx_http_asyncx_stats_init_main_conf(ngx_conf_t *cf,
    ngx_http_asyncx_stats_main_conf_t *smcf)
{
    if (ngx_array_init(&smcf->pool_names, cf->pool, 4, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    smcf->zone = ngx_shared_memory_add(cf, &ngx_http_asyncx_stats_zone_name,
                                       NGX_HTTP_ASYNCX_STATS_ZONE_SIZE,
                                       &ngx_http_asyncx_module);
    if (smcf->zone == NULL) {
        return NGX_ERROR;
    }

    smcf->zone->init = ngx_http_asyncx_stats_init_zone;
    smcf->zone->data = smcf;

    return NGX_OK;
}


/* the index of a pool name in smcf->pool_names, added if new */

ngx_int_t
ngx_http_asyncx_stats_add_pool(ngx_conf_t *cf,
    ngx_http_asyncx_stats_main_conf_t *smcf, ngx_str_t *name)
{
    ngx_str_t   *names, *n;
    ngx_uint_t   i;

    names = smcf->pool_names.elts;

    for (i = 0; i < smcf->pool_names.nelts; i++) {
        if (names[i].len == name->len
            && ngx_strncmp(names[i].data, name->data, name->len) == 0)
        {
            return i;
        }
    }

    if (smcf->pool_names.nelts == NGX_HTTP_ASYNCX_MAX_POOLS) {
        /* merge time: the line is the block's end, so name the pool */
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "thread pool \"%V\" in \"asyncx_thread_pools\" "
                           "is one too many: locations that run jobs may "
                           "use at most %d thread pools in all",
                           name, NGX_HTTP_ASYNCX_MAX_POOLS);
        return NGX_ERROR;
    }

    n = ngx_array_push(&smcf->pool_names);
    if (n == NULL) {
        return NGX_ERROR;
    }

    *n = *name;

    return smcf->pool_names.nelts - 1;
}


/*
 * Counters survive reloads: the zone is reused when nginx keeps it, and
 * pools are matched to their slots by name, not by declaration order.
 */

static ngx_int_t
ngx_http_asyncx_stats_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_asyncx_stats_main_conf_t  *osmcf = data;

    size_t                               len;
    ngx_str_t                           *names;
    ngx_uint_t                           i, s;
    ngx_slab_pool_t                     *shpool;
    ngx_http_asyncx_stats_t             *sh;
    ngx_http_asyncx_stats_main_conf_t  *smcf;

    smcf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (osmcf) {
        sh = osmcf->sh;

    } else if (shm_zone->shm.exists) {
        sh = shpool->data;

    } else {
        sh = ngx_slab_calloc(shpool, sizeof(ngx_http_asyncx_stats_t));
        if (sh == NULL) {
            return NGX_ERROR;
        }

        shpool->data = sh;
    }

    smcf->sh = sh;

    /*
     * Until init_process claims a slot of its own.  A single process
     * (master_process off) reloads without init_process: it keeps its slot.
     */
    smcf->worker = osmcf ? osmcf->worker
                         : &sh->workers[NGX_HTTP_ASYNCX_MAX_WORKERS];

    names = smcf->pool_names.elts;

    for (i = 0; i < smcf->pool_names.nelts; i++) {
        len = names[i].len;

        for (s = 0; s < NGX_HTTP_ASYNCX_MAX_POOLS; s++) {
            if (ngx_strlen(sh->pools[s].name) == len
                && ngx_strncmp(sh->pools[s].name, names[i].data, len) == 0)
            {
                break;
            }
        }

        if (s == NGX_HTTP_ASYNCX_MAX_POOLS) {
            for (s = 0; s < NGX_HTTP_ASYNCX_MAX_POOLS; s++) {
                if (sh->pools[s].name[0] == '\0') {
                    break;
                }
            }

            if (s == NGX_HTTP_ASYNCX_MAX_POOLS) {
                /* reloads renamed pools past the limit: start over */
                ngx_memzero(sh->pools, sizeof(sh->pools));
                s = 0;
            }

            ngx_memzero(&sh->pools[s], sizeof(ngx_http_asyncx_pool_stats_t));
            ngx_memcpy(sh->pools[s].name, names[i].data, len);
        }

        smcf->pool_slot[i] = s;
    }

    return NGX_OK;
}


/* a worker (or the single process) takes a free slot for its gauges */

ngx_int_t
ngx_http_asyncx_stats_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                    i;
    ngx_slab_pool_t              *shpool;
    ngx_http_asyncx_stats_t      *sh;
    ngx_http_asyncx_main_conf_t  *amcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    amcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_asyncx_module);
    if (amcf == NULL || amcf->stats.sh == NULL) {
        return NGX_OK;
    }

    sh = amcf->stats.sh;
    shpool = (ngx_slab_pool_t *) amcf->stats.zone->shm.addr;

    ngx_shmtx_lock(&shpool->mutex);

    ngx_http_asyncx_stats_reclaim(sh, 1, cycle->log);

    for (i = 0; i < NGX_HTTP_ASYNCX_MAX_WORKERS; i++) {
        if (sh->workers[i].pid == 0) {
            ngx_http_asyncx_stats_clear(&sh->workers[i]);
            sh->workers[i].pid = ngx_pid;
            amcf->stats.worker = &sh->workers[i];
            break;
        }
    }

    ngx_shmtx_unlock(&shpool->mutex);

    if (i == NGX_HTTP_ASYNCX_MAX_WORKERS) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "asyncx: no free process slot in the \"%V\" zone, "
                      "what this worker has in flight is counted in a "
                      "shared slot that is never dropped",
                      &amcf->stats.zone->shm.name);
    }

    return NGX_OK;
}


/* a worker that exits normally has nothing left in flight */

void
ngx_http_asyncx_stats_exit_process(ngx_cycle_t *cycle)
{
    ngx_slab_pool_t                 *shpool;
    ngx_http_asyncx_main_conf_t     *amcf;
    ngx_http_asyncx_worker_stats_t  *w;

    amcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_asyncx_module);
    if (amcf == NULL || amcf->stats.sh == NULL) {
        return;
    }

    w = amcf->stats.worker;

    if (w == &amcf->stats.sh->workers[NGX_HTTP_ASYNCX_MAX_WORKERS]) {
        return;
    }

    shpool = (ngx_slab_pool_t *) amcf->stats.zone->shm.addr;

    ngx_shmtx_lock(&shpool->mutex);

    if (w->pid == (ngx_atomic_uint_t) ngx_pid) {
        ngx_http_asyncx_stats_clear(w);
        w->pid = 0;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    amcf->stats.worker = &amcf->stats.sh->workers[
                                               NGX_HTTP_ASYNCX_MAX_WORKERS];
}


/*
 * Drops the slots of processes that are gone (killed, crashed): what they
 * had in flight will never end.  Under the zone's mutex, so that a slot
 * is never dropped while a new worker claims it.  kill(pid, 0) answers
 * ESRCH only once the master has reaped the process; EPERM (a process of
 * another user, say after "user" changed on reload) counts as alive:
 * dropping a live worker's slot would let it write into another's.  A
 * worker that starts with the pid of a dead one finds that slot stale.
 */

static void
ngx_http_asyncx_stats_reclaim(ngx_http_asyncx_stats_t *sh,
    ngx_uint_t claiming, ngx_log_t *log)
{
    ngx_pid_t                        pid;
    ngx_uint_t                       i, p;
    ngx_atomic_uint_t                queued, running;
    ngx_http_asyncx_worker_stats_t  *w;

    for (i = 0; i < NGX_HTTP_ASYNCX_MAX_WORKERS; i++) {
        w = &sh->workers[i];
        pid = (ngx_pid_t) w->pid;

        if (pid == 0) {
            continue;
        }

        if (pid == ngx_pid) {
            if (!claiming) {
                continue;
            }

        } else if (kill(pid, 0) == 0 || ngx_errno != NGX_ESRCH) {
            continue;
        }

        queued = 0;
        running = 0;

        for (p = 0; p < NGX_HTTP_ASYNCX_MAX_POOLS; p++) {
            queued += w->gauges[NGX_HTTP_ASYNCX_GAUGE_QUEUED + p];
            running += w->gauges[NGX_HTTP_ASYNCX_GAUGE_RUNNING + p];
        }

        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "asyncx: process %P is gone, dropped what it had in "
                      "flight: %uA pipelines, %uA mock answers, "
                      "%uA streams, %uA jobs queued, %uA running",
                      pid, w->gauges[NGX_HTTP_ASYNCX_GAUGE_PIPELINES],
                      w->gauges[NGX_HTTP_ASYNCX_GAUGE_MOCKS],
                      w->gauges[NGX_HTTP_ASYNCX_GAUGE_STREAMS],
                      queued, running);

        ngx_http_asyncx_stats_clear(w);
        w->pid = 0;
    }
}


static void
ngx_http_asyncx_stats_clear(ngx_http_asyncx_worker_stats_t *w)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_ASYNCX_GAUGE_N; i++) {
        w->gauges[i] = 0;
    }
}


ngx_http_asyncx_stats_t *
ngx_http_asyncx_stats(void)
{
    ngx_http_asyncx_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_asyncx_module);

    return amcf->stats.sh;
}


ngx_atomic_uint_t
ngx_http_asyncx_stat(ngx_uint_t counter)
{
    return ngx_http_asyncx_stats()->counters[counter];
}


void
ngx_http_asyncx_stat_add(ngx_uint_t counter, ngx_atomic_int_t delta)
{
    (void) ngx_atomic_fetch_add(&ngx_http_asyncx_stats()->counters[counter],
                                delta);
}


static ngx_http_asyncx_worker_stats_t *
ngx_http_asyncx_worker_stats(void)
{
    ngx_http_asyncx_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_asyncx_module);

    return amcf->stats.worker;
}


/* for thread tasks: they keep the pointer, not the cycle */

ngx_atomic_t *
ngx_http_asyncx_gauge_ptr(ngx_uint_t gauge)
{
    return &ngx_http_asyncx_worker_stats()->gauges[gauge];
}


void
ngx_http_asyncx_gauge_add(ngx_uint_t gauge, ngx_atomic_int_t delta)
{
    (void) ngx_atomic_fetch_add(ngx_http_asyncx_gauge_ptr(gauge), delta);
}


/* the sum over live processes: free and dropped slots hold zeros */

ngx_atomic_uint_t
ngx_http_asyncx_gauge(ngx_uint_t gauge)
{
    ngx_uint_t                i;
    ngx_atomic_int_t          sum;
    ngx_http_asyncx_stats_t  *sh;

    sh = ngx_http_asyncx_stats();
    sum = 0;

    for (i = 0; i <= NGX_HTTP_ASYNCX_MAX_WORKERS; i++) {
        sum += (ngx_atomic_int_t) sh->workers[i].gauges[gauge];
    }

    return sum > 0 ? (ngx_atomic_uint_t) sum : 0;
}


/*
 * What killed workers had in flight is not in flight any more: every
 * reader of the gauges (JSON, Prometheus, the status stream) calls this
 * first.
 */

void
ngx_http_asyncx_stats_reclaim_dead(ngx_http_request_t *r)
{
    ngx_slab_pool_t              *shpool;
    ngx_http_asyncx_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_asyncx_module);
    shpool = (ngx_slab_pool_t *) amcf->stats.zone->shm.addr;

    ngx_shmtx_lock(&shpool->mutex);
    ngx_http_asyncx_stats_reclaim(amcf->stats.sh, 0, r->connection->log);
    ngx_shmtx_unlock(&shpool->mutex);
}
