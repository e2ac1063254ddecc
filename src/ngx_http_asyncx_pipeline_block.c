
/*
 * Copyright (C) asyncx authors
 *
 * The pipelines' reserved request pool blocks.  Each call's subrequest
 * takes about 3 KB of nginx's own structures (the request, its module
 * contexts, its header lists) from the client request's pool, whose
 * blocks are request_pool_size (4 KB by default): nearly one malloc() per
 * call, freed together with the request, and each allocation walks the
 * blocks before it.  Measured at 1,000 concurrent orders of the demo
 * (five calls), one block sized for the whole pipeline takes about a
 * third off the worker's CPU per order, as "request_pool_size 32k" did,
 * but for pipeline requests only.
 *
 * The block is linked at the end of the pool's list as ngx_palloc_block()
 * links its own (same layout) and becomes the pool's current block:
 * small allocations go there, larger ones than the pool's max still go
 * to malloc() as usual, and once the block is full the pool grows as it
 * always does.  When the pool is destroyed, a cleanup takes the block
 * back out of the list before ngx_destroy_pool() frees the list, and
 * keeps it for the next pipeline of this worker (block_release).
 *
 * Where the blocks come from, first to last: the kept blocks that
 * asyncx_pipeline_blocks keep=N made when the worker started (one
 * mapping whose pages are already in memory, so that a fresh worker's
 * first burst of orders does not fault in new memory as it arrives),
 * the spare blocks that ended pipelines gave back, and the heap.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx_conf.h"
#include "ngx_http_asyncx_pipeline_block.h"


/* what keep=N may map in each worker, all blocks together */
#define NGX_HTTP_ASYNCX_PIPELINE_KEEP_MAX  (1024 * 1024 * 1024)


typedef struct {
    ngx_pool_t                         *pool;
    ngx_pool_t                         *block;
    ngx_http_asyncx_pipeline_blocks_t  *blocks;
} ngx_http_asyncx_pipeline_block_t;


static ngx_pool_t *ngx_http_asyncx_pipeline_block_get(
    ngx_http_asyncx_pipeline_blocks_t *blocks, size_t size, size_t first,
    ngx_log_t *log);
static void ngx_http_asyncx_pipeline_block_release(void *data);
static void ngx_http_asyncx_pipeline_block_trim(ngx_event_t *ev);
static void ngx_http_asyncx_pipeline_blocks_drop(
    ngx_http_asyncx_pipeline_blocks_t *blocks);
static ngx_uint_t ngx_http_asyncx_pipeline_blocks_free_spares(
    ngx_http_asyncx_pipeline_blocks_t *blocks);


static ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_pipeline_keep_bounds =
    { 0, 1000000, NGX_HTTP_ASYNCX_CONF_NUMBER, 0 };
static ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_pipeline_max_bounds =
    { 0, NGX_HTTP_ASYNCX_PIPELINE_KEEP_MAX, NGX_HTTP_ASYNCX_CONF_SIZE, 0 };
static ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_pipeline_trim_bounds =
    { 1000, 3600000, NGX_HTTP_ASYNCX_CONF_MSEC, 0 };


void
ngx_http_asyncx_pipeline_blocks_init(ngx_http_asyncx_pipeline_blocks_t *blocks)
{
    blocks->keep = 0;
    blocks->max = 64 * 1024 * 1024;
    blocks->trim = 10000;
}


/* asyncx_pipeline_blocks [keep=number] [max=size] [trim=time] */

char *
ngx_http_asyncx_pipeline_blocks(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_asyncx_pipeline_blocks_t *blocks =
        (ngx_http_asyncx_pipeline_blocks_t *) ((char *) conf + cmd->offset);

    uint64_t                        v;
    ngx_str_t                      *value, s;
    ngx_uint_t                      i, n, seen;
    ngx_http_asyncx_conf_bounds_t  *b;

    static ngx_str_t  names[] = {
        ngx_string("keep="), ngx_string("max="), ngx_string("trim=")
    };

    if (blocks->set) {
        return "is duplicate";
    }

    blocks->set = 1;
    blocks->file = cf->conf_file->file.name;
    blocks->line = cf->conf_file->line;

    value = cf->args->elts;
    seen = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        for (n = 0; n < sizeof(names) / sizeof(ngx_str_t); n++) {
            if (value[i].len >= names[n].len
                && ngx_strncmp(value[i].data, names[n].data, names[n].len)
                   == 0)
            {
                break;
            }
        }

        if (n == sizeof(names) / sizeof(ngx_str_t)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in \"%V\", use "
                               "keep=number, max=size or trim=time",
                               &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }

        if (seen & (1 << n)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate parameter \"%V\" in \"%V\"",
                               &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }

        seen |= 1 << n;

        b = (n == 0) ? &ngx_http_asyncx_pipeline_keep_bounds
            : (n == 1) ? &ngx_http_asyncx_pipeline_max_bounds
            : &ngx_http_asyncx_pipeline_trim_bounds;

        s.data = value[i].data + names[n].len;
        s.len = value[i].len - names[n].len;

        if (ngx_http_asyncx_conf_parse_bounded(&s, b, &v) != NGX_OK) {
            ngx_http_asyncx_conf_log_range(cf, &cmd->name, &value[i], b);
            return NGX_CONF_ERROR;
        }

        switch (n) {
        case 0:
            blocks->keep = (ngx_uint_t) v;
            break;
        case 1:
            blocks->max = (size_t) v;
            break;
        default:
            blocks->trim = (ngx_msec_t) v;
        }
    }

    return NGX_CONF_OK;
}


/* a pipeline location's block, with a small body: kept blocks fit it */

void
ngx_http_asyncx_pipeline_blocks_need(ngx_http_asyncx_pipeline_blocks_t *blocks,
    size_t size)
{
    if (size > blocks->kept_size) {
        blocks->kept_size = size;
    }
}


/* after every location is merged: what keep=N maps, named by nginx -t */

ngx_int_t
ngx_http_asyncx_pipeline_blocks_check(ngx_conf_t *cf,
    ngx_http_asyncx_pipeline_blocks_t *blocks)
{
    if (blocks->keep == 0) {
        return NGX_OK;
    }

    /* the directive's own line: this runs at the end of the http block */

    if (blocks->kept_size == 0) {
        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "\"asyncx_pipeline_blocks\" keep=%ui makes no block: "
                      "no location has \"asyncx_pipeline\" in %V:%ui",
                      blocks->keep, &blocks->file, blocks->line);
        return NGX_OK;
    }

    if (blocks->keep > NGX_HTTP_ASYNCX_PIPELINE_KEEP_MAX / blocks->kept_size) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"asyncx_pipeline_blocks\" keep=%ui needs %uL "
                      "bytes in each worker (blocks of %uz bytes for the "
                      "largest pipeline), more than %uz in %V:%ui",
                      blocks->keep,
                      (uint64_t) blocks->keep * blocks->kept_size,
                      blocks->kept_size,
                      (size_t) NGX_HTTP_ASYNCX_PIPELINE_KEEP_MAX,
                      &blocks->file, blocks->line);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The kept blocks, in one mapping whose pages are written now, before
 * the worker accepts its first connection.  A worker that cannot have
 * them serves as without them.
 */

void
ngx_http_asyncx_pipeline_blocks_init_process(
    ngx_http_asyncx_pipeline_blocks_t *blocks, ngx_log_t *log)
{
    int          flags;
    size_t       size;
    u_char      *m, *p;
    ngx_uint_t   i;
    ngx_pool_t  *block;

    /* not the cache manager's and loader's: they serve no request */
    if (blocks->keep == 0 || blocks->kept_size == 0
        || (ngx_process != NGX_PROCESS_WORKER
            && ngx_process != NGX_PROCESS_SINGLE))
    {
        return;
    }

    size = blocks->keep * blocks->kept_size;
    flags = MAP_PRIVATE|MAP_ANON;

#ifdef MAP_POPULATE
    flags |= MAP_POPULATE;
#endif

    m = mmap(NULL, size, PROT_READ|PROT_WRITE, flags, -1, 0);

    if (m == MAP_FAILED) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      "asyncx_pipeline_blocks: mmap(%uz) of keep=%ui "
                      "failed, the worker runs without kept blocks",
                      size, blocks->keep);
        return;
    }

    /*
     * One write by the worker itself to each page.  MAP_POPULATE has the
     * kernel allocate and clear the pages, but on a VM guest the first
     * access of the process to each page still costs a fault of the
     * host's (shadow page tables, nested paging), paid in the first
     * burst's ngx_pcalloc()s: at a fresh worker's first wave of 1,000
     * orders with keep=1000 this took its p99 over /calib's from +29
     * to +7 ms (bench/pipeline/run.sh, docs/benchmarks/pipeline.md).
     */
    for (p = m; p < m + size; p += ngx_pagesize) {
        *(volatile u_char *) p = 0;
    }

    blocks->kept_start = m;
    blocks->kept_end = m + size;

    for (i = 0; i < blocks->keep; i++) {
        block = (ngx_pool_t *) (m + i * blocks->kept_size);
        block->d.end = (u_char *) block + blocks->kept_size;
        block->d.next = blocks->kept;
        blocks->kept = block;
    }

    blocks->nkept = blocks->keep;

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "asyncx_pipeline_blocks: %ui blocks of %uz bytes kept",
                  blocks->keep, blocks->kept_size);
}


/*
 * Room in the request pool for what a pipeline allocates there: size
 * bytes (whole pages) in one block linked at the end of the pool, of
 * which the first "first" bytes are written at once (block_get).
 */

ngx_int_t
ngx_http_asyncx_pipeline_block_reserve(
    ngx_http_asyncx_pipeline_blocks_t *blocks, ngx_pool_t *pool, size_t size,
    size_t first)
{
    ngx_pool_t                        *p, *block;
    ngx_pool_cleanup_t                *cln;
    ngx_http_asyncx_pipeline_block_t  *b;

    if ((size_t) (pool->d.end - (u_char *) pool) >= size) {
        /* request_pool_size is large enough already */
        return NGX_OK;
    }

    /* in the pool's earlier blocks: it is read while the block is taken */
    cln = ngx_pool_cleanup_add(pool, sizeof(ngx_http_asyncx_pipeline_block_t));
    if (cln == NULL) {
        return NGX_ERROR;
    }

    block = ngx_http_asyncx_pipeline_block_get(blocks, size, first,
                                                pool->log);
    if (block == NULL) {
        return NGX_ERROR;
    }

    for (p = pool->current; p->d.next; p = p->d.next) {
        /* void */
    }

    p->d.next = block;

    /* the earlier blocks' few free bytes are not worth a walk each time */
    pool->current = block;

    b = cln->data;
    b->pool = pool;
    b->block = block;
    b->blocks = blocks;

    cln->handler = ngx_http_asyncx_pipeline_block_release;

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                   "asyncx pipeline: block %p of %uz bytes reserved, "
                   "%ui kept, %ui spare", block, size, blocks->nkept,
                   blocks->nspare);

    return NGX_OK;
}


/*
 * A block of at least size bytes, emptied: a kept one if it is large
 * enough, else a spare one if the last given back is, else a new one.
 */

static ngx_pool_t *
ngx_http_asyncx_pipeline_block_get(ngx_http_asyncx_pipeline_blocks_t *blocks,
    size_t size, size_t first, ngx_log_t *log)
{
    u_char      *m;
    size_t       have;
    ngx_pool_t  *block;

    block = blocks->spare;

    if (blocks->kept && size <= blocks->kept_size) {
        block = blocks->kept;
        blocks->kept = block->d.next;
        blocks->nkept--;

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                       "asyncx pipeline: kept block %p taken", block);

    } else if (block && (size_t) (block->d.end - (u_char *) block) >= size) {
        have = block->d.end - (u_char *) block;

        blocks->spare = block->d.next;
        blocks->nspare--;
        blocks->spare_size -= have;
        blocks->unused = ngx_min(blocks->unused, blocks->nspare);

    } else {
        /* size is whole pages: page-aligned, the block owns its pages */
        m = ngx_memalign(ngx_pagesize, size, log);
        if (m == NULL) {
            return NULL;
        }

#if (NGX_LINUX && defined MADV_POPULATE_WRITE)
        /*
         * The pages of the pipeline's start (up to its first stage's
         * calls: 6 of the demo order's 9) faulted in by one call, not one
         * page fault each: at a fresh worker's first wave of 1,000 orders
         * this took 14 % off the wave's CPU (bench/pipeline/
         * first_wave.sh, on a VM guest, where a fault costs more than on
         * bare metal).  Not the later stages' pages: a burst's orders
         * start one after the other, so the last one starts after every
         * earlier start's faults, while the later stages of the burst
         * start spread apart by those starts; their pages fault in then.
         * Spare blocks are resident already.  Kernels before 5.14 refuse
         * the advice (EINVAL): the pages then fault in as written.
         */
        (void) madvise(m, ngx_min(first, size), MADV_POPULATE_WRITE);
#endif

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                       "asyncx pipeline: block %p of %uz bytes from the "
                       "heap, %uz faulted in", m, size, ngx_min(first, size));

        block = (ngx_pool_t *) m;
        block->d.end = m + size;
    }

    block->d.next = NULL;
    block->d.failed = 0;
    block->d.last = ngx_align_ptr((u_char *) block + sizeof(ngx_pool_data_t),
                                  NGX_ALIGNMENT);

    return block;
}


/*
 * The request pool's cleanup.  ngx_destroy_pool() runs every cleanup,
 * then frees the large allocations, then the blocks: the block leaves
 * the list here and is not reused before the next pipeline starts, so
 * what the later cleanups and the large allocations' list read in it
 * stays as it was until ngx_destroy_pool() returns.  A heap block not
 * kept (the worker exits, the spares are at their bound) is never freed
 * here: it stays in the list (t/120-pipeline-attack.t).  A kept block
 * always leaves the list: it is not the heap's to free
 * (t/121-pipeline-blocks.t).
 *
 * Without spares, at lock-step (thousands of orders ending together)
 * the freed blocks made the top of the heap, glibc returned it to the
 * kernel, and the next wave faulted it in again page by page.  Spare
 * blocks are bounded by the most pipelines in flight at once and by
 * max=, and those not needed for trim= are freed.
 */

static void
ngx_http_asyncx_pipeline_block_release(void *data)
{
    ngx_http_asyncx_pipeline_block_t *b = data;

    size_t                              size;
    ngx_uint_t                          kept;
    ngx_pool_t                         *p;
    ngx_http_asyncx_pipeline_blocks_t  *blocks;

    blocks = b->blocks;
    size = b->block->d.end - (u_char *) b->block;

    kept = ((u_char *) b->block >= blocks->kept_start
            && (u_char *) b->block < blocks->kept_end);

    if (ngx_exiting && !blocks->dropped) {
        ngx_http_asyncx_pipeline_blocks_drop(blocks);
    }

    if (!kept
        && (blocks->spare_size + size > blocks->max || ngx_exiting))
    {
        /*
         * not kept: left in the list for ngx_destroy_pool() to free after
         * it has read the large allocations' nodes that live in it
         */
        return;
    }

    for (p = b->pool; p->d.next != b->block; p = p->d.next) {
        if (p->d.next == NULL) {
            /* cannot happen: not in the list, not ours to keep */
            return;
        }
    }

    p->d.next = b->block->d.next;

    /* a later cleanup that allocates gets the pool's own blocks */
    if (b->pool->current == b->block) {
        b->pool->current = b->pool;
    }

    if (kept) {
        if (ngx_exiting) {
            /* its pages go with the worker */
            return;
        }

        b->block->d.next = blocks->kept;
        blocks->kept = b->block;
        blocks->nkept++;
        return;
    }

    b->block->d.next = blocks->spare;
    blocks->spare = b->block;
    blocks->nspare++;
    blocks->spare_size += size;

    if (!blocks->trim_event.timer_set) {
        blocks->trim_event.handler = ngx_http_asyncx_pipeline_block_trim;
        blocks->trim_event.data = blocks;
        blocks->trim_event.log = ngx_cycle->log;
        /* a worker that shuts down does not wait for it */
        blocks->trim_event.cancelable = 1;
        blocks->unused = 0;

        ngx_add_timer(&blocks->trim_event, blocks->trim);
    }
}


/*
 * A worker shutting down serves no new pipeline: at the first pipeline
 * that ends, its spare blocks are freed and the pages of its free kept
 * blocks go back to the kernel, so that an old worker kept alive by a
 * long request (a reload) does not hold them.  Blocks still in flight
 * stay as they are until their pools are destroyed (see release).
 */

static void
ngx_http_asyncx_pipeline_blocks_drop(ngx_http_asyncx_pipeline_blocks_t *blocks)
{
    ngx_uint_t   n, flight;
    ngx_pool_t  *block, *next;

    blocks->dropped = 1;

    n = ngx_http_asyncx_pipeline_blocks_free_spares(blocks);

    /*
     * d.next and d.end live in the block and read as zero once its pages
     * went: the list is read first, and no such block is reused
     */
    for (block = blocks->kept; block; block = next) {
        next = block->d.next;
#if (NGX_LINUX)
        (void) madvise((void *) block, blocks->kept_size, MADV_DONTNEED);
#endif
    }

    flight = blocks->kept_start ? blocks->keep - blocks->nkept : 0;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "asyncx pipeline: shutting down, %ui spare blocks freed, "
                   "the pages of %ui kept blocks returned, %ui in flight",
                   n, blocks->nkept, flight);

    blocks->kept = NULL;
    blocks->nkept = 0;
}


/* the blocks that stayed spare since the last time are not needed */

static void
ngx_http_asyncx_pipeline_block_trim(ngx_event_t *ev)
{
    ngx_uint_t                          n;
    ngx_pool_t                         *block;
    ngx_http_asyncx_pipeline_blocks_t  *blocks;

    blocks = ev->data;

    for (n = blocks->unused; n && blocks->spare; n--) {
        block = blocks->spare;
        blocks->spare = block->d.next;
        blocks->nspare--;
        blocks->spare_size -= block->d.end - (u_char *) block;

        ngx_free(block);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "asyncx pipeline: %ui spare blocks freed, %ui left",
                   blocks->unused, blocks->nspare);

    blocks->unused = blocks->nspare;

    if (blocks->nspare) {
        ngx_add_timer(&blocks->trim_event, blocks->trim);
    }
}


/*
 * The worker exits (after a quit with no pipeline ending since, or a
 * terminate): the spare blocks go before nginx destroys the cycle pool,
 * which holds their list; memcheck called them lost.  The kept blocks'
 * mapping goes with the process: a request still open at a terminate
 * may hold one.
 */

void
ngx_http_asyncx_pipeline_blocks_exit_process(
    ngx_http_asyncx_pipeline_blocks_t *blocks)
{
    ngx_uint_t  n;

    n = ngx_http_asyncx_pipeline_blocks_free_spares(blocks);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "asyncx pipeline: the worker exits, %ui spare blocks "
                   "freed", n);
}


/* frees the spare blocks, returns how many there were */

static ngx_uint_t
ngx_http_asyncx_pipeline_blocks_free_spares(
    ngx_http_asyncx_pipeline_blocks_t *blocks)
{
    ngx_uint_t   n;
    ngx_pool_t  *block;

    while (blocks->spare) {
        block = blocks->spare;
        blocks->spare = block->d.next;
        ngx_free(block);
    }

    n = blocks->nspare;
    blocks->nspare = 0;
    blocks->spare_size = 0;

    return n;
}
