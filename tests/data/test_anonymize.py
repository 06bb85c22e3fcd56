from pathlib import Path

import pytest
from pydantic import ValidationError

from tooltune.data.anonymize import Anonymizer, AnonymizerConfig, ExtraPattern, luhn_ok
from tooltune.tools.catalog import ToolCatalog
from tooltune.tools.validate import argument_problems

FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.fixture
def scrub():
    return Anonymizer().scrub


def test_emails_are_replaced_by_valid_placeholders(scrub):
    assert scrub("Mail John.Smith@Example.com or aisha.khan@example.co.uk.") == (
        "Mail user1@example.com or user2@example.com.")


@pytest.mark.parametrize("phone", [
    "+1 (415) 555-0132", "415-555-0132", "+44 20 7946 0958", "+4915112345678", "020 7946 0958", "(415) 555 0132",
])
def test_phones(scrub, phone):
    assert scrub(f"call me on {phone} today") == "call me on +1-555-0101 today"


@pytest.mark.parametrize("card", ["4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111", "378282246310005"])
def test_cards(scrub, card):
    assert scrub(f"card {card}, thanks") == "card <CARD_1>, thanks"


@pytest.mark.parametrize("text", [
    "invoice INV-2001", "inv_1043 for cus_0013 and pay_0001, ord_1021", "amount 5000", "$12.50 or 12896 cents",
    "1 250 000 units", "on 2024-06-01 10:20", "at 2024-06-01T10:20:30Z", "card 4111111111111112 fails Luhn",
    "version 1.2.3 at 192.168.1.1",
])
def test_ids_amounts_dates_are_left_alone(scrub, text):
    assert scrub(text) == text


def test_luhn():
    assert luhn_ok("4111111111111111") and luhn_ok("378282246310005") and not luhn_ok("4111111111111112")


def test_replacements_are_stable_within_one_record_and_restart_per_record():
    anonymizer = Anonymizer()
    record = {
        "messages": [{"role": "user", "content": "I'm bob@corp.io, call +44 20 7946 0958"},
                     {"role": "user", "content": "again: BOB@corp.io and eve@corp.io"}],
        "calls": [{"name": "get_customer_by_email", "arguments": {"email": "bob@corp.io"}}],
        "satisfaction": 5,
    }
    out = anonymizer.scrub(record)
    assert out["messages"][0]["content"] == "I'm user1@example.com, call +1-555-0101"
    assert out["messages"][1]["content"] == "again: user1@example.com and user2@example.com"
    assert out["calls"][0]["arguments"] == {"email": "user1@example.com"}
    assert out["satisfaction"] == 5 and record["calls"][0]["arguments"]["email"] == "bob@corp.io"  # input untouched
    assert anonymizer.scrub("eve@corp.io") == "user1@example.com"


def test_anonymized_email_argument_still_validates():
    tool = ToolCatalog.load(FIXTURES / "catalogs" / "shop.json").get("get_customer_by_email")
    args = Anonymizer().scrub({"email": "maria.garcia@example.com"})
    assert args != {"email": "maria.garcia@example.com"}
    assert argument_problems(tool, args) == []


def test_extra_patterns_and_switches():
    config = AnonymizerConfig(phones=False, extra_patterns=[
        ExtraPattern(name="account", regex=r"ACCT-\d{6}"),
        ExtraPattern(name="badge", regex=r"B\d{4}", replacement="badge-{n}"),
    ])
    out = Anonymizer(config).scrub("ACCT-123456, ACCT-123456, ACCT-999999, B1234, +44 20 7946 0958")
    assert out == "<ACCOUNT_1>, <ACCOUNT_1>, <ACCOUNT_2>, badge-1, +44 20 7946 0958"


def test_config_errors_name_the_field():
    with pytest.raises(ValidationError, match="does not compile"):
        ExtraPattern(name="x", regex="(")
    with pytest.raises(ValidationError, match="use {n} for the number"):
        AnonymizerConfig(email_replacement="user{i}@example.com")
