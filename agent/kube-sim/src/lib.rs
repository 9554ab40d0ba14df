//! The simulated Kubernetes API server (work in progress).
