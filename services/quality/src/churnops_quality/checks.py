"""One file's quality check on a local path: validation and PSI in a single chunked pass.

Shared by the worker (after fetching the object) and the CLI (`churnops validate`). A training
set that arrives while there is no baseline yet is read whole: its schema is inferred from it,
it is validated against that schema, and (when accepted) it becomes the first baseline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from churnops_common.events import DataKind
from churnops_common.settings import Settings
from churnops_quality.baseline import Baseline, build_baseline
from churnops_quality.psi import PsiAccumulator, PsiResult
from churnops_quality.reading import (
    FileFacts,
    FileLimits,
    FileProblem,
    iter_table,
    precheck,
    read_whole,
)
from churnops_quality.validation import Issue, QualityRules, Validator, Verdict

log = logging.getLogger(__name__)


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
    input: every problem ends up as an issue of the verdict.

    An error no check foresaw (a column type a library cannot convert, a payload it cannot
    decode) is still about this file, which sits on local disk: it becomes an `unreadable`
    rejection with the error's first line, so the file is quarantined and recorded instead of
    failing the task over and over into the dead letters.
    """
    try:
        return _check(path, kind, baseline, settings, source)
    except Exception as exc:
        log.warning(
            "%s: unexpected error while checking, rejected as unreadable", path.name, exc_info=True
        )
        return rejected(FileProblem("unreadable", f"unreadable: {_summary(exc)}"))


def _summary(exc: Exception) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:300] if first else type(exc).__name__


def _check(
    path: Path, kind: DataKind, baseline: Baseline | None, settings: Settings, source: str
) -> CheckResult:
    rules = QualityRules.from_settings(settings, baseline.schema if baseline else None)
    try:
        facts = precheck(path, FileLimits.from_settings(settings), rules.id_column)
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
                accumulator.update(chunk, validator.factorized)
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
