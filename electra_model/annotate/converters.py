"""The Label Studio converter of each predictor kind (the client's ``ClientSpec.kind``, never a task name): a plug-in
task served by an existing predictor is labelled the same way, and a new kind adds its converter with
:func:`add_converter`."""

from __future__ import annotations

from electra_model.annotate.choices import ChoiceConverter
from electra_model.annotate.convert import Converter
from electra_model.annotate.spans import SpanConverter
from electra_model.errors import ElectraError

CONVERTERS: dict[str, Converter] = {converter.kind: converter for converter in (SpanConverter(), ChoiceConverter())}


def add_converter(converter: Converter) -> None:
    """Label models whose predictor kind is ``converter.kind`` with ``converter``."""
    CONVERTERS[converter.kind] = converter


def converter_for(kind: str) -> Converter:
    """The converter of predictor ``kind``, refused by name when there is none."""
    if kind not in CONVERTERS:
        raise ElectraError(
            f"no Label Studio converter for predictor kind {kind!r} (there are {sorted(CONVERTERS)}); "
            "a plug-in task with its own kind registers one with electra_model.annotate.converters.add_converter"
        )
    return CONVERTERS[kind]
