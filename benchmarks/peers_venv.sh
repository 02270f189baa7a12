# Sourced by the benchmark scripts that run Keras 3 (TensorFlow and JAX backends) and PyTorch:
# sets $venv to the throwaway virtualenv holding them (.build-bench-peers, git-ignored),
# installing what it lacks. PyTorch is the CPU build from pip's local wheel folder, without the
# CUDA packages the default one pulls in.
venv=.build-bench-peers
if ! "$venv/bin/python" -c "import tensorflow, jax, keras, torch" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q tensorflow-cpu keras jax jaxlib numpy
    "$venv/bin/pip" install -q --no-deps torch==2.13.0+cpu
    "$venv/bin/pip" install -q typing_extensions filelock sympy networkx jinja2 fsspec
fi
