
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_EXERCISE_FORMAT_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_EXERCISE_FORMAT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * The exercise's readable times: "1.9초 (1단계 0.5초 + ...)".  Pure: no
 * nginx .c function is called, t/unit links it alone.
 */

/* the unit of the exercise's durations: "초", seconds in Korean */
#define NGX_HTTP_ASYNCX_EXERCISE_SECONDS  "\xEC\xB4\x88"

size_t ngx_http_asyncx_format_seconds(u_char *buf, size_t size, uint64_t usec,
    ngx_uint_t decimals);
size_t ngx_http_asyncx_exercise_format_breakdown(u_char *buf, size_t size,
    uint64_t total, ngx_str_t *names, uint64_t *usec, ngx_uint_t n,
    ngx_uint_t decimals);


#endif /* _NGX_HTTP_ASYNCX_EXERCISE_FORMAT_H_INCLUDED_ */
