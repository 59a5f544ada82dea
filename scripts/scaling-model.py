#!/usr/bin/env python3
"""Data-parallel scaling model for tao-swift on N machines (docs/distributed.md).

Per step, every machine computes its batch for T_c seconds (weak scaling: batch per machine fixed),
then the gradients (M bytes) are averaged with a ring allreduce, which sends 2(N-1)/N * M bytes over
each link and takes 2(N-1) latency-bound rounds per bucket:
    T_ar = 2(N-1)/N * M / B  +  2(N-1) * L * ceil(M / bucket)
With the exchange overlapped with backward (the buckets start as their gradients are final), the part
of T_ar that backward (about 2/3 of T_c) cannot hide is exposed; the last bucket (the first
layers' gradients, final when backward ends) never hides:
    exposed = max(T_ar - (2/3) T_c, T_ar * last / M)   (overlap)      exposed = T_ar   (none)
Efficiency E = T_c / (T_c + exposed); the N machines run N * E times one machine's images per second.
Inputs are measured values (docs/distributed.md says where each comes from); edit them for yours.
"""
import math

GB = 1e9
networks = {"10 GbE": 1.10 * GB, "25 GbE": 2.80 * GB}   # achievable payload bandwidth (~88-90% of line rate)
latency = 30e-6                                          # seconds per ring round over TCP
bucket = 16 * 2**20                                      # Trainer.bucketFloats: 4 Mi floats = 16 MiB (bytes)
# (model, bytes of gradients, seconds of compute per step on a 2-core machine, batch per machine)
models = [
    ("ResNet-10 Fashion-MNIST demo, batch 128", 19.6e6, 0.0934, 128),
    ("ResNet-18 224², batch 32", 46.8e6, None, 32),     # filled from the command line, see below
]

def step(M, Tc, N, B, overlap):
    Tar = 2 * (N - 1) / N * M / B + 2 * (N - 1) * latency * math.ceil(M / bucket)
    last = M - bucket * ((M - 1) // bucket)            # the last bucket (the first layers' gradients)
    exposed = max(Tar - 2 / 3 * Tc, Tar * last / M) if overlap else Tar
    return Tar, Tc / (Tc + exposed)

if __name__ == "__main__":
    import sys
    r18 = float(sys.argv[1]) if len(sys.argv) > 1 else 1.30
    models[1] = (models[1][0], models[1][1], r18, models[1][2])
    print("| model | machine | network | N | allreduce ms | efficiency (no overlap) | efficiency (overlap) | speed-up (overlap) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, M, Tc2, batch in models:
        for cores in (2, 32):
            Tc = Tc2 * 2 / cores            # compute scales with cores (measured: 2 cores)
            for net, B in networks.items():
                for N in (8, 16, 32, 64):
                    Tar, e0 = step(M, Tc, N, B, False)
                    _, e1 = step(M, Tc, N, B, True)
                    print(f"| {name} | {cores} cores, {Tc*1e3:.0f} ms/step | {net} | {N} | {Tar*1e3:.0f} | {e0:.0%} | {e1:.0%} | {N*e1:.1f}× |")
