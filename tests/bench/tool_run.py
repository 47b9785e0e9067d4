"""What the bench-tool tests share: run a tool of bench/cuda on a text
written to a temporary file, as its users run it on a saved log."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_tool(tool, text, name):
    """bench/cuda/<tool> on `text` saved as $TMPDIR/<name>; the completed process"""
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return subprocess.run([sys.executable, os.path.join(ROOT, "bench", "cuda", tool), path],
                          capture_output=True, text=True)
