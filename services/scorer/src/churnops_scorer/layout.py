"""Where a batch's outputs go: the predictions-file contract's object layout."""

from __future__ import annotations

from dataclasses import dataclass

from churnops_common.events import ObjectRef

PREDICTIONS_FILE = "predictions.parquet"
PREDICTIONS_CSV = "predictions.csv"
RETENTION_FILE = "retention.csv"


def _stem(key: str) -> str:
    head, _, last = key.rpartition("/")
    if "." in last.strip("."):
        last = last[: last.rindex(".")]
    return f"{head}/{last}" if head else last


@dataclass(frozen=True)
class OutputLayout:
    """`<input key without extension>/<etag[:12]>/v<model_version>/...` in predictions."""

    bucket: str
    prefix: str

    @classmethod
    def of(cls, bucket: str, ref: ObjectRef, model_version: str) -> OutputLayout:
        etag = ref.etag[:12] or "no-etag"
        return cls(bucket, f"{_stem(ref.key)}/{etag}/v{model_version}")

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    @property
    def predictions(self) -> ObjectRef:
        return ObjectRef(bucket=self.bucket, key=self.key(PREDICTIONS_FILE))

    def part(self, index: int) -> str:
        return self.key(f"parts/part-{index:05d}.parquet")

    def part_retention(self, index: int) -> str:
        return self.key(f"parts/retention-{index:05d}.parquet")
