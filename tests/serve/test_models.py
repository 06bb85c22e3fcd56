"""ModelPool: an adapter run that saved its own tokenizer is served with it, set up as the
runtime loader sets up every tokenizer; a run without one uses the base's."""

from __future__ import annotations

from tests.serve.conftest import make_lora
from tooltune.serve.models import ModelPool
from tooltune.serve.settings import ServeSettings

RUN_TEMPLATE = "{% for m in messages %}RUN-TEMPLATE {{ m['content'] }}\n{% endfor %}"


def test_an_adapter_is_served_with_its_runs_tokenizer(hermes_base, tmp_path):
    from transformers import AutoTokenizer

    own = make_lora(hermes_base, tmp_path / "own", seed=1)
    tokenizer = AutoTokenizer.from_pretrained(hermes_base)
    tokenizer.chat_template = RUN_TEMPLATE
    tokenizer.pad_token = None
    tokenizer.padding_side = "right"
    tokenizer.save_pretrained(own)
    bare = make_lora(hermes_base, tmp_path / "bare", seed=2)

    pool = ModelPool(ServeSettings(model=str(hermes_base), adapters={"own": own, "bare": bare}, device="cpu", dtype="fp32"))
    served = pool.resolve("own").loaded.tokenizer
    assert served.chat_template == RUN_TEMPLATE
    # Batched generation appends on the right: prompts are padded on the left, with EOS when no pad exists.
    assert served.padding_side == "left" and served.pad_token == served.eos_token
    assert pool.resolve("bare").loaded.tokenizer is pool.base.tokenizer
