"""A model version's compiled scoring form: what scoring reads, loadable without the model's own
library (embedded mode, beside the verified local copy of its files, see `local_registry`).

Unpickling an XGBoost or LightGBM pipeline imports that library (XGBoost brings scikit-learn and
SciPy: a second and more before a command reads a row), and the scorer then parses the trees
into its tables (`forest`). The form keeps the result: the pipeline's preprocessing, calibration
and settings with the compiled tables, pickled to `scoring-form.pkl` in the copy's folder.

A pickle runs code when it is loaded, and a form could score with other trees than the promoted
model's, so a form is trusted as the copy is: it is built only from a pipeline whose files were
just verified against the version's promotion record; its SHA-256 and size go to
`scoring_forms` in the monitoring database with the artifact digest it was built from; and it is
loaded only while the copy's files still match the promotion record (the caller hashes them
first, as for any load), its bytes hash to its row, the row names that same digest, and the row
names the code that wrote it (`code_digest`: the source of the modules whose objects the form
holds or whose loop reads its tables, so an upgrade that changes them never reads an old form).
Anything else (no row, another digest, a changed file, a form that fails to load) removes the
form, and the version loads from its files as before and writes a new one.

The pipeline a form gives back holds a `DeferredModel`: code that needs the model itself (exact
SHAP reasons, a library's own predict) loads it then, from the same verified files.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from churnops_common.db.inserts import insert_for
from churnops_common.db.tables import scoring_forms
from churnops_common.ml.integrity import ArtifactDigest
from churnops_common.ml.pipeline import ChurnPipeline
from churnops_scorer.forest import ForestTables
from churnops_scorer.path_attribution import PathAttribution

log = logging.getLogger(__name__)
FORM_FILE = "scoring-form.pkl"
# The modules whose classes a form pickles (pipeline, tables) or whose loop reads its tables.
CODE_MODULES = (
    "churnops_common.ml.pipeline",
    "churnops_scorer.forest.kernels",
    "churnops_scorer.forest.tables",
    "churnops_scorer.forest.trees",
    __name__,
)


@cache
def code_digest() -> str:
    """SHA-256 of those modules' source: a form is read only by the code that wrote it."""
    digest = hashlib.sha256()
    for name in CODE_MODULES:
        digest.update(Path(str(sys.modules[name].__file__)).read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class ScoringForm:
    pipeline: ChurnPipeline  # its model left out: None
    tables: ForestTables


class DeferredModel:
    """Stands for the model of a pipeline loaded from its scoring form: the first attribute
    asked of it loads the model from the version's verified files (once), and answers."""

    def __init__(self, load: Callable[[], Any]) -> None:
        self._load = load
        self._model: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy and pickle probe dunders: not the model's
            raise AttributeError(name)
        with self._lock:
            if self._model is None:
                log.info("loading the model itself (the scoring form holds only its trees)")
                self._model = self._load()
        return getattr(self._model, name)


def store(
    engine: Engine, folder: Path, name: str, version: str, source: ArtifactDigest, pipeline: Any
) -> None:
    """Write the form of a pipeline just loaded from files matching `source` (the promotion
    record's digest), and its row. Best effort: a model without compiled tables has no form,
    and a failure only costs the next command the model's import."""
    if not isinstance(pipeline, ChurnPipeline) or pipeline.family == "linear":
        return  # a linear model loads without any heavy library
    tables = PathAttribution.of(pipeline).compiled
    if tables is None:
        return
    partial = folder / f".{FORM_FILE}.partial"
    try:
        data = pickle.dumps(ScoringForm(replace(pipeline, model=None), tables), protocol=5)
        partial.write_bytes(data)
        _record(engine, name, version, source, data)  # before the file: never a file unrecorded
        partial.replace(folder / FORM_FILE)
    except Exception as exc:  # whatever fails here, the batch must not
        log.info("scoring form of %s v%s not kept (%s)", name, version, exc)
        partial.unlink(missing_ok=True)


def _record(engine: Engine, name: str, version: str, source: ArtifactDigest, data: bytes) -> None:
    values = {
        "artifact_sha256": source.sha256,
        "code_sha256": code_digest(),
        "form_sha256": hashlib.sha256(data).hexdigest(),
        "form_size": len(data),
        "built_at": datetime.now(UTC),
    }
    statement = insert_for(engine, scoring_forms).values(
        model_name=name, model_version=version, **values
    )
    with engine.begin() as conn:
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=[scoring_forms.c.model_name, scoring_forms.c.model_version],
                set_=values,
            )
        )


def load(
    engine: Engine,
    folder: Path,
    name: str,
    version: str,
    source: ArtifactDigest,
    load_model: Callable[[], Any],
) -> ChurnPipeline | None:
    """The version's pipeline from its form, its trees compiled and its model deferred to
    `load_model`; None (the form removed when it exists) unless its row vouches for it."""
    path = folder / FORM_FILE
    if not path.is_file():
        return None
    try:
        form = _vouched(engine, path, name, version, source)
    except Exception as exc:  # a form that cannot be read is rebuilt, never fatal
        log.warning("scoring form of %s v%s not loaded (%s): removed", name, version, exc)
        form = None
    if form is None:
        path.unlink(missing_ok=True)
        return None
    pipeline = replace(form.pipeline, model=DeferredModel(load_model))
    PathAttribution.of(pipeline, form.tables)  # the form's tables, not compiled again
    return pipeline


def _vouched(
    engine: Engine, path: Path, name: str, version: str, source: ArtifactDigest
) -> ScoringForm | None:
    """The form at `path` when its row vouches for it (else None, logged)."""
    query = select(scoring_forms).where(
        scoring_forms.c.model_name == name, scoring_forms.c.model_version == version
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    data = path.read_bytes()  # hashed and unpickled from these same bytes
    if (
        row is None
        or row.artifact_sha256 != source.sha256
        or row.code_sha256 != code_digest()
        or row.form_size != len(data)
        or row.form_sha256 != hashlib.sha256(data).hexdigest()
    ):
        log.warning("scoring form of %s v%s does not match its record", name, version)
        return None
    form = pickle.loads(data)  # noqa: S301 - its digest was just checked against its record
    return form if isinstance(form, ScoringForm) else None
