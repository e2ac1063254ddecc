
/*
 * Copyright (C) asyncx authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <cjson/cJSON.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_http.h"


#if !(NGX_THREADS)
#error ngx_http_asyncx_module needs nginx built --with-threads
#endif


/*
 * A non-cancelable timer per running job: a gracefully exiting worker
 * (reload, "nginx -s quit") waits for timers like this one, so it stays
 * until the task is done and the client gets its answer, as nginx 1.25.4
 * does for its own thread tasks.  It only logs when it fires.
 */
#define NGX_HTTP_ASYNCX_JOB_WATCHDOG  60000

/*
 * The heap is trimmed once the worker's pools had no job for a second
 * after the last large document, or after ten seconds if jobs keep
 * running or large documents keep coming (a steady trickle must not keep
 * the pages for good) but none waits in a queue.
 */
#define NGX_HTTP_ASYNCX_TRIM_IDLE      1000
#define NGX_HTTP_ASYNCX_TRIM_MAX_WAIT  10000


static void ngx_http_asyncx_job_handler(void *data, ngx_log_t *log);
static void ngx_http_asyncx_job_done(ngx_event_t *ev);
static void ngx_http_asyncx_job_client_left(void *data);
static void ngx_http_asyncx_trim_later(ngx_http_request_t *r,
    ngx_http_asyncx_job_t *job);
static ngx_uint_t ngx_http_asyncx_jobs_in_worker(ngx_uint_t gauge);
static void ngx_http_asyncx_trim_timer(ngx_event_t *ev);
static void ngx_http_asyncx_trim_handler(void *data, ngx_log_t *log);
static void ngx_http_asyncx_trim_done(ngx_event_t *ev);


ngx_int_t
ngx_http_asyncx_executor_init_main_conf(ngx_conf_t *cf,
    ngx_http_asyncx_executor_main_conf_t *emcf)
{
    emcf->trim_task = ngx_thread_task_alloc(cf->pool, 0);
    if (emcf->trim_task == NULL) {
        return NGX_ERROR;
    }

    emcf->trim_task->handler = ngx_http_asyncx_trim_handler;
    emcf->trim_task->ctx = emcf;
    emcf->trim_task->event.handler = ngx_http_asyncx_trim_done;
    emcf->trim_task->event.data = emcf;

    emcf->trim.handler = ngx_http_asyncx_trim_timer;
    emcf->trim.data = emcf;
    /* a worker that shuts down does not wait for it */
    emcf->trim.cancelable = 1;

    return NGX_OK;
}


void
ngx_http_asyncx_executor_init_conf(ngx_http_asyncx_executor_conf_t *conf)
{
    /* ngx_pcalloc() zeroed the names: "unset" */
    conf->io = NGX_CONF_UNSET_PTR;
    conf->cpu = NGX_CONF_UNSET_PTR;
}


char *
ngx_http_asyncx_executor_merge_conf(ngx_conf_t *cf,
    ngx_http_asyncx_executor_conf_t *prev,
    ngx_http_asyncx_executor_conf_t *conf)
{
    ngx_http_asyncx_main_conf_t  *amcf;

    ngx_conf_merge_str_value(conf->io_name, prev->io_name, "default");
    ngx_conf_merge_str_value(conf->cpu_name, prev->cpu_name, "default");

    /*
     * Pools are looked up only where a handler runs jobs, so loading the
     * module never starts threads by itself.  ngx_thread_pool_add()
     * returns the pool a "thread_pool" directive declares; nginx creates
     * "default" (32 threads, max_queue=65536) when nobody declares it and
     * refuses any other undeclared name at start-up.
     */

    if (!conf->required) {
        conf->io = NULL;
        conf->cpu = NULL;
        return NGX_CONF_OK;
    }

    conf->io = ngx_thread_pool_add(cf, &conf->io_name);
    if (conf->io == NULL) {
        return NGX_CONF_ERROR;
    }

    conf->cpu = ngx_thread_pool_add(cf, &conf->cpu_name);
    if (conf->cpu == NULL) {
        return NGX_CONF_ERROR;
    }

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_asyncx_module);

    conf->io_index = ngx_http_asyncx_stats_add_pool(cf, &amcf->stats,
                                                     &conf->io_name);
    conf->cpu_index = ngx_http_asyncx_stats_add_pool(cf, &amcf->stats,
                                                      &conf->cpu_name);

    if (conf->io_index == (ngx_uint_t) NGX_ERROR
        || conf->cpu_index == (ngx_uint_t) NGX_ERROR)
    {
        return NGX_CONF_ERROR;
    }

    conf->io_metrics = ngx_http_asyncx_metrics_series(cf,
                                                NGX_HTTP_ASYNCX_SERIES_POOL,
                                                &conf->io_name, NULL);
    conf->cpu_metrics = ngx_http_asyncx_metrics_series(cf,
                                                NGX_HTTP_ASYNCX_SERIES_POOL,
                                                &conf->cpu_name, NULL);

    if (conf->io_metrics == NULL || conf->cpu_metrics == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * asyncx_thread_pools io=name cpu=name;
 * Messages quote the whole parameter ("io=" included) and name the
 * directive, as nginx's own do: the value alone could be either role's.
 */

char *
ngx_http_asyncx_thread_pools(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    size_t      len;
    ngx_str_t  *value, *name;
    ngx_uint_t  i;

    if (alcf->executor.io_name.data != NULL
        || alcf->executor.cpu_name.data != NULL)
    {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "io=", 3) == 0) {
            name = &alcf->executor.io_name;
            len = 3;

        } else if (ngx_strncmp(value[i].data, "cpu=", 4) == 0) {
            name = &alcf->executor.cpu_name;
            len = 4;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\", expected "
                               "io=name or cpu=name", &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }

        if (value[i].len == len
            || value[i].len - len >= NGX_HTTP_ASYNCX_POOL_NAME_LEN)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid thread pool name \"%V\" in \"%V\", "
                               "expected 1..%d bytes", &value[i], &cmd->name,
                               NGX_HTTP_ASYNCX_POOL_NAME_LEN - 1);
            return NGX_CONF_ERROR;
        }

        if (name->data != NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate parameter \"%V\" in \"%V\"",
                               &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }

        name->data = value[i].data + len;
        name->len = value[i].len - len;

        if (ngx_http_asyncx_conf_check_text(cf, "thread pool name", name,
                                            &cmd->name)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* handler directives call this: their location runs jobs */

void
ngx_http_asyncx_executor_require(ngx_http_asyncx_executor_conf_t *conf)
{
    conf->required = 1;
}


/*
 * One job per request and role, reused for every post (an SSE stream
 * posts thousands of batches without growing its pool).
 */

ngx_http_asyncx_job_t *
ngx_http_asyncx_job_create(ngx_http_request_t *r,
    ngx_http_asyncx_pool_role_e role)
{
    ngx_uint_t                    index, slot;
    ngx_thread_task_t            *task;
    ngx_http_asyncx_job_t        *job;
    ngx_http_asyncx_stats_t      *sh;
    ngx_http_asyncx_loc_conf_t   *alcf;
    ngx_http_asyncx_main_conf_t  *amcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_asyncx_module);
    amcf = ngx_http_get_module_main_conf(r, ngx_http_asyncx_module);

    task = ngx_thread_task_alloc(r->pool, sizeof(ngx_http_asyncx_job_t));
    if (task == NULL) {
        return NULL;
    }

    job = task->ctx;
    job->request = r;
    job->task = task;

    if (role == NGX_HTTP_ASYNCX_POOL_IO) {
        job->pool = alcf->executor.io;
        job->metrics = alcf->executor.io_metrics;
        index = alcf->executor.io_index;

    } else {
        job->pool = alcf->executor.cpu;
        job->metrics = alcf->executor.cpu_metrics;
        index = alcf->executor.cpu_index;
    }

    sh = amcf->stats.sh;
    slot = amcf->stats.pool_slot[index];
    job->stats = &sh->pools[slot];
    job->gauge_queued = ngx_http_asyncx_gauge_ptr(
                            NGX_HTTP_ASYNCX_GAUGE_QUEUED + slot);
    job->gauge_running = ngx_http_asyncx_gauge_ptr(
                             NGX_HTTP_ASYNCX_GAUGE_RUNNING + slot);

    task->handler = ngx_http_asyncx_job_handler;
    task->event.handler = ngx_http_asyncx_job_done;
    task->event.data = job;
    task->event.log = r->connection->log;

    return job;
}


/*
 * NGX_OK: posted; the request is blocked until the job is done, and then
 * r->write_event_handler runs (set it before posting).  NGX_BUSY: the
 * pool's queue is full (nginx logged it); answer 503.
 */

ngx_int_t
ngx_http_asyncx_job_post(ngx_http_asyncx_job_t *job,
    ngx_http_asyncx_job_run_pt run, void *data)
{
    ngx_http_request_t  *r;

    r = job->request;

    job->run = run;
    job->data = data;
    job->rc = NGX_ERROR;
    job->posted_at = ngx_http_asyncx_now_usec();
    job->started_at = 0;
    job->finished_at = 0;
    job->in_thread = 0;
    job->freed_large = 0;

    /* counted before the thread can take it: the gauge never dips */
    (void) ngx_atomic_fetch_add(job->gauge_queued, 1);

    if (ngx_thread_task_post(job->pool, job->task) != NGX_OK) {
        (void) ngx_atomic_fetch_add(job->gauge_queued, -1);
        (void) ngx_atomic_fetch_add(&job->stats->rejected, 1);
        return NGX_BUSY;
    }

    (void) ngx_atomic_fetch_add(&job->stats->posted, 1);

    job->running = 1;
    r->main->blocked++;

    ngx_add_timer(&job->task->event, NGX_HTTP_ASYNCX_JOB_WATCHDOG);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "asyncx executor: job %p posted to pool \"%s\"",
                   job, job->stats->name);

    return NGX_OK;
}


ngx_int_t
ngx_http_asyncx_job_reject(ngx_http_request_t *r)
{
    if (ngx_http_asyncx_set_retry_after(r, 1) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_asyncx_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      NGX_LOG_WARN,
                                      "thread pool queue is full");
}


/*
 * A client that leaves while its job waits in the queue would still have
 * it run to its end (a password hash: a second of a CPU thread), for an
 * answer nobody reads.  nginx runs a request's cleanups when it
 * terminates the request (ngx_http_terminate_request(): the client left,
 * or an error ended it), never when it ends normally: mark the job, and
 * the thread skips it.  A job already running goes on, unless its run()
 * looks at the mark in its loop (regex texts, SSE records and lines) and
 * stops: NGX_HTTP_ASYNCX_JOB_STOPPED.  The request stays blocked until
 * the thread lets go, and its write handler is nginx's finalizer by
 * then: a cancelled job's results reach no client.  A stream's jobs are
 * marked too: its request ends with the mark, no job follows.
 * Main requests only: a subrequest's job (a pipeline's call to such a
 * location) must answer its parent, which nginx keeps going.
 */

ngx_int_t
ngx_http_asyncx_job_skip_if_client_leaves(ngx_http_asyncx_job_t *job)
{
    ngx_http_cleanup_t  *cln;

    if (job->request != job->request->main) {
        return NGX_OK;
    }

    cln = ngx_http_cleanup_add(job->request, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_asyncx_job_client_left;
    cln->data = job;

    return NGX_OK;
}


static void
ngx_http_asyncx_job_client_left(void *data)
{
    ngx_http_asyncx_job_t  *job = data;

    if (!job->running) {
        return;
    }

    (void) ngx_atomic_cmp_set(&job->cancelled, 0, 1);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, job->request->connection->log, 0,
                   "asyncx executor: job %p cancelled, the request ended",
                   job);
}


static void
ngx_http_asyncx_job_handler(void *data, ngx_log_t *log)
{
    ngx_http_asyncx_job_t  *job = data;

    (void) ngx_atomic_fetch_add(&job->stats->started, 1);
    (void) ngx_atomic_fetch_add(job->gauge_queued, -1);
    (void) ngx_atomic_fetch_add(job->gauge_running, 1);

    job->started_at = ngx_http_asyncx_now_usec();
    (void) ngx_atomic_fetch_add(&job->in_thread, 1);

    if (ngx_atomic_fetch_add(&job->cancelled, 0)) {
        job->rc = NGX_HTTP_ASYNCX_JOB_SKIPPED;

    } else {
        job->rc = job->run(job->data);
    }

    job->finished_at = ngx_http_asyncx_now_usec();
}


static void
ngx_http_asyncx_job_done(ngx_event_t *ev)
{
    uint64_t                now, started;
    ngx_uint_t              level;
    ngx_msec_t              queued, ran;
    ngx_connection_t       *c;
    ngx_http_request_t     *r;
    ngx_http_asyncx_job_t  *job;

    job = ev->data;
    r = job->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    if (ev->timedout) {
        ev->timedout = 0;

        if (job->running) {
            now = ngx_http_asyncx_now_usec();

            /* started_at is written by the thread before in_thread */
            started = job->in_thread ? job->started_at : now;
            queued = (ngx_msec_t) ((started - job->posted_at) / 1000);
            ran = (ngx_msec_t) ((now - started) / 1000);

            /*
             * Long in the queue: the pool is overloaded (warn).  Long in
             * a thread: the task may be stuck (alert).
             */
            level = (ran >= NGX_HTTP_ASYNCX_JOB_WATCHDOG / 2)
                    ? NGX_LOG_ALERT : NGX_LOG_WARN;

            ngx_log_error(level, c->log, 0,
                          "asyncx executor: thread task in pool \"%s\" "
                          "not done after %M ms: queued %M ms, running %M ms",
                          job->stats->name, queued + ran, queued, ran);

            ngx_add_timer(ev, NGX_HTTP_ASYNCX_JOB_WATCHDOG);
            return;
        }
    }

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "asyncx executor: job %p done, rc=%i", job, job->rc);

    if (job->rc == NGX_OK) {
        (void) ngx_atomic_fetch_add(&job->stats->completed, 1);

    } else if (job->rc == NGX_HTTP_ASYNCX_JOB_SKIPPED) {
        (void) ngx_atomic_fetch_add(&job->stats->cancelled, 1);

        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "asyncx executor: task in pool \"%s\" skipped after "
                      "%uL ms in the queue: its client left",
                      job->stats->name,
                      (job->started_at - job->posted_at) / 1000);

    } else if (job->rc == NGX_HTTP_ASYNCX_JOB_STOPPED) {
        (void) ngx_atomic_fetch_add(&job->stats->cancelled, 1);

        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "asyncx executor: task in pool \"%s\" stopped after "
                      "%uL ms in a thread: its client left",
                      job->stats->name,
                      (job->finished_at - job->started_at) / 1000);

    } else {
        (void) ngx_atomic_fetch_add(&job->stats->failed, 1);
    }

    (void) ngx_atomic_fetch_add(job->gauge_running, -1);

    /* the thread wrote both times before nginx posted this event */
    ngx_http_asyncx_metrics_job(job->metrics,
                                job->started_at - job->posted_at,
                                job->finished_at - job->started_at);

    if (job->freed_large) {
        ngx_http_asyncx_trim_later(r, job);
    }

    job->running = 0;
    r->main->blocked--;

    /*
     * If the client went away meanwhile, nginx replaced the handler with
     * its finalizer, which now frees the request; the job's results go
     * with the request pool.
     */

    if (r->done) {
        c->write->handler(c->write);

    } else {
        r->write_event_handler(r);
        ngx_http_run_posted_requests(c);
    }
}


static void
ngx_http_asyncx_trim_later(ngx_http_request_t *r, ngx_http_asyncx_job_t *job)
{
    ngx_http_asyncx_main_conf_t           *amcf;
    ngx_http_asyncx_executor_main_conf_t  *emcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_asyncx_module);
    emcf = &amcf->executor;

    if (!emcf->trim.timer_set && !emcf->trim_posted) {
        emcf->trim_wanted = ngx_current_msec;
    }

    emcf->trim_pool = job->pool;
    emcf->trim.log = ngx_cycle->log;

    /*
     * Each large document puts it off again, but not past the longest
     * wait: documents less than a second apart would put it off for good.
     */
    if (emcf->trim.timer_set
        && ngx_current_msec - emcf->trim_wanted
           >= NGX_HTTP_ASYNCX_TRIM_MAX_WAIT - NGX_HTTP_ASYNCX_TRIM_IDLE)
    {
        return;
    }

    ngx_add_timer(&emcf->trim, NGX_HTTP_ASYNCX_TRIM_IDLE);
}


/* this worker's jobs in all its pools: queued or running, by gauge */

static ngx_uint_t
ngx_http_asyncx_jobs_in_worker(ngx_uint_t gauge)
{
    ngx_uint_t  slot, jobs;

    jobs = 0;

    for (slot = 0; slot < NGX_HTTP_ASYNCX_MAX_POOLS; slot++) {
        jobs += *ngx_http_asyncx_gauge_ptr(gauge + slot);
    }

    return jobs;
}


static void
ngx_http_asyncx_trim_timer(ngx_event_t *ev)
{
    ngx_uint_t                             queued, running;
    ngx_http_asyncx_executor_main_conf_t  *emcf;

    emcf = ev->data;

    queued = ngx_http_asyncx_jobs_in_worker(NGX_HTTP_ASYNCX_GAUGE_QUEUED);
    running = ngx_http_asyncx_jobs_in_worker(NGX_HTTP_ASYNCX_GAUGE_RUNNING);

    /*
     * Never behind queued jobs (nor into a full queue, which nginx logs
     * as an error); running ones put it off up to the longest wait.
     */
    if (emcf->trim_posted
        || queued
        || (running
            && ngx_current_msec - emcf->trim_wanted
               < NGX_HTTP_ASYNCX_TRIM_MAX_WAIT))
    {
        ngx_log_debug2(NGX_LOG_DEBUG_CORE, ev->log, 0,
                       "asyncx executor: heap trim put off, jobs queued %ui, "
                       "running %ui", queued, running);

        ngx_add_timer(ev, NGX_HTTP_ASYNCX_TRIM_IDLE);
        return;
    }

    emcf->trim_task->event.log = ev->log;

    /*
     * Tasks of another module (aio threads) filled the queue; nginx
     * logged it as an error: not again every second while they do.
     */
    if (ngx_thread_task_post(emcf->trim_pool, emcf->trim_task) != NGX_OK) {
        ngx_add_timer(ev, NGX_HTTP_ASYNCX_TRIM_MAX_WAIT);
        return;
    }

    emcf->trim_posted = 1;

    ngx_log_debug2(NGX_LOG_DEBUG_CORE, ev->log, 0,
                   "asyncx executor: heap trim posted after %M ms, "
                   "%ui jobs running", ngx_current_msec - emcf->trim_wanted,
                   running);
}


static void
ngx_http_asyncx_trim_handler(void *data, ngx_log_t *log)
{
#ifdef __GLIBC__
    /* every arena, not only this thread's */
    (void) malloc_trim(0);
#endif
}


static void
ngx_http_asyncx_trim_done(ngx_event_t *ev)
{
    ngx_http_asyncx_executor_main_conf_t  *emcf;

    emcf = ev->data;
    emcf->trim_posted = 0;

    ngx_log_debug0(NGX_LOG_DEBUG_CORE, ev->log, 0,
                   "asyncx executor: heap trimmed");
}


ngx_int_t
ngx_http_asyncx_executor_status(ngx_http_request_t *r, cJSON *root)
{
    cJSON                         *pools, *p;
    ngx_uint_t                     i;
    ngx_http_asyncx_stats_t       *sh;
    ngx_http_asyncx_pool_stats_t  *ps;

    sh = ngx_http_asyncx_stats();

    pools = cJSON_AddObjectToObject(root, "pools");
    if (pools == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < NGX_HTTP_ASYNCX_MAX_POOLS; i++) {
        ps = &sh->pools[i];

        if (ps->name[0] == '\0') {
            continue;
        }

        p = cJSON_AddObjectToObject(pools, (char *) ps->name);
        if (p == NULL) {
            return NGX_ERROR;
        }

        /*
         * What is queued and running is counted per worker, not derived
         * from the totals: a killed worker's jobs never complete.
         */
        cJSON_AddNumberToObject(p, "posted", (double) ps->posted);
        cJSON_AddNumberToObject(p, "queued", (double)
            ngx_http_asyncx_gauge(NGX_HTTP_ASYNCX_GAUGE_QUEUED + i));
        cJSON_AddNumberToObject(p, "running", (double)
            ngx_http_asyncx_gauge(NGX_HTTP_ASYNCX_GAUGE_RUNNING + i));
        cJSON_AddNumberToObject(p, "completed", (double) ps->completed);
        cJSON_AddNumberToObject(p, "failed", (double) ps->failed);
        cJSON_AddNumberToObject(p, "rejected", (double) ps->rejected);
        cJSON_AddNumberToObject(p, "cancelled", (double) ps->cancelled);
    }

    return NGX_OK;
}
