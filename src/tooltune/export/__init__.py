"""Exports of trained runs and base models: merged Hugging Face, GGUF (llama.cpp), ONNX (int8).

``export_model(ExportConfig(source=RUN, to="onnx", quantize="int8"))`` writes the export;
``tooltune.runtime.model.load_model(EXPORT_DIR)`` loads it back (see docs/export.md).
"""

from tooltune.export.exporter import ExportConfig, ExportResult, export_model

__all__ = ["ExportConfig", "ExportResult", "export_model"]
