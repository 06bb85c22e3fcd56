"""The job API's routes, one ``APIRouter`` per resource; :func:`tooltune.api.app.create_app` includes
them in this order (the order of the OpenAPI document's paths)."""

from tooltune.api.routes import dashboard, datasets, evaluations, jobs, models

ROUTERS = [dashboard.router, datasets.router, jobs.router, models.router, evaluations.router]
"""Every router of the job API, in the order the app includes them."""
