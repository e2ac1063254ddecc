
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_EXERCISE_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_EXERCISE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * The exercise's demo plugs into the module's neutral hooks here, at
 * preconfiguration: its answer format, its unit of durations ("초"),
 * its description of asyncx_limit_test's run and its data set.
 */

ngx_int_t ngx_http_asyncx_exercise_init(ngx_conf_t *cf);


#endif /* _NGX_HTTP_ASYNCX_EXERCISE_H_INCLUDED_ */
