"""Training data: examples, curated files, synthetic generation, production feedback, quality, splits."""
