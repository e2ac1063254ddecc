-- wrk -s post.lua: POST with an empty body (the handler's generated input)
wrk.method = "POST"
