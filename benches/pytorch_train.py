"""Training and inference throughput of the same ResNet-20 (width 1, batch
64, 3x32x32, SGD with momentum and weight decay, BatchNorm, 10 classes; with
--quick the quick spec's width 0.25 on 1x28x28) in PyTorch on the CPU, for
comparison with `cargo bench --bench train` on the same machine.

    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch
    /tmp/torchenv/bin/python benches/pytorch_train.py --batches 30 --threads 2

(PyPI's wheel carries CUDA libraries but runs on the CPU; the smaller
CPU-only wheels of download.pytorch.org are not reachable from these
machines.)

A one-batch warm-up runs first and is not timed; the figures are images per
second over the timed batches.
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class ResNet20(nn.Module):
    def __init__(self, channels=3, widths=(16, 32, 64), classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        blocks, c = [], widths[0]
        for stage, width in enumerate(widths):
            for i in range(3):
                blocks.append(Block(c, width, 2 if stage > 0 and i == 0 else 1))
                c = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(widths[-1], classes)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn1(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3)))


def time_convs(shapes, batch, repeats):
    """The fastest forward and forward + backward of each conv, in ms, on one
    thread, each after a warm-up."""
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    out = []
    for c_in, c_out, hw, k, stride in shapes:
        x = torch.randn(batch, c_in, hw, hw, generator=gen)
        w = torch.randn(c_out, c_in, k, k, generator=gen)

        def forward():
            with torch.no_grad():
                F.conv2d(x, w, stride=stride, padding=k // 2).sum().item()

        def both():
            xg, wg = x.clone().requires_grad_(), w.clone().requires_grad_()
            F.conv2d(xg, wg, stride=stride, padding=k // 2).sum().backward()

        def fastest(f):
            f()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                f()
                times.append((time.perf_counter() - start) * 1e3)
            return min(times)

        out.append([fastest(forward), fastest(both)])
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument(
        "--device", default="cpu", help="cpu, or cuda for the GPU side of scripts/gpu_bench.sh"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object (for cargo bench --bench train)"
    )
    parser.add_argument(
        "--convs",
        help="JSON list of [c_in, c_out, hw, k, stride]: time each conv alone on one thread "
        "and print [[forward ms, forward+backward ms], ...] (for cargo bench --bench conv)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the quick spec's network instead: width 0.25 (4, 8, 16 channels) on 1x28x28",
    )
    parser.add_argument("--conv-batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.convs:
        print(json.dumps(time_convs(json.loads(args.convs), args.conv_batch, args.repeats)))
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    # A GPU runs asynchronously: wait for it before reading the clock.
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    channels, size, widths = (1, 28, (4, 8, 16)) if args.quick else (3, 32, (16, 32, 64))
    model = ResNet20(channels, widths).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    batch = args.batch
    x = torch.randn(batch, channels, size, size, device=device)
    y = torch.arange(batch, device=device) % 10

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    model.train()
    step()
    sync()
    start = time.perf_counter()
    for _ in range(args.batches):
        step()
    sync()
    train = args.batches * batch / (time.perf_counter() - start)

    model.eval()
    with torch.no_grad():
        model(x)
        sync()
        start = time.perf_counter()
        for _ in range(args.batches):
            model(x)
        sync()
        infer = args.batches * batch / (time.perf_counter() - start)
    if args.json:
        print(json.dumps({"torch": torch.__version__, "threads": args.threads, "batch": batch,
                          "device": args.device, "train": train, "inference": infer}))
        return
    print(
        f"PyTorch {torch.__version__} on {args.device}, {args.threads} threads, batch {batch}, "
        f"{channels}x{size}x{size}, widths {widths}: "
        f"train {train:.1f} img/s, inference {infer:.1f} img/s"
    )


if __name__ == "__main__":
    main()
