"""The Gaussian mechanisms behind a meta-recipe's ``privacy`` section: clip what one
client releases, add noise of ``noise_multiplier x sensitivity``.

What a client releases, and its sensitivity (one client's whole data added or removed
for ``central``; replaced, for ``local``, where the server sees each client's own
message):

* **coefficients** (zeroth-order per-seed sums, first-order projection coefficients):
  the vector clipped to L2 norm ``clip``. First-order coefficients are first weighted
  by the norm of what each one rebuilds (:func:`coefficient_weights`): the bound and
  the noise are then in the units of the reconstructed update, and every tensor gets
  noise in proportion to the update it carries (unweighted, a large tensor's tiny
  coefficients get the same noise as a bias's, and the rescale ``D/K`` blows it up).
  Central: the server clips every reply and adds ``N(0, (sigma clip)^2)`` to the sum
  before dividing by the number of replies (DP-FedAvg, McMahan et al., ICLR 2018);
  sensitivity ``clip``. Local: each device adds ``N(0, (sigma 2 clip)^2)`` to its own
  clipped vector; sensitivity ``2 clip``. Every reply counts once (uniform weights: an
  example count would be one more private number), and a diverged run sends zeros.
* **evidence** (recipes mode): the validation loss at ``curve_points`` public steps
  (``round(j / P x max_steps)``; a run that stopped earlier reports its last point),
  each clipped to ``[0, loss_bound]``: a vector in a box whose diagonal,
  ``loss_bound sqrt(P)``, is the sensitivity under both relations. Central: the server
  noises each configuration's *sum* over its clients (every client tried one
  configuration, so the vector of sums moves by at most that much) and every reply of
  the configuration then carries the group's noisy mean; local: each device noises
  its own vector. Counts, timings, training losses and optimizer statistics are not
  released; nor is a classification metric (aggregators rank by loss; a perplexity is
  ``exp`` of the noisy loss, which is post-processing).

Everything after the noise (aggregation, budget fits, the meta-recipe) is
post-processing and spends nothing. The noise comes from 128 bits of OS entropy per
call: a seed anyone could know would undo the guarantee.
"""

from __future__ import annotations

import math
import secrets
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from fedseed.recipe.evidence import CurvePoint, Evidence, ExampleCounts, FinalMetrics
from fedseed.recipe.model import Recipe
from fedseed.recipe.privacy import Privacy
from fedseed.recipe.projection import Projection
from fedseed.recipe.trajectory import (
    SeedUpdate,
    decode_floats,
    decode_indices,
    decode_values,
    encode_floats,
    encode_indices,
    encode_values,
)

if TYPE_CHECKING:
    from fedseed.meta.base import ClientReply


def noise_source() -> np.random.Generator:
    """A generator seeded from the OS's entropy pool (never from a configured seed)."""
    return np.random.default_rng(secrets.randbits(128))


def clip(vector: np.ndarray, bound: float) -> np.ndarray:
    """``vector`` scaled down to L2 norm ``bound`` if it is longer (float64)."""
    v = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(v))
    return v * (bound / norm) if norm > bound else v


def coefficient_sensitivity(privacy: Privacy) -> float:
    """L2 sensitivity of one client's coefficient release (see the module docstring)."""
    return privacy.clip if privacy.mode == "central" else 2.0 * privacy.clip


def local_coefficients(vector: np.ndarray, privacy: Privacy,
                       rng: np.random.Generator | None = None) -> np.ndarray:
    """What a device sends: its vector clipped, plus (local mode) its own noise."""
    clipped = clip(vector, privacy.clip)
    if privacy.mode == "local":
        rng = rng or noise_source()
        clipped = clipped + rng.normal(0.0, privacy.noise_multiplier
                                       * coefficient_sensitivity(privacy), clipped.shape)
    return clipped


def private_mean(vectors: np.ndarray, privacy: Privacy,
                 rng: np.random.Generator | None = None) -> tuple[np.ndarray, int]:
    """The server's step: the mean of the clients' vectors, every one counted once.
    Central: each clipped, noise added to the sum; local: already clipped and noised
    on the devices. Returns the mean and how many vectors were clipped here."""
    vectors = np.asarray(vectors, dtype=np.float64)
    n = len(vectors)
    if privacy.mode == "local":
        # An honest noisy vector is shorter than this but for odds below 1e-9; a longer
        # one is a lie, cut back (post-processing, spends nothing).
        d = vectors.shape[1]
        bound = privacy.clip + privacy.noise_multiplier \
            * coefficient_sensitivity(privacy) * (math.sqrt(d) + 6.0)
        norms = np.linalg.norm(vectors, axis=1)
        scale = np.where(norms > bound, bound / np.maximum(norms, 1e-30), 1.0)
        return (vectors * scale[:, None]).mean(axis=0), int((scale < 1.0).sum())
    norms = np.linalg.norm(vectors, axis=1)
    scale = np.where(norms > privacy.clip, privacy.clip / np.maximum(norms, 1e-30), 1.0)
    rng = rng or noise_source()
    total = (vectors * scale[:, None]).sum(axis=0)
    total = total + rng.normal(0.0, privacy.noise_multiplier * privacy.clip, total.shape)
    return total / n, int((scale < 1.0).sum())


def coefficient_weights(projection: Projection) -> np.ndarray:
    """Per first-order coefficient, the norm of the update one unit of it rebuilds:
    ``scale_g sqrt(D_g)`` for a Gaussian basis (``z`` has norm ``sqrt(D_g)``),
    ``sqrt(D_g / K_g)`` for a Count Sketch (each bucket spreads over that many entries).
    Public (from the section), so weighting is a fixed change of units."""
    from fedseed.trajectory.projection import scale_of

    parts = []
    for g in projection.groups:
        norm = scale_of(g) * math.sqrt(g.size) if g.basis == "gaussian" \
            else math.sqrt(g.size / g.k)
        parts.append(np.full(g.k, norm * projection.server_lr))
    return np.concatenate(parts)


# --- coefficient replies ---------------------------------------------------------------

def private_reply(child: Recipe, rng: np.random.Generator | None = None) -> Recipe:
    """A device's reply under its meta-recipe's ``privacy`` section: coefficients
    clipped (and, local, noised) and evidence withheld; in recipes mode, evidence
    noised on the device (local) or left for the trusted server to noise (central)."""
    privacy = child.privacy
    if privacy is None:
        return child
    if child.lineage is not None:  # when a device trained is a timing channel
        child = child.model_copy(update={"lineage": child.lineage.model_copy(
            update={"created": None})})
    if child.trajectory is not None and child.trajectory.update is not None:
        t, u = child.trajectory, child.trajectory.update
        dense = np.zeros(t.pool_size, dtype=np.float64)
        dense[decode_indices(u.seeds)] = decode_floats(u.sums)
        sent = local_coefficients(dense, privacy, rng).astype(np.float32)
        seeds = np.flatnonzero(sent)  # local noise touches every seed of the pool
        # The public step budget: where a run diverged would say something of its data.
        update = SeedUpdate(seeds=encode_indices(seeds), sums=encode_floats(sent[seeds]),
                            steps=t.steps)
        return child.model_copy(update={
            "trajectory": t.model_copy(update={"update": update}),
            "evidence": withheld_evidence()})
    if child.projection is not None and child.projection.update is not None:
        p, text = child.projection, child.projection.update
        weights = coefficient_weights(p)
        sent = local_coefficients(decode_values(text, p.dtype) * weights, privacy,
                                  rng) / weights
        if p.dtype == "float16":
            sent = np.clip(sent, -65504.0, 65504.0)
        return child.model_copy(update={
            "projection": p.model_copy(update={"update": encode_values(sent, p.dtype)}),
            "evidence": withheld_evidence()})
    if privacy.mode == "local" and child.evidence is not None:
        released = loss_vector(child.evidence, child, privacy)
        rng = rng or noise_source()
        noisy = released + rng.normal(0.0, privacy.noise_multiplier
                                      * evidence_sensitivity(privacy), released.shape)
        return child.model_copy(update={"evidence": noised_evidence(noisy, child, privacy)})
    return child


def withheld_evidence() -> Evidence:
    """Evidence that releases nothing: one placeholder point, no counts."""
    zero = CurvePoint(step=0, val_loss=0.0, val_metric=0.0)
    return Evidence(curve=[zero], final=FinalMetrics(val_loss=0.0, val_metric=0.0),
                    num_examples=ExampleCounts(train=0, validation=0, test=0), steps=0,
                    best_step=0, stopped_early=False, wall_seconds=0.0, release="withheld")


def releases_only_what_it_may(reply: Recipe, meta: Recipe) -> bool:
    """Whether ``reply``'s evidence is exactly what ``meta``'s privacy section lets a
    device send: no privacy, anything; withheld, the placeholder and nothing else;
    noised, losses at the public steps within the box and nothing else; central
    recipes, exact (the trusted server noises them)."""
    ev, privacy = reply.evidence, meta.privacy
    expected = expected_release(meta)
    if ev is None or ev.release != expected:
        return False
    if privacy is None or expected == "exact":
        return True
    if expected == "withheld":
        return ev == withheld_evidence()
    steps = release_steps(meta, privacy)
    curve = [p.step for p in ev.curve]
    return (curve == steps and ev.steps == meta.budget.max_steps and not ev.diverged
            and ev.num_examples == ExampleCounts(train=0, validation=0, test=0)
            and ev.wall_seconds == 0.0 and not ev.optimizer_stats
            and not ev.stopped_early and ev.final.test_loss is None
            and ev.final.test_metric is None
            and all(p.train_loss is None and 0.0 <= p.val_loss <= privacy.loss_bound * (1 + 1e-5)
                    for p in ev.curve)
            and (ev.final.val_loss, ev.best_step) in {(p.val_loss, p.step) for p in ev.curve})


def expected_release(meta: Recipe) -> str:
    """What a reply's ``evidence.release`` must be under ``meta``'s privacy section."""
    if meta.privacy is None:
        return "exact"
    if meta.trajectory is not None or meta.projection is not None:
        return "withheld"
    return "noised" if meta.privacy.mode == "local" else "exact"


# --- evidence ------------------------------------------------------------------------

def release_steps(recipe: Recipe, privacy: Privacy) -> list[int]:
    """The public steps evidence is released at: ``j / P`` of the step budget."""
    top = recipe.budget.max_steps
    steps = sorted({max(1, round(top * j / privacy.curve_points))
                    for j in range(1, privacy.curve_points + 1)})
    return steps


def loss_vector(evidence: Evidence, recipe: Recipe, privacy: Privacy) -> np.ndarray:
    """The validation loss at each release step (the latest point at or before it;
    the first point if none is), clipped to ``[0, loss_bound]``. A diverged run's
    worst-value point clips to the bound."""
    curve = sorted(evidence.curve, key=lambda p: p.step)
    out = []
    for step in release_steps(recipe, privacy):
        before = [p for p in curve if p.step <= step]
        point = before[-1] if before else curve[0]
        out.append(min(max(point.val_loss, 0.0), privacy.loss_bound))
    return np.asarray(out, dtype=np.float64)


def evidence_sensitivity(privacy: Privacy) -> float:
    """L2 diameter of the released box: ``loss_bound sqrt(curve_points)``."""
    return privacy.loss_bound * math.sqrt(privacy.curve_points)


def noised_evidence(noisy: np.ndarray, recipe: Recipe, privacy: Privacy) -> Evidence:
    """Evidence holding only the noisy losses (post-processing: clipped to the box,
    6 significant digits; the final point is the curve's best noisy loss)."""
    perplexity = recipe.task.metric == "perplexity"
    points = []
    for step, value in zip(release_steps(recipe, privacy), noisy, strict=False):
        loss = float(f"{min(max(float(value), 0.0), privacy.loss_bound):.6g}")
        metric = float(f"{math.exp(loss):.6g}") if perplexity else 0.0
        points.append(CurvePoint(step=step, val_loss=loss, val_metric=metric))
    best = min(points, key=lambda p: (p.val_loss, p.step))
    return Evidence(curve=points, final=FinalMetrics(val_loss=best.val_loss,
                                                     val_metric=best.val_metric),
                    num_examples=ExampleCounts(train=0, validation=0, test=0),
                    steps=recipe.budget.max_steps, best_step=best.step, stopped_early=False,
                    wall_seconds=0.0, release="noised")


def private_group_evidence(replies: Sequence[ClientReply], privacy: Privacy,
                           rng: np.random.Generator | None = None) -> list[ClientReply]:
    """Central mode, recipes: every reply's evidence replaced by its configuration's
    noisy mean (noise on each configuration's sum of clipped loss vectors)."""
    from fedseed.meta.base import ClientReply, assignment_key  # meta imports this module

    rng = rng or noise_source()
    groups: dict[str, list[ClientReply]] = defaultdict(list)
    for reply in replies:
        groups[assignment_key(reply.assignment)].append(reply)
    out: dict[str, ClientReply] = {}
    for key in sorted(groups):
        members = groups[key]
        vectors = [loss_vector(r.recipe.evidence, r.recipe, privacy)  # type: ignore[arg-type]
                   for r in members]
        total = np.sum(vectors, axis=0)
        total = total + rng.normal(0.0, privacy.noise_multiplier
                                   * evidence_sensitivity(privacy), total.shape)
        for r in members:
            evidence = noised_evidence(total / len(members), r.recipe, privacy)
            out[r.digest] = ClientReply(recipe=r.recipe.model_copy(update={"evidence": evidence}),
                                        digest=r.digest, node_id=r.node_id,
                                        assignment=r.assignment)
    return [out[r.digest] for r in replies]


__all__ = ["clip", "coefficient_sensitivity", "coefficient_weights", "evidence_sensitivity",
           "expected_release",
           "local_coefficients", "loss_vector", "noise_source", "noised_evidence",
           "releases_only_what_it_may",
           "private_group_evidence", "private_mean", "private_reply", "release_steps",
           "withheld_evidence"]
