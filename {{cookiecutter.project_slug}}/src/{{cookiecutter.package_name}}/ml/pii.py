"""Detectors for personal data that nobody declared: e-mail, phone, US SSN, payment card, IBAN, IPv4.

Ingest and validate scan every text and integer column not declared in data.pii. A column is flagged when at least
data.pii.scan_threshold of its sampled non-empty values carry one kind of PII; a finding names the
column, the kind and the share, never a value. Checksums (Luhn for cards, mod-97 for IBANs) and
strict shapes keep ordinary values (dates, amounts, codes, categories) from being flagged.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas costs a second to import: only the commands that read data pay it
    import pandas as pd


SAMPLE_ROWS = 10_000  # enough to measure a share; scanning millions of rows would dominate ingest
HEX_DIGEST = re.compile(r"[0-9a-f]{64}")  # what data.remove_pii writes for a hashed column

EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
IBAN = re.compile(r"(?<![A-Z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Z0-9])")
IPV4 = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.])")
PHONE = re.compile(
    r"(?<![\w+])(?<!\d[ .-])(?:"  # not part of a longer run of digit groups (an IBAN, a card)
    r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){2,4}"  # international: +44 20 7946 0958
    r"|\(\d{3}\) ?\d{3}[ .-]\d{4}"  # North American: (212) 555-0147
    r"|\d{3}[.-]\d{3}[.-]\d{4}"  # North American: 212-555-0147
    r"|0\d{2,4}[ /-]\d{3,4}[ -]?\d{3,4}"  # national trunk prefix: 030 1234 5678, 020 7946 0958
    r")(?![\w-])(?![ .-]\d)"
)
# Issuer prefixes: Visa, Mastercard, Amex, Discover, JCB, Diners. A checksum alone passes 1 random number in 10.
CARD_PREFIX = re.compile(r"4|5[1-5]|2[2-7]|3[47]|6011|65|64[4-9]|35|3[068]")


def _luhn(digits: str) -> bool:
    """The Luhn checksum every payment card number carries."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        number = int(char)
        if position % 2:
            number = number * 2 - 9 if number > 4 else number * 2
        total += number
    return total % 10 == 0


def _is_card(match: str) -> bool:
    """13-19 digits with a card issuer's prefix and a valid Luhn checksum."""
    digits = re.sub(r"\D", "", match)
    return 13 <= len(digits) <= 19 and bool(CARD_PREFIX.match(digits)) and _luhn(digits)


def _is_iban(match: str) -> bool:
    """An IBAN: country, check digits and account whose ISO 7064 mod-97 remainder is 1."""
    compact = match.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _is_phone(match: str) -> bool:
    """A phone pattern with a plausible number of digits (E.164 allows at most 15)."""
    return 9 <= sum(char.isdigit() for char in match) <= 15


@dataclass(frozen=True)
class Detector:
    """One kind of PII: a pattern, and a check that a match is the real thing."""

    kind: str
    pattern: re.Pattern[str]
    confirm: Callable[[str], bool] = lambda match: True


# The most specific kinds first: a value counts once, as the first kind it matches (an SSN is also phone-shaped).
DETECTORS = (
    Detector("email", EMAIL),
    Detector("iban", IBAN, _is_iban),
    Detector("payment_card", CARD, _is_card),
    Detector("us_ssn", SSN),
    Detector("ipv4", IPV4),
    Detector("phone", PHONE, _is_phone),
)
KINDS = tuple(detector.kind for detector in DETECTORS)


def detect(value: str) -> str | None:
    """The kind of PII found in one value, or None."""
    for detector in DETECTORS:
        if any(detector.confirm(match.group()) for match in detector.pattern.finditer(value)):
            return detector.kind
    return None


@dataclass(frozen=True)
class Finding:
    """A column that looks like PII: its name, the kind and the share of sampled values that match."""

    column: str
    kind: str
    share: float
    sampled: int


def scan_column(values: pd.Series, column: str, threshold: float) -> Finding | None:
    """Flag one column when at least `threshold` of its sampled non-empty values carry one kind of PII."""
    present = values.dropna().astype(str)
    present = present[present.str.strip() != ""]
    if present.empty:
        return None
    if len(present) > SAMPLE_ROWS:
        present = present.sample(n=SAMPLE_ROWS, random_state=0)
    kinds = present.map(detect).value_counts()
    if kinds.empty:
        return None
    kind, hits = str(kinds.index[0]), int(kinds.iloc[0])
    share = hits / len(present)
    return Finding(column, kind, round(share, 4), len(present)) if share >= threshold else None


def scan(frame: pd.DataFrame, threshold: float, skip: set[str] | frozenset[str] = frozenset()) -> list[Finding]:
    """Every text or integer column (not in `skip`) that looks like PII.

    Integer columns are scanned because a CSV reader turns an unformatted card number into one; a random
    16-digit id passes the issuer prefix and the Luhn check about 3% of the time, below any sane threshold.
    A float column of whole numbers is such an integer column with a blank in it. Other float columns and
    boolean columns cannot hold any of the kinds.
    """
    import pandas as pd

    findings = []
    for column in frame.columns:
        if column in skip:
            continue
        values = frame[column]
        if pd.api.types.is_float_dtype(values):
            values = _whole_numbers(values)
        if values is None or pd.api.types.is_bool_dtype(values):
            continue
        finding = scan_column(values, str(column), threshold)
        if finding:
            findings.append(finding)
    return findings


def _whole_numbers(values: pd.Series) -> pd.Series | None:
    """A float column's values as integers when every one is a whole number; None when any is not.

    float64 is exact below 2**53, which covers card, phone and SSN numbers.
    """
    present = values.dropna()
    if present.empty or not (present.abs() < 2**53).all() or not (present % 1 == 0).all():
        return None
    return present.astype("int64")


def unhashed_share(values: pd.Series) -> float:
    """The share of a declared hash column's values that are not 64-hex SHA-256 digests."""
    present = values.dropna().astype(str)
    if present.empty:
        return 0.0
    return float((~present.str.fullmatch(HEX_DIGEST)).mean())
