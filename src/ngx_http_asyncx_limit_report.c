
/*
 * Copyright (C) asyncx authors
 *
 * The limiter's reporting endpoints: asyncx_limit_zone_status (the live
 * state of a zone, in the exercise's shape), the limit_zones section of
 * asyncx_status, and asyncx_limit_test (N concurrent subrequests through
 * a zone, timed).  Reading a zone is a look: what dead workers left is
 * reclaimed before anything is counted.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <cjson/cJSON.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_http.h"
#include "ngx_http_asyncx_limit_zone.h"
#include "ngx_http_asyncx_pipeline_util.h"


static ngx_int_t ngx_http_asyncx_limit_status_handler(ngx_http_request_t *r);
static cJSON *ngx_http_asyncx_limit_zone_json(ngx_http_asyncx_limit_zone_t *lz,
    ngx_uint_t full, ngx_log_t *log);
static ngx_int_t ngx_http_asyncx_limit_test_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_asyncx_limit_test_call_done(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static void ngx_http_asyncx_limit_test_done(ngx_http_request_t *r);


/* asyncx_limit_zone_status name;  (and asyncx_limit_test name uri;) */

char *
ngx_http_asyncx_limit_zone_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char                               *rv;
    u_char                             *p;
    size_t                              path_len;
    ngx_str_t                          *value;
    ngx_http_handler_pt                 handler;
    ngx_http_asyncx_limit_test_conf_t  *tcf;

    /* with a URI: the test endpoint, else the zone's live status */
    handler = (cf->args->nelts == 3) ? ngx_http_asyncx_limit_test_handler
                                     : ngx_http_asyncx_limit_status_handler;

    rv = ngx_http_asyncx_conf_set_handler(cf, handler,
                       &((ngx_http_asyncx_loc_conf_t *) conf)->content_handler);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    value = cf->args->elts;

    tcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_asyncx_limit_test_conf_t));
    if (tcf == NULL) {
        return NGX_CONF_ERROR;
    }

    tcf->zone = ngx_http_asyncx_limit_ref(cf, &value[1]);
    if (tcf->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {
        tcf->uri = value[2];

        /* a call target under the pipeline's rules (no dot segment...) */
        if (ngx_http_asyncx_pipeline_check_uri(tcf->uri.data, tcf->uri.len,
                                               &path_len)
            != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid URI \"%V\" in \"%V\", expected a "
                               "path starting with \"/\", without spaces, "
                               "control characters, \"#\", \"\\\", "
                               "\".\" or \"..\" segments", &tcf->uri,
                               &cmd->name);
            return NGX_CONF_ERROR;
        }

        /* "/s/t?delay=300ms": the arguments go to every call */
        p = ngx_strlchr(tcf->uri.data, tcf->uri.data + tcf->uri.len, '?');

        if (p) {
            tcf->args.data = p + 1;
            tcf->args.len = tcf->uri.data + tcf->uri.len - (p + 1);
            tcf->uri.len = p - tcf->uri.data;
        }
    }

    /* the content handler finds its zone through the location's conf */
    ((ngx_http_asyncx_loc_conf_t *) conf)->limit.test = tcf;

    return NGX_CONF_OK;
}


/*
 * asyncx_limit_status code [code];  the refusal status when the queue is
 * full and after a wait longer than the timeout (limit_req_status).
 * With one argument that is not a number, the zone status endpoint's
 * old name: still works, with a warning.
 */

char *
ngx_http_asyncx_limit_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    ngx_int_t    n;
    ngx_str_t   *value;
    ngx_uint_t   i, *codes[2];

    value = cf->args->elts;

    /* a zone name starts with a letter: "429", "4x9", "-1" are codes */
    if (cf->args->nelts == 2 && value[1].len
        && !(value[1].data[0] >= '0' && value[1].data[0] <= '9')
        && value[1].data[0] != '-' && value[1].data[0] != '+')
    {
        if (!(cf->cmd_type & NGX_HTTP_LOC_CONF)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\" directive, "
                               "expected a status code 400..599",
                               &value[1], &cmd->name);
            return NGX_CONF_ERROR;
        }

        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"asyncx_limit_status %V\" is deprecated for the "
                           "zone's status, use \"asyncx_limit_zone_status "
                           "%V\"; \"asyncx_limit_status\" now sets the "
                           "refusal status code", &value[1], &value[1]);

        return ngx_http_asyncx_limit_zone_status(cf, cmd, conf);
    }

    if (alcf->limit.status_rejected != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    codes[0] = &alcf->limit.status_rejected;
    codes[1] = &alcf->limit.status_timeout;

    for (i = 1; i < cf->args->nelts; i++) {
        n = ngx_atoi(value[i].data, value[i].len);

        if (n < 400 || n > 599) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\" directive, "
                               "expected a status code 400..599",
                               &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }

        /* 444 closes the connection, as with limit_req_status 444 */
        if (n != NGX_HTTP_CLOSE
            && ngx_http_asyncx_conf_nginx_status((ngx_uint_t) n) == NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\" directive, "
                               "expected a status code 400..599 but not "
                               "nginx's own 494..497, 499",
                               &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }

        *codes[i - 1] = (ngx_uint_t) n;
    }

    return NGX_CONF_OK;
}


/* one zone's live numbers, copied under the lock, formatted after it */

typedef struct {
    int32_t                        pid;
    uint32_t                       waiting;
    uint32_t                       granted;
    uint32_t                       held;
} ngx_http_asyncx_limit_owner_copy_t;


/*
 * One function: the zone's numbers are copied under its lock in one place,
 * then formatted; the copy and the JSON stay side by side.
 */

static cJSON *
ngx_http_asyncx_limit_zone_json(ngx_http_asyncx_limit_zone_t *lz,
    ngx_uint_t full, ngx_log_t *log)
{
    cJSON                               *root, *o, *a;
    double                               rps;
    ngx_uint_t                           i, n, active, waiting, keys;
    ngx_uint_t                           dry_waiting;
    ngx_queue_t                         *q;
    ngx_msec_t                           now;
    ngx_http_asyncx_lq_key_t            *k;
    ngx_http_asyncx_lq_zone_t            z;
    ngx_http_asyncx_limit_node_t        *node;
    ngx_http_asyncx_limit_op_t           op;
    ngx_http_asyncx_lq_owner_t          *ow;
    ngx_http_asyncx_limit_owner_copy_t   owners[NGX_HTTP_ASYNCX_LQ_OWNERS];

    active = 0;
    waiting = 0;
    dry_waiting = 0;
    rps = 0;
    n = 0;

    /* a table full of live workers still lets the numbers be read */
    (void) ngx_http_asyncx_limit_lock(lz, &op, NULL, log);

    now = op.env.now;

    for (q = ngx_queue_head(&lz->sh->lq.keys);
         q != ngx_queue_sentinel(&lz->sh->lq.keys);
         q = ngx_queue_next(q))
    {
        k = ngx_queue_data(q, ngx_http_asyncx_lq_key_t, lru);
        active += k->active;
        waiting += k->waiting;
        dry_waiting += k->dry_waiting;
        node = ngx_http_asyncx_limit_node_of(k);
        rps += ngx_http_asyncx_limit_rps(node->rps_slot, node->rps_count,
                                         now);
    }

    /* a cluster zone's admissions by Redis have no key node here */
    rps += ngx_http_asyncx_limit_rps(lz->sh->rps_slot, lz->sh->rps_count,
                                     now);

    for (i = 0; i < lz->sh->lq.owners_n; i++) {
        ow = &lz->sh->lq.owners[i];

        if (ow->pid) {
            owners[n].pid = ow->pid;
            owners[n].waiting = ow->waiting;
            owners[n].granted = ow->granted;
            owners[n].held = ow->held;
            n++;
        }
    }

    z = lz->sh->lq;
    keys = z.nkeys;

    ngx_http_asyncx_limit_unlock(&op);

    /*
     * A cluster zone: the limits it enforces (the fleet's, or this
     * server's share in cluster_fallback=local), this server's requests
     * running and waiting in Redis mode too.
     */
    ngx_http_asyncx_limit_cluster_limits(lz, &z.rate, &z.burst,
                                         &z.concurrency);
    (void) ngx_http_asyncx_limit_cluster_json(lz, NULL, &active, &waiting);

    root = cJSON_CreateObject();
    if (root == NULL) {
        return NULL;
    }

    o = cJSON_AddObjectToObject(root, "concurrent");
    if (o == NULL
        || cJSON_AddNumberToObject(o, "current", (double) active) == NULL
        || cJSON_AddNumberToObject(o, "max", (double) z.concurrency) == NULL)
    {
        goto failed;
    }

    o = cJSON_AddObjectToObject(root, "rate");
    if (o == NULL
        || cJSON_AddNumberToObject(o, "current_rps", rps) == NULL
        || cJSON_AddNumberToObject(o, "max_rps", (double) z.rate / 1000)
           == NULL
        || cJSON_AddNumberToObject(root, "waiting", (double) waiting) == NULL)
    {
        goto failed;
    }

    if (!full) {
        return root;
    }

    if (ngx_http_asyncx_limit_cluster_json(lz, root, NULL, NULL) != NGX_OK) {
        goto failed;
    }

    if (cJSON_AddNumberToObject(root, "burst", (double) z.burst) == NULL
        || cJSON_AddNumberToObject(root, "queue", (double) z.queue) == NULL
        || cJSON_AddNumberToObject(root, "timeout_ms", (double) lz->timeout)
           == NULL
        || cJSON_AddNumberToObject(root, "keys", (double) keys) == NULL
        || cJSON_AddNumberToObject(root, "admitted",
                                   (double) (z.passed + z.delayed)) == NULL
        || cJSON_AddNumberToObject(root, "passed", (double) z.passed) == NULL
        || cJSON_AddNumberToObject(root, "delayed", (double) z.delayed)
           == NULL
        || cJSON_AddNumberToObject(root, "rejected", (double) z.rejected)
           == NULL
        || cJSON_AddNumberToObject(root, "timed_out", (double) z.timed_out)
           == NULL
        || cJSON_AddNumberToObject(root, "left", (double) z.left) == NULL
        || cJSON_AddNumberToObject(root, "zone_full", (double) z.zone_full)
           == NULL
        || cJSON_AddNumberToObject(root, "reclaimed", (double) z.reclaimed)
           == NULL)
    {
        goto failed;
    }

    o = cJSON_AddObjectToObject(root, "dry_run");
    if (o == NULL
        || cJSON_AddNumberToObject(o, "delayed", (double) z.dry_run_delayed)
           == NULL
        || cJSON_AddNumberToObject(o, "rejected",
                                   (double) z.dry_run_rejected) == NULL
        || cJSON_AddNumberToObject(o, "waiting", (double) dry_waiting)
           == NULL)
    {
        goto failed;
    }

    /* grants made in one worker for a request waiting in another */
    o = cJSON_AddObjectToObject(root, "handoffs");
    if (o == NULL
        || cJSON_AddNumberToObject(o, "count", (double) z.handoffs) == NULL
        || cJSON_AddNumberToObject(o, "mean_us",
                                   z.handoffs ? (double) (z.handoff_us_total
                                                          / z.handoffs)
                                              : 0) == NULL
        || cJSON_AddNumberToObject(o, "max_us", (double) z.handoff_us_max)
           == NULL)
    {
        goto failed;
    }

    a = cJSON_AddArrayToObject(root, "workers");
    if (a == NULL) {
        goto failed;
    }

    for (i = 0; i < n; i++) {
        o = cJSON_CreateObject();
        if (o == NULL) {
            goto failed;
        }

        cJSON_AddItemToArray(a, o);

        if (cJSON_AddNumberToObject(o, "pid", (double) owners[i].pid) == NULL
            || cJSON_AddNumberToObject(o, "waiting",
                                       (double) owners[i].waiting) == NULL
            || cJSON_AddNumberToObject(o, "granted",
                                       (double) owners[i].granted) == NULL
            || cJSON_AddNumberToObject(o, "held", (double) owners[i].held)
               == NULL)
        {
            goto failed;
        }
    }

    return root;

failed:

    cJSON_Delete(root);
    return NULL;
}


static ngx_int_t
ngx_http_asyncx_limit_status_handler(ngx_http_request_t *r)
{
    cJSON                       *root;
    ngx_int_t                    rc;
    ngx_http_asyncx_loc_conf_t  *alcf;

    if (ngx_http_asyncx_get_only(r, &rc) != NGX_OK) {
        return rc;
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_asyncx_module);

    root = ngx_http_asyncx_limit_zone_json(alcf->limit.test->zone->data, 0,
                                           r->connection->log);
    if (root == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_asyncx_send_cjson(r, NGX_HTTP_OK, root);
    cJSON_Delete(root);

    return rc;
}


ngx_int_t
ngx_http_asyncx_limit_status_all(ngx_http_request_t *r, cJSON *root)
{
    u_char                         name[256];
    cJSON                         *zones, *z;
    ngx_uint_t                     i;
    ngx_shm_zone_t               **zp;
    ngx_http_asyncx_main_conf_t   *amcf;
    ngx_http_asyncx_limit_zone_t  *lz;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_asyncx_module);

    zones = cJSON_AddObjectToObject(root, "limit_zones");
    if (zones == NULL) {
        return NGX_ERROR;
    }

    zp = amcf->limit.zones.elts;

    for (i = 0; i < amcf->limit.zones.nelts; i++) {
        lz = zp[i]->data;

        z = ngx_http_asyncx_limit_zone_json(lz, 1, r->connection->log);
        if (z == NULL) {
            return NGX_ERROR;
        }

        /* the zone name is not NUL-terminated in the configuration */
        ngx_cpystrn(name, lz->name.data,
                    ngx_min(lz->name.len + 1, sizeof(name)));
        cJSON_AddItemToObject(zones, (char *) name, z);
    }

    return NGX_OK;
}


/*
 * GET /rate-limit-test?requests=N: N subrequests at once through the
 * zone, each recording when it was admitted and when it ended.
 */

static ngx_int_t
ngx_http_asyncx_limit_test_handler(ngx_http_request_t *r)
{
    u_char                            *p;
    uint64_t                           n;
    ngx_int_t                          rc;
    ngx_str_t                          args, *fixed;
    ngx_uint_t                         i;
    ngx_http_request_t                *sr;
    ngx_http_asyncx_ctx_t             *actx;
    ngx_http_asyncx_loc_conf_t        *alcf;
    ngx_http_post_subrequest_t        *ps;
    ngx_http_asyncx_limit_test_ctx_t  *tctx;

    if (ngx_http_asyncx_get_only(r, &rc) != NGX_OK) {
        return rc;
    }

    n = 10;

    if (ngx_http_asyncx_arg_uint(r, "requests", 1,
                                 NGX_HTTP_ASYNCX_LIMIT_TEST_MAX, &n)
        == NGX_ERROR)
    {
        return ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          NGX_LOG_INFO,
                                          "requests must be an integer "
                                          "between 1 and %d",
                                          NGX_HTTP_ASYNCX_LIMIT_TEST_MAX);
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_asyncx_module);

    tctx = ngx_pcalloc(r->pool, sizeof(ngx_http_asyncx_limit_test_ctx_t));
    if (tctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    tctx->calls = ngx_pcalloc(r->pool,
                              n * sizeof(ngx_http_asyncx_limit_call_t));
    if (tctx->calls == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    tctx->zone = alcf->limit.test->zone->data;
    tctx->n = (ngx_uint_t) n;
    tctx->start_us = ngx_http_asyncx_now_usec();

    actx = ngx_http_asyncx_get_ctx(r);
    if (actx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    actx->limit_test = tctx;

    for (i = 0; i < tctx->n; i++) {
        ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
        if (ps == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ps->handler = ngx_http_asyncx_limit_test_call_done;
        ps->data = &tctx->calls[i];

        fixed = &alcf->limit.test->args;

        p = ngx_pnalloc(r->pool, sizeof("id=&") + NGX_INT_T_LEN + fixed->len);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        args.data = p;
        p = ngx_sprintf(p, "id=%ui", i + 1);

        if (fixed->len) {
            p = ngx_sprintf(p, "&%V", fixed);
        }

        args.len = p - args.data;

        tctx->calls[i].id = i + 1;

        if (ngx_http_subrequest(r, &alcf->limit.test->uri, &args, &sr, ps,
                                NGX_HTTP_SUBREQUEST_IN_MEMORY
                                |NGX_HTTP_SUBREQUEST_WAITED)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        tctx->calls[i].sr = sr;
        tctx->pending++;

        /* whichever call is active sees the client leave */
        sr->read_event_handler = ngx_http_test_reading;
    }

    r->write_event_handler = ngx_http_asyncx_limit_test_done;

    /* a client that leaves ends every call: their cleanups free slots */
    ngx_http_asyncx_watch_client(r);
    r->main->count++;

    return NGX_DONE;
}


static ngx_int_t
ngx_http_asyncx_limit_test_call_done(ngx_http_request_t *sr, void *data,
    ngx_int_t rc)
{
    ngx_http_asyncx_limit_call_t *call = data;

    ngx_http_asyncx_ctx_t             *actx;
    ngx_http_asyncx_limit_test_ctx_t  *tctx;

    if (call->end_us) {
        return rc;
    }

    call->end_us = ngx_http_asyncx_now_usec();
    call->status = sr->headers_out.status ? (ngx_int_t) sr->headers_out.status
                                          : rc;

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE && call->status < 300) {
        call->status = rc;
    }

    actx = ngx_http_get_module_ctx(sr->parent, ngx_http_asyncx_module);
    tctx = actx->limit_test;
    tctx->pending--;

    /*
     * A call refused with "asyncx_limit_status 444" is reported as 444:
     * passed on, NGX_HTTP_CLOSE would close the client's connection and
     * lose the whole report, as the pipeline's calls would.
     */
    if (rc == NGX_HTTP_CLOSE) {
        return NGX_OK;
    }

    return rc;
}


static void
ngx_http_asyncx_limit_test_done(ngx_http_request_t *r)
{
    cJSON                             *root, *results, *o;
    uint64_t                           now, start, rate, burst, concurrency;
    ngx_str_t                         *unit;
    ngx_int_t                          rc;
    ngx_uint_t                         i;
    ngx_http_asyncx_ctx_t             *actx;
    ngx_http_asyncx_main_conf_t       *amcf;
    ngx_http_asyncx_limit_ctx_t       *lctx;
    ngx_http_asyncx_limit_test_ctx_t  *tctx;
    ngx_http_asyncx_limit_zone_t      *lz;

    actx = ngx_http_get_module_ctx(r, ngx_http_asyncx_module);
    tctx = actx->limit_test;

    if (tctx->pending || r != r->connection->data) {
        return;
    }

    /*
     * A call that ended while another was active stays in the postponed
     * list until the postpone filter activates it; with no body of ours
     * to queue behind it (HEAD), answering now would finalize the parent
     * while that call is active.  Activate it: its end wakes us again.
     */

    if (r->postponed) {
        rc = ngx_http_output_filter(r, NULL);

        if (rc == NGX_ERROR) {
            ngx_http_finalize_request(r, NGX_ERROR);
        }

        return;
    }

    now = ngx_http_asyncx_now_usec();
    lz = tctx->zone;
    amcf = ngx_http_get_module_main_conf(r, ngx_http_asyncx_module);
    unit = &amcf->duration_unit;

    root = cJSON_CreateObject();
    if (root == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the limits the calls met: a cluster zone's are the fleet's */
    rate = lz->sh->lq.rate;
    burst = lz->sh->lq.burst;
    concurrency = lz->sh->lq.concurrency;
    ngx_http_asyncx_limit_cluster_limits(lz, &rate, &burst, &concurrency);

    cJSON_AddNumberToObject(root, "total_requests", (double) tctx->n);
    cJSON_AddNumberToObject(root, "max_concurrent", (double) concurrency);
    cJSON_AddNumberToObject(root, "max_per_second", (double) rate / 1000);

    results = cJSON_AddArrayToObject(root, "results");

    for (i = 0; results && i < tctx->n; i++) {
        o = cJSON_CreateObject();
        if (o == NULL) {
            break;
        }

        cJSON_AddItemToArray(results, o);
        cJSON_AddNumberToObject(o, "id", (double) tctx->calls[i].id);
        cJSON_AddNumberToObject(o, "status", (double) tctx->calls[i].status);

        actx = ngx_http_get_module_ctx(tctx->calls[i].sr,
                                       ngx_http_asyncx_module);
        lctx = actx ? actx->limit : NULL;

        if (lctx && lctx->admitted_us) {
            start = lctx->admitted_us - tctx->start_us;
            ngx_http_asyncx_cjson_add_seconds(o, "waited",
                              lctx->admitted_us - lctx->arrived_us, 2, unit);
            cJSON_AddNumberToObject(o, "waited_ms",
                ngx_http_asyncx_usec_to_ms(lctx->admitted_us
                                           - lctx->arrived_us));
            ngx_http_asyncx_cjson_add_seconds(o, "start", start, 2, unit);
            cJSON_AddNumberToObject(o, "start_ms",
                                    ngx_http_asyncx_usec_to_ms(start));

        } else {
            cJSON_AddNullToObject(o, "waited");
            cJSON_AddNullToObject(o, "start");
        }

        ngx_http_asyncx_cjson_add_seconds(o, "end",
                              tctx->calls[i].end_us - tctx->start_us, 2, unit);
        cJSON_AddNumberToObject(o, "end_ms",
            ngx_http_asyncx_usec_to_ms(tctx->calls[i].end_us - tctx->start_us));
    }

    ngx_http_asyncx_cjson_add_seconds(root, "total_time",
                                      now - tctx->start_us, 1, unit);
    cJSON_AddNumberToObject(root, "total_time_ms",
                            ngx_http_asyncx_usec_to_ms(now - tctx->start_us));

    /* a hook may describe the run in words */
    if (amcf->limit.describe_test
        && amcf->limit.describe_test(root, concurrency, rate,
                                     now - tctx->start_us)
           != NGX_OK)
    {
        cJSON_Delete(root);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_asyncx_send_cjson(r, NGX_HTTP_OK, root);
    cJSON_Delete(root);

    ngx_http_finalize_request(r, rc);
}
