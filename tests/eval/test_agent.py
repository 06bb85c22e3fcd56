"""The agent loop against the real shop demo server: scripted models for the logic, one tiny-model smoke run."""

from __future__ import annotations

import json

import pytest

from tooltune.data.examples import Behavior, Example, ExpectedCall, Provenance, Source
from tooltune.errors import DataError
from tooltune.eval.agent import run_agent, run_agents, summarize, write_agent_results
from tooltune.runtime.generate import Generator
from tooltune.formats.base import get_format
from tooltune.tools.call import ToolCall

HERMES = get_format("hermes")
JOHN = Example(
    service="shop", messages=[{"role": "user", "content": "Process the payment for John Smith's latest order."}],
    tools=["get_customer_by_name", "get_latest_order", "create_payment", "list_payments"], behavior=Behavior.SEQUENCE,
    calls=[
        ExpectedCall(name="get_customer_by_name", arguments={"name": "John Smith"}),
        ExpectedCall(name="get_latest_order", arguments={"customer_id": "{prev.customer_id}"}),
        ExpectedCall(name="create_payment", optional=["currency"], arguments={
            "amount": "{prev.balance_due_cents}", "invoice_id": "{prev.invoice_id}",
            "customer_id": "{steps[0].customer_id}", "currency": "{prev.currency}"}),
    ],
    answer="Done: payment {prev.payment_id} is {prev.state}.", provenance=Provenance(source=Source.CURATED),
)


def call(tool: str, **arguments) -> str:
    return HERMES.render([ToolCall(tool, arguments)])


FIND, ORDER = call("get_customer_by_name", name="John Smith"), call("get_latest_order", customer_id="cus_0001")
PAY = call("create_payment", amount=12896, invoice_id="inv_1043", customer_id="cus_0001")


class Scripted:
    """A 'model' that answers with predetermined turns and records what it was shown."""

    call_format = HERMES

    def __init__(self, *turns: str):
        self.turns, self.seen = list(turns), []

    def complete(self, messages, tools):
        self.seen.append((list(messages), [t.name for t in tools or []]))
        return self.turns.pop(0) if self.turns else "I am done."


def test_the_john_flow_executes_on_the_real_server_and_is_exact(shop_catalog):
    model = Scripted(FIND, ORDER, PAY, "Paid: pay_0041.")
    run = run_agent(model, JOHN, catalog=shop_catalog)
    assert run.ending == "answered" and run.final_text == "Paid: pay_0041."
    assert run.sequence_exact and run.steps_correct == 3 and run.final_state is True
    assert run.calls[-1].result["payment_id"] == "pay_0041" and run.calls[-1].result["amount"] == 12896
    # The real results were fed back: the third turn saw the order the server returned.
    messages, tool_names = model.seen[2]
    assert messages[-1]["role"] == "tool" and messages[-1]["content"]["invoice_id"] == "inv_1043"
    assert tool_names == JOHN.tools
    # Expected references were resolved against the model's actual results.
    assert run.steps[2].expected["arguments"] == {"amount": 12896, "invoice_id": "inv_1043",
                                                   "customer_id": "cus_0001", "currency": "USD"}


def test_a_double_charge_breaks_the_final_state_and_the_sequence(shop_catalog):
    split_payment = call("create_payment", amount=5000, invoice_id="inv_1043", customer_id="cus_0001")
    rest = call("create_payment", amount=7896, invoice_id="inv_1043", customer_id="cus_0001")
    run = run_agent(Scripted(FIND, ORDER, split_payment, rest, "Paid."), JOHN, catalog=shop_catalog)
    assert not run.sequence_exact and run.final_state is False  # last payment is pay_0042, not pay_0041
    assert [s.reason for s in run.steps] == [None, None, "value_mismatch", "extra_call"]


def test_a_failed_call_is_fed_back_and_later_steps_cannot_resolve(shop_catalog):
    model = Scripted(call("get_customer_by_name", name="John"), ORDER, "Which John do you mean?")
    run = run_agent(model, JOHN, catalog=shop_catalog)
    assert run.calls[0].is_error and "3 customers match" in run.calls[0].result
    assert "3 customers match" in model.seen[1][0][-1]["content"]  # the model saw the server's error
    assert [s.reason for s in run.steps] == ["value_mismatch", "unresolved_reference", "missing_step"]
    assert run.final_state is False and run.steps_correct == 0


def test_runs_end_on_malformed_output_or_the_step_limit(shop_catalog, tmp_path):
    malformed = run_agent(Scripted(FIND, "<tool_call>\n{oops"), JOHN, catalog=shop_catalog)
    assert malformed.ending == "malformed" and malformed.steps_correct == 1
    looping = run_agent(Scripted(FIND, ORDER, FIND, ORDER), JOHN, catalog=shop_catalog, max_steps=3)
    assert looping.ending == "step_limit" and len(looping.calls) == 3 and not looping.sequence_exact

    summary = summarize([malformed, looping])
    assert summary.step_accuracy.total == 6 and summary.endings == {"malformed": 1, "step_limit": 1}
    write_agent_results([malformed, looping], summary, tmp_path)
    assert len((tmp_path / "agent.jsonl").read_text().splitlines()) == 2
    assert json.loads((tmp_path / "agent_metrics.json").read_text())["n"] == 2


def test_a_turn_repeating_the_previous_calls_runs_once_more_and_ends_the_run(shop_catalog):
    model = Scripted(FIND, ORDER, ORDER, ORDER, ORDER)
    run = run_agent(model, JOHN, catalog=shop_catalog)
    assert run.ending == "repeated" and len(run.turns) == 3 and [c.name for c in run.calls] == [
        "get_customer_by_name", "get_latest_order", "get_latest_order"]
    assert [s.reason for s in run.steps] == [None, None, "wrong_function"] and not run.sequence_exact
    # A repeated write is executed, so the second charge shows in the final state (the shop
    # refuses it: nothing is left to pay).
    double = run_agent(Scripted(FIND, ORDER, PAY, PAY, "Paid."), JOHN, catalog=shop_catalog)
    assert double.ending == "repeated" and [c.name for c in double.calls[2:]] == ["create_payment"] * 2
    assert double.calls[-1].is_error and double.final_state is False


def test_only_sequence_examples_of_a_service_run(shop_catalog):
    single = JOHN.model_copy(update={"behavior": Behavior.CALLS})
    with pytest.raises(DataError, match="sequence"):
        run_agents(Scripted(), [single], catalog=shop_catalog)


class Batching:
    """A 'model' that batches: each run's next turn follows from how many tool results it has seen,
    so the script does not depend on which runs share a batch; records every batch's size."""

    call_format = HERMES

    def __init__(self, script: dict[str, list[str]]):
        self.script, self.batches = script, []

    def complete(self, messages, tools):
        script = self.script[messages[0]["content"]]
        done = sum(m["role"] == "tool" for m in messages)
        return script[done] if done < len(script) else "I am done."

    def complete_many(self, requests):
        self.batches.append(len(requests))
        return [self.complete(messages, tools) for messages, tools in requests]


def test_runs_are_driven_together_each_on_its_own_server(shop_catalog):
    jane = JOHN.model_copy(update={"messages": [{"role": "user", "content": "Pay John's latest order, then stop."}]})
    stops = JOHN.model_copy(update={"messages": [{"role": "user", "content": "Only find John."}]})
    model = Batching({JOHN.messages[0]["content"]: [FIND, ORDER, PAY, "Paid: pay_0041."],
                      jane.messages[0]["content"]: [FIND, ORDER, PAY, "Paid."],
                      stops.messages[0]["content"]: [FIND, "Found him."]})
    runs = run_agents(model, [JOHN, jane, stops], catalog=shop_catalog)
    # One batch per round; a run that answered leaves the batch.
    assert model.batches == [3, 3, 2, 2]
    # Each run paid on its own fresh copy of the shop: both payments are pay_0041, both final states hold.
    assert [r.calls[-1].result["payment_id"] for r in runs[:2]] == ["pay_0041", "pay_0041"]
    assert [r.final_state for r in runs[:2]] == [True, True] and runs[0].sequence_exact
    assert runs[2].ending == "answered" and runs[2].final_text == "Found him." and runs[2].steps_correct == 1
    # The same as driving each alone.
    alone = [run_agent(Scripted(*model.script[e.messages[0]["content"]]), e, catalog=shop_catalog)
             for e in (JOHN, jane, stops)]
    assert [r.model_dump() for r in runs] == [r.model_dump() for r in alone]


def test_given_first_turns_are_not_generated_again(shop_catalog):
    model = Batching({JOHN.messages[0]["content"]: [FIND, ORDER, PAY, "Paid: pay_0041."]})
    [run] = run_agents(model, [JOHN], catalog=shop_catalog, first_turns=[FIND])
    assert model.batches == [1, 1, 1] and run.turns[0] == FIND and run.sequence_exact
    with pytest.raises(ValueError, match="first_turns"):
        run_agents(model, [JOHN], catalog=shop_catalog, first_turns=[])


def test_tiny_model_smoke_run(tiny_loaded, shop_catalog):
    run = run_agent(Generator(tiny_loaded, max_new_tokens=8), JOHN, catalog=shop_catalog, max_steps=2)
    assert run.turns and run.steps_expected == 3 and run.final_state is not None  # the reference run succeeded
