"""Countries where defenders apply from, with their region and local currency.

Country names come from Babel's locale data; only the grouping is ours. Reports show
regions, never exact places.
"""

from babel import Locale

#: ISO 3166 alpha-2 -> (region, local currency).
COUNTRIES = {
    "KE": ("East Africa", "KES"),
    "UG": ("East Africa", "UGX"),
    "TZ": ("East Africa", "TZS"),
    "ET": ("East Africa", "ETB"),
    "SD": ("East Africa", "SDG"),
    "CD": ("Central Africa", "CDF"),
    "CM": ("Central Africa", "XAF"),
    "BI": ("Central Africa", "USD"),
    "NG": ("West Africa", "NGN"),
    "GH": ("West Africa", "GHS"),
    "SN": ("West Africa", "XOF"),
    "ML": ("West Africa", "XOF"),
    "ZW": ("Southern Africa", "USD"),
    "ZA": ("Southern Africa", "ZAR"),
    "MZ": ("Southern Africa", "USD"),
    "EG": ("Middle East and North Africa", "EGP"),
    "MA": ("Middle East and North Africa", "MAD"),
    "TN": ("Middle East and North Africa", "TND"),
    "JO": ("Middle East and North Africa", "JOD"),
    "LB": ("Middle East and North Africa", "LBP"),
    "IQ": ("Middle East and North Africa", "IQD"),
    "YE": ("Middle East and North Africa", "YER"),
    "TR": ("Middle East and North Africa", "TRY"),
    "CO": ("Andean region", "COP"),
    "PE": ("Andean region", "PEN"),
    "BO": ("Andean region", "BOB"),
    "VE": ("Andean region", "VES"),
    "MX": ("Central America and Mexico", "MXN"),
    "GT": ("Central America and Mexico", "GTQ"),
    "HN": ("Central America and Mexico", "HNL"),
    "NI": ("Central America and Mexico", "NIO"),
    "BR": ("South America", "BRL"),
    "IN": ("South Asia", "INR"),
    "PK": ("South Asia", "PKR"),
    "BD": ("South Asia", "BDT"),
    "NP": ("South Asia", "NPR"),
    "LK": ("South Asia", "LKR"),
    "AF": ("South Asia", "AFN"),
    "MM": ("South-East Asia", "MMK"),
    "TH": ("South-East Asia", "THB"),
    "PH": ("South-East Asia", "PHP"),
    "ID": ("South-East Asia", "IDR"),
    "KH": ("South-East Asia", "KHR"),
    "MY": ("South-East Asia", "MYR"),
    "KG": ("Eastern Europe and Central Asia", "KGS"),
    "KZ": ("Eastern Europe and Central Asia", "KZT"),
    "UZ": ("Eastern Europe and Central Asia", "UZS"),
    "TJ": ("Eastern Europe and Central Asia", "TJS"),
    "GE": ("Eastern Europe and Central Asia", "GEL"),
    "AM": ("Eastern Europe and Central Asia", "AMD"),
    "AZ": ("Eastern Europe and Central Asia", "AZN"),
    "UA": ("Eastern Europe and Central Asia", "UAH"),
    "BY": ("Eastern Europe and Central Asia", "BYN"),
    "RU": ("Eastern Europe and Central Asia", "RUB"),
}
REGIONS = tuple(sorted({region for region, _ in COUNTRIES.values()}))


def region_of(country):
    """The region a country belongs to, or None for an unknown code."""
    entry = COUNTRIES.get(country)
    return entry[0] if entry else None


def local_currency(country):
    """The currency payments in that country are usually made in."""
    entry = COUNTRIES.get(country)
    return entry[1] if entry else None


def country_name(country, locale="en"):
    """The country's name in the user's language, from Babel's data."""
    return Locale.parse(locale).territories.get(country, country)
