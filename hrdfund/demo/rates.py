"""The demo's monthly exchange rates: a seeded drift from rough rates of two and a half years
ago, each recorded in the fund's table by its finance user and confirmed by a manager."""

from datetime import datetime, timedelta
from decimal import Decimal

from ..core.money import RATE_PLACES
from ..grants.plans import months_after
from ..pools.models import ExchangeRate

#: Units of each currency per US dollar two and a half years ago: rough demo rates that
#: then drift month by month.
PER_USD = {
    "USD": "1",
    "EUR": "0.92",
    "GBP": "0.79",
    "SEK": "10.4",
    "KES": "129",
    "UGX": "3700",
    "TZS": "2600",
    "ETB": "57",
    "SDG": "600",
    "CDF": "2800",
    "XAF": "605",
    "NGN": "1500",
    "GHS": "15",
    "XOF": "605",
    "ZAR": "18.5",
    "EGP": "48",
    "MAD": "10",
    "TND": "3.1",
    "JOD": "0.71",
    "LBP": "89500",
    "IQD": "1310",
    "YER": "250",
    "TRY": "34",
    "COP": "4000",
    "PEN": "3.75",
    "BOB": "6.9",
    "VES": "36.5",
    "MXN": "17.5",
    "GTQ": "7.8",
    "HNL": "24.7",
    "NIO": "36.6",
    "BRL": "5.1",
    "INR": "83",
    "PKR": "278",
    "BDT": "117",
    "NPR": "133",
    "LKR": "300",
    "AFN": "71",
    "MMK": "2100",
    "THB": "36",
    "PHP": "56",
    "IDR": "15800",
    "KHR": "4100",
    "MYR": "4.7",
    "KGS": "89",
    "KZT": "470",
    "UZS": "12600",
    "TJS": "10.9",
    "GEL": "2.7",
    "AMD": "390",
    "AZN": "1.7",
    "UAH": "41",
    "BYN": "3.27",
    "RUB": "92",
}
#: Francs per euro of the West and Central African CFA francs, fixed by treaty: finance
#: pays at this rate, and one drifting away from it is flagged as far from the table.
CFA_PER_EUR = Decimal("655.957")
PEGGED_TO_EUR = ("XOF", "XAF")
#: Currencies whose rate barely moves; the others drift and slowly lose value.
STEADY = frozenset({"USD", "EUR", "GBP", "SEK", "JOD", "XOF", "XAF"})


class Rates:
    """Monthly demo exchange rates: a seeded drift from PER_USD, Decimal throughout."""

    def __init__(self, rng, first_day, last_day):
        self.first = first_day.replace(day=1)
        months = (last_day.year - self.first.year) * 12 + last_day.month - self.first.month + 1
        self.per_usd = {}
        for code, start in PER_USD.items():
            value, series = Decimal(start), []
            spread, drift = (4, 0) if code in STEADY else (15, 6)
            for _ in range(months):
                series.append(value)
                change = Decimal(rng.randint(-spread, spread) + drift) / 1000
                value = (value * (1 + change)).quantize(Decimal("0.0001"))
            self.per_usd[code] = series
        # The CFA francs are pegged to the euro: they follow it, at the peg to the unit.
        for code in PEGGED_TO_EUR:
            self.per_usd[code] = [eur * CFA_PER_EUR for eur in self.per_usd["EUR"]]
        self.cache = {}
        #: Called with (base, quote, first day of the month, rate) for each rate the first
        #: time it is used; returns the id of its table entry.
        self.record = None

    def rate(self, quote, base, day):
        """Units of ``quote`` per unit of ``base`` in the month of ``day`` (8 places)."""
        return self.entry(quote, base, day)[0]

    def entry(self, quote, base, day):
        """:meth:`rate` and the id of its table entry (None for one currency)."""
        if quote == base:
            return Decimal(1), None
        month = (day.year - self.first.year) * 12 + day.month - self.first.month
        key = (quote, base, month)
        found = self.cache.get(key)
        if found is None:
            value = self.per_usd[quote][month] / self.per_usd[base][month]
            value = value.quantize(RATE_PLACES)
            found = self.cache[key] = (
                value,
                self.record(base, quote, months_after(self.first, month), value),
            )
        return found

    def worth_range(self, currency, reporting):
        """The least and most one unit of ``currency`` is worth in ``reporting`` over every
        month of the series."""
        if currency == reporting:
            return Decimal(1), Decimal(1)
        values = [
            to / unit
            for to, unit in zip(self.per_usd[reporting], self.per_usd[currency], strict=True)
        ]
        return min(values), max(values)

    def usd_to(self, currency):
        """Units of ``currency`` per US dollar at the start (for sizing requests)."""
        return Decimal(PER_USD[currency])


def add_exchange_rate(world, base, quote, on, rate):
    """The table entry of a monthly rate, recorded by finance the evening before and
    confirmed by a manager at once, so it is nobody's alone; return its id."""
    uid = world.uid()
    recorded = min(datetime.combine(on, datetime.min.time()) - timedelta(hours=8), world.now)
    return world.tables[ExchangeRate].add(
        {
            "uid": uid,
            "fund_id": world.fund.id,
            "on_date": on,
            "base": base,
            "quote": quote,
            "rate": rate,
            "source": world.enc("exchange_rates", "source", uid, "Demo reference rates, monthly"),
            "set_by_id": world.finance,
            "needs_second": False,
            "confirmed_by_id": world.managers[0],
            "confirmed_at": recorded + timedelta(minutes=30),
            "created_at": recorded,
        }
    )
