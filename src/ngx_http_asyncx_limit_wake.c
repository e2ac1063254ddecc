
/*
 * Copyright (C) asyncx authors
 *
 * The limiter's side of the queue's env: what happens under a zone's
 * lock when a record is granted, a head must watch for the next token, a
 * dead worker's record is dropped; and the wake-ups between workers.
 *
 * A grant or a kick for a request of this worker acts at once: the grant
 * is picked up and the request's event posted (it resumes in this event
 * loop turn), a kick sets the request's timer for the next token.  For a
 * request of another worker the pid is noted and, after the lock is
 * released, that worker gets a datagram on its wake-up socket (an
 * abstract unix socket named after its pid, bound at worker start).  The
 * datagram carries the zone's secret, so only a process that can read
 * the zone can wake a worker; the worker then looks at its own waiters
 * of that zone.  A worker that could not bind its socket falls back to
 * looking every NGX_HTTP_ASYNCX_LIMIT_POLL ms.  A datagram can be lost
 * (the socket's queue is full, which any local process can arrange): a
 * waiter looks again every NGX_HTTP_ASYNCX_LIMIT_SAFETY ms anyway.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sys/un.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_limit_zone.h"


static void ngx_http_asyncx_limit_grant(ngx_http_asyncx_lq_env_t *env,
    ngx_http_asyncx_lq_key_t *k, ngx_http_asyncx_lq_rec_t *rec);
static void ngx_http_asyncx_limit_kick(ngx_http_asyncx_lq_env_t *env,
    ngx_http_asyncx_lq_key_t *k, ngx_http_asyncx_lq_rec_t *head,
    ngx_msec_t due);
static void ngx_http_asyncx_limit_drop(ngx_http_asyncx_lq_env_t *env,
    ngx_http_asyncx_lq_rec_t *rec);
static ngx_uint_t ngx_http_asyncx_limit_alive(ngx_http_asyncx_lq_env_t *env,
    int32_t pid);
static void ngx_http_asyncx_limit_note(ngx_http_asyncx_limit_op_t *op,
    ngx_uint_t owner);
static void ngx_http_asyncx_limit_post(ngx_http_asyncx_limit_ctx_t *ctx);
static socklen_t ngx_http_asyncx_limit_wake_addr(struct sockaddr_un *sa,
    ngx_pid_t pid);
static void ngx_http_asyncx_limit_wake_send(ngx_http_asyncx_limit_zone_t *lz,
    ngx_log_t *log, int32_t pid);
static void ngx_http_asyncx_limit_wake_handler(ngx_event_t *rev);
static void ngx_http_asyncx_limit_service(ngx_http_asyncx_limit_zone_t *lz,
    ngx_log_t *log);


/*
 * Takes the zone's lock for one operation and looks first: registers
 * this worker if needed, applies a newer configuration's limits, and
 * reclaims what dead workers left.  NGX_ERROR (the owner table is full)
 * leaves the lock taken: the caller unlocks.
 */

ngx_int_t
ngx_http_asyncx_limit_lock(ngx_http_asyncx_limit_zone_t *lz,
    ngx_http_asyncx_limit_op_t *op, ngx_http_asyncx_limit_ctx_t *current,
    ngx_log_t *log)
{
    ngx_int_t                       owner;
    ngx_http_asyncx_limit_shctx_t  *sh;

    op->env.grant = ngx_http_asyncx_limit_grant;
    op->env.kick = ngx_http_asyncx_limit_kick;
    op->env.drop = ngx_http_asyncx_limit_drop;
    op->env.alive = ngx_http_asyncx_limit_alive;
    op->env.data = op;
    op->env.now = ngx_current_msec;

    /* read only for a hand-off between workers: a clock read is a syscall
       on some virtual machines */
    op->env.now_us = 0;
    op->zone = lz;
    op->current = current;
    op->log = log;
    op->nnotify = 0;

    sh = lz->sh;

    ngx_shmtx_lock(&lz->shpool->mutex);

    if (lz->self == NGX_HTTP_ASYNCX_LQ_NOBODY) {
        op->env.self = NGX_HTTP_ASYNCX_LQ_NOBODY;

        /*
         * A worker registers once (at its start unless that failed): an
         * entry with its pid is a dead process's.  A single process keeps
         * its entry over a reload.
         */
        owner = ngx_http_asyncx_lq_register(&sh->lq, (int32_t) ngx_pid,
                                         ngx_process == NGX_PROCESS_WORKER,
                                         &op->env);
        if (owner == NGX_ERROR) {
            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "asyncx limit: zone \"%V\" is used by more than "
                          "%d worker processes at once", &lz->name,
                          NGX_HTTP_ASYNCX_LQ_OWNERS);
            return NGX_ERROR;
        }

        lz->self = (ngx_uint_t) owner;
    }

    op->env.self = lz->self;

    if (lz->gen > sh->gen_applied) {
        ngx_http_asyncx_lq_apply(&sh->lq, lz->rate, lz->burst,
                                 lz->concurrency, lz->queue, &op->env);
        sh->gen_applied = lz->gen;
    }

    ngx_http_asyncx_lq_look(&sh->lq, &op->env);

    return NGX_OK;
}


/* releases the lock, then wakes the other workers that have work */

void
ngx_http_asyncx_limit_unlock(ngx_http_asyncx_limit_op_t *op)
{
    ngx_uint_t  i;

    ngx_shmtx_unlock(&op->zone->shpool->mutex);

    for (i = 0; i < op->nnotify; i++) {
        ngx_http_asyncx_limit_wake_send(op->zone, op->log, op->notify[i]);
    }
}


/*
 * A waiting request's timer: the rest of its timeout, or the next token
 * if it heads its queue, or the poll of a worker without wake-ups.
 */

void
ngx_http_asyncx_limit_arm(ngx_http_asyncx_limit_ctx_t *ctx)
{
    ngx_msec_t                     t, cap, waited;
    ngx_http_asyncx_limit_pass_t  *pass;

    if (ctx->wait.posted) {
        /* it runs this event loop turn anyway */
        return;
    }

    pass = &ctx->passes[ctx->cur];
    waited = ngx_current_msec - pass->wait_start;

    t = waited < pass->zone->timeout ? pass->zone->timeout - waited : 1;

    if (ctx->due && ctx->due < t) {
        t = ctx->due;
    }

    if (ngx_process == NGX_PROCESS_WORKER) {
        /* a wake-up can be lost: the waiter looks again after at most */
        cap = pass->zone->lmcf->wake ? NGX_HTTP_ASYNCX_LIMIT_SAFETY
                                     : NGX_HTTP_ASYNCX_LIMIT_POLL;
        if (t > cap) {
            t = cap;
        }
    }

    /*
     * ngx_add_timer() keeps a timer that is set within 300 ms of the new
     * time (NGX_TIMER_LAZY_DELAY): a token due sooner must move it
     */
    if (ctx->wait.timer_set) {
        ngx_del_timer(&ctx->wait);
    }

    ngx_add_timer(&ctx->wait, t);
}


static void
ngx_http_asyncx_limit_grant(ngx_http_asyncx_lq_env_t *env,
    ngx_http_asyncx_lq_key_t *k, ngx_http_asyncx_lq_rec_t *rec)
{
    ngx_http_asyncx_limit_op_t   *op = env->data;

    ngx_http_asyncx_limit_ctx_t   *ctx;
    ngx_http_asyncx_limit_node_t  *node;

    node = ngx_http_asyncx_limit_node_of(k);
    ngx_http_asyncx_limit_count(node->rps_slot, node->rps_count, env->now);

    if (rec->owner != env->self) {
        /* a hand-off: its delay is measured from now to the pick-up */
        if (env->now_us == 0) {
            env->now_us = ngx_http_asyncx_now_usec();
        }

        rec->granted_us = env->now_us;
        ngx_http_asyncx_limit_note(op, rec->owner);
        return;
    }

    /* ours: picked up at once, not a hand-off between workers */
    rec->granted_us = 0;
    ngx_http_asyncx_lq_claim(&op->zone->sh->lq, rec, env);

    ctx = (ngx_http_asyncx_limit_ctx_t *) rec->local;

    if (ctx != op->current) {
        ngx_http_asyncx_limit_post(ctx);
    }
}


static void
ngx_http_asyncx_limit_kick(ngx_http_asyncx_lq_env_t *env,
    ngx_http_asyncx_lq_key_t *k, ngx_http_asyncx_lq_rec_t *head,
    ngx_msec_t due)
{
    ngx_http_asyncx_limit_op_t   *op = env->data;

    ngx_http_asyncx_limit_ctx_t  *ctx;

    if (head->owner != env->self) {
        ngx_http_asyncx_limit_note(op, head->owner);
        return;
    }

    ctx = (ngx_http_asyncx_limit_ctx_t *) head->local;
    ctx->due = due;
    head->armed = 1;

    if (ctx != op->current) {
        ngx_http_asyncx_limit_arm(ctx);
    }
}


static void
ngx_http_asyncx_limit_drop(ngx_http_asyncx_lq_env_t *env,
    ngx_http_asyncx_lq_rec_t *rec)
{
    ngx_http_asyncx_limit_op_t  *op = env->data;

    ngx_slab_free_locked(op->zone->shpool, rec);
}


static ngx_uint_t
ngx_http_asyncx_limit_alive(ngx_http_asyncx_lq_env_t *env, int32_t pid)
{
    ngx_http_asyncx_limit_op_t  *op = env->data;

    if (kill((ngx_pid_t) pid, 0) == -1 && ngx_errno == NGX_ESRCH) {
        ngx_log_error(NGX_LOG_WARN, op->log, 0,
                      "asyncx limit: zone \"%V\" reclaims the places and "
                      "slots of exited worker %D", &op->zone->name, pid);
        return 0;
    }

    return 1;
}


static void
ngx_http_asyncx_limit_note(ngx_http_asyncx_limit_op_t *op, ngx_uint_t owner)
{
    int32_t     pid;
    ngx_uint_t  i;

    pid = op->zone->sh->lq.owners[owner].pid;

    for (i = 0; i < op->nnotify; i++) {
        if (op->notify[i] == pid) {
            return;
        }
    }

    if (op->nnotify < NGX_HTTP_ASYNCX_LQ_OWNERS) {
        op->notify[op->nnotify++] = pid;
    }
}


static void
ngx_http_asyncx_limit_post(ngx_http_asyncx_limit_ctx_t *ctx)
{
    if (ctx->wait.timer_set) {
        ngx_del_timer(&ctx->wait);
    }

    if (!ctx->wait.posted) {
        ngx_post_event(&ctx->wait, &ngx_posted_events);
    }
}


/* the wake-up socket of a worker: abstract, so nothing on disk */

static socklen_t
ngx_http_asyncx_limit_wake_addr(struct sockaddr_un *sa, ngx_pid_t pid)
{
    u_char  *p;

    ngx_memzero(sa, sizeof(struct sockaddr_un));
    sa->sun_family = AF_UNIX;

    p = ngx_sprintf((u_char *) sa->sun_path + 1, "asyncx-limit/%P", pid);

    return (socklen_t) (offsetof(struct sockaddr_un, sun_path)
                        + (p - (u_char *) sa->sun_path));
}


ngx_int_t
ngx_http_asyncx_limit_wake_init(ngx_cycle_t *cycle,
    ngx_http_asyncx_limit_main_conf_t *lmcf)
{
    int                  fd;
    socklen_t            len;
    ngx_event_t         *rev;
    ngx_connection_t    *c;
    struct sockaddr_un   sa;

    if (ngx_process != NGX_PROCESS_WORKER || lmcf->zones.nelts == 0) {
        return NGX_OK;
    }

    fd = socket(AF_UNIX, SOCK_DGRAM|SOCK_NONBLOCK|SOCK_CLOEXEC, 0);

    if (fd == -1) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_socket_errno,
                      "asyncx limit: socket() for wake-ups failed, waiters "
                      "of this worker look every %d ms",
                      NGX_HTTP_ASYNCX_LIMIT_POLL);
        return NGX_OK;
    }

    len = ngx_http_asyncx_limit_wake_addr(&sa, ngx_pid);

    if (bind(fd, (struct sockaddr *) &sa, len) == -1) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_socket_errno,
                      "asyncx limit: bind() of the wake-up socket "
                      "\"@asyncx-limit/%P\" failed, waiters of this worker "
                      "look every %d ms", ngx_pid,
                      NGX_HTTP_ASYNCX_LIMIT_POLL);
        (void) close(fd);
        return NGX_OK;
    }

    c = ngx_get_connection(fd, cycle->log);
    if (c == NULL) {
        (void) close(fd);
        return NGX_ERROR;
    }

    c->data = lmcf;
    rev = c->read;
    rev->log = cycle->log;
    c->write->log = cycle->log;

    /* like nginx's channel: not a client connection, never "left open" */
    rev->channel = 1;
    c->write->channel = 1;
    rev->handler = ngx_http_asyncx_limit_wake_handler;

    if (ngx_add_event(rev, NGX_READ_EVENT, 0) != NGX_OK) {
        ngx_close_connection(c);
        return NGX_ERROR;
    }

    lmcf->wake = c;

    return NGX_OK;
}


void
ngx_http_asyncx_limit_wake_exit(ngx_cycle_t *cycle,
    ngx_http_asyncx_limit_main_conf_t *lmcf)
{
    if (lmcf->wake) {
        ngx_close_connection(lmcf->wake);
        lmcf->wake = NULL;
    }
}


static void
ngx_http_asyncx_limit_wake_send(ngx_http_asyncx_limit_zone_t *lz,
    ngx_log_t *log, int32_t pid)
{
    ssize_t             n;
    ngx_err_t           err;
    socklen_t           len;
    ngx_uint_t          level;
    struct sockaddr_un  sa;

    if (lz->lmcf->wake == NULL) {
        /* a single process: nobody else to wake */
        return;
    }

    len = ngx_http_asyncx_limit_wake_addr(&sa, (ngx_pid_t) pid);

    n = sendto(lz->lmcf->wake->fd, &lz->sh->secret, sizeof(uint64_t),
               MSG_DONTWAIT|MSG_NOSIGNAL, (struct sockaddr *) &sa, len);

    if (n != -1) {
        return;
    }

    err = ngx_socket_errno;

    if (err == NGX_EAGAIN) {
        /*
         * its queue is full: of wake-ups it has to read, or of datagrams
         * of anyone else; its waiters' own re-check (every
         * NGX_HTTP_ASYNCX_LIMIT_SAFETY ms) finds what this one said
         */
        return;
    }

    /* a worker gone, or without a socket (it polls): the next look sees */
    level = (err == NGX_ECONNREFUSED || err == NGX_ENOENT) ? NGX_LOG_INFO
                                                           : NGX_LOG_ALERT;
    ngx_log_error(level, log, err,
                  "asyncx limit: zone \"%V\": cannot wake worker %D",
                  &lz->name, pid);
}


static void
ngx_http_asyncx_limit_wake_handler(ngx_event_t *rev)
{
    ssize_t                              n;
    uint64_t                             secret, mark;
    ngx_err_t                            err;
    ngx_uint_t                           i, high;
    ngx_shm_zone_t                     **zp;
    ngx_connection_t                    *c;
    ngx_http_asyncx_limit_zone_t        *lz;
    ngx_http_asyncx_limit_main_conf_t   *lmcf;
    u_char                               buf[64];

    c = rev->data;
    lmcf = c->data;
    zp = lmcf->zones.elts;
    mark = 0;
    high = 0;

    for ( ;; ) {
        n = recv(c->fd, buf, sizeof(buf), 0);

        if (n == -1) {
            err = ngx_socket_errno;

            if (err == NGX_EINTR) {
                continue;
            }

            if (err != NGX_EAGAIN) {
                ngx_log_error(NGX_LOG_ALERT, rev->log, err,
                              "asyncx limit: recv() of wake-ups failed");
            }

            break;
        }

        if (n != (ssize_t) sizeof(uint64_t)) {
            continue;
        }

        ngx_memcpy(&secret, buf, sizeof(uint64_t));

        for (i = 0; i < lmcf->zones.nelts; i++) {
            lz = zp[i]->data;

            if (lz->sh->secret == secret) {
                if (i < 64) {
                    mark |= (uint64_t) 1 << i;

                } else {
                    high = 1;
                }
            }
        }
    }

    for (i = 0; i < lmcf->zones.nelts; i++) {
        if ((i < 64 && (mark & ((uint64_t) 1 << i))) || (i >= 64 && high)) {
            ngx_http_asyncx_limit_service(zp[i]->data, rev->log);
        }
    }
}


/*
 * Another worker granted or kicked a waiter of this one: pick up the
 * grants, set the timer of a waiter now at the head of its queue.
 */

static void
ngx_http_asyncx_limit_service(ngx_http_asyncx_limit_zone_t *lz,
    ngx_log_t *log)
{
    ngx_queue_t                   *q;
    ngx_http_asyncx_lq_rec_t      *rec;
    ngx_http_asyncx_lq_key_t      *k;
    ngx_http_asyncx_limit_op_t     op;
    ngx_http_asyncx_limit_ctx_t   *ctx;
    ngx_http_asyncx_limit_pass_t  *pass;

    if (ngx_queue_empty(&lz->waiters)) {
        return;
    }

    if (ngx_http_asyncx_limit_lock(lz, &op, NULL, log) != NGX_OK) {
        ngx_http_asyncx_limit_unlock(&op);
        return;
    }

    for (q = ngx_queue_head(&lz->waiters);
         q != ngx_queue_sentinel(&lz->waiters);
         q = ngx_queue_next(q))
    {
        ctx = ngx_queue_data(q, ngx_http_asyncx_limit_ctx_t, local);
        pass = &ctx->passes[ctx->cur];
        rec = pass->rec;

        if (rec == NULL) {
            continue;
        }

        if (rec->state == NGX_HTTP_ASYNCX_LQ_GRANTED) {
            if (op.env.now_us == 0) {
                op.env.now_us = ngx_http_asyncx_now_usec();
            }

            ngx_http_asyncx_lq_claim(&lz->sh->lq, rec, &op.env);
            ngx_http_asyncx_limit_post(ctx);
            continue;
        }

        if (rec->state != NGX_HTTP_ASYNCX_LQ_WAITING) {
            continue;
        }

        k = &pass->node->key;

        if (ngx_queue_head(&k->fifo) != &rec->link) {
            continue;
        }

        ngx_http_asyncx_lq_pump(&lz->sh->lq, k, &op.env);

        if (rec->state == NGX_HTTP_ASYNCX_LQ_WAITING) {
            ctx->due = ngx_http_asyncx_lq_due(&lz->sh->lq, k, rec,
                                              op.env.now);
            if (ctx->due) {
                rec->armed = 1;
                ngx_http_asyncx_limit_arm(ctx);
            }
        }
    }

    ngx_http_asyncx_limit_unlock(&op);
}


/* an admission, for current_rps: ten slots of 100 ms (a key node's, or
   a cluster zone's), under the zone's lock */

void
ngx_http_asyncx_limit_count(uint32_t *slots, uint32_t *counts,
    ngx_msec_t now)
{
    uint32_t    tick;
    ngx_uint_t  slot;

    /* 100 ms ticks in 32 bits (wraps after 13 years, harmlessly) */
    tick = (uint32_t) (now / 100);
    slot = tick % NGX_HTTP_ASYNCX_LIMIT_RPS_SLOTS;

    if (slots[slot] != tick) {
        slots[slot] = tick;
        counts[slot] = 0;
    }

    counts[slot]++;
}


double
ngx_http_asyncx_limit_rps(uint32_t *slots, uint32_t *counts, ngx_msec_t now)
{
    uint32_t    tick;
    ngx_uint_t  i, n;

    n = 0;
    tick = (uint32_t) (now / 100);

    for (i = 0; i < NGX_HTTP_ASYNCX_LIMIT_RPS_SLOTS; i++) {
        if ((uint32_t) (tick - slots[i]) < NGX_HTTP_ASYNCX_LIMIT_RPS_SLOTS) {
            n += counts[i];
        }
    }

    /* admissions in the last 10 slots of 100 ms */
    return (double) n;
}
