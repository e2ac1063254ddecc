
/*
 * Copyright (C) asyncx authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <string.h>

#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_ndjson.h"


/*
 * The JSON text of one NDJSON line (RFC 8259): validated in one pass,
 * with the top-level members the scan asks for located as written, and
 * the names and keyword a query gives.  A parser of its own rather than
 * the module's validator plus cJSON: one pass that also finds the
 * members, and no allocation per line.
 */


typedef struct {
    u_char                          *end;
    u_char                          *err;
    const char                      *reason;
} ngx_http_asyncx_ndjson_parser_t;


static u_char *ngx_http_asyncx_ndjson_ws(u_char *p, u_char *end);
static u_char *ngx_http_asyncx_ndjson_fail_at(
    ngx_http_asyncx_ndjson_parser_t *ps, u_char *p, const char *reason);
static u_char *ngx_http_asyncx_ndjson_string(
    ngx_http_asyncx_ndjson_parser_t *ps, u_char *p);
static u_char *ngx_http_asyncx_ndjson_hex4(
    ngx_http_asyncx_ndjson_parser_t *ps, u_char *p, uint32_t *cp);
static u_char *ngx_http_asyncx_ndjson_number(
    ngx_http_asyncx_ndjson_parser_t *ps, u_char *p);
static u_char *ngx_http_asyncx_ndjson_literal(
    ngx_http_asyncx_ndjson_parser_t *ps, u_char *p);
static u_char *ngx_http_asyncx_ndjson_name(
    ngx_http_asyncx_ndjson_parser_t *ps, u_char *p);
static u_char *ngx_http_asyncx_ndjson_value(
    ngx_http_asyncx_ndjson_parser_t *ps, u_char *p, ngx_uint_t *type);
static u_char *ngx_http_asyncx_ndjson_next(
    ngx_http_asyncx_ndjson_parser_t *ps, u_char *p, u_char *stack,
    ngx_uint_t *top);


/* JSON text (RFC 8259) */

static u_char *
ngx_http_asyncx_ndjson_ws(u_char *p, u_char *end)
{
    while (p < end
           && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
    {
        p++;
    }

    return p;
}


static u_char *
ngx_http_asyncx_ndjson_fail_at(ngx_http_asyncx_ndjson_parser_t *ps,
    u_char *p, const char *reason)
{
    ps->err = p;
    ps->reason = reason;

    return NULL;
}


static u_char *
ngx_http_asyncx_ndjson_hex4(ngx_http_asyncx_ndjson_parser_t *ps, u_char *p,
    uint32_t *cp)
{
    u_char      c;
    ngx_uint_t  i;

    if (ps->end - p < 4) {
        return ngx_http_asyncx_ndjson_fail_at(ps, p, "invalid \\u escape");
    }

    *cp = 0;

    for (i = 0; i < 4; i++) {
        c = p[i];

        if (c >= '0' && c <= '9') {
            c -= '0';

        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            c = (c | 0x20) - 'a' + 10;

        } else {
            return ngx_http_asyncx_ndjson_fail_at(ps, p + i,
                                                  "invalid \\u escape");
        }

        *cp = (*cp << 4) | c;
    }

    return p + 4;
}


/*
 * p at the opening quote: past the closing one.  Raw control bytes,
 * bad escapes, unpaired surrogate escapes and invalid UTF-8 are refused.
 */

static u_char *
ngx_http_asyncx_ndjson_string(ngx_http_asyncx_ndjson_parser_t *ps, u_char *p)
{
    u_char      c, *end;
    size_t      n;
    uint32_t    cp;

    end = ps->end;
    p++;

    for ( ;; ) {

        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
        {
            p++;
        }

        if (p == end) {
            return ngx_http_asyncx_ndjson_fail_at(ps, p,
                                                  "unterminated string");
        }

        c = *p;

        if (c == '"') {
            return p + 1;
        }

        if (c < 0x20) {
            return ngx_http_asyncx_ndjson_fail_at(ps, p, "control character "
                                                  "in a string");
        }

        if (c == '\\') {
            if (p + 1 == end) {
                return ngx_http_asyncx_ndjson_fail_at(ps, p,
                                                      "unterminated string");
            }

            switch (p[1]) {

            case '"': case '\\': case '/': case 'b': case 'f': case 'n':
            case 'r': case 't':
                p += 2;
                continue;

            case 'u':
                p = ngx_http_asyncx_ndjson_hex4(ps, p + 2, &cp);
                if (p == NULL) {
                    return NULL;
                }

                if (cp >= 0xdc00 && cp <= 0xdfff) {
                    return ngx_http_asyncx_ndjson_fail_at(ps, p - 6,
                                                "unpaired surrogate escape");
                }

                if (cp >= 0xd800 && cp <= 0xdbff) {
                    if (end - p < 6 || p[0] != '\\' || p[1] != 'u') {
                        return ngx_http_asyncx_ndjson_fail_at(ps, p - 6,
                                                "unpaired surrogate escape");
                    }

                    p = ngx_http_asyncx_ndjson_hex4(ps, p + 2, &cp);
                    if (p == NULL) {
                        return NULL;
                    }

                    if (cp < 0xdc00 || cp > 0xdfff) {
                        return ngx_http_asyncx_ndjson_fail_at(ps, p - 12,
                                                "unpaired surrogate escape");
                    }
                }

                continue;

            default:
                return ngx_http_asyncx_ndjson_fail_at(ps, p,
                                                      "invalid escape");
            }
        }

        /* one UTF-8 sequence, shortest form, no surrogates */

        n = ngx_http_asyncx_utf8_seq(p, end - p);

        if (n == 0) {
            return ngx_http_asyncx_ndjson_fail_at(ps, p, "invalid UTF-8");
        }

        p += n;
    }
}


static u_char *
ngx_http_asyncx_ndjson_number(ngx_http_asyncx_ndjson_parser_t *ps, u_char *p)
{
    u_char  *end;

    end = ps->end;

    if (*p == '-') {
        p++;
    }

    if (p < end && *p == '0') {
        p++;

    } else if (p < end && *p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }

    } else {
        return ngx_http_asyncx_ndjson_fail_at(ps, p, "invalid number");
    }

    if (p < end && *p == '.') {
        p++;

        if (p == end || *p < '0' || *p > '9') {
            return ngx_http_asyncx_ndjson_fail_at(ps, p, "invalid number");
        }

        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;

        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }

        if (p == end || *p < '0' || *p > '9') {
            return ngx_http_asyncx_ndjson_fail_at(ps, p, "invalid number");
        }

        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    return p;
}


static u_char *
ngx_http_asyncx_ndjson_literal(ngx_http_asyncx_ndjson_parser_t *ps, u_char *p)
{
    size_t   n;
    u_char  *lit;

    switch (*p) {

    case 't':
        lit = (u_char *) "true";
        n = 4;
        break;

    case 'f':
        lit = (u_char *) "false";
        n = 5;
        break;

    default: /* 'n' */
        lit = (u_char *) "null";
        n = 4;
        break;
    }

    if ((size_t) (ps->end - p) < n || ngx_memcmp(p, lit, n) != 0) {
        return ngx_http_asyncx_ndjson_fail_at(ps, p, "unexpected character");
    }

    return p + n;
}


/* a member name and its colon: p at the name's quote, back at the value */

static u_char *
ngx_http_asyncx_ndjson_name(ngx_http_asyncx_ndjson_parser_t *ps, u_char *p)
{
    if (p == ps->end || *p != '"') {
        return ngx_http_asyncx_ndjson_fail_at(ps, p, "expected a member "
                                              "name");
    }

    p = ngx_http_asyncx_ndjson_string(ps, p);
    if (p == NULL) {
        return NULL;
    }

    p = ngx_http_asyncx_ndjson_ws(p, ps->end);

    if (p == ps->end || *p != ':') {
        return ngx_http_asyncx_ndjson_fail_at(ps, p, "expected ':'");
    }

    return ngx_http_asyncx_ndjson_ws(p + 1, ps->end);
}


/*
 * One value at p (a member's, below the line's object): past it.
 * Iterative, with the open containers on a small stack.
 */

static u_char *
ngx_http_asyncx_ndjson_value(ngx_http_asyncx_ndjson_parser_t *ps, u_char *p,
    ngx_uint_t *type)
{
    u_char      stack[NGX_HTTP_ASYNCX_NDJSON_DEPTH_MAX], close;
    u_char     *end;
    ngx_uint_t  top, t;

    end = ps->end;
    top = 0;

    for ( ;; ) {

        p = ngx_http_asyncx_ndjson_ws(p, end);

        if (p == end) {
            return ngx_http_asyncx_ndjson_fail_at(ps, p, "unexpected end");
        }

        switch (*p) {

        case '{':
        case '[':
            /* the line's object is one level already */
            if (top + 1 >= NGX_HTTP_ASYNCX_NDJSON_DEPTH_MAX) {
                return ngx_http_asyncx_ndjson_fail_at(ps, p, "nested too "
                                                      "deep");
            }

            t = (*p == '{') ? NGX_HTTP_ASYNCX_NDJSON_OBJECT
                            : NGX_HTTP_ASYNCX_NDJSON_ARRAY;
            close = (*p == '{') ? '}' : ']';
            stack[top++] = close;

            if (top == 1) {
                *type = t;
            }

            p = ngx_http_asyncx_ndjson_ws(p + 1, end);

            if (p < end && *p == close) {
                p++;
                top--;
                break;
            }

            if (close == '}') {
                p = ngx_http_asyncx_ndjson_name(ps, p);
                if (p == NULL) {
                    return NULL;
                }
            }

            continue;

        case '"':
            t = NGX_HTTP_ASYNCX_NDJSON_STRING;
            p = ngx_http_asyncx_ndjson_string(ps, p);
            break;

        case 't':
        case 'f':
        case 'n':
            t = NGX_HTTP_ASYNCX_NDJSON_LITERAL;
            p = ngx_http_asyncx_ndjson_literal(ps, p);
            break;

        default:
            t = NGX_HTTP_ASYNCX_NDJSON_NUMBER;

            if (*p != '-' && (*p < '0' || *p > '9')) {
                return ngx_http_asyncx_ndjson_fail_at(ps, p, "unexpected "
                                                      "character");
            }

            p = ngx_http_asyncx_ndjson_number(ps, p);
            break;
        }

        if (p == NULL) {
            return NULL;
        }

        if (top == 0) {
            /* a scalar member, or a container that closed at once */
            if (*type == NGX_HTTP_ASYNCX_NDJSON_ABSENT) {
                *type = t;
            }

            return p;
        }

        p = ngx_http_asyncx_ndjson_next(ps, p, stack, &top);

        if (p == NULL || top == 0) {
            return p;
        }
    }
}


/*
 * After an element of the open containers: past the comma (and the next
 * member's name) to the next element, or past the closing brackets;
 * *top is 0 when the member's value is complete.
 */

static u_char *
ngx_http_asyncx_ndjson_next(ngx_http_asyncx_ndjson_parser_t *ps, u_char *p,
    u_char *stack, ngx_uint_t *top)
{
    for ( ;; ) {
        p = ngx_http_asyncx_ndjson_ws(p, ps->end);

        if (p == ps->end) {
            return ngx_http_asyncx_ndjson_fail_at(ps, p, "unexpected end");
        }

        if (*p == ',') {
            p = ngx_http_asyncx_ndjson_ws(p + 1, ps->end);

            if (stack[*top - 1] == '}') {
                return ngx_http_asyncx_ndjson_name(ps, p);
            }

            return p;
        }

        if (*p != stack[*top - 1]) {
            return ngx_http_asyncx_ndjson_fail_at(ps, p,
                       stack[*top - 1] == '}' ? "expected ',' or '}'"
                                              : "expected ',' or ']'");
        }

        p++;

        if (--*top == 0) {
            return p;
        }
    }
}


/*
 * The line must be one JSON object (whitespace around it allowed).
 * values[i] gets the value of the member named names[i] as written (the
 * last one if a name repeats, as JSON.parse and Python do), or type
 * ABSENT.  Names are compared as written in the line, escapes included.
 * NGX_OK, or NGX_DECLINED with the byte offset and the reason.
 */

ngx_int_t
ngx_http_asyncx_ndjson_parse(u_char *start, size_t len, ngx_str_t *names,
    ngx_uint_t n, ngx_http_asyncx_ndjson_value_t *values, size_t *err_at,
    const char **reason)
{
    u_char                           *p, *key, *v;
    size_t                            key_len;
    ngx_uint_t                        i, type;
    ngx_http_asyncx_ndjson_parser_t   ps;

    ps.end = start + len;
    ps.err = start;
    ps.reason = "invalid";

    for (i = 0; i < n; i++) {
        values[i].data = NULL;
        values[i].len = 0;
        values[i].type = NGX_HTTP_ASYNCX_NDJSON_ABSENT;
    }

    p = ngx_http_asyncx_ndjson_ws(start, ps.end);

    if (p == ps.end) {
        (void) ngx_http_asyncx_ndjson_fail_at(&ps, p, "empty line");
        goto failed;
    }

    if (*p != '{') {
        (void) ngx_http_asyncx_ndjson_fail_at(&ps, p, "not a JSON object");
        goto failed;
    }

    p = ngx_http_asyncx_ndjson_ws(p + 1, ps.end);

    if (p < ps.end && *p == '}') {
        p++;
        goto trailing;
    }

    for ( ;; ) {
        if (p == ps.end || *p != '"') {
            (void) ngx_http_asyncx_ndjson_fail_at(&ps, p, "expected a member "
                                                  "name");
            goto failed;
        }

        key = p + 1;

        p = ngx_http_asyncx_ndjson_string(&ps, p);
        if (p == NULL) {
            goto failed;
        }

        key_len = p - 1 - key;

        p = ngx_http_asyncx_ndjson_ws(p, ps.end);

        if (p == ps.end || *p != ':') {
            (void) ngx_http_asyncx_ndjson_fail_at(&ps, p, "expected ':'");
            goto failed;
        }

        p = ngx_http_asyncx_ndjson_ws(p + 1, ps.end);

        v = p;
        type = NGX_HTTP_ASYNCX_NDJSON_ABSENT;

        p = ngx_http_asyncx_ndjson_value(&ps, p, &type);
        if (p == NULL) {
            goto failed;
        }

        for (i = 0; i < n; i++) {
            if (names[i].len == key_len
                && ngx_memcmp(names[i].data, key, key_len) == 0)
            {
                values[i].data = v;
                values[i].len = p - v;
                values[i].type = type;
            }
        }

        p = ngx_http_asyncx_ndjson_ws(p, ps.end);

        if (p < ps.end && *p == ',') {
            p = ngx_http_asyncx_ndjson_ws(p + 1, ps.end);
            continue;
        }

        if (p < ps.end && *p == '}') {
            p++;
            break;
        }

        (void) ngx_http_asyncx_ndjson_fail_at(&ps, p,
                                              p == ps.end ? "unexpected end"
                                              : "expected ',' or '}'");
        goto failed;
    }

trailing:

    p = ngx_http_asyncx_ndjson_ws(p, ps.end);

    if (p != ps.end) {
        (void) ngx_http_asyncx_ndjson_fail_at(&ps, p, "data after the object");
        goto failed;
    }

    return NGX_OK;

failed:

    *err_at = ps.err - start;
    *reason = ps.reason;

    return NGX_DECLINED;
}


/*
 * A field name of the configuration or the request: 1..128 bytes of
 * UTF-8 without control characters, quotes or backslashes (so that it
 * is also a JSON name as written), and without ',' or ':' (the list
 * separators).  NGX_OK or NGX_DECLINED.
 */

ngx_int_t
ngx_http_asyncx_ndjson_check_name(u_char *p, size_t len)
{
    size_t  i;

    if (len == 0 || len > NGX_HTTP_ASYNCX_NDJSON_NAME_MAX) {
        return NGX_DECLINED;
    }

    for (i = 0; i < len; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f || p[i] == '"' || p[i] == '\\'
            || p[i] == ',' || p[i] == ':')
        {
            return NGX_DECLINED;
        }
    }

    return ngx_http_asyncx_utf8_valid(p, len) == NGX_OK ? NGX_OK
                                                         : NGX_DECLINED;
}


/* "name[:alias],...": at most FIELDS_MAX, names and aliases unique */

ngx_int_t
ngx_http_asyncx_ndjson_parse_fields(u_char *p, size_t len,
    ngx_http_asyncx_ndjson_field_t *fields, ngx_uint_t *n,
    const char **reason)
{
    u_char                          *end, *item, *colon;
    ngx_uint_t                       i, k;
    ngx_http_asyncx_ndjson_field_t  *f;

    end = p + len;
    k = 0;

    for ( ;; ) {
        item = p;

        while (p < end && *p != ',') {
            p++;
        }

        if (k == NGX_HTTP_ASYNCX_NDJSON_FIELDS_MAX) {
            *reason = "more than 32 fields";
            return NGX_DECLINED;
        }

        f = &fields[k];

        colon = memchr(item, ':', p - item);

        f->name.data = item;
        f->name.len = (colon ? colon : p) - item;
        f->alias = f->name;

        if (colon) {
            f->alias.data = colon + 1;
            f->alias.len = p - (colon + 1);
        }

        if (ngx_http_asyncx_ndjson_check_name(f->name.data, f->name.len)
            != NGX_OK
            || ngx_http_asyncx_ndjson_check_name(f->alias.data, f->alias.len)
               != NGX_OK)
        {
            *reason = "a field name must be 1 to 128 bytes of UTF-8 without "
                      "control characters, quotes, backslashes, ',' or ':'";
            return NGX_DECLINED;
        }

        for (i = 0; i < k; i++) {
            if ((fields[i].name.len == f->name.len
                 && ngx_memcmp(fields[i].name.data, f->name.data,
                               f->name.len) == 0)
                || (fields[i].alias.len == f->alias.len
                    && ngx_memcmp(fields[i].alias.data, f->alias.data,
                                  f->alias.len) == 0))
            {
                *reason = "a field or output name is given twice";
                return NGX_DECLINED;
            }
        }

        k++;

        if (p == end) {
            break;
        }

        p++;
    }

    *n = k;

    return NGX_OK;
}


/* kw is lower-case when icase (ASCII letters only are folded) */

u_char *
ngx_http_asyncx_ndjson_find(u_char *p, size_t len, u_char *kw, size_t n,
    ngx_uint_t icase)
{
    u_char  *last;
    size_t   i;

    if (n == 0) {
        return p;
    }

    if (n > len) {
        return NULL;
    }

    if (!icase) {
        return memmem(p, len, kw, n);
    }

    last = p + len - n;

    if (kw[0] < 'a' || kw[0] > 'z') {
        /* no case to fold in the first byte: memchr finds candidates */
        while (p <= last) {
            p = memchr(p, kw[0], last - p + 1);
            if (p == NULL) {
                return NULL;
            }

            for (i = 1; i < n && ngx_tolower(p[i]) == kw[i]; i++) {
                /* void */
            }

            if (i == n) {
                return p;
            }

            p++;
        }

        return NULL;
    }

    for ( /* void */ ; p <= last; p++) {
        if ((*p | 0x20) != kw[0]) {
            continue;
        }

        for (i = 1; i < n && ngx_tolower(p[i]) == kw[i]; i++) {
            /* void */
        }

        if (i == n) {
            return p;
        }
    }

    return NULL;
}
