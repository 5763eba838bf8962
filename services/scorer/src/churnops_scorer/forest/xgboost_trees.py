"""A fitted XGBoost model's trees, parsed from its JSON model with XGBoost's own rules.

The rules (XGBoost's predictor, `GetNextNode`, and `common::Decision`): values are float32;
`x < split_condition` goes left; a missing value takes the split's default direction; a category
in the split's set goes right, any other goes left. They are rewritten into the common form of
`trees.Rule`: with float32 inputs, `x < c` is `x <= (the float32 just below c)`, and the left
set of a categorical split is the categories not in XGBoost's set. XGBoost has no zero rule (the
tables are built with a zero window of 0), and sends a negative or out-of-range code left: the
scorer's feature matrix writes only known codes or NaN, which takes the default direction.

Only what the trainer fits is read: a `gbtree` booster with the `binary:logistic` objective and
one tree per round; anything else raises `Unsupported` and is scored by XGBoost itself.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from churnops_scorer.forest.trees import Node, Rule, Tree, build_tree


class Unsupported(ValueError):
    """A model this parser does not read (another objective or booster)."""


def parse_trees(
    model: Any, n_features: int, n_categories: dict[int, int]
) -> tuple[list[Tree], float]:
    """(trees up to the best iteration, base margin) of a fitted XGBClassifier.

    `n_categories`: per categorical feature, how many category codes the input can have.
    """
    learner = json.loads(model.get_booster().save_raw("json"))["learner"]
    objective = learner["objective"]["name"]
    booster = learner["gradient_booster"]
    if objective != "binary:logistic" or booster["name"] != "gbtree":
        raise Unsupported(f"{booster['name']} booster with objective {objective}")
    if int(booster["model"]["gbtree_model_param"].get("num_parallel_tree", "1")) != 1:
        raise Unsupported("more than one tree per boosting round")
    raw_trees = booster["model"]["trees"]
    rounds = _rounds(model)
    if rounds is not None:
        raw_trees = raw_trees[:rounds]
    base = float(str(learner["learner_model_param"]["base_score"]).strip("[]"))
    base_margin = math.log(base / (1.0 - base))  # base_score is a probability for logistic
    trees = [build_tree(_root(raw, n_categories), n_features) for raw in raw_trees]
    return trees, base_margin


def _rounds(model: Any) -> int | None:
    """Rounds predict uses: up to the best iteration when early stopping set one."""
    try:
        return int(model.best_iteration) + 1
    except AttributeError:
        return None


def _root(raw: dict[str, Any], n_categories: dict[int, int]) -> Node:
    left, right = raw["left_children"], raw["right_children"]
    conditions = np.asarray(raw["split_conditions"], dtype=np.float32)
    right_sets = _categories(raw)

    def node(nid: int) -> Node:
        cover = float(raw["sum_hessian"][nid])
        if left[nid] == -1:
            return Node(cover=cover, leaf_value=float(conditions[nid]), leaf_id=nid)
        feature = int(raw["split_indices"][nid])
        default_left = bool(raw["default_left"][nid])
        if raw["split_type"][nid] == 1:
            goes_right = right_sets[nid]
            codes = n_categories.get(feature, max(goes_right, default=-1) + 1)
            lefts = frozenset(range(codes)) - goes_right
            rule = Rule(feature, True, 0.0, lefts, nan_left=default_left, zero_left=0 in lefts)
        else:
            below = float(np.nextafter(conditions[nid], np.float32(-np.inf)))
            rule = Rule(
                feature, False, below, frozenset(), nan_left=default_left, zero_left=below >= 0.0
            )
        return Node(cover=cover, rule=rule, children=[node(left[nid]), node(right[nid])])

    return node(0)


def _categories(raw: dict[str, Any]) -> dict[int, frozenset[int]]:
    """Per categorical split node: the category codes XGBoost sends right."""
    out: dict[int, frozenset[int]] = {}
    values = raw.get("categories", [])
    for nid, start, size in zip(
        raw.get("categories_nodes", []),
        raw.get("categories_segments", []),
        raw.get("categories_sizes", []),
        strict=True,
    ):
        out[int(nid)] = frozenset(int(c) for c in values[start : start + size])
    return out
