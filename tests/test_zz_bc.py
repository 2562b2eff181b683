import cProfile
import pstats

from hrdfund.disbursements.checks import check_ledger
from tests.test_ledger_property import build_world


def test_b(app, backend):
    build_world()
    check_ledger()
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(50):
        check_ledger()
    pr.disable()
    pstats.Stats(pr).sort_stats("cumulative").print_stats(r"hrdfund", 40)
