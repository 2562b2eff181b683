"""the network key of each sent case, for the duplicate check across member funds: a keyed
hash of the defender's normalised name and country under the network's own key, indexed
with the category

Cases sent before this revision get theirs here: the name is decrypted with the
application's cipher and hashed as ``cases.services.network_key`` does at this revision
(drafts, purged cases and cases without a name or a country get none).

Revision ID: 7d3e91b0c2a4
Revises: 1ad23c5dba59
Create Date: 2026-12-07 09:00:00.000000

"""
import unicodedata

from alembic import op
import sqlalchemy as sa
from flask import current_app


# revision identifiers, used by Alembic.
revision = '7d3e91b0c2a4'
down_revision = '1ad23c5dba59'
branch_labels = None
depends_on = None

BATCH = 1000


def _network_key(cipher, name, country):
    """``cases.services.network_key`` as it stands at this revision."""
    if not name or not name.strip() or not country:
        return None
    letters = unicodedata.normalize('NFKD', name.casefold())
    letters = ''.join(c for c in letters if not unicodedata.combining(c))
    return cipher.network_index('defender|' + ' '.join(letters.split()) + '|' + country)


def upgrade():
    # A plain ADD COLUMN on both databases: rebuilding `applications` on SQLite would trip
    # over every row that refers to it.
    op.add_column('applications', sa.Column('network_key', sa.String(length=64), nullable=True))
    op.create_index('ix_applications_network', 'applications', ['network_key', 'category'], unique=False)
    cipher = current_app.extensions['hrdfund_cipher']
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(
            sa.text(
                'SELECT id, uid, country, defender_name FROM applications '
                "WHERE id > :last AND status != 'draft' AND purged_at IS NULL "
                'AND defender_name IS NOT NULL AND country IS NOT NULL '
                f'ORDER BY id LIMIT {BATCH}'
            ),
            {'last': last},
        ).all()
        if not rows:
            return
        keys = [
            {
                'id': row_id,
                'key': _network_key(
                    cipher, cipher.decrypt(blob, 'applications', 'defender_name', uid), country
                ),
            }
            for row_id, uid, country, blob in rows
        ]
        bind.execute(sa.text('UPDATE applications SET network_key = :key WHERE id = :id'), keys)
        last = rows[-1][0]


def downgrade():
    op.drop_index('ix_applications_network', table_name='applications')
    op.execute('ALTER TABLE applications DROP COLUMN network_key')
