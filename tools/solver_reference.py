#!/usr/bin/env python3
"""Float64 reference values of the DPM-Solver++ samplers for tests/test_solver.c.

Plain Python 3 (math and random only), written from the published formulas and not from
src/diffusion/solver.c:
  - DPM-Solver++(2M): Lu et al. 2022, "DPM-Solver++", Algorithm 2 (data prediction);
  - DPM-Solver++(2M) SDE: the same paper's SDE variant in the midpoint form of diffusers'
    "sde-dpmsolver++" (DPMSolverMultistepScheduler.multistep_dpm_solver_second_order_update);
  - DPM-Solver++(3M): the third-order multistep update of the reference implementations
    (dpm_solver_pytorch.py multistep_dpm_solver_third_update, predict_x0) with the divided
    differences D1, D2.
A chain of K steps runs over descending timesteps ts; step k goes from ts[k] to ts[k + 1] at
order min(order, k + 1, K - k), and the last one (to the clean image) returns the data
prediction, as src/diffusion/solver.h documents.

Writes tests/data/solver_reference.txt (one record per line, whitespace-separated, numbers
as %.17g; '#' lines are comments):
  abar SCHED T t VALUE                        the schedule at a few timesteps
  steps SCHED T SPACING K t_0 .. t_{K-1}      schedule_ddim_steps' ascending timesteps
  vec NAME N v_0 .. v_{N-1}                   the inputs of the one-step records (x, eps, m1, m2, z)
  step SAMPLER SCHED T SPACING K k CLIP ORDER N m0_0 .. m0_{N-1} xnext_0 .. xnext_{N-1}
  start N v_0 ..                              the chains' x at ts[0]
  noise K k N v_0 ..                          the SDE chain's fresh noise of step k
  chain SAMPLER SCHED T SPACING K N out_0 ..  a whole chain on the Gaussian data model
The chains' model: data x0 ~ N(MU, S^2) per value, whose exact noise prediction is
eps(x, t) = sigma_t (x - alpha_t MU) / (alpha_t^2 S^2 + sigma_t^2).
Every input (vec, start, noise) is a float32 value, so the C test reads the same inputs.
Running it again writes the same bytes. Usage: python3 tools/solver_reference.py
"""
import math
import os
import random
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data",
                   "solver_reference.txt")
MU, S = 0.3, 0.2
SAMPLERS = ("dpmpp2m", "dpmpp2m-sde", "dpmpp3m")
ORDER = {"dpmpp2m": 2, "dpmpp2m-sde": 2, "dpmpp3m": 3}


def f32(v):
    """v rounded to the nearest float32 (what the C test stores)."""
    return struct.unpack("<f", struct.pack("<f", v))[0]


def fmt(v):
    return "%.17g" % v


# ---- schedules (src/diffusion/schedule.c: the SPEC's linear betas, Nichol & Dhariwal's cosine)
def betas(sched, T):
    if sched == "linear":
        lo, hi = f32(1e-4), f32(0.02)  # the C defaults are float constants
        step = (hi - lo) / (T - 1)
        return [lo + step * t for t in range(T)]

    def f(u):  # cos^2(((u / T) + s) / (1 + s) pi / 2), s = 0.008; u = 0 the clean image
        c = math.cos((u / T + 0.008) / (1.0 + 0.008) * (math.pi / 2))
        return c * c
    return [min(1.0 - f(t + 1) / f(t), 0.999) for t in range(T)]


def abars(sched, T):
    out, prod = [], 1.0
    for b in betas(sched, T):
        prod *= 1.0 - b
        out.append(prod)
    return out


def lam(ab):
    """lambda = log(alpha / sigma), half the log signal-to-noise ratio"""
    return math.log(math.sqrt(ab) / math.sqrt(1.0 - ab))


# ---- the timesteps (src/diffusion/schedule.h: schedule_ddim_steps) ----------------------------
def ddim_steps(ab, K, spacing):
    T = len(ab)
    if K == 1:
        return [T - 1]
    if spacing == "uniform":
        st = [int(math.floor(i / (K - 1) * (T - 1) + 0.5)) for i in range(K)]
    else:  # logsnr: equal steps in lambda from t = 0 to T - 1, each at the nearest timestep
        lams = [lam(a) for a in ab]
        st = []
        for i in range(K):
            target = lams[0] + (lams[-1] - lams[0]) * i / (K - 1)
            # nearest; of two equally near, the later one
            st.append(min(range(T), key=lambda t: (abs(lams[t] - target), -t)))
    for i in range(1, K):  # distinct: later ones up, then earlier ones down from T - 1
        st[i] = max(st[i], st[i - 1] + 1)
    st[-1] = T - 1
    for i in range(K - 2, -1, -1):
        st[i] = min(st[i], st[i + 1] - 1)
    return st


# ---- one solver step ------------------------------------------------------------------------
def solver_step(sampler, ab, ts, k, x, eps, hist, z, clip):
    """Step k of len(ts) from ts[k]: returns (order, m0, x_next) for vectors x, eps, the
    earlier data predictions hist = [m at ts[k-1], m at ts[k-2]] and noise z."""
    K = len(ts)
    a_s, s_s = math.sqrt(ab[ts[k]]), math.sqrt(1.0 - ab[ts[k]])
    m0 = [(xi - s_s * ei) / a_s for xi, ei in zip(x, eps)]  # the data prediction
    if clip:
        m0 = [min(max(v, 0.0), 1.0) for v in m0]
    if k == K - 1:
        return 1, m0, list(m0)
    order = min(ORDER[sampler], k + 1, K - k)
    a_t, s_t = math.sqrt(ab[ts[k + 1]]), math.sqrt(1.0 - ab[ts[k + 1]])
    l_s, l_t = lam(ab[ts[k]]), lam(ab[ts[k + 1]])
    h = l_t - l_s
    n = len(x)
    if sampler == "dpmpp2m-sde":
        # x_t = sigma_t / sigma_s e^-h x + alpha_t (1 - e^-2h) (D0 + D1 / 2)
        #       + sigma_t sqrt(1 - e^-2h) z,  D0 = m0, D1 = (m0 - m1) / r0
        if order == 1:
            D1 = [0.0] * n
        else:
            r0 = (l_s - lam(ab[ts[k - 1]])) / h
            D1 = [(m0[i] - hist[0][i]) / r0 for i in range(n)]
        e2 = 1.0 - math.exp(-2.0 * h)
        xn = [s_t / s_s * math.exp(-h) * x[i] + a_t * e2 * m0[i] + 0.5 * a_t * e2 * D1[i]
              + s_t * math.sqrt(e2) * z[i] for i in range(n)]
        return order, m0, xn
    phi1 = math.expm1(-h)  # e^-h - 1
    if order == 1:  # DPM-Solver++(1), DDIM: x_t = sigma_t / sigma_s x - alpha_t phi1 m0
        xn = [s_t / s_s * x[i] - a_t * phi1 * m0[i] for i in range(n)]
    elif order == 2:
        # Algorithm 2: D = (1 + 1 / (2 r)) m0 - 1 / (2 r) m1, r = h_{i-1} / h_i
        r = (l_s - lam(ab[ts[k - 1]])) / h
        D = [(1.0 + 1.0 / (2.0 * r)) * m0[i] - 1.0 / (2.0 * r) * hist[0][i] for i in range(n)]
        xn = [s_t / s_s * x[i] - a_t * phi1 * D[i] for i in range(n)]
    else:
        l_1, l_2 = lam(ab[ts[k - 1]]), lam(ab[ts[k - 2]])
        r0, r1 = (l_s - l_1) / h, (l_1 - l_2) / h
        m1, m2 = hist
        D1_0 = [(m0[i] - m1[i]) / r0 for i in range(n)]
        D1_1 = [(m1[i] - m2[i]) / r1 for i in range(n)]
        D1 = [D1_0[i] + r0 / (r0 + r1) * (D1_0[i] - D1_1[i]) for i in range(n)]
        D2 = [(D1_0[i] - D1_1[i]) / (r0 + r1) for i in range(n)]
        phi2 = phi1 / h + 1.0
        phi3 = phi2 / h - 0.5
        xn = [s_t / s_s * x[i] - a_t * phi1 * m0[i] + a_t * phi2 * D1[i] - a_t * phi3 * D2[i]
              for i in range(n)]
    return order, m0, xn


def gauss_eps(ab_t, x):
    a, s = math.sqrt(ab_t), math.sqrt(1.0 - ab_t)
    return [s * (xi - a * MU) / (a * a * S * S + s * s) for xi in x]


def chain(sampler, ab, ts, x, noise):
    hist = []
    for k in range(len(ts)):
        eps = gauss_eps(ab[ts[k]], x)
        _, m0, x = solver_step(sampler, ab, ts, k, x, eps, hist, noise.get(k), 0)
        hist = [m0] + hist[:1]
    return x


def main():
    lines = ["# DPM-Solver++ reference values in float64: written by tools/solver_reference.py "
             "(see its docstring for the records); do not edit"]
    scheds = ("linear", "cosine")
    spacings = ("uniform", "logsnr")
    ab = {(sc, T): abars(sc, T) for sc in scheds for T in (300, 50)}
    for (sc, T), a in sorted(ab.items()):
        for t in sorted({0, 1, T // 2, T - 2, T - 1}):
            lines.append("abar %s %d %d %s" % (sc, T, t, fmt(a[t])))
    for (sc, T), a in sorted(ab.items()):
        for sp in spacings:
            for K in (1, 2, 3, 5, 6, 10, 20):
                lines.append("steps %s %d %s %d %s" % (sc, T, sp, K,
                                                       " ".join(map(str, ddim_steps(a, K, sp)))))
    # one step: inputs on a grid of 1/64 (exact in float32); x and eps apart enough that the
    # data prediction leaves [0, 1] at large t (the clip records)
    vec = {"x": [0.75, -1.25, 0.140625, 2.0], "eps": [0.5, -1.5, 0.0625, 1.75],
           "m1": [0.40625, 0.953125, -0.046875, 0.5], "m2": [0.359375, 0.90625, 0.03125, 0.25],
           "z": [-0.625, 1.109375, 0.296875, -1.8125]}
    for name in ("x", "eps", "m1", "m2", "z"):
        lines.append("vec %s %d %s" % (name, len(vec[name]), " ".join(map(fmt, vec[name]))))
    K = 6
    for sampler in SAMPLERS:
        for (sc, T), a in sorted(ab.items()):
            for sp in spacings:
                ts = ddim_steps(a, K, sp)[::-1]
                for clip in ((0, 1) if (T, sp) == (300, "logsnr") else (0,)):
                    for k in range(K):
                        order, m0, xn = solver_step(sampler, a, ts, k, vec["x"], vec["eps"],
                                                    [vec["m1"], vec["m2"]], vec["z"], clip)
                        lines.append("step %s %s %d %s %d %d %d %d %d %s %s" % (
                            sampler, sc, T, sp, K, k, clip, order, len(m0),
                            " ".join(map(fmt, m0)), " ".join(map(fmt, xn))))
    # whole chains on the Gaussian model, T = 300
    rng = random.Random(25)
    start = [f32(rng.gauss(0.0, 1.0)) for _ in range(8)]
    lines.append("start %d %s" % (len(start), " ".join(map(fmt, start))))
    noise = {}
    for K in (5, 10):
        noise[K] = {}
        for k in range(K - 1):  # the last step adds no noise
            noise[K][k] = [f32(rng.gauss(0.0, 1.0)) for _ in range(8)]
            lines.append("noise %d %d %d %s" % (K, k, 8, " ".join(map(fmt, noise[K][k]))))
    for sampler in SAMPLERS:
        for sc in scheds:
            a = ab[(sc, 300)]
            for sp in spacings:
                for K in (5, 10):
                    ts = ddim_steps(a, K, sp)[::-1]
                    out = chain(sampler, a, ts, list(start), noise[K])
                    lines.append("chain %s %s %d %s %d %d %s" % (sampler, sc, 300, sp, K,
                                                                 len(out), " ".join(map(fmt, out))))
    text = "\n".join(lines) + "\n"
    with open(OUT, "w") as f:
        f.write(text)
    counts = {}
    for ln in lines[1:]:
        counts[ln.split()[0]] = counts.get(ln.split()[0], 0) + 1
    print("wrote %s (%d bytes): %s" % (os.path.relpath(OUT), len(text),
                                      ", ".join("%d %s" % (v, k) for k, v in counts.items())))


if __name__ == "__main__":
    main()
