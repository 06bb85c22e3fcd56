"""Schema-driven argument sampling: valid, realistic argument values for a tool's parameters.

An :class:`ArgumentSampler` is built once per tool (schemas resolved, one value generator chosen
per parameter, validator compiled) and then called per example, because synthetic generation
draws hundreds of thousands of calls. Values follow the JSON Schema (types, enums, formats,
bounds, patterns) and look like what users type, chosen from the parameter's name and
description: ``customer_id`` mimics the description's example id (``'cus_0001'`` → ``cus_4821``)
or falls back to ``C-1042``, ``email`` gives ``maria.lopez@example.com``, ``city`` a city name.
Money parameters in cents (see :func:`is_cents`) get amounts users actually say: whole dollars
or prices like $12.50.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from re import _parser as sre_parse  # type: ignore[attr-defined]  # stdlib regex parser, stable since 3.0
from typing import Any

import jsonschema

from tooltune.data.vocabulary import DomainVocabulary
from tooltune.tools.catalog import Tool

Gen = Callable[[random.Random], Any]

# The day synthetic dates cluster around: the demo world's frozen "today" (tooltune.demo.db).
TODAY = date(2025, 6, 2)

FIRST_NAMES = ["John", "Maria", "Wei", "Aisha", "Emma", "Lukas", "Sophie", "Hiroshi", "Olivia", "Liam", "Priya",
               "Noah", "Chloe", "Mateo", "Grace", "Oliver", "Fatima", "Jack", "Ava", "Diego", "Nora", "Tom", "Lena",
               "Sam", "Mei", "Carlos", "Ingrid", "Kofi", "Yuki", "Elena", "Omar", "Hannah", "Ravi", "Zoe"]
LAST_NAMES = ["Smith", "Garcia", "Chen", "Khan", "Johnson", "Müller", "Martin", "Tanaka", "Brown", "O'Connor", "Patel",
              "Williams", "Dubois", "Rossi", "Lee", "Taylor", "Ramos", "Berg", "Becker", "Okafor", "Lin", "Silva",
              "Novak", "Andersson", "Mensah", "Sato", "Petrova", "Haddad", "Kowalski", "Nguyen", "Schmidt", "Lopez"]
CITIES = ["London", "Paris", "Berlin", "Madrid", "Rome", "New York", "San Francisco", "Chicago", "Toronto", "Tokyo",
          "Sydney", "Mumbai", "Cairo", "São Paulo", "Singapore", "Lisbon", "Dublin", "Amsterdam", "Vienna", "Seoul",
          "Mexico City", "Nairobi", "Oslo", "Boston", "Denver", "Austin", "Portland, OR", "Paris, FR"]
TITLES = ["Design review", "Quarterly planning", "1:1 with Priya", "Budget sync", "Sprint retro", "Customer call",
          "Hiring panel", "Launch checklist", "Team lunch", "Roadmap review", "Security training", "Board prep",
          "Incident postmortem", "Onboarding session", "Vendor demo", "Offsite agenda"]
TEXTS = ["Customer asked for it", "Damaged in transit", "Duplicate charge", "Wrong size delivered",
         "Please review before Friday", "Notes from the standup", "Order arrived late", "Goodwill gesture",
         "Item never arrived", "Follow up with finance", "Draft for the team", "Updated numbers for May"]
QUERIES = ["refund", "invoice", "onboarding", "Q2 report", "standup", "payments API", "runbook", "budget",
           "todo", "roadmap", "sales", "customer"]
PLACES = ["Room Atlas", "Room Borealis", "Zoom", "Cafe Lindgren", "Harbour Hall", "Main office", "Google Meet"]
COUNTRIES = ["US", "GB", "DE", "FR", "ES", "IT", "JP", "CA", "AU", "IN", "BR", "NL"]
CURRENCIES = ["USD", "EUR", "GBP", "CAD", "AUD", "JPY"]
DOMAINS = ["example.com", "example.org", "example.co.uk", "acme.io"]
FOLDERS = ["/docs", "/notes", "/reports", "/src", "/docs/api", "/archive"]
FILE_STEMS = ["summary", "onboarding", "todo", "meeting-notes", "budget", "roadmap", "report", "changelog", "plan"]
EXTENSIONS = ["md", "txt", "csv", "json", "py"]
PRODUCTS = ["Wireless headphones", "USB-C cable", "Mechanical keyboard", "Laptop stand", "4K webcam", "Portable SSD"]
# Prices people say: whole amounts most often, then the usual retail endings.
CENT_ENDINGS = [0, 0, 0, 0, 0, 50, 50, 99, 95, 25, 75, 49, 10]

_ROOT = re.compile(r"""starting with ['"`]?(/[\w.-]+)""", re.I)
_EXAMPLE = re.compile(r"""(?:e\.g\.|such as|for example|like)\s*:?\s*\[?['"]([^'"]+)['"]""", re.I)
_ID_NAME = re.compile(r"(^|_)(id|uuid|key|code|number|ref)$")


def is_cents(tool: str, param: str, schema: dict[str, Any], vocabulary: DomainVocabulary | None) -> bool:
    """Money held in cents: listed in the vocabulary, or an integer whose description says so."""
    if vocabulary is not None and vocabulary.is_cents(tool, param):
        return True
    text = (schema.get("description") or "").lower()
    return schema.get("type") == "integer" and ("cents" in text or "smallest currency unit" in text)


@dataclass
class Param:
    """One top-level parameter, resolved once: its effective schema and how to draw a value."""

    name: str
    schema: dict[str, Any]
    required: bool
    gen: Gen
    kind: str
    """How phrasing mentions it: money, enum, id, email, name, city, path, date, datetime, time,
    duration, limit, count, bool, list, text, string, number, object."""
    has_default: bool = False
    default: Any = None
    label: str = ""


# Schema keywords at the top of a parameters object that per-parameter checks fully cover;
# any other keyword (oneOf, dependentRequired, if/then …) sends every draw to the full validator.
_PER_PARAM_SAFE = {"type", "properties", "required", "title", "description", "additionalProperties",
                   "$defs", "definitions", "$schema", "$id", "$comment", "examples"}


@dataclass
class ArgumentSampler:
    """Draws valid argument dicts for one tool; build with :func:`sampler_for`."""

    tool: Tool
    params: list[Param]
    validator: Any = field(repr=False)
    checks: dict[str, Callable[[Any], bool]] | None = field(default=None, repr=False)
    """Per-parameter validity with a cache, when the schema allows checking parameters one by
    one: jsonschema costs ~30 µs a call, and most drawn values repeat."""

    def is_valid(self, args: dict[str, Any]) -> bool:
        """Whether ``args`` satisfies the tool's schema (the same verdict as the full validator)."""
        if self.checks is None:
            return self.validator.is_valid(args)
        checks = self.checks
        return all(name in checks and checks[name](value) for name, value in args.items()) and all(
            p.name in args for p in self.params if p.required)

    def sample(self, rng: random.Random, *, optional_rate: float = 0.35, include: frozenset[str] | None = None,
               fixed: dict[str, Any] | None = None, attempts: int = 8) -> dict[str, Any] | None:
        """A valid argument dict, or ``None`` when ``attempts`` draws all failed validation.

        ``include`` names exactly the parameters to fill (curated templates keep their set);
        otherwise required ones always and each optional one with ``optional_rate``.
        ``fixed`` values are used as given."""
        fixed = fixed or {}
        for _ in range(attempts):
            args = {}
            for p in self.params:
                wanted = p.name in include if include is not None else (p.required or rng.random() < optional_rate)
                if wanted:
                    args[p.name] = fixed[p.name] if p.name in fixed else p.gen(rng)
            if self.is_valid(args):
                return args
        return None


def sampler_for(tool: Tool, vocabulary: DomainVocabulary | None = None) -> ArgumentSampler:
    root = tool.parameters
    required = set(tool.required)
    params = []
    for name, raw in tool.properties.items():
        schema = resolve(raw, root)
        cents = is_cents(tool.name, name, schema, vocabulary)
        gen, kind = _generator(name, schema, root, cents=cents)
        params.append(Param(name=name, schema=schema, required=name in required, gen=gen, kind=kind,
                            has_default="default" in raw, default=raw.get("default"), label=label_of(name, kind)))
    cls = jsonschema.validators.validator_for(root, default=jsonschema.Draft202012Validator)
    checks = None
    if set(root) <= _PER_PARAM_SAFE:  # unknown keys fail the checks whatever additionalProperties says
        defs = {k: root[k] for k in ("$defs", "definitions") if k in root}
        checks = {name: _param_check(raw, cls({**raw, **defs}, format_checker=cls.FORMAT_CHECKER))
                  for name, raw in tool.properties.items()}
    return ArgumentSampler(tool=tool, params=params, validator=cls(root, format_checker=cls.FORMAT_CHECKER), checks=checks)


_SIMPLE_KEYS = {"type", "description", "title", "default", "examples", "minimum", "maximum", "minLength", "maxLength"}
_PY_TYPES: dict[str, Any] = {"string": str, "integer": int, "number": (int, float), "boolean": bool}


def _param_check(schema: dict[str, Any], validator: Any) -> Callable[[Any], bool]:
    """A fast check for plain typed parameters (most of them), else the cached validator."""
    branches = schema.get("anyOf")
    if branches and set(schema) <= _SIMPLE_KEYS | {"anyOf"} and all(set(b) <= _SIMPLE_KEYS for b in branches):
        checks = [_simple(b) for b in branches]
        if all(checks):
            return lambda v: any(c(v) for c in checks)  # type: ignore[misc]
    simple = _simple(schema) if set(schema) <= _SIMPLE_KEYS else None
    return simple or _cached_check(validator)


def _simple(schema: dict[str, Any]) -> Callable[[Any], bool] | None:
    kind = schema.get("type")
    if kind == "null":
        return lambda v: v is None
    if kind not in _PY_TYPES:
        return None
    py, low, high = _PY_TYPES[kind], schema.get("minimum"), schema.get("maximum")
    short, long = schema.get("minLength", 0), schema.get("maxLength")
    if kind == "string":
        return lambda v: isinstance(v, str) and len(v) >= short and (long is None or len(v) <= long)
    if kind == "boolean":
        return lambda v: isinstance(v, bool)
    # bool is an int in Python but not in JSON Schema; integer also accepts 3.0 there.
    return lambda v: (isinstance(v, py) and not isinstance(v, bool) and (kind != "integer" or v == int(v))
                      and (low is None or v >= low) and (high is None or v <= high))


def _cached_check(validator: Any) -> Callable[[Any], bool]:
    cache: dict[Any, bool] = {}

    def check(value: Any) -> bool:
        key = (type(value).__name__, value) if isinstance(value, (str, int, float, bool)) or value is None else None
        if key is None:
            return validator.is_valid(value)
        if key not in cache:
            cache[key] = validator.is_valid(value)
        return cache[key]

    return check


def label_of(name: str, kind: str) -> str:
    """How a parameter is called in prose: ``customer_id`` → "customer", ``duration_minutes`` → "duration"."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower().replace("-", "_").split("_")
    if kind == "id" and len(words) > 1 and words[-1] in ("id", "uuid", "ref"):
        words = words[:-1]
    if kind == "duration" and len(words) > 1:
        words = words[:-1]
    return " ".join(w for w in words if w) or name


def resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """The schema a value is drawn from: ``$ref`` followed, nullable ``anyOf`` unwrapped, the
    outer description kept (pydantic puts it next to the ``anyOf``)."""
    if "$ref" in schema:
        target = _ref(schema["$ref"], root)
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    for key in ("anyOf", "oneOf"):
        if key in schema:
            branches = [b for b in schema[key] if b.get("type") != "null"] or schema[key]
            inner = resolve(branches[0], root)
            schema = {**inner, **{k: v for k, v in schema.items() if k not in (key, "default")}}
    if "allOf" in schema and len(schema["allOf"]) == 1:
        schema = {**resolve(schema["allOf"][0], root), **{k: v for k, v in schema.items() if k != "allOf"}}
    kind = schema.get("type")
    if isinstance(kind, list):
        schema = {**schema, "type": next((t for t in kind if t != "null"), "string")}
    return schema


def _ref(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    node: Any = root
    for part in ref.lstrip("#/").split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


# ---------------------------------------------------------------- value generators


def _generator(name: str, schema: dict[str, Any], root: dict[str, Any], *, cents: bool = False) -> tuple[Gen, str]:
    """The generator for one parameter and the kind phrasing uses for it (see ``Param.kind``)."""
    if "const" in schema:
        return (lambda rng, v=schema["const"]: v), "string"
    if "enum" in schema:
        values = [v for v in schema["enum"] if v is not None] or schema["enum"]
        return (lambda rng: rng.choice(values)), "enum"
    kind = schema.get("type", "string")
    if kind == "integer" or kind == "number":
        return _number(name, schema, cents=cents)
    if kind == "boolean":
        return (lambda rng: rng.random() < 0.5), "bool"
    if kind == "array":
        return _array(name, schema, root)
    if kind == "object":
        return _object(schema, root), "object"
    return _string(name, schema)


def _number(name: str, schema: dict[str, Any], *, cents: bool) -> tuple[Gen, str]:
    low, high = _bounds(schema)
    integer = schema.get("type") == "integer"
    lname = name.lower()
    if cents:
        return _clamped(_money, low, high, integer=True), "money"
    if lname in ("limit", "max_results", "page_size", "top_k", "count", "n") or lname.startswith(("max_", "num_")):
        return _clamped(lambda rng: rng.choice([3, 5, 10, 10, 20, 25, 50]), low, high, integer=True), "limit"
    unit = lname.rsplit("_", 1)[-1]
    if unit in ("minutes", "mins"):
        return _clamped(lambda rng: rng.choice([15, 30, 30, 45, 60, 60, 90, 120]), low, high, integer=True), "duration"
    if unit in ("days", "hours", "weeks", "seconds", "nights"):
        return _clamped(lambda rng: rng.randint(1, 7), low, high, integer=True), "duration"
    if lname in ("days", "hours", "weeks", "nights"):
        return _clamped(lambda rng: rng.randint(1, 7), low, high, integer=True), "duration"
    if lname in ("quantity", "qty", "page", "guests", "seats", "people"):
        return _clamped(lambda rng: rng.randint(1, 5), low, high, integer=True), "count"
    if lname in ("lat", "latitude"):
        return _clamped(lambda rng: round(rng.uniform(-60, 70), 4), low, high, integer=integer), "number"
    if lname in ("lon", "lng", "longitude"):
        return _clamped(lambda rng: round(rng.uniform(-170, 170), 4), low, high, integer=integer), "number"
    if lname == "year":
        return _clamped(lambda rng: rng.randint(2019, 2026), low, high, integer=True), "count"
    top = high if high is not None and high < 1000 else 100
    bottom = low if low is not None else (1 if integer else 0)
    if integer:
        return _clamped(lambda rng: rng.randint(int(bottom), int(max(bottom, top))), low, high, integer=True), "count"
    return _clamped(lambda rng: round(rng.uniform(bottom, max(bottom, top)), 2), low, high, integer=False), "number"


def _money(rng: random.Random) -> int:
    dollars = rng.choice([rng.randint(1, 99), rng.randint(1, 99), rng.randint(100, 999), rng.randint(5, 50) * 10])
    return dollars * 100 + rng.choice(CENT_ENDINGS)


def _bounds(schema: dict[str, Any]) -> tuple[float | None, float | None]:
    low = schema.get("minimum")
    if "exclusiveMinimum" in schema and isinstance(schema["exclusiveMinimum"], (int, float)):
        low = schema["exclusiveMinimum"] + (1 if schema.get("type") == "integer" else 0.01)
    high = schema.get("maximum")
    if "exclusiveMaximum" in schema and isinstance(schema["exclusiveMaximum"], (int, float)):
        high = schema["exclusiveMaximum"] - (1 if schema.get("type") == "integer" else 0.01)
    return low, high


def _clamped(gen: Gen, low: float | None, high: float | None, *, integer: bool) -> Gen:
    # Heuristic values are realistic but know nothing of the bounds; out-of-range draws are
    # redrawn uniformly inside them, so bounded parameters still get plausible values mostly.
    def draw(rng: random.Random) -> Any:
        value = gen(rng)
        if (low is not None and value < low) or (high is not None and value > high):
            lo = low if low is not None else (high - 100 if high is not None else 0)
            hi = high if high is not None else lo + 100
            value = rng.randint(int(-(-lo // 1)), int(hi // 1)) if integer else round(rng.uniform(lo, hi), 2)
        return int(value) if integer else value

    return draw


def _array(name: str, schema: dict[str, Any], root: dict[str, Any]) -> tuple[Gen, str]:
    item_schema = resolve(schema.get("items") or {"type": "string"}, root)
    singular = name[:-1] if name.endswith("s") else name
    item_gen, _ = _generator(singular, item_schema, root)
    low = schema.get("minItems", 1)
    high = min(schema.get("maxItems", 3), max(low, 3))
    unique = schema.get("uniqueItems", False) or "email" in name or item_schema.get("format") == "email"

    def draw(rng: random.Random) -> list[Any]:
        size = rng.randint(low, max(low, high))
        items: list[Any] = []
        for _ in range(size * 4):
            if len(items) == size:
                break
            item = item_gen(rng)
            if not unique or item not in items:
                items.append(item)
        return items

    return draw, "list"


def _object(schema: dict[str, Any], root: dict[str, Any]) -> Gen:
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    gens = {k: _generator(k, resolve(v, root), root)[0] for k, v in props.items()}

    def draw(rng: random.Random) -> dict[str, Any]:
        if not gens:
            return {"note": rng.choice(TEXTS)}
        return {k: g(rng) for k, g in gens.items() if k in required or rng.random() < 0.5}

    return draw


def _string(name: str, schema: dict[str, Any]) -> tuple[Gen, str]:
    fmt = schema.get("format")
    if fmt in _FORMATS:
        gen, kind = _FORMATS[fmt]
    else:
        gen, kind = _by_name(name, schema)
    pattern = schema.get("pattern")
    if pattern:
        gen = _matching(gen, pattern)
        kind = kind if kind != "string" else "text"
    return _sized(gen, schema.get("minLength", 0), schema.get("maxLength")), kind


def _sized(gen: Gen, low: int, high: int | None) -> Gen:
    def draw(rng: random.Random) -> str:
        value = gen(rng)
        if len(value) < low:
            value = value + "x" * (low - len(value))
        return value[:high] if high is not None else value

    return draw


def _matching(gen: Gen, pattern: str) -> Gen:
    compiled = re.compile(pattern)
    regex_gen = regex_sampler(pattern)

    def draw(rng: random.Random) -> str:
        value = gen(rng)
        return value if compiled.search(value) else regex_gen(rng)

    return draw


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def _email(rng: random.Random) -> str:
    local = f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}".lower().replace("'", "").replace("ü", "u")
    return f"{local}@{rng.choice(DOMAINS)}"


def _date(rng: random.Random) -> str:
    return (TODAY + timedelta(days=rng.randint(-30, 45))).isoformat()


def _datetime(rng: random.Random) -> str:
    day = datetime(TODAY.year, TODAY.month, TODAY.day, tzinfo=timezone.utc) + timedelta(days=rng.randint(0, 21))
    moment = day.replace(hour=rng.randint(8, 17), minute=rng.choice([0, 0, 15, 30, 30, 45]))
    return moment.strftime("%Y-%m-%dT%H:%M:00Z")


def _time(rng: random.Random) -> str:
    return f"{rng.randint(8, 18):02d}:{rng.choice(['00', '15', '30', '45'])}"


def _uuid(rng: random.Random) -> str:
    h = "".join(rng.choice("0123456789abcdef") for _ in range(32))
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def _url(rng: random.Random) -> str:
    return f"https://{rng.choice(DOMAINS)}/{rng.choice(FILE_STEMS)}"


_FORMATS: dict[str, tuple[Gen, str]] = {
    "email": (_email, "email"), "idn-email": (_email, "email"), "date": (_date, "date"),
    "date-time": (_datetime, "datetime"), "time": (lambda rng: _time(rng) + ":00Z", "time"),
    "uuid": (_uuid, "id"), "uri": (_url, "string"), "url": (_url, "string"), "iri": (_url, "string"),
    "hostname": (lambda rng: rng.choice(DOMAINS), "string"), "ipv4": (lambda rng: f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}", "id"),
}


def _by_name(name: str, schema: dict[str, Any]) -> tuple[Gen, str]:
    """Realistic strings by parameter name, then by the description's example, then words."""
    lname = name.lower()
    examples = _EXAMPLE.findall(schema.get("description") or "")
    if "email" in lname:
        return _email, "email"
    if _ID_NAME.search(lname) or lname == "id":
        return _id_like(lname, examples), "id"
    if "city" in lname or lname in ("location_name", "town"):
        return _choice(CITIES), "city"
    if lname in ("name", "full_name", "customer_name", "person", "username", "contact", "first_name", "last_name") or lname.endswith("_name"):
        if lname == "first_name":
            return _choice(FIRST_NAMES), "name"
        if lname == "last_name":
            return _choice(LAST_NAMES), "name"
        return _person, "name"
    if lname in ("title", "subject", "summary", "headline"):
        return _choice(TITLES), "text"
    # A description that names the root ("Absolute path, starting with /workspace") is what the
    # model reads, so sampled paths start there too (the code service's sandbox).
    root = _ROOT.search(schema.get("description") or "")
    prefix = root.group(1).rstrip("/") if root else ""
    if lname in ("path", "file", "filename", "file_path", "filepath") or lname.endswith("_path"):
        return (lambda rng: f"{prefix}{rng.choice(FOLDERS)}/{rng.choice(FILE_STEMS)}.{rng.choice(EXTENSIONS)}"), "path"
    if lname in ("folder", "directory", "dir", "folder_path"):
        return _choice([prefix or "/", *(prefix + f for f in FOLDERS)]), "path"
    if lname in ("extension", "ext", "file_type"):
        return _choice(EXTENSIONS), "string"
    if lname in ("url", "uri", "link", "website", "endpoint", "webhook"):
        return _url, "string"
    if lname in ("query", "q", "search", "keyword", "keywords", "term", "search_term"):
        return _choice(QUERIES), "text"
    if lname in ("location", "room", "place", "venue", "address"):
        return _choice(PLACES), "text"
    if lname in ("country", "country_code", "region"):
        return _choice(COUNTRIES), "string"
    if lname in ("currency", "currency_code"):
        return _choice(CURRENCIES), "string"
    if lname in ("date", "day") or lname.endswith("_date"):
        return _date, "date"
    if lname in ("start", "end", "start_time", "end_time", "timestamp", "when", "datetime") or lname.endswith("_at"):
        return _datetime, "datetime"
    if lname in ("earliest", "from_time", "after"):
        return _choice(["07:00", "08:00", "08:30", "09:00", "10:00", "11:00"]), "time"
    if lname in ("latest", "to_time", "before"):
        return _choice(["15:00", "16:00", "16:30", "17:00", "18:00", "19:00"]), "time"
    if lname == "time" or lname.endswith("_time"):
        return _time, "time"
    if lname in ("phone", "phone_number", "mobile"):
        return (lambda rng: f"+1-555-01{rng.randint(0, 99):02d}"), "id"
    if lname in ("product", "product_name", "item", "sku"):
        return _choice(PRODUCTS), "text"
    if lname in ("content", "body", "text", "message", "note", "notes", "comment", "reason", "description"):
        return _choice(TEXTS), "text"
    if examples:
        return _choice(examples), "string"
    return (lambda rng: f"{rng.choice(['alpha', 'blue', 'north', 'quick', 'silver'])}-{rng.choice(['report', 'team', 'plan', 'batch'])}"), "string"


def _choice(values: list[Any]) -> Gen:
    return lambda rng: rng.choice(values)


def _id_like(name: str, examples: list[str]) -> Gen:
    """Ids shaped like the description's example (``'cus_0001'`` → ``cus_4821``), else ``C-1042``."""
    shaped = [e for e in examples if any(ch.isdigit() for ch in e) and " " not in e]
    if shaped:
        example = shaped[0]

        digits = [i for i, ch in enumerate(example) if ch.isdigit()]
        top = 10 ** len(digits)

        def mimic(rng: random.Random) -> str:
            number = f"{rng.randrange(1, top):0{len(digits)}d}"  # from 1: never all zeros
            out = list(example)
            for i, d in zip(digits, number):
                out[i] = d
            return "".join(out)

        return mimic
    stem = name.rsplit("_", 1)[0] if "_" in name else "id"
    prefix = {"customer": "C", "user": "U", "account": "ACC", "invoice": "INV", "order": "ORD", "payment": "PAY",
              "event": "EVT", "ticket": "TCK", "product": "P"}.get(stem, stem[:3].upper() or "ID")
    return lambda rng: f"{prefix}-{rng.randint(1000, 9999)}"


# ---------------------------------------------------------------- strings matching a pattern


def regex_sampler(pattern: str) -> Gen:
    """A generator of strings matching ``pattern`` (literals, classes, repeats, groups, branches)."""
    parsed = sre_parse.parse(pattern)
    return lambda rng: _emit(parsed, rng)


def _emit(items: Any, rng: random.Random) -> str:
    out = []
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(arg))
        elif name == "ANY":
            out.append(rng.choice(string.ascii_lowercase))
        elif name == "NOT_LITERAL":
            out.append(rng.choice([c for c in string.ascii_lowercase if ord(c) != arg]))
        elif name == "IN":
            out.append(_from_class(arg, rng))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = arg
            high = low + 3 if high is sre_parse.MAXREPEAT else high
            out.extend(_emit(sub, rng) for _ in range(rng.randint(low, max(low, min(high, low + 3)))))
        elif name == "SUBPATTERN":
            out.append(_emit(arg[-1], rng))
        elif name == "BRANCH":
            out.append(_emit(rng.choice(arg[1]), rng))
        # AT (anchors), ASSERT and the rest emit nothing.
    return "".join(out)


def _from_class(items: list[Any], rng: random.Random) -> str:
    if items and str(items[0][0]) == "NEGATE":
        allowed = [c for c in string.ascii_letters + string.digits if not re.fullmatch(_class_regex(items), c)]
        return rng.choice(allowed or ["x"])
    op, arg = rng.choice(items)
    name = str(op)
    if name == "LITERAL":
        return chr(arg)
    if name == "RANGE":
        return chr(rng.randint(arg[0], arg[1]))
    if name == "CATEGORY":
        return rng.choice({"CATEGORY_DIGIT": string.digits, "CATEGORY_SPACE": " ", "CATEGORY_WORD": string.ascii_letters + string.digits}
                          .get(str(arg), string.ascii_lowercase))
    return "x"


def _class_regex(items: list[Any]) -> str:
    parts = []
    for op, arg in items[1:]:
        if str(op) == "LITERAL":
            parts.append(re.escape(chr(arg)))
        elif str(op) == "RANGE":
            parts.append(f"{re.escape(chr(arg[0]))}-{re.escape(chr(arg[1]))}")
        elif str(op) == "CATEGORY":
            parts.append({"CATEGORY_DIGIT": r"\d", "CATEGORY_SPACE": r"\s", "CATEGORY_WORD": r"\w"}.get(str(arg), ""))
    return f"[{''.join(parts)}]" if parts else "[]"
