"""Hypothesis settings shared by every property: a fixed seed (PROPS_SEED),
a number of examples scaled by PROPS_N, no example database (runs do not
depend on earlier runs), no deadline (the machine may be busy), and an
error.log check after every example."""

import functools
import os

from hypothesis import HealthCheck, Phase, given, seed, settings

import checks
from harness import SERVER

SEED = int(os.environ.get('PROPS_SEED', '20261124'))
# examples of the cheapest property; others take a share of it
N = int(os.environ.get('PROPS_N', '32'))
# PROPS_EXPLICIT=0 skips the hand-written @example cases (the issue's
# reproductions) and only searches generated inputs
EXPLICIT = os.environ.get('PROPS_EXPLICIT', '1') != '0'
PHASES = ((Phase.explicit,) if EXPLICIT else ()) + (
    Phase.reuse, Phase.generate, Phase.shrink)


def prop(weight=1.0, **strategies):
    """@prop(0.5, x=st.integers()) runs about N * 0.5 examples of the
    test with the run's seed, then checks the error.log."""

    def deco(f):
        @functools.wraps(f)
        def body(*args, **kwargs):
            try:
                f(*args, **kwargs)
            except BaseException:
                # this example failed already: its log lines must not be
                # blamed on the next one
                SERVER.new_log()
                raise
            checks.log_clean('after %s(%s)' % (
                f.__name__, ', '.join('%s=%r' % (k, v if len(repr(v)) < 200
                                                 else repr(v)[:200] + '...')
                                      for k, v in kwargs.items())))

        test = given(**strategies)(body)
        test = settings(max_examples=max(1, int(N * weight)),
                        deadline=None, database=None, print_blob=True,
                        phases=PHASES,
                        suppress_health_check=list(HealthCheck))(test)
        return seed(SEED)(test)

    return deco
