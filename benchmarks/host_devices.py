"""Import first: gives the process 8 XLA host devices (unless XLA_FLAGS already sets a count),
before JAX starts. On a GPU machine JAX's default devices are its GPUs all the same."""
import os

if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_force_host_platform_device_count=8").strip()
