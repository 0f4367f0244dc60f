"""Read Prometheus in a lab container: shared by the scenarios and the benchmarks.

The lab's Prometheus listens on the monitoring container's loopback, so the
query goes through ``docker exec <container> curl``; nothing leaves the machine.
"""
import json
import subprocess


def prometheus_value(container, query, timeout=30):
    """The value of ``query`` on the Prometheus of ``container`` when it is exactly one series, else None."""
    proc = subprocess.run(['docker', 'exec', container, 'curl', '-sfG', 'http://127.0.0.1:9090/api/v1/query',
                           '--data-urlencode', 'query=%s' % query],
                          capture_output=True, text=True, check=False, timeout=timeout)
    try:
        result = json.loads(proc.stdout)['data']['result'] if proc.returncode == 0 else []
    except (ValueError, KeyError, TypeError):
        return None
    return float(result[0]['value'][1]) if len(result) == 1 else None
