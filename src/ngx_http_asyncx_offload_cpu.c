
/*
 * Copyright (C) asyncx authors
 *
 * CPU pool tasks: PBKDF2 hash and verify (OpenSSL), JSON parsing (cJSON)
 * and bulk matching (PCRE2 with JIT).  Thread rules per library:
 *   OpenSSL 3  thread-safe once initialized (nginx did); the error queue
 *              is per thread, so errors are read here, in the task.
 *   cJSON      allocations use malloc(); the parser's error slot is a
 *              static, so only return_parse_end is used, never
 *              cJSON_GetErrorPtr().
 *   PCRE2      compiled code is read-only, but match data, match
 *              contexts and JIT stacks are per task; nginx's
 *              ngx_regex_exec() shares one match data: not used here.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <cjson/cJSON.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/err.h>
#include <openssl/crypto.h>

#define PCRE2_CODE_UNIT_WIDTH  8
#include <pcre2.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_json.h"
#include "ngx_http_asyncx_http.h"
#include "ngx_http_asyncx_offload_util.h"


#define NGX_HTTP_ASYNCX_REGEX_PATTERN_MAX   4096
#define NGX_HTTP_ASYNCX_REGEX_FIRST_MAX     100
#define NGX_HTTP_ASYNCX_REGEX_FIRST_DEF     10
#define NGX_HTTP_ASYNCX_REGEX_HEAP_LIMIT    (64 * 1024)     /* KiB */
#define NGX_HTTP_ASYNCX_JIT_STACK_MAX       (1024 * 1024)


typedef struct {
    pcre2_code              *code;
    pcre2_match_data        *md;
    pcre2_match_context     *mctx;
    pcre2_jit_stack         *jit_stack;
    ngx_uint_t               jit;
} ngx_http_asyncx_regex_t;


static ngx_int_t ngx_http_asyncx_offload_member(
    ngx_http_asyncx_offload_ctx_t *ctx, cJSON *root, const char *name,
    cJSON **item);
static ngx_int_t ngx_http_asyncx_offload_password(
    ngx_http_asyncx_offload_ctx_t *ctx, cJSON *root, char **pw, size_t *len);
static ngx_int_t ngx_http_asyncx_offload_crypto_fail(
    ngx_http_asyncx_offload_ctx_t *ctx, const char *what);
static ngx_int_t ngx_http_asyncx_offload_pbkdf2(
    ngx_http_asyncx_offload_ctx_t *ctx, char *pw, size_t len,
    ngx_http_asyncx_pbkdf2_hash_t *h, u_char *digest);
static u_char *ngx_http_asyncx_offload_generate(
    ngx_http_asyncx_offload_ctx_t *ctx, size_t *len);
static ngx_int_t ngx_http_asyncx_regex_compile(
    ngx_http_asyncx_offload_ctx_t *ctx, ngx_http_asyncx_regex_t *re,
    cJSON *pattern);
static void ngx_http_asyncx_regex_free(ngx_http_asyncx_regex_t *re);
static cJSON *ngx_http_asyncx_cjson_add_slice(cJSON *obj, const char *name,
    const u_char *p, size_t len);
static ngx_int_t ngx_http_asyncx_regex_add_match(cJSON *list, uint64_t i,
    PCRE2_SPTR s, PCRE2_SIZE *ov);
static ngx_int_t ngx_http_asyncx_regex_fail(ngx_http_asyncx_offload_ctx_t *ctx,
    int rc, uint64_t i, uint64_t start);
static ngx_int_t ngx_http_asyncx_regex_answer(
    ngx_http_asyncx_offload_ctx_t *ctx, cJSON *json, cJSON **list,
    cJSON *pattern, uint64_t matched, uint64_t count, uint64_t usec,
    ngx_uint_t jit, ngx_uint_t texts);
static ngx_int_t ngx_http_asyncx_regex_subjects(
    ngx_http_asyncx_offload_ctx_t *ctx, cJSON *root, cJSON **texts,
    uint64_t *count, uint64_t *first);


/* the task's answer, malloc()ed by cJSON; the file tasks use it too */

ngx_int_t
ngx_http_asyncx_offload_set_json(ngx_http_asyncx_offload_ctx_t *ctx,
    cJSON *root)
{
    char  *text;

    text = cJSON_PrintUnformatted(root);
    if (text == NULL) {
        return ngx_http_asyncx_offload_fail(ctx,
                                            NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            0, "out of memory");
    }

    ctx->out = (u_char *) text;
    ctx->out_len = ngx_strlen(text);
    ctx->status = NGX_HTTP_OK;

    return NGX_OK;
}


/*
 * The body as one JSON document, under the module's JSON policy
 * (ngx_http_asyncx_json_parse): every endpoint refuses the same bodies
 * with the same 400, naming the byte and, for the policy's own limits,
 * why.  NGX_HTTP_ASYNCX_JSON_NO_NUL where the handler uses the strings.
 */

cJSON *
ngx_http_asyncx_offload_parse_json(ngx_http_asyncx_offload_ctx_t *ctx,
    const char *what, ngx_uint_t flags)
{
    cJSON                        *root;
    ngx_http_asyncx_json_info_t   info;

    if (ctx->body.len == 0) {
        (void) ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                            "request body is empty, expected "
                                            "%s", what);
        return NULL;
    }

    /* the tree is freed by the caller; the thread's wrapper trims after */
    ctx->parsed = ctx->body.len;

    root = ngx_http_asyncx_json_parse(ctx->body.data, ctx->body.len, flags,
                                      &info);

    if (root == NULL) {
        if (info.nul) {
            /* valid JSON, but this handler's strings are C strings */
            (void) ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                            "U+0000 (\\u0000) in a string "
                                            "at byte %uz: refused, it would "
                                            "cut the string short",
                                            info.offset);
            return NULL;
        }

        if (info.nomem) {
            (void) ngx_http_asyncx_offload_fail(ctx,
                                            NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            0, "out of memory");
            return NULL;
        }

        (void) ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                            "invalid JSON at byte %uz%s%s",
                                            info.offset,
                                            info.reason ? ": " : "",
                                            info.reason ? info.reason : "");
        return NULL;
    }

    return root;
}


/*
 * A member the handler reads: NGX_OK with *item (NULL when absent), or
 * a 400 when the name is given twice (which one counts would depend on
 * the parser).
 */

static ngx_int_t
ngx_http_asyncx_offload_member(ngx_http_asyncx_offload_ctx_t *ctx,
    cJSON *root, const char *name, cJSON **item)
{
    if (ngx_http_asyncx_json_member(root, name, item) != NGX_OK) {
        return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                            "duplicate member \"%s\"",
                                            name);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_asyncx_offload_password(ngx_http_asyncx_offload_ctx_t *ctx,
    cJSON *root, char **pw, size_t *len)
{
    cJSON  *item;

    if (!cJSON_IsObject(root)) {
        return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                            "expected a JSON object");
    }

    if (ngx_http_asyncx_offload_member(ctx, root, "password", &item)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!cJSON_IsString(item) || item->valuestring == NULL) {
        return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                            "\"password\" (a string) is "
                                            "required");
    }

    /* the JSON policy refuses "\u0000": strlen() is the whole string */
    *pw = item->valuestring;
    *len = ngx_strlen(item->valuestring);

    if (*len == 0) {
        return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                            "\"password\" is empty");
    }

    if (*len > ctx->conf->password_max_length) {
        return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                            "\"password\" is longer than "
                                            "%uz bytes",
                                            ctx->conf->password_max_length);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_asyncx_offload_crypto_fail(ngx_http_asyncx_offload_ctx_t *ctx,
    const char *what)
{
    char           buf[256];
    unsigned long  e;

    /* the error queue is thread-local: read it before the task returns */
    e = ERR_get_error();
    ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();

    return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                        0, "%s failed: %s", what, buf);
}


static ngx_int_t
ngx_http_asyncx_offload_pbkdf2(ngx_http_asyncx_offload_ctx_t *ctx, char *pw,
    size_t len, ngx_http_asyncx_pbkdf2_hash_t *h, u_char *digest)
{
    if (PKCS5_PBKDF2_HMAC(pw, (int) len, h->salt, (int) h->salt_len,
                          (int) h->iterations, EVP_sha256(),
                          (int) h->digest_len, digest)
        != 1)
    {
        return ngx_http_asyncx_offload_crypto_fail(ctx, "PKCS5_PBKDF2_HMAC");
    }

    return NGX_OK;
}


/*
 * POST {"password": "..."} -> {"hash": "pbkdf2_sha256$600000$<salt>$<dk>",
 * "method": "pbkdf2", "async": true, ...}
 */

ngx_int_t
ngx_http_asyncx_offload_hash_run(void *data)
{
    ngx_http_asyncx_offload_ctx_t  *ctx = data;

    u_char                          buf[NGX_HTTP_ASYNCX_PBKDF2_HASH_MAX];
    u_char                          rnd[NGX_HTTP_ASYNCX_PBKDF2_SALT_CHARS];
    char                           *pw;
    size_t                          len;
    cJSON                          *root, *json;
    uint64_t                        start, usec;
    ngx_int_t                       rc;
    ngx_http_asyncx_pbkdf2_hash_t   h;

    if (ngx_http_asyncx_offload_body(ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    root = ngx_http_asyncx_offload_parse_json(ctx,
                                              "{\"password\": \"...\"}",
                                              NGX_HTTP_ASYNCX_JSON_NO_NUL);
    if (root == NULL) {
        return NGX_ERROR;
    }

    /* the body is not needed any more: do not keep a password around */
    OPENSSL_cleanse(ctx->body.data, ctx->body.len);

    if (ngx_http_asyncx_offload_password(ctx, root, &pw, &len) != NGX_OK) {
        cJSON_Delete(root);
        return NGX_ERROR;
    }

    h.iterations = ctx->conf->pbkdf2_iterations;
    h.salt_len = 0;
    h.digest_len = NGX_HTTP_ASYNCX_PBKDF2_DIGEST_LEN;

    /* 22 characters of [a-zA-Z0-9], as Django makes them */
    while (h.salt_len < NGX_HTTP_ASYNCX_PBKDF2_SALT_CHARS) {
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            OPENSSL_cleanse(pw, len);
            cJSON_Delete(root);
            return ngx_http_asyncx_offload_crypto_fail(ctx, "RAND_bytes");
        }

        h.salt_len += ngx_http_asyncx_pbkdf2_salt(h.salt + h.salt_len,
                                    NGX_HTTP_ASYNCX_PBKDF2_SALT_CHARS
                                    - h.salt_len, rnd, sizeof(rnd));
    }

    start = ngx_http_asyncx_now_usec();
    rc = ngx_http_asyncx_offload_pbkdf2(ctx, pw, len, &h, h.digest);
    usec = ngx_http_asyncx_now_usec() - start;

    OPENSSL_cleanse(pw, len);
    cJSON_Delete(root);

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_asyncx_pbkdf2_format(buf, sizeof(buf), &h) == 0) {
        return ngx_http_asyncx_offload_fail(ctx,
                                            NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            0, "hash string too long");
    }

    json = cJSON_CreateObject();

    if (json == NULL
        || cJSON_AddStringToObject(json, "hash", (char *) buf) == NULL
        || cJSON_AddStringToObject(json, "method", "pbkdf2") == NULL
        || cJSON_AddStringToObject(json, "algorithm",
                                   NGX_HTTP_ASYNCX_PBKDF2_ALGORITHM) == NULL
        || cJSON_AddNumberToObject(json, "iterations",
                                   (double) h.iterations) == NULL
        || ngx_http_asyncx_cjson_add_seconds(json, "hash_time", usec, 2,
                                             ctx->duration_unit)
           == NULL
        || cJSON_AddNumberToObject(json, "hash_ms",
                                   ngx_http_asyncx_usec_to_ms(usec)) == NULL
        || cJSON_AddTrueToObject(json, "async") == NULL)
    {
        cJSON_Delete(json);
        return ngx_http_asyncx_offload_fail(ctx,
                                            NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            0, "out of memory");
    }

    rc = ngx_http_asyncx_offload_set_json(ctx, json);
    cJSON_Delete(json);

    return rc;
}


/* POST {"password": "...", "hash": "pbkdf2_sha256$..."} -> {"valid": b} */

ngx_int_t
ngx_http_asyncx_offload_verify_run(void *data)
{
    ngx_http_asyncx_offload_ctx_t  *ctx = data;

    u_char                          digest[NGX_HTTP_ASYNCX_PBKDF2_MAX_BYTES];
    char                           *pw;
    size_t                          len;
    cJSON                          *root, *item, *json;
    uint64_t                        start, usec;
    ngx_int_t                       rc;
    ngx_uint_t                      valid;
    const char                     *reason;
    ngx_http_asyncx_pbkdf2_hash_t   h;

    if (ngx_http_asyncx_offload_body(ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    root = ngx_http_asyncx_offload_parse_json(ctx,
                             "{\"password\": \"...\", \"hash\": \"...\"}",
                             NGX_HTTP_ASYNCX_JSON_NO_NUL);
    if (root == NULL) {
        return NGX_ERROR;
    }

    OPENSSL_cleanse(ctx->body.data, ctx->body.len);

    if (ngx_http_asyncx_offload_password(ctx, root, &pw, &len) != NGX_OK) {
        cJSON_Delete(root);
        return NGX_ERROR;
    }

    if (ngx_http_asyncx_offload_member(ctx, root, "hash", &item) != NGX_OK) {
        OPENSSL_cleanse(pw, len);
        cJSON_Delete(root);
        return NGX_ERROR;
    }

    if (!cJSON_IsString(item) || item->valuestring == NULL) {
        OPENSSL_cleanse(pw, len);
        cJSON_Delete(root);
        return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                            "\"hash\" (a string) is "
                                            "required");
    }

    rc = ngx_http_asyncx_pbkdf2_parse((u_char *) item->valuestring,
                                      ngx_strlen(item->valuestring),
                                      ctx->conf->pbkdf2_max_iterations, &h,
                                      &reason);

    if (rc != NGX_OK) {
        OPENSSL_cleanse(pw, len);
        cJSON_Delete(root);

        /* the limit belongs to the iteration count's reason only */
        if (rc == NGX_HTTP_ASYNCX_PBKDF2_ITERATIONS) {
            return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                                "malformed \"hash\": %s (at "
                                                "most %ui iterations)",
                                                reason,
                                              ctx->conf->pbkdf2_max_iterations);
        }

        return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                            "malformed \"hash\": %s",
                                            reason);
    }

    start = ngx_http_asyncx_now_usec();
    rc = ngx_http_asyncx_offload_pbkdf2(ctx, pw, len, &h, digest);
    usec = ngx_http_asyncx_now_usec() - start;

    OPENSSL_cleanse(pw, len);
    cJSON_Delete(root);

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    /* constant time: how many bytes matched is not observable */
    valid = (CRYPTO_memcmp(digest, h.digest, h.digest_len) == 0);

    json = cJSON_CreateObject();

    if (json == NULL
        || cJSON_AddBoolToObject(json, "valid", valid) == NULL
        || cJSON_AddStringToObject(json, "method", "pbkdf2") == NULL
        || cJSON_AddNumberToObject(json, "iterations",
                                   (double) h.iterations) == NULL
        || cJSON_AddNumberToObject(json, "verify_ms",
                                   ngx_http_asyncx_usec_to_ms(usec)) == NULL
        || cJSON_AddTrueToObject(json, "async") == NULL)
    {
        cJSON_Delete(json);
        return ngx_http_asyncx_offload_fail(ctx,
                                            NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            0, "out of memory");
    }

    rc = ngx_http_asyncx_offload_set_json(ctx, json);
    cJSON_Delete(json);

    return rc;
}


/* the generated records as one document: [{"id": 0, ...}, ...] */

static u_char *
ngx_http_asyncx_offload_generate(ngx_http_asyncx_offload_ctx_t *ctx,
    size_t *len)
{
    u_char      *doc, *p;
    ngx_uint_t   i;

    doc = cJSON_malloc(ctx->items * (NGX_HTTP_ASYNCX_JSON_ITEM_MAX + 2) + 3);
    if (doc == NULL) {
        return NULL;
    }

    p = doc;
    *p++ = '[';

    for (i = 0; i < ctx->items; i++) {
        if (i) {
            *p++ = ',';
            *p++ = ' ';
        }

        p += ctx->records->json(i, p);
    }

    *p++ = ']';
    *p = '\0';

    *len = p - doc;

    return doc;
}


/*
 * POST a JSON document (or nothing: a document of 10,000 generated
 * records, when the module has them) -> {"parsed_items": N,
 * "parse_time": "0.05s", ...}.
 * Items are an array's elements or an object's members; a scalar is one.
 */

ngx_int_t
ngx_http_asyncx_offload_json_run(void *data)
{
    ngx_http_asyncx_offload_ctx_t  *ctx = data;

    u_char         *doc;
    size_t          len;
    cJSON          *root, *json;
    uint64_t        gen, start, parse;
    ngx_int_t       rc;
    ngx_uint_t      items, generated;
    const char     *type;

    gen = 0;
    generated = 0;
    doc = NULL;

    if (ctx->body.len == 0) {
        if (ctx->records == NULL) {
            return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                                "a JSON body is required");
        }

        start = ngx_http_asyncx_now_usec();

        doc = ngx_http_asyncx_offload_generate(ctx, &len);
        if (doc == NULL) {
            return ngx_http_asyncx_offload_fail(ctx,
                                            NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            0, "out of memory");
        }

        gen = ngx_http_asyncx_now_usec() - start;
        generated = 1;

        ctx->body.data = doc;
        ctx->body.len = len;

    } else if (ngx_http_asyncx_offload_body(ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    start = ngx_http_asyncx_now_usec();
    /* only counted: strings with U+0000 are JSON like any other */
    root = ngx_http_asyncx_offload_parse_json(ctx, "a JSON document", 0);
    parse = ngx_http_asyncx_now_usec() - start;

    len = ctx->body.len;

    if (generated) {
        ctx->body.data = (u_char *) "";
        ctx->body.len = 0;
        cJSON_free(doc);
    }

    if (root == NULL) {
        return NGX_ERROR;
    }

    if (cJSON_IsArray(root)) {
        type = "array";
        items = (ngx_uint_t) cJSON_GetArraySize(root);

    } else if (cJSON_IsObject(root)) {
        type = "object";
        items = (ngx_uint_t) cJSON_GetArraySize(root);

    } else {
        type = "scalar";
        items = 1;
    }

    cJSON_Delete(root);

    json = cJSON_CreateObject();

    if (json == NULL
        || cJSON_AddNumberToObject(json, "parsed_items", (double) items)
           == NULL
        || ngx_http_asyncx_cjson_add_seconds(json, "parse_time", parse, 2,
                                             ctx->duration_unit)
           == NULL
        || cJSON_AddNumberToObject(json, "parse_ms",
                                   ngx_http_asyncx_usec_to_ms(parse)) == NULL
        || cJSON_AddNumberToObject(json, "bytes", (double) len) == NULL
        || cJSON_AddNumberToObject(json, "mb_per_s",
                                   parse ? (double) (len * 1000000 / parse)
                                           / 1000000.0
                                         : 0) == NULL
        || cJSON_AddStringToObject(json, "type", type) == NULL
        || cJSON_AddStringToObject(json, "source",
                                   generated ? "generated" : "body") == NULL
        || (generated
            && cJSON_AddNumberToObject(json, "generate_ms",
                                       ngx_http_asyncx_usec_to_ms(gen))
               == NULL)
        || cJSON_AddTrueToObject(json, "async") == NULL)
    {
        cJSON_Delete(json);
        return ngx_http_asyncx_offload_fail(ctx,
                                            NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            0, "out of memory");
    }

    rc = ngx_http_asyncx_offload_set_json(ctx, json);
    cJSON_Delete(json);

    return rc;
}


static ngx_int_t
ngx_http_asyncx_regex_compile(ngx_http_asyncx_offload_ctx_t *ctx,
    ngx_http_asyncx_regex_t *re, cJSON *pattern)
{
    int          errcode;
    size_t       len;
    u_char       msg[256];
    PCRE2_SIZE   erroff;

    len = ngx_strlen(pattern->valuestring);

    if (len > NGX_HTTP_ASYNCX_REGEX_PATTERN_MAX) {
        return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                            "\"pattern\" is longer than %d "
                                            "bytes",
                                            NGX_HTTP_ASYNCX_REGEX_PATTERN_MAX);
    }

    /*
     * UTF-8 patterns; subjects with invalid UTF-8 simply do not match
     * there, instead of failing the whole request.
     */

    re->code = pcre2_compile((PCRE2_SPTR) pattern->valuestring, len,
                             PCRE2_UTF|PCRE2_MATCH_INVALID_UTF
                             |PCRE2_NEVER_BACKSLASH_C,
                             &errcode, &erroff, NULL);

    if (re->code == NULL) {
        if (pcre2_get_error_message(errcode, msg, sizeof(msg)) < 0) {
            ngx_cpystrn(msg, (u_char *) "unknown error", sizeof(msg));
        }

        return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                            "invalid pattern at offset %uz: "
                                            "%s", (size_t) erroff, msg);
    }

    re->jit = (pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE) == 0);

    re->mctx = pcre2_match_context_create(NULL);
    re->md = pcre2_match_data_create_from_pattern(re->code, NULL);

    if (re->mctx == NULL || re->md == NULL) {
        return ngx_http_asyncx_offload_fail(ctx,
                                            NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            0, "out of memory");
    }

    /* what stops catastrophic backtracking: see asyncx_regex_match_limit */
    (void) pcre2_set_match_limit(re->mctx,
                                 (uint32_t) ctx->conf->regex_match_limit);
    (void) pcre2_set_depth_limit(re->mctx,
                                 (uint32_t) ctx->conf->regex_depth_limit);
    (void) pcre2_set_heap_limit(re->mctx, NGX_HTTP_ASYNCX_REGEX_HEAP_LIMIT);

    if (re->jit) {
        re->jit_stack = pcre2_jit_stack_create(32 * 1024,
                                               NGX_HTTP_ASYNCX_JIT_STACK_MAX,
                                               NULL);
        if (re->jit_stack == NULL) {
            return ngx_http_asyncx_offload_fail(ctx,
                                            NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            0, "out of memory");
        }

        pcre2_jit_stack_assign(re->mctx, NULL, re->jit_stack);
    }

    return NGX_OK;
}


static void
ngx_http_asyncx_regex_free(ngx_http_asyncx_regex_t *re)
{
    /* every pcre2_*_free() accepts NULL */
    pcre2_match_data_free(re->md);
    pcre2_match_context_free(re->mctx);
    pcre2_jit_stack_free(re->jit_stack);
    pcre2_code_free(re->code);
}


/* a match is a slice of its subject: cJSON wants a C string */

static cJSON *
ngx_http_asyncx_cjson_add_slice(cJSON *obj, const char *name,
    const u_char *p, size_t len)
{
    char   *tmp;
    cJSON  *item;

    tmp = cJSON_malloc(len + 1);
    if (tmp == NULL) {
        return NULL;
    }

    ngx_memcpy(tmp, p, len);
    tmp[len] = '\0';

    item = cJSON_AddStringToObject(obj, name, tmp);
    cJSON_free(tmp);

    return item;
}


/* {"texts": [...]} or {"count": N} (generated records), plus "limit" */

static ngx_int_t
ngx_http_asyncx_regex_subjects(ngx_http_asyncx_offload_ctx_t *ctx,
    cJSON *root, cJSON **texts, uint64_t *count, uint64_t *first)
{
    cJSON     *t, *c, *l;
    uint64_t   max;

    max = ctx->conf->regex_max_subjects;

    if (ngx_http_asyncx_offload_member(ctx, root, "texts", &t) != NGX_OK
        || ngx_http_asyncx_offload_member(ctx, root, "count", &c) != NGX_OK
        || ngx_http_asyncx_offload_member(ctx, root, "limit", &l) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ctx->records == NULL && t == NULL) {
        return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                            "give \"texts\" (an array of "
                                            "strings)");
    }

    if ((t == NULL) == (c == NULL)) {
        return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                            "give either \"texts\" (an array "
                                            "of strings) or \"count\" (%V "
                                            "records)",
                                            &ctx->records->description);
    }

    if (t) {
        if (!cJSON_IsArray(t)) {
            return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                                "\"texts\" must be an array "
                                                "of strings");
        }

        *texts = t;
        *count = (uint64_t) cJSON_GetArraySize(t);

    } else {
        if (!cJSON_IsNumber(c) || c->valuedouble < 1
            || c->valuedouble > (double) max
            || c->valuedouble != (double) (uint64_t) c->valuedouble)
        {
            return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                                "\"count\" must be an integer "
                                                "from 1 to %uL", max);
        }

        *texts = NULL;
        *count = (uint64_t) c->valuedouble;
    }

    if (*count > max) {
        return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                            "more than %uL texts", max);
    }

    *first = NGX_HTTP_ASYNCX_REGEX_FIRST_DEF;

    if (l) {
        if (!cJSON_IsNumber(l) || l->valuedouble < 0
            || l->valuedouble > NGX_HTTP_ASYNCX_REGEX_FIRST_MAX
            || l->valuedouble != (double) (uint64_t) l->valuedouble)
        {
            return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                          "\"limit\" must be an integer "
                                          "from 0 to %d",
                                          NGX_HTTP_ASYNCX_REGEX_FIRST_MAX);
        }

        *first = (uint64_t) l->valuedouble;
    }

    return NGX_OK;
}


/* one of "first_matches": {"index": i, "text": ..., "match": ...} */

static ngx_int_t
ngx_http_asyncx_regex_add_match(cJSON *list, uint64_t i, PCRE2_SPTR s,
    PCRE2_SIZE *ov)
{
    cJSON  *m;

    m = cJSON_CreateObject();
    if (m == NULL) {
        return NGX_ERROR;
    }

    cJSON_AddItemToArray(list, m);

    if (cJSON_AddNumberToObject(m, "index", (double) i) == NULL
        || cJSON_AddStringToObject(m, "text", (char *) s) == NULL
        || ngx_http_asyncx_cjson_add_slice(m, "match", s + ov[0],
                                           ov[1] - ov[0])
           == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A match that failed otherwise than by not matching: 422 for a PCRE2
 * limit (the pattern backtracks), 400 for anything else.  NGX_ERROR.
 */

static ngx_int_t
ngx_http_asyncx_regex_fail(ngx_http_asyncx_offload_ctx_t *ctx, int rc,
    uint64_t i, uint64_t start)
{
    u_char       msg[256];
    const char  *why;

    switch (rc) {
    case PCRE2_ERROR_MATCHLIMIT:
        why = "match limit (asyncx_regex_match_limit)";
        break;
    case PCRE2_ERROR_DEPTHLIMIT:
        why = "depth limit (asyncx_regex_depth_limit)";
        break;
    case PCRE2_ERROR_HEAPLIMIT:
        why = "heap limit";
        break;
    case PCRE2_ERROR_JIT_STACKLIMIT:
        why = "JIT stack limit";
        break;
    default:
        why = NULL;
    }

    if (why) {
        return ngx_http_asyncx_offload_fail(ctx, 422, 0,
                                            "pattern hit the PCRE2 %s on "
                                            "text %uL after %uL ms: "
                                            "catastrophic backtracking?",
                                            why, i,
                                            (ngx_http_asyncx_now_usec()
                                             - start) / 1000);
    }

    if (pcre2_get_error_message(rc, msg, sizeof(msg)) < 0) {
        ngx_cpystrn(msg, (u_char *) "unknown error", sizeof(msg));
    }

    return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                        "matching text %uL failed: %s",
                                        i, msg);
}


/*
 * The answer's members around "first_matches" (*list, which json owns
 * once added: *list is NULL then).  NGX_ERROR: no memory.
 */

static ngx_int_t
ngx_http_asyncx_regex_answer(ngx_http_asyncx_offload_ctx_t *ctx, cJSON *json,
    cJSON **list, cJSON *pattern, uint64_t matched, uint64_t count,
    uint64_t usec, ngx_uint_t jit, ngx_uint_t texts)
{
    if (cJSON_AddStringToObject(json, "pattern", pattern->valuestring) == NULL
        || cJSON_AddNumberToObject(json, "match_count", (double) matched)
           == NULL
        || cJSON_AddNumberToObject(json, "total", (double) count) == NULL)
    {
        return NGX_ERROR;
    }

    cJSON_AddItemToObject(json, "first_matches", *list);
    *list = NULL;

    if (ngx_http_asyncx_cjson_add_seconds(json, "match_time", usec, 3,
                                          ctx->duration_unit)
        == NULL
        || cJSON_AddNumberToObject(json, "match_ms",
                                   ngx_http_asyncx_usec_to_ms(usec)) == NULL
        || cJSON_AddNumberToObject(json, "matches_per_s",
                                   usec ? (double) (count * 1000000 / usec)
                                        : 0) == NULL
        || cJSON_AddBoolToObject(json, "jit", jit) == NULL
        || cJSON_AddStringToObject(json, "source",
                                   texts ? "texts"
                                         : (char *) ctx->records->name.data)
           == NULL
        || cJSON_AddTrueToObject(json, "async") == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * POST {"pattern": "...", "texts": [...]} or {"pattern": "...", "count": N}
 * -> {"match_count": K, "total": N, "first_matches": [...], ...}.
 * Every subject is bounded by the PCRE2 match/depth/heap limits and the
 * whole request by asyncx_regex_time_limit, so a pathological pattern
 * ends with 422 instead of pinning the thread.
 *
 * One function: the matching loop keeps the match data, the clock and the
 * answer list together; its error and answer parts are helpers above.
 */

ngx_int_t
ngx_http_asyncx_offload_regex_run(void *data)
{
    ngx_http_asyncx_offload_ctx_t  *ctx = data;

    int                       rc;
    u_char                    rec[NGX_HTTP_ASYNCX_RECORD_MAX];
    size_t                    len;
    cJSON                    *root, *pattern, *texts, *item, *json, *list;
    uint64_t                  i, count, first, matched, start, usec, limit,
                              coarse, limit_nsec;
    PCRE2_SPTR                s;
    ngx_http_asyncx_regex_t   re;

    if (ngx_http_asyncx_offload_body(ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    root = ngx_http_asyncx_offload_parse_json(ctx,
                             "{\"pattern\": \"...\", \"texts\": [...]}",
                             NGX_HTTP_ASYNCX_JSON_NO_NUL);
    if (root == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&re, sizeof(ngx_http_asyncx_regex_t));
    json = NULL;
    list = NULL;
    texts = NULL;
    count = 0;
    first = 0;

    pattern = NULL;

    if (cJSON_IsObject(root)
        && ngx_http_asyncx_offload_member(ctx, root, "pattern", &pattern)
           != NGX_OK)
    {
        goto failed;
    }

    if (!cJSON_IsString(pattern) || pattern->valuestring == NULL) {
        (void) ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                            "\"pattern\" (a string) is "
                                            "required");
        goto failed;
    }

    if (ngx_http_asyncx_regex_subjects(ctx, root, &texts, &count, &first)
        != NGX_OK
        || ngx_http_asyncx_regex_compile(ctx, &re, pattern) != NGX_OK)
    {
        goto failed;
    }

    json = cJSON_CreateObject();
    list = cJSON_CreateArray();

    if (json == NULL || list == NULL) {
        goto nomem;
    }

    limit = ctx->conf->regex_time_limit * 1000;
    matched = 0;
    item = texts ? texts->child : NULL;
    limit_nsec = limit * 1000;
    start = ngx_http_asyncx_now_usec();
    coarse = ngx_http_asyncx_coarse_nsec();

    for (i = 0; i < count; i++) {

        if (texts == NULL) {
            len = ctx->records->text(i, rec);
            rec[len] = '\0';
            s = rec;

        } else if (cJSON_IsString(item) && item->valuestring) {
            s = (PCRE2_SPTR) item->valuestring;
            len = ngx_strlen(item->valuestring);
            item = item->next;

        } else {
            (void) ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                                "texts[%uL] is not a string",
                                                i);
            goto failed;
        }

        rc = pcre2_match(re.code, s, len, 0, 0, re.md, re.mctx);

        if (rc >= 0) {
            matched++;

            if (matched <= first
                && ngx_http_asyncx_regex_add_match(list, i, s,
                                          pcre2_get_ovector_pointer(re.md))
                   != NGX_OK)
            {
                goto nomem;
            }

        } else if (rc != PCRE2_ERROR_NOMATCH) {
            (void) ngx_http_asyncx_regex_fail(ctx, rc, i, start);
            goto failed;
        }

        /*
         * The client left (the request's cleanup marked the job): the
         * rest would be matched for nobody.  A load of one word, looked
         * at after every text but the last, as the budget is.
         */

        if (i + 1 < count && ngx_http_asyncx_job_cancelled(ctx->job)) {
            rc = NGX_HTTP_ASYNCX_JOB_STOPPED;
            goto done;
        }

        /*
         * The budget after every text but the last (a finished job is
         * answered): the precise clock costs as much as matching a short
         * record, so it is read every 64 texts, and after any text once
         * the coarse clock says the budget may be spent (it can be a
         * tick early).  A text that runs long (a match limit raised
         * high) stops the request right after it.
         */

        if (i + 1 < count
            && ((i & 63) == 63
                || ngx_http_asyncx_coarse_nsec() - coarse > limit_nsec)
            && ngx_http_asyncx_now_usec() - start > limit)
        {
            (void) ngx_http_asyncx_offload_fail(ctx, 422, 0,
                                                "matching stopped after %uL "
                                                "of %uL texts: over "
                                                "asyncx_regex_time_limit "
                                                "%M ms", i + 1, count,
                                                ctx->conf->regex_time_limit);
            goto failed;
        }
    }

    usec = ngx_http_asyncx_now_usec() - start;

    if (ngx_http_asyncx_regex_answer(ctx, json, &list, pattern, matched,
                                     count, usec, re.jit, texts != NULL)
        != NGX_OK)
    {
        goto nomem;
    }

    ngx_http_asyncx_regex_free(&re);
    cJSON_Delete(root);

    rc = ngx_http_asyncx_offload_set_json(ctx, json);
    cJSON_Delete(json);

    return rc;

nomem:

    (void) ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                        0, "out of memory");

failed:

    rc = NGX_ERROR;

done:

    ngx_http_asyncx_regex_free(&re);
    cJSON_Delete(list);
    cJSON_Delete(json);
    cJSON_Delete(root);

    return rc;
}
