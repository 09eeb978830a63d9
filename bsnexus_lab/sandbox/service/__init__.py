"""A small FastAPI service shaped like BSNexus's backend, run by the sandbox so the profiling area has a live
uvicorn process to profile, and a steady load driver to keep it busy while a scenario's fault is planted."""
