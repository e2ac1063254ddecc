
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_VERSION_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_VERSION_H_INCLUDED_


/*
 * The one place the version is written.  asyncx_status reports it, the
 * Makefile reads it for `make deb`, and t/600-version.t checks that
 * debian/changelog and CHANGES name the same one.
 */

#define NGX_HTTP_ASYNCX_VERSION  "0.1.0"


#endif /* _NGX_HTTP_ASYNCX_VERSION_H_INCLUDED_ */
