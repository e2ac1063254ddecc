/*
 * The baseline of bench/sse/file.sh: the search of /stream over NDJSON
 * files as a plain C loop, no nginx, no threads, no JSON, no output.
 * Reads the file 1 MiB at a time and, line by line, looks for the end of
 * the line (memchr) and the keyword in it (memmem): the lines and the
 * lines that hold the keyword, as `grep -c` counts them.
 *   plain_ndjson FILE KEYWORD [repeats]
 */

#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


#define CHUNK  (1024 * 1024)


int
main(int argc, char **argv)
{
    int              fd, k, repeats;
    char            *buf, *p, *end, *nl;
    size_t           kwlen, have;
    ssize_t          n;
    double           secs;
    unsigned long    lines, matches, bytes;
    struct timespec  a, b;

    if (argc < 3) {
        fprintf(stderr, "usage: plain_ndjson FILE KEYWORD [repeats]\n");
        return 2;
    }

    kwlen = strlen(argv[2]);
    repeats = argc > 3 ? atoi(argv[3]) : 1;
    buf = malloc(CHUNK + 65536);

    for (k = 0; k < repeats; k++) {
        fd = open(argv[1], O_RDONLY);
        if (fd == -1 || buf == NULL) {
            perror(argv[1]);
            return 1;
        }

        lines = 0;
        matches = 0;
        bytes = 0;
        have = 0;

        clock_gettime(CLOCK_MONOTONIC, &a);

        for ( ;; ) {
            n = read(fd, buf + have, CHUNK);
            if (n <= 0) {
                break;
            }

            bytes += n;
            p = buf;
            end = buf + have + n;

            while ((nl = memchr(p, '\n', end - p)) != NULL) {
                lines++;
                if (memmem(p, nl - p, argv[2], kwlen) != NULL) {
                    matches++;
                }
                p = nl + 1;
            }

            /* the partial last line moves to the front */
            have = end - p;
            memmove(buf, p, have);
        }

        if (have) {
            lines++;
            if (memmem(buf, have, argv[2], kwlen) != NULL) {
                matches++;
            }
        }

        clock_gettime(CLOCK_MONOTONIC, &b);
        close(fd);

        secs = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;

        printf("plain bytes=%lu lines=%lu matches=%lu total_s=%.4f "
               "MB_per_s=%.1f lines_per_s=%.0f\n", bytes, lines, matches,
               secs, bytes / secs / 1e6, lines / secs);
    }

    return 0;
}
