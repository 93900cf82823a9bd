"""Sums up a GPU kernel trace (`separate --bench --bench-trace PREFIX`, or any
Chrome trace from torch.profiler): time per kernel name, biggest first; with
--by-op, time per ATen op that launched the kernels (the outermost op, the
innermost one and the outermost op's input shapes), so that, for example, the
bias additions of convolutions show apart from the other adds.

With --cpu, where a CPU run's time goes: each ATen op's own time (its span less
the ops nested in it, on the thread that called it), grouped by op and input
shapes; with --by-op, by op name only.

With --kinds, time per kind of work (matrix products, attention,
convolutions, layout conversions, the rest: elementwise passes, norms and
reductions; copies), for comparing each with the hardware's limits.

With --timeline, where the GPU waited instead: the span from the first GPU
activity to the last, the time no kernel or copy ran, and the longest of those
gaps, each with the host's outermost ops that overlapped it (what the CPU did
while the GPU idled: a CPU-side pass over the stems, an allocation, a copy).

    python3 tools/bench/trace_summary.py PREFIX-0.json [--top 30] [--width 90] [--by-op | --kinds | --timeline] [--cpu]
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


def gpu_intervals(events):
    """(start, end, name) of every kernel, copy and memset, sorted by start (microseconds)."""
    spans = [(e["ts"], e["ts"] + e.get("dur", 0), e["name"]) for e in events
             if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
    return sorted(spans)


def outermost_cpu_ops(events):
    """(start, end, name) of the host's outermost ops (not nested in another op of their thread)."""
    by_thread = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and e.get("cat") in ("cpu_op", "user_annotation", "cuda_runtime", "cuda_driver"):
            by_thread[(e.get("pid"), e.get("tid"))].append(e)
    out = []
    for ops in by_thread.values():
        ops.sort(key=lambda e: (e["ts"], -e.get("dur", 0)))
        end = float("-inf")
        for e in ops:
            if e["ts"] >= end:
                out.append((e["ts"], e["ts"] + e.get("dur", 0), e["name"]))
                end = e["ts"] + e.get("dur", 0)
    return sorted(out)


def timeline(events, top, width):
    spans = gpu_intervals(events)
    if not spans:
        print("no GPU activity in the trace")
        return
    gaps, busy, cur_start, cur_end, last_name = [], 0.0, spans[0][0], spans[0][1], spans[0][2]
    for start, end, name in spans[1:]:
        if start > cur_end:
            busy += cur_end - cur_start
            gaps.append((start - cur_end, cur_end, start, last_name, name))
            cur_start = start
        if end >= cur_end:
            cur_end, last_name = end, name
    busy += cur_end - cur_start
    span = cur_end - spans[0][0]
    idle = span - busy
    print(f"GPU span {span / 1000:.2f} ms: busy {busy / 1000:.2f} ms, idle {idle / 1000:.2f} ms "
          f"({100 * idle / span:.1f}%) in {len(gaps)} gaps; "
          f"{sum(1 for g in gaps if g[0] >= 100)} of them 0.1 ms or longer, "
          f"{sum(g[0] for g in gaps if g[0] >= 100) / 1000:.2f} ms together")
    host = outermost_cpu_ops(events)
    for length, a, b, before, after in sorted(gaps, reverse=True)[:top]:
        overlap = collections.Counter()
        for s, e, name in host:
            if s < b and e > a:
                overlap[name] += min(e, b) - max(s, a)
        doing = ", ".join(f"{name} {us / 1000:.2f}" for name, us in overlap.most_common(3)) or "no host op recorded"
        print(f"{length / 1000:9.3f} ms at {(a - spans[0][0]) / 1000:9.2f} ms  after {before[:width // 3]}")
        print(f"{'':24}host: {doing[:width]}")


def cpu_self_times(events, top, width, by_name):
    """Own time of each CPU op (span less its nested ops), per op and input shapes."""
    by_thread = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and e.get("cat") == "cpu_op":
            by_thread[(e.get("pid"), e.get("tid"))].append(e)
    total, count, outer = collections.Counter(), collections.Counter(), 0.0
    for ops in by_thread.values():
        ops.sort(key=lambda e: (e["ts"], -e.get("dur", 0)))
        stack = []  # [event, own time so far]
        def close(item):
            e, own = item
            dims = [d for d in e.get("args", {}).get("Input Dims", []) if d]
            key = e["name"] if by_name else f"{e['name']} {str(dims)[:width // 2]}"
            total[key] += own
            count[key] += 1
        for e in ops:
            while stack and e["ts"] >= stack[-1][0]["ts"] + stack[-1][0].get("dur", 0):
                close(stack.pop())
            if stack:
                stack[-1][1] -= e.get("dur", 0)
            else:
                outer += e.get("dur", 0)
            stack.append([e, e.get("dur", 0)])
        while stack:
            close(stack.pop())
    all_us = sum(total.values())
    print(f"{outer / 1000:.2f} ms in the outermost ops of all threads")
    print(f"{'ms':>9} {'%':>6} {'calls':>6}  op (own time)")
    for name, us in total.most_common(top):
        print(f"{us / 1000:9.3f} {100 * us / all_us:6.1f} {count[name]:6d}  {name[:width]}")


# Kernel names to kinds, first match wins: cuBLAS(Lt)'s nvjet and xmma GEMMs,
# CUTLASS and MAGMA GEMMs; cuDNN's and PyTorch's attention and stemkit's
# fused ones; cuDNN's convolutions (implicit GEMM, FFT, Winograd) and their
# NCHW/NHWC conversions.
KINDS = [
    ("attention", ("sdpa", "fmha", "flash", "attention_kernel", "AttentionKernel")),
    ("layout conversion", ("nchwToNhwc", "nhwcToNchw")),
    ("convolution", ("fprop", "dgrad", "wgrad", "conv", "implicit_gemm", "winograd", "fft")),
    ("matrix product", ("nvjet", "gemm", "Gemm", "sm90_xmma", "sm80_xmma", "cutlass")),
    ("copy", ("Memcpy", "Memset")),
]


def kind_of(name):
    for kind, marks in KINDS:
        if any(m in name for m in marks):
            return kind
    return "elementwise, norms, reductions"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("trace")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--width", type=int, default=90)
    parser.add_argument("--by-op", action="store_true", help="group by the ATen op that launched each kernel")
    parser.add_argument("--kinds", action="store_true", help="time per kind of work (GEMM, attention, convolution, ...)")
    parser.add_argument("--timeline", action="store_true", help="the GPU's idle gaps and what the host did in them")
    parser.add_argument("--cpu", action="store_true", help="each ATen op's own CPU time, per op and input shapes")
    args = parser.parse_args()
    with open(args.trace) as f:
        events = json.load(f)
    events = events.get("traceEvents", events) if isinstance(events, dict) else events
    if args.cpu:
        cpu_self_times(events, args.top, args.width, args.by_op)
        return
    if args.timeline:
        timeline(events, args.top, args.width)
        return
    chains = op_chains(events) if args.by_op else {}
    total, count = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset"):
            key = kind_of(e["name"]) if args.kinds else e["name"]
            if args.by_op:
                top, inner, dims = chains.get(e.get("args", {}).get("External id"), ("?", "?", ""))
                key = f"{top} > {inner} {dims}" if inner != top else f"{top} {dims}"
            total[key] += e.get("dur", 0)
            count[key] += 1
    all_us = sum(total.values())
    print(f"{all_us / 1000:.2f} ms of GPU work in {sum(count.values())} kernels and copies")
    print(f"{'ms':>9} {'%':>6} {'calls':>6}  {'op' if args.by_op else 'kind' if args.kinds else 'kernel'}")
    for name, us in total.most_common(args.top):
        print(f"{us / 1000:9.3f} {100 * us / all_us:6.1f} {count[name]:6d}  {name[:args.width]}")


if __name__ == "__main__":
    main()
