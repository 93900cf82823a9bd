#!/usr/bin/env python3
"""What a new process pays the first time it calls each GPU library, in PyTorch
(the same libtorch `separate` links). Run it as a new process per setting, e.g.

    python3 tools/gpu/first-call-costs.py
    TORCH_CUDNN_V8_API_DISABLED=1 python3 tools/gpu/first-call-costs.py

Prints one line per step: the seconds it took, synchronized. The convolution
shapes are HTDemucs' first encoder layers' (kernel 8, stride 4) and a DConv's
(kernel 3, dilated), each new shape once, then once more (the cost of a shape
already seen); the FFTs are its STFT's (n_fft 4096), then a second length.
"""
import os
import sys
import time

t = time.perf_counter()
import torch  # noqa: E402

steps = [("import torch", time.perf_counter() - t)]


def step(name, fn):
    torch.cuda.synchronize() if torch.cuda.is_initialized() else None
    t = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    steps.append((name, time.perf_counter() - t))


dev = torch.device("cuda")
step("context (first tensor)", lambda: torch.ones(8, device=dev).sum().item())
a = torch.randn(64, 64, device=dev)
step("first matmul (cuBLAS handle)", lambda: (a @ a).sum().item())
F = torch.nn.functional
x1 = torch.randn(1, 4, 343980 // 4, device=dev)
w1 = torch.randn(48, 4, 8, device=dev)
step("first conv1d (cuDNN libraries, handle, plan)", lambda: F.conv1d(x1, w1, stride=4))
step("same conv1d again", lambda: F.conv1d(x1, w1, stride=4))
x2 = torch.randn(1, 48, 21000, device=dev)
w2 = torch.randn(96, 48, 8, device=dev)
step("second conv1d shape", lambda: F.conv1d(x2, w2, stride=4))
w3 = torch.randn(12, 48, 3, device=dev)
step("third shape (dilated 3)", lambda: F.conv1d(x2, w3, padding=2, dilation=2))
x4 = torch.randn(1, 4, 2048, 84, device=dev)
w4 = torch.randn(48, 4, 8, 1, device=dev)
step("first conv2d shape", lambda: F.conv2d(x4, w4, stride=(4, 1)))
wt = torch.randn(96, 48, 8, device=dev)
xt = torch.randn(1, 96, 5000, device=dev)
step("first conv_transpose1d", lambda: F.conv_transpose1d(xt, wt, stride=4))
for half in (True,):
    step("first conv1d in fp16", lambda: F.conv1d(x2.half(), w2.half(), stride=4))
s = torch.randn(2, 343980, device=dev)
win = torch.hann_window(4096, device=dev)
step("first stft (cuFFT library, plan)", lambda: torch.stft(s, 4096, 1024, window=win, return_complex=True))
step("same stft again", lambda: torch.stft(s, 4096, 1024, window=win, return_complex=True))
step("second fft length", lambda: torch.fft.rfft(torch.randn(4, 2048, device=dev)))
for name, sec in steps:
    print(f"{sec * 1000:9.1f} ms  {name}")
print("env:", {k: v for k, v in os.environ.items() if k.startswith("TORCH_CUDNN")}, file=sys.stderr)
