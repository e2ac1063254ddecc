
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_EXERCISE_ANSWER_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_EXERCISE_ANSWER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* adds the "exercise" answer format (at preconfiguration) */
ngx_int_t ngx_http_asyncx_exercise_answer_add(ngx_conf_t *cf);


#endif /* _NGX_HTTP_ASYNCX_EXERCISE_ANSWER_H_INCLUDED_ */
