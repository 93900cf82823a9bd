import time, torch
import torch.nn.functional as F
torch.set_num_threads(2)
for T, cin, cout in [(2688, 512, 2048), (2688, 2048, 512), (2688, 512, 1536), (1344, 512, 2048)]:
    x = torch.randn(1, T, cin); w = torch.randn(cout, cin) / cin**0.5; b = torch.randn(cout)
    ref = F.linear(x, w, b)
    w4 = w.view(cout, cin, 1, 1).contiguous(memory_format=torch.channels_last)
    def conv():
        xi = x.view(1, T, 1, cin).permute(0, 3, 2, 1)  # (1, cin, 1, T) channels-last strides
        y = torch.mkldnn_convolution(xi, w4, b, (0, 0), (1, 1), (1, 1), 1)
        return y.permute(0, 3, 2, 1).reshape(1, T, cout)
    def lin(): return F.linear(x, w, b)
    for f in (lin, conv, lin, conv):
        f(); ts = []
        for _ in range(5):
            t0 = time.perf_counter(); o = f(); ts.append(time.perf_counter() - t0)
        gf = 2 * T * cin * cout / 1e9
        print(T, cin, cout, f.__name__, "best %.4f med %.4f GFLOP/s %.0f" % (min(ts), sorted(ts)[2], gf / min(ts)), "err %.2e" % ((o - ref).norm() / ref.norm()).item(), o.is_contiguous())
