import sys, time, torch
from pathlib import Path
sys.path.insert(0, "/work/wt/cpu-speed/tools/fixtures")
from make_htdemucs_fixtures import import_demucs
torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
HTDemucs, *_ = import_demucs(Path("/work/main/.deps/demucs-patched"), Path("/work/main/.deps/py"))
p = torch.load("/tmp/cpu-htdemucs/full.th", map_location="cpu")
m = HTDemucs(*p["args"], **p["kwargs"]); m.load_state_dict(p["state"]); m.eval()
L = int(m.segment * m.samplerate)
x = 0.1 * torch.randn(1, 2, L)
with torch.no_grad():
    m(x)
    ts = []
    for _ in range(2):
        t = time.perf_counter(); m(x); ts.append(time.perf_counter() - t)
    print("forward s", ts)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as prof:
        m(x)
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30, max_name_column_width=40))
print(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=40, max_name_column_width=30, max_shapes_column_width=90))
