"""Cases that are known to fail, each with the file/function that must change (issue 14).

Phase 1 built the library-level checks (bundle schema/digest/limits, conformance, profiles, energy,
data files, the safe writer); phase 2 wired them into the command layer (compiler/tools/contract.py:
one error line and the exit status for click's own errors, multi-problem errors and Ctrl-C; the
checked bundle loader and the safe writers in every command) and the frontend (domains, opset,
attribute types, quantizer attributes and ranges, declared initializer and input sizes). No case
fails now. ``test_bad_inputs.py`` marks a case listed here as a strict expected failure with its
reason, so a case that starts passing must lose its entry.
"""

PHASE2: dict[str, str] = {}
