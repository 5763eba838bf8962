"""The model's input matrix straight from an Arrow chunk, without going through pandas.

The same values `TabularPreprocessor.transform` gives, in the form LightGBM itself turns them
into: numbers as float64 (numbers stored as text are parsed, blanks are missing), categories as
their code in the training category list (an unseen or missing one is NaN; a grouped rare level
the code of the rare category; a target-encoded column its number), a column the batch
lacks all NaN. Text is parsed by Arrow's vectorised kernels; anything they cannot settle (a
value that is not a number, a column of another type) goes through the preprocessor's own
pandas code for that column, so both routes agree value for value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnops_common.ml.pipeline import TabularPreprocessor, as_number


def _is_text(column: pa.ChunkedArray) -> bool:
    return bool(pa.types.is_string(column.type) or pa.types.is_large_string(column.type))


def _is_number(column: pa.ChunkedArray) -> bool:
    kind = column.type
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))


def numbers(column: pa.ChunkedArray) -> np.ndarray:
    """float64 with NaN for missing: as_number's result, computed in Arrow where it can be."""
    if _is_number(column):
        # Unsafe: integers beyond 2**53 round to the nearest double, as pandas does.
        return np.asarray(column.cast(pa.float64(), safe=False).to_numpy(), dtype=np.float64)
    if _is_text(column):
        try:  # plain numbers (blanks are already null, as the readers spell missing values)
            return np.asarray(column.cast(pa.float64()).to_numpy(), dtype=np.float64)
        except pa.ArrowInvalid:
            pass
        text = pc.utf8_trim_whitespace(column)
        text = pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text)
        try:  # numbers with spaces around them, or blank
            return np.asarray(text.cast(pa.float64()).to_numpy(), dtype=np.float64)
        except pa.ArrowInvalid:
            pass  # some value is not a number: pandas turns it into NaN
    return as_number(column.to_pandas()).to_numpy(dtype=np.float64, na_value=np.nan)


_PANDAS_BOOLS = {
    "True": "True",
    "TRUE": "True",
    "true": "True",
    "False": "False",
    "FALSE": "False",
    "false": "False",
}


def as_pandas_bools(column: pa.ChunkedArray, categories: list[str]) -> pa.ChunkedArray:
    """Text as pandas would have read it for a true/false category.

    `pandas.read_csv` turns a column of True/TRUE/true and False/FALSE/false into booleans, so
    the trainer learned the categories "True" and "False"; the scorer reads CSV as text. Other
    spellings, categories without "True"/"False" and columns that are not text pass through.
    """
    if not _is_text(column):
        return column
    learned = {"True", "False"} & set(categories)
    spellings = [s for s, canonical in _PANDAS_BOOLS.items() if canonical in learned]
    spellings = [s for s in spellings if s not in categories]
    if not spellings:
        return column
    result = column
    for spelling in spellings:
        hit = pc.equal(result, spelling)
        result = pc.if_else(hit, pa.scalar(_PANDAS_BOOLS[spelling], column.type), result)
    return result


class FeatureMatrix:
    """Turns Arrow chunks into the float64 (rows x features) matrix the model's trees read."""

    def __init__(self, preprocessor: TabularPreprocessor) -> None:
        self.preprocessor = preprocessor
        # Per categorical column: every known level (grouped rare ones too) and its code.
        self.categories: dict[str, tuple[pa.Array, np.ndarray]] = {}
        for column in preprocessor.categorical:
            levels, codes = preprocessor.lookup(column)
            self.categories[column] = (pa.array(levels, pa.string()), codes)

    def __call__(self, chunk: pa.Table) -> np.ndarray:
        columns = self.preprocessor.input_columns
        out = np.full((chunk.num_rows, len(columns)), np.nan)
        present = set(chunk.column_names)
        for j, name in enumerate(columns):
            if name not in present:
                continue  # missing from the batch: all NaN, as transform() does
            column = chunk.column(name)
            if name in self.categories:
                out[:, j] = self._codes(name, column)
            else:
                out[:, j] = numbers(column)
        return out

    def _codes(self, name: str, column: pa.ChunkedArray) -> np.ndarray:
        if pa.types.is_dictionary(column.type) and pa.types.is_string(column.type.value_type):
            column = column.cast(pa.string())
        if _is_text(column):
            column = as_pandas_bools(column, self.preprocessor.categorical[name])
            levels, level_codes = self.categories[name]
            found = pc.index_in(column, value_set=levels)
            if found.null_count > column.null_count:  # unknown, or known with spaces around
                found = pc.index_in(pc.utf8_trim_whitespace(column), value_set=levels)
            index = np.asarray(found.cast(pa.float64()).to_numpy(), dtype=np.float64)
            missing = np.isnan(index)
            codes = np.where(missing, np.nan, level_codes[np.where(missing, 0, index).astype(int)])
            return self.preprocessor.model_values(name, codes)
        # Another type (numbers, booleans): pandas spells them as the preprocessor saw them.
        one = self.preprocessor.only(name)
        encoded = one.transform(pd.DataFrame({name: column.to_pandas()}))[name]
        if not isinstance(encoded.dtype, pd.CategoricalDtype):  # target-encoded: numbers
            return encoded.to_numpy(dtype=np.float64)
        codes = encoded.cat.codes.to_numpy(dtype=np.float64)
        codes[codes < 0] = np.nan
        return codes
