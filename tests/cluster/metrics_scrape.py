#!/usr/bin/python3
"""Fetches a Prometheus endpoint and parses it with Debian's python3-prometheus-client.

  metrics_scrape.py URL [TIMEOUT_SECONDS]

Used by tests/cluster/metrics_test.cc. Prints one line per family and per sample:
  FAMILY <name> <type>
  SAMPLE <sample name> <label=value,...|-> <value>
Exit 0 if the fetch answered 200 with the Prometheus text Content-Type and the whole body
parsed; otherwise exit 1 with the reason on stderr.
"""
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def main():
    url = sys.argv[1]
    timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    with urllib.request.urlopen(url, timeout=timeout) as response:
        if response.status != 200:
            sys.exit(f"{url}: HTTP {response.status}")
        content_type = response.headers.get("Content-Type", "")
        if not content_type.startswith("text/plain") or "version=0.0.4" not in content_type:
            sys.exit(f"{url}: Content-Type {content_type!r} is not the text format 0.0.4")
        body = response.read().decode("utf-8")
    lines = []
    for family in text_string_to_metric_families(body):
        lines.append(f"FAMILY {family.name} {family.type}")
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items())) or "-"
            lines.append(f"SAMPLE {sample.name} {labels} {sample.value!r}")
    print("\n".join(lines))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a parse error or a failed fetch: the test prints why
        sys.exit(f"{type(e).__name__}: {e}")
