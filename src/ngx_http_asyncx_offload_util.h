
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_OFFLOAD_UTIL_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_OFFLOAD_UTIL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * Pure helpers of the offload handlers: strict base64, the PBKDF2 hash
 * string and path containment.  No nginx .c function is called, so
 * thread tasks may use them and t/unit/test_offload.c links them alone.
 */


/*
 * Django's PBKDF2 hash string: "pbkdf2_sha256$<iterations>$<salt>$<digest
 * in base64>".  The salt is text, and its bytes are the PBKDF2 salt (no
 * base64 there); Django makes 22 characters of [a-zA-Z0-9] (128 bits).
 */

#define NGX_HTTP_ASYNCX_PBKDF2_ALGORITHM   "pbkdf2_sha256"
#define NGX_HTTP_ASYNCX_PBKDF2_SALT_CHARS  22
#define NGX_HTTP_ASYNCX_PBKDF2_SALT_MAX    128
#define NGX_HTTP_ASYNCX_PBKDF2_DIGEST_LEN  32
#define NGX_HTTP_ASYNCX_PBKDF2_MAX_BYTES   64

/* ngx_http_asyncx_pbkdf2_parse(): the iteration count is what is refused */
#define NGX_HTTP_ASYNCX_PBKDF2_ITERATIONS  NGX_ABORT

/* "pbkdf2_sha256$" + 10 digits + "$" + salt + "$" + base64 of 64 bytes */
#define NGX_HTTP_ASYNCX_PBKDF2_HASH_MAX    256


typedef struct {
    uint64_t   iterations;
    size_t     salt_len;
    size_t     digest_len;
    u_char     salt[NGX_HTTP_ASYNCX_PBKDF2_SALT_MAX];
    u_char     digest[NGX_HTTP_ASYNCX_PBKDF2_MAX_BYTES];
} ngx_http_asyncx_pbkdf2_hash_t;


#define ngx_http_asyncx_b64_len(n)  ((((n) + 2) / 3) * 4)

u_char *ngx_http_asyncx_b64_encode(u_char *dst, const u_char *src, size_t n);
ngx_int_t ngx_http_asyncx_b64_decode(u_char *dst, size_t max, size_t *n,
    const u_char *src, size_t len);

size_t ngx_http_asyncx_pbkdf2_salt(u_char *salt, size_t n,
    const u_char *random, size_t len);
size_t ngx_http_asyncx_pbkdf2_format(u_char *buf, size_t size,
    ngx_http_asyncx_pbkdf2_hash_t *h);
ngx_int_t ngx_http_asyncx_pbkdf2_parse(const u_char *p, size_t len,
    uint64_t max_iterations, ngx_http_asyncx_pbkdf2_hash_t *h,
    const char **reason);

ngx_int_t ngx_http_asyncx_path_within(const u_char *root, size_t root_len,
    const u_char *path, size_t len);
ngx_int_t ngx_http_asyncx_path_split(const u_char *p, size_t len,
    size_t *dir_len);
size_t ngx_http_asyncx_path_normalize(u_char *path, size_t len);


#endif /* _NGX_HTTP_ASYNCX_OFFLOAD_UTIL_H_INCLUDED_ */
