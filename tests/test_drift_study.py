"""The drift study (studies/drift_inference.py) and its sequence task (studies/_sequence.py)."""

from __future__ import annotations

import math
import pathlib
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "studies"))
import _sequence  # noqa: E402
import drift_inference as study  # noqa: E402

ONE_YEAR = 365.0 * 86400.0


# ---------------------------------------------------------------------------------- the task

def test_entropy_rate_matches_the_sampled_log_likelihood():
    # Monte Carlo estimate of H(X_t | X_{t-2}, X_{t-1}): the mean of -log P(x_t | x_{t-2}, x_{t-1})
    # over sampled sequences, whose standard error is the per-step std / sqrt(steps) (steps within
    # a sequence are correlated, so the sequences' means give the honest standard error)
    chain = _sequence.MarkovChain.random(n_symbols=5, concentration=0.4, chain_seed=3)
    seq = chain.sample(4000, 12, seed=1)
    nll = -np.log(chain.probs[seq[:, :-2], seq[:, 1:-1], seq[:, 2:]])
    per_seq = nll.mean(axis=1)
    se = per_seq.std(ddof=1) / math.sqrt(len(per_seq))
    assert abs(per_seq.mean() - chain.entropy_rate()) < 4 * se
    # conditioning on less cannot lower the entropy; the chain is far from uniform
    assert chain.entropy_rate() < chain.first_order_entropy() < math.log(5)


def test_pair_distribution_is_stationary():
    chain = _sequence.MarkovChain.random(n_symbols=4, concentration=0.5, chain_seed=0)
    pi = chain.pair_stationary()
    # one step of the pair chain: pi'(b, c) = sum_a pi(a, b) P(c | a, b)
    stepped = (pi[:, :, None] * chain.probs).sum(axis=0)
    np.testing.assert_allclose(stepped, pi, atol=1e-12)
    assert pi.min() > 0 and abs(pi.sum() - 1) < 1e-12


class _Oracle(torch.nn.Module):
    """Predicts with the chain's own conditional probabilities (context of two symbols)."""

    def __init__(self, chain):
        super().__init__()
        self.logp = torch.tensor(np.log(chain.probs), dtype=torch.float32)

    def forward(self, x):
        sym = x.argmax(dim=-1)
        prev = torch.cat([sym[:, :1], sym[:, :-1]], dim=1)  # position 0 has no full context: unscored
        return self.logp[prev, sym]


def test_perplexity_of_the_true_chain_is_the_floor():
    # perplexity() scores exactly the positions with two symbols of context: the chain itself
    # reaches exp(entropy rate) there, within the Monte Carlo error of the test set
    chain = _sequence.MarkovChain.random(n_symbols=6, concentration=0.3, chain_seed=0)
    data = _sequence.sequences(chain, n_train=10, n_test=3000, length=16, data_seed=5)
    ppl = _sequence.perplexity(_Oracle(chain), data[2], data[3])
    seq = chain.sample(3000, 16, seed=6)
    per_seq = -np.log(chain.probs[seq[:, :-2], seq[:, 1:-1], seq[:, 2:]]).mean(axis=1)
    se = per_seq.std(ddof=1) / math.sqrt(len(per_seq))  # of the log-perplexity
    assert abs(math.log(ppl) - chain.entropy_rate()) < 4 * se


def test_sequence_task_rejects_bad_sizes():
    with pytest.raises(ValueError, match="'n_symbols' parameter of MarkovChain.random must be an int >= 2"):
        _sequence.MarkovChain.random(n_symbols=1)
    with pytest.raises(ValueError, match="'length' parameter of MarkovChain.sample must be >= 3"):
        _sequence.MarkovChain.random().sample(4, 2, seed=0)


# ---------------------------------------------------------------------------------- the study

def test_drops_are_measured_from_the_unprogrammed_reference():
    rows = [("cnn", "digital", "unprogrammed", 0.0, False, 0, "accuracy", 0.9),
            ("cnn", "digital", "statistical", ONE_YEAR, True, 0, "accuracy", 0.85),
            ("lstm", "hwa", "unprogrammed", 0.0, False, 0, "perplexity", 3.5),
            ("lstm", "hwa", "statistical", ONE_YEAR, True, 0, "perplexity", 3.75)]
    d = study.drops(pd.DataFrame(rows, columns=study.COLUMNS), ONE_YEAR).set_index("model")["drop"]
    # lost accuracy and gained perplexity are both positive drops
    assert d["cnn"] == pytest.approx(0.05)
    assert d["lstm"] == pytest.approx(0.25)


def test_hwa_trained_cnn_loses_less_accuracy_at_one_year():
    # Six seeds of the digits CNN, each pre-trained digitally and then fine-tuned for the same
    # steps digitally or hardware-aware; both programmed statistically and read at t = 1 y with
    # global drift compensation (32 drift draws averaged per seed: the compensated drops differ
    # by about half a point, and with 4 draws the drift draws' own spread was as large as that).
    # The arms share the pre-training of their seed, so the drops are compared per seed: the
    # mean paired difference must exceed two standard errors of it (std over seeds / sqrt(seeds)).
    plan = replace(study.Plan(), models=("cnn",), seeds=6, methods=("statistical",), times=(ONE_YEAR,),
                   aihwkit=False, drift_draws=32, epochs={"cnn": 10}, fine_epochs={"cnn": 3})
    table, _ = study.run_study(plan, log=lambda *a: None)
    d = study.drops(table, ONE_YEAR).pivot(index="seed", columns="training", values="drop")
    diff = d["digital"] - d["hwa"]
    se = diff.std(ddof=1) / math.sqrt(len(diff))
    assert d["hwa"].mean() < d["digital"].mean()
    assert diff.mean() > 2 * se, d


def test_quick_run_writes_table_and_figure(tmp_path, capsys):
    table = study.main(["--quick", "--out", str(tmp_path)])
    for name in ("drift_inference.parquet", "drift_inference.csv", "programming.parquet", "drift_inference.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    stored = pd.read_parquet(tmp_path / "drift_inference.parquet")
    assert list(stored.columns) == study.COLUMNS
    pd.testing.assert_frame_equal(stored, table)
    ours = stored[~stored.programming.str.startswith("aihwkit")]
    # every model x training x method x t x compensation, one seed
    assert len(ours[ours.t > 0]) == 2 * 2 * len(study.METHODS) * len(study.TIMES) * 2
    assert set(ours.programming) == {"unprogrammed", *study.METHODS}
    assert np.isfinite(stored.value).all()
    acc = stored[stored.metric == "accuracy"].value
    assert acc.between(0, 1).all() and acc.max() > 0.5  # the CNN learned the digits (chance: 0.1)
    # cross-entropy is at least the entropy rate in expectation; 100 test sequences of 8 scored
    # steps keep an estimate within 10 % of it
    floor = study.make_task("lstm", study.quick_plan()).floor
    assert (stored[stored.metric == "perplexity"].value > 0.9 * floor).all()
    if study.aihwkit_available():
        assert {"aihwkit-statistical", "aihwkit-unprogrammed"} <= set(stored.programming)
    report = pd.read_parquet(tmp_path / "programming.parquet")
    assert set(report.programming) == set(study.METHODS)
    out = capsys.readouterr().out
    assert "1 y" in out and "perplexity floor" in out
