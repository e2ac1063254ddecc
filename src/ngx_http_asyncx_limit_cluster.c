
/*
 * Copyright (C) asyncx authors
 *
 * The limiter's cluster mode: a zone's tokens and slots in Redis, shared
 * by a fleet of nginx servers.  Every decision is one Lua script run
 * (EVALSHA), atomic in Redis, on Redis's clock.  A slot is a lease that
 * expires unless renewed, so a crashed server's slots come back by
 * themselves.  Waiting stays local: a request Redis refuses waits in its
 * worker (counted against queue= per server) until a release anywhere
 * publishes a wake-up for its key, its token is due, or a safety retry.
 * When Redis is unusable the zone falls back (cluster_fallback=): 503,
 * unlimited, or the shm limiter with the limits scaled to this server.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <cjson/cJSON.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_redis.h"
#include "ngx_http_asyncx_limit_zone.h"


/* a waiter asks Redis again this often, so a lost wake-up costs this */
#define NGX_HTTP_ASYNCX_CLUSTER_SAFETY   100

/*
 * The shortest retry after a denial, whatever Redis says: an answer
 * "retry in 0 ms" (a broken or hostile Redis) would have a waiter ask
 * every millisecond.  It doubles with each denial of the same request
 * (10, 20, 40, 80 ms), up to NGX_HTTP_ASYNCX_CLUSTER_SAFETY: a waiter
 * asks at most about 14 times in its first second, 10 a second after.
 * 10 ms is nginx's own timer resolution on a loaded worker and the
 * refill interval of a 100r/s zone: a real token due sooner is taken at
 * most 10 ms late, and a release anywhere still wakes the waiter at
 * once (pub/sub), without the floor.
 */
#define NGX_HTTP_ASYNCX_CLUSTER_FLOOR    10
#define NGX_HTTP_ASYNCX_CLUSTER_BACKOFF  4    /* doublings of the floor */

#define NGX_HTTP_ASYNCX_CLUSTER_ASKING   1    /* acquire in flight */
#define NGX_HTTP_ASYNCX_CLUSTER_GRANTED  2    /* answered yes, not picked up */
#define NGX_HTTP_ASYNCX_CLUSTER_DENIED   3    /* answered no, not picked up */
#define NGX_HTTP_ASYNCX_CLUSTER_WAITING  4    /* waits for a retry */
#define NGX_HTTP_ASYNCX_CLUSTER_HELD     5
#define NGX_HTTP_ASYNCX_CLUSTER_FAILED   6    /* Redis did not answer */

#define NGX_HTTP_ASYNCX_CLUSTER_SHA_LEN  40

/* the random part of a lease's name: 8 bytes, in hex */
#define NGX_HTTP_ASYNCX_CLUSTER_NONCE    8


/* one Redis server of this configuration: its two connections */

typedef struct {
    ngx_str_t                      status_name; /* host:port/db */
    ngx_http_asyncx_redis_t        cmd;         /* decisions */
    ngx_http_asyncx_redis_t        sub;         /* wake-ups (subscribed) */
    ngx_http_asyncx_redis_cmd_t    load;        /* SCRIPT LOAD */
    ngx_array_t                    zones;       /* limit zones using it */
    unsigned                       exiting:1;
} ngx_http_asyncx_cluster_server_t;


struct ngx_http_asyncx_limit_cluster_s {
    ngx_http_asyncx_cluster_server_t  *server;
    ngx_http_asyncx_limit_zone_t   *lz;
    ngx_str_t                      url;         /* as configured */
    ngx_str_t                      password;
    ngx_uint_t                     db;
    ngx_addr_t                     addr;
    ngx_msec_t                     timeout;
    ngx_msec_t                     lease;
    ngx_uint_t                     servers;
    ngx_uint_t                     fallback;
    ngx_str_t                      prefix;
    ngx_str_t                      channel;     /* prefix:zone:wake */
    u_char                         sha[NGX_HTTP_ASYNCX_CLUSTER_SHA_LEN];

    /* the zone's limits for the whole fleet (lz has this server's) */
    uint64_t                       rate;
    ngx_uint_t                     burst;
    ngx_uint_t                     concurrency;

    ngx_http_asyncx_limit_cluster_sh_t  *sh;

    /* this worker's */
    ngx_http_asyncx_redis_cmd_t    subscribe;
    ngx_queue_t                    held;        /* creqs with a lease */
    ngx_event_t                    renew;
    ngx_uint_t                     mode;        /* this worker's */
    ngx_uint_t                     seq;
    /* the random part of its lease names, in hex */
    u_char                         nonce[2 * NGX_HTTP_ASYNCX_CLUSTER_NONCE];
    ngx_log_t                     *log;
};


/* a request's state in one cluster zone; outlives the request if a
   command of it is in flight */

struct ngx_http_asyncx_limit_creq_s {
    ngx_http_asyncx_limit_ctx_t       *ctx;     /* NULL: the request left */
    ngx_http_asyncx_limit_cluster_t   *cl;
    ngx_queue_t                        link;    /* in cl->held */
    ngx_http_asyncx_redis_cmd_t        acquire; /* and renew */
    ngx_http_asyncx_redis_cmd_t        release;
    ngx_uint_t                         state;
    ngx_uint_t                         inflight;
    ngx_int_t                          wait_ms; /* -1: for a slot */
    ngx_uint_t                         denials; /* answered "wait" */
    ngx_str_t                          enc;     /* the key in Redis names */
    ngx_str_t                          bkey;
    ngx_str_t                          skey;
    ngx_str_t                          member;
    unsigned                           waiting:1;  /* counted */
    unsigned                           queued:1;   /* in cl->held */
    unsigned                           renewing:1;
    unsigned                           retried:1;  /* after NOSCRIPT */
    unsigned                           rewake:1;   /* woken while asking */
};


static ngx_int_t ngx_http_asyncx_cluster_url(ngx_conf_t *cf,
    ngx_http_asyncx_limit_cluster_t *cl, ngx_str_t *arg, ngx_str_t *v);
static ngx_int_t ngx_http_asyncx_cluster_server(ngx_conf_t *cf,
    ngx_http_asyncx_limit_zone_t *lz);
static void ngx_http_asyncx_cluster_worker(ngx_http_asyncx_limit_cluster_t *cl,
    ngx_log_t *log);
static void ngx_http_asyncx_cluster_on_connect(ngx_http_asyncx_redis_t *rd);
static void ngx_http_asyncx_cluster_on_close(ngx_http_asyncx_redis_t *rd);
static void ngx_http_asyncx_cluster_on_sub_connect(
    ngx_http_asyncx_redis_t *rd);
static void ngx_http_asyncx_cluster_loaded(ngx_http_asyncx_redis_t *rd,
    redisReply *reply, void *data);
static ngx_int_t ngx_http_asyncx_cluster_load(
    ngx_http_asyncx_cluster_server_t *srv);
static ngx_http_asyncx_limit_creq_t *ngx_http_asyncx_cluster_create(
    ngx_http_asyncx_limit_ctx_t *ctx, ngx_http_asyncx_limit_pass_t *pass);
static ngx_int_t ngx_http_asyncx_cluster_encode(ngx_http_request_t *r,
    ngx_str_t *key, ngx_str_t *enc);
static void ngx_http_asyncx_cluster_free(ngx_http_asyncx_limit_creq_t *cr);
static void ngx_http_asyncx_cluster_nonce(ngx_http_asyncx_limit_cluster_t *cl,
    ngx_log_t *log);
static ngx_int_t ngx_http_asyncx_cluster_ask(ngx_http_asyncx_limit_creq_t *cr);
static void ngx_http_asyncx_cluster_answered(ngx_http_asyncx_redis_t *rd,
    redisReply *reply, void *data);
static ngx_int_t ngx_http_asyncx_cluster_send_release(
    ngx_http_asyncx_limit_creq_t *cr);
static void ngx_http_asyncx_cluster_released(ngx_http_asyncx_redis_t *rd,
    redisReply *reply, void *data);
static void ngx_http_asyncx_cluster_renew_handler(ngx_event_t *ev);
static void ngx_http_asyncx_cluster_renewed(ngx_http_asyncx_redis_t *rd,
    redisReply *reply, void *data);
static void ngx_http_asyncx_cluster_message(ngx_http_asyncx_redis_t *rd,
    redisReply *reply, void *data);
static ngx_int_t ngx_http_asyncx_cluster_fallback(
    ngx_http_asyncx_limit_cluster_t *cl);
static void ngx_http_asyncx_cluster_failed(ngx_http_asyncx_limit_cluster_t *cl,
    ngx_uint_t count);
static void ngx_http_asyncx_cluster_worked(ngx_http_asyncx_limit_cluster_t *cl);
static void ngx_http_asyncx_cluster_own_mode(
    ngx_http_asyncx_limit_cluster_t *cl);
static ngx_uint_t ngx_http_asyncx_cluster_mode(
    ngx_http_asyncx_limit_zone_t *lz);
static ngx_uint_t ngx_http_asyncx_cluster_live(ngx_http_asyncx_lq_owner_t *ow);
static void ngx_http_asyncx_cluster_global(ngx_http_asyncx_limit_cluster_t *cl,
    int64_t slots, int64_t tokens);
static void ngx_http_asyncx_cluster_hold(ngx_http_asyncx_limit_creq_t *cr);
static void ngx_http_asyncx_cluster_unwait(ngx_http_asyncx_limit_creq_t *cr);
static ngx_http_asyncx_limit_ctx_t *ngx_http_asyncx_cluster_head(
    ngx_http_asyncx_limit_zone_t *lz, ngx_str_t *enc);
static void ngx_http_asyncx_cluster_wake_head(
    ngx_http_asyncx_limit_zone_t *lz, ngx_str_t *enc);
static ngx_uint_t ngx_http_asyncx_cluster_sum(ngx_atomic_t *a,
    ngx_http_asyncx_limit_zone_t *lz);


static ngx_str_t  ngx_http_asyncx_cluster_modes[] = {
    ngx_string("redis"),
    ngx_string("refuse"),
    ngx_string("allow"),
    ngx_string("local")
};


/*
 * KEYS[1] the key's bucket (hash: t = tokens in millionths, ts = ms),
 * KEYS[2] its slots (zset: member = holder, score = lease expiry, ms).
 * acquire rate(milli-r/s) burst concurrency lease member
 *     -> {granted, wait_ms (-1: for a slot), slots_in_use, milli-tokens}
 * renew lease member concurrency -> {1; 2 when the lease was gone (it
 *     expired, or Redis lost its data) and was taken again, a slot being
 *     free; 0 when it was gone and every slot is taken; slots_in_use}
 * release member channel payload -> {1 when a slot was freed (and a
 *     wake-up published: payload and Redis's time in microseconds),
 *     slots_in_use}
 */

static const char  ngx_http_asyncx_cluster_script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local op = ARGV[1]\n"
    "if op == 'acquire' then\n"
    "  local rate = tonumber(ARGV[2])\n"
    "  local burst = tonumber(ARGV[3]) * 1000000\n"
    "  local cap = tonumber(ARGV[4])\n"
    "  local lease = tonumber(ARGV[5])\n"
    "  local used = 0\n"
    "  if cap > 0 then\n"
    "    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)\n"
    "    used = redis.call('ZCARD', KEYS[2])\n"
    "  end\n"
    "  local b = redis.call('HMGET', KEYS[1], 't', 'ts')\n"
    "  local tokens = tonumber(b[1])\n"
    "  local ts = tonumber(b[2])\n"
    "  if tokens == nil or ts == nil then\n"
    "    tokens = burst\n"
    "    ts = now\n"
    "  elseif now > ts then\n"
    "    tokens = math.min(burst, tokens + (now - ts) * rate)\n"
    "    ts = now\n"
    "  end\n"
    "  local ttl = math.ceil(burst / rate) + 1000\n"
    "  if cap > 0 and used >= cap then\n"
    "    return {0, -1, used, math.floor(tokens / 1000)}\n"
    "  end\n"
    "  if tokens < 1000000 then\n"
    "    redis.call('HSET', KEYS[1], 't', tokens, 'ts', ts)\n"
    "    redis.call('PEXPIRE', KEYS[1], ttl)\n"
    "    return {0, math.ceil((1000000 - tokens) / rate), used,\n"
    "            math.floor(tokens / 1000)}\n"
    "  end\n"
    "  tokens = tokens - 1000000\n"
    "  redis.call('HSET', KEYS[1], 't', tokens, 'ts', ts)\n"
    "  redis.call('PEXPIRE', KEYS[1], ttl)\n"
    "  if cap > 0 then\n"
    "    redis.call('ZADD', KEYS[2], now + lease, ARGV[6])\n"
    "    redis.call('PEXPIRE', KEYS[2], lease + 1000)\n"
    "    used = used + 1\n"
    "  end\n"
    "  return {1, 0, used, math.floor(tokens / 1000)}\n"
    "elseif op == 'renew' then\n"
    "  local lease = tonumber(ARGV[2])\n"
    "  local renewed = 1\n"
    "  local s = tonumber(redis.call('ZSCORE', KEYS[2], ARGV[3]))\n"
    "  if s == nil or s < now then\n"
    "    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)\n"
    "    if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then\n"
    "      return {0, redis.call('ZCARD', KEYS[2])}\n"
    "    end\n"
    "    renewed = 2\n"
    "  end\n"
    "  redis.call('ZADD', KEYS[2], now + lease, ARGV[3])\n"
    "  redis.call('PEXPIRE', KEYS[2], lease + 1000)\n"
    "  return {renewed, redis.call('ZCARD', KEYS[2])}\n"
    "elseif op == 'release' then\n"
    "  local n = redis.call('ZREM', KEYS[2], ARGV[2])\n"
    "  if n == 1 then\n"
    "    redis.call('PUBLISH', ARGV[3],\n"
    "               ARGV[4] .. ' ' .. t[1] .. string.format('%06d',\n"
    "                                              tonumber(t[2])))\n"
    "  end\n"
    "  return {n, redis.call('ZCARD', KEYS[2])}\n"
    "end\n"
    "return redis.error_reply('asyncx: unknown operation')\n";



/* configuration */

static ngx_http_asyncx_limit_cluster_t *
ngx_http_asyncx_cluster_get(ngx_conf_t *cf, ngx_http_asyncx_limit_zone_t *lz)
{
    ngx_http_asyncx_limit_cluster_t  *cl;

    if (lz->cluster) {
        return lz->cluster;
    }

    cl = ngx_pcalloc(cf->pool, sizeof(ngx_http_asyncx_limit_cluster_t));
    if (cl == NULL) {
        return NULL;
    }

    cl->lz = lz;
    cl->timeout = NGX_CONF_UNSET_MSEC;
    cl->lease = NGX_CONF_UNSET_MSEC;
    cl->servers = NGX_CONF_UNSET_UINT;
    cl->fallback = NGX_CONF_UNSET_UINT;
    cl->password.data = NULL;

    lz->cluster = cl;

    return cl;
}


/*
 * cluster=redis://host:port[/db] cluster_password= cluster_timeout=
 * cluster_lease= cluster_servers= cluster_fallback= cluster_prefix=
 * One branch per parameter, each with its bounds and its message, as
 * nginx's own directives read theirs.
 */

ngx_int_t
ngx_http_asyncx_limit_cluster_param(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_asyncx_limit_zone_t *lz, ngx_str_t *arg)
{
    u_char                           *p;
    ngx_int_t                         n;
    ngx_str_t                         v;
    ngx_uint_t                        i;
    const char                       *expected;
    ngx_http_asyncx_limit_cluster_t  *cl;

    p = (u_char *) ngx_strlchr(arg->data, arg->data + arg->len, '=');

    if (p == NULL) {
        goto invalid_param;
    }

    v.data = p + 1;
    v.len = arg->data + arg->len - v.data;

    cl = ngx_http_asyncx_cluster_get(cf, lz);
    if (cl == NULL) {
        return NGX_ERROR;
    }

#define ngx_http_asyncx_cluster_is(name)                                      \
    ((size_t) (p - arg->data) == sizeof(name) - 1                             \
     && ngx_strncmp(arg->data, name, sizeof(name) - 1) == 0)

    if (ngx_http_asyncx_cluster_is("cluster")) {
        if (cl->url.len) {
            goto duplicate;
        }

        return ngx_http_asyncx_cluster_url(cf, cl, arg, &v);
    }

    if (ngx_http_asyncx_cluster_is("cluster_password")) {
        if (cl->password.data) {
            goto duplicate;
        }

        cl->password = v;
        return NGX_OK;
    }

    if (ngx_http_asyncx_cluster_is("cluster_timeout")) {
        n = ngx_parse_time(&v, 0);
        expected = "1ms..60s";

        if (n == NGX_ERROR || n < 1 || n > 60000) {
            goto invalid;
        }

        cl->timeout = (ngx_msec_t) n;
        return NGX_OK;
    }

    if (ngx_http_asyncx_cluster_is("cluster_lease")) {
        n = ngx_parse_time(&v, 0);
        expected = "100ms..1h";

        if (n == NGX_ERROR || n < 100 || n > 3600000) {
            goto invalid;
        }

        cl->lease = (ngx_msec_t) n;
        return NGX_OK;
    }

    if (ngx_http_asyncx_cluster_is("cluster_servers")) {
        n = ngx_atoi(v.data, v.len);
        expected = "1..1000";

        if (n == NGX_ERROR || n < 1 || n > 1000) {
            goto invalid;
        }

        cl->servers = (ngx_uint_t) n;
        return NGX_OK;
    }

    if (ngx_http_asyncx_cluster_is("cluster_fallback")) {
        expected = "refuse, allow or local";

        for (i = 1; i < 4; i++) {
            if (v.len == ngx_http_asyncx_cluster_modes[i].len
                && ngx_strncmp(v.data, ngx_http_asyncx_cluster_modes[i].data,
                               v.len) == 0)
            {
                cl->fallback = i;
                return NGX_OK;
            }
        }

        goto invalid;
    }

    if (ngx_http_asyncx_cluster_is("cluster_prefix")) {
        expected = "1..64 printable characters without braces";

        if (v.len == 0 || v.len > 64) {
            goto invalid;
        }

        for (i = 0; i < v.len; i++) {
            if (v.data[i] <= 0x20 || v.data[i] >= 0x7f
                || v.data[i] == '{' || v.data[i] == '}')
            {
                goto invalid;
            }
        }

        cl->prefix = v;
        return NGX_OK;
    }

#undef ngx_http_asyncx_cluster_is

invalid_param:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in \"%V\" directive",
                       arg, &cmd->name);
    return NGX_ERROR;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\" directive, "
                       "expected %s", arg, &cmd->name, expected);
    return NGX_ERROR;

duplicate:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "duplicate parameter \"%V\" in \"%V\" directive",
                       arg, &cmd->name);
    return NGX_ERROR;
}


/* redis://host:port[/db]: the name is resolved now, never at run time */

static ngx_int_t
ngx_http_asyncx_cluster_url(ngx_conf_t *cf,
    ngx_http_asyncx_limit_cluster_t *cl, ngx_str_t *arg, ngx_str_t *v)
{
    u_char     *slash;
    ngx_int_t   db;
    ngx_url_t   u;

    if (v->len <= sizeof("redis://") - 1
        || ngx_strncmp(v->data, "redis://", sizeof("redis://") - 1) != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"asyncx_limit_zone\" "
                           "directive, expected redis://host:port[/db] "
                           "(no TLS)", arg);
        return NGX_ERROR;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url.data = v->data + sizeof("redis://") - 1;
    u.url.len = v->len - (sizeof("redis://") - 1);

    slash = (u_char *) ngx_strlchr(u.url.data, u.url.data + u.url.len, '/');
    db = 0;

    if (slash) {
        db = ngx_atoi(slash + 1, u.url.data + u.url.len - slash - 1);

        if (db == NGX_ERROR || db > 15) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"asyncx_limit_zone\""
                               " directive, expected a database 0..15", arg);
            return NGX_ERROR;
        }

        u.url.len = slash - u.url.data;
    }

    u.default_port = 6379;

    if (u.url.len == 0 || ngx_parse_url(cf->pool, &u) != NGX_OK
        || u.naddrs == 0 || u.addrs[0].sockaddr->sa_family == AF_UNIX)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"asyncx_limit_zone\" "
                           "directive: %s", arg,
                           u.err ? u.err : "expected host:port");
        return NGX_ERROR;
    }

    cl->url = *v;
    cl->db = (ngx_uint_t) db;
    cl->addr = u.addrs[0];

    return NGX_OK;
}


/* after the directive's parameters: defaults, this server's limits */

char *
ngx_http_asyncx_limit_cluster_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_asyncx_limit_zone_t *lz)
{
    ngx_http_asyncx_limit_cluster_t  *cl;

    cl = lz->cluster;

    if (cl == NULL) {
        return NGX_CONF_OK;
    }

    if (cl->url.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"cluster_*\" parameters need \"cluster=\" in "
                           "\"%V\" directive", &cmd->name);
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_msec_value(cl->timeout, 200);
    ngx_conf_init_msec_value(cl->lease, 10000);
    ngx_conf_init_uint_value(cl->servers, 1);
    ngx_conf_init_uint_value(cl->fallback, NGX_HTTP_ASYNCX_CLUSTER_FB_REFUSE);

    if (cl->password.data == NULL) {
        ngx_str_null(&cl->password);
    }

    if (cl->prefix.len == 0) {
        ngx_str_set(&cl->prefix, "asyncx");
    }

    cl->channel.len = cl->prefix.len + lz->name.len + sizeof("::wake") - 1;
    cl->channel.data = ngx_pnalloc(cf->pool, cl->channel.len);
    if (cl->channel.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(cl->channel.data, "%V:%V:wake", &cl->prefix, &lz->name);

    /* the fleet's limits; the zone's shm keeps this server's share for
       cluster_fallback=local (1 r/m at least, as rate=1r/m parses) */
    cl->rate = lz->rate;
    cl->burst = lz->burst;
    cl->concurrency = lz->concurrency;

    lz->rate = ngx_max(lz->rate / cl->servers, 17);
    lz->burst = (lz->burst + cl->servers - 1) / cl->servers;
    lz->concurrency = (lz->concurrency + cl->servers - 1) / cl->servers;

    if (ngx_http_asyncx_cluster_server(cf, lz) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* zones naming the same Redis (address, db, password) share connections */

static ngx_int_t
ngx_http_asyncx_cluster_server(ngx_conf_t *cf,
    ngx_http_asyncx_limit_zone_t *lz)
{
    u_char                             *host;
    size_t                              len;
    ngx_uint_t                          i;
    ngx_shm_zone_t                    **zp;
    ngx_http_asyncx_main_conf_t        *amcf;
    ngx_http_asyncx_limit_zone_t      **zs, *other;
    ngx_http_asyncx_limit_cluster_t    *cl, *ocl;
    ngx_http_asyncx_cluster_server_t   *srv;

    cl = lz->cluster;
    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_asyncx_module);

    zp = amcf->limit.zones.elts;

    for (i = 0; i < amcf->limit.zones.nelts; i++) {
        other = zp[i]->data;
        ocl = other->cluster;

        if (ocl && ocl->db == cl->db
            && ngx_cmp_sockaddr(ocl->addr.sockaddr, ocl->addr.socklen,
                                cl->addr.sockaddr, cl->addr.socklen, 1)
               == NGX_OK
            && ocl->password.len == cl->password.len
            && (cl->password.len == 0
                || ngx_strncmp(ocl->password.data, cl->password.data,
                               cl->password.len) == 0))
        {
            srv = ocl->server;
            srv->cmd.timeout = ngx_min(srv->cmd.timeout, cl->timeout);
            srv->sub.timeout = srv->cmd.timeout;
            goto found;
        }
    }

    srv = ngx_pcalloc(cf->pool, sizeof(ngx_http_asyncx_cluster_server_t));
    if (srv == NULL) {
        return NGX_ERROR;
    }

    if (ngx_array_init(&srv->zones, cf->pool, 2,
                       sizeof(ngx_http_asyncx_limit_zone_t *))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    host = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
    if (host == NULL) {
        return NGX_ERROR;
    }

    len = ngx_sock_ntop(cl->addr.sockaddr, cl->addr.socklen, host,
                        NGX_SOCKADDR_STRLEN, 0);
    host[len] = '\0';

    srv->cmd.host = host;
    srv->cmd.port = (int) ngx_inet_get_port(cl->addr.sockaddr);
    srv->cmd.password = cl->password;
    srv->cmd.db = cl->db;
    srv->cmd.timeout = cl->timeout;
    srv->cmd.on_connect = ngx_http_asyncx_cluster_on_connect;
    srv->cmd.data = srv;

    /* the names of logs and status: address (and db), never the password */
    srv->cmd.name = cl->addr.name;

    srv->status_name.data = ngx_pnalloc(cf->pool, cl->addr.name.len + 8);
    if (srv->status_name.data == NULL) {
        return NGX_ERROR;
    }

    srv->status_name.len = ngx_sprintf(srv->status_name.data, "%V/%ui%Z",
                                       &cl->addr.name, cl->db)
                           - srv->status_name.data - 1;

    srv->cmd.on_close = ngx_http_asyncx_cluster_on_close;

    srv->sub = srv->cmd;
    srv->sub.on_connect = ngx_http_asyncx_cluster_on_sub_connect;
    srv->sub.on_close = NULL;
    srv->sub.pubsub = 1;

found:

    zs = ngx_array_push(&srv->zones);
    if (zs == NULL) {
        return NGX_ERROR;
    }

    *zs = lz;
    cl->server = srv;

    return NGX_OK;
}


/* the zone's numbers in shared memory, kept over reloads */

ngx_int_t
ngx_http_asyncx_limit_cluster_init_zone(ngx_http_asyncx_limit_zone_t *lz,
    ngx_log_t *log)
{
    u_char        md[EVP_MAX_MD_SIZE];
    size_t        len;
    unsigned int  mdlen;

    if (lz->cluster == NULL) {
        return NGX_OK;
    }

    if (lz->sh->cluster == NULL) {
        lz->sh->cluster = ngx_slab_calloc(lz->shpool,
                                  sizeof(ngx_http_asyncx_limit_cluster_sh_t));
        if (lz->sh->cluster == NULL) {
            ngx_log_error(NGX_LOG_EMERG, log, 0,
                          "asyncx_limit_zone \"%V\": no room for the cluster "
                          "numbers", &lz->name);
            return NGX_ERROR;
        }
    }

    lz->cluster->sh = lz->sh->cluster;

    /* the SHA-1 of the script, for EVALSHA */
    len = sizeof(ngx_http_asyncx_cluster_script) - 1;

    if (EVP_Digest(ngx_http_asyncx_cluster_script, len, md, &mdlen,
                   EVP_sha1(), NULL)
        != 1 || mdlen != 20)
    {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "asyncx_limit_zone \"%V\": EVP_Digest(SHA-1) failed",
                      &lz->name);
        return NGX_ERROR;
    }

    ngx_hex_dump(lz->cluster->sha, md, 20);

    return NGX_OK;
}


/*
 * A worker starts: its counts are fresh, its connection is made.  Its
 * mode: a zone whose last change was a fallback (a worker that fell back
 * died or exited since, or still runs) starts in that fallback, until
 * Redis answers this worker (logged as "reachable again").
 */

void
ngx_http_asyncx_limit_cluster_init_process(ngx_cycle_t *cycle,
    ngx_http_asyncx_limit_zone_t *lz)
{
    ngx_http_asyncx_limit_zone_t     **zs;
    ngx_http_asyncx_cluster_server_t  *srv;

    if (lz->cluster == NULL) {
        return;
    }

    ngx_http_asyncx_cluster_worker(lz->cluster, cycle->log);

    if (lz->cluster->sh->mode != NGX_HTTP_ASYNCX_CLUSTER_REDIS
        && lz->cluster->mode == NGX_HTTP_ASYNCX_CLUSTER_REDIS)
    {
        lz->cluster->mode = lz->cluster->fallback;
    }

    if (lz->self != NGX_HTTP_ASYNCX_LQ_NOBODY
        && ngx_process == NGX_PROCESS_WORKER)
    {
        /* a dead worker's entry that this new process took over */
        lz->cluster->sh->waiting[lz->self] = 0;
        lz->cluster->sh->held[lz->self] = 0;
        lz->cluster->sh->running[lz->self] = 0;
    }

    ngx_http_asyncx_cluster_own_mode(lz->cluster);

    /* once every zone of the server is ready for its news */
    srv = lz->cluster->server;
    zs = srv->zones.elts;

    if (zs[srv->zones.nelts - 1] == lz) {
        (void) ngx_http_asyncx_redis_start(&srv->cmd);
    }
}


/* this process's state of a zone; at its first request after a reload of
   a single process, which runs no init_process */

static void
ngx_http_asyncx_cluster_worker(ngx_http_asyncx_limit_cluster_t *cl,
    ngx_log_t *log)
{
    ngx_uint_t                          i;
    ngx_http_asyncx_limit_zone_t      **zs;
    ngx_http_asyncx_cluster_server_t   *srv;

    if (cl->log) {
        return;
    }

    cl->log = log;
    ngx_queue_init(&cl->held);
    ngx_http_asyncx_cluster_nonce(cl, log);

    cl->renew.handler = ngx_http_asyncx_cluster_renew_handler;
    cl->renew.data = cl;
    cl->renew.log = log;
    cl->renew.cancelable = 1;

    srv = cl->server;
    srv->cmd.log = log;
    srv->sub.log = log;

    if (ngx_process == NGX_PROCESS_SINGLE && !srv->cmd.started) {
        zs = srv->zones.elts;

        for (i = 0; i < srv->zones.nelts; i++) {
            ngx_http_asyncx_cluster_worker(zs[i]->cluster, log);
        }

        (void) ngx_http_asyncx_redis_start(&srv->cmd);
    }
}


/*
 * A worker exits: its leases are released (sent if the socket takes
 * them now; otherwise they expire after cluster_lease), its connections
 * closed.  Nothing is logged as a Redis failure.
 */

void
ngx_http_asyncx_limit_cluster_exit_process(ngx_cycle_t *cycle,
    ngx_http_asyncx_limit_zone_t *lz)
{
    ngx_queue_t                       *q;
    ngx_http_asyncx_limit_zone_t     **zs;
    ngx_http_asyncx_limit_creq_t      *cr;
    ngx_http_asyncx_limit_cluster_t   *cl;
    ngx_http_asyncx_cluster_server_t  *srv;

    cl = lz->cluster;

    if (cl == NULL || cl->log == NULL) {
        return;
    }

    /* the zone's mode no longer counts this worker's */
    cl->mode = NGX_HTTP_ASYNCX_CLUSTER_REDIS;
    ngx_http_asyncx_cluster_own_mode(cl);

    srv = cl->server;
    srv->exiting = 1;

    if (cl->renew.timer_set) {
        ngx_del_timer(&cl->renew);
    }

    while (!ngx_queue_empty(&cl->held)) {
        q = ngx_queue_head(&cl->held);
        cr = ngx_queue_data(q, ngx_http_asyncx_limit_creq_t, link);

        ngx_queue_remove(q);
        cr->queued = 0;

        if (ngx_http_asyncx_cluster_send_release(cr) == NGX_OK) {
            cr->inflight++;
        }
    }

    ngx_http_asyncx_redis_flush(&srv->cmd);

    /* the last zone of the server closes it (zones exit in order of
       declaration); the handlers of what is in flight see NULL */
    zs = srv->zones.elts;

    if (zs[srv->zones.nelts - 1] == lz) {
        ngx_http_asyncx_redis_close(&srv->cmd);
        ngx_http_asyncx_redis_close(&srv->sub);
    }

    (void) cycle;
}


static void
ngx_http_asyncx_cluster_on_connect(ngx_http_asyncx_redis_t *rd)
{
    ngx_http_asyncx_cluster_server_t  *srv = rd->data;

    ngx_uint_t                      i;
    ngx_http_asyncx_limit_zone_t  **zs;

    if (rd->reconnects) {
        zs = srv->zones.elts;

        for (i = 0; i < srv->zones.nelts; i++) {
            ngx_atomic_fetch_add(&zs[i]->cluster->sh->reconnects, 1);
        }
    }

    /* first on the connection: every EVALSHA comes after it */
    (void) ngx_http_asyncx_cluster_load(srv);
}


static ngx_int_t
ngx_http_asyncx_cluster_load(ngx_http_asyncx_cluster_server_t *srv)
{
    size_t       len[3];
    const char  *argv[3];

    argv[0] = "SCRIPT";
    len[0] = 6;
    argv[1] = "LOAD";
    len[1] = 4;
    argv[2] = ngx_http_asyncx_cluster_script;
    len[2] = sizeof(ngx_http_asyncx_cluster_script) - 1;

    srv->load.handler = ngx_http_asyncx_cluster_loaded;
    srv->load.data = srv;

    return ngx_http_asyncx_redis_command(&srv->cmd, &srv->load, 3, argv, len);
}


static void
ngx_http_asyncx_cluster_loaded(ngx_http_asyncx_redis_t *rd,
    redisReply *reply, void *data)
{
    ngx_http_asyncx_cluster_server_t *srv = data;

    u_char                          text[NGX_HTTP_ASYNCX_REDIS_ERRLEN];
    ngx_uint_t                      i;
    ngx_http_asyncx_limit_zone_t  **zs;

    if (reply == NULL) {
        return;
    }

    zs = srv->zones.elts;

    if (reply->type == REDIS_REPLY_STRING
        && reply->len == NGX_HTTP_ASYNCX_CLUSTER_SHA_LEN
        && ngx_strncmp(reply->str, zs[0]->cluster->sha,
                       NGX_HTTP_ASYNCX_CLUSTER_SHA_LEN) == 0)
    {
        /* Redis answers: its zones limit in Redis again, traffic or not */

        for (i = 0; i < srv->zones.nelts; i++) {
            ngx_http_asyncx_cluster_worked(zs[i]->cluster);
        }

        return;
    }

    /* EVALSHA then fails and the zone falls back: say why */
    ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                  "asyncx limit: redis %V: SCRIPT LOAD answered %s",
                  &rd->name,
                  reply->type == REDIS_REPLY_ERROR
                  ? (char *) ngx_http_asyncx_redis_text(text, sizeof(text),
                                                        reply->str)
                  : "an unexpected reply");
}


/* the connection failed or broke: the zones fall back now */

static void
ngx_http_asyncx_cluster_on_close(ngx_http_asyncx_redis_t *rd)
{
    ngx_http_asyncx_cluster_server_t *srv = rd->data;

    ngx_uint_t                      i;
    ngx_http_asyncx_limit_zone_t  **zs;

    zs = srv->zones.elts;

    for (i = 0; i < srv->zones.nelts; i++) {
        ngx_http_asyncx_cluster_failed(zs[i]->cluster, 1);
    }
}


/* the subscriber: one SUBSCRIBE per zone of the server */

static void
ngx_http_asyncx_cluster_on_sub_connect(ngx_http_asyncx_redis_t *rd)
{
    size_t                              len[2];
    ngx_uint_t                          i;
    const char                         *argv[2];
    ngx_http_asyncx_limit_zone_t      **zs;
    ngx_http_asyncx_limit_cluster_t    *cl;
    ngx_http_asyncx_cluster_server_t   *srv;

    srv = rd->data;
    zs = srv->zones.elts;

    for (i = 0; i < srv->zones.nelts; i++) {
        cl = zs[i]->cluster;

        argv[0] = "SUBSCRIBE";
        len[0] = 9;
        argv[1] = (const char *) cl->channel.data;
        len[1] = cl->channel.len;

        cl->subscribe.handler = ngx_http_asyncx_cluster_message;
        cl->subscribe.data = cl;
        cl->subscribe.subscribe = 1;

        (void) ngx_http_asyncx_redis_command(rd, &cl->subscribe, 2, argv,
                                             len);
    }
}


/*
 * A request meets a cluster zone, or comes back to it.  NGX_OK: it
 * enters; NGX_AGAIN: it waits (for Redis's answer or a retry);
 * NGX_DECLINED: this server's queue is full; NGX_BUSY: it waited longer
 * than the timeout; NGX_DONE: it would wait (dry run);
 * NGX_HTTP_ASYNCX_CLUSTER_LOCAL: the shm limiter decides (fallback);
 * NGX_HTTP_ASYNCX_CLUSTER_REFUSE: 503 (fallback); NGX_ERROR.
 * One function on purpose: every state a request can be in at the zone
 * (new, asked, answered, woken, timed out, fallen back) is handled in
 * one place, top to bottom, as limit_req's handler reads.
 */

ngx_int_t
ngx_http_asyncx_limit_cluster_pass(ngx_http_asyncx_limit_ctx_t *ctx,
    ngx_http_asyncx_limit_pass_t *pass)
{
    ngx_msec_t                        due, least;
    ngx_uint_t                        level;
    ngx_http_asyncx_limit_zone_t     *lz;
    ngx_http_asyncx_limit_creq_t     *cr;
    ngx_http_asyncx_limit_cluster_t  *cl;

    lz = pass->zone;
    cl = lz->cluster;
    cr = pass->cluster;

    ctx->due = 0;

    if (cr == NULL) {
        ngx_http_asyncx_cluster_worker(cl, ngx_cycle->log);

        if (cl->server->cmd.ac == NULL) {
            return ngx_http_asyncx_cluster_fallback(cl);
        }

        cr = ngx_http_asyncx_cluster_create(ctx, pass);
        if (cr == NULL) {
            return NGX_ERROR;
        }

        pass->cluster = cr;
        pass->wait_start = ngx_current_msec;
        pass->wait_start_us = ngx_http_asyncx_now_usec();

        if (ngx_http_asyncx_cluster_head(lz, &cr->enc) == NULL) {
            if (ngx_http_asyncx_cluster_ask(cr) != NGX_OK) {
                pass->cluster = NULL;
                ngx_http_asyncx_cluster_free(cr);
                return ngx_http_asyncx_cluster_fallback(cl);
            }

            return NGX_AGAIN;
        }

        /* others of its key wait here: it waits behind them, unasked */
        cr->state = NGX_HTTP_ASYNCX_CLUSTER_DENIED;
        cr->wait_ms = -1;
    }

    switch (cr->state) {

    case NGX_HTTP_ASYNCX_CLUSTER_ASKING:
        if (ngx_current_msec - pass->wait_start >= lz->timeout) {
            goto timeout;
        }

        return NGX_AGAIN;

    case NGX_HTTP_ASYNCX_CLUSTER_GRANTED:
        ngx_http_asyncx_cluster_unwait(cr);
        ngx_atomic_fetch_add(&cl->sh->admitted, 1);

        /* its subrequests pass the zone for this key (a call never waits
           for its own order's slot); not kept if memory fails: they are
           then counted on their own */
        if (ctx->request == ctx->request->main) {
            pass->admitted_key.data = ngx_pnalloc(ctx->request->pool,
                                                  cr->enc.len + 1);
            if (pass->admitted_key.data != NULL) {
                pass->admitted_key.len = cr->enc.len;
                ngx_memcpy(pass->admitted_key.data, cr->enc.data,
                           cr->enc.len);
                pass->admitted = 1;
            }
        }

        if (cr->rewake) {
            /* Redis said there is room for more: the next here asks now */
            cr->rewake = 0;
            ngx_http_asyncx_cluster_wake_head(lz, &cr->enc);
        }

        if (cl->concurrency) {
            ngx_http_asyncx_cluster_hold(cr);

        } else {
            /* a token only: nothing to give back */
            pass->cluster = NULL;
            cr->ctx = NULL;
            ngx_http_asyncx_cluster_free(cr);
        }

        return NGX_OK;

    case NGX_HTTP_ASYNCX_CLUSTER_FAILED:
        ngx_http_asyncx_cluster_unwait(cr);
        pass->cluster = NULL;
        cr->ctx = NULL;
        ngx_http_asyncx_cluster_free(cr);
        return ngx_http_asyncx_cluster_fallback(cl);

    case NGX_HTTP_ASYNCX_CLUSTER_DENIED:
        if (!cr->waiting) {
            if (ctx->conf->dry_run) {
                pass->cluster = NULL;
                cr->ctx = NULL;
                ngx_http_asyncx_cluster_free(cr);
                return NGX_DONE;
            }

            if (ngx_http_asyncx_cluster_sum(cl->sh->waiting, lz)
                >= lz->queue)
            {
                ngx_atomic_fetch_add(&cl->sh->refused, 1);
                pass->cluster = NULL;
                cr->ctx = NULL;
                ngx_http_asyncx_cluster_free(cr);
                return NGX_DECLINED;
            }

            cr->waiting = 1;
            pass->waited = 1;

            if (lz->self != NGX_HTTP_ASYNCX_LQ_NOBODY) {
                ngx_atomic_fetch_add(&cl->sh->waiting[lz->self], 1);
            }

            /* delays one level below refusals, as with limit_req */
            level = ctx->conf->log_level == NGX_LOG_INFO
                    ? NGX_LOG_INFO : ctx->conf->log_level + 1;
            ngx_log_error(level, ctx->request->connection->log, 0,
                          "asyncx limit: zone \"%V\": request waits for "
                          "redis %V", &lz->name, &cl->server->cmd.name);

            /* the wake-ups come on the subscriber, opened when needed */
            (void) ngx_http_asyncx_redis_start(&cl->server->sub);
        }

        cr->state = NGX_HTTP_ASYNCX_CLUSTER_WAITING;

        if (ngx_current_msec - pass->wait_start >= lz->timeout) {
            goto timeout;
        }

        due = NGX_HTTP_ASYNCX_CLUSTER_SAFETY;

        if (cr->rewake) {
            due = 1;

        } else if (cr->wait_ms >= 0) {
            /* never sooner than the floor, doubled for each denial */
            least = NGX_HTTP_ASYNCX_CLUSTER_FLOOR
                    << ngx_min(cr->denials, NGX_HTTP_ASYNCX_CLUSTER_BACKOFF);
            cr->denials++;

            due = ngx_min(due, ngx_max(least, (ngx_msec_t) cr->wait_ms));
        }

        cr->rewake = 0;
        ctx->due = due;

        return NGX_AGAIN;

    default: /* NGX_HTTP_ASYNCX_CLUSTER_WAITING: its timer or a wake-up */

        if (ngx_current_msec - pass->wait_start >= lz->timeout) {
            goto timeout;
        }

        if (ngx_http_asyncx_cluster_head(lz, &cr->enc) != ctx) {
            ctx->due = NGX_HTTP_ASYNCX_CLUSTER_SAFETY;
            return NGX_AGAIN;
        }

        if (cl->server->cmd.ac == NULL
            || ngx_http_asyncx_cluster_ask(cr) != NGX_OK)
        {
            ngx_http_asyncx_cluster_unwait(cr);
            pass->cluster = NULL;
            cr->ctx = NULL;
            ngx_http_asyncx_cluster_free(cr);
            return ngx_http_asyncx_cluster_fallback(cl);
        }

        return NGX_AGAIN;
    }

timeout:

    ngx_atomic_fetch_add(&cl->sh->timed_out, 1);

    /* an answer in flight finds no request and releases what it got */
    pass->cluster = NULL;
    ngx_http_asyncx_cluster_unwait(cr);
    cr->ctx = NULL;
    ngx_http_asyncx_cluster_free(cr);

    return NGX_BUSY;
}


static ngx_http_asyncx_limit_creq_t *
ngx_http_asyncx_cluster_create(ngx_http_asyncx_limit_ctx_t *ctx,
    ngx_http_asyncx_limit_pass_t *pass)
{
    u_char                           *p;
    size_t                            base;
    ngx_str_t                         key, enc, nonce;
    ngx_http_request_t               *r;
    ngx_http_asyncx_limit_zone_t     *lz;
    ngx_http_asyncx_limit_creq_t     *cr;
    ngx_http_asyncx_limit_cluster_t  *cl;

    r = ctx->request;
    lz = pass->zone;
    cl = lz->cluster;

    if (lz->key) {
        if (ngx_http_complex_value(r, lz->key, &key) != NGX_OK) {
            return NULL;
        }

    } else {
        /* not NULL data: it is copied and formatted (no memcpy from NULL) */
        ngx_str_set(&key, "");
    }

    if (ngx_http_asyncx_cluster_encode(r, &key, &enc) != NGX_OK) {
        return NULL;
    }

    /* prefix:{zone:enc} */
    base = cl->prefix.len + lz->name.len + enc.len + sizeof(":{:}") - 1;

    nonce.data = cl->nonce;
    nonce.len = sizeof(cl->nonce);

    cr = ngx_calloc(sizeof(ngx_http_asyncx_limit_creq_t) + enc.len
                    + 2 * (base + 2) + ngx_cycle->hostname.len
                    + nonce.len + 2 * NGX_INT_T_LEN + 3, r->connection->log);
    if (cr == NULL) {
        return NULL;
    }

    p = (u_char *) &cr[1];

    cr->enc.data = p;
    cr->enc.len = enc.len;
    p = ngx_cpymem(p, enc.data, enc.len);

    cr->bkey.data = p;
    p = ngx_sprintf(p, "%V:{%V:%V}:b", &cl->prefix, &lz->name, &enc);
    cr->bkey.len = p - cr->bkey.data;

    cr->skey.data = p;
    p = ngx_sprintf(p, "%V:{%V:%V}:s", &cl->prefix, &lz->name, &enc);
    cr->skey.len = p - cr->skey.data;

    cr->member.data = p;
    p = ngx_sprintf(p, "%V:%P:%V:%ui", &ngx_cycle->hostname, ngx_pid,
                    &nonce, ++cl->seq);
    cr->member.len = p - cr->member.data;

    cr->ctx = ctx;
    cr->cl = cl;
    cr->wait_ms = -1;

    return cr;
}


/*
 * The random part of this process's lease names in the zone, made when
 * the process starts serving it: hostname:pid alone is the same in two
 * containers of one hostname whose nginx runs with the same pid in its
 * PID namespace, and one server's release would then free the other's
 * slot.
 */

static void
ngx_http_asyncx_cluster_nonce(ngx_http_asyncx_limit_cluster_t *cl,
    ngx_log_t *log)
{
    ngx_str_t   nonce;
    ngx_uint_t  i;
    u_char      raw[NGX_HTTP_ASYNCX_CLUSTER_NONCE];

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        /* not expected; still different from another process's */
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "asyncx limit: RAND_bytes() failed, the lease names "
                      "use random() instead");

        for (i = 0; i < sizeof(raw); i++) {
            raw[i] = (u_char) (ngx_random() ^ (ngx_pid >> (i % 4) * 8)
                               ^ ngx_time());
        }
    }

    ngx_hex_dump(cl->nonce, raw, sizeof(raw));

    nonce.data = cl->nonce;
    nonce.len = sizeof(cl->nonce);

    ngx_log_error(NGX_LOG_INFO, log, 0,
                  "asyncx limit: this process's leases are named "
                  "\"%V:%P:%V:<n>\"", &ngx_cycle->hostname, ngx_pid,
                  &nonce);
}


/*
 * The key in Redis names: printable ASCII as it is (no braces, no '%'
 * or '#' first), other bytes as '%' and hex, longer than 64 bytes as
 * '#' and the SHA-256 hex.  Distinct keys stay distinct.
 */

static ngx_int_t
ngx_http_asyncx_cluster_encode(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *enc)
{
    u_char      md[EVP_MAX_MD_SIZE];
    ngx_uint_t  i, plain;

    if (key->len > NGX_HTTP_ASYNCX_LIMIT_KEY_INLINE) {
        if (EVP_Digest(key->data, key->len, md, NULL, EVP_sha256(), NULL)
            != 1)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "asyncx limit: EVP_Digest(SHA-256) failed");
            return NGX_ERROR;
        }

        enc->data = ngx_pnalloc(r->pool, 1 + 2 * NGX_HTTP_ASYNCX_LIMIT_DIGEST);
        if (enc->data == NULL) {
            return NGX_ERROR;
        }

        enc->data[0] = '#';
        enc->len = ngx_hex_dump(enc->data + 1, md,
                                NGX_HTTP_ASYNCX_LIMIT_DIGEST)
                   - enc->data;
        return NGX_OK;
    }

    plain = (key->len == 0 || (key->data[0] != '%' && key->data[0] != '#'));

    for (i = 0; plain && i < key->len; i++) {
        if (key->data[i] <= 0x20 || key->data[i] >= 0x7f
            || key->data[i] == '{' || key->data[i] == '}')
        {
            plain = 0;
        }
    }

    if (plain) {
        *enc = *key;
        return NGX_OK;
    }

    enc->data = ngx_pnalloc(r->pool, 1 + 2 * key->len);
    if (enc->data == NULL) {
        return NGX_ERROR;
    }

    enc->data[0] = '%';
    enc->len = ngx_hex_dump(enc->data + 1, key->data, key->len) - enc->data;

    return NGX_OK;
}


static void
ngx_http_asyncx_cluster_free(ngx_http_asyncx_limit_creq_t *cr)
{
    if (cr->ctx || cr->inflight) {
        return;
    }

    if (cr->queued) {
        ngx_queue_remove(&cr->link);
        cr->queued = 0;
    }

    ngx_free(cr);
}


/* EVALSHA sha 2 bucket slots op: what every call of the script starts with */

static void
ngx_http_asyncx_cluster_script_args(ngx_http_asyncx_limit_creq_t *cr,
    const char *op, const char **argv, size_t *len)
{
    argv[0] = "EVALSHA";
    len[0] = 7;
    argv[1] = (const char *) cr->cl->sha;
    len[1] = NGX_HTTP_ASYNCX_CLUSTER_SHA_LEN;
    argv[2] = "2";
    len[2] = 1;
    argv[3] = (const char *) cr->bkey.data;
    len[3] = cr->bkey.len;
    argv[4] = (const char *) cr->skey.data;
    len[4] = cr->skey.len;
    argv[5] = op;
    len[5] = ngx_strlen(op);
}


/* EVALSHA acquire; NGX_OK: the answer will come to _answered() */

static ngx_int_t
ngx_http_asyncx_cluster_ask(ngx_http_asyncx_limit_creq_t *cr)
{
    u_char                            nums[4][NGX_INT64_LEN];
    size_t                            len[11];
    ngx_int_t                         rc;
    const char                       *argv[11];
    ngx_http_asyncx_limit_cluster_t  *cl;

    cl = cr->cl;

    ngx_http_asyncx_cluster_script_args(cr, "acquire", argv, len);

    argv[6] = (const char *) nums[0];
    len[6] = ngx_sprintf(nums[0], "%uL", cl->rate) - nums[0];
    argv[7] = (const char *) nums[1];
    len[7] = ngx_sprintf(nums[1], "%ui", cl->burst) - nums[1];
    argv[8] = (const char *) nums[2];
    len[8] = ngx_sprintf(nums[2], "%ui", cl->concurrency) - nums[2];
    argv[9] = (const char *) nums[3];
    len[9] = ngx_sprintf(nums[3], "%M", cl->lease) - nums[3];
    argv[10] = (const char *) cr->member.data;
    len[10] = cr->member.len;

    cr->acquire.handler = ngx_http_asyncx_cluster_answered;
    cr->acquire.data = cr;

    rc = ngx_http_asyncx_redis_command(&cl->server->cmd, &cr->acquire, 11,
                                       argv, len);
    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_atomic_fetch_add(&cl->sh->commands, 1);

    cr->inflight++;
    cr->state = NGX_HTTP_ASYNCX_CLUSTER_ASKING;

    return NGX_OK;
}


/* an integer member of an array reply, or NGX_ERROR */

static ngx_int_t
ngx_http_asyncx_cluster_int(redisReply *reply, size_t i, int64_t *n)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements <= i
        || reply->element[i] == NULL
        || reply->element[i]->type != REDIS_REPLY_INTEGER)
    {
        return NGX_ERROR;
    }

    *n = reply->element[i]->integer;

    return NGX_OK;
}


static void
ngx_http_asyncx_cluster_answered(ngx_http_asyncx_redis_t *rd,
    redisReply *reply, void *data)
{
    ngx_http_asyncx_limit_creq_t *cr = data;

    int64_t                           granted, wait, slots, tokens;
    ngx_http_asyncx_limit_cluster_t  *cl;

    cl = cr->cl;
    cr->inflight--;

    if (reply && reply->type == REDIS_REPLY_ERROR && !cr->retried
        && ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0
        && ngx_http_asyncx_cluster_load(cl->server) == NGX_OK)
    {
        /* the script was flushed: loaded again, asked once more */
        cr->retried = 1;

        if (ngx_http_asyncx_cluster_ask(cr) == NGX_OK) {
            return;
        }

        reply = NULL;
    }

    /* the script says 1 (granted) or 0: anything else is not its reply */
    if (reply == NULL
        || ngx_http_asyncx_cluster_int(reply, 0, &granted) != NGX_OK
        || (granted != 0 && granted != 1)
        || ngx_http_asyncx_cluster_int(reply, 1, &wait) != NGX_OK
        || ngx_http_asyncx_cluster_int(reply, 2, &slots) != NGX_OK
        || ngx_http_asyncx_cluster_int(reply, 3, &tokens) != NGX_OK)
    {
        if (reply) {
            ngx_http_asyncx_redis_fail_reason(rd, reply);
        }

        ngx_http_asyncx_cluster_failed(cl, 1);
        cr->state = NGX_HTTP_ASYNCX_CLUSTER_FAILED;

        if (cr->ctx == NULL) {
            ngx_http_asyncx_cluster_free(cr);
            return;
        }

        ngx_post_event(&cr->ctx->wait, &ngx_posted_events);
        return;
    }

    ngx_http_asyncx_cluster_worked(cl);
    ngx_http_asyncx_cluster_global(cl, slots, tokens);

    if (cr->ctx == NULL) {
        /* its request left while asking: what it got goes back */
        if (granted == 1 && cl->concurrency
            && ngx_http_asyncx_cluster_send_release(cr) == NGX_OK)
        {
            cr->inflight++;
            return;
        }

        ngx_http_asyncx_cluster_free(cr);
        return;
    }

    if (granted == 1) {
        cr->state = NGX_HTTP_ASYNCX_CLUSTER_GRANTED;

        /* room for more: the next of its key here asks at once */
        if ((cl->concurrency == 0 || (ngx_uint_t) slots < cl->concurrency)
            && tokens >= 1000)
        {
            cr->rewake = 1;
        }

    } else {
        cr->state = NGX_HTTP_ASYNCX_CLUSTER_DENIED;
        cr->wait_ms = (ngx_int_t) wait;
    }

    ngx_post_event(&cr->ctx->wait, &ngx_posted_events);
}


static ngx_int_t
ngx_http_asyncx_cluster_send_release(ngx_http_asyncx_limit_creq_t *cr)
{
    size_t                            len[8];
    const char                       *argv[8];
    ngx_http_asyncx_limit_cluster_t  *cl;

    cl = cr->cl;

    ngx_http_asyncx_cluster_script_args(cr, "release", argv, len);
    argv[6] = (const char *) cr->member.data;
    len[6] = cr->member.len;
    argv[7] = (const char *) cl->channel.data;
    len[7] = cl->channel.len;

    cr->release.handler = ngx_http_asyncx_cluster_released;
    cr->release.data = cr;

    /* the payload: the key, as its waiters know it */
    {
        size_t       plen[9];
        const char  *pargv[9];

        ngx_memcpy(pargv, argv, sizeof(argv));
        ngx_memcpy(plen, len, sizeof(len));
        pargv[8] = cr->enc.len ? (const char *) cr->enc.data : "";
        plen[8] = cr->enc.len;

        if (ngx_http_asyncx_redis_command(&cl->server->cmd, &cr->release, 9,
                                          pargv, plen)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    ngx_atomic_fetch_add(&cl->sh->commands, 1);

    return NGX_OK;
}


static void
ngx_http_asyncx_cluster_released(ngx_http_asyncx_redis_t *rd,
    redisReply *reply, void *data)
{
    ngx_http_asyncx_limit_creq_t *cr = data;

    int64_t  freed, slots;

    cr->inflight--;

    if (reply == NULL
        || ngx_http_asyncx_cluster_int(reply, 0, &freed) != NGX_OK
        || ngx_http_asyncx_cluster_int(reply, 1, &slots) != NGX_OK)
    {
        if (reply) {
            ngx_http_asyncx_redis_fail_reason(rd, reply);
        }

        /* the lease expires by itself after cluster_lease */
        ngx_http_asyncx_cluster_failed(cr->cl, 1);

    } else {
        ngx_http_asyncx_cluster_worked(cr->cl);
        ngx_http_asyncx_cluster_global(cr->cl, slots, -1);
    }

    ngx_http_asyncx_cluster_free(cr);
}


/* every lease/3: the worker's held slots are renewed */

static void
ngx_http_asyncx_cluster_renew_handler(ngx_event_t *ev)
{
    u_char                            lease[NGX_INT_T_LEN];
    u_char                            cap[NGX_INT_T_LEN];
    size_t                            len[9];
    ngx_queue_t                      *q;
    const char                       *argv[9];
    ngx_http_asyncx_limit_creq_t     *cr;
    ngx_http_asyncx_limit_cluster_t  *cl;

    cl = ev->data;

    argv[6] = (const char *) lease;
    len[6] = ngx_sprintf(lease, "%M", cl->lease) - lease;
    argv[8] = (const char *) cap;
    len[8] = ngx_sprintf(cap, "%ui", cl->concurrency) - cap;

    for (q = ngx_queue_head(&cl->held);
         q != ngx_queue_sentinel(&cl->held);
         q = ngx_queue_next(q))
    {
        cr = ngx_queue_data(q, ngx_http_asyncx_limit_creq_t, link);

        if (cr->renewing) {
            continue;
        }

        ngx_http_asyncx_cluster_script_args(cr, "renew", argv, len);
        argv[7] = (const char *) cr->member.data;
        len[7] = cr->member.len;

        cr->acquire.handler = ngx_http_asyncx_cluster_renewed;
        cr->acquire.data = cr;

        if (ngx_http_asyncx_redis_command(&cl->server->cmd, &cr->acquire, 9,
                                          argv, len)
            != NGX_OK)
        {
            /* no connection: the lease lives on until it expires */
            break;
        }

        ngx_atomic_fetch_add(&cl->sh->commands, 1);
        cr->renewing = 1;
        cr->inflight++;
    }

    if (!ngx_queue_empty(&cl->held)) {
        ngx_add_timer(&cl->renew, ngx_max(cl->lease / 3, 1));
    }
}


static void
ngx_http_asyncx_cluster_renewed(ngx_http_asyncx_redis_t *rd,
    redisReply *reply, void *data)
{
    ngx_http_asyncx_limit_creq_t *cr = data;

    int64_t  renewed, slots;

    cr->inflight--;
    cr->renewing = 0;

    if (reply == NULL
        || ngx_http_asyncx_cluster_int(reply, 0, &renewed) != NGX_OK
        || ngx_http_asyncx_cluster_int(reply, 1, &slots) != NGX_OK)
    {
        if (reply) {
            ngx_http_asyncx_redis_fail_reason(rd, reply);
        }

        ngx_http_asyncx_cluster_failed(cr->cl, 1);

    } else {
        ngx_http_asyncx_cluster_worked(cr->cl);
        ngx_http_asyncx_cluster_global(cr->cl, slots, -1);

        /*
         * A lease gone before its renewal (it expired while this worker
         * got no CPU, or Redis lost its data in a restart) is taken again
         * while a slot is free, so the request counts against the cap
         * again; otherwise it runs over the cap until it ends.
         */

        if (renewed == 2 && cr->ctx) {
            ngx_log_error(NGX_LOG_WARN, cr->cl->log, 0,
                          "asyncx limit: zone \"%V\": a lease was gone "
                          "from redis %V before its renewal, taken again",
                          &cr->cl->lz->name, &rd->name);

        } else if (renewed == 0 && cr->ctx) {
            ngx_log_error(NGX_LOG_WARN, cr->cl->log, 0,
                          "asyncx limit: zone \"%V\": a lease was gone "
                          "from redis %V before its renewal (cluster_lease "
                          "too short, or redis lost its data) and every "
                          "slot is taken: the request runs over the cap",
                          &cr->cl->lz->name, &rd->name);
        }
    }

    ngx_http_asyncx_cluster_free(cr);
}


/* a wake-up: "<key> <redis time in us>", for the head of the key here */

static void
ngx_http_asyncx_cluster_message(ngx_http_asyncx_redis_t *rd,
    redisReply *reply, void *data)
{
    ngx_http_asyncx_limit_cluster_t *cl = data;

    u_char             *sp;
    uint64_t            now, sent, delay;
    ngx_str_t           enc, payload;
    struct timeval      tv;
    ngx_atomic_uint_t   max;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 3
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[2]->type != REDIS_REPLY_STRING
        || ngx_strncmp(reply->element[0]->str, "message", 8) != 0)
    {
        return;
    }

    payload.data = (u_char *) reply->element[2]->str;
    payload.len = reply->element[2]->len;

    sp = NULL;

    for (enc.len = payload.len; enc.len > 0; enc.len--) {
        if (payload.data[enc.len - 1] == ' ') {
            sp = &payload.data[enc.len - 1];
            break;
        }
    }

    if (sp == NULL) {
        return;
    }

    enc.data = payload.data;
    enc.len = sp - payload.data;

    ngx_gettimeofday(&tv);
    now = (uint64_t) tv.tv_sec * 1000000 + tv.tv_usec;
    sent = (uint64_t) ngx_atoof(sp + 1, payload.data + payload.len - sp - 1);

    if ((off_t) sent != NGX_ERROR && now >= sent) {
        /* Redis's clock against this one: meaningful when they agree */
        delay = now - sent;
        ngx_atomic_fetch_add(&cl->sh->wake_count, 1);
        ngx_atomic_fetch_add(&cl->sh->wake_us_total, delay);

        max = cl->sh->wake_us_max;
        if (delay > max) {
            (void) ngx_atomic_cmp_set(&cl->sh->wake_us_max, max, delay);
        }
    }

    ngx_http_asyncx_cluster_wake_head(cl->lz, &enc);

    (void) rd;
}


/*
 * A subrequest r meets a cluster zone its main request went through
 * ("pass" is the main request's): 1 when Redis admitted the main request
 * for the key r evaluates, so r passes the zone without a token or a
 * slot, as in a zone without cluster=; 0: r is counted on its own.
 */

ngx_uint_t
ngx_http_asyncx_limit_cluster_held(ngx_http_request_t *r,
    ngx_http_asyncx_limit_pass_t *pass)
{
    ngx_str_t  key, enc;

    if (!pass->admitted) {
        return 0;
    }

    if (pass->zone->key) {
        if (ngx_http_complex_value(r, pass->zone->key, &key) != NGX_OK) {
            return 0;
        }

    } else {
        ngx_str_set(&key, "");
    }

    if (ngx_http_asyncx_cluster_encode(r, &key, &enc) != NGX_OK) {
        return 0;
    }

    return enc.len == pass->admitted_key.len
           && ngx_memcmp(enc.data, pass->admitted_key.data, enc.len) == 0;
}


/* the fallback decision, and the mode change it means (logged once) */

static ngx_int_t
ngx_http_asyncx_cluster_fallback(ngx_http_asyncx_limit_cluster_t *cl)
{
    ngx_http_asyncx_cluster_failed(cl, 0);

    switch (cl->fallback) {

    case NGX_HTTP_ASYNCX_CLUSTER_FB_ALLOW:
        ngx_atomic_fetch_add(&cl->sh->fallback_admitted, 1);
        return NGX_OK;

    case NGX_HTTP_ASYNCX_CLUSTER_FB_LOCAL:
        /* not counted here: the zone's shared-memory limiter decides,
           and counts, as for a zone without cluster= */
        return NGX_HTTP_ASYNCX_CLUSTER_LOCAL;

    default:
        ngx_atomic_fetch_add(&cl->sh->fallback_refused, 1);
        return NGX_HTTP_ASYNCX_CLUSTER_REFUSE;
    }
}


static void
ngx_http_asyncx_cluster_failed(ngx_http_asyncx_limit_cluster_t *cl,
    ngx_uint_t count)
{
    ngx_http_asyncx_redis_t  *rd;

    if (cl->server->exiting) {
        return;
    }

    if (count) {
        ngx_atomic_fetch_add(&cl->sh->redis_errors, 1);
    }

    rd = &cl->server->cmd;

    /*
     * Each worker has its own connection, so its own mode: it logs its
     * changes, once each, and keeps it in its owner entry; the status
     * shows a fallback while a live worker is in it (see _cluster_mode).
     * sh->mode is the last change of any, for a worker that starts.
     */
    if (cl->mode == NGX_HTTP_ASYNCX_CLUSTER_REDIS) {
        cl->mode = cl->fallback;
        cl->sh->mode = cl->fallback;

        ngx_log_error(NGX_LOG_ERR, cl->log, 0,
                      "zone \"%V\": redis %V unreachable (%s), falling back "
                      "to %V", &cl->lz->name, &rd->name,
                      rd->error[0] ? (char *) rd->error : "not connected",
                      &ngx_http_asyncx_cluster_modes[cl->fallback]);
    }

    ngx_http_asyncx_cluster_own_mode(cl);
}


static void
ngx_http_asyncx_cluster_worked(ngx_http_asyncx_limit_cluster_t *cl)
{
    if (cl->mode != NGX_HTTP_ASYNCX_CLUSTER_REDIS) {
        cl->mode = NGX_HTTP_ASYNCX_CLUSTER_REDIS;
        cl->sh->mode = NGX_HTTP_ASYNCX_CLUSTER_REDIS;

        ngx_log_error(NGX_LOG_NOTICE, cl->log, 0,
                      "zone \"%V\": redis %V reachable again, limiting in "
                      "redis", &cl->lz->name, &cl->server->cmd.name);
    }

    ngx_http_asyncx_cluster_own_mode(cl);
}


/*
 * This worker's mode in its owner entry, on every answer or failure: an
 * entry taken over from a dead worker, or kept by a single process over a
 * reload, is right after the first.  Without an entry (the owner table
 * full of live workers) the worker's mode is not shown.
 */

static void
ngx_http_asyncx_cluster_own_mode(ngx_http_asyncx_limit_cluster_t *cl)
{
    if (cl->lz->self != NGX_HTTP_ASYNCX_LQ_NOBODY) {
        cl->sh->modes[cl->lz->self] = cl->mode;
    }
}


/*
 * The zone's mode on this server: a fallback while a live worker is in
 * it, Redis otherwise.  A worker that exits clears its entry; a worker
 * killed leaves it, and is passed over once its process is gone, as in
 * _cluster_sum.  The workers of one zone share its fallback, except for
 * a moment over a reload that changes it: the first found is shown.
 */

static ngx_uint_t
ngx_http_asyncx_cluster_mode(ngx_http_asyncx_limit_zone_t *lz)
{
    ngx_uint_t                   i, mode;
    ngx_http_asyncx_lq_owner_t  *ow;

    ow = lz->sh->lq.owners;

    for (i = 0; i < NGX_HTTP_ASYNCX_LQ_OWNERS; i++) {
        mode = lz->cluster->sh->modes[i];

        if (mode == NGX_HTTP_ASYNCX_CLUSTER_REDIS
            || mode > NGX_HTTP_ASYNCX_CLUSTER_FB_LOCAL
            || !ngx_http_asyncx_cluster_live(&ow[i]))
        {
            continue;
        }

        return mode;
    }

    return NGX_HTTP_ASYNCX_CLUSTER_REDIS;
}


/* whether an owner entry is a live process's (kill(pid, 0), as the zone
   asks) */

static ngx_uint_t
ngx_http_asyncx_cluster_live(ngx_http_asyncx_lq_owner_t *ow)
{
    if (ow->pid == 0 || ow->dead) {
        return 0;
    }

    if (ow->pid != ngx_pid && kill((ngx_pid_t) ow->pid, 0) == -1
        && ngx_errno == NGX_ESRCH)
    {
        return 0;
    }

    return 1;
}


/* what Redis said of the fleet; tokens -1: not said */

static void
ngx_http_asyncx_cluster_global(ngx_http_asyncx_limit_cluster_t *cl,
    int64_t slots, int64_t tokens)
{
    cl->sh->global_slots = (ngx_atomic_uint_t) ngx_max(slots, 0);

    if (tokens >= 0) {
        cl->sh->global_tokens = (ngx_atomic_uint_t) tokens;
    }

    cl->sh->global_at = ngx_current_msec;
}


/* a granted request holds its lease: renewed until it is released */

static void
ngx_http_asyncx_cluster_hold(ngx_http_asyncx_limit_creq_t *cr)
{
    ngx_http_asyncx_limit_cluster_t  *cl;
    ngx_http_asyncx_limit_zone_t     *lz;

    cl = cr->cl;
    lz = cl->lz;

    cr->state = NGX_HTTP_ASYNCX_CLUSTER_HELD;

    ngx_queue_insert_tail(&cl->held, &cr->link);
    cr->queued = 1;

    if (lz->self != NGX_HTTP_ASYNCX_LQ_NOBODY) {
        ngx_atomic_fetch_add(&cl->sh->held[lz->self], 1);
    }

    if (!cl->renew.timer_set) {
        ngx_add_timer(&cl->renew, ngx_max(cl->lease / 3, 1));
    }
}


/* the request no longer waits: uncounted, and the next one may ask */

static void
ngx_http_asyncx_cluster_unwait(ngx_http_asyncx_limit_creq_t *cr)
{
    ngx_http_asyncx_limit_zone_t  *lz;

    if (!cr->waiting) {
        return;
    }

    lz = cr->cl->lz;
    cr->waiting = 0;

    if (lz->self != NGX_HTTP_ASYNCX_LQ_NOBODY) {
        (void) ngx_atomic_fetch_add(&cr->cl->sh->waiting[lz->self], -1);
    }
}


/*
 * The first waiter of a key among this worker's (FIFO), or NULL.  Only
 * requests Redis refused once count: one being asked for the first time
 * is nobody's place in line (each arrival asks at once unless some of
 * its key already wait, as the shm zone admits when nobody waits).
 */

static ngx_http_asyncx_limit_ctx_t *
ngx_http_asyncx_cluster_head(ngx_http_asyncx_limit_zone_t *lz, ngx_str_t *enc)
{
    ngx_queue_t                   *q;
    ngx_http_asyncx_limit_ctx_t   *ctx;
    ngx_http_asyncx_limit_creq_t  *cr;

    for (q = ngx_queue_head(&lz->waiters);
         q != ngx_queue_sentinel(&lz->waiters);
         q = ngx_queue_next(q))
    {
        ctx = ngx_queue_data(q, ngx_http_asyncx_limit_ctx_t, local);
        cr = ctx->passes[ctx->cur].cluster;

        if (cr && cr->waiting && cr->enc.len == enc->len
            && (enc->len == 0
                || ngx_memcmp(cr->enc.data, enc->data, enc->len) == 0))
        {
            return ctx;
        }
    }

    return NULL;
}


static void
ngx_http_asyncx_cluster_wake_head(ngx_http_asyncx_limit_zone_t *lz,
    ngx_str_t *enc)
{
    ngx_http_asyncx_limit_ctx_t   *ctx;
    ngx_http_asyncx_limit_creq_t  *cr;

    ctx = ngx_http_asyncx_cluster_head(lz, enc);

    if (ctx == NULL) {
        return;
    }

    cr = ctx->passes[ctx->cur].cluster;

    if (cr->state == NGX_HTTP_ASYNCX_CLUSTER_WAITING) {
        if (ctx->wait.timer_set) {
            ngx_del_timer(&ctx->wait);
        }

        if (!ctx->wait.posted) {
            ngx_post_event(&ctx->wait, &ngx_posted_events);
        }

    } else {
        cr->rewake = 1;
    }
}


/*
 * A request leaves (its end, a refusal by a later zone, a client gone):
 * its lease goes back, its place in the queue too.
 */

void
ngx_http_asyncx_limit_cluster_release(ngx_http_asyncx_limit_pass_t *pass)
{
    ngx_uint_t                        was_waiting;
    ngx_http_asyncx_limit_creq_t     *cr;
    ngx_http_asyncx_limit_cluster_t  *cl;

    cr = pass->cluster;

    if (cr == NULL) {
        return;
    }

    pass->cluster = NULL;
    cl = cr->cl;
    cr->ctx = NULL;

    was_waiting = cr->waiting;
    ngx_http_asyncx_cluster_unwait(cr);

    switch (cr->state) {

    case NGX_HTTP_ASYNCX_CLUSTER_HELD:
        ngx_queue_remove(&cr->link);
        cr->queued = 0;

        if (cl->lz->self != NGX_HTTP_ASYNCX_LQ_NOBODY) {
            (void) ngx_atomic_fetch_add(&cl->sh->held[cl->lz->self], -1);
        }

        /* fall through */

    case NGX_HTTP_ASYNCX_CLUSTER_GRANTED:
        if (cl->concurrency
            && ngx_http_asyncx_cluster_send_release(cr) == NGX_OK)
        {
            cr->inflight++;
        }

        break;

    default:
        /* ASKING: the answer releases what it got */
        break;
    }

    if (was_waiting) {
        /* as the shm limiter counts a waiter whose client left */
        ngx_shmtx_lock(&cl->lz->shpool->mutex);
        cl->lz->sh->lq.left++;
        ngx_shmtx_unlock(&cl->lz->shpool->mutex);

        /* the request was unparked already: the next of its key asks */
        ngx_http_asyncx_cluster_wake_head(cl->lz, &cr->enc);
    }

    ngx_http_asyncx_cluster_free(cr);
}


/*
 * A decision of the zone that the shm limiter did not make (Redis's, or
 * cluster_fallback=allow's): counted in the zone's passed, delayed,
 * rejected, timed_out and current_rps, as the shm limiter counts its
 * own, so that the status and the metrics read one set of counters in
 * every mode.  The zone's lock only: the shm limiter's look (reclaiming,
 * a new configuration's limits) is not needed for a few counters.
 */

void
ngx_http_asyncx_limit_cluster_count(ngx_http_asyncx_limit_pass_t *pass,
    ngx_int_t rc)
{
    ngx_http_asyncx_limit_zone_t     *lz;
    ngx_http_asyncx_limit_shctx_t    *sh;
    ngx_http_asyncx_limit_cluster_t  *cl;

    lz = pass->zone;
    sh = lz->sh;
    cl = lz->cluster;

    switch (rc) {
    case NGX_OK:
    case NGX_DONE:
    case NGX_DECLINED:
    case NGX_BUSY:
        break;

    default:
        /* NGX_AGAIN: not decided yet; a fallback refusal and an error are
           counted elsewhere (fallback_refused, the 500) */
        return;
    }

    ngx_shmtx_lock(&lz->shpool->mutex);

    switch (rc) {

    case NGX_OK:
        if (pass->waited) {
            sh->lq.delayed++;

        } else {
            sh->lq.passed++;
        }

        ngx_http_asyncx_limit_count(sh->rps_slot, sh->rps_count,
                                    ngx_current_msec);
        break;

    case NGX_DONE:
        sh->lq.dry_run_delayed++;
        break;

    case NGX_DECLINED:
        sh->lq.rejected++;
        break;

    default: /* NGX_BUSY */
        sh->lq.timed_out++;
    }

    ngx_shmtx_unlock(&lz->shpool->mutex);

    /* in flight until it ends: concurrent.current, as the shm limiter's
       slots; a worker without an owner entry is not counted, as held */
    if (rc == NGX_OK && lz->self != NGX_HTTP_ASYNCX_LQ_NOBODY) {
        ngx_atomic_fetch_add(&cl->sh->running[lz->self], 1);
        pass->running = 1;
    }
}


/* a request counted in running ends (or a later zone refuses it) */

void
ngx_http_asyncx_limit_cluster_done(ngx_http_asyncx_limit_pass_t *pass)
{
    ngx_http_asyncx_limit_zone_t  *lz;

    lz = pass->zone;
    pass->running = 0;

    (void) ngx_atomic_fetch_add(&lz->cluster->sh->running[lz->self], -1);
}


/*
 * The limits the zone enforces now, for its status: the fleet's, as
 * configured, unless the zone is in cluster_fallback=local, which
 * enforces this server's share, the shm limiter's (the caller's numbers,
 * as read from the zone, are left as they are).  In "refuse" and "allow"
 * nothing is enforced here: the configured limits are what the zone is,
 * and comes back to.
 */

void
ngx_http_asyncx_limit_cluster_limits(ngx_http_asyncx_limit_zone_t *lz,
    uint64_t *rate, uint64_t *burst, uint64_t *concurrency)
{
    ngx_http_asyncx_limit_cluster_t  *cl;

    cl = lz->cluster;

    if (cl == NULL) {
        return;
    }

    if (ngx_http_asyncx_cluster_mode(lz) == NGX_HTTP_ASYNCX_CLUSTER_FB_LOCAL) {
        return;
    }

    *rate = cl->rate;
    *burst = cl->burst;
    *concurrency = cl->concurrency;
}


static ngx_uint_t
ngx_http_asyncx_cluster_sum(ngx_atomic_t *a, ngx_http_asyncx_limit_zone_t *lz)
{
    ngx_uint_t                   i, n;
    ngx_http_asyncx_lq_owner_t  *ow;

    n = 0;
    ow = lz->sh->lq.owners;

    /*
     * The entries of live workers only: a worker killed leaves its counts
     * behind until its entry is taken again (and zeroed).  The shared
     * zone marks an entry dead only when its own counts are not zero,
     * which a cluster zone's never are: a process gone is asked here, as
     * the zone asks (kill(pid, 0)), for an entry that counts.  Read
     * without the lock: a number for a decision that is a bound, not a
     * ledger.
     */
    for (i = 0; i < NGX_HTTP_ASYNCX_LQ_OWNERS; i++) {
        if (a[i] == 0 || !ngx_http_asyncx_cluster_live(&ow[i])) {
            continue;
        }

        n += a[i];
    }

    return n;
}


/*
 * "cluster" of the zone's status; adds to *active this server's requests
 * let in by Redis (or cluster_fallback=allow) and running, to *waiting
 * its requests waiting for Redis: the shm limiter's numbers hold the
 * rest (cluster_fallback=local).  This server's, not the fleet's: summed
 * over the servers, as Prometheus sums asyncx_limit_in_flight, they are
 * the fleet's; "global" has what Redis last said of the fleet.
 */

ngx_int_t
ngx_http_asyncx_limit_cluster_json(ngx_http_asyncx_limit_zone_t *lz,
    cJSON *root, ngx_uint_t *active, ngx_uint_t *waiting)
{
    cJSON                               *c, *o;
    ngx_uint_t                           mode, wc;
    ngx_http_asyncx_limit_cluster_t     *cl;
    ngx_http_asyncx_limit_cluster_sh_t  *sh;

    cl = lz->cluster;

    if (cl == NULL) {
        return NGX_OK;
    }

    sh = cl->sh;
    mode = ngx_http_asyncx_cluster_mode(lz);

    if (active) {
        *active += ngx_http_asyncx_cluster_sum(sh->running, lz);
    }

    if (waiting) {
        *waiting += ngx_http_asyncx_cluster_sum(sh->waiting, lz);
    }

    if (root == NULL) {
        return NGX_OK;
    }

    c = cJSON_AddObjectToObject(root, "cluster");
    if (c == NULL
        || cJSON_AddStringToObject(c, "redis",
                                   (char *) cl->server->status_name.data)
           == NULL
        || cJSON_AddStringToObject(c, "mode",
                     (char *) ngx_http_asyncx_cluster_modes[mode].data)
           == NULL
        || cJSON_AddNumberToObject(c, "servers", (double) cl->servers)
           == NULL
        || cJSON_AddNumberToObject(c, "lease_ms", (double) cl->lease)
           == NULL)
    {
        return NGX_ERROR;
    }

    /* this server's share, what cluster_fallback=local enforces (the
       zone's top-level limits are these only while it does) */
    o = cJSON_AddObjectToObject(c, "share");
    if (o == NULL
        || cJSON_AddNumberToObject(o, "concurrency",
                                   (double) lz->concurrency) == NULL
        || cJSON_AddNumberToObject(o, "max_rps", (double) lz->rate / 1000)
           == NULL
        || cJSON_AddNumberToObject(o, "burst", (double) lz->burst) == NULL)
    {
        return NGX_ERROR;
    }

    o = cJSON_AddObjectToObject(c, "global");
    if (o == NULL
        || cJSON_AddNumberToObject(o, "slots_in_use",
                                   (double) sh->global_slots) == NULL
        || cJSON_AddNumberToObject(o, "tokens",
                                   (double) sh->global_tokens / 1000) == NULL
        || (sh->global_at
            ? cJSON_AddNumberToObject(o, "updated_ms_ago",
                  (double) (ngx_current_msec - (ngx_msec_t) sh->global_at))
            : cJSON_AddNullToObject(o, "updated_ms_ago"))
           == NULL)
    {
        return NGX_ERROR;
    }

    o = cJSON_AddObjectToObject(c, "local");
    if (o == NULL
        || cJSON_AddNumberToObject(o, "held",
               (double) ngx_http_asyncx_cluster_sum(sh->held, lz)) == NULL
        || cJSON_AddNumberToObject(o, "waiting",
               (double) ngx_http_asyncx_cluster_sum(sh->waiting, lz)) == NULL
        || cJSON_AddNumberToObject(o, "admitted", (double) sh->admitted)
           == NULL
        || cJSON_AddNumberToObject(o, "refused", (double) sh->refused)
           == NULL
        || cJSON_AddNumberToObject(o, "timed_out", (double) sh->timed_out)
           == NULL
        || cJSON_AddNumberToObject(o, "fallback_admitted",
                                   (double) sh->fallback_admitted) == NULL
        || cJSON_AddNumberToObject(o, "fallback_refused",
                                   (double) sh->fallback_refused) == NULL)
    {
        return NGX_ERROR;
    }

    wc = sh->wake_count;

    if (cJSON_AddNumberToObject(c, "redis_errors", (double) sh->redis_errors)
           == NULL
        || cJSON_AddNumberToObject(c, "commands", (double) sh->commands)
           == NULL
        || cJSON_AddNumberToObject(c, "reconnects", (double) sh->reconnects)
           == NULL)
    {
        return NGX_ERROR;
    }

    o = cJSON_AddObjectToObject(c, "wake_delay");
    if (o == NULL
        || cJSON_AddNumberToObject(o, "count", (double) wc) == NULL
        || cJSON_AddNumberToObject(o, "mean_us",
               wc ? (double) (sh->wake_us_total / wc) : 0) == NULL
        || cJSON_AddNumberToObject(o, "max_us", (double) sh->wake_us_max)
           == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}
