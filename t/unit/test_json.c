/*
 * Unit tests for the module's JSON policy (src/ngx_http_asyncx_json.c):
 * the strict RFC 8259 validator with its refusals and their byte
 * offsets, the cJSON entry point and duplicate member names.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <stdlib.h>
#include <cmocka.h>

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_json.h"


static ngx_http_asyncx_json_info_t  info;


static ngx_int_t
check_len(const char *text, size_t len, ngx_uint_t flags, const char *want)
{
    ngx_int_t  rc;

    rc = ngx_http_asyncx_json_validate((u_char *) text, len, flags, &info);

    if (rc == NGX_OK && want) {
        assert_int_equal(info.end - info.start, strlen(want));
        assert_memory_equal(info.start, want, info.end - info.start);
    }

    return rc;
}


#define check(text, want)                                                    \
    check_len(text, sizeof(text) - 1, NGX_HTTP_ASYNCX_JSON_NO_NUL, want)


/* refused at byte "offset" for "reason" (NULL: a plain syntax error) */

static void
refused(const char *text, size_t len, size_t offset, const char *reason)
{
    assert_int_equal(check_len(text, len, NGX_HTTP_ASYNCX_JSON_NO_NUL, NULL),
                     NGX_ERROR);
    assert_int_equal(info.offset, offset);

    if (reason == NULL) {
        assert_null(info.reason);

    } else {
        assert_non_null(info.reason);
        assert_string_equal(info.reason, reason);
    }
}

#define REFUSED(text, offset, reason)                                        \
    refused(text, sizeof(text) - 1, offset, reason)


static void
test_json_valid(void **state)
{
    assert_int_equal(check("{}", "{}"), NGX_OK);
    assert_int_equal(check(" [ ] \n", "[ ]"), NGX_OK);
    assert_int_equal(check("null", "null"), NGX_OK);
    assert_int_equal(check("\t-0.5e+10\r\n", "-0.5e+10"), NGX_OK);
    assert_int_equal(check("\"\\u00e9\\n\\\"\"", NULL), NGX_OK);
    assert_int_equal(check("{\"a\": [1, 2, {\"b\": null}], \"c\": true}\n",
                           "{\"a\": [1, 2, {\"b\": null}], \"c\": true}"),
                     NGX_OK);
    assert_int_equal(check("{\"배송비\":3000,\"x\":[[],{}]}", NULL), NGX_OK);
    assert_int_equal(check("[0,1.25,-3,4E2,\"\",false]", NULL), NGX_OK);

    /* a surrogate pair, four-byte UTF-8, U+FFFF, DEL */
    assert_int_equal(check("\"\\ud83d\\ude00 \xF0\x9F\x98\x80 \\uffff \x7f\"",
                           NULL), NGX_OK);

    /* U+0000 is JSON: refused (NGX_DECLINED, not a syntax error) only
     * under NO_NUL, at its "\u0000"; a syntax error after it wins */
    assert_int_equal(check_len("[\"a\\u0000b\"]", 12, 0, NULL), NGX_OK);
    assert_int_equal(check("[\"a\\u0000b\", \"\\u0000\"]", NULL),
                     NGX_DECLINED);
    assert_int_equal(info.nul, 1);
    assert_int_equal(info.offset, 3);
    assert_string_equal(info.reason, "U+0000 (\\u0000) in a string");
    assert_int_equal(check("{\"password\": \"secret\\u0000-and-a-long-"
                           "suffix\"}", NULL), NGX_DECLINED);
    assert_int_equal(info.offset, 20);
    assert_int_equal(check("{\"a\\u0000b\": 1}", NULL), NGX_DECLINED);
    assert_int_equal(info.offset, 3);
    assert_int_equal(check("[\"a\\u0000b\",]", NULL), NGX_ERROR);
    assert_int_equal(info.nul, 0);
    assert_int_equal(info.offset, 12);
    assert_null(info.reason);
}


/*
 * Every byte value inside a string, after a run of plain ASCII (the
 * table-driven skip) and alone, against RFC 8259 written out here: a
 * lone byte is a string's text only if printable ASCII and neither '"'
 * nor '\\'; any byte from 0x80 alone is a cut UTF-8 sequence.
 */

static void
test_json_every_byte_in_string(void **state)
{
    size_t      n;
    u_char      text[16];
    ngx_int_t   want;
    ngx_uint_t  b, lead;

    for (lead = 0; lead < 2; lead++) {
        for (b = 0; b < 256; b++) {
            n = 0;
            text[n++] = '"';

            if (lead) {
                text[n++] = 'a';
                text[n++] = 'b';
                text[n++] = 'c';
            }

            text[n++] = (u_char) b;
            text[n++] = '"';

            want = (b >= 0x20 && b < 0x80 && b != '"' && b != '\\')
                   ? NGX_OK : NGX_ERROR;

            assert_int_equal(check_len((char *) text, n,
                                       NGX_HTTP_ASYNCX_JSON_NO_NUL, NULL),
                             want);
        }
    }

    /* and after the run, a valid escape, a UTF-8 character, the end */
    assert_int_equal(check("\"plain text \\\" then \xEA\xB0\x80 and \\u0041\"",
                           NULL), NGX_OK);
    /* the quote is the first byte that cannot continue the character */
    REFUSED("\"plain text \xEA\xB0\"", 14, "invalid UTF-8");
}


/*
 * Every byte at every offset of a run of plain bytes longer than two
 * words (where a faster scanner would take words): refused at the
 * offset of the byte, for its reason.
 */

static void
test_json_every_byte_at_every_offset(void **state)
{
    size_t      n, k, at;
    u_char      text[32];
    ngx_uint_t  b;

    for (k = 0; k < 20; k++) {
        for (b = 0; b < 256; b++) {
            n = 0;
            text[n++] = '"';
            ngx_memset(&text[n], 'x', 20);
            text[n + k] = (u_char) b;
            n += 20;
            text[n++] = '"';

            at = 1 + k;

            if (b >= 0x20 && b < 0x80 && b != '"' && b != '\\') {
                assert_int_equal(check_len((char *) text, n,
                                           NGX_HTTP_ASYNCX_JSON_NO_NUL, NULL),
                                 NGX_OK);

            } else if (b == '"') {
                /* the string ends there */
                refused((char *) text, n, at + 1, "data after the document");

            } else if (b == '\\') {
                /* "\x" is no escape (the 'x' is refused); the last one
                 * escapes the quote */
                refused((char *) text, n, k < 19 ? at + 1 : n, NULL);

            } else if (b < 0x20) {
                refused((char *) text, n, at,
                        "control character in a string");

            } else {
                /* a lone byte of UTF-8 among ASCII: a lead byte is
                 * refused by the 'x' after it, any other by itself */
                refused((char *) text, n, (b >= 0xc2 && b <= 0xf4) ? at + 1 : at,
                        "invalid UTF-8");
            }
        }

        /* a three-byte character at every offset, and a cut one */
        n = 0;
        text[n++] = '"';
        ngx_memset(&text[n], 'y', 20);
        ngx_memcpy(&text[n + k], "\xEA\xB0\x80", 3);
        n += 20;
        text[n++] = '"';

        assert_int_equal(check_len((char *) text, n,
                                   NGX_HTTP_ASYNCX_JSON_NO_NUL, NULL),
                         k <= 17 ? NGX_OK : NGX_ERROR);
    }
}


static void
test_json_check_bounds(void **state)
{
    u_char  *start, *end;

    /* the first interface: bounds of the value, the policy without NO_NUL */
    assert_int_equal(ngx_http_asyncx_json_check((u_char *) " [\"\\u0000\"] ",
                                                12, &start, &end), NGX_OK);
    assert_memory_equal(start, "[\"\\u0000\"]", end - start);
    assert_int_equal(end - start, 10);
    assert_int_equal(ngx_http_asyncx_json_check((u_char *) "[\"\t\"]", 5,
                                                &start, &end), NGX_ERROR);
}


static void
test_json_refused(void **state)
{
    /*
     * plain syntax errors, with the offset of the first byte refused:
     * inside a number, a literal or an escape, the byte where it broke
     */
    REFUSED("", 0, NULL);
    REFUSED("   ", 3, NULL);
    REFUSED("{", 1, NULL);
    REFUSED("{\"a\"}", 4, NULL);
    REFUSED("{\"a\":}", 5, NULL);
    REFUSED("{a:1}", 1, NULL);
    REFUSED("[1,]", 3, NULL);
    REFUSED("[1 2]", 3, NULL);
    REFUSED("{\"password\": \"abc\",}", 19, NULL);
    REFUSED("[1]]", 3, "data after the document");
    REFUSED("{\"password\": \"abc\"} {}", 20, "data after the document");
    REFUSED("{]", 1, NULL);
    REFUSED("01", 1, "data after the document");
    REFUSED("1.", 2, NULL);
    REFUSED("1e", 2, NULL);
    REFUSED("1e+", 3, NULL);
    REFUSED("-x", 1, NULL);
    REFUSED("-", 1, NULL);
    REFUSED("tru", 3, NULL);
    REFUSED("truE", 3, NULL);
    REFUSED("fals", 4, NULL);
    REFUSED("nul", 3, NULL);
    REFUSED("nulll", 4, "data after the document");
    REFUSED("\"abc", 4, NULL);
    REFUSED("\"a\\x\"", 3, NULL);
    REFUSED("\"\\", 2, NULL);
    REFUSED("\"\\u12g4\"", 5, NULL);
    REFUSED("\"\\u12", 5, NULL);
    REFUSED("simulated non-JSON answer", 0, NULL);

    /* what RFC 8259 forbids and cJSON takes: leading NUL or control
     * bytes, a byte order mark, raw control characters in strings */
    REFUSED("\0{\"password\": \"x\"}", 0, NULL);
    REFUSED("\x01[]", 0, NULL);
    REFUSED("\xEF\xBB\xBF[]", 0, NULL);
    REFUSED("[]\0", 2, "data after the document");
    REFUSED("\"a\tb\"", 2, "control character in a string");
    REFUSED("{\"pass\nword\": 1}", 6, "control character in a string");
    REFUSED("[\"\x1f\"]", 2, "control character in a string");

    /* UTF-8: cut short, overlong, surrogate, stray continuation */
    REFUSED("\"\xec\x82\"", 3, "invalid UTF-8");
    REFUSED("\"\xe2}", 2, "invalid UTF-8");
    REFUSED("\"\xe0\x80\x80\"", 2, "invalid UTF-8");
    REFUSED("\"\xf4\x90\x80\x80\"", 2, "invalid UTF-8");
    REFUSED("\"\xe2\x82", 3, "invalid UTF-8");
    REFUSED("[\"a\xC0\xAE\"]", 3, "invalid UTF-8");
    REFUSED("[\"\xED\xA0\x80\"]", 3, "invalid UTF-8");
    REFUSED("[\"\x80\"]", 2, "invalid UTF-8");
    REFUSED("[\xff]", 1, NULL);

    /* unpaired surrogates */
    REFUSED("[\"\\ud800\"]", 8, "unpaired UTF-16 surrogate in a string");
    REFUSED("\"\\ud83d\\x\"", 8, NULL);
    REFUSED("\"\\ud83d\\u{e00\"", 9, NULL);
    REFUSED("[\"\\ud800\\u0041\"]", 8,
            "unpaired UTF-16 surrogate in a string");
    REFUSED("[\"\\udc00\\ud800\"]", 2,
            "unpaired UTF-16 surrogate in a string");
    REFUSED("[\"x\\uDBFF\"]", 9, "unpaired UTF-16 surrogate in a string");
}


static void
test_json_depth(void **state)
{
    char        *deep;
    ngx_uint_t   i, n;

    deep = malloc(2 * NGX_HTTP_ASYNCX_JSON_MAX_DEPTH + 3);
    assert_non_null(deep);

    /* as deep as cJSON goes (1000 levels) passes, one more does not */
    for (n = NGX_HTTP_ASYNCX_JSON_MAX_DEPTH;
         n <= NGX_HTTP_ASYNCX_JSON_MAX_DEPTH + 1;
         n++)
    {
        for (i = 0; i < n; i++) {
            deep[i] = '[';
            deep[n + i] = ']';
        }

        assert_int_equal(check_len(deep, 2 * n, 0, NULL),
                         n <= NGX_HTTP_ASYNCX_JSON_MAX_DEPTH ? NGX_OK
                                                             : NGX_ERROR);
    }

    assert_int_equal(info.offset, NGX_HTTP_ASYNCX_JSON_MAX_DEPTH);
    assert_string_equal(info.reason, "nested deeper than 1000 levels");

    /* a document the module wraps 8 levels deep: 992 pass, 993 do not */
    for (n = 991; n <= 993; n++) {
        for (i = 0; i < n; i++) {
            deep[i] = '[';
            deep[n + i] = ']';
        }

        assert_int_equal(check_len(deep, 2 * n,
                                   NGX_HTTP_ASYNCX_JSON_PIPELINE, NULL),
                         n <= 992 ? NGX_OK : NGX_ERROR);
    }

    assert_int_equal(info.offset, 992);
    assert_string_equal(info.reason, "nested deeper than the module can "
                                     "wrap it (1000 levels in all)");

    free(deep);
}


static void
test_json_parse(void **state)
{
    cJSON  *root, *item;

    /* what the policy passes, cJSON parses, strings whole */
    root = ngx_http_asyncx_json_parse(
               (u_char *) " {\"password\": \"\\u00e9\\ud83d\\ude00x\"} ", 37,
               NGX_HTTP_ASYNCX_JSON_NO_NUL, &info);
    assert_non_null(root);
    assert_int_equal(ngx_http_asyncx_json_member(root, "password", &item),
                     NGX_OK);
    assert_string_equal(item->valuestring, "\xC3\xA9\xF0\x9F\x98\x80x");
    cJSON_Delete(root);

    /* refused without cJSON where strings are used: no cut password */
    root = ngx_http_asyncx_json_parse(
               (u_char *) "{\"password\": \"secret\\u0000x\"}", 29,
               NGX_HTTP_ASYNCX_JSON_NO_NUL, &info);
    assert_null(root);
    assert_int_equal(info.nomem, 0);
    assert_int_equal(info.nul, 1);
    assert_int_equal(info.offset, 20);

    /* ... and parsed where the document is only counted */
    root = ngx_http_asyncx_json_parse(
               (u_char *) "{\"password\": \"secret\\u0000x\"}", 29, 0,
               &info);
    assert_non_null(root);
    cJSON_Delete(root);

    /* a member named twice is reported, once is fine, absent is NULL */
    root = ngx_http_asyncx_json_parse(
               (u_char *) "{\"a\": 1, \"b\": 2, \"a\": 3}", 24, 0, &info);
    assert_non_null(root);
    assert_int_equal(ngx_http_asyncx_json_member(root, "a", &item),
                     NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_json_member(root, "b", &item), NGX_OK);
    assert_int_equal(item->valueint, 2);
    assert_int_equal(ngx_http_asyncx_json_member(root, "c", &item), NGX_OK);
    assert_null(item);
    cJSON_Delete(root);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_valid),
        cmocka_unit_test(test_json_every_byte_in_string),
        cmocka_unit_test(test_json_every_byte_at_every_offset),
        cmocka_unit_test(test_json_check_bounds),
        cmocka_unit_test(test_json_refused),
        cmocka_unit_test(test_json_depth),
        cmocka_unit_test(test_json_parse),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
