#!/usr/bin/python3
"""PyTorch training-speed (and sampling-speed) reference for ddpm's performance goals.

Run with Debian's python (/usr/bin/python3: torch 1.13, oneDNN). Random data of MNIST shape, so no
data files are needed. The protocol per model is the SPEC's:
  denoiser: z = x + 0.5 eps, loss MSE(UNet(z), x), Adam lr 1e-4
  time:     t ~ U{0..T-1} per image, x_t = sqrt(abar_t) x + sqrt(1-abar_t) eps, MSE(eps_theta, eps), Adam 1e-3
  class:    as time, plus a one-hot label replaced by zeros with probability 0.1 per image
A training step (timed) = fresh noise / timesteps / labels, zero_grad, forward, loss, backward, Adam step.

--sample times the DDPM sampler instead (eval mode, no grad, T=300 steps, batch B; for class the
guided sampler with the conditional and unconditional passes in ONE forward of batch 2B; for the
denoiser, one eval forward = one denoising of the batch). --sample-steps K < 300 times only the first
K sampler steps and extrapolates to the full 300.

The last line is always "<number> img/s" (median over timed steps).
"""
import argparse
import os
import resource
import statistics
import sys
import time


def parse():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=("denoiser", "time", "class"), required=True)
    ap.add_argument("--width", type=int, default=None, help="D (default 128 denoiser, 64 otherwise)")
    ap.add_argument("--batch", type=int, default=None, help="B (default 256 denoiser, 128 otherwise)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5, help="timed training steps (or sampler repeats)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--sample", action="store_true", help="time the sampler instead of training")
    ap.add_argument("--sample-steps", type=int, default=300, help="sampler steps timed (extrapolated to T)")
    ap.add_argument("--gamma", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args()


args = parse()
# Must be set before torch (and its OpenMP runtime) loads; set_num_threads below as well.
os.environ["OMP_NUM_THREADS"] = str(args.threads)
os.environ["MKL_NUM_THREADS"] = str(args.threads)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import UNet, schedule, T_STEPS  # noqa: E402


def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def main():
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    D = args.width or (128 if args.model == "denoiser" else 64)
    B = args.batch or (256 if args.model == "denoiser" else 128)
    model = UNet(args.model, D)
    nparam = sum(p.numel() for p in model.parameters())
    print("torch %s, threads %d (torch.get_num_threads() = %d, OMP_NUM_THREADS=%s), model %s D=%d B=%d, "
          "%d parameters" % (torch.__version__, args.threads, torch.get_num_threads(),
                             os.environ.get("OMP_NUM_THREADS"), args.model, D, B, nparam), flush=True)
    betas, alphas, abar = schedule()
    abar_t = torch.tensor(abar, dtype=torch.float32)
    # a few batches of "images" in [0, 1], reused in turn
    pool = [torch.rand(B, 1, 28, 28) for _ in range(2)]

    if args.sample:
        times, per_image = run_sample(model, B, D, betas, alphas, abar)
    else:
        times, per_image = run_train(model, B, abar_t, pool)

    print("per-step seconds: " + " ".join("%.3f" % t for t in times))
    med = statistics.median(times)
    print("median %.3f s per %s, mean %.3f s; peak RSS %.0f MiB" % (
        med, "sampler step" if args.sample and args.model != "denoiser" else "step",
        statistics.mean(times), rss_mib()))
    print("%.2f img/s" % per_image(med))


def run_train(model, B, abar_t, pool):
    lr = 1e-4 if args.model == "denoiser" else 1e-3
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()

    def step(i):
        x = pool[i % len(pool)]
        if args.model == "denoiser":
            inp = x + 0.5 * torch.randn_like(x)
            target = x
            out = model(inp)
        else:
            t = torch.randint(0, T_STEPS, (B,))
            eps = torch.randn_like(x)
            ab = abar_t[t].view(B, 1, 1, 1)
            inp = ab.sqrt() * x + (1 - ab).sqrt() * eps
            tn = (t.float() / T_STEPS).view(B, 1)
            target = eps
            if args.model == "time":
                out = model(inp, tn)
            else:
                labels = torch.randint(0, 10, (B,))
                onehot = F.one_hot(labels, 10).float()
                onehot = onehot * (torch.rand(B, 1) >= 0.1).float()  # p_uncond = 0.1
                out = model(inp, tn, onehot)
        loss = F.mse_loss(out, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    times = []
    cpu0 = None
    for i in range(args.warmup + args.steps):
        if i == args.warmup:
            cpu0 = os.times()
        t0 = time.perf_counter()
        loss = step(i)
        dt = time.perf_counter() - t0
        if i >= args.warmup:
            times.append(dt)
        print("step %d%s: %.3f s, loss %.5f" % (i, " (warmup)" if i < args.warmup else "", dt, loss), flush=True)
    report_cpu(cpu0, sum(times))
    return times, lambda med: B / med


def run_sample(model, B, D, betas, alphas, abar):
    model.eval()
    guided = args.model == "class"
    if args.model == "denoiser":
        x = torch.rand(B, 1, 28, 28) + 0.5 * torch.randn(B, 1, 28, 28)
        times = []
        cpu0 = None
        with torch.no_grad():
            for i in range(args.warmup + args.steps):
                if i == args.warmup:
                    cpu0 = os.times()
                t0 = time.perf_counter()
                model(x)
                dt = time.perf_counter() - t0
                if i >= args.warmup:
                    times.append(dt)
                print("forward %d%s: %.3f s" % (i, " (warmup)" if i < args.warmup else "", dt), flush=True)
        report_cpu(cpu0, sum(times))
        return times, lambda med: B / med

    K = min(args.sample_steps, T_STEPS)
    labels = torch.arange(B) % 10
    cond = F.one_hot(labels, 10).float()
    onehot2 = torch.cat([torch.zeros(B, 10), cond], 0)  # [unconditional, conditional]
    with torch.no_grad():
        for _ in range(args.warmup):  # warm-up forwards at the batch size used below
            xw = torch.randn(B, 1, 28, 28)
            if guided:
                model(torch.cat([xw, xw], 0), torch.full((2 * B, 1), 0.5), onehot2)
            else:
                model(xw, torch.full((B, 1), 0.5))
        x = torch.randn(B, 1, 28, 28)
        times = []
        cpu0 = os.times()
        for t in range(T_STEPS - 1, T_STEPS - 1 - K, -1):
            t0 = time.perf_counter()
            if guided:
                tn = torch.full((2 * B, 1), t / T_STEPS)
                e = model(torch.cat([x, x], 0), tn, onehot2)
                eu, ec = e[:B], e[B:]
                eps = eu + args.gamma * (ec - eu)
            else:
                eps = model(x, torch.full((B, 1), t / T_STEPS))
            ab = float(abar[t])
            ab_prev = float(abar[t - 1]) if t > 0 else 1.0
            x0 = (x - (1 - ab) ** 0.5 * eps) / ab ** 0.5
            x = (ab_prev ** 0.5 * betas[t] / (1 - ab)) * x0 + (alphas[t] ** 0.5 * (1 - ab_prev) / (1 - ab)) * x
            if t > 0:
                x = x + float(betas[t]) ** 0.5 * torch.randn_like(x)
            times.append(time.perf_counter() - t0)
        total = sum(times)
        report_cpu(cpu0, total)
    print("sampler: %d of %d steps timed, %.2f s in all -> %.2f img/s over the whole run%s" % (
        K, T_STEPS, total, B / (total * T_STEPS / K), " (extrapolated)" if K < T_STEPS else ""))
    return times, lambda med: B / (med * T_STEPS)


def report_cpu(cpu0, wall):
    c1 = os.times()
    user, system = c1.user - cpu0.user, c1.system - cpu0.system
    w = wall if wall > 0 else float("inf")
    print("CPU time / wall time over the timed part: %.2f (user %.2f, system %.2f; threads requested %d); "
          "load average %s" % ((user + system) / w, user / w, system / w, args.threads,
                               " ".join("%.2f" % v for v in os.getloadavg())))


if __name__ == "__main__":
    main()
