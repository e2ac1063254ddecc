#!/usr/bin/python3
"""The generated-input layer: starts one nginx with the module (private
prefix), runs every t/props/test_*.py property against it, stops it.

    /usr/bin/python3 t/props/run.py [-k pattern] [-v]

Environment: TEST_PORT (the nginx listens on TEST_PORT + 8), PROPS_SEED,
PROPS_N (examples of the cheapest property), TEST_NGINX_BINARY,
TEST_NGINX_LOAD_MODULES, PROPS_KEEP=1 keeps the prefix for a look.
`make test-props SEED=... N=...` sets them."""

import argparse
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
# hypothesis keeps nothing between runs (database=None); its scratch
# directory goes to /tmp, not into the work tree
os.environ.setdefault('HYPOTHESIS_STORAGE_DIRECTORY',
                      '/tmp/asyncx-props-hypothesis')

import checks                       # noqa: E402
import common                       # noqa: E402
from harness import PORT, SERVER    # noqa: E402


class TimedResult(unittest.TextTestResult):
    def getDescription(self, test):
        # the name PROPS_ONLY / -k selects, not the docstring
        return test.id()

    def startTest(self, test):
        self._t0 = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        self.times = getattr(self, 'times', [])
        self.times.append((time.monotonic() - self._t0, test.id()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('-k', action='append', default=[],
                    help='only tests whose name contains this')
    ap.add_argument('-v', action='store_true')
    args = ap.parse_args()

    here = os.path.dirname(os.path.abspath(__file__))
    loader = unittest.TestLoader()
    if args.k:
        loader.testNamePatterns = ['*%s*' % k for k in args.k]
    suite = loader.discover(here, pattern='test_*.py', top_level_dir=here)

    print('props: seed %d, N %d, nginx on 127.0.0.1:%d, prefix %s'
          % (common.SEED, common.N, PORT, SERVER.dir), flush=True)
    t0 = time.monotonic()
    SERVER.start()
    try:
        runner = unittest.TextTestRunner(verbosity=2, resultclass=TimedResult,
                                         stream=sys.stdout)
        result = runner.run(suite)
        checks.log_clean('at the end of the run')
    finally:
        SERVER.stop()
        SERVER.cleanup()
    if args.v:
        for t, name in sorted(getattr(result, 'times', []), reverse=True):
            print('%6.2f s  %s' % (t, name))
    print('props: %d tests in %.1f s, seed %d, N %d: %s'
          % (result.testsRun, time.monotonic() - t0, common.SEED, common.N,
             'OK' if result.wasSuccessful() else 'FAILED'))
    if not result.wasSuccessful():
        print('props: rerun one property: the same make target with SEED=%d '
              'N=%d PROPS_ONLY=<test name>' % (common.SEED, common.N))
    return 0 if result.wasSuccessful() else 1


if __name__ == '__main__':
    sys.exit(main())
