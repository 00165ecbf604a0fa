"""Realistic, seeded data for the Exact Online sandbox.

Every entity is a list of dicts keyed by Exact's own property names, as Exact's REST API returns them
(before the `/Date(ms)/` encoding, which the server applies on the way out). Generation is deterministic for a
given seed, so a test can rebuild the exact same division.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass, field

FIRST_NAMES = [
    "Daniël", "Zoë", "Sanne", "Joost", "Anouk", "Bram", "Eva", "Lars", "Noël", "Fleur", "Ruud", "Inge",
    "Mehmet", "Fatima", "Ayşe", "Björn", "Renée", "Gijs", "Maaike", "Thijs", "Chloë", "Jeroen", "Lieke", "Koen",
]
LAST_NAMES = [
    "de Vries", "Jansen", "van den Berg", "Bakker", "van Dijk", "Visser", "Smit", "Meijer", "de Boer",
    "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks", "van Leeuwen", "Dekker", "Brouwer", "'t Hart",
    "van 't Hof", "D'Hondt", "Çelik", "Yılmaz", "Müller", "Janssen-Ćorić", "Öztürk", "van der Meulen",
]
COMPANY_WORDS = [
    "Installatietechniek", "Loodgietersbedrijf", "Elektro", "Klimaattechniek", "Dakwerken", "Schilders",
    "Bouwbedrijf", "Zonnepanelen", "Verwarming & Sanitair", "Tegelzetterij", "Glaszetterij", "Onderhoud",
]
LEGAL_FORMS = ["B.V.", "V.O.F.", "", "& Zn.", "Holding B.V.", "C.V."]
CITIES = [
    ("Amsterdam", "10"), ("Rotterdam", "30"), ("Den Haag", "25"), ("Utrecht", "35"), ("Eindhoven", "56"),
    ("'s-Hertogenbosch", "52"), ("Groningen", "97"), ("Zwolle", "80"), ("Leeuwarden", "89"),
    ("Maastricht", "62"), ("Ede", "67"), ("Alphen aan den Rijn", "24"), ("Zoetermeer", "27"), ("Almere", "13"),
]
FOREIGN = [("Antwerpen", "BE", "2000"), ("Gent", "BE", "9000"), ("Düsseldorf", "DE", "40213"), ("Köln", "DE", "50667")]
STREETS = [
    "Kerkstraat", "Dorpsstraat", "Molenweg", "Schoolstraat", "Julianalaan", "Beatrixstraat", "Stationsweg",
    "Prins Hendrikkade", "Oude Gracht", "Korte Nieuwstraat", "Van 't Hoffstraat", "Hoofdweg",
]

# Exact account Status: C customer, P prospect, S suspect, A none (§6.1 of the reference).
STATUS_WEIGHTS = [("C", 55), ("P", 15), ("S", 10), ("A", 20)]

TODAY = dt.date(2026, 11, 24)


def _pad_account_code(code: int) -> str:
    """Exact stores account codes as 18 characters, right-aligned with leading spaces."""
    return f"{code:>18}"


@dataclass
class Division:
    """The records of one Exact division plus its rowversion counter."""

    division: int
    rng: random.Random
    accounts: dict[str, dict] = field(default_factory=dict)
    deleted: list[dict] = field(default_factory=list)
    rowversion: int = 100_000
    next_account_code: int = 1000

    def next_timestamp(self) -> int:
        # Exact's Timestamp is a rowversion: strictly increasing, unique, not a clock.
        self.rowversion += self.rng.randint(1, 7)
        return self.rowversion

    def new_guid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))


def _person(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)


def make_account(div: Division, *, now: dt.datetime) -> dict:
    rng = div.rng
    code = div.next_account_code
    div.next_account_code += rng.randint(1, 3)
    first, last = _person(rng)
    kind = rng.random()
    if kind < 0.55:
        name = f"{last.split(' ')[-1].capitalize()} {rng.choice(COMPANY_WORDS)} {rng.choice(LEGAL_FORMS)}".strip()
    elif kind < 0.85:
        name = f"{first} {last}"
    else:
        name = f"{rng.choice(COMPANY_WORDS)} {rng.choice(CITIES)[0]} {rng.choice(LEGAL_FORMS)}".strip()
    status = rng.choices([s for s, _ in STATUS_WEIGHTS], [w for _, w in STATUS_WEIGHTS])[0]
    is_supplier = rng.random() < 0.15
    blocked = rng.random() < 0.08
    start = TODAY - dt.timedelta(days=rng.randint(30, 4000))
    end_roll = rng.random()
    if end_roll < 0.10:
        end: dt.date | None = TODAY - dt.timedelta(days=rng.randint(1, 900))  # ended: inactive
    elif end_roll < 0.14:
        end = TODAY + dt.timedelta(days=rng.randint(10, 400))  # ends later: still active
    else:
        end = None
    if rng.random() < 0.9:
        city, prefix = rng.choice(CITIES)
        postcode = f"{prefix}{rng.randint(10, 99)} {rng.choice('ABCDEGHJKLMNPRSTVWXZ')}{rng.choice('ABCDEGHJKLMNPRSTVWXZ')}"
        country = "NL"
    else:
        city, country, postcode = rng.choice(FOREIGN)
    email_local = last.lower().replace(" ", "").replace("'", "")
    record = {
        "ID": div.new_guid(),
        "Code": _pad_account_code(code),
        "Name": name,
        "SearchCode": name[:10].upper(),
        "Status": status,
        "IsSupplier": is_supplier,
        "IsSales": status == "C",
        "Blocked": blocked,
        "StartDate": start,
        "EndDate": end,
        "Email": f"info@{email_local}.nl" if rng.random() < 0.8 else None,
        "Phone": f"0{rng.randint(10, 79)}-{rng.randint(1000000, 9999999)}" if rng.random() < 0.85 else None,
        "AddressLine1": f"{rng.choice(STREETS)} {rng.randint(1, 250)}{rng.choice(['', '', 'a', '-2', ' bis'])}",
        "Postcode": postcode,
        "City": city,
        # Exact pads Country to three characters ('NL ').
        "Country": f"{country:<3}",
        "VATNumber": f"{country}{rng.randint(100000000, 999999999)}B01" if rng.random() < 0.7 else None,
        "ChamberOfCommerce": f"{rng.randint(10000000, 99999999)}" if rng.random() < 0.7 else None,
        "Type": "A",
        "Division": div.division,
        "Created": now,
        "Modified": now,
        "Remarks": rng.choice([None, "Sleutel bij de buren; bel vóór 08:00", 'Klant zegt: "altijd achterom"', "Let op; hond\\kat"]),
    }
    record["Timestamp"] = div.next_timestamp()
    return record


def build_division(division: int, *, seed: int, size: int, now: dt.datetime) -> Division:
    div = Division(division=division, rng=random.Random(seed))
    for _ in range(size):
        acc = make_account(div, now=now)
        div.accounts[acc["ID"]] = acc
    return div


def mutate_account(div: Division, account: dict, changes: dict | None, *, now: dt.datetime) -> dict:
    """Apply `changes` (or a random realistic edit) and give the record a new rowversion."""
    if changes is None:
        rng = div.rng
        changes = rng.choice([
            {"Phone": f"06-{rng.randint(10000000, 99999999)}"},
            {"Email": f"nieuw{rng.randint(1, 999)}@example.nl"},
            {"Blocked": not account["Blocked"]},
            {"Name": account["Name"] + " (gewijzigd)"},
            {"City": rng.choice(CITIES)[0]},
        ])
    for key, value in changes.items():
        if key in ("ID", "Timestamp"):
            raise ValueError(f"{key} cannot be changed")
        account[key] = value
    account["Modified"] = now
    account["Timestamp"] = div.next_timestamp()
    return account


def delete_account(div: Division, account_id: str, *, now: dt.datetime, entity_type: int = 2) -> dict:
    div.accounts.pop(account_id)
    entry = {
        "ID": div.new_guid(),
        "EntityKey": account_id,
        "EntityType": entity_type,
        "DeletedBy": div.new_guid(),
        "DeletedDate": now,
        "Division": div.division,
        "Timestamp": div.next_timestamp(),
    }
    div.deleted.append(entry)
    return entry
