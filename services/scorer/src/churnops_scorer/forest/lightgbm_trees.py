"""A fitted LightGBM model's trees, parsed from `Booster.dump_model()` with LightGBM's own rules.

The rules (LightGBM's tree.h, `NumericalDecision` / `CategoricalDecision`): `x <= threshold`
goes left; a missing value is read as 0 unless the split's missing type is NaN, and the split's
default direction takes a missing value (type NaN) or a zero (type Zero); LightGBM reads
`|x| <= 1e-35f` as zero. A category goes left when its code is in the split's set; a missing,
negative or unknown code goes right.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from churnops_scorer.forest.trees import Node, Rule, Tree, build_tree

# LightGBM's kZeroThreshold: the float 1e-35f, a little above the double 1e-35.
ZERO_THRESHOLD = float(np.float32(1e-35))


def parse_trees(dump: dict[str, Any], n_features: int) -> list[Tree]:
    """`dump`: `Booster.dump_model()` (it holds the trees up to the best iteration, if any)."""
    return [build_tree(_node(info["tree_structure"]), n_features) for info in dump["tree_info"]]


def _node(raw: dict[str, Any]) -> Node:
    if "split_feature" not in raw:
        return Node(
            cover=float(raw.get("leaf_count", 1) or 0),
            leaf_value=float(raw.get("leaf_value", 0.0)),
            leaf_id=int(raw.get("leaf_index", 0)),
        )
    left, right = _node(raw["left_child"]), _node(raw["right_child"])
    return Node(cover=left.cover + right.cover, rule=_rule(raw), children=[left, right])


def _rule(raw: dict[str, Any]) -> Rule:
    feature = int(raw["split_feature"])
    if raw["decision_type"] == "==":
        categories = frozenset(int(c) for c in str(raw["threshold"]).split("||"))
        return Rule(feature, True, 0.0, categories, nan_left=False, zero_left=0 in categories)
    threshold = float(raw["threshold"])
    missing = raw.get("missing_type", "None")
    default_left = bool(raw.get("default_left", False))
    return Rule(
        feature,
        False,
        threshold,
        frozenset(),
        # type NaN: missing takes the default; Zero: NaN is read as 0, a zero, the default.
        nan_left=default_left if missing in ("NaN", "Zero") else threshold >= 0.0,
        zero_left=default_left if missing == "Zero" else threshold >= 0.0,
    )
