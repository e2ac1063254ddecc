
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_LIMIT_QUEUE_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_LIMIT_QUEUE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_asyncx_limit_bucket.h"


/*
 * The limiter's waiting queue and slots, as they live in a shared zone:
 * pure code (nginx types and the ngx_queue_t macros, no nginx function),
 * run under the zone's lock by the caller, model-tested in
 * t/unit/test_limit_model.c.
 *
 * Every request inside the limiter has one record:
 *   WAITING  in its key's FIFO (a place in the queue);
 *   GRANTED  given a slot and a token by whichever worker found them
 *            free, not yet picked up by the request's own worker;
 *   HELD     picked up: the request runs.
 * GRANTED and HELD records are the key's slots ("active").  Records name
 * their worker by an index into the zone's owner table, which holds the
 * worker's pid: the records of a worker found dead are reclaimed by the
 * next look of any worker.
 */


#define NGX_HTTP_ASYNCX_LQ_OWNERS   128
#define NGX_HTTP_ASYNCX_LQ_NOBODY   ((ngx_uint_t) -1)

#define NGX_HTTP_ASYNCX_LQ_WAITING  1
#define NGX_HTTP_ASYNCX_LQ_GRANTED  2
#define NGX_HTTP_ASYNCX_LQ_HELD     3


typedef struct {
    ngx_queue_t                  link;      /* key's fifo or holds */
    uintptr_t                    local;     /* the owner's handle for it */
    uint64_t                     granted_us;
    uint16_t                     owner;
    uint8_t                      state;
    uint8_t                      armed;     /* owner's timer set for a token */
} ngx_http_asyncx_lq_rec_t;


typedef struct {
    int32_t                      pid;       /* 0: a free entry */
    uint32_t                     dead;      /* its records are reclaimed */
    uint32_t                     waiting;
    uint32_t                     granted;
    uint32_t                     held;
    ngx_msec_t                   checked;   /* last found alive */
} ngx_http_asyncx_lq_owner_t;


typedef struct {
    /* the limits in force, from the newest configuration */
    uint64_t                     rate;      /* milli-r/s */
    uint64_t                     burst;
    uint64_t                     concurrency;  /* 0: no cap */
    uint64_t                     queue;

    ngx_queue_t                  keys;      /* of ngx_http_asyncx_lq_key_t,
                                               most recently used first */
    ngx_uint_t                   nkeys;

    ngx_uint_t                   owners_n;  /* entries in use are below */
    ngx_http_asyncx_lq_owner_t   owners[NGX_HTTP_ASYNCX_LQ_OWNERS];

    uint64_t                     passed;    /* admitted on arrival */
    uint64_t                     delayed;   /* admitted after waiting */
    uint64_t                     rejected;  /* queue full */
    uint64_t                     timed_out;
    uint64_t                     left;      /* left while waiting */
    uint64_t                     reclaimed; /* records of dead workers */
    uint64_t                     zone_full;
    uint64_t                     dry_run_delayed;
    uint64_t                     dry_run_rejected;
    uint64_t                     handoffs;  /* grants picked up by another */
    uint64_t                     handoff_us_total;   /* worker: delay */
    uint64_t                     handoff_us_max;
} ngx_http_asyncx_lq_zone_t;


typedef struct {
    ngx_queue_t                  lru;       /* in the zone's keys */
    ngx_http_asyncx_bucket_t     bucket;
    ngx_queue_t                  fifo;      /* WAITING, oldest first */
    ngx_queue_t                  holds;     /* GRANTED and HELD */
    uint32_t                     waiting;
    uint32_t                     active;
    uint32_t                     dry_waiting;  /* would wait (dry run) */
    ngx_msec_t                   dry_last;     /* their tokens count from */
} ngx_http_asyncx_lq_key_t;


typedef struct ngx_http_asyncx_lq_env_s  ngx_http_asyncx_lq_env_t;

/*
 * What the caller provides to one operation.  grant() is called for each
 * record given a slot and a token (its owner must pick it up: at once if
 * it is the caller, or on a notification); kick() when the head of a FIFO
 * waits for a token only and its owner has no timer for it yet; drop()
 * frees a record reclaimed from a dead worker; alive() tells whether a
 * pid still runs.
 */

struct ngx_http_asyncx_lq_env_s {
    void                       (*grant)(ngx_http_asyncx_lq_env_t *env,
                                        ngx_http_asyncx_lq_key_t *key,
                                        ngx_http_asyncx_lq_rec_t *rec);
    void                       (*kick)(ngx_http_asyncx_lq_env_t *env,
                                       ngx_http_asyncx_lq_key_t *key,
                                       ngx_http_asyncx_lq_rec_t *head,
                                       ngx_msec_t due);
    void                       (*drop)(ngx_http_asyncx_lq_env_t *env,
                                       ngx_http_asyncx_lq_rec_t *rec);
    ngx_uint_t                 (*alive)(ngx_http_asyncx_lq_env_t *env,
                                        int32_t pid);
    void                        *data;
    ngx_msec_t                   now;
    uint64_t                     now_us;    /* 0: not read (see grant) */
    ngx_uint_t                   self;      /* caller's owner index */
};


void ngx_http_asyncx_lq_zone_init(ngx_http_asyncx_lq_zone_t *z);
void ngx_http_asyncx_lq_apply(ngx_http_asyncx_lq_zone_t *z, uint64_t rate,
    uint64_t burst, uint64_t concurrency, uint64_t queue,
    ngx_http_asyncx_lq_env_t *env);
void ngx_http_asyncx_lq_key_init(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_key_t *k, ngx_msec_t now);
void ngx_http_asyncx_lq_key_remove(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_key_t *k);
void ngx_http_asyncx_lq_key_touch(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_key_t *k);
ngx_http_asyncx_lq_key_t *ngx_http_asyncx_lq_idle_key(
    ngx_http_asyncx_lq_zone_t *z, ngx_http_asyncx_lq_key_t *except);

ngx_int_t ngx_http_asyncx_lq_register(ngx_http_asyncx_lq_zone_t *z,
    int32_t pid, ngx_uint_t fresh, ngx_http_asyncx_lq_env_t *env);
void ngx_http_asyncx_lq_unregister(ngx_http_asyncx_lq_zone_t *z,
    ngx_uint_t owner);
ngx_uint_t ngx_http_asyncx_lq_look(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_env_t *env);

ngx_int_t ngx_http_asyncx_lq_arrive(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_key_t *k, ngx_http_asyncx_lq_rec_t *rec,
    ngx_uint_t dry_run, ngx_http_asyncx_lq_env_t *env);
ngx_uint_t ngx_http_asyncx_lq_pump(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_key_t *k, ngx_http_asyncx_lq_env_t *env);
ngx_msec_t ngx_http_asyncx_lq_due(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_key_t *k, ngx_http_asyncx_lq_rec_t *rec,
    ngx_msec_t now);
void ngx_http_asyncx_lq_claim(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_rec_t *rec, ngx_http_asyncx_lq_env_t *env);
void ngx_http_asyncx_lq_leave(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_key_t *k, ngx_http_asyncx_lq_rec_t *rec,
    ngx_http_asyncx_lq_env_t *env);


#endif /* _NGX_HTTP_ASYNCX_LIMIT_QUEUE_H_INCLUDED_ */
