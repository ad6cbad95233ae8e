#!/usr/bin/python3
"""PyTorch reference of the ddpm UNet (see ../shared/SPEC.md and docs/WEIGHTS.md).

Run it with Debian's python (/usr/bin/python3, which has torch 1.13 and numpy).

Subcommands:
  params                      print (and check) the parameter counts of the SPEC's models
  fixtures [--out DIR]        write the test fixtures tests/data/ref_{denoiser,time,class}.safetensors
                              (MNIST 1x28x28, 10 classes), ref_class_32x32x3k7 (class model, 3x32x32,
                              7 classes) and ref_time_16x16x1 (time model, 1x16x16): GEOM_FIXTURES
                              and tests/data/ref_schedule.safetensors
  dump-check --ckpt F --kind K --width D [--ref R] [--mode eval|train]
                              load a ddpm checkpoint into the PyTorch model and run one forward pass
                              on R's `input` (plus `tn`, `onehot`), printing the max abs difference to
                              R's output tensor (--out-name, default `eval.out` or `train.out`)

The module attribute names are chosen so that state_dict() names equal docs/WEIGHTS.md exactly.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

KINDS = ("denoiser", "time", "class")
T_STEPS = 300

# Parameter counts of the SPEC ("Reference numbers").
SPEC_PARAMS = {("denoiser", 128): 7891073, ("time", 64): 1996417, ("class", 64): 2019201}


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------
class Unit(nn.Module):
    """convolution (plain or transposed) -> BatchNorm2d -> exact GELU"""

    def __init__(self, conv):
        super().__init__()
        self.conv = conv
        self.bn = nn.BatchNorm2d(conv.out_channels, eps=1e-5, momentum=0.1)

    def forward(self, x):
        return F.gelu(self.bn(self.conv(x)))  # approximate='none': x * Phi(x)


def conv_unit(ci, co):  # Conv(ci, co): 3x3 s1 p1
    return Unit(nn.Conv2d(ci, co, 3, stride=1, padding=1, bias=True))


def down_unit(ci, co):  # DownConv(ci, co): 3x3 s2 p1
    return Unit(nn.Conv2d(ci, co, 3, stride=2, padding=1, bias=True))


def up_unit(ci, co):  # UpConv(ci, co): transposed 4x4 s2 p1
    return Unit(nn.ConvTranspose2d(ci, co, 4, stride=2, padding=1, bias=True))


def conv_block(ci, co):  # ConvBlock = Conv(ci, co) -> Conv(co, co)
    return nn.Sequential(conv_unit(ci, co), conv_unit(co, co))


def down_block(ci, co):  # DownBlock = DownConv(ci, co) -> ConvBlock(co, co)
    return nn.Sequential(down_unit(ci, co), conv_unit(co, co), conv_unit(co, co))


def up_block(ci, co):  # UpBlock = UpConv(ci, co) -> ConvBlock(co, co)
    return nn.Sequential(up_unit(ci, co), conv_unit(co, co), conv_unit(co, co))


class FCBlock(nn.Module):
    """Linear(fi, fo) -> GELU -> Linear(fo, fo)"""

    def __init__(self, fi, fo):
        super().__init__()
        self.fc1 = nn.Linear(fi, fo, bias=True)
        self.fc2 = nn.Linear(fo, fo, bias=True)

    def forward(self, v):
        return self.fc2(F.gelu(self.fc1(v)))


class UNet(nn.Module):
    def __init__(self, kind="denoiser", width=128, C=1, S=28, K=10):
        super().__init__()
        if kind not in KINDS:
            raise ValueError("kind must be one of %s" % (KINDS,))
        D = width
        self.kind = kind
        self.width = D
        self.pool = S // 4  # bottleneck side: two stride-2 downsamplings
        # Registration order = state_dict order = docs/WEIGHTS.md order.
        self.enc0 = conv_block(C, D)
        self.down1 = down_block(D, D)
        self.down2 = down_block(D, 2 * D)
        self.unflat = Unit(nn.ConvTranspose2d(2 * D, 2 * D, S // 4, stride=S // 4, padding=0, bias=True))
        self.up1 = up_block(4 * D, D)
        self.up2 = up_block(2 * D, D)
        self.dec = conv_block(2 * D, D)
        self.out = nn.Conv2d(D, C, 3, stride=1, padding=1, bias=True)
        if kind in ("time", "class"):
            self.t1 = FCBlock(1, 2 * D)
            self.t2 = FCBlock(1, D)
        if kind == "class":
            self.c1 = FCBlock(K, 2 * D)
            self.c2 = FCBlock(K, D)

    def forward(self, x, tn=None, onehot=None):
        a = self.enc0(x)                                  # D  x28x28
        b = self.down1(a)                                 # D  x14x14
        c = self.down2(b)                                 # 2D x 7x 7
        f = F.gelu(F.avg_pool2d(c, self.pool))                    # Flatten: 2D x1x1
        u = self.unflat(f)                                # 2D x 7x 7
        if self.kind == "time":
            u = u + self.t1(tn)[:, :, None, None]
        elif self.kind == "class":
            u = self.c1(onehot)[:, :, None, None] * u + self.t1(tn)[:, :, None, None]
        u = self.up1(torch.cat([u, c], dim=1))            # D x14x14
        if self.kind == "time":
            u = u + self.t2(tn)[:, :, None, None]
        elif self.kind == "class":
            u = self.c2(onehot)[:, :, None, None] * u + self.t2(tn)[:, :, None, None]
        u = self.up2(torch.cat([u, b], dim=1))            # D x28x28
        u = self.dec(torch.cat([u, a], dim=1))            # D x28x28
        return self.out(u)                                # 1 x28x28

    def call(self, batch):
        """forward on a dict with 'input' and, where the kind needs them, 'tn' and 'onehot'"""
        if self.kind == "denoiser":
            return self(batch["input"])
        if self.kind == "time":
            return self(batch["input"], batch["tn"])
        return self(batch["input"], batch["tn"], batch["onehot"])


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def check_param_counts(verbose=False):
    for (kind, D), want in SPEC_PARAMS.items():
        got = count_params(UNet(kind, D))
        if verbose:
            print("%-8s D=%-3d %10d parameters (SPEC %d)" % (kind, D, got, want))
        assert got == want, "%s D=%d: %d parameters, SPEC says %d" % (kind, D, got, want)


# --------------------------------------------------------------------------------------------
# DDPM schedule and sampler step (float64)
# --------------------------------------------------------------------------------------------
def schedule(T=T_STEPS):
    betas = np.linspace(1e-4, 0.02, T, dtype=np.float64)
    alphas = 1.0 - betas
    abar = np.cumprod(alphas)
    return betas, alphas, abar


def ddpm_step(xt, eps, z, t, betas, alphas, abar):
    """x_{t-1} from x_t (SPEC Part 2), all float64 numpy"""
    ab = abar[t]
    ab_prev = abar[t - 1] if t > 0 else 1.0
    x0_hat = (xt - np.sqrt(1.0 - ab) * eps) / np.sqrt(ab)
    out = (np.sqrt(ab_prev) * betas[t] / (1.0 - ab)) * x0_hat \
        + (np.sqrt(alphas[t]) * (1.0 - ab_prev) / (1.0 - ab)) * xt
    if t > 0:
        out = out + np.sqrt(betas[t]) * z
    return out


# --------------------------------------------------------------------------------------------
# safetensors, by hand
# --------------------------------------------------------------------------------------------
_DT = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def save_safetensors(path, tensors, metadata=None):
    """tensors: ordered dict name -> array-like (stored as F32); metadata: dict of strings"""
    header = {}
    blobs = []
    off = 0
    for name, t in tensors.items():
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().numpy()
        a = np.ascontiguousarray(np.asarray(t, dtype=np.float32))
        raw = a.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((-len(hj)) % 8)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for raw in blobs:
            f.write(raw)


def load_safetensors(path):
    """returns (dict name -> numpy array, metadata dict)"""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + n
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        dt = np.dtype(_DT[info["dtype"]]).newbyteorder("<")
        out[name] = np.frombuffer(data[base + b:base + e], dtype=dt).reshape(info["shape"]).copy()
    return out, meta


# --------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------
FIXTURE_SEED = 20240601
FIXTURE_WIDTH = 8
FIXTURE_BATCH = 4
# other geometries (kind, channels, side, classes, file stem): the C UNet derives its shapes from ImageGeom
GEOM_FIXTURES = [("class", 3, 32, 7, "class_32x32x3k7"), ("time", 1, 16, 1, "time_16x16x1")]


def make_batch(kind, N, gen_seed, C=1, S=28, K=10):
    g = torch.Generator().manual_seed(gen_seed)
    clean = torch.rand(N, C, S, S, generator=g)
    batch = {}
    if kind == "denoiser":
        batch["input"] = clean + 0.5 * torch.randn(N, C, S, S, generator=g)
        batch["target"] = clean
        return batch
    _, _, abar = schedule()
    t = torch.randint(0, T_STEPS, (N,), generator=g)
    eps = torch.randn(N, C, S, S, generator=g)
    ab = torch.tensor(abar, dtype=torch.float64)[t].float().view(N, 1, 1, 1)
    batch["input"] = torch.sqrt(ab) * clean + torch.sqrt(1 - ab) * eps
    batch["target"] = eps
    batch["tn"] = (t.float() / T_STEPS).view(N, 1)
    if kind == "class":
        onehot = torch.zeros(N, K)
        rows = [3, 7 % K, None, 0] + [int(i) for i in torch.randint(0, K, (max(0, N - 4),), generator=g)]
        for i in range(N):
            if rows[i] is not None:
                onehot[i, rows[i]] = 1.0
        batch["onehot"] = onehot
    return batch


class _Snap(dict):
    """stores a detached copy: state_dict() entries and grads alias live tensors that later steps mutate"""

    def __setitem__(self, k, v):
        if isinstance(v, torch.Tensor):
            v = v.detach().clone()
        super().__setitem__(k, v)


def fixture_one(kind, out_dir, seed=FIXTURE_SEED, D=FIXTURE_WIDTH, N=FIXTURE_BATCH, C=1, S=28, K=10, name=None):
    torch.manual_seed(seed)
    model = UNet(kind, D, C, S, K)
    batch = make_batch(kind, N, seed + 1, C, S, K)
    tensors = _Snap()
    for k in ("input", "target", "tn", "onehot"):
        if k in batch:
            tensors[k] = batch[k]

    init_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for k, v in init_state.items():
        if not k.endswith("num_batches_tracked"):
            tensors["init." + k] = v
    buf_names = [k for k, _ in model.named_buffers() if not k.endswith("num_batches_tracked")]
    params = list(model.named_parameters())

    # one forward/backward in train mode on the init weights
    model.train()
    model.zero_grad(set_to_none=True)
    out = model.call(batch)
    loss = F.mse_loss(out, batch["target"])
    loss.backward()
    tensors["train.out"] = out
    tensors["train.loss"] = loss.detach().reshape(1)
    for k, p in params:
        tensors["train.grad." + k] = p.grad
    sd = model.state_dict()
    for k in buf_names:
        tensors["train.buf." + k] = sd[k]

    # 5 Adam steps from the init state
    model.load_state_dict(init_state)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(5):
        opt.zero_grad(set_to_none=True)
        out = model.call(batch)
        loss = F.mse_loss(out, batch["target"])
        loss.backward()
        losses.append(loss.item())
        opt.step()
    tensors["adam.loss"] = torch.tensor(losses, dtype=torch.float32)
    for k, v in model.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            tensors["adam.state." + k] = v

    # eval mode on the state after those Adam steps
    model.eval()
    opt.zero_grad(set_to_none=True)
    out = model.call(batch)
    loss = F.mse_loss(out, batch["target"])
    loss.backward()
    tensors["eval.out"] = out
    tensors["eval.loss"] = loss.detach().reshape(1)
    for k, p in params:
        tensors["eval.grad." + k] = p.grad

    meta = {"kind": kind, "width": D, "batch": N, "seed": seed, "torch": torch.__version__,
            "adam": "lr=1e-3 betas=(0.9,0.999) eps=1e-8", "loss": "mse mean"}
    if (C, S, K) != (1, 28, 10):  # MNIST fixtures predate these keys and stay byte-identical
        meta.update({"channels": C, "side": S, "classes": K})
    path = os.path.join(out_dir, "ref_%s.safetensors" % (name or kind))
    save_safetensors(path, tensors, meta)
    return path, tensors


def fixture_schedule(out_dir, seed=FIXTURE_SEED + 100, N=FIXTURE_BATCH):
    betas, alphas, abar = schedule()
    tensors = {"betas": betas, "alphas": alphas, "abar": abar}
    g = torch.Generator().manual_seed(seed)
    for t in (299, 150, 1, 0):
        xt = torch.randn(N, 1, 28, 28, generator=g).numpy()
        eps = torch.randn(N, 1, 28, 28, generator=g).numpy()
        z = torch.randn(N, 1, 28, 28, generator=g).numpy()
        out = ddpm_step(xt.astype(np.float64), eps.astype(np.float64), z.astype(np.float64),
                        t, betas, alphas, abar)
        tensors["step.%d.xt" % t] = xt
        tensors["step.%d.eps" % t] = eps
        tensors["step.%d.z" % t] = z
        tensors["step.%d.out" % t] = out
    eu = torch.randn(N, 1, 28, 28, generator=g).numpy()
    ec = torch.randn(N, 1, 28, 28, generator=g).numpy()
    gamma = np.array([5.0], dtype=np.float32)
    tensors["guide.eps_u"] = eu
    tensors["guide.eps_c"] = ec
    tensors["guide.gamma"] = gamma
    tensors["guide.out"] = eu.astype(np.float64) + gamma.astype(np.float64) * \
        (ec.astype(np.float64) - eu.astype(np.float64))
    meta = {"T": T_STEPS, "betas": "linspace(1e-4, 0.02, T), float64, stored F32",
            "abar_minus1": "1", "seed": seed, "torch": torch.__version__,
            "step": "x_{t-1} computed in float64 from the stored F32 inputs; z ignored at t=0"}
    path = os.path.join(out_dir, "ref_schedule.safetensors")
    save_safetensors(path, tensors, meta)
    return path, tensors


def cmd_fixtures(args):
    check_param_counts()
    torch.set_num_threads(1)
    for kind in KINDS:
        path, tensors = fixture_one(kind, args.out)
        _report(path, tensors)
    for kind, C, S, K, name in GEOM_FIXTURES:
        path, tensors = fixture_one(kind, args.out, C=C, S=S, K=K, name=name)
        _report(path, tensors)
    path, tensors = fixture_schedule(args.out)
    _report(path, tensors)


def _report(path, tensors):
    back, meta = load_safetensors(path)  # round trip check
    assert list(back.keys()) == list(tensors.keys())
    for k, v in tensors.items():
        v = v.detach().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
        assert np.array_equal(back[k], v.astype(np.float32)), k
    print("%s: %d tensors, %d bytes, %s" % (path, len(back), os.path.getsize(path), meta))


# --------------------------------------------------------------------------------------------
# dump-check
# --------------------------------------------------------------------------------------------
def cmd_dump_check(args):
    model = UNet(args.kind, args.width)
    ck, meta = load_safetensors(args.ckpt)
    sd = {k: torch.from_numpy(v) for k, v in ck.items()}
    res = model.load_state_dict(sd, strict=False)
    bad_missing = [k for k in res.missing_keys if not k.endswith("num_batches_tracked")]
    if bad_missing or res.unexpected_keys:
        print("missing: %s\nunexpected: %s" % (bad_missing, res.unexpected_keys))
        sys.exit(1)
    print("loaded %d tensors from %s (metadata %s)" % (len(ck), args.ckpt, meta))
    if args.mode == "eval":
        model.eval()
    else:
        model.train()
    if args.ref:
        ref, _ = load_safetensors(args.ref)
        batch = {k: torch.from_numpy(ref[k]) for k in ("input", "tn", "onehot") if k in ref}
        out_name = args.out_name or ("%s.out" % args.mode)
    else:
        g = torch.Generator().manual_seed(0)
        batch = {"input": torch.randn(4, 1, 28, 28, generator=g),
                 "tn": torch.tensor([[0.0], [0.25], [0.5], [0.99]]),
                 "onehot": torch.eye(10)[[3, 7, 0, 0]]}
        batch["onehot"][2].zero_()
    with torch.no_grad():
        out = model.call(batch)
    print("forward (%s mode): shape %s, mean %.6g, std %.6g" %
          (args.mode, tuple(out.shape), out.mean().item(), out.std().item()))
    if args.ref:
        want = torch.from_numpy(ref[out_name])
        print("max abs diff vs %s:%s = %.3e" % (args.ref, out_name, (out - want).abs().max().item()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("params")
    p = sub.add_parser("fixtures")
    p.add_argument("--out", default=os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")))
    p = sub.add_parser("dump-check")
    p.add_argument("--ckpt", required=True)
    p.add_argument("--kind", required=True, choices=KINDS)
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--ref", help="safetensors with input (tn, onehot) and an output tensor")
    p.add_argument("--out-name", help="output tensor in --ref (default eval.out / train.out)")
    p.add_argument("--mode", choices=("eval", "train"), default="eval")
    args = ap.parse_args()
    if args.cmd == "params":
        check_param_counts(verbose=True)
        for kind in KINDS:
            print("%-8s D=%d: %d parameters" % (kind, FIXTURE_WIDTH, count_params(UNet(kind, FIXTURE_WIDTH))))
    elif args.cmd == "fixtures":
        cmd_fixtures(args)
    else:
        cmd_dump_check(args)


if __name__ == "__main__":
    main()
