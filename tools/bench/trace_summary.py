"""Sums up a GPU kernel trace (`separate --bench --bench-trace PREFIX`, or any
Chrome trace from torch.profiler): time per kernel name, biggest first; with
--by-op, time per ATen op that launched the kernels (the outermost op, the
innermost one and the outermost op's input shapes), so that, for example, the
bias additions of convolutions show apart from the other adds.

    python3 tools/bench/trace_summary.py PREFIX-0.json [--top 30] [--width 90] [--by-op]
"""
import argparse
import collections
import json


def op_chains(events):
    """External id of each CPU op -> (outermost op, innermost op, outermost op's input dims)."""
    by_thread = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and e.get("cat") == "cpu_op":
            by_thread[(e.get("pid"), e.get("tid"))].append(e)
    chains = {}
    for ops in by_thread.values():
        ops.sort(key=lambda e: (e["ts"], -e.get("dur", 0)))
        stack = []
        for e in ops:
            while stack and e["ts"] >= stack[-1]["ts"] + stack[-1].get("dur", 0):
                stack.pop()
            top = stack[0] if stack else e
            ext = e.get("args", {}).get("External id")
            if ext is not None:
                dims = top.get("args", {}).get("Input Dims", [])
                chains[ext] = (top["name"], e["name"], str([d for d in dims if d])[:60])
            stack.append(e)
    return chains


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("trace")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--width", type=int, default=90)
    parser.add_argument("--by-op", action="store_true", help="group by the ATen op that launched each kernel")
    args = parser.parse_args()
    with open(args.trace) as f:
        events = json.load(f)
    events = events.get("traceEvents", events) if isinstance(events, dict) else events
    chains = op_chains(events) if args.by_op else {}
    total, count = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset"):
            key = e["name"]
            if args.by_op:
                top, inner, dims = chains.get(e.get("args", {}).get("External id"), ("?", "?", ""))
                key = f"{top} > {inner} {dims}" if inner != top else f"{top} {dims}"
            total[key] += e.get("dur", 0)
            count[key] += 1
    all_us = sum(total.values())
    print(f"{all_us / 1000:.2f} ms of GPU work in {sum(count.values())} kernels and copies")
    print(f"{'ms':>9} {'%':>6} {'calls':>6}  {'op' if args.by_op else 'kernel'}")
    for name, us in total.most_common(args.top):
        print(f"{us / 1000:9.3f} {100 * us / all_us:6.1f} {count[name]:6d}  {name[:args.width]}")


if __name__ == "__main__":
    main()
