/*
 * Unit tests for the NDJSON kernel of the file source (parser, ids,
 * aggregates, the scan) and the SSE event encoder.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_sse_event.h"
#include "ngx_http_asyncx_ndjson.h"


#define S(s)  (u_char *) s, sizeof(s) - 1


static size_t
encode(char *out, const char *id, const char *data, size_t len)
{
    size_t                        n;
    u_char                       *end;
    ngx_http_asyncx_sse_event_t   ev;

    ev.id.data = (u_char *) id;
    ev.id.len = id ? strlen(id) : 0;
    ngx_str_null(&ev.event);
    ev.retry = 0;
    ev.data = (u_char *) data;
    ev.len = len;

    n = ngx_http_asyncx_sse_event_len(&ev);
    end = ngx_http_asyncx_sse_event_write((u_char *) out, &ev);
    assert_int_equal(end - (u_char *) out, n);
    *end = '\0';

    return n;
}


static void
test_event_lines(void **state)
{
    char  out[256];

    encode(out, "7", "{\"a\": 1}", 8);
    assert_string_equal(out, "id: 7\ndata: {\"a\": 1}\n\n");

    /* CR LF, CR and LF each end a data line */
    encode(out, NULL, "a\r\nb\rc\nd", 8);
    assert_string_equal(out, "data: a\ndata: b\ndata: c\ndata: d\n\n");

    /* a break at the end: an empty last line, joined back as "a\n" */
    encode(out, NULL, "a\n", 2);
    assert_string_equal(out, "data: a\ndata: \n\n");

    encode(out, NULL, "\r\r\n", 3);
    assert_string_equal(out, "data: \ndata: \ndata: \n\n");

    encode(out, "x", "", 0);
    assert_string_equal(out, "id: x\ndata: \n\n");
}


static void
test_event_len_matches(void **state)
{
    char        data[64], out[1024];
    size_t      len, i;
    ngx_uint_t  round;

    static const char  alphabet[] = "ab\r\n";

    srandom(7);

    for (round = 0; round < 2000; round++) {
        len = random() % sizeof(data);

        for (i = 0; i < len; i++) {
            data[i] = alphabet[random() % 4];
        }

        /* encode() asserts the length against what was written */
        (void) encode(out, "1-1-0-0-b-00000000", data, len);
        assert_null(strchr(out + 24, '\r'));
    }
}


/* the retry field: digits in ms; without data no "data:" line at all */

static void
test_event_retry(void **state)
{
    char                          out[128];
    u_char                       *end;
    ngx_uint_t                    i;
    ngx_http_asyncx_sse_event_t   ev;

    static const struct {
        ngx_msec_t   retry;
        const char  *data;
        const char  *expect;
    } cases[] = {
        { 1, NULL, "retry: 1\n\n" },
        { 9, NULL, "retry: 9\n\n" },
        { 10, NULL, "retry: 10\n\n" },
        { 3000, NULL, "retry: 3000\n\n" },
        { 86400000, NULL, "retry: 86400000\n\n" },
        { 1500, "{}", "id: 4\nretry: 1500\ndata: {}\n\n" },
        { 0, "{}", "id: 4\ndata: {}\n\n" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&ev, 0, sizeof(ev));
        ev.retry = cases[i].retry;

        if (cases[i].data) {
            ev.id.data = (u_char *) "4";
            ev.id.len = 1;
            ev.data = (u_char *) cases[i].data;
            ev.len = strlen(cases[i].data);
        }

        memset(out, 'x', sizeof(out));
        end = ngx_http_asyncx_sse_event_write((u_char *) out, &ev);
        assert_int_equal(end - (u_char *) out,
                         ngx_http_asyncx_sse_event_len(&ev));
        *end = '\0';
        assert_string_equal(out, cases[i].expect);
    }
}


static void
test_ids(void **state)
{
    u_char                        buf[NGX_HTTP_ASYNCX_NDJSON_ID_MAX];
    size_t                        n;
    ngx_http_asyncx_ndjson_pos_t  pos, back;

    pos.offset = 123456789012LL;
    pos.records = 1000;
    pos.matches = 7;
    pos.skipped = 3;
    pos.phase = 'm';
    pos.tag = 0x0a1b2c3d;

    n = ngx_http_asyncx_ndjson_id_write(buf, &pos);
    assert_int_equal(n, sizeof("123456789012-1000-7-3-m-0a1b2c3d") - 1);
    assert_memory_equal(buf, "123456789012-1000-7-3-m-0a1b2c3d", n);

    assert_int_equal(ngx_http_asyncx_ndjson_id_parse(buf, n, &back), NGX_OK);
    assert_int_equal(back.offset, pos.offset);
    assert_int_equal(back.records, 1000);
    assert_int_equal(back.matches, 7);
    assert_int_equal(back.skipped, 3);
    assert_int_equal(back.phase, 'm');
    assert_int_equal(back.tag, 0x0a1b2c3d);

    assert_int_equal(ngx_http_asyncx_ndjson_id_parse(
                         S(" 0-0-0-0-b-00000000\t"), &back), NGX_OK);
    assert_int_equal(ngx_http_asyncx_ndjson_id_parse(
                         S("5-1-1-0-m-00000000"), &back), NGX_OK);
    assert_int_equal(ngx_http_asyncx_ndjson_id_parse(
                         S("9223372036854775807-0-0-0-c-ffffffff"), &back),
                     NGX_OK);

#define BAD(s)                                                               \
    assert_int_equal(ngx_http_asyncx_ndjson_id_parse(S(s), &back), NGX_ERROR)

    BAD("");
    BAD("0-0-0-0-b");
    BAD("0-0-0-0-b-0000000");
    BAD("0-0-0-0-b-000000000");
    BAD("0-0-0-0-b-0000000G");
    BAD("0-0-0-0-b-0000000A");
    BAD("0-0-0-0-z-00000000");
    BAD("00-0-0-0-b-00000000");
    BAD("-0-0-0-b-00000000");
    BAD("0--0-0-b-00000000");
    BAD("9223372036854775808-0-0-0-b-00000000");
    BAD("18446744073709551616-0-0-0-b-00000000");
    BAD("5-6-0-0-b-00000000");             /* more lines than bytes */
    BAD("9-6-7-0-b-00000000");             /* more matches than lines */
    BAD("9-6-3-4-b-00000000");             /* matches + skipped > lines */
    BAD("0-0-0-0-m-00000000");             /* a match's id: its line... */
    BAD("5-3-0-0-m-00000000");             /* ... and its match */
    BAD("1-1-0-0-b-00000000 x");
    BAD("1-1-0-0-b-00000000\n");

#undef BAD
}


static ngx_int_t
parse(const char *line, const char *name, ngx_http_asyncx_ndjson_value_t *v,
    size_t *at, const char **reason)
{
    ngx_str_t  n;

    n.data = (u_char *) name;
    n.len = name ? strlen(name) : 0;

    return ngx_http_asyncx_ndjson_parse((u_char *) line, strlen(line), &n,
                                        name ? 1 : 0, v, at, reason);
}


static void
test_parse(void **state)
{
    char                            *deep;
    size_t                           at, i;
    const char                      *reason;
    ngx_http_asyncx_ndjson_value_t   v;

    assert_int_equal(parse(" {\"a\" : [1, {\"b\": null}] , \"c\":\"x\"} \r",
                           "a", &v, &at, &reason), NGX_OK);
    assert_int_equal(v.type, NGX_HTTP_ASYNCX_NDJSON_ARRAY);
    assert_memory_equal(v.data, "[1, {\"b\": null}]", v.len);

    /* the last of repeated names, as JSON.parse and Python take it */
    assert_int_equal(parse("{\"a\": 1, \"a\": \"two\"}", "a", &v, &at,
                           &reason), NGX_OK);
    assert_int_equal(v.type, NGX_HTTP_ASYNCX_NDJSON_STRING);
    assert_memory_equal(v.data, "\"two\"", v.len);

    assert_int_equal(parse("{}", "a", &v, &at, &reason), NGX_OK);
    assert_int_equal(v.type, NGX_HTTP_ASYNCX_NDJSON_ABSENT);

    assert_int_equal(parse("{\"a\": -0.5e+3}", "a", &v, &at, &reason),
                     NGX_OK);
    assert_int_equal(v.type, NGX_HTTP_ASYNCX_NDJSON_NUMBER);
    assert_int_equal(parse("{\"a\": \"\\ud83d\\ude00 \xf0\x9f\x98\x80\"}",
                           NULL, &v, &at, &reason), NGX_OK);

#define BAD(line, why, where)                                                \
    assert_int_equal(parse(line, NULL, &v, &at, &reason), NGX_DECLINED);    \
    assert_string_equal(reason, why);                                        \
    assert_int_equal(at, where)

    BAD("", "empty line", 0);
    BAD("  ", "empty line", 2);
    BAD("[1]", "not a JSON object", 0);
    BAD("{\"a\": 1,}", "expected a member name", 8);
    BAD("{\"a\" 1}", "expected ':'", 5);
    BAD("{\"a\": 01}", "expected ',' or '}'", 7);
    BAD("{\"a\": 1.}", "invalid number", 8);
    BAD("{\"a\": -}", "invalid number", 7);
    BAD("{\"a\": tru}", "unexpected character", 6);
    BAD("{\"a\": NaN}", "unexpected character", 6);
    BAD("{\"a\": [1 2]}", "expected ',' or ']'", 9);
    BAD("{\"a\": {\"b\" 1}}", "expected ':'", 11);
    BAD("{\"a\": 1} x", "data after the object", 9);
    BAD("{\"a\": \"x", "unterminated string", 8);
    BAD("{\"a\": \"\\x\"}", "invalid escape", 7);
    BAD("{\"a\": \"\\u12g4\"}", "invalid \\u escape", 11);
    BAD("{\"a\": \"\\udc00\"}", "unpaired surrogate escape", 7);
    BAD("{\"a\": \"\\ud800x\"}", "unpaired surrogate escape", 7);
    BAD("{\"a\": \"\\ud800\\u0041\"}", "unpaired surrogate escape", 7);
    BAD("{\"a\": \"\xc3\"}", "invalid UTF-8", 7);
    BAD("{\"a\": \"\xe0\x80\x80\"}", "invalid UTF-8", 7);
    BAD("{\"a\": \"\xf4\x90\x80\x80\"}", "invalid UTF-8", 7);
    BAD("{\"a\": \"\xed\xa0\x80\"}", "invalid UTF-8", 7);
    BAD("{\"a\": \"\t\"}", "control character in a string", 7);
    BAD("{\"a\": 1", "unexpected end", 7);
    BAD("{\"a\": [", "unexpected end", 7);

#undef BAD

    /* 128 levels with the line's object, not 129 */
    deep = malloc(1024);
    assert_non_null(deep);

    for (i = 0; i < 2; i++) {
        strcpy(deep, "{\"a\": ");
        memset(deep + 6, '[', 127 + i);
        memset(deep + 6 + 127 + i, ']', 127 + i);
        strcpy(deep + 6 + 2 * (127 + i), "}");

        assert_int_equal(parse(deep, NULL, &v, &at, &reason),
                         i ? NGX_DECLINED : NGX_OK);
    }

    assert_string_equal(reason, "nested too deep");
    assert_int_equal(at, 6 + 127);

    free(deep);
}


static void
test_fields_and_names(void **state)
{
    ngx_uint_t                      n;
    const char                     *reason;
    ngx_http_asyncx_ndjson_field_t  f[NGX_HTTP_ASYNCX_NDJSON_FIELDS_MAX];

    assert_int_equal(ngx_http_asyncx_ndjson_parse_fields(S("a,b:c,d"), f, &n,
                                                         &reason), NGX_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(f[1].name.data, "b", 1);
    assert_memory_equal(f[1].alias.data, "c", 1);
    assert_memory_equal(f[2].alias.data, "d", 1);

    assert_int_equal(ngx_http_asyncx_ndjson_parse_fields(S("a,a:b"), f, &n,
                                                         &reason),
                     NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_ndjson_parse_fields(S("a:x,b:x"), f, &n,
                                                         &reason),
                     NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_ndjson_parse_fields(S("a:"), f, &n,
                                                         &reason),
                     NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_ndjson_parse_fields(S("a:b:c"), f, &n,
                                                         &reason),
                     NGX_DECLINED);

    assert_int_equal(ngx_http_asyncx_ndjson_check_name(S("caf\xc3\xa9")),
                     NGX_OK);
    assert_int_equal(ngx_http_asyncx_ndjson_check_name(S("caf\xc3")),
                     NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_ndjson_check_name(S("a\\b")),
                     NGX_DECLINED);
    assert_int_equal(ngx_http_asyncx_ndjson_check_name(S("a\x7f")),
                     NGX_DECLINED);
}


static void
test_find(void **state)
{
    u_char  *p;

    p = (u_char *) "xx Python yy";

    assert_null(ngx_http_asyncx_ndjson_find(p, 12, S("python"), 0));
    assert_ptr_equal(ngx_http_asyncx_ndjson_find(p, 12, S("python"), 1),
                     p + 3);
    assert_ptr_equal(ngx_http_asyncx_ndjson_find(p, 12, S(" python"), 1),
                     p + 2);
    assert_ptr_equal(ngx_http_asyncx_ndjson_find(p, 12, S("yy"), 1), p + 10);
    assert_null(ngx_http_asyncx_ndjson_find(p, 12, S("yyy"), 1));
    assert_null(ngx_http_asyncx_ndjson_find(p, 2, S("xxx"), 0));

    /* only ASCII letters fold: \xc3\x89 is not \xc3\xa9 */
    assert_null(ngx_http_asyncx_ndjson_find(S("caf\xc3\x89"), S("caf\xc3\xa9"),
                                            1));
}


static ngx_http_asyncx_ndjson_value_t *
num(const char *text)
{
    static ngx_http_asyncx_ndjson_value_t  v;

    v.data = (u_char *) text;
    v.len = strlen(text);
    v.type = NGX_HTTP_ASYNCX_NDJSON_NUMBER;

    return &v;
}


static void
stats_json(ngx_http_asyncx_ndjson_stats_t *s, char *out)
{
    u_char  *p;

    p = ngx_http_asyncx_ndjson_stats_write((u_char *) out, s);
    *p = '\0';
}


/* s reset, the numbers given added (a NULL ends them), its JSON in out */
static void
stats_of(ngx_http_asyncx_ndjson_stats_t *s, char *out, ...)
{
    va_list      args;
    const char  *n;

    memset(s, 0, sizeof(ngx_http_asyncx_ndjson_stats_t));

    va_start(args, out);

    while ((n = va_arg(args, const char *)) != NULL) {
        ngx_http_asyncx_ndjson_stats_add(s, num(n));
    }

    va_end(args);

    stats_json(s, out);
}


static void
test_stats(void **state)
{
    char                            out[512], long_num[501];
    ngx_uint_t                      i;
    ngx_http_asyncx_ndjson_stats_t  s;
    ngx_http_asyncx_ndjson_value_t  str;

    memset(&s, 0, sizeof(s));
    stats_json(&s, out);
    assert_string_equal(out, "{\"records\": 0, \"count\": 0, \"sum\": 0, "
                        "\"min\": null, \"max\": null, \"avg\": null}");

    str.data = (u_char *) "\"7\"";
    str.len = 3;
    str.type = NGX_HTTP_ASYNCX_NDJSON_STRING;

    ngx_http_asyncx_ndjson_stats_add(&s, num("3"));
    ngx_http_asyncx_ndjson_stats_add(&s, num("-10"));
    ngx_http_asyncx_ndjson_stats_add(&s, &str);
    ngx_http_asyncx_ndjson_stats_add(&s, NULL);
    stats_json(&s, out);
    assert_string_equal(out, "{\"records\": 4, \"count\": 2, \"sum\": -7, "
                        "\"min\": -10, \"max\": 3, \"avg\": -3.5}");

    /* a fraction: doubles from then on, shortest round-trip output */
    ngx_http_asyncx_ndjson_stats_add(&s, num("0.1"));
    ngx_http_asyncx_ndjson_stats_add(&s, num("0.2"));
    stats_json(&s, out);
    assert_string_equal(out, "{\"records\": 6, \"count\": 4, \"sum\": -6.7, "
                        "\"min\": -10, \"max\": 3, \"avg\": -1.675}");

    /* an integer sum that would overflow goes on in doubles */
    memset(&s, 0, sizeof(s));

    for (i = 0; i < 10; i++) {
        ngx_http_asyncx_ndjson_stats_add(&s, num("999999999999999999"));
    }

    assert_int_equal(s.real, 1);
    stats_json(&s, out);
    assert_non_null(strstr(out, "\"sum\": 1e+19"));
    assert_non_null(strstr(out, "\"min\": 999999999999999999, "
                                "\"max\": 999999999999999999"));

    /* 19 digits that fit in 64 bits stay exact */
    stats_of(&s, out, "1000000000000000000", "-1", "-1", NULL);
    assert_string_equal(out, "{\"records\": 3, \"count\": 3, "
                        "\"sum\": 999999999999999998, \"min\": -1, "
                        "\"max\": 1000000000000000000, "
                        "\"avg\": 3.333333333333333e+17}");

    stats_of(&s, out, "9223372036854775807", "-9223372036854775808",
             "-9223372036854775803", NULL);
    assert_int_equal(s.real, 0);
    assert_string_equal(out, "{\"records\": 3, \"count\": 3, "
                        "\"sum\": -9223372036854775804, "
                        "\"min\": -9223372036854775808, "
                        "\"max\": 9223372036854775807, "
                        "\"avg\": -3.0744573456182584e+18}");

    /* past 64 bits: a double; min and max exact against the doubles */
    stats_of(&s, out, "9223372036854775808", "9223372036854775807", "-0.5",
             "-1", NULL);
    assert_int_equal(s.real, 1);
    assert_string_equal(out, "{\"records\": 4, \"count\": 4, "
                        "\"sum\": 1.8446744073709552e+19, \"min\": -1, "
                        "\"max\": 9.223372036854776e+18, "
                        "\"avg\": 4.611686018427388e+18}");

    /* numbers no double holds are counted apart; any length is read */
    stats_of(&s, out, "1e999", "-1e309", NULL);
    assert_int_equal(s.records, 2);
    assert_int_equal(s.count, 0);
    assert_int_equal(s.out_of_range, 2);
    assert_string_equal(out, "{\"records\": 2, \"count\": 0, "
                        "\"out_of_range\": 2, \"sum\": 0, \"min\": null, "
                        "\"max\": null, \"avg\": null}");

    memset(long_num, '0', sizeof(long_num) - 1);
    long_num[0] = '2';
    long_num[sizeof(long_num) - 1] = '\0';
    ngx_http_asyncx_ndjson_stats_add(&s, num(long_num));   /* 2e499 */
    memcpy(long_num, "0.", 2);                             /* 0.000... */
    long_num[sizeof(long_num) - 2] = '3';
    ngx_http_asyncx_ndjson_stats_add(&s, num(long_num));   /* 3e-498 */
    assert_int_equal(s.out_of_range, 3);
    assert_int_equal(s.count, 1);

    /* a sum of doubles that overflows is null, as is its avg */
    stats_of(&s, out, "1e308", "1e308", NULL);
    assert_string_equal(out, "{\"records\": 2, \"count\": 2, "
                        "\"sum\": null, \"min\": 1e+308, "
                        "\"max\": 1e+308, \"avg\": null}");
}


static void
test_table(void **state)
{
    char                             key[200];
    ngx_uint_t                       i;
    ngx_http_asyncx_ndjson_table_t  *t;
    ngx_http_asyncx_ndjson_value_t   k, absent;

    t = calloc(1, sizeof(ngx_http_asyncx_ndjson_table_t));
    assert_non_null(t);

    absent.data = NULL;
    absent.len = 0;
    absent.type = NGX_HTTP_ASYNCX_NDJSON_ABSENT;

    for (i = 0; i < 300; i++) {
        k.len = snprintf(key, sizeof(key), "\"g%lu\"", (unsigned long) i);
        k.data = (u_char *) key;
        k.type = NGX_HTTP_ASYNCX_NDJSON_STRING;
        ngx_http_asyncx_ndjson_table_add(t, &k, num("1"));
        ngx_http_asyncx_ndjson_table_add(t, &k, num("2"));
    }

    assert_int_equal(t->ngroups, NGX_HTTP_ASYNCX_NDJSON_GROUPS_MAX);
    assert_int_equal(t->overall.records, 600);
    assert_int_equal(t->other.records, 2 * (300 - 256));
    assert_int_equal(t->groups[255].stats.isum, 3);
    assert_memory_equal(t->groups[255].key, "\"g255\"", 6);

    /* absent is null; keys longer than KEY_MAX go to other */
    memset(t, 0, sizeof(ngx_http_asyncx_ndjson_table_t));
    ngx_http_asyncx_ndjson_table_add(t, &absent, num("5"));
    assert_memory_equal(t->groups[0].key, "null", 4);

    memset(key, 'x', sizeof(key));
    k.data = (u_char *) key;
    k.len = NGX_HTTP_ASYNCX_NDJSON_KEY_MAX + 1;
    ngx_http_asyncx_ndjson_table_add(t, &k, num("5"));
    assert_int_equal(t->ngroups, 1);
    assert_int_equal(t->other.records, 1);

    free(t);
}


/*
 * The scan gives the same events whatever windows it is fed, as the
 * stream's reads split the file at any byte: the whole file at once
 * against every window size from 1 to 300 bytes (with the caller's
 * rule: the rest of a window moves to the next one).
 */

static size_t
scan_all(ngx_http_asyncx_ndjson_scan_t *s, u_char *data, size_t size,
    size_t step, char *out, size_t out_max)
{
    size_t     win, len, used, total, end;
    ngx_int_t  rc;

    ngx_http_asyncx_ndjson_start(s, NULL);

    win = 0;
    end = 0;
    total = 0;

    for ( ;; ) {
        end = ngx_min(end + step, size);
        len = end - win;

        for ( ;; ) {
            s->out_len = 0;
            rc = ngx_http_asyncx_ndjson_scan(s, data + win, len, win,
                                             end == size, &used);

            assert_true(total + s->out_len < out_max);
            memcpy(out + total, s->out, s->out_len);
            total += s->out_len;

            win += used;
            len -= used;

            assert_int_not_equal(rc, NGX_DECLINED);

            if (rc != NGX_BUSY) {
                break;
            }
        }

        if (rc == NGX_DONE) {
            return total;
        }

        assert_int_equal(rc, NGX_AGAIN);
        assert_true(end < size);
    }
}


static void
test_scan_windows(void **state)
{
    char                            *once, *split, *p;
    size_t                           size, n, k, step, used;
    ngx_atomic_t                     cancel;
    u_char                          *data;
    ngx_uint_t                       op;
    ngx_http_asyncx_ndjson_scan_t    s;
    ngx_http_asyncx_ndjson_field_t   f[2];

    static const char  *lines[] = {
        "{\"k\": \"python\", \"v\": 1}",
        "not json python",
        "{\"k\": \"b\", \"v\": 2.5, \"x\": [1, 2]}",
        "",
        "{\"k\":\r\"python\",\r\"v\": -3}\r",
        "{\"k\": \"long python xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
        "{\"k\": \"c\"}",
    };

    data = malloc(65536);
    once = malloc(1 << 20);
    split = malloc(1 << 20);
    assert_non_null(data);
    assert_non_null(once);
    assert_non_null(split);

    p = (char *) data;

    for (n = 0; n < 200; n++) {
        p += sprintf(p, "%s\n", lines[n % 7]);
    }

    p += sprintf(p, "{\"k\": \"python\", \"v\": 7}");    /* no last LF */
    size = p - (char *) data;

    f[0].name.data = (u_char *) "k";
    f[0].name.len = 1;
    f[0].alias = f[0].name;
    f[1].name.data = (u_char *) "v";
    f[1].name.len = 1;
    f[1].alias.data = (u_char *) "value";
    f[1].alias.len = 5;

    for (op = NGX_HTTP_ASYNCX_NDJSON_SEARCH;
         op <= NGX_HTTP_ASYNCX_NDJSON_AGGREGATE;
         op++)
    {
        memset(&s, 0, sizeof(s));
        s.op = op;
        s.keyword = (u_char *) "python";
        s.keyword_len = 6;
        s.fields = f;
        s.nfields = 2;
        s.group_by = f[0].name;
        s.value = f[1].name;
        s.batch_size = 9;
        s.max_line = 100;
        s.skip_invalid = 1;
        s.size = size;
        s.tag = 0xabcdef01;
        s.started = ngx_http_asyncx_now_usec();

        s.table = calloc(1, sizeof(ngx_http_asyncx_ndjson_table_t));
        s.scratch = malloc(ngx_http_asyncx_ndjson_scratch_size(&s));
        s.batch = malloc(ngx_http_asyncx_ndjson_batch_size(&s));
        s.out_size = 4096;
        s.out = malloc(s.out_size);

        n = scan_all(&s, data, size, size, once, 1 << 20);
        once[n] = '\0';

        assert_non_null(strstr(once, "-c-abcdef01\ndata: {\"type\": "
                                     "\"complete\", \"total_processed\": 201"));

        /* times differ between runs: compare up to the complete event */
        n = strstr(once, "-c-abcdef01") - once;

        for (step = 1; step <= 300; step++) {
            memset(s.table, 0, sizeof(ngx_http_asyncx_ndjson_table_t));
            k = scan_all(&s, data, size, step, split, 1 << 20);
            split[k] = '\0';

            assert_true(k > n);
            assert_memory_equal(split, once, n);
        }

        /* the job's client left: the scan stops before the next line */
        cancel = 1;
        s.cancel = &cancel;
        s.out_len = 0;
        ngx_http_asyncx_ndjson_start(&s, NULL);

        assert_int_equal(ngx_http_asyncx_ndjson_scan(&s, data, size, 0, 1,
                                                     &used),
                         NGX_ABORT);
        assert_int_equal(used, 0);
        assert_int_equal(s.out_len, 0);
        assert_int_equal(s.pos.records, 0);

        s.cancel = NULL;

        free(s.table);
        free(s.scratch);
        free(s.batch);
        free(s.out);
    }

    free(data);
    free(once);
    free(split);
}


/*
 * asyncx_sse_invalid_line error: a transform's open batch and an
 * aggregate's stage of the lines before an invalid line go out before
 * its error event, and are not sent twice when the output is full
 * between them (the scan stops, the call after redoes the line).
 */

static void
test_scan_invalid_line(void **state)
{
    char                            *once, *split;
    size_t                           n, k, out_size;
    u_char                          *data;
    ngx_uint_t                       op;
    ngx_http_asyncx_ndjson_scan_t    s;
    ngx_http_asyncx_ndjson_field_t   f[1];

    static const char  text[] = "{\"g\":1}\n{\"g\":2}\n{\"g\":\n{\"g\":4}\n";

    data = (u_char *) text;
    once = malloc(65536);
    split = malloc(65536);
    assert_non_null(once);
    assert_non_null(split);

    f[0].name.data = (u_char *) "g";
    f[0].name.len = 1;
    f[0].alias = f[0].name;

    for (op = NGX_HTTP_ASYNCX_NDJSON_TRANSFORM;
         op <= NGX_HTTP_ASYNCX_NDJSON_AGGREGATE;
         op++)
    {
        memset(&s, 0, sizeof(s));
        s.op = op;
        s.fields = f;
        s.nfields = 1;
        s.group_by = f[0].name;
        s.value = f[0].name;
        s.batch_size = 4;
        s.max_line = 100;
        s.size = sizeof(text) - 1;
        s.tag = 0xabcdef01;

        s.table = calloc(1, sizeof(ngx_http_asyncx_ndjson_table_t));
        s.scratch = malloc(ngx_http_asyncx_ndjson_scratch_size(&s));
        s.batch = malloc(ngx_http_asyncx_ndjson_batch_size(&s));
        s.out_size = 4096;
        s.out = malloc(s.out_size);

        n = scan_all(&s, data, s.size, s.size, once, 65536);
        once[n] = '\0';

        if (op == NGX_HTTP_ASYNCX_NDJSON_TRANSFORM) {
            assert_string_equal(once,
                "id: 16-2-0-0-b-abcdef01\n"
                "data: {\"type\": \"batch\", \"batch_num\": 1, "
                "\"items_processed\": 2, \"skipped\": 0, \"offset\": 16, "
                "\"size\": 30, \"count\": 2, \"checksum\": \"d81d3294\", "
                "\"records\": [{\"g\": 1}, {\"g\": 2}]}\n\n"
                "id: 16-2-0-0-e-abcdef01\n"
                "data: {\"type\": \"error\", \"message\": \"line 3 "
                "(offset 16) is not valid JSON: unexpected end at byte 5\", "
                "\"line\": 3, \"offset\": 16}\n\n");

        } else {
            assert_string_equal(once,
                "id: 16-2-0-0-b-abcdef01\n"
                "data: {\"type\": \"stage\", \"stage\": 1, "
                "\"processed\": 2, \"skipped\": 0, \"offset\": 16, "
                "\"size\": 30, \"groups\": 2, \"partial\": "
                "{\"records\": 2, \"count\": 2, \"sum\": 3, \"min\": 1, "
                "\"max\": 2, \"avg\": 1.5}}\n\n"
                "id: 16-2-0-0-e-abcdef01\n"
                "data: {\"type\": \"error\", \"message\": \"line 3 "
                "(offset 16) is not valid JSON: unexpected end at byte 5\", "
                "\"line\": 3, \"offset\": 16}\n\n");
        }

        /* an output that holds one event, or both */
        for (out_size = 250; out_size <= n; out_size++) {
            memset(s.table, 0, sizeof(ngx_http_asyncx_ndjson_table_t));
            s.out_size = out_size;
            k = scan_all(&s, data, s.size, s.size, split, 65536);
            split[k] = '\0';

            assert_string_equal(split, once);
        }

        free(s.table);
        free(s.scratch);
        free(s.batch);
        free(s.out);
    }

    free(once);
    free(split);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_event_lines),
        cmocka_unit_test(test_event_len_matches),
        cmocka_unit_test(test_event_retry),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_fields_and_names),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_scan_windows),
        cmocka_unit_test(test_scan_invalid_line),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
