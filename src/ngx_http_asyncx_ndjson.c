
/*
 * Copyright (C) asyncx authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_sse_event.h"
#include "ngx_http_asyncx_ndjson.h"


#define ngx_http_asyncx_ndjson_cpy(p, s)  ngx_cpymem(p, s, sizeof(s) - 1)

/* a stats object: 3 counters and 4 numbers of at most 24 bytes */
#define NGX_HTTP_ASYNCX_NDJSON_STATS_MAX   256

/* a row of the aggregate's table */
#define NGX_HTTP_ASYNCX_NDJSON_ROW_MAX                                       \
    (NGX_HTTP_ASYNCX_NDJSON_KEY_MAX + NGX_HTTP_ASYNCX_NDJSON_STATS_MAX + 16)


static u_char *ngx_http_asyncx_ndjson_u64(u_char *p, uint64_t v);
static u_char *ngx_http_asyncx_ndjson_i64(u_char *p, int64_t v);
static u_char *ngx_http_asyncx_ndjson_double(u_char *p, double d);
static u_char *ngx_http_asyncx_ndjson_ms(u_char *p, uint64_t usec);
static uint32_t ngx_http_asyncx_ndjson_key_hash(u_char *p, size_t len);
static ngx_int_t ngx_http_asyncx_ndjson_cmp(int64_t i, double d);

static ngx_int_t ngx_http_asyncx_ndjson_emit(
    ngx_http_asyncx_ndjson_scan_t *s, ngx_http_asyncx_ndjson_pos_t *pos,
    u_char *data, size_t len);
static ngx_int_t ngx_http_asyncx_ndjson_close(
    ngx_http_asyncx_ndjson_scan_t *s, ngx_uint_t at_eof);
static ngx_int_t ngx_http_asyncx_ndjson_batch_event(
    ngx_http_asyncx_ndjson_scan_t *s);
static ngx_int_t ngx_http_asyncx_ndjson_complete(
    ngx_http_asyncx_ndjson_scan_t *s);
static ngx_int_t ngx_http_asyncx_ndjson_due(ngx_http_asyncx_ndjson_scan_t *s,
    off_t off, ngx_uint_t at_eof);
static ngx_int_t ngx_http_asyncx_ndjson_line(
    ngx_http_asyncx_ndjson_scan_t *s, u_char *p, size_t len, off_t off,
    off_t next);
static ngx_int_t ngx_http_asyncx_ndjson_search_line(
    ngx_http_asyncx_ndjson_scan_t *s, u_char *p, size_t len, off_t off,
    off_t next);
static ngx_int_t ngx_http_asyncx_ndjson_transform_line(
    ngx_http_asyncx_ndjson_scan_t *s, u_char *p, size_t len, off_t off,
    off_t next);
static ngx_int_t ngx_http_asyncx_ndjson_aggregate_line(
    ngx_http_asyncx_ndjson_scan_t *s, u_char *p, size_t len, off_t off,
    off_t next);
static ngx_int_t ngx_http_asyncx_ndjson_invalid(
    ngx_http_asyncx_ndjson_scan_t *s, off_t off, off_t next,
    const char *what, size_t at, const char *reason);
static void ngx_http_asyncx_ndjson_take(ngx_http_asyncx_ndjson_scan_t *s,
    off_t next, ngx_uint_t skipped);
static u_char *ngx_http_asyncx_ndjson_skip(ngx_http_asyncx_ndjson_scan_t *s,
    u_char *p, u_char *end, u_char *hit, off_t off);


/* aggregate */

/*
 * A numeric value.  An integer that fits in 64 bits is summed exactly
 * until the sum would overflow or a value is not such an integer; from
 * then on the group is summed in doubles, as Python's int + float does
 * (an integer beyond 64 bits is a double).  A number beyond the range
 * of doubles (1e309, 400 digits) is counted apart, in out_of_range.
 * Anything else counts as a record without a value.
 *
 * v points into a parsed JSON object: a byte that ends the number
 * follows it, so strtod() reads it in place, however long.
 */

void
ngx_http_asyncx_ndjson_stats_add(ngx_http_asyncx_ndjson_stats_t *s,
    ngx_http_asyncx_ndjson_value_t *v)
{
    char        *end;
    u_char      *p, *last;
    double       d;
    int64_t      i, sum;
    uint64_t     u, max;
    ngx_uint_t   fits, neg;

    s->records++;

    if (v == NULL || v->type != NGX_HTTP_ASYNCX_NDJSON_NUMBER) {
        return;
    }

    p = v->data;
    last = p + v->len;
    neg = (*p == '-');
    p += neg;

    /* at most 2^63 - 1, or 2^63 for a negative one */
    max = (uint64_t) INT64_MAX + neg;
    fits = 1;
    u = 0;

    for ( /* void */ ; p < last; p++) {
        if (*p < '0' || *p > '9'
            || u > (max - (*p - '0')) / 10)
        {
            fits = 0;
            break;
        }

        u = u * 10 + (*p - '0');
    }

    if (fits) {
        i = neg ? -(int64_t) (u - 1) - 1 : (int64_t) u;

        if (!s->ints) {
            s->ints = 1;
            s->imin = i;
            s->imax = i;

        } else {
            s->imin = ngx_min(s->imin, i);
            s->imax = ngx_max(s->imax, i);
        }

        s->count++;

        if (!s->real) {
            if (!__builtin_add_overflow(s->isum, i, &sum)) {
                s->isum = sum;
                return;
            }

            s->real = 1;
            s->dsum = (double) s->isum;
        }

        s->dsum += (double) i;
        return;
    }

    d = strtod((char *) v->data, &end);

    if ((u_char *) end != last) {
        /* not the number the parser passed: cannot happen */
        return;
    }

    if (!isfinite(d)) {
        s->out_of_range++;
        return;
    }

    if (!s->reals) {
        s->reals = 1;
        s->dmin = d;
        s->dmax = d;

    } else {
        s->dmin = ngx_min(s->dmin, d);
        s->dmax = ngx_max(s->dmax, d);
    }

    s->count++;

    if (!s->real) {
        s->real = 1;
        s->dsum = (double) s->isum;
    }

    s->dsum += d;
}


/* an integer against a double, exactly: < 0, 0 or > 0 */

static ngx_int_t
ngx_http_asyncx_ndjson_cmp(int64_t i, double d)
{
    double   frac;
    int64_t  t;

    if (d >= 9223372036854775808.0) {
        return -1;
    }

    if (d < -9223372036854775808.0) {
        return 1;
    }

    t = (int64_t) d;

    if (i != t) {
        return (i < t) ? -1 : 1;
    }

    frac = d - (double) t;

    return (frac > 0) ? -1 : (frac < 0) ? 1 : 0;
}


/*
 * {"records": R, "count": C, "sum": S, "min": m, "max": M, "avg": A},
 * with "out_of_range": N after count when there were such numbers.  A
 * sum of doubles beyond their range is null, and so is its avg.
 */

u_char *
ngx_http_asyncx_ndjson_stats_write(u_char *p,
    ngx_http_asyncx_ndjson_stats_t *s)
{
    p = ngx_http_asyncx_ndjson_cpy(p, "{\"records\": ");
    p = ngx_http_asyncx_ndjson_u64(p, s->records);
    p = ngx_http_asyncx_ndjson_cpy(p, ", \"count\": ");
    p = ngx_http_asyncx_ndjson_u64(p, s->count);

    if (s->out_of_range) {
        p = ngx_http_asyncx_ndjson_cpy(p, ", \"out_of_range\": ");
        p = ngx_http_asyncx_ndjson_u64(p, s->out_of_range);
    }

    if (s->count == 0) {
        return ngx_http_asyncx_ndjson_cpy(p, ", \"sum\": 0, \"min\": null, "
                                          "\"max\": null, \"avg\": null}");
    }

    p = ngx_http_asyncx_ndjson_cpy(p, ", \"sum\": ");

    if (s->real) {
        p = ngx_http_asyncx_ndjson_double(p, s->dsum);

    } else {
        p = ngx_http_asyncx_ndjson_i64(p, s->isum);
    }

    p = ngx_http_asyncx_ndjson_cpy(p, ", \"min\": ");

    if (s->ints
        && (!s->reals || ngx_http_asyncx_ndjson_cmp(s->imin, s->dmin) <= 0))
    {
        p = ngx_http_asyncx_ndjson_i64(p, s->imin);

    } else {
        p = ngx_http_asyncx_ndjson_double(p, s->dmin);
    }

    p = ngx_http_asyncx_ndjson_cpy(p, ", \"max\": ");

    if (s->ints
        && (!s->reals || ngx_http_asyncx_ndjson_cmp(s->imax, s->dmax) >= 0))
    {
        p = ngx_http_asyncx_ndjson_i64(p, s->imax);

    } else {
        p = ngx_http_asyncx_ndjson_double(p, s->dmax);
    }

    /* the sum as a double over the count (null if the sum is) */
    p = ngx_http_asyncx_ndjson_cpy(p, ", \"avg\": ");
    p = ngx_http_asyncx_ndjson_double(p, (s->real ? s->dsum
                                                  : (double) s->isum)
                                         / (double) s->count);
    *p++ = '}';

    return p;
}


static uint32_t
ngx_http_asyncx_ndjson_key_hash(u_char *p, size_t len)
{
    return ngx_http_asyncx_ndjson_hash(2166136261u, p, len);
}


/*
 * A record into its group, keyed by the group field's value as written
 * ("null" when absent).  Keys longer than KEY_MAX and groups beyond
 * GROUPS_MAX go to "other".
 */

void
ngx_http_asyncx_ndjson_table_add(ngx_http_asyncx_ndjson_table_t *t,
    ngx_http_asyncx_ndjson_value_t *key, ngx_http_asyncx_ndjson_value_t *v)
{
    u_char                          *k;
    size_t                           len;
    uint32_t                         h;
    ngx_uint_t                       slot, mask;
    ngx_http_asyncx_ndjson_group_t  *g;

    ngx_http_asyncx_ndjson_stats_add(&t->overall, v);

    if (key->type == NGX_HTTP_ASYNCX_NDJSON_ABSENT) {
        k = (u_char *) "null";
        len = 4;

    } else {
        k = key->data;
        len = key->len;
    }

    if (len > NGX_HTTP_ASYNCX_NDJSON_KEY_MAX) {
        ngx_http_asyncx_ndjson_stats_add(&t->other, v);
        return;
    }

    h = ngx_http_asyncx_ndjson_key_hash(k, len);
    mask = NGX_HTTP_ASYNCX_NDJSON_SLOTS - 1;

    for (slot = h & mask; t->slots[slot]; slot = (slot + 1) & mask) {
        g = &t->groups[t->slots[slot] - 1];

        if (g->hash == h && g->key_len == len
            && ngx_memcmp(g->key, k, len) == 0)
        {
            ngx_http_asyncx_ndjson_stats_add(&g->stats, v);
            return;
        }
    }

    if (t->ngroups == NGX_HTTP_ASYNCX_NDJSON_GROUPS_MAX) {
        ngx_http_asyncx_ndjson_stats_add(&t->other, v);
        return;
    }

    g = &t->groups[t->ngroups++];
    ngx_memzero(&g->stats, sizeof(ngx_http_asyncx_ndjson_stats_t));
    g->hash = h;
    g->key_len = len;
    ngx_memcpy(g->key, k, len);

    t->slots[slot] = (uint16_t) t->ngroups;

    ngx_http_asyncx_ndjson_stats_add(&g->stats, v);
}


/* numbers */

static u_char *
ngx_http_asyncx_ndjson_u64(u_char *p, uint64_t v)
{
    u_char   buf[NGX_INT64_LEN];
    u_char  *q;

    q = buf + sizeof(buf);

    do {
        *--q = (u_char) ('0' + v % 10);
        v /= 10;
    } while (v);

    return ngx_cpymem(p, q, buf + sizeof(buf) - q);
}


static u_char *
ngx_http_asyncx_ndjson_i64(u_char *p, int64_t v)
{
    if (v < 0) {
        *p++ = '-';
        return ngx_http_asyncx_ndjson_u64(p, -(uint64_t) v);
    }

    return ngx_http_asyncx_ndjson_u64(p, (uint64_t) v);
}


/* the shortest of %.15g, %.16g, %.17g that reads back the same double */

static u_char *
ngx_http_asyncx_ndjson_double(u_char *p, double d)
{
    int   n, prec;
    char  buf[40];

    if (!isfinite(d)) {
        return ngx_http_asyncx_ndjson_cpy(p, "null");
    }

    n = 0;

    for (prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, sizeof(buf), "%.*g", prec, d);

        if (strtod(buf, NULL) == d) {
            break;
        }
    }

    return ngx_cpymem(p, buf, n);
}


static u_char *
ngx_http_asyncx_ndjson_ms(u_char *p, uint64_t usec)
{
    p = ngx_http_asyncx_ndjson_u64(p, usec / 1000);
    *p++ = '.';
    *p++ = (u_char) ('0' + usec / 100 % 10);
    *p++ = (u_char) ('0' + usec / 10 % 10);
    *p++ = (u_char) ('0' + usec % 10);

    return p;
}


/* FNV-1a */

uint32_t
ngx_http_asyncx_ndjson_hash(uint32_t h, const u_char *p, size_t len)
{
    while (len--) {
        h = (h ^ *p++) * 16777619u;
    }

    return h;
}


/* event ids */

size_t
ngx_http_asyncx_ndjson_id_write(u_char *buf, ngx_http_asyncx_ndjson_pos_t *pos)
{
    u_char      *p;
    ngx_uint_t   i;

    static u_char  hex[] = "0123456789abcdef";

    p = ngx_http_asyncx_ndjson_u64(buf, (uint64_t) pos->offset);
    *p++ = '-';
    p = ngx_http_asyncx_ndjson_u64(p, pos->records);
    *p++ = '-';
    p = ngx_http_asyncx_ndjson_u64(p, pos->matches);
    *p++ = '-';
    p = ngx_http_asyncx_ndjson_u64(p, pos->skipped);
    *p++ = '-';
    *p++ = pos->phase;
    *p++ = '-';

    for (i = 0; i < 8; i++) {
        *p++ = hex[(pos->tag >> (28 - 4 * i)) & 0xf];
    }

    return p - buf;
}


/*
 * "<offset>-<records>-<matches>-<skipped>-<phase>-<tag>" exactly as
 * written above: decimal numbers without leading zeros, a phase letter,
 * 8 lower-case hex digits; counts that no file can give (more lines than
 * bytes, more matches and skipped lines than lines, a match's id without
 * a match) are refused too.
 * NGX_OK or NGX_ERROR.
 */

ngx_int_t
ngx_http_asyncx_ndjson_id_parse(u_char *p, size_t len,
    ngx_http_asyncx_ndjson_pos_t *pos)
{
    u_char      *end, *start, c;
    uint64_t     v[4];
    ngx_uint_t   i;

    while (len && (*p == ' ' || *p == '\t')) {
        p++;
        len--;
    }

    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
        len--;
    }

    if (len > NGX_HTTP_ASYNCX_NDJSON_ID_MAX) {
        return NGX_ERROR;
    }

    end = p + len;

    for (i = 0; i < 4; i++) {
        start = p;

        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }

        if (p == start || p == end || *p != '-'
            || (*start == '0' && p - start > 1)
            || ngx_http_asyncx_parse_uint(start, p - start,
                                          NGX_MAX_OFF_T_VALUE, &v[i])
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        p++;
    }

    if (end - p != 10 || p[1] != '-') {
        return NGX_ERROR;
    }

    c = p[0];

    if (c != 'm' && c != 'b' && c != 'c' && c != 'e') {
        return NGX_ERROR;
    }

    pos->phase = c;
    pos->tag = 0;

    for (p += 2; p < end; p++) {
        if (*p >= '0' && *p <= '9') {
            pos->tag = (pos->tag << 4) | (*p - '0');

        } else if (*p >= 'a' && *p <= 'f') {
            pos->tag = (pos->tag << 4) | (*p - 'a' + 10);

        } else {
            return NGX_ERROR;
        }
    }

    if (v[1] > v[0] || v[2] > v[1] || v[3] > v[1] - v[2]) {
        return NGX_ERROR;
    }

    /* a match's id counts its own line and match */
    if (c == 'm' && v[2] == 0) {
        return NGX_ERROR;
    }

    pos->offset = (off_t) v[0];
    pos->records = v[1];
    pos->matches = v[2];
    pos->skipped = v[3];

    return NGX_OK;
}


/* the scan */

/*
 * From the start (resume NULL) or after the event whose id is resume.
 * Search and transform go on where the id says; the aggregate has to
 * rebuild its table, so it reads from the start and stays silent up to
 * the id (ngx_http_asyncx_ndjson_scan() checks that the lines there are
 * what the id counted).
 */

void
ngx_http_asyncx_ndjson_start(ngx_http_asyncx_ndjson_scan_t *s,
    ngx_http_asyncx_ndjson_pos_t *resume)
{
    ngx_memzero(&s->pos, sizeof(ngx_http_asyncx_ndjson_pos_t));

    s->closed = 0;
    s->silent = 0;
    s->skipping = 0;
    s->limit_reached = 0;
    s->done = 0;
    s->batch_len = 0;
    s->batch_count = 0;
    s->batch_hash = 2166136261u;
    s->error = NULL;

    if (resume == NULL) {
        return;
    }

    if (s->op == NGX_HTTP_ASYNCX_NDJSON_AGGREGATE) {
        if (resume->offset > 0) {
            s->resume = *resume;
            s->silent = 1;
        }

        return;
    }

    s->pos.offset = resume->offset;
    s->pos.records = resume->records;
    s->pos.matches = resume->matches;
    s->pos.skipped = resume->skipped;

    /* after a match the progress event of its batch is still due */
    s->closed = (resume->phase == 'm') ? resume->records - 1
                                       : resume->records;
}


/*
 * Scans the complete lines of window (file offset window_offset; eof:
 * the window reaches the end of the stream) and writes their events to
 * s->out.  *used: the bytes done with, which the caller drops.
 *
 * NGX_AGAIN: more of the file is needed; NGX_BUSY: the output is full,
 * send it and call again; NGX_DECLINED: one event needs s->need bytes
 * of output, more than s->out_size; NGX_DONE: the stream ended;
 * NGX_ABORT: *s->cancel was set (the client left), the scan stopped
 * before the next line.  An event that does not fit changes nothing:
 * the call after redoes it.
 *
 * One function: the per-line hot loop of the file source; a split is to
 * be measured first against docs/benchmarks/sse.md.
 */

ngx_int_t
ngx_http_asyncx_ndjson_scan(ngx_http_asyncx_ndjson_scan_t *s, u_char *window,
    size_t len, off_t window_offset, ngx_uint_t eof, size_t *used)
{
    u_char      *p, *end, *nl, *line_end, *next, *hit, *q;
    off_t        off;
    size_t       n;
    ngx_int_t    rc;
    ngx_uint_t   at_eof;

    p = window;
    end = window + len;
    hit = NULL;

    for ( ;; ) {

        if (s->done) {
            rc = NGX_DONE;
            break;
        }

        if (s->out_len >= NGX_HTTP_ASYNCX_NDJSON_OUT_BUDGET) {
            rc = NGX_BUSY;
            break;
        }

        if (s->cancel && *s->cancel) {
            rc = NGX_ABORT;
            break;
        }

        off = window_offset + (p - window);
        at_eof = (eof && p == end && !s->skipping);

        rc = ngx_http_asyncx_ndjson_due(s, off, at_eof);

        if (rc == NGX_AGAIN) {
            /* an event went out (complete, error): look again */
            continue;
        }

        if (rc != NGX_OK) {
            break;
        }

        if (s->skipping) {
            /* the rest of a line longer than max_line, never kept whole */
            nl = memchr(p, '\n', end - p);

            if (nl == NULL && !eof) {
                p = end;
                rc = NGX_AGAIN;
                break;
            }

            p = nl ? nl + 1 : end;
            s->skipping = 0;
            ngx_http_asyncx_ndjson_take(s, window_offset + (p - window), 1);
            continue;
        }

        if (p == end) {
            rc = NGX_AGAIN;
            break;
        }

        if (s->op == NGX_HTTP_ASYNCX_NDJSON_SEARCH) {
            /* one look for the keyword serves all the lines before it */
            if (hit == NULL || hit < p) {
                hit = ngx_http_asyncx_ndjson_find(p, end - p, s->keyword,
                                                  s->keyword_len, s->icase);
                if (hit == NULL) {
                    hit = end;
                }
            }

            q = ngx_http_asyncx_ndjson_skip(s, p, end, hit,
                                            window_offset + (p - window));

            if (q != p) {
                p = q;
                continue;
            }
        }

        n = ngx_min((size_t) (end - p), s->max_line + 1);
        nl = memchr(p, '\n', n);

        if (nl) {
            line_end = nl;
            next = nl + 1;

        } else if ((size_t) (end - p) > s->max_line) {

            if (s->skip_invalid) {
                s->skipping = 1;
                p += n;
                continue;
            }

            rc = ngx_http_asyncx_ndjson_invalid(s, off, off, "is longer "
                                                "than asyncx_sse_max_line_size",
                                                0, NULL);
            break;

        } else if (eof) {
            /* the last line may end without a line feed */
            line_end = end;
            next = end;

        } else {
            rc = NGX_AGAIN;
            break;
        }

        rc = ngx_http_asyncx_ndjson_line(s, p, line_end - p, off,
                                         window_offset + (next - window));

        if (rc != NGX_OK) {
            break;
        }

        p = next;
    }

    *used = p - window;

    return rc;
}


/*
 * The events due before the next line: the end of an aggregate's
 * silent rebuild, complete when the limit is reached, the batch event,
 * complete at the end of the file.  NGX_OK: go on with the next line;
 * NGX_AGAIN: an event ended the stream; otherwise what scan() returns.
 */

static ngx_int_t
ngx_http_asyncx_ndjson_due(ngx_http_asyncx_ndjson_scan_t *s, off_t off,
    ngx_uint_t at_eof)
{
    ngx_int_t  rc;

    if (s->silent && !s->skipping && off >= s->resume.offset) {
        if (off != s->resume.offset
            || s->pos.records != s->resume.records
            || s->pos.skipped != s->resume.skipped)
        {
            rc = ngx_http_asyncx_ndjson_fail(s, 1, "Last-Event-ID does not "
                                             "match the file: its lines "
                                             "changed", NULL, 0);
            return (rc == NGX_DONE) ? NGX_AGAIN : rc;
        }

        s->silent = 0;
        s->closed = s->pos.records;
    }

    if (s->limit && s->pos.matches >= s->limit) {
        s->limit_reached = 1;
        rc = ngx_http_asyncx_ndjson_complete(s);
        return (rc == NGX_OK) ? NGX_AGAIN : rc;
    }

    rc = ngx_http_asyncx_ndjson_close(s, at_eof);

    if (rc != NGX_OK || !at_eof) {
        return rc;
    }

    rc = ngx_http_asyncx_ndjson_complete(s);

    return (rc == NGX_OK) ? NGX_AGAIN : rc;
}


/*
 * A search's lines before hit (the next place the keyword appears in the
 * window, or its end) cannot match: they are counted in one tight loop,
 * up to the next batch boundary, a line without its end in the window or
 * longer than max_line, or the line holding hit.  The keyword has no
 * line feed (the caller refuses one), so a hit never spans two lines.
 * Returns where the scan goes on; p (nothing skipped) or further.
 */

static u_char *
ngx_http_asyncx_ndjson_skip(ngx_http_asyncx_ndjson_scan_t *s, u_char *p,
    u_char *end, u_char *hit, off_t off)
{
    u_char    *start, *nl;
    size_t     n;
    uint64_t   records, stop;

    start = p;
    records = s->pos.records;
    stop = records - records % s->batch_size + s->batch_size;

    while (records < stop) {
        n = ngx_min((size_t) (end - p), s->max_line + 1);
        nl = memchr(p, '\n', n);

        if (nl == NULL || hit < nl) {
            break;
        }

        p = nl + 1;
        records++;
    }

    if (p != start) {
        s->pos.records = records;
        s->pos.offset = off + (p - start);
    }

    return p;
}


/* a line done: the position moves past it */

static void
ngx_http_asyncx_ndjson_take(ngx_http_asyncx_ndjson_scan_t *s, off_t next,
    ngx_uint_t skipped)
{
    s->pos.offset = next;
    s->pos.records++;
    s->pos.skipped += skipped;
}


/* NGX_OK: the line is done (taken); otherwise what scan() returns */

static ngx_int_t
ngx_http_asyncx_ndjson_line(ngx_http_asyncx_ndjson_scan_t *s, u_char *p,
    size_t len, off_t off, off_t next)
{
    u_char  *q, *last;

    /*
     * A blank line (JSON whitespace only: a file ending in "\n\n", a
     * "\r\n" left at the end) holds no record, as JSON Lines readers
     * agree: it counts as a line and nothing else.
     */

    last = p + len;

    for (q = p; q < last && (*q == ' ' || *q == '\t' || *q == '\r'); q++) {
        /* void */
    }

    if (q == last) {
        ngx_http_asyncx_ndjson_take(s, next, 0);
        return NGX_OK;
    }

    switch (s->op) {

    case NGX_HTTP_ASYNCX_NDJSON_SEARCH:
        return ngx_http_asyncx_ndjson_search_line(s, p, len, off, next);

    case NGX_HTTP_ASYNCX_NDJSON_TRANSFORM:
        return ngx_http_asyncx_ndjson_transform_line(s, p, len, off, next);

    default: /* NGX_HTTP_ASYNCX_NDJSON_AGGREGATE */
        return ngx_http_asyncx_ndjson_aggregate_line(s, p, len, off, next);
    }
}


/*
 * Only lines holding the keyword are parsed at all (documented: an
 * invalid line without it goes unnoticed).  A match sends the record as
 * written, without the whitespace around it.
 */

static ngx_int_t
ngx_http_asyncx_ndjson_search_line(ngx_http_asyncx_ndjson_scan_t *s,
    u_char *p, size_t len, off_t off, off_t next)
{
    u_char                          *q, *rec, *last;
    size_t                           at, n;
    ngx_int_t                        rc;
    const char                      *reason;
    ngx_http_asyncx_ndjson_pos_t     pos;
    ngx_http_asyncx_ndjson_value_t   v;

    if (ngx_http_asyncx_ndjson_find(p, len, s->keyword, s->keyword_len,
                                    s->icase)
        == NULL)
    {
        ngx_http_asyncx_ndjson_take(s, next, 0);
        return NGX_OK;
    }

    if (ngx_http_asyncx_ndjson_parse(p, len, &s->field, s->field.len ? 1 : 0,
                                     &v, &at, &reason)
        != NGX_OK)
    {
        return ngx_http_asyncx_ndjson_invalid(s, off, next,
                                              "is not valid JSON", at,
                                              reason);
    }

    if (s->field.len) {
        /* a string's text between its quotes, as written */
        q = v.data;
        n = v.len;

        if (v.type == NGX_HTTP_ASYNCX_NDJSON_STRING) {
            q++;
            n -= 2;
        }

        if (v.type == NGX_HTTP_ASYNCX_NDJSON_ABSENT
            || ngx_http_asyncx_ndjson_find(q, n, s->keyword, s->keyword_len,
                                           s->icase)
               == NULL)
        {
            ngx_http_asyncx_ndjson_take(s, next, 0);
            return NGX_OK;
        }
    }

    rec = p;
    last = p + len;

    while (rec < last
           && (*rec == ' ' || *rec == '\t' || *rec == '\r'))
    {
        rec++;
    }

    while (last > rec
           && (last[-1] == ' ' || last[-1] == '\t' || last[-1] == '\r'))
    {
        last--;
    }

    q = ngx_http_asyncx_ndjson_cpy(s->scratch,
                                   "{\"type\": \"match\", \"line\": ");
    q = ngx_http_asyncx_ndjson_u64(q, s->pos.records + 1);
    q = ngx_http_asyncx_ndjson_cpy(q, ", \"offset\": ");
    q = ngx_http_asyncx_ndjson_u64(q, (uint64_t) off);
    q = ngx_http_asyncx_ndjson_cpy(q, ", \"record\": ");
    q = ngx_cpymem(q, rec, last - rec);
    *q++ = '}';

    pos = s->pos;
    pos.offset = next;
    pos.records++;
    pos.matches++;
    pos.phase = 'm';

    rc = ngx_http_asyncx_ndjson_emit(s, &pos, s->scratch, q - s->scratch);

    if (rc == NGX_OK) {
        s->pos = pos;
    }

    return rc;
}


/*
 * The chosen fields, renamed, as one record of the open batch event
 * (null for a field the line lacks); a full event goes out first.
 */

static ngx_int_t
ngx_http_asyncx_ndjson_transform_line(ngx_http_asyncx_ndjson_scan_t *s,
    u_char *p, size_t len, off_t off, off_t next)
{
    u_char                          *q, *rec, *b;
    size_t                           at, need;
    uint32_t                         h;
    ngx_int_t                        rc;
    ngx_str_t                        names[NGX_HTTP_ASYNCX_NDJSON_FIELDS_MAX];
    ngx_uint_t                       i;
    const char                      *reason;
    ngx_http_asyncx_ndjson_value_t   values[NGX_HTTP_ASYNCX_NDJSON_FIELDS_MAX];

    for (i = 0; i < s->nfields; i++) {
        names[i] = s->fields[i].name;
    }

    if (ngx_http_asyncx_ndjson_parse(p, len, names, s->nfields, values, &at,
                                     &reason)
        != NGX_OK)
    {
        return ngx_http_asyncx_ndjson_invalid(s, off, next,
                                              "is not valid JSON", at,
                                              reason);
    }

    need = 2;

    for (i = 0; i < s->nfields; i++) {
        need += s->fields[i].alias.len + 6
                + (values[i].data ? values[i].len : 4);
    }

    if (s->batch_count
        && s->batch_len + need > NGX_HTTP_ASYNCX_NDJSON_BATCH_BUDGET)
    {
        rc = ngx_http_asyncx_ndjson_batch_event(s);

        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (s->batch_count == 0) {
        s->batch_first = s->pos.records;
    }

    q = s->batch + NGX_HTTP_ASYNCX_NDJSON_HEAD_MAX + s->batch_len;

    if (s->batch_count) {
        q = ngx_http_asyncx_ndjson_cpy(q, ", ");
    }

    rec = q;
    *q++ = '{';

    for (i = 0; i < s->nfields; i++) {
        if (i) {
            q = ngx_http_asyncx_ndjson_cpy(q, ", ");
        }

        *q++ = '"';
        q = ngx_cpymem(q, s->fields[i].alias.data, s->fields[i].alias.len);
        q = ngx_http_asyncx_ndjson_cpy(q, "\": ");

        if (values[i].data) {
            q = ngx_cpymem(q, values[i].data, values[i].len);

        } else {
            q = ngx_http_asyncx_ndjson_cpy(q, "null");
        }
    }

    *q++ = '}';

    /*
     * The checksum: each record as the client receives it, followed by a
     * line feed.  A CR in a value (JSON whitespace) ends a "data:" line
     * of the event, which the client joins with a line feed: it is
     * hashed as one.  Records hold no LF, so no CRLF pair is framed as
     * one break.
     */

    h = s->batch_hash;

    for (b = rec; b < q; b++) {
        h = (h ^ (*b == '\r' ? '\n' : *b)) * 16777619u;
    }

    s->batch_hash = (h ^ '\n') * 16777619u;

    s->batch_len = q - (s->batch + NGX_HTTP_ASYNCX_NDJSON_HEAD_MAX);
    s->batch_count++;

    ngx_http_asyncx_ndjson_take(s, next, 0);

    return NGX_OK;
}


static ngx_int_t
ngx_http_asyncx_ndjson_aggregate_line(ngx_http_asyncx_ndjson_scan_t *s,
    u_char *p, size_t len, off_t off, off_t next)
{
    size_t                           at;
    ngx_str_t                        names[2];
    const char                      *reason;
    ngx_http_asyncx_ndjson_value_t   values[2];

    names[0] = s->group_by;
    names[1] = s->value;

    if (ngx_http_asyncx_ndjson_parse(p, len, names, 2, values, &at, &reason)
        != NGX_OK)
    {
        return ngx_http_asyncx_ndjson_invalid(s, off, next,
                                              "is not valid JSON", at,
                                              reason);
    }

    ngx_http_asyncx_ndjson_table_add(s->table, &values[0], &values[1]);
    ngx_http_asyncx_ndjson_take(s, next, 0);

    return NGX_OK;
}


/*
 * A line that is not a record: skipped and counted, or the error event
 * that ends the stream (with asyncx_sse_invalid_line error).  Its id
 * says that the lines before it are done, and an error's id resumes to
 * 204: what they gave goes out first, as at the end of the file (a
 * transform's open batch, an aggregate's stage; a search sent its
 * matches already), with the id a resume before the error expects.
 */

static ngx_int_t
ngx_http_asyncx_ndjson_invalid(ngx_http_asyncx_ndjson_scan_t *s, off_t off,
    off_t next, const char *what, size_t at, const char *reason)
{
    u_char                        *q;
    ngx_int_t                      rc;
    ngx_http_asyncx_ndjson_pos_t   pos;

    if (s->skip_invalid) {
        ngx_http_asyncx_ndjson_take(s, next, 1);
        return NGX_OK;
    }

    if (s->op != NGX_HTTP_ASYNCX_NDJSON_SEARCH) {
        /* sent, it changes what a redo of this line does: nothing */
        rc = ngx_http_asyncx_ndjson_close(s, 1);

        if (rc != NGX_OK) {
            return rc;
        }
    }

    q = ngx_http_asyncx_ndjson_cpy(s->scratch, "{\"type\": \"error\", "
                                   "\"message\": \"line ");
    q = ngx_http_asyncx_ndjson_u64(q, s->pos.records + 1);
    q = ngx_http_asyncx_ndjson_cpy(q, " (offset ");
    q = ngx_http_asyncx_ndjson_u64(q, (uint64_t) off);
    q = ngx_http_asyncx_ndjson_cpy(q, ") ");
    q = ngx_http_asyncx_json_escape(q, (u_char *) what, ngx_strlen(what));

    if (reason) {
        q = ngx_http_asyncx_ndjson_cpy(q, ": ");
        q = ngx_http_asyncx_json_escape(q, (u_char *) reason,
                                        ngx_strlen(reason));
        q = ngx_http_asyncx_ndjson_cpy(q, " at byte ");
        q = ngx_http_asyncx_ndjson_u64(q, at);
    }

    q = ngx_http_asyncx_ndjson_cpy(q, "\", \"line\": ");
    q = ngx_http_asyncx_ndjson_u64(q, s->pos.records + 1);
    q = ngx_http_asyncx_ndjson_cpy(q, ", \"offset\": ");
    q = ngx_http_asyncx_ndjson_u64(q, (uint64_t) off);
    *q++ = '}';

    pos = s->pos;
    pos.phase = 'e';

    rc = ngx_http_asyncx_ndjson_emit(s, &pos, s->scratch, q - s->scratch);

    if (rc == NGX_OK) {
        s->done = 1;
        s->error = what;
        rc = NGX_DONE;
    }

    return rc;
}


/*
 * An error event at the current position that ends the stream, for
 * what the caller finds (a truncated file, a read error), with detail
 * (JSON-escaped here).  A final one has an id that resumes to 204; the
 * others have none, so that EventSource reconnects after the last event
 * it got.  NGX_DONE, or what emit() returned.
 */

ngx_int_t
ngx_http_asyncx_ndjson_fail(ngx_http_asyncx_ndjson_scan_t *s,
    ngx_uint_t final, const char *message, const u_char *detail,
    size_t detail_len)
{
    u_char                        *q;
    ngx_int_t                      rc;
    ngx_http_asyncx_ndjson_pos_t   pos;

    detail_len = ngx_min(detail_len, NGX_HTTP_ASYNCX_NDJSON_EVENT_MAX / 8);

    q = ngx_http_asyncx_ndjson_cpy(s->scratch, "{\"type\": \"error\", "
                                   "\"message\": \"");
    q = ngx_http_asyncx_json_escape(q, (u_char *) message,
                                    ngx_strlen(message));

    if (detail_len) {
        q = ngx_http_asyncx_json_escape(q, (u_char *) detail, detail_len);
    }

    q = ngx_http_asyncx_ndjson_cpy(q, "\", \"line\": ");
    q = ngx_http_asyncx_ndjson_u64(q, s->pos.records + 1);
    q = ngx_http_asyncx_ndjson_cpy(q, ", \"offset\": ");
    q = ngx_http_asyncx_ndjson_u64(q, (uint64_t) s->pos.offset);
    *q++ = '}';

    pos = s->pos;
    pos.phase = 'e';

    rc = ngx_http_asyncx_ndjson_emit(s, final ? &pos : NULL, s->scratch,
                                     q - s->scratch);

    if (rc == NGX_OK) {
        s->done = 1;
        s->error = message;
        rc = NGX_DONE;
    }

    return rc;
}


/*
 * The event that closes a batch, when one is due: at every batch_size
 * records and at the end of the file (a search's progress, an
 * aggregate's stage, a transform's batch of records), and before an
 * invalid line's error event (not a search's progress).
 */

static ngx_int_t
ngx_http_asyncx_ndjson_close(ngx_http_asyncx_ndjson_scan_t *s,
    ngx_uint_t at_eof)
{
    u_char                        *q;
    ngx_int_t                      rc;
    ngx_http_asyncx_ndjson_pos_t   pos;

    if (s->op == NGX_HTTP_ASYNCX_NDJSON_TRANSFORM) {
        if (s->batch_count
            && (at_eof || s->pos.records % s->batch_size == 0))
        {
            return ngx_http_asyncx_ndjson_batch_event(s);
        }

        return NGX_OK;
    }

    if (s->pos.records <= s->closed
        || (!at_eof && s->pos.records % s->batch_size != 0))
    {
        return NGX_OK;
    }

    if (s->silent) {
        s->closed = s->pos.records;
        return NGX_OK;
    }

    if (s->op == NGX_HTTP_ASYNCX_NDJSON_SEARCH) {
        q = ngx_http_asyncx_ndjson_cpy(s->scratch, "{\"type\": \"progress\", "
                                       "\"processed\": ");
        q = ngx_http_asyncx_ndjson_u64(q, s->pos.records);
        q = ngx_http_asyncx_ndjson_cpy(q, ", \"matches\": ");
        q = ngx_http_asyncx_ndjson_u64(q, s->pos.matches);

    } else {
        q = ngx_http_asyncx_ndjson_cpy(s->scratch, "{\"type\": \"stage\", "
                                       "\"stage\": ");
        q = ngx_http_asyncx_ndjson_u64(q, (s->pos.records + s->batch_size - 1)
                                          / s->batch_size);
        q = ngx_http_asyncx_ndjson_cpy(q, ", \"processed\": ");
        q = ngx_http_asyncx_ndjson_u64(q, s->pos.records);
    }

    q = ngx_http_asyncx_ndjson_cpy(q, ", \"skipped\": ");
    q = ngx_http_asyncx_ndjson_u64(q, s->pos.skipped);
    q = ngx_http_asyncx_ndjson_cpy(q, ", \"offset\": ");
    q = ngx_http_asyncx_ndjson_u64(q, (uint64_t) s->pos.offset);
    q = ngx_http_asyncx_ndjson_cpy(q, ", \"size\": ");
    q = ngx_http_asyncx_ndjson_u64(q, (uint64_t) s->size);

    if (s->op == NGX_HTTP_ASYNCX_NDJSON_AGGREGATE) {
        q = ngx_http_asyncx_ndjson_cpy(q, ", \"groups\": ");
        q = ngx_http_asyncx_ndjson_u64(q, s->table->ngroups);
        q = ngx_http_asyncx_ndjson_cpy(q, ", \"partial\": ");
        q = ngx_http_asyncx_ndjson_stats_write(q, &s->table->overall);
    }

    *q++ = '}';

    pos = s->pos;
    pos.phase = 'b';

    rc = ngx_http_asyncx_ndjson_emit(s, &pos, s->scratch, q - s->scratch);

    if (rc == NGX_OK) {
        s->closed = s->pos.records;
    }

    return rc;
}


/* the transform's event: its header goes in front of its records */

static ngx_int_t
ngx_http_asyncx_ndjson_batch_event(ngx_http_asyncx_ndjson_scan_t *s)
{
    u_char                         head[NGX_HTTP_ASYNCX_NDJSON_HEAD_MAX];
    u_char                        *q, *start, *last;
    ngx_uint_t                     i;
    ngx_int_t                      rc;
    ngx_http_asyncx_ndjson_pos_t   pos;

    static u_char  hex[] = "0123456789abcdef";

    q = ngx_http_asyncx_ndjson_cpy(head, "{\"type\": \"batch\", "
                                   "\"batch_num\": ");
    q = ngx_http_asyncx_ndjson_u64(q, s->batch_first / s->batch_size + 1);
    q = ngx_http_asyncx_ndjson_cpy(q, ", \"items_processed\": ");
    q = ngx_http_asyncx_ndjson_u64(q, s->pos.records);
    q = ngx_http_asyncx_ndjson_cpy(q, ", \"skipped\": ");
    q = ngx_http_asyncx_ndjson_u64(q, s->pos.skipped);
    q = ngx_http_asyncx_ndjson_cpy(q, ", \"offset\": ");
    q = ngx_http_asyncx_ndjson_u64(q, (uint64_t) s->pos.offset);
    q = ngx_http_asyncx_ndjson_cpy(q, ", \"size\": ");
    q = ngx_http_asyncx_ndjson_u64(q, (uint64_t) s->size);
    q = ngx_http_asyncx_ndjson_cpy(q, ", \"count\": ");
    q = ngx_http_asyncx_ndjson_u64(q, s->batch_count);
    q = ngx_http_asyncx_ndjson_cpy(q, ", \"checksum\": \"");

    for (i = 0; i < 8; i++) {
        *q++ = hex[(s->batch_hash >> (28 - 4 * i)) & 0xf];
    }

    q = ngx_http_asyncx_ndjson_cpy(q, "\", \"records\": [");

    start = s->batch + NGX_HTTP_ASYNCX_NDJSON_HEAD_MAX - (q - head);
    ngx_memcpy(start, head, q - head);

    last = s->batch + NGX_HTTP_ASYNCX_NDJSON_HEAD_MAX + s->batch_len;
    last[0] = ']';
    last[1] = '}';

    pos = s->pos;
    pos.phase = 'b';

    rc = ngx_http_asyncx_ndjson_emit(s, &pos, start, last + 2 - start);

    if (rc == NGX_OK) {
        s->batch_len = 0;
        s->batch_count = 0;
        s->batch_hash = 2166136261u;
    }

    return rc;
}


static ngx_int_t
ngx_http_asyncx_ndjson_complete(ngx_http_asyncx_ndjson_scan_t *s)
{
    u_char                          *q;
    ngx_int_t                        rc;
    ngx_uint_t                       i;
    ngx_http_asyncx_ndjson_pos_t     pos;
    ngx_http_asyncx_ndjson_group_t  *g;

    q = ngx_http_asyncx_ndjson_cpy(s->scratch, "{\"type\": \"complete\", "
                                   "\"total_processed\": ");
    q = ngx_http_asyncx_ndjson_u64(q, s->pos.records);

    if (s->op == NGX_HTTP_ASYNCX_NDJSON_SEARCH) {
        q = ngx_http_asyncx_ndjson_cpy(q, ", \"total_matches\": ");
        q = ngx_http_asyncx_ndjson_u64(q, s->pos.matches);
    }

    q = ngx_http_asyncx_ndjson_cpy(q, ", \"skipped\": ");
    q = ngx_http_asyncx_ndjson_u64(q, s->pos.skipped);
    q = ngx_http_asyncx_ndjson_cpy(q, ", \"size\": ");
    q = ngx_http_asyncx_ndjson_u64(q, (uint64_t) s->size);

    if (s->op == NGX_HTTP_ASYNCX_NDJSON_SEARCH) {
        q = s->limit_reached
            ? ngx_http_asyncx_ndjson_cpy(q, ", \"limit_reached\": true")
            : ngx_http_asyncx_ndjson_cpy(q, ", \"limit_reached\": false");
    }

    if (s->op == NGX_HTTP_ASYNCX_NDJSON_AGGREGATE) {
        q = ngx_http_asyncx_ndjson_cpy(q, ", \"result\": ");
        q = ngx_http_asyncx_ndjson_stats_write(q, &s->table->overall);
        q = ngx_http_asyncx_ndjson_cpy(q, ", \"groups\": ");
        q = ngx_http_asyncx_ndjson_u64(q, s->table->ngroups);
        q = ngx_http_asyncx_ndjson_cpy(q, ", \"by_group\": [");

        for (i = 0; i < s->table->ngroups; i++) {
            g = &s->table->groups[i];

            if (i) {
                q = ngx_http_asyncx_ndjson_cpy(q, ", ");
            }

            q = ngx_http_asyncx_ndjson_cpy(q, "{\"key\": ");
            q = ngx_cpymem(q, g->key, g->key_len);
            q = ngx_http_asyncx_ndjson_cpy(q, ", \"stats\": ");
            q = ngx_http_asyncx_ndjson_stats_write(q, &g->stats);
            *q++ = '}';
        }

        q = ngx_http_asyncx_ndjson_cpy(q, "], \"other\": ");

        if (s->table->other.records) {
            q = ngx_http_asyncx_ndjson_stats_write(q, &s->table->other);

        } else {
            q = ngx_http_asyncx_ndjson_cpy(q, "null");
        }
    }

    q = ngx_http_asyncx_ndjson_cpy(q, ", \"total_time_ms\": ");
    q = ngx_http_asyncx_ndjson_ms(q, ngx_http_asyncx_now_usec() - s->started);
    *q++ = '}';

    pos = s->pos;
    pos.phase = 'c';

    rc = ngx_http_asyncx_ndjson_emit(s, &pos, s->scratch, q - s->scratch);

    if (rc == NGX_OK) {
        s->done = 1;
    }

    return rc;
}


/*
 * One event into s->out, with the id of pos (none if NULL).  NGX_OK,
 * NGX_BUSY or NGX_DECLINED (s->need).
 */

static ngx_int_t
ngx_http_asyncx_ndjson_emit(ngx_http_asyncx_ndjson_scan_t *s,
    ngx_http_asyncx_ndjson_pos_t *pos, u_char *data, size_t len)
{
    u_char                       id[NGX_HTTP_ASYNCX_NDJSON_ID_MAX];
    size_t                       need;
    ngx_http_asyncx_sse_event_t  ev;

    ev.id.data = id;
    ev.id.len = 0;

    if (pos) {
        pos->tag = s->tag;
        ev.id.len = ngx_http_asyncx_ndjson_id_write(id, pos);
    }

    ngx_str_null(&ev.event);
    ev.retry = 0;
    ev.data = data;
    ev.len = len;

    need = ngx_http_asyncx_sse_event_len(&ev);

    if (s->out_len + need > s->out_size) {
        if (s->out_len) {
            return NGX_BUSY;
        }

        s->need = need;
        return NGX_DECLINED;
    }

    (void) ngx_http_asyncx_sse_event_write(s->out + s->out_len, &ev);

    s->out_len += need;
    s->nevents++;

    return NGX_OK;
}


/*
 * The scratch a stream needs for one payload: a match holds a whole
 * line, the aggregate's complete event the whole table.
 */

size_t
ngx_http_asyncx_ndjson_scratch_size(ngx_http_asyncx_ndjson_scan_t *s)
{
    size_t  size;

    size = s->max_line + 2 * NGX_HTTP_ASYNCX_NDJSON_EVENT_MAX;

    if (s->op == NGX_HTTP_ASYNCX_NDJSON_AGGREGATE) {
        size = ngx_max(size, (NGX_HTTP_ASYNCX_NDJSON_GROUPS_MAX + 2)
                             * NGX_HTTP_ASYNCX_NDJSON_ROW_MAX
                             + 2 * NGX_HTTP_ASYNCX_NDJSON_EVENT_MAX);
    }

    return size;
}


/* the transform's event: header room, records, one more record, "]}" */

size_t
ngx_http_asyncx_ndjson_batch_size(ngx_http_asyncx_ndjson_scan_t *s)
{
    return NGX_HTTP_ASYNCX_NDJSON_HEAD_MAX
           + NGX_HTTP_ASYNCX_NDJSON_BATCH_BUDGET
           + s->max_line
           + NGX_HTTP_ASYNCX_NDJSON_FIELDS_MAX
             * (NGX_HTTP_ASYNCX_NDJSON_NAME_MAX + 8)
           + 16;
}
