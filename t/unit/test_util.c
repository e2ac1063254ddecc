/*
 * Unit tests for the pure helpers: duration formatting, strict integer
 * parsing, relative path checks, JSON escaping, UTF-8 validation and
 * the synthetic data set's check values (docs/dataset.md).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_dataset.h"
#include "ngx_http_asyncx_exercise_format.h"


#define S(s)  (u_char *) s, sizeof(s) - 1


static void
test_format_seconds(void **state)
{
    u_char  buf[NGX_HTTP_ASYNCX_SECONDS_LEN];
    size_t  n;

    n = ngx_http_asyncx_format_seconds(buf, sizeof(buf), 1903000, 1);
    assert_int_equal(n, strlen("1.9\xEC\xB4\x88"));
    assert_memory_equal(buf, "1.9\xEC\xB4\x88", n);

    n = ngx_http_asyncx_format_seconds(buf, sizeof(buf), 51000, 2);
    assert_memory_equal(buf, "0.05\xEC\xB4\x88", n);

    n = ngx_http_asyncx_format_seconds(buf, sizeof(buf), 1234567, 2);
    assert_memory_equal(buf, "1.23\xEC\xB4\x88", n);

    /* too small a buffer is refused, not truncated */
    assert_int_equal(ngx_http_asyncx_format_seconds(buf, 4, 1000000, 1), 0);
}


/*
 * The integer path against printf("%.*f") of the double, which it must
 * equal byte for byte: every decimals, ties (printf rounds the double:
 * 0.25 -> "0.2", 0.15 -> "0.1" as 0.15 is below in binary), values
 * next to ties, the 2^40 us edge, sizes one byte short, and a sweep.
 */

static void
test_format_duration_printf(void **state)
{
    char        ref[64];
    u_char      buf[64];
    size_t      n;
    uint64_t    v, base[] = { 0, 1, 49999, 50000, 50001, 149999, 150000,
                              150001, 250000, 350000, 950000, 999999,
                              1000000, 1903000, 2500000, 12345678,
                              999999999, ((uint64_t) 1 << 40) - 1,
                              (uint64_t) 1 << 40, ((uint64_t) 1 << 40) + 1,
                              123456789012345ULL };
    ngx_str_t   unit = ngx_string("\xEC\xB4\x88");
    ngx_uint_t  d, i, j;
    int         r;

    for (d = 0; d <= 7; d++) {
        for (i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
            for (j = 0; j < 3; j++) {
                v = base[i] + j * 5;
                r = snprintf(ref, sizeof(ref), "%.*f%s",
                             (int) (d > 6 ? 6 : d), (double) v / 1000000.0,
                             "\xEC\xB4\x88");

                n = ngx_http_asyncx_format_duration(buf, sizeof(buf), v, d,
                                                    &unit);
                assert_int_equal(n, (size_t) r);
                assert_memory_equal(buf, ref, n + 1);

                /* exactly one byte short of the NUL: refused */
                assert_int_equal(ngx_http_asyncx_format_duration(buf, n, v,
                                                           d, &unit), 0);
                assert_int_equal(ngx_http_asyncx_format_duration(buf, n + 1,
                                                           v, d, &unit), n);
            }
        }
    }

    for (v = 0; v < 3000000; v += 997) {
        for (d = 0; d <= 3; d++) {
            r = snprintf(ref, sizeof(ref), "%.*f%s", (int) d,
                         (double) v / 1000000.0, "\xEC\xB4\x88");
            n = ngx_http_asyncx_format_duration(buf, sizeof(buf), v, d,
                                                &unit);
            assert_int_equal(n, (size_t) r);
            assert_memory_equal(buf, ref, n);
        }
    }

    /* every tie of one decimal below 100 s: printf's side of the double */
    for (v = 50000; v < 100000000; v += 100000) {
        r = snprintf(ref, sizeof(ref), "%.1f%s", (double) v / 1000000.0,
                     "\xEC\xB4\x88");
        n = ngx_http_asyncx_format_duration(buf, sizeof(buf), v, 1, &unit);
        assert_int_equal(n, (size_t) r);
        assert_memory_equal(buf, ref, n);
    }
}


/*
 * Generated values against printf, for what the sweep above does not
 * reach: every decimals at any magnitude up to 2^41 us, ties and their
 * neighbours there, any 64-bit value, other unit strings (a fixed
 * xorshift sequence: the same values on every run).
 */

static void
test_format_duration_generated(void **state)
{
    char        ref[96];
    u_char      buf[96];
    size_t      n;
    uint64_t    x, v, scale;
    ngx_str_t   units[] = { ngx_string("\xEC\xB4\x88"), ngx_string(""),
                            ngx_string("s") };
    ngx_str_t  *unit;
    ngx_uint_t  i, d, k;
    int         r;

    x = 88172645463325252ULL;

    for (i = 0; i < 300000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;

        d = x % 7;
        unit = &units[(x >> 3) % 3];

        for (scale = 1, k = d; k < 6; k++) {
            scale *= 10;
        }

        switch (i % 4) {
        case 0:
            v = (x >> 8) % ((uint64_t) 1 << 41);
            break;
        case 1:
            /* a tie of this many decimals, or one of its neighbours */
            v = (x >> 8) % ((uint64_t) 1 << 41) / scale * scale + scale / 2
                + (x >> 60) % 3 - 1;
            break;
        case 2:
            v = x >> ((x >> 58) % 64);
            break;
        default:
            v = ((uint64_t) 1 << 40) - 4096 + (x >> 8) % 8192;
            break;
        }

        r = snprintf(ref, sizeof(ref), "%.*f%.*s", (int) d,
                     (double) v / 1000000.0, (int) unit->len,
                     (char *) unit->data);
        n = ngx_http_asyncx_format_duration(buf, sizeof(buf), v, d, unit);

        assert_int_equal(n, (size_t) r);
        assert_memory_equal(buf, ref, n + 1);
    }
}


static void
test_now_is_monotonic(void **state)
{
    uint64_t  a, b;

    a = ngx_http_asyncx_now_usec();
    b = ngx_http_asyncx_now_usec();
    assert_true(b >= a);
    assert_true(a > 0);
}


/*
 * The bounded writers of the answers against snprintf(): every value
 * class (0, each power of ten and the one before it, the largest), each
 * cut short by every length, as ngx_slprintf() cuts.
 */

static void
test_write_uint_and_copy(void **state)
{
    u_char      buf[NGX_INT64_LEN + 8], *p;
    char        ref[NGX_INT64_LEN + 8];
    uint64_t    v, values[64];
    ngx_uint_t  i, n, cut;
    size_t      len;

    n = 0;
    values[n++] = 0;
    values[n++] = (uint64_t) -1;

    for (v = 1; v <= 1000000000000000000ULL; v *= 10) {
        values[n++] = v;
        values[n++] = v - 1;
        values[n++] = v + 7;
    }

    for (i = 0; i < n; i++) {
        len = snprintf(ref, sizeof(ref), "%llu", (unsigned long long) values[i]);

        for (cut = 0; cut <= len + 1; cut++) {
            ngx_memset(buf, 'x', sizeof(buf));
            p = ngx_http_asyncx_write_uint(buf, buf + cut, values[i]);

            assert_int_equal(p - buf, ngx_min(cut, len));
            assert_memory_equal(buf, ref, p - buf);
            assert_int_equal(buf[p - buf], 'x');
        }
    }

    for (cut = 0; cut <= 6; cut++) {
        ngx_memset(buf, 'x', sizeof(buf));
        p = ngx_http_asyncx_copy_literal(buf, buf + cut, "abcde");
        assert_int_equal(p - buf, ngx_min(cut, 5));
        assert_memory_equal(buf, "abcde", p - buf);
        assert_int_equal(buf[p - buf], 'x');
    }
}



static void
test_parse_uint(void **state)
{
    uint64_t  v;

    assert_int_equal(ngx_http_asyncx_parse_uint(S("10000"), 1000000, &v),
                     NGX_OK);
    assert_int_equal(v, 10000);
    assert_int_equal(ngx_http_asyncx_parse_uint(S("0"), 10, &v), NGX_OK);
    assert_int_equal(v, 0);
    assert_int_equal(ngx_http_asyncx_parse_uint(S(""), 10, &v), NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_parse_uint(S("-1"), 10, &v), NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_parse_uint(S("1e3"), 10000, &v),
                     NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_parse_uint(S(" 1"), 10, &v), NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_parse_uint(S("11"), 10, &v),
                     NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_parse_uint(S("99999999999999999999"),
                                                UINT64_MAX, &v),
                     NGX_DECLINED);

    /* a digit above a small max: "max - digit" must not wrap around */
    assert_int_equal(ngx_http_asyncx_parse_uint(S("2"), 1, &v),
                     NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_parse_uint(S("9"), 1, &v),
                     NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_parse_uint(S("1"), 1, &v), NGX_OK);
    assert_int_equal(v, 1);
    assert_int_equal(ngx_http_asyncx_parse_uint(S("18446744073709551615"),
                                                UINT64_MAX, &v),
                     NGX_OK);
    assert_int_equal(v, UINT64_MAX);
    assert_int_equal(ngx_http_asyncx_parse_uint(S("18446744073709551616"),
                                                UINT64_MAX, &v),
                     NGX_DECLINED);
}


static void
unescape_is(const char *in, const char *out, size_t out_len)
{
    u_char  buf[64];
    size_t  n;

    n = ngx_http_asyncx_unescape_arg(buf, (u_char *) in, strlen(in));
    assert_int_equal(n, out_len);
    assert_memory_equal(buf, out, n);
}


static void
test_unescape_arg(void **state)
{
    u_char  buf[16];

    /* "+" is a plus sign; percent-escapes are decoded, each once */
    unescape_is("a+b.txt", "a+b.txt", 7);
    unescape_is("a%2Bb.txt", "a+b.txt", 7);
    unescape_is("c%2B%2B.txt", "c++.txt", 7);
    unescape_is("notes%3Fsecret.txt", "notes?secret.txt", 16);
    unescape_is("%3F%3f%23x", "??#x", 4);
    unescape_is("%2541", "%41", 3);
    unescape_is("%EB%B0%B0%EC%86%A1", "\xEB\xB0\xB0\xEC\x86\xA1", 6);
    unescape_is("a%00b", "a\0b", 3);

    /* an incomplete or non-hex escape stays as it is */
    unescape_is("100%", "100%", 4);
    unescape_is("%4", "%4", 2);
    unescape_is("%zz%4g", "%zz%4g", 6);
    unescape_is("", "", 0);

    /* in place */
    memcpy(buf, "x%2By", 5);
    assert_int_equal(ngx_http_asyncx_unescape_arg(buf, buf, 5), 3);
    assert_memory_equal(buf, "x+y", 3);
}


static void
test_check_rel_path(void **state)
{
    assert_int_equal(ngx_http_asyncx_check_rel_path(S("test.txt")), NGX_OK);
    assert_int_equal(ngx_http_asyncx_check_rel_path(S("./test.txt")), NGX_OK);
    assert_int_equal(ngx_http_asyncx_check_rel_path(S("a/b/c.txt")), NGX_OK);
    assert_int_equal(ngx_http_asyncx_check_rel_path(S("a/..b")), NGX_OK);
    assert_int_equal(ngx_http_asyncx_check_rel_path(S("")), NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_check_rel_path(S("/etc/passwd")),
                     NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_check_rel_path(S("..")), NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_check_rel_path(S("../x")), NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_check_rel_path(S("a/../../x")),
                     NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_check_rel_path(S("a/..")), NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_check_rel_path(S("a\0b")), NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_check_rel_path(S("a\\..\\b")),
                     NGX_DECLINED);
}


static void
test_json_escape(void **state)
{
    u_char  out[64], *last;
    u_char  in[] = "a\"b\\c\nd\x01";
    size_t  len = sizeof(in) - 1;

    assert_int_equal(ngx_http_asyncx_json_escape_len(in, len), 1 + 1 + 1 + 5);

    last = ngx_http_asyncx_json_escape(out, in, len);
    assert_int_equal(last - out, len + 8);
    assert_memory_equal(out, "a\\\"b\\\\c\\nd\\u0001", last - out);
}


static void
test_utf8_valid(void **state)
{
    assert_int_equal(ngx_http_asyncx_utf8_valid(S("plain")), NGX_OK);
    assert_int_equal(ngx_http_asyncx_utf8_valid(S("\xEB\xB0\xB0\xEC\x86\xA1")),
                     NGX_OK);
    assert_int_equal(ngx_http_asyncx_utf8_valid(S("\xff")), NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_utf8_valid(S("\xEB\xB0")), NGX_DECLINED);
    /* overlong "/" and a UTF-16 surrogate */
    assert_int_equal(ngx_http_asyncx_utf8_valid(S("\xC0\xAF")), NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_utf8_valid(S("\xED\xA0\x80")),
                     NGX_DECLINED);
}


static void
escape_is(const char *in, size_t len, ngx_uint_t flags, const char *out)
{
    u_char  buf[128], *last;

    assert_int_equal(ngx_http_asyncx_utf8_escape_len((u_char *) in, len,
                                                     flags),
                     strlen(out));
    last = ngx_http_asyncx_utf8_escape(buf, (u_char *) in, len, flags);
    assert_int_equal(last - buf, strlen(out));
    assert_memory_equal(buf, out, last - buf);
    assert_int_equal(ngx_http_asyncx_utf8_valid(buf, last - buf), NGX_OK);
}


static void
test_utf8_cut_trim_escape(void **state)
{
    u_char  name[203];

    /* a 199-byte name and "가": 200 bytes cut before the character */
    memset(name, 'a', 199);
    memcpy(name + 199, "\xEA\xB0\x80", 3);
    assert_int_equal(ngx_http_asyncx_utf8_cut(name, 202, 200), 199);
    assert_int_equal(ngx_http_asyncx_utf8_cut(name, 202, 201), 199);
    assert_int_equal(ngx_http_asyncx_utf8_cut(name, 202, 202), 202);
    assert_int_equal(ngx_http_asyncx_utf8_cut(name, 202, 199), 199);
    assert_int_equal(ngx_http_asyncx_utf8_cut(name, 202, 198), 198);

    /* invalid bytes are not characters: cut where asked */
    assert_int_equal(ngx_http_asyncx_utf8_cut(S("ab\x80\x80\x80\x80"), 3), 3);
    assert_int_equal(ngx_http_asyncx_utf8_cut(S("a\xC3\xA9\x80"), 3), 3);

    /* a character a full buffer cut short is dropped, whole ones stay */
    assert_int_equal(ngx_http_asyncx_utf8_trim(S("ab\xEA\xB0")), 2);
    assert_int_equal(ngx_http_asyncx_utf8_trim(S("ab\xEA")), 2);
    assert_int_equal(ngx_http_asyncx_utf8_trim(S("ab\xEA\xB0\x80")), 5);
    assert_int_equal(ngx_http_asyncx_utf8_trim(S("ab\xF0\x9F\x98")), 2);
    assert_int_equal(ngx_http_asyncx_utf8_trim(S("abc")), 3);
    assert_int_equal(ngx_http_asyncx_utf8_trim(S("")), 0);

    /* invalid bytes become \xNN; controls too when asked */
    escape_is("\xC0\xAE/\xFF\xFE", 5, 0, "\\xc0\\xae/\\xff\\xfe");
    escape_is("a\nb\001c", 5, 0, "a\nb\001c");
    escape_is("a\nb\0c\x7f", 6, NGX_HTTP_ASYNCX_UTF8_CONTROLS,
              "a\\x0ab\\x00c\\x7f");
    escape_is("\xEA\xB0\x80\xEA\xB0", 5, NGX_HTTP_ASYNCX_UTF8_CONTROLS,
              "\xEA\xB0\x80\\xea\\xb0");
    escape_is("", 0, 0, "");

    /* quotes and backslashes on request: the quote cannot be forged */
    escape_is("x\", c: \\x1b", 11, NGX_HTTP_ASYNCX_UTF8_CONTROLS,
              "x\", c: \\x1b");
    escape_is("x\", c: \\x1b", 11,
              NGX_HTTP_ASYNCX_UTF8_CONTROLS|NGX_HTTP_ASYNCX_UTF8_QUOTES,
              "x\\x22, c: \\x5cx1b");
}


static void
test_dataset_check_values(void **state)
{
    u_char    buf[NGX_HTTP_ASYNCX_RECORD_MAX];
    size_t    n;
    uint64_t  i, hits;

    n = ngx_http_asyncx_dataset_record(0, buf);
    assert_int_equal(n, strlen("record 0: matrix coroutine worker thread "
                               "json worker"));
    assert_memory_equal(buf, "record 0: matrix coroutine worker thread "
                             "json worker", n);

    hits = 0;

    for (i = 0; i < 100000; i++) {
        n = ngx_http_asyncx_dataset_record(i, buf);
        buf[n] = '\0';

        if (strstr((char *) buf, "python")) {
            hits++;
        }

        if (i == 9999) {
            assert_int_equal(hits, 72);
        }
    }

    assert_int_equal(hits, 622);
}


static void
test_dataset_json_item(void **state)
{
    u_char  buf[NGX_HTTP_ASYNCX_JSON_ITEM_MAX];
    size_t  n;
    char    expect[] = "{\"id\": 0, \"content\": \"record 0: matrix coroutine "
                       "worker thread json worker\", \"score\": 0, "
                       "\"tags\": [\"a\", \"b\"]}";

    n = ngx_http_asyncx_dataset_json_item(0, buf);
    assert_int_equal(n, strlen(expect));
    assert_memory_equal(buf, expect, n);

    n = ngx_http_asyncx_dataset_json_item(3, buf);
    buf[n] = '\0';
    assert_non_null(strstr((char *) buf, "\"score\": 10,"));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_format_seconds),
        cmocka_unit_test(test_format_duration_printf),
        cmocka_unit_test(test_format_duration_generated),
        cmocka_unit_test(test_now_is_monotonic),
        cmocka_unit_test(test_write_uint_and_copy),
        cmocka_unit_test(test_parse_uint),
        cmocka_unit_test(test_unescape_arg),
        cmocka_unit_test(test_check_rel_path),
        cmocka_unit_test(test_json_escape),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_utf8_cut_trim_escape),
        cmocka_unit_test(test_dataset_check_values),
        cmocka_unit_test(test_dataset_json_item),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
