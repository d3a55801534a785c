"""The bad-input corpus of issue 14: generators per category and a runner (docs/reliability.md)."""

from .cases_bundles import BUNDLE_CASES
from .cases_config import CLI_CASES, ENERGY_CASES, PROFILE_CASES
from .cases_data import DATA_CASES
from .cases_models import EXTERNAL_CASES, ONNX_CASES, QUANT_CASES
from .cases_outputs import OUTPUT_CASES, SIGNAL_CASES
from .core import FAILURES, OUTCOMES, Case, Verdict, can, run_case
from .phase2 import PHASE2

ALL_CASES: list[Case] = (ONNX_CASES + EXTERNAL_CASES + QUANT_CASES + DATA_CASES + BUNDLE_CASES + PROFILE_CASES
                         + ENERGY_CASES + CLI_CASES + OUTPUT_CASES + SIGNAL_CASES)
CATEGORIES = list(dict.fromkeys(c.category for c in ALL_CASES))

_ids = [c.id for c in ALL_CASES]
if len(set(_ids)) != len(_ids) or set(PHASE2) - set(_ids):
    raise ValueError(f"case ids must be unique and PHASE2 must name cases: {sorted(set(PHASE2) - set(_ids))}")
for _c in ALL_CASES:
    _c.phase2 = _c.phase2 or PHASE2.get(_c.id)

__all__ = ["ALL_CASES", "CATEGORIES", "FAILURES", "OUTCOMES", "Case", "Verdict", "can", "run_case"]
