"""Runtime: what train, eval, serve and export all need to name, load and run a model.

- :mod:`~tooltune.runtime.names`: ``pypi:NAME`` / HF id / directory → a loadable name;
- :mod:`~tooltune.runtime.pretrained`: real models shipped in PyPI wheels, cached as HF directories;
- :mod:`~tooltune.runtime.machine` / :mod:`~tooltune.runtime.precision`: machine facts and the
  precision chosen for them;
- :mod:`~tooltune.runtime.model`: ``load_model`` → ``LoadedModel`` (HF, adapters, exports, prompt models);
- :mod:`~tooltune.runtime.exported`: ``export.json`` and the ONNX / GGUF runtimes behind exports;
- :mod:`~tooltune.runtime.generate` / :mod:`~tooltune.runtime.prefix` /
  :mod:`~tooltune.runtime.constrained`: batched generation, prefix caching, grammar-constrained calls;
- :mod:`~tooltune.runtime.settings`: device, dtype, batch size, turn length, constrained decoding and
  tool listing, declared once for eval, serve, the API and the prompt backend;
- :mod:`~tooltune.runtime.agent`: the agent driver, a model's calls executed on an MCP server until it answers;
- :mod:`~tooltune.runtime.quiet`: third-party logs, warnings and progress bars kept off the terminal.

Nothing is imported here: each module loads torch or transformers only when it needs them.
"""
