
/*
 * Copyright (C) asyncx authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_asyncx_dataset.h"


typedef struct {
    size_t       len;
    const char  *data;
} ngx_http_asyncx_word_t;


#define ngx_http_asyncx_word(s)  { sizeof(s) - 1, s }

static const ngx_http_asyncx_word_t  ngx_http_asyncx_vocab[64] = {
    ngx_http_asyncx_word("async"), ngx_http_asyncx_word("await"),
    ngx_http_asyncx_word("event"), ngx_http_asyncx_word("loop"),
    ngx_http_asyncx_word("task"), ngx_http_asyncx_word("future"),
    ngx_http_asyncx_word("coroutine"), ngx_http_asyncx_word("thread"),
    ngx_http_asyncx_word("process"), ngx_http_asyncx_word("queue"),
    ngx_http_asyncx_word("socket"), ngx_http_asyncx_word("stream"),
    ngx_http_asyncx_word("buffer"), ngx_http_asyncx_word("request"),
    ngx_http_asyncx_word("response"), ngx_http_asyncx_word("header"),
    ngx_http_asyncx_word("payload"), ngx_http_asyncx_word("server"),
    ngx_http_asyncx_word("client"), ngx_http_asyncx_word("worker"),
    ngx_http_asyncx_word("router"), ngx_http_asyncx_word("handler"),
    ngx_http_asyncx_word("module"), ngx_http_asyncx_word("nginx"),
    ngx_http_asyncx_word("fastapi"), ngx_http_asyncx_word("uvicorn"),
    ngx_http_asyncx_word("starlette"), ngx_http_asyncx_word("json"),
    ngx_http_asyncx_word("token"), ngx_http_asyncx_word("bucket"),
    ngx_http_asyncx_word("semaphore"), ngx_http_asyncx_word("limit"),
    ngx_http_asyncx_word("rate"), ngx_http_asyncx_word("batch"),
    ngx_http_asyncx_word("search"), ngx_http_asyncx_word("filter"),
    ngx_http_asyncx_word("transform"), ngx_http_asyncx_word("aggregate"),
    ngx_http_asyncx_word("cache"), ngx_http_asyncx_word("index"),
    ngx_http_asyncx_word("vector"), ngx_http_asyncx_word("matrix"),
    ngx_http_asyncx_word("record"), ngx_http_asyncx_word("field"),
    ngx_http_asyncx_word("value"), ngx_http_asyncx_word("schema"),
    ngx_http_asyncx_word("parser"), ngx_http_asyncx_word("lexer"),
    ngx_http_asyncx_word("compiler"), ngx_http_asyncx_word("kernel"),
    ngx_http_asyncx_word("memory"), ngx_http_asyncx_word("latency"),
    ngx_http_asyncx_word("throughput"), ngx_http_asyncx_word("signal"),
    ngx_http_asyncx_word("timer"), ngx_http_asyncx_word("sleep"),
    ngx_http_asyncx_word("yield"), ngx_http_asyncx_word("gather"),
    ngx_http_asyncx_word("select"), ngx_http_asyncx_word("epoll"),
    ngx_http_asyncx_word("pool"), ngx_http_asyncx_word("executor"),
    ngx_http_asyncx_word("lambda"), ngx_http_asyncx_word("closure")
};

static const ngx_http_asyncx_word_t  ngx_http_asyncx_python =
    ngx_http_asyncx_word("python");


static u_char *
ngx_http_asyncx_dataset_uint(u_char *p, uint64_t v)
{
    u_char   tmp[20], *t;

    t = tmp + sizeof(tmp);

    do {
        *--t = (u_char) ('0' + v % 10);
        v /= 10;
    } while (v);

    return ngx_cpymem(p, t, tmp + sizeof(tmp) - t);
}


size_t
ngx_http_asyncx_dataset_record(uint64_t i, u_char *buf)
{
    u_char                        *p;
    uint32_t                       x, r;
    ngx_uint_t                     n;
    const ngx_http_asyncx_word_t  *w;

    p = ngx_cpymem(buf, "record ", 7);
    p = ngx_http_asyncx_dataset_uint(p, i);
    *p++ = ':';

    x = (uint32_t) ((i + 1) * 2654435761ULL);

    for (n = 0; n < 6; n++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        r = x % 1000;

        w = (r == 0) ? &ngx_http_asyncx_python : &ngx_http_asyncx_vocab[r % 64];

        *p++ = ' ';
        p = ngx_cpymem(p, w->data, w->len);
    }

    return p - buf;
}


size_t
ngx_http_asyncx_dataset_json_item(uint64_t i, u_char *buf)
{
    u_char  *p;

    p = ngx_cpymem(buf, "{\"id\": ", 7);
    p = ngx_http_asyncx_dataset_uint(p, i);
    p = ngx_cpymem(p, ", \"content\": \"", 14);
    p += ngx_http_asyncx_dataset_record(i, p);
    p = ngx_cpymem(p, "\", \"score\": ", 12);
    p = ngx_http_asyncx_dataset_uint(p, (i * 37) % 101);
    p = ngx_cpymem(p, ", \"tags\": [\"a\", \"b\"]}", 21);

    return p - buf;
}



/*
 * The index of record i's first word: 0..63 for the vocabulary, 64 for
 * "python".  The aggregate endpoint uses it as the record's category.
 */

ngx_uint_t
ngx_http_asyncx_dataset_first_word(uint64_t i)
{
    uint32_t  x, r;

    x = (uint32_t) ((i + 1) * 2654435761ULL);
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    r = x % 1000;

    return (r == 0) ? 64 : r % 64;
}


const u_char *
ngx_http_asyncx_dataset_word(ngx_uint_t n, size_t *len)
{
    const ngx_http_asyncx_word_t  *w;

    w = (n >= 64) ? &ngx_http_asyncx_python : &ngx_http_asyncx_vocab[n];
    *len = w->len;

    return (const u_char *) w->data;
}


ngx_uint_t
ngx_http_asyncx_dataset_score(uint64_t i)
{
    return (ngx_uint_t) ((i * 37) % 101);
}
