"""Users with different tasks in one federation: what the server accepts, and the
losses the aggregators see (fedseed.meta.tasks). Library level, real signatures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedseed.data.examples import Examples
from fedseed.errors import FedseedError
from fedseed.federation.config import FederationConfig
from fedseed.federation.server import judge_reply
from fedseed.meta.base import ClientReply
from fedseed.meta.tasks import chance_loss, on_meta_scale, parse_task_labels, task_allowed
from fedseed.provenance.trust import TrustStore


def _parity(examples: Examples) -> Examples:
    assert examples.labels is not None
    return Examples(source="parity", features=examples.features,
                    labels=(examples.labels % 2).astype(np.int64))


def _reply(state, client, examples, tmp_path, task):
    from fedseed.federation.client import train_round

    envelope, _ = train_round(state.meta, '{"optimizer.lr":0.01}', examples, client,
                              tmp_path / "w.safetensors", task=task)
    return envelope


def _judge(envelope, client, state, tasks):
    return judge_reply(7, envelope, client.pubkey_pem, {"optimizer.lr": 0.01}, state,
                       TrustStore(), "tofu", set(), tasks=tasks)


def test_a_two_label_reply_is_accepted_only_where_the_operator_allowed_two(
        world, user_examples, tmp_path):
    _, _, client, state = world
    envelope = _reply(state, client, _parity(user_examples), tmp_path,
                      {"task.num_labels": 2})

    refused = _judge(envelope, client, state, tasks=())
    accepted = _judge(envelope, client, state, tasks=(2, 10))

    assert refused.reply is None and refused.reason == "wrong assignment"
    assert accepted.reply is not None
    assert accepted.reply.recipe.task.num_labels == 2
    # Still the meta-recipe's child, with the assigned lr: only the task differs.
    assert accepted.reply.recipe.lineage.parents == [state.meta.digest]
    assert accepted.reply.recipe.optimizer.lr == 0.01


def test_another_change_beside_the_task_is_still_refused(world, user_examples, tmp_path):
    _, _, client, state = world
    # A 3-label task where only 2 and 10 are allowed, and another metric.
    three = _reply(state, client, user_examples, tmp_path, {"task.num_labels": 12})
    metric = _reply(state, client, user_examples, tmp_path, {"task.metric": "macro_f1"})

    assert _judge(three, client, state, tasks=(2, 10)).reason == "wrong assignment"
    assert _judge(metric, client, state, tasks=(2, 10)).reason == "wrong assignment"


def test_losses_are_put_on_the_meta_recipe_s_scale(world, user_examples, tmp_path):
    from fedseed.provenance.packed import read_envelope
    from fedseed.recipe.codec import parse_recipe

    _, _, client, state = world
    envelope = _reply(state, client, _parity(user_examples), tmp_path,
                      {"task.num_labels": 2})
    recipe = parse_recipe(read_envelope(envelope).payload, "reply")
    reply = ClientReply(recipe=recipe, digest="d", node_id=1, assignment={})

    scaled = on_meta_scale(reply, state.meta.recipe)

    factor = math.log(10) / math.log(2)
    ev, sv = reply.recipe.evidence, scaled.recipe.evidence
    assert sv.final.val_loss == pytest.approx(ev.final.val_loss * factor)
    assert [p.val_loss for p in sv.curve] == pytest.approx([p.val_loss * factor
                                                            for p in ev.curve])
    assert sv.final.val_metric == ev.final.val_metric  # accuracy is not rescaled
    same = ClientReply(recipe=state.meta.recipe.model_copy(update={"evidence": ev}),
                       digest="e", node_id=2, assignment={})
    assert on_meta_scale(same, state.meta.recipe) is same  # one task: untouched


def test_task_rules():
    from fedseed.recipe.task import Task

    ten = Task(kind="classification", modality="tabular", num_labels=10, metric="accuracy")
    two = ten.model_copy(update={"num_labels": 2})
    assert task_allowed(ten, ten, ()) and task_allowed(two, ten, (2,))
    assert not task_allowed(two, ten, (3,))
    assert not task_allowed(two.model_copy(update={"modality": "image"}), ten, (2,))
    assert chance_loss(two) == pytest.approx(math.log(2))
    assert parse_task_labels(" 10, 2,2 ") == (2, 10) and parse_task_labels("") == ()


@pytest.mark.parametrize(("value", "message"), [
    ("10,x", "task-labels: 'x' is not a label count"),
    ("1", "task-labels: '1' is not a label count"),
])
def test_bad_task_labels_are_refused_with_the_value(value, message):
    with pytest.raises(FedseedError, match=message):
        FederationConfig(task_labels=value)


def test_task_labels_are_refused_for_a_trajectory():
    with pytest.raises(FedseedError, match="task-labels mixes tasks"):
        FederationConfig(task_labels="2", mode="trajectory", aggregator="trajectory")
