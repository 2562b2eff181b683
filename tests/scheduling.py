"""How `pytest -n N --dist loadfile` shares the suite among its processes.

xdist's own loadfile sends each test file whole to one process, the files with the most
tests first. A file of a few long tests (a fuzz walk, a property test, the browser
journeys) then often starts last and runs alone while the other processes wait. Here:

- a file's SQLite tests and its PostgreSQL tests are two units (each process has its own
  PostgreSQL database, and module fixtures over both backends are built per backend
  anyway), so the two halves of a long file run side by side;
- the browser tests are one unit: each process that runs one starts a server and a
  browser of its own;
- the units go out longest first, by the seconds ``LONGEST`` gives them (measured; a
  name that no longer matches only loses its place), the rest by their number of tests.
"""

import re

from xdist.scheduler import LoadFileScheduling

#: Seconds each of the slowest units took in a run of the whole suite.
LONGEST = {
    "tests/e2e": 152,
    "tests/test_ledger_property.py[postgresql]": 62,
    "tests/test_money_fields.py[postgresql]": 51,
    "tests/test_fuzz_routes.py[postgresql]": 51,
    "tests/test_html_valid.py": 33,
    "tests/test_fuzz_routes.py[sqlite]": 31,
    "tests/test_serving.py[sqlite]": 30,
    "tests/test_serving.py[postgresql]": 29,
    "tests/test_money_fields.py[sqlite]": 26,
    "tests/test_query_counts.py[postgresql]": 23,
    "tests/test_fund_isolation.py[postgresql]": 22,
    "tests/test_open_items.py[postgresql]": 21,
    "tests/test_migrations.py[sqlite]": 21,
    "tests/test_several_servers.py": 18,
    "tests/test_ledger_property.py[sqlite]": 16,
    "tests/test_fund_isolation.py[sqlite]": 16,
    "tests/test_migrations.py[postgresql]": 15,
    "tests/test_query_counts.py[sqlite]": 13,
}
#: Seconds a test of any other unit is counted for.
PER_TEST = 0.3
_BACKEND = re.compile(r"\[(?:.*\W)?(sqlite|postgresql)(?:\W.*)?\]$")


def unit_of(nodeid):
    """The unit of work the test ``nodeid`` belongs to."""
    path = nodeid.split("::", 1)[0]
    if path.startswith("tests/e2e/"):
        return "tests/e2e"
    backend = _BACKEND.search(nodeid)
    return f"{path}[{backend.group(1)}]" if backend else path


class LongestFirstScheduling(LoadFileScheduling):
    """loadfile, with the units above, sent out longest first."""

    def _split_scope(self, nodeid):
        return unit_of(nodeid)

    def _assign_work_unit(self, node):
        def seconds(unit):
            return LONGEST.get(unit, PER_TEST * len(self.workqueue[unit]))

        self.workqueue.move_to_end(max(self.workqueue, key=seconds), last=False)
        super()._assign_work_unit(node)
