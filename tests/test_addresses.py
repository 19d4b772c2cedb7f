"""One address rule and one --from rule (preflight.addresses) for both providers, the audit and mailbox files."""

from __future__ import annotations

import pytest

from preflight.addresses import address, from_addresses, from_table, is_address
from preflight.errors import InputError
from preflight_providers.google import inputs as google_inputs
from preflight_providers.microsoft import inputs as microsoft_inputs

BOXES = ["a@contoso.com", "b@contoso.com"]


@pytest.mark.parametrize("value", ["jobs@contoso.com", "o'brien@contoso.com", "a.b+tag@mail.contoso.co.uk",
                                   "x_y=z@contoso-mail.com"])
def test_real_addresses_pass(value: str) -> None:
    assert is_address(value) and address(f"  {value.upper()} ") == value.lower()


@pytest.mark.parametrize("value", ["jobs@", "@contoso.com", "jobs(at)contoso.com", "jobs@contoso", "a b@contoso.com",
                                   "a@b@contoso.com", "jobs@-contoso.com", '"q"@contoso.com', "jobs@contoso..com",
                                   "a" * 310 + "@contoso.com", "jöbs@contoso.com", ""])
def test_everything_else_is_one_line_naming_the_option(value: str) -> None:
    assert not is_address(value)
    with pytest.raises(InputError, match=r"^--account: .* is not an email address$"):
        address(value, "--account")


def test_both_providers_use_the_one_rule() -> None:
    assert microsoft_inputs.address is address and google_inputs.address is address
    assert microsoft_inputs.from_addresses is from_addresses is google_inputs.from_addresses


def test_a_bare_from_applies_to_every_mailbox_and_pairs_win_in_any_order() -> None:
    assert from_addresses(["x@contoso.com"], BOXES) == dict.fromkeys(BOXES, "x@contoso.com")
    expected = {"a@contoso.com": "y@contoso.com", "b@contoso.com": "x@contoso.com"}
    assert from_addresses(["a@contoso.com=Y@contoso.com", "x@contoso.com"], BOXES) == expected
    assert from_addresses(["x@contoso.com", "a@contoso.com=y@contoso.com"], BOXES) == expected
    assert from_addresses([], BOXES) == {}


@pytest.mark.parametrize(("values", "message"), [
    (["x@contoso.com", "y@contoso.com"], "--from: give one address for every mailbox, or MAILBOX=ADDR pairs"),
    (["c@contoso.com=x@contoso.com"], "--from: c@contoso.com is not one of the --mailbox addresses"),
    (["a@contoso.com=not-an-address"], "--from: 'not-an-address' is not an email address"),
])
def test_bad_from_is_one_line(values: list[str], message: str) -> None:
    with pytest.raises(InputError, match=f"^{message}$"):
        from_addresses(values, BOXES)


def test_an_inventory_from_table_is_validated_both_sides() -> None:
    assert from_table({"A@contoso.com": "X@contoso.com"}) == {"a@contoso.com": "x@contoso.com"}
    with pytest.raises(InputError, match="^from: 'x' is not an email address$"):
        from_table({"a@contoso.com": "x"})
