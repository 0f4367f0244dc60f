"""SuperSmartMatch: reference job matching service (standard library only).

Modules:
    matching  -- request validation and the deterministic scoring/ranking function
    config    -- configuration from ``SSM_*`` environment variables
    metrics   -- thread-safe Prometheus metrics (text format 0.0.4)
    tokens    -- signed feedback tokens (HMAC-SHA256): only an answered match can be rated
    server    -- the HTTP server and the ``supersmartmatch-service`` entry point
"""
