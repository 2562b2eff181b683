"""What reports say about people in the periods of a year that have ended, decided once:
the breakdowns of who was paid, budget against actual, timeliness, outcomes and the CSV's
lines, each decided beside what the year's earlier periods issued, which stay as they were
(see ``anonymise`` for what is hidden and why).
"""

import math
from collections import defaultdict

from flask import current_app

from ..core.money import quantize
from . import anonymise, rollup
from .grid import Grid
from .recorded import ZERO, half_years, listed_together, within

SMALL = anonymise.SMALL


#: The breakdowns of who was paid, each a field of the case.
DIMENSIONS = ("category", "region", "gender")
#: The breakdowns whose values the CSV's lines show: a figure of them less the lines of
#: its value is what the grants not listed add up to.
LISTED_DIMENSIONS = ("category", "region")
#: The coarser breakdowns a table of who was paid may be rolled up to (``rollup``).
COARSE_DIMENSIONS = tuple(rollup.ROLLUPS)
PEOPLE = ("grants", "defenders", "dependants")


class Decision:
    """The figures of the periods ``new`` (ended, none issued), decided beside those
    ``issued`` (code -> the figures an earlier report issued) of the same year."""

    def __init__(self, recorded, new, issued):
        self.recorded, self.new, self.issued = recorded, list(new), issued
        included = set(self.new) | set(issued)
        self.children = {code: recorded.children[code] for code in included}
        #: Half-years: only their totals, in the year's table by period.
        self.summaries = [c for c in half_years(recorded.year) if c in included]
        self.folded = self._folded()
        self.people = self._people()
        self.budget = self._budget()
        self.timeliness = self._totals(
            "timeliness",
            ("payment",),
            {code: {"payment": len(recorded.payment_hours[code])} for code in self.new},
        )
        self.outcomes = self._totals(
            "outcomes",
            ("felt_safer", "continued_work"),
            {code: {k: len(v) for k, v in recorded.answers[code].items()} for code in self.new},
        )
        self.lines = self._lines()
        self.elsewhere = self._elsewhere()

    def _grid(self, part, dims, counts, amounts=(), **options):
        """A grid over the new and issued periods, the issued ones fixed as issued, with
        every value of each breakdown any of them has."""
        for figures in self.issued.values():
            for _measure, label, _value, _hidden in figures[part]["cells"]:
                if label != anonymise.TOTAL and label[0] in dims:
                    dims[label[0]].add(label[1])
        return Grid(
            self.children,
            {d: sorted(v) for d, v in dims.items()},
            counts,
            amounts,
            summaries=self.summaries,
            **options,
        )

    def _fix(self, grid, part):
        for code, figures in self.issued.items():
            grid.fix(code, figures[part])

    def _people(self):
        """Grants paid (net above zero), defenders and their dependants counted apart,
        and the amount, by category, region and gender, in every new period."""
        recorded = self.recorded
        groups = defaultdict(
            lambda: {"ids": set(), "defenders": {}, "amount": ZERO, "big": ZERO, "unlisted": 0}
        )
        values = {dim: set() for dim in DIMENSIONS + COARSE_DIMENSIONS}
        listed = defaultdict(set)
        for code in self.new:
            for gid, amount in recorded.nets[code].items():
                case = dict(recorded.cases[gid])
                for dim in COARSE_DIMENSIONS:
                    case[dim] = rollup.coarser(dim, case[rollup.ROLLUPS[dim]])
                for dim in DIMENSIONS + COARSE_DIMENSIONS:
                    values[dim].add(case[dim])
                    listed[(code, dim)].add(case[dim])
                labels = [(dim, case[dim]) for dim in DIMENSIONS + COARSE_DIMENSIONS]
                for label in [anonymise.TOTAL, *labels]:
                    group = groups[(code, label)]
                    group["amount"] += amount
                    group["big"] = max(group["big"], abs(amount))
                    if amount > 0:
                        group["ids"].add(gid)
                        group["defenders"][case["defender"]] = case["dependants"]
                        group["unlisted"] += recorded.unlisted(gid)
        grid = self._grid(
            "people",
            values,
            PEOPLE,
            ("amount",),
            known_totals=("amount",),  # each period's payments: the account gives them
            twins=("defenders",),
            attributes=("dependants",),
            rollups={coarse: rollup.parents(coarse) for coarse in COARSE_DIMENSIONS},
        )
        for (code, label), group in groups.items():
            grid.put(
                code,
                label,
                {
                    "grants": len(group["ids"]),
                    "defenders": len(group["defenders"]),
                    "dependants": sum(group["defenders"].values()),
                    "amount": group["amount"],
                },
                {"amount": group["big"]},
            )
            # A row less the CSV's lines of its value is what the grants not listed there
            # add up to. The total less all the lines never is: a period with 1 to 4 not
            # listed lists no line at all (``data.line_items``), so no row of it either.
            if label != anonymise.TOTAL and label[0] in LISTED_DIMENSIONS + COARSE_DIMENSIONS:
                if anonymise.is_small(group["unlisted"]) and not self.folded[code]:
                    grid.extra[(code, label)] = anonymise.UNLISTED
        for code in self.new:
            paid = recorded.nets[code]
            grid.population[code] = len(paid)
            for dim in DIMENSIONS + COARSE_DIMENSIONS:
                grid.listed[(code, dim)] = sorted(listed[(code, dim)])
        self._fix(grid, "people")
        return grid.protect()

    def _budget(self):
        """Budget against actual: for the grants the pool committed to in each new period,
        by category, the grants, what was committed and what was paid on it by the
        period's end."""
        recorded = self.recorded
        groups = defaultdict(
            lambda: {"ids": set(), "budget": ZERO, "actual": ZERO, "big": ZERO, "big_actual": ZERO}
        )
        categories = set()
        listed = defaultdict(set)
        new = set(self.new)
        for aid, gid, amount, created_at, category in recorded.allocations:
            for code in set(within(created_at.date())) & new:
                categories.add(category.value)
                end = recorded.periods[code].end
                actual = quantize(
                    sum((a for day, a in recorded.paid_on_allocation[aid] if day < end), ZERO)
                )
                listed[(code, "category")].add(category.value)
                for label in (anonymise.TOTAL, ("category", category.value)):
                    group = groups[(code, label)]
                    group["ids"].add(gid)
                    group["budget"] += amount
                    group["actual"] += actual
                    group["big"] = max(group["big"], amount)
                    group["big_actual"] = max(group["big_actual"], abs(actual))
        grid = self._grid(
            "budget",
            {"category": categories},
            ("grants",),
            ("budget", "actual"),
            known_totals=("budget",),  # the period's commitments, in its account
        )
        for (code, label), group in groups.items():
            grid.put(
                code,
                label,
                {"grants": len(group["ids"]), "budget": group["budget"], "actual": group["actual"]},
                {"budget": group["big"], "actual": group["big_actual"]},
            )
        for code in self.new:
            grid.population[code] = len(recorded.decided[code])
            grid.listed[(code, "category")] = sorted(listed[(code, "category")])
        self._fix(grid, "budget")
        return grid.protect()

    def _totals(self, part, measures, counts):
        """A grid of counts without breakdowns, shown only from 5 (none is zero-or-more by
        itself): the grants first paid, or the answers to each outcome question."""
        grid = Grid(self.children, {}, measures, summaries=self.summaries)
        for code, values in counts.items():
            grid.put(code, anonymise.TOTAL, values)
        for code, figures in self.issued.items():
            grid.fix(code, figures[part]["grid"])
        for measure in grid.counts:
            for _key, cell in grid.cells_of(measure, new=True):
                if cell.value < anonymise.THRESHOLD:
                    cell.hidden = SMALL
        return grid.protect()

    def _lines(self):
        """Each listed grant's category and place as its CSV lines show them, the same in
        every period of the year: as an earlier period issued it, or generalised until
        every pair is shared by 5 or more lines in each new period."""
        recorded = self.recorded
        issued = {}
        for figures in self.issued.values():
            for gid, category, place, _committed, _paid in figures["lines"]:
                issued[gid] = {"category": category, "place": place}
        attributes = {}
        new = [code for code in self.new if code not in self.summaries]
        for code in new:
            for gid in recorded.nets[code]:
                if gid in attributes or recorded.unlisted(gid):
                    continue
                case = recorded.cases[gid]
                attributes[gid] = issued.get(gid) or {
                    "category": case["category"],
                    "place": anonymise.place(case["country"]),
                }
                attributes[gid]["region"] = case["region"]
        anonymise.generalise(
            list(attributes.values()),
            periods=[
                [attributes[gid] for gid in recorded.nets[code] if gid in attributes]
                for code in new
            ],
            fixed=[attributes[gid] for gid in attributes if gid in issued],
        )
        return attributes

    def _csv_lines(self, code):
        """The CSV's lines of the new period ``code`` (grant, category, place, committed by
        the period's end, paid in it) and what the grants not listed add up to."""
        recorded = self.recorded
        end = recorded.periods[code].end
        paid = recorded.nets[code]
        lines, others = [], {"count": 0, "moved": 0, "committed": ZERO, "paid": ZERO}
        for gid in sorted(paid):
            committed = recorded.committed_by(gid, end)
            if gid in self.lines:
                shown = self.lines[gid]
                lines.append(
                    [
                        gid,
                        shown["category"],
                        shown["place"],
                        str(committed),
                        str(quantize(paid[gid])),
                    ]
                )
            else:
                others["count"] += 1
                others["moved"] += quantize(paid[gid]) != 0
                others["committed"] += committed
                others["paid"] += quantize(paid[gid])
        return lines, others

    def _folded(self):
        """New period code -> whether its CSV lists no line (``data.line_items``): 1 to 4
        grants are not listed (or 1 to 4 of them had money moved) in it or in a period
        listed together with it, issued before or new. Decided once, as the period is
        issued: a month issued with its lines keeps them when a later month of its quarter
        lists none (the donor has them already)."""
        recorded = self.recorded
        few = {}
        for code in self.new:
            apart = [a for gid, a in recorded.nets[code].items() if recorded.unlisted(gid)]
            moved = sum(1 for amount in apart if quantize(amount) != 0)
            few[code] = anonymise.few_apart(len(apart), moved)
        for code, figures in self.issued.items():
            unlisted = figures["unlisted"]
            count = unlisted["count"][0]
            few[code] = anonymise.few_apart(count, unlisted.get("moved", count))
        return {
            code: any(few.get(c, False) for c in listed_together(code, recorded.year))
            for code in self.new
        }

    def _elsewhere(self):
        """How many of the defenders paid in each new period were also supported by another
        fund (an accepted referral, either way, by the period's end), decided over the
        year's periods together like the other counts: under 5 it shows as "fewer than 5";
        it is hidden too when the period's number of defenders is, or when the defenders
        it leaves out are 1 to 4, so that neither side of it singles anyone out; and
        further counts are hidden until none hidden can be worked out from a year's or a
        quarter's less its other periods. No fund is named."""
        recorded = self.recorded
        grid = Grid(self.children, {}, ("elsewhere",), summaries=self.summaries)
        for code in self.new:
            end = recorded.periods[code].end
            defenders, elsewhere = set(), set()
            for gid, amount in recorded.nets[code].items():
                if amount <= 0:
                    continue
                defender = recorded.cases[gid]["defender"]
                defenders.add(defender)
                if recorded.also_elsewhere(gid, end):
                    elsewhere.add(defender)
            count = len(elsewhere)
            grid.put(code, anonymise.TOTAL, {"elsewhere": count})
            total = self.people.cell("defenders", code)
            if count and (not total.shown or anonymise.is_small(len(defenders) - count)):
                grid.extra[(code, anonymise.TOTAL)] = anonymise.SECONDARY
        for code, figures in self.issued.items():
            # A period issued before reports said it showed nothing of it.
            count, hidden = figures.get("other_funds") or (0, SMALL)
            cells = [["elsewhere", anonymise.TOTAL, count, hidden]]
            grid.fix(code, {"cells": cells, "listed": {}, "broken_down": True})
        grid.protect()
        # The periods' counts do not quite add up (a defender paid in two months is one in
        # their quarter), so what the sums would give away is no reason to show a count
        # the rules hide.
        for (code, label), cell in grid.cells_of("elsewhere", new=True):
            if anonymise.is_small(cell.value):
                cell.hidden = cell.hidden or SMALL
            cell.hidden = cell.hidden or grid.extra.get((code, label))
        return grid

    def _other_funds(self, code):
        """The count of :meth:`_elsewhere` for the new period ``code``, as [count, why
        hidden]."""
        cell = self.elsewhere.cell("elsewhere", code)
        return [cell.value, cell.hidden]

    def figures(self, code):
        """What the reports of the new period ``code`` issue, as plain JSON-ready values."""
        recorded, config = self.recorded, current_app.config
        period = recorded.periods[code]
        paid = recorded.nets[code]
        lines, others = self._csv_lines(code)
        total = self.people.cell("grants", code)
        count = others["count"]
        hidden = (
            None if total.shown else (SMALL if anonymise.is_small(count) else anonymise.SECONDARY)
        )
        return {
            "people": self.people.issued_figures(code),
            "months": [
                m.strftime("%Y-%m") for m in period.months() if recorded.nets[m.strftime("%Y-%m")]
            ],
            "paid": str(quantize(sum(paid.values(), ZERO))),
            "budget": self.budget.issued_figures(code),
            "timeliness": {
                "grid": self.timeliness.issued_figures(code),
                "decision": _measure(
                    self.budget.cell("grants", code),
                    recorded.decision_hours[code],
                    config["TARGET_DECISION_HOURS_NORMAL"],
                ),
                "payment": _measure(
                    self.timeliness.cell("payment", code),
                    recorded.payment_hours[code],
                    config["TARGET_PAYMENT_HOURS"],
                ),
            },
            "outcomes": {
                "grid": self.outcomes.issued_figures(code),
                **{
                    measure: _share(self.outcomes.cell(measure, code), answers)
                    for measure, answers in recorded.answers[code].items()
                },
            },
            "lines": lines,
            "other_funds": self._other_funds(code),
            "unlisted": {
                "count": [count, hidden],
                "moved": others["moved"],
                "folded": self.folded[code],
                "committed": str(others["committed"]),
                "paid": str(others["paid"]),
            },
        }


def _measure(cell, hours, target):
    """Median and 90th percentile hours against the fund's target, when the number of
    grants they cover is shown (5 or more, and not hidden beside another)."""
    if not cell.shown or cell.value < anonymise.THRESHOLD or not hours:
        return {"cases": cell.value, "shown": False, "hidden": cell.hidden or SMALL}
    return {
        "cases": cell.value,
        "shown": True,
        "median": round(_percentile(hours, 0.5)),
        "p90": round(_percentile(hours, 0.9)),
        "target": target,
        "within": round(100 * sum(1 for h in hours if h <= target) / len(hours)),
    }


def _share(cell, given):
    """The share of yes among the answers, when the number of answers is shown."""
    if not cell.shown or cell.value < anonymise.THRESHOLD:
        return {"answers": cell.value, "shown": False, "hidden": cell.hidden or SMALL}
    return {"answers": cell.value, "shown": True, "percent": round(100 * sum(given) / len(given))}


def _percentile(values, share):
    """Nearest-rank percentile of sorted ``values``."""
    rank = max(math.ceil(share * len(values)), 1)
    return values[rank - 1]
