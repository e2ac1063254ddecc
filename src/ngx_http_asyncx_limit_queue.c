
/*
 * Copyright (C) asyncx authors
 *
 * The limiter's waiting queue, slots and owner table (see the header).
 * Pure: called under the zone's lock; every effect outside the zone goes
 * through the caller's env callbacks.
 *
 * The invariants, and where each is kept:
 *   - a record is in exactly one list (a FIFO or holds) from arrival to
 *     leave(), and every list change moves the counters with it (key
 *     waiting/active, owner waiting/granted/held): unlink_rec() and
 *     link_rec() are the only places that do either;
 *   - a new arrival may enter at once only when its key's FIFO is empty
 *     (first come, first served), and is refused only when the FIFO
 *     already holds `queue` live records: leave() unlinks a record at
 *     once from any position, and look() removes a dead worker's records
 *     before the caller counts anything;
 *   - whenever a slot or a token may have become free (a record left, a
 *     record of a dead worker was reclaimed, the limits changed, a token
 *     came due), pump() grants the head of the FIFO while a slot and a
 *     token are there, then makes sure the head's owner has a timer for
 *     the next token (kick()), so no live waiter waits while it could
 *     run, beyond the wake-up of its worker.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_asyncx_limit_queue.h"


/* keys looked at, from the least recently used, for one to evict */
#define NGX_HTTP_ASYNCX_LQ_EVICT_SCAN  16


static void ngx_http_asyncx_lq_dry_drain(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_key_t *k, ngx_msec_t now);
static void ngx_http_asyncx_lq_link(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_key_t *k, ngx_http_asyncx_lq_rec_t *rec,
    ngx_uint_t state);
static void ngx_http_asyncx_lq_unlink(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_key_t *k, ngx_http_asyncx_lq_rec_t *rec);
static ngx_uint_t ngx_http_asyncx_lq_reclaim(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_env_t *env);
static void ngx_http_asyncx_lq_pump_all(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_env_t *env);


void
ngx_http_asyncx_lq_zone_init(ngx_http_asyncx_lq_zone_t *z)
{
    ngx_memzero(z, sizeof(ngx_http_asyncx_lq_zone_t));
    ngx_queue_init(&z->keys);
}


/*
 * The newest configuration's limits, for every worker of every
 * generation: higher limits may let waiters in at once.
 */

void
ngx_http_asyncx_lq_apply(ngx_http_asyncx_lq_zone_t *z, uint64_t rate,
    uint64_t burst, uint64_t concurrency, uint64_t queue,
    ngx_http_asyncx_lq_env_t *env)
{
    ngx_queue_t               *kq;
    ngx_http_asyncx_lq_key_t  *k;
    ngx_http_asyncx_lq_rec_t  *head;

    /* the time so far at the old rate, the time from now at the new one */
    for (kq = ngx_queue_head(&z->keys);
         kq != ngx_queue_sentinel(&z->keys);
         kq = ngx_queue_next(kq))
    {
        k = ngx_queue_data(kq, ngx_http_asyncx_lq_key_t, lru);
        ngx_http_asyncx_bucket_refill(&k->bucket, z->rate, z->burst,
                                      env->now);
    }

    z->rate = rate;
    z->burst = burst;
    z->concurrency = concurrency;
    z->queue = queue;

    /* a head's timer was set for the old rate: its owner sets it again */
    for (kq = ngx_queue_head(&z->keys);
         kq != ngx_queue_sentinel(&z->keys);
         kq = ngx_queue_next(kq))
    {
        k = ngx_queue_data(kq, ngx_http_asyncx_lq_key_t, lru);

        if (!ngx_queue_empty(&k->fifo)) {
            head = ngx_queue_data(ngx_queue_head(&k->fifo),
                                  ngx_http_asyncx_lq_rec_t, link);
            head->armed = 0;
        }
    }

    ngx_http_asyncx_lq_pump_all(z, env);
}


void
ngx_http_asyncx_lq_key_init(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_key_t *k, ngx_msec_t now)
{
    /* a new key starts with a full bucket, as with limit_req */
    ngx_http_asyncx_bucket_init(&k->bucket, z->burst, now);
    ngx_queue_init(&k->fifo);
    ngx_queue_init(&k->holds);
    k->waiting = 0;
    k->active = 0;
    k->dry_waiting = 0;
    k->dry_last = 0;

    ngx_queue_insert_head(&z->keys, &k->lru);
    z->nkeys++;
}


void
ngx_http_asyncx_lq_key_remove(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_key_t *k)
{
    ngx_queue_remove(&k->lru);
    z->nkeys--;
}


void
ngx_http_asyncx_lq_key_touch(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_key_t *k)
{
    ngx_queue_remove(&k->lru);
    ngx_queue_insert_head(&z->keys, &k->lru);
}


/* a key nobody waits in or holds a slot of, least recently used first */

ngx_http_asyncx_lq_key_t *
ngx_http_asyncx_lq_idle_key(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_key_t *except)
{
    ngx_uint_t                 n;
    ngx_queue_t               *q;
    ngx_http_asyncx_lq_key_t  *k;

    n = 0;

    for (q = ngx_queue_last(&z->keys);
         q != ngx_queue_sentinel(&z->keys)
         && n < NGX_HTTP_ASYNCX_LQ_EVICT_SCAN;
         q = ngx_queue_prev(q), n++)
    {
        k = ngx_queue_data(q, ngx_http_asyncx_lq_key_t, lru);

        if (k != except && k->waiting == 0 && k->active == 0) {
            return k;
        }
    }

    return NULL;
}


/*
 * The caller's entry in the owner table.  A fresh process (a worker just
 * started) may find an entry with its own pid: a dead process had that
 * pid, so its records are reclaimed first.  NGX_ERROR: the table is full
 * of live processes.
 */

ngx_int_t
ngx_http_asyncx_lq_register(ngx_http_asyncx_lq_zone_t *z, int32_t pid,
    ngx_uint_t fresh, ngx_http_asyncx_lq_env_t *env)
{
    ngx_uint_t                   i, pass;
    ngx_http_asyncx_lq_owner_t  *o;

    for (i = 0; i < z->owners_n; i++) {
        o = &z->owners[i];

        if (o->pid == pid && !o->dead) {
            if (!fresh) {
                return i;
            }

            o->dead = 1;
        }
    }

    /* a worker starting is a look: the one it replaces may have died */
    ngx_http_asyncx_lq_look(z, env);

    for (pass = 0; pass < 2; pass++) {

        for (i = 0; i < NGX_HTTP_ASYNCX_LQ_OWNERS; i++) {
            o = &z->owners[i];

            if (o->pid == 0) {
                ngx_memzero(o, sizeof(ngx_http_asyncx_lq_owner_t));
                o->pid = pid;

                if (i >= z->owners_n) {
                    z->owners_n = i + 1;
                }

                return i;
            }
        }

        /* full: entries of processes gone, even if they hold nothing */

        for (i = 0; i < z->owners_n; i++) {
            o = &z->owners[i];

            if (o->pid && !o->dead && !env->alive(env, o->pid)) {
                o->dead = 1;
            }
        }

        ngx_http_asyncx_lq_reclaim(z, env);
    }

    return NGX_ERROR;
}


/* a worker that exits: its entry goes if nothing of it is left */

void
ngx_http_asyncx_lq_unregister(ngx_http_asyncx_lq_zone_t *z, ngx_uint_t owner)
{
    ngx_http_asyncx_lq_owner_t  *o;

    o = &z->owners[owner];

    if (o->waiting || o->granted || o->held || o->dead) {
        /* a later look reclaims them once the process is gone */
        return;
    }

    o->pid = 0;

    while (z->owners_n && z->owners[z->owners_n - 1].pid == 0) {
        z->owners_n--;
    }
}


/*
 * Every caller looks before it counts or decides anything: the records
 * of a worker that died are reclaimed here.  A pid is checked at most
 * once per millisecond, and only while it holds something.
 */

ngx_uint_t
ngx_http_asyncx_lq_look(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_env_t *env)
{
    ngx_uint_t                   i, found;
    ngx_http_asyncx_lq_owner_t  *o;

    found = 0;

    for (i = 0; i < z->owners_n; i++) {
        o = &z->owners[i];

        if (o->pid == 0 || i == env->self) {
            continue;
        }

        if (o->dead) {
            found = 1;
            continue;
        }

        if ((o->waiting | o->granted | o->held) == 0
            || o->checked == env->now)
        {
            continue;
        }

        if (env->alive(env, o->pid)) {
            o->checked = env->now;
            continue;
        }

        o->dead = 1;
        found = 1;
    }

    if (!found) {
        return 0;
    }

    return ngx_http_asyncx_lq_reclaim(z, env);
}


/*
 * A dry run's would-be waiters that real waiters' tokens would have
 * granted since dry_last: one per token of the rate, whatever came in
 * between (a pause does not lose tokens to the bucket's cap, as real
 * waiters take each token as it comes).
 */

static void
ngx_http_asyncx_lq_dry_drain(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_key_t *k, ngx_msec_t now)
{
    uint64_t        n;
    ngx_msec_int_t  elapsed;

    elapsed = (ngx_msec_int_t) (now - k->dry_last);

    if (elapsed <= 0) {
        return;
    }

    if (elapsed > NGX_HTTP_ASYNCX_REFILL_MAX) {
        elapsed = NGX_HTTP_ASYNCX_REFILL_MAX;
    }

    n = (uint64_t) elapsed * z->rate / NGX_HTTP_ASYNCX_TOKEN;

    if (n >= k->dry_waiting) {
        k->dry_waiting = 0;
        return;
    }

    k->dry_waiting -= (uint32_t) n;
    k->dry_last += (ngx_msec_t) (n * NGX_HTTP_ASYNCX_TOKEN / z->rate);
}


/*
 * A new request: NGX_OK admitted (rec is HELD), NGX_AGAIN waiting (rec is
 * at the tail of the FIFO), NGX_DECLINED refused: the queue is full.
 * Whatever the waiters ahead can be granted first is granted first.  In
 * a dry run a request that would wait or be refused is counted and not
 * queued (NGX_AGAIN / NGX_DECLINED, rec unused).
 *
 * A dry run keeps the queue it would have, as limit_req_dry_run keeps
 * the excess it would have: a request that would wait counts in its
 * key's dry_waiting, so a dry run reports the requests a full queue
 * would refuse.  Would-be waiters leave as real ones would be granted,
 * one per token of the rate since the first of them came (dry_drain,
 * at the next dry-run arrival; they hold no slot and take nothing from
 * the bucket: an estimate).  A dry-run newcomer enters at once only
 * with no would-be waiter ahead.  Requests that are not dry runs ignore
 * dry_waiting.  A would-be waiter never times out.
 */

ngx_int_t
ngx_http_asyncx_lq_arrive(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_key_t *k, ngx_http_asyncx_lq_rec_t *rec,
    ngx_uint_t dry_run, ngx_http_asyncx_lq_env_t *env)
{
    rec->owner = (uint16_t) env->self;
    rec->armed = 0;
    rec->granted_us = 0;

    if (k->waiting) {
        /*
         * a token due while the head's worker has not run yet (busy, or
         * not scheduled) goes to the head now: any worker's arrival
         * moves the queue on
         */
        ngx_http_asyncx_lq_pump(z, k, env);
    }

    if (dry_run && k->dry_waiting && k->waiting == 0) {
        ngx_http_asyncx_lq_dry_drain(z, k, env->now);
    }

    if (k->waiting == 0
        && (!dry_run || k->dry_waiting == 0)
        && (z->concurrency == 0 || k->active < z->concurrency)
        && ngx_http_asyncx_bucket_take(&k->bucket, z->rate, z->burst,
                                       env->now)
           == 0)
    {
        ngx_http_asyncx_lq_link(z, k, rec, NGX_HTTP_ASYNCX_LQ_HELD);
        z->passed++;
        return NGX_OK;
    }

    if (dry_run) {
        if ((uint64_t) k->waiting + k->dry_waiting < z->queue) {
            if (k->dry_waiting == 0) {
                k->dry_last = env->now;
            }

            k->dry_waiting++;
            z->dry_run_delayed++;
            return NGX_AGAIN;
        }

        z->dry_run_rejected++;
        return NGX_DECLINED;
    }

    if (k->waiting >= z->queue) {
        z->rejected++;
        return NGX_DECLINED;
    }

    ngx_http_asyncx_lq_link(z, k, rec, NGX_HTTP_ASYNCX_LQ_WAITING);

    return NGX_AGAIN;
}


/*
 * Grants the head of the FIFO while a slot and a token are free, then
 * kicks the owner of a head left waiting for a token only, unless its
 * timer is already set.  Returns the number of grants.
 */

ngx_uint_t
ngx_http_asyncx_lq_pump(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_key_t *k, ngx_http_asyncx_lq_env_t *env)
{
    ngx_uint_t                 n;
    ngx_msec_t                 due;
    ngx_http_asyncx_lq_rec_t  *head;

    n = 0;

    while (!ngx_queue_empty(&k->fifo)) {

        if (z->concurrency && k->active >= z->concurrency) {
            /* the next release pumps again */
            break;
        }

        head = ngx_queue_data(ngx_queue_head(&k->fifo),
                              ngx_http_asyncx_lq_rec_t, link);

        due = ngx_http_asyncx_bucket_take(&k->bucket, z->rate, z->burst,
                                          env->now);
        if (due) {
            if (!head->armed) {
                env->kick(env, k, head, due);
            }

            break;
        }

        ngx_http_asyncx_lq_unlink(z, k, head);
        ngx_http_asyncx_lq_link(z, k, head, NGX_HTTP_ASYNCX_LQ_GRANTED);
        head->granted_us = env->now_us;
        z->delayed++;
        n++;

        env->grant(env, k, head);
    }

    return n;
}


/*
 * For a waiting record: ms until the next token if it is the head of its
 * FIFO and only a token is missing, else 0 (a release or the records
 * ahead of it will move it).
 */

ngx_msec_t
ngx_http_asyncx_lq_due(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_key_t *k, ngx_http_asyncx_lq_rec_t *rec,
    ngx_msec_t now)
{
    if (rec->state != NGX_HTTP_ASYNCX_LQ_WAITING
        || ngx_queue_head(&k->fifo) != &rec->link
        || (z->concurrency && k->active >= z->concurrency))
    {
        return 0;
    }

    return ngx_http_asyncx_bucket_due(&k->bucket, z->rate, z->burst, now);
}


/*
 * The owner's worker picks a grant up: the request runs.  A grant made
 * by another worker (granted_us set) is a hand-off: its delay is kept.
 */

void
ngx_http_asyncx_lq_claim(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_rec_t *rec, ngx_http_asyncx_lq_env_t *env)
{
    uint64_t                     us;
    ngx_http_asyncx_lq_owner_t  *o;

    o = &z->owners[rec->owner];
    o->granted--;
    o->held++;
    rec->state = NGX_HTTP_ASYNCX_LQ_HELD;

    if (rec->granted_us == 0) {
        /* picked up by the worker that granted it */
        return;
    }

    us = env->now_us > rec->granted_us ? env->now_us - rec->granted_us : 0;

    z->handoffs++;
    z->handoff_us_total += us;

    if (us > z->handoff_us_max) {
        z->handoff_us_max = us;
    }
}


/*
 * A request ends, in any state: waiting (client gone, timeout), granted
 * (gone before its worker picked the grant up) or running.  Whatever it
 * freed goes to the next in line at once.
 */

void
ngx_http_asyncx_lq_leave(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_key_t *k, ngx_http_asyncx_lq_rec_t *rec,
    ngx_http_asyncx_lq_env_t *env)
{
    ngx_uint_t  was_head;

    was_head = rec->state == NGX_HTTP_ASYNCX_LQ_WAITING
               && ngx_queue_head(&k->fifo) == &rec->link;

    if (rec->state == NGX_HTTP_ASYNCX_LQ_WAITING && !was_head) {
        /* nothing ahead of it changes */
        ngx_http_asyncx_lq_unlink(z, k, rec);
        return;
    }

    ngx_http_asyncx_lq_unlink(z, k, rec);
    ngx_http_asyncx_lq_pump(z, k, env);
}


static void
ngx_http_asyncx_lq_link(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_key_t *k, ngx_http_asyncx_lq_rec_t *rec,
    ngx_uint_t state)
{
    ngx_http_asyncx_lq_owner_t  *o;

    o = &z->owners[rec->owner];
    rec->state = (uint8_t) state;

    switch (state) {

    case NGX_HTTP_ASYNCX_LQ_WAITING:
        ngx_queue_insert_tail(&k->fifo, &rec->link);
        k->waiting++;
        o->waiting++;
        break;

    case NGX_HTTP_ASYNCX_LQ_GRANTED:
        ngx_queue_insert_tail(&k->holds, &rec->link);
        k->active++;
        o->granted++;
        break;

    default: /* NGX_HTTP_ASYNCX_LQ_HELD */
        ngx_queue_insert_tail(&k->holds, &rec->link);
        k->active++;
        o->held++;
    }
}


static void
ngx_http_asyncx_lq_unlink(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_key_t *k, ngx_http_asyncx_lq_rec_t *rec)
{
    ngx_http_asyncx_lq_owner_t  *o;

    o = &z->owners[rec->owner];

    ngx_queue_remove(&rec->link);

    switch (rec->state) {

    case NGX_HTTP_ASYNCX_LQ_WAITING:
        k->waiting--;
        o->waiting--;
        break;

    case NGX_HTTP_ASYNCX_LQ_GRANTED:
        k->active--;
        o->granted--;
        break;

    default: /* NGX_HTTP_ASYNCX_LQ_HELD */
        k->active--;
        o->held--;
    }

    rec->state = 0;
}


/*
 * Removes every record of the owners marked dead from every key, frees
 * their entries, then lets the next in line in where something was
 * freed.  Returns the number of records reclaimed.
 */

static ngx_uint_t
ngx_http_asyncx_lq_reclaim(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_env_t *env)
{
    ngx_uint_t                   i, n, any;
    ngx_queue_t                 *kq, *q, *next, *lists[2];
    ngx_http_asyncx_lq_key_t    *k;
    ngx_http_asyncx_lq_rec_t    *rec;
    ngx_http_asyncx_lq_owner_t  *o;

    any = 0;

    for (i = 0; i < z->owners_n; i++) {
        if (z->owners[i].pid && z->owners[i].dead) {
            any = 1;
            break;
        }
    }

    if (!any) {
        return 0;
    }

    n = 0;

    for (kq = ngx_queue_head(&z->keys);
         kq != ngx_queue_sentinel(&z->keys);
         kq = ngx_queue_next(kq))
    {
        k = ngx_queue_data(kq, ngx_http_asyncx_lq_key_t, lru);
        lists[0] = &k->fifo;
        lists[1] = &k->holds;

        for (i = 0; i < 2; i++) {
            for (q = ngx_queue_head(lists[i]);
                 q != ngx_queue_sentinel(lists[i]);
                 q = next)
            {
                next = ngx_queue_next(q);
                rec = ngx_queue_data(q, ngx_http_asyncx_lq_rec_t, link);

                if (!z->owners[rec->owner].dead) {
                    continue;
                }

                ngx_http_asyncx_lq_unlink(z, k, rec);
                env->drop(env, rec);
                n++;
            }
        }
    }

    for (i = 0; i < z->owners_n; i++) {
        o = &z->owners[i];

        if (o->pid && o->dead) {
            ngx_memzero(o, sizeof(ngx_http_asyncx_lq_owner_t));
        }
    }

    while (z->owners_n && z->owners[z->owners_n - 1].pid == 0) {
        z->owners_n--;
    }

    z->reclaimed += n;

    ngx_http_asyncx_lq_pump_all(z, env);

    return n;
}


static void
ngx_http_asyncx_lq_pump_all(ngx_http_asyncx_lq_zone_t *z,
    ngx_http_asyncx_lq_env_t *env)
{
    ngx_queue_t               *kq;
    ngx_http_asyncx_lq_key_t  *k;

    for (kq = ngx_queue_head(&z->keys);
         kq != ngx_queue_sentinel(&z->keys);
         kq = ngx_queue_next(kq))
    {
        k = ngx_queue_data(kq, ngx_http_asyncx_lq_key_t, lru);

        if (k->waiting) {
            ngx_http_asyncx_lq_pump(z, k, env);
        }
    }
}
