
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_UTIL_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_UTIL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * Pure helpers: they use nginx types and macros but call no function
 * from nginx's own .c files, so t/unit links them without nginx.
 */


/* a duration with its unit ("1.9s") plus NUL fits comfortably */
#define NGX_HTTP_ASYNCX_SECONDS_LEN  32


uint64_t ngx_http_asyncx_now_usec(void);
uint64_t ngx_http_asyncx_coarse_nsec(void);
size_t ngx_http_asyncx_format_duration(u_char *buf, size_t size,
    uint64_t usec, ngx_uint_t decimals, ngx_str_t *unit);
double ngx_http_asyncx_usec_to_ms(uint64_t usec);

ngx_int_t ngx_http_asyncx_parse_uint(u_char *p, size_t len, uint64_t max,
    uint64_t *value);

size_t ngx_http_asyncx_unescape_arg(u_char *dst, u_char *src, size_t len);
ngx_int_t ngx_http_asyncx_check_rel_path(u_char *p, size_t len);

size_t ngx_http_asyncx_json_escape_len(u_char *src, size_t size);
u_char *ngx_http_asyncx_json_escape(u_char *dst, u_char *src, size_t size);
ngx_int_t ngx_http_asyncx_utf8_valid(u_char *p, size_t len);
size_t ngx_http_asyncx_utf8_cut(u_char *p, size_t len, size_t max);
size_t ngx_http_asyncx_utf8_trim(u_char *p, size_t len);

#define NGX_HTTP_ASYNCX_UTF8_CONTROLS  0x01
/* '"' and '\\' too: a quote in a log line that cannot be forged */
#define NGX_HTTP_ASYNCX_UTF8_QUOTES    0x02

size_t ngx_http_asyncx_utf8_escape_len(u_char *src, size_t len,
    ngx_uint_t flags);
u_char *ngx_http_asyncx_utf8_escape(u_char *dst, u_char *src, size_t len,
    ngx_uint_t flags);


/*
 * What ngx_slprintf(p, last, "%*s") and "%uL" write, cut at last the
 * same way, without parsing a format for each piece: the answers are
 * written piece by piece, some sixty pieces an order.
 */

static ngx_inline u_char *
ngx_http_asyncx_copy(u_char *p, u_char *last, const void *src, size_t len)
{
    return ngx_cpymem(p, src, ngx_min(len, (size_t) (last - p)));
}

#define ngx_http_asyncx_copy_literal(p, last, s)                              \
    ngx_http_asyncx_copy(p, last, s, sizeof(s) - 1)

u_char *ngx_http_asyncx_write_uint(u_char *p, u_char *last, uint64_t n);


/*
 * The length of the valid UTF-8 sequence at p (1 to 4), or 0 when the
 * bytes there are not one: a stray continuation byte, an overlong form,
 * a surrogate, a code point past U+10FFFF or a sequence cut short.
 * Inline: the JSON validator calls it for each non-ASCII character.
 */

static ngx_inline size_t
ngx_http_asyncx_utf8_seq(u_char *p, size_t len)
{
    u_char    c;
    size_t    n, i;
    uint32_t  cp, min;

    if (len == 0) {
        return 0;
    }

    c = *p;

    if (c < 0x80) {
        return 1;
    }

    if ((c & 0xe0) == 0xc0) {
        n = 1; cp = c & 0x1f; min = 0x80;

    } else if ((c & 0xf0) == 0xe0) {
        n = 2; cp = c & 0x0f; min = 0x800;

    } else if ((c & 0xf8) == 0xf0) {
        n = 3; cp = c & 0x07; min = 0x10000;

    } else {
        return 0;
    }

    if (len < n + 1) {
        return 0;
    }

    for (i = 1; i <= n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }

        cp = (cp << 6) | (p[i] & 0x3f);
    }

    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }

    return n + 1;
}


#endif /* _NGX_HTTP_ASYNCX_UTIL_H_INCLUDED_ */
