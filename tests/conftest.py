import os
import sys
from pathlib import Path

# XLA's CPU backend optimisations cost most of this suite's time in compiles of small programs;
# every reference is computed in the same process under the same flags.
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_backend_optimization_level=0").strip()

sys.path.insert(0, str(Path(__file__).parent))
