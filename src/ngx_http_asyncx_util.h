
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
size_t ngx_http_asyncx_format_duration(u_char *buf, size_t size,
    uint64_t usec, ngx_uint_t decimals, ngx_str_t *unit);
double ngx_http_asyncx_usec_to_ms(uint64_t usec);

ngx_int_t ngx_http_asyncx_parse_uint(u_char *p, size_t len, uint64_t max,
    uint64_t *value);

size_t ngx_http_asyncx_unescape_arg(u_char *dst, u_char *src, size_t len);
ngx_int_t ngx_http_asyncx_check_rel_path(u_char *p, size_t len);

size_t ngx_http_asyncx_json_escape_len(u_char *src, size_t size);
u_char *ngx_http_asyncx_json_escape(u_char *dst, u_char *src, size_t size);
size_t ngx_http_asyncx_utf8_seq(u_char *p, size_t len);
ngx_int_t ngx_http_asyncx_utf8_valid(u_char *p, size_t len);
size_t ngx_http_asyncx_utf8_cut(u_char *p, size_t len, size_t max);
size_t ngx_http_asyncx_utf8_trim(u_char *p, size_t len);

#define NGX_HTTP_ASYNCX_UTF8_CONTROLS  0x01

size_t ngx_http_asyncx_utf8_escape_len(u_char *src, size_t len,
    ngx_uint_t flags);
u_char *ngx_http_asyncx_utf8_escape(u_char *dst, u_char *src, size_t len,
    ngx_uint_t flags);


#endif /* _NGX_HTTP_ASYNCX_UTIL_H_INCLUDED_ */
