/*
 * Unit tests for the pipeline's pure helpers: the "1.9초 (1단계 0.5초 +
 * ...)" breakdown, name and URI checks, fail lists, the classification
 * of a call's outcome.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_pipeline_util.h"
#include "ngx_http_asyncx_exercise_format.h"


#define S(s)  (u_char *) s, sizeof(s) - 1


static void
test_breakdown_exercise(void **state)
{
    u_char      buf[256];
    size_t      n;
    ngx_str_t   names[3] = {
        ngx_string("1단계"), ngx_string("2단계"), ngx_string("3단계")
    };
    uint64_t    usec[3] = { 500400, 600900, 801600 };
    const char *want = "1.9초 (1단계 0.5초 + 2단계 0.6초 + 3단계 0.8초)";

    n = ngx_http_asyncx_exercise_format_breakdown(buf, sizeof(buf), 1903200,
                                                  names, usec, 3, 1);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(buf, want, n);
    assert_int_equal(buf[n], '\0');
}


static void
test_breakdown_total_only(void **state)
{
    u_char  buf[64];
    size_t  n;

    n = ngx_http_asyncx_exercise_format_breakdown(buf, sizeof(buf), 2604000,
                                                  NULL, NULL, 0, 1);
    assert_int_equal(n, strlen("2.6초"));
    assert_memory_equal(buf, "2.6초", n);
}


static void
test_breakdown_rounding_and_two_decimals(void **state)
{
    u_char      buf[128];
    size_t      n;
    ngx_str_t   names[2] = { ngx_string("a"), ngx_string("b") };
    uint64_t    usec[2] = { 49999, 150000 };
    const char *want = "0.20초 (a 0.05초 + b 0.15초)";

    n = ngx_http_asyncx_exercise_format_breakdown(buf, sizeof(buf), 199999,
                                                  names, usec, 2, 2);
    assert_memory_equal(buf, want, strlen(want));
    assert_int_equal(n, strlen(want));
}


static void
test_breakdown_too_small(void **state)
{
    u_char      buf[20];
    ngx_str_t   names[3] = {
        ngx_string("1단계"), ngx_string("2단계"), ngx_string("3단계")
    };
    uint64_t    usec[3] = { 500000, 600000, 800000 };

    /* refused, never truncated */
    assert_int_equal(ngx_http_asyncx_exercise_format_breakdown(buf,
                         sizeof(buf), 1900000, names, usec, 3, 1), 0);
    assert_int_equal(ngx_http_asyncx_exercise_format_breakdown(buf, 4,
                         1900000, NULL, NULL, 0, 1), 0);
}


static void
test_check_name(void **state)
{
    assert_int_equal(ngx_http_asyncx_pipeline_check_name(S("사용자")), NGX_OK);
    assert_int_equal(ngx_http_asyncx_pipeline_check_name(S("user_1-x.y")),
                     NGX_OK);

    assert_int_equal(ngx_http_asyncx_pipeline_check_name(S("")), NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_name(S("a b")), NGX_ERROR);

    /* C1 controls (NEL, CSI) are controls too; U+00A0 and on are not */
    assert_int_equal(ngx_http_asyncx_pipeline_check_name(S("a\xc2\x85" "b")),
                     NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_name(S("a\xc2\x9b")),
                     NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_name(S("a\xc2\xa9" "b")),
                     NGX_OK);
    assert_int_equal(ngx_http_asyncx_pipeline_check_name(S("a,b")), NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_name(S("a=b")), NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_name(S("a/b")), NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_name(S("a\"b")),
                     NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_name(S("a%20")),
                     NGX_ERROR);
    /* broken UTF-8 */
    assert_int_equal(ngx_http_asyncx_pipeline_check_name(S("\xec\x82")),
                     NGX_ERROR);
    /* too long */
    assert_int_equal(ngx_http_asyncx_pipeline_check_name(S(
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")),
        NGX_ERROR);
}


static void
test_check_uri(void **state)
{
    size_t  path;

    assert_int_equal(ngx_http_asyncx_pipeline_check_uri(S("/svc/user"),
                                                        &path), NGX_OK);
    assert_int_equal(path, 9);

    assert_int_equal(ngx_http_asyncx_pipeline_check_uri(S("/a?x=1&y=/../"),
                                                        &path), NGX_OK);
    assert_int_equal(path, 2);

    assert_int_equal(ngx_http_asyncx_pipeline_check_uri(S("/..a/.b/c."),
                                                        &path), NGX_OK);

    assert_int_equal(ngx_http_asyncx_pipeline_check_uri(S("svc"), &path),
                     NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_uri(S(""), &path),
                     NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_uri(S("/a/../b"), &path),
                     NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_uri(S("/a/.."), &path),
                     NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_uri(S("/./a"), &path),
                     NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_uri(S("/a b"), &path),
                     NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_uri(S("/a#f"), &path),
                     NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_uri(S("/a\x01"), &path),
                     NGX_ERROR);

    /* dot segments and NUL percent-encoded, as nginx decodes them */
    assert_int_equal(ngx_http_asyncx_pipeline_check_uri(S("/a/%2e%2e/b"),
                                                        &path), NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_uri(S("/a/%2E."),
                                                        &path), NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_uri(S("/a/.%2e?x"),
                                                        &path), NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_uri(S("/%2e/a"),
                                                        &path), NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_uri(S("/a%2f..%2Fb"),
                                                        &path), NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_uri(S("/a%00b"), &path),
                     NGX_ERROR);

    /* a backslash in the path, plain or encoded; the arguments keep it */
    assert_int_equal(ngx_http_asyncx_pipeline_check_uri(S("/be/x\\y"),
                                                        &path), NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_uri(S("/be/x%5cy"),
                                                        &path), NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_uri(S("/be/x?a=\\"),
                                                        &path), NGX_OK);

    /* what decodes to no dot segment stays */
    assert_int_equal(ngx_http_asyncx_pipeline_check_uri(S("/a/%2e%2e%2e/b"),
                                                        &path), NGX_OK);
    assert_int_equal(ngx_http_asyncx_pipeline_check_uri(S("/a/%2ex"),
                                                        &path), NGX_OK);
    assert_int_equal(ngx_http_asyncx_pipeline_check_uri(S("/a/%2"), &path),
                     NGX_OK);
    assert_int_equal(ngx_http_asyncx_pipeline_check_uri(S("/a/%zz/%"), &path),
                     NGX_OK);
    assert_int_equal(ngx_http_asyncx_pipeline_check_uri(S("/a?q=%2e%2e"),
                                                        &path), NGX_OK);
    assert_int_equal(path, 2);
}


static void
test_check_decoded(void **state)
{
    ngx_str_t  raw, dec;

#define DEC(r, d)                                                             \
    (raw.data = (u_char *) r, raw.len = sizeof(r) - 1,                        \
     dec.data = (u_char *) d, dec.len = sizeof(d) - 1,                        \
     ngx_http_asyncx_pipeline_check_decoded(&raw, &dec))

    assert_int_equal(DEC("/u/42", "/u/42"), NGX_OK);
    assert_int_equal(DEC("/u/%C3%A9", "/u/\xc3\xa9"), NGX_OK);
    assert_int_equal(DEC("/u/42%3Fa", "/u/42?a"), NGX_ERROR);
    assert_int_equal(DEC("/u/42%23", "/u/42#"), NGX_ERROR);
    assert_int_equal(DEC("/u/a%20b", "/u/a b"), NGX_ERROR);
    assert_int_equal(DEC("/u/a%0d%0ab", "/u/a\r\nb"), NGX_ERROR);
    assert_int_equal(DEC("/u/a%7f", "/u/a\x7f"), NGX_ERROR);
    assert_int_equal(DEC("/u/42%2F99", "/u/42/99"), NGX_ERROR);
    assert_int_equal(DEC("/u/%ff", "/u/\xff"), NGX_ERROR);

    /* encoded twice, or escapes nginx's decoder would drop */
    assert_int_equal(DEC("/u/%252e%252e", "/u/%2e%2e"), NGX_ERROR);
    assert_int_equal(DEC("/u/%%2e", "/u/%2e"), NGX_ERROR);
    assert_int_equal(DEC("/u/100%25", "/u/100%"), NGX_ERROR);
    assert_int_equal(DEC("/u/100%", "/u/100%"), NGX_ERROR);
    assert_int_equal(DEC("/u/a%2.b", "/u/a.b"), NGX_ERROR);
    assert_int_equal(DEC("/u/%2/%2f", "/u//"), NGX_ERROR);
    assert_int_equal(DEC("/u/%2f", "/u//"), NGX_ERROR);

    /* dot segments, as a fixed URI's */
    assert_int_equal(DEC("/u/./x", "/u/./x"), NGX_ERROR);
    assert_int_equal(DEC("/u/%2e", "/u/."), NGX_ERROR);
    assert_int_equal(DEC("/u/..", "/u/.."), NGX_ERROR);
    assert_int_equal(DEC("/u/.x/..y", "/u/.x/..y"), NGX_OK);
    assert_int_equal(DEC("/u/%41", "/u/A"), NGX_OK);

#undef DEC

    assert_int_equal(ngx_http_asyncx_pipeline_check_header_value(S("a b")),
                     NGX_OK);
    assert_int_equal(ngx_http_asyncx_pipeline_check_header_value(S("a\rb")),
                     NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_header_value(S("a\nb")),
                     NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_header_value(S("a\0b")),
                     NGX_ERROR);
}


static void
test_check_uri_template(void **state)
{
    size_t  n;

#define TPL(s)  ngx_http_asyncx_pipeline_check_uri_template(S(s), &n)

    assert_int_equal(TPL("/users/$arg_id"), NGX_OK);
    assert_int_equal(n, sizeof("/users/$arg_id") - 1);
    assert_int_equal(TPL("/u/$arg_id?x=$arg_x&y=1"), NGX_OK);
    assert_int_equal(n, sizeof("/u/$arg_id") - 1);
    assert_int_equal(TPL("$backend_uri"), NGX_OK);
    assert_int_equal(TPL("/a/.$x/b"), NGX_OK);
    assert_int_equal(TPL("/$x/../b"), NGX_ERROR);
    assert_int_equal(TPL("/a/./$x"), NGX_ERROR);
    assert_int_equal(TPL("/a/$x/.."), NGX_ERROR);
    assert_int_equal(TPL("users/$x"), NGX_ERROR);
    assert_int_equal(TPL("/u/$x y"), NGX_ERROR);
    assert_int_equal(TPL("/u/$x#f"), NGX_ERROR);
    assert_int_equal(TPL(""), NGX_ERROR);
    assert_int_equal(TPL("/$x/%2e%2E/b"), NGX_ERROR);
    assert_int_equal(TPL("/a/%2e/$x"), NGX_ERROR);
    assert_int_equal(TPL("/$x%00"), NGX_ERROR);
    assert_int_equal(TPL("/be\\x/$x"), NGX_ERROR);
    assert_int_equal(TPL("/$x/%5C"), NGX_ERROR);
    assert_int_equal(TPL("/a/%2e$x/b"), NGX_OK);
    assert_int_equal(TPL("/a/%2e%2e%2e/$x"), NGX_OK);

#undef TPL
}


static void
test_check_uri_value(void **state)
{
#define VAL(s, path)  ngx_http_asyncx_pipeline_check_uri_value(S(s), path)

    assert_int_equal(VAL("/users/42", 1), NGX_OK);
    assert_int_equal(VAL("/users/%2e%2e", 1), NGX_OK);  /* decoded later */
    assert_int_equal(VAL("/users/42?admin=1", 1), NGX_ERROR);
    assert_int_equal(VAL("users/42", 1), NGX_ERROR);
    assert_int_equal(VAL("", 1), NGX_ERROR);
    assert_int_equal(VAL("/a b", 1), NGX_ERROR);
    assert_int_equal(VAL("/a\r\nX: y", 1), NGX_ERROR);
    assert_int_equal(VAL("id=1&x=?", 0), NGX_OK);
    assert_int_equal(VAL("", 0), NGX_OK);
    assert_int_equal(VAL("id=1 2", 0), NGX_ERROR);
    assert_int_equal(VAL("id=1#x", 0), NGX_ERROR);

#undef VAL
}


static void
test_json_member(void **state)
{
    u_char     *pos, *last;
    ngx_str_t   key, value;

    static u_char  text[] = "{ \"a\" : 1, \"b\":{\"c\":[1,{\"d\":\"}\"}]},"
                            "\"e\\\"f\":\"x,y\" ,\"g\":[] , \"h\":null}";

    pos = text;
    last = text + sizeof(text) - 1;

#define MEMBER(k, v)                                                          \
    assert_int_equal(ngx_http_asyncx_pipeline_json_next(&pos, last, &key, &value),  \
                     NGX_OK);                                                 \
    assert_int_equal(key.len, sizeof(k) - 1);                                 \
    assert_memory_equal(key.data, k, key.len);                                \
    assert_int_equal(value.len, sizeof(v) - 1);                               \
    assert_memory_equal(value.data, v, value.len)

    MEMBER("a", "1");
    MEMBER("b", "{\"c\":[1,{\"d\":\"}\"}]}");
    MEMBER("e\\\"f", "\"x,y\"");
    MEMBER("g", "[]");
    MEMBER("h", "null");

    assert_int_equal(ngx_http_asyncx_pipeline_json_next(&pos, last, &key, &value),
                     NGX_DONE);

    /* structure inside strings, escapes before quotes, UTF-8 in names */
    {
        static u_char  text2[] = "{\"\xEC\x9D\xB4{\":\"[,]}\\\\\","
                                 "\"k\":{\"x\":\"{\\\"}\",\"y\":[\"]\"]},"
                                 "\"n\":-1.5e3\t,\"t\":true}";

        pos = text2;
        last = text2 + sizeof(text2) - 1;

        MEMBER("\xEC\x9D\xB4{", "\"[,]}\\\\\"");
        MEMBER("k", "{\"x\":\"{\\\"}\",\"y\":[\"]\"]}");
        MEMBER("n", "-1.5e3");
        MEMBER("t", "true");

        assert_int_equal(ngx_http_asyncx_pipeline_json_next(&pos, last, &key,
                                                            &value),
                         NGX_DONE);
    }

    pos = (u_char *) "{}";
    assert_int_equal(ngx_http_asyncx_pipeline_json_next(&pos, pos + 2, &key,
                                                 &value),
                     NGX_DONE);

#undef MEMBER
}


/*
 * The walker over generated objects: string contents made of pieces
 * that matter to the word-at-a-time skip (escaped quotes and
 * backslashes, "\\u" escapes, two- and three-byte UTF-8, runs of plain
 * bytes), at every offset from an 8-byte boundary, inside a name, a
 * value and a nested value; each member must come back exactly as it
 * was written, and after the last one the position is after '}'.
 */

static void
test_json_walk_generated(void **state)
{
    u_char      buf[1024], str[256], *p, *pos, *last, *nested;
    size_t      slen, nlen;
    uint32_t    seed;
    ngx_str_t   key, value;
    ngx_uint_t  round, offset, i, n, piece;

    static const char  *pieces[] = {
        "a", "\\\"", "\\\\", "\\u00e9", "\xC3\xA9", "\xED\x95\x9C", "bcdefgh",
        "\\n", "}", "]", ",", ":", "{", "x\\\\\\\"y"
    };

    seed = 20261130;

    for (round = 0; round < 2000; round++) {
        seed = seed * 1103515245 + 12345;
        n = (seed >> 16) % 12;

        slen = 0;

        for (i = 0; i < n; i++) {
            seed = seed * 1103515245 + 12345;
            piece = (seed >> 16) % (sizeof(pieces) / sizeof(pieces[0]));
            slen = ngx_cpymem(str + slen, pieces[piece],
                              strlen(pieces[piece])) - str;
        }

        offset = round % 16;
        p = buf + offset;

        /* {"<s>":"<s>","n":[1,{"<s>":"<s>"}],"z":true} */
        p = ngx_cpymem(p, "{\"", 2);
        p = ngx_cpymem(p, str, slen);
        p = ngx_cpymem(p, "\":\"", 3);
        p = ngx_cpymem(p, str, slen);
        p = ngx_cpymem(p, "\",\"n\":", 6);
        nested = p;
        p = ngx_cpymem(p, "[1,{\"", 5);
        p = ngx_cpymem(p, str, slen);
        p = ngx_cpymem(p, "\":\"", 3);
        p = ngx_cpymem(p, str, slen);
        p = ngx_cpymem(p, "\"}]", 3);
        nlen = p - nested;
        p = ngx_cpymem(p, ",\"z\":true}", 10);

        pos = buf + offset;
        last = p;

        assert_int_equal(ngx_http_asyncx_pipeline_json_next(&pos, last, &key,
                                                            &value),
                         NGX_OK);
        assert_int_equal(key.len, slen);
        assert_memory_equal(key.data, str, slen);
        assert_int_equal(value.len, slen + 2);
        assert_memory_equal(value.data + 1, str, slen);

        assert_int_equal(ngx_http_asyncx_pipeline_json_next(&pos, last, &key,
                                                            &value),
                         NGX_OK);
        assert_int_equal(value.len, nlen);
        assert_ptr_equal(value.data, nested);

        assert_int_equal(ngx_http_asyncx_pipeline_json_key(&pos, last, &key),
                         NGX_OK);
        assert_memory_equal(key.data, "z", 1);
        assert_ptr_equal(ngx_http_asyncx_pipeline_json_skip(pos, last),
                         last - 1);
        pos = last - 1;

        assert_int_equal(ngx_http_asyncx_pipeline_json_key(&pos, last, &key),
                         NGX_DONE);
        assert_ptr_equal(pos, last);
    }
}



static void
test_check_token(void **state)
{
    assert_int_equal(ngx_http_asyncx_pipeline_check_token(S("X-Tenant")),
                     NGX_OK);
    assert_int_equal(ngx_http_asyncx_pipeline_check_token(
                         S("a!#$%&'*+-.^_`|~9")),
                     NGX_OK);
    assert_int_equal(ngx_http_asyncx_pipeline_check_token(S("")), NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_token(S("a b")),
                     NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_token(S("Cookie:")),
                     NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_token(S("a\"b")),
                     NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_token(S("배송")),
                     NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_check_token(S("a(b)")),
                     NGX_ERROR);
}


static void
test_in_list(void **state)
{
    assert_true(ngx_http_asyncx_pipeline_in_list(S("배송"), S("배송")));
    assert_true(ngx_http_asyncx_pipeline_in_list(S("가격,배송"), S("배송")));
    assert_true(ngx_http_asyncx_pipeline_in_list(S("x,*"), S("배송")));
    assert_false(ngx_http_asyncx_pipeline_in_list(S("배송비"), S("배송")));
    assert_false(ngx_http_asyncx_pipeline_in_list(S("배"), S("배송")));
    assert_false(ngx_http_asyncx_pipeline_in_list(S(""), S("배송")));
    assert_false(ngx_http_asyncx_pipeline_in_list(S(",,"), S("배송")));
    assert_false(ngx_http_asyncx_pipeline_in_list(S("**"), S("배송")));
}


static void
test_classify(void **state)
{
    assert_int_equal(ngx_http_asyncx_pipeline_classify(NGX_OK, 200, 0),
                     NGX_HTTP_ASYNCX_CALL_OK);
    assert_int_equal(ngx_http_asyncx_pipeline_classify(NGX_OK, 204, 0),
                     NGX_HTTP_ASYNCX_CALL_OK);
    assert_int_equal(ngx_http_asyncx_pipeline_classify(NGX_OK, 500, 0),
                     NGX_HTTP_ASYNCX_CALL_STATUS);
    assert_int_equal(ngx_http_asyncx_pipeline_classify(NGX_OK, 302, 0),
                     NGX_HTTP_ASYNCX_CALL_STATUS);
    /* nginx answered itself: "return 404", no location */
    assert_int_equal(ngx_http_asyncx_pipeline_classify(404, 0, 0),
                     NGX_HTTP_ASYNCX_CALL_STATUS);
    assert_int_equal(ngx_http_asyncx_pipeline_classify(NGX_ERROR, 200, 1),
                     NGX_HTTP_ASYNCX_CALL_TOO_LARGE);
    assert_int_equal(ngx_http_asyncx_pipeline_classify(NGX_OK, 200, 1),
                     NGX_HTTP_ASYNCX_CALL_TOO_LARGE);
    assert_int_equal(ngx_http_asyncx_pipeline_classify(NGX_ERROR, 200, 0),
                     NGX_HTTP_ASYNCX_CALL_ERROR);
    assert_int_equal(ngx_http_asyncx_pipeline_classify(NGX_OK, 0, 0),
                     NGX_HTTP_ASYNCX_CALL_ERROR);

    assert_string_equal(ngx_http_asyncx_pipeline_kind_name(
                            NGX_HTTP_ASYNCX_CALL_TIMEOUT), "timeout");
    assert_string_equal(ngx_http_asyncx_pipeline_kind_name(
                            NGX_HTTP_ASYNCX_CALL_INVALID_JSON),
                        "invalid_json");
    assert_string_equal(ngx_http_asyncx_pipeline_kind_name(
                            (ngx_http_asyncx_call_kind_e) 99), "error");
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_breakdown_exercise),
        cmocka_unit_test(test_breakdown_total_only),
        cmocka_unit_test(test_breakdown_rounding_and_two_decimals),
        cmocka_unit_test(test_breakdown_too_small),
        cmocka_unit_test(test_check_name),
        cmocka_unit_test(test_check_uri),
        cmocka_unit_test(test_check_decoded),
        cmocka_unit_test(test_check_uri_template),
        cmocka_unit_test(test_check_uri_value),
        cmocka_unit_test(test_json_member),
        cmocka_unit_test(test_json_walk_generated),
        cmocka_unit_test(test_check_token),
        cmocka_unit_test(test_in_list),
        cmocka_unit_test(test_classify),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
