
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_LIMIT_ZONE_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_LIMIT_ZONE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx_limit_bucket.h"


/*
 * The limiter's shared-memory layout and request state, shared by the
 * admission code (ngx_http_asyncx_limit.c) and the reporting endpoints
 * (ngx_http_asyncx_limit_report.c).  Private to the limiter.
 */


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
    uint64_t                       decided_us;   /* admitted or refused */
    ngx_uint_t                     state;
    unsigned                       waited:1;
    unsigned                       timed_out:1;
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


#define ngx_http_asyncx_limit_owners(lz, node)                                \
    ((int32_t *) ((node)->data + ngx_align((node)->len, sizeof(int32_t))))

#define ngx_http_asyncx_limit_holders(lz, node)                               \
    (ngx_http_asyncx_limit_owners(lz, node) + (lz)->queue)


ngx_shm_zone_t *ngx_http_asyncx_limit_ref(ngx_conf_t *cf, ngx_str_t *name);
double ngx_http_asyncx_limit_rps(ngx_http_asyncx_limit_node_t *node,
    ngx_msec_t now);


#endif /* _NGX_HTTP_ASYNCX_LIMIT_ZONE_H_INCLUDED_ */
