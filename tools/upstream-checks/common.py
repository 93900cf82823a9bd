"""Helpers shared by the upstream checks: importing one package from a given
directory (patched or pristine), GPU timing, and naming the SDPA kernel that ran."""
import importlib
import json
import sys
import time
import types

import torch


def stub_module(name, **attrs):
    """Registers a stand-in for a module the checks never exercise (and that
    the GPU machine lacks), e.g. dora.log for demucs.states. Using any of its
    attributes fails loudly."""
    if name in sys.modules:
        return
    try:
        importlib.import_module(name)
        return
    except ImportError:
        pass
    module = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(module, key, value)
    def missing(attr):
        raise AttributeError(f"{name}.{attr} is a stub in the upstream checks")
    module.__getattr__ = missing
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        stub_module(parent)
        setattr(sys.modules[parent], child, module)


def import_package(package, root):
    """Imports `package` from directory `root`, replacing any copy loaded before."""
    for key in [k for k in sys.modules if k == package or k.startswith(package + ".")]:
        del sys.modules[key]
    sys.path.insert(0, str(root))
    try:
        return importlib.import_module(package)
    finally:
        sys.path.remove(str(root))


def rel_l2(a, b):
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def cuda_time(fn, warmup=3, iters=10):
    """Median wall time of fn() in seconds, synchronised."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def sdpa_backends(fn):
    """Runs fn() under the profiler and names the attention kernels that ran:
    flash, efficient (mem-efficient), cudnn or math."""
    from torch.profiler import profile, ProfilerActivity
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    names = {e.key for e in prof.key_averages()}
    found = []
    for label, needles in (("flash", ("_flash_attention", "flash_fwd", "flash::")),
                           ("efficient", ("_efficient_attention", "fmha_cutlass", "efficient_attention")),
                           ("cudnn", ("_cudnn_attention", "cudnn_sdpa", "cudnn::")),
                           ("math", ("_scaled_dot_product_attention_math",))):
        if any(any(n in name for n in needles) for name in names):
            found.append(label)
    return found or ["none"]


def device_info():
    p = torch.cuda.get_device_properties(0)
    return {"gpu": p.name, "capability": f"{p.major}.{p.minor}", "torch": torch.__version__,
            "cuda": torch.version.cuda, "hip": getattr(torch.version, "hip", None)}


def write_json(path, data):
    with open(path, "w") as f:
        json.dump(data, f, indent=2)
    print(f"wrote {path}")
