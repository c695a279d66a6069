"""The embedded default study: ``progsim study`` with no file runs it.

GDP against SVD rank-one programming (the project's main comparison, ``studies/gdp_vs_svd.toml``
at its full size) on a small tile, sized to finish in about a minute on two cores.
"""

from progsim.study.spec import Study, loads_study

DEFAULT_STUDY = """\
[study]
name = "gdp_vs_svd_small"
seed = 0
seeds = 2
tol = 0.1

[tile]
shape = [100, 60]
device = ["ConstantStep", "Ideal"]
pulses = {scheme = "Stochastic", bl = 31}
io = "perfect"

[target]
kind = "normal"
rank = 5
max_abs = 0.3

[[algorithms.gdp]]
batch_size = 1
max_iter = 2000
record_every = 10

[[algorithms.gdp]]
batch_size = 10
max_iter = 300
record_every = 2

[[algorithms.gdp]]
batch_size = 50
max_iter = 60

[algorithms.svd]
max_iter = 100
"""


def default_study() -> Study:
    """The embedded default :class:`~progsim.study.Study` (``DEFAULT_STUDY``)."""
    return loads_study(DEFAULT_STUDY, name="gdp_vs_svd_small")
