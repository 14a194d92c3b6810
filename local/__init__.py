"""The container emulation: the gateway that routes paths to the functions, and the local run."""
