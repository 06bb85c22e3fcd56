"""`tooltune chat`: the tiny model drives the real shop MCP server subprocess."""

from __future__ import annotations

import json
import time

from typer.testing import CliRunner


def test_compare_prints_both_transcripts_with_real_mcp_results(loras, shop_command, tmp_path, tiny_base_dir):
    from tooltune.cli import app

    queries = tmp_path / "queries.txt"
    queries.write_text("# one query per line\nShow me the orders that are awaiting shipment\n")
    result = CliRunner().invoke(app, [
        "chat", "--model", str(tiny_base_dir), "--adapter", str(loras["a"]), "--compare", str(tiny_base_dir),
        "--mcp-stdio", shop_command, "--queries", str(queries), "--max-steps", "2", "--max-new-tokens", "64"],
        env={"COLUMNS": "220"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert "8 tools: create_payment" in out and "» Show me the orders that are awaiting shipment" in out
    assert f"base: {tiny_base_dir}" in out and f"tuned: {tiny_base_dir} + " in out
    assert out.count(" s · ") == 2  # a footer per side: calls, latency, how the run ended
    # The tiny test base names tools of its own training universe; the live shop server's
    # answer to such a call is shown under it.
    assert "→ " in out and "← Unknown tool:" in out


class FirstCallRequired:
    """The tiny model with its first turn decoded under the shop tools' call-only grammar (what
    tool_choice="required" does in serving), then free: a weak model still drives the server."""

    def __init__(self, generator):
        self.generator = generator
        self.call_format = generator.call_format

    def complete(self, messages, tools):
        from tooltune.runtime.constrained import tool_call_grammar

        if any(m["role"] == "tool" for m in messages):
            return self.generator.complete(messages, tools)
        prompt = self.generator.loaded.render(messages, tools)
        grammar = tool_call_grammar(self.call_format, tools, allow_text=False)
        return self.generator.generate_prompts([prompt], [grammar])[0].text


def test_loop_executes_each_call_on_the_live_server(hermes_base, shop_command, shop_tools):
    from tooltune.runtime.generate import Generator
    from tooltune.runtime.model import load_model
    from tooltune.serve.chat import run_chat

    model = FirstCallRequired(Generator(load_model(hermes_base), max_new_tokens=96))
    [[exchange]] = run_chat([("base", model)], ["Show me the payments that are processing"], shop_tools,
                            mcp_stdio=shop_command, max_steps=2)
    done = exchange.conversation
    first = done.calls[0]
    assert not first.is_error and first.name == "list_payments", first
    payments = first.result["payments"] if isinstance(first.result, dict) and "payments" in first.result else first.result
    assert payments and all(p["state"] == first.arguments["state"] for p in payments)  # filtered by the real server
    # The result went back to the model as a tool message, rendered into its next prompt.
    tool_message = next(m for m in done.messages if m["role"] == "tool")
    assert json.dumps(tool_message["content"], sort_keys=True) == json.dumps(first.result, sort_keys=True)
    assert len(done.turns) == 2 and exchange.latency_s > 0


def test_endpoint_model_talks_to_tooltune_serve_with_the_service_header(server, shop_command, shop_tools):
    """The loop's model behind `tooltune serve`: calls come back as OpenAI tool_calls and are
    executed on the shop server; the service header routes to the shop version."""
    import openai

    from tooltune.serve.chat import EndpointModel, run_chat

    model = EndpointModel(f"{server}/v1", "shop-assistant", service="shop", max_tokens=32)
    query = "Show me the payments that are processing"
    [[exchange]] = run_chat([("served", model)], [query], shop_tools[:2], mcp_stdio=shop_command, max_steps=1)
    direct = openai.OpenAI(base_url=f"{server}/v1", api_key="unused").chat.completions.create(
        model="shop-assistant@1.0.1", messages=[{"role": "user", "content": query}],
        tools=[t.to_openai() for t in shop_tools[:2]], max_tokens=32).choices[0].message
    done = exchange.conversation
    calls = [(c.function.name, json.loads(c.function.arguments)) for c in direct.tool_calls or []]
    assert [(c.name, c.arguments) for c in done.calls] == calls
    if not calls:
        assert done.ending == "answered" and done.final_text == (direct.content or "").strip()


def test_chat_logs_each_turn_with_the_mcp_result_of_its_calls(shop_command, tmp_path, tiny_base_dir):
    """The tiny test base calls tools of its own universe: the shop server rejects them, and
    the logged turns are failures with the server's error, whatever the parser made of them."""
    from tooltune.cli import app
    from tooltune.data.feedback import ingest_logs
    from tooltune.tools.discover import discover

    queries = tmp_path / "queries.txt"
    queries.write_text("Show me the orders that are awaiting shipment\n")
    result = CliRunner().invoke(app, ["chat", "--model", str(tiny_base_dir), "--mcp-stdio", shop_command, "--queries", str(queries),
                                      "--max-steps", "2", "--max-new-tokens", "64", "--log-dir", str(tmp_path / "logs")],
                                env={"COLUMNS": "220"})
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for f in sorted((tmp_path / "logs" / "requests").glob("*.jsonl")) for x in f.read_text().splitlines()]
    rejected = [line for line in lines if any(r["is_error"] for r in line["tool_results"])]
    assert rejected and all(line["outcome"] == "failure" for line in rejected)
    assert "Unknown tool" in str(rejected[0]["tool_results"][0]["result"]) and rejected[0]["raw_output"]
    assert rejected[0]["messages"][0] == {"role": "user", "content": "Show me the orders that are awaiting shipment"}
    review = ingest_logs(tmp_path / "logs" / "requests", discover(mcp_stdio=shop_command)).review
    assert any("was rejected by the tool: Unknown tool" in reason for r in review for reason in r.reason)


def test_endpoint_tool_results_come_back_to_the_server_as_feedback(server, server_log_dir, shop_command, shop_tools):
    """A call `tooltune serve` answered, run on the live shop server: its MCP result is posted to
    /v1/feedback and the server's log line for that response now carries it."""
    import anyio

    from tooltune.runtime.agent import Conversation, execute_call
    from tooltune.serve.chat import EndpointModel, connect

    tool = next(t for t in shop_tools if t.name == "get_customer_by_email")
    model = EndpointModel(f"{server}/v1", "base", max_tokens=96)
    messages = [{"role": "user", "content": "Who is maria.garcia@example.com?"}]
    response = model.client.chat.completions.create(
        model="base", messages=messages, tools=[tool.to_openai()], max_tokens=96,
        tool_choice={"type": "function", "function": {"name": tool.name}})
    call = response.choices[0].message.tool_calls[0]

    async def run():
        async with connect(mcp_stdio=shop_command) as client:
            return await execute_call(client, call.function.name, json.loads(call.function.arguments))

    executed = anyio.run(run)
    done = Conversation(messages=messages, calls=[executed], turns=["(the call)"], ending="step_limit",
                        turn_starts=[1], turn_calls=[1])
    model.report(done, [response.id])
    assert model.feedback  # the server took it
    time.sleep(0.5)  # written by the server's log thread
    lines = [json.loads(x) for f in sorted((server_log_dir / "requests").glob("*.jsonl")) for x in f.read_text().splitlines()]
    mine = [line for line in lines if line["id"] == response.id]
    assert len(mine) == 2 and mine[-1]["tool_results"][0]["is_error"] == executed.is_error
    assert mine[-1]["outcome"] == ("failure" if executed.is_error else "success")
