-- wrk script (cluster.sh): at the end, one line with the request count,
-- the non-2xx answers and the latency percentiles in microseconds
done = function(summary, latency, requests)
    io.write(string.format("LAT n=%d errors=%d p50=%d p90=%d p99=%d max=%d\n",
        summary.requests,
        summary.errors.connect + summary.errors.read + summary.errors.write
            + summary.errors.status + summary.errors.timeout,
        latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency.max))
end
