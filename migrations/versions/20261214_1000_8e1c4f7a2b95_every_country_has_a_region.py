"""every country has a region: a case from a country the table of regions left out (Syria,
Ecuador, Iran and some 180 more) had none, so no pool limited to a region could fund it and
reports counted it nowhere; its region is filled in from the country

Revision ID: 8e1c4f7a2b95
Revises: 5b7d2e9c4a13
Create Date: 2026-12-14 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = '8e1c4f7a2b95'
down_revision = '5b7d2e9c4a13'
branch_labels = None
depends_on = None

#: The regions as this revision gave them (hrdfund/core/geo.py), kept here as they were.
REGIONS_OF_COUNTRIES = {
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


def upgrade():
    applications = sa.table('applications', sa.column('country'), sa.column('region'))
    for region, codes in REGIONS_OF_COUNTRIES.items():
        op.execute(
            applications.update()
            .where(applications.c.region.is_(None), applications.c.country.in_(codes.split()))
            .values(region=region)
        )


def downgrade():
    # The regions filled in stay: they are what the country says, and harm nothing.
    pass
