"""``python -m bsnexus_lab.sandbox.service STATE_DIR PORT``: the sandbox's service under uvicorn.

The sandbox names its state directory on the command line (so ``down`` stops only its own service) and passes
``REDIS_URL``/``DATABASE_URL``/``LOG_DIR`` in the environment, as BSNexus is configured.
"""

import sys

import uvicorn

if __name__ == "__main__":
    uvicorn.run("bsnexus_lab.sandbox.service.app:app", host="127.0.0.1", port=int(sys.argv[2]), access_log=False)
