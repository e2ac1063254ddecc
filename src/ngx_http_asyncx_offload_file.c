
/*
 * Copyright (C) asyncx authors
 *
 * File read and atomic file write: thread tasks of the I/O pool.  Every
 * syscall that can block (realpath, open, fstat, read, write, fsync,
 * rename) runs here, never in the event loop.  No nginx pools or logs:
 * results and errors go into the request's offload ctx.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <cjson/cJSON.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_offload_util.h"

#if (NGX_LINUX)
#include <sys/syscall.h>
#include <linux/openat2.h>
#endif


static ngx_int_t ngx_http_asyncx_offload_real_root(
    ngx_http_asyncx_offload_ctx_t *ctx, char *buf);
static ngx_int_t ngx_http_asyncx_offload_read_fd(
    ngx_http_asyncx_offload_ctx_t *ctx, ngx_fd_t fd, size_t size);
static ngx_int_t ngx_http_asyncx_offload_write_unnamed(
    ngx_http_asyncx_offload_ctx_t *ctx, int dfd, u_char *base, char *tmp,
    mode_t mode);
static ngx_int_t ngx_http_asyncx_offload_write_named(
    ngx_http_asyncx_offload_ctx_t *ctx, int dfd, u_char *base, char *tmp,
    mode_t mode);
static ngx_int_t ngx_http_asyncx_offload_write_fd(
    ngx_http_asyncx_offload_ctx_t *ctx, int fd, mode_t mode);
static void ngx_http_asyncx_offload_tmp_name(
    ngx_http_asyncx_offload_ctx_t *ctx, u_char *base, ngx_uint_t i,
    char *tmp);


/* a failed syscall on the client's path, as an HTTP status */

ngx_int_t
ngx_http_asyncx_offload_errno(ngx_http_asyncx_offload_ctx_t *ctx,
    ngx_err_t err, const char *what)
{
    ngx_str_t  *q;

    q = &ctx->quoted;

    switch (err) {

    case ENOENT:
    case ENOTDIR:
        return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_NOT_FOUND, 0,
                                            "\"%V\" not found", q);

    case EACCES:
    case EPERM:
    case EROFS:
        return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_FORBIDDEN, 0,
                                            "%s \"%V\": permission denied",
                                            what, q);

    case ELOOP:
    case EXDEV:
        /* a symlink that appeared after realpath(): see open_beneath */
        return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_FORBIDDEN, 0,
                                            "\"%V\" is a symlink", q);

    case ENAMETOOLONG:
        return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                            "path is too long");

    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return ngx_http_asyncx_offload_fail(ctx, 507, err,
                                            "%s \"%V\": no space", what, q);

    default:
        return ngx_http_asyncx_offload_fail(ctx,
                                            NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            err, "%s \"%V\" failed",
                                            what, q);
    }
}


/* the root as the kernel sees it now: symlinked roots are fine */

static ngx_int_t
ngx_http_asyncx_offload_real_root(ngx_http_asyncx_offload_ctx_t *ctx,
    char *buf)
{
    if (realpath((char *) ctx->conf->file_root.data, buf) == NULL) {
        return ngx_http_asyncx_offload_fail(ctx,
                                            NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            ngx_errno, "file root \"%V\" is "
                                            "not available",
                                            &ctx->conf->file_root);
    }

    return NGX_OK;
}


/*
 * realpath() of "full" (the configured root, "/", the client's path;
 * "keep" bytes of it are the root) into "real", which must be inside
 * "root" (resolved).  Returns NGX_OK, NGX_DECLINED (outside the root) or
 * NGX_ERROR (errno says why).
 *
 * A path with a missing component is outside too if what exists of it
 * leads out: the longest prefix that resolves, or, when the component
 * after it is a symlink (then one to nothing), its target, taken by its
 * text.  Else 403 against 404 told a client whether a path outside the
 * root exists, through any symlink to a directory outside.
 */

ngx_int_t
ngx_http_asyncx_offload_resolve(const char *root, const char *full,
    size_t keep, char *real)
{
    char         buf[PATH_MAX], target[PATH_MAX];
    size_t       len, rlen, root_len;
    ssize_t      n;
    ngx_err_t    err;
    struct stat  st;

    root_len = ngx_strlen(root);

    if (realpath(full, real) != NULL) {
        return ngx_http_asyncx_path_within((u_char *) root, root_len,
                                           (u_char *) real, ngx_strlen(real));
    }

    err = ngx_errno;
    len = ngx_strlen(full);

    if ((err != ENOENT && err != ENOTDIR && err != EACCES)
        || len >= PATH_MAX)
    {
        ngx_set_errno(err);
        return NGX_ERROR;
    }

    ngx_memcpy(buf, full, len + 1);

    for ( ;; ) {
        /* the prefix before the last "/", never shorter than the root */
        while (len > keep && buf[len - 1] != '/') {
            len--;
        }

        if (len <= keep) {
            ngx_set_errno(err);
            return NGX_ERROR;
        }

        buf[len - 1] = '\0';

        if (realpath(buf, real) != NULL) {
            break;
        }

        len--;
    }

    rlen = ngx_strlen(real);

    if (ngx_http_asyncx_path_within((u_char *) root, root_len,
                                    (u_char *) real, rlen)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    /* the component after it: a symlink to nothing? */

    buf[len - 1] = '/';

    while (buf[len] != '\0' && buf[len] != '/') {
        len++;
    }

    buf[len] = '\0';

    if (lstat(buf, &st) == 0 && S_ISLNK(st.st_mode)) {
        n = readlink(buf, target, sizeof(target) - 1);

        if (n > 0 && (target[0] == '/' || rlen + 1 + n < PATH_MAX)) {
            if (target[0] == '/') {
                ngx_memcpy(buf, target, n);
                len = n;

            } else {
                ngx_memcpy(buf, real, rlen);
                buf[rlen] = '/';
                ngx_memcpy(buf + rlen + 1, target, n);
                len = rlen + 1 + n;
            }

            len = ngx_http_asyncx_path_normalize((u_char *) buf, len);

            if (ngx_http_asyncx_path_within((u_char *) root, root_len,
                                            (u_char *) buf, len)
                != NGX_OK)
            {
                return NGX_DECLINED;
            }
        }
    }

    ngx_set_errno(err);
    return NGX_ERROR;
}


/*
 * Opens "real", a realpath() result inside "root" (also resolved), so
 * that no component can have been swapped for a symlink since
 * realpath() ran: openat2() from the root directory with the remaining,
 * symlink-free relative path, RESOLVE_NO_SYMLINKS and RESOLVE_BENEATH.
 * A swap then fails with ELOOP or EXDEV.  Kernels without openat2()
 * (before 5.6) get open() with O_NOFOLLOW on the last component only.
 */

int
ngx_http_asyncx_offload_open_beneath(const char *root, const char *real,
    int flags)
{
#if (NGX_LINUX && defined SYS_openat2)
    int               rfd, fd;
    size_t            len;
    ngx_err_t         err;
    const char       *rel;
    struct open_how   how;

    len = ngx_strlen(root);
    rel = real + len;

    while (*rel == '/') {
        rel++;
    }

    if (*rel == '\0') {
        rel = ".";
    }

    rfd = open(root, O_PATH|O_DIRECTORY|O_CLOEXEC);
    if (rfd == -1) {
        return -1;
    }

    ngx_memzero(&how, sizeof(struct open_how));
    how.flags = (uint64_t) (flags|O_CLOEXEC);
    how.resolve = RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS;

    fd = (int) syscall(SYS_openat2, rfd, rel, &how, sizeof(struct open_how));

    err = ngx_errno;
    (void) close(rfd);

    if (fd != -1 || err != ENOSYS) {
        ngx_set_errno(err);
        return fd;
    }
#endif

    return open(real, flags|O_NOFOLLOW|O_CLOEXEC);
}


/*
 * GET ?path=...: realpath() resolves every symlink, the result must stay
 * below the resolved root, and the file is opened by that resolved name
 * with no symlink allowed on the way (open_beneath).  O_NONBLOCK keeps a
 * FIFO from hanging the thread.
 */

ngx_int_t
ngx_http_asyncx_offload_file_read_run(void *data)
{
    ngx_http_asyncx_offload_ctx_t  *ctx = data;

    char             root[PATH_MAX], real[PATH_MAX];
    ngx_fd_t         fd;
    ngx_int_t        rc;
    struct stat      st;

    if (ngx_http_asyncx_offload_real_root(ctx, root) != NGX_OK) {
        return NGX_ERROR;
    }

    rc = ngx_http_asyncx_offload_resolve(root, (char *) ctx->full.data,
                                         ctx->conf->file_root.len, real);

    if (rc == NGX_ERROR) {
        return ngx_http_asyncx_offload_errno(ctx, ngx_errno, "resolve");
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_FORBIDDEN, 0,
                                            "\"%V\" resolves outside the "
                                            "file root",
                                            &ctx->quoted);
    }

    fd = ngx_http_asyncx_offload_open_beneath(root, real,
                                              O_RDONLY|O_NONBLOCK|O_NOCTTY);

    if (fd == NGX_INVALID_FILE) {
        return ngx_http_asyncx_offload_errno(ctx, ngx_errno, "open");
    }

    if (fstat(fd, &st) == -1) {
        rc = ngx_http_asyncx_offload_errno(ctx, ngx_errno, "fstat");
        (void) close(fd);
        return rc;
    }

    if (S_ISDIR(st.st_mode)) {
        (void) close(fd);
        return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                            "\"%V\" is a directory",
                                            &ctx->quoted);
    }

    if (!S_ISREG(st.st_mode)) {
        (void) close(fd);
        return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                            "\"%V\" is not a regular file",
                                            &ctx->quoted);
    }

    if (st.st_size > (off_t) ctx->conf->file_max_size) {
        (void) close(fd);
        return ngx_http_asyncx_offload_fail(ctx,
                                            NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                            0, "file is %O bytes, larger "
                                            "than asyncx_file_max_size %uz",
                                            st.st_size,
                                            ctx->conf->file_max_size);
    }

    rc = ngx_http_asyncx_offload_read_fd(ctx, fd, (size_t) st.st_size);

    (void) close(fd);

    return rc;
}


/*
 * Reads the file and builds the whole answer here, so the loop only
 * copies bytes: {"content": "...", "size": N, "encoding": "utf-8",
 * "async": true}, or base64 content with "encoding": "base64".
 */

static ngx_int_t
ngx_http_asyncx_offload_read_fd(ngx_http_asyncx_offload_ctx_t *ctx,
    ngx_fd_t fd, size_t size)
{
    u_char     *buf, *out, *p;
    size_t      n, len;
    ssize_t     got;
    ngx_err_t   err;
    ngx_uint_t  utf8;

    buf = cJSON_malloc(size + 1);
    if (buf == NULL) {
        return ngx_http_asyncx_offload_fail(ctx,
                                            NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            0, "out of memory");
    }

    /* a file that shrank meanwhile is answered as it is now */

    for (n = 0; n < size; n += got) {
        got = pread(fd, buf + n, size - n, (off_t) n);

        if (got == -1) {
            err = ngx_errno;

            if (err == NGX_EINTR) {
                got = 0;
                continue;
            }

            cJSON_free(buf);
            return ngx_http_asyncx_offload_errno(ctx, err, "read");
        }

        if (got == 0) {
            break;
        }
    }

    utf8 = (ngx_http_asyncx_utf8_valid(buf, n) == NGX_OK);

    len = sizeof("{\"content\":\"\",\"size\":,\"encoding\":\"base64\","
                 "\"async\":true}") - 1 + NGX_SIZE_T_LEN
          + (utf8 ? n + ngx_http_asyncx_json_escape_len(buf, n)
                  : ngx_http_asyncx_b64_len(n));

    out = cJSON_malloc(len);
    if (out == NULL) {
        cJSON_free(buf);
        return ngx_http_asyncx_offload_fail(ctx,
                                            NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            0, "out of memory");
    }

    p = ngx_cpymem(out, "{\"content\":\"", sizeof("{\"content\":\"") - 1);

    if (utf8) {
        p = ngx_http_asyncx_json_escape(p, buf, n);

    } else {
        p = ngx_http_asyncx_b64_encode(p, buf, n);
    }

    p = ngx_slprintf(p, out + len,
                     "\",\"size\":%uz,\"encoding\":\"%s\",\"async\":true}",
                     n, utf8 ? "utf-8" : "base64");

    cJSON_free(buf);

    ctx->out = out;
    ctx->out_len = p - out;
    ctx->status = NGX_HTTP_OK;

    return NGX_OK;
}


/*
 * POST ?path=... with the content as body.  The directory must resolve
 * inside the root; the new content goes to a temp file in that same
 * directory (so rename() is atomic), is fsync()ed, then renamed over the
 * target, and the directory is fsync()ed.  Any failure before the rename
 * removes the temp file and leaves the old file untouched.
 *
 * The temp file is unnamed (O_TMPFILE) while it is written: a worker
 * killed meanwhile (kill -9, OOM) leaves nothing, as the kernel frees
 * the file with the process.  It gets its temp name only once written
 * and synced, right before the rename.  Filesystems without O_TMPFILE
 * get a named temp file from the start, whose name pattern lets an
 * operator sweep what a killed worker left.
 *
 * The helpers remove their temp file on every failure; after they
 * succeed, the rename is the one step left that can fail here.
 */

ngx_int_t
ngx_http_asyncx_offload_file_write_run(void *data)
{
    ngx_http_asyncx_offload_ctx_t  *ctx = data;

    int               dfd;
    char              root[PATH_MAX], real[PATH_MAX], dir[PATH_MAX];
    char              tmp[NAME_MAX + 1];
    u_char           *base;
    mode_t            mode;
    size_t            dir_len, n, root_len;
    cJSON            *json;
    ngx_err_t         err;
    ngx_int_t         rc;
    struct stat       st;

    if (ngx_http_asyncx_offload_body(ctx) != NGX_OK
        || ngx_http_asyncx_offload_real_root(ctx, root) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* checked in the loop already: the last segment names a file */
    (void) ngx_http_asyncx_path_split(ctx->path.data, ctx->path.len,
                                      &dir_len);

    root_len = ctx->conf->file_root.len;
    n = dir_len ? root_len + 1 + dir_len : root_len;

    ngx_memcpy(dir, ctx->full.data, n);
    dir[n] = '\0';

    base = dir_len ? ctx->path.data + dir_len + 1 : ctx->path.data;

    rc = ngx_http_asyncx_offload_resolve(root, dir, root_len, real);

    if (rc == NGX_ERROR) {
        return ngx_http_asyncx_offload_errno(ctx, ngx_errno, "resolve");
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_FORBIDDEN, 0,
                                            "the directory of \"%V\" "
                                            "resolves outside the file root",
                                            &ctx->quoted);
    }

    dfd = ngx_http_asyncx_offload_open_beneath(root, real,
                                               O_RDONLY|O_DIRECTORY);

    if (dfd == -1) {
        return ngx_http_asyncx_offload_errno(ctx, ngx_errno, "open directory");
    }

    mode = 0644;

    if (fstatat(dfd, (char *) base, &st, AT_SYMLINK_NOFOLLOW) == 0) {

        if (S_ISLNK(st.st_mode)) {
            /* rename() would replace the link, not what it points to */
            (void) close(dfd);
            return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_FORBIDDEN, 0,
                                                "\"%V\" is a symlink",
                                                &ctx->quoted);
        }

        if (!S_ISREG(st.st_mode)) {
            (void) close(dfd);
            return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_BAD_REQUEST, 0,
                                                "\"%V\" is not a regular "
                                                "file",
                                                &ctx->quoted);
        }

        /*
         * rename() needs write access to the directory only: refuse to
         * replace what the worker could not write in place (a file
         * owned by another user, a read-only file even for root).
         */

        if ((st.st_mode & 0222) == 0) {
            (void) close(dfd);
            return ngx_http_asyncx_offload_fail(ctx, NGX_HTTP_FORBIDDEN, 0,
                                                "\"%V\" is read-only",
                                                &ctx->quoted);
        }

        if (faccessat(dfd, (char *) base, W_OK, AT_EACCESS) == -1) {
            err = ngx_errno;
            (void) close(dfd);
            return ngx_http_asyncx_offload_errno(ctx, err, "write");
        }

        mode = st.st_mode & 07777;

    } else if (ngx_errno != ENOENT) {
        rc = ngx_http_asyncx_offload_errno(ctx, ngx_errno, "stat");
        (void) close(dfd);
        return rc;
    }

    rc = ngx_http_asyncx_offload_write_unnamed(ctx, dfd, base, tmp, mode);

    if (rc == NGX_DECLINED) {
        rc = ngx_http_asyncx_offload_write_named(ctx, dfd, base, tmp, mode);
    }

    if (rc != NGX_OK) {
        (void) close(dfd);
        return NGX_ERROR;
    }

    if (renameat(dfd, tmp, dfd, (char *) base) == -1) {
        err = ngx_errno;
        (void) unlinkat(dfd, tmp, 0);
        (void) close(dfd);
        return ngx_http_asyncx_offload_errno(ctx, err, "rename");
    }

    /* makes the rename itself durable */
    if (fsync(dfd) == -1) {
        err = ngx_errno;
        (void) close(dfd);
        return ngx_http_asyncx_offload_errno(ctx, err, "fsync directory of");
    }

    (void) close(dfd);

    json = cJSON_CreateObject();
    if (json == NULL
        || cJSON_AddNumberToObject(json, "written", (double) ctx->body.len)
           == NULL
        || cJSON_AddStringToObject(json, "path", (char *) ctx->path.data)
           == NULL
        || cJSON_AddTrueToObject(json, "async") == NULL)
    {
        cJSON_Delete(json);
        return ngx_http_asyncx_offload_fail(ctx,
                                            NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            0, "out of memory");
    }

    rc = ngx_http_asyncx_offload_set_json(ctx, json);
    cJSON_Delete(json);

    return rc;
}


/*
 * The body in an unnamed file of the directory (O_TMPFILE), synced, then
 * linked as "tmp".  NGX_OK: "tmp" names it; NGX_DECLINED: the filesystem
 * has no O_TMPFILE (nothing done); NGX_ERROR: ctx says why, nothing left.
 */

static ngx_int_t
ngx_http_asyncx_offload_write_unnamed(ngx_http_asyncx_offload_ctx_t *ctx,
    int dfd, u_char *base, char *tmp, mode_t mode)
{
#if (NGX_LINUX && defined O_TMPFILE)
    int          fd;
    char         proc[sizeof("/proc/self/fd/") + NGX_INT_T_LEN];
    ngx_err_t    err;
    ngx_uint_t   i;

    fd = openat(dfd, ".", O_TMPFILE|O_WRONLY|O_CLOEXEC, 0600);

    if (fd == -1) {
        err = ngx_errno;

        /* EISDIR: a kernel before 3.11, which does not know the flag */
        if (err == EOPNOTSUPP || err == EISDIR || err == EINVAL) {
            return NGX_DECLINED;
        }

        return ngx_http_asyncx_offload_errno(ctx, err, "create temp file for");
    }

    if (ngx_http_asyncx_offload_write_fd(ctx, fd, mode) != NGX_OK) {
        (void) close(fd);
        return NGX_ERROR;
    }

    /*
     * linkat() of /proc/self/fd/N needs no privilege; AT_EMPTY_PATH, for
     * a worker without /proc, needs CAP_DAC_READ_SEARCH before Linux 6.10
     */

    *ngx_sprintf((u_char *) proc, "/proc/self/fd/%d", fd) = '\0';

    err = EEXIST;

    for (i = 0; i < 8 && err == EEXIST; i++) {
        ngx_http_asyncx_offload_tmp_name(ctx, base, i, tmp);

        err = 0;

        if (linkat(AT_FDCWD, proc, dfd, tmp, AT_SYMLINK_FOLLOW) == -1) {
            err = ngx_errno;

            if (err == ENOENT) {
                err = 0;

                if (linkat(fd, "", dfd, tmp, AT_EMPTY_PATH) == -1) {
                    err = ngx_errno;
                }
            }
        }
    }

    if (err) {
        (void) close(fd);

        if (err == EEXIST) {
            return ngx_http_asyncx_offload_fail(ctx,
                                            NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            EEXIST, "no free temp file name");
        }

        return ngx_http_asyncx_offload_errno(ctx, err, "link temp file for");
    }

    if (close(fd) == -1) {
        err = ngx_errno;
        (void) unlinkat(dfd, tmp, 0);
        return ngx_http_asyncx_offload_errno(ctx, err, "close temp file for");
    }

    return NGX_OK;

#else

    return NGX_DECLINED;

#endif
}


/*
 * The body in a named temp file "tmp", synced.  NGX_OK: written;
 * NGX_ERROR: ctx says why, the file is removed.
 */

static ngx_int_t
ngx_http_asyncx_offload_write_named(ngx_http_asyncx_offload_ctx_t *ctx,
    int dfd, u_char *base, char *tmp, mode_t mode)
{
    int          fd;
    ngx_err_t    err;
    ngx_uint_t   i;

    fd = -1;
    err = EEXIST;

    for (i = 0; i < 8 && err == EEXIST; i++) {
        ngx_http_asyncx_offload_tmp_name(ctx, base, i, tmp);

        fd = openat(dfd, tmp, O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC,
                    0600);
        err = (fd == -1) ? ngx_errno : 0;
    }

    if (fd == -1) {
        if (err == EEXIST) {
            return ngx_http_asyncx_offload_fail(ctx,
                                            NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            EEXIST, "no free temp file name");
        }

        return ngx_http_asyncx_offload_errno(ctx, err, "create temp file for");
    }

    if (ngx_http_asyncx_offload_write_fd(ctx, fd, mode) != NGX_OK) {
        (void) close(fd);
        (void) unlinkat(dfd, tmp, 0);
        return NGX_ERROR;
    }

    if (close(fd) == -1) {
        err = ngx_errno;
        (void) unlinkat(dfd, tmp, 0);
        return ngx_http_asyncx_offload_errno(ctx, err, "close temp file for");
    }

    return NGX_OK;
}


/* the body into "fd", with "mode", synced: NGX_OK, or NGX_ERROR (ctx) */

static ngx_int_t
ngx_http_asyncx_offload_write_fd(ngx_http_asyncx_offload_ctx_t *ctx, int fd,
    mode_t mode)
{
    u_char     *p, *last;
    ssize_t     n;
    ngx_err_t   err;

    p = ctx->body.data;
    last = p + ctx->body.len;

    while (p < last) {
        n = write(fd, p, last - p);

        if (n == -1) {
            err = ngx_errno;

            if (err == NGX_EINTR) {
                continue;
            }

            return ngx_http_asyncx_offload_errno(ctx, err, "write");
        }

        p += n;
    }

    /* umask does not apply: the new file keeps the old file's mode */
    if (fchmod(fd, mode) == -1 || fsync(fd) == -1) {
        return ngx_http_asyncx_offload_errno(ctx, ngx_errno, "write");
    }

    return NGX_OK;
}


/*
 * A dot file next to the target, ".<name>.asyncx-<pid>-<id>-<i>.tmp":
 * unique per process, task and attempt "i"; operators sweep by it.
 */

static void
ngx_http_asyncx_offload_tmp_name(ngx_http_asyncx_offload_ctx_t *ctx,
    u_char *base, ngx_uint_t i, char *tmp)
{
    u_char  *p;

    p = ngx_snprintf((u_char *) tmp, NAME_MAX, ".%*s.asyncx-%P-%xL-%ui.tmp",
                     ngx_min(ngx_strlen(base), 160), base, ngx_pid,
                     (uint64_t) (uintptr_t) ctx
                     ^ ngx_http_asyncx_now_usec(), i);
    *p = '\0';
}
