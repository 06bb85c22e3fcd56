"""Phrasing templates: how a request for a tool call is worded, built from the tool itself.

A *template* is one way of asking: an **action** (what to do, e.g. "look up the customer",
derived from the tool name's verb and object, or the first sentence of its description), a
**frame** (register and mood: "Could you please {action}{args}?", "hey can u {action}{args}",
the shorthand "payment: amount $50, invoice inv_1001"), and an **argument style** (prose "for invoice inv_1001 and $50", a
parenthesised list, a colon list, bare values). Every combination is a template with a stable
id (tool name + hash of its wording), which the split uses to hold phrasings out of training.
Curated queries become templates too: their argument values are located in the text and
replaced by slots (:func:`curated_template`).

A rendered request is a list of segments ``(text, protected)``. Protected segments are values
the call copies or derives (ids, emails, "$12.50"); typos and lower-casing touch only the rest.
Values are worded the way users say them: cents as "$12.50" / "50 dollars" / "€30" (the
expected argument stays 1250 / 5000 / 3000 with currency EUR), enum values through the domain
vocabulary ("pending" for ``awaiting_shipment``).
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tooltune.data.sampling import ArgumentSampler, Param
from tooltune.data.vocabulary import DomainVocabulary
from tooltune.tools.catalog import content_hash

Segment = tuple[str, bool]
"""``(text, protected)``: protected text is a value and is never altered."""

# (frame, register, mood, argument styles that read well in it)
FRAMES: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("Please {action}{args}.", "formal", "command", ("prose", "colon")),
    ("Could you please {action}{args}?", "formal", "question", ("prose", "paren")),
    ("Would you {action}{args}?", "formal", "question", ("prose",)),
    ("I would like to {action}{args}.", "formal", "statement", ("prose", "colon")),
    ("I need you to {action}{args}.", "formal", "command", ("prose",)),
    ("Kindly {action}{args}.", "formal", "command", ("prose", "paren")),
    ("Is it possible to {action}{args}?", "formal", "question", ("prose",)),
    ("{Action}{args}.", "neutral", "command", ("prose", "colon", "paren")),
    ("Can you {action}{args}?", "neutral", "question", ("prose", "paren")),
    ("Go ahead and {action}{args}.", "neutral", "command", ("prose",)),
    ("I want to {action}{args}.", "neutral", "statement", ("prose", "colon")),
    ("Next up: {action}{args}.", "neutral", "command", ("prose",)),
    ("hey can u {action}{args}", "informal", "question", ("prose",)),
    ("{action}{args} pls", "informal", "command", ("prose", "bare")),
    ("need to {action}{args} asap", "informal", "statement", ("prose",)),
    ("quick one - {action}{args}", "informal", "command", ("prose", "bare")),
    ("{action}{args}, thanks!", "informal", "command", ("prose",)),
    ("could u {action}{args}?", "informal", "question", ("prose",)),
    ("{object}{args}", "shorthand", "command", ("colon", "bare")),
    ("{verb} {object}{args}", "shorthand", "command", ("bare",)),
]

# Parallel requests: two or three clauses ("{action}{args}") joined in one message.
PARALLEL_FRAMES = [
    "{c1} and {c2}.", "Please {c1}, and also {c2}.", "Two things: {c1}; {c2}.", "Can you {c1} and {c2}?",
    "{c1}. Also, {c2}.", "I need you to {c1} as well as {c2}.", "{c1}, then {c2} too.",
    "could u {c1} and also {c2}", "First {c1}, and separately {c2}.", "Do both: {c1}, and {c2}.",
]
PARALLEL_FRAMES_3 = [
    "{c1}, {c2} and {c3}.", "Please {c1}; {c2}; and {c3}.", "Three things: {c1}, {c2}, and {c3}.",
    "Can you {c1}, {c2} and also {c3}?", "I need you to {c1}, {c2}, and {c3}.",
]

# Synonyms must read after "Please", "Could you" and "I would like to" alike (no "show me").
VERBS: dict[str, list[str]] = {
    "get": ["get", "look up", "pull up", "fetch"], "fetch": ["fetch", "get", "look up"],
    "list": ["list", "show", "pull up"], "search": ["search", "look through"], "find": ["find", "look for", "locate"],
    "create": ["create", "make", "set up", "add"], "add": ["add", "create"], "make": ["make", "create"],
    "update": ["update", "change", "edit"], "set": ["set", "change"], "delete": ["delete", "remove", "get rid of"],
    "remove": ["remove", "delete"], "cancel": ["cancel", "call off"], "refund": ["refund", "reverse"],
    "send": ["send", "fire off"], "read": ["read", "open", "show"], "write": ["write", "save"],
    "book": ["book", "reserve"], "schedule": ["schedule", "book"], "check": ["check", "look at"],
    "lookup": ["look up", "find"], "query": ["query", "look up"], "run": ["run", "start"],
    "start": ["start", "kick off"], "stop": ["stop", "halt"], "upload": ["upload"], "download": ["download"],
}
_INDEFINITE = {"create", "make", "set up", "add", "book", "schedule", "reserve", "write", "save", "send", "fire off"}
_PLAIN = {"list", "search", "look through", "show"}
# First words that make a description's first sentence usable as an imperative action.
_IMPERATIVES = set(VERBS) | {"charge", "return", "look", "show", "give", "move", "copy", "rename", "compute",
                             "calculate", "convert", "translate", "post", "publish", "archive", "assign", "invite",
                             "pay", "issue", "retrieve", "record", "submit", "approve", "reject", "count", "export"}

PROSE: dict[str, list[str]] = {
    "money": ["{v}", "for {v}", "of {v}", "amount {v}"],
    "id": ["{label} {v}", "for {label} {v}", "with {label} ID {v}"],
    "email": ["{v}", "with email {v}", "email {v}"],
    "name": ["{v}", "named {v}", "called {v}"],
    "city": ["in {v}", "for {v}"],
    "path": ["{v}", "at {v}"],
    "date": ["on {v}", "for {v}"],
    "datetime": ["at {v}", "starting {v}", "starting at {v}"],
    "time": ["{label} {v}", "{label} time {v}"],
    "duration": ["for {v} {unit}", "lasting {v} {unit}", "{v} {unit}"],
    "limit": ["at most {v}", "limit {v}", "up to {v}"],
    "count": ["{label} {v}", "with {label} {v}"],
    "enum": ["{label} {v}", "with {label} {v}"],
    "list": ["{label} {v}", "with {label} {v}"],
    "text": ['{label} "{v}"', '{label}: "{v}"', 'with {label} "{v}"'],
    "string": ["{label} {v}", '{label} "{v}"'],
    "number": ["{label} {v}"],
    "object": ["{label} {v}"],
}
_BY_LABEL: dict[str, list[str]] = {
    "title": ['titled "{v}"', 'called "{v}"'], "query": ['for "{v}"', 'matching "{v}"', 'containing "{v}"'],
    "reason": ['with the reason "{v}"', 'reason: "{v}"'], "content": ['with content "{v}"', 'saying "{v}"'],
    "folder": ["in {v}", "under {v}"], "location": ["in {v}", "at {v}", "location {v}"],
    "attendees": ["with {v}", "inviting {v}", "attendees {v}"],
}
_STATE_LIKE = ("state", "status")
_PREPOSITIONS = {"with", "for", "in", "at", "on", "of", "from", "starting", "lasting", "titled", "called", "named",
                 "inviting", "matching", "containing", "saying", "under", "up", "that"}
_BARE_KINDS = {"money", "id", "email", "path", "date", "datetime", "city", "name"}

CLARIFY_QUESTIONS: dict[str, list[str]] = {
    "money": ["How much should it be?", "What amount should I use?", "Sure, for how much?"],
    "id": ["Which {label} is this for? Please give me the {label} ID.", "What's the {label} ID?",
           "Sure. Which {label} do you mean?"],
    "email": ["What's the email address?", "Which email address should I use?"],
    "name": ["What's the name?", "Whose name should I look up?"],
    "city": ["Which city?", "For which city?"],
    "date": ["For which date?", "Which day do you mean?"],
    "datetime": ["When should it start?", "What date and time?"],
    "enum": ["Which {label}: {options}?", "Sure. Which {label} do you mean ({options})?"],
}
_CLARIFY_DEFAULT = ["What {label} should I use?", "Could you tell me the {label}?", "Sure. What's the {label}?"]


# ---------------------------------------------------------------- values as users say them

_SYMBOL = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "C$", "AUD": "A$"}
_WORD = {"USD": "dollars", "EUR": "euros", "GBP": "pounds", "JPY": "yen", "CAD": "Canadian dollars", "AUD": "Australian dollars"}
MONEY_STYLES = ("symbol", "word", "code")
_NO_MINOR_UNIT = {"JPY", "KRW"}


def money_text(amount: int, currency: str, style: str, rng: random.Random) -> str:
    """``1250, "USD", "symbol"`` → "$12.50"; ``5000, "EUR", "word"`` → "50 euros"; JPY has no cents."""
    if currency in _NO_MINOR_UNIT:
        number = str(amount)
    else:
        major, minor = divmod(amount, 100)
        whole = f"{major:,}" if major >= 1000 and rng.random() < 0.4 else str(major)
        number = f"{whole}.{minor:02d}" if minor or rng.random() < 0.2 else whole
    if style == "symbol" and currency in _SYMBOL:
        return _SYMBOL[currency] + number
    if style == "word" and currency in _WORD:
        return f"{number} {_WORD[currency]}"
    return f"{number} {currency}"


def enum_text(value: Any, phrases: Sequence[str], rng: random.Random, *, one_word: bool = False) -> str:
    """How a user names an enum value: one of the vocabulary's ``phrases`` for it most of the
    time, else the value with underscores as spaces. ``one_word`` keeps phrases that fit before
    a noun ("pending orders")."""
    plain = str(value).replace("_", " ")
    if one_word:
        short = [p for p in phrases if " " not in p and p.isalpha()]
        return rng.choice(short) if short else plain
    if phrases and rng.random() < 0.65:
        return rng.choice(phrases)
    return plain


def _join_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# ---------------------------------------------------------------- templates


@dataclass(frozen=True)
class Template:
    """One way of asking for one tool; ``id`` is stable across runs (tool + wording hash)."""

    id: str
    tool: str
    action: str
    frame: str
    style: str
    register: str
    mood: str
    slots: tuple[str, ...] = ()
    """Parameters the action itself names ("list {state} payments")."""
    curated: CuratedText | None = None


@dataclass(frozen=True)
class CuratedText:
    """A curated query with its argument values replaced by ``{param}`` slots."""

    text: str
    slots: tuple[str, ...]
    fixed: dict[str, Any]
    """Arguments the text implies but does not spell (kept as they were)."""
    money: dict[str, tuple[str, str]]
    """Money slot → (style, currency) it was written in."""
    include: frozenset[str]
    optional: tuple[str, ...]
    alternatives: dict[str, list[Any]]
    negatives: tuple[dict[str, Any], ...]
    origin: str | None
    tool: str = ""
    curated_args: dict[str, Any] = field(default_factory=dict)


@dataclass
class ToolPhrasing:
    """A tool's templates and the rendering of argument dicts into request segments."""

    sampler: ArgumentSampler
    templates: list[Template]
    vocabulary: DomainVocabulary | None
    noun: str
    verb: str
    money_param: str | None
    currency_param: str | None
    currency_default: str
    curated: list[Template] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.sampler.tool.name

    params: dict[str, Param] = field(default_factory=dict)
    sentences: list[Template] = field(default_factory=list)
    """The templates that read as a sentence (no shorthand, no bare values): for clauses of
    parallel requests, clarify turns and withheld-tool requests."""
    _termed: set[str] = field(default_factory=set, repr=False)
    _object_params: set[str] = field(default_factory=set, repr=False)
    _phrases: dict[tuple[str, Any], list[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.params = {p.name: p for p in self.sampler.params}
        self.sentences = [t for t in self.templates if t.register != "shorthand" and t.style != "bare"]
        terms = self.vocabulary.terms if self.vocabulary else []
        self._termed = {p for p in self.params if any(t.applies_to(self.name, p) for t in terms)}
        # An id or path that names the tool's object is said bare: "refund the payment pay_0001".
        self._object_params = {p.name for p in self.sampler.params
                               if p.kind in ("id", "path") and p.label.split()[-1] == self.noun.split()[-1]}

    def phrases(self, param: str, value: Any) -> list[str]:
        """The vocabulary's words for ``value`` of ``param`` (cached: asked once per draw)."""
        if param not in self._termed:
            return []
        key = (param, value if isinstance(value, (str, int, float, bool)) else repr(value))
        if key not in self._phrases:
            # "failed payments" names the noun too, and would double it ("list failed payments payments").
            noun = set(self.noun.split()) | {w + "s" for w in self.noun.split()}
            self._phrases[key] = [s for s in self.vocabulary.phrases_for(self.name, param, value)
                                  if not set(s.lower().split()) & noun]
        return self._phrases[key]

    def render(self, template: Template, args: dict[str, Any], rng: random.Random, *, hide: Sequence[str] = ()) -> list[Segment]:
        """The request for ``args`` in ``template``; ``hide`` leaves parameters unsaid (clarify)."""
        if template.curated is not None:
            return self._render_curated(template.curated, args, rng)
        body = self.clause(template, args, rng, hide=hide)
        return _fill(template.frame, {"action+args": body, "object": [(self.noun, False)], "verb": [(self.verb, False)]},
                     capital="{Action}" in template.frame)

    def clause(self, template: Template, args: dict[str, Any], rng: random.Random, *, hide: Sequence[str] = (),
               action: bool = True) -> list[Segment]:
        """Action and arguments without a frame ("create a payment for $50 …"), for joining
        clauses; ``action=False`` gives the arguments alone ("… and the same for $20")."""
        out = self._action(template, args, rng) if action else []
        shown = [p for p in args if p not in hide and p not in template.slots and not self._absorbed(p, args, hide)]
        rng.shuffle(shown)
        head = [p for p in shown if self._names_object(p)]
        shown = head + [p for p in shown if p not in head]
        return out + self._args(template.style, shown, args, rng)

    def _action(self, template: Template, args: dict[str, Any], rng: random.Random) -> list[Segment]:
        if template.frame.startswith(("{object}", "{verb}")):
            return []
        out: list[Segment] = []
        for piece in _split(template.action, r"(\{\w+\})"):
            if piece.startswith("{") and piece[1:-1] in args:
                p = piece[1:-1]
                out.append((enum_text(args[p], self.phrases(p, args[p]), rng, one_word=True), True))
            elif piece:
                out.append((piece, False))
        return out

    def _absorbed(self, param: str, args: dict[str, Any], hide: Sequence[str]) -> bool:
        # The currency is said through the amount ("€30"), not as a separate mention.
        return param == self.currency_param and self.money_param in args and self.money_param not in hide

    def _names_object(self, param: str) -> bool:
        return param in self._object_params

    def _args(self, style: str, shown: list[str], args: dict[str, Any], rng: random.Random) -> list[Segment]:
        if not shown:
            return []
        mentions = [self._mention(style, p, args, rng) for p in shown]
        if style == "prose":
            out: list[Segment] = [(" ", False)]
            for i, m in enumerate(mentions):
                if i:
                    # "… at /x.md with content …" reads better than "… and with content …".
                    linked = m[0][0].split(" ", 1)[0] in _PREPOSITIONS and not m[0][1]
                    out.append(((" " if linked else " and ") if i == len(mentions) - 1 else ", ", False))
                out += m
            return out
        sep, open_, close = {"paren": (", ", " (", ")"), "colon": (", ", ": ", ""), "bare": (" ", " ", "")}[style]
        out = [(open_, False)]
        for i, m in enumerate(mentions):
            if i:
                out.append((sep, False))
            out += m
        return out + [(close, False)] if close else out

    def _mention(self, style: str, param: str, args: dict[str, Any], rng: random.Random) -> list[Segment]:
        p = self.params[param]
        value = self.value_text(param, args, rng)
        quoted = '"{v}"' if p.kind == "text" else "{v}"  # free text needs quotes to show where it ends
        if style == "paren" or style == "colon":
            pattern = ("{label}: " if style == "paren" else "{label} ") + quoted
        elif style == "bare":
            pattern = "{v}" if p.kind in _BARE_KINDS else "{label} " + quoted
        elif self._names_object(param):
            pattern = "{v}"
        elif p.kind == "bool":
            pattern = rng.choice(["with {label}", "{label} on"] if args[param] else ["without {label}", "{label} off"])
        else:
            choices = _BY_LABEL.get(p.label) or PROSE.get(p.kind) or PROSE["string"]
            if p.kind == "enum" and any(w in p.label for w in _STATE_LIKE):
                choices = [*choices, "that are {v}"]
            pattern = rng.choice(choices)
        unit = param.rsplit("_", 1)[-1] if "_" in param else param
        if unit.endswith("s") and args.get(param) == 1:
            unit = unit[:-1]
        return _pattern_segments(pattern, value, p.label, unit)

    def value_text(self, param: str, args: dict[str, Any], rng: random.Random, *, money_style: str | None = None,
                   currency: str | None = None) -> str:
        """The words for one argument value ("$12.50", "pending", "a@x.com and b@y.com")."""
        p = self.params[param]
        value = args[param]
        if p.kind == "money":
            cur = currency or (args.get(self.currency_param) if self.currency_param else None) or self.currency_default
            return money_text(value, cur, money_style or rng.choice(MONEY_STYLES), rng)
        if p.kind == "enum":
            return enum_text(value, self.phrases(param, value), rng)
        if p.kind == "list":
            return _join_list([str(v) for v in value]) if value else "none"
        if p.kind == "bool":
            return ""
        if p.kind == "object":
            return ", ".join(f"{k} {v}" for k, v in value.items()) or "nothing"
        phrases = self.phrases(param, value)
        if phrases and rng.random() < 0.5:
            return rng.choice(phrases)
        return str(value)

    def _render_curated(self, ct: CuratedText, args: dict[str, Any], rng: random.Random) -> list[Segment]:
        out: list[Segment] = []
        for piece in _split(ct.text, r"(\{\w+\})"):
            name = piece[1:-1] if piece.startswith("{") and piece.endswith("}") else None
            if name in ct.slots:
                if name in ct.money:
                    style, cur = ct.money[name]
                    text = self.value_text(name, args, rng, money_style=style, currency=cur)
                elif self.params[name].kind == "enum":
                    text = enum_text(args[name], self.phrases(name, args[name]), rng, one_word=True)
                else:
                    text = self.value_text(name, args, rng)
                out.append((text, True))
            elif piece:
                out.append((piece, False))
        return out


@functools.lru_cache(maxsize=8192)
def _split(text: str, pattern: str) -> tuple[str, ...]:
    """``re.split`` memoized: templates are split once, not once per example."""
    return tuple(re.split(pattern, text))


def _pattern_segments(pattern: str, value: str, label: str, unit: str) -> list[Segment]:
    out: list[Segment] = []
    for piece in _split(pattern, r"(\{v\})"):
        if piece == "{v}":
            out.append((value, True))
        elif piece:
            out.append((piece.replace("{label}", label).replace("{unit}", unit), False))
    return out


def _fill(frame: str, parts: dict[str, list[Segment]], *, capital: bool = False) -> list[Segment]:
    out: list[Segment] = []
    body = parts["action+args"]
    if capital and body and not body[0][1]:
        body = [(body[0][0][:1].upper() + body[0][0][1:], False), *body[1:]]
    for piece in _split(frame, r"(\{[Aa]ction\}\{args\}|\{args\}|\{object\}|\{verb\})"):
        if piece.endswith("{args}"):
            out += body
        elif piece in ("{object}", "{verb}"):
            out += parts[piece[1:-1]]
        elif piece:
            out.append((piece, False))
    return out


def phrasing_for(sampler: ArgumentSampler, vocabulary: DomainVocabulary | None = None) -> ToolPhrasing:
    """Build a tool's generated templates (actions × frames × argument styles)."""
    tool = sampler.tool
    verb, noun = _verb_noun(tool.name)
    kinds = {p.name: p for p in sampler.params}
    money = next((p.name for p in sampler.params if p.kind == "money"), None)
    currency = next((p.name for p in sampler.params if p.name.lower() in ("currency", "currency_code")), None)
    default = kinds[currency].default if currency and isinstance(kinds[currency].default, str) else "USD"
    actions = _actions(verb, noun, tool.description, sampler)
    templates = []
    for action, slots in actions:
        for frame, register, mood, styles in FRAMES:
            if frame.startswith(("{object}", "{verb}")) and action != actions[0][0]:
                continue  # shorthand frames ignore the action: one copy is enough
            for style in styles:
                wording = f"{action}|{frame}|{style}"
                templates.append(Template(id=f"{tool.name}/{content_hash(wording, 8)}", tool=tool.name, action=action,
                                          frame=frame, style=style, register=register, mood=mood, slots=slots))
    return ToolPhrasing(sampler=sampler, templates=templates, vocabulary=vocabulary, noun=noun, verb=verb,
                        money_param=money, currency_param=currency, currency_default=default)


def _verb_noun(name: str) -> tuple[str, str]:
    words = [w for w in re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower().replace("-", "_").split("_") if w]
    if "by" in words[1:]:
        words = words[:words.index("by", 1)]
    if len(words) > 1 and words[0] in VERBS:
        return words[0], " ".join(words[1:])
    return "use", " ".join(words)


def _actions(verb: str, noun: str, description: str, sampler: ArgumentSampler) -> list[tuple[str, tuple[str, ...]]]:
    plural = noun.endswith("s") and not noun.endswith("ss")
    out: list[tuple[str, tuple[str, ...]]] = []
    for syn in VERBS.get(verb, [verb])[:4]:
        det = "" if plural and syn in _PLAIN else ("a " if syn in _INDEFINITE else "the ")
        if det == "a " and noun[:1] in "aeiou":
            det = "an "
        out.append((f"{syn} {det}{noun}", ()))
    # A list tool filtered by a required enum reads best with the value as an adjective.
    enum = next((p for p in sampler.params if p.kind == "enum" and p.required), None)
    if enum is not None and plural:
        for syn in VERBS.get(verb, [verb])[:2]:
            out.append((f"{syn} {'' if syn in _PLAIN else 'the '}{{{enum.name}}} {noun}", (enum.name,)))
    described = _description_action(description)
    if described and described not in [a for a, _ in out]:
        out.append((described, ()))
    return out


def _description_action(description: str) -> str | None:
    first = re.split(r"(?<=[.!?])\s|\n", description.strip(), maxsplit=1)[0].rstrip(".")
    first = re.split(r",|;|:|\(| and return| — | - ", first, maxsplit=1)[0].strip()
    words = first.split()
    if not words or words[0].lower() not in _IMPERATIVES or len(words) > 14:
        return None
    return first[0].lower() + first[1:]


def clarify_question(phrasing: ToolPhrasing, param: str, rng: random.Random) -> str:
    p = phrasing.params[param]
    options = ""
    if p.kind == "enum":
        values = [str(v).replace("_", " ") for v in p.schema.get("enum", []) if v is not None]
        options = _join_list(values).replace(" and ", " or ") if values else ""
    question = rng.choice(CLARIFY_QUESTIONS.get(p.kind, _CLARIFY_DEFAULT))
    return question.replace("{label}", p.label).replace("{options}", options)


# ---------------------------------------------------------------- curated queries as templates


def curated_template(phrasing: ToolPhrasing, query: str, args: dict[str, Any], *, optional: Sequence[str] = (),
                     alternatives: dict[str, list[Any]] | None = None, negatives: Sequence[dict[str, Any]] = (),
                     origin: str | None = None) -> Template | None:
    """A template from a curated single-call query: each argument value found in the text becomes
    a slot; values the text only implies (USD from "$") stay fixed. ``None`` when no value is
    found (nothing could be swapped, so the query would only repeat the curated example)."""
    params = phrasing.params
    if any(name not in params for name in args):
        return None
    text = query
    taken: list[tuple[int, int]] = []
    slots: list[str] = []
    money: dict[str, tuple[str, str]] = {}
    for name in sorted(args, key=lambda n: params[n].kind != "money"):  # money first: "30 EUR" holds the currency
        found = _locate(phrasing, name, args, text, taken)
        if found is None:
            continue
        start, end, style, cur = found
        text = text[:start] + "\x00" * (end - start) + text[end:]
        taken.append((start, end))
        slots.append(name)
        if style:
            money[name] = (style, cur)
    if not slots:
        return None
    out = query
    for (start, end), name in sorted(zip(taken, slots), reverse=True):
        out = out[:start] + "{" + name + "}" + out[end:]
    # Literal braces in the query would read as slots; such queries are rare enough to skip.
    if out.count("{") != len(slots):
        return None
    fixed = {k: v for k, v in args.items() if k not in slots}
    ct = CuratedText(text=out, slots=tuple(slots), fixed=fixed, money=money, include=frozenset(args),
                     optional=tuple(optional), alternatives={k: v for k, v in (alternatives or {}).items() if k in fixed},
                     negatives=tuple(negatives), origin=origin, tool=phrasing.name, curated_args=dict(args))
    return Template(id=f"{phrasing.name}/curated-{content_hash(out, 8)}", tool=phrasing.name, action="", frame="",
                    style="curated", register="curated", mood="curated", curated=ct)


def _locate(phrasing: ToolPhrasing, name: str, args: dict[str, Any], text: str,
            taken: list[tuple[int, int]]) -> tuple[int, int, str, str] | None:
    p = phrasing.params[name]
    value = args[name]
    if isinstance(value, str) and "{" in value:
        return None
    candidates: list[tuple[str, str, str]] = []  # (surface, money style, currency)
    if p.kind == "money" and isinstance(value, int):
        cur = args.get(phrasing.currency_param) if phrasing.currency_param else None
        currencies = [cur] if isinstance(cur, str) else [phrasing.currency_default, "EUR", "GBP"]
        for c in currencies:
            for style in MONEY_STYLES:
                for forced in (0.0, 1.0):
                    candidates.append((money_text(value, c, style, _Fixed(forced)), style, c))
    elif p.kind == "enum":
        phrases = phrasing.phrases(name, value)
        candidates += [(s, "", "") for s in [str(value), str(value).replace("_", " "), *phrases]]
    elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
        candidates.append((str(value), "", ""))
    for surface, style, cur in sorted(candidates, key=lambda c: -len(c[0])):
        for m in re.finditer(r"(?<!\w)" + re.escape(surface) + r"(?!\w)", text, re.IGNORECASE if p.kind == "enum" else 0):
            if "\x00" not in text[m.start():m.end()]:
                return m.start(), m.end(), style, cur
    return None


class _Fixed(random.Random):
    """A Random whose ``random()`` is constant: enumerates money_text's optional ".00"."""

    def __init__(self, value: float):
        super().__init__(0)
        self._value = value

    def random(self) -> float:  # type: ignore[override]
        return self._value


# ---------------------------------------------------------------- noise


def add_typos(segments: list[Segment], rng: random.Random, count: int) -> tuple[list[Segment], int]:
    """Up to ``count`` seeded typos (swap, drop or double a letter) in unprotected words of 4+
    letters; returns the new segments and how many typos were made."""
    spots = [(i, m.start(), m.end()) for i, (text, protected) in enumerate(segments) if not protected
             for m in re.finditer(r"[A-Za-z]{4,}", text)]
    if not spots:
        return segments, 0
    out = list(segments)
    made = 0
    for i, start, end in rng.sample(spots, min(count, len(spots))):
        text = out[i][0]
        if len(text) < end:
            continue  # an earlier typo in the same segment shortened it
        word = text[start:end]
        k = rng.randrange(1, len(word) - 1)
        op = rng.randrange(3)
        if op == 0:
            word = word[:k] + word[k + 1] + word[k] + word[k + 2:]
        elif op == 1:
            word = word[:k] + word[k + 1:]
        else:
            word = word[:k] + word[k] + word[k:]
        out[i] = (text[:start] + word + text[end:], False)
        made += 1
    return out, made


def text_of(segments: list[Segment]) -> str:
    return re.sub(r"\s{2,}", " ", "".join(t for t, _ in segments)).strip()
