/*
 * The baseline for bench/sse: the same search as /stream/search, as a
 * plain C loop over the synthetic data set (no nginx, no threads, no
 * output).  Built like the unit tests (Makefile's UNIT_CFLAGS -I flags)
 * against the module's own pure data set and util code.
 *   plain_search N [repeats]
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ngx_http_asyncx_dataset.h"


int
main(int argc, char **argv)
{
    int              k, repeats;
    u_char           rec[NGX_HTTP_ASYNCX_RECORD_MAX];
    size_t           len;
    uint64_t         i, n, hits;
    double           secs;
    struct timespec  a, b;

    n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    repeats = argc > 2 ? atoi(argv[2]) : 1;

    for (k = 0; k < repeats; k++) {
        hits = 0;

        clock_gettime(CLOCK_MONOTONIC, &a);

        for (i = 0; i < n; i++) {
            len = ngx_http_asyncx_dataset_record(i, rec);

            if (memmem(rec, len, "python", 6) != NULL) {
                hits++;
            }
        }

        clock_gettime(CLOCK_MONOTONIC, &b);
        secs = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;

        printf("plain records=%llu matches=%llu total_s=%.4f items_per_s=%.0f\n",
               (unsigned long long) n, (unsigned long long) hits, secs,
               n / secs);
    }

    return 0;
}
