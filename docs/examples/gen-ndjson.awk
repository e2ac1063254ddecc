# A deterministic NDJSON access log for the demo and bench/sse:
#   awk -v lines=20000 -v seed=1 -f gen-ndjson.awk > access.ndjson
# Park-Miller's generator: every product stays below 2^53, so any awk
# gives the same file.  About 190 bytes a line.

function rnd(n) {
    state = (state * 16807) % 2147483647
    return state % n
}

BEGIN {
    state = (seed > 0) ? seed : 1
    split("info info info info info warn warn error debug", level, " ")
    split("GET GET GET GET POST POST PUT DELETE", method, " ")
    split("/ /api/items /api/items/42 /api/users /api/orders " \
          "/static/app.js /static/app.css /health /login /search", path, " ")
    split("200 200 200 200 200 200 201 204 304 304 400 401 404 404 500 503",
          status, " ")
    msgs[1] = "request served"
    msgs[2] = "cache hit"
    msgs[3] = "cache miss, fetched from upstream"
    msgs[4] = "upstream timeout after 3 retries"
    msgs[5] = "slow query on orders table"
    msgs[6] = "user logged in"
    msgs[7] = "python worker restarted"
    msgs[8] = "rate limit reached for client"
    msgs[9] = "café order placed, 日本 region"
    msgs[10] = "connection reset by peer"
    nmsgs = 10

    for (i = 0; i < lines; i++) {
        s = 1700000000 + int(i / 20)
        ms = rnd(1000)
        lat = rnd(5000)
        if (rnd(3) == 0) {
            lat = sprintf("%d.%d", lat / 10, rnd(10))
        }
        printf "{\"id\":%d,\"ts\":%d.%03d,\"level\":\"%s\",\"method\":\"%s\"," \
               "\"path\":\"%s\",\"status\":%s,\"latency_ms\":%s," \
               "\"user\":\"u%d\",\"msg\":\"%s\"}\n",
               i, s, ms, level[rnd(9) + 1], method[rnd(8) + 1],
               path[rnd(10) + 1], status[rnd(16) + 1], lat, rnd(500),
               msgs[rnd(nmsgs) + 1]
    }
}
