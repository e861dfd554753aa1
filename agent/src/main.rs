//! `imprint-agent`: the node agent. Not implemented yet: the sensor and the modes
//! arrive with their issues. It says so and exits with the usage-error code.

fn main() {
    eprintln!(
        "imprint-agent {}: the agent is not built yet; use `imprint learn` on recorded events",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
