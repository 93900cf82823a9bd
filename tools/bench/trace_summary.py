"""Sums up a GPU kernel trace (`separate --bench --bench-trace PREFIX`, or any
Chrome trace from torch.profiler): time per kernel name, biggest first.

    python3 tools/bench/trace_summary.py PREFIX-0.json [--top 30] [--width 90]
"""
import argparse
import collections
import json


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("trace")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--width", type=int, default=90)
    args = parser.parse_args()
    with open(args.trace) as f:
        events = json.load(f)
    events = events.get("traceEvents", events) if isinstance(events, dict) else events
    total, count = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset"):
            total[e["name"]] += e.get("dur", 0)
            count[e["name"]] += 1
    all_us = sum(total.values())
    print(f"{all_us / 1000:.2f} ms of GPU work in {sum(count.values())} kernels and copies")
    print(f"{'ms':>9} {'%':>6} {'calls':>6}  kernel")
    for name, us in total.most_common(args.top):
        print(f"{us / 1000:9.3f} {100 * us / all_us:6.1f} {count[name]:6d}  {name[:args.width]}")


if __name__ == "__main__":
    main()
