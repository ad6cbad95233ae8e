#!/usr/bin/python3
"""Reference Frechet distances for tests/test_eval.c, computed with numpy and scipy.

Run it with Debian's python (/usr/bin/python3 with python3-numpy and python3-scipy):
    /usr/bin/python3 tools/fid_reference.py [--out tests/data/fid_ref.safetensors]

It draws small feature sets from fixed seeds, stores them as float32 tensors, and stores the
Frechet distance between the Gaussian fits of each pair (numpy.cov, i.e. divisor N - 1) in the
metadata, as 17 significant digits, computed in float64 from exactly those float32 values:
    FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr(sqrtm(S1 S2))
with scipy.linalg.sqrtm (the formula of the FID papers and of pytorch-fid), cross-checked
against the symmetric form tr(sqrt(sqrt(S1) S2 sqrt(S1))) from numpy.linalg.eigh.

Cases:
  a1/b1  d=16, 400 and 300 rows, correlated Gaussians with different means and covariances
  a2/b2  d=16, 12 and 500 rows: a2's covariance has rank 11 (singular), as for few samples
  a3/b3  d=32, 600 rows each, nearly identical distributions (a small FD, as for real data)
"""
import argparse
import json
import os
import struct

import numpy as np
import scipy.linalg


def save_safetensors(path, tensors, metadata):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        raw = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((-len(hj)) % 8)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for raw in blobs:
            f.write(raw)


def fd_scipy(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean, _ = scipy.linalg.sqrtm(s1 @ s2, disp=False)
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def psd_sqrt(s):
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def fd_eigh(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    r = psd_sqrt(s1)
    m = r @ s2 @ r
    w = np.linalg.eigvalsh((m + m.T) / 2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(w, 0, None)).sum())


def gaussian(rng, n, d, shift, scale):
    mix = rng.normal(size=(d, d)) * scale / np.sqrt(d)
    return (rng.normal(size=(n, d)) @ mix + shift).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "fid_ref.safetensors")))
    args = ap.parse_args()
    rng = np.random.default_rng(20240601)
    base = rng.normal(size=(600, 32)) @ (rng.normal(size=(32, 32)) / 6)
    cases = {
        "1": (gaussian(rng, 400, 16, 0.0, 1.0), gaussian(rng, 300, 16, 0.5, 1.5)),
        "2": (gaussian(rng, 12, 16, 1.0, 1.0), gaussian(rng, 500, 16, 0.0, 1.0)),
        "3": (base.astype(np.float32),
              (base * 1.02 + 0.01 + 0.05 * rng.normal(size=base.shape)).astype(np.float32)),
    }
    tensors, meta = {}, {}
    for k, (a, b) in cases.items():
        f1, f2 = fd_scipy(a, b), fd_eigh(a, b)
        rel = abs(f1 - f2) / max(abs(f1), 1e-12)
        print(f"case {k}: a {a.shape} b {b.shape}  FD scipy.sqrtm {f1:.17g}  eigh {f2:.17g}  rel diff {rel:.2e}")
        assert rel < 1e-7, "the two formulas disagree"
        tensors["a" + k], tensors["b" + k] = a, b
        meta["fd" + k] = repr(f1)
    save_safetensors(args.out, tensors, meta)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
