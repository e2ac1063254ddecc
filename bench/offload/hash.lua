-- wrk -s hash.lua: POST /auth/hash with a fixed password
wrk.method = "POST"
wrk.body = '{"password": "benchmark-password"}'
wrk.headers["Content-Type"] = "application/json"
