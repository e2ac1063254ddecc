
/*
 * Copyright (C) asyncx authors
 *
 * The one JSON policy of the module (see ngx_http_asyncx_json.h): a
 * strict RFC 8259 validator that allocates nothing and says where and
 * why it stopped, and the one entry point that turns a client's body
 * into a cJSON tree.  cJSON alone accepts raw control characters in
 * strings, never checks UTF-8 and cuts strings at an escaped NUL, so
 * nothing reaches it unchecked.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_json.h"


static u_char *ngx_http_asyncx_json_ws(u_char *p, u_char *last);
static u_char *ngx_http_asyncx_json_string(u_char *p, u_char *last,
    u_char **nul, ngx_http_asyncx_json_info_t *info);
static ngx_int_t ngx_http_asyncx_json_hex4(u_char *p, u_char *last,
    uint32_t *cu);
static u_char *ngx_http_asyncx_json_number(u_char *p, u_char *last,
    u_char **bad);
static u_char *ngx_http_asyncx_json_literal(u_char *p, u_char *last,
    const char *word, u_char **bad);
static u_char *ngx_http_asyncx_json_utf8_refused(u_char *p, u_char *last);
static u_char *ngx_http_asyncx_json_hex_refused(u_char *p, u_char *last);


/*
 * The bytes a string's text is mostly made of: printable ASCII other
 * than '"' and '\\'.  The validator skips runs of them one table look-up
 * a byte and decides everything else (ends, escapes, controls, UTF-8)
 * byte by byte.
 */

static const u_char  ngx_http_asyncx_json_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 10 */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  /* 20 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  /* 30 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  /* 40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,  /* 50 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  /* 60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  /* 70 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 80 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 90 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* a0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* b0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* c0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* d0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* e0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* f0 */
};


static u_char *
ngx_http_asyncx_json_ws(u_char *p, u_char *last)
{
    while (p < last
           && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    {
        p++;
    }

    return p;
}


/* "\uXXXX" at p ('\\'): NGX_OK with the code unit */

static ngx_int_t
ngx_http_asyncx_json_hex4(u_char *p, u_char *last, uint32_t *cu)
{
    u_char      c;
    ngx_uint_t  i;

    if (last - p < 6 || p[0] != '\\' || p[1] != 'u') {
        return NGX_DECLINED;
    }

    *cu = 0;

    for (i = 2; i < 6; i++) {
        c = p[i];

        if (c >= '0' && c <= '9') {
            *cu = *cu << 4 | (c - '0');

        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            *cu = *cu << 4 | ((c | 0x20) - 'a' + 10);

        } else {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * A "\u" escape at p ('\\') whose four hex digits hex4() refused: the
 * first byte that is not one of them, last when the input ends first.
 */

static u_char *
ngx_http_asyncx_json_hex_refused(u_char *p, u_char *last)
{
    u_char  *end;

    end = (last - p > 6) ? p + 6 : last;

    for (p += 2;
         p < end
         && ((*p >= '0' && *p <= '9')
             || ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'f'));
         p++)
    { /* void */ }

    return p;
}


/*
 * p is at '"'; returns the position after the closing quote, or NULL
 * with info->offset (relative to p) and info->reason for a policy
 * refusal set.  The first "\u0000" seen is noted in *nul.
 */

static u_char *
ngx_http_asyncx_json_string(u_char *p, u_char *last, u_char **nul,
    ngx_http_asyncx_json_info_t *info)
{
    u_char    *start;
    size_t     n;
    uint32_t   cu, low;

    start = p;

    for (p++; p < last; /* void */) {

        if (ngx_http_asyncx_json_plain[*p]) {
            p++;
            continue;
        }

        if (*p == '"') {
            return p + 1;
        }

        if (*p < 0x20) {
            info->reason = "control character in a string";
            goto failed;
        }

        if (*p >= 0x80) {

            /*
             * A three-byte character (most scripts beyond Latin: the
             * demo's Korean) in line, as ngx_http_asyncx_utf8_seq()
             * decides it: no overlong form, no surrogate.
             */
            if ((*p & 0xf0) == 0xe0 && last - p >= 3
                && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80
                && (*p != 0xe0 || p[1] >= 0xa0)
                && (*p != 0xed || p[1] < 0xa0))
            {
                p += 3;
                continue;
            }

            n = ngx_http_asyncx_utf8_seq(p, last - p);

            if (n == 0) {
                info->reason = "invalid UTF-8";
                p = ngx_http_asyncx_json_utf8_refused(p, last);
                goto failed;
            }

            p += n;
            continue;
        }

        if (*p != '\\') {
            p++;
            continue;
        }

        if (p + 1 == last) {
            p++;
            goto failed;
        }

        switch (p[1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n':
        case 'r': case 't':
            p += 2;
            continue;

        case 'u':
            break;

        default:
            /* the letter after the backslash is the byte refused */
            p++;
            goto failed;
        }

        if (ngx_http_asyncx_json_hex4(p, last, &cu) != NGX_OK) {
            p = ngx_http_asyncx_json_hex_refused(p, last);
            goto failed;
        }

        if (cu == 0 && *nul == NULL) {
            *nul = p;
        }

        if (cu >= 0xdc00 && cu <= 0xdfff) {
            info->reason = "unpaired UTF-16 surrogate in a string";
            goto failed;
        }

        if (cu >= 0xd800 && cu <= 0xdbff) {
            /* the first byte refused after the high surrogate's escape */
            p += 6;

            if (p == last || *p != '\\') {
                info->reason = "unpaired UTF-16 surrogate in a string";
                goto failed;
            }

            if (p + 1 == last || p[1] != 'u') {
                p++;
                goto failed;
            }

            if (ngx_http_asyncx_json_hex4(p, last, &low) != NGX_OK) {
                p = ngx_http_asyncx_json_hex_refused(p, last);
                goto failed;
            }

            if (low < 0xdc00 || low > 0xdfff) {
                info->reason = "unpaired UTF-16 surrogate in a string";
                goto failed;
            }
        }

        p += 6;
    }

    /* no closing quote */

failed:

    info->offset = p - start;   /* made absolute by the caller */

    return NULL;
}


/*
 * An invalid UTF-8 sequence at p: the first byte refused, the lead byte
 * itself or the first that cannot continue it (Unicode's "maximal
 * subpart"), last when the input ends first.
 */

static u_char *
ngx_http_asyncx_json_utf8_refused(u_char *p, u_char *last)
{
    u_char      c, lo, hi;
    ngx_uint_t  n, i;

    c = *p;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 1;

    } else if (c >= 0xe0 && c <= 0xef) {
        n = 2;

    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 3;

    } else {
        return p;
    }

    /* the second byte's range excludes overlongs, surrogates, > U+10FFFF */
    lo = (c == 0xe0) ? 0xa0 : (c == 0xf0) ? 0x90 : 0x80;
    hi = (c == 0xed) ? 0x9f : (c == 0xf4) ? 0x8f : 0xbf;

    for (i = 1; i <= n; i++) {
        if (p + i == last) {
            return last;
        }

        if (p[i] < lo || p[i] > hi) {
            return p + i;
        }

        lo = 0x80;
        hi = 0xbf;
    }

    /* (not reached: the sequence was valid) */
    return p;
}


/*
 * A number at p: the position after it, or NULL with *bad at the first
 * byte refused (where a digit was due).
 */

static u_char *
ngx_http_asyncx_json_number(u_char *p, u_char *last, u_char **bad)
{
    u_char  *d;

    *bad = p;

    if (p < last && *p == '-') {
        p++;
    }

    if (p < last && *p == '0') {
        p++;

    } else if (p < last && *p >= '1' && *p <= '9') {
        while (p < last && *p >= '0' && *p <= '9') {
            p++;
        }

    } else {
        *bad = p;
        return NULL;
    }

    if (p < last && *p == '.') {
        for (d = ++p; p < last && *p >= '0' && *p <= '9'; p++) { /* void */ }

        if (p == d) {
            *bad = p;
            return NULL;
        }
    }

    if (p < last && (*p == 'e' || *p == 'E')) {
        p++;

        if (p < last && (*p == '+' || *p == '-')) {
            p++;
        }

        for (d = p; p < last && *p >= '0' && *p <= '9'; p++) { /* void */ }

        if (p == d) {
            *bad = p;
            return NULL;
        }
    }

    return p;
}


/* "true", "false" or "null" at p: as ngx_http_asyncx_json_number() */

static u_char *
ngx_http_asyncx_json_literal(u_char *p, u_char *last, const char *word,
    u_char **bad)
{
    for ( /* void */ ; *word; word++, p++) {
        if (p == last || *p != (u_char) *word) {
            *bad = p;
            return NULL;
        }
    }

    return p;
}


/*
 * NGX_OK if p[0..len) is exactly one JSON value under the policy, with
 * info->start and info->end bounding it; NGX_ERROR otherwise, with
 * info->offset at the first byte refused and info->reason set for the
 * policy's own refusals.  With NGX_HTTP_ASYNCX_JSON_NO_NUL, a valid
 * document with U+0000 in a string is NGX_DECLINED, info->nul set and
 * info->offset at its "\u0000".  It allocates nothing: the pipeline
 * keeps answers as the text they came in and only splices texts.
 *
 * One function: one state machine over the input with an explicit stack;
 * split, the states would share the stack through globals or a struct per
 * call.
 */

ngx_int_t
ngx_http_asyncx_json_validate(u_char *p, size_t len, ngx_uint_t flags,
    ngx_http_asyncx_json_info_t *info)
{
    u_char      *first, *last, *s, *nul, *bad;
    u_char       stack[NGX_HTTP_ASYNCX_JSON_MAX_DEPTH];
    ngx_uint_t   depth, max_depth;
    enum {
        sw_value = 0,
        sw_key,
        sw_after
    } state;

    first = p;
    last = p + len;

    info->start = NULL;
    info->end = NULL;
    info->offset = 0;
    info->reason = NULL;
    info->nomem = 0;
    info->nul = 0;

    nul = NULL;

    p = ngx_http_asyncx_json_ws(p, last);
    info->start = p;

    depth = 0;
    /* at most 255 levels kept for the wrapping */
    max_depth = NGX_HTTP_ASYNCX_JSON_MAX_DEPTH - ((flags >> 8) & 0xff);
    state = sw_value;

    for ( ;; ) {

        switch (state) {

        case sw_value:

            if (p == last) {
                goto failed;
            }

            switch (*p) {

            case '{':
            case '[':
                if (depth == max_depth) {
                    info->reason = (max_depth == NGX_HTTP_ASYNCX_JSON_MAX_DEPTH)
                                   ? "nested deeper than 1000 levels"
                                   : "nested deeper than the module can "
                                     "wrap it (1000 levels in all)";
                    goto failed;
                }

                stack[depth++] = *p;
                p = ngx_http_asyncx_json_ws(p + 1, last);

                if (p < last && *p == (stack[depth - 1] == '{' ? '}' : ']')) {
                    depth--;
                    p++;
                    state = sw_after;

                } else {
                    state = (stack[depth - 1] == '{') ? sw_key : sw_value;
                }

                continue;

            case '"':
                s = p;
                p = ngx_http_asyncx_json_string(p, last, &nul, info);

                if (p == NULL) {
                    p = s + info->offset;
                    goto failed;
                }

                state = sw_after;
                continue;

            case 't':
                s = ngx_http_asyncx_json_literal(p, last, "true", &bad);
                break;

            case 'f':
                s = ngx_http_asyncx_json_literal(p, last, "false", &bad);
                break;

            case 'n':
                s = ngx_http_asyncx_json_literal(p, last, "null", &bad);
                break;

            default:
                s = ngx_http_asyncx_json_number(p, last, &bad);
            }

            if (s == NULL) {
                p = bad;
                goto failed;
            }

            p = s;
            state = sw_after;
            continue;

        case sw_key:

            if (p == last || *p != '"') {
                goto failed;
            }

            s = p;
            p = ngx_http_asyncx_json_string(p, last, &nul, info);

            if (p == NULL) {
                p = s + info->offset;
                goto failed;
            }

            p = ngx_http_asyncx_json_ws(p, last);

            if (p == last || *p != ':') {
                goto failed;
            }

            p = ngx_http_asyncx_json_ws(p + 1, last);
            state = sw_value;
            continue;

        case sw_after:

            if (depth == 0) {
                info->end = p;
                p = ngx_http_asyncx_json_ws(p, last);

                if (p != last) {
                    info->reason = "data after the document";
                    goto failed;
                }

                if (nul && (flags & NGX_HTTP_ASYNCX_JSON_NO_NUL)) {
                    info->offset = nul - first;
                    info->reason = "U+0000 (\\u0000) in a string";
                    info->nul = 1;
                    return NGX_DECLINED;
                }

                return NGX_OK;
            }

            p = ngx_http_asyncx_json_ws(p, last);

            if (p == last) {
                goto failed;
            }

            if (*p == ',') {
                p = ngx_http_asyncx_json_ws(p + 1, last);
                state = (stack[depth - 1] == '{') ? sw_key : sw_value;
                continue;
            }

            if (*p != (stack[depth - 1] == '{' ? '}' : ']')) {
                goto failed;
            }

            depth--;
            p++;
            continue;
        }
    }

failed:

    info->offset = p - first;

    return NGX_ERROR;
}


/*
 * The validator's first interface, for text the module splices as it
 * is: NGX_OK with the value's bounds, or NGX_ERROR.
 */

ngx_int_t
ngx_http_asyncx_json_check(u_char *p, size_t len, u_char **start,
    u_char **end)
{
    ngx_http_asyncx_json_info_t  info;

    if (ngx_http_asyncx_json_validate(p, len, 0, &info) != NGX_OK) {
        return NGX_ERROR;
    }

    *start = info.start;
    *end = info.end;

    return NGX_OK;
}


/*
 * The one way a client's JSON becomes a cJSON tree: checked first, so
 * every string in the tree is valid UTF-8, and with
 * NGX_HTTP_ASYNCX_JSON_NO_NUL as long as strlen() says.  NULL with info
 * set when refused (info->nul for U+0000, info->nomem).  No pools, no
 * logging: thread tasks call it.  cJSON's own error pointer is a static
 * that threads would race on and is never read.
 */

cJSON *
ngx_http_asyncx_json_parse(u_char *p, size_t len, ngx_uint_t flags,
    ngx_http_asyncx_json_info_t *info)
{
    cJSON  *root;

    if (ngx_http_asyncx_json_validate(p, len, flags, info) != NGX_OK) {
        return NULL;
    }

    root = cJSON_ParseWithLength((char *) info->start,
                                 info->end - info->start);

    if (root == NULL) {
        info->nomem = 1;
    }

    return root;
}


/*
 * A member of an object, or *item NULL when there is none.  NGX_DECLINED
 * when the name appears twice: cJSON would take the first, other parsers
 * the last, so the document could mean one thing to a proxy in front
 * and another here (RFC 8259, section 4).
 */

ngx_int_t
ngx_http_asyncx_json_member(cJSON *object, const char *name, cJSON **item)
{
    cJSON  *child;

    *item = NULL;

    for (child = object->child; child; child = child->next) {
        if (child->string == NULL || ngx_strcmp(child->string, name) != 0) {
            continue;
        }

        if (*item) {
            return NGX_DECLINED;
        }

        *item = child;
    }

    return NGX_OK;
}
