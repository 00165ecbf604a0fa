"""Realistic, seeded data for the Exact Online sandbox.

Every entity is a list of dicts keyed by Exact's own property names, as Exact's REST API returns them
(before the `/Date(ms)/` encoding, which the server applies on the way out). Generation is deterministic for a
given seed, so a test can rebuild the exact same division.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import uuid
from dataclasses import dataclass, field

from include.exact_sandbox.registry_sources import deleted_entity_types, entity_of, registry_streams, synced_entities
from include.outsmart_import.exact_codes import SALES_ORDER_STATUS
from include.outsmart_import.registry import Column, Source, TableSpec

FIRST_NAMES = [
    "Daniël",
    "Zoë",
    "Sanne",
    "Joost",
    "Anouk",
    "Bram",
    "Eva",
    "Lars",
    "Noël",
    "Fleur",
    "Ruud",
    "Inge",
    "Mehmet",
    "Fatima",
    "Ayşe",
    "Björn",
    "Renée",
    "Gijs",
    "Maaike",
    "Thijs",
    "Chloë",
    "Jeroen",
    "Lieke",
    "Koen",
]
LAST_NAMES = [
    "de Vries",
    "Jansen",
    "van den Berg",
    "Bakker",
    "van Dijk",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "de Groot",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "van Leeuwen",
    "Dekker",
    "Brouwer",
    "'t Hart",
    "van 't Hof",
    "D'Hondt",
    "Çelik",
    "Yılmaz",
    "Müller",
    "Janssen-Ćorić",
    "Öztürk",
    "van der Meulen",
]
COMPANY_WORDS = [
    "Installatietechniek",
    "Loodgietersbedrijf",
    "Elektro",
    "Klimaattechniek",
    "Dakwerken",
    "Schilders",
    "Bouwbedrijf",
    "Zonnepanelen",
    "Verwarming & Sanitair",
    "Tegelzetterij",
    "Glaszetterij",
    "Onderhoud",
]
LEGAL_FORMS = ["B.V.", "V.O.F.", "", "& Zn.", "Holding B.V.", "C.V."]
CITIES = [
    ("Amsterdam", "10"),
    ("Rotterdam", "30"),
    ("Den Haag", "25"),
    ("Utrecht", "35"),
    ("Eindhoven", "56"),
    ("'s-Hertogenbosch", "52"),
    ("Groningen", "97"),
    ("Zwolle", "80"),
    ("Leeuwarden", "89"),
    ("Maastricht", "62"),
    ("Ede", "67"),
    ("Alphen aan den Rijn", "24"),
    ("Zoetermeer", "27"),
    ("Almere", "13"),
]
FOREIGN = [("Antwerpen", "BE", "2000"), ("Gent", "BE", "9000"), ("Düsseldorf", "DE", "40213"), ("Köln", "DE", "50667")]
STREETS = [
    "Kerkstraat",
    "Dorpsstraat",
    "Molenweg",
    "Schoolstraat",
    "Julianalaan",
    "Beatrixstraat",
    "Stationsweg",
    "Prins Hendrikkade",
    "Oude Gracht",
    "Korte Nieuwstraat",
    "Van 't Hoffstraat",
    "Hoofdweg",
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
    addresses: dict[str, dict] = field(default_factory=dict)
    contacts: dict[str, dict] = field(default_factory=dict)
    item_groups: dict[str, dict] = field(default_factory=dict)
    items: dict[str, dict] = field(default_factory=dict)
    sales_item_prices: dict[str, dict] = field(default_factory=dict)
    employees: dict[str, dict] = field(default_factory=dict)
    payment_terms: dict[str, dict] = field(default_factory=dict)
    warehouses: dict[str, dict] = field(default_factory=dict)
    sales_order_headers: dict[str, dict] = field(default_factory=dict)
    sales_order_lines: dict[str, dict] = field(default_factory=dict)
    shop_orders: dict[str, dict] = field(default_factory=dict)
    goods_deliveries: dict[str, dict] = field(default_factory=dict)  # keyed by EntryID (no ID on this endpoint)
    goods_delivery_lines: dict[str, dict] = field(default_factory=dict)
    quotation_headers: dict[str, dict] = field(default_factory=dict)
    quotation_lines: dict[str, dict] = field(default_factory=dict)
    project_planning: dict[str, dict] = field(default_factory=dict)
    assembly_orders: dict[str, dict] = field(default_factory=dict)
    deleted: list[dict] = field(default_factory=list)
    rowversion: int = 100_000
    next_account_code: int = 1000
    currency: str = "EUR"  # the division's default currency (system/Divisions `Currency`)
    # When Exact last moved the division to another database (system/Divisions' DivisionMoveDate); see move_division.
    move_date: dt.datetime | None = None
    # The records of endpoints that a registry entry reads and this module has no builder for (a category added to
    # the registry), by entity: generated from the entry's declaration (build_declared).
    declared: dict[str, dict[str, dict]] = field(default_factory=dict)

    def records(self, entity: str) -> dict | list:
        """An entity's records (`deleted`: the deletion log, a list). Raises KeyError for an unknown entity."""
        declared = getattr(self, "declared", {})  # a division saved by an older sandbox has none
        if entity in declared:
            return declared[entity]
        if entity == "declared" or not hasattr(self, entity):
            raise KeyError(f"unknown entity {entity!r}")
        return getattr(self, entity)

    def next_timestamp(self) -> int:
        # Exact's Timestamp is a rowversion: strictly increasing, unique, not a clock.
        self.rowversion += self.rng.randint(1, 7)
        return self.rowversion

    def new_guid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    @property
    def divisions(self) -> dict[int, dict]:
        """system/Divisions of a sandbox with this division alone: this one and a practice division beside it (the
        server lists every division the user may open, see server.SandboxState.divisions_listing)."""
        own = division_row(
            self.division,
            DIVISION_NAME,
            currency=getattr(self, "currency", "EUR"),
            move_date=getattr(self, "move_date", None),
        )
        return {d["Code"]: d for d in (own, practice_division_row(own, self.division + 1))}


def division_row(
    code: int,
    description: str,
    *,
    currency: str,
    move_date: dt.datetime | None,
    current: bool = True,
    main: bool = True,
) -> dict:
    """One division as system/Divisions lists it (Code, Description, Currency, Status, DivisionMoveDate, ...)."""
    return {
        "Code": code,
        "Description": description,
        "Currency": currency,
        "Country": "NL",
        "Legislation": "NL",
        "Status": 1,
        "Current": current,
        "IsMainDivision": main,
        "IsPracticeDivision": False,
        "StartDate": dt.date(2019, 1, 1),
        "DivisionMoveDate": move_date,
    }


def practice_division_row(like: dict, code: int) -> dict:
    """The licence's practice division ("Oefenadministratie"): listed in system/Divisions, never served."""
    return {
        **like,
        "Code": code,
        "Description": "Oefenadministratie",
        "Current": False,
        "IsMainDivision": False,
        "IsPracticeDivision": True,
        "DivisionMoveDate": None,
    }


def company_name(seed: int) -> str:
    """The name of a generated client division (an accountant's client), the same for the same seed: a family's
    trade, as most of Exact's small installers are named (`_account_name`)."""
    rng = random.Random(seed * 6151 + 3)
    last = rng.choice(LAST_NAMES)
    return f"{last.split(' ')[-1].capitalize()} {rng.choice(COMPANY_WORDS)} {rng.choice(['B.V.', 'V.O.F.'])}"


def _person(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)


def make_account(div: Division, *, now: dt.datetime) -> dict:
    rng = div.rng
    code = div.next_account_code
    div.next_account_code += rng.randint(1, 3)
    first, last = _person(rng)
    name = _account_name(rng, first, last)
    status = rng.choices([s for s, _ in STATUS_WEIGHTS], [w for _, w in STATUS_WEIGHTS])[0]
    is_supplier = rng.random() < 0.15
    blocked = rng.random() < 0.08
    start = TODAY - dt.timedelta(days=rng.randint(30, 4000))
    end = _account_end_date(rng)
    city, country, postcode = _account_place(rng)
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
        "Remarks": rng.choice(
            [None, "Sleutel bij de buren; bel vóór 08:00", 'Klant zegt: "altijd achterom"', "Let op; hond\\kat"]
        ),
    }
    record["Timestamp"] = div.next_timestamp()
    return record


def _account_name(rng: random.Random, first: str, last: str) -> str:
    """A company named after a family (55 %), a private person (30 %) or a trade and a city (15 %)."""
    kind = rng.random()
    if kind < 0.55:
        return f"{last.split(' ')[-1].capitalize()} {rng.choice(COMPANY_WORDS)} {rng.choice(LEGAL_FORMS)}".strip()
    if kind < 0.85:
        return f"{first} {last}"
    return f"{rng.choice(COMPANY_WORDS)} {rng.choice(CITIES)[0]} {rng.choice(LEGAL_FORMS)}".strip()


def _account_end_date(rng: random.Random) -> dt.date | None:
    end_roll = rng.random()
    if end_roll < 0.10:
        return TODAY - dt.timedelta(days=rng.randint(1, 900))  # ended: inactive
    if end_roll < 0.14:
        return TODAY + dt.timedelta(days=rng.randint(10, 400))  # ends later: still active
    return None


def _account_place(rng: random.Random) -> tuple[str, str, str]:
    """(city, country, postcode): mostly Dutch, with a Dutch postcode of the city's region; some abroad."""
    if rng.random() < 0.9:
        city, prefix = rng.choice(CITIES)
        letters = "ABCDEGHJKLMNPRSTVWXZ"
        return city, "NL", f"{prefix}{rng.randint(10, 99)} {rng.choice(letters)}{rng.choice(letters)}"
    city, country, postcode = rng.choice(FOREIGN)
    return city, country, postcode


def build_division(
    division: int,
    *,
    seed: int,
    size: int,
    now: dt.datetime,
    accounts_only: bool = False,
    split_delivery_lines: float = 0.0,
    name: str | None = None,
) -> Division:
    """A division of `size` accounts and the records that go with them; `name`: the administration's own name (its
    account of Type 'D'), by default the sandbox's one division's."""
    div = Division(division=division, rng=random.Random(seed))
    for _ in range(size):
        acc = make_account(div, now=now)
        div.accounts[acc["ID"]] = acc
    if accounts_only:
        return div
    # The other entities scale with the number of accounts (a 500-account division: 250 items, 10 employees).
    build_logistics(div, n_items=max(size // 2, 30), now=now)
    build_employees(div, n=max(size // 50, 10), now=now)
    build_payment_terms(div, n=max(size, 20), now=now)
    build_pro(div, size=size, now=now)
    # Last: the records above are those of earlier versions of this generator.
    add_division_account(div, now=now, name=name or DIVISION_NAME)
    add_special_prices(div, now=now)
    build_addresses_and_contacts(div, seed=seed, now=now)
    if split_delivery_lines:
        split_some_delivery_lines(div, split_delivery_lines, now=now)
    build_declared(div, registry_streams(), seed=seed, now=now)
    return div


# ---- endpoints a registry entry reads that have no builder above ----------------------------------------------
BUILT_ENTITIES = frozenset(f.name for f in dataclasses.fields(Division)) | {"divisions"}
DECLARED_RECORDS = 25  # per endpoint: enough for paging tests with $top, small enough to read at a glance


def build_declared(
    div: Division, streams: list[tuple[Source, TableSpec | None]], *, seed: int, now: dt.datetime
) -> list[str]:
    """Records for every endpoint the registry reads that this module has no builder for (a category just added to
    the registry): plausible values for each field it selects, read as its column declares. A random source of its
    own, so every other record of the seed stays as it was. Returns the entities built."""
    rng = random.Random(seed * 104729 + 11)
    built = []
    for source, table in streams:
        entity = entity_of(source.endpoint)
        if entity in BUILT_ENTITIES or entity in div.declared:
            continue
        columns = {name: c for c in (table.columns if table else ()) for name in c.sources}
        div.declared[entity] = {}
        for n in range(DECLARED_RECORDS):
            record = {name: _declared_value(rng, name, columns.get(name), n) for name in source.select}
            record.update({source.id_field: str(uuid.UUID(int=rng.getrandbits(128), version=4))})
            record.update({"Division": div.division, "Created": now, "Modified": now})
            if source.mode == "sync":
                div.rowversion += 1  # not next_timestamp(): that would draw from the division's own generator
                record["Timestamp"] = div.rowversion
            div.declared[entity][record[source.id_field]] = record
        built.append(entity)
    return built


def _declared_value(rng: random.Random, name: str, column: Column | None, n: int):
    """A value for field `name` as its column reads it (a field only the rules read: text)."""
    read = column.read if column else "text"
    if read == "int":
        return 1000 + n
    if read == "num":
        return round(rng.uniform(1, 500), 2)
    if read in ("date", "datetime"):
        day = TODAY - dt.timedelta(days=rng.randint(0, 400))
        return day if read == "date" else dt.datetime.combine(day, dt.time(rng.choice([8, 13])))
    if read == "bool":
        return rng.random() < 0.5
    if read == "guid":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if read == "map" and column is not None:
        return rng.choice([code for code, _ in column.mapping])
    text = f"{name} {n + 1}"
    return text[: column.max_length] if column and column.max_length else text


DIVISION_NAME = "Installatiebedrijf De Sandbox B.V."


def add_division_account(div: Division, *, now: dt.datetime, name: str = DIVISION_NAME) -> dict:
    """The administration itself, as Exact lists it among the accounts: `Type` 'D' (division) and `Status` 'A'
    (none), where every ordinary account has `Type` 'A' (reference §12: Exact's 2014 SDK test data, 51 real account
    rows; §6.1: `Type` A relation, D division). It must never become an OutSmart relation."""
    record = make_account(div, now=now)
    record.update(
        {
            "Name": name,
            "SearchCode": "SANDBOX",
            "Status": "A",
            "Type": "D",
            "IsSupplier": False,
            "IsSales": False,
            "Blocked": False,
            "EndDate": None,
            "Email": "info@sandbox-installatie.nl",
            "Remarks": None,
        }
    )
    div.accounts[record["ID"]] = record
    return record


# Exact's address types (sync/CRM/Addresses `Type`; picqer SyncAddress.php): visit, postal, invoice, delivery.
ADDRESS_TYPES = (1, 2, 3, 4)
JOB_TITLES = ["Eigenaar", "Directeur", "Facilitair manager", "Huismeester", "Inkoper", "Administratie", None]


def build_addresses_and_contacts(div: Division, *, seed: int, now: dt.datetime) -> None:
    """Every account's visit address (its main address, as on the account), for some a postal, invoice or
    delivery address too; 0-3 contact persons each, one of them the main contact. Some accounts get a second and
    third address line and a website. A random source of its own: the rest of the seeded data stays as it was."""
    rng = random.Random(seed * 7919 + 5)
    for acc in list(div.accounts.values()):
        _more_account_fields(rng, acc)
        kinds = [1] + [t for t in ADDRESS_TYPES[1:] if rng.random() < 0.25]
        for kind in kinds:
            rec = _address(div, rng, acc, kind, now=now)
            div.addresses[rec["ID"]] = rec
        for n in range(rng.choice([0, 1, 1, 2, 3])):
            rec = _contact(div, rng, acc, is_main=n == 0, now=now)
            div.contacts[rec["ID"]] = rec


def _own_guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _own_stamp(div: Division) -> int:
    """The next Timestamp without a draw from the division's generator (next_timestamp would take one)."""
    div.rowversion += 1
    return div.rowversion


def _more_account_fields(rng: random.Random, acc: dict) -> None:
    """A second and third address line for some accounts, a website for others."""
    if rng.random() < 0.2:
        acc["AddressLine2"] = rng.choice(["Unit 4", "2e verdieping", "Bedrijventerrein Noord", "t.a.v. administratie"])
        acc["AddressLine3"] = "Postbus " + str(rng.randint(1, 9999)) if rng.random() < 0.3 else None
    if rng.random() < 0.4:
        acc["Website"] = "www." + acc["Name"].split(" ")[0].lower().strip("'.,") + ".nl"


def _address(div: Division, rng: random.Random, acc: dict, kind: int, *, now: dt.datetime) -> dict:
    """An address of the account: the visit address is the account's own, another type half of the time too."""
    same = kind == 1 or rng.random() < 0.5
    return {
        "ID": _own_guid(rng),
        "Account": acc["ID"],
        "AccountName": acc["Name"],
        "Type": kind,
        "Main": True,
        "AddressLine1": acc["AddressLine1"] if same else f"{rng.choice(STREETS)} {rng.randint(1, 250)}",
        "AddressLine2": acc.get("AddressLine2") if same else None,
        "AddressLine3": None,
        "Postcode": acc["Postcode"],
        "City": acc["City"],
        "State": None,
        "Country": acc["Country"],
        "Phone": acc["Phone"] if kind == 1 else None,
        "Division": div.division,
        "Created": now,
        "Modified": now,
        "Timestamp": _own_stamp(div),
    }


def _contact(div: Division, rng: random.Random, acc: dict, *, is_main: bool, now: dt.datetime) -> dict:
    first, last = _person(rng)
    email_local = f"{first.lower()}.{last.lower().replace(' ', '').replace(chr(39), '')}"
    end = TODAY - dt.timedelta(days=rng.randint(1, 500)) if rng.random() < 0.1 else None
    return {
        "ID": _own_guid(rng),
        "Account": acc["ID"],
        "AccountName": acc["Name"],
        "FirstName": first,
        "LastName": last,
        "FullName": f"{first} {last}",
        "JobTitleDescription": rng.choice(JOB_TITLES),
        "Email": f"{email_local}@example.nl" if rng.random() < 0.8 else None,
        "BusinessEmail": None,
        "Phone": f"0{rng.randint(10, 79)}-{rng.randint(1000000, 9999999)}" if rng.random() < 0.5 else None,
        "BusinessPhone": None,
        # Many contacts have only a mobile number (reference §12: BusinessMobile / Mobile).
        "BusinessMobile": f"06-{rng.randint(10000000, 99999999)}" if rng.random() < 0.7 else None,
        "Mobile": None,
        "IsMainContact": is_main,
        "StartDate": None,
        "EndDate": end,
        "Division": div.division,
        "Created": now,
        "Modified": now,
        "Timestamp": _own_stamp(div),
    }


def mutate_account(div: Division, account: dict, changes: dict | None, *, now: dt.datetime) -> dict:
    """Apply `changes` (or a random realistic edit) and give the record a new rowversion."""
    if changes is None:
        rng = div.rng
        changes = rng.choice(
            [
                {"Phone": f"06-{rng.randint(10000000, 99999999)}"},
                {"Email": f"nieuw{rng.randint(1, 999)}@example.nl"},
                {"Blocked": not account["Blocked"]},
                {"Name": account["Name"] + " (gewijzigd)"},
                {"City": rng.choice(CITIES)[0]},
            ]
        )
    return update_record(div, "accounts", account, changes, now=now)


# ---- logistics: item groups, items, sales item prices --------------------------------------------------------
ITEM_GROUPS = [
    # code, description, holds time items
    ("MAT", "Materialen algemeen", False),
    ("ELEK", "Elektra", False),
    ("SAN", "Sanitair", False),
    ("VERW", "Verwarming & koeling", False),
    ("KLEIN", "Kleinmateriaal", False),
    ("UREN", "Arbeidsuren", True),
    ("REIS", "Reis- en voorrijkosten", True),
    ("OVERIG", "Overig", False),
]
MATERIALS = [
    ("Koperen bocht 15mm", "stuk"),
    ("PVC buis 32mm", "m"),
    ('Kogelkraan ½"', "stuk"),
    ("Thermostaatkraan", "stuk"),
    ("Installatiedraad 2,5mm²", "m"),
    ("Wandcontactdoos", "stuk"),
    ("Afvoerputje 'Easy'", "stuk"),
    ("Flexibele slang 30cm", "stuk"),
    ("Radiatorventiel", "stuk"),
    ("Teflontape", "rol"),
    ("Kitkoker sanitair", "stuk"),
    ("Zekeringautomaat B16", "stuk"),
    ("Aardlekschakelaar 40A", "stuk"),
    ("CV-ketel onderdeel; pomp", "stuk"),
    ("Isolatieschaal 22mm", "m"),
    ("Schroevenset RVS", "doos"),
    ("Muurplug 8mm", "doos"),
    ("Sifon chroom", "stuk"),
]
TIME_ITEMS = [
    ("UUR-MONTEUR", "Monteur per uur", "UREN"),
    ("UUR-LEERLING", "Leerling-monteur per uur", "UREN"),
    ("UUR-SPOED", "Spoedtoeslag per uur", "UREN"),
    ("UUR-WEEKEND", "Weekendtarief per uur", "UREN"),
    ("UUR-ENGINEER", "Engineer per uur", "UREN"),
    ("REIS-VOORRIJ", "Voorrijkosten", "REIS"),
    ("REIS-KM", "Kilometervergoeding", "REIS"),
    ("UUR-OVERIG", "Overige arbeid", "OVERIG"),
]


def build_logistics(div: Division, *, n_items: int, now: dt.datetime) -> None:
    rng = div.rng
    for code, description, _ in ITEM_GROUPS:
        gid = div.new_guid()
        div.item_groups[gid] = {
            "ID": gid,
            "Code": code,
            "Description": description,
            "IsDefault": code == "MAT",
            "Notes": None,
            "Division": div.division,
            "Created": now,
            "Modified": now,
        }
    groups = {g["Code"]: g for g in div.item_groups.values()}
    for code, description, group in TIME_ITEMS:
        _add_item(div, groups[group], code, description, "uur", is_time=1, now=now)
    material_groups = [g for g in groups.values() if g["Code"] not in ("UREN", "REIS")]
    for i in range(max(n_items - len(TIME_ITEMS), 0)):
        name, unit = rng.choice(MATERIALS)
        _add_item(
            div,
            rng.choice(material_groups),
            f"MAT-{10000 + i}",
            f"{name} {rng.choice(['', 'type A', 'type B', 'XL'])}".strip(),
            unit,
            is_time=0,
            now=now,
        )


def _add_item(
    div: Division, group: dict, code: str, description: str, unit: str, *, is_time: int, now: dt.datetime
) -> dict:
    rng = div.rng
    end = TODAY - dt.timedelta(days=rng.randint(1, 500)) if rng.random() < 0.08 else None
    item = {
        "ID": div.new_guid(),
        "Code": code,
        "Description": description,
        "ItemGroup": group["ID"],
        "ItemGroupCode": group["Code"],
        "ItemGroupDescription": group["Description"],
        "IsTime": is_time,
        "IsSalesItem": True,
        "IsStockItem": not is_time,
        "IsPurchaseItem": not is_time,
        "Unit": unit,
        "UnitDescription": {"uur": "Uur", "m": "Meter", "stuk": "Stuk", "doos": "Doos", "rol": "Rol"}.get(unit, unit),
        "CostPriceStandard": round(rng.uniform(0.2, 80 if not is_time else 45), 2),
        "Barcode": f"87{rng.randint(10**10, 10**11 - 1)}" if not is_time and rng.random() < 0.7 else None,
        "StartDate": TODAY - dt.timedelta(days=rng.randint(30, 3000)),
        "EndDate": end,
        "Division": div.division,
        "Created": now,
        "Modified": now,
        "Timestamp": div.next_timestamp(),
    }
    div.items[item["ID"]] = item
    # The standard sales price: a sales item price without an account.
    _add_price(div, item, None, round(item["CostPriceStandard"] * rng.uniform(1.3, 2.2), 2), now=now)
    if rng.random() < 0.2:  # an older, ended price that must not win
        _add_price(
            div,
            item,
            None,
            round(item["CostPriceStandard"] * 1.1, 2),
            now=now,
            start=TODAY - dt.timedelta(days=900),
            end=TODAY - dt.timedelta(days=400),
        )
    return item


def _add_price(
    div: Division,
    item: dict,
    account: dict | None,
    price: float,
    *,
    now: dt.datetime,
    start: dt.date | None = None,
    end: dt.date | None = None,
    quantity: float = 0.0,
) -> dict:
    row = {
        "ID": div.new_guid(),
        "Item": item["ID"],
        "ItemCode": item["Code"],
        "ItemDescription": item["Description"],
        "Account": account["ID"] if account else None,
        "AccountName": account["Name"] if account else None,
        "Project": None,
        "ProjectDescription": None,
        "Employee": None,
        "Price": price,
        "Currency": "EUR",
        "Quantity": quantity,
        "Unit": item["Unit"],
        "UnitDescription": item["UnitDescription"],
        "NumberOfItemsPerUnit": 1.0,
        "DefaultItemUnit": item["Unit"],
        "StartDate": start,
        "EndDate": end,
        "Division": div.division,
        "Created": now,
        "Modified": now,
        "Timestamp": div.next_timestamp(),
    }
    div.sales_item_prices[row["ID"]] = row
    return row


def add_special_prices(div: Division, *, now: dt.datetime) -> list[dict]:
    """Sales item prices without an account that are still not the item's standard sales price (#14 item 6; picqer
    `SyncSalesItemPrice.php`: `Project`, `Employee`, `Currency`, `Unit` on the price, reference §12):
    a project's hourly rate and an employee's hourly rate on the monteur's time item, a material's price in USD and
    one for a box of ten instead of the item's unit. Each starts a month ago, so that a rule that only looks at the
    account, the dates and the quantity (the newest start wins) would take it instead of the standard price."""
    items = {i["Code"]: i for i in div.items.values()}
    materials = sorted(code for code, i in items.items() if i["IsTime"] == 0)
    if "UUR-MONTEUR" not in items or len(materials) < 2 or not div.employees:
        return []
    start = TODAY - dt.timedelta(days=30)
    hour, employee = items["UUR-MONTEUR"], next(iter(div.employees.values()))
    rows = [
        _add_price(div, hour, None, 97.5, now=now, start=start),
        _add_price(div, hour, None, 82.0, now=now, start=start),
        _add_price(div, items[materials[0]], None, 999.99, now=now, start=start),
        _add_price(div, items[materials[1]], None, 888.88, now=now, start=start),
    ]
    rows[0].update({"Project": div.new_guid(), "ProjectDescription": "Onderhoudscontract gemeente"})
    rows[1]["Employee"] = employee["ID"]
    rows[2]["Currency"] = "USD"
    other_unit = "doos" if items[materials[1]]["Unit"] != "doos" else "stuk"
    rows[3].update({"Unit": other_unit, "UnitDescription": other_unit.capitalize(), "NumberOfItemsPerUnit": 10.0})
    return rows


# ---- payroll: employees --------------------------------------------------------------------------------------
def build_employees(div: Division, *, n: int, now: dt.datetime) -> None:
    rng = div.rng
    for i in range(n):
        first, last = _person(rng)
        prefix, _, surname = last.rpartition(" ") if last.startswith(("van", "de ", "'t")) else ("", "", last)
        active = rng.random() > 0.15
        start = TODAY - dt.timedelta(days=rng.randint(60, 5000))
        emp = {
            "ID": div.new_guid(),
            "Code": str(100 + i),
            "EmployeeHID": 100 + i,
            "HID": 100 + i,
            "FirstName": first,
            "MiddleName": prefix or None,
            "LastName": surname,
            "FullName": f"{first} {last}",
            "Initials": first[0] + ".",
            "BusinessEmail": f"{first.lower()}.{surname.lower().replace(chr(39), '')}@installatiebedrijf.nl",
            "Email": None,
            "BusinessPhone": f"010-{rng.randint(1000000, 9999999)}",
            "BusinessMobile": f"06-{10000000 + (4711 + 7919 * i) % 90000000}",
            "Mobile": f"06-{rng.randint(10000000, 99999999)}",  # private (HR rights only): never imported
            "Phone": None,
            "IsActive": active,
            "StartDate": start,
            "EndDate": None if active else TODAY - dt.timedelta(days=rng.randint(1, 400)),
            "Division": div.division,
            "Created": now,
            "Modified": now,
            "Timestamp": div.next_timestamp(),
        }
        # Business numbers (#14 item 7): a third only a business mobile, a third only a business phone, a third
        # both (decided by i, not the random generator, so that the rest of the division stays as it was).
        if i % 3 == 0:
            emp["BusinessPhone"] = None
        elif i % 3 == 2:
            emp["BusinessMobile"] = None
        div.employees[emp["ID"]] = emp


# ---- cashflow: payment terms (receivables LineType 20, payables LineType 22) ---------------------------------
def build_payment_terms(div: Division, *, n: int, now: dt.datetime) -> None:
    rng = div.rng
    accounts = list(div.accounts.values())
    for i in range(n):
        acc = rng.choice(accounts)
        receivable = rng.random() < 0.8
        amount = round(rng.uniform(25, 12500), 2)
        invoice_date = TODAY - dt.timedelta(days=rng.randint(0, 400))
        state = rng.random()
        fully_paid = state < 0.45
        partly = 0.45 <= state < 0.6
        term = {
            "ID": div.new_guid(),
            "LineType": 20 if receivable else 22,
            "InvoiceNumber": 26000000 + i,
            "InvoiceDate": invoice_date,
            "DueDate": invoice_date + dt.timedelta(days=30),
            "Account": acc["ID"],
            "AccountCode": acc["Code"],
            "AccountName": acc["Name"],
            "AmountDC": amount if receivable else -amount,
            "AmountFC": amount if receivable else -amount,
            "Currency": "EUR",
            "IsFullyPaid": fully_paid,
            "Status": 50 if fully_paid else (30 if partly else 20),
            "LastPaymentDate": invoice_date + dt.timedelta(days=rng.randint(1, 60)) if (fully_paid or partly) else None,
            "EndDate": invoice_date + dt.timedelta(days=rng.randint(1, 60)) if fully_paid else None,
            "Description": f"Factuur {26000000 + i}",
            "PaymentMethod": rng.choice(["B", "I"]),
            "Division": div.division,
            "Created": now,
            "Modified": now,
            "Timestamp": div.next_timestamp(),
        }
        div.payment_terms[term["ID"]] = term


def delete_record(div: Division, entity: str, record_id: str, *, now: dt.datetime) -> dict | None:
    """Remove a record; entities that have a sync endpoint get a sync/Deleted entry.

    Goods delivery lines: a plain ID removes the line with every storage location row; '<ID>/<StorageLocation>'
    removes that one row, and only when it was the line's last row is the line deleted in sync/Deleted (its other
    rows are current rows again, with new Timestamps)."""
    if entity == "goods_delivery_lines":
        record_id = _remove_delivery_line_rows(div, record_id, now=now)
        if record_id is None:
            return None
    else:
        records = div.records(entity)
        if not isinstance(records, dict):
            raise KeyError(f"{entity!r} has no records to delete")
        records.pop(record_id)
    # The registry's Sources say which entity types sync/Deleted reports (and that a category reads them).
    entity_type = deleted_entity_types().get(entity)
    if entity_type is None:
        return None
    entry = {
        "ID": div.new_guid(),
        "EntityKey": record_id,
        "EntityType": entity_type,
        "DeletedBy": div.new_guid(),
        "DeletedDate": now,
        "Division": div.division,
        "Timestamp": div.next_timestamp(),
    }
    div.deleted.append(entry)
    return entry


def _remove_delivery_line_rows(div: Division, key: str, *, now: dt.datetime) -> str | None:
    """Remove a goods delivery line (its ID) or one storage location row of it ('<ID>/<StorageLocation>').
    Returns the line ID when the whole line is gone (a deletion for sync/Deleted), else None."""
    line_id = key.split("/", 1)[0]
    keys = delivery_line_keys(div, line_id) if key == line_id else [key]
    if not keys or any(k not in div.goods_delivery_lines for k in keys):
        raise KeyError(key)
    for k in keys:
        del div.goods_delivery_lines[k]
    if delivery_line_keys(div, line_id):
        restamp_delivery_line(div, line_id, now=now)
        return None
    return line_id


def update_record(div: Division, entity: str, record: dict, changes: dict, *, now: dt.datetime) -> dict:
    for key, value in changes.items():
        if key in ("ID", "Timestamp"):
            raise ValueError(f"{key} cannot be changed")
        record[key] = value
    record["Modified"] = now
    if "Timestamp" in record:
        record["Timestamp"] = div.next_timestamp()
    return record


# ---- Pro entities: warehouses, price agreements, orders, deliveries, quotations, planning, assembly ----------
SALES_ORDER_STATUSES = list(SALES_ORDER_STATUS)  # Exact's codes: open, partial, complete, cancelled
QUOTATION_STATUSES = [5, 6, 20, 25, 35, 40, 50]


def build_pro(div: Division, *, size: int, now: dt.datetime) -> None:
    """The Pro entities, in the order (and so with the random draws) they have always been generated in."""
    build_warehouses(div, now=now)
    customers = [a for a in div.accounts.values() if a["Status"] == "C"] or list(div.accounts.values())
    materials = [i for i in div.items.values() if i["IsTime"] == 0]
    hours = [i for i in div.items.values() if i["IsTime"] == 1]
    warehouses = list(div.warehouses.values())
    build_price_agreements(div, size=size, customers=customers, materials=materials, now=now)
    rng = div.rng
    for n in range(max(size // 5, 10)):
        _sales_order(
            div,
            40000 + n,
            rng.choice(customers),
            rng.sample(materials, k=rng.randint(1, 4)),
            rng.choice(warehouses),
            now=now,
        )
    for n in range(max(size // 20, 5)):
        _shop_order(div, 7000 + n, rng.choice(materials), warehouses[0], now=now)
    for n in range(max(size // 5, 10)):
        _quotation(div, 50000 + n, rng.choice(customers), materials + hours, now=now)
    employees = list(div.employees.values())
    for _ in range(max(size // 10, 10)):
        _project_planning(div, rng.choice(employees), rng.choice(customers), rng.choice(hours), now=now)
    for n in range(max(size // 25, 5)):
        _assembly_order(div, 9000 + n, rng.choice(materials), warehouses[0])


WAREHOUSES = [
    ("1", "Hoofdmagazijn Utrecht", True),
    ("2", "Bus 12 (Sanne)", False),
    ("3", "Bus 7 (Joost)", False),
    ("ZWOLLE", "Filiaal Zwolle", False),
]


def build_warehouses(div: Division, *, now: dt.datetime) -> None:
    for code, description, main in WAREHOUSES:
        wid = div.new_guid()
        div.warehouses[wid] = {
            "ID": wid,
            "Code": code,
            "Description": description,
            "Main": main,
            "EMail": None,
            "UseStorageLocations": False,
            "Division": div.division,
            "Created": now,
            "Modified": now,
        }


def build_price_agreements(
    div: Division, *, size: int, customers: list[dict], materials: list[dict], now: dt.datetime
) -> None:
    """Price agreements: sales item prices with an account."""
    rng = div.rng
    for _ in range(max(size // 10, 5)):
        item, acc = rng.choice(materials), rng.choice(customers)
        start = TODAY - dt.timedelta(days=rng.randint(0, 600))
        end = start + dt.timedelta(days=rng.randint(30, 900)) if rng.random() < 0.5 else None
        _add_price(
            div,
            item,
            acc,
            round(item["CostPriceStandard"] * rng.uniform(1.1, 1.6), 2),
            now=now,
            start=start,
            end=end,
            quantity=float(rng.choice([0, 0, 10, 50])),
        )


def _shop_order(div: Division, number: int, item: dict, warehouse: dict, *, now: dt.datetime) -> None:
    rng = div.rng
    status = rng.choice([10, 20, 30, 40])
    planned = float(rng.randint(1, 50))
    start = TODAY + dt.timedelta(days=rng.randint(-60, 60))
    so = {
        "ID": div.new_guid(),
        "ShopOrderNumber": number,
        "Item": item["ID"],
        "ItemCode": item["Code"],
        "ItemDescription": item["Description"],
        "Description": f"Prefab {item['Description']}",
        "PlannedQuantity": planned,
        "ProducedQuantity": planned if status >= 30 else float(rng.randint(0, int(planned))),
        "PlannedStartDate": start,
        "PlannedDate": start + dt.timedelta(days=rng.randint(1, 14)),
        "Status": status,
        "IsReleased": status >= 20,
        "IsOnHold": rng.random() < 0.1,
        "Type": 9040,
        "Warehouse": warehouse["ID"],
        "Division": div.division,
        "Created": now,
        "Modified": now,
        "Timestamp": div.next_timestamp(),
    }
    div.shop_orders[so["ID"]] = so


def _quotation(div: Division, number: int, acc: dict, items: list[dict], *, now: dt.datetime) -> None:
    """A quotation header and its 1-5 lines; the header's amount and Timestamp come after its lines'."""
    rng = div.rng
    qid = div.new_guid()
    status = rng.choice(QUOTATION_STATUSES)
    qdate = TODAY - dt.timedelta(days=rng.randint(0, 300))
    header = {
        "ID": div.new_guid(),
        "QuotationID": qid,
        "QuotationNumber": number,
        "VersionNumber": 1,
        "OrderAccount": acc["ID"],
        "OrderAccountCode": acc["Code"],
        "OrderAccountName": acc["Name"],
        "QuotationDate": qdate,
        "DueDate": qdate + dt.timedelta(days=30),
        "Status": status,
        "Description": f"Offerte {acc['Name']}",
        "Currency": "EUR",
        "Division": div.division,
        "Created": now,
        "Modified": now,
    }
    total = 0.0
    for ln, item in enumerate(rng.sample(items, k=rng.randint(1, 5)), 1):
        line = _quotation_line(div, header, ln, item, now=now)
        total += line["Quantity"] * line["UnitPrice"]  # unrounded, as the amount always summed
    header["AmountDC"] = round(total, 2)
    header["Timestamp"] = div.next_timestamp()
    div.quotation_headers[header["ID"]] = header


def _quotation_line(div: Division, header: dict, ln: int, item: dict, *, now: dt.datetime) -> dict:
    rng = div.rng
    qty, price = float(rng.randint(1, 10)), round(item["CostPriceStandard"] * 1.5, 2)
    line = {
        "ID": div.new_guid(),
        "QuotationID": header["QuotationID"],
        "QuotationNumber": header["QuotationNumber"],
        "LineNumber": ln,
        "Item": item["ID"],
        "ItemDescription": item["Description"],
        "Quantity": qty,
        "UnitPrice": price,
        "NetPrice": price,
        "AmountDC": round(qty * price, 2),
        "UnitCode": item["Unit"],
        "Division": div.division,
        "Created": now,
        "Modified": now,
        "Timestamp": div.next_timestamp(),
    }
    div.quotation_lines[line["ID"]] = line
    return line


def _project_planning(div: Division, emp: dict, acc: dict, hour: dict, *, now: dt.datetime) -> None:
    rng = div.rng
    start = dt.datetime.combine(TODAY + dt.timedelta(days=rng.randint(-20, 40)), dt.time(rng.choice([7, 8, 13])))
    hrs = float(rng.choice([2, 4, 8]))
    pp = {
        "ID": div.new_guid(),
        "Employee": emp["ID"],
        "EmployeeCode": emp["Code"],
        "EmployeeHID": emp["EmployeeHID"],
        "Project": div.new_guid(),
        "ProjectCode": f"P{rng.randint(100, 999)}",
        "ProjectDescription": "Onderhoud CV",
        "Account": acc["ID"],
        "AccountCode": acc["Code"],
        "AccountName": acc["Name"],
        "HourType": hour["ID"],
        "HourTypeCode": hour["Code"],
        "HourTypeDescription": hour["Description"],
        "StartDate": start,
        "EndDate": start + dt.timedelta(hours=hrs),
        "Hours": hrs,
        "Status": rng.choice([1, 2]),
        "Type": 4,
        "Description": "Onderhoudsbeurt",
        "Division": div.division,
        "Created": now,
        "Modified": now,
        "Timestamp": div.next_timestamp(),
    }
    div.project_planning[pp["ID"]] = pp


def _assembly_order(div: Division, number: int, item: dict, warehouse: dict) -> None:
    """Exact has no sync endpoint and no Modified field for assembly orders: no Timestamp, no Created/Modified."""
    rng = div.rng
    status = rng.choice([20, 30, 50])
    planned = float(rng.randint(1, 20))
    odate = TODAY - dt.timedelta(days=rng.randint(0, 120))
    ao = {
        "ID": div.new_guid(),
        "OrderNumber": number,
        "OrderDate": odate,
        "AssemblyDate": odate + dt.timedelta(days=7),
        "FinishedAssemblyDate": odate + dt.timedelta(days=8) if status == 50 else None,
        "OrderStatus": status,
        "Type": 8060,
        "Item": item["ID"],
        "ItemCode": item["Code"],
        "ItemDescription": item["Description"],
        "PlannedQuantity": planned,
        "FinishedQuantity": planned if status == 50 else (planned / 2 if status == 30 else 0.0),
        "Unit": item["Unit"],
        "UnitCode": item["Unit"],
        "Warehouse": warehouse["ID"],
        "WarehouseCode": warehouse["Code"],
        "Description": f"Samenstellen {item['Description']}",
        "Division": div.division,
    }
    div.assembly_orders[ao["ID"]] = ao


def _sales_order(
    div: Division, number: int, acc: dict, items: list[dict], warehouse: dict, *, now: dt.datetime
) -> None:
    """A sales order header and its lines; with a goods delivery when something was delivered."""
    rng = div.rng
    order_id = div.new_guid()
    status = rng.choice(SALES_ORDER_STATUSES)
    odate = TODAY - dt.timedelta(days=rng.randint(0, 200))
    lines = [
        _sales_order_line(div, order_id, number, ln, item, status, odate, now=now) for ln, item in enumerate(items, 1)
    ]
    total = 0.0
    for line in lines:
        total += line["AmountDC"]
    header = {
        "ID": div.new_guid(),
        "OrderID": order_id,
        "OrderNumber": number,
        "OrderDate": odate,
        "DeliveryDate": odate + dt.timedelta(days=14),
        "OrderedBy": acc["ID"],
        "OrderedByName": acc["Name"],
        "DeliverTo": acc["ID"],
        "InvoiceTo": acc["ID"],
        "Status": status,
        "DeliveryStatus": status,
        "InvoiceStatus": 21 if status == 21 else 12,
        "AmountDC": round(total, 2),
        "AmountFC": round(total, 2),
        "Currency": "EUR",
        "WarehouseID": warehouse["ID"],
        "WarehouseCode": warehouse["Code"],
        "Description": f"Order {acc['Name']}",
        "YourRef": f"PO-{rng.randint(1000, 9999)}",
        "Division": div.division,
        "Created": now,
        "Modified": now,
        "Timestamp": div.next_timestamp(),
    }
    div.sales_order_headers[header["ID"]] = header
    if status in (20, 21):  # a goods delivery for what was delivered
        _goods_delivery(div, number, acc, warehouse, odate, lines, now=now)


def _sales_order_line(
    div: Division, order_id: str, number: int, ln: int, item: dict, status: int, odate: dt.date, *, now: dt.datetime
) -> dict:
    rng = div.rng
    qty = float(rng.randint(1, 20))
    price = round(item["CostPriceStandard"] * 1.6, 2)
    delivered = qty if status == 21 else (float(rng.randint(0, int(qty))) if status == 20 else 0.0)
    line = {
        "ID": div.new_guid(),
        "OrderID": order_id,
        "OrderNumber": number,
        "LineNumber": ln,
        "Item": item["ID"],
        "ItemCode": item["Code"],
        "ItemDescription": item["Description"],
        "Description": item["Description"],
        "Quantity": qty,
        "QuantityDelivered": delivered,
        "QuantityInvoiced": delivered if status == 21 else 0.0,
        "UnitCode": item["Unit"],
        "UnitPrice": price,
        "NetPrice": price,
        "AmountDC": round(qty * price, 2),
        "DeliveryDate": odate + dt.timedelta(days=14),
        "Status": status,
        "Division": div.division,
        "Created": now,
        "Modified": now,
        "Timestamp": div.next_timestamp(),
    }
    div.sales_order_lines[line["ID"]] = line
    return line


def _goods_delivery(
    div: Division, number: int, acc: dict, warehouse: dict, odate: dt.date, lines: list[dict], *, now: dt.datetime
) -> None:
    """The delivery of an order's delivered lines (keyed by EntryID: this endpoint has no ID)."""
    rng = div.rng
    entry = div.new_guid()
    delivery = {
        "EntryID": entry,
        "DeliveryNumber": 60000 + number % 40000,
        "EntryNumber": 60000 + number % 40000,
        "DeliveryDate": odate + dt.timedelta(days=10),
        "DeliveryAccount": acc["ID"],
        "DeliveryAccountCode": acc["Code"],
        "DeliveryAccountName": acc["Name"],
        "TrackingNumber": f"3S{rng.randint(10**9, 10**10 - 1)}" if rng.random() < 0.7 else None,
        "Warehouse": warehouse["ID"],
        "WarehouseCode": warehouse["Code"],
        "Description": f"Levering order {number}",
        "Division": div.division,
        "Created": now,
        "Modified": now,
        "Timestamp": div.next_timestamp(),
    }
    div.goods_deliveries[entry] = delivery
    for line in lines:
        if line["QuantityDelivered"] > 0:
            _goods_delivery_line(div, delivery, line, number, now=now)


def _goods_delivery_line(div: Division, delivery: dict, line: dict, number: int, *, now: dt.datetime) -> None:
    gl = {
        "ID": div.new_guid(),
        "EntryID": delivery["EntryID"],
        "LineNumber": line["LineNumber"],
        "Item": line["Item"],
        "ItemCode": line["ItemCode"],
        "ItemDescription": line["ItemDescription"],
        "QuantityDelivered": line["QuantityDelivered"],
        "QuantityOrdered": line["Quantity"],
        "SalesOrderLineID": line["ID"],
        "SalesOrderLineNumber": line["LineNumber"],
        "SalesOrderNumber": number,
        "Unitcode": line["UnitCode"],
        "DeliveryDate": delivery["DeliveryDate"],
        "Division": div.division,
        "Created": now,
        "Modified": now,
        "Timestamp": div.next_timestamp(),
    }
    div.goods_delivery_lines[gl["ID"]] = gl


# ---- goods delivery lines split over storage locations -------------------------------------------------------
# Exact: "A goods delivery line can be split into multiple storage locations. In this case, multiple storage
# locations will have the same stock transaction ID" (Pi-Systems/exact-online, Sync/SalesOrder/GoodsDeliveryLines.php;
# exact-online-api.md §12). Each row has its own StorageLocation and QuantityDelivered. Here such a row is kept under
# the key '<ID>/<StorageLocation>' (a line that is not split keeps its ID as key, without a storage location), and a
# change to one of a line's rows gives every current row of that line a new Timestamp, so that a sync read returns
# the line's current rows together; a row removed from a line leaves no sync/Deleted entry (the line still exists).
STORAGE_LOCATIONS = [
    ("A-01", "Stelling A, vak 1"),
    ("A-02", "Stelling A, vak 2"),
    ("B-01", "Stelling B, vak 1"),
    ("BUS-12", "Bus 12"),
    ("KOEL", "Koelcel"),
]
_LOCATION_NAMESPACE = uuid.UUID("6f1c0a52-3c1e-4c55-9a40-2d9a2c6c1b7e")


def storage_location(div: Division, code: str) -> dict:
    """A storage location's fields as a goods delivery line carries them (its GUID follows from the code)."""
    description = dict(STORAGE_LOCATIONS).get(code, code)
    return {
        "StorageLocation": str(uuid.uuid5(_LOCATION_NAMESPACE, f"{div.division}/{code}")),
        "StorageLocationCode": code,
        "StorageLocationDescription": description,
    }


def delivery_line_keys(div: Division, line_id: str) -> list[str]:
    """The keys of a goods delivery line's rows: its ID, or '<ID>/<StorageLocation>' per location when split."""
    lines = div.goods_delivery_lines
    return [k for k in lines if k == line_id or k.startswith(line_id + "/")]


def split_delivery_line(div: Division, line_id: str, quantities: dict[str, float], *, now: dt.datetime) -> list[str]:
    """Deliver the line from the storage locations given ({location code: quantity}): one row per location, each
    with its own QuantityDelivered and a new Timestamp (the line's earlier rows are replaced)."""
    keys = delivery_line_keys(div, line_id)
    if not keys:
        raise KeyError(line_id)
    template = dict(div.goods_delivery_lines[keys[0]])
    for k in keys:
        del div.goods_delivery_lines[k]
    added = []
    for code, quantity in quantities.items():
        row = {**template, **storage_location(div, code), "QuantityDelivered": float(quantity), "Modified": now}
        row["Timestamp"] = div.next_timestamp()
        key = f"{line_id}/{row['StorageLocation']}"
        div.goods_delivery_lines[key] = row
        added.append(key)
    return added


def split_some_delivery_lines(div: Division, share: float, *, now: dt.datetime) -> list[str]:
    """Split `share` of the goods delivery lines over two or three storage locations, the delivered quantity
    divided between them (the total stays what it was). Returns the split lines' IDs."""
    rng = div.rng
    split = []
    for line_id in sorted(div.goods_delivery_lines):
        if "/" in line_id or rng.random() >= share:
            continue
        total = float(div.goods_delivery_lines[line_id]["QuantityDelivered"])
        codes = rng.sample([c for c, _ in STORAGE_LOCATIONS], k=rng.choice([2, 2, 3]))
        parts = [round(total * w, 2) for w in _weights(rng, len(codes))]
        parts[-1] = round(total - sum(parts[:-1]), 2)  # the parts add up to the total exactly
        split_delivery_line(div, line_id, dict(zip(codes, parts, strict=True)), now=now)
        split.append(line_id)
    return split


def _weights(rng: random.Random, n: int) -> list[float]:
    raw = [rng.uniform(0.2, 1.0) for _ in range(n)]
    return [w / sum(raw) for w in raw]


def restamp_delivery_line(div: Division, line_id: str, *, now: dt.datetime) -> None:
    """A change to one row of a split line: Exact returns the line's current rows, each with a new Timestamp."""
    for key in delivery_line_keys(div, line_id):
        row = div.goods_delivery_lines[key]
        row["Modified"] = now
        row["Timestamp"] = div.next_timestamp()


def _values(records: dict | list) -> list[dict]:
    return list(records.values()) if isinstance(records, dict) else list(records)


# ---- Exact moves the division to another database ------------------------------------------------------------
# system/Divisions, DivisionMoveDate: "Date when the division was moved. Please resync all data when this value changes
# because value of Timestamp is regenerated." (Exact's REST reference, in exact_meta_data_2022-03-23.json and picqer's
# SystemDivision.php; reference §1.3, §5.1 and §12: "its timestamps are reset and everything must be synced again").
def move_division(div: Division, *, now: dt.datetime, start: int = 1) -> int:
    """Move the division to another database as Exact does: every Timestamp (records and the deletion log) is
    regenerated from a small number on, in the same order, and DivisionMoveDate is set. Returns the new highest
    Timestamp."""
    # Every entity the registry reads through a sync endpoint (relations' addresses and contacts too).
    rows = [r for entity in synced_entities() for r in _values(div.records(entity)) if "Timestamp" in r]
    rows += div.deleted
    div.rowversion = start
    for row in sorted(rows, key=lambda r: r["Timestamp"]):
        row["Timestamp"] = div.next_timestamp()
    div.move_date = now
    return div.rowversion


# ---- the deletion log keeps about two months -----------------------------------------------------------------
# "the log of records deleted is saved for 2 months" (Exact's doc of Sync/Deleted as copied in Pi-Systems/exact-online,
# Sync/Deleted.php; ELMAS sync_deleted.rb; reference §5.2 and §12).
DELETION_LOG_RETENTION = dt.timedelta(days=61)


def purge_deleted(div: Division, *, before: dt.datetime) -> int:
    """Drop the deletion log's entries deleted before `before`, as Exact does after two months. Returns how many."""
    keep = [d for d in div.deleted if d["DeletedDate"] >= before]
    purged = len(div.deleted) - len(keep)
    div.deleted[:] = keep
    return purged
