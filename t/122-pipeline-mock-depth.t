# The mock trusts a pipeline's document without checking it again only
# where the check could not refuse it: a document of at most 2,000
# bytes cannot nest deeper than the validator's 1,000 levels (each level
# takes two bytes).  A longer document wraps a client body the pipeline
# took, at most 992 levels deep (it keeps 8 for its own wrapping), so
# the document nests at most 993: the mock writes its summary, and the
# pipeline refuses a body one level deeper with the reason (before, it
# took 1,000 levels and the mock answered "json":false for the 1,001 of
# the document: found by session 10's and session 17's hostile reviews).

use lib 't/lib';
use Test::Nginx::Socket;

repeat_each(1);

# one stage, one mock answering at once with its summary (echo=summary)
our $pipeline = <<'_EOC_';
    location = /p {
        asyncx_pipeline;
        asyncx_stage s1 a=/m/a;
    }
    location = /m/a {
        internal;
        asyncx_mock_service name=a;
    }
_EOC_

plan tests => repeat_each() * 2 * blocks();

no_long_string();

run_tests();

__DATA__

=== TEST 1: a body nested 993 deep: refused by the pipeline, saying why
--- config eval: $main::pipeline
--- request eval
"POST /p\n" . ("[" x 993) . ("]" x 993)
--- error_code: 400
--- response_body_like: ^\{"error": "invalid JSON at byte 992: nested deeper than the module can wrap it \(1000 levels in all\)", "status": 400\}$



=== TEST 2: 992 deep: the document nests 993, the summary as always
--- config eval: $main::pipeline
--- request eval
"POST /p\n" . ("[" x 992) . ("]" x 992)
--- response_body_like: "result":\{"service":"a","delay_ms":0,"received":\{"method":"POST","bytes":2\d\d\d,"stage":"s1","call":"a","results":\[\]\}\}
