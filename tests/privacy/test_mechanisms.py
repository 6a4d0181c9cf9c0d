"""The privacy mechanisms and the accountant: clipping bounds hold for every update a
client sends (real training), noise has the stated scale, and epsilon is the
library's own figure for the same settings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedseed.assemble import assemble
from fedseed.data import load_digits
from fedseed.data.partition import partition
from fedseed.errors import FedseedError
from fedseed.meta.base import ClientReply, Options
from fedseed.meta.projection import ProjectionAggregator
from fedseed.meta.trajectory import TrajectoryAggregator
from fedseed.privacy.accountant import account_round, calibrate, epsilon_after, next_round_allowed
from fedseed.privacy.mechanisms import (
    coefficient_weights,
    evidence_sensitivity,
    local_coefficients,
    loss_vector,
    private_group_evidence,
    private_mean,
    private_reply,
    release_steps,
)
from fedseed.privacy.settings import PrivacySettings, privacy_section
from fedseed.recipe import apply_assignment, load_builtin
from fedseed.recipe.evidence import CurvePoint, Evidence, ExampleCounts, FinalMetrics
from fedseed.recipe.privacy import Privacy
from fedseed.recipe.trajectory import decode_floats, decode_indices, decode_values
from fedseed.trajectory.first_order import fo_train
from fedseed.trajectory.zo import zo_train

CENTRAL = Privacy(noise_multiplier=1.0, clip=0.05, delta=1e-3, population=20)
LOCAL = CENTRAL.model_copy(update={"mode": "local"})


@pytest.fixture(scope="module")
def users():
    return partition(load_digits(), 3, alpha=1.0, seed=0)


def small():
    from fedseed.recipe.overrides import with_step_budget

    return with_step_budget(load_builtin("digits-mlp"), 8)


# --- accountant ------------------------------------------------------------------------

@pytest.mark.parametrize("sigma,rounds,delta", [(0.7, 3, 0.05), (1.5, 20, 1e-5),
                                                 (4.0, 100, 1 / 20)])
def test_epsilon_is_the_libraries_own_figure(sigma, rounds, delta):
    import dp_accounting
    from dp_accounting.rdp import RdpAccountant

    direct = RdpAccountant()
    direct.compose(dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(sigma),
                                                     rounds))
    ours = epsilon_after(Privacy(noise_multiplier=sigma, delta=delta, population=20), rounds)
    assert ours == pytest.approx(direct.get_epsilon(delta), rel=1e-9)
    assert ours > 0


def test_calibration_is_the_smallest_noise_within_the_target():
    sigma = calibrate(8.0, 20, 0.05, 20)
    within = Privacy(noise_multiplier=sigma, delta=0.05, population=20)
    assert epsilon_after(within, 20) <= 8.0
    assert epsilon_after(within.model_copy(update={"noise_multiplier": sigma * 0.99}),
                         20) > 8.0
    # More rounds at the same target need more noise per round.
    assert calibrate(8.0, 40, 0.05, 20) > sigma
    with pytest.raises(FedseedError, match="positive"):
        calibrate(0.0, 3, 0.05, 20)


def test_rounds_are_accounted_and_the_target_stops_the_next_one():
    sigma = calibrate(4.0, 3, 0.05, 20)
    p = Privacy(noise_multiplier=sigma, delta=0.05, population=20, target_epsilon=4.0)
    spent = []
    for _ in range(3):
        assert next_round_allowed(p)
        p = account_round(p)
        spent.append(p.epsilon)
    assert spent == sorted(spent) and spent[-1] <= 4.0
    assert p.rounds == 3 and not next_round_allowed(p)
    with pytest.raises(ValueError, match="exceeds target_epsilon"):
        Privacy(noise_multiplier=sigma, delta=0.05, population=20, target_epsilon=1.0,
                rounds=3, epsilon=spent[-1])


def test_settings_become_a_section_with_delta_below_one_over_n_and_chance_loss():
    recipe = load_builtin("digits-mlp")
    section = privacy_section(PrivacySettings(target_epsilon=8.0), 20, 5, recipe)
    assert section.delta == pytest.approx(20 ** -1.1) and section.delta < 1 / 20
    assert section.loss_bound == pytest.approx(math.log(10))
    # A language model's uniform guess is log of its vocabulary, not 1.
    lm = load_builtin("charlm-gpt2-tiny")
    assert privacy_section(PrivacySettings(target_epsilon=8.0), 20, 5, lm
                           ).loss_bound == pytest.approx(math.log(lm.tokenizer.vocab_size))
    with pytest.raises(FedseedError, match="exceeds 1/N"):
        privacy_section(PrivacySettings(target_epsilon=8.0, delta=0.1), 20, 5, recipe)
    with pytest.raises(ValueError, match="exceeds 1/population"):
        Privacy(noise_multiplier=1.0, delta=0.5, population=4)
    with pytest.raises(ValueError, match="round.s. accounted but epsilon 0"):
        Privacy(noise_multiplier=1.0, delta=0.01, population=4, rounds=3)
    assert epsilon_after(section, 5) <= 8.0
    with pytest.raises(FedseedError, match="dp-epsilon"):
        PrivacySettings()
    with pytest.raises(FedseedError, match="already spends"):
        privacy_section(PrivacySettings(target_epsilon=0.1, noise_multiplier=0.5), 20, 5,
                        recipe)


# --- clipping and noise ------------------------------------------------------------------

def test_every_first_order_update_a_client_sends_is_within_the_clip(users):
    meta = ProjectionAggregator(Options(), total_k=64).prepare(small())
    units = coefficient_weights(meta.projection)  # the norm each coefficient rebuilds
    assert units.min() > 0 and units.max() / units.min() > 10  # far from uniform
    for privacy in (CENTRAL.model_copy(update={"clip": 40.0}),
                    CENTRAL.model_copy(update={"clip": 1e-2})):
        meta_p = meta.model_copy(update={"privacy": privacy})
        for u in users:
            done = fo_train(meta_p, assemble(meta_p), u)
            raw = decode_values(done.recipe.projection.update, "float32") * units
            sent = private_reply(done.recipe)
            norm = float(np.linalg.norm(decode_values(sent.projection.update, "float32")
                                        * units))
            assert norm <= privacy.clip * (1 + 1e-5)
            if np.linalg.norm(raw) > privacy.clip:  # clipped, not zeroed
                assert norm == pytest.approx(privacy.clip, rel=1e-4)
            else:
                assert norm == pytest.approx(float(np.linalg.norm(raw)), rel=1e-5)
            assert sent.evidence.release == "withheld"
            assert sent.evidence.num_examples.train == 0 and sent.evidence.steps == 0


def test_every_zeroth_order_update_a_client_sends_is_within_the_clip(users):
    meta = TrajectoryAggregator(Options(), pool_size=32, steps=5).prepare(small())
    meta = meta.model_copy(update={"privacy": CENTRAL.model_copy(update={"clip": 1e-3})})
    for i, u in enumerate(users):
        done = zo_train(meta, u, seed=i)
        sent = private_reply(done.recipe)
        sums = decode_floats(sent.trajectory.update.sums)
        assert float(np.linalg.norm(sums)) <= 1e-3 * (1 + 1e-5)
        assert sent.evidence.release == "withheld"


def test_local_noise_has_the_stated_scale_and_central_noise_is_added_once():
    rng = np.random.default_rng(0)
    d = 4000
    vector = np.full(d, 10.0)  # clipped to norm 0.05 first
    sent = local_coefficients(vector, LOCAL, rng)
    clipped = vector * (0.05 / np.linalg.norm(vector))
    # Local: sensitivity 2 * clip (one device's whole data replaced).
    assert np.std(sent - clipped) == pytest.approx(1.0 * 2 * 0.05, rel=0.05)
    assert np.array_equal(local_coefficients(vector, CENTRAL, rng), clipped)
    # Central: n clipped vectors summed, N(0, (sigma clip)^2) on the sum, over n.
    n = 10
    many = np.tile(vector, (n, 1))
    mean, clipped_count = private_mean(many, CENTRAL, np.random.default_rng(1))
    assert clipped_count == n
    noise = (mean - clipped) * n
    assert np.std(noise) == pytest.approx(1.0 * 0.05, rel=0.05)
    # Local vectors are averaged as sent (their noise is already in them); one far
    # longer than any honest noisy vector is a lie, and is cut back to that length.
    honest = np.stack([local_coefficients(vector, LOCAL, np.random.default_rng(s))
                       for s in range(n)])
    local_mean, none = private_mean(honest, LOCAL)
    assert none == 0 and np.allclose(local_mean, honest.mean(axis=0))
    liar = np.vstack([honest[1:], np.full(d, 50.0)])
    cut, one = private_mean(liar, LOCAL)
    bound = 0.05 + 1.0 * 0.1 * (math.sqrt(d) + 6)
    assert one == 1 and np.linalg.norm(cut * n - honest[1:].sum(axis=0)) == \
        pytest.approx(bound, rel=1e-6)


def test_private_aggregation_clips_to_the_bound_not_to_the_median():
    tiny = CENTRAL.model_copy(update={"noise_multiplier": 1e-6})
    vectors = np.array([[3.0, 4.0], [0.003, 0.004], [30.0, 40.0]])
    mean, clipped = private_mean(vectors, tiny, np.random.default_rng(0))
    assert clipped == 2  # both above 0.05; uniform weights, every reply once
    expected = (np.array([0.03, 0.04]) * 2 + np.array([0.003, 0.004])) / 3
    assert np.allclose(mean, expected, atol=1e-6)


# --- evidence ------------------------------------------------------------------------------

def evidence(losses, steps):
    curve = [CurvePoint(step=s, train_loss=1.0, val_loss=v, val_metric=0.5)
             for s, v in zip(steps, losses, strict=True)]
    return Evidence(curve=curve, final=FinalMetrics(val_loss=min(losses), val_metric=0.5,
                                                    test_loss=0.3, test_metric=0.9),
                    num_examples=ExampleCounts(train=123, validation=17, test=20),
                    steps=steps[-1], best_step=steps[losses.index(min(losses))],
                    stopped_early=True, wall_seconds=3.2)


def test_loss_vector_reads_public_steps_and_clips_to_the_bound():
    recipe = apply_assignment(load_builtin("digits-mlp"), {"budget.max_steps": 100,
                                                          "budget.eval_every": 10})
    privacy = Privacy(noise_multiplier=1.0, delta=0.1, population=5, loss_bound=1.0,
                      curve_points=2)
    assert release_steps(recipe, privacy) == [50, 100]
    # Stopped early at 60: the point at or before 50 is 40's, the last is 60's.
    ev = evidence([5.0, 0.4, 0.2], [20, 40, 60])
    assert loss_vector(ev, recipe, privacy).tolist() == [0.4, 0.2]
    assert loss_vector(evidence([7.0], [10]), recipe, privacy).tolist() == [1.0, 1.0]
    assert evidence_sensitivity(privacy) == pytest.approx(math.sqrt(2))


def test_local_evidence_is_noised_and_releases_nothing_else(users):
    meta = small().model_copy(update={"privacy": LOCAL.model_copy(update={
        "loss_bound": 2.3})})
    from fedseed.personalize import personalize_examples

    done = personalize_examples(meta, users[0], method="client")
    sent = private_reply(done.recipe)
    ev = sent.evidence
    assert ev.release == "noised"
    assert [p.step for p in ev.curve] == release_steps(meta, meta.privacy)
    assert all(0.0 <= p.val_loss <= 2.3 and p.train_loss is None and p.val_metric == 0.0
               for p in ev.curve)
    assert ev.num_examples.train == 0 and ev.wall_seconds == 0.0 and not ev.optimizer_stats
    assert ev.final.test_metric is None and ev.steps == meta.budget.max_steps


def test_central_evidence_gives_each_configuration_one_noisy_mean():
    recipe = apply_assignment(load_builtin("digits-mlp"), {"budget.max_steps": 100,
                                                          "budget.eval_every": 10})
    privacy = Privacy(noise_multiplier=0.5, delta=0.1, population=6, loss_bound=2.0)
    replies = []
    for i, (lr, loss) in enumerate([(0.01, 0.2), (0.01, 0.4), (0.01, 0.6),
                                    (0.001, 1.5), (0.001, 1.7), (0.001, 1.9)]):
        r = recipe.model_copy(update={"evidence": evidence([loss, loss], [50, 100])})
        replies.append(ClientReply(recipe=r, digest=f"sha256:{i:064x}", node_id=i,
                                   assignment={"optimizer.lr": lr}))
    out = private_group_evidence(replies, privacy, np.random.default_rng(0))
    assert [r.digest for r in out] == [r.digest for r in replies]
    fast = {r.recipe.evidence.final.val_loss for r in out[:3]}
    slow = {r.recipe.evidence.final.val_loss for r in out[3:]}
    assert len(fast) == 1 and len(slow) == 1  # one release per configuration
    assert all(r.recipe.evidence.release == "noised" for r in out)
    # The noise on each group's sum has std sigma * sensitivity: over many draws the
    # group mean of three is off by sigma * loss_bound * sqrt(2) / 3 (a wide box, so
    # that clipping the noisy value back into it changes nothing).
    wide = privacy.model_copy(update={"loss_bound": 10.0, "noise_multiplier": 0.1})
    mid = [ClientReply(recipe=r.recipe.model_copy(update={"evidence": evidence(
        [5.0, 5.0], [50, 100])}), digest=r.digest, node_id=r.node_id,
        assignment=r.assignment) for r in replies[:3]]
    errors = [private_group_evidence(mid, wide, np.random.default_rng(seed))[0]
              .recipe.evidence.curve[0].val_loss - 5.0 for seed in range(400)]
    assert np.std(errors) == pytest.approx(0.1 * 10.0 * math.sqrt(2) / 3, rel=0.12)
    assert abs(np.mean(errors)) < 0.1


# --- noise in the aggregators, and what a local device sends ---------------------------------

def _replies(recipes):
    return [ClientReply(recipe=r, digest=f"sha256:{i:064x}", node_id=i, assignment={})
            for i, r in enumerate(recipes)]


def test_the_aggregators_add_the_stated_noise_to_the_clipped_sum(users):
    from fedseed.meta.base import AggregatorState

    privacy = CENTRAL.model_copy(update={"clip": 1e-3, "noise_multiplier": 2.0})
    zo = TrajectoryAggregator(Options(), pool_size=32, steps=5).prepare(small())
    zo = zo.model_copy(update={"privacy": privacy})
    sent = [private_reply(zo_train(zo, u, seed=i).recipe) for i, u in enumerate(users)]
    replies = _replies(sent)
    clean = np.mean([_dense(r) for r in sent], axis=0)
    draws = []
    for _ in range(100):
        nxt, _ = TrajectoryAggregator(Options())(zo, replies, AggregatorState())
        draws.append((nxt.trajectory.coefficient_array() - zo.trajectory.server_lr * clean)
                     * len(users) / zo.trajectory.server_lr)
    noise = np.concatenate(draws)
    assert np.std(noise) == pytest.approx(2.0 * 1e-3, rel=0.1)  # sigma * clip, on the sum
    assert abs(np.mean(noise)) < 2e-4

    fo = ProjectionAggregator(Options(), total_k=32).prepare(small())
    fo = fo.model_copy(update={"privacy": privacy.model_copy(update={"clip": 5.0})})
    units = coefficient_weights(fo.projection)
    out = [private_reply(fo_train(fo, assemble(fo), u).recipe) for u in users]
    clean = np.mean([decode_values(r.projection.update, "float32") for r in out], axis=0)
    draws = []
    for _ in range(100):
        nxt, _ = ProjectionAggregator(Options())(fo, _replies(out), AggregatorState())
        mean = decode_values(nxt.projection.coefficients, "float32")
        draws.append((mean - clean) * units * len(users))
    # In the mechanism's units (the rebuilt update's norm) the noise is isotropic.
    assert np.std(np.concatenate(draws)) == pytest.approx(2.0 * 5.0, rel=0.1)


def _dense(recipe):
    t = recipe.trajectory
    out = np.zeros(t.pool_size)
    out[decode_indices(t.update.seeds)] = decode_floats(t.update.sums)
    return out


def test_a_local_device_sends_noise_on_every_seed_and_only_public_counts(users):
    zo = TrajectoryAggregator(Options(), pool_size=32, steps=5).prepare(small())
    zo = zo.model_copy(update={"privacy": LOCAL.model_copy(update={"clip": 1e-3})})
    child = zo_train(zo, users[0], seed=0).recipe
    a, b = private_reply(child), private_reply(child)
    assert len(_dense(a).nonzero()[0]) == 32  # dense: its sparsity says nothing
    assert not np.array_equal(_dense(a), _dense(b))  # fresh noise each time
    assert a.trajectory.update.steps == zo.trajectory.steps  # the public budget
    assert a.lineage.created is None and a.evidence.release == "withheld"
    # float16 first-order coefficients saturate instead of failing on a noisy outlier.
    fo = ProjectionAggregator(Options(), total_k=32, dtype="float16").prepare(small())
    fo = fo.model_copy(update={"privacy": LOCAL.model_copy(update={
        "clip": 1e6, "noise_multiplier": 1e3})})
    sent = private_reply(fo_train(fo, assemble(fo), users[0]).recipe)
    values = decode_values(sent.projection.update, "float16")
    assert np.all(np.isfinite(values)) and np.abs(values).max() <= 65504.0
