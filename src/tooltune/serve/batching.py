"""Requests that arrive together are generated together: the server's batching queue.

Generation holds the model pool's lock (one PEFT model serves every adapter, so two generations
never interleave on it), so a server that generated one request at a time made its fourth
concurrent client wait for three whole generations. :class:`Batcher` instead queues requests
and one worker thread runs them in batches: it takes the oldest waiting request, lets it wait
until ``window_ms`` after its arrival for others to arrive, and generates every waiting request for the same model
(up to ``max_batch``) in one :class:`~tooltune.runtime.generate.Generator` batch. On a CPU a batch
of four decodes in little more time than one; with the prefix cache the prefill of a request
whose tool listing was seen before is only its own turn.

- Requests for other models wait for the next batch (the adapter is switched per batch), in
  arrival order.
- Each request keeps its own grammar, ``max_tokens`` and streamer (rows of a batch stream
  separately); a Generation is the one the request would get alone.
- A failing batch is retried one request at a time, so one request's error (a grammar that does
  not compile, say) reaches that request only.
- The :class:`~tooltune.runtime.prefix.PrefixCache` is shared by all batches: keyed by model and
  adapter, bounded by ``ServeSettings.prefix_cache_mb``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

from tooltune.runtime.generate import Generation, Generator, Prompt
from tooltune.runtime.prefix import PrefixCache


@dataclass
class _Job:
    served: Any
    prompt: Prompt
    future: Future = field(default_factory=Future)
    arrived: float = field(default_factory=time.monotonic)

    @property
    def streamed(self) -> bool:
        """Whether its streamer has been handed anything (then it is not generated again)."""
        return isinstance(self.prompt.streamer, _Tracked) and self.prompt.streamer.used


class _Tracked:
    """A streamer that remembers whether it was used."""

    def __init__(self, streamer: Any):
        self.streamer, self.used = streamer, False

    def put(self, value: Any) -> None:
        self.used = True
        self.streamer.put(value)

    def end(self) -> None:
        self.streamer.end()


class Batcher:
    """Queue of generation requests served in batches by one worker thread (module docstring).

    ``pool`` is a :class:`~tooltune.serve.models.ModelPool` (anything with ``using(served)``);
    ``prefix_cache`` None turns prefix caching off."""

    def __init__(self, pool: Any, *, max_new_tokens: int, max_batch: int = 8, window_ms: float = 20.0,
                 prefix_cache: PrefixCache | None = None):
        if max_batch < 1 or window_ms < 0:
            raise ValueError(f"max_batch must be >= 1 and window_ms >= 0, got {max_batch} and {window_ms}")
        self.pool = pool
        self.max_new_tokens = max_new_tokens
        self.max_batch = max_batch
        self.window_s = window_ms / 1000
        self.prefix_cache = prefix_cache
        self.batches = 0
        """Batches generated so far (a retried batch counts once)."""
        self._queue: deque[_Job] = deque()
        self._ready = threading.Condition()
        self._worker: threading.Thread | None = None

    def generate(self, served: Any, prompt: Prompt) -> Generation:
        """Queue ``prompt`` for ``served`` and wait for its generation (call from a worker thread)."""
        if prompt.streamer is not None:
            prompt = replace(prompt, streamer=_Tracked(prompt.streamer))
        job = _Job(served, prompt)
        with self._ready:
            self._queue.append(job)
            if self._worker is None:  # started on first use: apps built only to be inspected start nothing
                self._worker = threading.Thread(target=self._run, daemon=True, name="tooltune-batcher")
                self._worker.start()
            self._ready.notify()
        return job.future.result()

    def _run(self) -> None:
        while True:
            jobs = self._next_batch()
            self.batches += 1
            try:
                generations = self._generate(jobs)
            except Exception as e:  # noqa: BLE001 - handed to the requests, or retried one by one
                for job in jobs:
                    if len(jobs) == 1 or job.streamed:  # a stream that has begun is not generated twice
                        job.future.set_exception(e)
                    else:
                        self._settle(job)
                continue
            for job, generation in zip(jobs, generations, strict=True):
                job.future.set_result(generation)

    def _next_batch(self) -> list[_Job]:
        with self._ready:
            while not self._queue:
                self._ready.wait()
            first = self._queue[0]
            deadline = first.arrived + self.window_s  # a request that already waited is not held again
            while self._count(first.served) < self.max_batch and (left := deadline - time.monotonic()) > 0:
                self._ready.wait(left)
            jobs = [job for job in self._queue if job.served is first.served][: self.max_batch]
            for job in jobs:
                self._queue.remove(job)
            return jobs

    def _count(self, served: Any) -> int:
        return sum(job.served is served for job in self._queue)

    def _settle(self, job: _Job) -> None:
        """Generate ``job`` alone: its result, or its own error."""
        try:
            job.future.set_result(self._generate([job])[0])
        except Exception as e:  # noqa: BLE001 - the request's own error, raised in its handler
            job.future.set_exception(e)

    def _generate(self, jobs: list[_Job]) -> list[Generation]:
        limit = max(job.prompt.max_new_tokens or self.max_new_tokens for job in jobs)
        with self.pool.using(jobs[0].served) as loaded:
            generator = Generator(loaded, max_new_tokens=limit, batch_size=len(jobs),
                                  prefix_cache=self.prefix_cache if self.prefix_cache is not None else False)
            return generator.generate_prompts([job.prompt for job in jobs])
