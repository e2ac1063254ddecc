
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_SSE_DATASET_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_SSE_DATASET_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx_sse.h"


/* the stream over the synthetic data set: asyncx_sse_source dataset */
extern ngx_http_asyncx_sse_source_t  ngx_http_asyncx_sse_dataset_source;


#endif /* _NGX_HTTP_ASYNCX_SSE_DATASET_H_INCLUDED_ */
