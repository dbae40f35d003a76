"""The metric names Trellis exports, and a reader for the names a PromQL expression uses.

The alerting rules and the Grafana dashboard may only use names listed here, so renaming a
metric in C++ without updating this list, the rules and the dashboard fails a test instead of
silently emptying a panel or disarming an alert. When you add or rename a metric, change it here
and wherever the tests point.
"""

from __future__ import annotations

import re

# Histograms export <name>_bucket, <name>_sum and <name>_count.
HISTOGRAMS = {
    "http_request_duration_seconds",  # gateway {route, method}
    "grpc_client_handling_seconds",  # gateway {upstream, method, code (numeric)}
    "grpc_server_handling_seconds",  # services {method}
}

EXPORTED = {
    # gateway, admin listener
    "http_requests_total",  # {route, method, status}
    "http_requests_in_flight",
    "gateway_auth_decisions_total",  # {outcome}
    "gateway_ratelimit_decisions_total",  # {policy, decision, mode}
    "gateway_ratelimit_shared_mode",
    "gateway_upstream_rejections_total",  # {upstream, reason}
    "gateway_upstream_retries_total",  # {upstream}
    "gateway_circuit_state",  # {upstream}: 0 closed, 1 half-open, 2 open
    "gateway_cache_requests_total",  # {result}                        (coming)
    "gateway_open_streams",  # {kind}                                  (coming)
    # every service (shared runtime)
    "grpc_server_handled_total",  # {method, code (name)}
    "db_pool_connections",  # {state: open, in_use, waiting}
    # users
    "users_signups_total",  # {outcome}
    "users_logins_total",  # {outcome}
    "users_token_refreshes_total",  # {outcome}
    # orders
    "orders_outbox_backlog",
    "orders_created_total",  # {status}
    # notifications
    "notifications_stream_pending",  # {stream, group}
    "notifications_dead_letters_total",
    "notifications_delivered_total",  # {channel: inbox, push}
    "notifications_events_total",  # {outcome: recorded, duplicate, ignored, failed}
    # Prometheus itself
    "up",
}

KNOWN_METRICS = frozenset(
    EXPORTED
    | {f"{name}{suffix}" for name in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
)

# Series recorded by deploy/prometheus/rules (level:metric:operation); tests check that each is
# recorded there.
RECORDED = frozenset(
    f"gateway:slo_{sli}_errors:ratio_rate{window}"
    for sli in ("availability", "latency")
    for window in ("5m", "30m", "1h", "6h", "3d")
)

_KEYWORDS = {
    "and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left",
    "group_right", "offset", "inf", "nan",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]")
_LABEL_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-z]+")
_NUMBER = re.compile(r"(?<![\w:])(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*\w+\s*\)\s*$", re.DOTALL)


def metric_names(expr: str) -> set[str]:
    """Metric names used in a PromQL expression (Grafana variables allowed).

    Not a full parser: strings, label matchers, ranges, grouping clauses and numbers are blanked,
    then every identifier that is neither a keyword nor called like a function is a metric."""
    text = _STRING.sub(" ", expr)
    text = _GRAFANA_VARIABLE.sub(" ", text)
    text = _LABEL_MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name = match.group()
        if name.lower() in _KEYWORDS:
            continue
        if re.match(r"\s*\(", text[match.end():]):
            continue  # a function or an aggregation
        names.add(name)
    return names


def variable_query_names(query: str) -> set[str]:
    """Metric names in a Grafana Prometheus variable query (label_values(...), or PromQL)."""
    match = _LABEL_VALUES.match(query)
    if match:
        return metric_names(match.group(1))
    if re.match(r"^\s*label_values\(\s*\w+\s*\)\s*$", query):
        return set()  # label_values(label): no metric
    return metric_names(query)


def unknown_names(expr: str) -> set[str]:
    return metric_names(expr) - KNOWN_METRICS - RECORDED
