
/*
 * Copyright (C) asyncx authors
 *
 * Directive values shared by every subsystem: numbers, sizes and times
 * within a range.  A value nginx would take but the module cannot use
 * (0 where 0 has no meaning, a count that overflows) is refused by
 * "nginx -t" with the directive, the value and the accepted range.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_conf.h"


/*
 * NGX_OK with *v set, or NGX_ERROR when the value does not parse, is out
 * of range or overflows.  Also for parameters such as "delay=300ms".
 */

ngx_int_t
ngx_http_asyncx_conf_parse_bounded(ngx_str_t *value,
    ngx_http_asyncx_conf_bounds_t *b, uint64_t *v)
{
    off_t      size;
    ngx_int_t  ms;

    if (b->zero_off
        && value->len == 3 && ngx_strncmp(value->data, "off", 3) == 0)
    {
        *v = 0;
        return NGX_OK;
    }

    switch (b->type) {

    case NGX_HTTP_ASYNCX_CONF_SIZE:
        size = ngx_parse_offset(value);
        if (size == NGX_ERROR) {
            return NGX_ERROR;
        }

        *v = (uint64_t) size;
        break;

    case NGX_HTTP_ASYNCX_CONF_MSEC:
        ms = ngx_parse_time(value, 0);
        if (ms == NGX_ERROR) {
            return NGX_ERROR;
        }

        *v = (uint64_t) ms;
        break;

    default:
        /* NGX_DECLINED: past max, so no overflow either */
        if (ngx_http_asyncx_parse_uint(value->data, value->len, b->max, v)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (*v == 0 && b->zero_off) {
        return NGX_OK;
    }

    if (*v < b->min || *v > b->max) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * 'invalid value "0" in "asyncx_call_timeout", expected 1..2147483647 ms'
 * or '..., expected 0 (off) or 1..100000'.  A time without a unit is
 * seconds, as everywhere in nginx: "2147483646" is refused although it
 * is inside the range printed in ms, so the message says why.
 */

void
ngx_http_asyncx_conf_log_range(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *value, ngx_http_asyncx_conf_bounds_t *b)
{
    char        *unit;
    ngx_uint_t   i, bare_seconds;

    bare_seconds = 0;

    if (b->type == NGX_HTTP_ASYNCX_CONF_MSEC && value->len > 0) {
        for (i = 0; i < value->len; i++) {
            if (value->data[i] < '0' || value->data[i] > '9') {
                break;
            }
        }

        /* "0" is refused for itself, not for its unit */
        bare_seconds = (i == value->len
                        && ngx_atoof(value->data, value->len) != 0);
    }

    unit = b->type == NGX_HTTP_ASYNCX_CONF_SIZE ? " bytes"
           : (b->type == NGX_HTTP_ASYNCX_CONF_MSEC ? " ms" : "");

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\", "
                       "expected %s%uL..%uL%s%s",
                       value, name, b->zero_off ? "0 (off) or " : "",
                       b->min, b->max, unit,
                       bare_seconds ? " (a number without a unit is seconds)"
                                    : "");
}


char *
ngx_http_asyncx_conf_set_bounded(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char  *p = conf;

    uint64_t                        v;
    ngx_str_t                      *value;
    ngx_uint_t                     *field;
    ngx_http_asyncx_conf_bounds_t  *b;

    b = cmd->post;
    value = cf->args->elts;

    /*
     * ngx_uint_t, size_t and ngx_msec_t are one machine word on every
     * nginx target, and each is "unset" as all ones.
     */

    field = (ngx_uint_t *) (p + cmd->offset);

    if (*field != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    if (ngx_http_asyncx_conf_parse_bounded(&value[1], b, &v) != NGX_OK) {
        ngx_http_asyncx_conf_log_range(cf, &cmd->name, &value[1], b);
        return NGX_CONF_ERROR;
    }

    *field = (ngx_uint_t) v;

    return NGX_CONF_OK;
}


/*
 * nginx's own codes, which it never sends as a status line: 494 to 497
 * become a 400 page, 499 and 444 close the connection unanswered.
 * NGX_OK for one of them.
 */

ngx_int_t
ngx_http_asyncx_conf_nginx_status(ngx_uint_t code)
{
    if (code == NGX_HTTP_CLOSE
        || (code >= NGX_HTTP_REQUEST_HEADER_TOO_LARGE
            && code <= NGX_HTTP_TO_HTTPS)
        || code == NGX_HTTP_CLIENT_CLOSED_REQUEST)
    {
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/*
 * The status of an answer the module writes (a failed pipeline's):
 * 400..599, not one of nginx's own codes, which would go out as a
 * status line no client knows.
 */

char *
ngx_http_asyncx_conf_set_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char  *p = conf;

    char        *rv;
    ngx_str_t   *value;
    ngx_uint_t  *field;

    rv = ngx_http_asyncx_conf_set_bounded(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    field = (ngx_uint_t *) (p + cmd->offset);

    if (ngx_http_asyncx_conf_nginx_status(*field) == NGX_OK) {
        value = cf->args->elts;

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\", expected "
                           "400..599 but not nginx's own 444, 494..497, 499",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * A name the answers carry as text (a zone's, a thread pool's: keys of
 * the status JSON): valid UTF-8 without control characters, or nginx -t
 * refuses it, quoting it escaped so that the message is UTF-8 itself:
 * 'invalid zone name "a\xff" in "asyncx_limit_zone", expected UTF-8
 * text without control characters'.
 */

ngx_int_t
ngx_http_asyncx_conf_check_text(ngx_conf_t *cf, const char *what,
    ngx_str_t *name, ngx_str_t *directive)
{
    size_t     len;
    ngx_str_t  shown;

    len = ngx_http_asyncx_utf8_escape_len(name->data, name->len,
                                          NGX_HTTP_ASYNCX_UTF8_CONTROLS);
    if (len == name->len) {
        return NGX_OK;
    }

    shown.data = ngx_pnalloc(cf->temp_pool, len);
    if (shown.data == NULL) {
        return NGX_ERROR;
    }

    shown.len = ngx_http_asyncx_utf8_escape(shown.data, name->data, name->len,
                                            NGX_HTTP_ASYNCX_UTF8_CONTROLS)
                - shown.data;

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid %s \"%V\" in \"%V\", expected UTF-8 text "
                       "without control characters", what, &shown, directive);

    return NGX_ERROR;
}


/*
 * The content handler of the location being read: one per location, as
 * with proxy_pass.  The directive's handler returns what this returns.
 * *own keeps it in the module's location conf, for the location's
 * "limit_except" block, whose handler nginx does not inherit.
 */

char *
ngx_http_asyncx_conf_set_handler(ngx_conf_t *cf, ngx_http_handler_pt handler,
    ngx_http_handler_pt *own)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler != NULL) {
        return "is duplicate: the location already has a content handler";
    }

    clcf->handler = handler;
    *own = handler;

    return NGX_CONF_OK;
}


/* a subsystem's variables, a table ending with ngx_http_null_variable */

ngx_int_t
ngx_http_asyncx_conf_add_variables(ngx_conf_t *cf, ngx_http_variable_t *vars)
{
    ngx_http_variable_t  *var, *v;

    for (v = vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}
