
/*
 * Copyright (C) asyncx authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_offload_util.h"


static const u_char  ngx_http_asyncx_b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";


/* standard alphabet, always padded: what every base64 decoder accepts */

u_char *
ngx_http_asyncx_b64_encode(u_char *dst, const u_char *src, size_t n)
{
    const u_char  *a = ngx_http_asyncx_b64_alphabet;

    while (n >= 3) {
        *dst++ = a[src[0] >> 2];
        *dst++ = a[((src[0] & 0x03) << 4) | (src[1] >> 4)];
        *dst++ = a[((src[1] & 0x0f) << 2) | (src[2] >> 6)];
        *dst++ = a[src[2] & 0x3f];
        src += 3;
        n -= 3;
    }

    if (n) {
        *dst++ = a[src[0] >> 2];

        if (n == 1) {
            *dst++ = a[(src[0] & 0x03) << 4];
            *dst++ = '=';

        } else {
            *dst++ = a[((src[0] & 0x03) << 4) | (src[1] >> 4)];
            *dst++ = a[(src[1] & 0x0f) << 2];
        }

        *dst++ = '=';
    }

    return dst;
}


static ngx_int_t
ngx_http_asyncx_b64_value(u_char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }

    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }

    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }

    if (c == '+') {
        return 62;
    }

    if (c == '/') {
        return 63;
    }

    return -1;
}


/*
 * Strict decoding, so that one hash has exactly one spelling: padded
 * input only, padding only at the end, unused trailing bits zero.
 * NGX_DECLINED for malformed input or more than max bytes of output.
 */

ngx_int_t
ngx_http_asyncx_b64_decode(u_char *dst, size_t max, size_t *n,
    const u_char *src, size_t len)
{
    size_t     i, pad, out;
    uint32_t   acc;
    ngx_int_t  v;

    if (len == 0 || len % 4) {
        return NGX_DECLINED;
    }

    pad = 0;

    if (src[len - 1] == '=') {
        pad = (src[len - 2] == '=') ? 2 : 1;
    }

    out = len / 4 * 3 - pad;

    if (out > max) {
        return NGX_DECLINED;
    }

    acc = 0;

    for (i = 0; i < len - pad; i++) {
        v = ngx_http_asyncx_b64_value(src[i]);
        if (v < 0) {
            return NGX_DECLINED;
        }

        acc = (acc << 6) | (uint32_t) v;

        if (i % 4 == 3) {
            *dst++ = (u_char) (acc >> 16);
            *dst++ = (u_char) (acc >> 8);
            *dst++ = (u_char) acc;
            acc = 0;
        }
    }

    if (pad == 2) {
        if (acc & 0x0f) {
            return NGX_DECLINED;
        }

        *dst++ = (u_char) (acc >> 4);

    } else if (pad == 1) {
        if (acc & 0x03) {
            return NGX_DECLINED;
        }

        *dst++ = (u_char) (acc >> 10);
        *dst++ = (u_char) (acc >> 2);
    }

    *n = out;

    return NGX_OK;
}


static const u_char  ngx_http_asyncx_salt_chars[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";


/*
 * Salt characters from random bytes, as Django's get_random_string():
 * uniformly from [a-zA-Z0-9].  A byte of 248 or more would favour the
 * first 8 characters and is skipped.  Fills up to n characters from len
 * random bytes and returns how many it filled.
 */

size_t
ngx_http_asyncx_pbkdf2_salt(u_char *salt, size_t n, const u_char *random,
    size_t len)
{
    size_t  i;

    i = 0;

    while (i < n && len--) {
        if (*random < 248) {
            salt[i++] = ngx_http_asyncx_salt_chars[*random % 62];
        }

        random++;
    }

    return i;
}


/* "pbkdf2_sha256$<iterations>$<salt text>$<digest, base64>" */

size_t
ngx_http_asyncx_pbkdf2_format(u_char *buf, size_t size,
    ngx_http_asyncx_pbkdf2_hash_t *h)
{
    u_char    digits[NGX_INT64_LEN], *p, *d;
    size_t    need;
    uint64_t  v;

    d = digits + sizeof(digits);
    v = h->iterations;

    do {
        *--d = (u_char) ('0' + v % 10);
        v /= 10;
    } while (v);

    need = sizeof(NGX_HTTP_ASYNCX_PBKDF2_ALGORITHM) - 1 + 3
           + (digits + sizeof(digits) - d) + h->salt_len
           + ngx_http_asyncx_b64_len(h->digest_len);

    if (need >= size) {
        return 0;
    }

    p = ngx_cpymem(buf, NGX_HTTP_ASYNCX_PBKDF2_ALGORITHM "$",
                   sizeof(NGX_HTTP_ASYNCX_PBKDF2_ALGORITHM "$") - 1);
    p = ngx_cpymem(p, d, digits + sizeof(digits) - d);
    *p++ = '$';
    p = ngx_cpymem(p, h->salt, h->salt_len);
    *p++ = '$';
    p = ngx_http_asyncx_b64_encode(p, h->digest, h->digest_len);
    *p = '\0';

    return p - buf;
}


/*
 * NGX_OK, or NGX_DECLINED with *reason saying what is wrong; the reason
 * goes into a 400 answer, so it never echoes the hash itself.  A refused
 * iteration count is NGX_HTTP_ASYNCX_PBKDF2_ITERATIONS instead, so that
 * the answer names the limit there and nowhere else.
 */

ngx_int_t
ngx_http_asyncx_pbkdf2_parse(const u_char *p, size_t len,
    uint64_t max_iterations, ngx_http_asyncx_pbkdf2_hash_t *h,
    const char **reason)
{
    size_t         alg_len;
    ngx_uint_t     i;
    const u_char  *last, *field[3], *end[3];

    alg_len = sizeof(NGX_HTTP_ASYNCX_PBKDF2_ALGORITHM "$") - 1;

    if (len < alg_len
        || ngx_strncmp(p, NGX_HTTP_ASYNCX_PBKDF2_ALGORITHM "$", alg_len) != 0)
    {
        *reason = "unsupported algorithm, expected \"pbkdf2_sha256$\"";
        return NGX_DECLINED;
    }

    last = p + len;
    p += alg_len;

    for (i = 0; i < 3; i++) {
        field[i] = p;

        while (p < last && *p != '$') {
            p++;
        }

        end[i] = p;

        if (i < 2) {
            if (p == last) {
                *reason = "expected 4 fields separated by \"$\"";
                return NGX_DECLINED;
            }

            p++;
        }
    }

    if (p != last) {
        *reason = "expected 4 fields separated by \"$\"";
        return NGX_DECLINED;
    }

    if (ngx_http_asyncx_parse_uint((u_char *) field[0], end[0] - field[0],
                                   max_iterations, &h->iterations)
        != NGX_OK
        || h->iterations == 0
        || (end[0] - field[0] > 1 && field[0][0] == '0'))
    {
        *reason = "invalid or too large iteration count";
        return NGX_HTTP_ASYNCX_PBKDF2_ITERATIONS;
    }

    /* the salt text's bytes, as Django uses them: no decoding */
    h->salt_len = end[1] - field[1];

    if (h->salt_len == 0 || h->salt_len > sizeof(h->salt)) {
        *reason = "the salt must be 1 to 128 bytes";
        return NGX_DECLINED;
    }

    ngx_memcpy(h->salt, field[1], h->salt_len);

    if (ngx_http_asyncx_b64_decode(h->digest, sizeof(h->digest),
                                   &h->digest_len, field[2], end[2] - field[2])
        != NGX_OK
        || h->digest_len < 16)
    {
        *reason = "invalid digest encoding or length";
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * An absolute path made canonical by its text alone, in place: "//" and
 * "." segments go, ".." takes the segment before it away (none above
 * "/").  Returns the new length; "/" for nothing left.  For a symlink's
 * target where realpath() cannot go: it points at nothing.
 */

size_t
ngx_http_asyncx_path_normalize(u_char *path, size_t len)
{
    u_char  *p, *end, *seg, *q;

    p = path;
    end = path + len;
    q = path;

    while (p < end) {

        while (p < end && *p == '/') {
            p++;
        }

        seg = p;

        while (p < end && *p != '/') {
            p++;
        }

        if (p - seg == 0 || (p - seg == 1 && seg[0] == '.')) {
            continue;
        }

        if (p - seg == 2 && seg[0] == '.' && seg[1] == '.') {
            while (q > path && *--q != '/') {
                /* void */
            }

            continue;
        }

        *q++ = '/';
        q = ngx_movemem(q, seg, p - seg);
    }

    if (q == path) {
        *q++ = '/';
    }

    return q - path;
}


/*
 * Both are canonical absolute paths (realpath() results): path is inside
 * root when it equals root or continues it with a "/" boundary, so that
 * "/srv/files-old" is not inside "/srv/files".
 */

ngx_int_t
ngx_http_asyncx_path_within(const u_char *root, size_t root_len,
    const u_char *path, size_t len)
{
    if (root_len == 0 || len == 0 || root[0] != '/' || path[0] != '/') {
        return NGX_DECLINED;
    }

    if (root_len == 1) {
        return NGX_OK;
    }

    if (len < root_len || ngx_strncmp(root, path, root_len) != 0) {
        return NGX_DECLINED;
    }

    if (len == root_len || path[root_len] == '/') {
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/*
 * A write target: *dir_len is the length of the directory part (0 for
 * none); NGX_DECLINED when the last segment cannot name a file ("",
 * "." or "..").
 */

ngx_int_t
ngx_http_asyncx_path_split(const u_char *p, size_t len, size_t *dir_len)
{
    size_t  i, base;

    base = 0;

    for (i = 0; i < len; i++) {
        if (p[i] == '/') {
            base = i + 1;
        }
    }

    if (base == len
        || (len - base == 1 && p[base] == '.')
        || (len - base == 2 && p[base] == '.' && p[base + 1] == '.'))
    {
        return NGX_DECLINED;
    }

    *dir_len = base ? base - 1 : 0;

    return NGX_OK;
}
