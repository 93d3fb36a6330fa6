//! The PyTorch side of the benches: runs `benches/pytorch_train.py` with a
//! given Python (one that has torch) and returns the JSON it prints. Shared
//! by the `train` and `conv` benches as a module, not a bench of its own.

/// `python benches/pytorch_train.py ARGS`, its standard output as JSON.
pub fn run(python: &str, args: &[String]) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/pytorch_train.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(
        out.status.success(),
        "{python} {script} failed: {}\n(install torch in it: python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch)",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
