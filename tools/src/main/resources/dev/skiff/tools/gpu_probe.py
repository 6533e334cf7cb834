"""What the GPU device check runs, in a sandbox or on the host: the GPU PyTorch sees and a timed
matrix product on it. Standard library and PyTorch only."""
import os
import time


def probe(_=None):
    out = {
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        "nvidia_visible_devices": os.environ.get("NVIDIA_VISIBLE_DEVICES", ""),
        "nvidia_dev_nodes": sorted(n for n in os.listdir("/dev") if n.startswith("nvidia")),
    }
    try:
        import torch
    except ImportError as e:
        out["error"] = "no PyTorch here: %s" % e
        return out
    out["torch"] = torch.__version__
    out["cuda_available"] = torch.cuda.is_available()
    if not out["cuda_available"]:
        out["error"] = "torch.cuda.is_available() is False"
        return out
    out["device_count"] = torch.cuda.device_count()
    out["device"] = torch.cuda.get_device_name(0)
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.float16)
    b = torch.randn(n, n, device="cuda", dtype=torch.float16)
    torch.cuda.synchronize()
    a @ b  # warm-up: cuBLAS picks its kernel
    torch.cuda.synchronize()
    rounds = 20
    t = time.perf_counter()
    for _ in range(rounds):
        a @ b
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t
    out["matmul"] = "%dx%d fp16, %d rounds: %.1f ms each, %.0f TFLOP/s" % (
        n, n, rounds, seconds / rounds * 1e3, 2 * n ** 3 * rounds / seconds / 1e12)
    return out


if __name__ == "__main__":
    import json
    print(json.dumps(probe()))
