"""The job API (``tooltune api``): datasets, training jobs, models, evaluations and comparisons of a
registry over HTTP, with a dashboard. ``create_app(ApiSettings(...))`` builds the FastAPI app."""
