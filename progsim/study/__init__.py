"""Studies: grids of trials run resumably on local processes or Dask, as tidy tables.

A programming study is a TOML file (or the equal mapping) read by :func:`load_study`;
:func:`run_study` runs its trials (:func:`programming_trial`) and returns the iteration
and trial tables (the design's "Study tables"); :func:`plot_results` draws convergence
figures and writes the summary table. Any other trial function runs under the same
harness: ``run_study({"lr": [0.1, 0.01], "seed": [0, 1, 2]}, trial_fn=my_trial, out=...)``.
"""

from progsim.study.default import DEFAULT_STUDY, default_study
from progsim.study.grid import expand_grid, int_seed, seed_sequence, trial_id
from progsim.study.plots import convergence_figure, plot_results, summary_table
from progsim.study.runners import StudyResult, run_study
from progsim.study.spec import Study, load_study, loads_study
from progsim.study.trial import make_target, programming_trial

__all__ = ["DEFAULT_STUDY", "Study", "StudyResult", "convergence_figure", "default_study", "expand_grid",
           "int_seed", "load_study", "loads_study", "make_target", "plot_results", "programming_trial",
           "run_study", "seed_sequence", "summary_table", "trial_id"]
