"""``python -m tests.train.budget_clock_main ARGS``: ``python -m tooltune.train`` with a fake clock
for the time budget that runs at a different speed on each rank (rank r: 10 s per read x (r + 1)),
so that under torchrun the ranks measure different step times and must agree on one last step.
With ``BUDGET_CLOCK=slowdown`` both ranks read 10 s a step through the probe, then rank 1 slows to
20 s: only rank 1's re-projection shortens the run, and both must stop on its step."""

from __future__ import annotations

import itertools
import os
import sys

from tooltune.train import callbacks
from tooltune.train.__main__ import main

rank = int(os.environ.get("RANK", "0"))
if os.environ.get("BUDGET_CLOCK") == "slowdown":
    step = 20 if rank == 1 else 10
    ticks = itertools.chain(range(0, 110, 10), itertools.count(100 + step, step))
else:
    ticks = itertools.count(10 * (rank + 1), 10 * (rank + 1))
callbacks._clock = lambda: float(next(ticks))
sys.exit(main())
