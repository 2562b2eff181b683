"""Packets made by an attacker rather than by hrdfund: a header nested deep enough to
crash a parser, a document whose name carries folders or markup, a duplicate-check ask
probing many names at once, and an answer to a duplicate check from a fund that was not
asked. Each is refused with a reason, or made harmless, and never a crash."""

import pytest

from hrdfund.network import packets
from tests.exchange_world import (
    servers_fixture,  # noqa: F401  (the fixture ``servers``)
)
from tests.test_packets import _join, _parts, _refer, _refused


@pytest.mark.parametrize("nested", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1}"])
def test_a_header_nested_too_deep_is_refused_not_a_crash(servers, nested):
    a, b = servers["a"], servers["b"]
    _uid, data, _ = _refer(a, servers["case"])
    _header, body, signature = _parts(data)
    _refused(b, _join([nested, body, signature]), packets.FORMAT)
