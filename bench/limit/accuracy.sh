# Sourced by bench/limit/run.sh and cluster.sh: admissions per second of
# an access log, against the configured rate.

# admissions per second of an access log ($msec $status $request_time $pid)
# A stall: no request at all logged by either worker for longer than the
# bucket absorbs (burst / rate): nginx or the client did not run (a
# shared machine); the tokens of that time overflow the bucket.  The
# largest error is also given over the seconds without a stall.
accuracy() {   # $1 log, $2 rate, $3 burst
    sort -n -k1,1 "$1" | awk -v rate="$2" -v burst="$3" '
        # seconds counted from the first admission plus half a token
        # interval: tokens come every 1/rate s from the first admission
        # on, so a second edge never falls on a token moment (an edge
        # there would move one admission to the next second on a 1 ms
        # jitter)
        NR == 1 { t0 = $1 + 0.5 / rate; prev = $1 }
        { sec = int($1 - t0); if ($1 < t0) sec = 0; if (sec > last) last = sec
          if ($1 > tmax) tmax = $1
          g = $1 - prev
          if (g > burst / rate) {
              stalls++; if (g > longest) longest = g
              # and the next second: it spends what the bucket kept
              for (x = int(prev - t0); x <= sec + 1; x++) stalled[x] = 1
          }
          prev = $1 }
        $2 == 200 { ok[sec]++; okn++; pid[$4]++
                    if (!f || $1 < f) f = $1; if ($1 > l) l = $1; next }
        $2 == 429 { lim[sec]++; limn++; next }
        { other[$2]++; othern++ }
        END {
            printf "per second (admitted/429):"
            for (s = 0; s <= last; s++) printf " %d/%d%s", ok[s], lim[s], stalled[s] ? "*" : ""
            printf "\n"
            # full seconds only: not the first (it also spends the burst)
            # nor the last (partial)
            min = -1
            for (s = 1; s < last; s++) {
                n++; sum += ok[s]
                if (min < 0 || ok[s] < min) min = ok[s]
                if (ok[s] > max) max = ok[s]
                e = (ok[s] - rate) * 100 / rate; if (e < 0) e = -e
                if (e > maxerr) maxerr = e
                if (!stalled[s] && e > maxerr_ok) maxerr_ok = e
                if (!stalled[s]) nok++
            }
            span = l - f
            printf "admitted %d, refused 429 %d, other %d", okn, limn, othern
            for (c in other) printf " (%s: %d)", c, other[c]
            printf ", offered %.0f r/s\n", (okn + limn + othern) / (tmax - t0)
            printf "steady seconds 1..%d: admitted/s mean %.2f min %d max %d," \
                   " mean error %+.3f%%, largest error in a second %.3f%%\n",
                   last - 1, sum / n, min, max, (sum / n - rate) * 100 / rate,
                   maxerr
            printf "stalls (no request logged for more than burst/rate = %.0f ms):" \
                   " %d, longest %.0f ms (seconds marked *, with the next); largest error in" \
                   " the %d seconds without one: %.3f%%\n",
                   burst / rate * 1000, stalls, longest * 1000, nok, maxerr_ok
            printf "whole run: (admitted - burst) / span = (%d - %d) / %.3f s" \
                   " = %.3f r/s, error %+.3f%%\n", okn, burst, span,
                   (okn - burst) / span, ((okn - burst) / span - rate) * 100 / rate
            printf "admitted per worker pid:"
            for (p in pid) printf " %s=%d", p, pid[p]
            printf "\n"
        }'
}
