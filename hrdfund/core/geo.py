"""Countries where defenders apply from, with their region and local currency.

Country names come from Babel's locale data; only the grouping is ours. Reports show
regions, never exact places.

Which places count as countries, wherever one is offered or filtered: the codes ISO 3166-1
assigns, and Kosovo (XK, the code the UN and the EU use for it), less the territories where
nobody lives for good. Babel also names codes that ISO only reserves for parts of other
countries, groupings, and placeholders for testing translations: those are no country.
"""

import functools
import re
import unicodedata

from babel import Locale
from flask_babel import lazy_gettext as _l

#: Babel's two-letter territories that ISO 3166-1 does not assign to a country: reserved
#: for a part of another country (Ascension, Clipperton, Sark, Diego Garcia, Ceuta and
#: Melilla, the Canary Islands, Tristan da Cunha), groupings (EU, Eurozone, United
#: Nations, Outlying Oceania) and placeholders (Pseudo-Accents, Pseudo-Bidi, Unknown).
NOT_COUNTRIES = frozenset(
    {"AC", "CP", "CQ", "DG", "EA", "IC", "TA", "EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"}
)
#: Territories with no permanent population: Antarctica, Bouvet Island, South Georgia,
#: Heard and McDonald Islands, the French Southern Territories, the US Outlying Islands
#: and the British Indian Ocean Territory (a military base).
UNINHABITED = frozenset({"AQ", "BV", "GS", "HM", "TF", "UM", "IO"})

#: ISO 3166 alpha-2 -> (region, local currency): the countries the demo draws its cases
#: from, and the currency payments there are usually made in.
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
#: Every other country a defender may apply from or be relocated to, by region (codes
#: apart by spaces). Payments there are in the first legal tender the fund pays in
#: (``cases.services.currency_for_country``), else US dollars.
_OTHER_COUNTRIES = {
    "East Africa": "DJ ER KM RW SC SO SS",
    "Central Africa": "CF CG GA GQ ST TD",
    "West Africa": "BF BJ CI CV GM GN GW LR MR NE SL TG",
    "Southern Africa": "AO BW LS MG MU MW NA RE SH SZ YT ZM",
    "Middle East and North Africa": "AE BH DZ EH IL IR KW LY OM PS QA SA SY",
    "Andean region": "EC",
    "Central America and Mexico": "BZ CR PA SV",
    "South America": "AR CL FK GF GY PY SR UY",
    "Caribbean": (
        "AG AI AW BB BL BQ BS CU CW DM DO GD GP HT JM KN KY LC MF MQ MS PR SX TC TT VC VG VI"
    ),
    "North America": "BM CA GL PM US",
    "East Asia": "CN HK JP KP KR MN MO TW",
    "South-East Asia": "BN CC CX LA SG TL VN",
    "South Asia": "BT MV",
    "Eastern Europe and Central Asia": "MD TM",
    "Europe": (
        "AD AL AT AX BA BE BG CH CY CZ DE DK EE ES FI FO FR GB GG GI GR HR HU IE IM IS "
        "IT JE LI LT LU LV MC ME MK MT NL NO PL PT RO RS SE SI SJ SK SM VA XK"
    ),
    "Pacific": "AS AU CK FJ FM GU KI MH MP NC NF NR NU NZ PF PG PN PW SB TK TO TV VU WF WS",
}
REGION_OF = {code: region for region, codes in _OTHER_COUNTRIES.items() for code in codes.split()}
REGIONS = tuple(sorted({region for region, _ in COUNTRIES.values()} | set(REGION_OF.values())))
#: The regions in the reader's language (the stored value stays in English).
REGION_LABELS = {
    "Andean region": _l("Andean region"),
    "Caribbean": _l("Caribbean"),
    "Central Africa": _l("Central Africa"),
    "Central America and Mexico": _l("Central America and Mexico"),
    "East Africa": _l("East Africa"),
    "East Asia": _l("East Asia"),
    "Eastern Europe and Central Asia": _l("Eastern Europe and Central Asia"),
    "Europe": _l("Europe"),
    "Middle East and North Africa": _l("Middle East and North Africa"),
    "North America": _l("North America"),
    "Pacific": _l("Pacific"),
    "South America": _l("South America"),
    "South Asia": _l("South Asia"),
    "South-East Asia": _l("South-East Asia"),
    "Southern Africa": _l("Southern Africa"),
    "West Africa": _l("West Africa"),
}


def region_of(country):
    """The region a country belongs to, or None for an unknown code."""
    entry = COUNTRIES.get(country)
    return entry[0] if entry else REGION_OF.get(country)


def local_currency(country):
    """The currency payments in that country are usually made in."""
    entry = COUNTRIES.get(country)
    return entry[1] if entry else None


@functools.cache
def countries(locale="en"):
    """Every country as (code, name in ``locale``), sorted by name; built once a language."""
    names = Locale.parse(locale).territories
    codes = [
        code
        for code in names
        if len(code) == 2
        and code.isalpha()
        and code.isupper()
        and code not in NOT_COUNTRIES
        and code not in UNINHABITED
    ]
    order = _sort_key(locale)
    return tuple(sorted(((code, names[code]) for code in codes), key=lambda item: order(item[1])))


#: Alphabets whose letters a reader looks for apart from the letters they resemble: in
#: Turkish, Ç comes after all of C and I (ı) before İ (i); in Persian, پ after ب and
#: the letters Arabic does not have in their places (Unicode's order puts them last).
ALPHABETS = {
    "tr": "abcçdefgğhıijklmnoöprsştuüvyz",
    "fa": "آابپتثجچحخدذرزژسشصضطظعغفقکگلمنوهی",
}
#: Persian spelt with the Arabic forms of its letters.
_PERSIAN_FORMS = str.maketrans({"ك": "ک", "ي": "ی", "ى": "ی", "ة": "ه"})


def _sort_key(locale):
    """How country names sort in ``locale``: by their letters in its alphabet where it has
    one of its own above, else with accents set aside (:func:`_key`)."""
    language = str(locale).split("_")[0]
    alphabet = ALPHABETS.get(language)
    if alphabet is None:
        return _key
    place = {letter: n for n, letter in enumerate(alphabet)}

    def key(name):
        if language == "tr":  # Turkish capitals: I is ı's, İ is i's
            name = name.replace("I", "ı").replace("İ", "i")
        name = name.lower().translate(_PERSIAN_FORMS)
        weights = []
        for char in name:
            if char.isspace():
                weights.append(-1)  # a word ends before a longer one: Amerika B... first
                continue
            if unicodedata.category(char) in ("Cf", "Mn"):
                continue  # a joiner, a vowel mark: not a letter of its own
            if char not in place:
                # An accent the alphabet does not count goes: Réunion sorts as Reunion.
                base = unicodedata.normalize("NFKD", char)[:1]
                char = base if base in place else char
            weights.append(place.get(char, len(alphabet) + ord(char)))
        return weights

    return key


def _key(name):
    """Sorting by name with accents set aside: Åland near Albania, Réunion near Romania."""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


@functools.cache
def _codes(locale):
    """A country's name (in ``locale`` and in English) or code, folded -> its code. A name
    that says another in brackets, Myanmar (Birmania), is found by either: Myanmar,
    Birmania; one of these two that names two countries names neither."""
    found, parts = {}, {}
    for language in ("en", locale):
        for code, name in countries(language):
            found[_key(" ".join(name.split()))] = code
            found[code.casefold()] = code
            bracketed = re.fullmatch(r"(.+?)\s*\((.+)\)", name)
            if bracketed:
                for part in bracketed.groups():
                    parts.setdefault(_key(" ".join(part.split())), set()).add(code)
    for part, codes in parts.items():
        if len(codes) == 1:
            found.setdefault(part, codes.pop())
    return found


def country_code(text, locale="en"):
    """The code of the country ``text`` names, by its two-letter code or its name in
    ``locale`` or in English (case, accents and extra spaces ignored); None when no
    country is called that."""
    return _codes(locale).get(_key(" ".join(str(text).split())))


def country_name(country, locale="en"):
    """The country's name in the user's language, from Babel's data; the code itself for
    one Babel does not know."""
    if not country:
        return ""
    return _territories(locale).get(country, country)


@functools.cache
def _territories(locale):
    """Babel's names of the territories in ``locale``: parsing the locale anew for each
    name took longer than the lookup, and a page of cases names fifty countries."""
    return Locale.parse(locale).territories


def region_label(region):
    """A region's name in the reader's language; a region we do not know, as stored."""
    if not region:
        return ""
    return REGION_LABELS.get(region, region)
