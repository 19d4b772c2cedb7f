"""A customer's section name becomes its output folder's name (and its parts file's in the audit's stage): the
whole name obeys the rule, a final line end included."""

from __future__ import annotations

from pathlib import Path

import pytest

from preflight.audit.inventory import load_inventory
from preflight.errors import InputError

BODY = '[customer.{}]\nprovider = "microsoft"\ntenant = "acme.onmicrosoft.com"\nmailboxes = ["a@acme.example"]\n'


@pytest.mark.parametrize("name", ['"acme\\n"', '"acme\\r\\n"', '"\\nacme"', '"ac\\nme"'])
def test_a_section_name_with_a_line_end_is_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / "inventory.toml"
    path.write_text(BODY.format(name))
    with pytest.raises(InputError, match="section names use letters"):
        load_inventory(path, ["microsoft"])


def test_a_plain_section_name_is_taken(tmp_path: Path) -> None:  # what the refusals above can fail against
    path = tmp_path / "inventory.toml"
    path.write_text(BODY.format("acme-1_x"))
    assert [c.key for c in load_inventory(path, ["microsoft"]).customers] == ["acme-1_x"]
