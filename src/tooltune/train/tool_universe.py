"""The tool universe of the offline base model: a few hundred made-up tools across 40 domains.

``tool_universe(seed)`` returns a :class:`~tooltune.tools.catalog.ToolCatalog` built
combinatorially from the word lists below, so the same seed always gives the same catalog
(byte-identical ``catalog.to_dict()``):

- each domain (a ``service``: travel, banking, hr, iot, music …) declares its *nouns* (the
  objects its tools act on): an id prefix, *core* fields (what creating or searching one
  needs), *extra* fields (optional details), a status enum and the verbs that make sense for it;
- for every domain the seed picks 5–10 tools out of the noun × verb candidates plus the
  domain's hand-named tools (``add_track_to_playlist``), picks the verb's synonym for the name
  (``get_``/``fetch_``/``lookup_``, ``search_``/``find_``, ``delete_``/``remove_``), which extra
  fields become optional parameters, the wording of the description and a few parameter names
  (``limit`` or ``max_results``, ``note`` or ``comment``).

Parameters are typed the way real APIs type them, so the model learns the conventions and not
one catalog: ids with a described shape (``'flt_0042'``), enums, ``date``/``date-time``/``email``
formats, integers that carry their unit in the name (``price_cents``, ``duration_minutes``,
``nights``) and bounded integers. The argument sampler of :mod:`tooltune.data.sampling` draws
realistic values from names and descriptions, so ``*_cents`` amounts are phrased "$12.50".

The demo services' tools (``shop``, ``calendar``, ``files``, ``weather``) are deliberately absent,
and so are the shop's objects (payments, orders, customers): the demo fine-tunes on them as a
*new* domain. :data:`RESERVED_NAMES` lists the names; ``tool_universe`` checks it.

Field spec mini-language (one token, ``name:kind``; a leading ``?`` in a hand-named tool
marks an optional parameter): ``id``, ``str``, ``city``, ``email``, ``person``, ``phone``,
``url``, ``date``, ``datetime``, ``time``, ``cents``, ``count`` (unit in the name:
``duration_minutes``, ``nights``), ``int[a,b]``, ``num[a,b]``, ``bool``, ``enum(a|b|c)``,
``list[email]``, ``list[a|b|c]``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

from tooltune.errors import CatalogError
from tooltune.tools.catalog import Tool, ToolCatalog

RESERVED_NAMES = frozenset({
    # shop
    "create_payment", "refund_payment", "get_payment_status", "list_payments", "get_customer_by_email",
    "get_customer_by_name", "get_latest_order", "get_orders",
    # calendar, files, weather
    "create_event", "list_events", "cancel_event", "find_free_slot", "list_files", "read_file", "write_file",
    "search_files", "delete_file", "get_current_weather", "get_forecast", "get_air_quality",
})
"""Demo tool names the universe never uses: the demo's fine-tuning must meet them as new."""
RESERVED_NOUNS = ("payment", "order", "customer", "invoice")
"""The shop's objects; no universe tool name contains them."""

TOOLS_PER_DOMAIN = (5, 10)

VERB_NAMES = {
    "get": ["get", "get", "fetch", "lookup"], "list": ["list"], "search": ["search", "search", "find"],
    "create": ["create", "create", "add"], "book": ["book"], "schedule": ["schedule", "book"],
    "update": ["update"], "cancel": ["cancel"], "delete": ["delete", "remove"], "send": ["send"],
    "start": ["start"], "stop": ["stop"], "download": ["download"], "upload": ["upload"], "add": ["add"],
}
"""Verb kind → name verbs the seed picks from (all in the phrasing generator's verb table)."""

_DESCRIPTIONS = {
    "get": ["Get one {noun} by its ID.", "Look up a {noun} by ID and return its details.", "Return the details of a {noun}."],
    "list": ["List {plural}, newest first.", "List {plural} matching the given filters.", "Return {plural}, optionally filtered."],
    "search": ["Search {plural} by {core}.", "Find {plural} that match {core}.", "Search for {plural}."],
    "create": ["Create a {noun}.", "Create a new {noun} and return it.", "Add a {noun}."],
    "book": ["Book a {noun}.", "Book a {noun} and return the confirmation."],
    "schedule": ["Schedule a {noun}.", "Book a {noun} for a given time."],
    "update": ["Update a {noun}; only the given fields change.", "Change details of an existing {noun}."],
    "cancel": ["Cancel a {noun}.", "Cancel an existing {noun}; this cannot be undone."],
    "delete": ["Delete a {noun} permanently.", "Remove a {noun}."],
    "send": ["Send a {noun}.", "Send a {noun} to its recipients."],
    "start": ["Start a {noun}.", "Start the given {noun}."],
    "stop": ["Stop a {noun}.", "Stop the given {noun}."],
    "download": ["Download a {noun} as a file.", "Export a {noun} as a file."],
    "upload": ["Upload a {noun}.", "Upload a new {noun}."],
    "add": ["Add a {noun}.", "Record a new {noun}."],
}


@dataclass(frozen=True)
class Noun:
    name: str
    prefix: str
    core: tuple[str, ...]
    extra: tuple[str, ...]
    status: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    plural: str = ""

    @property
    def plural_name(self) -> str:
        return self.plural or (self.name[:-1] + "ies" if self.name.endswith("y") and self.name[-2] not in "aeiou"
                               else self.name + ("es" if self.name.endswith(("s", "x", "ch", "sh")) else "s"))


@dataclass(frozen=True)
class Custom:
    """A hand-named tool: its name, description and parameter specs (``?`` = optional)."""

    name: str
    description: str
    params: tuple[str, ...]


@dataclass(frozen=True)
class Domain:
    service: str
    nouns: tuple[Noun, ...]
    customs: tuple[Custom, ...] = field(default_factory=tuple)


def N(name: str, prefix: str, core: str, extra: str = "", status: str = "", verbs: str = "get list create update cancel",
      plural: str = "") -> Noun:
    return Noun(name, prefix, tuple(core.split()), tuple(extra.split()), tuple(status.split("|")) if status else (),
                tuple(verbs.split()), plural)


def C(name: str, description: str, params: str) -> Custom:
    return Custom(name, description, tuple(params.split()))


DOMAINS: tuple[Domain, ...] = (
    Domain("travel", (
        N("flight", "flt", "origin_city:city destination_city:city departure_date:date",
          "return_date:date cabin_class:enum(economy|premium_economy|business|first) passengers:int[1,9] "
          "max_price_cents:cents nonstop_only:bool", "scheduled|delayed|cancelled|landed", "search get book cancel"),
        N("hotel_room", "htl", "city:city check_in_date:date nights:count",
          "guests:int[1,6] room_type:enum(single|double|suite) max_price_cents:cents breakfast_included:bool",
          "reserved|checked_in|cancelled", "search book cancel get"),
        N("trip", "trp", "title:str start_date:date", "end_date:date notes:str traveler_email:email",
          "planned|ongoing|completed", "list get update create delete"),
    )),
    Domain("car_rental", (
        N("rental_car", "car", "pickup_city:city pickup_date:date rental_days:count",
          "car_class:enum(compact|midsize|suv|van|luxury) driver_age:int[18,99] automatic_only:bool",
          "available|reserved|returned", "search book get cancel"),
        N("rental_agreement", "rag", "rental_car_id:id driver_name:person",
          "extra_driver:bool insurance:enum(none|basic|full) return_city:city", "open|closed|overdue",
          "get list update"),
    ), (C("extend_rental", "Extend a car rental by some days.", "rental_agreement_id:id extra_days:count ?note:str"),)),
    Domain("banking", (
        N("bank_account", "acc", "account_type:enum(checking|savings|business) holder_name:person",
          "currency:enum(USD|EUR|GBP) overdraft_enabled:bool", "open|frozen|closed", "get list create update"),
        N("transfer", "trf", "from_account_id:id to_account_id:id amount_cents:cents",
          "reference:str scheduled_date:date transfer_speed:enum(standard|instant)", "pending|completed|failed|cancelled",
          "create get list cancel"),
        N("debit_card", "crd", "bank_account_id:id", "daily_limit_cents:cents contactless:bool",
          "active|frozen|expired", "get list update cancel"),
    ), (C("get_account_balance", "Get the current balance of a bank account.", "bank_account_id:id ?as_of_date:date"),)),
    Domain("hr", (
        N("employee", "emp", "full_name:person department:enum(engineering|sales|finance|marketing|support|legal)",
          "work_email:email start_date:date manager_id:id job_level:int[1,8] remote:bool", "active|on_leave|terminated",
          "get search update create"),
        N("leave_request", "lvr", "employee_id:id start_date:date end_date:date",
          "leave_type:enum(vacation|sick|parental|unpaid) half_day:bool reason:str", "pending|approved|rejected",
          "create list cancel get"),
        N("job_posting", "job", "title:str department:enum(engineering|sales|finance|marketing|support|legal)",
          "location:str salary_max_cents:cents employment_type:enum(full_time|part_time|contract)",
          "draft|open|closed", "create list update delete"),
    )),
    Domain("smart_home", (
        N("device", "dev", "room:enum(kitchen|bedroom|living_room|office|garage|bathroom)",
          "device_type:enum(light|plug|speaker|camera|lock|fan)", "online|offline|updating", "list get start@id stop update"),
        N("automation_rule", "rul", "title:str trigger_time:time",
          "device_id:id action:enum(turn_on|turn_off|dim|lock|unlock) weekdays_only:bool", "enabled|disabled",
          "create list delete update"),
    ), (C("set_thermostat", "Set a thermostat's target temperature.",
          "device_id:id target_temperature_celsius:int[10,30] ?mode:enum(heat|cool|auto|eco) ?hold_hours:count"),
        C("set_light_brightness", "Set the brightness of a light.", "device_id:id brightness_percent:int[0,100] ?transition_seconds:count"))),
    Domain("music", (
        N("playlist", "pls", "title:str", "description:str public:bool collaborative:bool", "",
          "create get update delete list"),
        N("track", "trk", "query:str", "genre:enum(rock|pop|jazz|classical|hiphop|electronic|folk) release_year:int[1950,2025] "
          "explicit_allowed:bool", "", "search get"),
    ), (C("add_track_to_playlist", "Add a track to a playlist.", "playlist_id:id track_id:id ?position:int[1,500]"),
        C("start_playback", "Start playing a track or playlist on a device.",
          "track_id:id ?device_name:enum(phone|speaker|car|tv) ?shuffle:bool ?volume_percent:int[0,100]"))),
    Domain("recipes", (
        N("recipe", "rcp", "query:str", "cuisine:enum(italian|mexican|indian|japanese|french|thai|greek) "
          "max_prep_minutes:count diet:enum(none|vegetarian|vegan|gluten_free|keto) servings:int[1,12]", "",
          "search get create"),
        N("meal_plan", "mpl", "start_date:date days:count", "diet:enum(none|vegetarian|vegan|gluten_free|keto) "
          "calories_per_day:int[1200,4000] servings:int[1,12]", "draft|active|archived", "create get update delete"),
        N("grocery_item", "gro", "item:str quantity:int[1,20]", "unit:enum(piece|gram|kilogram|liter|pack) note:str",
          "", "add list delete"),
    )),
    Domain("logistics", (
        N("shipment", "shp", "origin_city:city destination_city:city weight_grams:int[50,30000]",
          "service_level:enum(economy|standard|express|overnight) insured_value_cents:cents signature_required:bool "
          "pickup_date:date", "created|in_transit|delivered|returned|cancelled", "create get list cancel"),
        N("delivery_slot", "dsl", "postal_code:str date:date", "window:enum(morning|afternoon|evening)", "",
          "list book"),
    ), (C("track_parcel", "Track a parcel by its tracking number.", "tracking_number:id ?carrier:enum(ups|fedex|dhl|usps)"),
        C("get_shipping_quote", "Get a shipping price quote.",
          "origin_city:city destination_city:city weight_grams:int[50,30000] ?service_level:enum(economy|standard|express|overnight)"))),
    Domain("crm", (
        N("lead", "led", "full_name:person company:str", "email:email phone:str source:enum(web|referral|event|ads|cold_call) "
          "score:int[0,100]", "new|contacted|qualified|lost", "create list update get"),
        N("deal", "dea", "title:str value_cents:cents", "lead_id:id close_date:date "
          "stage:enum(prospecting|proposal|negotiation|won|lost) probability_percent:int[0,100]", "", "create update get list"),
    ), (C("add_deal_note", "Add a note to a deal.", "deal_id:id note:str ?pinned:bool"),)),
    Domain("support", (
        N("ticket", "tkt", "subject:str description:str", "priority:enum(low|normal|high|urgent) requester_email:email "
          "category:enum(billing|technical|account|other) assignee_id:id", "open|pending|solved|closed",
          "create get update list"),
    ), (C("add_ticket_comment", "Add a comment to a support ticket.", "ticket_id:id comment:str ?internal:bool"),
        C("escalate_ticket", "Escalate a ticket to the next support tier.", "ticket_id:id reason:str ?notify_manager:bool"))),
    Domain("fitness", (
        N("workout", "wkt", "activity:enum(running|cycling|swimming|yoga|strength|rowing) duration_minutes:count",
          "distance_km:int[1,200] calories:int[50,3000] workout_date:date", "", "add list get delete"),
        N("fitness_goal", "gol", "goal_type:enum(steps|distance|weight|workouts) target_value:int[1,100000]",
          "deadline:date reminder:bool", "active|achieved|abandoned", "create get update delete"),
    ), (C("get_step_count", "Get the step count for a day.", "date:date ?device_id:id"),)),
    Domain("healthcare", (
        N("appointment", "apt", "doctor_id:id appointment_time:datetime",
          "visit_type:enum(in_person|video|phone) reason:str duration_minutes:count", "booked|completed|cancelled|no_show",
          "book cancel list get"),
        N("prescription", "rx", "patient_id:id", "medication:str refills_left:int[0,12]", "active|expired|cancelled",
          "get list"),
        N("doctor", "doc", "specialty:enum(cardiology|dermatology|pediatrics|neurology|general_practice|orthopedics)",
          "city:city accepts_new_patients:bool language:enum(en|es|fr|de|zh)", "", "search get"),
    ), (C("request_prescription_refill", "Request a refill of a prescription.", "prescription_id:id ?pharmacy_id:id ?urgent:bool"),)),
    Domain("education", (
        N("course", "crs", "query:str", "level:enum(beginner|intermediate|advanced) language:enum(en|es|fr|de) "
          "max_price_cents:cents self_paced:bool", "", "search get"),
        N("enrollment", "enr", "course_id:id student_email:email", "start_date:date audit_only:bool",
          "active|completed|withdrawn", "create cancel list get"),
        N("assignment", "asg", "course_id:id", "due_date:date status_filter:enum(open|submitted|graded)", "",
          "list get"),
    ), (C("submit_assignment", "Submit an assignment for grading.", "assignment_id:id answer_url:url ?comment:str"),)),
    Domain("real_estate", (
        N("property_listing", "lst", "city:city listing_type:enum(sale|rent)",
          "min_bedrooms:int[0,8] max_price_cents:cents pets_allowed:bool property_type:enum(apartment|house|studio|loft)",
          "active|under_offer|sold", "search get"),
        N("viewing", "vwg", "property_listing_id:id viewing_time:datetime", "attendee_email:email virtual:bool",
          "scheduled|done|cancelled", "schedule cancel list"),
        N("purchase_offer", "ofr", "property_listing_id:id offer_cents:cents", "expiry_date:date conditional:bool",
          "submitted|accepted|rejected|withdrawn", "create get cancel"),
    )),
    Domain("restaurants", (
        N("table", "tbl", "restaurant_id:id reservation_time:datetime party_size:int[1,20]",
          "seating:enum(indoor|outdoor|bar|private_room) special_request:str", "confirmed|seated|cancelled",
          "book cancel get"),
        N("restaurant", "rst", "city:city", "cuisine:enum(italian|mexican|indian|japanese|french|thai|greek) "
          "price_level:int[1,4] open_now:bool min_rating:int[1,5]", "", "search get"),
        N("menu_item", "mnu", "restaurant_id:id", "diet:enum(none|vegetarian|vegan|gluten_free) max_price_cents:cents",
          "", "list"),
    )),
    Domain("food_delivery", (
        N("delivery", "dlv", "restaurant_id:id delivery_address:str", "tip_cents:cents "
          "contactless:bool scheduled_time:datetime", "placed|preparing|on_the_way|delivered|cancelled",
          "create get cancel list"),
        N("promo_code", "prm", "code:str", "", "valid|expired|used", "get"),
    ), (C("rate_delivery", "Rate a finished delivery.", "delivery_id:id stars:int[1,5] ?comment:str"),)),
    Domain("rides", (
        N("ride", "rid", "pickup_address:str dropoff_address:str", "ride_type:enum(standard|xl|comfort|green|pool) "
          "pickup_time:datetime passengers:int[1,6]", "requested|accepted|arrived|completed|cancelled",
          "book get cancel list"),
    ), (C("get_fare_estimate", "Estimate the fare of a ride.",
          "pickup_address:str dropoff_address:str ?ride_type:enum(standard|xl|comfort|green|pool)"),
        C("tip_driver", "Tip the driver of a completed ride.", "ride_id:id tip_cents:cents"))),
    Domain("parking", (
        N("parking_spot", "pks", "city:city arrival_time:datetime duration_hours:count",
          "covered:bool ev_charging:bool max_price_cents:cents", "free|reserved|occupied", "search book"),
        N("parking_session", "pss", "zone_code:str license_plate:str", "duration_minutes:count",
          "active|ended", "start stop get list"),
    )),
    Domain("library", (
        N("book", "bk", "query:str", "author:person format:enum(print|ebook|audiobook) available_only:bool "
          "published_after:int[1900,2025]", "", "search get"),
        N("book_loan", "lon", "book_id:id member_id:id", "loan_days:count", "active|returned|overdue",
          "create list get"),
        N("book_hold", "hld", "book_id:id member_id:id", "pickup_branch:enum(central|north|east|harbor) notify_email:email",
          "waiting|ready|expired", "create cancel list"),
    ), (C("renew_book_loan", "Renew a library loan for more days.", "book_loan_id:id ?extra_days:count"),)),
    Domain("cinema", (
        N("showtime", "shw", "movie_title:str city:city", "date:date format:enum(standard|imax|three_d) language:enum(en|es|fr)",
          "", "list search"),
        N("movie_ticket", "mtk", "showtime_id:id seats:int[1,10]", "seat_zone:enum(front|middle|back|premium) "
          "student_discount:bool", "booked|used|refunded", "book cancel get"),
    )),
    Domain("gaming", (
        N("match", "mch", "game_mode:enum(ranked|casual|arena|coop)", "region:enum(eu|na|asia|sa|oce) "
          "party_size:int[1,5] skill_min:int[0,5000]", "queued|live|finished", "search get"),
        N("player_profile", "plr", "username:str", "display_title:str privacy:enum(public|friends|private)", "",
          "get update"),
        N("tournament", "trn", "title:str start_time:datetime", "max_teams:int[2,128] entry_fee_cents:cents",
          "upcoming|running|finished", "create list get cancel"),
    ), (C("get_leaderboard", "Get the top players of a leaderboard.",
          "game_mode:enum(ranked|casual|arena|coop) ?region:enum(eu|na|asia|sa|oce) ?limit:int[1,100]"),)),
    Domain("social", (
        N("post", "pst", "text:str", "visibility:enum(public|followers|private) image_url:url scheduled_at:datetime",
          "published|scheduled|deleted", "create delete list get"),
        N("comment", "cmt", "post_id:id text:str", "reply_to_id:id", "", "add delete list"),
    ), (C("follow_account", "Follow another account.", "username:str ?notifications:bool"),)),
    Domain("messaging", (
        N("message", "msg", "channel_id:id text:str", "urgent:bool thread_id:id", "", "send list delete"),
        N("channel", "chn", "title:str", "private:bool topic:str members:list[email]", "active|archived",
          "create list get update"),
    ), (C("set_user_status", "Set your chat status.", "status:enum(available|busy|away|offline) ?status_text:str ?clear_after_minutes:count"),)),
    Domain("projects", (
        N("task", "tsk", "project_id:id title:str", "assignee_email:email due_date:date priority:enum(low|normal|high|urgent) "
          "estimate_hours:count", "todo|in_progress|blocked|done", "create update list delete get"),
        N("project", "prj", "title:str", "owner_email:email deadline:date budget_cents:cents", "active|paused|archived",
          "create get list update"),
        N("sprint", "spr", "project_id:id", "length_days:count goal:str", "planned|active|closed", "start get"),
    )),
    Domain("devops", (
        N("deployment", "dep", "service:str environment:enum(dev|staging|production)", "version:str canary_percent:int[0,100] "
          "dry_run:bool", "running|succeeded|failed|rolled_back", "create get cancel list"),
        N("build", "bld", "repository:str branch:str", "run_tests:bool", "queued|running|passed|failed", "start get list"),
        N("incident", "inc", "title:str severity:enum(sev1|sev2|sev3|sev4)", "service:str assignee_email:email",
          "open|mitigated|resolved", "create update list get"),
    ), (C("rollback_deployment", "Roll a service back to its previous version.",
          "deployment_id:id ?reason:str ?notify:bool"),)),
    Domain("cloud", (
        N("server", "srv", "region:enum(us_east|us_west|eu_central|ap_south) machine_size:enum(small|medium|large|xlarge)",
          "disk_gb:int[10,2000] image:enum(ubuntu|debian|windows|alpine) public_ip:bool", "running|stopped|terminated",
          "create start@id stop delete list get"),
        N("storage_bucket", "bkt", "bucket_label:str region:enum(us_east|us_west|eu_central|ap_south)",
          "versioning:bool retention_days:count", "", "create list delete"),
        N("snapshot", "snp", "server_id:id", "note:str keep_days:count", "pending|ready|deleted", "create list delete"),
    )),
    Domain("security", (
        N("security_alert", "alr", "severity:enum(low|medium|high|critical)", "since_date:date source:enum(firewall|endpoint|email|cloud)",
          "new|investigating|closed", "list get update"),
        N("access_key", "key", "user_id:id", "expires_in_days:count scope:enum(read|write|admin)", "active|revoked",
          "create delete list"),
    ), (C("search_audit_log", "Search the audit log.", "query:str ?user_id:id ?from_date:date ?to_date:date ?limit:int[1,500]"),
        C("reset_user_password", "Send a user a password reset link.", "user_id:id ?force_logout:bool"))),
    Domain("insurance", (
        N("claim", "clm", "policy_id:id incident_date:date description:str",
          "estimated_loss_cents:cents police_report:bool", "submitted|in_review|approved|denied", "create get update list"),
        N("insurance_policy", "pol", "holder_name:person", "policy_type:enum(auto|home|travel|health|pet)",
          "active|lapsed|cancelled", "get list cancel"),
    ), (C("get_insurance_quote", "Get a price quote for a new policy.",
          "policy_type:enum(auto|home|travel|health|pet) coverage_cents:cents ?deductible_cents:cents ?start_date:date"),)),
    Domain("energy", (
        N("meter_reading", "mtr", "meter_id:id reading_kwh:int[0,99999]", "reading_date:date photo_url:url", "",
          "add list"),
        N("tariff", "trf", "postal_code:str", "green_only:bool contract_months:int[1,36]", "", "list get"),
    ), (C("download_usage_report", "Download an energy usage report.",
          "meter_id:id from_date:date to_date:date ?file_format:enum(pdf|csv|xlsx)"),)),
    Domain("pets", (
        N("pet", "pet", "pet_name:str species:enum(dog|cat|rabbit|bird|hamster)", "birth_date:date weight_grams:int[50,90000] "
          "microchipped:bool", "", "add get update"),
        N("vet_visit", "vet", "pet_id:id visit_time:datetime", "reason:str clinic:enum(downtown|riverside|hillside)",
          "booked|done|cancelled", "schedule cancel list"),
    ), (C("log_pet_feeding", "Record a feeding for a pet.", "pet_id:id food_grams:int[5,2000] ?fed_at:datetime"),)),
    Domain("gardening", (
        N("plant", "plt", "species:str location:enum(indoor|balcony|garden|greenhouse)", "planted_date:date sun:enum(full|partial|shade)",
          "", "add list get delete"),
        N("watering_schedule", "wat", "plant_id:id every_days:count", "amount_ml:int[50,5000] start_date:date",
          "active|paused", "create update delete"),
    )),
    Domain("news", (
        N("article", "art", "query:str", "topic:enum(politics|business|tech|science|sports|culture) "
          "from_date:date source_language:enum(en|es|fr|de) limit:int[1,50]", "", "search get"),
        N("news_subscription", "sub", "topic:enum(politics|business|tech|science|sports|culture) delivery_email:email",
          "frequency:enum(daily|weekly|breaking)", "active|paused|cancelled", "create cancel list"),
    )),
    Domain("podcasts", (
        N("episode", "epi", "query:str", "podcast_id:id max_duration_minutes:count published_after:date", "",
          "search get download"),
        N("queue_item", "que", "episode_id:id", "play_next:bool", "", "add delete list"),
    ), (C("set_playback_speed", "Set the podcast playback speed.", "speed_percent:int[50,300] ?skip_silence:bool"),)),
    Domain("photos", (
        N("album", "alb", "title:str", "shared_with:list[email] cover_photo_id:id", "", "create list delete get"),
        N("photo", "pho", "album_id:id", "taken_after:date taken_before:date place:str favorites_only:bool",
          "", "search upload delete"),
    )),
    Domain("stocks", (
        N("watchlist", "wl", "title:str", "symbols:list[AAPL|MSFT|GOOG|AMZN|NVDA|TSLA|META|NFLX]", "",
          "create get delete"),
        N("trade", "trd", "symbol:enum(AAPL|MSFT|GOOG|AMZN|NVDA|TSLA|META|NFLX) shares:int[1,1000] side:enum(buy|sell)",
          "limit_price_cents:cents time_in_force:enum(day|gtc|ioc)", "open|filled|cancelled", "create cancel list get"),
    ), (C("get_stock_quote", "Get the latest quote for a stock.", "symbol:enum(AAPL|MSFT|GOOG|AMZN|NVDA|TSLA|META|NFLX) ?extended_hours:bool"),)),
    Domain("currency", (), (
        C("convert_currency", "Convert an amount from one currency to another.",
          "amount_cents:cents from_currency:enum(USD|EUR|GBP|JPY|CHF|CAD) to_currency:enum(USD|EUR|GBP|JPY|CHF|CAD)"),
        C("get_exchange_rate", "Get the exchange rate between two currencies.",
          "base_currency:enum(USD|EUR|GBP|JPY|CHF|CAD) quote_currency:enum(USD|EUR|GBP|JPY|CHF|CAD) ?date:date"),
        C("list_exchange_rates", "List exchange rates for a base currency.", "base_currency:enum(USD|EUR|GBP|JPY|CHF|CAD) ?date:date"),
        C("set_rate_alert", "Alert me when an exchange rate crosses a threshold.",
          "base_currency:enum(USD|EUR|GBP|JPY|CHF|CAD) quote_currency:enum(USD|EUR|GBP|JPY|CHF|CAD) "
          "threshold_basis_points:int[1,100000] ?alert_email:email"),
        C("get_currency_history", "Get daily rates of a currency pair.",
          "base_currency:enum(USD|EUR|GBP|JPY|CHF|CAD) quote_currency:enum(USD|EUR|GBP|JPY|CHF|CAD) from_date:date ?to_date:date"),
    )),
    Domain("charity", (
        N("donation", "don", "campaign_id:id amount_cents:cents", "anonymous:bool monthly:bool dedication:str",
          "pledged|received|refunded", "create get list cancel"),
        N("fundraiser", "fnd", "query:str", "cause:enum(health|education|environment|animals|disaster_relief) city:city",
          "", "search get"),
    )),
    Domain("sports", (
        N("game", "gam", "team_id:id", "season:int[2000,2025] home_only:bool", "scheduled|live|final", "list get"),
        N("team", "tem", "query:str", "league:enum(nba|nfl|mlb|nhl|mls|epl)", "", "search get"),
    ), (C("get_league_standings", "Get the standings table of a league.",
          "league:enum(nba|nfl|mlb|nhl|mls|epl) ?season:int[2000,2025] ?conference:enum(east|west)"),
        C("get_player_stats", "Get a player's season statistics.", "player_id:id ?season:int[2000,2025]"))),
    Domain("car_service", (
        N("vehicle", "veh", "license_plate:str make:enum(toyota|ford|honda|bmw|tesla|kia|volkswagen)",
          "model_year:int[1990,2025] mileage_km:int[0,500000]", "", "add get update"),
        N("service_appointment", "sap", "vehicle_id:id appointment_time:datetime",
          "service_type:enum(oil_change|tire_rotation|inspection|brake_check|battery) loaner_car:bool", "booked|done|cancelled",
          "book cancel list get"),
    )),
    Domain("home_services", (
        N("cleaning_visit", "cln", "address:str visit_time:datetime duration_hours:count",
          "deep_clean:bool pets_at_home:bool notes:str", "booked|done|cancelled", "book cancel get list"),
        N("repair_request", "rep", "address:str problem:enum(plumbing|electrical|heating|appliance|locksmith)",
          "description:str urgent:bool preferred_date:date", "open|scheduled|fixed|cancelled", "create get cancel update"),
    )),
    Domain("legal", (
        N("contract", "ctr", "title:str counterparty:str", "value_cents:cents effective_date:date "
          "contract_type:enum(nda|msa|sow|lease|employment)", "draft|sent|signed|expired", "create get list send@id"),
        N("signature_request", "sig", "contract_id:id signer_email:email", "message:str expires_in_days:count",
          "sent|signed|declined|expired", "send cancel get"),
    )),
    Domain("marketing", (
        N("email_campaign", "cmp", "title:str audience:enum(all|customers_us|newsletter|inactive|vip)",
          "send_time:datetime subject_line:str ab_test:bool", "draft|scheduled|sending|sent", "create start@id stop get"),
        N("newsletter", "nws", "subject:str", "send_time:datetime include_unsubscribed:bool", "draft|sent",
          "send list delete"),
    ), (C("get_campaign_stats", "Get open and click rates of a campaign.", "email_campaign_id:id ?breakdown:enum(day|device|country)"),)),
    Domain("surveys", (
        N("survey", "srv", "title:str", "anonymous:bool closes_on:date max_responses:int[1,100000]", "open|closed",
          "create get list delete"),
        N("survey_response", "rsp", "survey_id:id", "since_date:date complete_only:bool", "", "list download"),
    )),
    Domain("jobs", (
        N("job_listing", "jbl", "query:str", "city:city remote:bool min_salary_cents:cents "
          "seniority:enum(junior|mid|senior|lead)", "", "search get"),
        N("job_application", "app", "job_listing_id:id applicant_email:email", "cover_letter:str resume_url:url",
          "submitted|interviewing|offered|rejected|withdrawn", "create list get cancel"),
    )),
    Domain("inventory", (
        N("stock_item", "itm", "sku:str", "warehouse:enum(north|south|east|west) low_stock_only:bool", "",
          "get list update"),
        N("restock_request", "rsr", "sku:str quantity:int[1,10000]", "warehouse:enum(north|south|east|west) needed_by:date",
          "open|approved|received", "create get cancel list"),
    ), (C("transfer_stock", "Move stock between warehouses.",
          "sku:str quantity:int[1,10000] from_warehouse:enum(north|south|east|west) to_warehouse:enum(north|south|east|west)"),)),
    Domain("expenses", (
        N("expense", "exp", "amount_cents:cents category:enum(travel|meals|office|software|training) expense_date:date",
          "merchant:str receipt_url:url billable:bool", "draft|submitted|approved|reimbursed", "add get list update delete"),
        N("expense_report", "xrp", "title:str", "period_start:date period_end:date approver_email:email",
          "open|submitted|approved|paid", "create get send list"),
    )),
    Domain("notes", (
        N("note", "nte", "title:str", "content:str tags:list[work|personal|ideas|todo|travel] pinned:bool", "",
          "create get update delete search"),
        N("notebook", "nbk", "title:str", "color:enum(red|blue|green|yellow|gray)", "", "create list delete"),
    )),
    Domain("tours", (
        N("tour", "tur", "city:city", "date:date theme:enum(history|food|art|nature|nightlife) max_price_cents:cents "
          "language:enum(en|es|fr|de|it)", "", "search get"),
        N("tour_booking", "tbk", "tour_id:id participants:int[1,20]", "contact_email:email pickup_hotel:str",
          "confirmed|completed|cancelled", "book cancel get"),
    )),
    Domain("salon", (
        N("salon_appointment", "sal", "stylist_id:id appointment_time:datetime",
          "service:enum(haircut|color|manicure|massage|facial) duration_minutes:count", "booked|done|cancelled",
          "book cancel list get"),
        N("stylist", "sty", "city:city", "service:enum(haircut|color|manicure|massage|facial) min_rating:int[1,5]", "",
          "search get"),
    )),
)


# ---------------------------------------------------------------- building


def tool_universe(seed: int = 0) -> ToolCatalog:
    """The seeded tool universe (see the module docstring); same seed, same catalog."""
    tools: list[Tool] = []
    for domain in DOMAINS:
        prefixes = {noun.name: noun.prefix for noun in domain.nouns}
        rng = random.Random(f"{seed}/universe/{domain.service}")
        candidates: list[tuple[Noun, str] | Custom] = [(noun, verb) for noun in domain.nouns for verb in noun.verbs]
        candidates += list(domain.customs)
        low, high = TOOLS_PER_DOMAIN
        k = min(len(candidates), rng.randint(low, high))
        picked = sorted(rng.sample(range(len(candidates)), k))
        for i in picked:
            c = candidates[i]
            if isinstance(c, Custom):
                tool = _custom(c, domain.service, prefixes)
            else:
                tool = _noun_tool(c[0], c[1], domain.service, prefixes, rng)
            tools.append(tool)
    catalog = ToolCatalog(tools=tools)  # checks that names are unique
    bad = [t.name for t in catalog if t.name in RESERVED_NAMES or any(n in t.name for n in RESERVED_NOUNS)]
    if bad:
        raise CatalogError(f"tool universe: {', '.join(bad)} collide with the demo services' tools; rename them in DOMAINS.")
    return catalog


def _noun_tool(noun: Noun, kind: str, service: str, prefixes: dict[str, str], rng: random.Random) -> Tool:
    by_id = kind.endswith("@id")  # "start@id": act on an existing one, named by its id
    kind = kind.removesuffix("@id")
    verb = rng.choice(VERB_NAMES[kind])
    plural = kind in ("list", "search")
    name = f"{verb}_{noun.plural_name if plural else noun.name}"
    core = noun.core
    extra = list(noun.extra)
    id_spec = f"{noun.name}_id:id"
    required: list[str]
    optional: list[str] = []
    if by_id or kind in ("get", "cancel", "delete", "download", "stop"):
        required = [id_spec]
        if kind in ("cancel", "delete"):
            optional = [s for s, p in ((rng.choice(["reason:str", "note:str"]), 0.6), ("notify:bool", 0.5)) if rng.random() < p]
        elif kind == "download":
            optional = ["file_format:enum(pdf|csv|json)"]
    elif kind == "list":
        required = [s for s in core if s.endswith(":id")][:1]  # the parent (project_id …) when there is one
        filters = [s for s in [*core, *extra] if s not in required and _filterable(s)]
        optional = rng.sample(filters, min(len(filters), rng.randint(1, 2)))
        if noun.status:
            optional.insert(0, f"status:enum({'|'.join(noun.status)})")
        optional.append(rng.choice(["limit:int[1,100]", "max_results:int[1,100]"]))
    elif kind == "search":
        required = list(core[: rng.randint(1, min(2, len(core)))])
        rest = [s for s in [*core, *extra] if s not in required]
        optional = rng.sample(rest, min(len(rest), rng.randint(1, 3)))
        if rng.random() < 0.6:
            optional.append(rng.choice(["limit:int[1,100]", "max_results:int[1,50]"]))
    elif kind == "update":
        required = [id_spec]
        fields = [s for s in [*core, *extra] if not s.endswith(":id")]
        optional = rng.sample(fields, min(len(fields), rng.randint(2, 4)))
        if noun.status:
            optional.append(f"status:enum({'|'.join(noun.status)})")
    else:  # create, book, schedule, send, start, add, upload: make or act on a new one
        required = list(core)
        optional = rng.sample(extra, min(len(extra), rng.randint(1, 3)))
        if kind == "upload":
            required.append("file_url:url")
    description = rng.choice(_DESCRIPTIONS[kind]).format(
        noun=noun.name.replace("_", " "), plural=noun.plural_name.replace("_", " "),
        core=" and ".join(_label(s) for s in (required or core)[:2]))
    return _tool(name, description, service, prefixes, required, optional)


def _filterable(spec: str) -> bool:
    kind = spec.split(":", 1)[1]
    return kind.startswith(("enum", "bool", "date", "int")) or kind in ("city", "cents")


def _custom(custom: Custom, service: str, prefixes: dict[str, str]) -> Tool:
    required = [p for p in custom.params if not p.startswith("?")]
    optional = [p[1:] for p in custom.params if p.startswith("?")]
    return _tool(custom.name, custom.description, service, prefixes, required, optional)


def _tool(name: str, description: str, service: str, prefixes: dict[str, str], required: list[str],
          optional: list[str]) -> Tool:
    properties: dict[str, Any] = {}
    for spec in [*required, *optional]:
        pname, kind = spec.split(":", 1)
        if pname not in properties:
            properties[pname] = _schema(pname, kind, prefixes)
    params = {"type": "object", "properties": properties, "required": [s.split(":", 1)[0] for s in required]}
    return Tool(name=name, description=description, parameters=params, service=service, source="tooltune:universe")


def _label(spec: str) -> str:
    name = spec.split(":", 1)[0]
    return name.removesuffix("_id").replace("_", " ")


def _schema(name: str, kind: str, prefixes: dict[str, str]) -> dict[str, Any]:
    """JSON Schema (with a one-line description) for one ``name:kind`` field; an id of one of
    the domain's nouns is shaped with that noun's prefix (``flt_0042``), others by consonants."""
    label = name.replace("_", " ")
    sentence = label[0].upper() + label[1:]
    if kind == "id":
        stem = name.removesuffix("_id")
        base = re.sub(r"^(from|to)_", "", stem)  # from_account_id: an id of the domain's bank_account
        own = prefixes.get(stem) or next((p for n, p in prefixes.items() if n.endswith(base)), None)
        pre = own or re.sub(r"[aeiou_]", "", stem)[:3] or stem[:3]
        digits = f"{(sum(map(ord, name)) % 97) + 1:04d}"
        if name == "tracking_number":
            return {"type": "string", "description": "Carrier tracking number, e.g. '1Z84020312'."}
        return {"type": "string", "description": f"{sentence.removesuffix(' id')} ID, e.g. '{pre}_{digits}'."}
    if kind == "str":
        return {"type": "string", "description": f"{sentence}."}
    if kind == "city":
        return {"type": "string", "description": f"{sentence}, e.g. 'Lisbon'."}
    if kind == "email":
        return {"type": "string", "format": "email", "description": f"{sentence}."}
    if kind == "person":
        return {"type": "string", "description": f"{sentence} (first and last name)."}
    if kind == "url":
        return {"type": "string", "format": "uri", "description": f"{sentence}."}
    if kind == "date":
        return {"type": "string", "format": "date", "description": f"{sentence} (YYYY-MM-DD)."}
    if kind == "datetime":
        return {"type": "string", "format": "date-time", "description": f"{sentence} (ISO 8601, UTC)."}
    if kind == "time":
        return {"type": "string", "pattern": r"^\d{2}:\d{2}$", "description": f"{sentence} (HH:MM, 24-hour)."}
    if kind == "cents":
        return {"type": "integer", "minimum": 1, "description": f"{sentence.removesuffix(' cents')} in cents ($12.50 is 1250)."}
    if kind == "count":
        return {"type": "integer", "minimum": 1, "description": f"{sentence}."}
    if kind == "bool":
        return {"type": "boolean", "description": f"{sentence}."}
    m = re.fullmatch(r"(int|num)\[(-?\d+),(-?\d+)\]", kind)
    if m:
        low, high = int(m.group(2)), int(m.group(3))
        return {"type": "integer" if m.group(1) == "int" else "number", "minimum": low, "maximum": high,
                "description": f"{sentence} ({low} to {high})."}
    m = re.fullmatch(r"enum\((.+)\)", kind)
    if m:
        return {"type": "string", "enum": m.group(1).split("|"), "description": f"{sentence}."}
    m = re.fullmatch(r"list\[(.+)\]", kind)
    if m:
        inner = m.group(1)
        items: dict[str, Any] = {"type": "string", "format": "email"} if inner == "email" else {
            "type": "string", "enum": inner.split("|")}
        return {"type": "array", "items": items, "minItems": 1, "maxItems": 3, "uniqueItems": True, "description": f"{sentence}."}
    raise CatalogError(f"tool universe: field {name!r} has unknown kind {kind!r}; see the spec list in the module docstring.")
