// A static test program for the sandbox's real nodes (tests/cluster/test_sandbox_kubelet.py):
// no dependencies, so it builds without the module proxy.
module berth.dev/tests/probe

go 1.26.0
