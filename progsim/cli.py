"""Command line: ``progsim study [FILE.toml]``, ``progsim plot RESULTS_DIR`` and ``progsim warmup``.

``progsim study`` runs a study file (or, without one, the embedded default GDP-vs-SVD
study), resuming whatever an earlier run in the same ``--out`` directory finished, then
writes the summary table and the convergence figure. ``progsim plot`` redraws them from
a results directory. ``progsim warmup`` compiles the kernels of common tile configurations
into the package's numba cache (see :mod:`progsim._warmup`), once after installing. Exit
status: 0, 1 when some trials failed, 2 for a bad study file or arguments.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="progsim", description="progsim studies: run grids of programming trials, plot them.")
    sub = parser.add_subparsers(dest="command", required=True)
    study = sub.add_parser("study", help="run a study (TOML file; default: the embedded GDP-vs-SVD study)")
    study.add_argument("file", nargs="?", type=pathlib.Path, help="study file (.toml); omit for the embedded default")
    study.add_argument("--out", type=pathlib.Path, help="results directory (default: results/<study name>)")
    study.add_argument("--workers", type=int, default=None, help="worker processes (default: available CPUs; 0: in this process)")
    study.add_argument("--dask", metavar="ADDRESS|local", help="run on a dask.distributed scheduler, or a LocalCluster")
    study.add_argument("--numba-threads", type=int, default=1, help="numba threads per trial (default 1)")
    study.add_argument("--retry-failed", action="store_true", help="run again the trials recorded as failed")
    study.add_argument("--no-plot", action="store_true", help="skip the summary table and figure")
    study.add_argument("--no-progress", action="store_true", help="no progress bar")
    plot = sub.add_parser("plot", help="convergence figure and summary table of a results directory")
    plot.add_argument("results", type=pathlib.Path)
    plot.add_argument("--y", default="err_fro", help="error column (default err_fro)")
    plot.add_argument("--x", nargs="+", default=["iteration", "pulses_total", "reads"], help="cost axes")
    warm = sub.add_parser("warmup", help="compile the kernels of common tile configurations into the numba cache")
    warm.add_argument("--devices", nargs="+", default=None,
                      help="device classes to compile for (default: ConstantStep SoftBounds; 'all': every class)")
    return parser


def _warmup(args) -> int:
    from progsim._warmup import DEFAULT_DEVICES, warmup

    t0 = time.perf_counter()
    steps = warmup(args.devices or DEFAULT_DEVICES, report=lambda what, s: print(f"{s:7.2f} s  {what}", flush=True))
    print(f"{len(steps)} calls in {time.perf_counter() - t0:.1f} s; later processes load these kernels from the cache")
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from progsim.study import default_study, load_study, plot_results, run_study

    try:
        if args.command == "warmup":
            return _warmup(args)
        if args.command == "plot":
            plot_results(args.results, y=args.y, xs=tuple(args.x))
            print(f"wrote {args.results / 'summary.csv'}, summary.md, convergence.png")
            return 0
        study = default_study() if args.file is None else load_study(args.file)
        out = args.out or pathlib.Path("results") / study.name
        result = run_study(study, out=out, workers=args.workers, dask=args.dask, numba_threads=args.numba_threads,
                           retry_failed=args.retry_failed, progress=not args.no_progress)
    except (ValueError, TypeError, ImportError) as exc:
        print(f"progsim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(result.trials)} trials ({result.n_failed} failed) in {out}: iterations.parquet, trials.parquet")
    if not args.no_plot and len(result.trials):
        plot_results(out)
        print(f"wrote {out / 'summary.csv'}, summary.md, convergence.png")
    return 1 if result.n_failed else 0


if __name__ == "__main__":
    sys.exit(main())
