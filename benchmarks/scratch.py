"""What scratch memory saves (issue 26, :mod:`xpnet.scratch`): the wide problem's full-batch fits
(60000 x 784 -> 256 -> 10, float32, 4 passes a fit, the loss recorded at the first and the last)
on NumPy and PyTorch with their large results recycled and with ``XPNET_SCRATCH=0`` (each made
anew), interleaved in one process with the peers written by hand: the clean NumPy loop,
PyTorch's ``nn.Module`` loop (autograd, ``torch.optim.SGD``) and the same steps hand-written in
PyTorch. Each row gives the time per pass and the memory the pass faulted in from the operating
system (minor page faults: each 4 KiB page, or 2 MiB one where NumPy asks for huge pages, counts
once; so it undercounts NumPy's).

    python benchmarks/scratch.py [--quick] [--repeats 5] [--json FILE]
"""

from __future__ import annotations

import resource
import statistics
from typing import Any

import peers
import wide
from common import (
    Runner,
    machine,
    measure_interleaved,
    repeats_of,
    save_json,
    script_parser,
    switched,
    usable_backends,
)

from xpnet import scratch


def _faulting(run: Runner, faults: list[int]) -> Runner:
    """``run`` that appends the minor page faults it caused to ``faults``."""

    def go() -> float | None:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        try:
            return run()
        finally:
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)

    return go


def runners(p: peers.Problem, passes: int) -> dict[str, Runner]:
    """The implementations compared, by label."""
    runs: dict[str, Runner] = {}
    names = list(usable_backends("numpy,torch", p.dtype))
    if "numpy" in names:
        runs["numpy clean"] = peers.numpy_clean_full(p, passes)
    if "torch" in names:
        runs["torch eager (nn.Module)"] = peers.torch_full(p, passes)
        runs["torch manual"] = peers.torch_manual_full(p, passes)
    for name in names:
        for on in (True, False):
            label = f"xpnet {name}, {'recycled' if on else 'made anew'}"
            runs[label] = switched(peers.xpnet_full(p, passes, name), scratch.ENV_VAR, on)
    return runs


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = script_parser(__doc__, "10000 rows", 5).parse_args(argv)
    repeats = repeats_of(args)
    n, passes = (10000, 2) if args.quick else (60000, 4)
    p = wide.problem(n)
    faults: dict[str, list[int]] = {}
    runs = {k: _faulting(r, faults.setdefault(k, [])) for k, r in runners(p, passes).items()}
    got = measure_interleaved(runs, repeats)
    times = {k: v["seconds"] / passes * 1e3 for k, v in got.items()}
    mib = {k: statistics.median(faults[k]) * 4096 / passes / 2**20 for k in got}
    print(f"scratch memory on {machine()}: wide {n}x784 -> 256 -> 10 float32, {passes}-pass fits "
          f"(median of {repeats}, interleaved)")  # fmt: skip
    head = f"{'implementation':30} {'ms/pass':>9} {'MiB faulted/pass':>17}"
    base = {"numpy": times.get("numpy clean"), "torch": times.get("torch eager (nn.Module)")}
    print(head + "  / its library's peer")
    for label, t in times.items():
        peer = base["torch" if "torch" in label else "numpy"]
        vs = f"{t / peer:21.2f}" if peer else ""
        print(f"{label:30} {t:9.1f} {mib[label]:17.1f}{vs}")
    report = {"machine": machine(), "rows": n, "passes": passes, "ms_per_pass": times,
              "mib_faulted_per_pass": mib}  # fmt: skip
    return save_json(report, args.json)


if __name__ == "__main__":
    main()
