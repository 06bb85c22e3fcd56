"""Multi-step flows of the demo services, for synthetic sequence examples.

Each :class:`~tooltune.data.sequences.Chain` lists its steps (later arguments reference earlier
results: ``{prev.customer_id}``), the slot values an instance draws from, and requests that
ask for the flow. Slot values come from the services' seed data, so most instances succeed;
the ones that do not (an ambiguous first name such as "John", an order already paid, a day
without events) fail on the real server and are dropped and counted by the generator, as a
model would see them fail.

Declared rather than derived from matching output fields to parameter names: the request
wording has to say what the chain does, and an automatic match would also chain calls nobody
makes (refunding the payment you just listed for a status check).
"""

from __future__ import annotations

from tooltune.data.sequences import Chain, ChainStep
from tooltune.demo.calendar_service import _PEOPLE, OWNER
from tooltune.demo.shop import _CUSTOMERS, _email

_NAMES = tuple(name for name, _, _ in _CUSTOMERS)
_FIRST_NAMES = tuple(name.split()[0] for name in _NAMES)
_EMAILS = tuple(_email(name, country) for name, country, _ in _CUSTOMERS)
_PAYMENT_STATES = ("pending", "processing", "completed", "failed", "refunded")
_ORDER_STATES = ("awaiting_shipment", "shipped", "delivered", "cancelled")
_COLLEAGUES = tuple(email for email, _ in _PEOPLE if email != OWNER)
_WEEKDAYS = ("2025-06-02", "2025-06-03", "2025-06-04", "2025-06-05", "2025-06-06", "2025-06-09", "2025-06-10")

_PAY_LATEST = (
    ChainStep("get_latest_order", {"customer_id": "{prev.customer_id}"}),
    ChainStep("create_payment", {"amount": "{prev.balance_due_cents}", "invoice_id": "{prev.invoice_id}",
                                 "customer_id": "{steps[0].customer_id}", "currency": "{prev.currency}"}),
)

SHOP = [
    Chain(
        id="shop.pay_latest_by_email", service="shop",
        steps=(ChainStep("get_customer_by_email", {"email": "{email}"}), *_PAY_LATEST),
        slots={"email": _EMAILS},
        requests=(
            "Charge {email} for their latest order.",
            "Process the payment for the most recent order of {email}.",
            "{email} wants to pay the balance on their newest order, please take it.",
            "Can you bill the customer with email {email} for whatever is still due on their last order?",
            "take payment for {email}'s latest order",
            "Settle the outstanding balance of the latest order placed by {email}.",
            "Please collect payment for the last order from {email}.",
            "Run the card for {email}'s most recent order, full balance.",
        ),
        answer="Done: payment {prev.payment_id} for invoice {prev.invoice_id} is {prev.state}.",
    ),
    Chain(
        id="shop.pay_latest_by_name", service="shop",
        steps=(ChainStep("get_customer_by_name", {"name": "{name}"}), *_PAY_LATEST),
        slots={"name": _NAMES + _FIRST_NAMES},
        requests=(
            "Process payment for {name}'s order.",
            "Charge {name} for their latest order.",
            "{name} called to pay for the most recent order. Please take the payment.",
            "Could you collect the balance due on {name}'s newest order?",
            "bill {name} for the last order pls",
            "Take payment from {name} for whatever they still owe on their latest order.",
            "Please settle {name}'s most recent invoice.",
        ),
        answer="Done: payment {prev.payment_id} for invoice {prev.invoice_id} is {prev.state}.",
    ),
    Chain(
        id="shop.latest_order_by_name", service="shop",
        steps=(ChainStep("get_customer_by_name", {"name": "{name}"}),
               ChainStep("get_latest_order", {"customer_id": "{prev.customer_id}"})),
        slots={"name": _NAMES + _FIRST_NAMES},
        requests=(
            "Has {name}'s latest order shipped?",
            "What did {name} order most recently?",
            "Show me the newest order from {name}.",
            "Can you check the status of {name}'s last order?",
            "whats in {name}'s most recent order",
            "I need the details of the latest order placed by {name}.",
        ),
        answer="{name}'s latest order is {prev.order_id}, currently {prev.fulfillment_state}.",
    ),
    Chain(
        id="shop.latest_order_by_email", service="shop",
        steps=(ChainStep("get_customer_by_email", {"email": "{email}"}),
               ChainStep("get_latest_order", {"customer_id": "{prev.customer_id}"})),
        slots={"email": _EMAILS},
        requests=(
            "What's the latest order for {email}?",
            "Look up the most recent order of the customer {email}.",
            "Did the last order from {email} ship yet?",
            "Show me {email}'s newest order and its total.",
            "pull up the latest order for {email}",
            "A customer ({email}) is asking about their last order. What is it?",
        ),
        answer="{email}'s latest order is {prev.order_id}, currently {prev.fulfillment_state}.",
    ),
    Chain(
        id="shop.payments_by_name", service="shop",
        steps=(ChainStep("get_customer_by_name", {"name": "{name}"}),
               ChainStep("list_payments", {"state": "{state}", "customer_id": "{prev.customer_id}"})),
        slots={"name": _NAMES, "state": _PAYMENT_STATES},
        slot_params={"state": "list_payments.state"},
        requests=(
            "Show me {name}'s {state} payments.",
            "List the {state} payments of {name}.",
            "Does {name} have any {state} payments?",
            "Which of {name}'s payments are {state}?",
            "get {state} payments for {name}",
            "I need every {state} payment made by {name}.",
        ),
        answer="{name} has {prev.count} {state} payment(s).",
    ),
    Chain(
        id="shop.orders_by_email", service="shop",
        steps=(ChainStep("get_customer_by_email", {"email": "{email}"}),
               ChainStep("get_orders", {"fulfillment_state": "{state}", "customer_id": "{prev.customer_id}"})),
        slots={"email": _EMAILS, "state": _ORDER_STATES},
        slot_params={"state": "get_orders.fulfillment_state"},
        requests=(
            "Show the {state} orders of {email}.",
            "Which orders of {email} are {state}?",
            "Does the customer {email} have any {state} orders?",
            "list {state} orders for {email}",
            "Find every {state} order placed by {email}.",
            "Can you pull up {email}'s {state} orders?",
        ),
        answer="{email} has {prev.count} {state} order(s).",
    ),
    Chain(
        id="shop.refund_last_payment", service="shop",
        steps=(ChainStep("get_customer_by_email", {"email": "{email}"}),
               ChainStep("list_payments", {"state": "completed", "customer_id": "{prev.customer_id}", "limit": 1}),
               ChainStep("refund_payment", {"payment_id": "{prev.payments[0].payment_id}"})),
        slots={"email": _EMAILS},
        requests=(
            "Refund the most recent completed payment of {email} in full.",
            "{email} wants their last payment back. Please refund it completely.",
            "Reverse the latest settled payment from {email}.",
            "Can you fully refund {email}'s newest completed payment?",
            "refund {email}'s last payment",
            "Give {email} a full refund of their most recent payment.",
        ),
        answer="Refunded payment {prev.payment_id}; it is now {prev.state}.",
    ),
]

CALENDAR = [
    Chain(
        id="calendar.book_free_slot", service="calendar",
        steps=(ChainStep("find_free_slot", {"date": "{date}", "duration_minutes": "{minutes}", "attendees": ["{attendee}"]}),
               ChainStep("create_event", {"title": "{title}", "start": "{prev.start}", "duration_minutes": "{minutes}",
                                          "attendees": ["{attendee}"]})),
        slots={"date": _WEEKDAYS, "minutes": (30, 45, 60), "attendee": _COLLEAGUES,
               "title": ("Sync", "Design review", "1:1", "Budget check-in", "Project kickoff")},
        requests=(
            'Find the first {minutes}-minute slot on {date} when {attendee} and I are free and book "{title}" there.',
            'Book a {minutes} minute "{title}" with {attendee} at the earliest free time on {date}.',
            'Schedule "{title}" with {attendee} on {date} for {minutes} minutes, whenever we are both free first.',
            'Can you put "{title}" ({minutes} min) on my calendar with {attendee} on {date}, at the first open slot?',
            'set up "{title}" w/ {attendee} on {date}, {minutes} mins, first free slot',
            'Please find a free {minutes} minutes on {date} for me and {attendee} and create the event "{title}".',
        ),
        answer='Booked "{prev.title}" at {prev.start} ({prev.event_id}).',
    ),
    Chain(
        id="calendar.cancel_first_event", service="calendar",
        steps=(ChainStep("list_events", {"date": "{date}"}),
               ChainStep("cancel_event", {"event_id": "{prev.events[0].event_id}"})),
        slots={"date": (*_WEEKDAYS, "2025-06-07")},
        requests=(
            "Cancel my first meeting on {date}.",
            "Please call off the earliest event I have on {date}.",
            "What's my first event on {date}? Cancel it.",
            "drop the first thing on my calendar for {date}",
            "I can't make my first appointment on {date}, please cancel it.",
            "Remove the earliest event scheduled for {date}.",
        ),
        answer='Cancelled "{prev.title}" ({prev.event_id}).',
    ),
]

FILES = [
    Chain(
        id="files.search_then_read", service="files",
        steps=(ChainStep("search_files", {"query": "{query}"}),
               ChainStep("read_file", {"path": "{prev.matches[0].path}"})),
        slots={"query": ("refund", "standup", "cents", "onboarding", "invoice", "Acme", "JPY", "runbook", "sales", "todo")},
        requests=(
            'Find the file that mentions "{query}" and show me its contents.',
            'Search the workspace for "{query}" and open the first file that matches.',
            'Which file talks about "{query}"? Read it to me.',
            'look for "{query}" in the files and open the first hit',
            'Open whichever file contains "{query}".',
            'I need the text of the document that mentions "{query}".',
        ),
    ),
    Chain(
        id="files.list_then_read", service="files",
        steps=(ChainStep("list_files", {"folder": "{folder}"}),
               ChainStep("read_file", {"path": "{prev.entries[0].path}"})),
        slots={"folder": ("/notes", "/reports", "/src", "/docs/api", "/docs/runbooks", "/docs")},
        requests=(
            "Open the first file in {folder}.",
            "What's in {folder}? Read me the first file there.",
            "List {folder} and show the contents of the first file.",
            "read the first file under {folder}",
            "Please show me the top file in the {folder} folder.",
            "Look inside {folder} and open the first document.",
        ),
    ),
]

# ---------------------------------------------------------------- code
# Names from the shipped project (tooltune/demo/code_project): each one occurs in the module it
# is listed under, so Glob → Read → Edit instances succeed on the live sandbox.
_RENAMES = {
    "money": ("parse_amount", "format_cents", "ZERO_DECIMAL", "CURRENCY_SYMBOLS"),
    "invoice": ("invoice_total", "balance_due", "add_line", "paid_cents"),
    "payments": ("record_payment", "refundable_cents", "settles_immediately", "PaymentError"),
    "report": ("monthly_summary", "billed_cents", "due_cents"),
}
_NEW_NAMES = ("renamed", "new_name", "updated_name", "legacy_name")


def _rename(module: str, olds: tuple[str, ...]) -> Chain:
    return Chain(
        id=f"code.rename_in_{module}", service="code",
        steps=(ChainStep("Glob", {"pattern": f"**/{module}.py"}),
               ChainStep("Read", {"file_path": "{prev.files[0]}"}),
               ChainStep("Edit", {"file_path": "{steps[1].file_path}", "old_string": "{old}", "new_string": "{new}",
                                  "replace_all": True})),
        slots={"old": olds, "new": _NEW_NAMES},
        requests=(
            f"Find {module}.py, read it, and rename {{old}} to {{new}} everywhere in that file.",
            f"Locate the {module} module and replace every {{old}} with {{new}} in it.",
            f"In {module}.py (wherever it is in the repo) change all occurrences of {{old}} to {{new}}.",
            f"find {module}.py and swap {{old}} for {{new}} throughout",
            f"Please open the {module}.py file and rename {{old}} to {{new}}, all of them.",
            f"Where's {module}.py? Look at it and then rename {{old}} -> {{new}} in the whole file.",
        ),
        answer="Replaced {prev.replacements} occurrence(s) in {prev.file_path}.",
    )


CODE = [
    *(_rename(module, olds) for module, olds in _RENAMES.items()),
    Chain(
        id="code.grep_then_read", service="code",
        steps=(ChainStep("Grep", {"pattern": "{name}"}),
               ChainStep("Read", {"file_path": "{prev.files[0]}"})),
        slots={"name": ("parse_amount", "PaymentError", "monthly_summary", "BankTransfer", "invoice_total",
                        "balance_due", "format_cents", "LineItem", "refundable_cents", "ZERO_DECIMAL", "CardPayment")},
        requests=(
            "Find the first file that mentions {name} and show it to me.",
            "Search the code for {name} and open the first file that has it.",
            "Which file uses {name}? Read the first one.",
            "grep for {name} and open the first hit",
            "Open whichever file first mentions {name}.",
            "I need to see the code around {name}: find a file that contains it and read it.",
        ),
    ),
    Chain(
        id="code.grep_definition_then_read", service="code",
        steps=(ChainStep("Grep", {"pattern": "{definition}", "output_mode": "content"}),
               ChainStep("Read", {"file_path": "{prev.matches[0].file_path}", "offset": "{prev.matches[0].line_number}",
                                  "limit": 20})),
        slots={"definition": ("def parse_amount", "def format_cents", "class Invoice", "class LineItem", "def record_payment",
                              "def refund", "class BankTransfer", "def monthly_summary", "class Money")},
        requests=(
            'Find "{definition}" and show me the 20 lines starting there.',
            'Where is "{definition}"? Show the code from that line on (20 lines).',
            'Look up the line with "{definition}" and read 20 lines from it.',
            'show me 20 lines of code starting at "{definition}"',
            'Search for "{definition}" and print the next 20 lines from the match.',
            'Jump to "{definition}" and read me twenty lines from there.',
        ),
    ),
    Chain(
        id="code.glob_then_read", service="code",
        steps=(ChainStep("Glob", {"pattern": "{pattern}"}),
               ChainStep("Read", {"file_path": "{prev.files[0]}"})),
        slots={"pattern": ("tests/test_*.py", "**/*.md", "src/ledger/*.py", "*.toml", "**/test_payments.py", "**/invoice.py")},
        requests=(
            "Find the files matching {pattern} and open the first one.",
            "Glob {pattern} and read the first match.",
            "List {pattern} and show me the first file.",
            "open the first file that matches {pattern}",
            "What's the first file under {pattern}? Read it.",
            "Show the contents of the first {pattern} file.",
        ),
    ),
]

CHAINS: list[Chain] = [*SHOP, *CALENDAR, *FILES, *CODE]
"""Every demo chain; :func:`tooltune.data.sequences.chains_for` keeps those a catalog can run."""
