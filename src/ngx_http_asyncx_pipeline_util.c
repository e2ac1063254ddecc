
/*
 * Copyright (C) asyncx authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_pipeline_util.h"


static u_char ngx_http_asyncx_pipeline_path_char(u_char *p, size_t len,
    size_t *i);
static u_char ngx_http_asyncx_pipeline_hex(u_char ch);
static u_char *ngx_http_asyncx_pipeline_json_ws(u_char *p, u_char *last);
static u_char *ngx_http_asyncx_pipeline_json_skip_string(u_char *p,
    u_char *last);


/*
 * What a byte means to the walker over checked JSON, so that the bytes
 * that mean nothing (most of any text outside strings) are skipped one
 * look-up each: NESTING opens or closes a value (a string too), END ends
 * a scalar between members.
 */

#define NGX_HTTP_ASYNCX_JSON_NESTING  2
#define NGX_HTTP_ASYNCX_JSON_END      4

static const u_char  ngx_http_asyncx_pipeline_json_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 0, 0, 4, 0, 0,  /* 00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 10 */
    4, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0,  /* 20 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 30 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 40 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2, 0, 0,  /* 50 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 60 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2, 0, 0,  /* 70 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 80 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 90 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* a0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* b0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* c0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* d0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* e0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* f0 */
};


/*
 * A stage or call name becomes a JSON key and a token of the mock's
 * "fail=a,b" list: UTF-8, no spaces, controls or list/argument
 * separators, so "fail=shipping" can name it in a query string.
 */

ngx_int_t
ngx_http_asyncx_pipeline_check_name(u_char *p, size_t len)
{
    size_t  i;

    if (len == 0 || len > NGX_HTTP_ASYNCX_PIPELINE_NAME_MAX) {
        return NGX_ERROR;
    }

    for (i = 0; i < len; i++) {
        /* C0, DEL and C1 (U+0080..U+009F: C2 80..C2 9F) controls */
        if (p[i] <= 0x20 || p[i] == 0x7f
            || (p[i] == 0xc2 && i + 1 < len && p[i + 1] < 0xa0))
        {
            return NGX_ERROR;
        }

        switch (p[i]) {
        case '=': case ',': case '&': case '?': case '"': case '\\':
        case '/': case '#': case '%': case '+':
            return NGX_ERROR;
        }
    }

    return ngx_http_asyncx_utf8_valid(p, len) == NGX_OK ? NGX_OK : NGX_ERROR;
}


/*
 * The path's byte at *i, percent-decoded as ngx_unescape_uri() decodes
 * it (a '%' not followed by two hex digits is itself); *i moves past it.
 */

static u_char
ngx_http_asyncx_pipeline_path_char(u_char *p, size_t len, size_t *i)
{
    u_char  ch, hi, lo;

    ch = p[*i];
    (*i)++;

    if (ch != '%' || *i + 2 > len) {
        return ch;
    }

    hi = ngx_http_asyncx_pipeline_hex(p[*i]);
    lo = ngx_http_asyncx_pipeline_hex(p[*i + 1]);

    if (hi > 15 || lo > 15) {
        return ch;
    }

    *i += 2;

    return (u_char) (hi << 4 | lo);
}


/* a hex digit's value, or 16 */

static u_char
ngx_http_asyncx_pipeline_hex(u_char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }

    ch |= 0x20;

    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }

    return 16;
}


/*
 * A call target: an absolute path, optionally "?args".  Rejects what a
 * subrequest URI must not contain (spaces, controls, fragments) and dot
 * segments, which nginx would not normalize for a subrequest, also when
 * percent-encoded ("%2e%2e", "..%2f"): nginx decodes those in a URI it
 * checks at run time (ngx_http_parse_unsafe_uri()), so a fixed URI gets
 * the same policy at nginx -t, and an encoded NUL too, and a '\\' in
 * the path, plain or encoded.
 * *path_len is the length before '?'.
 */

ngx_int_t
ngx_http_asyncx_pipeline_check_uri(u_char *p, size_t len, size_t *path_len)
{
    size_t   i, chars, dots;
    u_char  *q, ch;

    if (len == 0 || p[0] != '/') {
        return NGX_ERROR;
    }

    q = NULL;

    for (i = 0; i < len; i++) {
        if (p[i] <= 0x20 || p[i] == 0x7f || p[i] == '#') {
            return NGX_ERROR;
        }

        if (p[i] == '?' && q == NULL) {
            q = p + i;
        }
    }

    *path_len = q ? (size_t) (q - p) : len;

    /* dot segments of the decoded path: a segment of one or two dots */
    chars = 0;
    dots = 0;

    for (i = 1; i <= *path_len; /* void */) {

        if (i == *path_len) {
            ch = '/';
            i++;

        } else {
            ch = ngx_http_asyncx_pipeline_path_char(p, *path_len, &i);
        }

        /* a separator to some backends, as at run time */
        if (ch == '\0' || ch == '\\') {
            return NGX_ERROR;
        }

        if (ch == '/') {
            if (chars == dots && (dots == 1 || dots == 2)) {
                return NGX_ERROR;
            }

            chars = 0;
            dots = 0;
            continue;
        }

        chars++;

        if (ch == '.') {
            dots++;
        }
    }

    return ngx_http_asyncx_utf8_valid(p, len) == NGX_OK ? NGX_OK : NGX_ERROR;
}


/*
 * A call target with variables ("/users/$arg_id?x=$arg_x"), at
 * configuration time: it starts with "/" or with a variable, has no
 * spaces, controls or fragment, and no "." or ".." segment made of
 * fixed text, plain or percent-encoded, nor an encoded NUL (a segment
 * with a variable is checked when evaluated).
 * *path_len is the length before the first '?'.
 */

ngx_int_t
ngx_http_asyncx_pipeline_check_uri_template(u_char *p, size_t len,
    size_t *path_len)
{
    u_char      ch;
    size_t      i, chars, dots;
    ngx_uint_t  var;

    if (len == 0 || (p[0] != '/' && p[0] != '$')) {
        return NGX_ERROR;
    }

    *path_len = len;

    for (i = 0; i < len; i++) {
        if (p[i] <= 0x20 || p[i] == 0x7f || p[i] == '#') {
            return NGX_ERROR;
        }

        if (p[i] == '?' && *path_len == len) {
            *path_len = i;
        }
    }

    /* as ngx_http_asyncx_pipeline_check_uri(), fixed segments only */
    chars = 0;
    dots = 0;
    var = 0;

    for (i = 0; i <= *path_len; /* void */) {

        if (i == *path_len) {
            ch = '/';
            i++;

        } else {
            var |= (p[i] == '$');
            ch = ngx_http_asyncx_pipeline_path_char(p, *path_len, &i);
        }

        /* a separator to some backends, as at run time */
        if (ch == '\0' || ch == '\\') {
            return NGX_ERROR;
        }

        if (ch == '/') {
            if (!var && chars == dots && (dots == 1 || dots == 2)) {
                return NGX_ERROR;
            }

            chars = 0;
            dots = 0;
            var = 0;
            continue;
        }

        chars++;

        if (ch == '.') {
            dots++;
        }
    }

    return ngx_http_asyncx_utf8_valid(p, len) == NGX_OK ? NGX_OK : NGX_ERROR;
}


/*
 * An evaluated call target, path or arguments part: no spaces, controls
 * or fragment; a path starts with "/" and has no '?' of its own (a
 * variable must not add arguments).  Dot segments and NUL bytes after
 * percent-decoding are ngx_http_parse_unsafe_uri()'s.
 */

ngx_int_t
ngx_http_asyncx_pipeline_check_uri_value(u_char *p, size_t len,
    ngx_uint_t path)
{
    size_t  i;

    if (path && (len == 0 || p[0] != '/')) {
        return NGX_ERROR;
    }

    for (i = 0; i < len; i++) {
        if (p[i] <= 0x20 || p[i] == 0x7f || p[i] == '#'
            || (path && p[i] == '?'))
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * An evaluated call path and what nginx percent-decoded it to
 * (ngx_http_parse_unsafe_uri(), as for SSI includes): the decoded path
 * is the call's URI, its $uri, and what a proxy sends.  Refused: a '%'
 * not followed by two hex digits (nginx's decoder drops or keeps such
 * bytes as it goes), an encoded '/' (a value would add segments), and
 * a decoded path with a '%' (a value encoded twice, "%252e": a proxy
 * that sends $uri as it is hands the backend an escape it decodes
 * again), a '\\' (a separator to some backends), a '?', '#', space or
 * control character (arguments, header
 * lines, split log lines), a "." or ".." segment, or bytes that are
 * not UTF-8.
 */

ngx_int_t
ngx_http_asyncx_pipeline_check_decoded(ngx_str_t *raw, ngx_str_t *decoded)
{
    u_char  *p, *last;
    size_t   i, seg;

    p = raw->data;
    last = raw->data + raw->len;

    for ( /* void */ ; p < last; p++) {
        if (*p != '%') {
            continue;
        }

        if (last - p < 3
            || ngx_http_asyncx_pipeline_hex(p[1]) > 15
            || ngx_http_asyncx_pipeline_hex(p[2]) > 15
            || (p[1] == '2' && (p[2] | 0x20) == 'f'))
        {
            return NGX_ERROR;
        }
    }

    if (ngx_http_asyncx_pipeline_check_uri_value(decoded->data, decoded->len,
                                                 1)
        != NGX_OK
        || ngx_strlchr(decoded->data, decoded->data + decoded->len, '%')
           != NULL
        || ngx_strlchr(decoded->data, decoded->data + decoded->len, '\\')
           != NULL)
    {
        return NGX_ERROR;
    }

    p = decoded->data;
    seg = 0;

    for (i = 1; i <= decoded->len; i++) {
        if (i == decoded->len || p[i] == '/') {
            if ((i - seg == 2 && p[seg + 1] == '.')
                || (i - seg == 3 && p[seg + 1] == '.' && p[seg + 2] == '.'))
            {
                return NGX_ERROR;
            }

            seg = i;
        }
    }

    return ngx_http_asyncx_utf8_valid(decoded->data, decoded->len) == NGX_OK
           ? NGX_OK : NGX_ERROR;
}


/* a header value for a call: no CR, LF or NUL to end its line */

ngx_int_t
ngx_http_asyncx_pipeline_check_header_value(u_char *p, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (p[i] == CR || p[i] == LF || p[i] == '\0') {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* an RFC 7230 token (header names, Server-Timing metric names) */

ngx_int_t
ngx_http_asyncx_pipeline_check_token(u_char *p, size_t len)
{
    u_char  ch;

    if (len == 0) {
        return NGX_ERROR;
    }

    while (len--) {
        ch = *p++;

        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
            || (ch >= '0' && ch <= '9'))
        {
            continue;
        }

        switch (ch) {
        case '!': case '#': case '$': case '%': case '&': case '\'':
        case '*': case '+': case '-': case '.': case '^': case '_':
        case '`': case '|': case '~':
            continue;
        }

        return NGX_ERROR;
    }

    return NGX_OK;
}


/* "a,b,c" contains name; "*" matches every name */

ngx_int_t
ngx_http_asyncx_pipeline_in_list(u_char *list, size_t len, u_char *name,
    size_t name_len)
{
    u_char  *p, *last, *comma;

    p = list;
    last = list + len;

    while (p < last) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        if ((comma - p == 1 && *p == '*')
            || ((size_t) (comma - p) == name_len
                && ngx_strncmp(p, name, name_len) == 0))
        {
            return 1;
        }

        p = comma + 1;
    }

    return 0;
}


/*
 * rc is what the subrequest was finalized with, status its response
 * status, overflow whether its answer did not fit the capture buffer.
 * rc >= 300 means nginx itself answered (no location, "return 404").
 */

ngx_http_asyncx_call_kind_e
ngx_http_asyncx_pipeline_classify(ngx_int_t rc, ngx_uint_t status,
    ngx_uint_t overflow)
{
    if (overflow) {
        return NGX_HTTP_ASYNCX_CALL_TOO_LARGE;
    }

    if (rc >= 300) {
        return NGX_HTTP_ASYNCX_CALL_STATUS;
    }

    if (rc == NGX_ERROR || status == 0) {
        return NGX_HTTP_ASYNCX_CALL_ERROR;
    }

    if (status >= 200 && status < 300) {
        return NGX_HTTP_ASYNCX_CALL_OK;
    }

    return NGX_HTTP_ASYNCX_CALL_STATUS;
}


/*
 * Failures an idempotent call is tried again for: the backend did not
 * answer in time, did not answer at all (connect error), or answered
 * 5xx (nginx's own 502/504 for an upstream that is down, too).
 */

ngx_uint_t
ngx_http_asyncx_pipeline_retryable(ngx_http_asyncx_call_kind_e kind,
    ngx_uint_t status)
{
    switch (kind) {

    case NGX_HTTP_ASYNCX_CALL_TIMEOUT:
    case NGX_HTTP_ASYNCX_CALL_ERROR:
        return 1;

    case NGX_HTTP_ASYNCX_CALL_STATUS:
        return status >= 500 && status <= 599;

    default:
        return 0;
    }
}


const char *
ngx_http_asyncx_pipeline_kind_name(ngx_http_asyncx_call_kind_e kind)
{
    static const char  *names[] = {
        "ok", "status", "timeout", "invalid_json", "too_large", "error",
        "invalid_uri", "abandoned"
    };

    if ((ngx_uint_t) kind >= sizeof(names) / sizeof(names[0])) {
        return "error";
    }

    return names[kind];
}


/*
 * The members of a JSON object already checked (ngx_http_asyncx_json_check
 * or _validate), one per call: *pos starts at the '{', *key is the
 * member's name as written (without its quotes, escapes kept), *value
 * its value as written.  NGX_OK, or NGX_DONE after the last member.  No
 * allocation, no decoding: the text is known to be valid, so strings are
 * skipped quote to quote and escapes pair by pair.  _json_key() and
 * _json_skip() are its two halves, for a reader that walks into a value
 * instead of over it.
 */

ngx_int_t
ngx_http_asyncx_pipeline_json_next(u_char **pos, u_char *last,
    ngx_str_t *key, ngx_str_t *value)
{
    u_char  *p;

    if (ngx_http_asyncx_pipeline_json_key(pos, last, key) != NGX_OK) {
        return NGX_DONE;
    }

    p = ngx_http_asyncx_pipeline_json_skip(*pos, last);

    value->data = *pos;
    value->len = p - *pos;
    *pos = ngx_http_asyncx_pipeline_json_ws(p, last);

    return NGX_OK;
}


/*
 * *pos at the object's '{' or after a member: NGX_OK with *pos at the
 * member's value, or NGX_DONE with *pos after the object's closing brace
 */

ngx_int_t
ngx_http_asyncx_pipeline_json_key(u_char **pos, u_char *last, ngx_str_t *key)
{
    u_char  *p, *q;

    p = ngx_http_asyncx_pipeline_json_ws(*pos, last);

    if (p < last && *p != '{' && *p != ',') {
        /* the closing brace after the last member */
        *pos = p + 1;
        return NGX_DONE;
    }

    if (p < last) {
        p = ngx_http_asyncx_pipeline_json_ws(p + 1, last);
    }

    if (p == last || *p != '"') {
        /* "{}" */
        *pos = (p == last) ? last : p + 1;
        return NGX_DONE;
    }

    q = ngx_http_asyncx_pipeline_json_skip_string(p, last);

    key->data = p + 1;
    key->len = q - p - 2;

    p = ngx_http_asyncx_pipeline_json_ws(q, last);
    *pos = ngx_http_asyncx_pipeline_json_ws(p + 1, last);   /* past ':' */

    return NGX_OK;
}


/* p at a value: the first byte after it */

u_char *
ngx_http_asyncx_pipeline_json_skip(u_char *p, u_char *last)
{
    ngx_uint_t  depth;

    if (p == last) {
        return p;
    }

    if (*p == '"') {
        return ngx_http_asyncx_pipeline_json_skip_string(p, last);
    }

    if (*p != '{' && *p != '[') {
        /* a number, true, false or null */

        while (p < last
               && !(ngx_http_asyncx_pipeline_json_class[*p]
                    & (NGX_HTTP_ASYNCX_JSON_NESTING|NGX_HTTP_ASYNCX_JSON_END)))
        {
            p++;
        }

        return p;
    }

    depth = 0;

    while (p < last) {

        if (!(ngx_http_asyncx_pipeline_json_class[*p]
              & NGX_HTTP_ASYNCX_JSON_NESTING))
        {
            p++;
            continue;
        }

        if (*p == '"') {
            p = ngx_http_asyncx_pipeline_json_skip_string(p, last);
            continue;
        }

        if (*p == '{' || *p == '[') {
            depth++;

        } else if (--depth == 0) {
            return p + 1;
        }

        p++;
    }

    return last;
}


static u_char *
ngx_http_asyncx_pipeline_json_ws(u_char *p, u_char *last)
{
    while (p < last
           && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    {
        p++;
    }

    return p;
}


/*
 * p is at the opening quote of a valid string: after its closing one.
 * Strings are most of a document's bytes, so eight bytes at a time are
 * tested for a quote or a backslash at once (a zero byte in the word
 * XORed with each); the lowest flag is always a real one (a false one
 * can only follow a real one), so a little-endian word says where.
 */

#define NGX_HTTP_ASYNCX_JSON_ONES   0x0101010101010101ULL
#define NGX_HTTP_ASYNCX_JSON_HIGHS  0x8080808080808080ULL
#define ngx_http_asyncx_json_has_zero(w)                                      \
    (((w) - NGX_HTTP_ASYNCX_JSON_ONES) & ~(w) & NGX_HTTP_ASYNCX_JSON_HIGHS)

static u_char *
ngx_http_asyncx_pipeline_json_skip_string(u_char *p, u_char *last)
{
    uint64_t  w, flags;

    for (p++; /* void */; p += 2) {

#if (NGX_HAVE_LITTLE_ENDIAN && defined __GNUC__)

        while (last - p >= 8) {
            ngx_memcpy(&w, p, 8);

            flags = ngx_http_asyncx_json_has_zero(
                        w ^ (NGX_HTTP_ASYNCX_JSON_ONES * '"'))
                    | ngx_http_asyncx_json_has_zero(
                        w ^ (NGX_HTTP_ASYNCX_JSON_ONES * '\\'));

            if (flags) {
                p += __builtin_ctzll(flags) / 8;
                goto found;
            }

            p += 8;
        }

#endif

        while (p < last && *p != '"' && *p != '\\') {
            p++;
        }

        if (p >= last) {
            return last;
        }

#if (NGX_HAVE_LITTLE_ENDIAN && defined __GNUC__)
    found:
#endif

        if (*p == '"') {
            return p + 1;
        }

        /* a backslash: the byte after it is escaped (the loop's p += 2) */
    }
}
