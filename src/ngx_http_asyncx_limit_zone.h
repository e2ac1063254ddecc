
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_LIMIT_ZONE_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_LIMIT_ZONE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx_limit.h"
#include "ngx_http_asyncx_limit_bucket.h"
#include "ngx_http_asyncx_limit_queue.h"
#include "ngx_http_asyncx_limit_cluster.h"


/*
 * The limiter's shared-memory layout, its per-worker state and the
 * request state, shared by the admission code (ngx_http_asyncx_limit.c),
 * the wake-ups (_limit_wake.c) and the endpoints (_limit_report.c).
 * Private to the limiter.
 */


/* a worker without a wake-up socket looks at its waiters this often */
#define NGX_HTTP_ASYNCX_LIMIT_POLL       10

/*
 * A waiter with a wake-up socket looks again this often anyway: a
 * wake-up datagram not sent (the socket's queue full: any local process
 * can fill it) costs at most this, not the wait's whole timeout.
 */
#define NGX_HTTP_ASYNCX_LIMIT_SAFETY     1000

/* admissions per 100 ms over the last second, for current_rps */
#define NGX_HTTP_ASYNCX_LIMIT_RPS_SLOTS  10

#define NGX_HTTP_ASYNCX_LIMIT_TEST_MAX   100

/* what the limiter decided, for $asyncx_limit_status */
#define NGX_HTTP_ASYNCX_LIMIT_PASSED            1
#define NGX_HTTP_ASYNCX_LIMIT_DELAYED           2
#define NGX_HTTP_ASYNCX_LIMIT_DELAYED_DRY_RUN   3
#define NGX_HTTP_ASYNCX_LIMIT_REJECTED_DRY_RUN  4
#define NGX_HTTP_ASYNCX_LIMIT_REJECTED          5
#define NGX_HTTP_ASYNCX_LIMIT_TIMEOUT           6


typedef struct {
    ngx_rbtree_t                   rbtree;
    ngx_rbtree_node_t              sentinel;
    uint64_t                       secret;       /* proves a wake-up */
    ngx_uint_t                     gen_next;     /* configurations loaded */
    ngx_uint_t                     gen_applied;  /* the one in force */
    ngx_http_asyncx_lq_zone_t      lq;
    ngx_http_asyncx_limit_cluster_sh_t  *cluster;   /* cluster zones */

    /*
     * A cluster zone's admissions decided in Redis (or let in by
     * cluster_fallback=allow), for current_rps: they have no key node
     * here, whose slots count the shm limiter's own admissions.
     */
    uint32_t                       rps_slot[NGX_HTTP_ASYNCX_LIMIT_RPS_SLOTS];
    uint32_t                       rps_count[NGX_HTTP_ASYNCX_LIMIT_RPS_SLOTS];
} ngx_http_asyncx_limit_shctx_t;


/*
 * A key node and a request's record are allocated with one size,
 * NGX_HTTP_ASYNCX_LIMIT_CHUNK, so the slab keeps them in one size class:
 * an evicted idle key always leaves room for the next key or record
 * (of different sizes, freeing one would not give the other a page).
 * A key of up to NGX_HTTP_ASYNCX_LIMIT_KEY_INLINE bytes is kept as it
 * is, a longer one as its SHA-256 digest, so every key fits a node.
 */

#define NGX_HTTP_ASYNCX_LIMIT_KEY_INLINE  64
#define NGX_HTTP_ASYNCX_LIMIT_DIGEST      32

typedef struct {
    u_char                         color;
    u_char                         hashed;       /* data is a digest */
    u_short                        len;
    ngx_http_asyncx_lq_key_t       key;
    uint32_t                       rps_slot[NGX_HTTP_ASYNCX_LIMIT_RPS_SLOTS];
    uint32_t                       rps_count[NGX_HTTP_ASYNCX_LIMIT_RPS_SLOTS];
    u_char                         data[NGX_HTTP_ASYNCX_LIMIT_KEY_INLINE];
} ngx_http_asyncx_limit_node_t;

#define NGX_HTTP_ASYNCX_LIMIT_CHUNK                                           \
    (offsetof(ngx_rbtree_node_t, color) + sizeof(ngx_http_asyncx_limit_node_t))


typedef struct {
    ngx_http_asyncx_limit_shctx_t *sh;
    ngx_slab_pool_t               *shpool;
    ngx_shm_zone_t                *shm_zone;
    ngx_http_asyncx_limit_main_conf_t  *lmcf;
    ngx_str_t                      name;
    ngx_uint_t                     index;        /* order of declaration */
    uint64_t                       rate;         /* milli-r/s */
    ngx_uint_t                     burst;
    ngx_uint_t                     concurrency;  /* 0: no cap */
    ngx_uint_t                     queue;
    ngx_msec_t                     timeout;
    ngx_http_complex_value_t      *key;          /* NULL: one bucket */
    ngx_uint_t                     gen;          /* of this configuration */
    ngx_http_asyncx_series_t      *metrics;      /* the wait histogram */
    ngx_http_asyncx_limit_cluster_t  *cluster;   /* NULL: shm only */

    /* this worker's: its entry in the owner table, its waiters */
    ngx_uint_t                     self;
    ngx_queue_t                    waiters;

    /* this worker's "zone is full" alerts, one a minute */
    ngx_msec_t                     full_logged_at;
    ngx_uint_t                     full_unlogged;
    unsigned                       full_logged:1;
} ngx_http_asyncx_limit_zone_t;


/* one zone a request goes through */

typedef struct {
    ngx_http_asyncx_limit_zone_t  *zone;
    ngx_http_asyncx_limit_node_t  *node;
    ngx_http_asyncx_lq_rec_t      *rec;          /* NULL: none, or gone */
    ngx_http_asyncx_limit_creq_t  *cluster;      /* its state in Redis */
    ngx_str_t                      admitted_key; /* what Redis admitted
                                                    (encoded), for the
                                                    subrequests */
    ngx_msec_t                     wait_start;
    uint64_t                       wait_start_us;
    unsigned                       done:1;       /* passed this zone */
    unsigned                       waited:1;
    unsigned                       running:1;    /* counted in the
                                                    cluster's running */
    unsigned                       admitted:1;   /* by Redis: the key
                                                    above is set */
} ngx_http_asyncx_limit_pass_t;


#define NGX_HTTP_ASYNCX_LIMIT_NEW       0
#define NGX_HTTP_ASYNCX_LIMIT_WAITING   1
#define NGX_HTTP_ASYNCX_LIMIT_ADMITTED  2
#define NGX_HTTP_ASYNCX_LIMIT_DONE      3      /* refused or released */


struct ngx_http_asyncx_limit_ctx_s {
    ngx_http_request_t            *request;
    ngx_http_asyncx_limit_conf_t  *conf;
    ngx_http_asyncx_limit_pass_t  *passes;
    ngx_uint_t                     n;
    ngx_uint_t                     cur;          /* the zone it is at */
    ngx_uint_t                     state;
    ngx_uint_t                     outcome;
    ngx_uint_t                     status;       /* of a refusal */
    ngx_event_t                    wait;
    ngx_queue_t                    local;        /* in zone->waiters */
    ngx_msec_t                     due;          /* next token, if head */
    uint64_t                       arrived_us;
    uint64_t                       admitted_us;
    uint64_t                       decided_us;   /* admitted or refused */
    time_t                         retry_after;  /* 0: from the rate */
};


/* one operation under a zone's lock: the queue's env and what follows */

typedef struct {
    ngx_http_asyncx_lq_env_t       env;
    ngx_http_asyncx_limit_zone_t  *zone;
    ngx_http_asyncx_limit_ctx_t   *current;      /* the caller's request */
    ngx_log_t                     *log;
    ngx_uint_t                     nnotify;
    int32_t                        notify[NGX_HTTP_ASYNCX_LQ_OWNERS];
} ngx_http_asyncx_limit_op_t;


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
    ngx_str_t                      args;       /* after the uri's '?' */
};


#define ngx_http_asyncx_limit_node_of(k)                                      \
    ((ngx_http_asyncx_limit_node_t *)                                         \
        ((u_char *) (k) - offsetof(ngx_http_asyncx_limit_node_t, key)))


ngx_shm_zone_t *ngx_http_asyncx_limit_ref(ngx_conf_t *cf, ngx_str_t *name);
ngx_int_t ngx_http_asyncx_limit_key_cmp(ngx_http_asyncx_limit_node_t *ln,
    ngx_uint_t hashed, u_char *data, size_t len);
double ngx_http_asyncx_limit_rps(uint32_t *slots, uint32_t *counts,
    ngx_msec_t now);
void ngx_http_asyncx_limit_count(uint32_t *slots, uint32_t *counts,
    ngx_msec_t now);

/* _limit_wake.c */
ngx_int_t ngx_http_asyncx_limit_lock(ngx_http_asyncx_limit_zone_t *lz,
    ngx_http_asyncx_limit_op_t *op, ngx_http_asyncx_limit_ctx_t *current,
    ngx_log_t *log);
void ngx_http_asyncx_limit_unlock(ngx_http_asyncx_limit_op_t *op);
void ngx_http_asyncx_limit_arm(ngx_http_asyncx_limit_ctx_t *ctx);
ngx_int_t ngx_http_asyncx_limit_wake_init(ngx_cycle_t *cycle,
    ngx_http_asyncx_limit_main_conf_t *lmcf);
void ngx_http_asyncx_limit_wake_exit(ngx_cycle_t *cycle,
    ngx_http_asyncx_limit_main_conf_t *lmcf);

/* _limit_cluster.c */
ngx_int_t ngx_http_asyncx_limit_cluster_param(ngx_conf_t *cf,
    ngx_command_t *cmd, ngx_http_asyncx_limit_zone_t *lz, ngx_str_t *arg);
char *ngx_http_asyncx_limit_cluster_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_asyncx_limit_zone_t *lz);
ngx_int_t ngx_http_asyncx_limit_cluster_init_zone(
    ngx_http_asyncx_limit_zone_t *lz, ngx_log_t *log);
void ngx_http_asyncx_limit_cluster_init_process(ngx_cycle_t *cycle,
    ngx_http_asyncx_limit_zone_t *lz);
void ngx_http_asyncx_limit_cluster_exit_process(ngx_cycle_t *cycle,
    ngx_http_asyncx_limit_zone_t *lz);
ngx_int_t ngx_http_asyncx_limit_cluster_pass(ngx_http_asyncx_limit_ctx_t *ctx,
    ngx_http_asyncx_limit_pass_t *pass);
ngx_uint_t ngx_http_asyncx_limit_cluster_held(ngx_http_request_t *r,
    ngx_http_asyncx_limit_pass_t *pass);
void ngx_http_asyncx_limit_cluster_release(ngx_http_asyncx_limit_pass_t *pass);
void ngx_http_asyncx_limit_cluster_count(ngx_http_asyncx_limit_pass_t *pass,
    ngx_int_t rc);
void ngx_http_asyncx_limit_cluster_done(ngx_http_asyncx_limit_pass_t *pass);
void ngx_http_asyncx_limit_cluster_limits(ngx_http_asyncx_limit_zone_t *lz,
    uint64_t *rate, uint64_t *burst, uint64_t *concurrency);
ngx_int_t ngx_http_asyncx_limit_cluster_json(ngx_http_asyncx_limit_zone_t *lz,
    struct cJSON *root, ngx_uint_t *active, ngx_uint_t *waiting);


#endif /* _NGX_HTTP_ASYNCX_LIMIT_ZONE_H_INCLUDED_ */
