"""Durable orchestrations (deterministic generators), their activities, and the blueprint that registers both."""
