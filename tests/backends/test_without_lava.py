"""The compiler and the reference simulator work without Lava; asking for Lava says how to install it."""

import subprocess
import sys

from snnc_testutil import DIGITS_DATA, DIGITS_MODEL

BLOCK_LAVA = "import sys\nsys.modules['lava'] = None  # Python's way of marking a package absent\n"


def _run(code, tmp_path):
    return subprocess.run([sys.executable, "-c", BLOCK_LAVA + code], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)


def test_compile_verify_simulate_without_lava(tmp_path):
    code = (
        "from snnc.compiler.tools.cli import cli\n"
        "import sys\n"
        f"args = [['compile', r'{DIGITS_MODEL}', '-o', 'm.snnc'],\n"
        f"        ['verify', 'm.snnc', '--data', r'{DIGITS_DATA}', '--samples', '40'],\n"
        f"        ['simulate', 'm.snnc', '--data', r'{DIGITS_DATA}', '--samples', '10'],\n"
        f"        ['simulate', 'm.snnc', '--backend', 'lava', '--samples', '2']]\n"
        "for a in args:\n"
        "    try:\n"
        "        cli(a, standalone_mode=False)\n"
        "    except SystemExit as e:\n"
        "        print('EXIT', a[0], a[-1], e.code, flush=True)\n"
        "print('LAVA_IMPORTED', any(m.startswith('lava.') for m in sys.modules))\n"
    )
    out = _run(code, tmp_path)
    assert "EXIT verify 40 0" in out.stdout, out.stdout + out.stderr  # exact, no Lava needed
    assert "EXIT simulate 2 2" in out.stdout                         # lava asked for: exit 2
    assert "make setup" in out.stderr and "lava-nc==0.10.0" in out.stderr
    assert "Traceback" not in out.stderr
    assert "LAVA_IMPORTED False" in out.stdout
