
/*
 * Copyright (C) asyncx authors
 *
 * The exercise's demo, plugged into the module's hooks: the answer
 * format "exercise", durations in seconds with the Korean unit, the
 * Korean sentence that describes a run of asyncx_limit_test, and the
 * synthetic data set as generated records and as a stream source.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <cjson/cJSON.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_exercise.h"
#include "ngx_http_asyncx_exercise_answer.h"
#include "ngx_http_asyncx_exercise_format.h"
#include "ngx_http_asyncx_dataset.h"
#include "ngx_http_asyncx_sse_dataset.h"


static ngx_int_t ngx_http_asyncx_exercise_describe_limit(cJSON *root,
    ngx_uint_t concurrency, uint64_t rate, uint64_t usec);


/* the data set as the module's generated records */
static ngx_http_asyncx_records_t  ngx_http_asyncx_exercise_records = {
    ngx_string("dataset"),
    ngx_string("data set"),
    ngx_http_asyncx_dataset_record,
    ngx_http_asyncx_dataset_json_item
};


ngx_int_t
ngx_http_asyncx_exercise_init(ngx_conf_t *cf)
{
    ngx_http_asyncx_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_asyncx_module);

    ngx_str_set(&amcf->duration_unit, NGX_HTTP_ASYNCX_EXERCISE_SECONDS);
    amcf->limit.describe_test = ngx_http_asyncx_exercise_describe_limit;
    amcf->records = &ngx_http_asyncx_exercise_records;

    if (ngx_http_asyncx_sse_add_source(cf, &ngx_http_asyncx_sse_dataset_source)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_asyncx_exercise_answer_add(cf);
}


/* "설명": "동시 3개 제한 + 초당 5개 제한으로 약 2.0초 소요" */

static ngx_int_t
ngx_http_asyncx_exercise_describe_limit(cJSON *root, ngx_uint_t concurrency,
    uint64_t rate, uint64_t usec)
{
    u_char  text[256], *p;

    p = ngx_snprintf(text, sizeof(text) - 1,
                     "\xeb\x8f\x99\xec\x8b\x9c %ui\xea\xb0\x9c \xec\xa0\x9c"
                     "\xed\x95\x9c + \xec\xb4\x88\xeb\x8b\xb9 ",
                     concurrency);

    if (rate % 1000 == 0) {
        p = ngx_snprintf(p, text + sizeof(text) - 1 - p, "%uL", rate / 1000);

    } else {
        p = ngx_snprintf(p, text + sizeof(text) - 1 - p, "%.1f",
                         (double) rate / 1000);
    }

    p = ngx_snprintf(p, text + sizeof(text) - 1 - p,
                     "\xea\xb0\x9c \xec\xa0\x9c\xed\x95\x9c\xec\x9c\xbc"
                     "\xeb\xa1\x9c \xec\x95\xbd %.1f\xec\xb4\x88 \xec\x86"
                     "\x8c\xec\x9a\x94",
                     (double) usec / 1000000);
    *p = '\0';

    if (cJSON_AddStringToObject(root, "\xec\x84\xa4\xeb\xaa\x85",
                                (char *) text)
        == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}
