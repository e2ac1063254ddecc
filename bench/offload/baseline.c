/*
 * Single-core baselines for docs/benchmarks/offload.md: the same library
 * calls the offload handlers make, called directly in one thread, on the
 * same data (the data set document of docs/dataset.md).
 *
 *   baseline pbkdf2 <iterations> <seconds>   PBKDF2-HMAC-SHA256 hashes/s
 *   baseline json <items> <seconds>          cJSON parse MB/s
 *   baseline regex <pattern> <records>       PCRE2 JIT subjects/s
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ngx_config.h>
#include <ngx_core.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <cjson/cJSON.h>

#define PCRE2_CODE_UNIT_WIDTH  8
#include <pcre2.h>

#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_dataset.h"


static double
elapsed(uint64_t start)
{
    return (double) (ngx_http_asyncx_now_usec() - start) / 1e6;
}


static int
bench_pbkdf2(long iterations, double seconds)
{
    unsigned char  salt[16], dk[32];
    uint64_t       start;
    long           n;
    double         t;

    RAND_bytes(salt, sizeof(salt));
    start = ngx_http_asyncx_now_usec();

    for (n = 0; elapsed(start) < seconds || n == 0; n++) {
        if (PKCS5_PBKDF2_HMAC("mypassword", 10, salt, sizeof(salt),
                              (int) iterations, EVP_sha256(), sizeof(dk), dk)
            != 1)
        {
            return 1;
        }
    }

    t = elapsed(start);
    printf("pbkdf2 iterations=%ld hashes=%ld seconds=%.3f hashes_per_s=%.2f "
           "ms_per_hash=%.1f\n", iterations, n, t, n / t, t * 1000 / n);

    return 0;
}


static int
bench_json(long items, double seconds)
{
    u_char    *doc, *p;
    cJSON     *root;
    size_t     len;
    uint64_t   start, parse;
    long       i, n;

    doc = malloc(items * (NGX_HTTP_ASYNCX_JSON_ITEM_MAX + 2) + 3);
    if (doc == NULL) {
        return 1;
    }

    p = doc;
    *p++ = '[';

    for (i = 0; i < items; i++) {
        if (i) {
            *p++ = ',';
            *p++ = ' ';
        }

        p += ngx_http_asyncx_dataset_json_item(i, p);
    }

    *p++ = ']';
    *p = '\0';
    len = p - doc;

    parse = 0;
    start = ngx_http_asyncx_now_usec();

    for (n = 0; elapsed(start) < seconds || n == 0; n++) {
        uint64_t  t0 = ngx_http_asyncx_now_usec();

        root = cJSON_ParseWithLengthOpts((char *) doc, len, NULL, 0);
        parse += ngx_http_asyncx_now_usec() - t0;

        if (root == NULL || cJSON_GetArraySize(root) != items) {
            return 1;
        }

        cJSON_Delete(root);
    }

    printf("json items=%ld bytes=%zu parses=%ld parse_ms=%.2f "
           "parse_mb_per_s=%.1f\n", items, len, n,
           (double) parse / n / 1000, (double) len * n / parse);

    free(doc);

    return 0;
}


static int
bench_regex(const char *pattern, long records)
{
    int                  errcode;
    u_char               rec[NGX_HTTP_ASYNCX_RECORD_MAX];
    size_t               len;
    uint64_t             start;
    long                 i, matched;
    double               t;
    PCRE2_SIZE           erroff;
    pcre2_code          *re;
    pcre2_match_data    *md;
    pcre2_match_context *mctx;

    re = pcre2_compile((PCRE2_SPTR) pattern, PCRE2_ZERO_TERMINATED,
                       PCRE2_UTF|PCRE2_MATCH_INVALID_UTF, &errcode, &erroff,
                       NULL);
    if (re == NULL || pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) != 0) {
        return 1;
    }

    md = pcre2_match_data_create_from_pattern(re, NULL);
    mctx = pcre2_match_context_create(NULL);
    pcre2_set_match_limit(mctx, 1000000);

    matched = 0;
    start = ngx_http_asyncx_now_usec();

    /* like the handler: generate each record, then match it */
    for (i = 0; i < records; i++) {
        len = ngx_http_asyncx_dataset_record(i, rec);
        rec[len] = '\0';

        if (pcre2_match(re, rec, len, 0, 0, md, mctx) >= 0) {
            matched++;
        }
    }

    t = elapsed(start);
    printf("regex pattern=%s records=%ld matched=%ld seconds=%.3f "
           "subjects_per_s=%.0f\n", pattern, records, matched, t, records / t);

    pcre2_match_context_free(mctx);
    pcre2_match_data_free(md);
    pcre2_code_free(re);

    return 0;
}


int
main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "pbkdf2") == 0) {
        return bench_pbkdf2(atol(argv[2]), atof(argv[3]));
    }

    if (argc == 4 && strcmp(argv[1], "json") == 0) {
        return bench_json(atol(argv[2]), atof(argv[3]));
    }

    if (argc == 4 && strcmp(argv[1], "regex") == 0) {
        return bench_regex(argv[2], atol(argv[3]));
    }

    fprintf(stderr, "usage: baseline pbkdf2 <iterations> <seconds> | "
                    "json <items> <seconds> | regex <pattern> <records>\n");
    return 2;
}
