"""Which cases a pool may fund: the one rule, in its two forms side by side.

- :func:`pool_mismatches` judges one case in Python, in words: approvals and the decision
  page's pool options check a case with it, and the demo chooses its pools by it.
- :func:`fitting_cases` is the same restrictions as SQL conditions over the table of cases:
  the staff queue's pool filter lists the cases they select.

The two forms must agree: a case the SQL conditions select has no restriction the Python
form names, and a case they leave out has one. Change one, change the other with it;
``tests/test_pool_eligibility.py`` judges both on a grid of pools and cases and fails when
they part. The SQL form reads the region a case records, which is its country's (set
whenever the case is saved); the Python form falls back to the country's region when none
is recorded. What the SQL form leaves to its caller: the queue offers only the fund's
active pools, and lists a case whatever a pool's cap per grant or date window (they depend
on the amount and the day of a decision, not on the case).

Neither form reads the cases feature: a case is any object (Python) or mapped class (SQL)
with ``fund_id``, ``category``, ``country`` and ``region``.
"""

from flask_babel import lazy_gettext as _l

from ..core import geo
from ..core.columns import utcnow
from ..core.money import money_words


def restriction_rules(pool):
    """The pool's restrictions as {kind: allowed values}; a kind with no entry allows
    every value."""
    rules = {}
    for restriction in pool.restrictions:
        rules.setdefault(str(restriction.kind), set()).add(restriction.value)
    return rules


def pool_mismatches(pool, application, pool_amount, on=None):
    """Every way ``pool`` does not fit ``application`` when the grant draws ``pool_amount``
    from it in all (its cap is per grant, whatever the lines it is split over); empty if it
    fits. With ``pool_amount`` None the cap is left out."""
    on = on or utcnow().date()
    reasons = []
    if pool.fund_id != application.fund_id or not pool.active:
        reasons.append(_l("the pool is not open to this fund's grants"))
    rules = restriction_rules(pool)
    if rules.get("category") and application.category.value not in rules["category"]:
        reasons.append(_l("the pool does not fund this kind of support"))
    if rules.get("country") and application.country not in rules["country"]:
        reasons.append(_l("the pool does not fund this country"))
    region = application.region or geo.region_of(application.country)
    if rules.get("region") and region not in rules["region"]:
        reasons.append(_l("the pool does not fund this region"))
    if pool.cap_per_grant is not None and pool_amount is not None:
        if pool_amount > pool.cap_per_grant:
            reasons.append(
                _l(
                    "the grant would draw %(amount)s from it, above its cap of %(cap)s per grant",
                    amount=money_words(pool_amount, pool.currency),
                    cap=money_words(pool.cap_per_grant, pool.currency),
                )
            )
    if (pool.starts_on and on < pool.starts_on) or (pool.ends_on and on > pool.ends_on):
        reasons.append(_l("the pool's date window is closed"))
    return reasons


def fitting_cases(pool, case):
    """SQL conditions on ``case`` (the mapped class of cases) for the cases ``pool``'s
    category, country and region rules allow; no condition for a kind it leaves open."""
    rules = restriction_rules(pool)
    conditions = []
    if rules.get("category"):
        conditions.append(case.category.in_(sorted(rules["category"])))
    if rules.get("country"):
        conditions.append(case.country.in_(sorted(rules["country"])))
    if rules.get("region"):
        conditions.append(case.region.in_(sorted(rules["region"])))
    return conditions
