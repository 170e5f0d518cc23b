#!/usr/bin/env bash
# Install (or, with --check, only verify) what the RS Lens model pipeline needs.
#
#   bash models/setup.sh           # as root: apt-get install the Debian packages if missing
#   bash models/setup.sh --check   # only verify they import with /usr/bin/python3; exit 1 otherwise
#
# The pipeline uses Debian's PyTorch stack behind /usr/bin/python3 (torch, torchvision,
# onnx, PIL, numpy). Only Debian's mirrors are needed (works in CI as root).
set -euo pipefail

PY=/usr/bin/python3
PACKAGES=(python3-torch python3-torchvision python3-onnx python3-pil python3-numpy)

check() {
  if [ ! -x "$PY" ]; then
    echo "models/setup.sh: $PY not found; run 'bash models/setup.sh' as root to install ${PACKAGES[*]}" >&2
    return 1
  fi
  "$PY" - <<'PYEOF'
import importlib, sys
missing, versions = [], []
for mod, pkg in [("torch", "python3-torch"), ("torchvision", "python3-torchvision"),
                 ("onnx", "python3-onnx"), ("PIL", "python3-pil"), ("numpy", "python3-numpy")]:
    try:
        m = importlib.import_module(mod)
        versions.append(f"{mod} {getattr(m, '__version__', '?')}")
    except Exception as e:  # noqa: BLE001
        missing.append(f"{mod} ({pkg}): {e}")
if missing:
    print("models/setup.sh: missing Python modules for /usr/bin/python3:\n  " + "\n  ".join(missing)
          + "\nrun 'bash models/setup.sh' as root to install them", file=sys.stderr)
    sys.exit(1)
import onnx
print("model pipeline OK: " + ", ".join(versions) + f" (python {sys.version.split()[0]}, onnx opset <= {onnx.defs.onnx_opset_version()})")
PYEOF
}

case "${1:-}" in
  --check)
    check
    ;;
  "")
    if check 2>/dev/null; then
      echo "models/setup.sh: packages already installed; nothing to do"
      exit 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
      SUDO=sudo
    else
      SUDO=
    fi
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${PACKAGES[@]}"
    check
    ;;
  -h|--help)
    sed -n '2,9p' "$0"
    ;;
  *)
    echo "usage: bash models/setup.sh [--check]" >&2
    exit 2
    ;;
esac
