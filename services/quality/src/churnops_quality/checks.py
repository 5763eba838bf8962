"""One file's quality check on a local path: validation and PSI in a single chunked pass.

Shared by the worker (after fetching the object) and the CLI (`churnops validate`). A training
set that arrives while there is no baseline yet is read whole: its schema is inferred from it,
it is validated against that schema, and (when accepted) it becomes the first baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from churnops_common.events import DataKind
from churnops_common.settings import Settings
from churnops_quality.baseline import Baseline, build_baseline
from churnops_quality.psi import PsiAccumulator, PsiResult
from churnops_quality.reading import FileFacts, FileProblem, iter_table, precheck, read_whole
from churnops_quality.validation import Issue, QualityRules, Validator, Verdict


@dataclass(frozen=True)
class CheckResult:
    verdict: Verdict
    psi: PsiResult | None = None
    # A first baseline built from this (training) file, with its stratified sample.
    new_baseline: tuple[Baseline, pd.DataFrame] | None = None


def rejected(problem: FileProblem) -> CheckResult:
    issue = Issue(
        code=problem.code,
        severity="error",
        message=problem.reason,
        examples=[str(v) for v in problem.details.get("columns", [])][:12],
    )
    return CheckResult(Verdict(status="rejected", rows=0, has_target=False, issues=[issue]))


def check_file(
    path: Path, kind: DataKind, baseline: Baseline | None, settings: Settings, source: str = ""
) -> CheckResult:
    """Validate a local file (and compute its PSI when there is a profile); never raises on bad
    input: every problem ends up as an issue of the verdict."""
    rules = QualityRules.from_settings(settings)
    max_bytes = int(settings.quality_max_file_mb * 2**20)
    try:
        facts = precheck(path, max_bytes, rules.id_column)
        if baseline is None and kind == "training":
            return _first_training_set(path, facts, settings, rules, source)
        schema = baseline.schema if baseline else None
        validator = Validator(kind, schema, rules)
        validator.check_header(facts.columns)
        if baseline is None:
            validator.warn(
                "no_baseline",
                "no baseline yet (no training set has landed): schema and PSI checks skipped",
            )
        accumulator = PsiAccumulator(baseline.profile) if baseline and kind != "labels" else None
        for chunk in iter_table(path, facts, rules.id_column):
            chunk = validator.update(chunk)
            if accumulator is not None:
                accumulator.update(chunk)
        verdict = validator.finish()
    except FileProblem as problem:
        return rejected(problem)
    psi = accumulator.result() if accumulator is not None and verdict.rows else None
    return CheckResult(verdict, psi)


def _first_training_set(
    path: Path, facts: FileFacts, settings: Settings, rules: QualityRules, source: str
) -> CheckResult:
    frame = read_whole(path, facts, rules.id_column)
    baseline, sample = build_baseline(frame, settings, source, version=1)
    validator = Validator("training", baseline.schema, rules)
    validator.check_header(facts.columns)
    validator.update(frame.copy())
    verdict = validator.finish()
    if verdict.status == "rejected":
        return CheckResult(verdict)
    return CheckResult(verdict, new_baseline=(baseline, sample))
