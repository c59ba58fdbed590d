"""A Lambda handler with a cached SSM parameter and a cached function (see test_handler.py)."""

import tiered_cache as tiered
from tiered_cache import ssm


@tiered.cache(key="rates:{currency}", ttl=300)
def rates(currency: str) -> dict:
    return {"currency": currency, "rate": load_rate(currency)}


def load_rate(currency: str) -> float:  # the slow call, patched in the test
    raise NotImplementedError


@ssm.cache(parameter="/prod/app/greeting", max_age_in_seconds=60)
def handler(event, context):
    return f"{context.greeting}: {rates(event['currency'])['rate']}"
