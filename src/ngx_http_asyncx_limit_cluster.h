
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_LIMIT_CLUSTER_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_LIMIT_CLUSTER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_asyncx_limit_queue.h"


/*
 * A zone's cluster mode (asyncx_limit_zone ... cluster=redis://...):
 * its tokens and slots live in Redis, shared by every nginx server of
 * the fleet; this server's waiting stays local.  The functions are
 * declared with the limiter's types in ngx_http_asyncx_limit_zone.h.
 */


/* what ngx_http_asyncx_limit_cluster_pass() answers besides NGX_* */
#define NGX_HTTP_ASYNCX_CLUSTER_LOCAL    1    /* the shm limiter decides */
#define NGX_HTTP_ASYNCX_CLUSTER_REFUSE   2    /* Redis unusable: 503 */

/* the mode a zone limits in; the fallbacks are the same numbers */
#define NGX_HTTP_ASYNCX_CLUSTER_REDIS    0
#define NGX_HTTP_ASYNCX_CLUSTER_FB_REFUSE  1
#define NGX_HTTP_ASYNCX_CLUSTER_FB_ALLOW   2
#define NGX_HTTP_ASYNCX_CLUSTER_FB_LOCAL   3


typedef struct ngx_http_asyncx_limit_cluster_s
    ngx_http_asyncx_limit_cluster_t;
typedef struct ngx_http_asyncx_limit_creq_s  ngx_http_asyncx_limit_creq_t;


/* in the zone's shared memory: this server's numbers, of all workers */

typedef struct {
    ngx_atomic_t                   mode;             /* last change */
    ngx_atomic_t                   admitted;
    ngx_atomic_t                   refused;
    ngx_atomic_t                   timed_out;
    ngx_atomic_t                   fallback_admitted;
    ngx_atomic_t                   fallback_refused;
    ngx_atomic_t                   redis_errors;
    ngx_atomic_t                   commands;
    ngx_atomic_t                   reconnects;
    ngx_atomic_t                   global_slots;     /* as Redis said */
    ngx_atomic_t                   global_tokens;    /* milli-tokens */
    ngx_atomic_t                   global_at;        /* ngx_current_msec */
    ngx_atomic_t                   wake_count;
    ngx_atomic_t                   wake_us_total;
    ngx_atomic_t                   wake_us_max;
    /* by owner index: each worker writes its own entry */
    ngx_atomic_t                   waiting[NGX_HTTP_ASYNCX_LQ_OWNERS];
    ngx_atomic_t                   held[NGX_HTTP_ASYNCX_LQ_OWNERS];
    /* requests let in by Redis (or cluster_fallback=allow), running */
    ngx_atomic_t                   running[NGX_HTTP_ASYNCX_LQ_OWNERS];
    ngx_atomic_t                   modes[NGX_HTTP_ASYNCX_LQ_OWNERS];
} ngx_http_asyncx_limit_cluster_sh_t;


#endif /* _NGX_HTTP_ASYNCX_LIMIT_CLUSTER_H_INCLUDED_ */
