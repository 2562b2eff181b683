"""an audit chain per fund, and one of the instance

Entries gain the chain they belong to (the fund's id, 0 for the instance's chain) and a
surrogate key; the sequence number runs without gaps within each chain, unique with it.

The entries already written stay in the instance's chain, with their sequence numbers and
hashes. They were hashed as one chain, and the instance's chain hashes exactly as that
one did, so they verify unchanged and a head recorded before the upgrade still matches;
a fund's chain names its fund in every hash, so moving them into the only fund's chain
would mean hashing them again, that is rewriting the record the head vouches for. New
entries of a fund start its own chain; the instance's chain goes on after the old ones.

The downgrade merges the chains back into one, in the order the entries were appended,
numbering and hashing again from the first entry that was not already in place (heads
recorded after the upgrade no longer match). It first verifies every chain under the
audit key, and stops if one is broken: merging would otherwise vouch for what was altered.

Revision ID: 0275af11d7d6
Revises: 7d3e91b0c2a4
Create Date: 2026-12-07 12:00:00.000000

"""
import hashlib
import hmac

from alembic import op
import sqlalchemy as sa
from flask import current_app


# revision identifiers, used by Alembic.
revision = '0275af11d7d6'
down_revision = '7d3e91b0c2a4'
branch_labels = None
depends_on = None

GENESIS = '0' * 64
FIELDS = ('at', 'actor', 'action', 'object_type', 'object_id', 'payload')
EVENTS = sa.table(
    'audit_events',
    sa.column('id', sa.Integer),
    sa.column('chain', sa.Integer),
    sa.column('seq', sa.Integer),
    sa.column('at', sa.DateTime),
    *(sa.column(name, sa.String) for name in FIELDS[1:]),
    sa.column('prev_hash', sa.String),
    sa.column('hash', sa.String),
)


def upgrade():
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('chain', sa.Integer(), server_default='0', nullable=False))
    # The entries so far, in their order: the surrogate key follows the sequence.
    op.execute('UPDATE audit_events SET id = seq')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_constraint('pk_audit_events', type_='primary')
        batch_op.alter_column('id', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('chain', existing_type=sa.Integer(), server_default=None)
        batch_op.create_primary_key('pk_audit_events', ['id'])
        batch_op.create_unique_constraint(batch_op.f('uq_audit_events_chain_seq'), ['chain', 'seq'])
    if op.get_bind().dialect.name == 'postgresql':
        # As a SERIAL column has it; SQLite numbers an INTEGER PRIMARY KEY itself.
        op.execute('CREATE SEQUENCE audit_events_id_seq OWNED BY audit_events.id')
        op.execute(
            "SELECT setval('audit_events_id_seq', "
            "COALESCE((SELECT max(id) FROM audit_events), 0) + 1, false)"
        )
        op.execute("ALTER TABLE audit_events ALTER COLUMN id SET DEFAULT nextval('audit_events_id_seq')")


def _hash(key, chain, prev_hash, seq, row):
    """An entry's hash as the audit module computes it at this revision."""
    named = [f'chain {chain}'] if chain else []
    values = [row['at'].isoformat(), row['actor'], row['action'], row['object_type'] or '', row['object_id'] or '', row['payload']]
    message = '\x1f'.join([*named, prev_hash, str(seq), *values])
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def _broken_chains(key, rows):
    """The chains that do not verify, each with its first bad entry."""
    broken, last = {}, {}
    for row in sorted(rows, key=lambda r: (r['chain'], r['seq'])):
        chain = row['chain']
        if chain in broken:
            continue
        seq, prev_hash = last.get(chain, (0, GENESIS))
        if (
            row['seq'] != seq + 1
            or row['prev_hash'] != prev_hash
            or not hmac.compare_digest(_hash(key, chain, prev_hash, row['seq'], row), row['hash'])
        ):
            broken[chain] = seq + 1
        last[chain] = (row['seq'], row['hash'])
    return broken


def _read_verified():
    """Every entry in the order they were appended, once every chain verifies."""
    key = current_app.extensions['hrdfund_audit_key']
    rows = op.get_bind().execute(sa.select(EVENTS).order_by(EVENTS.c.id)).mappings().all()
    broken = _broken_chains(key, rows)
    if broken:
        named = ', '.join(f'chain {chain} at entry {seq}' for chain, seq in sorted(broken.items()))
        raise RuntimeError(
            f'the audit chains do not verify under this audit key ({named}): merging them '
            'would hash what was altered as if it were sound; nothing was changed'
        )
    return key, rows


def _merge_chains(key, rows):
    """Number and hash every entry again as one chain, in the order they were appended;
    the entries already in place (the instance's, before any fund's) keep their hash."""
    changed, prev_hash = [], GENESIS
    for seq, row in enumerate(rows, start=1):
        digest = _hash(key, 0, prev_hash, seq, row)
        if (row['chain'], row['seq'], row['prev_hash'], row['hash']) != (0, seq, prev_hash, digest):
            changed.append({'row_id': row['id'], 'chain': 0, 'seq': seq, 'prev_hash': prev_hash, 'hash': digest})
        prev_hash = digest
    if changed:
        update = (
            sa.update(EVENTS)
            .where(EVENTS.c.id == sa.bindparam('row_id'))
            .values(chain=sa.bindparam('chain'), seq=sa.bindparam('seq'), prev_hash=sa.bindparam('prev_hash'), hash=sa.bindparam('hash'))
        )
        op.get_bind().execute(update, changed)


def downgrade():
    key, rows = _read_verified()
    # The merge renumbers entries of several chains: (chain, seq) may not stay unique
    # along the way, so that constraint goes first.
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_audit_events_chain_seq'), type_='unique')
    _merge_chains(key, rows)
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_constraint('pk_audit_events', type_='primary')
        batch_op.create_primary_key('pk_audit_events', ['seq'])
        batch_op.drop_column('chain')
        batch_op.drop_column('id')
