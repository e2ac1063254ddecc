/*
 * Unit tests for the offload handlers' pure pieces: the strict base64
 * codec, the PBKDF2 hash string (format and parse, every refusal), and
 * the path checks behind /files/read and /files/write.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_offload_util.h"


#define S(s)  (u_char *) s, sizeof(s) - 1


static void
test_b64_encode_rfc4648(void **state)
{
    /* the RFC 4648 section 10 test vectors */
    static const char  *in[] = { "", "f", "fo", "foo", "foob", "fooba",
                                 "foobar" };
    static const char  *out[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==",
                                  "Zm9vYmE=", "Zm9vYmFy" };
    u_char              buf[16], *p;
    size_t              i;

    for (i = 0; i < 7; i++) {
        p = ngx_http_asyncx_b64_encode(buf, (u_char *) in[i], strlen(in[i]));
        assert_int_equal(p - buf, strlen(out[i]));
        assert_int_equal(p - buf, ngx_http_asyncx_b64_len(strlen(in[i])));
        assert_memory_equal(buf, out[i], p - buf);
    }
}


static void
test_b64_roundtrip_binary(void **state)
{
    u_char  src[256], enc[400], dec[256], *p;
    size_t  n, len;

    for (n = 0; n < 256; n++) {
        src[n] = (u_char) (255 - n);
    }

    for (len = 1; len <= 256; len += 17) {
        p = ngx_http_asyncx_b64_encode(enc, src, len);
        assert_int_equal(ngx_http_asyncx_b64_decode(dec, sizeof(dec), &n,
                                                    enc, p - enc),
                         NGX_OK);
        assert_int_equal(n, len);
        assert_memory_equal(dec, src, len);
    }
}


static void
test_b64_decode_strict(void **state)
{
    u_char  dec[16];
    size_t  n;

    assert_int_equal(ngx_http_asyncx_b64_decode(dec, sizeof(dec), &n,
                                                S("Zm9vYg==")), NGX_OK);
    assert_int_equal(n, 4);
    assert_memory_equal(dec, "foob", 4);

    /* unpadded, bad characters, misplaced padding, empty */
    assert_int_equal(ngx_http_asyncx_b64_decode(dec, sizeof(dec), &n,
                                                S("Zm9vYg")), NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_b64_decode(dec, sizeof(dec), &n,
                                                S("Zm9v!g==")), NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_b64_decode(dec, sizeof(dec), &n,
                                                S("Zm=vYg==")), NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_b64_decode(dec, sizeof(dec), &n,
                                                S("====")), NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_b64_decode(dec, sizeof(dec), &n,
                                                S("")), NGX_DECLINED);
    /* url-safe alphabet is not this alphabet */
    assert_int_equal(ngx_http_asyncx_b64_decode(dec, sizeof(dec), &n,
                                                S("ab-_")), NGX_DECLINED);

    /* non-canonical: "Zh==" carries bits after the last byte */
    assert_int_equal(ngx_http_asyncx_b64_decode(dec, sizeof(dec), &n,
                                                S("Zh==")), NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_b64_decode(dec, sizeof(dec), &n,
                                                S("Zm9=")), NGX_DECLINED);

    /* output larger than the buffer */
    assert_int_equal(ngx_http_asyncx_b64_decode(dec, 3, &n,
                                                S("Zm9vYg==")), NGX_DECLINED);
}


static void
test_pbkdf2_format_parse(void **state)
{
    u_char                          buf[NGX_HTTP_ASYNCX_PBKDF2_HASH_MAX];
    size_t                          n, i;
    const char                     *reason;
    ngx_http_asyncx_pbkdf2_hash_t   h, p;

    /* Django's layout: the salt is text and goes in as it is */
    h.iterations = 600000;
    h.salt_len = 22;
    h.digest_len = 32;
    memcpy(h.salt, "abcdefghijklmnopqrstuv", 22);

    for (i = 0; i < 32; i++) {
        h.digest[i] = (u_char) (0xff - i);
    }

    n = ngx_http_asyncx_pbkdf2_format(buf, sizeof(buf), &h);
    assert_int_equal(n, strlen((char *) buf));
    assert_string_equal((char *) buf,
                        "pbkdf2_sha256$600000$abcdefghijklmnopqrstuv$"
                        "//79/Pv6+fj39vX08/Lx8O/u7ezr6uno5+bl5OPi4eA=");

    assert_int_equal(ngx_http_asyncx_pbkdf2_parse(buf, n, 2000000, &p,
                                                  &reason), NGX_OK);
    assert_int_equal(p.iterations, 600000);
    assert_int_equal(p.salt_len, 22);
    assert_int_equal(p.digest_len, 32);
    assert_memory_equal(p.salt, "abcdefghijklmnopqrstuv", 22);
    assert_memory_equal(p.digest, h.digest, 32);

    /* a buffer that is too small is refused, not overrun */
    assert_int_equal(ngx_http_asyncx_pbkdf2_format(buf, 40, &h), 0);

    /* the longest salt still fits the buffer, with the largest count */
    h.iterations = 4294967295U;
    h.salt_len = NGX_HTTP_ASYNCX_PBKDF2_SALT_MAX;
    h.digest_len = NGX_HTTP_ASYNCX_PBKDF2_MAX_BYTES;
    memset(h.salt, 'x', h.salt_len);
    assert_true(ngx_http_asyncx_pbkdf2_format(buf, sizeof(buf), &h) > 0);
}


static void
test_pbkdf2_salt(void **state)
{
    u_char  rnd[256], salt[300];
    size_t  i, n;

    for (i = 0; i < 256; i++) {
        rnd[i] = (u_char) i;
    }

    /* 248 of the 256 byte values map, 4 times onto each of 62 chars */
    n = ngx_http_asyncx_pbkdf2_salt(salt, sizeof(salt), rnd, 256);
    assert_int_equal(n, 248);
    assert_memory_equal(salt, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRST"
                              "UVWXYZ0123456789abcd", 66);

    for (i = 0; i < n; i++) {
        assert_true((salt[i] >= 'a' && salt[i] <= 'z')
                    || (salt[i] >= 'A' && salt[i] <= 'Z')
                    || (salt[i] >= '0' && salt[i] <= '9'));
    }

    /* stops at n characters; skipped bytes are not counted */
    assert_int_equal(ngx_http_asyncx_pbkdf2_salt(salt, 2, rnd + 245, 11), 2);
    assert_memory_equal(salt, "78", 2);
    assert_int_equal(ngx_http_asyncx_pbkdf2_salt(salt, 3, rnd + 247, 9), 1);
    assert_memory_equal(salt, "9", 1);
    assert_int_equal(ngx_http_asyncx_pbkdf2_salt(salt, 3, rnd + 248, 8), 0);
}


static void
test_pbkdf2_parse_refusals(void **state)
{
    const char                     *reason;
    ngx_http_asyncx_pbkdf2_hash_t   h;
    u_char                          long_salt[200];

#define REFUSED(s, max, rc, why)                                              \
    reason = NULL;                                                            \
    assert_int_equal(ngx_http_asyncx_pbkdf2_parse(S(s), max, &h, &reason),    \
                     rc);                                                     \
    assert_string_equal(reason, why)

#define ALG    "unsupported algorithm, expected \"pbkdf2_sha256$\""
#define FIELDS "expected 4 fields separated by \"$\""
#define ITER   "invalid or too large iteration count"
#define SALT   "the salt must be 1 to 128 bytes"
#define DIGEST "invalid digest encoding or length"

    /* a hash of another scheme (Django's bcrypt, md5) */
    REFUSED("bcrypt$$2b$12$abc", 1000000, NGX_DECLINED, ALG);
    REFUSED("pbkdf2_sha1$1000$AAAA$AAAAAAAAAAAAAAAAAAAAAA==", 1000000,
            NGX_DECLINED, ALG);
    REFUSED("", 1000000, NGX_DECLINED, ALG);

    /* field count */
    REFUSED("pbkdf2_sha256$1000$AAAA", 1000000, NGX_DECLINED, FIELDS);
    REFUSED("pbkdf2_sha256$1000$AAAA$AAAAAAAAAAAAAAAAAAAAAA==$x", 1000000,
            NGX_DECLINED, FIELDS);

    /*
     * iterations: zero, leading zero, sign, over the cap, empty; only
     * these are NGX_HTTP_ASYNCX_PBKDF2_ITERATIONS (the answer then names
     * the limit)
     */
    REFUSED("pbkdf2_sha256$0$AAAA$AAAAAAAAAAAAAAAAAAAAAA==", 1000000,
            NGX_HTTP_ASYNCX_PBKDF2_ITERATIONS, ITER);
    REFUSED("pbkdf2_sha256$01000$AAAA$AAAAAAAAAAAAAAAAAAAAAA==", 1000000,
            NGX_HTTP_ASYNCX_PBKDF2_ITERATIONS, ITER);
    REFUSED("pbkdf2_sha256$-1$AAAA$AAAAAAAAAAAAAAAAAAAAAA==", 1000000,
            NGX_HTTP_ASYNCX_PBKDF2_ITERATIONS, ITER);
    REFUSED("pbkdf2_sha256$2000001$AAAA$AAAAAAAAAAAAAAAAAAAAAA==", 2000000,
            NGX_HTTP_ASYNCX_PBKDF2_ITERATIONS, ITER);
    REFUSED("pbkdf2_sha256$$AAAA$AAAAAAAAAAAAAAAAAAAAAA==", 1000000,
            NGX_HTTP_ASYNCX_PBKDF2_ITERATIONS, ITER);

    /* an empty salt; digest encodings; a digest shorter than 16 bytes */
    REFUSED("pbkdf2_sha256$1000$$AAAAAAAAAAAAAAAAAAAAAA==", 1000000,
            NGX_DECLINED, SALT);
    REFUSED("pbkdf2_sha256$1000$AAAA$AAAA", 1000000, NGX_DECLINED, DIGEST);
    REFUSED("pbkdf2_sha256$1000$AAAA$AAAAAAAAAAAAAAAAAAAAAA", 1000000,
            NGX_DECLINED, DIGEST);
    REFUSED("pbkdf2_sha256$1000$AAAA$AAAAAAAAAAAAAAAAAAAAA*==", 1000000,
            NGX_DECLINED, DIGEST);

#undef REFUSED

    /* a salt longer than 128 bytes */
    memcpy(long_salt, "pbkdf2_sha256$1000$", 19);
    memset(long_salt + 19, 's', 129);
    memcpy(long_salt + 148, "$AAAAAAAAAAAAAAAAAAAAAA==", 25);
    assert_int_equal(ngx_http_asyncx_pbkdf2_parse(long_salt, 173, 1000000,
                                                  &h, &reason),
                     NGX_DECLINED);
    assert_string_equal(reason, SALT);
    assert_int_equal(ngx_http_asyncx_pbkdf2_parse(long_salt + 1, 172,
                                                  1000000, &h, &reason),
                     NGX_DECLINED);
    assert_string_equal(reason, ALG);
    long_salt[147] = '$';
    assert_int_equal(ngx_http_asyncx_pbkdf2_parse(long_salt, 147 + 25,
                                                  1000000, &h, &reason),
                     NGX_DECLINED);
    assert_string_equal(reason, FIELDS);

#undef ALG
#undef FIELDS
#undef ITER
#undef SALT
#undef DIGEST

    /* any salt text is the salt's bytes, "*", "=" and UTF-8 included */
    assert_int_equal(ngx_http_asyncx_pbkdf2_parse(
                         S("pbkdf2_sha256$2000000$AA*=\xEA\xB0\x80$"
                           "AAAAAAAAAAAAAAAAAAAAAA=="),
                         2000000, &h, &reason),
                     NGX_OK);
    assert_int_equal(h.iterations, 2000000);
    assert_int_equal(h.salt_len, 7);
    assert_memory_equal(h.salt, "AA*=\xEA\xB0\x80", 7);
    assert_int_equal(h.digest_len, 16);

    /* the old base64 look of a salt is taken as text, not decoded */
    assert_int_equal(ngx_http_asyncx_pbkdf2_parse(
                         S("pbkdf2_sha256$1000$YXN5bmN4LXNhbHQtMDAwMQ==$"
                           "AAAAAAAAAAAAAAAAAAAAAA=="),
                         2000000, &h, &reason),
                     NGX_OK);
    assert_int_equal(h.salt_len, 24);
    assert_memory_equal(h.salt, "YXN5bmN4LXNhbHQtMDAwMQ==", 24);
}


static void
test_path_within(void **state)
{
    assert_int_equal(ngx_http_asyncx_path_within(S("/srv/files"),
                                                 S("/srv/files")), NGX_OK);
    assert_int_equal(ngx_http_asyncx_path_within(S("/srv/files"),
                                                 S("/srv/files/a/b")), NGX_OK);

    /* a sibling sharing the prefix is outside */
    assert_int_equal(ngx_http_asyncx_path_within(S("/srv/files"),
                                                 S("/srv/files-old/a")),
                     NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_path_within(S("/srv/files"),
                                                 S("/srv/file")),
                     NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_path_within(S("/srv/files"),
                                                 S("/etc/passwd")),
                     NGX_DECLINED);

    /* a root of "/" holds everything; relative input is never inside */
    assert_int_equal(ngx_http_asyncx_path_within(S("/"), S("/etc/passwd")),
                     NGX_OK);
    assert_int_equal(ngx_http_asyncx_path_within(S("/srv"), S("srv/x")),
                     NGX_DECLINED);
}


static void
test_path_normalize(void **state)
{
    static const char  *cases[][2] = {
        { "/", "/" },
        { "//", "/" },
        { "/etc/passwd", "/etc/passwd" },
        { "/srv//files/./a/", "/srv/files/a" },
        { "/srv/files/../../etc", "/etc" },
        { "/../../etc/./x/..", "/etc" },
        { "/a/b/..", "/a" },
        { "/a/..", "/" },
        { "/..", "/" },
        { "/a/.../b", "/a/.../b" },
        { "/a/..b/.c", "/a/..b/.c" },
    };

    u_char      buf[64];
    size_t      n, i, len;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        len = strlen(cases[i][0]);
        memcpy(buf, cases[i][0], len);
        n = ngx_http_asyncx_path_normalize(buf, len);
        buf[n] = '\0';
        assert_string_equal((char *) buf, cases[i][1]);
    }
}


static void
test_path_split(void **state)
{
    size_t  dir_len;

    assert_int_equal(ngx_http_asyncx_path_split(S("test.txt"), &dir_len),
                     NGX_OK);
    assert_int_equal(dir_len, 0);

    assert_int_equal(ngx_http_asyncx_path_split(S("./test.txt"), &dir_len),
                     NGX_OK);
    assert_int_equal(dir_len, 1);

    assert_int_equal(ngx_http_asyncx_path_split(S("a/b/c.json"), &dir_len),
                     NGX_OK);
    assert_int_equal(dir_len, 3);

    assert_int_equal(ngx_http_asyncx_path_split(S("a/"), &dir_len),
                     NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_path_split(S("a/."), &dir_len),
                     NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_path_split(S("."), &dir_len),
                     NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_path_split(S("a/.."), &dir_len),
                     NGX_DECLINED);

    /* dot files are names like any other */
    assert_int_equal(ngx_http_asyncx_path_split(S("a/.env"), &dir_len),
                     NGX_OK);
    assert_int_equal(dir_len, 1);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_b64_encode_rfc4648),
        cmocka_unit_test(test_b64_roundtrip_binary),
        cmocka_unit_test(test_b64_decode_strict),
        cmocka_unit_test(test_pbkdf2_format_parse),
        cmocka_unit_test(test_pbkdf2_salt),
        cmocka_unit_test(test_pbkdf2_parse_refusals),
        cmocka_unit_test(test_path_within),
        cmocka_unit_test(test_path_normalize),
        cmocka_unit_test(test_path_split),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
