# The mock trusts a pipeline's document without checking it again only
# where the check could not refuse it: a document of at most 2,000
# bytes cannot nest deeper than the validator's 1,000 levels (each level
# takes two bytes).  A client body nested 1,000 deep is accepted by the
# pipeline, and the document that wraps it nests 1,001 deep: the mock
# refuses it as it always did ("json":false), the same answer byte for
# byte as before the mock trusted documents (found by session 10's
# hostile review).  999 deep: the summary.

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

=== TEST 1: a body nested 1,000 deep: the call's document nests 1,001, the mock says "json":false
--- config eval: $main::pipeline
--- request eval
"POST /p\n" . ("[" x 1000) . ("]" x 1000)
--- response_body_like: "result":\{"service":"a","delay_ms":0,"received":\{"method":"POST","bytes":2\d\d\d,"json":false\}\}



=== TEST 2: 999 deep: the document nests 1,000, the summary as always
--- config eval: $main::pipeline
--- request eval
"POST /p\n" . ("[" x 999) . ("]" x 999)
--- response_body_like: "result":\{"service":"a","delay_ms":0,"received":\{"method":"POST","bytes":2\d\d\d,"stage":"s1","call":"a","results":\[\]\}\}
