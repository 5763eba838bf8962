"""The compiled-tree evaluator: a fitted tree ensemble's margin and decision-path contributions
for a batch of rows, from bit-vector tables built once per model (imports numpy and numba only).

- `trees`: the common form of a tree (splits as data, leaves numbered left to right, each
  leaf's credits); `lightgbm_trees` and `xgboost_trees` parse each library's model into it.
- `tables`: `ForestTables`, the tables and their one compiled pass (`kernels`).

Worked example: one tree of three leaves over two features. The root sends `x0 <= 2` left, to a
split sending `x1 <= 5` left; leaves, left to right: L0 = -1.0 (cover 30), L1 = 0.5 (cover 10),
L2 = 2.0 (cover 60).

>>> import numpy as np
>>> from churnops_scorer.forest import ForestTables
>>> from churnops_scorer.forest.trees import Node, Rule, build_tree
>>> def at_most(feature, threshold):  # goes left when x <= threshold (missing and zero too)
...     return Rule(feature, False, threshold, frozenset(), nan_left=True, zero_left=True)
>>> inner = Node(40, rule=at_most(1, 5.0), children=[Node(30, -1.0), Node(10, 0.5)])
>>> root = Node(100, rule=at_most(0, 2.0), children=[inner, Node(60, 2.0)])
>>> tree = build_tree(root, n_features=2)

Each split knows the leaves of its left subtree, [left_lo, left_hi): failing it rules them out.

>>> [(s.feature, s.left_lo, s.left_hi) for s in tree.splits]
[(1, 0, 1), (0, 0, 2)]

The tables hold one row per interval of each feature's thresholds (then a row for zero and one
for a missing value): the leaves still possible there, bit i for leaf Li (written below as the
word's three low bits, L2 L1 L0; the word's other bits stay set). `x0 > 2` fails the root and
leaves only L2; `x1 > 5` fails the inner split and rules out L0.

>>> forest = ForestTables.build([tree], n_features=2, n_categories={})
>>> [format(int(word) & 0b111, "03b") for word in forest.table[:, 0]]
['111', '100', '111', '111', '111', '110', '111', '111']

A row ANDs one table row per feature and exits at the lowest bit left: (1, 7) gives
111 & 110 = 110, leaf L1; (3, 1) gives 100 & 111, leaf L2; (1, 1) gives 111, leaf L0.

>>> contributions, margin = forest.contributions(np.array([[1.0, 7.0], [3.0, 1.0], [1.0, 1.0]]))
>>> margin.tolist()
[0.5, 2.0, -1.0]

The contributions are each leaf's credits (Saabas): on the way from the root (expected value
0.95, the cover-weighted mean of the leaves) to L1, the root's split on x0 moves the expected
value to the inner node's -0.625, and the inner split on x1 from there to 0.5. Per row, the
contributions plus the bias give the margin.

>>> contributions.round(3).tolist()
[[-1.575, 1.125], [1.05, 0.0], [-1.575, -0.375]]
>>> forest.bias
0.95
"""

from churnops_scorer.forest.lightgbm_trees import parse_trees as parse_lightgbm_trees
from churnops_scorer.forest.tables import MAX_TABLE_BYTES, ForestTables, TooLarge, warm_up
from churnops_scorer.forest.trees import Tree
from churnops_scorer.forest.xgboost_trees import Unsupported
from churnops_scorer.forest.xgboost_trees import parse_trees as parse_xgboost_trees

__all__ = [
    "MAX_TABLE_BYTES",
    "ForestTables",
    "TooLarge",
    "Tree",
    "Unsupported",
    "parse_lightgbm_trees",
    "parse_xgboost_trees",
    "warm_up",
]
