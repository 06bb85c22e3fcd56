"""The machine description every benchmark prints and `tooltune status` shows, read from a
/proc/cpuinfo written here."""

from __future__ import annotations

import os

import pytest
import torch

from tooltune.runtime import machine

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13 64-Core Processor
flags\t\t: fpu sse2 avx avx2 fma

processor\t: 1
model name\t: AMD EPYC 7B13 64-Core Processor
flags\t\t: fpu sse2 avx avx2 fma
"""


@pytest.fixture
def epyc(tmp_path, monkeypatch):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    monkeypatch.setattr(machine, "CPUINFO", path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_the_cpu_model_and_flags_come_from_cpuinfo(epyc):
    assert machine.cpu_model() == "AMD EPYC 7B13 64-Core Processor"
    assert machine.cpu_flags() == {"fpu", "sse2", "avx", "avx2", "fma"}
    described = machine.describe_machine()
    assert described.flags == ["avx2"] and described.gpu is None
    assert described.cores == len(os.sched_getaffinity(0)) and described.torch_threads == torch.get_num_threads()


def test_machine_line_names_model_cores_threads_and_precision(epyc):
    line = machine.machine_line("fp32")
    assert line == (f"machine: AMD EPYC 7B13 64-Core Processor (avx2), {len(os.sched_getaffinity(0))} cores, "
                    f"{torch.get_num_threads()} torch threads, precision fp32")


def test_a_torch_dtype_is_named_like_the_configs_name_it(epyc):
    assert machine.machine_line(torch.bfloat16).endswith(", precision bf16")


def test_bf16_flags_are_named_when_present(tmp_path, monkeypatch):
    path = tmp_path / "cpuinfo"
    path.write_text("model name\t: Intel(R) Xeon(R) Processor\nflags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n")
    monkeypatch.setattr(machine, "CPUINFO", path)
    assert machine.machine_line().startswith("machine: Intel(R) Xeon(R) Processor (amx_bf16 avx512_bf16), ")


def test_without_cpuinfo_the_model_still_has_a_name(tmp_path, monkeypatch):
    monkeypatch.setattr(machine, "CPUINFO", tmp_path / "absent")
    assert machine.cpu_model() and machine.cpu_flags() == frozenset()
