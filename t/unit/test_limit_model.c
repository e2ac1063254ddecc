/*
 * Model-based test of the limiter's queue (ngx_http_asyncx_limit_queue.c)
 * and bucket: random operations (arrive, leave from any position, time
 * passes, a worker picks up its grants or its timer fires, a worker dies
 * and the master starts another, possibly with the same pid, reload with
 * new limits and old workers finishing, eviction of idle keys, dry runs)
 * against a reference model that knows only the rules:
 *
 *   - an arrival enters at once iff its key has no live waiter, a free
 *     slot and a token; else it waits iff fewer than `queue` live
 *     requests wait; else it is refused;
 *   - a grant goes to the oldest live waiter of the key, only with a free
 *     slot and a token;
 *   - once every worker has handled what it was woken for, no key has a
 *     live waiter while a slot and a token are free;
 *   - a dead worker's requests are gone after the next look of any worker;
 *   - every counter matches the requests that exist, and at rest (nobody
 *     left) every counter and every record is back to 0.
 *
 * Every step is checked.  The harness stands for the nginx glue: it picks
 * up grants of its own worker at once, arms a waiter's timer when kicked,
 * and delivers notifications to other workers.
 *
 *   build/unit/test_limit_model              seeds 12..15, 400,000 ops each
 *   build/unit/test_limit_model SEED [OPS]   any seed (2,000,000 ops)
 *   LIMIT_MODEL_SEED=N LIMIT_MODEL_OPS=M build/unit/test_limit_model
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_asyncx_limit_queue.h"


#define MAX_W      8
#define MAX_K      3
#define MAX_R      48

#define M_WAIT     1
#define M_GRANTED  2
#define M_HELD     3

#define NEVER      ((ngx_msec_t) -1)


typedef struct {
    int                         used;
    int32_t                     pid;
    int                         alive;
    int                         accepting;  /* not an old generation */
    ngx_uint_t                  owner;
    int                         notified;
} m_worker_t;


typedef struct {
    int                         used;
    ngx_http_asyncx_lq_key_t   *sut;
    uint64_t                    tokens;     /* the model's bucket */
    ngx_msec_t                  last;
    uint64_t                    dry;        /* would-be waiters */
    ngx_msec_t                  dry_last;   /* their tokens count from */
} m_key_t;


typedef struct {
    int                         used;
    int                         key;
    int                         worker;
    int                         state;
    uint64_t                    seq;
    ngx_msec_t                  deadline;
    ngx_msec_t                  timer;      /* NEVER: none */
    ngx_http_asyncx_lq_rec_t   *rec;
} m_req_t;


typedef struct {
    uint64_t                    rate, burst, concurrency, queue;
    ngx_msec_t                  timeout;

    ngx_http_asyncx_lq_zone_t   z;
    m_worker_t                    w[MAX_W];
    m_key_t                       k[MAX_K];
    m_req_t                       r[MAX_R];
    int                         nkeys;      /* keys in use: 0..nkeys-1 */

    ngx_msec_t                  now;
    uint64_t                    seq;
    int32_t                     next_pid;
    long                        records;    /* allocated, not freed */

    uint64_t                    passed, delayed, rejected, timed_out;
    uint64_t                    reclaimed, dry_delayed, dry_rejected;

    int                         acting;     /* the worker under the lock */
    uint64_t                    rng;
    uint64_t                    seed;
    uint64_t                    op;
    uint64_t                    grants, kicks, settles, max_rounds;
    uint64_t                    kills, reloads;
} sim_t;


static sim_t  S;


static void reap_workers(void);


#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "model: seed %llu op %llu: %s (line %d)\n",       \
                    (unsigned long long) S.seed,                              \
                    (unsigned long long) S.op, #cond, __LINE__);              \
            fail();                                                           \
        }                                                                     \
    } while (0)


static uint64_t
rnd(void)
{
    /* xorshift64* */
    S.rng ^= S.rng >> 12;
    S.rng ^= S.rng << 25;
    S.rng ^= S.rng >> 27;
    return S.rng * 2685821657736338717ULL;
}


static int
pick(int n)
{
    return (int) (rnd() % (uint64_t) n);
}


/* --- the model's bucket: its own arithmetic ------------------------- */

static void
m_refill(m_key_t *k)
{
    uint64_t  cap;

    if (S.now > k->last) {
        cap = S.burst * NGX_HTTP_ASYNCX_TOKEN;
        k->tokens += S.rate * (S.now - k->last);
        if (k->tokens > cap) {
            k->tokens = cap;
        }
        k->last = S.now;
    }
}


static int
m_has_token(m_key_t *k)
{
    m_refill(k);
    return k->tokens >= NGX_HTTP_ASYNCX_TOKEN;
}


static void
m_take(m_key_t *k)
{
    CHECK(m_has_token(k));
    k->tokens -= NGX_HTTP_ASYNCX_TOKEN;
}


/* --- model queries --------------------------------------------------- */

static int
m_count(int key, int state)
{
    int  i, n;

    n = 0;
    for (i = 0; i < MAX_R; i++) {
        if (S.r[i].used && S.r[i].key == key && S.r[i].state == state) {
            n++;
        }
    }
    return n;
}


static int
m_active(int key)
{
    return m_count(key, M_GRANTED) + m_count(key, M_HELD);
}


static m_req_t *
m_head(int key)
{
    int     i;
    m_req_t  *h;

    h = NULL;
    for (i = 0; i < MAX_R; i++) {
        if (S.r[i].used && S.r[i].key == key && S.r[i].state == M_WAIT
            && (h == NULL || S.r[i].seq < h->seq))
        {
            h = &S.r[i];
        }
    }
    return h;
}


static int
m_slot_free(int key)
{
    return S.concurrency == 0 || (uint64_t) m_active(key) < S.concurrency;
}


static m_req_t *
req_of(ngx_http_asyncx_lq_rec_t *rec)
{
    CHECK(rec->local >= 1 && rec->local <= MAX_R);
    CHECK(S.r[rec->local - 1].used);
    CHECK(S.r[rec->local - 1].rec == rec);
    return &S.r[rec->local - 1];
}


static int
key_of(ngx_http_asyncx_lq_key_t *k)
{
    int  i;

    for (i = 0; i < MAX_K; i++) {
        if (S.k[i].used && S.k[i].sut == k) {
            return i;
        }
    }

    CHECK(0);
    return -1;
}


static int
worker_of_owner(ngx_uint_t owner)
{
    int  i;

    for (i = 0; i < MAX_W; i++) {
        if (S.w[i].used && S.w[i].owner == owner) {
            return i;
        }
    }

    return -1;
}


static void
req_free(m_req_t *q)
{
    free(q->rec);
    S.records--;
    memset(q, 0, sizeof(m_req_t));
}


/* --- the env callbacks: what the nginx glue does ------------------- */

static void
cb_grant(ngx_http_asyncx_lq_env_t *env, ngx_http_asyncx_lq_key_t *k,
    ngx_http_asyncx_lq_rec_t *rec)
{
    int     key, w;
    m_req_t  *q, *h;

    q = req_of(rec);
    key = key_of(k);
    h = m_head(key);

    /* FIFO, a slot and a token */
    CHECK(q == h);
    CHECK(q->key == key);
    CHECK(S.concurrency == 0
          || (uint64_t) m_active(key) < S.concurrency);
    m_take(&S.k[key]);

    w = q->worker;
    CHECK(S.w[w].alive);
    CHECK(rec->state == NGX_HTTP_ASYNCX_LQ_GRANTED);

    S.delayed++;
    S.grants++;
    q->timer = NEVER;

    if (rec->owner == env->self) {
        /* its own worker: picked up at once */
        ngx_http_asyncx_lq_claim(&S.z, rec, env);
        q->state = M_HELD;
        return;
    }

    q->state = M_GRANTED;
    S.w[w].notified = 1;
}


static void
cb_kick(ngx_http_asyncx_lq_env_t *env, ngx_http_asyncx_lq_key_t *k,
    ngx_http_asyncx_lq_rec_t *head, ngx_msec_t due)
{
    int     key;
    m_req_t  *q;

    q = req_of(head);
    key = key_of(k);

    CHECK(q == m_head(key));
    CHECK(m_slot_free(key));
    CHECK(!m_has_token(&S.k[key]));
    CHECK(due > 0);
    CHECK(S.w[q->worker].alive);

    S.kicks++;

    if (head->owner == env->self) {
        q->timer = ngx_min(q->deadline, S.now + due);
        head->armed = 1;
        return;
    }

    S.w[q->worker].notified = 1;
}


static void
cb_drop(ngx_http_asyncx_lq_env_t *env, ngx_http_asyncx_lq_rec_t *rec)
{
    m_req_t  *q;

    q = req_of(rec);
    CHECK(!S.w[q->worker].alive);
    S.reclaimed++;
    req_free(q);
}


static ngx_uint_t
cb_alive(ngx_http_asyncx_lq_env_t *env, int32_t pid)
{
    int  i;

    for (i = 0; i < MAX_W; i++) {
        if (S.w[i].used && S.w[i].pid == pid && S.w[i].alive) {
            return 1;
        }
    }

    return 0;
}


static void
env_for(ngx_http_asyncx_lq_env_t *env, int w)
{
    env->grant = cb_grant;
    env->kick = cb_kick;
    env->drop = cb_drop;
    env->alive = cb_alive;
    env->data = NULL;
    env->now = S.now;
    env->now_us = (uint64_t) S.now * 1000 + 1;
    env->self = w >= 0 ? S.w[w].owner : NGX_HTTP_ASYNCX_LQ_NOBODY;
    S.acting = w;
}


/* every operation of a worker starts with a look */

static void
look(ngx_http_asyncx_lq_env_t *env, int w)
{
    int  i;

    env_for(env, w);
    ngx_http_asyncx_lq_look(&S.z, env);

    /* no request of a dead worker survives a look */
    for (i = 0; i < MAX_R; i++) {
        CHECK(!S.r[i].used || S.w[S.r[i].worker].alive);
    }
}


/* --- full comparison of the zone with the model --------------------- */

static void
check_state(void)
{
    int                          i, key, w, n, waiting, granted, held;
    uint64_t                     last_seq;
    ngx_queue_t                 *q;
    ngx_http_asyncx_lq_rec_t    *rec;
    ngx_http_asyncx_lq_owner_t  *o;
    ngx_http_asyncx_bucket_t     b;
    m_key_t                        mk;
    m_req_t                       *rq;

    n = 0;

    for (key = 0; key < MAX_K; key++) {
        if (!S.k[key].used) {
            continue;
        }

        last_seq = 0;
        i = 0;

        for (q = ngx_queue_head(&S.k[key].sut->fifo);
             q != ngx_queue_sentinel(&S.k[key].sut->fifo);
             q = ngx_queue_next(q))
        {
            rec = ngx_queue_data(q, ngx_http_asyncx_lq_rec_t, link);
            rq = req_of(rec);
            CHECK(rec->state == NGX_HTTP_ASYNCX_LQ_WAITING);
            CHECK(rq->state == M_WAIT && rq->key == key);
            CHECK(rq->seq > last_seq);
            last_seq = rq->seq;
            i++;
        }

        CHECK(i == m_count(key, M_WAIT));
        CHECK(S.k[key].sut->waiting == (uint32_t) i);
        n += i;
        i = 0;

        for (q = ngx_queue_head(&S.k[key].sut->holds);
             q != ngx_queue_sentinel(&S.k[key].sut->holds);
             q = ngx_queue_next(q))
        {
            rec = ngx_queue_data(q, ngx_http_asyncx_lq_rec_t, link);
            rq = req_of(rec);
            CHECK(rq->key == key);
            CHECK((rec->state == NGX_HTTP_ASYNCX_LQ_GRANTED
                   && rq->state == M_GRANTED)
                  || (rec->state == NGX_HTTP_ASYNCX_LQ_HELD
                      && rq->state == M_HELD));
            i++;
        }

        CHECK(i == m_active(key));
        CHECK(S.k[key].sut->active == (uint32_t) i);
        CHECK(S.k[key].sut->dry_waiting == S.k[key].dry);
        n += i;

        /* the same tokens now */
        b = S.k[key].sut->bucket;
        mk = S.k[key];
        ngx_http_asyncx_bucket_refill(&b, S.rate, S.burst, S.now);
        m_refill(&mk);
        CHECK(b.tokens == mk.tokens);
    }

    /* every live request is in exactly one list */
    for (i = 0; i < MAX_R; i++) {
        n -= S.r[i].used;
    }
    CHECK(n == 0);
    CHECK(S.records >= 0);

    for (w = 0; w < MAX_W; w++) {
        if (!S.w[w].used || !S.w[w].alive) {
            continue;
        }

        o = &S.z.owners[S.w[w].owner];
        CHECK(o->pid == S.w[w].pid);
        waiting = granted = held = 0;

        for (i = 0; i < MAX_R; i++) {
            if (S.r[i].used && S.r[i].worker == w) {
                waiting += S.r[i].state == M_WAIT;
                granted += S.r[i].state == M_GRANTED;
                held += S.r[i].state == M_HELD;
            }
        }

        CHECK(o->waiting == (uint32_t) waiting);
        CHECK(o->granted == (uint32_t) granted);
        CHECK(o->held == (uint32_t) held);
    }

    CHECK(S.z.passed == S.passed);
    CHECK(S.z.delayed == S.delayed);
    CHECK(S.z.rejected == S.rejected);
    CHECK(S.z.reclaimed == S.reclaimed);
    CHECK(S.z.dry_run_delayed == S.dry_delayed);
    CHECK(S.z.dry_run_rejected == S.dry_rejected);
}


/* --- the glue's operations ------------------------------------------ */

static m_req_t *
req_new(void)
{
    int  i;

    for (i = 0; i < MAX_R; i++) {
        if (!S.r[i].used) {
            memset(&S.r[i], 0, sizeof(m_req_t));
            S.r[i].used = 1;
            return &S.r[i];
        }
    }

    return NULL;
}


static void
key_new(int key)
{
    S.k[key].sut = calloc(1, sizeof(ngx_http_asyncx_lq_key_t));
    CHECK(S.k[key].sut != NULL);
    ngx_http_asyncx_lq_key_init(&S.z, S.k[key].sut, S.now);
    S.k[key].used = 1;
    S.k[key].tokens = S.burst * NGX_HTTP_ASYNCX_TOKEN;
    S.k[key].last = S.now;
}


/* a waiting request's worker looks at it (timer, notification, resume) */

static void
step(int w, m_req_t *q)
{
    ngx_msec_t                 due;
    ngx_http_asyncx_lq_env_t   env;
    ngx_http_asyncx_lq_key_t  *k;

    look(&env, w);

    if (!q->used) {
        return;
    }

    k = S.k[q->key].sut;

    if (q->rec->state == NGX_HTTP_ASYNCX_LQ_GRANTED) {
        ngx_http_asyncx_lq_claim(&S.z, q->rec, &env);
        q->state = M_HELD;
        return;
    }

    if (q->state != M_WAIT) {
        return;
    }

    if (S.now >= q->deadline) {
        q->state = 0;
        ngx_http_asyncx_lq_leave(&S.z, k, q->rec, &env);
        S.z.timed_out++;
        S.timed_out++;
        req_free(q);
        return;
    }

    ngx_http_asyncx_lq_pump(&S.z, k, &env);

    if (q->state != M_WAIT) {
        return;
    }

    due = ngx_http_asyncx_lq_due(&S.z, k, q->rec, S.now);
    q->timer = q->deadline;

    if (due) {
        q->timer = ngx_min(q->deadline, S.now + due);
        q->rec->armed = 1;
    }
}


static void
op_arrive(int dry_run)
{
    int                        w, key, i, expect;
    ngx_int_t                  rc;
    m_req_t                     *q;
    ngx_http_asyncx_lq_env_t   env;
    ngx_http_asyncx_lq_rec_t  *rec;

    int  ws[MAX_W], n;

    n = 0;
    for (i = 0; i < MAX_W; i++) {
        if (S.w[i].used && S.w[i].alive && S.w[i].accepting) {
            ws[n++] = i;
        }
    }

    if (n == 0) {
        return;
    }

    w = ws[pick(n)];
    key = pick(MAX_K);

    look(&env, w);

    q = req_new();
    if (q == NULL) {
        return;
    }

    if (!S.k[key].used) {
        key_new(key);
    } else {
        ngx_http_asyncx_lq_key_touch(&S.z, S.k[key].sut);
    }

    /*
     * The model's decision, once the waiters ahead got what they can (the
     * zone grants them first, through the callbacks): g of them enter.
     */
    {
        uint64_t   tokens, slots, waiting, g, d;
        m_key_t   *mk;

        mk = &S.k[key];
        m_refill(mk);
        tokens = mk->tokens / NGX_HTTP_ASYNCX_TOKEN;
        slots = S.concurrency == 0 ? (uint64_t) -1
                : ((uint64_t) m_active(key) < S.concurrency
                   ? S.concurrency - m_active(key) : 0);
        waiting = m_count(key, M_WAIT);

        g = ngx_min(waiting, ngx_min(tokens, slots));
        d = 0;

        if (dry_run && waiting == g && mk->dry && S.now > mk->dry_last) {
            /* one would-be waiter leaves per token of the rate since */
            d = ngx_min(S.now - mk->dry_last, NGX_HTTP_ASYNCX_REFILL_MAX)
                * S.rate / NGX_HTTP_ASYNCX_TOKEN;

            if (d >= mk->dry) {
                mk->dry = 0;

            } else {
                mk->dry -= d;
                mk->dry_last += d * NGX_HTTP_ASYNCX_TOKEN / S.rate;
            }
        }

        if (waiting == g && (!dry_run || mk->dry == 0) && slots > g
            && tokens > g)
        {
            expect = NGX_OK;

        } else if (dry_run) {
            expect = (waiting - g) + mk->dry < S.queue ? NGX_AGAIN
                                                       : NGX_DECLINED;

        } else if (waiting - g < S.queue) {
            expect = NGX_AGAIN;

        } else {
            expect = NGX_DECLINED;
        }
    }

    rec = calloc(1, sizeof(ngx_http_asyncx_lq_rec_t));
    CHECK(rec != NULL);
    S.records++;
    rec->local = (uintptr_t) (q - S.r) + 1;
    q->rec = rec;
    q->key = key;
    q->worker = w;
    q->seq = ++S.seq;
    q->timer = NEVER;
    q->deadline = S.now + S.timeout;

    rc = ngx_http_asyncx_lq_arrive(&S.z, S.k[key].sut, rec,
                                   (ngx_uint_t) dry_run, &env);
    CHECK(rc == expect);

    if (rc == NGX_OK) {
        m_take(&S.k[key]);
        q->state = M_HELD;
        S.passed++;
        return;
    }

    if (dry_run || rc == NGX_DECLINED) {
        if (dry_run) {
            if (rc == NGX_AGAIN) {
                if (S.k[key].dry == 0) {
                    S.k[key].dry_last = S.now;
                }

                S.k[key].dry++;
                S.dry_delayed++;
            } else {
                S.dry_rejected++;
            }

        } else {
            S.rejected++;
        }

        req_free(q);
        return;
    }

    q->state = M_WAIT;

    /* parked: its timer is the timeout, or the next token at the head */
    q->timer = q->deadline;

    {
        ngx_msec_t  due;

        due = ngx_http_asyncx_lq_due(&S.z, S.k[key].sut, rec, S.now);
        if (due) {
            q->timer = ngx_min(q->deadline, S.now + due);
            rec->armed = 1;
        }
    }
}


/* a request ends, in whatever state: from any position in the queue */

static void
op_leave(void)
{
    int                       i, n, idx[MAX_R];
    m_req_t                    *q;
    ngx_http_asyncx_lq_env_t  env;

    n = 0;
    for (i = 0; i < MAX_R; i++) {
        if (S.r[i].used && S.w[S.r[i].worker].alive) {
            idx[n++] = i;
        }
    }

    if (n == 0) {
        return;
    }

    q = &S.r[idx[pick(n)]];

    look(&env, q->worker);

    if (!q->used) {
        return;
    }

    if (q->state == M_WAIT) {
        S.z.left++;
    }

    /* gone for the model before the zone hands its place on */
    q->state = 0;
    ngx_http_asyncx_lq_leave(&S.z, S.k[q->key].sut, q->rec, &env);
    req_free(q);
}


/* one worker handles its notification: grants to pick up, a head to arm */

static int
service(int w)
{
    int  i;

    if (!S.w[w].notified || !S.w[w].alive) {
        return 0;
    }

    S.w[w].notified = 0;

    for (i = 0; i < MAX_R; i++) {
        if (S.r[i].used && S.r[i].worker == w
            && (S.r[i].state == M_WAIT || S.r[i].state == M_GRANTED))
        {
            step(w, &S.r[i]);
        }
    }

    return 1;
}


static int
fire_timers(void)
{
    int  i, n;

    n = 0;

    for (i = 0; i < MAX_R; i++) {
        if (S.r[i].used && S.r[i].state == M_WAIT
            && S.r[i].timer != NEVER && S.r[i].timer <= S.now
            && S.w[S.r[i].worker].alive)
        {
            S.r[i].timer = NEVER;
            step(S.r[i].worker, &S.r[i]);
            n++;
        }
    }

    return n;
}


/*
 * Every worker handles what it was woken for, until nothing is left; then
 * no key may have a live waiter while a slot and a token are free.
 */

static void
settle(void)
{
    int       w, any, rounds, key;
    m_key_t   mk;

    for (rounds = 0; ; rounds++) {
        CHECK(rounds < 8);

        any = 0;

        for (w = 0; w < MAX_W; w++) {
            if (S.w[w].used) {
                any |= service(w);
            }
        }

        any |= fire_timers();

        if (!any) {
            break;
        }
    }

    if ((uint64_t) rounds > S.max_rounds) {
        S.max_rounds = rounds;
    }

    S.settles++;

    for (key = 0; key < MAX_K; key++) {
        if (S.k[key].used && m_head(key) != NULL) {
            /* looked at on a copy: the zone did not refill the bucket */
            mk = S.k[key];
            CHECK(!m_slot_free(key) || !m_has_token(&mk));
        }
    }

    /* every GRANTED record was picked up */
    for (key = 0; key < MAX_R; key++) {
        CHECK(!S.r[key].used || S.r[key].state != M_GRANTED);
    }
}


static void
op_time(void)
{
    static const ngx_msec_t  steps[] = { 0, 1, 1, 2, 5, 17, 50, 199, 200,
                                         333, 1000 };

    S.now += steps[pick(sizeof(steps) / sizeof(steps[0]))];
    fire_timers();
}


static int
worker_new(int32_t pid)
{
    int                       i;
    ngx_int_t                 idx;
    ngx_http_asyncx_lq_env_t  env;

    for (i = 0; i < MAX_W; i++) {
        if (!S.w[i].used) {
            break;
        }
    }

    if (i == MAX_W) {
        return -1;
    }

    env_for(&env, -1);
    idx = ngx_http_asyncx_lq_register(&S.z, pid, 1, &env);
    CHECK(idx != NGX_ERROR);

    /* the entry holds nothing of a former process with the pid */
    reap_workers();
    CHECK(worker_of_owner((ngx_uint_t) idx) == -1);
    CHECK(S.z.owners[idx].pid == pid);
    CHECK((S.z.owners[idx].waiting | S.z.owners[idx].granted
           | S.z.owners[idx].held) == 0);

    S.w[i].used = 1;
    S.w[i].pid = pid;
    S.w[i].alive = 1;
    S.w[i].accepting = 1;
    S.w[i].owner = (ngx_uint_t) idx;
    S.w[i].notified = 0;

    return i;
}


/* a dead worker leaves the harness once nothing of it is left */

static void
reap_workers(void)
{
    int  i, j, has;

    for (i = 0; i < MAX_W; i++) {
        if (!S.w[i].used || S.w[i].alive) {
            continue;
        }

        has = 0;
        for (j = 0; j < MAX_R; j++) {
            has |= S.r[j].used && S.r[j].worker == i;
        }

        if (!has) {
            memset(&S.w[i], 0, sizeof(m_worker_t));
        }
    }
}


static void
op_kill(void)
{
    int                       i, n, ws[MAX_W], w, room;
    int32_t                   pid;
    ngx_http_asyncx_lq_env_t  env;

    n = 0;
    room = 0;
    for (i = 0; i < MAX_W; i++) {
        if (S.w[i].used && S.w[i].alive) {
            ws[n++] = i;
        }
        room |= !S.w[i].used;
    }

    if (n == 0 || !room) {
        return;
    }

    w = ws[pick(n)];
    S.w[w].alive = 0;
    S.w[w].notified = 0;
    S.kills++;

    /* a death is seen from the next millisecond on */
    S.now++;

    /* the master starts another, sometimes with the same pid */
    pid = pick(3) == 0 ? S.w[w].pid : S.next_pid++;

    if (pick(4) == 0 && n > 1) {
        /* or a request to another worker looks first */
        for (i = 0; i < n; i++) {
            if (ws[i] != w) {
                look(&env, ws[i]);
                break;
            }
        }
    }

    i = worker_new(pid);
    CHECK(i >= 0);

    /* the new worker's start was a look */
    for (i = 0; i < MAX_R; i++) {
        CHECK(!S.r[i].used || S.r[i].worker != w);
    }

    reap_workers();
}


static void
op_status(void)
{
    int                       i, n, ws[MAX_W];
    ngx_http_asyncx_lq_env_t  env;

    n = 0;
    for (i = 0; i < MAX_W; i++) {
        if (S.w[i].used && S.w[i].alive) {
            ws[n++] = i;
        }
    }

    if (n) {
        look(&env, ws[pick(n)]);
    }
}


static void
random_limits(void)
{
    static const uint64_t  rates[] = { 17, 500, 1000, 5000, 20000, 200000 };

    S.rate = rates[pick(sizeof(rates) / sizeof(rates[0]))];
    S.burst = 1 + pick(4);
    S.concurrency = pick(5);
    S.queue = pick(7);
    S.timeout = 50 + pick(3000);
}


/* new limits; the workers of the old generation finish what they have */

static void
op_reload(void)
{
    int                       i, n, nw;
    ngx_http_asyncx_lq_env_t  env;

    for (i = 0, n = 0; i < MAX_W; i++) {
        n += !S.w[i].used;
    }

    if (n < 4) {
        /* the old generations are still finishing */
        return;
    }

    for (i = 0; i < MAX_W; i++) {
        if (S.w[i].used && S.w[i].alive) {
            S.w[i].accepting = 0;
        }
    }

    /* the tokens so far under the old rate, then the new one applies */
    for (i = 0; i < MAX_K; i++) {
        if (S.k[i].used) {
            m_refill(&S.k[i]);
        }
    }

    random_limits();
    S.reloads++;

    nw = -1;
    n = 1 + pick(2);

    for (i = 0; i < n; i++) {
        nw = worker_new(S.next_pid++);
    }

    if (nw < 0) {
        for (i = 0; i < MAX_W; i++) {
            if (S.w[i].used && S.w[i].alive) {
                S.w[i].accepting = 1;
                nw = i;
            }
        }
    }

    look(&env, nw);
    ngx_http_asyncx_lq_apply(&S.z, S.rate, S.burst, S.concurrency, S.queue,
                             &env);
}


/* an old worker without requests exits gracefully */

static void
op_exit_old(void)
{
    int  i, j, has;

    for (i = 0; i < MAX_W; i++) {
        if (!S.w[i].used || !S.w[i].alive || S.w[i].accepting) {
            continue;
        }

        has = 0;
        for (j = 0; j < MAX_R; j++) {
            has |= S.r[j].used && S.r[j].worker == i;
        }

        if (!has) {
            ngx_http_asyncx_lq_unregister(&S.z, S.w[i].owner);
            CHECK(S.z.owners[S.w[i].owner].pid == 0);
            memset(&S.w[i], 0, sizeof(m_worker_t));
        }
    }
}


static void
op_evict(void)
{
    int                        key;
    ngx_http_asyncx_lq_key_t  *k;

    k = ngx_http_asyncx_lq_idle_key(&S.z, NULL);
    if (k == NULL) {
        return;
    }

    key = key_of(k);
    CHECK(m_count(key, M_WAIT) == 0 && m_active(key) == 0);

    ngx_http_asyncx_lq_key_remove(&S.z, k);
    free(k);
    memset(&S.k[key], 0, sizeof(m_key_t));
}


/* everybody leaves; then every counter is 0 and no record is left */

static void
at_rest(void)
{
    int                          i, j;
    ngx_http_asyncx_lq_env_t     env;
    ngx_http_asyncx_lq_owner_t  *o;

    for (i = 0; i < 20 * MAX_R; i++) {
        for (j = 0; j < MAX_R && !S.r[j].used; j++) { /* void */ }
        if (j == MAX_R) {
            break;
        }
        op_leave();
        if (pick(4) == 0) {
            settle();
        }
    }

    op_status();
    settle();

    for (i = 0; i < MAX_R; i++) {
        CHECK(!S.r[i].used);
    }

    CHECK(S.records == 0);

    for (i = 0; i < MAX_K; i++) {
        if (S.k[i].used) {
            CHECK(S.k[i].sut->waiting == 0 && S.k[i].sut->active == 0);
            CHECK(ngx_queue_empty(&S.k[i].sut->fifo));
            CHECK(ngx_queue_empty(&S.k[i].sut->holds));
        }
    }

    for (j = 0; j < NGX_HTTP_ASYNCX_LQ_OWNERS; j++) {
        o = &S.z.owners[j];
        CHECK(o->waiting == 0 && o->granted == 0 && o->held == 0);
    }

    (void) env;
}


static void
run(uint64_t seed, uint64_t ops)
{
    int       i, r;
    uint64_t  rests;

    memset(&S, 0, sizeof(S));
    S.seed = seed;
    S.rng = seed * 0x9E3779B97F4A7C15ULL + 1;
    S.now = 1000000;
    S.next_pid = 100;

    ngx_http_asyncx_lq_zone_init(&S.z);
    random_limits();
    S.z.rate = S.rate;
    S.z.burst = S.burst;
    S.z.concurrency = S.concurrency;
    S.z.queue = S.queue;

    for (i = 0; i < 2; i++) {
        worker_new(S.next_pid++);
    }

    rests = 0;

    for (S.op = 1; S.op <= ops; S.op++) {
        r = pick(100);

        if (r < 34) {
            op_arrive(0);
        } else if (r < 37) {
            op_arrive(1);
        } else if (r < 60) {
            op_leave();
        } else if (r < 75) {
            op_time();
        } else if (r < 88) {
            settle();
        } else if (r < 90) {
            op_kill();
        } else if (r < 91) {
            op_reload();
        } else if (r < 94) {
            op_exit_old();
        } else if (r < 96) {
            op_status();
        } else if (r < 98) {
            op_evict();
        } else if (r == 98 && pick(50) == 0) {
            at_rest();
            rests++;
        } else {
            /* a worker looks at its own waiters on a notification */
            for (i = 0; i < MAX_W; i++) {
                if (S.w[i].used && S.w[i].alive && pick(2)) {
                    S.w[i].notified = 1;
                    service(i);
                }
            }
        }

        reap_workers();
        check_state();
    }

    at_rest();
    check_state();

    printf("model: seed %llu: %llu ops, %llu grants, %llu kicks, "
           "%llu passed, %llu delayed, %llu rejected, %llu timed out, "
           "%llu reclaimed, %llu kills, %llu reloads, %llu at rest, "
           "settle rounds <= %llu\n",
           (unsigned long long) seed, (unsigned long long) ops,
           (unsigned long long) S.grants, (unsigned long long) S.kicks,
           (unsigned long long) S.passed, (unsigned long long) S.delayed,
           (unsigned long long) S.rejected,
           (unsigned long long) S.timed_out,
           (unsigned long long) S.reclaimed, (unsigned long long) S.kills,
           (unsigned long long) S.reloads, (unsigned long long) rests,
           (unsigned long long) S.max_rounds);
}


/* make unit: four fixed seeds, a few seconds in all */
static uint64_t  model_seed = 12;
static uint64_t  model_seeds = 4;
static uint64_t  model_ops = 400000;


static void
test_model(void **state)
{
    uint64_t  i;

    for (i = 0; i < model_seeds; i++) {
        run(model_seed + i, model_ops);
    }
}


int
main(int argc, char **argv)
{
    char  *s;

    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_model),
    };

    s = getenv("LIMIT_MODEL_SEED");
    if (argc > 1) {
        s = argv[1];
    }
    if (s) {
        model_seed = strtoull(s, NULL, 10);
        model_seeds = 1;
        model_ops = 2000000;
    }

    s = getenv("LIMIT_MODEL_OPS");
    if (argc > 2) {
        s = argv[2];
    }
    if (s) {
        model_ops = strtoull(s, NULL, 10);
    }

    return cmocka_run_group_tests(tests, NULL, NULL);
}
