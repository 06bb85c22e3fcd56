"""`precision: auto` / `dtype: auto`: bf16 on a CPU only where its flags and the matmul probe
both say it is faster. The probe and the CPU flags are faked both ways (an AMX Xeon, an AVX2-only
EPYC); the cache file, the warning for forced bf16, the environment override, the trainer's and
the evaluator's precision, and `tooltune status` are checked against them."""

from __future__ import annotations

import json
import warnings
from types import SimpleNamespace

import pytest
import torch

from tooltune.errors import ConfigError
from tooltune.runtime import precision
from tooltune.runtime.precision import (
    PRECISION_ENV, REFERENCE_SHAPE, PrecisionWarning, Probe, bf16_probe, choose_precision, explain_precision,
    model_shape, probe_file, resolve_precision,
)

XEON = {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}
EPYC = {"avx2", "fma"}


@pytest.fixture
def cpu(monkeypatch, tmp_path):
    """A CPU-only machine whose flags and matmul speeds the test sets (default: the EPYC of
    issue #18, bf16 8.1 GFLOP/s against 67 for fp32); ``cpu.measured`` counts real probes."""
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    monkeypatch.setenv("TOOLTUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    state = SimpleNamespace(model="AMD EPYC 7B13", flags=set(EPYC), fp32=67.0, bf16=8.1, measured=0, shapes=[],
                            narrow_gains_nothing=False)

    def measure(shape=REFERENCE_SHAPE) -> Probe:
        state.measured += 1
        state.shapes.append(shape)
        # As on the AMX Xeon: a 128-wide layer runs no faster in bf16, a 576-wide one ~2x.
        bf16 = state.fp32 if state.narrow_gains_nothing and shape[0] < 384 else state.bf16
        return Probe(fp32_gflops=state.fp32, bf16_gflops=bf16, threads=torch.get_num_threads(),
                     shape=f"1024x{shape[0]} -> {shape[1]}", seconds=0.3, torch=torch.__version__,
                     measured_at="2026-12-07T00:00:00+00:00")

    monkeypatch.setattr(precision, "measure_probe", measure)
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset(state.flags))
    monkeypatch.setattr(precision, "cpu_model", lambda: state.model)
    return state


def amx_xeon(cpu) -> None:
    cpu.model, cpu.flags, cpu.fp32, cpu.bf16 = "Intel(R) Xeon(R) Processor", set(XEON), 115.0, 230.0


def test_an_amx_cpu_whose_probe_confirms_gets_bf16(cpu):
    amx_xeon(cpu)
    choice = choose_precision("cpu")
    assert (choice.precision, choice.source, choice.bf16_flags) == ("bf16", "cpu", ["amx_bf16", "avx512_bf16"])
    assert choice.probe.speedup == pytest.approx(2.0) and choice.probe_cached is False
    assert "amx_bf16" in choice.reason and "230 GFLOP/s" in choice.reason and "measured now" in choice.reason


def test_an_avx2_only_cpu_gets_fp32_and_says_why(cpu):
    choice = choose_precision("cpu")
    assert choice.precision == "fp32" and choice.bf16_flags == []
    assert "no bf16 instructions" in choice.reason and "8.3x slower" in choice.reason


def test_flags_alone_are_not_trusted_when_the_probe_finds_bf16_slow(cpu):
    cpu.flags = set(XEON)  # e.g. an ISA cap or a hypervisor hides what the flags promise
    choice = choose_precision("cpu")
    assert choice.precision == "fp32" and choice.bf16_flags == ["amx_bf16", "avx512_bf16"]
    assert "not 1.2x faster" in choice.reason


def test_a_fast_probe_without_bf16_flags_stays_fp32(cpu):
    cpu.fp32, cpu.bf16 = 100.0, 300.0
    assert choose_precision("cpu").precision == "fp32"


def test_a_marginal_speedup_is_not_enough(cpu):
    cpu.flags, cpu.fp32, cpu.bf16 = set(XEON), 100.0, 110.0  # 1.1x: casts and fp32 ops would eat it
    assert choose_precision("cpu").precision == "fp32"


def test_the_probe_is_cached_per_machine_torch_and_thread_count(cpu):
    amx_xeon(cpu)
    first = choose_precision("cpu")
    again = choose_precision("cpu")
    assert cpu.measured == 1 and again.probe_cached is True and again.probe == first.probe
    assert "cached" in again.reason
    stored = json.loads(probe_file().read_text())
    (key, entry), = stored.items()
    assert key.startswith("Intel(R) Xeon(R) Processor | flags ")
    assert f"torch {torch.__version__}" in key and f"{torch.get_num_threads()} threads" in key
    assert entry["bf16_gflops"] == 230.0

    previous = torch.get_num_threads()
    torch.set_num_threads(previous + 1)
    try:
        assert bf16_probe()[1] is False and cpu.measured == 2  # another thread count measures again
    finally:
        torch.set_num_threads(previous)
    cpu.model = "Intel(R) Xeon(R) Platinum 8481C"
    assert bf16_probe()[1] is False and cpu.measured == 3  # another CPU too
    assert len(json.loads(probe_file().read_text())) == 3  # entries of other machines are kept


def test_an_unreadable_cache_is_measured_again_and_rewritten(cpu):
    probe_file().parent.mkdir(parents=True)
    probe_file().write_text("{not json")
    probe, cached = bf16_probe()
    assert cached is False and cpu.measured == 1
    assert json.loads(probe_file().read_text())  # valid again


def test_forcing_bf16_where_it_is_slow_warns_with_the_measured_ratio(cpu):
    with pytest.warns(PrecisionWarning, match=r"8\.1 GFLOP/s vs fp32 67 \(8\.3x slower") as caught:
        assert resolve_precision("bf16", "cpu") == "bf16"  # still runs as asked
    assert "precision: auto" in str(caught[0].message)


def test_forcing_bf16_where_it_is_fast_or_fp32_anywhere_is_quiet(cpu):
    amx_xeon(cpu)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("bf16", "cpu") == "bf16"
        assert resolve_precision("fp32", "cpu") == "fp32"
        assert resolve_precision("bf16", "cuda") == "bf16"  # a GPU's bf16 is not the CPU probe's business


def test_the_environment_overrides_auto_without_a_probe(cpu, monkeypatch):
    amx_xeon(cpu)
    monkeypatch.setenv(PRECISION_ENV, "fp32")
    choice = choose_precision("cpu")
    assert (choice.precision, choice.source, choice.probe) == ("fp32", "environment", None)
    assert cpu.measured == 0
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"  # an explicit config value still wins


def test_bf16_from_the_environment_on_a_slow_cpu_warns(cpu, monkeypatch):
    monkeypatch.setenv(PRECISION_ENV, "bf16")
    with pytest.warns(PrecisionWarning, match=f"{PRECISION_ENV}=bf16"):
        assert choose_precision("cpu").precision == "bf16"


def test_a_bad_environment_value_names_the_variable(cpu, monkeypatch):
    monkeypatch.setenv(PRECISION_ENV, "fp8")
    with pytest.raises(ConfigError, match=f"{PRECISION_ENV}='fp8': expected fp32, bf16 or auto"):
        choose_precision("cpu")


def test_cuda_keeps_its_rule_and_runs_no_probe(cpu, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert choose_precision("cuda:1").precision == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert choose_precision("cuda").precision == "fp32"
    assert cpu.measured == 0


def test_the_probe_runs_at_the_width_of_the_model_it_decides_for(cpu, tiny_base):
    amx_xeon(cpu)
    cpu.narrow_gains_nothing = True
    assert model_shape(tiny_base) == (32, 64)  # the tiny Llama of tests/train/conftest.py
    assert choose_precision("cpu", model_shape(tiny_base)).precision == "fp32"
    assert choose_precision("cpu").precision == "bf16"  # no model named: SmolLM2-135M's 576 -> 1536
    assert cpu.shapes == [(32, 64), REFERENCE_SHAPE]
    assert len(json.loads(probe_file().read_text())) == 2  # one cache entry per shape
    assert model_shape(tiny_base.parent / "no-such-model") is None


def test_the_trainer_gets_bf16_autocast_only_where_the_probe_says_so(cpu, quick_config):
    from tooltune.train.sft import _sft_args

    config = quick_config()  # precision: auto
    slow = _sft_args(config, has_eval=False, early_stopping=False)
    assert (slow.bf16, slow.use_cpu) == (False, False)
    amx_xeon(cpu)
    fast = _sft_args(config, has_eval=False, early_stopping=False)
    assert (fast.bf16, fast.use_cpu) == (True, True)  # transformers needs use_cpu for bf16 autocast on a CPU
    assert cpu.shapes[-1] == (32, 64)  # measured at the base model's own width
    cpu.narrow_gains_nothing = True
    probe_file().unlink()
    assert _sft_args(config, has_eval=False, early_stopping=False).bf16 is False


def test_a_config_forcing_bf16_on_a_slow_cpu_warns_when_training_starts(cpu, quick_config):
    from tooltune.train.sft import _sft_args

    with pytest.warns(PrecisionWarning, match="8.3x slower"):
        args = _sft_args(quick_config(precision="bf16"), has_eval=False, early_stopping=False)
    assert args.bf16 is True


def test_evaluation_and_serving_load_the_model_in_the_chosen_dtype(cpu, tiny_base_dir):
    from tooltune.runtime.model import load_model

    assert load_model(tiny_base_dir, dtype="auto").model.dtype == torch.float32
    amx_xeon(cpu)
    assert load_model(tiny_base_dir, dtype="auto").model.dtype == torch.bfloat16
    assert cpu.shapes[-1] == (128, 384)  # the tiny test base's width
    assert load_model(tiny_base_dir, dtype="fp32").model.dtype == torch.float32
    cpu.narrow_gains_nothing = True
    probe_file().unlink()
    assert load_model(tiny_base_dir, dtype="auto").model.dtype == torch.float32  # 128 wide: bf16 gains nothing


def test_training_runs_on_the_threads_torch_uses(cpu, quick_config, monkeypatch):
    """On an AVX2-only EPYC, training with bf16 'used one core': nothing in tooltune's training
    (nor transformers' CPU autocast path) may narrow torch's thread pool."""
    from trl import SFTTrainer

    from tooltune.train.sft import train

    amx_xeon(cpu)  # bf16 autocast with use_cpu=True: the path that ran on the EPYC
    seen: list[int] = []
    step = SFTTrainer.training_step

    def recording_step(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return step(self, *args, **kwargs)

    monkeypatch.setattr(SFTTrainer, "training_step", recording_step)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train(quick_config(max_steps=2, eval_steps=100, save_steps=100, early_stopping_patience=None), progress=False)
    finally:
        torch.set_num_threads(previous)
    assert seen and set(seen) == {2}


def test_status_shows_the_choice_the_flags_and_the_probe(cpu, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from tooltune.cli import app

    amx_xeon(cpu)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOOLTUNE_DB_URL", f"sqlite:///{tmp_path / 'none.db'}")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    out = CliRunner().invoke(app, ["status", "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["device"]["torch_threads"] == torch.get_num_threads()
    assert report["device"]["thread_settings"] == {"OMP_NUM_THREADS": "2"}
    chosen = report["precision"]
    assert (chosen["precision"], chosen["source"], chosen["bf16_flags"]) == ("bf16", "cpu", ["amx_bf16", "avx512_bf16"])
    assert chosen["probe"]["bf16_gflops"] == 230.0 and chosen["probe_cached"] is False
    assert chosen["probe_file"] == str(probe_file())

    panel = CliRunner().invoke(app, ["status"], env={"COLUMNS": "250"})
    assert panel.exit_code == 0, panel.output
    assert "auto → bf16 on cpu" in panel.output and "230 GFLOP/s vs fp32 115" in panel.output
    assert "cached" in panel.output and cpu.measured == 1  # the panel read the probe the --json run stored


def test_status_under_the_environment_override_still_shows_what_the_probe_finds(cpu, monkeypatch):
    monkeypatch.setenv(PRECISION_ENV, "fp32")
    choice = explain_precision("cpu")
    assert (choice.precision, choice.source) == ("fp32", "environment")
    assert choice.probe is not None and choice.probe.speedup < 1 and choice.bf16_flags == []
